//! Secrets by name: encrypt one to the readers its policy names, open one, remove
//! one. Every write goes to a temp file beside its target and is renamed into place,
//! then `keys.lock` is updated the same way.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto;
use crate::crypto::age::Armor;
use crate::crypto::sops::Mac;
use crate::error::{Error, Location, Result};
use crate::format;
use crate::format::Format;
use crate::format::lockfile;
use crate::format::sops;
use crate::fsutil;
use crate::identity::{Identities, Prompt};
use crate::layout::{self, Repo};

use super::workspace::{Copying, LockAhead, LockOnDisk, Workspace};

pub struct EncryptOptions {
    /// Replace an existing secret.
    pub force: bool,
    pub allow_empty: bool,
}

/// What a write did.
pub struct Written {
    pub path: PathBuf,
    pub format: Format,
    pub recipients: usize,
    pub replaced: bool,
}

/// Encrypts `plaintext` as secret `name` for the readers its policy rule resolves to,
/// and records it in `keys.lock`.
///
/// For a sops format the plaintext is a document of that format (checked as it is
/// parsed), sealed under a new data key; `previous` (the secret as `edit` decrypted
/// it) keeps the file's options.
pub fn encrypt(
    ws: &mut Workspace,
    name: &str,
    plaintext: &[u8],
    opts: &EncryptOptions,
    previous: Option<&crypto::sops::Opened>,
) -> Result<Written> {
    encrypt_with(ws, name, plaintext, opts, previous, &[])
}

/// `encrypt`, writing the public files `beside` (a generated key's public half) in
/// the same batch as the secret and the lock.
pub fn encrypt_with(
    ws: &mut Workspace,
    name: &str,
    plaintext: &[u8],
    opts: &EncryptOptions,
    previous: Option<&crypto::sops::Opened>,
    beside: &[(&Path, &[u8])],
) -> Result<Written> {
    // A lock this run has not read is changed in the secret's line alone: only the
    // few windows that find that line are read, whatever the size of the fleet.
    let (disk, ahead) = match ws.take_ahead(name).and_then(LockAhead::into_parts) {
        Some((disk, spot, copying, len)) => (Some(disk), Some((spot, copying, len))),
        None => (ws.lock_on_disk()?, None),
    };
    if disk.is_none() {
        ws.lockfile()?;
    }
    let rule = ws.rule(name)?;
    let format = rule.format;
    if plaintext.is_empty() && !opts.allow_empty {
        return Err(Error::EmptySecret {
            name: name.to_string(),
        });
    }
    refuse_nesting(ws, disk.as_ref(), name)?;
    let rel = format::secret_path(name, format);
    let path = ws.repo.root().join(&rel);
    let others: Vec<PathBuf> = Format::ALL
        .into_iter()
        .filter(|f| *f != format)
        .map(|f| ws.repo.root().join(format::secret_path(name, f)))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    let exists = std::fs::symlink_metadata(&path).is_ok() || !others.is_empty();
    if exists && !opts.force {
        return Err(Error::Exists {
            path: others.first().cloned().unwrap_or(path),
        });
    }
    let resolved = ws.policy.resolve(rule, &ws.fleet)?;
    let (armor, sops_options) = (Armor::when(rule.armor), rule.sops.clone());
    // The spot the copy ahead found (under the writer lock, so it is still this).
    let (spot, ahead) = match (ahead, &disk) {
        (Some((spot, copying, len)), _) => (Some(spot), Some((copying, len))),
        (None, Some(disk)) => (disk.spot(name)?, None),
        (None, None) => (None, None),
    };
    let before = match (&disk, &spot) {
        (Some(disk), Some(spot)) if spot.is_entry(name) => {
            lockfile::entry_in(&disk.text_at(spot)?, name)
        }
        (Some(_), Some(_)) => None,
        _ => lockfile::entry_in(ws.lockfile()?.text(), name),
    };
    // A new value: its clock starts now (after the value it replaces), and no reader
    // taken away has seen it. Its hash is known once it is sealed.
    let mut entry = lockfile::Entry {
        format,
        sha256: "0".repeat(lockfile::HASH_LEN),
        recipients: resolved.fingerprints,
        changed: Some(lockfile::changed_after(before.and_then(|e| e.changed))),
        seen: Vec::new(),
    };
    // A lock changed in one line is copied before the secret is sealed, with a line
    // of the right length written over once its hash is known: the disk writes the
    // copy while the cryptography runs.
    let staged_lock = match (&disk, &spot) {
        (Some(disk), Some(spot)) => {
            let line = lockfile::line(name, &entry);
            Some(match ahead {
                // Being staged since before the policy was read, for a line of this
                // length here: waited for once the value is sealed.
                Some((copying, len)) if len == line.len() => LockCopy::Ahead {
                    copying,
                    disk,
                    spot,
                },
                // Both copies go over the spare: the one ahead is done first.
                other => {
                    drop(other);
                    LockCopy::Staged(disk.stage(spot, &line)?)
                }
            })
        }
        _ => None,
    };
    let at = Location::named(&rel);
    let sealed = match format {
        Format::Age => crypto::age::encrypt(plaintext, &resolved.recipients, armor, &at)?,
        sops_format => crypto::sops::encrypt_file(
            sops_format,
            plaintext,
            &resolved.recipients,
            resolved.shamir.as_ref(),
            sops_options,
            previous,
            &at,
        )?,
    };
    entry.sha256 = lockfile::sha256_hex(&sealed);
    let parent = Path::new(&rel)
        .parent()
        .unwrap_or(Path::new(layout::SECRETS));
    fsutil::create_dirs_within(ws.repo.root(), parent, 0o755)?;
    let lock_file = ws.repo.lockfile();
    // The secret and the lock that describes it are made durable together.
    let mut files: Vec<(&Path, &[u8], u32)> = vec![(&path, &sealed, fsutil::PUBLIC)];
    files.extend(beside.iter().map(|(p, d)| (*p, *d, fsutil::PUBLIC)));
    match staged_lock {
        Some(lock) => {
            let line = lockfile::line(name, &entry);
            let lock = lock.ready(&line)?;
            lock.rewrite_inserted(line.as_bytes())?;
            fsutil::write_batch_with(&files, vec![(&lock_file, lock)])?;
        }
        None => {
            ws.lockfile()?.upsert(name, &entry);
            let lock_text = ws.lockfile()?.text().to_string();
            files.push((&lock_file, lock_text.as_bytes(), fsutil::PUBLIC));
            fsutil::write_batch(&files)?;
        }
    }
    for other in &others {
        fsutil::remove(other)?;
    }
    Ok(Written {
        path,
        format,
        recipients: resolved.recipients.len(),
        replaced: exists,
    })
}

