//! `keys rekey`: a policy change or a new host key re-encrypts exactly the secrets
//! it concerns; nothing is lost when the run fails or is killed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestEnv, peer, run};
use crate::fixture::{host_key, tree};
use crate::fixture::{sops, sops_fleet};

fn age_decrypt(env: &TestEnv, identity: &Path, file: &Path) -> crate::common::Run {
    let mut cmd = Command::new(peer("age"));
    cmd.arg("-d").arg("-i").arg(identity).arg(file);
    env.apply(&mut cmd);
    run(cmd, b"")
}

/// A new ed25519 key pair from ssh-keygen; returns the private key's path.
fn new_ssh_key(env: &TestEnv, name: &str) -> PathBuf {
    let path = env.root.join(format!("keys/{name}"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path);
    env.apply(&mut cmd);
    run(cmd, b"").success();
    path
}

#[test]
fn rotating_a_host_rekeys_only_its_secrets_and_the_new_key_opens_them() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"bot-canary")
        .success();
    env.keys_stdin(&["encrypt", "misc/other"], b"other")
        .success();
    let yaml = std::fs::read(crate::common::vectors().join("sops/basic.plain.yaml")).unwrap();
    env.keys_stdin(&["encrypt", "yaml/app"], &yaml).success();
    env.keys_stdin(&["encrypt", "json/admin-only"], b"{\"a\": \"b\"}")
        .success();
    env.keys(&["rekey"]).success();
    let before = tree(&repo);
    let old_key = host_key(&env, "vps-arm");

    // vps-arm gets a new host key (a VM replaced).
    let new_key = new_ssh_key(&env, "vps-arm-new");
    let public = std::fs::read_to_string(new_key.with_extension("pub")).unwrap();
    let host_file = repo.join("recipients/hosts/vps-arm.yaml");
    let text = std::fs::read_to_string(&host_file).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("ssh_key:") {
                format!("ssh_key: {}\n", public.trim())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&host_file, text).unwrap();

    let dry = env
        .keys(&["rekey", "--host", "vps-arm", "--dry-run"])
        .success();
    // The plan: each secret vps-arm reads (misc/* through its container), with the
    // change to its recipients.
    crate::assert_output!(env, "rotation_plan", dry.stdout);
    assert!(!dry.stdout.contains("json/admin-only"), "{}", dry.stdout);
    let mut after_dry = tree(&repo);
    after_dry.remove(&host_file);
    let mut before_no_host = before.clone();
    before_no_host.remove(&host_file);
    assert_eq!(after_dry, before_no_host, "--dry-run writes nothing");

    env.keys(&["rekey", "--host", "vps-arm"]).success();
    let after = tree(&repo);
    let changed: Vec<&PathBuf> = after
        .keys()
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    let names: Vec<String> = changed
        .iter()
        .map(|p| p.strip_prefix(&repo).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "recipients/hosts/vps-arm.yaml",
            "secrets/bot/token.age",
            "secrets/keys.lock",
            "secrets/misc/other.age",
            "secrets/yaml/app.yaml",
        ],
        "only vps-arm's secrets (and the lock) change"
    );
    // .age files: the old host key no longer opens them, the new one does (as agenix).
    let bot = repo.join("secrets/bot/token.age");
    assert_ne!(age_decrypt(&env, &old_key, &bot).code, 0);
    assert_eq!(
        age_decrypt(&env, &new_key, &bot).success().stdout,
        "bot-canary"
    );
    // sops files: the new key converted (as sops-nix does) opens it in the real sops;
    // the file lost a reader, so every value is sealed under a new data key (the same
    // plaintext and lastmodified), and the layout is unchanged.
    let converted = env
        .keys(&["to-age", "--private", &new_key.display().to_string()])
        .success();
    let new_age = env.write("new-host-age.txt", converted.stdout);
    let sops_file = repo.join("secrets/yaml/app.yaml");
    let out = sops(
        &env,
        &["decrypt", &sops_file.display().to_string()],
        &new_age,
    )
    .success();
    assert_eq!(out.raw_stdout, yaml);
    let old_converted = env
        .keys(&["to-age", "--private", &old_key.display().to_string()])
        .success();
    let old_age = env.write("old-host-age.txt", old_converted.stdout);
    assert_ne!(
        sops(
            &env,
            &["decrypt", &sops_file.display().to_string()],
            &old_age
        )
        .code,
        0
    );
    let old_text = String::from_utf8(before[&sops_file].clone()).unwrap();
    let new_text = String::from_utf8(after[&sops_file].clone()).unwrap();
    let body = |t: &str| t[..t.find("\nsops:").unwrap()].to_string();
    for (a, b) in body(&old_text).lines().zip(body(&new_text).lines()) {
        assert_eq!(a == b, !a.contains("ENC["), "{a}\n{b}");
    }
    assert_eq!(
        body(&old_text).lines().count(),
        body(&new_text).lines().count()
    );
    let field = |t: &str, k: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with(k))
            .unwrap()
            .to_string()
    };
    assert_ne!(field(&old_text, "mac:"), field(&new_text, "mac:"));
    assert_eq!(
        field(&old_text, "lastmodified:"),
        field(&new_text, "lastmodified:")
    );
    env.keys(&["check"]).success();
    let again = env.keys(&["rekey"]).success();
    crate::assert_output!(env, "up_to_date_after_rotation", again.stdout);
    assert_eq!(tree(&repo), after, "an up-to-date rekey writes nothing");
}

