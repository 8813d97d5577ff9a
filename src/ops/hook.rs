//! `keys hook install`: the pre-commit and pre-merge-commit hooks that run `keys
//! check --staged`, and whether git still runs them.
//!
//! The hook is a POSIX sh script that fails closed: the commit (or merge) goes through
//! only when `keys check --staged` ran and passed in the fleet directory. A hook that
//! was there before is kept beside it as `NAME.before-keys` and run after a passing
//! check. Where the hooks went is recorded in git's configuration (`keys.hooksdir`),
//! so that `keys check` can tell when git no longer runs them (core.hooksPath changed).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::remote::shell_quote;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::fsutil;
use crate::git::{self, Env};

/// The line that marks a hook as ours, so a second install recognises it.
pub const MARKER: &str = "# keys pre-commit hook";
/// The hooks installed: before a commit, and before a merge commits.
pub const HOOKS: [&str; 2] = ["pre-commit", "pre-merge-commit"];
/// What an existing hook is renamed to when ours takes its place: `NAME` + this.
pub const PREVIOUS_SUFFIX: &str = ".before-keys";
/// The git configuration variable that records where the hooks were installed.
pub const RECORD: &str = "keys.hooksdir";
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
    /// husky manages the hooks: ours is `hook`, and husky's script `caller` (written
    /// or appended to) runs it, so husky's own hooks and a later `npm install` keep it.
    Husky { hook: PathBuf, caller: PathBuf },
    /// lefthook manages the hooks: its configuration runs `keys check --staged`.
    Lefthook { config: PathBuf },
}

/// Installs the hooks (pre-commit, then pre-merge-commit) for the git repository
/// containing `dir` (the fleet root), and records their directory in git's
/// configuration. `keys_exe` is the absolute path of the running keys binary, used
/// only when `keys` is not on PATH at commit time. `Error::NotInGit` when `dir` is
/// not in a git work tree. A hook of ours that differs (another
/// fleet directory or binary) is replaced and reported as `New`.
pub fn install(dir: &Path, keys_exe: &Path) -> Result<Vec<Installed>> {
    install_env(dir, keys_exe, &[], &git::current_dir()?)
}

fn install_env(dir: &Path, keys_exe: &Path, env: Env, cwd: &Path) -> Result<Vec<Installed>> {
    let not_a_repo = || Error::NotInGit {
        dir: dir.to_path_buf(),
    };
    let prefix = git::work_tree_prefix(dir, env, cwd)?.ok_or_else(not_a_repo)?;
    let hooks = git::hooks_dir_env(dir, env, cwd)?.ok_or_else(not_a_repo)?;
    let exe = std::path::absolute(keys_exe).map_err(|e| Error::io(keys_exe, e))?;
    let script = script(&prefix, &exe);

    let top = top_of(dir, &prefix);
    if let Some(config) = lefthook_config(&top) {
        register_merge_driver(dir, &exe, env, cwd)?;
        return install_lefthook(&config, &prefix)
            .map(|caller| vec![Installed::Lefthook { config: caller }]);
    }
    let done = match husky_dir(&hooks) {
        Some(husky) => install_husky(&husky, &script)?,
        None => {
            fsutil::create_dir_all(&hooks, EXECUTABLE)?;
            HOOKS
                .iter()
                .map(|name| install_one(&hooks, name, &script))
                .collect::<Result<Vec<_>>>()?
        }
    };
    let recorded = git::config_get_env(dir, RECORD, env, cwd)?;
    if recorded.as_deref() != Some(hooks.as_os_str().as_bytes()) {
        git::config_set_env(dir, RECORD, hooks.as_os_str(), env, cwd)?;
    }
    register_merge_driver(dir, &exe, env, cwd)?;
    Ok(done)
}

/// The top of the work tree, from the fleet directory and its prefix there.
fn top_of(dir: &Path, prefix: &str) -> PathBuf {
    let depth = prefix.split('/').filter(|s| !s.is_empty()).count();
    dir.ancestors().nth(depth).unwrap_or(dir).to_path_buf()
}

/// lefthook's configuration at the top of the work tree, if there is one.
fn lefthook_config(top: &Path) -> Option<PathBuf> {
    [
        "lefthook.yml",
        ".lefthook.yml",
        "lefthook.yaml",
        ".lefthook.yaml",
    ]
    .iter()
    .map(|f| top.join(f))
    .find(|p| p.is_file())
}

/// The command lefthook's configuration names for keys' check.
const LEFTHOOK_COMMAND: &str = "keys-check";

