//! A policy's `templates:`: files that sops-nix renders on one machine from a text
//! in which `{{ secret:NAME }}` stands for the value of the sops secret NAME (a
//! configuration file that embeds a password), as `keys export nix` declares them.

use super::install::{Units, install_path, units};
use super::*;

/// One `templates:` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateFile {
    name: Spanned<String>,
    reader: Spanned<String>,
    content: Spanned<String>,
    #[serde(default)]
    owner: Option<Spanned<String>>,
    #[serde(default)]
    group: Option<Spanned<String>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    restart_units: Units,
    #[serde(default)]
    reload_units: Units,
}

/// A piece of a template's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// The value of this sops secret.
    Secret(String),
}

/// A file sops-nix renders on `reader`'s machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopsTemplate {
    pub at: Location,
    pub name: String,
    pub reader: Reader,
    pub content: Vec<Part>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
    pub path: Option<String>,
    pub restart_units: Vec<String>,
    pub reload_units: Vec<String>,
}

impl SopsTemplate {
    /// The secrets its content names, each once.
    pub fn secrets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for part in &self.content {
            if let Part::Secret(s) = part
                && !out.contains(&s.as_str())
            {
                out.push(s);
            }
        }
        out
    }
}

/// Splits a template's text at each `{{ secret:NAME }}`.
fn parts(text: &str) -> std::result::Result<Vec<Part>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut literal = String::new();
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(name) = after.trim_start().strip_prefix("secret:") else {
            literal.push_str(&rest[..open + 2]);
            rest = after;
            continue;
        };
        let Some(close) = name.find("}}") else {
            return Err("a {{ secret:NAME }} is not closed with }}".into());
        };
        let secret = name[..close].trim();
        crate::layout::check_secret_name(secret)
            .map_err(|why| format!("{{{{ secret:{secret} }}}}: the secret name is {why}"))?;
        literal.push_str(&rest[..open]);
        if !literal.is_empty() {
            out.push(Part::Text(std::mem::take(&mut literal)));
        }
        out.push(Part::Secret(secret.to_string()));
        rest = &name[close + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Part::Text(literal));
    }
    Ok(out)
}

