//! A rule that binds the first segment of a secret's name to a host (`{host}/*`
//! read by `host:{host}`) or a container: one rule for a fleet of bot VMs, each
//! added with `keys host add` and given its secrets with `keys encrypt`, exported
//! per host for sops and agenix, and a removed host's secrets reported by `check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestEnv, peer, private_copy, run};
use crate::fixture::{TOKEN, host_key, tree};

/// The policy of seed 002: every bot VM reads the secrets under its own name.
const BOTS: &str = "\
# Who reads what.
groups:
  admins: [demo]
rules:
  # Each bot VM reads its own secrets: secrets/<bot>/telegram-token.age.
  - secrets: \"{host}/*\"
    format: age
    readers: [admins, host:{host}]
";

/// A repository with the demo admin, no host, and `policy`.
fn bot_fleet(env: &mut TestEnv, policy: &str) -> PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    env.write(
        "work/recipients/admins/demo.pub",
        std::fs::read(top.join("recipients/admins/demo.pub")).unwrap(),
    );
    std::fs::create_dir_all(env.work.join("recipients/hosts")).unwrap();
    env.write("work/policies/default.yaml", policy);
    let id = private_copy(
        env,
        &top.join("tests/fixtures/demo-admin.age-identity"),
        "demo.txt",
    );
    env.set("KEYS_IDENTITY", id.display().to_string());
    env.work.clone()
}

/// A new ed25519 host key pair made by ssh-keygen: the private key's path (its
/// public half beside it, `.pub`).
fn vm_key(env: &TestEnv, name: &str) -> PathBuf {
    let path = env.root.join("vms").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        &format!("root@{name}"),
    ])
    .arg("-f")
    .arg(&path);
    env.apply(&mut cmd);
    run(cmd, b"").success();
    path
}

fn pub_of(key: &Path) -> String {
    format!("{}.pub", key.display())
}

/// `age -d -i KEY FILE`: what the VM holding KEY reads.
fn age_decrypt(env: &TestEnv, key: &Path, file: &Path) -> crate::common::Run {
    let mut cmd = Command::new(peer("age"));
    cmd.arg("-d").arg("-i").arg(key).arg(file);
    env.apply(&mut cmd);
    run(cmd, b"")
}

