//! The library's one error type. Every variant names the file (and the line or key
//! path where there is one) and never carries key material or plaintext; `hint` says
//! what to do next. The CLI maps variants to exit codes.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file something went wrong: the file, and a line when one is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<u64>,
}

impl Location {
    pub fn file(path: impl AsRef<Path>) -> Self {
        Location {
            file: path.as_ref().display().to_string(),
            line: None,
        }
    }

    /// A named input that is not a file on disk, such as standard input.
    pub fn named(name: &str) -> Self {
        Location {
            file: name.to_string(),
            line: None,
        }
    }

    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file, line),
            None => f.write_str(&self.file),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A key, recipient or identity that does not parse.
    #[error("{at}: {reason}")]
    InvalidKey { at: Location, reason: String },

    /// A public key that decodes but that no honest key pair has: a small-order or
    /// non-canonical point, whose shared secrets anyone can compute.
    #[error("{at}: {reason}")]
    WeakKey { at: Location, reason: String },

    /// A key that parses but that `keys` cannot use for this purpose.
    #[error("{at}: unsupported key type {key_type}{}", purpose.map(|p| format!(" {p}")).unwrap_or_default())]
    UnsupportedKey {
        at: Location,
        key_type: String,
        purpose: Option<&'static str>,
    },

    /// A fleet file (host file, admin file, policy) that is malformed.
    #[error("{at}: {reason}")]
    InvalidFile { at: Location, reason: String },

    /// A name (admin, host, container) that is not allowed.
    #[error("{at}: invalid name {name:?}: {reason}")]
    InvalidName {
        at: Location,
        name: String,
        reason: &'static str,
    },

    /// A passphrase was needed and none could be asked for.
    #[error(
        "{}: a passphrase is needed and there is no terminal to ask for it",
        at
    )]
    NoPassphrase { at: Location },

    /// The passphrase given did not open the key.
    #[error("{at}: wrong passphrase")]
    WrongPassphrase { at: Location },

    /// No identity that was found opens the file.
    #[error("{}: no identity can decrypt this file (searched: {})", at, searched.join("; "))]
    NoIdentity { at: Location, searched: Vec<String> },

    /// The file is not a valid encrypted file, or it was tampered with.
    #[error("{at}: {reason}")]
    Corrupt { at: Location, reason: String },

    /// A sops file whose values decrypt but whose MAC does not match them: values
    /// were added, removed, reordered or replaced outside sops and keys.
    #[error(
        "{at}: MAC mismatch: the values do not match the file's MAC (changed outside sops or keys)"
    )]
    MacMismatch { at: Location },

    /// Encryption failed (for example a plugin recipient whose plugin is missing).
    #[error("{at}: cannot encrypt: {reason}")]
    Encrypt { at: Location, reason: String },

    /// The OS keyring is unavailable, locked or did not answer.
    #[error("OS keyring ({backend}): {reason}")]
    Keyring { backend: String, reason: String },

    /// The working directory is not inside a fleet repository.
    #[error("{}: not inside a keys repository (no policies/ and recipients/ here or above)", start.display())]
    NotARepo { start: PathBuf },

    /// A private key file that other users can read or change.
    #[error("{}: private key file is open to other users (mode {mode:o})", path.display())]
    OpenPermissions { path: PathBuf, mode: u32 },

    /// A symbolic link inside the repository where `keys` reads, writes or removes:
    /// it is never followed (`path` is relative to the repository root).
    #[error("{}: is a symbolic link; keys does not read, write or remove through links in the repository", path.display())]
    Symlink { path: PathBuf },
    /// A key, identity or passphrase source that is a FIFO, a device or a directory
    /// where a regular file (or, for a file descriptor, a pipe) is needed.
    #[error("{name}: is {what}, not {wanted}")]
    NotAFile {
        name: String,
        what: &'static str,
        wanted: &'static str,
    },

    /// A file or identity that exists and would have been overwritten.
    #[error("{}: already exists", path.display())]
    Exists { path: PathBuf },

    /// A host name that no host file declares (`file` is the one that would).
    #[error("no host named {name} (no {file})")]
    NoHost { name: String, file: String },

    /// A name a new host or container cannot take: a container of that name runs on
    /// `host`, declared in `file` (hosts and containers share one namespace).
    #[error("{name} is already a container on host {host} ({file})")]
    NameTaken {
        name: String,
        host: String,
        file: String,
    },

    /// A host's new key that is the key it already has.
    #[error("host {host} already has this key")]
    SameKey { host: String },

    /// A generated key secret that no policy rule gives to exactly the admins, while
    /// `file`, the policy file keys would create for it, exists; `rule` is the rule
    /// that matches the secret now, if any.
    #[error("no policy rule gives secret {secret} to exactly the admins{}, and {file} exists", rule.as_ref().map(|at| format!(" (the rule at {at} matches it)")).unwrap_or_default())]
    KeyRuleMissing {
        secret: String,
        file: String,
        glob: String,
        rule: Option<Location>,
    },

    /// A generated key secret that the rule at `rule` would still decide, even with
    /// `file`, the policy file keys would create for it.
    #[error("the rule at {rule} would still decide secret {secret}, not {file}")]
    KeyRuleOverridden {
        secret: String,
        file: String,
        rule: Location,
    },

    /// The repository has no admin to give a generated key to.
    #[error("{dir}: no admins")]
    NoAdmins { dir: String },

    /// A host file without the address a command needs to reach the host.
    #[error("{file} has no address: keys cannot reach {host}")]
    NoAddress { host: String, file: String },

    /// A repository without the flake that is sent to a host.
    #[error("{}: no flake.nix here to send", dir.display())]
    NoFlake { dir: PathBuf },

    /// A host's (or container's) private key that the repository does not hold.
    #[error("secret {secret} does not exist: the repository holds no private key to stage")]
    NoStoredKey { secret: String },

    /// A stored private key whose public half is not the key the host file names.
    #[error("{}: holds a key whose public half is not {expected}, the key the host file names", path.display())]
    KeyMismatch { path: PathBuf, expected: String },

    /// An address to scan that is not `ADDR`, `ADDR:PORT`, `[ADDR]:PORT` or an IPv6
    /// address.
    #[error("ssh-keyscan target {target:?}: {reason}")]
    BadAddress {
        target: String,
        reason: &'static str,
    },

    /// An ssh option (a path in it) that rsync cannot pass on to ssh.
    #[error("{option} contains a single quote, which rsync cannot pass to ssh")]
    SshOptionQuote { option: String },

    /// A directory to wipe that is not a tree keys staged.
    #[error("{} {reason}; nothing was removed", dir.display())]
    NotStaged { dir: PathBuf, reason: String },

    /// A combination of arguments or inputs that makes no sense.
    #[error("{message}")]
    Usage { message: String, hint: String },

    /// An external program (git, the editor) is missing, failed, or said something
    /// `keys` cannot read.
    #[error("{program}: {reason}")]
    External { program: String, reason: String },

    /// A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the command; temporary plaintext
    /// was removed and nothing was written.
    #[error("interrupted by signal {signal}; nothing was written")]
    Interrupted { signal: i32 },

    /// Several files failed in a batch (a rekey); nothing was written.
    #[error("{} file{} failed, nothing was written: {}", failures.len(), if failures.len() == 1 { "" } else { "s" }, failures.join("; "))]
    Batch {
        failures: Vec<String>,
        first: Box<Error>,
    },

    /// Another `keys` process holds the repository's writer lock.
    #[error("{}: another keys process (pid {pid}) is writing this repository", path.display())]
    Busy { path: PathBuf, pid: String },

    /// A host would be sent secrets it cannot decrypt.
    #[error("{host} cannot decrypt {}: {}", if problems.len() == 1 { "1 secret".to_string() } else { format!("{} secrets", problems.len()) }, problems.join(", "))]
    Undeployable { host: String, problems: Vec<String> },

    /// A remote step failed (ssh, rsync, nixos-anywhere): what happened and what to do.
    #[error("{message}")]
    Remote { message: String, hint: String },

    /// `keys check` found problems (each already reported).
    #[error("check found {count} problem{}", if *count == 1 { "" } else { "s" })]
    CheckFailed { count: usize },
}

