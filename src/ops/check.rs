//! `keys check` and `keys ls`: what the repository's secrets are, compared with the
//! policy and `keys.lock`, and a guard against plaintext and private keys. Read-only,
//! needs no identity, and reads through a `Snapshot` so the pre-commit hook checks
//! the staged blobs rather than the work tree.

use std::collections::BTreeSet;

use rayon::prelude::*;

use super::export::Export;
use crate::error::Location;
use crate::format;
use crate::format::Format;
use crate::format::lockfile::{self, Lockfile};
use crate::layout;
use crate::policy::{self, Fleet, Policy};
use crate::snapshot::{Blob, Snapshot};

mod kind;
mod template;

pub use kind::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Problem,
    Warning,
}

/// One thing `check` found: what kind of thing, where (a file, or a file and line; an
/// empty file name when the finding names its place itself), what, and how to fix it.
#[derive(Debug)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    pub at: Location,
    pub what: String,
    pub fix: Fix,
}

/// How to fix what was found.
#[derive(Debug)]
pub enum Fix {
    /// What to do, in words.
    Do(String),
    /// A fleet or policy file does not load, so nothing else can be checked: what to
    /// do is what this error calls for.
    Error(Box<crate::error::Error>),
}

impl From<String> for Fix {
    fn from(text: String) -> Fix {
        Fix::Do(text)
    }
}

impl From<&str> for Fix {
    fn from(text: &str) -> Fix {
        Fix::Do(text.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Encrypted to other recipients (or another format) than the policy says.
    Drift,
    /// The file's hash differs from the lock: changed outside keys.
    Modified,
    /// A file under `secrets/` that the lock or the policy does not know.
    Unknown,
    /// Not a valid encrypted file of its format.
    Invalid,
    /// Listed in the lock, absent on disk.
    Missing,
}

impl Status {
    /// Every status, in the order keys lists them.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Drift,
        Status::Modified,
        Status::Unknown,
        Status::Invalid,
        Status::Missing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Drift => "drift",
            Status::Modified => "modified",
            Status::Unknown => "unknown file",
            Status::Invalid => "invalid",
            Status::Missing => "missing",
        }
    }
}

/// One secret as `keys ls` shows it.
pub struct Secret {
    pub name: String,
    pub format: Option<Format>,
    /// The file, relative to the repository root.
    pub path: Option<String>,
    /// The readers of its rule as written (`admins`, `host:vps-arm`).
    pub readers: Vec<String>,
    /// The index of its rule in the policy, when one matches it.
    pub rule: Option<usize>,
    pub status: Status,
    /// When its value last changed, as `keys.lock` says.
    pub changed: Option<std::time::SystemTime>,
    /// The readers taken away since its value last changed, each named as well as
    /// keys can: by the policy's name for its key now, else as the lock recorded it.
    pub seen: Vec<lockfile::Seen>,
}

#[derive(Default)]
pub struct Report {
    pub secrets: Vec<Secret>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }

    fn problem(
        &mut self,
        kind: Kind,
        at: impl Into<Location>,
        what: impl Into<String>,
        fix: impl Into<Fix>,
    ) {
        self.findings.push(Finding {
            severity: Severity::Problem,
            kind,
            at: at.into(),
            what: what.into(),
            fix: fix.into(),
        });
    }
}

const REENCRYPT: &str = "re-encrypt it with keys: `keys decrypt NAME | keys encrypt --force NAME`";

/// The empty file that keeps an empty `secrets/` in git.
const GITKEEP: &str = "secrets/.gitkeep";

/// The secrets of the work tree with their status, for `keys ls` and `keys status`
/// (no search for private keys outside `secrets/`). A fleet or policy file that does
/// not load is their error: without it they cannot say who reads what.
pub fn secrets(repo: &crate::layout::Repo) -> crate::error::Result<Report> {
    Ok(listing(repo)?.report)
}

/// The secrets of the work tree with their status (as [`secrets`] finds them), and
/// the fleet and policy they were examined against.
pub struct Listing {
    pub report: Report,
    pub fleet: Fleet,
    pub policy: Policy,
}

/// The secrets of the work tree with the fleet and policy that say who reads them.
pub fn listing(repo: &crate::layout::Repo) -> crate::error::Result<Listing> {
    let files = Snapshot::from_work_tree(
        repo,
        &[
            layout::ADMINS,
            layout::HOSTS,
            layout::POLICIES,
            layout::SECRETS,
        ],
    )?;
    let (fleet, policy) = load(&files)?;
    let report = examine(&files, Report::default(), Some(&fleet), Some(&policy));
    Ok(Listing {
        report,
        fleet,
        policy,
    })
}

fn load(files: &Snapshot) -> crate::error::Result<(Fleet, Policy)> {
    let fleet = Fleet::from_snapshot(files)?;
    let policy = Policy::from_snapshot(files, &fleet)?;
    Ok((fleet, policy))
}

/// Examines everything in `files`, and searches every file (outside what the policy
/// allows) for private key material.
pub fn inspect(files: &Snapshot) -> Report {
    let mut report = Report::default();
    let loaded = match load(files) {
        Ok(fp) => Some(fp),
        Err(e) => {
            report.problem(Kind::Policy, "", e.to_string(), Fix::Error(Box::new(e)));
            None
        }
    };
    let (fleet, policy) = match &loaded {
        Some((fleet, policy)) => (Some(fleet), Some(policy)),
        None => (None, None),
    };
    let mut report = examine(files, report, fleet, policy);
    private_keys(files, policy, &mut report);
    report
}