#[test]
fn a_file_that_fails_stops_the_whole_rekey_before_anything_is_written() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    for i in 0..5 {
        env.keys_stdin(&["encrypt", &format!("bot/s{i}")], b"x")
            .success();
    }
    let yaml = std::fs::read(crate::common::vectors().join("sops/basic.plain.yaml")).unwrap();
    env.keys_stdin(&["encrypt", "yaml/app"], &yaml).success();
    // Tamper with one .age file and one sops value, keeping the lock's view.
    let age_file = repo.join("secrets/bot/s3.age");
    let mut data = std::fs::read(&age_file).unwrap();
    let n = data.len();
    data[n - 5] ^= 1;
    std::fs::write(&age_file, data).unwrap();
    let sops_file = repo.join("secrets/yaml/app.yaml");
    let text = std::fs::read_to_string(&sops_file).unwrap();
    let at = text.find("password: ENC[AES256_GCM,data:").unwrap() + 31;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&sops_file, bytes).unwrap();
    env.write(
        "work/policies/default.yaml",
        std::fs::read_to_string(repo.join("policies/default.yaml"))
            .unwrap()
            .replace("[admins, host:vps-arm]", "[admins, host:vps-x86]")
            .replace(
                "[admins, container:nannuo-bot]\n  - secrets: \"json/*\"",
                "[admins]\n  - secrets: \"json/*\"",
            ),
    );
    let before = tree(&repo);
    let run = env.keys(&["rekey"]).failure(3);
    crate::assert_output!(env, "two_files_failed", run.stderr);
    assert_eq!(tree(&repo), before);

    // A write that fails (a file-size limit) leaves every original as it was.
    std::fs::write(
        &age_file,
        std::fs::read(repo.join("secrets/bot/s2.age")).unwrap(),
    )
    .unwrap();
    env.keys(&["rm", "yaml/app"]).success();
    env.keys(&["rm", "bot/s3"]).success();
    let before = tree(&repo);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "trap '' XFSZ; ulimit -f 0; exec {} rekey",
        crate::common::keys_bin()
    ));
    env.apply(&mut cmd);
    let r = crate::common::run(cmd, b"");
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("keys: error: "), "{}", r.stderr);
    let mut after = tree(&repo);
    after.retain(|p, _| !p.ends_with(".keys-journal"));
    let mut expected = before.clone();
    expected.retain(|p, _| !p.ends_with(".keys-journal"));
    assert_eq!(after, expected, "every original byte-identical");
}

/// A sops file that no longer parses (its metadata cut off, or not YAML at all) is
/// skipped and named, whether the lock already differs from the policy (the plan
/// does not tally its header then) or only its header would; the others are rekeyed
/// and it is left as it is.
#[test]
fn a_sops_file_that_does_not_parse_is_skipped_and_named_and_the_rest_rekeyed() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    for name in ["yaml/a", "yaml/b"] {
        env.keys_stdin(&["encrypt", name], b"key: value\n")
            .success();
    }
    let damaged = repo.join("secrets/yaml/b.yaml");
    let text = std::fs::read_to_string(&damaged).unwrap();
    let policy = std::fs::read_to_string(repo.join("policies/default.yaml")).unwrap();
    for (cut, readers) in [
        (text[..text.find("sops:").unwrap()].to_string(), "[admins]"),
        (
            "key: [unclosed\n".to_string(),
            "[admins, container:nannuo-bot]",
        ),
    ] {
        std::fs::write(&damaged, &cut).unwrap();
        // The lock's readers for yaml/* stop being the policy's.
        env.write(
            "work/policies/default.yaml",
            policy.replace("[admins, container:nannuo-bot]", readers),
        );
        let run = env.keys(&["rekey"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout
                .contains("skip    yaml/b: secrets/yaml/b.yaml is not a valid sops-yaml file ("),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("rekey   yaml/a"), "{}", run.stdout);
        assert_eq!(std::fs::read_to_string(&damaged).unwrap(), cut);
        assert_eq!(
            env.keys(&["decrypt", "yaml/a"]).success().stdout,
            "key: value\n"
        );
    }
}

