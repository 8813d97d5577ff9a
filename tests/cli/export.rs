//! `keys export`: agenix rules, the sops configuration and the NixOS module are
//! deterministic, parse, and `keys check` reports a committed export gone stale.

use std::process::Command;

use crate::common::{Run, TestEnv, peer, run};
use crate::deploy::generated_fleet;
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
    // A policy edited by hand makes the committed export stale.
    let policy = repo.join("policies/0-imp.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replacen("[admins, host:imp]", "[admins, host:imp, host:plain]", 1),
    )
    .unwrap();
    let r = env.keys(&["check"]).failure(8);
    crate::assert_output!(env, "stale_keys_nix", r.stdout);
    // The rekey the new reader needs brings every export along.
    let run = env.keys(&["rekey"]).success();
    assert!(
        run.stderr.contains("keys: updated keys.nix to match"),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    assert!(
        text.contains("  plain = { ... }: {\n    sops.age"),
        "{text}"
    );
    env.keys(&["check"]).success();
}

/// Each command that changes what an export says rewrites the exports that exist in
/// the same run: a new secret, a removed one, a new host, a container, a rotation, a
/// rekey after a policy edit. A repository without exports gets none.
#[test]
fn exports_follow_every_change_that_alters_them() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"t").success();
    assert!(!repo.join("keys.nix").exists());
    for what in ["nix", "agenix-rules", "sops-config"] {
        env.keys(&["export", what]).success();
    }
    let steps: [(&[&str], &[u8]); 6] = [
        (&["encrypt", "misc/new"], b"n"),
        (&["rm", "misc/new"], b""),
        (
            &[
                "host",
                "add",
                "extra",
                "--generate",
                "--address",
                "192.0.2.9",
            ],
            b"",
        ),
        (&["container", "add", "c1", "--host", "extra"], b""),
        (&["host", "rotate", "vps-arm", "--generate"], b""),
        (&["host", "rm", "extra"], b""),
    ];
    let exports = || -> Vec<String> {
        ["keys.nix", "secrets.nix", ".sops.yaml"]
            .iter()
            .map(|f| std::fs::read_to_string(repo.join(f)).unwrap())
            .collect()
    };
    for (args, stdin) in steps {
        let before = exports();
        let run = env.keys_stdin(args, stdin).success();
        env.keys(&["check"]).success();
        assert_ne!(before, exports(), "{args:?} left every export as it was");
        assert!(
            run.stderr.contains("keys: updated "),
            "{args:?}: {}",
            run.stderr
        );
    }
    // A policy edited by hand, then a rekey: .sops.yaml and secrets.nix follow too.
    env.write(
        "work/policies/default.yaml",
        POLICY.replace(
            "[admins, host:vps-arm]",
            "[admins, host:vps-arm, host:vps-x86]",
        ),
    );
    env.keys(&["check"]).failure(8);
    let run = env.keys(&["rekey"]).success();
    assert!(run.stderr.contains("secrets.nix"), "{}", run.stderr);
    env.keys(&["check"]).success();
    // A hand-written file of the same name is left alone.
    env.write("work/secrets.nix", "# mine\n{ }\n");
    env.keys_stdin(&["encrypt", "misc/other"], b"o").success();
    assert_eq!(
        std::fs::read_to_string(repo.join("secrets.nix")).unwrap(),
        "# mine\n{ }\n"
    );
}

/// `keys.nix` of one host evaluated by the real Nix with `lib.evalModules`, the real
/// agenix and sops-nix modules and stand-ins for the nixpkgs options they touch
/// (`tests/nix/eval-keys-nix.nix`): what the host and its containers decrypt.
fn evaluate(env: &TestEnv, repo: &std::path::Path, host: &str, modules: bool) -> Run {
    let mut nix = Command::new(peer("nix-instantiate"));
    nix.args(["--eval", "--strict", "--json", "--store", "dummy://"])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nix/eval-keys-nix.nix"))
        .args(["--arg", "nixDir"])
        .arg(crate::common::nix_sources())
        .args(["--arg", "keysNix"])
        .arg(repo.join("keys.nix"))
        .args(["--argstr", "host", host])
        .args([
            "--arg",
            "containerModules",
            if modules { "true" } else { "false" },
        ]);
    env.apply(&mut nix);
    run(nix, b"")
}