#[test]
fn seed_002_a_new_bot_is_one_host_add_and_one_encrypt() {
    let mut env = TestEnv::new();
    let repo = bot_fleet(&mut env, BOTS);
    let (a, b) = (vm_key(&env, "bot-7f3a"), vm_key(&env, "bot-9c1e"));
    env.keys(&["host", "add", "bot-7f3a", "--key", &pub_of(&a)])
        .success();
    env.keys(&["host", "add", "bot-9c1e", "--key", &pub_of(&b)])
        .success();
    // No secret yet: the rule is warned of once, as written, not once per host.
    let check = env.keys(&["check"]).success();
    assert_eq!(
        check.stdout.matches("matches no secret").count(),
        1,
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("policies/default.yaml:6: rule \"{host}/*\" matches no secret"),
        "{}",
        check.stdout
    );
    env.keys_stdin(&["encrypt", "bot-7f3a/telegram-token"], TOKEN)
        .success();
    let file = repo.join("secrets/bot-7f3a/telegram-token.age");
    // The real age opens it with that bot's host key, and not with another bot's.
    assert_eq!(age_decrypt(&env, &a, &file).success().raw_stdout, TOKEN);
    let other = age_decrypt(&env, &b, &file);
    assert_ne!(other.code, 0, "bot-9c1e's key opened bot-7f3a's token");
    assert!(!other.stdout.contains("canary"));
    let ls = env.keys(&["ls"]).success();
    let row: Vec<&str> = ls
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "bot-7f3a/telegram-token",
            "age",
            "ok",
            "admins,",
            "host:bot-7f3a"
        ],
        "{}",
        ls.stdout
    );
    // The rule is used: no warning that it matches nothing (bot-9c1e has no secret).
    let check = env.keys(&["check"]).success();
    assert!(
        !check.stdout.contains("matches no secret"),
        "{}",
        check.stdout
    );

    // A name whose first segment is no host: refused before anything is written,
    // with the command that makes it work.
    let before = tree(&repo);
    let r = env
        .keys_stdin(&["encrypt", "bot-0000/telegram-token"], TOKEN)
        .failure(3);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "keys: error: no policy rule matches secret bot-0000/telegram-token: bot-0000 is not a host, and the rule \"{host}/*\" (policies/default.yaml:6) applies only to a host's name"
    );
    assert!(
        r.stderr
            .contains("hint: add the host first (`keys host add bot-0000 --key FILE`"),
        "{}",
        r.stderr
    );
    assert_eq!(tree(&repo), before);

    // The bot VM goes away: its host file goes, its secret stays, and check says so.
    let rm = env.keys(&["host", "rm", "bot-7f3a"]).success();
    assert!(
        rm.stdout.contains(
            "kept      secret bot-7f3a/telegram-token (its rule \"{host}/*\" no longer applies"
        ),
        "{}",
        rm.stdout
    );
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.contains(
            "secrets/bot-7f3a/telegram-token.age: bot-7f3a is not a host, so the rule \"{host}/*\" (policies/default.yaml:6) does not apply to it"
        ),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("add the host (`keys host add bot-7f3a --key FILE`), or remove the secret (`keys rm bot-7f3a/telegram-token`)"),
        "{}",
        check.stdout
    );
    // Rekey leaves it alone and says why.
    env.keys(&["rekey"]).success();

    // The VM comes back with a new key: rekey encrypts the token to it.
    let again = vm_key(&env, "bot-7f3a-new");
    env.keys(&["host", "add", "bot-7f3a", "--key", &pub_of(&again)])
        .success();
    let drift = env.keys(&["check"]).failure(8);
    assert!(drift.stdout.contains("drift"), "{}", drift.stdout);
    env.keys(&["rekey"]).success();
    env.keys(&["check"]).success();
    assert_eq!(age_decrypt(&env, &again, &file).success().raw_stdout, TOKEN);
    assert_ne!(
        age_decrypt(&env, &a, &file).code,
        0,
        "the old key still opens it"
    );

    // A renamed bot takes its secrets along.
    env.keys(&["host", "rename", "bot-7f3a", "bot-beef"])
        .success();
    assert!(!file.exists());
    let moved = repo.join("secrets/bot-beef/telegram-token.age");
    assert_eq!(
        age_decrypt(&env, &again, &moved).success().raw_stdout,
        TOKEN
    );
    env.keys(&["check"]).success();
}

