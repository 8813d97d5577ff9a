use super::*;
use crate::git::tests::{TestRepo, isolated};
use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::process::{Command, Output};

/// What an existing pre-commit hook is renamed to.
const PREVIOUS: &str = "pre-commit.before-keys";

/// A repository with a fleet directory whose name needs quoting, and a bin
/// directory holding a fake `keys` that logs where it ran and what git has staged.
struct Fixture {
    repo: TestRepo,
    fleet: PathBuf,
    bin: PathBuf,
    log: PathBuf,
}

const FAKE_KEYS: &[u8] = b"#!/bin/sh
{ pwd -P; printf '%s\\n' \"$*\"; git ls-files -s; } >\"$KEYS_LOG\" 2>&1
exit \"${KEYS_EXIT:-0}\"
";

const OLD_HOOK: &[u8] = b"#!/bin/sh\nprintf 'old hook ran: %s\\n' \"$*\" >\"$OLD_LOG\"\n";

impl Fixture {
    fn new() -> Fixture {
        let repo = TestRepo::new();
        let fleet = repo.top().join("fleet's -dir");
        fs::create_dir(&fleet).unwrap();
        let bin = repo.tmp.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let log = repo.tmp.path().join("keys.log");
        Fixture {
            repo,
            fleet,
            bin,
            log,
        }
    }

    /// Installs the hooks; what happened to pre-commit.
    fn install(&self) -> Result<Installed> {
        self.install_all().map(|done| done[0].clone())
    }

    fn install_all(&self) -> Result<Vec<Installed>> {
        install_env(
            &self.fleet,
            Path::new("/nonexistent/keys"),
            &isolated(),
            &self.repo.top(),
        )
    }

    fn hook(&self) -> PathBuf {
        self.repo.top().join(".git/hooks/pre-commit")
    }

    fn fake_keys(&self, dir: &Path) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let keys = dir.join("keys");
        if !keys.exists() {
            executable(&keys, FAKE_KEYS);
        }
        keys
    }

    fn old_log(&self) -> PathBuf {
        self.repo.tmp.path().join("old.log")
    }

    fn with_env(&self, mut cmd: Command, path: &OsStr, keys_exit: &str) -> Output {
        cmd.env("PATH", path)
            .env("KEYS_LOG", &self.log)
            .env("KEYS_EXIT", keys_exit)
            .env("OLD_LOG", self.old_log())
            .output()
            .unwrap()
    }

    /// Runs the hook as git would: from the top of the work tree, with `sh`.
    fn run_hook(&self, path: &OsStr, keys_exit: &str) -> Output {
        let mut sh = Command::new("/bin/sh");
        sh.arg(self.hook())
            .args(["first arg", "second"])
            .current_dir(self.repo.top());
        for (k, v) in isolated() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        self.with_env(sh, path, keys_exit)
    }

    /// PATH with the fake keys first, then the test's own PATH (for git).
    fn path_with_keys(&self) -> std::ffi::OsString {
        self.fake_keys(&self.bin);
        let mut path = self.bin.clone().into_os_string();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        path
    }

    fn commit(&self, args: &[&str], keys_exit: &str) -> Output {
        // git execs the hook install wrote in this process: the same bytes and
        // mode, rewritten from a child (see [`executable`]).
        if let Ok(hook) = fs::read(self.hook())
            && !fs::symlink_metadata(self.hook()).unwrap().is_symlink()
        {
            executable(&self.hook(), &hook);
        }
        let cmd = self.repo.command(&self.repo.top(), args);
        self.with_env(cmd, &self.path_with_keys(), keys_exit)
    }

    fn head(&self) -> Vec<u8> {
        self.repo.git(&["rev-parse", "HEAD"])
    }
}

/// Writes an executable file from a child process: a file this process held open
/// for writing may be inherited by a child another test thread forks at that
/// moment, and running it then fails with "Text file busy" until that child execs.
fn executable(path: &Path, text: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("/bin/sh")
        .args([
            "-c",
            "cat > \"$1.new\" && chmod 755 \"$1.new\" && mv -f \"$1.new\" \"$1\"",
            "sh",
        ])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "writing {}",
        path.display()
    );
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn fresh_install_writes_an_executable_marked_hook() {
    let fx = Fixture::new();
    let installed = fx.install().unwrap();
    assert_eq!(installed, Installed::New(fx.hook()));
    let text = fs::read(fx.hook()).unwrap();
    assert!(text.starts_with(b"#!/bin/sh\n# keys pre-commit hook\n"));
    assert!(is_ours(&text));
    assert_eq!(mode(&fx.hook()) & 0o700, 0o700);
    assert_eq!(mode(&fx.hook()) & 0o022, 0);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("\nfleet='./fleet'\\''s -dir'\n"), "{text}");
    assert!(text.contains("\nkeys_exe='/nonexistent/keys'\n"), "{text}");
}