/// The secrets, the lock file, the rules, interrupted runs, exports and leftover
/// plaintext of `files`.
fn examine(
    files: &Snapshot,
    mut report: Report,
    fleet: Option<&Fleet>,
    policy: Option<&Policy>,
) -> Report {
    let lock = match files.get(layout::LOCKFILE) {
        None => Some(Lockfile::default()),
        Some(Blob::Symlink) => {
            report.problem(
                Kind::Lock,
                layout::LOCKFILE,
                "is a symlink",
                "replace it with the file itself",
            );
            None
        }
        Some(Blob::File(data)) => {
            match std::str::from_utf8(data)
                .map_err(|_| "not UTF-8 text".to_string())
                .and_then(|t| Lockfile::parse(t).map_err(|e| e.to_string()))
            {
                Ok(l) => Some(l),
                Err(e) => {
                    report.problem(
                        Kind::Lock,
                        layout::LOCKFILE,
                        e.trim_start_matches(&format!("{}:", layout::LOCKFILE))
                            .trim()
                            .to_string(),
                        "restore it from git; keys writes it whenever it writes a secret",
                    );
                    None
                }
            }
        }
    };
    if let Some(Blob::Symlink) = files.get(layout::SECRETS) {
        report.problem(
            Kind::Symlink,
            layout::SECRETS,
            "is a symlink: keys does not read or write secrets through it",
            "replace the link with the directory it points to",
        );
    }
    // Every rule's recipients, resolved once; then each secret is examined on its own,
    // on every core: the headers and hashes of thousands of files are most of a check.
    let resolved: Vec<Option<policy::Resolved>> = match (fleet, policy) {
        (Some(fleet), Some(policy)) => policy
            .rules
            .iter()
            .map(|rule| policy.resolve(rule, fleet).ok())
            .collect(),
        _ => Vec::new(),
    };
    // Readers taken away are named by the fleet when it still knows their keys.
    let labels = match (fleet, &lock) {
        (Some(fleet), Some(lock)) if lock.entries.values().any(|e| !e.seen.is_empty()) => {
            super::readers::labels(fleet)
        }
        _ => super::readers::Labels::new(),
    };
    let context = Context {
        lock: lock.as_ref(),
        policy: policy.filter(|_| fleet.is_some()),
        resolved: &resolved,
        labels: &labels,
        now: std::time::SystemTime::now(),
    };
    let mut secrets: Vec<(&str, &Blob)> = Vec::new();
    let mut public_halves: Vec<(&str, &str, &[u8])> = Vec::new();
    let mut generated_halves: Vec<(&str, &str, policy::Generator, &[u8])> = Vec::new();
    for (rel, blob) in files.under(layout::SECRETS) {
        if rel == layout::LOCKFILE || rel == layout::OPENBAO_LOCK {
            continue;
        }
        if rel == GITKEEP {
            if let Blob::File(data) = blob
                && !data.iter().all(u8::is_ascii_whitespace)
            {
                report.problem(
                    Kind::Plaintext,
                    rel,
                    "is not empty: it only keeps secrets/ in git, and text there is plaintext",
                    "empty it (`: > secrets/.gitkeep`); encrypt a secret with `keys encrypt NAME`",
                );
            }
            continue;
        }
        if let Some(name) = rel
            .strip_suffix(".pub")
            .and_then(|stem| stem.strip_prefix("secrets/"))
            && layout::public_half(name).is_some()
            && let Blob::File(data) = blob
        {
            public_halves.push((rel, name, data));
            continue;
        }
        if let Some(name) = rel
            .strip_suffix(".pub")
            .and_then(|stem| stem.strip_prefix("secrets/"))
            && let Some(generator) = context
                .policy
                .and_then(|p| p.rule_for(name))
                .and_then(|(_, r)| r.generate)
                .filter(|g| g.has_public_half())
            && let Blob::File(data) = blob
        {
            generated_halves.push((rel, name, generator, data));
            continue;
        }
        secrets.push((rel, blob));
    }
    let examined: Vec<Examined> = if secrets.len() < 64 {
        secrets
            .iter()
            .map(|&(rel, blob)| context.secret(rel, blob))
            .collect()
    } else {
        secrets
            .par_iter()
            .map(|&(rel, blob)| context.secret(rel, blob))
            .collect()
    };
    let mut used_rules: BTreeSet<usize> = BTreeSet::new();
    let mut names = Vec::with_capacity(examined.len());
    for e in examined {
        report.findings.extend(e.findings);
        report.secrets.extend(e.secret);
        names.extend(e.name);
        used_rules.extend(e.rule);
    }
    let seen: BTreeSet<&str> = names.into_iter().collect();
    nesting(&mut report, &seen);
    for (rel, name, data) in public_halves {
        stored_key(&mut report, fleet, &seen, rel, name, data);
    }
    generated_keys(&mut report, files, context.policy, &seen, &generated_halves);
    if let Some(lock) = &lock {
        // Both are sorted: one walk through the two finds what the lock lists alone.
        let mut present = seen.iter().peekable();
        for (name, e) in &lock.entries {
            while present.next_if(|p| **p < name.as_str()).is_some() {}
            if present.next_if(|p| **p == name.as_str()).is_none() {
                let rel = format::secret_path(name, e.format);
                report.problem(
                    Kind::Missing,
                    &rel,
                    "is listed in secrets/keys.lock but missing",
                    format!("restore it from git, or drop it from the lock with `keys rm {name}`"),
                );
                let rule = policy.and_then(|p| p.rule_for(name));
                report.secrets.push(Secret {
                    name: name.clone(),
                    format: Some(e.format),
                    path: Some(rel),
                    readers: rule.map(|(_, r)| r.labels.clone()).unwrap_or_default(),
                    rule: rule.map(|(i, _)| i),
                    status: Status::Missing,
                    changed: e.changed,
                    seen: name_seen(&e.seen, &labels),
                });
            }
        }
    }
    if let Some(policy) = policy {
        template::dangling(&mut report, policy);
        for t in &policy.templates {
            let own = t.first..t.first + t.names.len();
            if !used_rules.iter().any(|i| own.contains(i)) {
                report.findings.push(Finding {
                    severity: Severity::Warning,
                    kind: Kind::UnusedRule,
                    at: t.at.clone(),
                    what: format!("rule {:?} matches no secret", t.glob),
                    fix: "encrypt a secret it matches, or remove the rule".into(),
                });
            }
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            // A rule a placeholder made is told of once, as written.
            let template = rule.bound.as_ref().map(|b| &policy.templates[b.template]);
            if template.is_some_and(|t| t.first != i) {
                continue;
            }
            if template.is_none() && !rule.clear && !used_rules.contains(&i) {
                report.findings.push(Finding {
                    severity: Severity::Warning,
                    kind: Kind::UnusedRule,
                    at: rule.at.clone(),
                    what: format!("rule {:?} matches no secret", rule.glob),
                    fix: "encrypt a secret it matches, or remove the rule".into(),
                });
            }
            // A machine decrypts a key-group file by itself only when it holds the
            // shares of `shamir_threshold` groups.
            for reader in &rule.readers {
                let name = match reader {
                    policy::Reader::Admin(_) | policy::Reader::Transit(_) => continue,
                    policy::Reader::Host(n) => format!("host:{n}"),
                    policy::Reader::Container(n) => format!("container:{n}"),
                    policy::Reader::User { .. } => reader.label(),
                };
                let (name, glob) = match (template, &rule.bound) {
                    (Some(t), Some(b)) => (
                        name.replace(
                            &format!(":{}", b.name),
                            &format!(":{}", t.placeholder.token()),
                        ),
                        &t.glob,
                    ),
                    _ => (name, &rule.glob),
                };
                let holds = rule
                    .key_groups
                    .iter()
                    .filter(|g| g.contains(reader))
                    .count();
                if !rule.key_groups.is_empty() && holds < rule.shamir_threshold {
                    report.findings.push(Finding {
                        severity: Severity::Warning,
                        kind: Kind::KeyGroups,
                        at: rule.readers_at.clone(),
                        what: format!(
                            "rule {:?}: {name} is in {holds} of its key groups and {} are needed, so it cannot decrypt the secret by itself (on the machine, sops-nix fails)",
                            glob, rule.shamir_threshold
                        ),
                        fix: "put it in shamir_threshold of the groups, or leave it out if it only holds a share"
                            .into(),
                    });
                }
            }
        }
    }
    if let Some(blob) = files.get(layout::ROTATION_JOURNAL) {
        let text = match blob {
            Blob::File(data) => std::str::from_utf8(data).ok(),
            Blob::Symlink => None,
        };
        let host = text
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("host ")))
            .filter(|h| layout::check_name(h).is_ok())
            .map(|h| format!(" of host {h}"));
        let pushed = text.is_some_and(|t| t.lines().any(|l| l.starts_with("pushed ")));
        if pushed {
            report.problem(
                Kind::Interrupted,
                layout::ROTATION_JOURNAL,
                format!(
                    "a host key rotation{} was interrupted before the host kept the pushed key",
                    host.unwrap_or_default()
                ),
                "run `keys rekey`: it puts the repository back to the old key, which the host put back when the session ended",
            );
        } else {
            report.problem(
                Kind::Interrupted,
                layout::ROTATION_JOURNAL,
                format!(
                    "a host key rotation{} was interrupted",
                    host.unwrap_or_default()
                ),
                "run `keys rekey`: it finishes the rotation, or undoes it if the host file does not name the new key yet",
            );
        }
    }
    if files.get(layout::REKEY_JOURNAL).is_some() {
        report.problem(
            Kind::Interrupted,
            layout::REKEY_JOURNAL,
            "a rekey was interrupted: some secrets may not match keys.lock yet",
            "run `keys rekey` to finish it",
        );
    }
    if let (Some(fleet), Some(policy)) = (fleet, policy) {
        // Listed only when an export is there to compare.
        let mut secrets: Option<Vec<(String, Format)>> = None;
        for export in Export::ALL {
            let Some(Blob::File(data)) = files.get(export.file()) else {
                continue;
            };
            if !data.starts_with(super::export::MARKER.as_bytes()) {
                continue;
            }
            let secrets = secrets.get_or_insert_with(|| {
                report
                    .secrets
                    .iter()
                    .filter(|s| s.status != Status::Missing)
                    .filter_map(|s| Some((s.name.clone(), s.format?)))
                    .collect()
            });
            match export.render(policy, fleet, secrets) {
                Ok(text) if data.as_slice() == text.as_bytes() => {}
                // What keeps it from being made (two uploads under one name).
                Err(e) => report.problem(
                    Kind::StaleExport,
                    export.file(),
                    format!("cannot be made: {e}"),
                    Fix::Error(Box::new(e)),
                ),
                Ok(_) => report.problem(
                    Kind::StaleExport,
                    export.file(),
                    "is stale: it no longer matches the policy and the secrets",
                    format!("run `{}` and commit the result", export.command()),
                ),
            }
        }
    }
    plaintext_temp_files(files, &mut report);
    local_records(files, fleet, &mut report);
    report.secrets.sort_by(|a, b| a.name.cmp(&b.name));
    report
}

