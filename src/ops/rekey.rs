//! `keys rekey`: bring every secret to the recipients its policy resolves to now.
//! It plans from the policy, `keys.lock` and each file's own header (never by trial
//! decryption; the lock alone is not trusted, as anyone can edit it), reading each
//! file once. Then, on every core, each secret is re-encrypted in memory — `.age`
//! files decrypted and re-encrypted, sops files' data keys re-wrapped with values,
//! IVs and MAC untouched (or, for a file that loses a reader, every value sealed
//! under a new data key) — proven to open with an identity that was used (its MAC
//! checked unless it did not match before) and written to a temp file beside it.
//! Only if every file succeeded are they put in place: one `syncfs`, renames, the
//! lock last. A sops file whose MAC does not match its values has not failed
//! (re-wrapping needs no MAC): it is rewritten as it was, data key aside, and named.
//! A write that fails puts every file back as it was (from what the plan read). A
//! journal marks the write so a killed run is reported and finished by the next one;
//! every rewritten file is then read back and must be, byte for byte (by SHA-256),
//! the one proven.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::workspace::Workspace;
use crate::crypto;
use crate::crypto::age::Armor;
use crate::crypto::sops::Wrap;
use crate::error::{Error, Location, Result};
use crate::format::lockfile::{self, Lockfile, LockfileText};
use crate::format::sops::metadata::{Metadata, Shamir};
use crate::format::{self, sops};
use crate::format::{Format, secret_path};
use crate::fsutil;
use crate::identity::{Identities, Prompt};
use crate::layout;
use crate::policy::{Reader, Rule};
use crate::recipient::Recipient;

/// Which secrets a rekey rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Those whose lock entry or header differs from the policy, and those a killed
    /// run may have rewritten.
    Outdated,
    /// Every secret, whatever the lock and the headers say (`--all`), each sops
    /// file under a new data key.
    All,
}

/// Why a secret is rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `keys.lock` records other recipients than the policy resolves to.
    Recipients,
    /// The lock agrees with the policy but the file's own header does not: what
    /// differs, in counts.
    Header(String),
    /// The lock does not list it (sops or agenix wrote it), and its header differs
    /// from the policy: what differs, in counts.
    Unlisted(String),
    /// A killed run may have rewritten it without recording it in the lock.
    Unfinished,
    /// Asked for (`--all`), though nothing differs.
    Forced,
}

/// One secret whose recipients change.
pub struct Change {
    pub name: String,
    pub format: Format,
    pub path: PathBuf,
    pub added: usize,
    pub removed: usize,
    pub reason: Reason,
    /// Shared by every secret of its rule.
    recipients: Arc<[Recipient]>,
    /// A sops rule's key groups, when it has them.
    shamir: Option<Arc<Shamir>>,
    fingerprints: Arc<[String]>,
    armor: bool,
    /// The rule's sops indentation, which the rewritten file is laid out with.
    indent: Option<u8>,
    /// The file as the plan read it, and its mode: what `apply` re-encrypts, and
    /// puts back should a write fail.
    data: Vec<u8>,
    mode: u32,
    /// The file, kept open from the plan's read where there is room, so that the
    /// rename over it does not free it (see `fsutil::FileRoom`).
    held: Option<std::fs::File>,
}

pub struct Plan {
    pub changes: Vec<Change>,
    /// Secrets the plan leaves alone, and why.
    pub skipped: Vec<(String, Skip)>,
    /// The lock is not as `keys` writes it now (an older lock's full fingerprints,
    /// lines out of order): rewriting it changes no secret.
    pub relock: bool,
    /// Every secret is rewritten, whatever the lock and the headers say.
    rewrite: Rewrite,
    lock: HeldLock,
    /// Open files the run may hold: each file the plan read and each one `apply`
    /// writes, while there is room.
    room: fsutil::FileRoom,
    /// Readers as an earlier state of the fleet named them (before a host's key was
    /// replaced), by the short ids of their keys.
    earlier: super::readers::Labels,
    /// Whether the files replaced may be closed by more threads than the pool has
    /// (`fsutil::close_all`); not when the user bounded the threads (`--jobs`).
    pub close_beyond_pool: bool,
}

impl Plan {
    /// Names readers as an earlier state of the fleet did, where the fleet now does
    /// not: what names a reader taken away from a secret in the lock.
    pub fn name_readers(&mut self, earlier: &super::readers::Labels) {
        self.earlier.extend(earlier.clone());
    }
}

