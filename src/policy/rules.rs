//! `policies/*.yaml`: named groups of readers and the rules that give each secret
//! its format and readers. Files are read in name order and their rules tried in
//! order; the first rule whose glob matches a secret's name decides.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::fleet::Fleet;
use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::format::sops::goregex::GoRegex;
use crate::layout;
use crate::snapshot::Snapshot;

mod generate;
mod install;
mod options;
mod placeholder;
mod readers;
mod rendered;

use generate::GenerateFile;
pub use generate::{CLEAR_SUFFIX, Generator};
pub use install::Install;
use install::Units;
use options::*;
pub use options::{OpenBaoTarget, Period, UPLOAD_AT, Upload};
pub use placeholder::{Bound, Placeholder, Template, Unbound, Written};
use placeholder::{placeholder_in, quote_placeholder_readers};
use readers::{LabelGroups, key_groups, resolve_label};
pub use readers::{Reader, Resolved};
pub use rendered::{Part, SopsTemplate};

pub struct Rule {
    /// The policy file and line of the rule's `secrets:` glob.
    pub at: Location,
    pub glob: String,
    pub format: Format,
    pub armor: bool,
    /// Which values of a sops secret are encrypted (sops's options).
    pub sops: crate::format::sops::Options,
    /// The readers as written (group names unexpanded), for display.
    pub labels: Vec<String>,
    pub readers: Vec<Reader>,
    /// The line of its `readers:` list, for a reader found unknown when resolved.
    pub readers_at: Location,
    /// `key_groups` (a sops rule's alternative to `readers`): each group's readers
    /// wrap one Shamir share of the data key, and `shamir_threshold` groups open
    /// it. `readers` is then every group's readers together.
    pub key_groups: Vec<Vec<Reader>>,
    pub shamir_threshold: usize,
    /// Who owns the decrypted file on the host (agenix and sops-nix options).
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Its mode, as four octal digits (`0400`).
    pub mode: Option<String>,
    /// Where nixos-anywhere puts the secret on the installer, before disko runs,
    /// when it is a disk encryption key (`--disk-encryption-keys PATH FILE`).
    pub disk_encryption_key: Option<String>,
    /// `upload: true`: a deployer (colmena) sends the plaintext to its reader hosts
    /// at deploy time, as `keys export colmena` declares it.
    pub upload: Option<Upload>,
    /// For a rule a placeholder made (`{host}/*` for host `web`): which, and for whom.
    pub bound: Option<Bound>,
    /// Where `keys push openbao` writes the rule's secrets (a KV v2 mount and path).
    pub openbao: Option<OpenBaoTarget>,
    /// How often its secrets are to get a new value (`rotate_every: 90d`).
    pub rotate_every: Option<Period>,
    /// How its machines install the decrypted file (`keys export nix`).
    pub install: Install,
    /// How `keys generate` makes the values of its secrets.
    pub generate: Option<Generator>,
    /// Whether this is the rule a `hashed-password` rule makes for the clear
    /// passphrases of its secrets (`NAME.clear`, age, the admins only), placed just
    /// before it and not written in any policy file.
    pub clear: bool,
}

pub struct Policy {
    /// The rules in match order, each rule with a placeholder made into one rule per
    /// host (or container) it binds.
    pub rules: Vec<Rule>,
    /// The rules with a placeholder, as written.
    pub templates: Vec<Template>,
    /// Each group's members as written, with the file and line of the group.
    pub groups: BTreeMap<String, (Location, Vec<String>)>,
    /// The files sops-nix renders from secrets (`templates:`), in policy order.
    pub sops_templates: Vec<SopsTemplate>,
    /// Each rule's glob. One that is more than a literal name or `prefix*` is
    /// compiled when a name first passes its literal prefix: a command about one
    /// secret compiles at most one glob, not the whole policy's.
    matchers: Vec<LazyGlob>,
    /// `allow_private_keys`, compiled when `keys check` first asks.
    allowed_keys: Vec<LazyGlob>,
    /// Where each of `allowed_keys` is written (policy file and line).
    allowed_keys_at: Vec<Location>,
    /// The groups: each name with its file and members as written, with their lines.
    raw_groups: Groups,
}

/// Groups by name, each with the policy file that defines it and its members.
type Groups = BTreeMap<String, (String, Vec<Spanned<String>>)>;