/// The records of secrets kept only on hosts (`recipients/local/HOST.yaml`): each
/// must read, name only paths under its root, and belong to a host of the fleet.
fn local_records(files: &Snapshot, fleet: Option<&Fleet>, report: &mut Report) {
    use crate::policy::local::{self, Record};
    let prefix = format!("{}/", local::DIR);
    for (rel, blob) in files.under(local::DIR) {
        let host = rel
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".yaml"))
            .filter(|h| layout::check_name(h).is_ok());
        let Some(host) = host else {
            report.problem(
                Kind::LocalRecord,
                rel,
                "is not a host's record (recipients/local/HOST.yaml)",
                "move or remove it: keys reads only HOST.yaml files there",
            );
            continue;
        };
        let data = match blob {
            Blob::Symlink => {
                report.problem(
                    Kind::Symlink,
                    rel,
                    "is a symlink",
                    "replace it with the file itself",
                );
                continue;
            }
            Blob::File(data) => data,
        };
        let parsed = policy::text_of(rel, data).and_then(|t| Record::parse(host, t, rel));
        if let Err(e) = parsed {
            report.problem(
                Kind::LocalRecord,
                "",
                e.to_string(),
                "fix the line named (keys remote set and rm rewrite this file)",
            );
            continue;
        }
        if let Some(fleet) = fleet
            && !fleet.has_host(host)
        {
            report.problem(
                Kind::LocalRecord,
                rel,
                format!("records local secrets of host {host}, which has no host file"),
                format!("add the host back, or remove {rel} once its secrets are gone from it"),
            );
        }
    }
}