/// The lock's copy with a secret's line: being made by the thread that started it
/// before the policy was read (for the lock `disk`, at `spot`), or staged by the
/// write itself.
enum LockCopy<'a> {
    Ahead {
        copying: Copying,
        disk: &'a LockOnDisk,
        spot: &'a lockfile::Spot,
    },
    Staged(fsutil::Spliced),
}

impl LockCopy<'_> {
    /// The copy, once made: the thread's, else staged now with `line` (the thread
    /// gave up, and is done with the spare).
    fn ready(self, line: &str) -> Result<fsutil::Spliced> {
        match self {
            LockCopy::Staged(staged) => Ok(staged),
            LockCopy::Ahead {
                copying,
                disk,
                spot,
            } => match copying.join() {
                Some(staged) => Ok(staged),
                None => disk.stage(spot, line),
            },
        }
    }
}

/// The secret in `lock` that `name` nests with (one is the other's directory).
fn nested(lock: &lockfile::LockfileText, name: &str) -> Option<String> {
    lock.names()
        .find(|k| layout::secret_names_nest(k, name))
        .map(str::to_string)
}

/// Refuses a name that is a directory of an existing secret or the reverse.
fn refuse_nesting(ws: &Workspace, disk: Option<&LockOnDisk>, name: &str) -> Result<()> {
    let clash = |other: &str| Error::NestedSecret {
        name: name.to_string(),
        other: other.to_string(),
    };
    let told = match disk {
        Some(disk) => disk.nesting(name)?,
        None => None,
    };
    let in_lock = match (told, ws.lockfile_if_read()) {
        (Some(found), _) => found,
        (None, Some(lock)) => nested(lock, name),
        (None, None) => nested(&super::workspace::read_lockfile(&ws.repo)?, name),
    };
    if let Some(other) = in_lock {
        return Err(clash(&other));
    }
    let secrets = ws.repo.secrets_dir();
    if secrets.join(name).exists() {
        return Err(clash(&format!("{name}/…")));
    }
    let mut prefix = String::new();
    for segment in name.split('/') {
        if !prefix.is_empty() {
            for f in Format::ALL {
                if std::fs::symlink_metadata(ws.repo.root().join(format::secret_path(&prefix, f)))
                    .is_ok()
                {
                    return Err(clash(&prefix));
                }
            }
            prefix.push('/');
        }
        prefix.push_str(segment);
    }
    Ok(())
}

