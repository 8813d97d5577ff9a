//! `keys hook install --diff`: git's diff driver shows secrets decrypted in `git
//! diff` and `git log -p`, and a line saying so for a file that does not decrypt
//! here; `keys hook uninstall` takes it away.

use crate::common::TestEnv;
use crate::fixture::{host_key, sops_fleet};
use crate::hook::git;

fn stdout_of(env: &TestEnv, args: &[&str]) -> String {
    let r = git(env, args, b"");
    assert_eq!(r.code, 0, "git {args:?}: {}", r.stderr);
    r.stdout
}

#[test]
fn git_diff_and_log_show_secrets_decrypted_through_the_driver() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    env.keys_stdin(
        &["encrypt", "yaml/app"],
        b"db:\n    user: app\n    password: old-pass\n",
    )
    .success();
    env.keys_stdin(&["encrypt", "bot/token"], b"old-token\n")
        .success();
    std::fs::write(repo.join(".gitattributes"), "*.png binary\n").unwrap();
    let r = env.keys(&["hook", "install", "--diff"]).success();
    assert!(
        r.stdout
            .contains("registered keys as git's diff driver for secrets (diff.keys.textconv)"),
        "{}",
        r.stdout
    );
    let attributes = std::fs::read_to_string(repo.join(".gitattributes")).unwrap();
    for line in [
        "*.png binary",
        "secrets/keys.lock merge=keys-lock",
        "secrets/**/*.age diff=keys",
        "secrets/**/*.yaml diff=keys",
        "secrets/**/*.json diff=keys",
        "secrets/**/*.env diff=keys",
        "secrets/**/*.ini diff=keys",
        "secrets/**/*.bin diff=keys",
    ] {
        assert!(
            attributes.lines().any(|l| l == line),
            "{line}:\n{attributes}"
        );
    }
    let config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    assert!(config.contains("[diff \"keys\"]"), "{config}");
    assert!(!config.contains("cachetextconv"), "{config}");
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "fleet"], b"").success();

    // Changed with keys: the diff shows the plaintext lines that changed.
    env.keys_stdin(&["set", "yaml/app", "db.password"], b"new-pass")
        .success();
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"new-token\n")
        .success();
    let diff = stdout_of(&env, &["diff", "--", "secrets"]);
    for line in [
        "-    password: old-pass",
        "+    password: new-pass",
        "     user: app",
        "-old-token",
        "+new-token",
    ] {
        assert!(diff.lines().any(|l| l == line), "{line}:\n{diff}");
    }
    assert!(!diff.contains("ENC[AES256_GCM"), "{diff}");
    git(&env, &["commit", "-qam", "rotate"], b"").success();
    let log = stdout_of(&env, &["log", "-p", "-1", "--", "secrets"]);
    assert!(log.contains("\n+    password: new-pass\n"), "{log}");
    assert!(log.contains("\n+new-token\n"), "{log}");
    // git kept no plaintext of its own: no textconv cache in its notes.
    assert_eq!(stdout_of(&env, &["for-each-ref", "refs/notes/"]), "");

    // Someone who cannot decrypt them sees one line for each side, and git goes on.
    let outsider = host_key(&env, "vps-x86");
    env.set("KEYS_IDENTITY", outsider.display().to_string());
    let log = stdout_of(&env, &["log", "-p", "-1", "--", "secrets/bot"]);
    let placeholders: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.starts_with("-[keys: not decrypted: no identity here opens it; sha256 ")
                || l.starts_with("+[keys: not decrypted: no identity here opens it; sha256 ")
        })
        .collect();
    assert_eq!(placeholders.len(), 2, "{log}");
    assert_ne!(placeholders[0][1..], placeholders[1][1..]);
    assert!(
        !log.contains("old-token") && !log.contains("new-token"),
        "{log}"
    );

    // Uninstalled: git shows the files as they are again.
    env.keys(&["hook", "uninstall", "--diff"]).success();
    let config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    assert!(!config.contains("[diff \"keys\"]"), "{config}");
    let attributes = std::fs::read_to_string(repo.join(".gitattributes")).unwrap();
    assert_eq!(
        attributes,
        "*.png binary\nsecrets/keys.lock merge=keys-lock\nkeys.nix merge=keys-export\nsecrets.nix merge=keys-export\n.sops.yaml merge=keys-export\n"
    );
    let log = stdout_of(&env, &["log", "-p", "-1", "--", "secrets/yaml"]);
    assert!(log.contains("ENC[AES256_GCM"), "{log}");
    assert!(!log.contains("new-pass"), "{log}");
}
