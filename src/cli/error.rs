//! How a failure reaches the user: the one-line message, what to do next, and the
//! exit code. Every hint and the whole exit-code table are here; library errors say
//! only what went wrong and where.

use std::io::Write;

use crate::error::{Error, FlakeProblem};

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
        "check found problems: plaintext, drift, edits outside keys, missing or unlisted files, a git ignore line that hides what keys keeps; or a host cannot decrypt what `keys update` would send it",
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
        Error::Bug { .. } => 1,
        Error::Usage { .. }
        | Error::NotInGit { .. }
        | Error::UnknownKeyring { .. }
        | Error::BadAddress { .. }
        | Error::SshOptionQuote { .. }
        | Error::SshOptionSpace { .. }
        | Error::NotStaged { .. } => 2,
        Error::InvalidKey { .. }
        | Error::WeakKey { .. }
        | Error::UnsupportedKey { .. }
        | Error::InvalidFile { .. }
        | Error::InvalidName { .. }
        | Error::Symlink { .. }
        | Error::Corrupt { .. }
        | Error::MacMismatch { .. }
        | Error::Encrypt { .. }
        | Error::NoSecret { .. }
        | Error::NoRule { .. }
        | Error::NoGenerator { .. }
        | Error::Unbound { .. }
        | Error::NoHost { .. }
        | Error::NoAdmin { .. }
        | Error::LastAdmin { .. }
        | Error::PolicyRefused { .. }
        | Error::NoReader { .. }
        | Error::NestedSecret { .. }
        | Error::EmptySecret { .. }
        | Error::NotSettable { .. }
        | Error::KeyPath { .. }
        | Error::NotEnvironment { .. }
        | Error::Unmerged { .. }
        | Error::NameTaken { .. }
        | Error::DeployKeyExists { .. }
        | Error::NoDeployKey { .. }
        | Error::InvalidArgument { .. }
        | Error::SameKey { .. }
        | Error::KeyRuleMissing { .. }
        | Error::KeyRuleOverridden { .. }
        | Error::NoAdmins { .. }
        | Error::NoAddress { .. }
        | Error::FlakeFile { .. }
        | Error::NoStoredKey { .. }
        | Error::KeyMismatch { .. }
        | Error::LocalPath { .. }
        | Error::NoLocalSecret { .. }
        | Error::UploadCollision { .. } => 3,
        Error::NoPassphrase { .. }
        | Error::WrongPassphrase { .. }
        | Error::NoIdentity { .. }
        | Error::TooFewGroups { .. }
        | Error::OpenBaoToken { .. } => 4,
        Error::Io { .. }
        | Error::Exists { .. }
        | Error::OpenPermissions { .. }
        | Error::NotAFile { .. }
        | Error::HookInTheWay { .. }
        | Error::NoRuntimeDir { .. }
        | Error::NotOnTmpfs { .. }
        | Error::UnsafeStagingDir { .. }
        | Error::UnsafeTempDir { .. } => 5,
        Error::Keyring { .. } => 6,
        Error::NotARepo { .. } => 7,
        Error::CheckFailed { .. }
        | Error::Undeployable { .. }
        | Error::IgnoredByGit { .. }
        | Error::MergeConflict { .. }
        | Error::LocalDrift { .. } => 8,
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

