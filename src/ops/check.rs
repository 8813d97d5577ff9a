//! `keys check` and `keys ls`: what the repository's secrets are, compared with the
//! policy and `keys.lock`, and a guard against plaintext and private keys. Read-only,
//! needs no identity, and reads through a `Snapshot` so the pre-commit hook checks
//! the staged blobs rather than the work tree.

use std::collections::BTreeSet;

use rayon::prelude::*;

use super::export::Export;
use crate::format;
use crate::layout;
use crate::lock::{self, Lock};
use crate::policy::{self, Fleet, Format, Policy};
use crate::tree::{Blob, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Problem,
    Warning,
}

/// One thing `check` found: where (file, or file:line), what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub at: String,
    pub what: String,
    pub fix: String,
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
    pub status: Status,
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

    fn problem(&mut self, at: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Problem,
            at: at.into(),
            what: what.into(),
            fix: fix.into(),
        });
    }
}

const REENCRYPT: &str = "re-encrypt it with keys: `keys decrypt NAME | keys encrypt --force NAME`";

/// Files under `secrets/` that are not secrets.
fn is_bookkeeping(rel: &str) -> bool {
    rel == layout::LOCK || rel == "secrets/.gitkeep"
}

/// The secrets of the work tree with their status, for `keys ls` and `keys status`
/// (no search for private keys outside `secrets/`). A fleet or policy file that does
/// not load is their error: without it they cannot say who reads what.
pub fn secrets(repo: &crate::layout::Repo) -> crate::error::Result<Report> {
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
    Ok(examine(
        &files,
        false,
        Report::default(),
        Some(fleet),
        Some(policy),
    ))
}

fn load(files: &Snapshot) -> crate::error::Result<(Fleet, Policy)> {
    let fleet = Fleet::from_snapshot(files)?;
    let policy = Policy::from_snapshot(files, &fleet)?;
    Ok((fleet, policy))
}

/// Examines everything in `files`. With `scan_keys`, every file outside `secrets/`
/// is also searched for private key material.
pub fn inspect(files: &Snapshot, scan_keys: bool) -> Report {
    let mut report = Report::default();
    let (fleet, policy) = match load(files) {
        Ok(fp) => (Some(fp.0), Some(fp.1)),
        Err(e) => {
            report.problem(
                "",
                e.to_string(),
                e.hint().unwrap_or_else(|| "fix the file named".into()),
            );
            (None, None)
        }
    };
    examine(files, scan_keys, report, fleet, policy)
}

