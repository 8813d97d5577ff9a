//! Reading the git index and hooks directory for `keys check --staged` and `keys hook`.
//!
//! Everything here runs the `git` binary: one `git ls-files` and one `git cat-file
//! --batch` for the whole index, never a process per file, and never a path on git's
//! command line. Git runs in the fleet directory so that paths come back relative to
//! it, with `GIT_OPTIONAL_LOCKS=0` and `LC_ALL=C`. A relative `GIT_DIR` or
//! `GIT_WORK_TREE`, which git resolves against its own working directory, is made
//! absolute against the process's first, so that running git in another directory
//! does not change what it points at. (A relative `GIT_INDEX_FILE`, as hooks get it,
//! is resolved by git against the top of the work tree, the same from any directory in
//! it, and is passed on as it is.)

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use crate::error::{Error, Location, Result};

mod committed;

pub use committed::{Committed, head_and_parents};

/// One entry of the git index (stage 0), read from the object store, not the work tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// Path relative to `dir` passed below, '/'-separated, exactly as git has it.
    pub path: String,
    /// The index mode: 0o100644, 0o100755 or 0o120000 (symlink; data is the link target).
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Every index entry under `dir` (a directory inside a git work tree), with its staged
/// blob contents. Runs `git ls-files -s -z` (in `dir`, so paths come relative to it) and
/// one `git cat-file --batch` process fed object ids on stdin. Honours GIT_INDEX_FILE
/// and GIT_DIR from the environment. Gitlinks (mode 160000) are skipped. Unmerged
/// entries (stage 1-3) are a usage error naming the path (fail closed). A path that is
/// not UTF-8 is `Error::InvalidFile` naming it lossily. Any git failure (missing git,
/// non-zero exit, unparsable output, a missing object) is
/// `Error::External { program: "git", .. }` with git's error line in the reason.
pub fn staged_files(dir: &Path) -> Result<Vec<StagedFile>> {
    staged_files_env(dir, &[], &current_dir()?)
}

/// The files a commit could pick up, for the work-tree check: tracked plus untracked
/// not ignored (`git ls-files -z --cached --others --exclude-standard`, run in `dir`),
/// relative to `dir`, deduplicated, sorted. Untracked nested repositories (which git
/// lists as `dir/`) are left out; a tracked submodule appears as its directory's path.
/// Ok(None) when `dir` is not inside a git work tree (so the caller walks the
/// directory itself).
pub fn candidate_files(dir: &Path) -> Result<Option<Vec<String>>> {
    candidate_files_env(dir, &[], &current_dir()?)
}

/// The files git tracks under `dir` (`git ls-files -s -z`, run in `dir`), relative to
/// it, sorted: regular files and symlinks, not submodules (as a flake sees them).
/// Unmerged entries are `Error::Unmerged`. Ok(None) when `dir` is not inside a git
/// work tree.
pub fn tracked_files(dir: &Path) -> Result<Option<Vec<String>>> {
    check_dir(dir)?;
    let git = Git::new(&[], &current_dir()?);
    if git.in_work_tree(dir, "--show-prefix")?.is_none() {
        return Ok(None);
    }
    let listing = git.output(dir, &["ls-files", "-s", "-z"])?;
    let mut files: Vec<String> = parse_stage_listing(&listing)?
        .into_iter()
        .map(|e| e.path)
        .collect();
    files.sort_unstable();
    files.dedup();
    Ok(Some(files))
}

/// Who git would name as the author of a commit made in `dir` now: `Name <email>`
/// (`git var GIT_AUTHOR_IDENT` without its date), or None when git cannot say (not
/// a repository, no name configured, no git).
pub fn author(dir: &Path) -> Option<String> {
    let cwd = current_dir().ok()?;
    let git = Git::new(&[], &cwd);
    let out = git.run(dir, &["var", "GIT_AUTHOR_IDENT"]).ok()?;
    if !out.status.success() {
        return None;
    }
    let ident = String::from_utf8(out.stdout).ok()?;
    let ident = ident.trim_end();
    // `Name <email> SECONDS ZONE`: the date is the last two words.
    let mut parts = ident.rsplitn(3, ' ');
    let (_zone, _seconds, who) = (parts.next()?, parts.next()?, parts.next()?);
    (!who.is_empty() && !who.chars().any(char::is_control)).then(|| who.to_string())
}

/// The ignore-file line that makes git ignore a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredBy {
    /// The ignore file as git names it: relative to `dir` inside the repository
    /// (`.gitignore`, `sub/.gitignore`, `.git/info/exclude`), absolute outside it.
    pub source: String,
    pub line: usize,
    pub pattern: String,
    /// The path it ignores, as asked.
    pub path: String,
}

/// For each of `paths` (relative to `dir`, a directory with a trailing `/`) that git
/// would ignore whether or not it is tracked, the line that ignores it
/// (`git check-ignore -v --no-index --stdin -z`). A path a negated line (`!…`)
/// re-includes is not listed. Ok(None) outside a git work tree.
pub fn ignored_by(dir: &Path, paths: &[String]) -> Result<Option<Vec<IgnoredBy>>> {
    ignored_by_env(dir, paths, &[], &current_dir()?)
}

