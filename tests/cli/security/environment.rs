//! What `keys` takes from its environment and leaves in it: the runtime directory it
//! trusts with plaintext, identity and passphrase sources that are not regular files,
//! private keys other users can read, core dumps, plaintext left by a killed run, and
//! a passphrase needed where there is no terminal.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Run, TestEnv, keys_bin, peer, run, vectors};
use crate::fixture::{fleet, run_ok, tree};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// An editor that records the file it was given, then runs `action` on it.
fn editor(env: &mut TestEnv, action: &str) -> PathBuf {
    let log = env.root.join("editor.log");
    let script = format!(
        "#!/bin/sh\nfor a; do f=\"$a\"; done\nprintf '%s\\n' \"$f\" > '{}'\n{action}\n",
        log.display()
    );
    let path = env.write("bin/fake-editor", script);
    chmod(&path, 0o755);
    env.set("EDITOR", path.display().to_string());
    log
}

/// A directory on /dev/shm standing in for $XDG_RUNTIME_DIR, with `mode`.
fn runtime_dir(env: &mut TestEnv, mode: u32) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("keys-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap();
    chmod(dir.path(), mode);
    env.set("XDG_RUNTIME_DIR", dir.path().display().to_string());
    dir
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    found
}

// ---- 4a: the runtime directory ------------------------------------------------------

#[test]
fn a_runtime_dir_others_own_or_may_write_is_not_trusted_with_plaintext() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-runtime\n")
        .success();
    let log = editor(&mut env, "printf 'more\\n' >> \"$f\"");
    // Owned by another user (as under `sudo -E`): that user could rename our directory
    // away and put theirs in its place. Only root can make one; the suite runs as root.
    let mut refused = Vec::new();
    if is_root() {
        let foreign = runtime_dir(&mut env, 0o700);
        std::os::unix::fs::chown(foreign.path(), Some(12345), Some(12345)).unwrap();
        refused.push(foreign);
    }
    // Ours, but others may write to it.
    refused.push(runtime_dir(&mut env, 0o770));
    refused.push(runtime_dir(&mut env, 0o777));
    for dir in &refused {
        env.set("XDG_RUNTIME_DIR", dir.path().display().to_string());
        let run = env.keys(&["edit", "bot/token"]).success();
        let file = std::fs::read_to_string(&log).unwrap();
        let file = Path::new(file.trim());
        assert!(
            !file.starts_with(dir.path()),
            "plaintext went to {} ({:o})",
            file.display(),
            std::fs::metadata(dir.path()).unwrap().permissions().mode()
        );
        // Falls back to /dev/shm without a word: /dev/shm is fine.
        assert!(
            file.display().to_string().starts_with("/dev/shm/keys-"),
            "{}",
            file.display()
        );
        assert!(!run.stderr.contains("XDG_RUNTIME_DIR"), "{}", run.stderr);
        assert!(entries(dir.path()).is_empty());
        assert!(!file.parent().unwrap().exists(), "scratch directory left");
    }
    // A runtime directory of our own, 0700, is used.
    let ours = runtime_dir(&mut env, 0o700);
    env.keys(&["edit", "bot/token"]).success();
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(Path::new(file.trim()).starts_with(ours.path()), "{file}");
    assert!(entries(ours.path()).is_empty());
    let edits = refused.len() + 1;
    assert_eq!(
        env.keys(&["decrypt", "bot/token"]).success().stdout,
        format!("canary-runtime\n{}", "more\n".repeat(edits))
    );
}

// ---- 4b: sources that are not regular files -----------------------------------------

/// `keys ARGS` with its address space capped at 2 GiB, and `redirect` (bash syntax)
/// applied, so that a run reading a device into memory fails at once rather than
/// exhausting the machine.
fn capped(env: &TestEnv, args: &[&str], redirect: &str) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -v 2097152; exec setsid -w \"$0\" \"$@\" {redirect}"
        ))
        .arg(keys_bin())
        .args(args);
    env.apply(&mut cmd);
    run(cmd, b"")
}

