//! Secrets by name: `encrypt`, `decrypt`, `ls`, `rm` and `check` on a fleet built
//! from the demo's recipients, with the real age reading what `keys` writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, mode_of, peer, private_copy, run, sha256_hex};

pub const POLICY: &str = "\
groups:
  admins: [demo]
rules:
  - secrets: \"bot/*\"
    format: age
    readers: [admins, host:vps-arm]
  - secrets: \"armored/*\"
    format: age
    armor: true
    readers: [admins]
  - secrets: \"**\"
    format: age
    readers: [admins, container:nannuo-bot]
";

/// A fleet repository in `env.work` with the demo's admin and hosts and `POLICY`.
pub fn fleet(env: &mut TestEnv) -> PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "recipients/admins/demo.pub",
        "recipients/hosts/vps-arm.yaml",
        "recipients/hosts/vps-x86.yaml",
    ] {
        env.write(
            &format!("work/{rel}"),
            std::fs::read(top.join(rel)).unwrap(),
        );
    }
    env.write("work/policies/default.yaml", POLICY);
    let id = private_copy(
        env,
        &top.join("tests/fixtures/demo-admin.age-identity"),
        "demo.txt",
    );
    env.set("KEYS_IDENTITY", id.display().to_string());
    env.work.clone()
}

pub fn host_key(env: &TestEnv, host: &str) -> PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    private_copy(
        env,
        &top.join(format!("tests/fixtures/hosts/{host}.ssh_host_ed25519_key")),
        host,
    )
}

fn age_decrypt(env: &TestEnv, identity: &Path, file: &Path) -> Run {
    let mut cmd = Command::new(peer("age"));
    cmd.arg("-d").arg("-i").arg(identity).arg(file);
    env.apply(&mut cmd);
    run(cmd, b"")
}

/// Every file under `dir` with its bytes, to prove a failed command changed nothing
/// (the writer lock, which holds the last writer's pid, aside).
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir(dir)
        .into_iter()
        .filter(|p| !p.ends_with(".keys-writer"))
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_default();
            (p, data)
        })
        .collect()
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push(p.clone());
                out.extend(walkdir(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

const TOKEN: &[u8] = b"123456789:AAE-canary-telegram-token\n";

#[test]
fn encrypt_writes_an_age_file_that_real_age_opens_with_the_admin_and_host_keys() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let run = env
        .keys_stdin(&["encrypt", "bot/telegram-token"], TOKEN)
        .success();
    assert!(
        run.stderr
            .contains("wrote secrets/bot/telegram-token.age for 2 recipients"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("canary") && !run.stderr.contains("canary"));
    let file = repo.join("secrets/bot/telegram-token.age");
    assert_eq!(mode_of(&file), 0o644);
    let data = std::fs::read(&file).unwrap();
    assert!(
        data.starts_with(b"age-encryption.org/v1\n"),
        "binary by default"
    );

    let admin = PathBuf::from(env_identity(&env));
    assert_eq!(age_decrypt(&env, &admin, &file).success().raw_stdout, TOKEN);
    // agenix hands the host's SSH key to age as it is.
    let host = host_key(&env, "vps-arm");
    assert_eq!(age_decrypt(&env, &host, &file).success().raw_stdout, TOKEN);
    // A host the policy does not name cannot read it.
    let other = host_key(&env, "vps-x86");
    assert_ne!(age_decrypt(&env, &other, &file).code, 0);

    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    let line = lock
        .lines()
        .find(|l| l.starts_with("bot/telegram-token "))
        .unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[1], "age");
    assert_eq!(fields[2], sha256_hex(&data));
    assert_eq!(fields[3].split(',').count(), 2);

    // keys opens it by name and by path; output to a new 0600 file.
    assert_eq!(
        env.keys(&["decrypt", "bot/telegram-token"])
            .success()
            .raw_stdout,
        TOKEN
    );
    let out = env.root.join("plain.txt");
    env.keys(&[
        "decrypt",
        "secrets/bot/telegram-token.age",
        "-o",
        &out.display().to_string(),
    ])
    .success();
    assert_eq!(std::fs::read(&out).unwrap(), TOKEN);
    assert_eq!(mode_of(&out), 0o600);

    // Armored when the rule says so, and container readers resolve to the host key.
    env.keys_stdin(&["encrypt", "armored/x"], b"a").success();
    let armored = repo.join("secrets/armored/x.age");
    assert!(
        std::fs::read(&armored)
            .unwrap()
            .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    );
    assert_eq!(
        age_decrypt(&env, &admin, &armored).success().raw_stdout,
        b"a"
    );
    env.keys_stdin(&["encrypt", "nannuo-bot/env"], b"K=v\n")
        .success();
    let shared = repo.join("secrets/nannuo-bot/env.age");
    assert_eq!(
        age_decrypt(&env, &host, &shared).success().raw_stdout,
        b"K=v\n"
    );

    let ls = env.keys(&["ls", "--json"]).success();
    let list: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["armored/x", "bot/telegram-token", "nannuo-bot/env"]);
    assert!(list.as_array().unwrap().iter().all(|s| s["status"] == "ok"));
    assert_eq!(
        list[1]["readers"],
        serde_json::json!(["admins", "host:vps-arm"])
    );
    let check = env.keys(&["check"]).success();
    assert!(check.stdout.contains("ok: 3 secrets"), "{}", check.stdout);
}