/// What kind of failure this is, for the CLI's exit-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Usage,
    InvalidInput,
    Decrypt,
    Io,
    Keyring,
    Repo,
    Check,
    External,
    Busy,
    Interrupted,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn class(&self) -> Class {
        match self {
            Error::Io { .. }
            | Error::Exists { .. }
            | Error::OpenPermissions { .. }
            | Error::NotAFile { .. } => Class::Io,
            Error::InvalidKey { .. }
            | Error::WeakKey { .. }
            | Error::UnsupportedKey { .. }
            | Error::InvalidFile { .. }
            | Error::InvalidName { .. }
            | Error::Symlink { .. }
            | Error::Corrupt { .. }
            | Error::MacMismatch { .. }
            | Error::Encrypt { .. }
            | Error::NoHost { .. }
            | Error::NameTaken { .. }
            | Error::SameKey { .. }
            | Error::KeyRuleMissing { .. }
            | Error::KeyRuleOverridden { .. }
            | Error::NoAdmins { .. }
            | Error::NoAddress { .. }
            | Error::NoFlake { .. }
            | Error::NoStoredKey { .. }
            | Error::KeyMismatch { .. } => Class::InvalidInput,
            Error::NoPassphrase { .. }
            | Error::WrongPassphrase { .. }
            | Error::NoIdentity { .. } => Class::Decrypt,
            Error::Keyring { .. } => Class::Keyring,
            Error::NotARepo { .. } => Class::Repo,
            Error::Usage { .. }
            | Error::BadAddress { .. }
            | Error::SshOptionQuote { .. }
            | Error::NotStaged { .. } => Class::Usage,
            Error::CheckFailed { .. } | Error::Undeployable { .. } => Class::Check,
            Error::Remote { .. } => Class::External,
            Error::Busy { .. } => Class::Busy,
            Error::Batch { first, .. } => first.class(),
            Error::External { .. } => Class::External,
            Error::Interrupted { .. } => Class::Interrupted,
        }
    }

    /// What the user can do next.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => "check the path",
                std::io::ErrorKind::PermissionDenied => "check the file's owner and mode",
                std::io::ErrorKind::Other => {
                    "replace the path named with a real directory or file; nothing was written"
                }
                _ => return None,
            },
            Error::InvalidKey { .. } => {
                "expected an age1… recipient, an AGE-SECRET-KEY-1… identity or an OpenSSH key"
            }
            Error::WeakKey { .. } => {
                "no real key pair has this public key: replace it with the genuine one (a host's is shown by `ssh-keyscan -t ed25519 HOST`)"
            }
            Error::UnsupportedKey { .. } => {
                "use an ed25519 key (ssh-keygen -t ed25519) or an age key (keys init --generate)"
            }
            Error::InvalidFile { .. } => {
                "fix the file at the place named, then run the command again"
            }
            Error::InvalidName { .. } => {
                "names use letters, digits, '.', '_' and '-' (admin and group names also '+' and '@'), do not start with '.' or '-', at most 63 characters"
            }
            Error::NoPassphrase { .. } => {
                "run on a terminal, or give the passphrase with KEYS_PASSPHRASE_FILE=FILE or --passphrase-fd N"
            }
            Error::WrongPassphrase { .. } => "try again with the right passphrase",
            Error::NoIdentity { .. } => {
                "pass -i FILE, set KEYS_IDENTITY, or run `keys init` to create an admin identity"
            }
            Error::Corrupt { .. } => "restore the file from git (git checkout -- FILE)",
            Error::MacMismatch { .. } => {
                "restore the file from git; `keys decrypt --ignore-mac` reads it anyway, without the check"
            }
            Error::Encrypt { .. } => {
                "check the recipient; a plugin recipient needs its age-plugin-* program on PATH"
            }
            Error::Keyring { .. } => {
                "unlock the keyring, choose another with KEYS_KEYRING=keyutils|secret-service|keychain, or use --store file"
            }
            Error::NotARepo { .. } => {
                "run `keys init`, cd into the fleet repository, or pass --repo DIR"
            }
            Error::OpenPermissions { path, .. } => {
                return Some(format!("run `chmod 600 {}`", path.display()));
            }
            Error::Symlink { .. } => {
                "replace the link with the file or directory it points to; nothing was written or removed"
            }
            Error::NotAFile { .. } => {
                "keys reads keys and passphrases from regular files only (and --passphrase-fd from a pipe); name the file itself"
            }
            Error::Exists { .. } => {
                "nothing was overwritten; remove the file first if you mean to replace it"
            }
            Error::NoHost { .. } => "`keys host ls` lists the hosts; `keys host add NAME` adds one",
            Error::NameTaken { .. } => {
                "host and container names share one namespace; choose another name"
            }
            Error::SameKey { .. } => "give the new key, or --generate one",
            Error::KeyRuleMissing { file, glob, .. } => {
                return Some(format!(
                    "add `- secrets: \"{glob}\"` with `format: age` and `readers: [admins]` as the first rule of {file}"
                ));
            }
            Error::KeyRuleOverridden { secret, .. } => {
                return Some(format!(
                    "give {secret} to the admins only in the policy file that sorts first, with format age"
                ));
            }
            Error::NoAdmins { dir } => return Some(format!("add an admin to {dir}/")),
            Error::NoAddress { .. } => {
                "add `address: IP-OR-DNS-NAME` to the host file (and `ssh_port:` if not 22)"
            }
            Error::NoFlake { .. } => {
                "`keys update` sends the repository's flake; add flake.nix at its root"
            }
            Error::NoStoredKey { .. } => {
                "store one with `keys host rotate HOST --generate` (or `keys container add NAME --host HOST --own-key`)"
            }
            Error::KeyMismatch { .. } => {
                "run `keys host rotate HOST --generate` to make a new matching pair"
            }
            Error::BadAddress { .. } => {
                "give ADDR or ADDR:PORT, e.g. 203.0.113.20:2222 or [2001:db8::1]:2222"
            }
            Error::SshOptionQuote { .. } => "use paths without single quotes",
            Error::NotStaged { .. } => "give --clean the path `keys stage-install` printed",
            Error::Usage { hint, .. } => return Some(hint.clone()),
            Error::External { program, .. } => {
                return Some(format!("check that {program} is installed and works"));
            }
            Error::Interrupted { .. } => return None,
            Error::Busy { .. } => "wait for it to finish, then run the command again",
            Error::Batch { first, .. } => return first.hint(),
            Error::CheckFailed { .. } => "fix what is listed above, then run `keys check` again",
            Error::Undeployable { host, .. } => {
                return Some(format!(
                    "run `keys rekey --host {host}` (and `keys check`), then update again; nothing was sent"
                ));
            }
            Error::Remote { hint, .. } => return Some(hint.clone()),
        };
        Some(hint.to_string())
    }
}

/// A usage error with its hint.
pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Usage {
        message: message.into(),
        hint: hint.into(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
