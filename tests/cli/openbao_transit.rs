//! OpenBao transit keys as sops readers, against the real `bao server -dev` and the
//! real sops: `transit:URL` in a rule wraps the data key (`hc_vault`), sops opens
//! what keys writes with OpenBao alone and the reverse, a rekey adds or drops the
//! entry, `keys check` sees drift, and each failure is one line that changes nothing.

use std::path::Path;
use std::process::Command;

use crate::common::{Run, TestEnv, peer, run};
use crate::fixture::{fleet, tree};
use crate::openbao::Bao;

/// The dev server's root token (`Bao::start`).
const TOKEN: &str = "keys-test-root";
const DEMO: &str = "age1t9jzmsuj2txxh6q5857skvch8drp4r8h4kxxvfll33nfany4wftq72qkyu";
const APP: &str = "user: s3cret-user\npassword: s3cret-pw\n";

/// The policy: `ci/*` for OpenBao alone, `both/*` for the admin and OpenBao.
fn policy(addr: &str) -> String {
    format!(
        "groups:
  admins: [demo]
rules:
  - secrets: \"ci/*\"
    format: sops-yaml
    readers: [\"transit:{addr}/v1/transit/keys/ci\"]
  - secrets: \"both/*\"
    format: sops-yaml
    readers:
      - admins
      - \"transit:{addr}/v1/transit/keys/ci\"
  - secrets: \"**\"
    format: age
    readers: [admins]
"
    )
}

/// A dev server with the transit engine and the key `ci`, and a fleet whose
/// policy names it, with the environment pointing at the server.
fn setup(env: &mut TestEnv) -> (Bao, std::path::PathBuf) {
    let bao = Bao::start();
    bao.ok(&["secrets", "enable", "transit"]);
    bao.ok(&["write", "-f", "transit/keys/ci"]);
    let repo = fleet(env);
    env.write("work/policies/default.yaml", policy(&bao.addr));
    env.set("VAULT_ADDR", &bao.addr);
    env.set("VAULT_TOKEN", TOKEN);
    (bao, repo)
}

/// `keys ARGS` with no age identity at all.
fn keys_without_identity(env: &TestEnv, args: &[&str]) -> Run {
    let mut cmd = env.command(args);
    cmd.env_remove("KEYS_IDENTITY");
    run(cmd, b"")
}

/// The real sops, with OpenBao's address and token and no age key.
fn sops(env: &TestEnv, args: &[&str]) -> Run {
    let mut cmd = Command::new(peer("sops"));
    cmd.args(args);
    env.apply(&mut cmd);
    cmd.env_remove("KEYS_IDENTITY");
    cmd.env("SOPS_AGE_KEY_FILE", env.root.join("no-such-age-key"));
    run(cmd, b"")
}

fn error_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("keys: error: "))
        .unwrap_or_else(|| panic!("no error line: {}", run.stderr))
}

#[track_caller]
fn no_secret_in(run: &Run) {
    assert!(
        !run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"),
        "a value printed: {}{}",
        run.stdout,
        run.stderr
    );
}