fn examine(
    files: &Snapshot,
    scan_keys: bool,
    mut report: Report,
    fleet: Option<Fleet>,
    policy: Option<Policy>,
) -> Report {
    let lock = match files.get(layout::LOCK) {
        None => Some(Lock::default()),
        Some(Blob::Symlink) => {
            report.problem(
                layout::LOCK,
                "is a symlink",
                "replace it with the file itself",
            );
            None
        }
        Some(Blob::File(data)) => {
            match std::str::from_utf8(data)
                .map_err(|_| "not UTF-8 text".to_string())
                .and_then(|t| Lock::parse(t).map_err(|e| e.to_string()))
            {
                Ok(l) => Some(l),
                Err(e) => {
                    report.problem(
                        layout::LOCK,
                        e.trim_start_matches(&format!("{}:", layout::LOCK))
                            .trim()
                            .to_string(),
                        "restore it from git; keys writes it whenever it writes a secret",
                    );
                    None
                }
            }
        }
    };
    // Every rule's recipients, resolved once; then each secret is examined on its own,
    // on every core: the headers and hashes of thousands of files are most of a check.
    let resolved: Vec<Option<policy::Resolved>> = match (&fleet, &policy) {
        (Some(fleet), Some(policy)) => policy
            .rules
            .iter()
            .map(|rule| policy.resolve(rule, fleet).ok())
            .collect(),
        _ => Vec::new(),
    };
    let context = Context {
        lock: lock.as_ref(),
        policy: policy.as_ref().filter(|_| fleet.is_some()),
        resolved: &resolved,
    };
    let secrets: Vec<(&str, &Blob)> = files
        .under(layout::SECRETS)
        .filter(|(rel, _)| !is_bookkeeping(rel))
        .collect();
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
    if let Some(lock) = &lock {
        // Both are sorted: one walk through the two finds what the lock lists alone.
        let mut present = seen.iter().peekable();
        for (name, e) in &lock.entries {
            while present.next_if(|p| **p < name.as_str()).is_some() {}
            if present.next_if(|p| **p == name.as_str()).is_none() {
                let rel = policy::secret_path(name, e.format);
                report.problem(
                    &rel,
                    "is listed in secrets/keys.lock but missing",
                    format!("restore it from git, or drop it from the lock with `keys rm {name}`"),
                );
                report.secrets.push(Secret {
                    name: name.clone(),
                    format: Some(e.format),
                    path: Some(rel),
                    readers: policy
                        .as_ref()
                        .and_then(|p| p.rule_for(name))
                        .map(|(_, r)| r.labels.clone())
                        .unwrap_or_default(),
                    status: Status::Missing,
                });
            }
        }
    }
    if let Some(policy) = &policy {
        for (i, rule) in policy.rules.iter().enumerate() {
            if !used_rules.contains(&i) {
                report.findings.push(Finding {
                    severity: Severity::Warning,
                    at: rule.at.to_string(),
                    what: format!("rule {:?} matches no secret", rule.glob),
                    fix: "encrypt a secret it matches, or remove the rule".into(),
                });
            }
        }
    }
    if files.get(super::rekey::JOURNAL).is_some() {
        report.problem(
            super::rekey::JOURNAL,
            "a rekey was interrupted: some secrets may not match keys.lock yet",
            "run `keys rekey` to finish it",
        );
    }
    if let (Some(fleet), Some(policy)) = (&fleet, &policy) {
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
            if !export
                .render(policy, fleet, secrets)
                .is_ok_and(|text| *data == text.into_bytes())
            {
                report.problem(
                    export.file(),
                    "is stale: it no longer matches the policy and the secrets",
                    format!("run `{}` and commit the result", export.command()),
                );
            }
        }
    }
    if scan_keys {
        for (rel, blob) in files.iter() {
            if rel.starts_with("secrets/")
                || policy.as_ref().is_some_and(|p| p.allows_private_key(rel))
            {
                continue;
            }
            if let Blob::File(data) = blob
                && let Some(kind) = private_key_material(data)
            {
                report.problem(
                    rel,
                    format!("contains {kind} outside secrets/"),
                    "remove it and encrypt it with `keys encrypt NAME`; if it was ever committed, rotate the key",
                );
            }
        }
    }
    report.secrets.sort_by(|a, b| a.name.cmp(&b.name));
    report
}

/// What every secret is examined against.
struct Context<'a> {
    lock: Option<&'a Lock>,
    /// The policy, when it and the fleet loaded.
    policy: Option<&'a Policy>,
    /// Each rule's recipients, by rule index (`None` when they do not resolve).
    resolved: &'a [Option<policy::Resolved>],
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
    fn problem(&mut self, at: &str, what: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Problem,
            at: at.to_string(),
            what: what.into(),
            fix: fix.into(),
        });
    }
}