/// The untracked files under `pathspecs` (relative to `dir`) that git ignores
/// (`git ls-files -z --others --ignored --exclude-standard`). Ok(None) outside a
/// git work tree.
pub fn ignored_files(dir: &Path, pathspecs: &[&str]) -> Result<Option<Vec<String>>> {
    check_dir(dir)?;
    let git = Git::new(&[], &current_dir()?);
    if git.in_work_tree(dir, "--show-prefix")?.is_none() {
        return Ok(None);
    }
    let mut args = vec![
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--",
    ];
    args.extend(pathspecs);
    let listing = git.output(dir, &args)?;
    let mut files = Vec::new();
    for raw in records(&listing) {
        if !raw.ends_with(b"/") {
            files.push(utf8_path(raw)?);
        }
    }
    files.sort_unstable();
    Ok(Some(files))
}

pub(crate) fn ignored_by_env(
    dir: &Path,
    paths: &[String],
    env: Env,
    cwd: &Path,
) -> Result<Option<Vec<IgnoredBy>>> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    if git.in_work_tree(dir, "--show-prefix")?.is_none() {
        return Ok(None);
    }
    let args = ["check-ignore", "-v", "--no-index", "--stdin", "-z"];
    let mut input = Vec::new();
    for p in paths {
        input.extend_from_slice(p.as_bytes());
        input.push(0);
    }
    let out = git.run_with_input(dir, &args, input)?;
    // 1: nothing is ignored.
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(failed(&args, &out.status, &out.stderr));
    }
    let fields: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
    let mut found = Vec::new();
    for record in fields.chunks_exact(4) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let pattern = text(record[2]);
        if pattern.starts_with('!') {
            continue;
        }
        let line = text(record[1]).parse().map_err(|_| unparsable(&args))?;
        found.push(IgnoredBy {
            source: text(record[0]),
            line,
            pattern,
            path: text(record[3]),
        });
    }
    Ok(Some(found))
}

/// The hooks directory git uses for the repository containing `dir`, honouring
/// core.hooksPath (`git rev-parse --path-format=absolute --git-path hooks`; a relative
/// answer would be taken relative to `dir`). Ok(None) when `dir` is not inside a git
/// work tree.
pub fn hooks_dir(dir: &Path) -> Result<Option<PathBuf>> {
    hooks_dir_env(dir, &[], &current_dir()?)
}

/// Environment changes for the git processes: `Some` sets a variable, `None` removes
/// it. Empty in production; tests use it to isolate git from the user's setup.
pub(crate) type Env<'a> = &'a [(&'a str, Option<&'a OsStr>)];

/// Variables naming paths that git resolves against its own working directory.
const PATH_VARS: [&str; 2] = ["GIT_DIR", "GIT_WORK_TREE"];

const MODE_FILE: u32 = 0o100644;
const MODE_EXEC: u32 = 0o100755;
const MODE_LINK: u32 = 0o120000;
const MODE_GITLINK: u32 = 0o160000;

pub(crate) fn staged_files_env(dir: &Path, env: Env, cwd: &Path) -> Result<Vec<StagedFile>> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    let listing = git.output(dir, &["ls-files", "-s", "-z"])?;
    let entries = parse_stage_listing(&listing)?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let blobs = git.cat_blobs(dir, &entries)?;
    Ok(entries
        .into_iter()
        .zip(blobs)
        .map(|(entry, data)| StagedFile {
            path: entry.path,
            mode: entry.mode,
            data,
        })
        .collect())
}

pub(crate) fn candidate_files_env(dir: &Path, env: Env, cwd: &Path) -> Result<Option<Vec<String>>> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    if git.in_work_tree(dir, "--show-prefix")?.is_none() {
        return Ok(None);
    }
    let listing = git.output(
        dir,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    )?;
    let mut files = Vec::new();
    for raw in records(&listing) {
        // An untracked nested repository: its files cannot be committed from here.
        if raw.ends_with(b"/") {
            continue;
        }
        files.push(utf8_path(raw)?);
    }
    files.sort_unstable();
    files.dedup();
    Ok(Some(files))
}

pub(crate) fn hooks_dir_env(dir: &Path, env: Env, cwd: &Path) -> Result<Option<PathBuf>> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    let Some(raw) = git.in_work_tree(dir, "--git-path")? else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Err(external("`git rev-parse --git-path hooks` printed nothing"));
    }
    let hooks = PathBuf::from(OsString::from_vec(raw));
    if hooks.is_absolute() {
        return Ok(Some(hooks));
    }
    let base = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    Ok(Some(base.join(hooks)))
}

/// The hooks directory git uses now (honouring core.hooksPath) and the one it uses
/// without core.hooksPath (`hooks` in the common git directory), both absolute.
/// Ok(None) when `dir` is not inside a git work tree.
pub fn hook_dirs(dir: &Path) -> Result<Option<(PathBuf, PathBuf)>> {
    hook_dirs_env(dir, &[], &current_dir()?)
}

