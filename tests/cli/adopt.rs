//! Edits made by sops and agenix on the exports: `keys check` names each file as
//! changed outside keys and says whether its recipients match the policy, and `keys
//! adopt` records it in keys.lock after checking its header (and that it opens).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, peer, run};
use crate::fixture::{sops, sops_fleet, tree};

/// The real agenix script, its tool paths filled in.
fn agenix(env: &TestEnv) -> PathBuf {
    let source = crate::common::nix_sources().join("agenix/pkgs/agenix.sh");
    let text = std::fs::read_to_string(source).unwrap();
    let text = text
        .replace("@ageBin@", &peer("age").display().to_string())
        .replace(
            "@nixInstantiate@",
            &peer("nix-instantiate").display().to_string(),
        )
        .replace("@jqBin@", &peer("jq").display().to_string())
        .replace("@mktempBin@", &peer("mktemp").display().to_string())
        .replace("@diffBin@", &peer("diff").display().to_string())
        .replace("@version@", "0.15.0");
    env.script("bin/agenix", text)
}

pub(crate) fn run_agenix(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(peer("bash"));
    cmd.arg(agenix(env)).args(args);
    env.apply(&mut cmd);
    // Evaluation only: no Nix store is needed, nor written.
    cmd.env("NIX_REMOTE", "dummy://");
    run(cmd, stdin)
}

fn admin_key(env: &TestEnv) -> PathBuf {
    env.root.join("keys/demo.txt")
}

#[test]
fn edits_by_sops_and_agenix_are_named_and_adopted() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"old-token")
        .success();
    env.keys_stdin(&["encrypt", "json/app"], b"{\"a\": \"1\"}")
        .success();
    env.keys(&["export", "sops-config"]).success();
    env.keys(&["export", "agenix-rules"]).success();
    env.keys(&["check"]).success();

    // sops set, as a sops user does, with the exported creation rules.
    sops(
        &env,
        &["set", "secrets/json/app.json", "[\"a\"]", "\"2\""],
        &admin_key(&env),
    )
    .success();
    // agenix -e, as an agenix user does, with the exported secrets.nix.
    let key = admin_key(&env).display().to_string();
    run_agenix(
        &env,
        &["-e", "secrets/bot/token.age", "-i", &key],
        b"new-token",
    )
    .success();

    let r = env.keys(&["check"]).failure(8);
    for name in ["secrets/json/app.json", "secrets/bot/token.age"] {
        assert!(
            r.stdout.contains(&format!(
                "{name}: was changed outside keys (its SHA-256 differs from keys.lock); its recipients match the policy"
            )),
            "{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("keys adopt "), "{}", r.stdout);

    let run = env.keys(&["adopt"]).success();
    assert!(
        run.stdout
            .contains("adopted   bot/token  (header matches its policy; opens)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("adopted   json/app"), "{}", run.stdout);
    env.keys(&["check"]).success();
    let r = env.keys(&["rekey"]).success();
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    assert_eq!(
        env.keys(&["decrypt", "bot/token"]).success().stdout,
        "new-token"
    );
    assert_eq!(
        env.keys(&["decrypt", "json/app"]).success().stdout,
        "{\n\t\"a\": \"2\"\n}\n"
    );
    // agenix still reads what keys writes after the adoption.
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"third")
        .success();
    let back = run_agenix(&env, &["-d", "secrets/bot/token.age", "-i", &key], b"").success();
    assert_eq!(back.stdout, "third");
    let _ = Path::new(&repo);
}

#[test]
fn a_file_encrypted_to_other_recipients_is_not_adopted() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"t").success();
    // Re-encrypted with age to the admin alone: vps-arm, a reader in the policy, is gone.
    let admin = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let age_key = admin.lines().find(|l| l.starts_with("age1")).unwrap();
    let mut age = Command::new(peer("age"));
    age.args(["-r", age_key.trim(), "-o", "secrets/bot/token.age"]);
    env.apply(&mut age);
    run(age, b"t").success();
    let r = env.keys(&["check"]).failure(8);
    assert!(
        r.stdout.contains(
            "secrets/bot/token.age: was changed outside keys (its SHA-256 differs from keys.lock)\n"
        ),
        "{}",
        r.stdout
    );
    let before = tree(&repo);
    let r = env.keys(&["adopt", "bot/token"]).failure(3);
    assert!(
        r.stderr.starts_with(
            "keys: error: secrets/bot/token.age: its recipients differ from its policy rule"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("keys rekey"), "{}", r.stderr);
    assert_eq!(tree(&repo), before);
}