impl Context<'_> {
    /// Examines the file at `rel` under `secrets/`: its header (parsed once, for
    /// validity and readers), its hash against the lock, and its readers against the
    /// lock and the policy.
    fn secret<'a>(&self, rel: &'a str, blob: &Blob) -> Examined<'a> {
        let mut out = Examined::default();
        let Blob::File(data) = blob else {
            out.problem(
                rel,
                "is a symlink under secrets/",
                "replace it with the encrypted file itself",
            );
            return out;
        };
        let base = rel.rsplit('/').next().unwrap_or(rel);
        if base.starts_with(crate::fsutil::TEMP_PREFIX) {
            out.problem(
                rel,
                "is a temp file left by an interrupted write",
                "run `keys rekey`, which removes it (or delete it)",
            );
            return out;
        }
        let Some((name, format)) = policy::secret_of_path(rel) else {
            out.problem(
                rel,
                "is not a secret file (unknown extension; plaintext?)",
                "move it out of secrets/, or encrypt its content with `keys encrypt NAME`",
            );
            out.secret = Some(Secret {
                name: rel.trim_start_matches("secrets/").to_string(),
                format: None,
                path: Some(rel.to_string()),
                readers: Vec::new(),
                status: Status::Unknown,
            });
            return out;
        };
        let fix_name = |s: &str| s.replace("NAME", name);
        if let Err(reason) = layout::check_secret_name(name) {
            out.problem(
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
        match (entry, self.lock) {
            (None, Some(_)) => {
                out.problem(
                    rel,
                    "is not in secrets/keys.lock (added outside keys)",
                    fix_name("encrypt it with keys: `keys encrypt --force NAME`, or remove it"),
                );
                status = worst(status, Status::Unknown);
            }
            (Some(e), _) if e.format != format => {
                out.problem(
                    rel,
                    format!("keys.lock records format {} for it", e.format.name()),
                    fix_name(REENCRYPT),
                );
                status = worst(status, Status::Drift);
            }
            (Some(e), _) if e.sha256 != lock::sha256_hex(data) => {
                out.problem(
                    rel,
                    "was changed outside keys (its SHA-256 differs from keys.lock)",
                    fix_name(&format!(
                        "if the change is yours, {REENCRYPT}; otherwise restore it from git"
                    )),
                );
                status = worst(status, Status::Modified);
            }
            _ => {}
        }
        match (rule, self.policy) {
            (None, Some(_)) => {
                out.problem(
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
                        .and_then(|r| r.differs_from(&want.recipients))
                    {
                        out.problem(
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
        out.secret = Some(Secret {
            name: name.to_string(),
            format: Some(format),
            path: Some(rel.to_string()),
            readers: rule.map(|(_, r)| r.labels.clone()).unwrap_or_default(),
            status,
        });
        out
    }
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

/// Names the private key material in `data`, if any: an age identity, or a PEM or
/// OpenSSH private key block with a body. A mention of the marker alone (in code or
/// docs) is not reported.
pub fn private_key_material(data: &[u8]) -> Option<&'static str> {
    for prefix in [&b"AGE-SECRET-KEY-"[..], b"age-secret-key-"] {
        for at in memchr::memmem::find_iter(data, prefix) {
            let rest = &data[at + prefix.len()..];
            let token: &[u8] = &rest[..rest
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))
                .unwrap_or(rest.len())];
            if let Some(one) = token.iter().rposition(|b| *b == b'1') {
                let body = &token[one + 1..];
                if body.len() >= 50
                    && body
                        .iter()
                        .all(|b| BECH32.contains(&b.to_ascii_lowercase()))
                {
                    return Some("an age identity (AGE-SECRET-KEY-…)");
                }
            }
        }
    }
    for at in memchr::memmem::find_iter(data, b"-----BEGIN ") {
        let rest = &data[at + 11..];
        let Some(end) = memchr::memmem::find(&rest[..rest.len().min(64)], b"-----") else {
            continue;
        };
        if !rest[..end].ends_with(b"PRIVATE KEY") {
            continue;
        }
        let mut body = &rest[end + 5..];
        if body.starts_with(b"\r") {
            body = &body[1..];
        }
        let Some(body) = body.strip_prefix(b"\n") else {
            continue;
        };
        let run = body
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            .count();
        if run >= 40 || body.starts_with(b"Proc-Type:") {
            return Some("a private key block (-----BEGIN … PRIVATE KEY-----)");
        }
    }
    let at_line_start = |needle: &[u8]| {
        memchr::memmem::find_iter(data, needle).any(|i| i == 0 || data[i - 1] == b'\n')
    };
    if at_line_start(b"PuTTY-User-Key-File-") && at_line_start(b"Private-Lines: ") {
        return Some("a PuTTY private key");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_is_found_but_mentions_are_not() {
        let age_id = concat!(
            "AGE-SECRET-",
            "KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS3290GG"
        );
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n";
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n";
        for hit in [
            age_id.to_string(),
            format!("x = \"{}\"", age_id.to_lowercase()),
            pem.into(),
            rsa.into(),
        ] {
            assert!(private_key_material(hit.as_bytes()).is_some(), "{hit}");
        }
        for miss in [
            "if line.starts_with(\"AGE-SECRET-KEY-1\") {",
            "const BEGIN: &str = \"-----BEGIN OPENSSH PRIVATE KEY-----\";",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n",
            "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhYmNk\n",
        ] {
            assert_eq!(private_key_material(miss.as_bytes()), None, "{miss}");
        }
    }
}