/// A policy that gives `many/*` to the admins and host vps-arm.
const MANY: &str = "groups:\n  admins: [demo]\nrules:\n  - secrets: \"many/*\"\n    format: age\n    readers: [admins, host:vps-arm]\n";

/// Writes the `MANY` policy and encrypts `n` secrets under it, `many/s0`… each
/// holding `secret-<i>`, in one shell loop of `keys encrypt`.
fn many_secrets(env: &mut TestEnv, n: usize) {
    env.write("work/policies/default.yaml", MANY);
    let input: String = (0..n).map(|i| format!("{i}\n")).collect();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "for i in $(cat); do printf 'secret-%s' \"$i\" | '{}' encrypt many/s$i || exit 1; done",
        crate::common::keys_bin()
    ));
    env.apply(&mut sh);
    let r = run(sh, input.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Decrypts every `.age` secret under `repo` in-process with the admin identity.
fn all_plaintexts(repo: &Path, identity: &Path) -> Vec<(String, Vec<u8>)> {
    use keys::identity::{Identities, NoPrompt, Search};
    let search = Search {
        flags: vec![identity.to_path_buf()],
        env_identity: None,
        keyring: keys::identity::keyring::Backend::Disabled,
        config_dir: None,
        home: None,
        sops: keys::identity::SopsPlaces::default(),
    };
    let mut ids = Identities::search(&search).unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo.join("secrets/many")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".age") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        assert!(!data.is_empty(), "{name} is empty");
        let at = keys::error::Location::file(&path);
        let plain = keys::crypto::age::decrypt(&data, &mut ids, &NoPrompt, &at)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, plain.to_vec()));
    }
    out.sort();
    out
}

#[test]
fn killing_the_rekey_at_any_point_loses_nothing_and_a_rerun_finishes_it() {
    let mut env = TestEnv::new();
    let repo = crate::fixture::fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let policy = MANY;
    many_secrets(&mut env, 200);
    let original = all_plaintexts(&repo, &admin);
    assert_eq!(original.len(), 200);
    let trials = std::env::var("KEYS_KILL_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(50);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut killed_mid_write = 0;
    for trial in 0..trials {
        // Flip the readers so that every trial has all 200 files to rewrite.
        let readers = if trial % 2 == 0 {
            "[admins, host:vps-x86]"
        } else {
            "[admins, host:vps-arm]"
        };
        env.write(
            "work/policies/default.yaml",
            policy.replace("[admins, host:vps-arm]", readers),
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = std::time::Duration::from_micros(seed % 400_000);
        let mut child = env
            .command(&["rekey"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        kill_tree(child.id());
        let status = child.wait().unwrap();
        if !status.success() && repo.join(".keys-journal").exists() {
            killed_mid_write += 1;
            let check = env.keys(&["check"]).failure(8);
            assert!(
                check
                    .stdout
                    .contains(".keys-journal: a rekey was interrupted"),
                "{}",
                check.stdout
            );
        }
        assert_eq!(
            all_plaintexts(&repo, &admin),
            original,
            "trial {trial}: a secret changed or was lost"
        );
        // The next run finishes what the killed one started.
        if trial % 10 == 9 {
            env.keys(&["rekey"]).success();
            env.keys(&["check"]).success();
        }
    }
    env.keys(&["rekey"]).success();
    env.keys(&["check"]).success();
    assert_eq!(all_plaintexts(&repo, &admin), original);
    println!("kill -9 trials: {trials}, killed while writing: {killed_mid_write}");
}

/// SIGKILL to a process and its children (`setsid` may run `keys` as a child).
fn kill_tree(pid: u32) {
    let mut pids = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid …; comm may contain spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pid)
                && let Ok(child) = e.file_name().to_string_lossy().parse::<u32>()
            {
                pids.push(child);
            }
        }
    }
    for p in pids {
        let _ = Command::new("kill").arg("-9").arg(p.to_string()).status();
    }
}

#[test]
fn host_rotate_records_the_new_key_and_rekeys_in_one_run_or_changes_nothing() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"bot-canary")
        .success();
    env.keys_stdin(&["encrypt", "json/admin-only"], b"{\"a\": 1}")
        .success();
    let old_key = host_key(&env, "vps-arm");

    // Without an identity that opens the secrets, nothing changes at all.
    let before = tree(&repo);
    let mut stranger = TestEnv::new();
    stranger.set(
        "KEYS_IDENTITY",
        host_key(&env, "vps-x86").display().to_string(),
    );
    let new_key = new_ssh_key(&env, "arm-2");
    let pubfile = new_key.with_extension("pub").display().to_string();
    let mut cmd = stranger.command(&[
        "--repo",
        &repo.display().to_string(),
        "host",
        "rotate",
        "vps-arm",
        "--key",
        &pubfile,
    ]);
    cmd.current_dir(&repo);
    let r = crate::common::run(cmd, b"");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        tree(&repo),
        before,
        "a failed rotation puts everything back"
    );

    // With the admin identity: the host file names the new key and its secrets open with it.
    let out = env
        .keys(&["host", "rotate", "vps-arm", "--key", &pubfile])
        .success();
    env.snapshots_of_new_keys()
        .bind(|| insta::assert_snapshot!("host_rotate", out.stdout));
    let bot = repo.join("secrets/bot/token.age");
    assert_eq!(
        age_decrypt(&env, &new_key, &bot).success().stdout,
        "bot-canary"
    );
    assert_ne!(age_decrypt(&env, &old_key, &bot).code, 0);
    env.keys(&["check"]).success();

    // A generated key: stored for the admins, and it opens the host's secrets.
    env.keys(&["host", "rotate", "vps-arm", "--generate"])
        .success();
    let private = env
        .keys(&["decrypt", "hosts/vps-arm/ssh_host_ed25519_key"])
        .success()
        .raw_stdout;
    let generated = env.write("keys/generated", private);
    std::fs::set_permissions(
        &generated,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(
        age_decrypt(&env, &generated, &bot).success().stdout,
        "bot-canary"
    );
    assert_ne!(age_decrypt(&env, &new_key, &bot).code, 0);
    env.keys(&["check"]).success();
    let again = env.keys(&["rekey"]).success();
    crate::assert_output!(env, "up_to_date_after_host_rotate", again.stdout);
}