#[test]
fn second_install_is_already_and_byte_identical() {
    let fx = Fixture::new();
    fx.install().unwrap();
    let first = fs::read(fx.hook()).unwrap();
    assert_eq!(fx.install().unwrap(), Installed::Already(fx.hook()));
    assert_eq!(fs::read(fx.hook()).unwrap(), first);
    assert!(!fx.hook().with_file_name(PREVIOUS).exists());
    // Our hook for another binary is rewritten in place, not chained.
    let other = install_env(
        &fx.fleet,
        Path::new("/elsewhere/keys"),
        &isolated(),
        &fx.repo.top(),
    )
    .map(|done| done[0].clone());
    assert_eq!(other.unwrap(), Installed::New(fx.hook()));
    assert!(!fx.hook().with_file_name(PREVIOUS).exists());
}

#[test]
fn hook_runs_keys_in_the_fleet_and_blocks_on_failure() {
    let fx = Fixture::new();
    fx.install().unwrap();
    let path = fx.path_with_keys();
    let out = fx.run_hook(&path, "0");
    assert!(out.status.success(), "{out:?}");
    let log = fs::read_to_string(&fx.log).unwrap();
    let fleet = fs::canonicalize(&fx.fleet).unwrap();
    let mut lines = log.lines();
    assert_eq!(lines.next(), fleet.to_str());
    assert_eq!(lines.next(), Some("check --staged"));

    let out = fx.run_hook(&path, "1");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("keys: commit blocked: "), "{stderr}");
    assert!(stderr.contains("keys check --staged"), "{stderr}");
}

#[test]
fn hook_fails_closed_without_keys_and_falls_back_to_the_recorded_binary() {
    let fx = Fixture::new();
    let elsewhere = fx.repo.tmp.path().join("it's elsewhere");
    let exe = fx.fake_keys(&elsewhere);
    let installed = install_env(&fx.fleet, &exe, &isolated(), &fx.repo.top());
    assert_eq!(installed.unwrap()[0], Installed::New(fx.hook()));
    let empty = fx.repo.tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    // Not on PATH: the recorded binary runs.
    let out = fx.run_hook(empty.as_os_str(), "0");
    assert!(out.status.success(), "{out:?}");
    assert!(
        fs::read_to_string(&fx.log)
            .unwrap()
            .contains("check --staged")
    );
    let out = fx.run_hook(empty.as_os_str(), "3");
    assert_eq!(out.status.code(), Some(1));
    // Nowhere at all: blocked, with a message.
    fs::remove_file(&exe).unwrap();
    let out = fx.run_hook(empty.as_os_str(), "0");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("keys: commit blocked: keys is neither on PATH"));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn existing_hook_is_chained_and_runs_only_after_a_passing_check() {
    let fx = Fixture::new();
    let hooks = fx.repo.top().join(".git/hooks");
    fs::create_dir_all(&hooks).unwrap();
    fsutil::write_atomic(&fx.hook(), OLD_HOOK, 0o750).unwrap();
    let previous = hooks.join(PREVIOUS);
    assert_eq!(
        fx.install().unwrap(),
        Installed::Chained {
            hook: fx.hook(),
            previous: previous.clone(),
        }
    );
    assert_eq!(fs::read(&previous).unwrap(), OLD_HOOK);
    assert_eq!(mode(&previous), 0o750);
    assert!(is_ours(&fs::read(fx.hook()).unwrap()));
    assert_eq!(fx.install().unwrap(), Installed::Already(fx.hook()));

    let path = fx.path_with_keys();
    let out = fx.run_hook(&path, "1");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !fx.old_log().exists(),
        "the old hook ran after a failed check"
    );

    let out = fx.run_hook(&path, "0");
    assert!(out.status.success(), "{out:?}");
    let old = fs::read_to_string(fx.old_log()).unwrap();
    assert_eq!(old, "old hook ran: first arg second\n");

    // A previous hook that is not executable is skipped, as git would.
    fs::remove_file(fx.old_log()).unwrap();
    fs::set_permissions(&previous, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(fx.run_hook(&path, "0").status.success());
    assert!(!fx.old_log().exists());
}