/// Finds private key material in clear in any file of `files`.
fn private_keys(files: &Snapshot, policy: Option<&Policy>, report: &mut Report) {
    // Every file, secrets/ included: ciphertext never looks like a key, and a key
    // pasted into a note, a comment of keys.lock or a sops value left in clear is
    // as leaked as one anywhere else.
    for (rel, blob) in files.iter() {
        if policy.is_some_and(|p| p.allows_private_key(rel)) {
            continue;
        }
        if let Blob::File(data) = blob
            && let Some(kind) = private_key_material(data)
        {
            report.problem(
                Kind::PrivateKey,
                rel,
                format!("contains {kind} in clear"),
                "remove it and keep it only as a secret (`keys encrypt NAME`); if it was ever committed, rotate the key",
            );
        }
    }
}

/// What every secret is examined against.
struct Context<'a> {
    lock: Option<&'a Lockfile>,
    /// The policy, when it and the fleet loaded.
    policy: Option<&'a Policy>,
    /// Each rule's recipients, by rule index (`None` when they do not resolve).
    resolved: &'a [Option<policy::Resolved>],
    /// The fleet's readers by the short ids of their keys.
    labels: &'a super::readers::Labels,
    now: std::time::SystemTime,
}

/// The readers a lock entry records as taken away, each named by the fleet when it
/// knows the key now, else as the lock recorded it.
fn name_seen(seen: &[lockfile::Seen], labels: &super::readers::Labels) -> Vec<lockfile::Seen> {
    seen.iter()
        .map(|s| lockfile::Seen {
            id: s.id.clone(),
            label: labels.get(&s.id).cloned().or_else(|| s.label.clone()),
        })
        .collect()
}

/// A reader taken away, as `keys check` and `keys ls --exposed` name it:
/// `host:web (SHA256:…)`, or its short id alone.
pub fn seen_text(s: &lockfile::Seen) -> String {
    match &s.label {
        Some(label) => format!("{label} ({})", s.id),
        None => s.id.clone(),
    }
}

/// The day of a lock date (`2026-03-01`).
pub fn day(t: std::time::SystemTime) -> String {
    let mut text = lockfile::format_date(t);
    text.truncate(10);
    text
}

/// What examining one file under `secrets/` found.
#[derive(Default)]
struct Examined<'a> {
    findings: Vec<Finding>,
    secret: Option<Secret>,
    /// Its secret name, when it is a secret.
    name: Option<&'a str>,
    /// The rule that matches it.
    rule: Option<usize>,
}

impl Examined<'_> {
    fn problem(&mut self, kind: Kind, at: &str, what: impl Into<String>, fix: impl Into<Fix>) {
        self.findings.push(Finding {
            severity: Severity::Problem,
            kind,
            at: at.into(),
            what: what.into(),
            fix: fix.into(),
        });
    }
}