/// A decrypted secret: the plaintext as its format prints it, and for a sops file
/// what re-encrypting an edited version needs.
pub struct Opened {
    pub plain: Zeroizing<Vec<u8>>,
    pub sops: Option<crypto::sops::Opened>,
}

/// Opens an encrypted file of a known format (a secret found with `Workspace::locate`).
/// `Mac::Ignore` skips the sops MAC check (values still authenticate one by one).
pub fn open_file(
    path: &Path,
    format: Format,
    identities: &mut Identities,
    prompt: &dyn Prompt,
    mac: Mac,
) -> Result<Opened> {
    open_indented(path, (format, None), identities, prompt, mac)
}

/// `open_file` with the plaintext of a sops file laid out by its rule's `indent`,
/// as `sops decrypt` prints it with the exported `.sops.yaml`.
pub fn open_indented(
    path: &Path,
    (format, indent): (Format, Option<u8>),
    identities: &mut Identities,
    prompt: &dyn Prompt,
    mac: Mac,
) -> Result<Opened> {
    let data = fsutil::read(path)?;
    let at = Location::file(path);
    match format {
        Format::Age => Ok(Opened {
            plain: crypto::age::decrypt(&data, identities, prompt, &at)?,
            sops: None,
        }),
        sops_format => {
            let (plain, opened) = crypto::sops::decrypt_file(
                sops_format,
                &data,
                identities,
                prompt,
                &at,
                mac,
                indent,
            )?;
            Ok(Opened {
                plain,
                sops: Some(opened),
            })
        }
    }
}

/// Opens a file given by path, anywhere: an age file (binary or armored), or a sops
/// file whose store its extension names, as sops decides.
pub fn open_any(
    path: &Path,
    identities: &mut Identities,
    prompt: &dyn Prompt,
    mac: Mac,
) -> Result<Zeroizing<Vec<u8>>> {
    Ok(open_path(path, identities, prompt, mac)?.0.plain)
}

/// `open_any`, with the format the file was read as and the indentation its
/// plaintext was laid out with (for a sops file, as `.sops.yaml` says).
pub fn open_path(
    path: &Path,
    identities: &mut Identities,
    prompt: &dyn Prompt,
    mac: Mac,
) -> Result<(Opened, (Format, Option<u8>))> {
    let data = fsutil::read(path)?;
    let format = format_of(path, &data);
    if format == Format::Age {
        let plain = crypto::age::decrypt(&data, identities, prompt, &Location::file(path))?;
        return Ok((Opened { plain, sops: None }, (Format::Age, None)));
    }
    let indent = sops_config_indent(format)?;
    let opened = open_indented(path, (format, indent), identities, prompt, mac)?;
    Ok((opened, (format, indent)))
}

/// The format `open_path` reads a file as: age when it is named `.age` or starts
/// like an age file, else the sops store its extension names, as sops decides.
pub fn format_of_file(path: &Path) -> Result<Format> {
    Ok(format_of(path, &fsutil::read(path)?))
}

fn format_of(path: &Path, data: &[u8]) -> Format {
    let age_name = path.extension().is_some_and(|e| e == "age");
    if age_name || format::age::looks_like_age(data) {
        Format::Age
    } else {
        sops::format_of_path(path)
    }
}

