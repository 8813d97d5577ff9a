//! The library's one error type. Every variant names the file (and the line or key
//! path where there is one) and never carries key material or plaintext. What to do
//! next and the exit code are the command line's to say (`cli/error.rs`).

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

/// A place named by a path relative to the repository (or an empty name: nowhere in
/// particular).
impl From<&str> for Location {
    fn from(file: &str) -> Self {
        Location::named(file)
    }
}

impl From<String> for Location {
    fn from(file: String) -> Self {
        Location { file, line: None }
    }
}

impl From<&String> for Location {
    fn from(file: &String) -> Self {
        Location::named(file)
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

/// What is wrong with a file of the flake a host is installed or updated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlakeProblem {
    /// `flake.nix` or `flake.lock` is not at the repository root.
    Missing,
    /// It is there, but git does not track it, so nix does not see it.
    Untracked,
    /// The repository is not in a git work tree: there are no tracked files to send.
    NotInGit,
}

impl fmt::Display for FlakeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlakeProblem::Missing => "missing: a host is built only from a locked flake",
            FlakeProblem::Untracked => {
                "not tracked by git, and nix reads only the files git tracks"
            }
            FlakeProblem::NotInGit => {
                "not inside a git work tree: keys update sends the files git tracks"
            }
        })
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

    /// A sops file whose data key is shared among key groups, and the identities
    /// found open fewer groups than its threshold.
    #[error(
        "{at}: the identities found open {opened} of its {groups} key groups; {needed} are needed (Shamir threshold)"
    )]
    TooFewGroups {
        at: Location,
        opened: usize,
        groups: usize,
        needed: usize,
    },

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

    /// An admin name that no admin file declares.
    #[error("no admin named {name} (no recipients/admins/{name}.pub)")]
    NoAdmin { name: String },

    /// The one admin left, which is not removed.
    #[error("{name} is the only admin: without one, no one could decrypt the secrets")]
    LastAdmin { name: String },

    /// A change to the policy (a rule, an admin) that the policy would refuse once
    /// made: `at` is where it would go or what it breaks, `what` the change.
    #[error("{at}: {what}: {reason}; nothing was written")]
    PolicyRefused {
        at: String,
        what: String,
        reason: String,
    },

    /// A host name that no host file declares (`file` is the one that would).
    #[error("no host named {name} (no {file})")]
    NoHost {
        name: String,
        file: String,
        /// Host names close to it, nearest first.
        near: Vec<String>,
    },

    /// A reader name (an admin, a group, `host:NAME`, `container:NAME`) that names no
    /// one in the fleet or the policy.
    #[error("no reader named {name} (not an admin, a group, host:NAME or container:NAME)")]
    NoReader {
        name: String,
        /// Reader names close to it, nearest first.
        near: Vec<String>,
    },

    /// A name a new host or container cannot take: a container of that name runs on
    /// `host`, declared in `file` (hosts and containers share one namespace).
    #[error("{name} is already a container on host {host} ({file})")]
    NameTaken {
        name: String,
        host: String,
        file: String,
    },

    /// A deploy key name that a host file already declares (deploy key names are
    /// unique in the fleet: each names a secret, `deploy/NAME`).
    #[error("deploy key {name} already exists, on host {host} ({file})")]
    DeployKeyExists {
        name: String,
        host: String,
        file: String,
    },

    /// A deploy key name that no host file declares.
    #[error("no deploy key named {name} (no host file declares it under deploy_keys)")]
    NoDeployKey { name: String },

    /// A command-line value that is not allowed (`arg` names the option).
    #[error("{arg}: {reason}; nothing was written")]
    InvalidArgument { arg: &'static str, reason: String },

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

    /// A file of the flake that installing or updating a host needs: missing, not
    /// tracked by git (nix reads only what git tracks), or no git work tree at all.
    #[error("{}: {problem}", path.display())]
    FlakeFile {
        path: PathBuf,
        problem: FlakeProblem,
    },

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

    /// An ssh option (a path in it) that nixos-rebuild cannot pass on to ssh: it
    /// splits `NIX_SSHOPTS` at spaces.
    #[error("{option} contains a space or a quote, which NIX_SSHOPTS cannot carry to ssh")]
    SshOptionSpace { option: String },

    /// A directory to wipe that is not a tree keys staged.
    #[error("{} {reason}; nothing was removed", dir.display())]
    NotStaged { dir: PathBuf, reason: String },

    /// No secret of that name: nothing at `secrets/NAME.*` (nor, for a removal, in
    /// `secrets/keys.lock`).
    #[error("no secret named {name} (nothing at secrets/{name}.*)")]
    NoSecret {
        name: String,
        /// Existing names close to it, nearest first.
        near: Vec<String>,
    },

    /// No policy rule's `secrets:` glob matches the secret's name.
    #[error("no policy rule matches secret {name}")]
    NoRule { name: String },

    /// The rule that decides a secret does not say how to make its value.
    #[error("{rule}: the rule for secret {name} has no generate: option")]
    NoGenerator {
        name: String,
        rule: Location,
        /// The hashed password whose clear passphrase `name` is, if it is one.
        clear_of: Option<String>,
    },

    /// No rule matches a secret whose name is shaped for a rule that binds its first
    /// segment to a host (or container), and that segment names none.
    /// `rule` is that rule's glob and place.
    #[error(
        "no policy rule matches secret {name}: {segment} is not a {kind}, and the rule {rule} applies only to a {kind}'s name"
    )]
    Unbound {
        name: String,
        segment: String,
        kind: &'static str,
        rule: String,
    },

    /// A new secret whose name would make it a directory of another secret, or the
    /// other a directory of it.
    #[error("secret {name} would nest with secret {other} (one is a directory of the other)")]
    NestedSecret { name: String, other: String },

    /// An empty plaintext where the caller did not allow one; nothing was written.
    #[error("the plaintext for {name} is empty; nothing was written")]
    EmptySecret { name: String },

    /// A secret that has no value at a key path to set or remove (an age file, or a
    /// sops file with no document).
    #[error("secret {name} {reason}")]
    NotSettable { name: String, reason: &'static str },

    /// An `--extract` path that names nothing in the document: the file and the key
    /// path, never a value.
    #[error("{at}: {reason}")]
    KeyPath { at: Location, reason: String },

    /// A top-level key or value of a secret that cannot be an environment variable
    /// (`keys exec`): the file and the key, never a value.
    #[error("{at}: {reason}")]
    NotEnvironment { at: Location, reason: String },

    /// A path in the git index that is unmerged (a conflict), so its staged content
    /// cannot be checked.
    #[error("{path}: unmerged in the git index; the staged contents cannot be checked")]
    Unmerged { path: String },

    /// A directory that is not inside a git work tree where one is needed.
    #[error("{}: not inside a git work tree", dir.display())]
    NotInGit { dir: PathBuf },

    /// A line of a git ignore file that makes git ignore part of what keys keeps
    /// (`secrets/`, `policies/`, `recipients/`, the exports); `outside` when that
    /// file is not in the repository, so keys will not edit it.
    #[error("{at}: git ignores {path}, which keys keeps and git must commit")]
    IgnoredByGit {
        at: Location,
        path: String,
        outside: bool,
    },

    /// A merge of `keys.lock` in which both branches changed the same secrets.
    #[error("{file}: both branches changed {}", names.join(", "))]
    MergeConflict { file: String, names: Vec<String> },

    /// Something that is not a file where a git hook is to be written.
    #[error("{}: not a file", path.display())]
    HookInTheWay { path: PathBuf },

    /// The keyring named in $KEYS_KEYRING is not one `keys` knows.
    #[error("KEYS_KEYRING={value:?} is not a keyring")]
    UnknownKeyring { value: String },

    /// No RAM-backed directory may hold temporary plaintext: each place tried and why
    /// it was refused. `disk` is where it would go if a disk were allowed.
    #[error(
        "no RAM-backed (tmpfs) directory for temporary plaintext: {}{}",
        refused.join("; "),
        if *runtime_dir_set { "" } else { "; $XDG_RUNTIME_DIR is not set" }
    )]
    NoRuntimeDir {
        refused: Vec<String>,
        runtime_dir_set: bool,
        disk: PathBuf,
    },

    /// A directory for a staged tree that is not on tmpfs (or cannot be examined).
    #[error("{} {reason}", path.display())]
    NotOnTmpfs { path: PathBuf, reason: String },

    /// A directory that may not hold a staged tree: not new or empty, not ours, or
    /// in a directory others can change.
    #[error("{} {reason}", path.display())]
    UnsafeStagingDir { path: PathBuf, reason: String },

    /// The disk-backed temporary directory, allowed for plaintext, that may not hold
    /// it either.
    #[error("{} {reason}", path.display())]
    UnsafeTempDir { path: PathBuf, reason: String },

    /// A combination of arguments that makes no sense, or input that is needed when
    /// there is no terminal to ask for it.
    #[error("{message}")]
    Usage { message: String, hint: String },

    /// Something `keys` itself got wrong: a bug.
    #[error("internal error: {what}")]
    Bug { what: String },

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

    /// Two secrets a host is sent at deploy time would be one file there.
    #[error("{host}: {first} and {second} would both be uploaded as {key:?}")]
    UploadCollision {
        host: String,
        key: String,
        first: String,
        second: String,
    },

    /// A host would be sent secrets it cannot decrypt.
    #[error("{host} cannot decrypt {}: {}", if problems.len() == 1 { "1 secret".to_string() } else { format!("{} secrets", problems.len()) }, problems.join(", "))]
    Undeployable { host: String, problems: Vec<String> },

    /// OpenBao refused the token (unknown, expired or revoked).
    #[error("OpenBao at {addr} refused the token: {reason}")]
    OpenBaoToken { addr: String, reason: String },

    /// A remote step failed (ssh, rsync, nixos-anywhere): what happened and what to do.
    #[error("{message}")]
    Remote { message: String, hint: String },

    /// A path for a local secret that is not under its host's local root.
    #[error("--path {path:?} {reason} (host {host}'s local root is {root}, {file})")]
    LocalPath {
        host: String,
        path: String,
        root: String,
        file: String,
        reason: String,
    },

    /// A local secret that the host's record does not name.
    #[error("{file}: host {host} has no local secret {name}")]
    NoLocalSecret {
        host: String,
        name: String,
        file: String,
    },

    /// A host whose local secrets differ from its record (each already listed).
    #[error("host {host} differs from {file}: {count} problem{}", if *count == 1 { "" } else { "s" })]
    LocalDrift {
        host: String,
        file: String,
        count: usize,
    },

    /// `keys check` found problems (each already reported).
    #[error("check found {count} problem{}", if *count == 1 { "" } else { "s" })]
    CheckFailed { count: usize },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Up to three of `candidates` close to `name` (a typo, a missing segment), nearest
/// first: what a "did you mean" offers.
pub fn nearest(name: &str, candidates: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut scored: Vec<(f64, String)> = candidates
        .into_iter()
        .filter_map(|n| {
            let score = strsim::normalized_damerau_levenshtein(name, &n)
                .max(strsim::jaro_winkler(name, &n) - 0.1);
            (score >= 0.7 && n != name).then_some((score, n))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// A usage error with its hint.
pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Usage {
        message: message.into(),
        hint: hint.into(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
