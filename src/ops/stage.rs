//! The `--extra-files` tree nixos-anywhere copies onto a new host: its pre-generated
//! SSH host key (decrypted from the repository), the sops-nix age key file when the
//! host file asks for one, and the own keys of its containers. The tree is built in a
//! private RAM-backed directory; `clean` wipes one.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::secret;
use super::workspace::Workspace;
use crate::crypto::sops::Mac;
use crate::error::{Error, Location, Result};
use crate::identity::{Identities, Parsed, Prompt};
use crate::layout;
use crate::policy::fleet::Host;
use crate::policy::host_file::HOST_KEY;
use crate::recipient::Recipient;
use crate::scratch::{Medium, Scratch};

/// The staged tree inside the private directory `stage-install` makes.
pub const TREE: &str = "tree";

/// One file of the tree: its path relative to the tree root, content and mode.
pub struct StagedFile {
    pub rel: String,
    pub data: Zeroizing<Vec<u8>>,
    pub mode: u32,
}

/// `rel` below the host's persist prefix, as a path inside the tree.
fn in_tree(host: &Host, rel: &str) -> String {
    host.on_host(rel).trim_start_matches('/').to_string()
}

/// Decrypts the host's key (and its containers' own keys) and lays out the files of
/// its tree. Each stored key must match the public key the host file names.
pub fn files(
    ws: &Workspace,
    host: &Host,
    identities: &mut Identities,
    prompt: &dyn Prompt,
) -> Result<Vec<StagedFile>> {
    let mut out = Vec::new();
    let key = open_key(
        ws,
        &layout::host_key_secret(&host.name),
        &host.key,
        identities,
        prompt,
    )?;
    out.push(private_file(in_tree(host, HOST_KEY), &key.text));
    out.push(public_file(
        in_tree(host, &format!("{HOST_KEY}.pub")),
        &host.key,
        &format!("root@{}", host.name),
    ));
    if let Some(key_file) = &host.age_key_file {
        let identity = key.parsed.age_identity()?;
        let public = host.key.to_x25519().unwrap_or_default();
        let mut text = Zeroizing::new(format!("# public key: {public}\n").into_bytes());
        text.extend_from_slice(identity.as_bytes());
        text.push(b'\n');
        out.push(StagedFile {
            rel: in_tree(host, key_file.trim_start_matches('/')),
            data: text,
            mode: 0o600,
        });
    }
    for c in &host.containers {
        let Some(own) = &c.own_key else { continue };
        let secret = layout::container_key_secret(&host.name, &c.name);
        let key = open_key(ws, &secret, own, identities, prompt)?;
        let rel = c.own_key_path();
        out.push(private_file(in_tree(host, &rel), &key.text));
        out.push(public_file(
            in_tree(host, &format!("{rel}.pub")),
            own,
            &format!("root@{}", c.name),
        ));
    }
    Ok(out)
}

/// A secret that a policy rule marks as a disk encryption key of the host: one named
/// `HOST/…` or `hosts/HOST/…` whose rule has `disk_encryption_key: PATH`. keys
/// install decrypts it into the private directory beside the tree (never into the
/// tree, which is copied onto the new system) and hands it to nixos-anywhere
/// `--disk-encryption-keys PATH FILE`.
pub struct DiskKey {
    pub name: String,
    /// Where nixos-anywhere puts it on the installer, for disko to read.
    pub remote: String,
    pub file: PathBuf,
    pub format: crate::format::Format,
}

