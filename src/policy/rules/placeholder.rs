//! Rules for many hosts: a glob that begins with `{host}/` (or `{container}/`) stands
//! for one rule per host (container), each naming it where the readers say
//! `host:{host}`; what such a rule is as written, and how a policy file that writes
//! the placeholder reader bare in a flow list is read.

use super::*;

/// What a rule's glob may begin with to bind the first segment of a name to a host
/// (`{host}/*`) or a container (`{container}/*`), whose reader the rule then names
/// as `host:{host}` (`container:{container}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Host,
    Container,
}

impl Placeholder {
    const ALL: [Placeholder; 2] = [Placeholder::Host, Placeholder::Container];

    /// As a glob writes it: `{host}`.
    pub fn token(self) -> &'static str {
        match self {
            Placeholder::Host => "{host}",
            Placeholder::Container => "{container}",
        }
    }

    /// What it binds: `host`, `container`.
    pub fn kind(self) -> &'static str {
        match self {
            Placeholder::Host => "host",
            Placeholder::Container => "container",
        }
    }

    /// The reader it stands for: `host:{host}`.
    pub fn reader(self) -> &'static str {
        match self {
            Placeholder::Host => "host:{host}",
            Placeholder::Container => "container:{container}",
        }
    }

    /// The placeholder a text names, if any.
    pub(super) fn in_text(text: &str) -> Option<Placeholder> {
        Placeholder::ALL
            .into_iter()
            .find(|p| text.contains(p.token()))
    }

    /// The reader of a rule checked as written, before it is bound to a name.
    pub(super) fn unbound_reader(self) -> Reader {
        match self {
            Placeholder::Host => Reader::Host(self.token().into()),
            Placeholder::Container => Reader::Container(self.token().into()),
        }
    }
}

/// The placeholder a rule's glob begins with and the rest of the glob, or why a
/// placeholder elsewhere in it is refused.
pub(super) fn placeholder_in(
    glob: &str,
) -> std::result::Result<Option<(Placeholder, &str)>, String> {
    let Some(p) = Placeholder::in_text(glob) else {
        return Ok(None);
    };
    let rest = glob.strip_prefix(p.token());
    match rest {
        Some(rest)
            if (rest.is_empty() || rest.starts_with('/'))
                && Placeholder::in_text(rest).is_none() =>
        {
            Ok(Some((p, rest)))
        }
        _ => Err(format!(
            "{} stands only for the first segment of a name, once: write \"{}/…\"",
            p.token(),
            p.token()
        )),
    }
}

/// `text` with each placeholder reader written bare in a flow list (`[admins,
/// host:{host}]`, which YAML cannot read) quoted, on the same lines; `None` when there
/// is none.
pub(super) fn quote_placeholder_readers(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    let mut changed = false;
    'scan: while !rest.is_empty() {
        for p in Placeholder::ALL {
            let Some(i) = rest.find(p.reader()) else {
                continue;
            };
            // The nearest placeholder reader first.
            if Placeholder::ALL
                .iter()
                .any(|q| rest.find(q.reader()).is_some_and(|j| j < i))
            {
                continue;
            }
            let (before, after) = (&rest[..i], &rest[i + p.reader().len()..]);
            let prior = match before.trim_end_matches([' ', '\t']) {
                "" => out.trim_end_matches([' ', '\t']),
                prior => prior,
            };
            let opens = prior.ends_with(['[', ',']);
            let closes = after
                .trim_start_matches([' ', '\t'])
                .starts_with([',', ']']);
            out.push_str(before);
            if opens && closes {
                out.push('"');
                out.push_str(p.reader());
                out.push('"');
                changed = true;
            } else {
                out.push_str(p.reader());
            }
            rest = after;
            continue 'scan;
        }
        out.push_str(rest);
        break;
    }
    changed.then_some(out)
}

/// A rule made from a rule whose glob begins with a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The rule as written, in `Policy::templates`.
    pub template: usize,
    /// The host or container it is for.
    pub name: String,
}

/// A rule whose glob begins with a placeholder, as written: it stands for one rule
/// per host (or container), at its place in the order.
pub struct Template {
    pub at: Location,
    /// As written (`{host}/*`).
    pub glob: String,
    pub placeholder: Placeholder,
    pub format: Format,
    /// The readers as written (`admins`, `host:{host}`).
    pub labels: Vec<String>,
    /// Where its rules begin in `Policy::rules` (those before it come first).
    pub first: usize,
    /// The hosts (or containers) it has a rule for, in order.
    pub names: Vec<String>,
    /// The glob with any one segment in the placeholder's place.
    pub(super) shape: LazyGlob,
}

impl Template {
    pub(super) fn written(&self) -> Written<'_> {
        Written {
            at: &self.at,
            glob: &self.glob,
            format: self.format,
            labels: &self.labels,
        }
    }
}

/// A rule as a policy file writes it, in match order: a rule, or a template.
pub struct Written<'a> {
    pub at: &'a Location,
    pub glob: &'a str,
    pub format: Format,
    pub labels: &'a [String],
}

/// A secret name shaped like a template's glob whose first segment names no host
/// (or container): no rule of the template's decides it.
pub struct Unbound<'a> {
    pub template: &'a Template,
    /// The first segment of the name.
    pub segment: &'a str,
}
