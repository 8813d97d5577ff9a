//! `keys rule add|ls`: the policy's rules from the command line. A rule is appended to
//! a policy file as text, so its comments and layout stay, and only after the policy
//! with it loads as every command loads it; the rules are listed in match order.

use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::fsutil;
use crate::layout::{self, Repo};
use crate::policy::{Fleet, Policy, edit};
use crate::snapshot::{Blob, Snapshot};

use super::host::KEY_POLICY;
use super::workspace::{Hosts, Workspace};

/// The rule `keys rule add` appends.
pub struct NewRule {
    pub glob: String,
    pub format: String,
    pub readers: Vec<String>,
    /// The policy file to append to (`default.yaml`, or `policies/default.yaml`).
    pub file: Option<String>,
}

/// What `keys rule add` did.
pub struct Added {
    /// The policy file, repository-relative, and the line of the rule's `secrets:`.
    pub at: Location,
    /// Whether the file was made for it.
    pub created: bool,
    /// An earlier rule that decides a name the new rule matches (first match wins):
    /// its place and glob, and the name.
    pub shadowed: Option<(Location, String, String)>,
    /// Existing secrets the new rule now decides.
    pub follow: Vec<String>,
}

/// One rule as written, in match order.
pub struct Listed {
    pub at: Location,
    pub glob: String,
    pub format: Format,
    pub readers: Vec<String>,
}

/// The rules of every policy file in match order, as written (a `{host}` rule once).
pub fn list(repo: &Repo) -> Result<Vec<Listed>> {
    let ws = Workspace::load(repo, Hosts::AsNeeded)?;
    Ok(ws
        .policy
        .written()
        .into_iter()
        .map(|w| Listed {
            at: w.at.clone(),
            glob: w.glob.to_string(),
            format: w.format,
            readers: w.labels.to_vec(),
        })
        .collect())
}

/// Appends a rule to a policy file: `--file`, else the file holding the last rule
/// (after every rule there is), else `policies/default.yaml`. Nothing is written
/// unless the policy with it loads.
pub fn add(repo: &Repo, rule: &NewRule) -> Result<Added> {
    let ws = Workspace::load_writable(repo, Hosts::All)?;
    let target = match &rule.file {
        Some(f) => policy_file(f)?,
        None => default_file(&ws.policy),
    };
    let old = policy_text(repo, &target)?;
    let created = old.is_none();
    let new_rule = edit::NewRule {
        glob: &rule.glob,
        format: &rule.format,
        readers: &rule.readers,
    };
    let (text, line) =
        edit::append_rule(old.as_deref().unwrap_or(""), &new_rule).map_err(|reason| {
            Error::InvalidFile {
                at: Location::named(&target),
                reason,
            }
        })?;
    let at = Location::named(&target).at_line(line);
    let what = format!("rule {:?}", rule.glob);
    let (_, after) = load_with(repo, &[(target.clone(), Some(text.clone().into_bytes()))])
        .map_err(|e| refused(e, &what, Some((&target, line..line + 3))))?;
    if !after
        .written()
        .iter()
        .any(|w| *w.at == at && w.glob == rule.glob)
    {
        return Err(Error::InvalidFile {
            at: Location::named(&target),
            reason: "keys could not add the rule to this file as text; add it by hand".into(),
        });
    }
    let mut names: Vec<String> = super::workspace::secret_files(repo)?
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    names.sort();
    names.dedup();
    let follow: Vec<String> = names
        .iter()
        .filter(|n| after.rule_for(n).is_some_and(|(_, r)| r.at == at))
        .cloned()
        .collect();
    let shadowed = shadowed_by(&after, &at, &rule.glob, &names);
    let path = repo.root().join(&target);
    if created {
        fsutil::create_dirs_within(repo.root(), std::path::Path::new(layout::POLICIES), 0o755)?;
        fsutil::write_new(&path, text.as_bytes(), fsutil::PUBLIC)?;
    } else {
        fsutil::write_atomic(&path, text.as_bytes(), fsutil::PUBLIC)?;
    }
    drop(ws);
    Ok(Added {
        at,
        created,
        shadowed,
        follow,
    })
}

/// The earlier rule that decides what the rule written at `at` would: the name its
/// glob stands for (each wildcard one `x`, a placeholder the first host or
/// container it binds), or, for a glob with classes or alternatives, every existing
/// secret it matches. Its place and glob as written, and the name.
fn shadowed_by(
    policy: &Policy,
    at: &Location,
    glob: &str,
    names: &[String],
) -> Option<(Location, String, String)> {
    let written = policy.written();
    let place = |l: &Location| written.iter().position(|w| w.at == l);
    let own = place(at)?;
    let earlier = |name: &str| -> Option<(Location, String)> {
        let (_, rule) = policy.rule_for(name)?;
        let i = place(&rule.at)?;
        (i < own).then(|| (written[i].at.clone(), written[i].glob.to_string()))
    };
    match sample_name(glob, policy, at) {
        Some(name) => earlier(&name).map(|(l, g)| (l, g, name)),
        None => {
            let mine: Vec<&String> = names
                .iter()
                .filter(|n| policy.written_rule_matches(at, n))
                .collect();
            let first = mine.first()?;
            let (l, g) = earlier(first)?;
            mine.iter()
                .all(|n| earlier(n).is_some())
                .then(|| (l, g, first.to_string()))
        }
    }
}

