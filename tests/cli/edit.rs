//! `keys edit`: the plaintext lives only in a 0700 tmpfs directory while a real
//! editor program runs, is removed on every exit path, and the secret is
//! re-encrypted only when it changed.

use std::path::{Path, PathBuf};

use crate::common::{TestEnv, executable, peer};
use crate::fixture::{fleet, tree};

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
    let log = env.root.join("editor.log");
    let script = format!(
        "#!/bin/sh\nf=\"$1\"\nfor a in \"$@\"; do f=\"$a\"; done\nstat -c '%a %n' \"$f\" \"$(dirname \"$f\")\" > '{}'\n{action}\n",
        log.display()
    );
    let path = env.script("bin/fake-editor", script);
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
    crate::assert_output!(
        env,
        "edit_reencrypts_changes_in_a_private_tmpfs_file_and_removes_it",
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
    crate::assert_output!(
        env,
        "edit_reencrypts_changes_in_a_private_tmpfs_file_and_removes_it_2",
        run.stderr
    );
    assert_eq!(tree(&repo), before);

    // A typo names no secret: refused, the nearest names suggested, nothing made.
    let before = tree(&repo);
    let miss = env.keys(&["edit", "bot/tokne"]).failure(3);
    assert!(
        miss.stderr
            .starts_with("keys: error: no secret named bot/tokne (nothing at secrets/bot/tokne.*)\n  hint: did you mean bot/token?"),
        "{}",
        miss.stderr
    );
    assert_eq!(tree(&repo), before);
    // Its file's path is its name; a name with an extension is refused with the right one.
    editor(&mut env, "printf 'again' > \"$f\"");
    env.keys(&["edit", "secrets/bot/token.age"]).success();
    let wrong = env.keys(&["edit", "bot/token.age"]).failure(2);
    assert!(
        wrong.stderr.contains("hint: use `bot/token`"),
        "{}",
        wrong.stderr
    );
    // A new secret, asked for with --new, starts empty.
    editor(&mut env, "printf 'fresh' > \"$f\"");
    env.keys(&["edit", "--new", "bot/new"]).success();
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
    crate::assert_output!(
        env,
        "a_failing_or_interrupted_editor_changes_nothing_and_leaves_no_plaintext",
        run.stderr
    );
    assert_eq!(tree(&repo), before);
    assert!(empty(&run_dir));

    // Ctrl-C in the terminal signals the whole foreground group: keys survives it,
    // removes the plaintext and exits 130 without writing.
    editor(&mut env, "echo changed >> \"$f\"; kill -INT 0; sleep 1");
    let run = env.keys(&["edit", "bot/token"]).failure(130);
    crate::assert_output!(
        env,
        "a_failing_or_interrupted_editor_changes_nothing_and_leaves_no_plaintext_2",
        run.stderr
    );
    assert_eq!(tree(&repo), before);
    assert!(empty(&run_dir));

    // Emptied by the editor: refused.
    editor(&mut env, ": > \"$f\"");
    env.keys(&["edit", "bot/token"]).failure(3);
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
    // Ex mode reads its commands from standard input, which the editor inherits. On a
    // pipe it skips the user's vimrc unless named, as it is read on a terminal.
    env.set(
        "VISUAL",
        format!("{} -u {}/.vimrc -e", vim.display(), env.home.display()),
    );
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

/// A directory put first on PATH, holding the names the editor is called by.
fn path_dir(env: &mut TestEnv) -> PathBuf {
    let bin = env.root.join("path");
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    env.set("PATH", format!("{}:{path}", bin.display()));
    bin
}

/// A vimrc that asks for every file vim can leave behind, all of them in HOME.
fn hostile_vimrc(env: &TestEnv) {
    for d in ["undo", "backup", "swap"] {
        std::fs::create_dir_all(env.home.join(".vim").join(d)).unwrap();
    }
    env.write(
        "home/.vimrc",
        "set undofile undodir=~/.vim/undo backup writebackup backupdir=~/.vim/backup \
         swapfile directory=~/.vim/swap viminfo='100,<50,s10,h\n",
    );
}

#[test]
fn vim_is_recognised_by_what_it_resolves_to_not_by_its_name() {
    use std::os::unix::fs::symlink;
    let mut env = TestEnv::new();
    let _repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    let vim = std::fs::canonicalize(peer("vim")).unwrap();
    let bin = path_dir(&mut env);
    // editor -> alternatives/editor -> vim, as Debian's `editor` is; view -> vim.
    let alternatives = env.root.join("alternatives");
    std::fs::create_dir_all(&alternatives).unwrap();
    symlink(&vim, alternatives.join("editor")).unwrap();
    symlink(alternatives.join("editor"), bin.join("editor")).unwrap();
    symlink(&vim, bin.join("view")).unwrap();
    symlink(&vim, bin.join("my-vim")).unwrap();
    hostile_vimrc(&env);
    env.keys_stdin(&["encrypt", "bot/token"], b"line one\n")
        .success();
    env.set("EDITOR", "/nonexistent");
    let mut want = String::from("line one\n");
    for (n, name) in ["editor", "view", "my-vim"].into_iter().enumerate() {
        let home_before = tree(&env.home);
        // Ex mode reads its commands from standard input, which the editor inherits
        // (and skips the vimrc on a pipe unless named, as a terminal would read it);
        // `view` is read-only until told otherwise.
        env.set(
            "VISUAL",
            format!("{name} -u {}/.vimrc -e", env.home.display()),
        );
        let line = format!("line {}", n + 2);
        // While vim runs: what its swap directory and the scratch directory hold.
        let seen = env.root.join("seen-while-editing");
        let run = env
            .keys_stdin(
                &["edit", "bot/token"],
                format!(
                    "normal! Go{line}\nsilent !ls -A {}/.vim/swap \"$(dirname %)\" | grep -v ':$' | grep . > {}\nwq!\n",
                    env.home.display(),
                    seen.display()
                )
                .as_bytes(),
            )
            .success();
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            "token\n",
            "{name}: a swap file while editing"
        );
        assert!(!run.stderr.contains("warning"), "{name}: {}", run.stderr);
        want.push_str(&format!("{line}\n"));
        assert_eq!(
            env.keys(&["decrypt", "bot/token"]).success().stdout,
            want,
            "{name}"
        );
        assert_eq!(
            tree(&env.home),
            home_before,
            "{name}: vim left files in HOME"
        );
        assert!(empty(&run_dir), "{name}");
    }
    let _ = std::fs::remove_dir_all(&run_dir);
}