fn env_identity(env: &TestEnv) -> String {
    env.root.join("keys/demo.txt").display().to_string()
}

#[test]
fn encrypt_refuses_to_replace_empty_input_and_unmatched_names_without_writing() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/a"], b"one").success();
    let before = tree(&repo);
    let run = env.keys_stdin(&["encrypt", "bot/a"], b"two").failure(5);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    let run = env.keys_stdin(&["encrypt", "bot/b"], b"").failure(3);
    assert!(run.stderr.contains("--allow-empty"), "{}", run.stderr);
    assert_eq!(tree(&repo), before);
    env.keys_stdin(&["encrypt", "--force", "bot/a"], b"two")
        .success();
    assert_eq!(env.keys(&["decrypt", "bot/a"]).success().raw_stdout, b"two");
    env.keys_stdin(&["encrypt", "--allow-empty", "bot/b"], b"")
        .success();
    assert_eq!(env.keys(&["decrypt", "bot/b"]).success().raw_stdout, b"");
    env.keys_stdin(&["encrypt", "misc/z"], b"z").success();

    // No rule: a policy without the catch-all.
    env.write("work/policies/default.yaml", policy_with(&[]));
    let before = tree(&repo);
    let run = env.keys_stdin(&["encrypt", "other/x"], b"x").failure(3);
    assert!(
        run.stderr.contains("no policy rule matches secret other/x"),
        "{}",
        run.stderr
    );
    assert_eq!(tree(&repo), before);
    // A secret that no rule matches any more is an error for `keys check`.
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check
            .stdout
            .contains("secrets/misc/z.age: no policy rule matches this secret"),
        "{}",
        check.stdout
    );
}

/// `POLICY` without its catch-all rule, then an age rule for each (glob, readers).
fn policy_with(rules: &[(&str, &str)]) -> String {
    let mut policy = POLICY[..POLICY.find("  - secrets: \"**\"").unwrap()].to_string();
    for (glob, readers) in rules {
        policy.push_str(&format!(
            "  - secrets: \"{glob}\"\n    format: age\n    readers: [{readers}]\n"
        ));
    }
    policy
}

