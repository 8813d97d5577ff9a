//! `keys check`: drift, edits outside keys, plaintext, missing and unlisted files, and
//! private keys outside secrets/, each named by file; check never writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::{TestEnv, peer};
use crate::fixture::{POLICY, TOKEN, fleet, run_ok, tree};

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
    crate::assert_output!(env, "drift", run.stdout);
    crate::assert_output!(env, "drift_stderr", run.stderr);
    let ls = env.keys(&["ls"]).success();
    crate::assert_output!(env, "drift_ls", ls.stdout);
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
    // The edit, the plaintext, the invalid and unlisted file and the missing one.
    crate::assert_output!(env, "edits_plaintext_and_missing_files", out);
    assert!(!out.contains("canary") && !run.stderr.contains("canary"));
    assert!(!out.contains("hunter2"));
    assert_eq!(tree(&repo), before_check, "check never writes");
    assert_ne!(before, before_check);
    let ls = env.keys(&["ls", "--json"]).success();
    let list: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
    assert_eq!(list["version"], 1);
    let status: BTreeMap<&str, &str> = list["secrets"]
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
    crate::assert_output!(env, "private_keys_outside_secrets", run.stdout);
    assert!(!run.stdout.contains("src.rs"), "{}", run.stdout);
    assert!(!run.stdout.contains("QYQSZ"), "no key material in output");
    env.write(
        "work/policies/default.yaml",
        format!("{POLICY}allow_private_keys:\n  - \"hosts/**\"\n  - notes.md\n"),
    );
    let run = env.keys(&["check"]).success();
    crate::assert_output!(env, "private_keys_allowed", run.stdout);
    let _ = repo;
}

/// A sops-nix template that embeds a secret with no file yet: keys.nix leaves it
/// out, and check reports it at the template's line with what makes the secret.
#[test]
fn a_template_embedding_a_secret_that_does_not_exist_is_a_problem() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let policy = POLICY.replace(
        "rules:\n",
        "rules:
  - secrets: \"app/*\"
    format: sops-yaml
    readers: [admins, host:vps-arm]
  - secrets: \"gen/*\"
    format: sops-binary
    readers: [admins, host:vps-arm]
    generate: {kind: alnum}
",
    ) + "templates:
  - name: app.env
    reader: host:vps-arm
    content: \"DB={{ secret:app/db }} KEY={{ secret:gen/key }}\"
";
    let line = 1 + policy
        .lines()
        .position(|l| l == "  - name: app.env")
        .unwrap();
    env.write("work/policies/default.yaml", &policy);
    env.keys_stdin(&["encrypt", "bot/token"], TOKEN).success();
    let at =
        format!("policies/default.yaml:{line}: template app.env for host:vps-arm embeds secret");

    let before = tree(&repo);
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.contains(&format!(
            "{at} app/db, and secrets/app/db.yaml does not exist: keys.nix leaves the template out\n  \
             fix: encrypt it with `keys encrypt app/db`, or take {{{{ secret:app/db }}}} out of template app.env\n"
        )),
        "{}",
        run.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.keys(&["check", "--json"]).failure(8).stdout).unwrap();
    let kinds: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["template"], "{json}");
    assert_eq!(tree(&repo), before, "check writes nothing");

    // The one secret there, the other made by its rule.
    env.keys_stdin(&["encrypt", "app/db"], b"password: p\n")
        .success();
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.contains(&format!(
            "{at} gen/key, and secrets/gen/key.bin does not exist: keys.nix leaves the template out\n  \
             fix: make it with `keys generate gen/key`, or take {{{{ secret:gen/key }}}} out of template app.env\n"
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("app/db.yaml"), "{}", run.stdout);
    let export = env.keys(&["export", "nix", "-o", "-"]).success();
    assert!(!export.stdout.contains("app.env"), "{}", export.stdout);
    assert!(
        export.stderr.contains(&format!(
            "keys: warning: policies/default.yaml:{line}: template app.env left out of keys.nix: it embeds gen/key, and secrets/gen/key.bin does not exist"
        )),
        "{}",
        export.stderr
    );

    env.keys(&["generate", "gen/key"]).success();
    let run = env.keys(&["check"]).success();
    assert!(!run.stdout.contains("template"), "{}", run.stdout);
    let export = env.keys(&["export", "nix", "-o", "-"]).success();
    assert!(
        export.stdout.contains("sops.templates.\"app.env\""),
        "{}",
        export.stdout
    );
    assert!(!export.stderr.contains("warning"), "{}", export.stderr);
}