/// The lock as the plan read it, until the new one is written. When it is as `keys`
/// writes it (sorted, each secret once: the usual case), only its text is held, about a
/// third of the memory of every entry parsed: the new lock is that text with the
/// rekeyed secrets' lines, each parsed again, rewritten.
enum HeldLock {
    Parsed(Lockfile),
    Text(String),
}

impl HeldLock {
    /// The lock as `keys` writes it now.
    fn render(&self) -> String {
        match self {
            HeldLock::Parsed(lock) => lock.render(),
            HeldLock::Text(text) => text.clone(),
        }
    }
}

/// A rekeyed secret's line in the new lock: what it is encrypted to now and the hash
/// of the file as written.
struct NewLine {
    name: String,
    format: Format,
    fingerprints: Arc<[String]>,
    sha256: String,
    /// The new file's length.
    len: u64,
}

impl NewLine {
    /// The entry, from the secret's entry before the rekey (`old`) if it had one.
    fn entry(
        &self,
        old: Option<&lockfile::Entry>,
        label: &dyn Fn(&str) -> Option<String>,
    ) -> lockfile::Entry {
        let recipients = self.fingerprints.to_vec();
        match old {
            // The value is the same: the readers taken away have seen it.
            Some(old) => old.rekeyed(self.sha256.clone(), recipients, label),
            None => lockfile::Entry {
                format: self.format,
                sha256: self.sha256.clone(),
                recipients,
                changed: None,
                seen: Vec::new(),
            },
        }
    }
}

/// Writes the lock after a rekey to `out`: `lines` (in the lock's order) for the
/// secrets rekeyed, every other line as it was.
fn write_lock(
    out: &mut dyn std::io::Write,
    lock: &mut HeldLock,
    lines: &[NewLine],
    label: &dyn Fn(&str) -> Option<String>,
) -> std::io::Result<()> {
    let text = match lock {
        HeldLock::Parsed(lock) => {
            for new in lines {
                let entry = new.entry(lock.entries.get(&new.name), label);
                lock.entries.insert(new.name.clone(), entry);
            }
            return lock.write_to(out);
        }
        HeldLock::Text(text) => text,
    };
    let mut lines = lines.iter().peekable();
    for line in text.split_inclusive('\n') {
        let name = line.split([' ', '\n']).next().unwrap_or_default();
        let Some(new) = lines.next_if(|new| !line.starts_with('#') && new.name == name) else {
            out.write_all(line.as_bytes())?;
            continue;
        };
        // The whole text parsed when the plan read it: this line parses again.
        let old = Lockfile::parse(line).map_err(std::io::Error::other)?;
        let entry = new.entry(old.entries.get(name), label);
        out.write_all(lockfile::line(name, &entry).as_bytes())?;
    }
    match lines.next() {
        None => Ok(()),
        Some(new) => Err(std::io::Error::other(format!(
            "{} is not in secrets/keys.lock as the rekey planned it",
            new.name
        ))),
    }
}

/// What a rule resolves to: its recipients, their fingerprints, its key groups.
type Wanted = (Arc<[Recipient]>, Arc<[String]>, Option<Arc<Shamir>>);

/// Resolves rule `i` into `resolved`, once.
fn resolve_once(
    resolved: &mut HashMap<usize, Wanted>,
    i: usize,
    rule: &Rule,
    ws: &Workspace,
) -> Result<()> {
    if let std::collections::hash_map::Entry::Vacant(e) = resolved.entry(i) {
        let r = ws.policy.resolve(rule, &ws.fleet)?;
        e.insert((
            r.recipients.into(),
            r.fingerprints.into(),
            r.shamir.map(Arc::new),
        ));
    }
    Ok(())
}

/// Whether the lock, as the plan read it, lists `name`.
fn lock_lists(
    parsed: &Option<Lockfile>,
    written: &Option<Vec<(&str, lockfile::Entry)>>,
    name: &str,
) -> bool {
    match (parsed, written) {
        (Some(lock), _) => lock.entries.contains_key(name),
        (None, Some(written)) => written.binary_search_by(|(n, _)| (*n).cmp(name)).is_ok(),
        (None, None) => false,
    }
}