#[test]
fn a_passphrase_protected_identity_is_asked_for_once_per_rekey() {
    let mut env = TestEnv::new();
    peer("script");
    let pass = env.write("pass.txt", "correct horse\n");
    env.set("KEYS_PASSPHRASE_FILE", pass.display().to_string());
    env.keys(&["init", "--admin", "alice", "--passphrase", "--no-hook"])
        .success();
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for h in ["vps-arm", "vps-x86"] {
        let rel = format!("recipients/hosts/{h}.yaml");
        env.write(
            &format!("work/{rel}"),
            std::fs::read(top.join(&rel)).unwrap(),
        );
    }
    let policy =
        "rules:\n  - secrets: \"**\"\n    format: age\n    readers: [admins, host:vps-arm]\n";
    env.write("work/policies/default.yaml", policy);
    for i in 0..3 {
        env.keys_stdin(&["encrypt", &format!("s{i}")], b"x")
            .success();
    }
    env.write(
        "work/policies/default.yaml",
        policy.replace("vps-arm", "vps-x86"),
    );
    env.set("KEYS_PASSPHRASE_FILE", "");
    // One line typed: a second prompt would wait for input that never comes.
    let run = crate::fixture::on_terminal(&env, "rekey", &["correct horse"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("Passphrase for ").count(),
        1,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("rekeyed 3 secrets"), "{}", run.stdout);
    assert!(run.stdout.contains("rekey   s2"), "{}", run.stdout);
    env.keys(&["check"]).success();
}

#[test]
fn two_rekeys_at_once_one_proceeds_the_other_is_refused_and_nothing_is_lost() {
    let mut env = TestEnv::new();
    let repo = crate::fixture::fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let policy = MANY;
    many_secrets(&mut env, 100);
    let original = all_plaintexts(&repo, &admin);
    env.write(
        "work/policies/default.yaml",
        policy.replace("vps-arm", "vps-x86"),
    );
    // The lock file holds the last writer's pid; start from none, to see the first take it.
    std::fs::remove_file(repo.join(".keys-writer")).unwrap();
    let first = env
        .command(&["rekey"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock, then start the second and an encrypt.
    let lock = repo.join(".keys-writer");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let held = std::fs::read_to_string(&lock).is_ok_and(|t| !t.trim().is_empty());
        if held || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = env.keys(&["rekey"]);
    let third = env.keys_stdin(&["encrypt", "many/new"], b"n");
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "first: {}\nsecond: {} {}\nthird: {} {}",
        String::from_utf8_lossy(&first.stderr),
        second.code,
        second.stderr,
        third.code,
        third.stderr
    );
    for r in [&second, &third] {
        assert_eq!(r.code, 10, "{}", r.stderr);
        assert!(
            r.stderr.contains("another keys process (pid "),
            "{}",
            r.stderr
        );
    }
    assert_eq!(all_plaintexts(&repo, &admin), original);
    env.keys(&["check"]).success();
    assert!(env.keys(&["rekey"]).success().stdout.contains("up to date"));
}

/// A lock that records full fingerprints, as earlier versions of keys wrote it, is the
/// same lock: `keys check` finds it clean, and `keys rekey` rewrites it with short
/// fingerprints without touching a secret.
#[test]
fn an_older_lock_with_full_fingerprints_is_clean_and_rekey_shortens_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"bot-canary")
        .success();
    env.keys_stdin(&["encrypt", "json/admin-only"], b"{\"a\": \"b\"}")
        .success();
    let lock_file = repo.join("secrets/keys.lock");
    let short = std::fs::read_to_string(&lock_file).unwrap();

    // Every full fingerprint `keys status` shows: admins' age1… keys, hosts' SHA256:….
    let status = env.keys(&["status", "--long"]).success().stdout;
    let full: Vec<&str> = status
        .split_whitespace()
        .filter(|t| t.starts_with("age1") || t.starts_with("SHA256:"))
        .collect();
    let mut expanded = 0;
    let old: String = short
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            if line.starts_with('#') || fields.len() < 4 {
                return format!("{line}\n");
            }
            let (head, ids, tail) = (fields[..3].join(" "), fields[3], &fields[4..]);
            let ids: Vec<&str> = ids
                .split(',')
                .map(|id| {
                    let f = full
                        .iter()
                        .find(|f| f.starts_with(id) && f.len() > id.len());
                    let f = f.unwrap_or_else(|| panic!("no full form of {id} in:\n{status}"));
                    expanded += 1;
                    *f
                })
                .collect();
            let tail: String = tail.iter().map(|f| format!(" {f}")).collect();
            format!("{head} {}{tail}\n", ids.join(","))
        })
        .collect();
    assert!(expanded >= 3 && old.len() > short.len() + 60, "{old}");
    std::fs::write(&lock_file, &old).unwrap();
    env.keys(&["check"]).success();

    let before = tree(&repo);
    let dry = env.keys(&["rekey", "--dry-run"]).success();
    crate::assert_output!(env, "relock_plan", dry.stdout);
    assert_eq!(tree(&repo), before, "a dry run writes nothing");

    env.keys(&["rekey"]).success();
    assert_eq!(std::fs::read_to_string(&lock_file).unwrap(), short);
    let mut after = tree(&repo);
    after.remove(&lock_file);
    let mut before = before;
    before.remove(&lock_file);
    assert_eq!(after, before, "no secret changes");
    let again = env.keys(&["rekey"]).success();
    crate::assert_output!(env, "up_to_date_after_relock", again.stdout);
    env.keys(&["check"]).success();
}

