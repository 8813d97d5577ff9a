//! Running the user's editor on a plaintext file without losing it to signals.
//!
//! The editor is $VISUAL, else $EDITOR, else `vi`, run through `sh` the way git runs
//! it, so "code --wait" works and the file name is never part of the shell string.
//! The editor is recognised by the program its first word resolves to (searched on
//! PATH as `sh` does, then followed through symlinks such as Debian's
//! /etc/alternatives), not by the name it is called by, and vim, neovim, emacs and nano
//! get arguments that keep swap, backup, undo, auto-save and history files from copying
//! the plaintext out of the private directory. Any other editor is named in a warning.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::signal::SignalGuard;

use super::ui;

/// Vim and Neovim settings that keep plaintext out of backup, undo and swap files.
const VIM_SETTINGS: &str = "set nobackup nowritebackup noundofile noswapfile";

/// Arguments for Vim and Neovim: no swap file (`-n`, which also overrides the vimrc),
/// no viminfo/shada (`-i NONE`), and the settings both before the vimrc (`--cmd`) and
/// after it (`-c`), so a vimrc with `set undofile` cannot write an undo file of the
/// plaintext to ~/.vim. `--` ends the options, so the file name is only ever a file
/// name.
const VIM_ARGS: &[&str] = &[
    "-n",
    "-i",
    "NONE",
    "--cmd",
    VIM_SETTINGS,
    "-c",
    VIM_SETTINGS,
    "--",
];

/// Vim also gets `-f`: called as gvim (or any name starting with `g`) it forks into the
/// background unless told not to, and `keys` would read the file back before it was
/// edited. A terminal Vim ignores it.
const GUI_FOREGROUND: &str = "-f";

/// Emacs settings evaluated after the user's init files and before the file is
/// visited, so they win: no backup file (`backup-inhibited` overrides
/// `backup-directory-alist` and version control), no auto-save file or session list,
/// no lock file, and no undo history written by undo-tree.
const EMACS_SETTINGS: &str = "(setq make-backup-files nil backup-inhibited t \
auto-save-default nil auto-save-list-file-name nil create-lockfiles nil \
undo-tree-auto-save-history nil)";

/// Emacs: the settings, then `--` so the file name is only ever a file name.
const EMACS_ARGS: &[&str] = &["--eval", EMACS_SETTINGS, "--"];

/// Nano reads `set backup` and `set backupdir` from the user's nanorc, and no command
/// line option unsets them. Restricted mode does: it makes no backup file and writes no
/// search or position history, and it also refuses to write the text anywhere but the
/// file given (no "save as", no spell checker's temp file), while the user's nanorc
/// still applies for everything else (syntax colours, key bindings).
const NANO_ARGS: &[&str] = &["--restricted", "--"];

/// The editors `keys` knows how to keep from copying the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Vim,
    Neovim,
    Emacs,
    Nano,
    /// Any other program (its resolved name); files it makes are its own.
    Other(String),
    /// The program was not found; `sh` will say so.
    Missing,
}

impl Kind {
    /// The editor a program is, by the file name of what it resolves to.
    fn of(program: &str) -> Kind {
        let vim_named = matches!(
            program,
            "vi" | "vim"
                | "gvim"
                | "view"
                | "rview"
                | "rvim"
                | "gview"
                | "rgvim"
                | "rgview"
                | "evim"
                | "eview"
                | "vimdiff"
                | "gvimdiff"
        );
        let versioned = |name: &str| {
            program.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with(['.', '-']) || rest.bytes().all(|b| b.is_ascii_digit())
            })
        };
        if vim_named || program.starts_with("vim.") {
            // vim.basic, vim.tiny, vim.nox, vim.gtk3: Debian's builds.
            Kind::Vim
        } else if program == "nvim" || program.starts_with("nvim.") {
            Kind::Neovim
        } else if versioned("emacs") {
            // emacs, emacs-gtk, emacs-nox, emacs-29.4, emacs29 (not emacsclient).
            Kind::Emacs
        } else if program == "nano" || program == "rnano" {
            Kind::Nano
        } else {
            Kind::Other(program.to_string())
        }
    }

    /// The arguments added after the user's words, before the file.
    fn args(&self) -> Vec<&'static str> {
        match self {
            Kind::Vim => [&[GUI_FOREGROUND], VIM_ARGS].concat(),
            Kind::Neovim => VIM_ARGS.to_vec(),
            Kind::Emacs => EMACS_ARGS.to_vec(),
            Kind::Nano => NANO_ARGS.to_vec(),
            Kind::Other(_) | Kind::Missing => Vec::new(),
        }
    }
}

