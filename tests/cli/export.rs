//! `keys export`: agenix rules, the sops configuration and the NixOS module are
//! deterministic, parse, and `keys check` reports a committed export gone stale.

use std::process::Command;

use crate::common::{TestEnv, peer, run};
use crate::deploy::{append, generated_fleet};
use crate::fixture::{POLICY, fleet};

#[test]
fn exports_are_deterministic_and_check_reports_them_stale() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"t").success();
    env.keys_stdin(&["encrypt", "armored/a"], b"a").success();
    env.keys(&["export", "agenix-rules"]).success();
    let nix = std::fs::read_to_string(repo.join("secrets.nix")).unwrap();
    // Each secret with its readers' keys, the armored one marked.
    crate::assert_output!(env, "secrets_nix", &nix);
    let arm = std::fs::read_to_string(repo.join("recipients/hosts/vps-arm.yaml")).unwrap();
    let host_key: String = arm
        .lines()
        .find_map(|l| l.strip_prefix("ssh_key: "))
        .unwrap()
        .split(' ')
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(nix.contains(&format!("    \"{host_key}\"\n")), "{nix}");
    env.keys(&["export", "sops-config"]).success();
    let sops = std::fs::read_to_string(repo.join(".sops.yaml")).unwrap();
    crate::assert_output!(env, "sops_yaml", sops);
    let again = env.keys(&["export", "agenix-rules", "-o", "-"]).success();
    assert_eq!(again.stdout, nix, "deterministic");
    env.keys(&["check"]).success();
    // A new reader makes the committed export stale.
    env.write(
        "work/policies/default.yaml",
        POLICY.replace(
            "[admins, host:vps-arm]",
            "[admins, host:vps-arm, host:vps-x86]",
        ),
    );
    let run = env.keys(&["check"]).failure(8);
    crate::assert_output!(env, "stale_secrets_nix", run.stdout);
}

#[test]
fn export_nix_declares_each_hosts_secrets_and_container_bind_mounts() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    env.write(
        "work/policies/0-imp.yaml",
        "rules:\n  - secrets: \"imp/config\"\n    format: sops-yaml\n    readers: [admins, host:imp]\n    owner: bot\n    mode: \"0440\"\n  - secrets: \"own/*\"\n    format: age\n    readers: [admins, container:own]\n  - secrets: \"shared/*\"\n    format: sops-json\n    readers: [admins, container:shared]\n",
    );
    env.keys_stdin(&["encrypt", "imp/config"], b"a: 1\n")
        .success();
    env.keys_stdin(&["encrypt", "own/token"], b"t").success();
    env.keys_stdin(&["encrypt", "shared/env"], b"{\"k\": \"v\"}")
        .success();
    env.keys(&["export", "nix"]).success();
    let text = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    // imp's sops-nix keys under /persistent and its secret's owner and mode, the own
    // container's bind-mounted key, the shared one's host key, plain's empty module.
    crate::assert_output!(env, "keys_nix", &text);
    // Deterministic, and parsed by the real Nix.
    env.keys(&["export", "nix"]).success();
    assert_eq!(
        std::fs::read_to_string(repo.join("keys.nix")).unwrap(),
        text
    );
    let mut parse = Command::new(peer("nix-instantiate"));
    parse.arg("--parse").arg(repo.join("keys.nix"));
    env.apply(&mut parse);
    run(parse, b"").success();
    env.keys(&["check"]).success();
    // A policy change makes the committed export stale.
    append(
        &repo.join("policies/0-imp.yaml"),
        "  - secrets: \"imp/extra\"\n    format: age\n    readers: [admins, host:imp]\n",
    );
    env.keys_stdin(&["encrypt", "imp/extra"], b"x").success();
    let r = env.keys(&["check"]).failure(8);
    crate::assert_output!(env, "stale_keys_nix", r.stdout);
}
