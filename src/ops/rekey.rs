//! `keys rekey`: bring every secret to the recipients its policy resolves to now.
//! It plans from the policy and `keys.lock` (never by trial decryption), then does
//! all the work in memory — `.age` files decrypted and re-encrypted, sops files'
//! data keys re-wrapped with values, IVs and MAC untouched — and writes only if every
//! file succeeded: temp files, one `syncfs`, renames, the lock last. A write that
//! fails puts every file back as it was. A journal marks the write so a killed run is
//! reported and finished by the next one; every rewritten file is then proven to open
//! with an identity that was used.

use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;

use super::secret::Workspace;
use crate::crypto;
use crate::error::{Error, Location, Result};
use crate::format::sops;
use crate::fsutil;
use crate::identity::{Identities, Prompt};
use crate::lock::{self, Lock};
use crate::policy::{Format, Reader, Rule, secret_path};
use crate::recipient::Recipient;

/// The journal of a rekey in progress, at the repository root.
pub const JOURNAL: &str = ".keys-journal";

/// One secret whose recipients change.
pub struct Change {
    pub name: String,
    pub format: Format,
    pub path: PathBuf,
    pub added: usize,
    pub removed: usize,
    recipients: Vec<Recipient>,
    fingerprints: Vec<String>,
    armor: bool,
}

pub struct Plan {
    pub changes: Vec<Change>,
    /// Secrets the plan leaves alone, and why.
    pub skipped: Vec<(String, String)>,
    /// The lock is not as `keys` writes it now (an older lock's full fingerprints,
    /// lines out of order): rewriting it changes no secret.
    pub relock: bool,
    lock: Lock,
}

/// Whether a rule gives host `host` (or a container on it) a key.
fn names_host(rule: &Rule, host: &str, ws: &Workspace) -> Result<bool> {
    for reader in &rule.readers {
        let named = match reader {
            Reader::Host(h) => h == host,
            Reader::Container(c) => ws.fleet.container(c)?.is_some_and(|(h, _)| h.name == host),
            Reader::Admin(_) => false,
        };
        if named {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a rekey would change, from the policy and the lock alone. With `host`,
/// only secrets whose rule names that host (or one of its containers).
pub fn plan(ws: &mut Workspace, host: Option<&str>) -> Result<Plan> {
    if let Some(h) = host
        && !ws.fleet.has_host(h)
    {
        return Err(crate::error::usage(
            format!("no host {h} (no recipients/hosts/{h}.yaml)"),
            "`keys status` lists the hosts",
        ));
    }
    let text = ws.lock()?.text();
    let lock = Lock::parse(text)?;
    let relock = !text.is_empty() && lock.render() != text;
    // Secrets a killed run may have rewritten without recording them in the lock:
    // they are rewritten again whatever the lock says.
    let journal = fsutil::read_optional(&ws.repo.root().join(JOURNAL))?.unwrap_or_default();
    let journaled: std::collections::HashSet<String> = String::from_utf8_lossy(&journal)
        .lines()
        .map(str::to_string)
        .collect();
    let mut changes = Vec::new();
    let mut skipped = Vec::new();
    let mut resolved: HashMap<usize, (Vec<Recipient>, Vec<String>)> = HashMap::new();
    for (name, entry) in &lock.entries {
        let Some((i, rule)) = ws.policy.rule_for(name) else {
            skipped.push((name.clone(), "no policy rule matches it".into()));
            continue;
        };
        if rule.format != entry.format {
            skipped.push((
                name.clone(),
                format!(
                    "its rule says format {} but it is {}; re-encrypt it with `keys decrypt {name} | keys encrypt --force {name}`",
                    rule.format.name(),
                    entry.format.name()
                ),
            ));
            continue;
        }
        let unfinished = journaled.contains(name);
        if let Some(h) = host
            && !names_host(rule, h, ws)?
            && !unfinished
        {
            continue;
        }
        let (recipients, fingerprints) = match resolved.entry(i) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let r = ws.policy.resolve(rule, &ws.fleet)?;
                e.insert((r.recipients, r.fingerprints))
            }
        };
        if *fingerprints == entry.recipients && !unfinished {
            continue;
        }
        changes.push(Change {
            name: name.clone(),
            format: entry.format,
            path: ws.repo.root().join(secret_path(name, entry.format)),
            added: fingerprints
                .iter()
                .filter(|f| !entry.recipients.contains(f))
                .count(),
            removed: entry
                .recipients
                .iter()
                .filter(|f| !fingerprints.contains(f))
                .count(),
            recipients: recipients.clone(),
            fingerprints: fingerprints.clone(),
            armor: rule.armor,
        });
    }
    Ok(Plan {
        changes,
        skipped,
        relock,
        lock,
    })
}

/// The store of a sops format (every format but age has one).
fn sops_store(format: Format, at: &Location) -> Result<&'static dyn sops::tree::Store> {
    sops::store(format).ok_or_else(|| Error::Corrupt {
        at: at.clone(),
        reason: "unsupported sops format".into(),
    })
}

/// Re-encrypts one secret in memory for its new recipients.
fn rekey_one(change: &Change, data: &[u8], ids: &Identities) -> Result<Vec<u8>> {
    let at = Location::file(&change.path);
    match change.format {
        Format::Age => {
            let plain = crypto::try_decrypt(data, ids, &at)?.ok_or_else(|| Error::NoIdentity {
                at: at.clone(),
                searched: ids.searched().to_vec(),
            })?;
            crypto::encrypt(&plain, &change.recipients, change.armor, &at)
        }
        format => {
            let store = sops_store(format, &at)?;
            let doc = store.load_encrypted(data, &at.file)?;
            let doc = sops::seal::rewrap(&doc, ids, &change.recipients, &at)?;
            store.emit_encrypted(&doc)
        }
    }
}