/// Whether lefthook's configuration `text` runs keys' check for git hook `name`.
fn lefthook_runs_keys(text: &str, name: &str) -> bool {
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with([' ', '\t', '#']) && !line.is_empty() {
            inside = line.trim_end() == format!("{name}:");
            continue;
        }
        if inside && line.trim() == format!("{LEFTHOOK_COMMAND}:") {
            return true;
        }
    }
    false
}

/// Adds a `keys-check` command to each of keys' hooks in lefthook's configuration,
/// editing it as text so its comments and layout stay: under an existing
/// `commands:` of that hook, else as the hook's first key, else as a new hook.
fn install_lefthook(config: &Path, prefix: &str) -> Result<PathBuf> {
    let data = fsutil::read(config)?;
    let mut text = String::from_utf8(data).map_err(|_| Error::InvalidFile {
        at: crate::error::Location::file(config),
        reason: "not UTF-8 text".into(),
    })?;
    let root = match prefix.trim_end_matches('/') {
        "" => String::new(),
        p => format!("      root: \"{p}/\"\n"),
    };
    let entry = |pad: &str| {
        format!(
            "{pad}{LEFTHOOK_COMMAND}:\n{pad}  run: keys check --staged\n{}",
            root.replace("      ", &format!("{pad}  "))
        )
    };
    for name in HOOKS {
        if lefthook_runs_keys(&text, name) {
            continue;
        }
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let head = lines
            .iter()
            .position(|l| l.trim_end() == format!("{name}:"));
        let new = match head {
            None => {
                let mut t = text.clone();
                if !t.is_empty() && !t.ends_with('\n') {
                    t.push('\n');
                }
                t.push_str(&format!("{name}:\n  commands:\n{}", entry("    ")));
                t
            }
            Some(h) => {
                let end = lines[h + 1..]
                    .iter()
                    .position(|l| !l.starts_with([' ', '\t', '#']) && !l.trim().is_empty())
                    .map_or(lines.len(), |i| h + 1 + i);
                let commands =
                    (h + 1..end).find(|&i| lines[i].trim_end().trim_start() == "commands:");
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                match commands {
                    Some(c) => {
                        let indent = lines[c].len() - lines[c].trim_start().len();
                        let pad = " ".repeat(indent + 2);
                        out.insert(c + 1, entry(&pad));
                    }
                    None => out.insert(h + 1, format!("  commands:\n{}", entry("    "))),
                }
                out.concat()
            }
        };
        text = new;
    }
    fsutil::write_atomic(config, text.as_bytes(), 0o644)?;
    Ok(config.to_path_buf())
}

/// The `.husky` directory when git's hooks path is husky's (`core.hooksPath` =
/// `.husky/_`, whose scripts run `.husky/NAME` with `sh -e`).
fn husky_dir(hooks: &Path) -> Option<PathBuf> {
    let husky = hooks.parent()?;
    // husky 9 writes its runner `h` there (and `husky.sh` for older scripts); without
    // it, git would run nothing husky calls, so the directory is an ordinary one.
    let runner = hooks.join("h").is_file() || hooks.join("husky.sh").is_file();
    (hooks.file_name()? == "_" && husky.file_name()? == ".husky" && runner)
        .then(|| husky.to_path_buf())
}

/// Where keys' hooks live under husky, beside the scripts husky runs.
const HUSKY_KEYS_DIR: &str = "keys";

/// What husky's script for hook `name` runs to call keys' hook.
fn husky_call(name: &str) -> String {
    format!(
        "# keys: the commit is blocked unless `keys check --staged` passes (`keys hook install`)\n\"$(dirname \"$0\")/{HUSKY_KEYS_DIR}/{name}\"\n"
    )
}

/// Under husky: keys' hooks in `.husky/keys/`, each called from husky's script of the
/// same name (`.husky/pre-commit`), created or appended to, never replaced.
fn install_husky(husky: &Path, script: &[u8]) -> Result<Vec<Installed>> {
    let dir = husky.join(HUSKY_KEYS_DIR);
    fsutil::create_dir_all(&dir, EXECUTABLE)?;
    let mut done = Vec::new();
    for name in HOOKS {
        let hook = match install_one(&dir, name, script)? {
            Installed::New(p) | Installed::Already(p) => p,
            Installed::Chained { hook, .. } | Installed::Husky { hook, .. } => hook,
            Installed::Lefthook { config } => config,
        };
        let caller = husky.join(name);
        let text = fsutil::read_optional(&caller)?.unwrap_or_default();
        let call = husky_call(name);
        if !calls_keys(&text, name) {
            let mut new = text;
            if !new.is_empty() && !new.ends_with(b"\n") {
                new.push(b'\n');
            }
            new.extend_from_slice(call.as_bytes());
            fsutil::write_atomic(&caller, &new, 0o644)?;
        }
        done.push(Installed::Husky { hook, caller });
    }
    Ok(done)
}