/// The editor to run and the arguments `keys` adds before the file.
#[derive(Debug, PartialEq, Eq)]
struct EditorCommand {
    /// Shell words, as the user wrote them: "vim", "code --wait".
    editor: OsString,
    /// Added after the user's words, before the file.
    args: Vec<&'static str>,
    /// Where the editor came from, for the message when it is missing.
    from: Source,
    /// What the editor's program resolved to.
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Visual,
    Editor,
    Default,
}

/// Runs the user's editor on `file` and waits. The editor is $VISUAL, else $EDITOR,
/// else `vi`, run as `sh -c '<editor> "$@"' <editor> [extra args] <file>`; the
/// terminal is inherited. `guard` must be alive around the call: a Ctrl-C reaches the
/// editor but does not kill `keys`, and is reported as `Error::Interrupted` after the
/// editor returns. An editor `keys` cannot harden is named in a one-line warning.
pub(crate) fn edit(file: &Path, guard: &SignalGuard) -> Result<()> {
    let visual = std::env::var_os("VISUAL");
    let editor = std::env::var_os("EDITOR");
    let path = std::env::var_os("PATH");
    let cmd = command_line(visual.as_deref(), editor.as_deref(), &|program| {
        resolve(program, path.as_deref())
    });
    if let Kind::Other(name) = &cmd.kind {
        ui::warn(&format!(
            "keys does not know how to keep {} ({name}) from writing swap, backup or history files; those files are outside the tmpfs guarantee",
            program_of(&cmd.editor)
        ));
    }
    run(&cmd, file, guard)
}

/// Decides the editor command line from $VISUAL and $EDITOR (empty or blank counts as
/// unset); `resolve` says what the program (the first word) is.
fn command_line(
    visual: Option<&OsStr>,
    editor: Option<&OsStr>,
    resolve: &dyn Fn(&str) -> Option<PathBuf>,
) -> EditorCommand {
    let (editor, from) = match (set(visual), set(editor)) {
        (Some(v), _) => (v.to_os_string(), Source::Visual),
        (None, Some(e)) => (e.to_os_string(), Source::Editor),
        (None, None) => (OsString::from("vi"), Source::Default),
    };
    let kind = match resolve(&program_of(&editor)) {
        Some(real) => Kind::of(&real.file_name().unwrap_or_default().to_string_lossy()),
        None => Kind::Missing,
    };
    EditorCommand {
        editor,
        args: kind.args(),
        from,
        kind,
    }
}

/// The program `sh` would run for the command word `program`, with every symlink
/// followed: a name with a '/' is a path; another name is looked up in each directory
/// of `path` in turn (an empty entry is the current directory), taking the first
/// executable file.
fn resolve(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let found = if program.contains('/') {
        PathBuf::from(program)
    } else if program.is_empty() {
        return None;
    } else {
        let cwd = std::env::current_dir().ok()?;
        which::which_in(program, Some(path.unwrap_or_default()), cwd).ok()?
    };
    std::fs::canonicalize(found).ok()
}

fn set(value: Option<&OsStr>) -> Option<&OsStr> {
    value.filter(|v| !v.as_bytes().trim_ascii().is_empty())
}

/// The editor's first shell word without surrounding quotes: the program, for
/// messages and for recognising the editor.
fn program_of(editor: &OsStr) -> String {
    let word = editor
        .as_bytes()
        .split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    let word = word
        .strip_prefix(b"'")
        .or_else(|| word.strip_prefix(b"\""))
        .unwrap_or(word);
    let word = word
        .strip_suffix(b"'")
        .or_else(|| word.strip_suffix(b"\""))
        .unwrap_or(word);
    String::from_utf8_lossy(word).into_owned()
}