#[track_caller]
fn refused_at_once(run: Run, code: i32, line: &str) {
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
    let run = run.failure(code);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("keys: error: "))
        .collect();
    assert_eq!(errors, [format!("keys: error: {line}")], "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
}

#[test]
fn identity_passphrase_and_key_sources_must_be_regular_files_of_sane_size() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-sources")
        .success();
    let fifo = env.root.join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let fifo_s = fifo.display().to_string();
    let is_fifo = format!("{fifo_s}: is a FIFO, not a regular file");
    let before = crate::fixture::tree(&repo);

    // -i /dev/zero grew until the kernel killed keys; a FIFO with no writer hung.
    refused_at_once(
        capped(&env, &["decrypt", "-i", "/dev/zero", "bot/token"], ""),
        5,
        "/dev/zero: is a character device, not a regular file",
    );
    refused_at_once(
        capped(&env, &["decrypt", "-i", &fifo_s, "bot/token"], ""),
        5,
        &is_fifo,
    );
    env.set("KEYS_IDENTITY", &fifo_s);
    refused_at_once(capped(&env, &["decrypt", "bot/token"], ""), 5, &is_fifo);
    env.set(
        "KEYS_IDENTITY",
        env.root.join("keys/demo.txt").display().to_string(),
    );

    // The key files of host add, to-age and init.
    refused_at_once(
        capped(&env, &["host", "add", "web", "--key", &fifo_s], ""),
        5,
        &is_fifo,
    );
    refused_at_once(capped(&env, &["to-age", &fifo_s], ""), 5, &is_fifo);
    let fresh = TestEnv::new();
    refused_at_once(
        capped(&fresh, &["init", "--admin", "erin", "-i", &fifo_s], ""),
        5,
        &is_fifo,
    );
    assert!(!fresh.work.join("policies").exists());

    // Passphrases: a file must be a regular file; a descriptor a pipe or a file.
    let locked = vectors().join("keys/ed25519-pass-02");
    let locked_s = locked.display().to_string();
    let mut pass_env = TestEnv::new();
    pass_env.set("KEYS_PASSPHRASE_FILE", &fifo_s);
    refused_at_once(
        capped(&pass_env, &["to-age", "--private", &locked_s], ""),
        5,
        &is_fifo,
    );
    refused_at_once(
        capped(
            &env,
            &["to-age", "--private", "--passphrase-fd", "0", &locked_s],
            "0</dev/zero",
        ),
        5,
        "--passphrase-fd 0: is a character device, not a pipe or a regular file",
    );
    // A pipe is what --passphrase-fd is for; its writer may stay open after the line.
    let out = capped(
        &env,
        &["to-age", "--private", "--passphrase-fd", "0", &locked_s],
        "0< <(exec 2>/dev/null; printf 'vectors-pass-2!\\n'; exec sleep 15)",
    );
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    let out = out.success();
    assert!(out.stdout.starts_with("AGE-SECRET-KEY-1"), "{}", out.stdout);

    // Over 1 MiB is not a key file.
    let big = env.write("big.txt", vec![b'#'; (1 << 20) + 1]);
    chmod(&big, 0o600);
    refused_at_once(
        capped(
            &env,
            &["decrypt", "-i", &big.display().to_string(), "bot/token"],
            "",
        ),
        3,
        &format!(
            "{}: more than 1024 KiB: not a key or passphrase file",
            big.display()
        ),
    );
    assert_eq!(crate::fixture::tree(&repo), before);
}

// ---- 4c: private keys other users can read ------------------------------------------

/// A copy of this repository's demo fleet (policies, recipients, secrets and the test
/// keys), as a fresh clone has it: the test identity at mode 0644.
fn demo_clone(env: &TestEnv) -> PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clone = env.root.join("clone");
    std::fs::create_dir_all(clone.join("tests")).unwrap();
    for rel in ["policies", "recipients", "secrets", "tests/fixtures"] {
        let status = Command::new("cp")
            .arg("-r")
            .arg(top.join(rel))
            .arg(clone.join(rel))
            .status()
            .unwrap();
        assert!(status.success());
    }
    chmod(&clone.join("tests/fixtures/demo-admin.age-identity"), 0o644);
    clone
}