/// The host's disk encryption keys, sorted by name; two at the same installer path
/// are refused.
pub fn disk_keys(ws: &Workspace, host: &Host) -> Result<Vec<DiskKey>> {
    let prefixes = [format!("{}/", host.name), format!("hosts/{}/", host.name)];
    let mut names: Vec<String> = super::workspace::secret_files(&ws.repo)?
        .into_iter()
        .map(|(name, _, _)| name)
        .filter(|name| prefixes.iter().any(|p| name.starts_with(p.as_str())))
        .collect();
    names.dedup();
    let mut keys: Vec<DiskKey> = Vec::new();
    for name in names {
        let Some((_, rule)) = ws.policy.rule_for(&name) else {
            continue;
        };
        let Some(remote) = &rule.disk_encryption_key else {
            continue;
        };
        if let Some(other) = keys.iter().find(|k| k.remote == *remote) {
            return Err(Error::InvalidFile {
                at: rule.at.clone(),
                reason: format!(
                    "secrets {} and {name} are both {}'s disk encryption key at {remote}",
                    other.name, host.name
                ),
            });
        }
        let (file, format) = ws.locate(&name)?;
        keys.push(DiskKey {
            name,
            remote: remote.clone(),
            file,
            format,
        });
    }
    Ok(keys)
}

/// Decrypts the disk encryption keys, in order.
pub fn open_disk_keys(
    keys: &[DiskKey],
    identities: &mut Identities,
    prompt: &dyn Prompt,
) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    keys.iter()
        .map(|k| Ok(secret::open_file(&k.file, k.format, identities, prompt, Mac::Check)?.plain))
        .collect()
}

/// Checks, without decrypting anything, that the keys `files` stages are stored:
/// the host's and those of its containers with their own.
pub fn check_stored_keys(ws: &Workspace, host: &Host) -> Result<()> {
    let own = host
        .containers
        .iter()
        .filter(|c| c.own_key.is_some())
        .map(|c| layout::container_key_secret(&host.name, &c.name));
    for name in std::iter::once(layout::host_key_secret(&host.name)).chain(own) {
        if ws.locate(&name).is_err() {
            return Err(Error::NoStoredKey { secret: name });
        }
    }
    Ok(())
}

struct OpenedKey {
    text: Zeroizing<Vec<u8>>,
    parsed: crate::identity::SshPrivate,
}

/// Decrypts a stored private key and checks it against the public key on record.
fn open_key(
    ws: &Workspace,
    name: &str,
    expected: &Recipient,
    identities: &mut Identities,
    prompt: &dyn Prompt,
) -> Result<OpenedKey> {
    let (path, format) = ws.locate(name).map_err(|_| Error::NoStoredKey {
        secret: name.to_string(),
    })?;
    let text = secret::open_file(&path, format, identities, prompt, Mac::Check)?.plain;
    let origin = path.display().to_string();
    let Parsed::Ssh(parsed) = Parsed::parse(&text, &origin)? else {
        return Err(Error::InvalidFile {
            at: Location::file(&path),
            reason: "does not hold an unencrypted OpenSSH private key".into(),
        });
    };
    if parsed.public()?.fingerprint() != expected.fingerprint() {
        return Err(Error::KeyMismatch {
            path,
            expected: expected.fingerprint(),
        });
    }
    Ok(OpenedKey { text, parsed })
}

fn private_file(rel: String, text: &[u8]) -> StagedFile {
    StagedFile {
        rel,
        data: Zeroizing::new(text.to_vec()),
        mode: 0o600,
    }
}

fn public_file(rel: String, key: &Recipient, comment: &str) -> StagedFile {
    StagedFile {
        rel,
        data: Zeroizing::new(format!("{key} {comment}\n").into_bytes()),
        mode: 0o644,
    }
}

/// Where a tree goes: a new private directory on tmpfs (the tree is its `tree`
/// subdirectory), or a new or empty directory the user named.
pub enum Target<'a> {
    Private,
    Out(&'a Path),
}

/// A staged tree. Dropping it wipes it; `keep` leaves it for the user.
pub struct Staged {
    scratch: Scratch,
    root: PathBuf,
}

impl Staged {
    /// The tree root to hand to `--extra-files` (mode 0755).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The private directory around the tree, for files that must not be copied.
    pub fn scratch(&self) -> &Scratch {
        &self.scratch
    }