/// Whether husky's script calls keys' hook `name`.
fn calls_keys(text: &[u8], name: &str) -> bool {
    let line = format!("\"$(dirname \"$0\")/{HUSKY_KEYS_DIR}/{name}\"");
    text.split(|&b| b == b'\n')
        .any(|l| l.trim_ascii() == line.as_bytes())
}

/// The git merge driver for `keys.lock` (`keys merge-lock`): named in the fleet's
/// `.gitattributes` and defined in the repository's git configuration, so two
/// branches that each add or change other secrets merge without a conflict.
pub const MERGE_DRIVER: &str = "keys-lock";
const ATTRIBUTES: [&str; 4] = [
    "secrets/keys.lock merge=keys-lock",
    // Regenerated by the hooks after a merge rather than merged as text: the merge
    // keeps this branch's version (the `keys-export` driver is `true`).
    "keys.nix merge=keys-export",
    "secrets.nix merge=keys-export",
    ".sops.yaml merge=keys-export",
];

fn register_merge_driver(dir: &Path, exe: &Path, env: Env, cwd: &Path) -> Result<()> {
    let mut driver = shell_quote(exe.as_os_str().as_bytes());
    driver.extend_from_slice(b" merge-lock %O %A %B %P");
    for (key, value) in [
        (
            "merge.keys-lock.name",
            &b"keys.lock, merged secret by secret"[..],
        ),
        ("merge.keys-lock.driver", &driver[..]),
        (
            "merge.keys-export.name",
            &b"a keys export, regenerated after the merge"[..],
        ),
        ("merge.keys-export.driver", &b"true"[..]),
    ] {
        if git::config_get_env(dir, key, env, cwd)?.as_deref() != Some(value) {
            git::config_set_env(dir, key, std::ffi::OsStr::from_bytes(value), env, cwd)?;
        }
    }
    add_attributes(&dir.join(ATTRIBUTES_FILE), &ATTRIBUTES)?;
    Ok(())
}

/// The fleet's attributes file, where the drivers are named for its paths.
const ATTRIBUTES_FILE: &str = ".gitattributes";

/// Appends each of `lines` that `path` does not have yet (edited as text, every other
/// line kept); the lines added.
fn add_attributes(path: &Path, lines: &[&str]) -> Result<Vec<String>> {
    let text = fsutil::read_optional(path)?.unwrap_or_default();
    let mut new = text.clone();
    let mut added = Vec::new();
    for line in lines {
        if !text
            .split(|&b| b == b'\n')
            .any(|l| l.trim_ascii() == line.as_bytes())
        {
            if !new.is_empty() && !new.ends_with(b"\n") {
                new.push(b'\n');
            }
            new.extend_from_slice(line.as_bytes());
            new.push(b'\n');
            added.push(line.to_string());
        }
    }
    if new != text {
        fsutil::write_atomic(path, &new, fsutil::PUBLIC)?;
    }
    Ok(added)
}

/// Removes every line of `path` that is one of `lines` (surrounding blanks aside),
/// keeping the others; a file left with nothing in it is removed. The lines removed.
fn remove_attributes(path: &Path, lines: &[&str]) -> Result<Vec<String>> {
    let Some(text) = fsutil::read_optional(path)? else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    let mut kept = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|&b| b == b'\n') {
        let bare = line.trim_ascii();
        match lines.iter().find(|l| l.as_bytes() == bare) {
            Some(l) => removed.push(l.to_string()),
            None => kept.extend_from_slice(line),
        }
    }
    if removed.is_empty() {
        return Ok(removed);
    }
    if kept.trim_ascii().is_empty() {
        fsutil::remove(path)?;
    } else {
        fsutil::write_atomic(path, &kept, fsutil::PUBLIC)?;
    }
    Ok(removed)
}

