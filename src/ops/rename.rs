//! `keys admin rename` and `keys host rename`: a reader renamed everywhere it is
//! named (its file, the policies, a host's key secrets and their lock lines), with
//! nothing re-encrypted, since who reads what does not change. All or nothing, and
//! the policy must load and resolve as before.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::layout::{self, Repo};

use super::workspace::{Hosts, Workspace};

/// What a rename changed, repository-relative.
#[derive(Default)]
pub struct Renamed {
    pub files: Vec<(String, String)>,
    pub policies: Vec<String>,
    pub secrets: Vec<(String, String)>,
}

/// Which kind of reader.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Admin,
    Host,
}

pub fn rename(repo: &Repo, kind: Kind, old: &str, new: &str) -> Result<Renamed> {
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    let check = match kind {
        Kind::Admin => layout::check_reader_name,
        Kind::Host => layout::check_name,
    };
    check(new).map_err(|reason| Error::InvalidName {
        at: Location::named("new name"),
        name: new.to_string(),
        reason,
    })?;
    let (from, to) = match kind {
        Kind::Admin => {
            if ws.fleet.admin(old).is_none() {
                return Err(crate::error::usage(
                    format!("no admin named {old}"),
                    "see recipients/admins/",
                ));
            }
            (repo.admin_file(old), repo.admin_file(new))
        }
        Kind::Host => {
            ws.host(old)?;
            (repo.host_file(old), repo.host_file(new))
        }
    };
    let taken = ws.fleet.admin(new).is_some()
        || ws.fleet.has_host(new)
        || ws.fleet.container(new).ok().flatten().is_some();
    if taken || to.exists() {
        return Err(Error::InvalidName {
            at: Location::named("new name"),
            name: new.to_string(),
            reason: "already names an admin, host or container",
        });
    }
    let mut out = Renamed::default();
    let mut writes: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut gone: Vec<PathBuf> = Vec::new();

    // The reader's own file; a host keeps its flake attribute.
    let mut data = fsutil::read(&from)?;
    if kind == Kind::Host
        && !String::from_utf8_lossy(&data)
            .lines()
            .any(|l| l.starts_with("flake_attr:"))
    {
        if !data.ends_with(b"\n") {
            data.push(b'\n');
        }
        data.extend_from_slice(format!("flake_attr: {old}\n").as_bytes());
    }
    writes.push((to.clone(), data));
    gone.push(from.clone());
    out.files.push((repo.rel(&from), repo.rel(&to)));

    // The policies, as text: names in lists only (`[a, b]` or `- a` lines).
    let token = match kind {
        Kind::Admin => old.to_string(),
        Kind::Host => format!("host:{old}"),
    };
    let replacement = match kind {
        Kind::Admin => new.to_string(),
        Kind::Host => format!("host:{new}"),
    };
    let pattern = regex::Regex::new(&format!(
        r"(?m)(?P<pre>[\[,]\s*|^\s*-\s+){}(?P<post>\s*[,\]]|\s*(?:#.*)?$)",
        regex::escape(&token)
    ))
    .expect("a valid pattern");
    let dir = repo.policies_dir();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = String::from_utf8_lossy(&fsutil::read(&path)?).into_owned();
        let changed = pattern.replace_all(&text, |c: &regex::Captures<'_>| {
            format!("{}{replacement}{}", &c["pre"], &c["post"])
        });
        if changed != text {
            out.policies.push(repo.rel(&path));
            writes.push((path, changed.into_owned().into_bytes()));
        }
    }

    // A host's key secrets (its own, its containers'), moved with their lock lines.
    let mut lock = crate::format::lockfile::LockfileText::new(ws.lockfile()?.text().to_string());
    if kind == Kind::Host {
        let prefix = format!("hosts/{old}/");
        let parsed = crate::format::lockfile::Lockfile::parse(lock.text())?;
        let names: Vec<(String, crate::format::lockfile::Entry)> = parsed
            .entries
            .into_iter()
            .filter(|(n, _)| n.starts_with(&prefix))
            .collect();
        let old_dir = repo.secrets_dir().join("hosts").join(old);
        if old_dir.is_dir() {
            for e in walkdir::WalkDir::new(&old_dir).into_iter().flatten() {
                if e.file_type().is_file() {
                    let rel = e.path().strip_prefix(&old_dir).unwrap_or(e.path());
                    let dest = repo.secrets_dir().join("hosts").join(new).join(rel);
                    writes.push((dest, fsutil::read(e.path())?));
                    gone.push(e.path().to_path_buf());
                }
            }
        }
        for (name, entry) in names {
            let renamed = format!("hosts/{new}/{}", &name[prefix.len()..]);
            lock.remove(&name);
            lock.upsert(&renamed, &entry);
            out.secrets.push((name, renamed));
        }
        // Secrets a `{host}` rule gives the host by their first segment follow it.
        let entries = crate::format::lockfile::Lockfile::parse(lock.text())?.entries;
        for (name, format, path) in super::workspace::secret_files(repo)? {
            let rule = ws.policy.rule_for(&name).map(|(_, r)| r);
            let bound = rule.and_then(|r| r.bound.as_ref());
            if bound.is_none_or(|b| b.name != old) {
                continue;
            }
            let keyed = rule
                .and_then(|r| r.generate)
                .is_some_and(|g| g.has_public_half());
            let renamed = format!("{new}{}", &name[old.len()..]);
            let dest = repo
                .root()
                .join(crate::format::secret_path(&renamed, format));
            if std::fs::symlink_metadata(&dest).is_ok() {
                return Err(Error::Exists { path: dest });
            }
            writes.push((dest, fsutil::read(&path)?));
            gone.push(path);
            // A generated key's public half goes with it.
            let public = repo.root().join(super::generate::public_half(&name));
            if keyed && let Some(data) = fsutil::read_optional(&public)? {
                let to = repo.root().join(super::generate::public_half(&renamed));
                writes.push((to, data));
                gone.push(public);
            }
            if let Some(entry) = entries.get(&name) {
                lock.remove(&name);
                lock.upsert(&renamed, entry);
            }
            out.secrets.push((name, renamed));
        }
        if !out.secrets.is_empty() {
            writes.push((repo.lockfile(), lock.text().as_bytes().to_vec()));
        }
        // The record of its local secrets, which names no host inside.
        let record = repo.root().join(crate::policy::local::rel(old));
        if let Some(data) = fsutil::read_optional(&record)? {
            let to = repo.root().join(crate::policy::local::rel(new));
            out.files.push((repo.rel(&record), repo.rel(&to)));
            writes.push((to, data));
            gone.push(record);
        }
    }

    // All or nothing, then the policy must load and resolve the same readers.
    let mut before = resolved(&ws)?;
    if kind == Kind::Host {
        before = before
            .into_iter()
            .map(|((at, bound), ids)| {
                let bound = bound.map(|b| if b == old { new.to_string() } else { b });
                ((at, bound), ids)
            })
            .collect();
    }
    let originals: Vec<(PathBuf, Option<Vec<u8>>)> = writes
        .iter()
        .map(|(p, _)| p)
        .chain(gone.iter())
        .map(|p| Ok((p.clone(), fsutil::read_optional(p)?)))
        .collect::<Result<_>>()?;
    for (path, _) in &writes {
        if let Some(parent) = path.parent()
            && let Ok(rel) = parent.strip_prefix(repo.root())
        {
            fsutil::create_dirs_within(repo.root(), rel, 0o755)?;
        }
    }
    let files: Vec<(&Path, &[u8], u32)> = writes
        .iter()
        .map(|(p, d)| (p.as_path(), d.as_slice(), fsutil::PUBLIC))
        .collect();
    let gone_refs: Vec<&Path> = gone.iter().map(PathBuf::as_path).collect();
    fsutil::write_and_remove(&files, &gone_refs)?;
    drop(ws);
    let after = Workspace::load(repo, Hosts::All).and_then(|ws| resolved(&ws));
    if after.as_ref().ok() != Some(&before) {
        // Put every file back as it was.
        let restore: Vec<(&Path, &[u8], u32)> = originals
            .iter()
            .filter_map(|(p, d)| {
                d.as_ref()
                    .map(|d| (p.as_path(), d.as_slice(), fsutil::PUBLIC))
            })
            .collect();
        let made: Vec<&Path> = originals
            .iter()
            .filter(|(_, d)| d.is_none())
            .map(|(p, _)| p.as_path())
            .collect();
        fsutil::write_and_remove(&restore, &made)?;
        return Err(match after {
            Err(e) => e,
            Ok(_) => Error::Bug {
                what: "a rename changed who reads a secret".into(),
            },
        });
    }
    if kind == Kind::Host {
        // The emptied directories of the old name.
        for old_dir in [
            repo.secrets_dir().join("hosts").join(old),
            repo.secrets_dir().join(old),
        ] {
            remove_empty_dirs(&old_dir);
        }
    }
    Ok(out)
}

/// Removes the directories under `dir`, and `dir`, that hold nothing.
fn remove_empty_dirs(dir: &Path) {
    for e in walkdir::WalkDir::new(dir)
        .contents_first(true)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// Every rule's resolved recipients, by its place and the name a placeholder bound
/// it to, to prove a rename changed no reader.
type Resolved = std::collections::BTreeMap<(String, Option<String>), Vec<String>>;

fn resolved(ws: &Workspace) -> Result<Resolved> {
    ws.policy
        .rules
        .iter()
        .map(|r| {
            let key = (r.at.to_string(), r.bound.as_ref().map(|b| b.name.clone()));
            Ok((key, ws.policy.resolve(r, &ws.fleet)?.fingerprints))
        })
        .collect()
}