pub(crate) fn evaluated(
    env: &TestEnv,
    repo: &std::path::Path,
    host: &str,
    modules: bool,
) -> serde_json::Value {
    let r = evaluate(env, repo, host, modules).success();
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn keys_nix_evaluates_with_the_real_agenix_and_sops_nix_modules() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    env.write(
        "work/policies/0-all.yaml",
        "rules:\n\
         \x20 - secrets: \"imp/age\"\n    format: age\n    readers: [admins, host:imp]\n    owner: bot\n    group: bots\n    mode: \"0440\"\n\
         \x20 - secrets: \"imp/yaml\"\n    format: sops-yaml\n    readers: [admins, host:imp]\n\
         \x20 - secrets: \"imp/json\"\n    format: sops-json\n    readers: [admins, host:imp]\n\
         \x20 - secrets: \"imp/env\"\n    format: sops-dotenv\n    readers: [admins, host:imp]\n\
         \x20 - secrets: \"imp/ini\"\n    format: sops-ini\n    readers: [admins, host:imp]\n\
         \x20 - secrets: \"imp/blob\"\n    format: sops-binary\n    readers: [admins, host:imp]\n    mode: \"0400\"\n\
         \x20 - secrets: \"own/*\"\n    format: age\n    readers: [admins, container:own]\n\
         \x20 - secrets: \"shared/*\"\n    format: sops-yaml\n    readers: [admins, container:shared]\n",
    );
    for (name, text) in [
        ("imp/age", &b"a"[..]),
        ("imp/yaml", b"a: 1\n"),
        ("imp/json", b"{\"a\": 1}"),
        ("imp/env", b"A=1\n"),
        ("imp/ini", b"[s]\na = 1\n"),
        ("imp/blob", b"\x00\x01"),
        ("own/token", b"t"),
        ("shared/config", b"k: v\n"),
        ("nannuo-bot/env", b"E=1\n"),
    ] {
        env.keys_stdin(&["encrypt", name], text).success();
    }
    env.keys(&["export", "nix"]).success();

    // imp: a persisted host key, its own age_key_file, every sops format.
    let imp = evaluated(&env, &repo, "imp", true);
    let secrets = repo.join("secrets");
    let s = |rel: &str| secrets.join(rel).display().to_string();
    assert_eq!(
        imp["age"]["identityPaths"],
        serde_json::json!(["/persistent/etc/ssh/ssh_host_ed25519_key"])
    );
    let age = &imp["age"]["secrets"]["imp/age"];
    assert_eq!(age["file"], s("imp/age.age"));
    assert_eq!(
        (&age["owner"], &age["group"], &age["mode"], &age["path"]),
        (
            &"bot".into(),
            &"bots".into(),
            &"0440".into(),
            &"/run/agenix/imp/age".into()
        )
    );
    assert_eq!(
        imp["sops"]["sshKeyPaths"],
        serde_json::json!(["/persistent/etc/ssh/ssh_host_ed25519_key"])
    );
    assert_eq!(
        imp["sops"]["keyFile"],
        "/persistent/var/lib/sops-nix/key.txt"
    );
    for (name, file, format) in [
        ("imp/yaml", "imp/yaml.yaml", "yaml"),
        ("imp/json", "imp/json.json", "json"),
        ("imp/env", "imp/env.env", "dotenv"),
        ("imp/ini", "imp/ini.ini", "ini"),
        ("imp/blob", "imp/blob.bin", "binary"),
    ] {
        let secret = &imp["sops"]["secrets"][name];
        assert_eq!(secret["sopsFile"], s(file), "{name}: {imp}");
        assert_eq!(secret["format"], format, "{name}");
        assert_eq!(secret["path"], format!("/run/secrets/{name}"), "{name}");
        // The whole file, not one key of it.
        let key = if format == "binary" { "imp/blob" } else { "" };
        assert_eq!(secret["key"], key, "{name}");
    }
    assert_eq!(imp["sops"]["secrets"]["imp/blob"]["mode"], "0400");
    assert_eq!(imp["assertions"], serde_json::json!([]), "{imp}");

    // Its containers: `own` bind-mounts its own key, `shared` the host's; each
    // decrypts with the mounted key through the modules it imports.
    let own = &imp["containers"]["own"];
    let shared = &imp["containers"]["shared"];
    let mount =
        |c: &serde_json::Value| c["bindMounts"]["/var/lib/keys/ssh_host_ed25519_key"].clone();
    assert_eq!(
        mount(own),
        serde_json::json!({
            "hostPath": "/persistent/etc/ssh/containers/own/ssh_host_ed25519_key",
            "isReadOnly": true,
            "mountPoint": "/var/lib/keys/ssh_host_ed25519_key",
        })
    );
    assert_eq!(
        mount(shared)["hostPath"],
        "/persistent/etc/ssh/ssh_host_ed25519_key"
    );
    assert_eq!(
        own["config"]["age"]["identityPaths"],
        serde_json::json!(["/var/lib/keys/ssh_host_ed25519_key"])
    );
    assert_eq!(
        own["config"]["age"]["secrets"]["own/token"]["file"],
        s("own/token.age")
    );
    assert_eq!(
        shared["config"]["sops"]["sshKeyPaths"],
        serde_json::json!(["/var/lib/keys/ssh_host_ed25519_key"])
    );
    assert_eq!(
        shared["config"]["sops"]["secrets"]["shared/config"]["sopsFile"],
        s("shared/config.yaml")
    );
    // A container's configuration is a system of its own: without the modules named
    // in keys.containerModules its age.* and sops.* options do not exist.
    let bare = evaluate(&env, &repo, "imp", false);
    assert_eq!(bare.code, 1, "{}", bare.stderr);
    assert!(
        bare.stderr.contains("The option `age' does not exist"),
        "{}",
        bare.stderr
    );

    // The demo fleet's hosts: vps-arm's container shares its persisted host key.
    let arm = evaluated(&env, &repo, "vps-arm", true);
    let bot = &arm["containers"]["nannuo-bot"];
    assert_eq!(
        mount(bot)["hostPath"],
        "/persistent/etc/ssh/ssh_host_ed25519_key"
    );
    assert_eq!(
        bot["config"]["age"]["secrets"]["nannuo-bot/env"]["file"],
        s("nannuo-bot/env.age")
    );
    // plain reads nothing, and evaluates to nothing.
    let plain = evaluated(&env, &repo, "plain", false);
    assert_eq!(plain["age"]["secrets"], serde_json::json!({}));
    assert_eq!(plain["sops"]["secrets"], serde_json::json!({}));
}

