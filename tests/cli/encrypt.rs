//! `keys encrypt`: what it writes the real age opens with the admin and host keys; the
//! refusals (empty input, unmatched, hostile or unknown names and readers) write
//! nothing; on a terminal the secret is typed twice without echo.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, mode_of, peer, run, sha256_hex};
use crate::fixture::{POLICY, TOKEN, fleet, host_key, on_terminal, tree};
use crate::hook::git;

fn age_decrypt(env: &TestEnv, identity: &Path, file: &Path) -> Run {
    let mut cmd = Command::new(peer("age"));
    cmd.arg("-d").arg("-i").arg(identity).arg(file);
    env.apply(&mut cmd);
    run(cmd, b"")
}

#[test]
fn encrypt_writes_an_age_file_that_real_age_opens_with_the_admin_and_host_keys() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let run = env
        .keys_stdin(&["encrypt", "bot/telegram-token"], TOKEN)
        .success();
    assert_eq!(run.stdout, "");
    crate::assert_output!(env, "wrote_for_two_recipients", run.stderr);
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
    let list = &list["secrets"];
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
    crate::assert_output!(env, "check_after_three", check.stdout);
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
    crate::assert_output!(env, "already_exists", run.stderr);
    let run = env.keys_stdin(&["encrypt", "bot/b"], b"").failure(3);
    crate::assert_output!(env, "empty_input", run.stderr);
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
    crate::assert_output!(env, "no_rule_matches", run.stderr);
    assert_eq!(tree(&repo), before);
    // A secret that no rule matches any more is an error for `keys check`.
    let check = env.keys(&["check"]).failure(8);
    crate::assert_output!(env, "check_no_rule_matches", check.stdout);
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

/// A secret is named by its name or by its file under secrets/; a name with a
/// format's extension is refused with the name meant, before any input is read.
#[test]
fn a_path_names_a_secret_and_an_extension_is_refused_with_the_right_name() {
    let mut env = TestEnv::new();
    let repo = crate::fixture::fleet(&mut env);
    env.keys_stdin(&["encrypt", "secrets/bot/token.age"], b"t")
        .success();
    assert!(repo.join("secrets/bot/token.age").is_file());
    assert!(!repo.join("secrets/bot/token.age.age").exists());
    let before = crate::fixture::tree(&repo);
    let r = env
        .keys_stdin(&["encrypt", "foo/x.yaml"], b"a: 1\n")
        .failure(2);
    assert_eq!(
        r.stderr,
        "keys: error: foo/x.yaml: a secret's name has no extension (its policy rule gives the format)\n  hint: use `foo/x`\n"
    );
    assert!(
        crate::fixture::tree(&repo) == before,
        "a refused encrypt changed files"
    );
    // A miss suggests the nearest names.
    let r = env.keys(&["rm", "bot/tokn"]).failure(3);
    assert!(
        r.stderr.contains("hint: did you mean bot/token?"),
        "{}",
        r.stderr
    );
}

/// A fleet of 600 secrets (a lock of ~90 KiB) made by copying one encrypted file under
/// every name, its lock lines written to match.
fn large_fleet(env: &mut TestEnv) -> PathBuf {
    let repo = fleet(env);
    env.keys_stdin(&["encrypt", "bot/s00000"], b"value")
        .success();
    let data = std::fs::read(repo.join("secrets/bot/s00000.age")).unwrap();
    let lock_path = repo.join("secrets/keys.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let line = lock.lines().find(|l| l.starts_with("bot/s00000 ")).unwrap();
    let rest = line.split_once(' ').unwrap().1;
    let mut text: String = lock
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    for i in (0..1200).step_by(2) {
        let name = format!("bot/s{i:05}");
        std::fs::write(repo.join(format!("secrets/{name}.age")), &data).unwrap();
        text.push_str(&format!("{name} {rest}\n"));
    }
    std::fs::write(&lock_path, text).unwrap();
    env.keys(&["check"]).success();
    repo
}

#[test]
fn encrypting_in_a_large_fleet_changes_only_its_line_of_the_lock() {
    let mut env = TestEnv::new();
    let repo = large_fleet(&mut env);
    let lock_path = repo.join("secrets/keys.lock");
    // A new secret in the middle, an existing one replaced, one past the last, ones
    // beside secrets of another rule (another line than theirs): every other line
    // stays byte for byte, the new ones in order.
    for (name, new) in [
        ("bot/s00601", true),
        ("bot/s00600", false),
        ("bot/s99999", true),
        ("bot/a", true),
        ("armored/x", true),
        ("zz/x", true),
        ("armored/x", false),
    ] {
        let before = std::fs::read_to_string(&lock_path).unwrap();
        let mut args = vec!["encrypt", name];
        if !new {
            args.push("--force");
        }
        env.keys_stdin(&args, b"another value").success();
        let after = std::fs::read_to_string(&lock_path).unwrap();
        let data = std::fs::read(repo.join(format!("secrets/{name}.age"))).unwrap();
        let mine = |l: &&str| l.starts_with(&format!("{name} "));
        let kept: Vec<&str> = after.lines().filter(|l| !mine(l)).collect();
        let was: Vec<&str> = before.lines().filter(|l| !mine(l)).collect();
        assert_eq!(kept, was, "{name}");
        let line = after.lines().find(mine).unwrap();
        assert!(line.contains(&sha256_hex(&data)), "{name}: {line}");
        let names: Vec<&str> = after
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "{name}: out of order"
        );
        assert_eq!(names.len(), was.len() - 2 + 1, "{name}");
    }
    env.keys(&["check"]).success();
    // A name nesting with one deep in the lock is refused, nothing written.
    let before = tree(&repo);
    let refused = env.keys_stdin(&["encrypt", "bot/s00600/x"], b"v");
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("bot/s00600"), "{}", refused.stderr);
    assert_eq!(tree(&repo), before);
}