pub(crate) fn hook_dirs_env(
    dir: &Path,
    env: Env,
    cwd: &Path,
) -> Result<Option<(PathBuf, PathBuf)>> {
    let Some(effective) = hooks_dir_env(dir, env, cwd)? else {
        return Ok(None);
    };
    let git = Git::new(env, cwd);
    let args = ["rev-parse", "--path-format=absolute", "--git-common-dir"];
    let common = strip_newline(git.output(dir, &args)?);
    if common.is_empty() {
        return Err(unparsable(&args));
    }
    let default = PathBuf::from(OsString::from_vec(common)).join("hooks");
    Ok(Some((effective, default)))
}

/// The value of a git configuration variable for the repository containing `dir`
/// (`git config --get`), or None when it is not set.
pub(crate) fn config_get_env(
    dir: &Path,
    key: &str,
    env: Env,
    cwd: &Path,
) -> Result<Option<Vec<u8>>> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    let args = ["config", "--get", key];
    let out = git.run(dir, &args)?;
    match out.status.code() {
        Some(0) => Ok(Some(strip_newline(out.stdout))),
        Some(1) => Ok(None),
        _ => Err(failed(&args, &out.status, &out.stderr)),
    }
}

/// Sets a variable in the repository's own configuration (`git config --local`).
pub(crate) fn config_set_env(
    dir: &Path,
    key: &str,
    value: &OsStr,
    env: Env,
    cwd: &Path,
) -> Result<()> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    let out = git
        .command(dir, &["config", "--local", key])
        .arg(value)
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    if !out.status.success() {
        return Err(failed(
            &["config", "--local", key],
            &out.status,
            &out.stderr,
        ));
    }
    Ok(())
}

/// Removes a section and every variable in it from the repository's own
/// configuration (`git config --local --remove-section`); false when there was none.
pub(crate) fn config_remove_section_env(
    dir: &Path,
    section: &str,
    env: Env,
    cwd: &Path,
) -> Result<bool> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    let args = ["config", "--local", "--remove-section", section];
    let out = git.run(dir, &args)?;
    if out.status.success() {
        return Ok(true);
    }
    if String::from_utf8_lossy(&out.stderr).contains("no such section") {
        return Ok(false);
    }
    Err(failed(&args, &out.status, &out.stderr))
}

/// Removes a variable from the repository's own configuration (`git config --local
/// --unset-all`); false when it was not set there.
pub(crate) fn config_unset_env(dir: &Path, key: &str, env: Env, cwd: &Path) -> Result<bool> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    let args = ["config", "--local", "--unset-all", key];
    let out = git.run(dir, &args)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(5) => Ok(false),
        _ => Err(failed(&args, &out.status, &out.stderr)),
    }
}

/// Where `dir` is inside its work tree, as `git rev-parse --show-prefix` prints it:
/// '/'-separated with a trailing '/', or empty at the top level. Ok(None) when `dir`
/// is not inside a git work tree.
pub(crate) fn work_tree_prefix(dir: &Path, env: Env, cwd: &Path) -> Result<Option<String>> {
    check_dir(dir)?;
    let git = Git::new(env, cwd);
    match git.in_work_tree(dir, "--show-prefix")? {
        None => Ok(None),
        Some(raw) => utf8_path(&raw).map(Some),
    }
}

/// The process's working directory, against which relative GIT_DIR and GIT_WORK_TREE
/// are resolved.
pub(crate) fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| Error::io(".", e))
}

/// A missing `dir` would otherwise look like a missing git when spawning fails.
fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        )),
        Err(e) => Err(Error::io(dir, e)),
    }
}

fn external(reason: impl Into<String>) -> Error {
    Error::External {
        program: "git".to_string(),
        reason: reason.into(),
    }
}

/// How git processes are started: the environment, fixed once per call.
struct Git {
    env: Vec<(OsString, Option<OsString>)>,
}

impl Git {
    /// Applies `env`, then pins relative path variables to `cwd`. When GIT_DIR is set
    /// without GIT_WORK_TREE, git takes its own working directory as the top of the work
    /// tree; since git will run elsewhere, the top as seen from `cwd` is pinned instead.
    fn new(env: Env, cwd: &Path) -> Git {
        let mut git = Git {
            env: env
                .iter()
                .map(|(k, v)| (OsString::from(k), v.map(OsStr::to_os_string)))
                .collect(),
        };
        for name in PATH_VARS {
            if let Some(value) = git.var(name)
                && !value.is_empty()
                && !Path::new(&value).is_absolute()
            {
                let absolute = cwd.join(&value).into_os_string();
                git.set(name, Some(absolute));
            }
        }
        let has = |git: &Git, name: &str| git.var(name).is_some_and(|v| !v.is_empty());
        if has(&git, "GIT_DIR") && !has(&git, "GIT_WORK_TREE") {
            let out = git
                .command(cwd, &["rev-parse", "--show-toplevel"])
                .stdin(Stdio::null())
                .output();
            if let Ok(out) = out
                && out.status.success()
            {
                let top = strip_newline(out.stdout);
                if !top.is_empty() {
                    git.set("GIT_WORK_TREE", Some(OsString::from_vec(top)));
                }
            }
        }
        git
    }

