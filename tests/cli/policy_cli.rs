//! The policy from the command line: `keys rule add|ls` and `keys admin add|rm` edit
//! `policies/*.yaml` as text (every comment kept, byte for byte) and refuse, writing
//! nothing, what the policy loader would refuse.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestEnv, peer, run};
use crate::fixture::{TOKEN, fleet, tree};

/// A policy as a person keeps it: comments everywhere, the rules not yet written.
const COMMENTED: &str = "\
# Who may read which secrets.
groups:
  # The people who hold the keys.
  admins: [demo]   # more to come
rules: []          # none yet

# The demo's private test keys.
allow_private_keys:
  - \"tests/fixtures/**\"
";

/// A new age identity made by age-keygen: its file and its recipient.
fn age_identity(env: &TestEnv, name: &str) -> (PathBuf, String) {
    let path = env.root.join(format!("{name}.age-identity"));
    let mut cmd = Command::new(peer("age-keygen"));
    cmd.arg("-o").arg(&path);
    env.apply(&mut cmd);
    let out = run(cmd, b"").success();
    let recipient = out
        .stderr
        .trim()
        .strip_prefix("Public key: ")
        .unwrap()
        .to_string();
    (path, recipient)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn rule_add_makes_the_first_example_work_and_keeps_every_comment() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let policy = repo.join("policies/default.yaml");
    std::fs::write(&policy, COMMENTED).unwrap();
    // No rule yet: nothing to encrypt with.
    env.keys_stdin(&["encrypt", "bot/telegram-token"], TOKEN)
        .failure(3);
    let added = env
        .keys(&[
            "rule",
            "add",
            "bot/*",
            "--format",
            "age",
            "--readers",
            "admins,host:vps-arm",
        ])
        .success();
    assert_eq!(
        added.stdout,
        "updated   policies/default.yaml (rule \"bot/*\" at line 6)\n"
    );
    assert_eq!(
        read(&policy),
        COMMENTED.replace(
            "rules: []          # none yet\n",
            "rules:           # none yet\n  - secrets: \"bot/*\"\n    format: age\n    readers: [admins, host:vps-arm]\n"
        )
    );
    env.keys_stdin(&["encrypt", "bot/telegram-token"], TOKEN)
        .success();
    // The next rule goes after it; every byte before and after stays.
    let before = read(&policy);
    env.keys(&[
        "rule",
        "add",
        "{host}/*",
        "--format",
        "sops-yaml",
        "--readers",
        "admins, host:{host}",
    ])
    .success();
    let text = read(&policy);
    let (head, tail) = before.split_at(before.find("\n\n# The demo's").unwrap() + 1);
    assert_eq!(
        text,
        format!(
            "{head}  - secrets: \"{{host}}/*\"\n    format: sops-yaml\n    readers: [admins, \"host:{{host}}\"]\n{tail}"
        )
    );
    let ls = env.keys(&["rule", "ls"]).success();
    assert_eq!(
        ls.stdout,
        "RULE                     SECRETS   FORMAT     READERS\n\
         policies/default.yaml:6  bot/*     age        admins, host:vps-arm\n\
         policies/default.yaml:9  {host}/*  sops-yaml  admins, host:{host}\n"
    );
    env.keys_stdin(&["encrypt", "vps-x86/db"], b"password: x\n")
        .success();
    env.keys(&["check"]).success();
    // A file of its own, made for it; the rule is told of when an earlier one
    // decides what it matches.
    let r = env
        .keys(&[
            "rule",
            "add",
            "bot/special",
            "--format",
            "age",
            "--readers",
            "admins",
            "--file",
            "zz-more",
        ])
        .success();
    assert!(
        r.stdout
            .starts_with("created   policies/zz-more.yaml (rule \"bot/special\" at line 2)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains(
            "keys: warning: the earlier rule \"bot/*\" (policies/default.yaml:6) also matches bot/special"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        read(&repo.join("policies/zz-more.yaml")),
        "rules:\n  - secrets: \"bot/special\"\n    format: age\n    readers: [admins]\n"
    );
    // Long globs and reader lists are cut to fit 80 columns.
    env.keys(&[
        "rule",
        "add",
        "services/a-rather-long-directory-name/**/credentials-*",
        "--format",
        "age",
        "--readers",
        "admins,demo,host:vps-arm,host:vps-x86,container:nannuo-bot",
        "--file",
        "zz-more",
    ])
    .success();
    let ls = env.keys(&["rule", "ls"]).success();
    for line in ls.stdout.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    let last = ls.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("policies/zz-more.yaml:5  services/"),
        "{last}"
    );
    assert!(
        last.ends_with('…') && last.contains("admins, demo, host"),
        "{last}"
    );
    let json = env.keys(&["rule", "ls", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    let rules = &doc["rules"];
    assert_eq!(rules.as_array().unwrap().len(), 4);
    assert_eq!(
        rules[3]["readers"],
        serde_json::json!([
            "admins",
            "demo",
            "host:vps-arm",
            "host:vps-x86",
            "container:nannuo-bot"
        ])
    );
    assert_eq!(rules[1]["secrets"], "{host}/*");
    assert_eq!(rules[1]["line"], 9);
}

#[test]
fn rule_add_refuses_what_the_policy_would_and_writes_nothing() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    std::fs::write(repo.join("policies/default.yaml"), COMMENTED).unwrap();
    let before = tree(&repo);
    for (args, says) in [
        (
            vec!["x/*", "--format", "age", "--readers", "admins,bob"],
            "keys: error: policies/default.yaml: rule \"x/*\": unknown reader \"bob\": not a group, an admin (recipients/admins/bob.pub), host:NAME, container:NAME or user:NAME@HOST; nothing was written",
        ),
        (
            vec!["x/*", "--format", "age", "--readers", "host:nope"],
            "keys: error: policies/default.yaml: rule \"x/*\": unknown reader \"host:nope\": no recipients/hosts/nope.yaml; nothing was written",
        ),
        (
            vec!["x/[", "--format", "age", "--readers", "admins"],
            "keys: error: policies/default.yaml: rule \"x/[\": bad glob: unclosed character class; missing ']'; nothing was written",
        ),
        (
            vec!["x/*", "--format", "sops-toml", "--readers", "admins"],
            "keys: error: policies/default.yaml: rule \"x/*\": unknown format \"sops-toml\"; expected one of age, sops-yaml, sops-json, sops-dotenv, sops-ini, sops-binary; nothing was written",
        ),
        (
            vec!["x/*", "--format", "age", "--readers", "admins,host:{host}"],
            "keys: error: policies/default.yaml: rule \"x/*\": reader \"host:{host}\" names {host}, and the glob \"x/*\" does not bind it: begin the glob with \"{host}/\"; nothing was written",
        ),
        (
            vec!["x/{host}", "--format", "age", "--readers", "admins"],
            "keys: error: policies/default.yaml: rule \"x/{host}\": {host} stands only for the first segment of a name, once: write \"{host}/…\"; nothing was written",
        ),
        (
            vec![
                "x",
                "--format",
                "age",
                "--readers",
                "admins",
                "--file",
                "../x",
            ],
            "keys: error: --file: invalid name \"../x\"",
        ),
    ] {
        let mut all = vec!["rule", "add"];
        all.extend(args);
        let r = env.keys(&all).failure(3);
        let first = r.stderr.lines().next().unwrap();
        assert!(first.starts_with(says), "{all:?}: {}", r.stderr);
        assert_eq!(
            r.stderr.lines().count(),
            2,
            "one line and a hint: {}",
            r.stderr
        );
        assert_eq!(tree(&repo), before, "{all:?} changed a file");
    }
    // A rules list keys does not edit as text is named, not rewritten.
    std::fs::write(
        repo.join("policies/default.yaml"),
        "rules: [{secrets: \"**\", format: age, readers: [admins]}]\n",
    )
    .unwrap();
    let before = tree(&repo);
    let r = env
        .keys(&["rule", "add", "x", "--format", "age", "--readers", "admins"])
        .failure(3);
    assert!(
        r.stderr
            .starts_with("keys: error: policies/default.yaml: its `rules:` is written as"),
        "{}",
        r.stderr
    );
    assert_eq!(tree(&repo), before);
}

#[test]
fn admin_add_and_rm_keep_the_admins_group_and_its_comments() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let policy = repo.join("policies/default.yaml");
    let commented = COMMENTED.replace(
        "rules: []          # none yet\n",
        "rules:\n  - secrets: \"bot/*\"\n    format: age\n    readers: [admins]\n",
    );
    std::fs::write(&policy, &commented).unwrap();
    env.keys_stdin(&["encrypt", "bot/token"], TOKEN).success();
    let (alice, alice_age) = age_identity(&env, "alice");
    let added = env
        .keys(&["admin", "add", "alice", "--key", &alice_age])
        .success();
    assert_eq!(
        added.stdout,
        format!(
            "created   recipients/admins/alice.pub\nupdated   policies/default.yaml (added to group admins)\nage       {alice_age}\n"
        )
    );
    assert!(
        added
            .stderr
            .contains("1 secret the admins read is not encrypted to alice yet: run `keys rekey`"),
        "{}",
        added.stderr
    );
    assert_eq!(
        read(&policy),
        commented.replace("admins: [demo]   #", "admins: [demo, alice]   #")
    );
    // From a private key, only the public half is recorded.
    let (_, bob_age) = age_identity(&env, "bob");
    env.keys(&[
        "admin",
        "add",
        "bob",
        "--key",
        env.root.join("bob.age-identity").to_str().unwrap(),
    ])
    .success();
    let bob_file = read(&repo.join("recipients/admins/bob.pub"));
    assert_eq!(bob_file, format!("# admin bob\n{bob_age}\n"));
    // The next rekey encrypts to them: the real age opens it with alice's key.
    env.keys(&["rekey"]).success();
    let mut age = Command::new(peer("age"));
    age.arg("-d")
        .arg("-i")
        .arg(&alice)
        .arg(repo.join("secrets/bot/token.age"));
    env.apply(&mut age);
    assert_eq!(run(age, b"").success().raw_stdout, TOKEN);
    env.keys(&["check"]).success();

    // Refusals change nothing: an admin a rule names, one that does not exist, a
    // name taken.
    std::fs::write(
        &policy,
        read(&policy).replace("readers: [admins]", "readers: [admins, bob]"),
    )
    .unwrap();
    let before = tree(&repo);
    let r = env.keys(&["admin", "rm", "bob"]).failure(3);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "keys: error: policies/default.yaml:6: rule \"bot/*\" names admin bob: remove it from the rule's readers before removing the admin"
    );
    let r = env.keys(&["admin", "rm", "carol"]).failure(3);
    assert!(r.stderr.contains("no admin named carol"), "{}", r.stderr);
    env.keys(&["admin", "add", "alice", "--key", &alice_age])
        .failure(5);
    assert_eq!(tree(&repo), before);
    std::fs::write(
        &policy,
        read(&policy).replace("readers: [admins, bob]", "readers: [admins]"),
    )
    .unwrap();

    // Removed: its file and its place in the group go; the secrets it could read
    // are still encrypted to it until the rekey.
    let r = env.keys(&["admin", "rm", "alice"]).success();
    assert_eq!(
        r.stdout,
        "removed   recipients/admins/alice.pub\nupdated   policies/default.yaml (taken out of group admins)\n"
    );
    assert!(
        r.stderr.contains(
            "keys: warning: 1 secret is still encrypted to alice: run `keys rekey`, and change what alice could read (git keeps the old files)"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        read(&policy),
        commented.replace("admins: [demo]   #", "admins: [demo, bob]   #")
    );
    env.keys(&["admin", "rm", "bob"]).success();
    assert_eq!(read(&policy), commented, "byte for byte as it was");
    // The last admin stays.
    let before = tree(&repo);
    let r = env.keys(&["admin", "rm", "demo"]).failure(3);
    assert_eq!(
        r.stderr,
        "keys: error: demo is the only admin: without one, no one could decrypt the secrets\n  hint: add another admin first (`keys admin add NAME --key FILE`, then `keys rekey`), then remove this one\n"
    );
    assert_eq!(tree(&repo), before);
}

#[test]
fn admin_add_without_an_admins_group_makes_one_of_every_admin() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let policy = repo.join("policies/default.yaml");
    let text =
        "# Rules only.\nrules:\n  - secrets: \"**\"\n    format: age\n    readers: [admins]\n";
    std::fs::write(&policy, text).unwrap();
    env.keys_stdin(&["encrypt", "a"], TOKEN).success();
    let (_, carol) = age_identity(&env, "carol");
    env.keys(&["admin", "add", "carol", "--key", &carol])
        .success();
    assert_eq!(
        read(&policy),
        "# Rules only.\ngroups:\n  admins: [demo, carol]\nrules:\n  - secrets: \"**\"\n    format: age\n    readers: [admins]\n"
    );
    // An unknown group member the loader refuses is refused here too.
    let before = tree(&repo);
    let r = env
        .keys(&["admin", "add", "admins", "--key", &carol])
        .failure(3);
    assert!(
        r.stderr.starts_with(
            "keys: error: policies/default.yaml:3: with admin admins: group admins has the name of an admin"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(tree(&repo), before);
}
