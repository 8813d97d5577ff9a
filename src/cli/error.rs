//! How a failure reaches the user: the one-line message, what to do next, and the
//! exit code. Every hint and the whole exit-code table are here; library errors say
//! only what went wrong and where.

use std::io::Write;

use crate::error::Error;

/// Exit codes, one per class of failure. Documented in the man page and README.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (0, "success"),
    (1, "internal error (a bug: please report it)"),
    (
        2,
        "usage: bad arguments, or input is needed and there is no terminal",
    ),
    (
        3,
        "invalid input: a key, file or name that does not parse or is not allowed (a weak key, a symbolic link in the repository)",
    ),
    (
        4,
        "cannot decrypt: no identity opens the file, or a passphrase is wrong or missing",
    ),
    (
        5,
        "file system: a file cannot be read or written, is not a regular file where one is needed, is readable by others, or already exists",
    ),
    (6, "OS keyring unavailable, locked or not answering"),
    (7, "not inside a keys repository"),
    (
        8,
        "check found problems: plaintext, drift, edits outside keys, missing or unlisted files; or a host cannot decrypt what `keys update` would send it",
    ),
    (
        9,
        "an external program (git, the editor, ssh, rsync, nixos-anywhere) is missing or failed, or a host does not present its pinned key",
    ),
    (10, "another keys process is writing this repository"),
    (
        130,
        "interrupted (Ctrl-C, SIGTERM, SIGHUP); temporary plaintext removed",
    ),
];

/// The table as `keys --help` ends it.
pub(super) fn exit_codes_help() -> String {
    let mut s = String::from("Exit status:\n");
    for (code, what) in EXIT_CODES {
        s.push_str(&format!("  {code:<3} {what}\n"));
    }
    s
}

/// The exit code for `e`, by the table above.
pub(super) fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Usage { .. } => 2,
        Error::InvalidKey { .. }
        | Error::WeakKey { .. }
        | Error::UnsupportedKey { .. }
        | Error::InvalidFile { .. }
        | Error::InvalidName { .. }
        | Error::Symlink { .. }
        | Error::Corrupt { .. }
        | Error::MacMismatch { .. }
        | Error::Encrypt { .. } => 3,
        Error::NoPassphrase { .. } | Error::WrongPassphrase { .. } | Error::NoIdentity { .. } => 4,
        Error::Io { .. }
        | Error::Exists { .. }
        | Error::OpenPermissions { .. }
        | Error::NotAFile { .. } => 5,
        Error::Keyring { .. } => 6,
        Error::NotARepo { .. } => 7,
        Error::CheckFailed { .. } | Error::Undeployable { .. } => 8,
        Error::External { .. } | Error::Remote { .. } => 9,
        Error::Busy { .. } => 10,
        Error::Interrupted { .. } => 130,
        Error::Batch { first, .. } => exit_code(first),
    }
}

/// Prints `e` and its hint on stderr.
pub(super) fn report(e: &Error) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "keys: error: {e}");
    if let Some(hint) = hint(e) {
        let _ = writeln!(err, "  hint: {hint}");
    }
}

/// What the user can do next about `e`.
pub(crate) fn hint(e: &Error) -> Option<String> {
    let text = match e {
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
        Error::InvalidFile { .. } => "fix the file at the place named, then run the command again",
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
        Error::Usage { hint, .. } => return Some(hint.clone()),
        Error::External { program, .. } => {
            return Some(format!("check that {program} is installed and works"));
        }
        Error::Interrupted { .. } => return None,
        Error::Busy { .. } => "wait for it to finish, then run the command again",
        Error::Batch { first, .. } => return hint(first),
        Error::CheckFailed { .. } => "fix what is listed above, then run `keys check` again",
        Error::Undeployable { host, .. } => {
            return Some(format!(
                "run `keys rekey --host {host}` (and `keys check`), then update again; nothing was sent"
            ));
        }
        Error::Remote { hint, .. } => return Some(hint.clone()),
    };
    Some(text.to_string())
}