fn run(cmd: &EditorCommand, file: &Path, guard: &SignalGuard) -> Result<()> {
    guard.check()?;
    let mut script = cmd.editor.clone();
    script.push(" \"$@\"");
    // A relative name starting with '-' must not read as an option.
    let file: PathBuf = if file.is_absolute() {
        file.to_path_buf()
    } else {
        Path::new(".").join(file)
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .arg(&cmd.editor)
        .args(&cmd.args)
        .arg(&file)
        .status()
        .map_err(|e| Error::External {
            program: "sh".into(),
            reason: format!("cannot start the shell to run the editor: {e}"),
        })?;
    guard.check()?;
    // The editor died of a signal keys itself guards against: a Ctrl-C or hang-up sent
    // to the whole group, whose delivery to keys may still be on its way on another
    // thread. Reported as the interruption it is.
    if let Some(signal) = status.signal().filter(|s| crate::signal::is_guarded(*s)) {
        return Err(crate::signal::interruption(signal));
    }
    let failed = |reason: String| {
        Err(Error::External {
            program: program_of(&cmd.editor),
            reason,
        })
    };
    let from = match cmd.from {
        Source::Visual => "from $VISUAL",
        Source::Editor => "from $EDITOR",
        Source::Default => "the default, as neither $VISUAL nor $EDITOR is set",
    };
    match status.code() {
        Some(0) => Ok(()),
        Some(127) => failed(format!(
            "editor not found ({from}); set $VISUAL or $EDITOR to an installed editor"
        )),
        Some(126) => failed(format!(
            "editor cannot be run ({from}): not executable or permission denied"
        )),
        Some(n) => failed(format!("exited with status {n}")),
        None => failed(match status.signal() {
            Some(signal) => format!("killed by signal {signal}"),
            None => "stopped without an exit status".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::SIGNAL_TEST_LOCK;
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::PoisonError;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn command_line_table() {
        let vim: Vec<&str> = [&[GUI_FOREGROUND], VIM_ARGS].concat();
        // VISUAL, EDITOR, what the first word resolves to, the editor chosen, the
        // arguments added, where it came from.
        type Case<'a> = (
            Option<&'a OsStr>,
            Option<&'a OsStr>,
            Option<&'a str>,
            &'a str,
            &'a [&'a str],
            Source,
        );
        let cases: &[Case] = &[
            (
                os("vim"),
                None,
                Some("/usr/bin/vim.basic"),
                "vim",
                &vim,
                Source::Visual,
            ),
            // Debian's default editor, through /etc/alternatives.
            (
                None,
                os("editor"),
                Some("/usr/bin/vim.basic"),
                "editor",
                &vim,
                Source::Editor,
            ),
            (
                os("view"),
                None,
                Some("/usr/bin/vim.gtk3"),
                "view",
                &vim,
                Source::Visual,
            ),
            (
                None,
                os("/usr/bin/nvim"),
                Some("/usr/bin/nvim"),
                "/usr/bin/nvim",
                VIM_ARGS,
                Source::Editor,
            ),
            (
                os("vi"),
                os("nano"),
                Some("/usr/bin/vim.tiny"),
                "vi",
                &vim,
                Source::Visual,
            ),
            (
                os("gvim"),
                None,
                Some("/usr/bin/vim.gtk3"),
                "gvim",
                &vim,
                Source::Visual,
            ),
            (
                os("/usr/local/bin/vim -u NONE"),
                None,
                Some("/usr/local/bin/vim"),
                "/usr/local/bin/vim -u NONE",
                &vim,
                Source::Visual,
            ),
            (
                os("code --wait"),
                os("vim"),
                Some("/usr/share/code/bin/code"),
                "code --wait",
                &[],
                Source::Visual,
            ),
            (
                os(""),
                os("nano"),
                Some("/usr/bin/nano"),
                "nano",
                NANO_ARGS,
                Source::Editor,
            ),
            (
                os("  "),
                os("emacs -nw"),
                Some("/usr/bin/emacs-gtk"),
                "emacs -nw",
                EMACS_ARGS,
                Source::Editor,
            ),
            (
                None,
                os(""),
                Some("/usr/bin/vim.basic"),
                "vi",
                &vim,
                Source::Default,
            ),
            (None, None, None, "vi", &[], Source::Default),
            // busybox vi has no vim options: only what it resolves to counts.
            (
                None,
                os("vi"),
                Some("/bin/busybox"),
                "vi",
                &[],
                Source::Editor,
            ),
            (
                os("nvim-qt"),
                None,
                Some("/usr/bin/nvim-qt"),
                "nvim-qt",
                &[],
                Source::Visual,
            ),
            (
                os("emacsclient -t"),
                None,
                Some("/usr/bin/emacsclient"),
                "emacsclient -t",
                &[],
                Source::Visual,
            ),
            (
                os("'/opt/vim'"),
                None,
                Some("/opt/vim"),
                "'/opt/vim'",
                &vim,
                Source::Visual,
            ),
        ];
        for (visual, editor, resolved, want, args, from) in cases {
            let asked = std::cell::RefCell::new(Vec::new());
            let resolve = |program: &str| {
                asked.borrow_mut().push(program.to_string());
                resolved.map(PathBuf::from)
            };
            let got = command_line(*visual, *editor, &resolve);
            assert_eq!(
                (got.editor, got.args, got.from),
                (OsString::from(want), args.to_vec(), *from),
                "VISUAL={visual:?} EDITOR={editor:?}"
            );
            assert_eq!(*asked.borrow(), [program_of(OsStr::new(want))]);
        }
        assert_eq!(program_of(OsStr::new("  code --wait")), "code");
        assert_eq!(program_of(OsStr::new("\"/opt/my-ed\" -x")), "/opt/my-ed");
    }

    #[test]
    fn editors_are_recognised_by_the_program_they_are() {
        for (program, kind) in [
            ("vim", Kind::Vim),
            ("vim.basic", Kind::Vim),
            ("vim.tiny", Kind::Vim),
            ("vim.nox", Kind::Vim),
            ("vim.gtk3", Kind::Vim),
            ("gvim", Kind::Vim),
            ("view", Kind::Vim),
            ("rview", Kind::Vim),
            ("vi", Kind::Vim),
            ("nvim", Kind::Neovim),
            ("nvim.appimage", Kind::Neovim),
            ("emacs", Kind::Emacs),
            ("emacs-gtk", Kind::Emacs),
            ("emacs-nox", Kind::Emacs),
            ("emacs-29.4", Kind::Emacs),
            ("emacs30", Kind::Emacs),
            ("nano", Kind::Nano),
            ("rnano", Kind::Nano),
            ("emacsclient", Kind::Other("emacsclient".into())),
            ("nvim-qt", Kind::Other("nvim-qt".into())),
            ("busybox", Kind::Other("busybox".into())),
            ("code", Kind::Other("code".into())),
            ("vimx-not", Kind::Other("vimx-not".into())),
            ("editor", Kind::Other("editor".into())),
        ] {
            assert_eq!(Kind::of(program), kind, "{program}");
        }
    }

    #[test]
    fn resolve_searches_path_as_sh_does_and_follows_symlinks() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let vim = real.join("vim.basic");
        std::fs::write(&vim, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&vim, Permissions::from_mode(0o755)).unwrap();
        // bin/editor -> alternatives/editor -> real/vim.basic, as Debian's alternatives.
        let (alternatives, bin, first) = (
            dir.path().join("alternatives"),
            dir.path().join("bin"),
            dir.path().join("first"),
        );
        for d in [&alternatives, &bin, &first] {
            std::fs::create_dir(d).unwrap();
        }
        symlink(&vim, alternatives.join("editor")).unwrap();
        symlink(alternatives.join("editor"), bin.join("editor")).unwrap();
        // Earlier on PATH but not executable: sh skips it.
        std::fs::write(first.join("editor"), "not a program").unwrap();
        let path = std::env::join_paths([&first, &bin]).unwrap();
        let want = std::fs::canonicalize(&vim).unwrap();
        assert_eq!(resolve("editor", Some(&path)), Some(want.clone()));
        let by_path = bin.join("editor");
        assert_eq!(
            resolve(&by_path.display().to_string(), None),
            Some(want.clone())
        );
        assert_eq!(resolve("editor", Some(OsStr::new(""))), None);
        assert_eq!(resolve("no-such-editor", Some(&path)), None);
        let cmd = command_line(None, Some(OsStr::new("editor")), &|p| {
            resolve(p, Some(&path))
        });
        assert_eq!(cmd.kind, Kind::Vim);
    }

    /// An editor script in a fresh directory, and the command that runs it.
    fn script(dir: &Path, body: &str, extra: &str) -> EditorCommand {
        let path = dir.join("editor.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o700)).unwrap();
        command_line(
            Some(OsStr::new(&format!("{} {extra}", path.display()))),
            None,
            &|p| resolve(p, None),
        )
    }

    #[test]
    fn edit_runs_the_editor_with_its_arguments_and_the_file() {
        let _lock = SIGNAL_TEST_LOCK
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        // A file name the shell would expand if it were ever part of the script.
        let file = dir.path().join("it's $(touch pwned) `touch pwned2` *.txt");
        std::fs::write(&file, b"line one\n").unwrap();
        let cmd = script(
            dir.path(),
            r#"[ "$1" = --flag ] && [ "$#" = 2 ] || exit 9
printf 'line two\n' >> "$2""#,
            "--flag",
        );
        let guard = SignalGuard::new().unwrap();
        run(&cmd, &file, &guard).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"line one\nline two\n");
        assert!(!dir.path().join("pwned").exists());
        assert!(!dir.path().join("pwned2").exists());
        assert!(!Path::new("pwned").exists());
    }

    #[test]
    fn edit_reports_a_failing_or_missing_editor() {
        let _lock = SIGNAL_TEST_LOCK
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let guard = SignalGuard::new().unwrap();

        let cmd = script(dir.path(), "exit 3", "");
        match run(&cmd, &file, &guard) {
            Err(Error::External { program, reason }) => {
                assert_eq!(program, dir.path().join("editor.sh").display().to_string());
                assert_eq!(reason, "exited with status 3");
            }
            other => panic!("failing editor: {other:?}"),
        }

        let missing = dir.path().join("no-such-editor");
        let cmd = command_line(None, Some(missing.as_os_str()), &|p| resolve(p, None));
        assert_eq!(cmd.kind, Kind::Missing);
        match run(&cmd, &file, &guard) {
            Err(e @ Error::External { .. }) => {
                let message = e.to_string();
                assert!(message.contains("not found"), "{message}");
                assert!(message.contains("$EDITOR"), "{message}");
                assert!(message.starts_with(&missing.display().to_string()));
            }
            other => panic!("missing editor: {other:?}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}