fn keys_in(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = env.command(args);
    cmd.current_dir(dir);
    run(cmd, b"")
}

const TOKEN: &str = "123456789:AAE-demo-telegram-token-not-real";

#[test]
fn the_readme_demo_works_from_a_fresh_clone_with_its_published_test_key() {
    let env = TestEnv::new();
    let clone = demo_clone(&env);
    // Exactly as the README prints it.
    let run = keys_in(
        &env,
        &clone,
        &[
            "decrypt",
            "-i",
            "tests/fixtures/demo-admin.age-identity",
            "bot/telegram-token",
        ],
    )
    .success();
    assert_eq!(run.stdout, TOKEN);
    let notes: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(notes.len(), 1, "{}", run.stderr);
    assert!(
        notes[0].starts_with("keys: note: tests/fixtures/demo-admin.age-identity")
            && notes[0].contains("mode 644")
            && notes[0].contains("allow_private_keys (policies/default.yaml:26)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_private_key_other_users_can_read_is_refused_as_ssh_refuses_it() {
    let mut env = TestEnv::new();
    let clone = demo_clone(&env);
    // The same key outside the repository is just a key anyone can read.
    let outside = env.write(
        "elsewhere/demo-admin.age-identity",
        std::fs::read(clone.join("tests/fixtures/demo-admin.age-identity")).unwrap(),
    );
    let outside_s = outside.display().to_string();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        chmod(&outside, mode);
        let run = keys_in(
            &env,
            &clone,
            &["decrypt", "-i", &outside_s, "bot/telegram-token"],
        )
        .failure(5);
        assert!(
            run.stderr.starts_with(&format!(
                "keys: error: {outside_s}: private key file is open to other users (mode {mode:o})\n"
            )),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains(&format!("hint: run `chmod 600 {outside_s}`")),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
        // KEYS_IDENTITY is named as explicitly as -i.
        env.set("KEYS_IDENTITY", &outside_s);
        keys_in(&env, &clone, &["decrypt", "bot/telegram-token"]).failure(5);
        env.set("KEYS_IDENTITY", "");
    }
    for mode in [0o600, 0o400] {
        chmod(&outside, mode);
        let run = keys_in(
            &env,
            &clone,
            &["decrypt", "-i", &outside_s, "bot/telegram-token"],
        )
        .success();
        assert_eq!(run.stdout, TOKEN);
        assert!(run.stderr.is_empty(), "{}", run.stderr);
    }
    // Inside the repository, but where no allow_private_keys glob expects a key.
    let stray = clone.join("recipients/demo-admin.age-identity");
    std::fs::copy(&outside, &stray).unwrap();
    chmod(&stray, 0o644);
    keys_in(
        &env,
        &clone,
        &[
            "decrypt",
            "-i",
            "recipients/demo-admin.age-identity",
            "bot/telegram-token",
        ],
    )
    .failure(5);
}

#[test]
fn a_default_ssh_key_others_can_read_is_skipped_with_a_warning() {
    let env = TestEnv::new();
    let key = vectors().join("keys/ed25519-01");
    let ssh = env.home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let id = ssh.join("id_ed25519");
    std::fs::copy(&key, &id).unwrap();
    chmod(&id, 0o644);
    let secret = env.root.join("s.age");
    let status = Command::new(peer("age"))
        .arg("-R")
        .arg(vectors().join("keys/ed25519-01.pub"))
        .arg("-o")
        .arg(&secret)
        .arg(vectors().join("keys/ed25519-01.pub"))
        .status()
        .unwrap();
    assert!(status.success());
    let secret_s = secret.display().to_string();
    let run = env.keys(&["decrypt", &secret_s]).failure(4);
    let why = format!(
        "skipped: readable by other users (mode 644); run `chmod 600 {}`",
        id.display()
    );
    assert!(
        run.stderr
            .starts_with(&format!("keys: warning: {} {why}\n", id.display())),
        "{}",
        run.stderr
    );
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("keys: error: "))
        .unwrap();
    assert!(
        error.contains("no identity can decrypt this file (searched: ")
            && error.contains(&format!("{}: {why}", id.display())),
        "{}",
        run.stderr
    );
    chmod(&id, 0o600);
    let run = env.keys(&["decrypt", &secret_s]).success();
    assert_eq!(
        run.raw_stdout,
        std::fs::read(vectors().join("keys/ed25519-01.pub")).unwrap()
    );
}

// ---- 4d: no core dumps ---------------------------------------------------------------

#[test]
fn a_running_keys_can_leave_no_core_dump() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    let _run_dir = runtime_dir(&mut env, 0o700);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-core")
        .success();
    // The editor finds the keys process above it and copies what the kernel says of it.
    let seen = env.root.join("seen");
    editor(
        &mut env,
        &format!(
            "p=$PPID\nwhile [ \"$(cat /proc/$p/comm)\" != keys ]; do p=$(awk '/^PPid:/ {{print $2}}' /proc/$p/status); done\ncat /proc/$p/limits > '{}'",
            seen.display()
        ),
    );
    // Started with core dumps allowed, as a shell may.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -S -c unlimited 2>/dev/null || ulimit -S -c \"$(ulimit -H -c)\"; exec setsid -w \"$0\" \"$@\"")
        .arg(keys_bin())
        .args(["edit", "bot/token"]);
    env.apply(&mut cmd);
    run(cmd, b"").success();
    let limits = std::fs::read_to_string(&seen).unwrap();
    let core: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(core[4..6], ["0", "0"], "{limits}");
}