fn lock_line(repo: &Path, name: &str) -> String {
    std::fs::read_to_string(repo.join("secrets/keys.lock"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_default()
        .to_string()
}

/// keys writes an `hc_vault` entry as sops does (beside age when the rule names
/// both), the lock records the transit key by a short id, and sops decrypts the
/// files with OpenBao alone; keys does too, with no age identity.
#[test]
fn keys_wraps_the_data_key_with_transit_and_sops_decrypts_with_openbao_alone() {
    let mut env = TestEnv::new();
    let (bao, repo) = setup(&mut env);
    env.keys_stdin(&["encrypt", "ci/app"], APP.as_bytes())
        .success();
    env.keys_stdin(&["encrypt", "both/app"], APP.as_bytes())
        .success();

    let ci = std::fs::read_to_string(repo.join("secrets/ci/app.yaml")).unwrap();
    assert!(
        ci.contains(&format!(
            "    hc_vault:\n        - vault_address: {}\n          engine_path: transit\n          key_name: ci\n          created_at: \"",
            bao.addr
        )),
        "{ci}"
    );
    assert!(ci.contains("          enc: vault:v1:"), "{ci}");
    assert!(!ci.contains("    age:"), "{ci}");
    let both = std::fs::read_to_string(repo.join("secrets/both/app.yaml")).unwrap();
    let (vault, age) = (
        both.find("    hc_vault:").unwrap(),
        both.find("    age:").unwrap(),
    );
    assert!(vault < age, "sops writes hc_vault before age: {both}");

    let id = lock_line(&repo, "ci/app");
    let transit_id = id.split(' ').nth(3).unwrap();
    assert!(
        transit_id.starts_with("transit:") && transit_id.len() == "transit:".len() + 12,
        "{id}"
    );
    assert!(!id.contains(&bao.addr), "{id}");
    assert!(
        lock_line(&repo, "both/app")
            .split(' ')
            .nth(3)
            .unwrap()
            .ends_with(&format!(",{transit_id}")),
        "{}",
        lock_line(&repo, "both/app")
    );

    for name in ["ci/app", "both/app"] {
        let file = format!("secrets/{name}.yaml");
        assert_eq!(sops(&env, &["decrypt", &file]).success().stdout, APP);
        assert_eq!(
            keys_without_identity(&env, &["decrypt", name])
                .success()
                .stdout,
            APP
        );
    }
    env.keys(&["check"]).success();

    // The exported .sops.yaml names the transit key as sops's creation rules do:
    // sops itself encrypts a new file of the rule for OpenBao.
    env.keys(&["export", "sops-config"]).success();
    let config = std::fs::read_to_string(repo.join(".sops.yaml")).unwrap();
    assert!(
        config.contains(&format!(
            "    hc_vault_transit_uri:\n      - '{}/v1/transit/keys/ci'\n",
            bao.addr
        )),
        "{config}"
    );
    env.write("work/secrets/ci/new.yaml", APP);
    sops(&env, &["encrypt", "--in-place", "secrets/ci/new.yaml"]).success();
    let new = std::fs::read_to_string(repo.join("secrets/ci/new.yaml")).unwrap();
    assert!(
        new.contains("hc_vault:") && !new.contains("    age:"),
        "{new}"
    );
    assert_eq!(
        keys_without_identity(&env, &["decrypt", "secrets/ci/new.yaml"])
            .success()
            .stdout,
        APP
    );
}

/// Files sops encrypted with `--hc-vault-transit` (alone, and beside an age
/// recipient) are read by keys, which wraps the new data key of an edit with
/// transit encrypt, for the same readers.
#[test]
fn keys_reads_and_edits_files_sops_wrapped_with_transit() {
    let mut env = TestEnv::new();
    let (bao, repo) = setup(&mut env);
    let url = format!("{}/v1/transit/keys/ci", bao.addr);
    env.write("work/plain.yaml", APP);
    for (name, extra) in [("ci/app", &[][..]), ("both/app", &["--age", DEMO][..])] {
        let mut args = vec!["encrypt", "--hc-vault-transit", &url];
        args.extend(extra);
        args.push("plain.yaml");
        let sealed = sops(&env, &args).success().raw_stdout;
        env.write(&format!("work/secrets/{name}.yaml"), &sealed);
        assert_eq!(
            keys_without_identity(&env, &["decrypt", &format!("secrets/{name}.yaml")])
                .success()
                .stdout,
            APP
        );
    }
    // The age identity opens the file sops wrote for both.
    assert_eq!(env.keys(&["decrypt", "both/app"]).success().stdout, APP);
    env.keys(&["adopt", "ci/app", "both/app"]).success();
    env.keys(&["check"]).success();

    let before = std::fs::read_to_string(repo.join("secrets/ci/app.yaml")).unwrap();
    let enc = |text: &str| {
        text.lines()
            .find(|l| l.contains("enc: vault:"))
            .unwrap()
            .to_string()
    };
    let mut cmd = env.command(&["set", "ci/app", "user"]);
    cmd.env_remove("KEYS_IDENTITY");
    run(cmd, b"s3cret-new\n").success();
    let after = std::fs::read_to_string(repo.join("secrets/ci/app.yaml")).unwrap();
    assert_ne!(enc(&after), enc(&before), "a new data key, wrapped anew");
    assert_eq!(after.matches("enc: vault:").count(), 1);
    assert_eq!(
        sops(&env, &["decrypt", "secrets/ci/app.yaml"])
            .success()
            .stdout,
        "user: s3cret-new\npassword: s3cret-pw\n"
    );
}

/// A rekey after the transit reader leaves a rule drops the `hc_vault` entry, and
/// one after it joins adds it; `keys check` reports each as drift first.
#[test]
fn rekey_adds_and_drops_the_transit_entry_and_check_sees_the_drift() {
    let mut env = TestEnv::new();
    let (bao, repo) = setup(&mut env);
    env.keys_stdin(&["encrypt", "both/app"], APP.as_bytes())
        .success();
    let file = repo.join("secrets/both/app.yaml");

    let age_only = policy(&bao.addr).replace(
        &format!("      - \"transit:{}/v1/transit/keys/ci\"\n", bao.addr),
        "",
    );
    env.write("work/policies/default.yaml", &age_only);
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.contains("secrets/both/app.yaml: drift")
            || check.stderr.contains("secrets/both/app.yaml: drift"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    env.keys(&["rekey"]).success();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("hc_vault"), "{text}");
    assert!(
        !lock_line(&repo, "both/app")
            .split(' ')
            .nth(3)
            .unwrap()
            .contains("transit:")
    );
    env.keys(&["check"]).success();
    keys_without_identity(&env, &["decrypt", "both/app"]).failure(4);

    env.write("work/policies/default.yaml", policy(&bao.addr));
    env.keys(&["check"]).failure(8);
    env.keys(&["rekey"]).success();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("hc_vault:"), "{text}");
    env.keys(&["check"]).success();
    assert_eq!(
        sops(&env, &["decrypt", "secrets/both/app.yaml"])
            .success()
            .stdout,
        APP
    );

    // An hc_vault entry the policy does not name, in a file the lock still
    // describes as it was: the file's own metadata tells.
    let other = text.replace("key_name: ci", "key_name: other");
    std::fs::write(&file, &other).unwrap();
    let check = env.keys(&["check"]).failure(8);
    let out = format!("{}{}", check.stdout, check.stderr);
    assert!(out.contains("secrets/both/app.yaml"), "{out}");
}

/// OpenBao down, a refused token, a missing transit key, a token without
/// permission: one line naming the address and the key's path, exit 9 (4 for the
/// token), no value, and every file as it was.
#[test]
fn transit_failures_are_one_line_and_change_nothing() {
    let mut env = TestEnv::new();
    let (bao, repo) = setup(&mut env);
    env.keys_stdin(&["encrypt", "ci/app"], APP.as_bytes())
        .success();
    bao.ok(&["write", "-f", "transit/keys/spare"]);
    bao.cli_stdin(
        &["policy", "write", "encrypt-only", "-"],
        b"path \"transit/encrypt/*\" { capabilities = [\"update\"] }\n",
    );
    let limited = bao
        .ok(&["token", "create", "-policy=encrypt-only", "-field=token"])
        .trim()
        .to_string();
    let before = tree(&repo);

    let wrong_token = {
        let mut cmd = env.command(&["decrypt", "ci/app"]);
        cmd.env_remove("KEYS_IDENTITY").env("VAULT_TOKEN", "wrong");
        run(cmd, b"").failure(4)
    };
    let line = error_line(&wrong_token);
    assert!(
        line.contains(&bao.addr) && line.contains("transit/keys/ci"),
        "{line}"
    );

    let denied = {
        let mut cmd = env.command(&["decrypt", "ci/app"]);
        cmd.env_remove("KEYS_IDENTITY").env("VAULT_TOKEN", &limited);
        run(cmd, b"").failure(9)
    };
    let line = error_line(&denied);
    assert!(
        line.contains(&bao.addr)
            && line.contains("transit/keys/ci")
            && line.contains("permission denied"),
        "{line}"
    );

    env.write(
        "work/policies/default.yaml",
        policy(&bao.addr).replace("keys/ci\"]", "keys/missing\"]"),
    );
    let missing = env
        .keys_stdin(&["encrypt", "--force", "ci/app"], APP.as_bytes())
        .failure(9);
    let line = error_line(&missing);
    assert!(
        line.contains(&bao.addr) && line.contains("transit/keys/missing"),
        "{line}"
    );
    assert!(
        bao.cli(&["read", "transit/keys/missing"]).status.code() != Some(0),
        "no transit key is made by a write"
    );
    env.write("work/policies/default.yaml", policy(&bao.addr));

    let mut runs = vec![wrong_token, denied, missing];
    drop(bao);
    let down = keys_without_identity(&env, &["decrypt", "ci/app"]).failure(9);
    let line = error_line(&down);
    assert!(
        line.contains("transit/keys/ci") && line.contains("127.0.0.1"),
        "{line}"
    );
    runs.push(down);
    runs.push(
        env.keys_stdin(&["encrypt", "--force", "ci/app"], APP.as_bytes())
            .failure(9),
    );
    for r in &runs {
        no_secret_in(r);
        assert_eq!(
            r.stderr
                .lines()
                .filter(|l| l.starts_with("keys: error:"))
                .count(),
            1,
            "{}",
            r.stderr
        );
    }
    assert_eq!(tree(&repo), before);
}

/// A transit reader in an age rule is refused where it is written, with a hint.
#[test]
fn a_transit_reader_in_an_age_rule_is_refused_with_its_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write(
        "work/policies/default.yaml",
        "groups:\n  admins: [demo]\nrules:\n  - secrets: \"**\"\n    format: age\n    readers:\n      - admins\n      - \"transit:http://127.0.0.1:8200/v1/transit/keys/ci\"\n",
    );
    let before = tree(&repo);
    let run = env
        .keys_stdin(&["encrypt", "bot/token"], b"s3cret")
        .failure(3);
    let line = error_line(&run);
    assert!(line.contains("policies/default.yaml:8:"), "{line}");
    assert!(line.contains("is format age"), "{line}");
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    assert_eq!(tree(&repo), before);

    env.write(
        "work/policies/default.yaml",
        "groups:\n  admins: [demo]\nrules:\n  - secrets: \"**\"\n    format: sops-yaml\n    readers: [\"transit:127.0.0.1:8200/transit/ci\"]\n",
    );
    let run = env
        .keys_stdin(&["encrypt", "bot/token"], b"a: s3cret")
        .failure(3);
    let line = error_line(&run);
    assert!(
        line.contains("policies/default.yaml:6:") && line.contains("not a URL"),
        "{line}"
    );
}
