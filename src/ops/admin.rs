//! `keys admin add|rm`: people joining and leaving the fleet's admins. An admin is a
//! file of public keys under `recipients/admins/` and a member of the `admins` group;
//! the group is edited as text so the policy's comments stay, and every change is
//! loaded with the real loader before anything is written.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::identity::Prompt;
use crate::layout::{self, Repo};
use crate::policy::{Reader, edit};
use crate::recipient::Recipient;

use super::rule::{load_with, policy_text};
use super::workspace::{Hosts, Workspace};

/// The group an admin joins.
pub const GROUP: &str = "admins";

/// Where a new admin's key comes from.
pub enum KeyArg {
    /// A key given on the command line (`age1…`, `ssh-ed25519 AAAA…`).
    Literal(String),
    /// A file of public keys, or a private key whose public half is taken.
    File(PathBuf),
}

/// The public keys `arg` gives: the key itself, every key of a public key file, or
/// the public half of a private key (which may ask for its passphrase).
pub fn read_keys(arg: &KeyArg, prompt: &dyn Prompt) -> Result<Vec<Recipient>> {
    match arg {
        KeyArg::Literal(text) => Ok(vec![Recipient::parse_line(
            text,
            &Location::named("--key"),
        )?]),
        KeyArg::File(path) => {
            let data = fsutil::read_private(path)?.data;
            let origin = path.display().to_string();
            let text = String::from_utf8_lossy(&data);
            let private = [
                "PRIVATE KEY-----",
                "AGE-SECRET-KEY-",
                "age-encryption.org/",
                "BEGIN AGE ENCRYPTED FILE",
            ]
            .iter()
            .any(|m| text.contains(m));
            if private {
                return Ok(vec![crate::identity::public_of(&data, &origin, prompt)?]);
            }
            let keys: Vec<Recipient> = Recipient::parse_all(&text, &origin)?
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            if keys.is_empty() {
                return Err(Error::InvalidKey {
                    at: Location::named(&origin),
                    reason: "no public key in this file".into(),
                });
            }
            Ok(keys)
        }
    }
}

/// What an admin change did, repository-relative.
pub struct Changed {
    pub created: Vec<String>,
    pub removed: Vec<String>,
    /// Each policy file changed, with the groups the admin joined or left.
    pub policies: Vec<(String, Vec<String>)>,
    /// Secrets whose files do not yet say what the change means: those the new
    /// admin reads and is not in the lock for, or those the removed one still opens.
    pub stale: usize,
}

/// Adds admin `name` with `keys`: `recipients/admins/NAME.pub`, and NAME in the
/// `admins` group (made, holding every admin, where there is none). Nothing is
/// written unless the policy loads with it.
pub fn add(repo: &Repo, name: &str, keys: &[Recipient]) -> Result<Changed> {
    layout::check_reader_name(name).map_err(|reason| Error::InvalidName {
        at: Location::named("admin name"),
        name: name.to_string(),
        reason,
    })?;
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    let file = repo.admin_file(name);
    if ws.fleet.admin(name).is_some() || std::fs::symlink_metadata(&file).is_ok() {
        return Err(Error::Exists { path: file });
    }
    let rel = repo.rel(&file);
    let mut text = format!("# admin {name}\n");
    for k in keys {
        text.push_str(&format!("{k}\n"));
    }
    // Into the group where it is; else a group of every admin, so that `admins`
    // keeps meaning what it meant.
    let (policy, policy_rel, joined) = match ws.policy.groups.get(GROUP) {
        Some((at, members)) if members.iter().any(|m| m == name) => {
            (None, at.file.clone(), Vec::new())
        }
        Some((at, _)) => {
            let old = policy_text(repo, &at.file)?.unwrap_or_default();
            let new = edit::add_member(&old, GROUP, name)
                .map_err(|reason| refused_edit(&at.file, reason))?
                .ok_or_else(|| refused_edit(&at.file, format!("no group {GROUP} found")))?;
            (Some(new), at.file.clone(), vec![GROUP.to_string()])
        }
        None => {
            let target = group_file(repo, &ws)?;
            let old = policy_text(repo, &target)?.unwrap_or_default();
            let mut members: Vec<String> = ws.fleet.admins.iter().map(|a| a.name.clone()).collect();
            members.push(name.to_string());
            let new = edit::add_group(&old, GROUP, &members)
                .map_err(|reason| refused_edit(&target, reason))?;
            (Some(new), target, vec![GROUP.to_string()])
        }
    };
    let mut changes = vec![(rel.clone(), Some(text.clone().into_bytes()))];
    if let Some(p) = &policy {
        changes.push((policy_rel.clone(), Some(p.clone().into_bytes())));
    }
    let (_, after) = load_with(repo, &changes)
        .map_err(|e| super::rule::refused(e, &format!("with admin {name}"), None))?;
    let joined_now = after
        .groups
        .get(GROUP)
        .is_none_or(|(_, m)| m.iter().any(|m| m == name));
    if !joined_now {
        return Err(refused_edit(
            &policy_rel,
            format!("keys could not add {name} to group {GROUP} as text; add it by hand"),
        ));
    }
    let reader = Reader::Admin(name.to_string());
    let lock = crate::format::lockfile::Lockfile::parse(ws.lockfile()?.text())?;
    let stale = lock
        .entries
        .keys()
        .filter(|n| {
            after
                .rule_for(n)
                .is_some_and(|(_, r)| r.readers.contains(&reader))
        })
        .count();
    let mut out = Changed {
        created: vec![rel],
        removed: Vec::new(),
        policies: Vec::new(),
        stale,
    };
    // Both files or neither (the writer lock keeps the new ones new).
    fsutil::create_dirs_within(repo.root(), Path::new(layout::ADMINS), 0o755)?;
    let policy_path = repo.root().join(&policy_rel);
    let mut writes: Vec<(&Path, &[u8], u32)> = vec![(&file, text.as_bytes(), fsutil::PUBLIC)];
    if let Some(p) = &policy {
        if std::fs::symlink_metadata(&policy_path).is_ok() {
            out.policies.push((policy_rel, joined));
        } else {
            out.created.push(policy_rel);
        }
        writes.push((&policy_path, p.as_bytes(), fsutil::PUBLIC));
    }
    fsutil::write_batch(&writes)?;
    drop(ws);
    Ok(out)
}