/// git's diff driver for secrets (`diff=keys`): git shows, for each side of a
/// change, the plaintext `keys decrypt --textconv` prints, or a line saying the file
/// does not decrypt here. Its output is never cached (`diff.keys.cachetextconv`):
/// git would keep the plaintext in its notes (`refs/notes/textconv/keys`).
pub const DIFF_DRIVER: &str = "keys";
const DIFF_SECTION: &str = "diff.keys";
const DIFF_TEXTCONV: &str = "diff.keys.textconv";
const DIFF_CACHE: &str = "diff.keys.cachetextconv";

/// The `.gitattributes` line that has git diff the secrets of `format` through keys.
pub fn diff_attribute(format: Format) -> String {
    format!(
        "{}/**/*.{} diff={DIFF_DRIVER}",
        crate::layout::SECRETS,
        format.extension()
    )
}

/// What `install_diff` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffInstalled {
    /// Whether `diff.keys.textconv` was set or changed (false when it was already so).
    pub registered: bool,
    /// The attributes file and the lines added to it.
    pub attributes: PathBuf,
    pub added: Vec<String>,
    /// A `diff.keys.cachetextconv` setting was removed.
    pub uncached: bool,
}

/// Registers keys' diff driver for the git repository containing `dir` (the fleet
/// root): `diff.keys.textconv` runs `keys_exe decrypt --textconv`, and the fleet's
/// `.gitattributes` names it for the secrets of each of `formats` (`.age` files
/// always). Removes a `diff.keys.cachetextconv` setting. `Error::NotInGit` when `dir`
/// is not in a git work tree.
pub fn install_diff(dir: &Path, keys_exe: &Path, formats: &[Format]) -> Result<DiffInstalled> {
    install_diff_env(dir, keys_exe, formats, &[], &git::current_dir()?)
}

fn install_diff_env(
    dir: &Path,
    keys_exe: &Path,
    formats: &[Format],
    env: Env,
    cwd: &Path,
) -> Result<DiffInstalled> {
    git::work_tree_prefix(dir, env, cwd)?.ok_or_else(|| Error::NotInGit {
        dir: dir.to_path_buf(),
    })?;
    let exe = std::path::absolute(keys_exe).map_err(|e| Error::io(keys_exe, e))?;
    let mut textconv = shell_quote(exe.as_os_str().as_bytes());
    textconv.extend_from_slice(b" decrypt --textconv");
    let registered =
        git::config_get_env(dir, DIFF_TEXTCONV, env, cwd)?.as_deref() != Some(&textconv[..]);
    if registered {
        git::config_set_env(
            dir,
            DIFF_TEXTCONV,
            std::ffi::OsStr::from_bytes(&textconv),
            env,
            cwd,
        )?;
    }
    let uncached = git::config_unset_env(dir, DIFF_CACHE, env, cwd)?;
    let mut wanted: Vec<Format> = vec![Format::Age];
    for f in Format::ALL {
        if f != Format::Age && formats.contains(&f) {
            wanted.push(f);
        }
    }
    let lines: Vec<String> = wanted.into_iter().map(diff_attribute).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let attributes = dir.join(ATTRIBUTES_FILE);
    let added = add_attributes(&attributes, &lines)?;
    Ok(DiffInstalled {
        registered,
        attributes,
        added,
        uncached,
    })
}

/// What `uninstall_diff` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRemoved {
    /// Whether the repository's configuration had a `diff.keys` section.
    pub config: bool,
    pub attributes: PathBuf,
    /// The `diff=keys` lines removed from the attributes file.
    pub removed: Vec<String>,
}

/// Removes keys' diff driver: the `diff.keys` section of the repository's
/// configuration and the fleet's `.gitattributes` lines that name it for the
/// secrets, every other line kept.
pub fn uninstall_diff(dir: &Path) -> Result<DiffRemoved> {
    uninstall_diff_env(dir, &[], &git::current_dir()?)
}

fn uninstall_diff_env(dir: &Path, env: Env, cwd: &Path) -> Result<DiffRemoved> {
    git::work_tree_prefix(dir, env, cwd)?.ok_or_else(|| Error::NotInGit {
        dir: dir.to_path_buf(),
    })?;
    let config = git::config_remove_section_env(dir, DIFF_SECTION, env, cwd)?;
    let lines: Vec<String> = Format::ALL.into_iter().map(diff_attribute).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let attributes = dir.join(ATTRIBUTES_FILE);
    let removed = remove_attributes(&attributes, &lines)?;
    Ok(DiffRemoved {
        config,
        attributes,
        removed,
    })
}