impl Context<'_> {
    /// What the lock says of the life of a secret's value: overdue for its rule's
    /// `rotate_every`, or seen by readers taken away since it last changed.
    fn life(
        &self,
        out: &mut Examined,
        rel: &str,
        name: &str,
        rule: Option<&policy::Rule>,
        entry: &lockfile::Entry,
        seen: &[lockfile::Seen],
    ) {
        let mut warn = |kind: Kind, what: String, fix: String| {
            out.findings.push(Finding {
                severity: Severity::Warning,
                kind,
                at: rel.into(),
                what,
                fix: fix.into(),
            })
        };
        let renew = match rule.and_then(|r| r.generate) {
            Some(_) => {
                format!("give it a new value: `keys rotate {name}` (its rule generates one)")
            }
            None => format!(
                "give it a new value: `keys edit {name}` (or `keys set`, `keys encrypt --force`)"
            ),
        };
        if let Some(rule) = rule
            && let Some(period) = &rule.rotate_every
        {
            match entry.changed {
                None => warn(
                    Kind::RotationUnknown,
                    format!(
                        "rotation date unknown: secrets/keys.lock does not say when its value last changed, and its rule ({}) says rotate_every: {}",
                        rule.at, period.text
                    ),
                    format!(
                        "{renew} to start its clock, or if you know when it last changed, add changed=YYYY-MM-DD to its line in secrets/keys.lock"
                    ),
                ),
                Some(changed) => {
                    let age = self.now.duration_since(changed).unwrap_or_default();
                    if age > period.duration() {
                        warn(
                            Kind::RotationDue,
                            format!(
                                "rotation due: its value last changed on {}, {} days ago, and its rule ({}) says rotate_every: {}",
                                day(changed),
                                age.as_secs() / 86_400,
                                rule.at,
                                period.text
                            ),
                            renew.clone(),
                        );
                    }
                }
            }
        }
        if !seen.is_empty() {
            let names: Vec<String> = seen.iter().map(seen_text).collect();
            warn(
                Kind::Exposed,
                format!(
                    "value seen by a removed reader, not changed since: {}",
                    names.join(", ")
                ),
                format!("{renew}; until then a reader taken away knows it"),
            );
        }
    }

    /// Examines the file at `rel` under `secrets/`: its header (parsed once, for
    /// validity and readers), its hash against the lock, and its readers against the
    /// lock and the policy.
    fn secret<'a>(&self, rel: &'a str, blob: &Blob) -> Examined<'a> {
        let mut out = Examined::default();
        let Blob::File(data) = blob else {
            out.problem(
                Kind::Symlink,
                rel,
                "is a symlink under secrets/",
                "replace it with the encrypted file itself",
            );
            return out;
        };
        let base = rel.rsplit('/').next().unwrap_or(rel);
        if base.starts_with(crate::fsutil::TEMP_PREFIX) {
            // Plaintext is reported with every other plaintext temp file.
            if !crate::fsutil::TempName::parse(base).is_some_and(|t| t.plain) {
                out.problem(
                    Kind::TempFile,
                    rel,
                    "is a temp file left by an interrupted write",
                    "run `keys rekey`, which removes it (or delete it)",
                );
            }
            return out;
        }
        let Some((name, format)) = format::secret_of_path(rel) else {
            out.problem(
                Kind::Plaintext,
                rel,
                "is not a secret file (unknown extension; plaintext?)",
                "move it out of secrets/, or encrypt its content with `keys encrypt NAME`",
            );
            out.secret = Some(Secret {
                name: rel.trim_start_matches("secrets/").to_string(),
                format: None,
                path: Some(rel.to_string()),
                readers: Vec::new(),
                rule: None,
                status: Status::Unknown,
                changed: None,
                seen: Vec::new(),
            });
            return out;
        };
        let fix_name = |s: &str| s.replace("NAME", name);
        if let Err(reason) = layout::check_secret_name(name) {
            out.problem(
                Kind::InvalidName,
                rel,
                format!("invalid secret name: {reason}"),
                "rename the file",
            );
            return out;
        }
        out.name = Some(name);
        let mut status = Status::Ok;
        let readers = match format::examine(format, data) {
            Ok(readers) => Some(readers),
            Err(reason) => {
                out.problem(
                    Kind::Invalid,
                    rel,
                    format!("not a valid {} file: {reason}", format.name()),
                    fix_name("restore it from git (git checkout -- FILE), or encrypt it again: `keys encrypt --force NAME`"),
                );
                status = Status::Invalid;
                None
            }
        };
        let rule = self.policy.and_then(|p| p.rule_for(name));
        let entry = self.lock.and_then(|l| l.entries.get(name));
        // Whether the file's own header names exactly the readers its rule resolves
        // to: what sops or agenix wrote can then be adopted as it is.
        // Asked only of a file changed or added outside keys, so a clean check does
        // not compare each header twice.
        let header_matches = || match (rule, readers.as_ref()) {
            (Some((i, rule)), Some(readers)) if rule.format == format => {
                match self.resolved.get(i) {
                    Some(Some(want)) => readers
                        .differs_from(&want.recipients, want.shamir.as_ref())
                        .is_none(),
                    _ => false,
                }
            }
            _ => false,
        };
        let outside = |what: &str| {
            if header_matches() {
                (
                    format!("{what}; its recipients match the policy"),
                    fix_name(
                        "if sops or agenix made the change, record it with `keys adopt NAME`; otherwise restore it from git",
                    ),
                )
            } else {
                (
                    what.to_string(),
                    fix_name(&format!(
                        "if the change is yours, {REENCRYPT}; otherwise restore it from git"
                    )),
                )
            }
        };
        match (entry, self.lock) {
            (None, Some(_)) => {
                let (what, fix) = if header_matches() {
                    outside("is not in secrets/keys.lock (added outside keys)")
                } else {
                    (
                        "is not in secrets/keys.lock (added outside keys)".to_string(),
                        fix_name("encrypt it with keys: `keys encrypt --force NAME`, or remove it"),
                    )
                };
                out.problem(Kind::Unlisted, rel, what, fix);
                status = worst(status, Status::Unknown);
            }
            (Some(e), _) if e.format != format => {
                out.problem(
                    Kind::Drift,
                    rel,
                    format!("keys.lock records format {} for it", e.format.name()),
                    fix_name(REENCRYPT),
                );
                status = worst(status, Status::Drift);
            }
            (Some(e), _) if e.sha256 != lockfile::sha256_hex(data) => {
                let (what, fix) =
                    outside("was changed outside keys (its SHA-256 differs from keys.lock)");
                out.problem(Kind::Modified, rel, what, fix);
                status = worst(status, Status::Modified);
            }
            _ => {}
        }
        // A secret shaped for a `{host}` (or `{container}`) rule whose first segment
        // names none: its host was removed, or never added.
        let unbound = self.policy.and_then(|p| p.unbound(name));
        if let Some(u) = &unbound {
            let kind = u.template.placeholder.kind();
            let add = match u.template.placeholder {
                policy::Placeholder::Host => format!("keys host add {} --key FILE", u.segment),
                policy::Placeholder::Container => {
                    format!("keys container add {} --host HOST", u.segment)
                }
            };
            out.problem(
                Kind::NoRule,
                rel,
                format!(
                    "{} is not a {kind}, so the rule {:?} ({}) does not apply to it",
                    u.segment, u.template.glob, u.template.at
                ),
                fix_name(&format!(
                    "add the {kind} (`{add}`), or remove the secret (`keys rm NAME`)"
                )),
            );
            status = worst(status, Status::Unknown);
        }
        match (rule, self.policy) {
            (None, Some(_)) if unbound.is_some() => {}
            (None, Some(_)) => {
                out.problem(
                    Kind::NoRule,
                    rel,
                    "no policy rule matches this secret",
                    fix_name("add a rule for NAME to a policies/*.yaml file, or `keys rm NAME`"),
                );
                status = worst(status, Status::Unknown);
            }
            (Some((i, rule)), Some(_)) => {
                out.rule = Some(i);
                if rule.format != format {
                    out.problem(
                        Kind::Drift,
                        rel,
                        format!(
                            "its policy rule ({}) says format {}",
                            rule.at,
                            rule.format.name()
                        ),
                        fix_name(REENCRYPT),
                    );
                    status = worst(status, Status::Drift);
                } else if let Some(Some(want)) = self.resolved.get(i) {
                    // The lock and the file's own header must both agree with the
                    // policy: the lock is text anyone can edit.
                    let fix = "run `keys rekey` (add --host NAME to limit it to one host)";
                    let want_ids = &want.fingerprints;
                    if let Some(have) = entry.map(|e| &e.recipients)
                        && want_ids != have
                    {
                        let added = want_ids.iter().filter(|w| !have.contains(w)).count();
                        let removed = have.iter().filter(|r| !want_ids.contains(r)).count();
                        out.problem(
                            Kind::Drift,
                            rel,
                            format!(
                                "drift: encrypted to {} recipients, its policy ({}) resolves to {} ({added} to add, {removed} to remove)",
                                have.len(),
                                rule.at,
                                want_ids.len()
                            ),
                            fix,
                        );
                        status = worst(status, Status::Drift);
                    } else if let Some(what) = readers
                        .as_ref()
                        .and_then(|r| r.differs_from(&want.recipients, want.shamir.as_ref()))
                    {
                        out.problem(
                            Kind::Drift,
                            rel,
                            format!(
                                "drift: the file itself is not encrypted as its policy ({}) says: {what}",
                                rule.at
                            ),
                            fix,
                        );
                        status = worst(status, Status::Drift);
                    }
                }
            }
            _ => {}
        }
        let seen = entry.map_or_else(Vec::new, |e| name_seen(&e.seen, self.labels));
        if let Some(e) = entry {
            self.life(&mut out, rel, name, rule.map(|(_, r)| r), e, &seen);
        }
        out.secret = Some(Secret {
            name: name.to_string(),
            format: Some(format),
            path: Some(rel.to_string()),
            readers: rule.map(|(_, r)| r.labels.clone()).unwrap_or_default(),
            rule: rule.map(|(i, _)| i),
            status,
            changed: entry.and_then(|e| e.changed),
            seen,
        });
        out
    }
}

