//! `keys status` on the demo fleet of this repository, and its errors.

use crate::common::TestEnv;

fn project() -> String {
    env!("CARGO_MANIFEST_DIR").to_string()
}

#[test]
fn shows_the_demo_fleet_with_derived_host_recipients() {
    let env = TestEnv::new();
    // Each host's address, short key and secrets by status.
    let summary = env.keys(&["--repo", &project(), "status"]).success();
    crate::assert_output!(env, "demo_status", summary.stdout);
    // Every admin, host, container and secret, with the hosts' deploy settings.
    let run = env
        .keys(&["--repo", &project(), "status", "--long"])
        .success();
    crate::assert_output!(env, "demo_status_long", run.stdout);
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
    let mut env = TestEnv::new();
    // Wide enough for every reader.
    env.set("COLUMNS", "100");
    let run = env
        .keys(&["--repo", &project(), "status", "--long"])
        .success();
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

/// Every line of `output` is at most `width` terminal columns (the tables cut with
/// `…`, one column).
#[track_caller]
fn fits(output: &str, width: usize, what: &str) {
    for line in output.lines() {
        assert!(
            line.chars().count() <= width,
            "{what}: a line of {} columns:\n{line}\n\n{output}",
            line.chars().count()
        );
    }
}

/// At fleet size (20 hosts, 500 secrets) the status is a summary that fits one
/// screen, and every listing fits 80 columns when stdout is not a terminal.
#[test]
fn a_fleet_of_20_hosts_and_500_secrets_fits_80_columns() {
    let env = TestEnv::new();
    crate::fixture::large_fleet(&env, 20, 500);
    let web = crate::fixture::large_host(4);
    let status = env.keys(&["status"]).success();
    fits(&status.stdout, 80, "status");
    let lines: Vec<&str> = status.stdout.lines().collect();
    assert!(
        lines.len() <= 30,
        "{} lines:\n{}",
        lines.len(),
        status.stdout
    );
    // One line per host: its address, short key and secrets by status.
    for h in 0..20 {
        let host = crate::fixture::large_host(h);
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(host.as_str()))
            .unwrap_or_else(|| panic!("{host} missing:\n{}", status.stdout));
        assert!(row.contains(&format!("198.51.100.{}:2222", h + 1)), "{row}");
        assert!(row.contains("SHA256:") && row.contains(" ok"), "{row}");
    }
    assert!(
        lines.contains(&"secrets (500): 498 ok, 1 modified, 1 missing"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("2 problems found"),
        "{}",
        status.stdout
    );
    assert!(
        lines.last().unwrap().contains("keys status --long"),
        "{}",
        status.stdout
    );
    // --long lists every secret, ls every secret under a header, host ls every host.
    let long = env.keys(&["status", "--long"]).success();
    fits(&long.stdout, 80, "status --long");
    let ls = env.keys(&["ls"]).success();
    fits(&ls.stdout, 80, "ls");
    assert_eq!(ls.stdout.lines().count(), 501);
    let names: Vec<&str> = ls
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    for name in &names {
        assert!(
            long.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(name)),
            "{name} not in status --long"
        );
    }
    let hosts = env.keys(&["host", "ls"]).success();
    fits(&hosts.stdout, 80, "host ls");
    assert_eq!(hosts.stdout.lines().count(), 21, "{}", hosts.stdout);
    // What one host reads, and what one reader opens.
    let one = env.keys(&["status", "--host", &web]).success();
    fits(&one.stdout, 80, "status --host");
    let reads: Vec<&str> = one
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("  {web}/")))
        .collect();
    assert_eq!(reads.len(), 25, "{}", one.stdout);
    // Its container's, named by the reader that reads them.
    let app: Vec<&&str> = reads.iter().filter(|l| l.contains("/app/")).collect();
    assert!(!app.is_empty(), "{}", one.stdout);
    for line in app {
        let reader = line.split_whitespace().last().unwrap();
        assert!(reader.starts_with("container:a"), "{line}");
    }
    let opens = env
        .keys(&["ls", "--reader", &format!("host:{web}")])
        .success();
    fits(&opens.stdout, 80, "ls --reader");
    // The container shares its host's key, so the host opens the container's too.
    assert_eq!(opens.stdout.lines().count(), 26, "{}", opens.stdout);
    // A wider terminal ($COLUMNS) gets whole keys.
    let mut env = env;
    env.set("COLUMNS", "200");
    let wide = env.keys(&["host", "ls"]).success();
    assert!(!wide.stdout.contains('…'), "{}", wide.stdout);
    fits(&wide.stdout, 200, "host ls at 200 columns");
}