struct LazyGlob {
    /// What every match starts with: the glob up to its first special character.
    prefix: String,
    /// What every match ends with, the glob matching the rest (`.clear`, for the
    /// clear passphrases of a hashed-password rule's secrets); empty for a rule.
    suffix: &'static str,
    /// What the glob asks of the rest of a name.
    tail: Tail,
    glob: Glob,
    compiled: OnceLock<GlobMatcher>,
}

/// The common globs (`bot/telegram-token`, `bot/*`) need no compiled matcher.
enum Tail {
    /// The glob is a literal name.
    Empty,
    /// The glob ends in its only `*`: the rest of the name stays within one segment.
    Segment,
    /// Anything else: the compiled glob decides.
    Pattern,
}

impl LazyGlob {
    fn new(glob: Glob) -> LazyGlob {
        let text = glob.glob();
        let end = text.find(['*', '?', '[', '{', '\\']).unwrap_or(text.len());
        let tail = match &text[end..] {
            "" => Tail::Empty,
            "*" => Tail::Segment,
            _ => Tail::Pattern,
        };
        LazyGlob {
            prefix: text[..end].to_string(),
            suffix: "",
            tail,
            glob,
            compiled: OnceLock::new(),
        }
    }

    fn is_match(&self, name: &str) -> bool {
        let Some(name) = name.strip_suffix(self.suffix) else {
            return false;
        };
        let Some(rest) = name.strip_prefix(&self.prefix) else {
            return false;
        };
        match self.tail {
            Tail::Empty => rest.is_empty(),
            Tail::Segment => !rest.contains('/'),
            Tail::Pattern => self
                .compiled
                .get_or_init(|| self.glob.compile_matcher())
                .is_match(name),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    groups: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    rules: Vec<RuleFile>,
    /// Globs of paths outside `secrets/` where private key material is expected
    /// (test fixtures); `keys check` does not report it there.
    #[serde(default)]
    allow_private_keys: Vec<Spanned<String>>,
    /// Files sops-nix renders with secrets in them.
    #[serde(default)]
    templates: Vec<rendered::TemplateFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    secrets: Spanned<String>,
    format: Spanned<String>,
    #[serde(default)]
    armor: bool,
    #[serde(default)]
    readers: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    key_groups: LabelGroups,
    #[serde(default)]
    shamir_threshold: Option<Spanned<i64>>,
    #[serde(default)]
    unencrypted_suffix: Option<String>,
    #[serde(default)]
    encrypted_suffix: Option<String>,
    #[serde(default)]
    unencrypted_regex: Option<Spanned<String>>,
    #[serde(default)]
    encrypted_regex: Option<Spanned<String>>,
    #[serde(default)]
    unencrypted_comment_regex: Option<Spanned<String>>,
    #[serde(default)]
    encrypted_comment_regex: Option<Spanned<String>>,
    #[serde(default)]
    mac_only_encrypted: bool,
    #[serde(default)]
    indent: Option<Spanned<i64>>,
    /// `user` as colmena names it.
    #[serde(default, alias = "user")]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    /// `permissions` as colmena names it.
    #[serde(default, alias = "permissions")]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    disk_encryption_key: Option<Spanned<String>>,
    #[serde(default)]
    upload: Option<Spanned<bool>>,
    #[serde(default)]
    dest_dir: Option<Spanned<String>>,
    #[serde(default)]
    upload_at: Option<Spanned<String>>,
    #[serde(default)]
    openbao: Option<Spanned<OpenBaoFile>>,
    #[serde(default)]
    rotate_every: Option<Spanned<String>>,
    #[serde(default)]
    restart_units: Units,
    #[serde(default)]
    reload_units: Units,
    #[serde(default)]
    needed_for_users: Option<Spanned<bool>>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    symlink: Option<Spanned<bool>>,
    #[serde(default)]
    generate: Option<Spanned<GenerateFile>>,
}

fn invalid(at: Location, reason: impl Into<String>) -> Error {
    Error::InvalidFile {
        at,
        reason: reason.into(),
    }
}

/// The longest glob accepted, and the deepest nesting of `{…}` alternatives: far
/// below what the glob compiler can take (each level is a nested group of the regex
/// it builds, which refuses about 120 to 250 of them).
const MAX_GLOB: usize = 1024;
const MAX_BRACE_DEPTH: usize = 16;

/// How deeply `{…}` alternatives nest in a glob (a `\`-escaped brace or one inside
/// a `[…]` class is a literal).
fn brace_depth(pattern: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => {
                // `]` right after `[` or `[!` is a member, not the end.
                if chars.peek() == Some(&'!') {
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
            }
            '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// An `allow_private_keys` glob starts with a directory or file named as it is:
/// one whose first segment has a wildcard (`**`, `*/keys`, `{a,b}/…`) would let a
/// private key in clear pass anywhere in the repository, which is what the guard is
/// for; and none reaches keys's own directories, where a key in clear is a leak.
fn narrow_key_glob(pattern: &str) -> std::result::Result<(), String> {
    let first = pattern.split('/').next().unwrap_or_default();
    if first.is_empty() || first.contains(['*', '?', '[', '{', '\\']) {
        return Err(format!(
            "allow_private_keys glob {pattern:?} would accept a private key in clear anywhere: \
             start it with the directory that holds the test keys (as \"tests/fixtures/**\")"
        ));
    }
    if [layout::SECRETS, layout::POLICIES, layout::RECIPIENTS].contains(&first) {
        return Err(format!(
            "allow_private_keys glob {pattern:?} reaches {first}/, where a private key in clear \
             is a leak: name the directory that holds the test keys"
        ));
    }
    Ok(())
}

fn glob(pattern: &str) -> std::result::Result<Glob, String> {
    if pattern.len() > MAX_GLOB {
        return Err(format!("bad glob: longer than {MAX_GLOB} bytes"));
    }
    if brace_depth(pattern) > MAX_BRACE_DEPTH {
        return Err(format!(
            "bad glob: {{…}} alternatives nested more than {MAX_BRACE_DEPTH} deep"
        ));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("bad glob: {}", e.kind()))
}

/// One rule of a policy file, for `glob_text` (its glob, or the glob a placeholder
/// made of it), with the compiled glob. `bind` is the placeholder its glob begins
/// with and the name it stands for (`None` to check the rule as written).
fn build_rule(
    raw: &RuleFile,
    rel: &str,
    glob_text: &str,
    bind: Option<(Placeholder, Option<&str>)>,
    groups: &BTreeMap<String, (String, Vec<Spanned<String>>)>,
    fleet: &Fleet,
    indents: &mut Vec<(Location, (Format, Option<u8>))>,
) -> Result<(Rule, LazyGlob)> {
    let at = Location::named(rel).at_line(raw.secrets.referenced.line());
    let matcher = LazyGlob::new(glob(glob_text).map_err(|e| invalid(at.clone(), e))?);
    let format_at = Location::named(rel).at_line(raw.format.referenced.line());
    let format = Format::from_name(&raw.format.value).ok_or_else(|| {
        invalid(
            format_at.clone(),
            format!(
                "unknown format {:?}; expected one of {}",
                raw.format.value,
                Format::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    if raw.armor && format != Format::Age {
        return Err(invalid(format_at, "armor applies only to format age"));
    }
    // Go's regexp, as sops evaluates these options; sops would silently
    // match nothing with a pattern Go refuses.
    for (name, r) in [
        ("encrypted_regex", &raw.encrypted_regex),
        ("unencrypted_regex", &raw.unencrypted_regex),
        ("encrypted_comment_regex", &raw.encrypted_comment_regex),
        ("unencrypted_comment_regex", &raw.unencrypted_comment_regex),
    ] {
        if let Some(r) = r
            && let Err(e) = GoRegex::new(&r.value)
        {
            return Err(invalid(
                Location::named(rel).at_line(r.referenced.line()),
                format!(
                    "{name} {:?} is not a regular expression sops can use: {e}",
                    r.value
                ),
            ));
        }
    }
    let indent = match &raw.indent {
        Some(i) => {
            let indent_at = Location::named(rel).at_line(i.referenced.line());
            let spaces = check_indent(format, i.value)
                .map_err(|reason| invalid(indent_at.clone(), reason))?;
            if let Some((other, store)) = indents
                .iter()
                .find(|(_, (f, s))| *f == format && *s != Some(spaces))
                .map(|(at, (_, s))| (at, s))
            {
                return Err(invalid(indent_at, indent_conflict(format, other, *store)));
            }
            indents.push((indent_at, (format, Some(spaces))));
            Some(spaces)
        }
        None => {
            if let Some((other, (_, theirs))) = indents
                .iter()
                .find(|(_, (f, s))| *f == format && s.is_some())
            {
                return Err(invalid(at.clone(), indent_conflict(format, other, *theirs)));
            }
            if matches!(
                format,
                Format::SopsYaml | Format::SopsJson | Format::SopsBinary
            ) {
                indents.push((at.clone(), (format, None)));
            }
            None
        }
    };
    let sops = crate::format::sops::Options {
        unencrypted_suffix: raw.unencrypted_suffix.clone(),
        encrypted_suffix: raw.encrypted_suffix.clone(),
        unencrypted_regex: raw.unencrypted_regex.as_ref().map(|r| r.value.clone()),
        encrypted_regex: raw.encrypted_regex.as_ref().map(|r| r.value.clone()),
        unencrypted_comment_regex: raw
            .unencrypted_comment_regex
            .as_ref()
            .map(|r| r.value.clone()),
        encrypted_comment_regex: raw
            .encrypted_comment_regex
            .as_ref()
            .map(|r| r.value.clone()),
        mac_only_encrypted: raw.mac_only_encrypted,
        indent,
    };
    if format == Format::Age && sops != Default::default() {
        return Err(invalid(
            format_at,
            "encrypted_regex, unencrypted_regex, the comment regexes, encrypted_suffix, unencrypted_suffix and mac_only_encrypted apply only to sops formats",
        ));
    }
    let line = |l: u64| Location::named(rel).at_line(l);
    let (readers_at, labels) = match (&raw.readers, &raw.key_groups) {
        (Some(r), None) => (line(r.referenced.line()), r.value.clone()),
        (None, Some(g)) => (
            line(g.referenced.line()),
            g.value.iter().flat_map(|g| g.value.clone()).collect(),
        ),
        (Some(_), Some(g)) => {
            return Err(invalid(
                line(g.referenced.line()),
                "give a rule readers or key_groups, not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                at,
                format!(
                    "rule {:?} has no readers (give readers or key_groups)",
                    raw.secrets.value
                ),
            ));
        }
    };
    // A rule's readers, its placeholder reader bound to the name the rule is for.
    let expand = |label: &Spanned<String>, out: &mut Vec<Reader>| -> Result<()> {
        let at = line(label.referenced.line());
        let Some(wanted) = Placeholder::in_text(&label.value) else {
            let before = out.len();
            resolve_label(&label.value, &at, groups, fleet, out)?;
            if format == Format::Age
                && out[before..]
                    .iter()
                    .any(|r| matches!(r, Reader::Transit(_)))
            {
                return Err(invalid(
                    at,
                    format!(
                        "reader {:?}: a transit key wraps a sops file's data key, and rule {:?} is format age; make the rule a sops format or name age readers",
                        label.value, raw.secrets.value
                    ),
                ));
            }
            return Ok(());
        };
        match bind {
            Some((p, name)) if p == wanted && label.value == p.reader() => match name {
                Some(name) => {
                    resolve_label(&format!("{}:{name}", p.kind()), &at, groups, fleet, out)
                }
                // The rule as written: the placeholder stands for a reader.
                None => {
                    out.push(p.unbound_reader());
                    Ok(())
                }
            },
            Some((p, _)) if p != wanted => Err(invalid(
                at,
                format!(
                    "reader {:?} needs {} in the glob, which binds {} ({:?})",
                    label.value,
                    wanted.token(),
                    p.token(),
                    raw.secrets.value
                ),
            )),
            Some(_) => Err(invalid(
                at,
                format!(
                    "reader {:?}: a placeholder stands alone after its prefix, as {}",
                    label.value,
                    wanted.reader()
                ),
            )),
            None => Err(invalid(
                at,
                format!(
                    "reader {:?} names {}, and the glob {:?} does not bind it: begin the glob with \"{}/\"",
                    label.value,
                    wanted.token(),
                    raw.secrets.value,
                    wanted.token()
                ),
            )),
        }
    };
    let mut readers = Vec::new();
    for label in &labels {
        expand(label, &mut readers)?;
    }
    readers.sort();
    readers.dedup();
    if readers.is_empty() {
        return Err(invalid(
            readers_at.clone(),
            format!("rule {:?} has no readers", raw.secrets.value),
        ));
    }
    let (key_groups, shamir_threshold) = key_groups(
        &raw.key_groups,
        &raw.shamir_threshold,
        format,
        &readers_at,
        &expand,
        &line,
    )?;
    for (field, name) in [("owner", &raw.owner), ("group", &raw.group)] {
        if let Some(name) = name
            && !account_name(name)
        {
            return Err(invalid(
                at,
                format!("{field} {name:?} is not a user or group name"),
            ));
        }
    }
    let mode = match &raw.mode {
        Some(m) => Some(file_mode(&m.value).ok_or_else(|| {
            invalid(
                Location::named(rel).at_line(m.referenced.line()),
                format!("mode {:?} is not an octal file mode such as 0400", m.value),
            )
        })?),
        None => None,
    };
    let disk_encryption_key = match &raw.disk_encryption_key {
        Some(p) => Some(disk_key_path(format, &p.value).map_err(|reason| {
            invalid(Location::named(rel).at_line(p.referenced.line()), reason)
        })?),
        None => None,
    };
    let upload = upload(raw, &line)?;
    let openbao = match &raw.openbao {
        Some(o) => {
            let mount_at = line(o.value.mount.referenced.line());
            let path_at = line(o.value.path.referenced.line());
            let (mount, path) = (&o.value.mount.value, &o.value.path.value);
            if mount.contains('{') {
                return Err(invalid(
                    mount_at,
                    format!("openbao mount {mount:?} cannot hold a placeholder"),
                ));
            }
            openbao_path(mount, "mount").map_err(|r| invalid(mount_at, r))?;
            openbao_path(path, "path").map_err(|r| invalid(path_at.clone(), r))?;
            let literal = !glob_text.contains(['*', '?', '[', '{', '\\']);
            if !path.contains("{name}") && !literal {
                return Err(invalid(
                    path_at,
                    format!(
                        "openbao path {path:?} has no {{name}}: every secret of {:?} would be written to the same path",
                        raw.secrets.value
                    ),
                ));
            }
            Some(OpenBaoTarget {
                mount: mount.clone(),
                path: path.clone(),
            })
        }
        None => None,
    };
    let rotate_every = match &raw.rotate_every {
        Some(p) => Some(
            Period::parse(&p.value).map_err(|reason| invalid(line(p.referenced.line()), reason))?,
        ),
        None => None,
    };
    let install = install::install(raw, format, glob_text, &readers, &line)?;
    let generate = match &raw.generate {
        Some(g) => Some(generate::generator(g, format, &line)?),
        None => None,
    };
    let rule = Rule {
        at,
        glob: glob_text.to_string(),
        format,
        armor: raw.armor,
        sops,
        labels: labels
            .into_iter()
            .map(|l| match bind {
                Some((p, Some(name))) if l.value == p.reader() => {
                    format!("{}:{name}", p.kind())
                }
                _ => l.value,
            })
            .collect(),
        readers,
        readers_at,
        key_groups,
        shamir_threshold,
        owner: raw.owner.clone(),
        group: raw.group.clone(),
        mode,
        disk_encryption_key,
        upload,
        bound: None,
        openbao,
        rotate_every,
        install,
        generate,
        clear: false,
    };
    Ok((rule, matcher))
}

/// The rule for the clear passphrases of a `hashed-password` rule's secrets: a
/// name the rule matches followed by `.clear`, an age file for the admins only.
fn clear_rule(
    rule: &Rule,
    matcher: &LazyGlob,
    groups: &Groups,
    fleet: &Fleet,
) -> Result<(Rule, LazyGlob)> {
    let mut readers = Vec::new();
    resolve_label("admins", &rule.at, groups, fleet, &mut readers)?;
    readers.sort();
    readers.dedup();
    if readers.is_empty() {
        return Err(invalid(
            rule.at.clone(),
            format!(
                "rule {:?} generates hashed passwords, whose clear passphrases are for the admins, and there are none",
                rule.glob
            ),
        ));
    }
    let mut glob = LazyGlob::new(matcher.glob.clone());
    glob.suffix = CLEAR_SUFFIX;
    let clear = Rule {
        at: rule.at.clone(),
        glob: format!("{}{CLEAR_SUFFIX}", rule.glob),
        format: Format::Age,
        armor: false,
        sops: Default::default(),
        labels: vec!["admins".to_string()],
        readers,
        readers_at: rule.at.clone(),
        key_groups: Vec::new(),
        shamir_threshold: 0,
        owner: None,
        group: None,
        mode: None,
        disk_encryption_key: None,
        upload: None,
        bound: rule.bound.clone(),
        openbao: None,
        rotate_every: rule.rotate_every.clone(),
        install: Install::default(),
        generate: None,
        clear: true,
    };
    Ok((clear, glob))
}

impl Policy {
    /// Reads every `policies/*.yaml` in the view and checks each reader against the fleet.
    pub fn from_snapshot(files: &Snapshot, fleet: &Fleet) -> Result<Policy> {
        super::fleet::refuse_symlink(files, layout::POLICIES, "yaml")?;
        let mut parsed = Vec::new();
        for (rel, data) in files.files_in(layout::POLICIES, "yaml") {
            let text = std::str::from_utf8(data)
                .map_err(|_| invalid(Location::named(rel), "not UTF-8 text"))?;
            let file: PolicyFile = match serde_saphyr::from_str(text) {
                Ok(file) => file,
                // `[admins, host:{host}]`: YAML takes the `{` for a mapping, which
                // no reader list holds; the placeholder reader is meant.
                Err(e) => quote_placeholder_readers(text)
                    .and_then(|quoted| serde_saphyr::from_str(&quoted).ok())
                    .ok_or_else(|| super::yaml_error(rel, &e))?,
            };
            parsed.push((rel.to_string(), file));
        }
        let mut group_at: BTreeMap<String, Location> = BTreeMap::new();
        let mut groups: Groups = BTreeMap::new();
        for (rel, file) in &parsed {
            for (name, members) in &file.groups {
                let at = Location::named(rel).at_line(members.referenced.line());
                layout::check_reader_name(name).map_err(|reason| Error::InvalidName {
                    at: at.clone(),
                    name: name.clone(),
                    reason,
                })?;
                if let Some((other, _)) = groups.get(name) {
                    return Err(invalid(
                        at,
                        format!("group {name} is also defined in {other}"),
                    ));
                }
                if fleet.admin(name).is_some() {
                    return Err(invalid(
                        at,
                        format!("group {name} has the name of an admin; rename one of them"),
                    ));
                }
                groups.insert(name.clone(), (rel.clone(), members.value.clone()));
                group_at.insert(name.clone(), at);
            }
        }
        let mut rules = Vec::new();
        // Where each sops rule says (or leaves to sops) its indentation: `.sops.yaml`
        // has one per format, so the rules of a format agree.
        let mut indents: Vec<(Location, (Format, Option<u8>))> = Vec::new();
        let mut matchers = Vec::new();
        let mut templates: Vec<Template> = Vec::new();
        let mut allowed_keys = Vec::new();
        let mut allowed_keys_at = Vec::new();
        let mut sops_templates = Vec::new();
        for (rel, mut file) in parsed {
            sops_templates.push((rel.clone(), std::mem::take(&mut file.templates)));
            for pattern in &file.allow_private_keys {
                let at = Location::named(&rel).at_line(pattern.referenced.line());
                let matcher = glob(&pattern.value).map_err(|e| invalid(at.clone(), e))?;
                narrow_key_glob(&pattern.value).map_err(|e| invalid(at.clone(), e))?;
                allowed_keys.push(LazyGlob::new(matcher));
                allowed_keys_at.push(at);
            }
            for raw in file.rules {
                let at = Location::named(&rel).at_line(raw.secrets.referenced.line());
                let Some((placeholder, rest)) = placeholder_in(&raw.secrets.value)
                    .map_err(|reason| invalid(at.clone(), reason))?
                else {
                    let (rule, matcher) = build_rule(
                        &raw,
                        &rel,
                        &raw.secrets.value,
                        None,
                        &groups,
                        fleet,
                        &mut indents,
                    )?;
                    if rule.generate == Some(Generator::HashedPassword) {
                        let (clear, m) = clear_rule(&rule, &matcher, &groups, fleet)?;
                        rules.push(clear);
                        matchers.push(m);
                    }
                    rules.push(rule);
                    matchers.push(matcher);
                    continue;
                };
                // The rule as written, checked whether or not anything binds it: its
                // glob with any one segment in the placeholder's place.
                let shape = format!("*{rest}");
                let (checked, shape) = build_rule(
                    &raw,
                    &rel,
                    &shape,
                    Some((placeholder, None)),
                    &groups,
                    fleet,
                    &mut indents,
                )?;
                let names: Vec<String> = match placeholder {
                    Placeholder::Host => fleet.host_names().map(str::to_string).collect(),
                    Placeholder::Container => fleet.container_names()?,
                };
                let mut bound = Vec::new();
                for name in &names {
                    let (mut rule, matcher) = build_rule(
                        &raw,
                        &rel,
                        &format!("{name}{rest}"),
                        Some((placeholder, Some(name))),
                        &groups,
                        fleet,
                        &mut indents,
                    )?;
                    rule.bound = Some(Bound {
                        template: templates.len(),
                        name: name.clone(),
                    });
                    bound.push((rule, matcher));
                }
                // The clear passphrases' rules come before every rule the template
                // makes, which stay together.
                for (rule, matcher) in &bound {
                    if rule.generate == Some(Generator::HashedPassword) {
                        let (clear, m) = clear_rule(rule, matcher, &groups, fleet)?;
                        rules.push(clear);
                        matchers.push(m);
                    }
                }
                let first = rules.len();
                for (rule, matcher) in bound {
                    rules.push(rule);
                    matchers.push(matcher);
                }
                templates.push(Template {
                    at,
                    glob: raw.secrets.value.clone(),
                    placeholder,
                    format: checked.format,
                    labels: checked.labels,
                    first,
                    names,
                    shape,
                });
            }
        }
        let written = groups
            .iter()
            .filter_map(|(name, (_, members))| {
                let at = group_at.remove(name)?;
                Some((
                    name.clone(),
                    (at, members.iter().map(|m| m.value.clone()).collect()),
                ))
            })
            .collect();
        let mut policy = Policy {
            rules,
            templates,
            groups: written,
            sops_templates: Vec::new(),
            matchers,
            allowed_keys,
            allowed_keys_at,
            raw_groups: groups,
        };
        let mut checked = Vec::new();
        for (rel, raw) in &sops_templates {
            rendered::templates(rel, raw, &policy, fleet, &mut checked)?;
        }
        policy.sops_templates = checked;
        Ok(policy)
    }

    /// The rules as the policy files write them, in match order: each rule with a
    /// placeholder once, as written, where its rules are.
    pub fn written(&self) -> Vec<Written<'_>> {
        let mut out = Vec::new();
        let mut templates = self.templates.iter().peekable();
        for (i, rule) in self.rules.iter().enumerate() {
            while let Some(t) = templates.next_if(|t| t.first <= i) {
                out.push(t.written());
            }
            if rule.bound.is_none() && !rule.clear {
                out.push(Written {
                    at: &rule.at,
                    glob: &rule.glob,
                    format: rule.format,
                    labels: &rule.labels,
                });
            }
        }
        out.extend(templates.map(Template::written));
        out
    }

    /// For a name no rule decides, the first template it is shaped for (its first
    /// segment names no host, or container, of the template's): a secret of a host
    /// that was removed, or of one not added yet.
    pub fn unbound<'a>(&'a self, name: &'a str) -> Option<Unbound<'a>> {
        if self.rule_for(name).is_some() {
            return None;
        }
        let segment = name.split('/').next()?;
        self.templates
            .iter()
            .find(|t| t.shape.is_match(name))
            .map(|template| Unbound { template, segment })
    }

    /// Whether the rule written at `at` (a rule, or a rule with a placeholder for a
    /// host or container it binds) matches `name`.
    pub fn written_rule_matches(&self, at: &Location, name: &str) -> bool {
        self.rules
            .iter()
            .zip(&self.matchers)
            .any(|(r, m)| r.at == *at && m.is_match(name))
    }

    /// The first rule whose glob matches `name`.
    pub fn rule_for(&self, name: &str) -> Option<(usize, &Rule)> {
        let first = self.matchers.iter().position(|m| m.is_match(name))?;
        Some((first, &self.rules[first]))
    }

    /// Whether private key material is expected at this path (outside `secrets/`).
    pub fn allows_private_key(&self, rel: &str) -> bool {
        self.allowed_keys.iter().any(|g| g.is_match(rel))
    }

    /// The `allow_private_keys` entry (file and line) that expects private key
    /// material at `rel`, if one does.
    pub fn private_key_allowed_by(&self, rel: &str) -> Option<&Location> {
        let i = self.allowed_keys.iter().position(|g| g.is_match(rel))?;
        self.allowed_keys_at.get(i)
    }

    /// The names of the groups, in name order.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.raw_groups.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests;