/// Why the plan leaves a secret alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Skip {
    /// No policy rule matches its name.
    NoRule,
    /// Its rule says one format and the lock another: it must be encrypted anew.
    OtherFormat { rule: Format, file: Format },
    /// The lock lists it and its file (relative to the root) is missing.
    Missing { rel: String },
    /// Its file is not a valid file of its format.
    Invalid {
        rel: String,
        format: Format,
        reason: String,
    },
}

/// Whether a rule gives host `host` (or a container on it) a key.
fn names_host(rule: &Rule, host: &str, ws: &Workspace) -> Result<bool> {
    for reader in &rule.readers {
        let named = match reader {
            Reader::Host(h) => h == host,
            Reader::Container(c) => ws.fleet.container(c)?.is_some_and(|(h, _)| h.name == host),
            // A user's own key does not change with the host's.
            Reader::Admin(_) | Reader::Transit(_) | Reader::User { .. } => false,
        };
        if named {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A secret the plan reads: what its lock entry says against what its rule resolves
/// to (the entry itself is not kept).
struct Candidate {
    name: String,
    format: Format,
    rule: usize,
    armor: bool,
    indent: Option<u8>,
    unfinished: bool,
    /// The lock lists the recipients the rule resolves to.
    lock_agrees: bool,
    /// Recipients the rule resolves to that the lock does not list, and the reverse.
    added: usize,
    removed: usize,
    /// The lock lists it. A secret file it does not list (sops or agenix wrote it)
    /// is rewritten only when its own header differs from the policy.
    listed: bool,
}

/// What the plan found in one file.
enum Found {
    /// To be rewritten.
    Change {
        data: Vec<u8>,
        mode: u32,
        held: Option<std::fs::File>,
        /// What its header says that the policy does not.
        differs: Option<String>,
    },
    /// The lock and its header agree with the policy.
    Same,
    /// Why it is left alone.
    Skip(Skip),
}

/// What a rekey would change, from the policy, the lock and each file's own header
/// (never by trial decryption): a secret is rewritten when the lock or its header
/// differs from the policy, as the lock is text anyone can edit. With `host`, only
/// secrets whose rule names that host (or one of its containers).
pub fn plan(ws: &mut Workspace, host: Option<&str>, rewrite: Rewrite) -> Result<Plan> {
    if let Some(h) = host
        && !ws.fleet.has_host(h)
    {
        return Err(crate::policy::fleet::no_host(h));
    }
    // The lock's text is the plan's from here on (the workspace reads it again if asked).
    let text = std::mem::replace(ws.lockfile()?, LockfileText::new(String::new())).into_text();
    ws.forget_lockfile();
    // A lock as keys writes it (the usual case) is read a line at a time on every
    // core, and only its text is held afterwards: its entries parsed take about three
    // times the memory of its text. Any other is parsed whole, to be written anew.
    let written = lockfile::entries_as_written(&text);
    let relock = !text.is_empty() && written.is_none();
    let parsed = if written.is_some() {
        None
    } else {
        Some(Lockfile::parse(&text)?)
    };
    // Secrets a killed run may have rewritten without recording them in the lock:
    // they are rewritten again whatever the lock says.
    let journal =
        fsutil::read_optional(&ws.repo.root().join(layout::REKEY_JOURNAL))?.unwrap_or_default();
    let journaled: std::collections::HashSet<String> = String::from_utf8_lossy(&journal)
        .lines()
        .map(str::to_string)
        .collect();
    let mut skipped = Vec::new();
    let mut resolved: HashMap<usize, Wanted> = HashMap::new();
    // Sized once: a vector grown by doubling leaves the copies it outgrew in the heap.
    let mut candidates = Vec::with_capacity(text.matches('\n').count());
    // Each secret's rule, its glob matched on every core.
    let entries: Vec<(&str, &lockfile::Entry)> = match (&parsed, &written) {
        (Some(lock), _) => lock.entries.iter().map(|(n, e)| (n.as_str(), e)).collect(),
        (None, Some(written)) => written.iter().map(|(n, e)| (*n, e)).collect(),
        (None, None) => Vec::new(),
    };
    let policy = &ws.policy;
    let rules: Vec<Option<(usize, &Rule)>> = entries
        .par_iter()
        .map(|(name, _)| policy.rule_for(name))
        .collect();
    for ((name, entry), rule) in entries.into_iter().zip(rules) {
        let Some((i, rule)) = rule else {
            skipped.push((name.to_string(), Skip::NoRule));
            continue;
        };
        if rule.format != entry.format {
            skipped.push((
                name.to_string(),
                Skip::OtherFormat {
                    rule: rule.format,
                    file: entry.format,
                },
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
        resolve_once(&mut resolved, i, rule, ws)?;
        let fingerprints = &resolved[&i].1;
        let had = &entry.recipients;
        candidates.push(Candidate {
            name: name.to_string(),
            format: entry.format,
            rule: i,
            armor: rule.armor,
            indent: rule.sops.indent,
            unfinished,
            lock_agrees: **fingerprints == *had,
            added: fingerprints.iter().filter(|f| !had.contains(f)).count(),
            removed: had.iter().filter(|f| !fingerprints.contains(f)).count(),
            listed: true,
        });
    }
    // Secret files the lock does not list, under a rule of their format: `keys check`
    // reports one whose header differs from the policy, and this rekey rewrites it.
    let mut unlisted = Vec::new();
    for (name, format, _) in super::workspace::secret_files(&ws.repo)? {
        // Not a temp file left by a killed write, nor any other name keys refuses.
        if layout::check_secret_name(&name).is_err() || lock_lists(&parsed, &written, &name) {
            continue;
        }
        let Some((i, rule)) = ws.policy.rule_for(&name) else {
            continue;
        };
        if rule.format != format {
            continue;
        }
        if let Some(h) = host
            && !names_host(rule, h, ws)?
        {
            continue;
        }
        resolve_once(&mut resolved, i, rule, ws)?;
        unlisted.push(Candidate {
            name,
            format,
            rule: i,
            armor: rule.armor,
            indent: rule.sops.indent,
            unfinished: false,
            lock_agrees: true,
            added: 0,
            removed: 0,
            listed: false,
        });
    }
    candidates.extend(unlisted);
    drop(written);
    // Each file is read once, header only, on every core.
    let root = ws.repo.root();
    let reads = fsutil::Reads::default();
    // Room for each file read and, in `apply`, for the one written in its place.
    let room = fsutil::FileRoom::for_up_to(candidates.len().saturating_mul(2));
    let found: Vec<Result<Found>> = candidates
        .par_iter()
        .map(|c| {
            let rel = secret_path(&c.name, c.format);
            let path = root.join(&rel);
            let Some((data, mode, file)) = reads.read_optional_open(&path)? else {
                return Ok(Found::Skip(Skip::Missing { rel }));
            };
            let (recipients, _, shamir) = &resolved[&c.rule];
            // A sops file's parsed document is not kept: `apply` parses it again
            // where it is rewritten, so the plan holds only the bytes. Where the lock
            // already differs from the policy the file is rewritten whatever its
            // header says, so a sops file's is not tallied (it is still read whole).
            let loaded = match c.format {
                Format::Age => format::age::header(&data).map(|s| Some(format::Readers::Age(s))),
                f if !c.lock_agrees => sops::check(f, &data).map(|()| None),
                f => sops::load(f, &data).map(|(_, r)| Some(format::Readers::Sops(r))),
            };
            match loaded {
                Ok(readers) => {
                    let differs =
                        readers.and_then(|r| r.differs_from(recipients, shamir.as_deref()));
                    if differs.is_none()
                        && (!c.listed
                            || (c.lock_agrees && !c.unfinished && rewrite == Rewrite::Outdated))
                    {
                        return Ok(Found::Same);
                    }
                    Ok(Found::Change {
                        data,
                        mode,
                        held: room.keep(file),
                        differs,
                    })
                }
                Err(reason) => Ok(Found::Skip(Skip::Invalid {
                    rel,
                    format: c.format,
                    reason,
                })),
            }
        })
        .collect();
    let mut changes = Vec::with_capacity(found.len());
    // A secret the lock did not list gets a line of its own.
    let mut new_lines = false;
    for (c, found) in candidates.into_iter().zip(found) {
        let (data, mode, held, differs) = match found? {
            Found::Change {
                data,
                mode,
                held,
                differs,
            } => (data, mode, held, differs),
            Found::Same => continue,
            Found::Skip(why) => {
                skipped.push((c.name, why));
                continue;
            }
        };
        new_lines |= !c.listed;
        let (recipients, fingerprints, shamir) = &resolved[&c.rule];
        let reason = if !c.lock_agrees {
            Reason::Recipients
        } else if !c.listed {
            Reason::Unlisted(differs.unwrap_or_default())
        } else if let Some(what) = differs {
            Reason::Header(what)
        } else if c.unfinished {
            Reason::Unfinished
        } else {
            Reason::Forced
        };
        changes.push(Change {
            path: root.join(secret_path(&c.name, c.format)),
            name: c.name,
            format: c.format,
            added: c.added,
            removed: c.removed,
            reason,
            recipients: recipients.clone(),
            shamir: shamir.clone(),
            fingerprints: fingerprints.clone(),
            armor: c.armor,
            indent: c.indent,
            data,
            mode,
            held,
        });
    }
    // The lock is parsed whole to take a line it did not have.
    let lock = match parsed {
        Some(lock) if relock || new_lines => HeldLock::Parsed(lock),
        None if new_lines => HeldLock::Parsed(Lockfile::parse(&text)?),
        _ => HeldLock::Text(text),
    };
    Ok(Plan {
        changes,
        skipped,
        relock,
        rewrite,
        lock,
        room,
        earlier: super::readers::Labels::new(),
        close_beyond_pool: true,
    })
}

/// One secret re-encrypted, proven and written to a temp file beside it.
struct Staged {
    file: fsutil::Staged,
    sha256: String,
    len: u64,
    mac_mismatch: bool,
}

/// One secret re-encrypted in memory and proven.
struct Rekeyed {
    data: Vec<u8>,
    /// A sops file whose MAC did not match its values before the rekey.
    mac_mismatch: bool,
}

/// Re-encrypts one secret in memory for its new recipients, wrapping a sops file's
/// data key as `wrap` says, and proves the result (`verify`).
fn rekey_one(change: &Change, ids: &Identities, wrap: Wrap) -> Result<Rekeyed> {
    let at = Location::file(&change.path);
    let data = &change.data;
    match change.format {
        Format::Age => {
            let plain =
                crypto::age::try_decrypt(data, ids, &at)?.ok_or_else(|| Error::NoIdentity {
                    at: at.clone(),
                    searched: ids.searched().to_vec(),
                })?;
            let (data, proof) = crypto::age::encrypt_proven(
                &plain,
                &change.recipients,
                Armor::when(change.armor),
                ids,
                &at,
            )?;
            let readers = format::readers(Format::Age, &data).map_err(|r| corrupt(&at, r))?;
            // The identity's own stanza opened by the secret recomputed from its key,
            // else by trying every ready identity.
            let opened = match proof {
                Some(proof) => proof.opens(&data, ids, &at)?,
                None => crypto::age::try_decrypt(&data, ids, &at)?,
            }
            .is_some();
            verify(change, &readers, opened, &at)?;
            Ok(Rekeyed {
                data,
                mac_mismatch: false,
            })
        }
        format => {
            let store = sops::require_indented_store(format, change.indent, &at)?;
            let doc = store.load_encrypted(data, &at.file)?;
            let done = crypto::sops::rewrap(
                doc,
                ids,
                &change.recipients,
                change.shamir.as_deref(),
                wrap,
                &at,
            )?;
            let data = store.emit_encrypted(&done.doc)?;
            // What was written, as it reads back.
            let written = sops::require_store(format, &at)?.load_encrypted(&data, &at.file)?;
            let metadata = Metadata::from_items(&written.metadata)
                .map_err(|r| corrupt(&at, format!("bad sops metadata: {r}")))?;
            let opened = done
                .prove_opens(&written, &metadata, ids, &at)
                .is_ok_and(|mac_matches| done.mac_mismatch || mac_matches);
            let readers = format::Readers::Sops(sops::Readers::of_known(&metadata, &done.headers));
            verify(change, &readers, opened, &at)?;
            Ok(Rekeyed {
                data,
                mac_mismatch: done.mac_mismatch,
            })
        }
    }
}

fn corrupt(at: &Location, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        at: at.clone(),
        reason: reason.into(),
    }
}

/// Proves a rewritten file is for the policy's recipients, by its own header
/// (`readers`), and opens with the identities used (`opened`: no lockout): a sops
/// file's data key opens and every value authenticates, and its MAC matches unless
/// it did not before the rekey either. A sops data key wrapped in the very bytes it
/// was opened from is not decrypted again, nor are values whose ciphertext, MAC and
/// key are those checked before the rekey.
fn verify(change: &Change, readers: &format::Readers, opened: bool, at: &Location) -> Result<()> {
    if let Some(what) = readers.differs_from(&change.recipients, change.shamir.as_deref()) {
        return Err(corrupt(
            at,
            format!("after the rekey its recipients are not the policy's: {what}"),
        ));
    }
    if opened {
        Ok(())
    } else {
        Err(corrupt(
            at,
            "after the rekey no identity that was used opens it",
        ))
    }
}

/// Finishes what a killed run left: temp files under `secrets/`, and a journal whose
/// run had already written the lock. Returns how many temp files were removed.
pub fn tidy(ws: &Workspace) -> Result<usize> {
    let removed = fsutil::remove_leftovers(&ws.repo.secrets_dir())?;
    let journal = ws.repo.root().join(layout::REKEY_JOURNAL);
    if std::fs::symlink_metadata(&journal).is_ok() {
        fsutil::remove(&journal)?;
    }
    Ok(removed)
}

/// Writes the lock as `keys` writes it now, for a plan with no changes: no secret
/// is touched, so no identity is needed.
pub fn relock(ws: &Workspace, plan: &Plan) -> Result<()> {
    fsutil::write_atomic(
        &ws.repo.lockfile(),
        plan.lock.render().as_bytes(),
        fsutil::PUBLIC,
    )
}

/// What `apply` did.
pub struct Applied {
    pub rewritten: usize,
    pub leftovers_removed: usize,
    /// The sops files (relative to the root) rewritten though their MAC did not match
    /// their values: their data keys were re-wrapped, their values and MAC left as
    /// they were.
    pub mac_mismatch: Vec<String>,
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
    let journal = ws.repo.root().join(layout::REKEY_JOURNAL);
    if plan.changes.is_empty() {
        tidy(ws)?;
        return Ok(Applied {
            rewritten: 0,
            leftovers_removed,
            mac_mismatch: Vec::new(),
        });
    }
    // Each passphrase is asked for once per run, not per file.
    if identities.has_locked() {
        identities.unlock_all(prompt)?;
    }
    let ids: &Identities = identities;
    let wrap = match plan.rewrite {
        Rewrite::Outdated => Wrap::KeepStaying,
        Rewrite::All => Wrap::Anew,
    };
    fsutil::check_dirs(plan.changes.iter().map(|c| c.path.as_path()))?;
    // The journal names every secret about to change before any is touched; if the
    // run fails before the renames, it is put back as it was (normally: no journal).
    let names: String = plan
        .changes
        .iter()
        .map(|c| format!("{}\n", c.name))
        .collect();
    let journal_before = fsutil::Backup::read([journal.as_path()]);
    if let Err(e) = fsutil::write_atomic(&journal, names.as_bytes(), fsutil::PUBLIC) {
        journal_before.restore();
        return Err(e);
    }
    // On every core, each secret is re-encrypted in memory and proven (its header
    // names the policy's recipients and an identity that was used opens it); this
    // thread meanwhile writes each result to a temp file beside its secret, so the
    // writes hide behind the cryptography, every write and rename is this thread's,
    // and few rewritten files are held at once. The results come a batch of files at
    // a time, so the threads wake each other a few times, not once per file. Each
    // batch is a task of its own that an idle core can take: left to split as it
    // likes, the pool runs long runs of batches on one core, and at the end the
    // other cores wait for it.
    const BATCH: usize = 16;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Result<Rekeyed>>)>(4);
    let mut staged: Vec<Option<Staged>> = Vec::new();
    staged.resize_with(plan.changes.len(), || None);
    let mut failures: Vec<(usize, Error)> = Vec::new();
    let mut write_error = None;
    std::thread::scope(|scope| {
        let changes = &plan.changes;
        let room = &plan.room;
        scope.spawn(move || {
            changes
                .par_chunks(BATCH)
                .enumerate()
                .with_max_len(1)
                .for_each_with(tx, |tx, (b, batch)| {
                    let outs = batch.iter().map(|c| rekey_one(c, ids, wrap)).collect();
                    // The receiver outlives every sender.
                    let _ = tx.send((b * BATCH, outs));
                });
        });
        let results = rx
            .into_iter()
            .flat_map(|(first, outs): (usize, Vec<_>)| (first..).zip(outs));
        for (i, out) in results {
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    failures.push((i, e));
                    continue;
                }
            };
            if write_error.is_some() {
                continue;
            }
            match fsutil::stage_kept(&plan.changes[i].path, &out.data, fsutil::PUBLIC, room) {
                Ok(file) => {
                    staged[i] = Some(Staged {
                        file,
                        sha256: lockfile::sha256_hex(&out.data),
                        len: out.data.len() as u64,
                        mac_mismatch: out.mac_mismatch,
                    });
                    progress();
                }
                Err(e) => write_error = Some(e),
            }
        }
    });
    // A file whose MAC did not match before is no failure: re-wrapping its data key
    // needs no MAC and leaves it as it was. It is rewritten and named.
    failures.sort_by_key(|(i, _)| *i);
    let mut failures = failures.into_iter().map(|(_, e)| e);
    if let Some(first) = failures.next() {
        drop(staged);
        journal_before.restore();
        let mut all = vec![first.to_string()];
        all.extend(failures.map(|e| e.to_string()));
        return Err(Error::Batch {
            failures: all,
            first: Box::new(first),
        });
    }
    if let Some(e) = write_error {
        drop(staged);
        journal_before.restore();
        return Err(e);
    }
    let staged: Vec<Staged> = staged.into_iter().flatten().collect();
    let mut lock = plan.lock;
    let mut changes = plan.changes;
    // Each reader taken away is named as the fleet names its key now, else as it did.
    let mut labels = if changes.iter().any(|c| c.removed > 0) {
        super::readers::labels(&ws.fleet)
    } else {
        super::readers::Labels::new()
    };
    for (id, label) in plan.earlier {
        labels.entry(id).or_insert(label);
    }
    let label = |id: &str| labels.get(id).cloned();
    let mut files = Vec::with_capacity(staged.len());
    let mut lines = Vec::with_capacity(staged.len());
    // The files replaced, still open (`Change::held`).
    let mut held = Vec::with_capacity(staged.len());
    let mut mac_mismatch = Vec::new();
    for (change, s) in changes.iter_mut().zip(staged) {
        if s.mac_mismatch {
            mac_mismatch.push(secret_path(&change.name, change.format));
        }
        files.push(s.file);
        lines.push(NewLine {
            name: std::mem::take(&mut change.name),
            format: change.format,
            fingerprints: change.fingerprints.clone(),
            sha256: s.sha256,
            len: s.len,
        });
        held.extend(change.held.take());
    }
    let lock_file = ws.repo.lockfile();
    // What the journal, the secrets and the lock hold now (the secrets as the plan
    // read them): if any write fails, they are put back (the journal last, for a kill
    // during that) and nothing changed.
    let backup = journal_before
        .chain(fsutil::Backup::holding(
            changes
                .into_iter()
                .map(|c| (c.path, Some((c.data, c.mode)))),
        ))
        // The lock is kept under a second name (a hard link), not copied.
        .chain(fsutil::Backup::link([lock_file.as_path()]));
    // The new lock is written line by line, never held whole beside what the plan read.
    let result = fsutil::commit(files).and_then(|kept| {
        fsutil::write_atomic_with(&lock_file, fsutil::PUBLIC, |out| {
            write_lock(out, &mut lock, &lines, &label)
        })?;
        fsutil::remove(&journal)?;
        Ok(kept)
    });
    let kept = match result {
        Ok(kept) => kept,
        Err(e) => {
            backup.restore();
            return Err(e);
        }
    };
    drop((backup, lock));
    // Each file in place is the one proven to open (its hash is the new lock's),
    // while the files replaced are closed, and so freed. A file written and still
    // open is known by its inode, which no other file can have while it is open (and
    // which only its owner can write to); any other is read back and hashed.
    let reads = fsutil::Reads::default();
    let root = ws.repo.root();
    let check = || -> Vec<Result<()>> {
        lines
            .par_iter()
            .zip(kept)
            .map(|(new, kept)| {
                let path = root.join(secret_path(&new.name, new.format));
                let same = match kept {
                    Some(file) => fsutil::names_file(&path, &file, new.len)?,
                    None => lockfile::sha256_hex(&reads.read(&path)?) == new.sha256,
                };
                if same {
                    Ok(())
                } else {
                    Err(Error::Corrupt {
                        at: Location::file(&path),
                        reason: "after the rekey the file is not the one that was proven to open"
                            .into(),
                    })
                }
            })
            .collect()
    };
    let checked = fsutil::close_all(held, plan.close_beyond_pool, check);
    checked.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(Applied {
        rewritten: lines.len(),
        leftovers_removed,
        mac_mismatch,
    })
}