/// One thing `uninstall` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uninstalled {
    /// A hook of ours, with nothing kept behind it.
    Removed(PathBuf),
    /// A hook of ours, replaced by the one it kept and ran (`previous`).
    Restored { hook: PathBuf, previous: PathBuf },
    /// The lines of husky's script that called keys' hook.
    Called(PathBuf),
    /// The keys-check command of lefthook's configuration.
    Lefthook(PathBuf),
    /// A section or variable of the repository's git configuration.
    Config(String),
    /// Lines of the fleet's attributes file.
    Attributes { file: PathBuf, lines: Vec<String> },
}

/// Removes what `install` and `install_diff` put in the git repository containing
/// `dir` (the fleet root): keys' hooks wherever git looks or looked for them (a
/// hook they kept as `NAME.before-keys` put back in their place), keys' calls in
/// husky's scripts and its command in lefthook's configuration (edited as text),
/// the `keys.hooksdir`, merge and diff driver configuration, and the drivers'
/// lines in the fleet's `.gitattributes`. Anything else is left as it is.
pub fn uninstall(dir: &Path) -> Result<Vec<Uninstalled>> {
    uninstall_env(dir, &[], &git::current_dir()?)
}

fn uninstall_env(dir: &Path, env: Env, cwd: &Path) -> Result<Vec<Uninstalled>> {
    let not_a_repo = || Error::NotInGit {
        dir: dir.to_path_buf(),
    };
    let prefix = git::work_tree_prefix(dir, env, cwd)?.ok_or_else(not_a_repo)?;
    let (effective, default) = git::hook_dirs_env(dir, env, cwd)?.ok_or_else(not_a_repo)?;
    let recorded = git::config_get_env(dir, RECORD, env, cwd)?
        .map(|raw| PathBuf::from(std::ffi::OsString::from_vec(raw)));
    let top = top_of(dir, &prefix);
    let mut done = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let husky = top.join(".husky");
    let dirs = [
        Some(effective),
        Some(default),
        recorded,
        Some(husky.join(HUSKY_KEYS_DIR)),
    ];
    for hooks in dirs.into_iter().flatten() {
        let real = fs::canonicalize(&hooks).unwrap_or_else(|_| hooks.clone());
        if seen.contains(&real) {
            continue;
        }
        seen.push(real);
        for name in HOOKS {
            done.extend(uninstall_one(&hooks, name)?);
        }
    }
    for name in HOOKS {
        let caller = husky.join(name);
        let call = husky_call(name);
        let lines: Vec<&str> = call.lines().collect();
        if !remove_attributes(&caller, &lines)?.is_empty() {
            done.push(Uninstalled::Called(caller));
        }
    }
    let _ = fs::remove_dir(husky.join(HUSKY_KEYS_DIR));
    if let Some(config) = lefthook_config(&top)
        && uninstall_lefthook(&config)?
    {
        done.push(Uninstalled::Lefthook(config));
    }
    if git::config_unset_env(dir, RECORD, env, cwd)? {
        done.push(Uninstalled::Config(RECORD.into()));
    }
    for section in [
        format!("merge.{MERGE_DRIVER}"),
        "merge.keys-export".to_string(),
        DIFF_SECTION.to_string(),
    ] {
        if git::config_remove_section_env(dir, &section, env, cwd)? {
            done.push(Uninstalled::Config(section));
        }
    }
    let diff: Vec<String> = Format::ALL.into_iter().map(diff_attribute).collect();
    let mut lines: Vec<&str> = ATTRIBUTES.to_vec();
    lines.extend(diff.iter().map(String::as_str));
    let file = dir.join(ATTRIBUTES_FILE);
    let removed = remove_attributes(&file, &lines)?;
    if !removed.is_empty() {
        done.push(Uninstalled::Attributes {
            file,
            lines: removed,
        });
    }
    Ok(done)
}

/// Removes hook `name` from `hooks` if it is ours, putting back the hook it kept.
fn uninstall_one(hooks: &Path, name: &str) -> Result<Option<Uninstalled>> {
    let hook = hooks.join(name);
    let ours = fs::symlink_metadata(&hook).is_ok_and(|m| m.is_file())
        && fs::read(&hook).is_ok_and(|text| is_ours(&text));
    if !ours {
        return Ok(None);
    }
    let previous = hooks.join(format!("{name}{PREVIOUS_SUFFIX}"));
    if fs::symlink_metadata(&previous).is_ok() {
        fs::rename(&previous, &hook).map_err(|e| Error::io(&previous, e))?;
        return Ok(Some(Uninstalled::Restored { hook, previous }));
    }
    fs::remove_file(&hook).map_err(|e| Error::io(&hook, e))?;
    Ok(Some(Uninstalled::Removed(hook)))
}