/// The templates of the policy file `rel`, checked against the policy's rules: each
/// names one host or container, and every secret it embeds is a sops secret that
/// machine reads.
pub(super) fn templates(
    rel: &str,
    raw: &[TemplateFile],
    policy: &Policy,
    fleet: &Fleet,
    out: &mut Vec<SopsTemplate>,
) -> Result<()> {
    let line = |l: u64| Location::named(rel).at_line(l);
    for t in raw {
        let at = line(t.name.referenced.line());
        crate::layout::check_secret_name(&t.name.value).map_err(|why| {
            invalid(
                at.clone(),
                format!("template name {:?} is {why}", t.name.value),
            )
        })?;
        let reader_at = line(t.reader.referenced.line());
        let reader =
            machine(&t.reader.value, fleet).map_err(|why| invalid(reader_at.clone(), why))?;
        if let Some(other) = out
            .iter()
            .find(|o| o.name == t.name.value && o.reader == reader)
        {
            return Err(invalid(
                at,
                format!(
                    "template {} for {} is also written at {}",
                    t.name.value,
                    reader.label(),
                    other.at
                ),
            ));
        }
        let content_at = line(t.content.referenced.line());
        let content = parts(&t.content.value).map_err(|why| invalid(content_at.clone(), why))?;
        let mut named = false;
        for part in &content {
            let Part::Secret(secret) = part else {
                continue;
            };
            named = true;
            let why = match policy.rule_for(secret) {
                None => Some("no rule matches it".to_string()),
                Some((_, rule)) if rule.format == Format::Age => Some(
                    "it is an age secret, and sops-nix templates embed sops secrets only".into(),
                ),
                Some((_, rule)) if !rule.readers.contains(&reader) => Some(format!(
                    "its rule at {} does not give it to {}",
                    rule.at,
                    reader.label()
                )),
                Some((_, rule)) if rule.upload.is_some() && matches!(reader, Reader::Host(_)) => {
                    Some(format!(
                        "its rule at {} has upload: true, so its host does not decrypt it",
                        rule.at
                    ))
                }
                Some((_, rule)) if rule.install.needed_for_users => Some(format!(
                    "its rule at {} has needed_for_users, and sops-nix renders templates from the other secrets only",
                    rule.at
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                return Err(invalid(
                    content_at,
                    format!("template {} embeds secret {secret}: {why}", t.name.value),
                ));
            }
        }
        if !named {
            return Err(invalid(
                content_at,
                format!(
                    "template {} embeds no secret: write {{{{ secret:NAME }}}} where a value goes",
                    t.name.value
                ),
            ));
        }
        // home-manager's templates belong to the user and restart nothing.
        if matches!(reader, Reader::User { .. }) {
            let system = [
                ("owner", t.owner.as_ref().map(|s| s.referenced.line())),
                ("group", t.group.as_ref().map(|s| s.referenced.line())),
                (
                    "restart_units",
                    t.restart_units.as_ref().map(|s| s.referenced.line()),
                ),
                (
                    "reload_units",
                    t.reload_units.as_ref().map(|s| s.referenced.line()),
                ),
            ];
            if let Some((field, Some(l))) = system.into_iter().find(|(_, l)| l.is_some()) {
                return Err(invalid(
                    line(l),
                    format!(
                        "{field} applies to hosts and containers; home-manager renders {}'s templates as the user",
                        reader.label()
                    ),
                ));
            }
        }
        for (field, name) in [("owner", &t.owner), ("group", &t.group)] {
            if let Some(name) = name
                && !account_name(&name.value)
            {
                return Err(invalid(
                    line(name.referenced.line()),
                    format!("{field} {:?} is not a user or group name", name.value),
                ));
            }
        }
        let mode = match &t.mode {
            Some(m) => Some(file_mode(&m.value).ok_or_else(|| {
                invalid(
                    line(m.referenced.line()),
                    format!("mode {:?} is not an octal file mode such as 0400", m.value),
                )
            })?),
            None => None,
        };
        let path = match &t.path {
            Some(p) if !install_path(&p.value) || p.value.contains("{name}") => {
                return Err(invalid(
                    line(p.referenced.line()),
                    format!(
                        "path {:?} is not an absolute path of plain names (such as /etc/app/app.env)",
                        p.value
                    ),
                ));
            }
            Some(p) => Some(p.value.clone()),
            None => None,
        };
        let [restart_units, reload_units] = units(&t.restart_units, &t.reload_units, &line)?;
        out.push(SopsTemplate {
            at,
            name: t.name.value.clone(),
            reader,
            content,
            owner: t.owner.as_ref().map(|o| o.value.clone()),
            group: t.group.as_ref().map(|g| g.value.clone()),
            mode,
            path,
            restart_units,
            reload_units,
        });
    }
    Ok(())
}

/// The one machine a template's `reader:` names.
fn machine(label: &str, fleet: &Fleet) -> std::result::Result<Reader, String> {
    if let Some(host) = label.strip_prefix("host:") {
        if fleet.has_host(host) {
            return Ok(Reader::Host(host.to_string()));
        }
        return Err(format!(
            "template reader {label:?}: no recipients/hosts/{host}.yaml"
        ));
    }
    if let Some(name) = label.strip_prefix("container:") {
        if fleet.container(name).ok().flatten().is_some() {
            return Ok(Reader::Container(name.to_string()));
        }
        return Err(format!(
            "template reader {label:?}: no host file declares container {name}"
        ));
    }
    if let Some((name, host)) = label.strip_prefix("user:").and_then(|u| u.rsplit_once('@')) {
        if fleet.user(name, host).ok().flatten().is_some() {
            return Ok(Reader::User {
                name: name.to_string(),
                host: host.to_string(),
            });
        }
        return Err(format!(
            "template reader {label:?}: recipients/hosts/{host}.yaml has no user {name}"
        ));
    }
    Err(format!(
        "template reader {label:?} is not one machine: give host:NAME, container:NAME or user:NAME@HOST"
    ))
}

#[cfg(test)]
mod tests {
    use super::{Part, parts};

    #[test]
    fn content_splits_at_each_secret() {
        let p = |s: &str| Part::Text(s.into());
        let s = |s: &str| Part::Secret(s.into());
        for (text, want) in [
            ("a={{ secret:x/y }}\n", vec![p("a="), s("x/y"), p("\n")]),
            ("{{secret:x}}{{ secret:z }}", vec![s("x"), s("z")]),
            ("{{ other }} {{secret:x}}", vec![p("{{ other }} "), s("x")]),
            ("plain", vec![p("plain")]),
        ] {
            assert_eq!(parts(text).unwrap(), want, "{text}");
        }
        assert!(parts("{{ secret:x").is_err());
        assert!(parts("{{ secret:../x }}").is_err());
    }
}