    /// The value git will see for `name`.
    fn var(&self, name: &str) -> Option<OsString> {
        match self.env.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => v.clone(),
            None => std::env::var_os(name),
        }
    }

    fn set(&mut self, name: &str, value: Option<OsString>) {
        self.env.push((OsString::from(name), value));
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(dir);
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.env("GIT_OPTIONAL_LOCKS", "0").env("LC_ALL", "C");
        cmd
    }

    /// Runs git to completion, returning the output whatever the exit status.
    fn run(&self, dir: &Path, args: &[&str]) -> Result<Output> {
        self.command(dir, args)
            .stdin(Stdio::null())
            .output()
            .map_err(spawn_error)
    }

    /// Runs git with `input` on its standard input (written from a thread of its own,
    /// so a long answer cannot block a long question), returning the output whatever
    /// the exit status.
    fn run_with_input(&self, dir: &Path, args: &[&str], input: Vec<u8>) -> Result<Output> {
        let mut child = self
            .command(dir, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let Some(mut stdin) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(external("standard input was not opened"));
        };
        std::thread::scope(|scope| {
            scope.spawn(move || {
                // A failed write means git exited; its status tells why.
                let _ = stdin.write_all(&input);
            });
            child.wait_with_output().map_err(spawn_error)
        })
    }

    /// Standard output of a git command that must succeed.
    fn output(&self, dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.run(dir, args)?;
        if !out.status.success() {
            return Err(failed(args, &out.status, &out.stderr));
        }
        Ok(out.stdout)
    }

    /// Runs `git rev-parse --is-inside-work-tree <what>` in `dir` (`--git-path` meaning
    /// the absolute hooks path): what it printed for `what` (trailing newline removed),
    /// or None outside a work tree.
    fn in_work_tree(&self, dir: &Path, what: &str) -> Result<Option<Vec<u8>>> {
        let mut args = vec!["rev-parse", "--is-inside-work-tree"];
        if what == "--git-path" {
            args.extend(["--path-format=absolute", "--git-path", "hooks"]);
        } else {
            args.push(what);
        }
        let out = self.run(dir, &args)?;
        if !out.status.success() {
            if String::from_utf8_lossy(&out.stderr).contains("not a git repository") {
                return Ok(None);
            }
            return Err(failed(&args, &out.status, &out.stderr));
        }
        let stdout = out.stdout;
        let Some(nl) = stdout.iter().position(|&b| b == b'\n') else {
            return Err(unparsable(&args));
        };
        match &stdout[..nl] {
            b"true" => Ok(Some(strip_newline(stdout[nl + 1..].to_vec()))),
            b"false" => Ok(None),
            _ => Err(unparsable(&args)),
        }
    }

    /// The blob contents of every entry, in order, from one `git cat-file --batch`.
    fn cat_blobs(&self, dir: &Path, entries: &[Entry]) -> Result<Vec<Vec<u8>>> {
        let args = ["cat-file", "--batch"];
        let mut child = self
            .command(dir, &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(external("cat-file: standard streams were not opened"));
        };
        let mut request = Vec::with_capacity(entries.iter().map(|e| e.oid.len() + 1).sum());
        for entry in entries {
            request.extend_from_slice(entry.oid.as_bytes());
            request.push(b'\n');
        }
        std::thread::scope(|scope| {
            // Writing from its own thread: git answers while we still send, so neither
            // side can fill a pipe the other is not reading.
            scope.spawn(move || {
                // A failed write means git exited; its status tells why.
                let _ = stdin.write_all(&request);
            });
            let errors = scope.spawn(move || {
                let mut buf = Vec::new();
                let _ = stderr.read_to_end(&mut buf);
                buf
            });
            let read = read_batch(stdout, entries);
            finish(
                &mut child,
                read,
                || errors.join().unwrap_or_default(),
                &args,
            )
        })
    }
}

/// Waits for cat-file after reading its answers (killing it if reading failed, so the
/// writer thread cannot block), and reports a failure with git's own words first.
fn finish(
    child: &mut Child,
    read: Result<Vec<Vec<u8>>>,
    stderr_of: impl FnOnce() -> Vec<u8>,
    args: &[&str],
) -> Result<Vec<Vec<u8>>> {
    if read.is_err() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| external(format!("cat-file: {e}")))?;
    let stderr = stderr_of();
    match read {
        Ok(blobs) if status.success() => Ok(blobs),
        Ok(_) => Err(failed(args, &status, &stderr)),
        Err(e) => match error_line(&stderr) {
            Some(line) => Err(external(format!("`git {}` failed: {line}", args.join(" ")))),
            None => Err(e),
        },
    }
}