/// Removes the keys-check command from each of keys' hooks in lefthook's
/// configuration, as text: the command's lines, then a `commands:` or a hook left
/// with nothing under it. Whether anything was removed.
fn uninstall_lefthook(config: &Path) -> Result<bool> {
    let data = fsutil::read(config)?;
    let Ok(text) = String::from_utf8(data) else {
        return Ok(false);
    };
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let blank = |l: &str| l.trim().is_empty();
    // The end of the block under line `at`: the next line indented no deeper than it
    // that is neither blank nor a comment.
    let end_of = |lines: &[&str], at: usize| {
        let depth = indent(lines[at]);
        (at + 1..lines.len())
            .find(|&i| {
                !blank(lines[i])
                    && !lines[i].trim_start().starts_with('#')
                    && indent(lines[i]) <= depth
            })
            .unwrap_or(lines.len())
    };
    let empty =
        |lines: &[&str], at: usize| lines[at + 1..end_of(lines, at)].iter().all(|l| blank(l));
    let mut changed = false;
    for name in HOOKS {
        let Some(head) = lines
            .iter()
            .position(|l| indent(l) == 0 && l.trim_end() == format!("{name}:"))
        else {
            continue;
        };
        let Some(command) = (head + 1..end_of(&lines, head))
            .find(|&i| lines[i].trim() == format!("{LEFTHOOK_COMMAND}:"))
        else {
            continue;
        };
        let depth = indent(lines[command]);
        let parent = (head + 1..command)
            .rev()
            .find(|&i| !blank(lines[i]) && indent(lines[i]) < depth)
            .filter(|&i| lines[i].trim() == "commands:");
        lines.drain(command..end_of(&lines, command));
        changed = true;
        // A `commands:`, then a hook, left with nothing under it goes too.
        if let Some(parent) = parent
            && empty(&lines, parent)
        {
            lines.drain(parent..end_of(&lines, parent));
        }
        if empty(&lines, head) {
            lines.drain(head..end_of(&lines, head));
        }
    }
    if changed {
        let new: String = lines.concat();
        if new.trim().is_empty() {
            fsutil::remove(config)?;
        } else {
            fsutil::write_atomic(config, new.as_bytes(), 0o644)?;
        }
    }
    Ok(changed)
}

/// Writes hook `name` in `hooks`, keeping one that is there as `NAME.before-keys`.
fn install_one(hooks: &Path, name: &str, script: &[u8]) -> Result<Installed> {
    let hook = hooks.join(name);
    let meta = match fs::symlink_metadata(&hook) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fsutil::write_new(&hook, script, EXECUTABLE)?;
            return Ok(Installed::New(hook));
        }
        Err(e) => return Err(Error::io(&hook, e)),
    };
    if meta.is_file() {
        let existing = fsutil::read(&hook)?;
        if is_ours(&existing) {
            if existing == script && meta.permissions().mode() & 0o100 != 0 {
                return Ok(Installed::Already(hook));
            }
            fsutil::write_atomic(&hook, script, EXECUTABLE)?;
            return Ok(Installed::New(hook));
        }
    } else if !meta.file_type().is_symlink() {
        return Err(Error::HookInTheWay { path: hook });
    }
    let previous = hooks.join(format!("{name}{PREVIOUS_SUFFIX}"));
    let previous = keep_previous(&hook, &previous, meta.is_file())?;
    if let Err(e) = fsutil::write_atomic(&hook, script, EXECUTABLE) {
        // The old hook is still in place; do not leave a second name for it behind.
        let _ = fs::remove_file(&previous);
        return Err(e);
    }
    Ok(Installed::Chained { hook, previous })
}

/// Why git will not run keys' pre-commit hook, though keys installed one in this
/// clone of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// The hooks directory git uses (core.hooksPath) has no pre-commit hook of ours;
    /// ours is at `installed`, where git does not look.
    Elsewhere { hook: PathBuf, installed: PathBuf },
    /// Our pre-commit hook is where git looks, but not executable: git skips it.
    NotExecutable { hook: PathBuf },
    /// Our pre-commit hook runs, but merges are not checked: no pre-merge-commit hook
    /// of ours (installed by an older keys).
    NoMergeHook { hook: PathBuf },
    /// husky runs `caller`, which no longer calls keys' `hook`.
    NotCalled { caller: PathBuf, hook: PathBuf },
    /// keys' hook was installed at `hook` and something else is there now.
    Replaced { hook: PathBuf },
    /// lefthook's configuration runs keys' check, but its hook is not installed.
    LefthookNotInstalled { config: PathBuf, hook: PathBuf },
}

