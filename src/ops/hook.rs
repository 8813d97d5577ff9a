//! `keys hook install`: the pre-commit hook that runs `keys check --staged`.
//!
//! The hook is a POSIX sh script that fails closed: the commit goes through only when
//! `keys check --staged` ran and passed in the fleet directory. A pre-commit hook that
//! was there before is kept beside it as `pre-commit.before-keys` and run after a
//! passing check.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{self, Error, Result};
use crate::fsutil;
use crate::git::{self, Env};

/// The line that marks a hook as ours, so a second install recognises it.
pub const MARKER: &str = "# keys pre-commit hook";
/// What an existing hook is renamed to when ours takes its place.
pub const PREVIOUS: &str = "pre-commit.before-keys";
/// Mode of the hooks directory when it is created, and of the hook.
const EXECUTABLE: u32 = 0o755;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// A new hook was written at this path.
    New(PathBuf),
    /// Our hook was already there; nothing changed.
    Already(PathBuf),
    /// An existing hook was kept: renamed to `previous`, and our hook runs it after the check.
    Chained { hook: PathBuf, previous: PathBuf },
}

/// Installs the pre-commit hook for the git repository containing `dir` (the fleet
/// root). `keys_exe` is the absolute path of the running keys binary, used only when
/// `keys` is not on PATH at commit time. Err(usage error with hint `git init`) when `dir`
/// is not in a git work tree. A hook of ours that differs (another fleet directory or
/// binary) is replaced and reported as `New`.
pub fn install(dir: &Path, keys_exe: &Path) -> Result<Installed> {
    install_env(dir, keys_exe, &[], &git::current_dir()?)
}

fn install_env(dir: &Path, keys_exe: &Path, env: Env, cwd: &Path) -> Result<Installed> {
    let not_a_repo = || {
        error::usage(
            format!("{}: not inside a git work tree", dir.display()),
            "run `git init` first, then `keys hook install` again",
        )
    };
    let prefix = git::work_tree_prefix(dir, env, cwd)?.ok_or_else(not_a_repo)?;
    let hooks = git::hooks_dir_env(dir, env, cwd)?.ok_or_else(not_a_repo)?;
    let exe = std::path::absolute(keys_exe).map_err(|e| Error::io(keys_exe, e))?;
    let script = script(&prefix, &exe);

    fsutil::create_dir_all(&hooks, EXECUTABLE)?;
    let hook = hooks.join("pre-commit");
    let meta = match fs::symlink_metadata(&hook) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fsutil::write_new(&hook, &script, EXECUTABLE)?;
            return Ok(Installed::New(hook));
        }
        Err(e) => return Err(Error::io(&hook, e)),
    };
    if meta.is_file() {
        let existing = fsutil::read(&hook)?;
        if is_ours(&existing) {
            if existing == script {
                return Ok(Installed::Already(hook));
            }
            fsutil::write_atomic(&hook, &script, EXECUTABLE)?;
            return Ok(Installed::New(hook));
        }
    } else if !meta.file_type().is_symlink() {
        return Err(error::usage(
            format!("{}: not a file", hook.display()),
            "move it away, then run `keys hook install` again",
        ));
    }
    let previous = keep_previous(&hook, &hooks.join(PREVIOUS), meta.is_file())?;
    if let Err(e) = fsutil::write_atomic(&hook, &script, EXECUTABLE) {
        // The old hook is still in place; do not leave a second name for it behind.
        let _ = fs::remove_file(&previous);
        return Err(e);
    }
    Ok(Installed::Chained { hook, previous })
}

/// Gives the existing hook its second name without ever leaving `hook` missing and
/// without overwriting anything: a hard link for a file (same bytes and mode), a copy
/// of the link for a symlink.
fn keep_previous(hook: &Path, previous: &Path, is_file: bool) -> Result<PathBuf> {
    let exists = || Error::Exists {
        path: previous.to_path_buf(),
    };
    if fs::symlink_metadata(previous).is_ok() {
        return Err(exists());
    }
    let made = if is_file {
        fs::hard_link(hook, previous)
    } else {
        let target = fs::read_link(hook).map_err(|e| Error::io(hook, e))?;
        std::os::unix::fs::symlink(target, previous)
    };
    made.map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => exists(),
        _ => Error::io(previous, e),
    })?;
    Ok(previous.to_path_buf())
}

