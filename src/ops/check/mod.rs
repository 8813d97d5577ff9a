//! `keys check` and `keys ls`: what the repository's secrets are, compared with the
//! policy and `keys.lock`, and a guard against plaintext and private keys. Read-only,
//! needs no identity, and reads through a `Snapshot` so the pre-commit hook checks
//! the staged blobs rather than the work tree.

use std::collections::BTreeSet;

use rayon::prelude::*;

use super::export::Export;
use crate::format;
use crate::format::Format;
use crate::format::lockfile::Lockfile;
use crate::layout;
use crate::policy::{self, Fleet, Policy};
use crate::snapshot::{Blob, Snapshot};

mod history;
mod interrupted;
mod key_material;
mod kind;
mod life;
mod local;
mod public_half;
mod report;
mod rules;
mod secret;
mod template;

pub use history::lock_history;
pub use interrupted::scratch_leftovers;
pub use key_material::private_key_material;
pub use kind::Kind;
pub use life::{day, seen_text};
pub use report::{Finding, Fix, Report, Secret, Severity, Status};
use secret::{Context, Examined};

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
    key_material::private_keys(files, policy, &mut report);
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
        public_half::stored_key(&mut report, fleet, &seen, rel, name, data);
    }
    public_half::generated_keys(&mut report, files, context.policy, &seen, &generated_halves);
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
                    seen: life::name_seen(&e.seen, &labels),
                });
            }
        }
    }
    if let Some(policy) = policy {
        template::dangling(&mut report, policy);
        rules::check(&mut report, policy, &used_rules);
    }
    interrupted::journals(files, &mut report);
    if let (Some(fleet), Some(policy)) = (fleet, policy) {
        exports(&mut report, files, fleet, policy);
    }
    interrupted::plaintext_temp_files(files, &mut report);
    local::records(files, fleet, &mut report);
    report.secrets.sort_by(|a, b| a.name.cmp(&b.name));
    report
}

/// Checks each export file keys wrote against what the policy and the secrets make
/// of it now.
fn exports(report: &mut Report, files: &Snapshot, fleet: &Fleet, policy: &Policy) {
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
