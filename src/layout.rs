//! Where things are in a fleet repository, and how the repository is found.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const RECIPIENTS: &str = "recipients";
pub const ADMINS: &str = "recipients/admins";
pub const HOSTS: &str = "recipients/hosts";
pub const POLICIES: &str = "policies";
pub const SECRETS: &str = "secrets";
pub const LOCKFILE: &str = "secrets/keys.lock";
/// What `keys push openbao` wrote to OpenBao: paths and versions, no values.
pub const OPENBAO_LOCK: &str = "secrets/openbao.lock";

/// The file a writing `keys` holds its lock on, at the repository root.
pub const WRITER: &str = ".keys-writer";
/// The journal of a rekey in progress, at the repository root.
pub const REKEY_JOURNAL: &str = ".keys-journal";
/// The journal of a host key rotation in progress, at the repository root.
pub const ROTATION_JOURNAL: &str = ".keys-rotation";
/// The lock's spare, in the git directory (`Repo::lock_spare`).
pub const LOCK_SPARE: &str = "keys-lock.spare";
/// Files `keys` keeps at the repository root while it runs, which git must not pick up.
pub const RUN_FILES: [&str; 3] = [WRITER, REKEY_JOURNAL, ROTATION_JOURNAL];

/// The secret holding a host's generated private key.
pub fn host_key_secret(host: &str) -> String {
    format!("hosts/{host}/ssh_host_ed25519_key")
}

/// The secret holding a deploy key's private half, for the admins (and the CI).
pub fn deploy_key_secret(name: &str) -> String {
    format!("deploy/{name}")
}

/// The secret holding a container's own generated private key.
pub fn container_key_secret(host: &str, container: &str) -> String {
    format!("hosts/{host}/containers/{container}/ssh_host_ed25519_key")
}

/// Where a generated host or container key (`hosts/**/ssh_host_ed25519_key`) keeps
/// its public half, relative to the root: `secrets/NAME.pub`, as ssh names it. It is
/// written with the key and lets `keys check` compare the stored key with the host
/// file without decrypting it. None for other secrets.
pub fn public_half(name: &str) -> Option<String> {
    (name.starts_with("hosts/") && name.ends_with("/ssh_host_ed25519_key"))
        .then(|| format!("{SECRETS}/{name}.pub"))
}

/// A fleet repository's root. Making one confines the file operations of `fsutil`
/// below it: nothing there is read, written or removed through a symbolic link.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

impl Repo {
    /// `--repo DIR`, else `KEYS_REPO`, else the nearest ancestor of `cwd` that has
    /// `policies/` and `recipients/`.
    pub fn discover(flag: Option<&Path>, env: Option<&Path>, cwd: &Path) -> Result<Repo> {
        if let Some(dir) = flag.or(env) {
            let root = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                cwd.join(dir)
            };
            if !is_repo(&root) {
                return Err(Error::NotARepo { start: root });
            }
            return Ok(Repo::at(root));
        }
        cwd.ancestors()
            .find(|d| is_repo(d))
            .map(|d| Repo::at(d.to_path_buf()))
            .ok_or_else(|| Error::NotARepo {
                start: cwd.to_path_buf(),
            })
    }

    /// A repository at `root` that may not exist yet (for `keys init`).
    pub fn at(root: PathBuf) -> Repo {
        crate::fsutil::confine(&root);
        Repo { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn admins_dir(&self) -> PathBuf {
        self.root.join(ADMINS)
    }

    pub fn hosts_dir(&self) -> PathBuf {
        self.root.join(HOSTS)
    }

    pub fn policies_dir(&self) -> PathBuf {
        self.root.join(POLICIES)
    }

    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join(SECRETS)
    }

    pub fn admin_file(&self, name: &str) -> PathBuf {
        self.admins_dir().join(format!("{name}.pub"))
    }

    /// `secrets/keys.lock`.
    pub fn lockfile(&self) -> PathBuf {
        self.root.join(LOCKFILE)
    }

    /// Where the lock a write replaced is kept until the next write, which writes
    /// over it instead of a new file: inside the git directory, so it is no file of
    /// the work tree. On ext4 a new file of the lock's size, and freeing the old
    /// one's blocks, cost the filesystem more than overwriting the same bytes in
    /// place; in a fleet of thousands of secrets that is most of the cost of a
    /// write. `None` where the root has no `.git` directory (a fleet outside git,
    /// a linked work tree): every write makes a new file.
    pub fn lock_spare(&self) -> Option<PathBuf> {
        let git = self.root.join(".git");
        std::fs::symlink_metadata(&git)
            .is_ok_and(|meta| meta.is_dir())
            .then(|| git.join(LOCK_SPARE))
    }

    pub fn host_file(&self, name: &str) -> PathBuf {
        self.hosts_dir().join(format!("{name}.yaml"))
    }

    /// A path relative to the root, for messages.
    pub fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

fn is_repo(dir: &Path) -> bool {
    dir.join(POLICIES).is_dir() && dir.join(RECIPIENTS).is_dir()
}

/// The longest admin, group, host or container name accepted.
pub const MAX_NAME: usize = 63;

/// Why a segment of a secret name, or a whole admin or group name, is not allowed:
/// the one rule both follow. A segment is letters, digits, '.', '_', '-', '+' and
/// '@', not empty and not starting with '.' or '-' (so no `.`, `..`, hidden file or
/// option, and never a ':' as in `host:NAME`).
fn segment_fault(segment: &str) -> Option<&'static str> {
    match segment {
        "" => Some("empty"),
        s if s.starts_with('.') => Some("starts with '.'"),
        s if s.starts_with('-') => Some("starts with '-'"),
        s if !s.chars().all(segment_char) => {
            Some("only letters, digits, '.', '_', '-', '+' and '@' are allowed")
        }
        _ => None,
    }
}