// ---- 4e: plaintext a killed run left -------------------------------------------------

/// Waits up to ten seconds for `found` to return something.
fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = found() {
            return t;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn plaintext_of_an_edit_killed_with_sigkill_is_reported_then_wiped() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let run_dir = runtime_dir(&mut env, 0o700);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-killed\n")
        .success();
    // An editor that never returns: keys is killed while the plaintext is out.
    editor(&mut env, "sleep 60");
    let mut child = env
        .command(&["edit", "bot/token"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let leftover = wait_for("plaintext file", || {
        std::fs::read_dir(run_dir.path())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|d| d.join("token").is_file())
    });
    let name = leftover.file_name().unwrap().to_string_lossy().to_string();
    let pid: u32 = name
        .strip_prefix("keys-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("{name} does not carry the pid of keys"));
    assert_eq!(pid, child.id(), "{name}");
    // The whole session: keys and its editor.
    let status = Command::new("kill")
        .args(["-9", "--", &format!("-{pid}")])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    assert_eq!(
        std::fs::read(leftover.join("token")).unwrap(),
        b"canary-killed\n"
    );

    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.starts_with(&format!(
            "{}: plaintext left by an interrupted keys edit (pid {pid})\n",
            leftover.display()
        )),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("canary"));
    assert!(leftover.exists(), "check removes nothing");

    // The next edit wipes it, and says so.
    editor(&mut env, "printf 'again\\n' >> \"$f\"");
    let run = env.keys(&["edit", "bot/token"]).success();
    assert!(!leftover.exists(), "leftover not wiped");
    assert!(
        run.stderr.contains(&format!(
            "removed {}, plaintext left by a keys process that was killed (pid {pid})",
            leftover.display()
        )),
        "{}",
        run.stderr
    );
    assert!(entries(run_dir.path()).is_empty());
    env.keys(&["check"]).success();
    assert_eq!(
        env.keys(&["decrypt", "bot/token"]).success().stdout,
        "canary-killed\nagain\n"
    );
    drop(repo);
}

#[test]
fn plaintext_of_a_decrypt_o_killed_with_sigkill_is_reported_then_wiped() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-decrypt-o")
        .success();
    let out_dir = repo.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("token.txt");
    // keys is held for four seconds at its rename, the plaintext written to its temp
    // file, and killed then (strace returns when the four seconds are over).
    let mut cmd = Command::new(peer("strace"));
    cmd.args(["-f", "-qq", "-o", "/dev/null"])
        .args(["-e", "trace=rename,renameat,renameat2"])
        .args(["-e", "inject=rename,renameat,renameat2:delay_enter=4000000"])
        .arg(keys_bin())
        .args(["decrypt", "bot/token", "-o"])
        .arg(&out);
    env.apply(&mut cmd);
    let mut strace = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let temp = wait_for("temp file with the plaintext", || {
        std::fs::read_dir(&out_dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::read(p).is_ok_and(|d| d == b"canary-decrypt-o"))
    });
    let name = temp.file_name().unwrap().to_string_lossy().to_string();
    let pid: u32 = name
        .strip_prefix(".keys-tmp-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("{name} does not carry the pid of keys"));
    kill_9(pid);
    strace.wait().unwrap();
    assert!(!out.exists());
    assert!(temp.exists());

    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.lines().any(|l| l
            == format!("out/{name}: plaintext left by an interrupted keys decrypt -o (pid {pid})")),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("canary"));

    let run = env
        .keys(&["decrypt", "bot/token", "-o", &out.display().to_string()])
        .success();
    assert!(!temp.exists(), "leftover not wiped");
    assert!(
        run.stderr.contains(&format!(
            "plaintext left by a keys process that was killed (pid {pid})"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(entries(&out_dir), vec![out.clone()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"canary-decrypt-o");
    std::fs::remove_file(&out).unwrap();
    env.keys(&["check"]).success();
}

/// Every command that may need a passphrase, with a passphrase-protected identity and
/// no terminal or passphrase source: a clear error within 3 s, nothing written.
#[test]
fn with_no_terminal_every_command_needing_a_passphrase_fails_at_once() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let locked = env.root.join("locked");
    let mut keygen = Command::new(peer("ssh-keygen"));
    keygen
        .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
        .arg(&locked);
    run_ok(keygen, b"");
    env.write(
        "work/recipients/admins/locked.pub",
        std::fs::read(locked.with_extension("pub")).unwrap(),
    );
    let policy = repo.join("policies/default.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("admins: [demo]", "admins: [demo, locked]"),
    )
    .unwrap();
    env.write(
        "work/policies/0-sops.yaml",
        "rules:\n  - secrets: \"cfg/*\"\n    format: sops-yaml\n    readers: [admins]\n",
    );
    env.keys_stdin(&["encrypt", "bot/a"], b"canary-a").success();
    env.keys_stdin(&["encrypt", "cfg/b"], b"k: canary-b\n")
        .success();
    env.keys(&["host", "add", "gen", "--generate"]).success();
    // From now on only the locked key is there to decrypt with.
    env.set("KEYS_IDENTITY", locked.display().to_string());
    std::fs::write(
        &policy,
        text.replace("admins: [demo]", "admins: [locked, demo]")
            .replace("host:vps-arm]", "host:vps-x86]"),
    )
    .unwrap();
    let editor = env.script("bin/ed", "#!/bin/sh\nexit 0\n");
    env.set("EDITOR", editor.display().to_string());
    let before = tree(&repo);
    for args in [
        &["decrypt", "bot/a"][..],
        &["edit", "bot/a"],
        &["set", "cfg/b", "k"],
        &["rekey"],
        &["stage-install", "--host", "gen"],
    ] {
        let r = env.keys_stdin(args, b"new-value").failure(4);
        assert!(
            r.stderr
                .contains("a passphrase is needed and there is no terminal"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.elapsed.as_secs() < 3, "{args:?} took {:?}", r.elapsed);
        assert!(!r.stdout.contains("canary") && !r.stderr.contains("canary"));
        assert_eq!(tree(&repo), before, "{args:?} wrote something");
    }
}