/// The file (and line) an error names, when it names one as its place: what
/// `keys check --json` reports for a fleet or policy file that does not load.
pub(crate) fn location(e: &Error) -> Option<crate::error::Location> {
    match e {
        Error::InvalidKey { at, .. }
        | Error::WeakKey { at, .. }
        | Error::UnsupportedKey { at, .. }
        | Error::InvalidFile { at, .. }
        | Error::InvalidName { at, .. }
        | Error::Corrupt { at, .. }
        | Error::IgnoredByGit { at, .. } => Some(at.clone()),
        Error::Io { path, .. } | Error::Symlink { path } => {
            Some(crate::error::Location::file(path))
        }
        _ => None,
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
        Error::TooFewGroups { .. } => {
            "pass one -i FILE for an identity of each of enough key groups (-i may be given more than once)"
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
        Error::NoSecret { near, .. } if !near.is_empty() => {
            return Some(format!(
                "did you mean {}? (`keys ls` lists the secrets)",
                near.join(", ")
            ));
        }
        Error::NoSecret { .. } => {
            "`keys ls` lists the secrets; `keys encrypt NAME` or `keys edit --new NAME` creates one"
        }
        Error::UploadCollision { .. } => {
            "give one of the secrets a name whose last segment differs, or drop upload: true from its rule"
        }
        Error::NoGenerator {
            clear_of: Some(hash),
            ..
        } => {
            return Some(format!(
                "it is the clear passphrase of {hash}, made with it: `keys rotate {hash}` makes a new pair"
            ));
        }
        Error::NoGenerator { .. } => {
            "give its rule `generate: {kind: KIND}` (alnum, hex, base64, passphrase, ssh-ed25519, wireguard, age, hashed-password), or write the value with `keys encrypt NAME` or `keys edit NAME`"
        }
        Error::NoRule { .. } => {
            "add a rule whose `secrets:` glob matches it to a policies/*.yaml file"
        }
        Error::Unbound { segment, kind, .. } => {
            return Some(match *kind {
                "container" => format!(
                    "add the container first (`keys container add {segment} --host HOST`), then run the command again"
                ),
                _ => format!(
                    "add the host first (`keys host add {segment} --key FILE`, or --generate), then run the command again"
                ),
            });
        }
        Error::NoAdmin { .. } => {
            "`keys status` lists the admins; `keys admin add NAME --key FILE` adds one"
        }
        Error::LastAdmin { .. } => {
            "add another admin first (`keys admin add NAME --key FILE`, then `keys rekey`), then remove this one"
        }
        Error::PolicyRefused { .. } => {
            "`keys status` lists the admins, hosts and containers; `keys rule ls` lists the rules"
        }
        Error::NoHost { near, .. } if !near.is_empty() => {
            return Some(format!(
                "did you mean {}? (`keys host ls` lists the hosts)",
                near.join(", ")
            ));
        }
        Error::NoHost { .. } => "`keys host ls` lists the hosts; `keys host add NAME` adds one",
        Error::NoReader { near, .. } if !near.is_empty() => {
            return Some(format!(
                "did you mean {}? (`keys status` lists the admins and hosts)",
                near.join(", ")
            ));
        }
        Error::NoReader { .. } => {
            "name an admin, a group of the policies, host:NAME or container:NAME (`keys status` lists them)"
        }
        Error::LocalPath { root, .. } => {
            return Some(format!(
                "leave out --path (the file is then {root}/NAME), or give a path below {root}"
            ));
        }
        Error::NoLocalSecret { host, .. } => {
            return Some(format!(
                "`keys remote ls --host {host}` lists what the host has and the record names"
            ));
        }
        Error::LocalDrift { host, .. } => {
            return Some(format!(
                "set again what is missing or changed (`keys remote set --host {host} NAME`), remove what is not recorded on the host, or drop a record with `keys remote rm --host {host} NAME`"
            ));
        }
        Error::NameTaken { .. } => {
            "host and container names share one namespace; choose another name"
        }
        Error::SameKey { .. } => "give the new key, or --generate one",
        Error::DeployKeyExists { name, .. } => {
            return Some(format!(
                "`keys deploy-key rotate {name}` gives it a new key pair; choose another name for another key"
            ));
        }
        Error::NoDeployKey { .. } => {
            "`keys deploy-key ls` lists the deploy keys; `keys deploy-key add NAME --host HOST` adds one"
        }
        Error::InvalidArgument {
            arg: "--command", ..
        } => {
            "give a one-line command without double quotes; for more, put a script on the host and give its path"
        }
        Error::InvalidArgument { arg: "--user", .. } => {
            "give the user's login name, e.g. root or deploy"
        }
        Error::InvalidArgument { arg, .. } => {
            return Some(format!("give another value for {arg}"));
        }
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
        Error::FlakeFile { path, problem } => {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            return Some(match (problem, file.as_ref()) {
                (FlakeProblem::Missing, "flake.lock") => {
                    "run `nix flake lock` and commit flake.lock, then run keys again".into()
                }
                (FlakeProblem::Missing, _) => {
                    "add flake.nix, with nixosConfigurations.ATTR for each host, at the repository root".into()
                }
                (FlakeProblem::Untracked, _) => {
                    format!("run `git add {file}` (and commit it), then run keys again")
                }
                (FlakeProblem::NotInGit, _) => {
                    "run `git init` and commit the flake, then update again".into()
                }
            });
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
        Error::SshOptionSpace { .. } => {
            "use paths without spaces or quotes for --ssh-key and $TMPDIR"
        }
        Error::NotStaged { .. } => "give --clean the path `keys stage-install` printed",
        Error::NestedSecret { .. } => {
            "choose a name that is not a prefix directory of another secret"
        }
        Error::EmptySecret { .. } => "pass --allow-empty if an empty secret is really meant",
        Error::NotSettable { .. } => {
            "use `keys edit NAME` (or `keys encrypt --force NAME`) to change it whole"
        }
        Error::KeyPath { .. } => {
            "`keys decrypt NAME` shows the whole document; a path is written as sops writes it, [\"key\"] for a map key and [N] for a list item"
        }
        Error::NotEnvironment { .. } => {
            "keys exec passes a secret's top-level strings, numbers, booleans and timestamps; read a nested value with `keys decrypt NAME --extract PATH`"
        }
        Error::Unmerged { .. } => "resolve the conflict and `git add` the file, then commit again",
        Error::NotInGit { .. } => "run `git init` first, then `keys hook install` again",
        Error::HookInTheWay { .. } => "move it away, then run `keys hook install` again",
        Error::MergeConflict { .. } => {
            "keep one line for each secret named (the one whose file the merge keeps), then `keys check` and `git add` the lock"
        }
        Error::IgnoredByGit { outside: false, .. } => {
            "remove that line (`keys init --fix-gitignore` does), so git sees every secret and plaintext beside them"
        }
        Error::IgnoredByGit { outside: true, .. } => {
            "remove that line from your global git ignore file, or negate it in the repository's .gitignore"
        }
        Error::UnknownKeyring { .. } => "use keychain, secret-service, keyutils or none",
        Error::NoRuntimeDir { disk, .. } => {
            return Some(format!(
                "set XDG_RUNTIME_DIR to a tmpfs directory of yours (mode 0700), or pass --allow-disk-temp to use {} (the plaintext may then reach the disk)",
                disk.display()
            ));
        }
        Error::NotOnTmpfs { .. } => {
            "stage on tmpfs, or pass --allow-disk-temp (the key may then reach the disk)"
        }
        Error::UnsafeStagingDir { .. } => {
            "give --out a new or empty directory of yours on tmpfs, in a directory only you can change"
        }
        Error::UnsafeTempDir { .. } => "set TMPDIR to a directory of yours",
        Error::Usage { hint, .. } => return Some(hint.clone()),
        Error::Bug { .. } => "this is a bug in keys: please report it",
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
        Error::OpenBaoToken { .. } => {
            "set BAO_TOKEN (or VAULT_TOKEN), or log in with `bao login` to write ~/.vault-token"
        }
    };
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// What the user sees for each library refusal: the exit code the table gives its
    /// meaning, a one-line message naming what was refused, and a hint.
    #[test]
    fn library_refusals_exit_by_their_meaning_with_a_hint() {
        let name = || "bot/token".to_string();
        let cases: Vec<(Error, u8, &str, &str)> = vec![
            (
                Error::NoSecret {
                    name: name(),
                    near: Vec::new(),
                },
                3,
                "no secret named bot/token (nothing at secrets/bot/token.*)",
                "keys ls",
            ),
            (
                Error::NoRule { name: name() },
                3,
                "no policy rule matches secret bot/token",
                "policies/*.yaml",
            ),
            (
                Error::NoGenerator {
                    name: name(),
                    rule: crate::error::Location::named("policies/p.yaml").at_line(4),
                    clear_of: None,
                },
                3,
                "policies/p.yaml:4: the rule for secret bot/token has no generate: option",
                "generate: {kind: KIND}",
            ),
            (
                crate::policy::fleet::no_host("web"),
                3,
                "no host named web (no recipients/hosts/web.yaml)",
                "keys host ls",
            ),
            (
                Error::NoReader {
                    name: "host:wbe".into(),
                    near: vec!["host:web".into()],
                },
                3,
                "no reader named host:wbe (not an admin, a group, host:NAME or container:NAME)",
                "did you mean host:web?",
            ),
            (
                Error::NestedSecret {
                    name: "a/b".into(),
                    other: "a".into(),
                },
                3,
                "secret a/b would nest with secret a (one is a directory of the other)",
                "prefix directory",
            ),
            (
                Error::EmptySecret { name: name() },
                3,
                "the plaintext for bot/token is empty; nothing was written",
                "--allow-empty",
            ),
            (
                Error::NotSettable {
                    name: name(),
                    reason: "is an age file, which has no keys to set",
                },
                3,
                "secret bot/token is an age file, which has no keys to set",
                "keys edit NAME",
            ),
            (
                Error::Unmerged {
                    path: "secrets/a.age".into(),
                },
                3,
                "secrets/a.age: unmerged in the git index; the staged contents cannot be checked",
                "git add",
            ),
            (
                Error::NotInGit {
                    dir: PathBuf::from("/srv/fleet"),
                },
                2,
                "/srv/fleet: not inside a git work tree",
                "git init",
            ),
            (
                Error::IgnoredByGit {
                    at: crate::error::Location::named(".gitignore").at_line(3),
                    path: "secrets/".into(),
                    outside: false,
                },
                8,
                ".gitignore:3: git ignores secrets/, which keys keeps and git must commit",
                "--fix-gitignore",
            ),
            (
                Error::HookInTheWay {
                    path: PathBuf::from(".git/hooks/pre-commit"),
                },
                5,
                ".git/hooks/pre-commit: not a file",
                "move it away",
            ),
            (
                Error::UnknownKeyring {
                    value: "vault".into(),
                },
                2,
                "KEYS_KEYRING=\"vault\" is not a keyring",
                "keyutils",
            ),
            (
                Error::NoRuntimeDir {
                    refused: vec!["/dev/shm does not exist".into()],
                    runtime_dir_set: false,
                    disk: PathBuf::from("/tmp"),
                },
                5,
                "no RAM-backed (tmpfs) directory for temporary plaintext: /dev/shm does not exist; $XDG_RUNTIME_DIR is not set",
                "--allow-disk-temp to use /tmp",
            ),
            (
                Error::NotOnTmpfs {
                    path: PathBuf::from("/home/me"),
                    reason: "is not on tmpfs (file system type 0xef53)".into(),
                },
                5,
                "/home/me is not on tmpfs (file system type 0xef53)",
                "--allow-disk-temp",
            ),
            (
                Error::UnsafeStagingDir {
                    path: PathBuf::from("/run/user/1000/out"),
                    reason: "is not empty".into(),
                },
                5,
                "/run/user/1000/out is not empty",
                "--out",
            ),
            (
                Error::UnsafeTempDir {
                    path: PathBuf::from("/tmp"),
                    reason: "is owned by uid 0".into(),
                },
                5,
                "/tmp is owned by uid 0",
                "TMPDIR",
            ),
            (
                Error::DeployKeyExists {
                    name: "ci".into(),
                    host: "web".into(),
                    file: "recipients/hosts/web.yaml".into(),
                },
                3,
                "deploy key ci already exists, on host web (recipients/hosts/web.yaml)",
                "keys deploy-key rotate ci",
            ),
            (
                Error::NoDeployKey { name: "ci".into() },
                3,
                "no deploy key named ci (no host file declares it under deploy_keys)",
                "keys deploy-key ls",
            ),
            (
                Error::InvalidArgument {
                    arg: "--command",
                    reason: "contains a double quote".into(),
                },
                3,
                "--command: contains a double quote; nothing was written",
                "without double quotes",
            ),
            (
                Error::Bug {
                    what: "\"a/b\" is not a plain file name".into(),
                },
                1,
                "internal error: \"a/b\" is not a plain file name",
                "please report it",
            ),
        ];
        let documented: Vec<u8> = EXIT_CODES.iter().map(|(code, _)| *code).collect();
        for (e, code, message, in_hint) in cases {
            assert_eq!(exit_code(&e), code, "{e:?}");
            assert!(documented.contains(&code), "{code} is not in the table");
            assert_eq!(e.to_string(), message);
            let hint = hint(&e).unwrap_or_default();
            assert!(hint.contains(in_hint), "{e:?}: {hint}");
        }
    }
}
