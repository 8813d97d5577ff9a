//! `keys status` on the demo fleet of this repository, and its errors.

use crate::common::TestEnv;

fn project() -> String {
    env!("CARGO_MANIFEST_DIR").to_string()
}

#[test]
fn shows_the_demo_fleet_with_derived_host_recipients() {
    let env = TestEnv::new();
    let run = env.keys(&["--repo", &project(), "status"]).success();
    // Every admin, host, container and secret, with the hosts' deploy settings.
    crate::assert_output!(env, "demo_status", run.stdout);
    for host in ["vps-x86", "vps-arm"] {
        let pubkey = format!(
            "{}/tests/fixtures/hosts/{host}.ssh_host_ed25519_key.pub",
            project()
        );
        let age = env.keys(&["to-age", &pubkey]).success().stdout;
        assert!(run.stdout.contains(age.trim()), "{host}: {}", run.stdout);
    }
}

#[test]
fn finds_the_repo_from_a_subdirectory_and_from_keys_repo() {
    let mut env = TestEnv::new();
    env.set("KEYS_REPO", project());
    env.keys(&["status"]).success();
}

#[test]
fn outside_a_repo_it_says_how_to_get_one() {
    let env = TestEnv::new();
    let run = env.keys(&["status"]).failure(7);
    crate::assert_output!(env, "outside_a_repo", run.stderr);
}

#[test]
fn a_bad_host_file_is_named_with_its_line() {
    let env = TestEnv::new();
    env.keys(&["init", "--admin", "a"]).success();
    let host = env.work.join("recipients/hosts/h1.yaml");
    std::fs::write(
        &host,
        "address: 192.0.2.1\nssh_key: ssh-ed25519 AAAAbroken\n",
    )
    .unwrap();
    let run = env.keys(&["status"]).failure(3);
    crate::assert_output!(env, "malformed_host_key", run.stderr);
    std::fs::write(&host, "ssh_key: x\nssh_key: y\n").unwrap();
    let run = env.keys(&["status"]).failure(3);
    crate::assert_output!(env, "duplicate_host_key_field", run.stderr);
}

#[test]
fn ls_and_status_refuse_a_policy_or_host_file_that_does_not_load() {
    let env = TestEnv::new();
    env.keys(&["init", "--admin", "a"]).success();
    // Found by the hostile corpus: both printed their table and exited 0.
    let policy = env.work.join("policies/zz.yaml");
    std::fs::write(&policy, b"groups: \xff\n").unwrap();
    for cmd in ["ls", "status"] {
        let run = env.keys(&[cmd]).failure(3);
        assert_eq!(run.stdout, "", "{cmd} printed its table");
        crate::assert_output!(env, format!("{cmd}_policy_not_utf8"), run.stderr);
    }
    std::fs::remove_file(&policy).unwrap();
    env.keys(&["ls"]).success();
    let host = env.work.join("recipients/hosts/h1.yaml");
    std::fs::write(&host, "ssh_key: ssh-ed25519 AAAAbroken\n").unwrap();
    let run = env.keys(&["ls"]).failure(3);
    assert_eq!(run.stdout, "", "ls printed its table");
    crate::assert_output!(env, "ls_malformed_host_key", run.stderr);
}

#[test]
fn the_demo_secrets_are_listed_clean_and_open_with_the_demo_identity() {
    let env = TestEnv::new();
    let run = env.keys(&["--repo", &project(), "status"]).success();
    for (name, format, readers) in [
        ("bot/telegram-token", "age", "admins, host:vps-arm"),
        ("vps-x86/restic-password", "age", "admins, host:vps-x86"),
        ("nannuo-bot/env", "age", "admins, container:nannuo-bot"),
        (
            "nannuo-bot/config",
            "sops-yaml",
            "admins, container:nannuo-bot",
        ),
        ("hosts/vps-arm/ssh_host_ed25519_key", "age", "admins"),
        ("hosts/vps-x86/ssh_host_ed25519_key", "age", "admins"),
    ] {
        let listed = run.stdout.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() >= 4
                && words[..3] == [name, format, "ok"]
                && words[3..].join(" ") == readers
        });
        assert!(listed, "{name} missing:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("problem"), "{}", run.stdout);
    let check = env.keys(&["--repo", &project(), "check"]).success();
    crate::assert_output!(env, "demo_check", check.stdout);
    // As the README shows it; git keeps the test identity at mode 0644.
    let id = format!("{}/tests/fixtures/demo-admin.age-identity", project());
    let token = env
        .keys(&[
            "--repo",
            &project(),
            "decrypt",
            "-i",
            &id,
            "bot/telegram-token",
        ])
        .success();
    assert_eq!(token.stdout, "123456789:AAE-demo-telegram-token-not-real");
    // The host reads it with its SSH host key, as agenix does.
    let host = format!(
        "{}/tests/fixtures/hosts/vps-arm.ssh_host_ed25519_key",
        project()
    );
    let host = crate::common::private_copy(&env, std::path::Path::new(&host), "vps-arm");
    let mut age = std::process::Command::new(crate::common::peer("age"));
    age.arg("-d")
        .arg("-i")
        .arg(&host)
        .arg(format!("{}/secrets/bot/telegram-token.age", project()));
    env.apply(&mut age);
    let out = crate::common::run(age, b"").success();
    assert_eq!(out.stdout, "123456789:AAE-demo-telegram-token-not-real");
    // The container's sops file opens, as sops-nix opens it, with the host key
    // converted to an age identity.
    let converted = env
        .keys(&["to-age", "--private", &host.display().to_string()])
        .success();
    let key_file = env.write("host-age.txt", converted.stdout);
    let mut sops = std::process::Command::new(crate::common::peer("sops"));
    sops.args(["--disable-version-check", "decrypt"])
        .arg(format!("{}/secrets/nannuo-bot/config.yaml", project()));
    env.apply(&mut sops);
    sops.env("SOPS_AGE_KEY_FILE", &key_file);
    let out = crate::common::run(sops, b"").success();
    assert!(
        out.stdout.contains("api_token: demo-nannuo-token-not-real"),
        "{}",
        out.stdout
    );
}