#[test]
fn a_lock_with_lines_added_by_hand_out_of_order_is_still_updated_in_place() {
    let mut env = TestEnv::new();
    let repo = large_fleet(&mut env);
    let lock_path = repo.join("secrets/keys.lock");
    // A line moved by hand to the end: encrypting that secret again replaces it
    // there (the lock is read whole), never a second line for it.
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let moved = lock
        .lines()
        .find(|l| l.starts_with("bot/s00010 "))
        .unwrap()
        .to_string();
    let text: String = lock
        .lines()
        .filter(|l| *l != moved)
        .chain([moved.as_str()])
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&lock_path, text).unwrap();
    env.keys_stdin(&["encrypt", "bot/s00010", "--force"], b"v2")
        .success();
    let after = std::fs::read_to_string(&lock_path).unwrap();
    assert_eq!(
        after
            .lines()
            .filter(|l| l.starts_with("bot/s00010 "))
            .count(),
        1
    );
    env.keys(&["check"]).success();
}

#[test]
fn in_a_git_fleet_each_lock_write_reuses_the_last_one_out_of_the_work_tree() {
    use std::os::unix::fs::MetadataExt;
    let mut env = TestEnv::new();
    let repo = large_fleet(&mut env);
    git(&env, &["init", "-q"], b"").success();
    let lock_path = repo.join("secrets/keys.lock");
    let spare = repo.join(".git/keys-lock.spare");
    let inode = |p: &Path| std::fs::symlink_metadata(p).unwrap().ino();
    let status = || {
        git(
            &env,
            &["status", "--porcelain", "--untracked-files=all"],
            b"",
        )
        .success()
        .stdout
    };
    let clean = status();
    // The lock a write replaces is kept in the git directory, and the next write
    // goes over it: growing, shrinking, the same length; beside a secret of the same
    // rule or of another (a line of another length than the one beside it).
    let mut last: Option<u64> = None;
    for (name, value, force) in [
        ("bot/s00601", "a value", false),
        ("bot/a", "b", false),
        ("bot/s00601", "another", true),
        ("bot/s00601", "one more", true),
        ("armored/x", "c", false),
        ("zz/x", "d", false),
        ("armored/x", "e", true),
        ("bot/s99999", "f", false),
    ] {
        let before = std::fs::read(&lock_path).unwrap();
        let was = inode(&lock_path);
        let mut args = vec!["encrypt", name];
        if force {
            args.push("--force");
        }
        env.keys_stdin(&args, value.as_bytes()).success();
        assert_eq!(std::fs::read(&spare).unwrap(), before, "{name}");
        assert_eq!(inode(&spare), was, "{name}");
        if let Some(spare_inode) = last {
            assert_eq!(inode(&lock_path), spare_inode, "{name}: a new file");
        }
        last = Some(inode(&spare));
        let after = std::fs::read_to_string(&lock_path).unwrap();
        let data = std::fs::read(repo.join(format!("secrets/{name}.age"))).unwrap();
        let line = after.lines().find(|l| l.starts_with(&format!("{name} ")));
        assert!(line.unwrap().contains(&sha256_hex(&data)), "{name}");
        assert_eq!(mode_of(&lock_path), 0o644);
    }
    env.keys(&["check"]).success();
    // Nothing of it is in the work tree: only the two secrets are new.
    let new: Vec<String> = status()
        .lines()
        .filter(|l| !clean.lines().any(|c| c == *l))
        .map(str::to_string)
        .collect();
    assert_eq!(
        new,
        [
            "?? secrets/armored/x.age",
            "?? secrets/bot/a.age",
            "?? secrets/bot/s00601.age",
            "?? secrets/bot/s99999.age",
            "?? secrets/zz/x.age"
        ],
        "{new:?}"
    );

    // What stands at the spare's name is never written through: a link to another
    // file, a second name of one, a directory, a fifo. Each write makes a new lock
    // and the other file is left as it was.
    let victim = env.write("victim", "not the lock\n");
    let mut round = 0;
    let mut write_beside = |what: &str| {
        round += 1;
        let was = inode(&lock_path);
        env.keys_stdin(
            &["encrypt", "bot/s00601", "--force"],
            format!("{round}").as_bytes(),
        )
        .success();
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "not the lock\n",
            "{what}"
        );
        assert_ne!(inode(&lock_path), inode(&victim), "{what}");
        assert_ne!(inode(&lock_path), was, "{what}");
        env.keys(&["check"]).success();
    };
    std::fs::remove_file(&spare).unwrap();
    std::os::unix::fs::symlink(&victim, &spare).unwrap();
    write_beside("a symlink");
    std::fs::remove_file(&spare).unwrap();
    std::fs::hard_link(&victim, &spare).unwrap();
    write_beside("a hard link");
    std::fs::remove_file(&spare).unwrap();
    std::fs::create_dir(&spare).unwrap();
    write_beside("a directory");
    assert!(spare.is_dir());
    std::fs::remove_dir(&spare).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &spare,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    write_beside("a fifo");
    // A spare of another mode gives the lock its own.
    std::fs::set_permissions(&spare, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    env.keys_stdin(&["encrypt", "bot/s00601", "--force"], b"last")
        .success();
    assert_eq!(mode_of(&lock_path), 0o644);
    env.keys(&["check"]).success();
    // A `.git` that is a link to another directory is not gone into.
    let elsewhere = env.root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keys-lock.spare"), "not the lock\n").unwrap();
    std::fs::rename(repo.join(".git"), env.root.join("git-dir")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, repo.join(".git")).unwrap();
    env.keys_stdin(&["encrypt", "bot/s00601", "--force"], b"linked")
        .success();
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("keys-lock.spare")).unwrap(),
        "not the lock\n"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1);
    env.keys(&["check"]).success();
}