/// Checks the public half kept beside a generated key secret (`rel`, for secret
/// `name`): one ssh-ed25519 key, beside its secret, and the key its host file (or
/// its container's entry) names. It is how the stored private key is compared with
/// the host file without decrypting it.
fn stored_key(
    report: &mut Report,
    fleet: Option<&Fleet>,
    seen: &BTreeSet<&str>,
    rel: &str,
    name: &str,
    data: &[u8],
) {
    let secret = format::secret_path(name, Format::Age);
    let at = crate::error::Location::named(rel);
    let key = std::str::from_utf8(data)
        .ok()
        .map(str::trim)
        .filter(|t| !t.contains('\n'))
        .and_then(|t| crate::recipient::Recipient::parse_line(t, &at).ok())
        .filter(|k| matches!(k, crate::recipient::Recipient::SshEd25519(_)));
    let Some(key) = key else {
        report.problem(
            Kind::StoredKey,
            rel,
            format!("is not the ssh-ed25519 public key of {secret}"),
            "restore it from git; keys writes it with the key",
        );
        return;
    };
    if !seen.contains(name) {
        report.problem(
            Kind::StoredKey,
            rel,
            format!("is the public half of {secret}, which is missing"),
            "restore the key from git, or remove this file",
        );
        return;
    }
    let parts: Vec<&str> = name.split('/').collect();
    let (host, container) = match parts.as_slice() {
        ["hosts", h, "ssh_host_ed25519_key"] => (*h, None),
        ["hosts", h, "containers", c, "ssh_host_ed25519_key"] => (*h, Some(*c)),
        _ => return,
    };
    // A host removed with its key kept has nothing to compare with.
    let Some(host) = fleet.and_then(|f| f.host(host).ok().flatten()) else {
        return;
    };
    let named = match container {
        None => Some(&host.key),
        Some(c) => host
            .containers
            .iter()
            .find(|x| x.name == c)
            .and_then(|x| x.own_key.as_ref()),
    };
    let Some(named) = named else {
        return;
    };
    if named.fingerprint() != key.fingerprint() {
        let whose = match container {
            None => "its ssh_key".to_string(),
            Some(c) => format!("the ssh_key of container {c}"),
        };
        report.problem(
            Kind::StoredKey,
            format!("{}/{}.yaml", layout::HOSTS, host.name),
            format!(
                "{whose} ({}) is not the generated key stored in {secret} ({}, says {rel}): that key's private half is not in the repository",
                named.fingerprint(),
                key.fingerprint()
            ),
            format!(
                "if `keys host rotate {}` was interrupted, run `keys rekey`; if the file was edited, restore its key from git or rotate it with `keys host rotate {} --key FILE`",
                host.name, host.name
            ),
        );
    }
}