#[test]
fn a_command_on_one_secret_reads_only_the_host_files_its_readers_need() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write(
        "work/policies/default.yaml",
        policy_with(&[
            ("x86/*", "admins, host:vps-x86"),
            ("box/*", "admins, container:nannuo-bot"),
        ]),
    );
    env.keys_stdin(&["encrypt", "bot/a"], b"one").success();
    env.write(
        "work/recipients/hosts/vps-x86.yaml",
        "ssh_key: ssh-ed25519 AAAAbroken\n",
    );
    let broken = "recipients/hosts/vps-x86.yaml:1: malformed ssh-ed25519";

    // Secrets whose readers do not include vps-x86 are written and read as before.
    env.keys_stdin(&["encrypt", "--force", "bot/a"], b"two")
        .success();
    env.keys_stdin(&["encrypt", "armored/b"], b"three")
        .success();
    assert_eq!(env.keys(&["decrypt", "bot/a"]).success().raw_stdout, b"two");

    // A secret for that host, or for a container (found by reading every host
    // file), is refused with the broken file and line named, and nothing is written.
    let before = tree(&repo);
    for name in ["x86/c", "box/d"] {
        let run = env.keys_stdin(&["encrypt", name], b"four").failure(3);
        assert!(run.stderr.contains(broken), "{name}: {}", run.stderr);
    }
    assert_eq!(tree(&repo), before);

    // Commands over the whole fleet read every host file.
    for args in [&["ls"][..], &["status"], &["rekey"]] {
        let run = env.keys(args).failure(3);
        assert!(run.stderr.contains(broken), "{args:?}: {}", run.stderr);
    }
    let check = env.keys(&["check"]).failure(8);
    assert!(check.stdout.contains(broken), "{}", check.stdout);
}

#[test]
fn an_unknown_container_reader_is_refused_where_it_is_needed() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write(
        "work/policies/default.yaml",
        policy_with(&[("box/*", "admins, container:nope")]),
    );
    let unknown = "policies/default.yaml:13: unknown reader \"container:nope\": no host file declares container nope";
    // Which host declares a container is known only from every host file: a secret
    // of another rule does not wait for them.
    env.keys_stdin(&["encrypt", "bot/a"], b"one").success();
    let before = tree(&repo);
    let run = env.keys_stdin(&["encrypt", "box/b"], b"two").failure(3);
    assert!(run.stderr.contains(unknown), "{}", run.stderr);
    assert_eq!(tree(&repo), before);
    let check = env.keys(&["check"]).failure(8);
    assert!(check.stdout.contains(unknown), "{}", check.stdout);
}

#[test]
fn hostile_secret_names_are_refused_before_anything_is_written() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/x"], b"x").success();
    let outside = env.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("secrets/evil")).unwrap();
    let before = tree(&env.root);
    for name in [
        "../x",
        "../../etc/passwd",
        "/etc/passwd",
        "bot/../../x",
        "a//b",
        "a/./b",
        ".",
        "..",
        "",
        "bot/",
        "-rf",
        "bot/-x",
        "a\u{1}b",
        "a\nb",
        "a\u{7f}",
        ".git/config",
        "bot",
        "bot/x/y",
        "evil/x",
        "a b",
    ] {
        // `--` so that a leading '-' reaches keys as a name, as a user would write it.
        for cmd in [
            &["encrypt", "--", name][..],
            &["encrypt", "--force", "--", name],
        ] {
            let run = env.keys_stdin(cmd, b"canary-plaintext");
            assert!(
                matches!(run.code, 2 | 3 | 5),
                "{name:?}: {} {}",
                run.code,
                run.stderr
            );
            assert!(
                run.stderr.starts_with("keys: error: "),
                "{name:?}: {}",
                run.stderr
            );
            assert_eq!(run.stderr.lines().count(), 2, "{name:?}: {}", run.stderr);
            assert!(!run.stderr.contains("canary"));
        }
        assert_eq!(tree(&env.root), before, "{name:?} changed a file");
    }
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}

