//! Running the user's editor on a plaintext file without losing it to signals.
//!
//! The editor is $VISUAL, else $EDITOR, else `vi`, run through `sh` the way git runs
//! it, so "code --wait" works and the file name is never part of the shell string.
//! vi-family editors get arguments that keep swap, backup, undo and viminfo/shada
//! files from copying the plaintext elsewhere.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::scratch::SignalGuard;

/// Vim and Neovim settings that keep plaintext out of backup, undo and swap files.
const VIM_SETTINGS: &str = "set nobackup nowritebackup noundofile noswapfile";

/// Arguments for vi, vim, nvim and gvim (all valid for both vim and nvim): no swap file
/// (`-n`, which also overrides the vimrc), no viminfo/shada (`-i NONE`), and the
/// settings both before the vimrc (`--cmd`) and after it (`-c`), so a vimrc with
/// `set undofile` cannot write an undo file of the plaintext to ~/.vim. `--` ends the
/// options, so the file name is only ever a file name.
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

/// The editor to run and the arguments `keys` adds before the file.
#[derive(Debug, PartialEq, Eq)]
struct EditorCommand {
    /// Shell words, as the user wrote them: "vim", "code --wait".
    editor: OsString,
    /// Added after the user's words, before the file.
    args: Vec<&'static str>,
    /// Where the editor came from, for the message when it is missing.
    from: Source,
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
/// editor returns.
pub(crate) fn edit(file: &Path, guard: &SignalGuard) -> Result<()> {
    let visual = std::env::var_os("VISUAL");
    let editor = std::env::var_os("EDITOR");
    run(
        &command_line(visual.as_deref(), editor.as_deref()),
        file,
        guard,
    )
}

/// Decides the editor command line from $VISUAL and $EDITOR (empty or blank counts as
/// unset).
fn command_line(visual: Option<&OsStr>, editor: Option<&OsStr>) -> EditorCommand {
    let (editor, from) = match (set(visual), set(editor)) {
        (Some(v), _) => (v.to_os_string(), Source::Visual),
        (None, Some(e)) => (e.to_os_string(), Source::Editor),
        (None, None) => (OsString::from("vi"), Source::Default),
    };
    let program = program_of(&editor);
    let base = program.rsplit('/').next().unwrap_or_default();
    let args = match base {
        "vi" | "vim" | "nvim" => VIM_ARGS.to_vec(),
        // gvim forks into the background unless told not to, and `keys` would read
        // the file back before it was edited.
        "gvim" => [&["-f"], VIM_ARGS].concat(),
        _ => Vec::new(),
    };
    EditorCommand { editor, args, from }
}

fn set(value: Option<&OsStr>) -> Option<&OsStr> {
    value.filter(|v| !v.as_bytes().trim_ascii().is_empty())
}

/// The editor's first shell word without surrounding quotes: the program, for
/// messages and for recognising vi.
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
    use crate::scratch::SIGNAL_TEST_LOCK;
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::PoisonError;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn command_line_table() {
        let gvim: Vec<&str> = [&["-f"], VIM_ARGS].concat();
        // VISUAL, EDITOR, the editor chosen, the arguments added, where it came from.
        type Case<'a> = (
            Option<&'a OsStr>,
            Option<&'a OsStr>,
            &'a str,
            &'a [&'a str],
            Source,
        );
        let cases: &[Case] = &[
            (os("vim"), None, "vim", VIM_ARGS, Source::Visual),
            (
                None,
                os("/usr/bin/nvim"),
                "/usr/bin/nvim",
                VIM_ARGS,
                Source::Editor,
            ),
            (os("vi"), os("nano"), "vi", VIM_ARGS, Source::Visual),
            (os("gvim"), None, "gvim", &gvim, Source::Visual),
            (
                os("/usr/local/bin/vim -u NONE"),
                None,
                "/usr/local/bin/vim -u NONE",
                VIM_ARGS,
                Source::Visual,
            ),
            (
                os("code --wait"),
                os("vim"),
                "code --wait",
                &[],
                Source::Visual,
            ),
            (os(""), os("nano"), "nano", &[], Source::Editor),
            (os("  "), os("emacs -nw"), "emacs -nw", &[], Source::Editor),
            (None, os(""), "vi", VIM_ARGS, Source::Default),
            (None, None, "vi", VIM_ARGS, Source::Default),
            (os("vimdiff"), None, "vimdiff", &[], Source::Visual),
            (os("nvim-qt"), None, "nvim-qt", &[], Source::Visual),
            (
                os("'/opt/vim'"),
                None,
                "'/opt/vim'",
                VIM_ARGS,
                Source::Visual,
            ),
        ];
        for (visual, editor, want, args, from) in cases {
            let got = command_line(*visual, *editor);
            assert_eq!(
                (got.editor, got.args, got.from),
                (OsString::from(want), args.to_vec(), *from),
                "VISUAL={visual:?} EDITOR={editor:?}"
            );
        }
        assert_eq!(program_of(OsStr::new("  code --wait")), "code");
        assert_eq!(program_of(OsStr::new("\"/opt/my-ed\" -x")), "/opt/my-ed");
    }

    /// An editor script in a fresh directory, and the command that runs it.
    fn script(dir: &Path, body: &str, extra: &str) -> EditorCommand {
        let path = dir.join("editor.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o700)).unwrap();
        command_line(
            Some(OsStr::new(&format!("{} {extra}", path.display()))),
            None,
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
        let cmd = command_line(None, Some(missing.as_os_str()));
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