/// Whether git runs keys' hooks for the repository containing `dir`. Ok(None) when
/// it does, when `dir` is not in a git work tree, and when keys' hook was never
/// installed in this clone: no hook of ours in git's default hooks directory nor in
/// the directory `keys hook install` recorded (a hook deliberately removed, or
/// replaced by another framework, is not reported).
pub fn audit(dir: &Path) -> Result<Option<Bypass>> {
    audit_env(dir, &[], &git::current_dir()?)
}

fn audit_env(dir: &Path, env: Env, cwd: &Path) -> Result<Option<Bypass>> {
    let Some((effective, default)) = git::hook_dirs_env(dir, env, cwd)? else {
        return Ok(None);
    };
    if let Some(prefix) = git::work_tree_prefix(dir, env, cwd)?
        && let Some(config) = lefthook_config(&top_of(dir, &prefix))
        && lefthook_runs_keys(
            &String::from_utf8_lossy(&fs::read(&config).unwrap_or_default()),
            HOOKS[0],
        )
    {
        let hook = effective.join(HOOKS[0]);
        let runs = fs::read(&hook).is_ok_and(|t| t.windows(8).any(|w| w == b"lefthook"));
        return Ok((!runs).then_some(Bypass::LefthookNotInstalled { config, hook }));
    }
    if let Some(husky) = husky_dir(&effective) {
        let hook = husky.join(HUSKY_KEYS_DIR).join(HOOKS[0]);
        if ours(&hook).is_some() {
            let caller = husky.join(HOOKS[0]);
            let text = fs::read(&caller).unwrap_or_default();
            return Ok((!calls_keys(&text, HOOKS[0])).then_some(Bypass::NotCalled { caller, hook }));
        }
    }
    let hook = effective.join(HOOKS[0]);
    match ours(&hook) {
        Some(true) => {
            let merge = effective.join(HOOKS[1]);
            return Ok((ours(&merge) != Some(true)).then_some(Bypass::NoMergeHook { hook: merge }));
        }
        Some(false) => return Ok(Some(Bypass::NotExecutable { hook })),
        None => {}
    }
    let recorded = git::config_get_env(dir, RECORD, env, cwd)?
        .map(|raw| PathBuf::from(std::ffi::OsString::from_vec(raw)));
    let same = |a: &Path, b: &Path| {
        a == b || fs::canonicalize(a).is_ok_and(|a| fs::canonicalize(b).is_ok_and(|b| a == b))
    };
    let installed = [Some(default), recorded.clone()]
        .into_iter()
        .flatten()
        .filter(|d| !same(d, &effective))
        .map(|d| d.join(HOOKS[0]))
        .find(|h| ours(h).is_some());
    if let Some(installed) = installed {
        return Ok(Some(Bypass::Elsewhere { hook, installed }));
    }
    // Installed here, and no longer here: another tool's `install` put its own hook in
    // its place (lefthook keeps ours as `.old` and never runs it). The pre-commit
    // framework keeps ours as `.legacy` and runs it.
    // A hook removed on purpose (nothing there) is not reported.
    if recorded.is_some_and(|r| same(&r, &effective)) && fs::symlink_metadata(&hook).is_ok() {
        let text = fs::read(&hook).unwrap_or_default();
        let has = |t: &[u8], what: &[u8]| t.windows(what.len()).any(|w| w == what);
        let legacy = effective.join(format!("{}.legacy", HOOKS[0]));
        // A hook that runs keys' check itself, or the pre-commit framework's running
        // ours as its legacy hook or a keys-check hook id of its configuration.
        let framework_runs_keys = || -> Result<bool> {
            if ours(&legacy) == Some(true) {
                return Ok(true);
            }
            let Some(prefix) = git::work_tree_prefix(dir, env, cwd)? else {
                return Ok(false);
            };
            let config = top_of(dir, &prefix).join(".pre-commit-config.yaml");
            Ok(fs::read(config).is_ok_and(|c| has(&c, b"keys-check")))
        };
        let checks =
            has(&text, b"keys check") || (has(&text, b"hook-impl") && framework_runs_keys()?);
        if !checks {
            return Ok(Some(Bypass::Replaced { hook }));
        }
    }
    Ok(None)
}