/// A fleet with a healthy age and sops secret and one sops file, `yaml/zero`, that
/// the real sops wrote with a MAC it cannot verify itself (it writes a float -0
/// left in clear as `-0`, which reads back as the integer 0, but hashes `-0`).
/// Returns that file's path and text.
fn fleet_with_a_broken_mac(env: &mut TestEnv) -> (PathBuf, PathBuf, String) {
    let repo = sops_fleet(env);
    let admin = env.root.join("keys/demo.txt");
    env.keys_stdin(&["encrypt", "bot/token"], b"bot-canary")
        .success();
    env.keys_stdin(&["encrypt", "yaml/app"], b"token: app-canary\n")
        .success();
    env.keys_stdin(&["encrypt", "yaml/zero"], b"placeholder: 1\n")
        .success();
    // sops rewrites yaml/zero by the exported creation rules, to the same readers.
    env.keys(&["export", "sops-config"]).success();
    let zero = repo.join("secrets/yaml/zero.yaml");
    std::fs::write(&zero, "zero_unencrypted: -0.0\nsecret: zero-canary\n").unwrap();
    let mut cmd = Command::new(peer("sops"));
    cmd.args([
        "--disable-version-check",
        "encrypt",
        "-i",
        "secrets/yaml/zero.yaml",
    ]);
    env.apply(&mut cmd);
    run(cmd, b"").success();
    let broken = sops(env, &["decrypt", &zero.display().to_string()], &admin);
    assert!(broken.stderr.contains("MAC mismatch"), "{}", broken.stderr);
    let text = std::fs::read_to_string(&zero).unwrap();
    (repo, zero, text)
}

/// The values of a sops YAML file, as written before its metadata.
fn body(text: &str) -> &str {
    &text[..text.find("\nsops:").unwrap()]
}

/// The first line of a sops file that starts with `key`, indentation aside.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap()
}

/// The age identity sops-nix derives from a host's SSH key, in a file.
fn age_identity_of(env: &TestEnv, ssh_key: &Path, name: &str) -> PathBuf {
    let converted = env
        .keys(&["to-age", "--private", &ssh_key.display().to_string()])
        .success();
    env.write(&format!("{name}-age.txt"), converted.stdout)
}

