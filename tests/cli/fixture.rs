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

/// The demo admin's age recipient (`age1…`), as its file in `repo` has it.
pub fn demo_age(repo: &Path) -> String {
    let admin = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let age = admin.lines().find(|l| l.starts_with("age1")).unwrap();
    age.trim().to_string()
}

/// What `sops encrypt` writes for `plaintext` (a file named `name`) to the demo
/// admin's age key.
pub fn sops_encrypted(env: &TestEnv, repo: &Path, name: &str, plaintext: &[u8]) -> PathBuf {
    let age = &demo_age(repo);
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

/// The hosts of [`large_fleet`]: `node-00.eu-central-1` and on.
pub fn large_host(h: usize) -> String {
    format!("node-{h:02}.eu-central-1")
}

/// A fleet at the size of a real one, written into `env.work` as keys writes it but
/// without running keys once per secret (the secrets of a rule share one ciphertext): 3 admins, `hosts` hosts (each with an
/// address; every fourth runs a container), and `secrets` age secrets spread over
/// them, encrypted to what the policy resolves to and listed in keys.lock. One
/// secret is then changed outside keys and one removed.
pub fn large_fleet(env: &TestEnv, hosts: usize, secrets: usize) -> PathBuf {
    use keys::format::lockfile::{self, Lockfile};
    use keys::format::{Format, secret_path};
    use rayon::prelude::*;

    let root = env.work.clone();
    for name in ["alice-operations", "bob", "carol"] {
        let id = age::x25519::Identity::generate();
        env.write(
            &format!("work/recipients/admins/{name}.pub"),
            format!("{}\n", id.to_public()),
        );
    }
    let mut policy = String::from("groups:\n  ops: [alice-operations, bob]\nrules:\n");
    for h in 0..hosts {
        use sha2::Digest;
        let seed: [u8; 32] = sha2::Sha256::digest(format!("large fleet host {h}")).into();
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
        let public = ssh_key::PublicKey::new(ssh_key::public::KeyData::Ed25519(pair.public), "")
            .to_openssh()
            .unwrap();
        let host = large_host(h);
        let mut file = format!(
            "ssh_key: {public}\naddress: 198.51.100.{}\nssh_port: 2222\nsystem: x86_64-linux\n",
            h + 1
        );
        if h.is_multiple_of(4) {
            file.push_str(&format!("containers:\n  app-{h:02}-worker: {{}}\n"));
            policy.push_str(&format!(
                "  - secrets: \"{host}/app/**\"\n    format: age\n    readers: [ops, container:app-{h:02}-worker]\n"
            ));
        }
        env.write(&format!("work/recipients/hosts/{host}.yaml"), file);
        policy.push_str(&format!(
            "  - secrets: \"{host}/**\"\n    format: age\n    readers: [admins, host:{host}]\n"
        ));
    }
    env.write("work/policies/fleet.yaml", &policy);
    let repo = keys::layout::Repo::at(root.clone());
    let files =
        keys::snapshot::Snapshot::from_work_tree(&repo, &["recipients", "policies"]).unwrap();
    let fleet = keys::policy::Fleet::from_snapshot(&files).unwrap();
    let policy = keys::policy::Policy::from_snapshot(&files, &fleet).unwrap();
    // One encryption per rule, copied to each of its secrets: keys reads only their
    // headers and hashes.
    let sealed: Vec<(Vec<u8>, Vec<String>)> = policy
        .rules
        .par_iter()
        .map(|rule| {
            let r = policy.resolve(rule, &fleet).unwrap();
            let at = keys::error::Location::named(&rule.glob);
            let data = keys::crypto::age::encrypt(
                b"secret\n",
                &r.recipients,
                keys::crypto::age::Armor::Binary,
                &at,
            )
            .unwrap();
            (data, r.fingerprints)
        })
        .collect();
    let entries: Vec<(String, lockfile::Entry)> = (0..secrets)
        .map(|i| {
            let host = large_host(i % hosts);
            let name = if i.is_multiple_of(8) && (i % hosts).is_multiple_of(4) {
                format!("{host}/app/worker-credentials-{i:04}")
            } else {
                format!("{host}/service-{i:04}/database-password")
            };
            let (rule, _) = policy.rule_for(&name).unwrap();
            let (data, recipients) = &sealed[rule];
            let path = root.join(secret_path(&name, Format::Age));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, data).unwrap();
            let entry = lockfile::Entry {
                format: Format::Age,
                sha256: lockfile::sha256_hex(data),
                recipients: recipients.clone(),
                changed: None,
                seen: Vec::new(),
            };
            (name, entry)
        })
        .collect();
    let lock = Lockfile {
        entries: entries.into_iter().collect(),
    };
    std::fs::write(root.join("secrets/keys.lock"), lock.render()).unwrap();
    // Changed outside keys: another encryption of the same plaintext.
    let (first, _) = lock.entries.iter().next().unwrap();
    let (_, rule) = policy.rule_for(first).unwrap();
    let r = policy.resolve(rule, &fleet).unwrap();
    let at = keys::error::Location::named(first);
    let again = keys::crypto::age::encrypt(
        b"edited\n",
        &r.recipients,
        keys::crypto::age::Armor::Binary,
        &at,
    )
    .unwrap();
    std::fs::write(root.join(secret_path(first, Format::Age)), again).unwrap();
    let (last, _) = lock.entries.iter().next_back().unwrap();
    std::fs::remove_file(root.join(secret_path(last, Format::Age))).unwrap();
    root
}