#[test]
fn hook_never_runs_itself_as_its_previous_hook() {
    let fx = Fixture::new();
    fx.install().unwrap();
    let previous = fx.hook().with_file_name(PREVIOUS);
    fs::copy(fx.hook(), &previous).unwrap();
    let mut sh = Command::new("/bin/sh");
    sh.arg(fx.hook())
        .current_dir(fx.repo.top())
        .env("PATH", fx.path_with_keys())
        .env("KEYS_LOG", &fx.log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = sh.spawn().unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed().as_secs() > 20 {
            child.kill().unwrap();
            panic!("the hook keeps running itself");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn symlinked_hook_is_chained_as_a_symlink() {
    let fx = Fixture::new();
    let hooks = fx.repo.top().join(".git/hooks");
    fs::create_dir_all(&hooks).unwrap();
    executable(&hooks.join("real"), OLD_HOOK);
    symlink("real", fx.hook()).unwrap();
    assert!(matches!(fx.install().unwrap(), Installed::Chained { .. }));
    let previous = hooks.join(PREVIOUS);
    assert_eq!(fs::read_link(&previous).unwrap(), Path::new("real"));
    assert!(fs::symlink_metadata(fx.hook()).unwrap().is_file());
    let out = fx.run_hook(&fx.path_with_keys(), "0");
    assert!(out.status.success(), "{out:?}");
    assert!(fx.old_log().exists());
}

#[test]
fn taken_previous_name_is_refused_and_nothing_changes() {
    let fx = Fixture::new();
    let hooks = fx.repo.top().join(".git/hooks");
    fs::create_dir_all(&hooks).unwrap();
    executable(&fx.hook(), OLD_HOOK);
    executable(&hooks.join(PREVIOUS), b"other");
    let err = fx.install().unwrap_err();
    assert!(matches!(err, Error::Exists { ref path } if *path == hooks.join(PREVIOUS)));
    assert_eq!(fs::read(fx.hook()).unwrap(), OLD_HOOK);
    assert_eq!(fs::read(hooks.join(PREVIOUS)).unwrap(), b"other");
}

#[test]
fn core_hooks_path_is_honoured_and_created() {
    let fx = Fixture::new();
    fx.repo.git(&["config", "core.hooksPath", "ci/git hooks"]);
    let expected = fx.repo.top().join("ci/git hooks/pre-commit");
    let Installed::New(hook) = fx.install().unwrap() else {
        panic!("not a new hook");
    };
    assert_eq!(
        fs::canonicalize(&hook).unwrap(),
        fs::canonicalize(&expected).unwrap()
    );
    assert_eq!(mode(expected.parent().unwrap()) & 0o700, 0o700);
    assert!(!fx.hook().exists());
}

#[test]
fn not_a_repo_is_refused_as_not_in_git() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    fs::create_dir(&plain).unwrap();
    let mut env = isolated();
    env.push(("GIT_CEILING_DIRECTORIES", Some(tmp.path().as_os_str())));
    let err = install_env(&plain, Path::new("/k"), &env, &plain).unwrap_err();
    assert!(matches!(err, Error::NotInGit { .. }), "{err:?}");
    assert_eq!(fs::read_dir(&plain).unwrap().count(), 0);
}

#[test]
fn real_commits_see_the_staged_index_from_the_fleet_directory() {
    let fx = Fixture::new();
    fx.install().unwrap();
    fx.repo.write("fleet's -dir/secret.age", b"one");
    fx.repo.git(&["add", "-A"]);
    let out = fx.commit(&["commit", "-qm", "one"], "0");
    assert!(out.status.success(), "{out:?}");
    // Git hands the hook GIT_INDEX_FILE=.git/index; from the fleet directory that
    // must still be the real index, with paths relative to the fleet.
    let log = fs::read_to_string(&fx.log).unwrap();
    assert!(log.contains(" 0\tsecret.age\n"), "{log}");

    // A failing check blocks the commit.
    fx.repo.write("fleet's -dir/secret.age", b"two");
    fx.repo.git(&["add", "-A"]);
    let before = fx.head();
    let out = fx.commit(&["commit", "-qm", "two"], "1");
    assert!(!out.status.success());
    assert_eq!(fx.head(), before);

    // A partial commit uses a temporary index, which the check must see.
    fx.repo.write("fleet's -dir/secret.age", b"three");
    let three = fx.repo.git(&["hash-object", "fleet's -dir/secret.age"]);
    let three = String::from_utf8(three).unwrap();
    let out = fx.commit(
        &["commit", "-qm", "three", "--", "fleet's -dir/secret.age"],
        "0",
    );
    assert!(out.status.success(), "{out:?}");
    let log = fs::read_to_string(&fx.log).unwrap();
    assert!(
        log.contains(&format!("{} 0\tsecret.age", three.trim())),
        "{log}"
    );

    // A linked worktree: git sets GIT_DIR for the hook, and no GIT_WORK_TREE.
    let wt = fx.repo.tmp.path().join("linked");
    fx.repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "linked",
        wt.to_str().unwrap(),
    ]);
    fs::write(wt.join("fleet's -dir/secret.age"), b"four").unwrap();
    fx.repo.git_in(&wt, &["add", "-A"]);
    let cmd = fx.repo.command(&wt, &["commit", "-qm", "four"]);
    let out = fx.with_env(cmd, &fx.path_with_keys(), "0");
    assert!(out.status.success(), "{out:?}");
    let log = fs::read_to_string(&fx.log).unwrap();
    let wt_fleet = fs::canonicalize(wt.join("fleet's -dir")).unwrap();
    assert!(
        log.starts_with(&format!("{}\n", wt_fleet.display())),
        "{log}"
    );
    assert!(log.contains(" 0\tsecret.age\n"), "{log}");
}