/// `keys rekey` after a policy change: the one sops file whose MAC sops broke does
/// not stop the others. It is rewrapped with them, named once in a warning, its
/// values and MAC left as they were; the new reader opens it with the real sops
/// (`--ignore-mac`, as the MAC still fails, as it did before) and every other file.
#[test]
fn rekey_rewraps_a_file_whose_mac_sops_broke_and_names_it() {
    let mut env = TestEnv::new();
    let (repo, zero, before) = fleet_with_a_broken_mac(&mut env);
    let age_before = std::fs::read(repo.join("secrets/bot/token.age")).unwrap();
    env.write(
        "work/policies/default.yaml",
        std::fs::read_to_string(repo.join("policies/default.yaml"))
            .unwrap()
            .replace(
                "[admins, container:nannuo-bot]\n  - secrets: \"json/*\"",
                "[admins, container:nannuo-bot, host:vps-x86]\n  - secrets: \"json/*\"",
            ),
    );
    let out = env.keys(&["rekey"]).success();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("keys: warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{}", out.stderr);
    assert!(
        warnings[0].starts_with("keys: warning: secrets/yaml/zero.yaml: MAC mismatch"),
        "{}",
        warnings[0]
    );
    assert!(out.stderr.contains("rekeyed 2 secrets"), "{}", out.stderr);
    let after = std::fs::read_to_string(&zero).unwrap();
    assert_ne!(after, before, "its data key was wrapped for the new reader");
    assert_eq!(field(&after, "mac:"), field(&before, "mac:"));
    assert_eq!(
        body(&after),
        body(&before).replace("zero_unencrypted: -0\n", "zero_unencrypted: 0\n"),
        "values as read (the `-0` both tools read as the integer 0 is written `0`)"
    );
    assert_eq!(
        std::fs::read(repo.join("secrets/bot/token.age")).unwrap(),
        age_before,
        "a secret the change does not concern is untouched"
    );

    let x86 = age_identity_of(&env, &host_key(&env, "vps-x86"), "vps-x86");
    let read = |rel: &str, extra: &[&str]| {
        let path = repo.join(rel).display().to_string();
        let mut args = vec!["decrypt"];
        args.extend_from_slice(extra);
        args.push(&path);
        sops(&env, &args, &x86)
    };
    assert_eq!(
        read("secrets/yaml/zero.yaml", &["--ignore-mac"])
            .success()
            .stdout,
        "zero_unencrypted: 0\nsecret: zero-canary\n"
    );
    assert!(
        read("secrets/yaml/zero.yaml", &[])
            .stderr
            .contains("MAC mismatch")
    );
    assert_eq!(
        read("secrets/yaml/app.yaml", &[]).success().stdout,
        "token: app-canary\n"
    );
    // keys still refuses its values without --ignore-mac: nothing was laundered.
    let refused = env.keys(&["decrypt", "yaml/zero"]).failure(3);
    assert!(
        refused.stderr.contains("MAC mismatch"),
        "{}",
        refused.stderr
    );
    env.keys(&["export", "sops-config"]).success();
    env.keys(&["check"]).success();
    let again = env.keys(&["rekey"]).success();
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
}