/// Checks the public halves kept beside generated keys (`secrets/NAME.pub`): each
/// beside its secret and a public key of the kind its rule makes, and none missing.
fn generated_keys(
    report: &mut Report,
    files: &Snapshot,
    policy: Option<&Policy>,
    seen: &BTreeSet<&str>,
    halves: &[(&str, &str, policy::Generator, &[u8])],
) {
    use super::generate;
    for &(rel, name, generator, data) in halves {
        if !seen.contains(name) {
            report.problem(
                Kind::StoredKey,
                rel,
                format!("is the public half of secret {name}, which is missing"),
                "restore the secret from git, or remove this file",
            );
        } else if !generate::is_public_half(generator, data) {
            report.problem(
                Kind::StoredKey,
                rel,
                format!(
                    "is not the {} public key of secret {name}",
                    generator.kind()
                ),
                format!("restore it from git; `keys rotate {name}` makes a new key pair"),
            );
        }
    }
    let Some(policy) = policy.filter(|p| {
        p.rules
            .iter()
            .any(|r| r.generate.is_some_and(|g| g.has_public_half()))
    }) else {
        return;
    };
    for name in seen {
        let keyed = policy
            .rule_for(name)
            .and_then(|(_, r)| r.generate)
            .is_some_and(|g| g.has_public_half());
        let rel = generate::public_half(name);
        if keyed && files.get(&rel).is_none() {
            report.problem(
                Kind::StoredKey,
                &rel,
                format!("is missing: it is the public half of secret {name}, which keys.nix reads"),
                format!("restore it from git; `keys rotate {name}` makes a new key pair"),
            );
        }
    }
}

/// Plaintext temp files (`.keys-tmp-<pid>-plain-…`) anywhere in the tree: what a
/// `keys decrypt -o` killed before its rename left. Reported whatever the pid, so that
/// no commit picks one up.
fn plaintext_temp_files(files: &Snapshot, report: &mut Report) {
    for (rel, _) in files.iter() {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        if let Some(temp) = crate::fsutil::TempName::parse(base)
            && temp.plain
        {
            report.problem(
                Kind::Plaintext,
                rel,
                format!(
                    "plaintext left by an interrupted keys decrypt -o (pid {})",
                    temp.pid
                ),
                "delete it; the next `keys decrypt -o` into its directory wipes it",
            );
        }
    }
}

/// Scratch directories that killed `keys` processes left on tmpfs (or the disk
/// fallback), holding the plaintext of an edit: problems for `keys check`, which does
/// not remove them (the next command that uses a scratch directory does).
pub fn scratch_leftovers() -> Vec<Finding> {
    crate::scratch::leftovers()
        .into_iter()
        .map(|left| Finding {
            severity: Severity::Problem,
            kind: Kind::Plaintext,
            at: Location::file(&left.path),
            what: format!(
                "plaintext left by an interrupted keys edit (pid {})",
                left.pid
            ),
            fix: format!(
                "the next `keys edit` wipes it; or remove it now: rm -r {}",
                left.path.display()
            )
            .into(),
        })
        .collect()
}

fn worst(a: Status, b: Status) -> Status {
    if a == Status::Ok { b } else { a }
}

fn nesting(report: &mut Report, names: &BTreeSet<&str>) {
    let mut prev: Option<&str> = None;
    for name in names {
        if let Some(p) = prev
            && layout::secret_names_nest(p, name)
        {
            report.problem(
                Kind::Nesting,
                format!("secrets/{name}"),
                format!("secret {name} is inside secret {p}'s name"),
                "rename one of them so neither is a directory of the other",
            );
            continue;
        }
        prev = Some(name);
    }
}

