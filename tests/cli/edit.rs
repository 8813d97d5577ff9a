//! `keys edit`: the plaintext lives only in a 0700 tmpfs directory while a real
//! editor program runs, is removed on every exit path, and the secret is
//! re-encrypted only when it changed.

use std::path::{Path, PathBuf};

use crate::common::{TestEnv, peer};
use crate::secrets::{fleet, tree};

/// A private runtime directory on /dev/shm for the run, as a login session has.
fn runtime_dir(env: &mut TestEnv) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("keys-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap()
        .keep();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.set("XDG_RUNTIME_DIR", dir.display().to_string());
    dir
}

/// An editor that is a real program: records where it was started and the modes it
/// saw, then runs `action` on the file.
fn editor(env: &mut TestEnv, action: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let log = env.root.join("editor.log");
    let script = format!(
        "#!/bin/sh\nf=\"$1\"\nfor a in \"$@\"; do f=\"$a\"; done\nstat -c '%a %n' \"$f\" \"$(dirname \"$f\")\" > '{}'\n{action}\n",
        log.display()
    );
    let path = env.write("bin/fake-editor", script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set("EDITOR", path.display().to_string());
    log
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn edit_reencrypts_changes_in_a_private_tmpfs_file_and_removes_it() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"old-canary\n")
        .success();
    let log = editor(&mut env, "printf 'new-canary\\n' >> \"$f\"");
    let run = env.keys(&["edit", "bot/token"]).success();
    assert!(
        run.stderr.contains("re-encrypted secrets/bot/token.age"),
        "{}",
        run.stderr
    );
    let seen = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines[0].starts_with("600 ") && lines[0].contains(&run_dir.display().to_string()),
        "{seen}"
    );
    assert!(lines[1].starts_with("700 "), "{seen}");
    assert!(empty(&run_dir), "plaintext left behind");
    assert_eq!(
        env.keys(&["decrypt", "bot/token"]).success().raw_stdout,
        b"old-canary\nnew-canary\n"
    );
    env.keys(&["check"]).success();

    // No change: nothing is re-encrypted.
    editor(&mut env, "true");
    let before = tree(&repo);
    let run = env.keys(&["edit", "bot/token"]).success();
    assert!(run.stderr.contains("no changes"), "{}", run.stderr);
    assert_eq!(tree(&repo), before);

    // A new secret starts empty.
    editor(&mut env, "printf 'fresh' > \"$f\"");
    env.keys(&["edit", "bot/new"]).success();
    assert_eq!(
        env.keys(&["decrypt", "bot/new"]).success().raw_stdout,
        b"fresh"
    );
    assert!(empty(&run_dir));
    let _ = std::fs::remove_dir_all(&run_dir);
}

#[test]
fn a_failing_or_interrupted_editor_changes_nothing_and_leaves_no_plaintext() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary\n")
        .success();
    let before = tree(&repo);

    editor(&mut env, "echo changed >> \"$f\"; exit 3");
    let run = env.keys(&["edit", "bot/token"]).failure(9);
    assert!(
        run.stderr.contains("exited with status 3"),
        "{}",
        run.stderr
    );
    assert_eq!(tree(&repo), before);
    assert!(empty(&run_dir));

    // Ctrl-C in the terminal signals the whole foreground group: keys survives it,
    // removes the plaintext and exits 130 without writing.
    editor(&mut env, "echo changed >> \"$f\"; kill -INT 0; sleep 1");
    let run = env.keys(&["edit", "bot/token"]).failure(130);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    assert_eq!(tree(&repo), before);
    assert!(empty(&run_dir));

    // Emptied by the editor: refused.
    editor(&mut env, ": > \"$f\"");
    env.keys(&["edit", "bot/token"]).failure(2);
    assert_eq!(tree(&repo), before);
    assert!(empty(&run_dir));
    let _ = std::fs::remove_dir_all(&run_dir);
}

#[test]
fn real_vim_edits_without_swap_backup_undo_or_viminfo_files() {
    let mut env = TestEnv::new();
    let _repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    let vim = peer("vim");
    env.keys_stdin(&["encrypt", "bot/token"], b"line one\n")
        .success();
    // A vimrc that asks for every file vim can leave behind.
    env.write(
        "home/.vimrc",
        "set undofile undodir=~ backup backupdir=~ writebackup swapfile directory=~\n",
    );
    // Ex mode reads its commands from standard input, which the editor inherits.
    env.set("VISUAL", format!("{} -e", vim.display()));
    env.set("EDITOR", "/nonexistent");
    let home_before = tree(&env.home);
    env.keys_stdin(&["edit", "bot/token"], b"normal! Goline two\nwq\n")
        .success();
    assert_eq!(
        env.keys(&["decrypt", "bot/token"]).success().raw_stdout,
        b"line one\nline two\n"
    );
    assert_eq!(tree(&env.home), home_before, "vim left files in HOME");
    assert!(empty(&run_dir));
    let _ = std::fs::remove_dir_all(&run_dir);
}