/// `keys host rotate` likewise: the rotation rewraps the broken file with the
/// others and names it, and the new host key opens every one of its files.
#[test]
fn host_rotate_rewraps_a_file_whose_mac_sops_broke_and_names_it() {
    let mut env = TestEnv::new();
    let (repo, zero, before) = fleet_with_a_broken_mac(&mut env);
    let new_key = new_ssh_key(&env, "arm-3");
    let pubfile = new_key.with_extension("pub").display().to_string();
    let out = env
        .keys(&["host", "rotate", "vps-arm", "--key", &pubfile])
        .success();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("keys: warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{}", out.stderr);
    assert!(
        warnings[0].starts_with("keys: warning: secrets/yaml/zero.yaml: MAC mismatch"),
        "{}",
        warnings[0]
    );
    assert!(out.stdout.contains("rekeyed   3 secrets"), "{}", out.stdout);
    let after = std::fs::read_to_string(&zero).unwrap();
    assert_ne!(
        after, before,
        "a new data key, wrapped for the new host key"
    );
    // The file lost a reader: its values and MAC are sealed under the new key, the
    // same plaintext and MAC (which still does not match: nothing is laundered).
    assert_ne!(field(&after, "mac:"), field(&before, "mac:"));
    assert_eq!(
        field(&after, "lastmodified:"),
        field(&before, "lastmodified:")
    );
    let as_read = body(&before).replace("zero_unencrypted: -0\n", "zero_unencrypted: 0\n");
    assert_eq!(body(&after).lines().count(), as_read.lines().count());
    for (a, b) in as_read.lines().zip(body(&after).lines()) {
        assert_eq!(a == b, !a.contains("ENC["), "{a}\n{b}");
    }

    // The new host key, converted as sops-nix does, opens every one of its files.
    let new_age = age_identity_of(&env, &new_key, "arm-3");
    let read = |rel: &str, extra: &[&str]| {
        let path = repo.join(rel).display().to_string();
        let mut args = vec!["decrypt"];
        args.extend_from_slice(extra);
        args.push(&path);
        sops(&env, &args, &new_age)
    };
    assert_eq!(
        read("secrets/yaml/app.yaml", &[]).success().stdout,
        "token: app-canary\n"
    );
    assert_eq!(
        read("secrets/yaml/zero.yaml", &["--ignore-mac"])
            .success()
            .stdout,
        "zero_unencrypted: 0\nsecret: zero-canary\n"
    );
    assert_eq!(
        age_decrypt(&env, &new_key, &repo.join("secrets/bot/token.age"))
            .success()
            .stdout,
        "bot-canary"
    );
    env.keys(&["export", "sops-config"]).success();
    env.keys(&["check"]).success();

    // `keys rekey --all` rewraps it too, and says so again.
    let all = env.keys(&["rekey", "--all"]).success();
    assert!(
        all.stderr
            .contains("keys: warning: secrets/yaml/zero.yaml: MAC mismatch"),
        "{}",
        all.stderr
    );
    // Under a new data key again: the same values (as --ignore-mac reads them).
    let rekeyed = std::fs::read_to_string(&zero).unwrap();
    assert_ne!(body(&rekeyed), body(&after));
    assert_eq!(
        read("secrets/yaml/zero.yaml", &["--ignore-mac"])
            .success()
            .stdout,
        "zero_unencrypted: 0\nsecret: zero-canary\n"
    );
}

/// A rekey reads each secret once (the plan's read serves the re-encryption and the
/// backup alike). The file in place afterwards is proven to be the one shown to open
/// by its inode, as the file written is still open: it is not opened again.
#[test]
fn a_rekey_opens_each_secret_once() {
    let mut env = TestEnv::new();
    let repo = crate::fixture::fleet(&mut env);
    let policy = MANY;
    many_secrets(&mut env, 3);
    env.write(
        "work/policies/default.yaml",
        policy.replace("host:vps-arm", "host:vps-x86"),
    );
    let log = env.root.join("openat.log");
    let mut cmd = Command::new(peer("strace"));
    cmd.args(["-f", "-qq", "-e", "trace=openat", "-o"])
        .arg(&log)
        .arg(crate::common::keys_bin())
        .arg("rekey");
    env.apply(&mut cmd);
    let r = run(cmd, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("rekey   many/s2"), "{}", r.stdout);
    let log = std::fs::read_to_string(&log).unwrap();
    for i in 0..3 {
        let file = repo.join(format!("secrets/many/s{i}.age"));
        let opened = log
            .lines()
            .filter(|l| l.contains(&format!("\"{}\"", file.display())))
            .count();
        assert_eq!(opened, 1, "s{i} opened {opened} times:\n{log}");
    }
    env.keys(&["check"]).success();
}

/// `--jobs N` bounds the threads a rekey runs on, the re-encryption's included,
/// whatever the machine's cores: the command's own thread (it runs with a larger
/// stack than the process's first), N workers and the one that feeds them.
#[test]
fn rekey_jobs_bounds_the_threads_it_starts() {
    let mut env = TestEnv::new();
    crate::fixture::fleet(&mut env);
    let policy = MANY;
    many_secrets(&mut env, 8);
    // Each run moves every secret to the other host, so each rewrites all eight.
    for (jobs, host) in [(1, "host:vps-x86"), (3, "host:vps-arm")] {
        env.write(
            "work/policies/default.yaml",
            policy.replace("host:vps-arm", host),
        );
        let log = env.root.join(format!("clone-{jobs}.log"));
        let mut cmd = Command::new(peer("strace"));
        cmd.args(["-f", "-qq", "-e", "trace=clone,clone3", "-o"])
            .arg(&log)
            .arg(crate::common::keys_bin())
            .args(["rekey", "--jobs", &jobs.to_string()]);
        env.apply(&mut cmd);
        let r = run(cmd, b"");
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("rekey   many/s7"), "{}", r.stdout);
        let threads = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("CLONE_THREAD"))
            .count();
        assert_eq!(threads, 1 + jobs + 1, "--jobs {jobs}");
    }
    env.keys(&["check"]).success();
}