#[test]
fn in_a_git_fleet_a_value_that_cannot_be_sealed_leaves_the_lock_and_the_work_tree_as_they_were() {
    use std::os::unix::fs::MetadataExt;
    let mut env = TestEnv::new();
    let repo = large_fleet(&mut env);
    env.write(
        "work/policies/default.yaml",
        POLICY.replace(
            "rules:\n",
            "rules:\n  - secrets: \"conf/*\"\n    format: sops-yaml\n    readers: [admins]\n",
        ),
    );
    git(&env, &["init", "-q"], b"").success();
    let lock_path = repo.join("secrets/keys.lock");
    let spare = repo.join(".git/keys-lock.spare");
    // A first write leaves a spare, which the next write copies the lock into
    // before it seals the value.
    env.keys_stdin(&["encrypt", "bot/s00601"], b"a value")
        .success();
    assert!(spare.is_file());
    let listing = || {
        let mut all: Vec<String> = walkdir::WalkDir::new(repo.join("secrets"))
            .into_iter()
            .map(|e| e.unwrap().path().display().to_string())
            .collect();
        all.sort();
        all
    };
    let (lock, inode, files) = (
        std::fs::read(&lock_path).unwrap(),
        std::fs::metadata(&lock_path).unwrap().ino(),
        listing(),
    );
    // Not a YAML document: refused once the lock's copy is staged. A secret that
    // exists: refused once the copy is staged ahead of the policy.
    let out = env.keys_stdin(&["encrypt", "conf/app"], b"a: [1, 2\n");
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("conf/app"), "{}", out.stderr);
    let out = env.keys_stdin(&["encrypt", "bot/s00601"], b"again");
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(std::fs::read(&lock_path).unwrap(), lock);
    assert_eq!(std::fs::metadata(&lock_path).unwrap().ino(), inode);
    assert_eq!(listing(), files);
    // The copies go over the spare, which stays for the next write.
    assert!(spare.is_file());
    env.keys(&["check"]).success();
    // The next write goes on as before.
    env.keys_stdin(&["encrypt", "conf/app"], b"a: [1, 2]\n")
        .success();
    env.keys_stdin(&["encrypt", "bot/s00603"], b"another")
        .success();
    assert!(spare.is_file());
    env.keys(&["check"]).success();
}
