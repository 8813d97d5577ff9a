//! `keys push openbao` and `keys check --openbao`: the secrets whose rule names an
//! OpenBao KV v2 destination, their plaintext as KV fields, and
//! `secrets/openbao.lock`, the record of what was written there (paths, versions,
//! times and the SHA-256 of the encrypted file pushed; never a value).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::format::sops;
use crate::fsutil;
use crate::openbao::{Client, Metadata, Written, write_body};
use crate::ops::secret::Opened;
use crate::ops::workspace::{Workspace, secret_files};

use crate::layout::OPENBAO_LOCK as LOCK;

const HEADER: &str = "# What `keys push openbao` wrote to OpenBao (no values): name, mount, path,\n# version, SHA-256 of the encrypted file pushed, when.\n";

/// A secret with an OpenBao destination.
pub struct Target {
    pub name: String,
    pub file: PathBuf,
    pub format: Format,
    pub mount: String,
    pub path: String,
    /// SHA-256 of the encrypted file, in hex.
    pub digest: String,
}

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub mount: String,
    pub path: String,
    pub version: u64,
    pub digest: String,
    pub when: String,
}

/// `secrets/openbao.lock`, by secret name.
#[derive(Debug, Default)]
pub struct PushLock {
    pub entries: BTreeMap<String, Pushed>,
}

impl PushLock {
    pub fn read(root: &Path) -> Result<PushLock> {
        let Some(data) = fsutil::read_optional(&root.join(LOCK))? else {
            return Ok(PushLock::default());
        };
        let text = String::from_utf8(data).map_err(|_| Error::InvalidFile {
            at: Location::named(LOCK),
            reason: "not UTF-8 text".into(),
        })?;
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || Error::InvalidFile {
                at: Location::named(LOCK).at_line(i as u64 + 1),
                reason: "expected NAME MOUNT PATH VERSION SHA256 WHEN".into(),
            };
            let f: Vec<&str> = line.split_whitespace().collect();
            let [name, mount, path, version, digest, when] = f[..] else {
                return Err(bad());
            };
            let version = version.parse().map_err(|_| bad())?;
            entries.insert(
                name.to_string(),
                Pushed {
                    mount: mount.into(),
                    path: path.into(),
                    version,
                    digest: digest.into(),
                    when: when.into(),
                },
            );
        }
        Ok(PushLock { entries })
    }

    pub fn write(&self, root: &Path) -> Result<()> {
        let mut text = String::from(HEADER);
        for (name, p) in &self.entries {
            text.push_str(&format!(
                "{name} {} {} {} {} {}\n",
                p.mount, p.path, p.version, p.digest, p.when
            ));
        }
        fsutil::write_atomic(&root.join(LOCK), text.as_bytes(), 0o644)
    }
}