/// Removes admin `name`: its file, and its place in every group. Refused for the
/// last admin, and while a rule names it as a reader (as `host rm` is for a host),
/// and when the policy would not load without it. Secrets stay encrypted to its
/// keys until `keys rekey`.
pub fn remove(repo: &Repo, name: &str) -> Result<Changed> {
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    let Some(admin) = ws.fleet.admin(name) else {
        return Err(Error::NoAdmin {
            name: name.to_string(),
        });
    };
    if ws.fleet.admins.len() == 1 {
        return Err(Error::LastAdmin {
            name: name.to_string(),
        });
    }
    let ids: Vec<String> = admin.recipients.iter().map(Recipient::lock_id).collect();
    for rule in ws.policy.written() {
        if rule.labels.iter().any(|l| l == name) {
            return Err(Error::InvalidFile {
                at: rule.at.clone(),
                reason: format!(
                    "rule {:?} names admin {name}: remove it from the rule's readers before removing the admin",
                    rule.glob
                ),
            });
        }
    }
    let rel = repo.rel(&repo.admin_file(name));
    let mut changes: Vec<(String, Option<Vec<u8>>)> = vec![(rel.clone(), None)];
    let mut policies = Vec::new();
    let mut files: Vec<&str> = ws
        .policy
        .groups
        .values()
        .filter(|(_, members)| members.iter().any(|m| m == name))
        .map(|(at, _)| at.file.as_str())
        .collect();
    files.sort();
    files.dedup();
    for file in files {
        let old = policy_text(repo, file)?.unwrap_or_default();
        let (new, left) =
            edit::remove_member(&old, name).map_err(|reason| refused_edit(file, reason))?;
        changes.push((file.to_string(), Some(new.into_bytes())));
        policies.push((file.to_string(), left));
    }
    let (_, after) = load_with(repo, &changes)
        .map_err(|e| super::rule::refused(e, &format!("without admin {name}"), None))?;
    if let Some((at, _)) = after
        .groups
        .iter()
        .find(|(_, (_, m))| m.iter().any(|m| m == name))
        .map(|(_, g)| g)
    {
        return Err(refused_edit(
            &at.file,
            format!("keys could not take {name} out of its groups as text; do it by hand"),
        ));
    }
    let lock = crate::format::lockfile::Lockfile::parse(ws.lockfile()?.text())?;
    let stale = lock
        .entries
        .values()
        .filter(|e| e.recipients.iter().any(|r| ids.contains(r)))
        .count();
    // The admin could read each of these values: the lock names it as a reader taken
    // away now, while its keys can still be named (its file goes here).
    let mut lock_changed = false;
    for (secret, entry) in &lock.entries {
        let mut entry = entry.clone();
        for id in entry.recipients.iter().filter(|r| ids.contains(r)) {
            if !entry.seen.iter().any(|s| s.id == *id) {
                entry.seen.push(crate::format::lockfile::Seen {
                    id: id.clone(),
                    label: Some(name.to_string()),
                });
            }
        }
        if entry.seen.len() != lock.entries[secret].seen.len() {
            entry.seen.sort();
            ws.lockfile()?.upsert(secret, &entry);
            lock_changed = true;
        }
    }
    if lock_changed {
        changes.push((
            crate::layout::LOCKFILE.to_string(),
            Some(ws.lockfile()?.text().as_bytes().to_vec()),
        ));
    }
    let writes: Vec<(PathBuf, Vec<u8>)> = changes
        .iter()
        .filter_map(|(rel, data)| data.as_ref().map(|d| (repo.root().join(rel), d.clone())))
        .collect();
    let writes: Vec<(&Path, &[u8], u32)> = writes
        .iter()
        .map(|(p, d)| (p.as_path(), d.as_slice(), fsutil::PUBLIC))
        .collect();
    let file = repo.admin_file(name);
    fsutil::write_and_remove(&writes, &[file.as_path()])?;
    drop(ws);
    Ok(Changed {
        created: Vec::new(),
        removed: vec![rel],
        policies,
        stale,
    })
}

/// The policy file a new group goes into: the first that has `groups:`, else the
/// one holding the rules, else `policies/default.yaml`.
fn group_file(repo: &Repo, ws: &Workspace) -> Result<String> {
    let mut files: Vec<String> = Vec::new();
    let dir = repo.policies_dir();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") && !name.starts_with('.') {
                files.push(format!("{}/{name}", layout::POLICIES));
            }
        }
    }
    files.sort();
    for f in &files {
        let text = policy_text(repo, f)?.unwrap_or_default();
        if text.lines().any(|l| l.starts_with("groups:")) {
            return Ok(f.clone());
        }
    }
    Ok(super::rule::default_file(&ws.policy))
}

fn refused_edit(file: &str, reason: impl Into<String>) -> Error {
    Error::InvalidFile {
        at: Location::named(file),
        reason: reason.into(),
    }
}
