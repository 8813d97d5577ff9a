//! Fleets the tests build: the demo's admin and hosts with a test policy, the same
//! with sops rules, and what proves a failed command changed nothing (every file's
//! bytes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, peer, private_copy, run};

pub const POLICY: &str = "\
groups:
  admins: [demo]
rules:
  - secrets: \"bot/*\"
    format: age
    readers: [admins, host:vps-arm]
  - secrets: \"armored/*\"
    format: age
    armor: true
    readers: [admins]
  - secrets: \"**\"
    format: age
    readers: [admins, container:nannuo-bot]
";

/// A fleet repository in `env.work` with the demo's admin and hosts and `POLICY`.
pub fn fleet(env: &mut TestEnv) -> PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "recipients/admins/demo.pub",
        "recipients/hosts/vps-arm.yaml",
        "recipients/hosts/vps-x86.yaml",
    ] {
        env.write(
            &format!("work/{rel}"),
            std::fs::read(top.join(rel)).unwrap(),
        );
    }
    env.write("work/policies/default.yaml", POLICY);
    let id = private_copy(
        env,
        &top.join("tests/fixtures/demo-admin.age-identity"),
        "demo.txt",
    );
    env.set("KEYS_IDENTITY", id.display().to_string());
    env.work.clone()
}

pub fn host_key(env: &TestEnv, host: &str) -> PathBuf {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    private_copy(
        env,
        &top.join(format!("tests/fixtures/hosts/{host}.ssh_host_ed25519_key")),
        host,
    )
}

/// Every file under `dir` with its bytes, to prove a failed command changed nothing
/// (the writer lock, which holds the last writer's pid, aside).
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(walkdir::DirEntry::into_path)
        .filter(|p| !p.ends_with(".keys-writer"))
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_default();
            (p, data)
        })
        .collect()
}

pub const TOKEN: &[u8] = b"123456789:AAE-canary-telegram-token\n";

pub fn run_ok(cmd: Command, stdin: &[u8]) {
    run(cmd, stdin).success();
}

/// Runs `keys ARGS` on a pseudo-terminal (util-linux `script`), typing each line of
/// `typed` after a pause so that it arrives at the prompt, not before it.
pub fn on_terminal(env: &TestEnv, args: &str, typed: &[&str]) -> Run {
    let mut feed = String::new();
    for line in typed {
        feed.push_str(&format!("sleep 1; printf '%s\\n' '{line}'; "));
    }
    let script = format!(
        "({feed}sleep 1) | script -qec '{} {args}' /dev/null",
        crate::common::keys_bin()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    env.apply(&mut cmd);
    run(cmd, b"")
}

pub fn sops(env: &TestEnv, args: &[&str], key_file: &Path) -> Run {
    let mut cmd = Command::new(peer("sops"));
    cmd.arg("--disable-version-check").args(args);
    env.apply(&mut cmd);
    cmd.env("SOPS_AGE_KEY_FILE", key_file);
    run(cmd, b"")
}

/// What `sops encrypt` writes for `plaintext` (a file named `name`) to the demo
/// admin's age key.
pub fn sops_encrypted(env: &TestEnv, repo: &Path, name: &str, plaintext: &[u8]) -> PathBuf {
    let admin = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let age = admin
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap()
        .trim();
    let input = env.write(&format!("sops-in/{name}"), plaintext);
    let args = ["encrypt", "--age", age, input.to_str().unwrap()];
    let out = sops(env, &args, &env.root.join("keys/demo.txt")).success();
    env.write(&format!("sops-out/{name}"), &out.raw_stdout)
}

pub const SOPS_POLICY: &str = "
  - secrets: \"yaml/*\"
    format: sops-yaml
    readers: [admins, container:nannuo-bot]
  - secrets: \"json/*\"
    format: sops-json
    readers: [admins]
  - secrets: \"env/*\"
    format: sops-dotenv
    readers: [admins]
  - secrets: \"ini/*\"
    format: sops-ini
    readers: [admins]
  - secrets: \"bin/*\"
    format: sops-binary
    readers: [admins]
  - secrets: \"suffix/*\"
    format: sops-json
    encrypted_suffix: _secret
    readers: [admins]
  - secrets: \"clear/*\"
    format: sops-yaml
    unencrypted_suffix: _unencrypted
    readers: [admins, host:vps-x86]
  - secrets: \"regex/*\"
    format: sops-yaml
    encrypted_regex: \"^(password|token)$\"
    mac_only_encrypted: true
    readers: [admins]
";

pub fn sops_fleet(env: &mut TestEnv) -> PathBuf {
    let repo = fleet(env);
    let policy = crate::fixture::POLICY.replace("rules:\n", &format!("rules:{SOPS_POLICY}"));
    env.write("work/policies/default.yaml", policy);
    repo
}