impl Bypass {
    /// What `keys check` says about it; paths relative to `root` when under it.
    pub fn finding(&self, root: &Path) -> super::check::Finding {
        use super::check::{Finding, Kind, Severity};
        let shown = |p: &Path| {
            let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            let p = p
                .parent()
                .and_then(|d| fs::canonicalize(d).ok())
                .and_then(|d| Some(d.join(p.file_name()?)))
                .unwrap_or_else(|| p.to_path_buf());
            p.strip_prefix(&root)
                .map(|rel| rel.display().to_string())
                .unwrap_or_else(|_| p.display().to_string())
        };
        let again = "run `keys hook install` again: it installs the hooks where git looks now (a hook there is kept and run after the check)";
        match self {
            Bypass::Elsewhere { hook, installed } => Finding {
                severity: Severity::Problem,
                kind: Kind::Hook,
                at: shown(hook).into(),
                what: format!(
                    "git looks for its pre-commit hook here (core.hooksPath) and finds no keys hook; the one installed at {} never runs: commits are not checked",
                    shown(installed)
                ),
                fix: again.into(),
            },
            Bypass::NotExecutable { hook } => Finding {
                severity: Severity::Problem,
                kind: Kind::Hook,
                at: shown(hook).into(),
                what: "the keys hook is not executable, so git skips it: commits are not checked"
                    .into(),
                fix: again.into(),
            },
            Bypass::LefthookNotInstalled { config, hook } => Finding {
                severity: Severity::Problem,
                kind: Kind::Hook,
                at: shown(hook).into(),
                what: format!(
                    "is not lefthook's hook, so the keys-check command of {} never runs: commits are not checked",
                    shown(config)
                ),
                fix: "run `lefthook install`".into(),
            },
            Bypass::Replaced { hook } => Finding {
                severity: Severity::Problem,
                kind: Kind::Hook,
                at: shown(hook).into(),
                what: "keys' hook was installed here and another hook has taken its place (another tool's install): commits are not checked".into(),
                fix: again.into(),
            },
            Bypass::NotCalled { caller, hook } => Finding {
                severity: Severity::Problem,
                kind: Kind::Hook,
                at: shown(caller).into(),
                what: format!(
                    "husky runs this script for git's pre-commit hook, and it no longer calls {}: commits are not checked",
                    shown(hook)
                ),
                fix: again.into(),
            },
            Bypass::NoMergeHook { hook } => Finding {
                severity: Severity::Warning,
                kind: Kind::Hook,
                at: shown(hook).into(),
                what: "is not the keys hook: merges are not checked".into(),
                fix: again.into(),
            },
        }
    }
}

/// Whether `hook` is a hook of ours: Some(executable), or None when it is not.
fn ours(hook: &Path) -> Option<bool> {
    let meta = fs::metadata(hook).ok()?;
    if !meta.is_file() || !is_ours(&fs::read(hook).ok()?) {
        return None;
    }
    Some(meta.permissions().mode() & 0o111 != 0)
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
# Written by `keys hook install` as pre-commit and pre-merge-commit. It blocks the
# commit (or the merge) unless `keys check --staged` passes in the fleet directory,
# then runs the hook that was here before under this name, if any
# (NAME.before-keys). Run `keys hook install` again rather than editing this.

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
*.before-keys) previous= ;; # never run itself
/*) previous=$0.before-keys ;;
*) previous=$PWD/$0.before-keys ;;
esac

if ! (
	# Git gives hooks GIT_INDEX_FILE, and may give GIT_DIR, relative to the top of
	# the work tree: make them absolute before leaving it. With GIT_DIR and no
	# GIT_WORK_TREE (a linked worktree), git would take the fleet directory for
	# the top of the work tree, so pin that too.
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
	cd "$fleet" || exit 1
	# A merge: the exports are regenerated from the merged policy, fleet and
	# secrets (their merge driver kept this branch's text) and staged with it.
	merging=
	case $0 in *pre-merge-commit) merging=1 ;; esac
	git rev-parse -q --verify MERGE_HEAD >/dev/null 2>&1 && merging=1
	if [ -n "$merging" ]; then
		for f in $("$keys" export refresh); do git add -- "$f" || exit 1; done
	fi
	exec "$keys" check --staged
); then
	blocked "\`keys check --staged\` failed in $fleet; run it there to see why"
fi

if [ -n "$previous" ] && [ -x "$previous" ]; then
	exec "$previous" "$@"
fi
exit 0
"#;

#[cfg(test)]
mod tests;