#[test]
fn check_reports_drift_edits_plaintext_and_missing_files_by_name() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], TOKEN).success();
    env.keys_stdin(&["encrypt", "misc/one"], b"1").success();
    env.keys(&["check"]).success();

    // The policy now also gives bot/* to vps-x86: drift, named, without decrypting.
    env.write(
        "work/policies/default.yaml",
        POLICY.replace(
            "[admins, host:vps-arm]",
            "[admins, host:vps-arm, host:vps-x86]",
        ),
    );
    let before = tree(&repo);
    let run = env.keys(&["check"]).failure(8);
    assert!(run.stdout.contains("secrets/bot/token.age: drift: encrypted to 2 recipients, its policy (policies/default.yaml:4) resolves to 3 (1 to add, 0 to remove)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("fix: run `keys rekey`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("check found 1 problem"),
        "{}",
        run.stderr
    );
    let ls = env.keys(&["ls"]).success();
    assert!(
        ls.stdout
            .lines()
            .any(|l| l.starts_with("bot/token") && l.contains("drift")),
        "{}",
        ls.stdout
    );
    env.write("work/policies/default.yaml", POLICY);

    // A hand-edited file: re-encrypted by the real age outside keys.
    let file = repo.join("secrets/misc/one.age");
    let mut age = Command::new(peer("age"));
    age.args([
        "-r",
        "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        "-o",
    ])
    .arg(&file);
    env.apply(&mut age);
    run_ok(age, b"2");
    // A plaintext file dropped into secrets/, one with a secret's extension, and a
    // lock entry whose file is gone.
    env.write("work/secrets/notes.txt", "password=hunter2\n");
    env.write("work/secrets/bot/leak.age", "TOKEN=canary\n");
    std::fs::remove_file(repo.join("secrets/bot/token.age")).unwrap();
    let before_check = tree(&repo);
    let run = env.keys(&["check"]).failure(8);
    let out = &run.stdout;
    for want in [
        "secrets/misc/one.age: was changed outside keys (its SHA-256 differs from keys.lock)",
        "secrets/notes.txt: is not a secret file (unknown extension; plaintext?)",
        "secrets/bot/leak.age: not a valid age file: not an age file",
        "secrets/bot/leak.age: is not in secrets/keys.lock (added outside keys)",
        "secrets/bot/token.age: is listed in secrets/keys.lock but missing",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("canary") && !run.stderr.contains("canary"));
    assert!(!out.contains("hunter2"));
    assert_eq!(tree(&repo), before_check, "check never writes");
    assert_ne!(before, before_check);
    let ls = env.keys(&["ls", "--json"]).success();
    let list: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
    let status: BTreeMap<&str, &str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(status["misc/one"], "modified");
    assert_eq!(status["bot/token"], "missing");
    assert_eq!(status["bot/leak"], "invalid");
    assert_eq!(status["notes.txt"], "unknown file");
}

fn run_ok(cmd: Command, stdin: &[u8]) {
    run(cmd, stdin).success();
}

#[test]
fn check_finds_private_keys_outside_secrets_unless_the_policy_allows_them() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let key = std::fs::read(top.join("tests/fixtures/hosts/vps-arm.ssh_host_ed25519_key")).unwrap();
    env.write("work/hosts/vps-arm/ssh_host_ed25519_key", &key);
    env.write(
        "work/notes.md",
        concat!(
            "age identity: AGE-SECRET-",
            "KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS3290GG\n"
        ),
    );
    env.write(
        "work/src.rs",
        "if line.starts_with(\"AGE-SECRET-KEY-1\") {}\n",
    );
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout
            .contains("hosts/vps-arm/ssh_host_ed25519_key: contains a private key block"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("notes.md: contains an age identity"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("src.rs"), "{}", run.stdout);
    assert!(!run.stdout.contains("QYQSZ"), "no key material in output");
    env.write(
        "work/policies/default.yaml",
        format!("{POLICY}allow_private_keys:\n  - \"hosts/**\"\n  - notes.md\n"),
    );
    let run = env.keys(&["check"]).success();
    assert!(
        run.stdout
            .contains("warning: policies/default.yaml:4: rule \"bot/*\" matches no secret"),
        "{}",
        run.stdout
    );
    let _ = repo;
}

#[test]
fn rm_removes_the_file_and_its_lock_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "deep/a/b"], b"x").success();
    env.keys_stdin(&["encrypt", "bot/keep"], b"y").success();
    let run = env.keys(&["rm", "deep/a/b"]).success();
    assert!(
        run.stderr.contains("removed secrets/deep/a/b.age"),
        "{}",
        run.stderr
    );
    assert!(
        !repo.join("secrets/deep").exists(),
        "empty directories are pruned"
    );
    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    assert!(!lock.contains("deep/a/b") && lock.contains("bot/keep"));
    env.keys(&["rm", "deep/a/b"]).failure(3);
    env.keys(&["check"]).success();
}