/// The name `glob` stands for, with each wildcard one `x` and a placeholder the
/// first host (or container) it binds, else `x`; `None` for a glob with classes or
/// alternatives.
fn sample_name(glob: &str, policy: &Policy, at: &Location) -> Option<String> {
    let mut text = glob.to_string();
    if let Some(t) = policy.templates.iter().find(|t| t.at == *at) {
        let name = t.names.first().map_or("x", String::as_str);
        text = text.replacen(t.placeholder.token(), name, 1);
    }
    if text.contains(['[', '{', '\\']) {
        return None;
    }
    let name = text.replace("**", "x").replace(['*', '?'], "x");
    layout::check_secret_name(&name).ok().map(|()| name)
}

/// The policy file `--file` names: `NAME.yaml` or `policies/NAME.yaml`.
fn policy_file(arg: &str) -> Result<String> {
    let name = arg
        .strip_prefix(&format!("{}/", layout::POLICIES))
        .unwrap_or(arg);
    let name = if name.ends_with(".yaml") {
        name.to_string()
    } else {
        format!("{name}.yaml")
    };
    let stem = name.trim_end_matches(".yaml");
    layout::check_reader_name(stem).map_err(|reason| Error::InvalidName {
        at: Location::named("--file"),
        name: arg.to_string(),
        reason,
    })?;
    Ok(format!("{}/{name}", layout::POLICIES))
}

/// Where a rule goes by default: the file of the last rule in match order (not the
/// generated host-key file, whose rule must come first), else `policies/default.yaml`.
pub(super) fn default_file(policy: &Policy) -> String {
    policy
        .written()
        .iter()
        .rev()
        .map(|w| &w.at.file)
        .find(|f| f.as_str() != KEY_POLICY)
        .cloned()
        .unwrap_or_else(|| format!("{}/default.yaml", layout::POLICIES))
}

/// A policy file's text (`rel` repository-relative), `None` when it does not exist.
pub(super) fn policy_text(repo: &Repo, rel: &str) -> Result<Option<String>> {
    let path = repo.root().join(rel);
    fsutil::refuse_links(repo.root(), std::path::Path::new(rel))?;
    match fsutil::read_optional(&path)? {
        None => Ok(None),
        Some(data) => String::from_utf8(data)
            .map(Some)
            .map_err(|_| Error::InvalidFile {
                at: Location::named(rel),
                reason: "not UTF-8 text".into(),
            }),
    }
}

/// The fleet and policy of the work tree with `changes` (a repository-relative path
/// and its new bytes, or `None` for a file removed), loaded as every command loads
/// them.
pub(super) fn load_with(
    repo: &Repo,
    changes: &[(String, Option<Vec<u8>>)],
) -> Result<(Fleet, Policy)> {
    let mut files =
        Snapshot::from_work_tree(repo, &[layout::ADMINS, layout::HOSTS, layout::POLICIES])?;
    for (rel, data) in changes {
        match data {
            Some(d) => files.insert(rel.clone(), Blob::File(d.clone())),
            None => {
                files.remove(rel);
            }
        }
    }
    let fleet = Fleet::from_snapshot(&files)?;
    let policy = Policy::from_snapshot(&files, &fleet)?;
    Ok((fleet, policy))
}

/// The loader's refusal of a change as the change's own: `what` it was, and, when
/// the refusal is about the lines it added (`inside`), without a line that is not
/// in the file. A refusal elsewhere is the file's own problem, as it is.
pub(super) fn refused(e: Error, what: &str, inside: Option<(&str, std::ops::Range<u64>)>) -> Error {
    let (at, reason) = match e {
        Error::InvalidFile { at, reason } => (at, reason),
        Error::InvalidName { at, name, reason } => (at, format!("invalid name {name:?}: {reason}")),
        e => return e,
    };
    let ours = inside.as_ref().is_some_and(|(file, lines)| {
        at.file == *file && at.line.is_some_and(|l| lines.contains(&l))
    });
    match inside {
        Some(_) if !ours => Error::InvalidFile { at, reason },
        Some(_) => Error::PolicyRefused {
            at: at.file,
            what: what.to_string(),
            reason,
        },
        None => Error::PolicyRefused {
            at: at.to_string(),
            what: what.to_string(),
            reason,
        },
    }
}