fn segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@')
}

/// Checks an admin or group name: one segment of a secret name (see
/// `check_secret_name`), at most `MAX_NAME` characters. `host:` and `container:` are
/// never names.
pub fn check_reader_name(name: &str) -> std::result::Result<(), &'static str> {
    if let Some(fault) = segment_fault(name) {
        return Err(fault);
    }
    if name.len() > MAX_NAME {
        return Err("longer than 63 characters");
    }
    Ok(())
}

/// Checks a host or container name: an admin name (`check_reader_name`) without '+'
/// or '@', since it also names a flake attribute, a NixOS module and a container.
pub fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    check_reader_name(name)?;
    if name.contains(['+', '@']) {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// The longest secret name accepted.
pub const MAX_SECRET_NAME: usize = 200;

/// Checks a secret name such as `bot/telegram-token`: '/'-separated segments, each
/// following the rule of `segment_fault`, and not absolute. The name maps to
/// `secrets/NAME.EXT`.
pub fn check_secret_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_SECRET_NAME {
        return Err("longer than 200 characters");
    }
    if name.starts_with('/') {
        return Err("absolute; give it relative to secrets/, e.g. bot/telegram-token");
    }
    if name.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err("has an empty segment ('//' or a trailing '/')"),
            "." | ".." => return Err("has a '.' or '..' segment"),
            s if s.starts_with('.') => return Err("has a segment starting with '.'"),
            s if s.starts_with('-') => return Err("has a segment starting with '-'"),
            s if segment_fault(s).is_some() => {
                return Err("only letters, digits, '.', '_', '-', '+', '@' and '/' are allowed");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether one of two secret names is a directory of the other (`bot` and `bot/x`).
pub fn secret_names_nest(a: &str, b: &str) -> bool {
    let nested = |outer: &str, inner: &str| {
        inner.len() > outer.len()
            && inner.starts_with(outer)
            && inner.as_bytes()[outer.len()] == b'/'
    };
    nested(a, b) || nested(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for ok in [
            "bot/telegram-token",
            "x",
            "vps-x86/restic.password",
            "a/b/c/d",
            "me@host+1",
        ] {
            assert_eq!(check_secret_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "bot/../../x",
            "bot/./x",
            "./x",
            "bot//x",
            "bot/",
            "-rf",
            "bot/-x",
            ".hidden",
            "bot/.git",
            "a\nb",
            "a\u{7f}",
            "a b",
            "a\\b",
            "ümlaut",
            &"x".repeat(201),
        ] {
            assert!(check_secret_name(bad).is_err(), "{bad:?}");
        }
        assert!(secret_names_nest("bot", "bot/x"));
        assert!(secret_names_nest("bot/x/y", "bot/x"));
        assert!(!secret_names_nest("bot", "bots/x"));
        assert!(!secret_names_nest("bot", "bot"));
    }

    #[test]
    fn names() {
        for ok in ["demo", "vps-arm", "nannuo-bot", "a", "x86_64.box"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
            assert_eq!(check_reader_name(ok), Ok(()), "{ok}");
        }
        for ok in ["me@laptop", "ops+oncall", "_x", "9"] {
            assert_eq!(check_reader_name(ok), Ok(()), "{ok}");
            assert_eq!(check_secret_name(ok), Ok(()), "{ok}");
        }
        assert!(check_name("me@laptop").is_err());
        for bad in [
            "",
            "-x",
            ".hidden",
            "a/b",
            "..",
            "a b",
            "é",
            "host:vps-arm",
            "container:bot",
            "host:",
            "a:b",
            &"x".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
            assert!(check_reader_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn discovery_walks_up_and_honours_flag_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("policies")).unwrap();
        std::fs::create_dir_all(root.join("recipients/hosts")).unwrap();
        let deep = root.join("recipients/hosts");
        assert_eq!(Repo::discover(None, None, &deep).unwrap().root(), root);
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            Repo::discover(Some(other.path()), Some(root), &deep),
            Err(Error::NotARepo { .. })
        ));
        assert_eq!(
            Repo::discover(None, Some(root), other.path())
                .unwrap()
                .root(),
            root
        );
        assert!(Repo::discover(None, None, other.path()).is_err());
    }
}
