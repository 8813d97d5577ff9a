//! `keys container add`: a container shares its host's key or gets its own.

use crate::common::TestEnv;
use crate::fixture::fleet;
use crate::host::{check_clean, no_clear_private_key, public_of_secret, read, ssh_keys};

#[test]
fn container_add_shares_the_host_key_or_gets_its_own() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let file = repo.join("recipients/hosts/vps-arm.yaml");
    let original = read(&file);

    let run = env
        .keys(&["container", "add", "web-bot", "--host", "vps-arm"])
        .success();
    crate::assert_output!(env, "add_web_bot", run.stdout);
    assert_eq!(read(&file), format!("{original}  web-bot: {{}}\n"));
    let status = env.keys(&["status", "--long"]).success().stdout;
    assert!(
        status.contains("\n  web-bot\n    host         vps-arm (host key, read-only bind mount)\n"),
        "{status}"
    );
    check_clean(&env);

    let run = env
        .keys(&[
            "container",
            "add",
            "own-bot",
            "--host",
            "vps-x86",
            "--own-key",
        ])
        .success();
    env.snapshots_of_new_keys()
        .bind(|| insta::assert_snapshot!("add_own_bot", run.stdout));
    let x86 = read(&repo.join("recipients/hosts/vps-x86.yaml"));
    assert!(
        x86.starts_with("# Demo host (test key;"),
        "comments kept: {x86}"
    );
    let keys = ssh_keys(&x86);
    assert_eq!(keys.len(), 2, "{x86}");
    assert!(x86.ends_with(" root@own-bot\n"), "{x86}");
    assert_eq!(
        public_of_secret(
            &env,
            "hosts/vps-x86/containers/own-bot/ssh_host_ed25519_key"
        ),
        keys[1]
    );
    no_clear_private_key(&repo);
    let status = env.keys(&["status", "--long"]).success().stdout;
    assert!(
        status
            .contains("\n  own-bot\n    host         vps-x86 (own key)\n    ssh-ed25519  SHA256:"),
        "{status}"
    );
    let ls = env.keys(&["host", "ls"]).success().stdout;
    env.snapshots_of_new_keys()
        .bind(|| insta::assert_snapshot!("host_ls_with_own_bot", ls));
    check_clean(&env);

    // A policy can name the new containers; secrets for them encrypt.
    env.write(
        "work/policies/bots.yaml",
        "rules:\n  - secrets: \"own-bot/*\"\n    format: sops-yaml\n    readers: [admins, container:own-bot]\n",
    );
    env.keys_stdin(&["encrypt", "own-bot/config"], b"token: x\n")
        .success();
    check_clean(&env);
    let run = env
        .keys(&["host", "rm", "vps-x86", "--with-key"])
        .failure(3);
    crate::assert_output!(env, "rm_host_of_a_named_container", run.stderr);
}