#[test]
fn a_host_rule_is_exported_per_host_and_sops_encrypts_to_that_host() {
    let mut env = TestEnv::new();
    let repo = bot_fleet(
        &mut env,
        "groups:\n  admins: [demo]\nrules:\n  - secrets: \"{host}/config\"\n    format: sops-yaml\n    readers: [admins, \"host:{host}\"]\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [admins, host:{host}]\n",
    );
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for host in ["vps-arm", "vps-x86"] {
        env.write(
            &format!("work/recipients/hosts/{host}.yaml"),
            std::fs::read(top.join(format!("recipients/hosts/{host}.yaml"))).unwrap(),
        );
    }
    env.keys_stdin(&["encrypt", "vps-arm/token"], TOKEN)
        .success();
    env.keys(&["export", "sops-config"]).success();
    env.keys(&["export", "agenix-rules"]).success();
    let sops_yaml = std::fs::read_to_string(repo.join(".sops.yaml")).unwrap();
    let age_of = |host: &str| {
        let yaml =
            std::fs::read_to_string(repo.join(format!("recipients/hosts/{host}.yaml"))).unwrap();
        let key = yaml
            .lines()
            .find_map(|l| l.strip_prefix("ssh_key: "))
            .unwrap()
            .to_string();
        let file = env.write(&format!("{host}.pub"), key);
        env.keys(&["to-age", file.to_str().unwrap()])
            .success()
            .stdout
            .trim()
            .to_string()
    };
    let (arm, x86) = (age_of("vps-arm"), age_of("vps-x86"));
    let demo = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let demo = demo.lines().find(|l| l.starts_with("age1")).unwrap();
    // One creation rule per host, each with that host's derived key.
    assert!(
        sops_yaml.contains(&format!(
            "  - path_regex: '^secrets/vps\\-arm/config\\.yaml$'\n    age:\n      - '{demo}'\n      - '{arm}'\n"
        )),
        "{sops_yaml}"
    );
    assert!(sops_yaml.contains("path_regex: '^secrets/vps\\-x86/config\\.yaml$'"));
    assert!(!sops_yaml.contains("{host}"), "{sops_yaml}");

    // The real sops, given only the exported .sops.yaml, encrypts to the admins
    // and that host alone.
    env.write("work/secrets/vps-x86/config.yaml", "token: fresh\n");
    let mut cmd = Command::new(peer("sops"));
    cmd.args([
        "--disable-version-check",
        "encrypt",
        "-i",
        "secrets/vps-x86/config.yaml",
    ]);
    env.apply(&mut cmd);
    run(cmd, b"").success();
    let written = std::fs::read_to_string(repo.join("secrets/vps-x86/config.yaml")).unwrap();
    let recipients: Vec<&str> = written
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- recipient: "))
        .collect();
    let mut want = vec![demo, x86.as_str()];
    want.sort();
    let mut got = recipients.clone();
    got.sort();
    assert_eq!(got, want, "{written}");
    assert!(!written.contains(&arm));
    // keys agrees with what sops wrote, and the host's key opens it.
    env.keys(&["adopt", "vps-x86/config"]).success();
    env.keys(&["check"]).success();
    let x86_key = host_key(&env, "vps-x86");
    let arm_key = host_key(&env, "vps-arm");
    let opened = env
        .keys(&["decrypt", "-i", x86_key.to_str().unwrap(), "vps-x86/config"])
        .success();
    assert_eq!(opened.stdout, "token: fresh\n");
    env.keys(&["decrypt", "-i", arm_key.to_str().unwrap(), "vps-x86/config"])
        .failure(4);

    // agenix's secrets.nix names the file with its host's SSH key only.
    let nix = std::fs::read_to_string(repo.join("secrets.nix")).unwrap();
    let ssh = |host: &str| {
        let yaml =
            std::fs::read_to_string(repo.join(format!("recipients/hosts/{host}.yaml"))).unwrap();
        let key = yaml
            .lines()
            .find_map(|l| l.strip_prefix("ssh_key: "))
            .unwrap();
        key.split(' ').take(2).collect::<Vec<_>>().join(" ")
    };
    assert!(
        nix.contains(&format!(
            "  \"secrets/vps-arm/token.age\".publicKeys = [\n    \"{demo}\"\n    \"{}\"\n  ];\n",
            ssh("vps-arm")
        )),
        "{nix}"
    );
    assert!(!nix.contains(&ssh("vps-x86")), "{nix}");
    // keys.nix gives the secret to its host's module.
    env.keys(&["export", "nix"]).success();
    let modules = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    let arm_module = modules.split("  vps-x86 = ").next().unwrap();
    assert!(
        arm_module.contains("secrets/vps-arm/token.age"),
        "{modules}"
    );
    assert!(
        !modules
            .split("  vps-x86 = ")
            .nth(1)
            .unwrap()
            .contains("vps-arm/token")
    );
}

#[test]
fn a_placeholder_out_of_place_is_refused_naming_its_line() {
    let mut env = TestEnv::new();
    let repo = bot_fleet(
        &mut env,
        "rules:\n  - secrets: \"bots/*\"\n    format: age\n    readers:\n      - admins\n      - host:{host}\n",
    );
    let before = tree(&repo);
    let r = env.keys(&["ls"]).failure(3);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "keys: error: policies/default.yaml:6: reader \"host:{host}\" names {host}, and the glob \"bots/*\" does not bind it: begin the glob with \"{host}/\""
    );
    env.write(
        "work/policies/default.yaml",
        "rules:\n  - secrets: \"bots/{host}/*\"\n    format: age\n    readers: [admins, host:{host}]\n",
    );
    let r = env.keys(&["ls"]).failure(3);
    assert!(
        r.stderr.starts_with(
            "keys: error: policies/default.yaml:2: {host} stands only for the first segment of a name, once"
        ),
        "{}",
        r.stderr
    );
    let _ = before;
}