    /// Keeps the tree for the user; returns where it is (the private directory around
    /// it is renamed so that no later run takes it for a killed run's leftover).
    pub fn keep(self) -> PathBuf {
        let rel = self
            .root
            .strip_prefix(self.scratch.path())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let kept = self.scratch.keep();
        if rel.as_os_str().is_empty() {
            kept
        } else {
            kept.join(rel)
        }
    }
}

/// Writes the files into a new tree: directories 0755, files created with their final
/// mode, nothing followed through a symlink.
pub fn write(target: Target<'_>, files: &[StagedFile], medium: Medium) -> Result<Staged> {
    let (scratch, prefix) = match target {
        Target::Private => {
            let scratch = Scratch::create(medium)?;
            scratch.create_dir(TREE, 0o755)?;
            (scratch, format!("{TREE}/"))
        }
        Target::Out(dir) => (Scratch::create_at(dir, 0o755, medium)?, String::new()),
    };
    for f in files {
        scratch.create_path(&format!("{prefix}{}", f.rel), &f.data, f.mode)?;
    }
    let root = match prefix.is_empty() {
        true => scratch.path().to_path_buf(),
        false => scratch.path().join(TREE),
    };
    Ok(Staged { scratch, root })
}

/// Whether `rel` (a path inside a tree) is one `stage-install` writes, below any
/// persist prefix.
fn is_staged_path(rel: &str) -> bool {
    let rel = rel.trim_end_matches(".pub");
    if rel == HOST_KEY || rel.ends_with(&format!("/{HOST_KEY}")) {
        return true;
    }
    let mut parts = rel.rsplit('/');
    parts.next() == Some("ssh_host_ed25519_key")
        && parts.next().is_some()
        && parts.next() == Some("containers")
        && parts.next() == Some("ssh")
        && parts.next() == Some("etc")
}

/// Whether the file is an age key file as `files` writes one for sops-nix.
fn is_age_key_file(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head.starts_with(b"# public key: ag"))
}

/// Wipes a tree `stage-install` made: only a directory of ours holding nothing but
/// the files stage-install writes. Its private parent goes too when it is one
/// `stage-install` made and nothing else is in it.
pub fn clean(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
    let foreign = |reason: &str| Error::NotStaged {
        dir: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    if !meta.is_dir() {
        return Err(foreign("is not a directory"));
    }
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(foreign("belongs to another user"));
    }
    // walkdir does not follow symlinks unless asked.
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| {
            let at = e.path().unwrap_or(dir).to_path_buf();
            Error::io(at, e.into())
        })?;
        let path = entry.path();
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() || !(is_staged_path(&rel) || is_age_key_file(path)) {
            return Err(foreign(&format!(
                "holds {rel}, which keys does not stage: it is not a staged tree"
            )));
        }
        // Zero-filling a file with a second name would wipe that other file too.
        let links = entry
            .metadata()
            .map_err(|e| Error::io(path, e.into()))?
            .nlink();
        if links > 1 {
            return Err(foreign(&format!(
                "holds {rel}, which has {links} names (a hard link): keys does not wipe through it"
            )));
        }
    }
    crate::scratch::wipe(dir)?;
    if let Some(parent) = dir.parent()
        && dir.file_name().is_some_and(|n| n == TREE)
        && parent
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("keys-"))
    {
        // Fails, harmlessly, when anything else is there.
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_paths_it_stages() {
        for yes in [
            "etc/ssh/ssh_host_ed25519_key",
            "etc/ssh/ssh_host_ed25519_key.pub",
            "persistent/etc/ssh/ssh_host_ed25519_key",
            "etc/ssh/containers/bot/ssh_host_ed25519_key.pub",
        ] {
            assert!(is_staged_path(yes), "{yes}");
        }
        for no in ["etc/passwd", "home/me/.bashrc", "etc/ssh/sshd_config"] {
            assert!(!is_staged_path(no), "{no}");
        }
    }
}