/// A rekey keeps the files it replaces open until they are all in place, as many as
/// the limit of open files allows: under a limit it cannot raise, it keeps fewer and
/// rekeys every file all the same.
#[test]
fn a_rekey_under_a_tight_limit_of_open_files_rewrites_every_secret() {
    let mut env = TestEnv::new();
    crate::fixture::fleet(&mut env);
    let policy = MANY;
    many_secrets(&mut env, 300);
    env.write(
        "work/policies/default.yaml",
        policy.replace("host:vps-arm", "host:vps-x86"),
    );
    // 300 files to replace, 320 open files at most, soft and hard.
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "ulimit -n 320 && exec '{}' rekey",
        crate::common::keys_bin()
    ));
    env.apply(&mut sh);
    let r = run(sh, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("rekeyed 300 secrets"), "{}", r.stderr);
    env.keys(&["check"]).success();
    assert_eq!(
        env.keys_stdin(&["decrypt", "many/s299"], b"")
            .success()
            .stdout,
        "secret-299"
    );
}

/// A lock whose lines were put out of order by hand is read whole and written anew by a
/// rekey: sorted, each rekeyed secret's line with its new hash and recipients, every
/// other line as it was, and `keys check` finds it clean.
#[test]
fn a_lock_out_of_order_comes_out_of_a_host_rekey_sorted_and_true() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    for name in ["bot/token", "misc/other", "json/admin-only"] {
        env.keys_stdin(&["encrypt", name], b"{\"a\": \"b\"}")
            .success();
    }
    env.keys(&["rekey"]).success();
    let lock_file = repo.join("secrets/keys.lock");
    let sorted = std::fs::read_to_string(&lock_file).unwrap();
    let (header, entries): (Vec<&str>, Vec<&str>) =
        sorted.lines().partition(|l| l.starts_with('#'));
    assert!(entries.len() >= 3, "{sorted}");
    let shuffled: String = header
        .iter()
        .chain(entries.iter().rev())
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&lock_file, &shuffled).unwrap();

    let new_key = new_ssh_key(&env, "vps-arm-new");
    let public = std::fs::read_to_string(new_key.with_extension("pub")).unwrap();
    let host_file = repo.join("recipients/hosts/vps-arm.yaml");
    let text: String = std::fs::read_to_string(&host_file)
        .unwrap()
        .lines()
        .map(|l| match l.starts_with("ssh_key:") {
            true => format!("ssh_key: {}\n", public.trim()),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&host_file, text).unwrap();
    env.keys(&["rekey", "--host", "vps-arm"]).success();

    let after = std::fs::read_to_string(&lock_file).unwrap();
    let after_entries: Vec<&str> = after.lines().filter(|l| !l.starts_with('#')).collect();
    let mut in_order = after_entries.clone();
    in_order.sort();
    assert_eq!(after_entries, in_order, "{after}");
    assert_eq!(after_entries.len(), entries.len(), "{after}");
    let admin_only = |lines: &[&str]| {
        lines
            .iter()
            .find(|l| l.starts_with("json/admin-only "))
            .map(|l| l.to_string())
    };
    assert_eq!(admin_only(&after_entries), admin_only(&entries));
    let rekeyed = after_entries
        .iter()
        .filter(|l| !entries.contains(l))
        .count();
    assert!(rekeyed >= 1, "{sorted}\n{after}");
    env.keys(&["check"]).success();
    assert!(env.keys(&["rekey"]).success().stdout.contains("up to date"));
}

/// A sops file the lock does not list (sops wrote it), for fewer readers than its
/// rule: `keys check` says to run `keys rekey`, and the rekey rewrites it for the
/// rule's readers and records it, so the host's key opens it in the real sops.
#[test]
fn a_file_the_lock_does_not_list_is_rewritten_for_its_rule_and_recorded() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let theirs = crate::fixture::sops_encrypted(&env, &repo, "c.yaml", b"token: by-sops\n");
    let file = repo.join("secrets/clear/c.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::copy(&theirs, &file).unwrap();
    let check = env.keys(&["check"]).failure(8);
    assert!(check.stdout.contains("keys rekey"), "{}", check.stdout);
    let dry = env.keys(&["rekey", "--dry-run"]).success();
    assert!(
        dry.stdout.contains("clear/c  (sops-yaml, not in keys.lock"),
        "{}",
        dry.stdout
    );
    env.keys(&["rekey"]).success();
    env.keys(&["check"]).success();
    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    assert!(
        lock.lines().any(|l| l.starts_with("clear/c sops-yaml ")),
        "{lock}"
    );
    let x86 = env
        .keys(&[
            "to-age",
            "--private",
            &host_key(&env, "vps-x86").display().to_string(),
        ])
        .success();
    let x86 = env.write("x86.age", x86.stdout);
    let out = sops(&env, &["decrypt", &file.display().to_string()], &x86).success();
    assert_eq!(out.stdout, "token: by-sops\n");
    let again = env.keys(&["rekey"]).success();
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}