/// Reads `<oid> blob <size>\n<data>\n` for each entry, by exact byte counts.
fn read_batch(stdout: ChildStdout, entries: &[Entry]) -> Result<Vec<Vec<u8>>> {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut header = Vec::with_capacity(128);
    let mut blobs = Vec::with_capacity(entries.len());
    let short = |path: &str| external(format!("cat-file: output ended early at {path}"));
    for entry in entries {
        header.clear();
        reader
            .read_until(b'\n', &mut header)
            .map_err(|e| external(format!("cat-file: {e}")))?;
        if header.pop() != Some(b'\n') {
            return Err(short(&entry.path));
        }
        let fields: Vec<&[u8]> = header.split(|&b| b == b' ').collect();
        let size = match fields.as_slice() {
            [oid, b"blob", size] if *oid == entry.oid.as_bytes() => std::str::from_utf8(size)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| external("cat-file: unparsable object size"))?,
            [oid, b"missing"] if *oid == entry.oid.as_bytes() => {
                return Err(external(format!(
                    "object {} for {} is missing from the object store",
                    entry.oid, entry.path
                )));
            }
            [oid, kind, _] if *oid == entry.oid.as_bytes() => {
                return Err(external(format!(
                    "object {} for {} is a {}, not a blob",
                    entry.oid,
                    entry.path,
                    String::from_utf8_lossy(kind)
                )));
            }
            _ => {
                return Err(external(format!(
                    "cat-file: unexpected answer for {}",
                    entry.path
                )));
            }
        };
        let mut data = vec![0; size];
        reader
            .read_exact(&mut data)
            .map_err(|_| short(&entry.path))?;
        let mut nl = [0u8; 1];
        reader.read_exact(&mut nl).map_err(|_| short(&entry.path))?;
        if nl != *b"\n" {
            return Err(external(format!(
                "cat-file: unexpected answer for {}",
                entry.path
            )));
        }
        blobs.push(data);
    }
    Ok(blobs)
}

/// One stage-0 index entry that has a blob.
struct Entry {
    mode: u32,
    oid: String,
    path: String,
}

/// Parses `<mode> <oid> <stage>\t<path>\0` records; skips gitlinks, refuses unmerged
/// entries and modes that are not a file or symlink.
fn parse_stage_listing(listing: &[u8]) -> Result<Vec<Entry>> {
    let unparsable = || unparsable(&["ls-files", "-s", "-z"]);
    let mut entries = Vec::new();
    for record in records(listing) {
        let tab = record
            .iter()
            .position(|&b| b == b'\t')
            .ok_or_else(unparsable)?;
        let (meta, raw_path) = (&record[..tab], &record[tab + 1..]);
        let meta = std::str::from_utf8(meta).map_err(|_| unparsable())?;
        let mut fields = meta.split(' ');
        let (Some(mode), Some(oid), Some(stage), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(unparsable());
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| unparsable())?;
        if oid.is_empty() || !oid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unparsable());
        }
        match stage {
            "0" => {}
            "1" | "2" | "3" => {
                return Err(Error::Unmerged {
                    path: String::from_utf8_lossy(raw_path).into_owned(),
                });
            }
            _ => return Err(unparsable()),
        }
        let path = utf8_path(raw_path)?;
        match mode {
            MODE_FILE | MODE_EXEC | MODE_LINK => entries.push(Entry {
                mode,
                oid: oid.to_string(),
                path,
            }),
            MODE_GITLINK => {}
            other => {
                return Err(external(format!(
                    "index entry {path} has unexpected mode {other:o}"
                )));
            }
        }
    }
    Ok(entries)
}

/// NUL-terminated records.
fn records(listing: &[u8]) -> impl Iterator<Item = &[u8]> {
    listing
        .split(|&b| b == 0)
        .filter(|record| !record.is_empty())
}

fn utf8_path(raw: &[u8]) -> Result<String> {
    String::from_utf8(raw.to_vec()).map_err(|_| Error::InvalidFile {
        at: Location::named(&String::from_utf8_lossy(raw)),
        reason: "file name is not valid UTF-8; keys cannot check it".to_string(),
    })
}

fn strip_newline(mut out: Vec<u8>) -> Vec<u8> {
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    out
}

fn spawn_error(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => external("not found on PATH"),
        _ => external(format!("cannot run: {e}")),
    }
}

fn unparsable(args: &[&str]) -> Error {
    external(format!("`git {}`: unparsable output", args.join(" ")))
}

fn failed(args: &[&str], status: &std::process::ExitStatus, stderr: &[u8]) -> Error {
    let why = error_line(stderr).unwrap_or_else(|| status.to_string());
    external(format!("`git {}` failed: {why}", args.join(" ")))
}