const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Names the private key material in `data`, if any: an age identity, a PEM or
/// OpenSSH private key block with a body, or a PuTTY private key. A key is found
/// however it is wrapped: indented, in a YAML block scalar, a heredoc or a Nix
/// string, JSON-escaped (`\n`), commented out line by line, with blank lines or
/// trailing blanks after its first line. A mention of a marker alone (in code or
/// docs) is not reported.
pub fn private_key_material(data: &[u8]) -> Option<&'static str> {
    if has_age_identity(data) {
        return Some("an age identity (AGE-SECRET-KEY-…)");
    }
    if has_key_block(data) {
        return Some("a private key block (-----BEGIN … PRIVATE KEY-----)");
    }
    let at_line_start = |needle: &[u8]| {
        memchr::memmem::find_iter(data, needle).any(|i| {
            let lead = data[..i]
                .iter()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            i == lead || data[i - lead - 1] == b'\n' || data[..i - lead].ends_with(b"\\n")
        })
    };
    if at_line_start(b"PuTTY-User-Key-File-") && at_line_start(b"Private-Lines: ") {
        return Some("a PuTTY private key");
    }
    None
}

/// `AGE-SECRET-KEY-1` in any case, anywhere in a line, followed by the bech32 data
/// of a key (an identity has 58 characters of it).
fn has_age_identity(data: &[u8]) -> bool {
    const HRP: &[u8] = b"age-secret-key-1";
    memchr::memchr_iter(b'-', data)
        .filter(|&dash| dash >= 3)
        .map(|dash| dash - 3)
        .any(|at| {
            data[at..].len() > HRP.len()
                && data[at..at + HRP.len()].eq_ignore_ascii_case(HRP)
                && data[at + HRP.len()..]
                    .iter()
                    .take_while(|b| BECH32.contains(&b.to_ascii_lowercase()))
                    .count()
                    >= 50
        })
}

/// A `-----BEGIN … PRIVATE KEY-----` line followed by a key's body.
fn has_key_block(data: &[u8]) -> bool {
    memchr::memmem::find_iter(data, b"-----BEGIN ").any(|at| {
        let rest = &data[at + 11..];
        let Some(end) = memchr::memmem::find(&rest[..rest.len().min(64)], b"-----") else {
            return false;
        };
        let label = &rest[..end];
        (label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
            && key_body(&rest[end + 5..])
    })
}

/// Whether the text after a BEGIN line is a key's body. What a disguise puts
/// between its lines is skipped: blanks and line breaks, escaped line breaks (`\n`,
/// `\r`, `\` at the end of a line), quotes, commas, `+` and comment markers. Then
/// comes either a PEM header (`Proc-Type:` of an encrypted key, PGP's `Version:`)
/// or a run of at least 40 base64 characters (a body line has 64 or 70).
fn key_body(after: &[u8]) -> bool {
    // Far enough for a few blank, indented or commented lines and headers.
    let text = &after[..after.len().min(1024)];
    let mut i = 0;
    let mut headers = 0;
    while i < text.len() {
        i += separators(&text[i..]);
        let rest = &text[i..];
        if rest.starts_with(b"Proc-Type:") {
            return true;
        }
        if headers < 4
            && let Some(len) = header_line(rest)
        {
            headers += 1;
            i += len;
            continue;
        }
        let (run, len) = base64_run(rest);
        if run >= 40 {
            return true;
        }
        // A `//` comment marker is base64 too.
        if len == 0 || !rest[..len].iter().all(|&b| b == b'/') {
            return false;
        }
        i += len;
    }
    false
}

/// How many bytes at the start of `text` only separate the lines of a key.
fn separators(text: &[u8]) -> usize {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => i += 1,
            b'"' | b'\'' | b'`' | b',' | b'+' | b'#' | b';' | b'*' | b'>' | b'|' | b'-' => i += 1,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' => i += 1,
            b'\\' => match text.get(i + 1) {
                Some(b'n' | b'r' | b't' | b'\\' | b'"' | b'\'' | b'\n' | b'\r') => i += 2,
                Some(b'u')
                    if matches!(
                        &text[i..],
                        [_, _, b'0', b'0', b'0', b'a' | b'A' | b'd' | b'D', ..]
                    ) =>
                {
                    i += 6
                }
                _ => break,
            },
            _ => break,
        }
    }
    i
}

/// The length of a PEM header line (`Name: value` up to its line break), if `text`
/// starts with one.
fn header_line(text: &[u8]) -> Option<usize> {
    let name = text
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    if name == 0
        || !text[..name][0].is_ascii_alphabetic()
        || text.get(name..name + 2) != Some(b": ")
    {
        return None;
    }
    let line = memchr::memchr(b'\n', text).unwrap_or(text.len());
    let escaped = memchr::memmem::find(&text[..line], b"\\n").unwrap_or(line);
    Some(escaped.min(line))
}

/// The base64 characters at the start of `text` (a JSON-escaped `\/` counts as one)
/// and the bytes they take.
fn base64_run(text: &[u8]) -> (usize, usize) {
    let (mut run, mut i) = (0, 0);
    while i < text.len() {
        match text[i] {
            b if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') => i += 1,
            b'\\' if text.get(i + 1) == Some(&b'/') => i += 2,
            _ => break,
        }
        run += 1;
    }
    (run, i)
}

#[cfg(test)]
mod tests;