/// Proves a rewritten file opens with the identities used (no lockout).
fn verify(change: &Change, data: &[u8], ids: &Identities) -> Result<()> {
    let at = Location::file(&change.path);
    let opened = match change.format {
        Format::Age => crypto::try_decrypt(data, ids, &at)?.is_some(),
        format => {
            let store = sops_store(format, &at)?;
            let doc = store.load_encrypted(data, &at.file)?;
            let found = sops::seal::audit(&doc).map_err(|reason| Error::Corrupt {
                at: at.clone(),
                reason,
            })?;
            let want: Vec<String> = change.recipients.iter().map(Recipient::to_string).collect();
            if found.len() != want.len() || !want.iter().all(|w| found.contains(w)) {
                return Err(Error::Corrupt {
                    at,
                    reason: "after the rekey its recipients are not the policy's".into(),
                });
            }
            sops::seal::rewrap(&doc, ids, &change.recipients, &at).is_ok()
        }
    };
    if opened {
        Ok(())
    } else {
        Err(Error::Corrupt {
            at,
            reason: "after the rekey no identity that was used opens it".into(),
        })
    }
}

/// Finishes what a killed run left: temp files under `secrets/`, and a journal whose
/// run had already written the lock. Returns how many temp files were removed.
pub fn tidy(ws: &Workspace) -> Result<usize> {
    let removed = fsutil::remove_leftovers(&ws.repo.secrets_dir())?;
    let journal = ws.repo.root().join(JOURNAL);
    if std::fs::symlink_metadata(&journal).is_ok() {
        fsutil::remove(&journal)?;
    }
    Ok(removed)
}

/// Writes the lock as `keys` writes it now, for a plan with no changes: no secret
/// is touched, so no identity is needed.
pub fn relock(ws: &Workspace, plan: &Plan) -> Result<()> {
    fsutil::write_atomic(
        &ws.repo.lock_file(),
        plan.lock.render().as_bytes(),
        fsutil::PUBLIC,
    )
}

/// What `apply` did.
pub struct Applied {
    pub rewritten: usize,
    pub leftovers_removed: usize,
}

/// Rewrites every planned secret, or nothing if any of them fails. `progress` is
/// called once per secret re-encrypted (from several threads).
pub fn apply(
    ws: &mut Workspace,
    plan: Plan,
    identities: &mut Identities,
    prompt: &dyn Prompt,
    progress: &(dyn Fn() + Sync),
) -> Result<Applied> {
    let leftovers_removed = fsutil::remove_leftovers(&ws.repo.secrets_dir())?;
    let journal = ws.repo.root().join(JOURNAL);
    if plan.changes.is_empty() {
        tidy(ws)?;
        return Ok(Applied {
            rewritten: 0,
            leftovers_removed,
        });
    }
    // Each passphrase is asked for once per run, not per file.
    if identities.has_locked() {
        identities.unlock_all(prompt)?;
    }
    let ids: &Identities = identities;
    let results: Vec<Result<(PathBuf, Vec<u8>, u32)>> = plan
        .changes
        .par_iter()
        .map(|c| {
            let data = fsutil::read(&c.path)?;
            let out = rekey_one(c, &data, ids)?;
            progress();
            Ok((c.path.clone(), out, fsutil::PUBLIC))
        })
        .collect();
    let mut files = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    let mut first = None;
    for r in results {
        match r {
            Ok(f) => files.push(f),
            Err(e) => {
                failures.push(e.to_string());
                first.get_or_insert(e);
            }
        }
    }
    if let Some(first) = first {
        return Err(Error::Batch {
            failures,
            first: Box::new(first),
        });
    }
    let names: String = plan
        .changes
        .iter()
        .map(|c| format!("{}\n", c.name))
        .collect();
    let mut lock = plan.lock;
    for (change, (_, data, _)) in plan.changes.iter().zip(&files) {
        lock.entries.insert(
            change.name.clone(),
            lock::Entry {
                format: change.format,
                sha256: lock::sha256_hex(data),
                recipients: change.fingerprints.clone(),
            },
        );
    }
    let lock_file = ws.repo.lock_file();
    // What the journal, the secrets and the lock hold now: if any write fails, they
    // are put back (the journal last, for a kill during that) and nothing changed.
    let backup = fsutil::Backup::read(
        std::iter::once(journal.as_path())
            .chain(files.iter().map(|(path, _, _)| path.as_path()))
            .chain(std::iter::once(lock_file.as_path())),
    );
    let lock_text = lock.render();
    let written = fsutil::write_atomic(&journal, names.as_bytes(), fsutil::PUBLIC)
        .and_then(|()| fsutil::write_many(&files))
        .and_then(|()| fsutil::write_atomic(&lock_file, lock_text.as_bytes(), fsutil::PUBLIC))
        .and_then(|()| fsutil::remove(&journal));
    if let Err(e) = written {
        backup.restore();
        return Err(e);
    }
    let checked: Vec<Result<()>> = plan
        .changes
        .par_iter()
        .map(|c| verify(c, &fsutil::read(&c.path)?, ids))
        .collect();
    checked.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(Applied {
        rewritten: files.len(),
        leftovers_removed,
    })
}