/// Git's first `fatal:`/`error:` line, else its first line.
fn error_line(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.clone().next()?;
    let line = lines
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .unwrap_or(first);
    Some(line.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::time::Instant;

    /// Isolates git from the user's configuration and from a GIT_DIR or GIT_INDEX_FILE
    /// the test process may have inherited (a hook running the tests).
    pub(crate) fn isolated() -> Vec<(&'static str, Option<&'static OsStr>)> {
        vec![
            ("GIT_CONFIG_GLOBAL", Some(OsStr::new("/dev/null"))),
            ("GIT_CONFIG_NOSYSTEM", Some(OsStr::new("1"))),
            ("GIT_DIR", None),
            ("GIT_WORK_TREE", None),
            ("GIT_INDEX_FILE", None),
            ("GIT_OBJECT_DIRECTORY", None),
            ("GIT_COMMON_DIR", None),
            ("GIT_CEILING_DIRECTORIES", None),
        ]
    }

    /// A throwaway git repository in a temp directory.
    pub(crate) struct TestRepo {
        pub(crate) tmp: tempfile::TempDir,
    }

    impl TestRepo {
        pub(crate) fn new() -> TestRepo {
            let tmp = tempfile::tempdir().unwrap();
            let repo = TestRepo { tmp };
            fs::create_dir(repo.top()).unwrap();
            repo.git(&["init", "-q", "-b", "main"]);
            repo.git(&["config", "user.name", "Test"]);
            repo.git(&["config", "user.email", "test@example.org"]);
            repo
        }

        /// The work tree, one level below the temp dir so the temp dir can be a ceiling.
        pub(crate) fn top(&self) -> PathBuf {
            self.tmp.path().join("repo")
        }

        pub(crate) fn command(&self, dir: &Path, args: &[&str]) -> Command {
            let mut cmd = Command::new("git");
            cmd.args(args).current_dir(dir);
            for (k, v) in isolated() {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            cmd
        }

        pub(crate) fn git_in(&self, dir: &Path, args: &[&str]) -> Vec<u8> {
            let out = self.command(dir, args).output().unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }

        pub(crate) fn git(&self, args: &[&str]) -> Vec<u8> {
            self.git_in(&self.top(), args)
        }

        pub(crate) fn write(&self, rel: impl AsRef<Path>, data: &[u8]) {
            let path = self.top().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, data).unwrap();
        }

        fn staged(&self, dir: &Path) -> Vec<StagedFile> {
            staged_files_env(dir, &isolated(), &self.top()).unwrap()
        }
    }

    fn find<'a>(files: &'a [StagedFile], path: &str) -> &'a StagedFile {
        files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path:?} not staged"))
    }

    fn paths(files: &[StagedFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn staged_returns_index_contents_not_the_work_tree() {
        let repo = TestRepo::new();
        repo.write("a.age", b"committed\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-qm", "one"]);
        repo.write("a.age", b"staged\n");
        repo.git(&["add", "-A"]);
        repo.write("a.age", b"work tree only\n");
        repo.write("untracked", b"not in the index\n");
        let files = repo.staged(&repo.top());
        assert_eq!(paths(&files), ["a.age"]);
        assert_eq!(files[0].data, b"staged\n");
        assert_eq!(files[0].mode, MODE_FILE);
    }

    #[test]
    fn staged_rename_shows_the_new_path_only() {
        let repo = TestRepo::new();
        repo.write("old.age", b"same bytes");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-qm", "one"]);
        repo.git(&["mv", "old.age", "new.age"]);
        let files = repo.staged(&repo.top());
        assert_eq!(paths(&files), ["new.age"]);
        assert_eq!(files[0].data, b"same bytes");
    }

    #[test]
    fn staged_binary_executable_and_symlink_entries() {
        let repo = TestRepo::new();
        let binary: Vec<u8> = (0..=255u8).chain([0, b'\r', b'\n', 0xff]).collect();
        repo.write("bin", &binary);
        repo.write("empty", b"");
        repo.write("run.sh", b"#!/bin/sh\n");
        let run = repo.top().join("run.sh");
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        symlink("target/of the link", repo.top().join("link")).unwrap();
        repo.git(&["add", "-A"]);
        let files = repo.staged(&repo.top());
        assert_eq!(find(&files, "bin").data, binary);
        assert_eq!(find(&files, "empty").data, b"");
        assert_eq!(find(&files, "run.sh").mode, MODE_EXEC);
        let link = find(&files, "link");
        assert_eq!(link.mode, MODE_LINK);
        assert_eq!(link.data, b"target/of the link");
    }

    #[test]
    fn staged_odd_paths_come_back_exactly() {
        let repo = TestRepo::new();
        let names = [
            "with space.age",
            "new\nline.age",
            "-leading-dash",
            "--",
            "tab\there",
            "quote\"and'apostrophe",
            "ünïcödé/ファイル.age",
            "back\\slash",
        ];
        for (i, name) in names.iter().enumerate() {
            repo.write(name, format!("content {i}").as_bytes());
        }
        repo.git(&["add", "-A"]);
        let files = repo.staged(&repo.top());
        assert_eq!(files.len(), names.len());
        for (i, name) in names.iter().enumerate() {
            assert_eq!(find(&files, name).data, format!("content {i}").as_bytes());
        }
        let candidates = candidate_files_env(&repo.top(), &isolated(), &repo.top())
            .unwrap()
            .unwrap();
        let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(candidates, expected);
    }

    #[test]
    fn staged_in_a_subdirectory_is_relative_to_it() {
        let repo = TestRepo::new();
        repo.write("outside.age", b"o");
        repo.write("fleet dir/secrets/x.age", b"x");
        repo.write("fleet dir/hosts/h.pub", b"h");
        repo.git(&["add", "-A"]);
        let fleet = repo.top().join("fleet dir");
        let files = repo.staged(&fleet);
        assert_eq!(paths(&files), ["hosts/h.pub", "secrets/x.age"]);
        assert_eq!(find(&files, "secrets/x.age").data, b"x");
    }

    #[test]
    fn staged_skips_gitlinks() {
        let repo = TestRepo::new();
        repo.write("a", b"a");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-qm", "one"]);
        let head = String::from_utf8(repo.git(&["rev-parse", "HEAD"])).unwrap();
        let info = format!("160000,{},vendor/sub", head.trim());
        repo.git(&["update-index", "--add", "--cacheinfo", &info]);
        let files = repo.staged(&repo.top());
        assert_eq!(paths(&files), ["a"]);
    }

    #[test]
    fn staged_refuses_unmerged_entries() {
        let repo = TestRepo::new();
        repo.write("conflict.age", b"base\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-qm", "base"]);
        repo.git(&["checkout", "-qb", "other"]);
        repo.write("conflict.age", b"other\n");
        repo.git(&["commit", "-qam", "other"]);
        repo.git(&["checkout", "-q", "main"]);
        repo.write("conflict.age", b"main\n");
        repo.git(&["commit", "-qam", "main"]);
        let merge = repo
            .command(&repo.top(), &["merge", "-q", "other"])
            .output();
        assert!(!merge.unwrap().status.success());
        let err = staged_files_env(&repo.top(), &isolated(), &repo.top()).unwrap_err();
        assert!(
            matches!(&err, Error::Unmerged { path } if path == "conflict.age"),
            "{err:?}"
        );
    }

    #[test]
    fn staged_missing_object_is_an_external_error() {
        let repo = TestRepo::new();
        repo.write("a", b"a");
        repo.git(&["add", "-A"]);
        let info = "100644,1234567890123456789012345678901234567890,ghost";
        repo.git(&["update-index", "--add", "--cacheinfo", info]);
        let err = staged_files_env(&repo.top(), &isolated(), &repo.top()).unwrap_err();
        match err {
            Error::External { program, reason } => {
                assert_eq!(program, "git");
                assert!(reason.contains("ghost"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn staged_non_utf8_path_is_an_error_naming_it() {
        let repo = TestRepo::new();
        let name = OsStr::from_bytes(b"bad\xffname");
        repo.write(name, b"x");
        repo.git(&["add", "-A"]);
        let err = staged_files_env(&repo.top(), &isolated(), &repo.top()).unwrap_err();
        assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
        assert!(err.to_string().contains("bad\u{fffd}name"), "{err}");
        let err = candidate_files_env(&repo.top(), &isolated(), &repo.top()).unwrap_err();
        assert!(err.to_string().contains("bad\u{fffd}name"), "{err}");
    }

    #[test]
    fn staged_honours_an_alternate_index_absolute_or_relative() {
        let repo = TestRepo::new();
        repo.write("fleet/a.age", b"in the real index");
        repo.git(&["add", "-A"]);
        repo.write("fleet/a.age", b"in the alternate index");
        repo.write("fleet/b.age", b"only in the alternate index");
        let alt = repo.tmp.path().join("alt-index");
        let mut cmd = repo.command(&repo.top(), &["add", "-A"]);
        assert!(cmd.env("GIT_INDEX_FILE", &alt).status().unwrap().success());
        // A relative GIT_INDEX_FILE (hooks get `.git/index`) is relative to the top of
        // the work tree, wherever the process and git run; not to the process's
        // directory, which would silently find no index and so nothing staged.
        let fleet = repo.top().join("fleet");
        for value in [alt.as_os_str(), OsStr::new("../alt-index")] {
            for cwd in [repo.top(), fleet.clone()] {
                let mut env = isolated();
                env.push(("GIT_INDEX_FILE", Some(value)));
                let files = staged_files_env(&fleet, &env, &cwd).unwrap();
                assert_eq!(paths(&files), ["a.age", "b.age"]);
                assert_eq!(files[0].data, b"in the alternate index");
            }
        }
        let mut env = isolated();
        env.push(("GIT_INDEX_FILE", Some(OsStr::new(".git/index"))));
        let files = staged_files_env(&fleet, &env, &fleet).unwrap();
        assert_eq!(paths(&files), ["a.age"]);
        assert_eq!(repo.staged(&fleet)[0].data, b"in the real index");
    }

    #[test]
    fn staged_with_git_dir_set_keeps_paths_relative_to_the_fleet() {
        // A linked worktree's hooks get GIT_DIR and no GIT_WORK_TREE; git would then
        // take the fleet directory for the top of the work tree.
        let repo = TestRepo::new();
        repo.write("fleet/a.age", b"a");
        repo.git(&["add", "-A"]);
        let git_dir = repo.top().join(".git");
        let mut env = isolated();
        env.push(("GIT_DIR", Some(git_dir.as_os_str())));
        let files = staged_files_env(&repo.top().join("fleet"), &env, &repo.top()).unwrap();
        assert_eq!(paths(&files), ["a.age"]);
        let mut env = isolated();
        env.push(("GIT_DIR", Some(OsStr::new(".git"))));
        let files = staged_files_env(&repo.top().join("fleet"), &env, &repo.top()).unwrap();
        assert_eq!(paths(&files), ["a.age"]);
    }

    #[test]
    fn staged_many_files_and_large_blobs_do_not_deadlock() {
        let repo = TestRepo::new();
        // More object ids than a pipe holds, and answers far larger than one.
        for i in 0..3000 {
            repo.write(format!("d{}/f{i}.age", i % 50), format!("{i}").as_bytes());
        }
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        repo.write("big1", &big);
        repo.write("big2", &big);
        repo.git(&["add", "-A"]);
        let start = Instant::now();
        let files = repo.staged(&repo.top());
        let took = start.elapsed();
        assert_eq!(files.len(), 3002);
        assert_eq!(find(&files, "big2").data, big);
        assert_eq!(find(&files, "d7/f2007.age").data, b"2007");
        assert!(took.as_secs() < 20, "took {took:?}");
    }

    #[test]
    fn candidate_files_lists_tracked_and_unignored_untracked() {
        let repo = TestRepo::new();
        repo.write("fleet/.gitignore", b"*.tmp\n");
        repo.write("fleet/tracked.age", b"t");
        repo.write("fleet/deleted.age", b"d");
        repo.write("outside", b"o");
        repo.git(&["add", "-A"]);
        fs::remove_file(repo.top().join("fleet/deleted.age")).unwrap();
        repo.write("fleet/new.age", b"n");
        repo.write("fleet/scratch.tmp", b"ignored");
        repo.write("fleet/nested/sub.age", b"s");
        fs::create_dir(repo.top().join("fleet/vendor")).unwrap();
        repo.git_in(&repo.top().join("fleet/vendor"), &["init", "-q"]);
        repo.write("fleet/vendor/inner", b"i");
        let files = candidate_files_env(&repo.top().join("fleet"), &isolated(), &repo.top())
            .unwrap()
            .unwrap();
        assert_eq!(
            files,
            [
                ".gitignore",
                "deleted.age",
                "nested/sub.age",
                "new.age",
                "tracked.age"
            ]
        );
    }

    #[test]
    fn outside_a_work_tree_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        fs::create_dir(&plain).unwrap();
        let mut env = isolated();
        env.push(("GIT_CEILING_DIRECTORIES", Some(tmp.path().as_os_str())));
        assert!(hooks_dir_env(&plain, &env, &plain).unwrap().is_none());
        assert!(candidate_files_env(&plain, &env, &plain).unwrap().is_none());
        assert!(work_tree_prefix(&plain, &env, &plain).unwrap().is_none());
        let err = staged_files_env(&plain, &env, &plain).unwrap_err();
        assert!(matches!(err, Error::External { .. }), "{err:?}");
        // Inside the .git directory is not inside the work tree either.
        let repo = TestRepo::new();
        let git_dir = repo.top().join(".git");
        assert!(
            hooks_dir_env(&git_dir, &isolated(), &git_dir)
                .unwrap()
                .is_none()
        );
        // A directory that does not exist is a file error, not a missing git.
        let err = hooks_dir_env(&tmp.path().join("nowhere"), &env, tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }

    #[test]
    fn hooks_dir_honours_core_hooks_path() {
        let repo = TestRepo::new();
        let sub = repo.top().join("fleet");
        fs::create_dir(&sub).unwrap();
        let top = repo.top();
        let hooks = |dir: &Path| {
            let found = hooks_dir_env(dir, &isolated(), dir).unwrap().unwrap();
            assert!(found.is_absolute(), "{}", found.display());
            fs::create_dir_all(&found).unwrap();
            fs::canonicalize(found).unwrap()
        };
        let canon_top = fs::canonicalize(&top).unwrap();
        assert_eq!(hooks(&sub), canon_top.join(".git/hooks"));
        repo.git(&["config", "core.hooksPath", "shared hooks"]);
        assert_eq!(hooks(&sub), canon_top.join("shared hooks"));
        assert_eq!(hooks(&top), canon_top.join("shared hooks"));
        let elsewhere = repo.tmp.path().join("abs-hooks");
        repo.git(&["config", "core.hooksPath", elsewhere.to_str().unwrap()]);
        assert_eq!(hooks(&sub), fs::canonicalize(&elsewhere).unwrap());
    }

    #[test]
    fn work_tree_prefix_names_the_fleet_inside_the_work_tree() {
        let repo = TestRepo::new();
        let sub = repo.top().join("a b/-c'd");
        fs::create_dir_all(&sub).unwrap();
        let prefix = |dir: &Path| work_tree_prefix(dir, &isolated(), dir).unwrap().unwrap();
        assert_eq!(prefix(&repo.top()), "");
        assert_eq!(prefix(&sub), "a b/-c'd/");
    }

    #[test]
    fn error_line_prefers_git_fatal_line() {
        let stderr = b"warning: something\nfatal: the real reason\n";
        assert_eq!(error_line(stderr).unwrap(), "fatal: the real reason");
        assert_eq!(error_line(b"just this\nand that\n").unwrap(), "just this");
        assert_eq!(error_line(b"\n"), None);
    }
}