/// Runs `keys ARGS` on a pseudo-terminal (util-linux `script`), typing each line of
/// `typed` after a pause so that it arrives at the prompt, not before it.
pub fn on_terminal(env: &TestEnv, args: &str, typed: &[&str]) -> Run {
    let mut feed = String::new();
    for line in typed {
        feed.push_str(&format!("sleep 1; printf '%s\\n' '{line}'; "));
    }
    let script = format!(
        "({feed}sleep 1) | script -qec '{} {args}' /dev/null",
        crate::common::keys_bin()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    env.apply(&mut cmd);
    run(cmd, b"")
}

#[test]
fn on_a_terminal_the_secret_is_typed_twice_without_echo() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    peer("script");
    let run = on_terminal(&env, "encrypt bot/tty", &["typed-canary", "typed-canary"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Secret for bot/tty: "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Repeat it: "), "{}", run.stdout);
    assert!(
        !run.stdout.contains("typed-canary"),
        "echoed: {}",
        run.stdout
    );
    assert_eq!(
        env.keys(&["decrypt", "bot/tty"]).success().raw_stdout,
        b"typed-canary"
    );
    let before = tree(&repo);
    let run = on_terminal(&env, "encrypt bot/other", &["one-canary", "two-canary"]);
    assert!(
        run.stdout.contains("the two entries differ"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("canary"), "{}", run.stdout);
    assert_eq!(tree(&repo), before);
}

#[test]
fn exports_are_deterministic_and_check_reports_them_stale() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"t").success();
    env.keys_stdin(&["encrypt", "armored/a"], b"a").success();
    env.keys(&["export", "agenix-rules"]).success();
    let nix = std::fs::read_to_string(repo.join("secrets.nix")).unwrap();
    assert!(
        nix.starts_with("# Generated by `keys export agenix-rules`"),
        "{nix}"
    );
    let arm = std::fs::read_to_string(repo.join("recipients/hosts/vps-arm.yaml")).unwrap();
    let host_key: String = arm
        .lines()
        .find_map(|l| l.strip_prefix("ssh_key: "))
        .unwrap()
        .split(' ')
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let entry = "  \"secrets/bot/token.age\".publicKeys = [\n";
    assert!(nix.contains(entry), "{nix}");
    assert!(nix.contains(&format!("    \"{host_key}\"\n")), "{nix}");
    assert!(
        nix.contains("\"secrets/armored/a.age\".armor = true;"),
        "{nix}"
    );
    env.keys(&["export", "sops-config"]).success();
    let sops = std::fs::read_to_string(repo.join(".sops.yaml")).unwrap();
    assert!(sops.contains("creation_rules:\n"), "{sops}");
    let again = env.keys(&["export", "agenix-rules", "-o", "-"]).success();
    assert_eq!(again.stdout, nix, "deterministic");
    env.keys(&["check"]).success();
    // A new reader makes the committed export stale.
    env.write(
        "work/policies/default.yaml",
        POLICY.replace(
            "[admins, host:vps-arm]",
            "[admins, host:vps-arm, host:vps-x86]",
        ),
    );
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.contains("secrets.nix: is stale")
            && run.stdout.contains("run `keys export agenix-rules`"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_second_writer_is_refused_at_once_with_the_holders_pid() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/a"], b"a").success();
    let run_dir = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.set("XDG_RUNTIME_DIR", run_dir.path().display().to_string());
    let marker = env.root.join("editing");
    let editor = env.write(
        "bin/slow",
        format!("#!/bin/sh\ntouch '{}'\nsleep 3\n", marker.display()),
    );
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set("EDITOR", editor.display().to_string());
    let mut holder = env
        .command(&["edit", "bot/a"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !marker.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = tree(&repo);
    let run = env.keys_stdin(&["encrypt", "bot/b"], b"b").failure(10);
    assert!(
        run.stderr.contains("another keys process (pid "),
        "{}",
        run.stderr
    );
    assert!(
        run.elapsed < std::time::Duration::from_secs(2),
        "refused at once"
    );
    assert_eq!(tree(&repo), before);
    holder.wait().unwrap();
    env.keys_stdin(&["encrypt", "bot/b"], b"b").success();
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
    let editor = env.write("bin/ed", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
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