/// The environment `keys exec` gives a command from a decrypted sops document: each
/// top-level key and its value, in the document's order (a repeated key's last
/// value wins), as `sops exec-env` sets them: strings as they are, numbers and
/// booleans as sops renders them (`8080`, `1.5`, a JSON `8080` as `8080.0`, `true`),
/// timestamps in RFC 3339 to the second. Comments are passed over. A map or list,
/// a null, a key that is empty or holds `=`, and a NUL byte anywhere are refused,
/// naming the key.
pub fn environment(opened: &Opened, at: &Location) -> Result<Vec<(String, Zeroizing<Vec<u8>>)>> {
    use sops::document::{Item, Value};
    let Some(doc) = &opened.sops else {
        return Err(Error::Bug {
            what: format!("an environment from age file {}", at.file),
        });
    };
    let refuse = |key: &str, why: &str| Error::NotEnvironment {
        at: at.clone(),
        reason: format!("key {key:?} {why}"),
    };
    let mut env = Vec::new();
    for item in doc.plain.0.first().into_iter().flatten() {
        let Item::Pair(key, value) = item else {
            continue;
        };
        if key.is_empty() {
            return Err(Error::NotEnvironment {
                at: at.clone(),
                reason: "an empty key cannot name an environment variable".into(),
            });
        }
        if key.contains(['=', '\0']) {
            return Err(refuse(
                key,
                "holds '=' or a NUL byte, which an environment variable's name cannot",
            ));
        }
        let text = match value {
            Value::Map(_) | Value::List(_) => {
                return Err(refuse(
                    key,
                    "holds a map or a list, which cannot be an environment variable",
                ));
            }
            Value::Null => {
                return Err(refuse(
                    key,
                    "is null; give it a value (\"\" for an empty one)",
                ));
            }
            Value::Time(t) => rfc3339_seconds(t).into_bytes(),
            other => sops::val_to_string(other).unwrap_or_default(),
        };
        let text = Zeroizing::new(text);
        if text.contains(&0) {
            return Err(refuse(
                key,
                "has a NUL byte in its value, which an environment cannot hold",
            ));
        }
        env.push((key.clone(), text));
    }
    Ok(env)
}