#[test]
fn nano_makes_no_backup_even_when_its_nanorc_asks_for_one() {
    let mut env = TestEnv::new();
    let _repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    peer("nano");
    peer("script");
    // nano reads $XDG_CONFIG_HOME/nano/nanorc (for root it ignores $HOME).
    let config = env.home.join(".config");
    let backups = env.home.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    env.write(
        "home/.config/nano/nanorc",
        format!(
            "set backup\nset backupdir \"{}\"\nset historylog\nset positionlog\n",
            backups.display()
        ),
    );
    env.set("XDG_CONFIG_HOME", config.display().to_string());
    env.set(
        "XDG_DATA_HOME",
        env.home.join(".local/share").display().to_string(),
    );
    env.set("TERM", "xterm");
    env.set("EDITOR", "nano");
    env.keys_stdin(&["encrypt", "bot/token"], b"old line\n")
        .success();
    let home_before = tree(&env.home);
    // On a terminal: type, save (^S), exit (^X).
    let script = format!(
        "(sleep 2; printf 'new '; sleep 1; printf '\\023'; sleep 1; printf '\\030'; sleep 2) \
         | script -qec '{} edit bot/token' /dev/null",
        crate::common::keys_bin()
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script);
    env.apply(&mut cmd);
    let run = crate::common::run(cmd, b"");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        env.keys(&["decrypt", "bot/token"]).success().stdout,
        "new old line\n"
    );
    assert_eq!(tree(&env.home), home_before, "nano left files in HOME");
    assert!(empty(&backups));
    assert!(empty(&run_dir));
    let _ = std::fs::remove_dir_all(&run_dir);
}

#[test]
fn emacs_gets_settings_that_win_over_its_init_file() {
    let mut env = TestEnv::new();
    let _repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    let bin = path_dir(&mut env);
    // A stand-in named emacs: records its arguments, one per line, and edits the file.
    let log = env.root.join("emacs.args");
    let emacs = bin.join("emacs");
    executable(
        &emacs,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nfor a; do f=\"$a\"; done\necho edited >> \"$f\"\n",
            log.display()
        ),
    );
    env.set("EDITOR", "emacs -nw");
    env.keys_stdin(&["encrypt", "bot/token"], b"text\n")
        .success();
    let run = env.keys(&["edit", "bot/token"]).success();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let args = std::fs::read_to_string(&log).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[0], "-nw", "{args:?}");
    assert_eq!(args[1], "--eval", "{args:?}");
    for setting in [
        "make-backup-files nil",
        "backup-inhibited t",
        "auto-save-default nil",
        "create-lockfiles nil",
    ] {
        assert!(args[2].contains(setting), "{setting}: {args:?}");
    }
    assert_eq!(args[3], "--", "{args:?}");
    assert!(args[4].ends_with("/token"), "{args:?}");
    assert_eq!(args.len(), 5, "{args:?}");
    assert_eq!(
        env.keys(&["decrypt", "bot/token"]).success().stdout,
        "text\nedited\n"
    );
    assert!(empty(&run_dir));
    let _ = std::fs::remove_dir_all(&run_dir);
}

#[test]
fn an_editor_keys_cannot_harden_is_named_in_one_warning() {
    let mut env = TestEnv::new();
    let _repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"x\n").success();
    editor(&mut env, "echo y >> \"$f\"");
    let run = env.keys(&["edit", "bot/token"]).success();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("keys: warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("fake-editor (fake-editor)")
            && warnings[0].contains("swap, backup or history files")
            && warnings[0].contains("outside the tmpfs guarantee"),
        "{}",
        run.stderr
    );
    assert!(empty(&run_dir));
    let _ = std::fs::remove_dir_all(&run_dir);
}

#[test]
fn the_plaintext_file_is_named_with_its_format_extension() {
    let mut env = TestEnv::new();
    let _repo = crate::fixture::sops_fleet(&mut env);
    let run_dir = runtime_dir(&mut env);
    for (name, plain) in [
        ("yaml/config", &b"a: 1\n"[..]),
        ("json/settings", b"{\"a\": 1}\n"),
        ("env/app", b"A=1\n"),
        ("ini/db", b"[s]\na = 1\n"),
        ("bin/blob", b"\x00\x01"),
        ("bot/token", b"t\n"),
    ] {
        env.keys_stdin(&["encrypt", name], plain).success();
    }
    let log = env.root.join("names.log");
    editor(&mut env, &format!("basename \"$f\" >> '{}'", log.display()));
    for name in [
        "yaml/config",
        "json/settings",
        "env/app",
        "ini/db",
        "bin/blob",
        "bot/token",
    ] {
        env.keys(&["edit", name]).success();
    }
    // A new secret is named by its rule's format.
    env.keys(&["edit", "--new", "yaml/fresh"]).success();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "config.yaml\nsettings.json\napp.env\ndb.ini\nblob\ntoken\nfresh.yaml\n"
    );
    assert!(empty(&run_dir));
    let _ = std::fs::remove_dir_all(&run_dir);
}