fn is_ours(hook: &[u8]) -> bool {
    hook.split(|&b| b == b'\n')
        .any(|line| line == MARKER.as_bytes())
}

/// Single-quotes bytes for sh: every byte but `'` stands for itself inside quotes.
fn shell_quote(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 2);
    out.push(b'\'');
    for &b in raw {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The hook for a fleet at `prefix` (as `git rev-parse --show-prefix` prints it)
/// below the top of the work tree. The directory is written as `./…` so that `cd`
/// neither takes a leading `-` for an option nor consults CDPATH.
fn script(prefix: &str, keys_exe: &Path) -> Vec<u8> {
    let fleet = match prefix.trim_end_matches('/') {
        "" => ".".to_string(),
        rel => format!("./{rel}"),
    };
    let mut out = Vec::new();
    out.extend_from_slice(HEAD.as_bytes());
    out.extend_from_slice(b"fleet=");
    out.extend_from_slice(&shell_quote(fleet.as_bytes()));
    out.extend_from_slice(b"\n# The keys binary that installed this hook, used when `keys` is not on PATH.\nkeys_exe=");
    out.extend_from_slice(&shell_quote(keys_exe.as_os_str().as_bytes()));
    out.push(b'\n');
    out.extend_from_slice(BODY.as_bytes());
    out
}

const HEAD: &str = r#"#!/bin/sh
# keys pre-commit hook
# Written by `keys hook install`. It blocks the commit unless `keys check --staged`
# passes in the fleet directory, then runs the hook that was here before, if any
# (pre-commit.before-keys). Run `keys hook install` again rather than editing this.

# The fleet directory, relative to the top of the work tree, where git runs hooks.
"#;

const BODY: &str = r#"
blocked() {
	printf 'keys: commit blocked: %s\n' "$1" >&2
	exit 1
}

if command -v keys >/dev/null 2>&1; then
	keys=keys
elif [ -x "$keys_exe" ]; then
	keys=$keys_exe
else
	blocked "keys is neither on PATH nor at $keys_exe; install it, then commit again"
fi

case $0 in
/*) previous=${0%/*}/pre-commit.before-keys ;;
*/*) previous=$PWD/${0%/*}/pre-commit.before-keys ;;
*) previous=$PWD/pre-commit.before-keys ;;
esac

if ! (
	# Git may give these relative to the top of the work tree: pin them before
	# leaving it, and pin the work tree itself when only GIT_DIR is set.
	top=$PWD
	case ${GIT_DIR-} in '' | /*) ;; *) GIT_DIR=$top/$GIT_DIR && export GIT_DIR ;; esac
	case ${GIT_WORK_TREE-} in '' | /*) ;; *) GIT_WORK_TREE=$top/$GIT_WORK_TREE && export GIT_WORK_TREE ;; esac
	case ${GIT_INDEX_FILE-} in '' | /*) ;; *) GIT_INDEX_FILE=$top/$GIT_INDEX_FILE && export GIT_INDEX_FILE ;; esac
	case ${GIT_OBJECT_DIRECTORY-} in '' | /*) ;; *) GIT_OBJECT_DIRECTORY=$top/$GIT_OBJECT_DIRECTORY && export GIT_OBJECT_DIRECTORY ;; esac
	case ${GIT_COMMON_DIR-} in '' | /*) ;; *) GIT_COMMON_DIR=$top/$GIT_COMMON_DIR && export GIT_COMMON_DIR ;; esac
	if [ -n "${GIT_DIR-}" ] && [ -z "${GIT_WORK_TREE-}" ]; then
		GIT_WORK_TREE=$top
		export GIT_WORK_TREE
	fi
	cd "$fleet" && exec "$keys" check --staged
); then
	blocked "\`keys check --staged\` failed in $fleet; run it there to see why"
fi

if [ -x "$previous" ]; then
	exec "$previous" "$@"
fi
exit 0
"#;
