//! One file under `secrets/` examined against the lock and the policy: its format
//! and name, its hash, its rule, and the recipients it is encrypted to.

use super::kind::Kind;
use super::life::{self, name_seen};
use super::report::{Finding, Fix, Secret, Severity, Status};
use crate::format::{self, lockfile, lockfile::Lockfile};
use crate::layout;
use crate::ops::readers::Labels;
use crate::policy::{self, Policy};
use crate::snapshot::Blob;

const REENCRYPT: &str = "re-encrypt it with keys: `keys decrypt NAME | keys encrypt --force NAME`";

/// What every secret is examined against.
pub(super) struct Context<'a> {
    pub(super) lock: Option<&'a Lockfile>,
    /// The policy, when it and the fleet loaded.
    pub(super) policy: Option<&'a Policy>,
    /// Each rule's recipients, by rule index (`None` when they do not resolve).
    pub(super) resolved: &'a [Option<policy::Resolved>],
    /// The fleet's readers by the short ids of their keys.
    pub(super) labels: &'a Labels,
    pub(super) now: std::time::SystemTime,
}

/// What examining one file under `secrets/` found.
#[derive(Default)]
pub(super) struct Examined<'a> {
    pub(super) findings: Vec<Finding>,
    pub(super) secret: Option<Secret>,
    /// Its secret name, when it is a secret.
    pub(super) name: Option<&'a str>,
    /// The rule that matches it.
    pub(super) rule: Option<usize>,
}

impl Examined<'_> {
    fn problem(&mut self, kind: Kind, at: &str, what: impl Into<String>, fix: impl Into<Fix>) {
        self.findings
            .push(Finding::new(Severity::Problem, kind, at, what, fix));
    }
}

impl Context<'_> {
    /// Examines the file at `rel` under `secrets/`: its header (parsed once, for
    /// validity and readers), its hash against the lock, and its readers against the
    /// lock and the policy.
    pub(super) fn secret<'a>(&self, rel: &'a str, blob: &Blob) -> Examined<'a> {
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
            life::warnings(
                &mut out.findings,
                self.now,
                rel,
                name,
                rule.map(|(_, r)| r),
                e,
                &seen,
            );
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

fn worst(a: Status, b: Status) -> Status {
    if a == Status::Ok { b } else { a }
}