/// The secrets with an OpenBao destination, all of them or those `names` gives
/// (each must exist and have one).
pub fn targets(ws: &Workspace, names: &[String]) -> Result<Vec<Target>> {
    let files = secret_files(&ws.repo)?;
    let target = |name: &str, file: &Path, format: Format| -> Result<Option<Target>> {
        let Some((_, rule)) = ws.policy.rule_for(name) else {
            return Ok(None);
        };
        let Some(dest) = &rule.openbao else {
            return Ok(None);
        };
        if rule.format != format {
            return Ok(None);
        }
        let data = fsutil::read(file)?;
        Ok(Some(Target {
            name: name.to_string(),
            file: file.to_path_buf(),
            format,
            mount: dest.mount.clone(),
            path: dest.path_for(name),
            digest: hex(&Sha256::digest(&data)),
        }))
    };
    let mut out = Vec::new();
    if names.is_empty() {
        for (name, format, file) in &files {
            if let Some(t) = target(name, file, *format)? {
                out.push(t);
            }
        }
        return Ok(out);
    }
    for name in names {
        let (file, format) = ws.locate(name)?;
        let rule = ws.rule(name)?;
        match target(name, &file, format)? {
            Some(t) => out.push(t),
            None => {
                return Err(Error::InvalidFile {
                    at: rule.at.clone(),
                    reason: format!(
                        "the rule for {name:?} names no openbao destination (add openbao: {{mount: secret, path: \"apps/{{name}}\"}})"
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The KV fields of a decrypted secret: a sops document's top-level keys, each value
/// as a string (numbers and booleans as sops renders them); an age file as the one
/// field `value`. A map, a list or a null value is refused naming its key, and an age
/// file that is not UTF-8 text is refused (KV values are JSON strings).
pub fn fields(opened: &Opened, at: &Location) -> Result<Vec<(String, Zeroizing<String>)>> {
    use sops::document::{Item, Value};
    let refuse = |reason: String| Error::InvalidFile {
        at: at.clone(),
        reason,
    };
    let Some(doc) = &opened.sops else {
        let text = std::str::from_utf8(&opened.plain).map_err(|_| {
            refuse("is not UTF-8 text, which an OpenBao KV field cannot hold; store binary data base64-encoded".into())
        })?;
        return Ok(vec![("value".into(), Zeroizing::new(text.to_string()))]);
    };
    let mut out: Vec<(String, Zeroizing<String>)> = Vec::new();
    for item in doc.plain.0.first().into_iter().flatten() {
        let Item::Pair(key, value) = item else {
            continue;
        };
        let bytes = match value {
            Value::Map(_) | Value::List(_) => {
                return Err(refuse(format!(
                    "key {key:?} holds a map or a list; an OpenBao KV field holds a string (make it a top-level string)"
                )));
            }
            Value::Null => {
                return Err(refuse(format!(
                    "key {key:?} is null; give it a value (\"\" for an empty one)"
                )));
            }
            Value::Time(t) => t.as_bytes().to_vec(),
            other => sops::val_to_string(other).unwrap_or_default(),
        };
        let bytes = Zeroizing::new(bytes);
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| refuse(format!("key {key:?} is not UTF-8 text")))?;
        let text = Zeroizing::new(text.to_string());
        out.retain(|(k, _)| k != key);
        out.push((key.clone(), text));
    }
    Ok(out)
}

/// What pushing one secret came to.
pub enum Outcome {
    /// Written: the new version.
    Pushed(u64),
    /// The encrypted file is as pushed and OpenBao still holds that version.
    Unchanged,
    /// OpenBao's version is not the one recorded: changed there, not overwritten.
    Conflict {
        recorded: u64,
        current: Option<u64>,
    },
    Failed(Error),
}

/// Pushes one secret whose fields are `fields`, given what was recorded for it.
pub fn push_one(
    client: &Client,
    target: &Target,
    recorded: Option<&Pushed>,
    fields: &[(String, Zeroizing<String>)],
) -> Outcome {
    let same_place = recorded.filter(|r| r.mount == target.mount && r.path == target.path);
    let cas = same_place.map_or(0, |r| r.version);
    // An encrypted file as pushed costs one metadata read, and no write while
    // OpenBao still holds the version pushed.
    if let Some(r) = same_place.filter(|r| r.digest == target.digest) {
        match client.metadata(&target.mount, &target.path) {
            Err(e) => return Outcome::Failed(e),
            Ok(None) => {
                return Outcome::Conflict {
                    recorded: r.version,
                    current: None,
                };
            }
            Ok(Some(m)) if m.current_version != r.version => {
                return Outcome::Conflict {
                    recorded: r.version,
                    current: Some(m.current_version),
                };
            }
            Ok(Some(m)) if !m.deleted && !m.destroyed => return Outcome::Unchanged,
            Ok(Some(_)) => {}
        }
    }
    let body = write_body(cas, fields);
    match client.write(&target.mount, &target.path, &body) {
        Ok(Written::Version(v)) => Outcome::Pushed(v),
        Ok(Written::Conflict) => Outcome::Conflict {
            recorded: cas,
            current: client
                .metadata(&target.mount, &target.path)
                .ok()
                .flatten()
                .map(|m| m.current_version),
        },
        Err(e) => Outcome::Failed(e),
    }
}

/// How one pushed secret differs from OpenBao or from the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    NeverPushed,
    /// The encrypted file changed since it was pushed: OpenBao is behind.
    Behind,
    /// OpenBao has a newer version than the one pushed.
    Changed {
        recorded: u64,
        current: u64,
    },
    /// The metadata is gone (deleted with all its versions).
    Deleted,
    /// The version pushed is deleted (soft) in OpenBao.
    VersionDeleted,
    Destroyed,
    /// The secret was pushed to another mount or path than its rule now names.
    Moved,
}

/// What `keys check --openbao` reports for one secret, from the record and
/// OpenBao's metadata (`None`: no metadata).
pub fn drift(target: &Target, recorded: Option<&Pushed>, meta: Option<Metadata>) -> Vec<Drift> {
    let Some(r) = recorded else {
        return vec![Drift::NeverPushed];
    };
    if r.mount != target.mount || r.path != target.path {
        return vec![Drift::Moved];
    }
    let mut out = Vec::new();
    match meta {
        None => out.push(Drift::Deleted),
        Some(m) if m.current_version != r.version => out.push(Drift::Changed {
            recorded: r.version,
            current: m.current_version,
        }),
        Some(m) if m.destroyed => out.push(Drift::Destroyed),
        Some(m) if m.deleted => out.push(Drift::VersionDeleted),
        Some(_) => {}
    }
    if r.digest != target.digest {
        out.push(Drift::Behind);
    }
    out
}