#[test]
fn both_hooks_are_installed_and_their_directory_recorded() {
    let fx = Fixture::new();
    let done = fx.install_all().unwrap();
    let merge = fx.hook().with_file_name("pre-merge-commit");
    assert_eq!(
        done,
        [Installed::New(fx.hook()), Installed::New(merge.clone())]
    );
    assert_eq!(fs::read(&merge).unwrap(), fs::read(fx.hook()).unwrap());
    let recorded = fx.repo.git(&["config", "--get", RECORD]);
    assert_eq!(
        Path::new(std::str::from_utf8(&recorded).unwrap().trim()),
        fx.repo.top().join(".git/hooks")
    );
    // An older install had pre-commit only: the second install adds the other.
    fs::remove_file(&merge).unwrap();
    assert_eq!(
        fx.install_all().unwrap(),
        [Installed::Already(fx.hook()), Installed::New(merge)]
    );
}

#[test]
fn audit_reports_a_hook_git_does_not_run_only_once_installed() {
    let fx = Fixture::new();
    let audit = || audit_env(&fx.fleet, &isolated(), &fx.repo.top()).unwrap();
    assert_eq!(audit(), None, "never installed");
    fx.repo.git(&["config", "core.hooksPath", "hooks-a"]);
    assert_eq!(audit(), None, "never installed, hooks elsewhere");
    fx.repo.git(&["config", "--unset", "core.hooksPath"]);
    fx.install().unwrap();
    assert_eq!(audit(), None);
    fx.repo.git(&["config", "core.hooksPath", "hooks-a"]);
    let a = fx.repo.top().join("hooks-a");
    assert_eq!(
        audit(),
        Some(Bypass::Elsewhere {
            hook: a.join("pre-commit"),
            installed: fx.hook(),
        })
    );
    fx.install().unwrap();
    assert_eq!(audit(), None);
    // Recorded in hooks-a, none left in .git/hooks; git now looks in hooks-b.
    fs::remove_file(fx.hook()).unwrap();
    fx.repo.git(&["config", "core.hooksPath", "hooks-b"]);
    let b = fx.repo.top().join("hooks-b");
    assert_eq!(
        audit(),
        Some(Bypass::Elsewhere {
            hook: b.join("pre-commit"),
            installed: a.join("pre-commit"),
        })
    );
    // Someone else's hook there is no keys hook either.
    fs::create_dir_all(&b).unwrap();
    executable(&b.join("pre-commit"), OLD_HOOK);
    assert!(matches!(audit(), Some(Bypass::Elsewhere { .. })));
    fx.repo.git(&["config", "core.hooksPath", "hooks-a"]);
    fs::set_permissions(a.join("pre-commit"), fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        audit(),
        Some(Bypass::NotExecutable {
            hook: a.join("pre-commit")
        })
    );
    fs::set_permissions(a.join("pre-commit"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(a.join("pre-merge-commit")).unwrap();
    assert_eq!(
        audit(),
        Some(Bypass::NoMergeHook {
            hook: a.join("pre-merge-commit")
        })
    );
    // A hook removed on purpose leaves nothing to report.
    fs::remove_file(a.join("pre-commit")).unwrap();
    assert_eq!(audit(), None);
}

fn config(fx: &Fixture, key: &str) -> Option<String> {
    git::config_get_env(&fx.fleet, key, &isolated(), &fx.repo.top())
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn uninstall_puts_back_what_install_kept_and_removes_the_rest() {
    let fx = Fixture::new();
    let hooks = fx.repo.top().join(".git/hooks");
    fs::create_dir_all(&hooks).unwrap();
    executable(&fx.hook(), OLD_HOOK);
    let attributes = fx.fleet.join(".gitattributes");
    fs::write(&attributes, "*.png binary\n").unwrap();
    fx.install_all().unwrap();
    let formats = [Format::SopsYaml, Format::Age, Format::SopsYaml];
    let env = isolated();
    let diff =
        install_diff_env(&fx.fleet, Path::new("/k"), &formats, &env, &fx.repo.top()).unwrap();
    assert_eq!(
        diff.added,
        ["secrets/**/*.age diff=keys", "secrets/**/*.yaml diff=keys"]
    );
    assert_eq!(
        config(&fx, "diff.keys.textconv").as_deref(),
        Some("'/k' decrypt --textconv")
    );
    let merge = hooks.join("pre-merge-commit");
    let done = uninstall_env(&fx.fleet, &env, &fx.repo.top()).unwrap();
    assert_eq!(
        done[..2],
        [
            Uninstalled::Restored {
                hook: fx.hook(),
                previous: hooks.join(PREVIOUS)
            },
            Uninstalled::Removed(merge.clone()),
        ]
    );
    assert_eq!(fs::read(fx.hook()).unwrap(), OLD_HOOK);
    assert!(!merge.exists() && !hooks.join(PREVIOUS).exists());
    for key in [
        RECORD,
        "merge.keys-lock.driver",
        "merge.keys-export.driver",
        "diff.keys.textconv",
    ] {
        assert_eq!(config(&fx, key), None, "{key}");
    }
    assert_eq!(fs::read_to_string(&attributes).unwrap(), "*.png binary\n");
    assert_eq!(uninstall_env(&fx.fleet, &env, &fx.repo.top()).unwrap(), []);
}

#[test]
fn the_diff_driver_alone_comes_and_goes_and_is_never_cached() {
    let fx = Fixture::new();
    let env = isolated();
    let top = fx.repo.top();
    fx.repo.git(&["config", "diff.keys.cachetextconv", "true"]);
    let done = install_diff_env(&fx.fleet, Path::new("/k"), &[], &env, &top).unwrap();
    assert!(done.registered && done.uncached);
    assert_eq!(done.added, ["secrets/**/*.age diff=keys"]);
    assert_eq!(config(&fx, "diff.keys.cachetextconv"), None);
    let again = install_diff_env(&fx.fleet, Path::new("/k"), &[], &env, &top).unwrap();
    assert!(!again.registered && !again.uncached && again.added.is_empty());
    let removed = uninstall_diff_env(&fx.fleet, &env, &top).unwrap();
    assert!(removed.config);
    assert_eq!(removed.removed, ["secrets/**/*.age diff=keys"]);
    assert!(!fx.fleet.join(".gitattributes").exists());
    assert_eq!(config(&fx, "diff.keys.textconv"), None);
}

#[test]
fn uninstall_takes_keys_out_of_lefthook_and_husky_as_it_put_it_in() {
    let fx = Fixture::new();
    let env = isolated();
    let top = fx.repo.top();
    // lefthook: one hook with a command of its own, the other added by keys.
    let lefthook = top.join("lefthook.yml");
    let original =
        "# hooks\npre-commit:\n  commands:\n    lint:\n      run: make lint\n\nother: 1\n";
    fs::write(&lefthook, original).unwrap();
    install_env(&fx.fleet, Path::new("/k"), &env, &top).unwrap();
    assert_ne!(fs::read_to_string(&lefthook).unwrap(), original);
    let done = uninstall_env(&fx.fleet, &env, &top).unwrap();
    assert!(
        done.contains(&Uninstalled::Lefthook(lefthook.clone())),
        "{done:?}"
    );
    assert_eq!(fs::read_to_string(&lefthook).unwrap(), original);
    fs::remove_file(&lefthook).unwrap();

    // husky: its script for pre-commit had a line of its own.
    let husky = top.join(".husky");
    fs::create_dir_all(husky.join("_")).unwrap();
    fs::write(husky.join("_/h"), "").unwrap();
    fs::write(husky.join("pre-commit"), "npm test\n").unwrap();
    fx.repo.git(&["config", "core.hooksPath", ".husky/_"]);
    install_env(&fx.fleet, Path::new("/k"), &env, &top).unwrap();
    assert!(husky.join("keys/pre-commit").exists());
    let done = uninstall_env(&fx.fleet, &env, &top).unwrap();
    assert!(
        done.contains(&Uninstalled::Called(husky.join("pre-commit"))),
        "{done:?}"
    );
    assert_eq!(
        fs::read_to_string(husky.join("pre-commit")).unwrap(),
        "npm test\n"
    );
    assert!(!husky.join("pre-merge-commit").exists());
    assert!(!husky.join("keys").exists());
    assert!(husky.join("_/h").exists());
}