/// A timestamp as Go's `time.RFC3339` writes it: without fractions of a second.
fn rfc3339_seconds(t: &str) -> String {
    match (t.find('.'), t.find('T')) {
        (Some(dot), Some(tee)) if dot > tee => {
            let zone = t[dot + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(t.len(), |i| dot + 1 + i);
            format!("{}{}", &t[..dot], &t[zone..])
        }
        _ => t.to_string(),
    }
}

/// What `sops decrypt --extract PATH` prints for the sops file `opened` (read from
/// `at` as `format`, laid out with `indent`): a string as its bytes, a map as a
/// document of the file's format (in a YAML file of several documents, the first
/// replaced by the map and the others after it, as sops writes them), any other
/// value as the store writes a lone value. An empty path is the whole document.
pub fn extract(
    opened: &Opened,
    (format, indent): (Format, Option<u8>),
    path: &[sops::document::PathSegment],
    at: &Location,
) -> Result<Zeroizing<Vec<u8>>> {
    use sops::document::{Found, Value};
    let doc = match (&opened.sops, format) {
        (Some(doc), Format::SopsYaml | Format::SopsJson | Format::SopsDotenv | Format::SopsIni) => {
            doc
        }
        _ => {
            return Err(Error::Bug {
                what: format!("--extract from {} file {}", format.name(), at.file),
            });
        }
    };
    let store = sops::require_indented_store(format, indent, at)?;
    let no_path = |reason: String| Error::KeyPath {
        at: at.clone(),
        reason,
    };
    let first: &[sops::document::Item] = doc.plain.0.first().map_or(&[], |b| b.as_slice());
    let found = sops::document::find(first, path).map_err(|e| no_path(e.to_string()))?;
    let bytes = match found {
        Found::Value(Value::Str(s)) => s.as_bytes().to_vec(),
        Found::Value(Value::Bytes(b)) => b.clone(),
        Found::Map(items) => {
            if format == Format::SopsIni && !path.is_empty() {
                let text = sops::document::tree_path_text(path);
                return Err(no_path(format!(
                    "{text} is a section, which sops cannot print alone; name one of its keys, as {text}[\"KEY\"]"
                )));
            }
            let mut branches = crypto::sops::Plain(doc.plain.0.clone());
            if let Some(top) = branches.0.first_mut() {
                *top = items.to_vec();
            }
            store.emit_plain(&branches.0)?
        }
        Found::Value(other) => store.emit_value(other)?,
    };
    Ok(Zeroizing::new(bytes))
}

/// How the `.sops.yaml` that sops would read for a command run here (in the working
/// directory or the nearest of its parents, up to 100 levels as sops looks) says
/// files of `format` are indented.
fn sops_config_indent(format: Format) -> Result<Option<u8>> {
    let mut dir = std::path::PathBuf::from(".");
    for _ in 0..100 {
        let config = dir.join(".sops.yaml");
        if std::fs::metadata(&config).is_ok() {
            let data = fsutil::read(&config)?;
            let text = String::from_utf8_lossy(&data);
            return sops::config::stores_indent(&text, format, &config.display().to_string());
        }
        dir.push("..");
    }
    Ok(None)
}

/// Sets (or with `None` removes) one value of a sops secret, like `sops set` and
/// `sops unset`: the secret is decrypted, changed, and re-encrypted with its data
/// key, so only that value's lines and the metadata change.
pub fn set_value(
    ws: &mut Workspace,
    name: &str,
    path: &[sops::document::PathSegment],
    value: Option<sops::document::Value>,
    identities: &mut Identities,
    prompt: &dyn Prompt,
) -> Result<Written> {
    let (file, format) = ws.locate(name)?;
    let not_settable = |reason| Error::NotSettable {
        name: name.to_string(),
        reason,
    };
    let Some(store) = sops::store(format) else {
        return Err(not_settable("is an age file, which has no keys to set"));
    };
    let opened = open_file(&file, format, identities, prompt, Mac::Check)?;
    let Some(previous) = opened.sops else {
        return Err(Error::Bug {
            what: format!("{} opened as sops without a sops document", file.display()),
        });
    };
    let mut plain = crypto::sops::Plain(previous.plain.0.clone());
    let branch = plain
        .0
        .first_mut()
        .ok_or_else(|| not_settable("has no document to set a value in"))?;
    sops::document::set_path(branch, path, value).map_err(|reason| Error::InvalidFile {
        at: Location::file(&file),
        reason: format!("key path: {reason}"),
    })?;
    let text = Zeroizing::new(store.emit_plain(&plain.0)?);
    let opts = EncryptOptions {
        force: true,
        allow_empty: true,
    };
    encrypt(ws, name, &text, &opts, Some(&previous))
}

/// What `rm` removed.
pub struct Removed {
    pub path: Option<PathBuf>,
    pub in_lock: bool,
}

/// Removes secret `name`'s file (with the public half of a generated key) and its
/// lock entry, as one change: the lock is written first, then the files removed, and
/// if any step fails (a full disk) the lock and the files are all as they were.
pub fn remove(ws: &mut Workspace, name: &str) -> Result<Removed> {
    remove_with(ws, name, &[])
}

/// `remove`, writing the public files `beside` (a host file that named the secret's
/// key) in the same change.
pub fn remove_with(ws: &mut Workspace, name: &str, beside: &[(&Path, &[u8])]) -> Result<Removed> {
    super::workspace::check_name(name)?;
    let path = ws.locate(name).ok().map(|(p, _)| p);
    let in_lock = ws.lockfile()?.contains(name);
    if path.is_none() && !in_lock {
        return Err(Error::NoSecret {
            name: name.to_string(),
            near: ws.near_names(name),
        });
    }
    let generated = ws
        .policy
        .rule_for(name)
        .and_then(|(_, r)| r.generate)
        .is_some_and(|g| g.has_public_half());
    let public = layout::public_half(name)
        .or_else(|| generated.then(|| super::generate::public_half(name)))
        .map(|rel| ws.repo.root().join(rel))
        .filter(|p| std::fs::symlink_metadata(p).is_ok());
    let gone: Vec<&Path> = path
        .iter()
        .chain(public.iter())
        .map(PathBuf::as_path)
        .collect();
    let lock_file = ws.repo.lockfile();
    let lock_text = if ws.lockfile()?.remove(name) {
        Some(ws.lockfile()?.text().to_string())
    } else {
        None
    };
    let files: Vec<(&Path, &[u8], u32)> = lock_text
        .iter()
        .map(|t| (lock_file.as_path(), t.as_bytes(), fsutil::PUBLIC))
        .chain(beside.iter().map(|(p, d)| (*p, *d, fsutil::PUBLIC)))
        .collect();
    if let Err(e) = fsutil::write_and_remove(&files, &gone) {
        ws.forget_lockfile();
        return Err(e);
    }
    if let Some(p) = &path {
        prune_empty_dirs(&ws.repo, p);
    }
    Ok(Removed { path, in_lock })
}

/// Removes directories left empty under `secrets/` (never `secrets/` itself).
fn prune_empty_dirs(repo: &Repo, file: &Path) {
    let top = repo.secrets_dir();
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == top || !d.starts_with(&top) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// What `adopt` recorded for one secret.
pub struct Adopted {
    pub name: String,
    /// Whether an identity opened it (None: no identity was at hand to try).
    pub opened: Option<bool>,
}

/// Records in `keys.lock` secrets that sops or agenix wrote (`sops edit`, `sops
/// updatekeys`, `agenix -e`, `agenix -r`): each file's own header must name exactly the
/// readers its policy rule resolves to, and with identities at hand it must open. All
/// or nothing: one file that does not qualify leaves the lock as it was. `names` empty:
/// every secret whose file differs from the lock, or that the lock does not list.
pub fn adopt(
    ws: &mut Workspace,
    names: &[String],
    identities: Option<&mut Identities>,
    prompt: &dyn Prompt,
) -> Result<Vec<Adopted>> {
    let names: Vec<String> = if names.is_empty() {
        outside_changes(ws)?
    } else {
        names.to_vec()
    };
    let mut identities = identities;
    let mut entries = Vec::new();
    // What sops or agenix changed may be the value or only its readers: what the lock
    // knew of the value's life is kept, and a reader taken away is recorded as one.
    let known = lockfile::Lockfile::parse(ws.lockfile()?.text())?.entries;
    let labels = super::readers::labels(&ws.fleet);
    let label = |id: &str| labels.get(id).cloned();
    for name in &names {
        let (path, format) = ws.locate(name)?;
        let rel = ws.repo.rel(&path);
        let at = Location::named(&rel);
        let rule = ws.rule(name)?;
        if rule.format != format {
            return Err(Error::InvalidFile {
                at,
                reason: format!(
                    "its policy rule ({}) says format {}: re-encrypt it with `keys encrypt --force {name}`",
                    rule.at,
                    rule.format.name()
                ),
            });
        }
        let resolved = ws.policy.resolve(rule, &ws.fleet)?;
        let data = fsutil::read(&path)?;
        let readers = format::examine(format, &data).map_err(|reason| Error::InvalidFile {
            at: at.clone(),
            reason,
        })?;
        if let Some(what) = readers.differs_from(&resolved.recipients, resolved.shamir.as_ref()) {
            return Err(Error::InvalidFile {
                at,
                reason: format!(
                    "its recipients differ from its policy rule ({}): {what}; run `keys rekey` instead",
                    rule.at
                ),
            });
        }
        let opened = match identities.as_deref_mut() {
            Some(ids) if !ids.is_empty() => {
                open_file(&path, format, ids, prompt, Mac::Check)?;
                Some(true)
            }
            _ => None,
        };
        entries.push((
            Adopted {
                name: name.clone(),
                opened,
            },
            match known.get(name).filter(|e| e.format == format) {
                Some(e) => e.rekeyed(lockfile::sha256_hex(&data), resolved.fingerprints, &label),
                None => lockfile::Entry {
                    format,
                    sha256: lockfile::sha256_hex(&data),
                    recipients: resolved.fingerprints,
                    changed: None,
                    seen: Vec::new(),
                },
            },
        ));
    }
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let lock = ws.lockfile()?;
    for (adopted, entry) in &entries {
        lock.upsert(&adopted.name, entry);
    }
    let text = lock.text().to_string();
    let lock_file = ws.repo.lockfile();
    if let Err(e) = fsutil::write_batch(&[(lock_file.as_path(), text.as_bytes(), fsutil::PUBLIC)]) {
        ws.forget_lockfile();
        return Err(e);
    }
    Ok(entries.into_iter().map(|(a, _)| a).collect())
}

/// The secrets whose file differs from `keys.lock`, or that it does not list.
fn outside_changes(ws: &mut Workspace) -> Result<Vec<String>> {
    let lock = lockfile::Lockfile::parse(ws.lockfile()?.text())?;
    let mut out = Vec::new();
    for (name, _, path) in super::workspace::secret_files(&ws.repo)? {
        let changed = match lock.entries.get(&name) {
            Some(e) => e.sha256 != lockfile::sha256_hex(&fsutil::read(&path)?),
            None => true,
        };
        if changed {
            out.push(name);
        }
    }
    Ok(out)
}