/// The demo fleet's own committed keys.nix evaluates as it is.
#[test]
fn the_demo_fleets_keys_nix_evaluates() {
    let env = TestEnv::new();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let arm = evaluated(&env, repo, "vps-arm", true);
    assert_eq!(
        arm["age"]["secrets"]["bot/telegram-token"]["path"],
        "/run/agenix/bot/telegram-token"
    );
    let bot = &arm["containers"]["nannuo-bot"]["config"];
    assert_eq!(
        bot["sops"]["secrets"]["nannuo-bot/config"]["format"],
        "yaml"
    );
    let x86 = evaluated(&env, repo, "vps-x86", false);
    assert_eq!(
        x86["age"]["identityPaths"],
        serde_json::json!(["/etc/ssh/ssh_host_ed25519_key"])
    );
}

/// On a host with a persist prefix, sshd's host keys are the persisted key alone, so a
/// missing impermanence line cannot make sshd generate a new key at boot (the key
/// every secret is encrypted to); a host without one keeps NixOS's default. Only the
/// containers that read a secret get a key mounted.
#[test]
fn keys_nix_keeps_sshd_on_the_persisted_key_and_mounts_keys_only_where_read() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    env.keys(&["container", "add", "test-container", "--host", "vps-arm"])
        .success();
    env.write(
        "work/policies/0-some.yaml",
        "rules:\n  - secrets: \"imp/*\"\n    format: age\n    readers: [admins, host:imp]\n  - secrets: \"own/*\"\n    format: age\n    readers: [admins, container:own]\n",
    );
    for name in ["imp/token", "own/token", "nannuo-bot/env"] {
        env.keys_stdin(&["encrypt", name], b"t").success();
    }
    env.keys(&["export", "nix"]).success();
    let persisted = serde_json::json!([
        { "path": "/persistent/etc/ssh/ssh_host_ed25519_key", "type": "ed25519" }
    ]);
    let containers = |c: &serde_json::Value| -> Vec<String> {
        c["containers"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };

    let imp = evaluated(&env, &repo, "imp", true);
    assert_eq!(imp["hostKeys"], persisted, "{imp}");
    // The key sshd presents is the one agenix decrypts with.
    assert_eq!(imp["age"]["identityPaths"][0], persisted[0]["path"]);
    assert_eq!(imp["assertions"], serde_json::json!([]), "{imp}");
    // `shared` reads nothing: no mount of the host's key into it.
    assert_eq!(containers(&imp), ["own"]);
    assert_eq!(
        imp["containers"]["own"]["config"]["hostKeys"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "a container's own sshd is left as NixOS has it"
    );

    let arm = evaluated(&env, &repo, "vps-arm", true);
    assert_eq!(arm["hostKeys"], persisted);
    assert_eq!(containers(&arm), ["nannuo-bot"]);
    let text = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    assert!(!text.contains("test-container"), "{text}");
    assert!(!text.contains("containers.shared"), "{text}");

    // No persist prefix: the host key is where NixOS keeps it, and so are sshd's.
    let plain = evaluated(&env, &repo, "plain", false);
    assert_eq!(
        plain["hostKeys"],
        serde_json::json!([
            { "bits": 4096, "path": "/etc/ssh/ssh_host_rsa_key", "type": "rsa" },
            { "path": "/etc/ssh/ssh_host_ed25519_key", "type": "ed25519" }
        ])
    );
}
