//! A sops file's wrapped data keys are not under its MAC: anyone who can write the
//! file can add a wrapping, and a reader taken away kept theirs in the history. Both
//! attacks paste a wrapped key back into the metadata after keys has written a new
//! value; the real sops and keys must then open nothing.

use std::path::Path;

use crate::common::{Run, TestEnv};
use crate::fixture::{host_key, sops, sops_fleet};

/// The recipients a sops YAML file's top-level `age` list names.
fn recipients(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("        - recipient: "))
        .map(str::to_string)
        .collect()
}

/// The lines of `recipient`'s entry in a sops YAML file's `age` list.
fn entry_of(text: &str, recipient: &str) -> String {
    let start = text
        .find(&format!("        - recipient: {recipient}\n"))
        .unwrap();
    let rest = &text[start..];
    let len = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| {
            let line = &rest[i..];
            line.starts_with("        - ") || !line.starts_with("         ")
        })
        .unwrap();
    rest[..len].to_string()
}

/// `text` with `entry` first in its `age` list.
fn with_entry(text: &str, entry: &str) -> String {
    text.replacen("    age:\n", &format!("    age:\n{entry}"), 1)
}

fn to_age(env: &TestEnv, ssh_key: &Path, name: &str) -> std::path::PathBuf {
    let out = env
        .keys(&["to-age", "--private", &ssh_key.display().to_string()])
        .success();
    env.write(&format!("ids/{name}.age"), out.stdout)
}

fn decrypt_with(env: &TestEnv, file: &Path, identity: &Path) -> (Run, Run) {
    let path = file.display().to_string();
    let by_sops = sops(env, &["decrypt", &path], identity);
    let by_keys = env.keys(&["decrypt", "-i", &identity.display().to_string(), &path]);
    (by_sops, by_keys)
}

#[test]
fn a_host_rotated_away_opens_nothing_written_after() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "yaml/app"], b"db:\n    password: first\n")
        .success();
    let file = repo.join("secrets/yaml/app.yaml");
    let old_text = std::fs::read_to_string(&file).unwrap();
    let old_host = to_age(&env, &host_key(&env, "vps-arm"), "old-arm");

    // The host's key is stolen: it gets a new one, and the value a new version.
    let new_key = env.root.join("keys/arm-new");
    let mut cmd = std::process::Command::new(crate::common::peer("ssh-keygen"));
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&new_key);
    crate::common::run(cmd, b"").success();
    let public = new_key.with_extension("pub").display().to_string();
    env.keys(&["host", "rotate", "vps-arm", "--key", &public])
        .success();
    env.keys_stdin(&["set", "yaml/app", "db.password"], b"SECOND-after-theft\n")
        .success();
    let new_text = std::fs::read_to_string(&file).unwrap();
    let now = recipients(&new_text);
    let gone: Vec<String> = recipients(&old_text)
        .into_iter()
        .filter(|r| !now.contains(r))
        .collect();
    assert_eq!(gone.len(), 1, "{old_text}");

    // The thief pastes the old wrapping (from git history) back in.
    let pasted = with_entry(&new_text, &entry_of(&old_text, &gone[0]));
    std::fs::write(&file, &pasted).unwrap();
    assert_eq!(recipients(&pasted).len(), now.len() + 1);
    let (by_sops, by_keys) = decrypt_with(&env, &file, &old_host);
    assert_ne!(by_sops.code, 0, "{}", by_sops.stdout);
    assert!(!by_sops.stdout.contains("SECOND"));
    assert_ne!(by_keys.code, 0, "{}", by_keys.stdout);
    assert!(!by_keys.stdout.contains("SECOND") && !by_keys.stderr.contains("SECOND"));
}

#[test]
fn a_wrapping_slipped_into_the_metadata_opens_nothing_keys_writes() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "yaml/app"], b"token: first\n")
        .success();
    let file = repo.join("secrets/yaml/app.yaml");
    let readers = recipients(&std::fs::read_to_string(&file).unwrap());

    // Someone with write access to the repository writes the file with sops, for
    // the policy's readers and a key of their own, then takes their entry out of
    // the metadata and records the file in the lock: the file names exactly the
    // policy's readers, and `keys check` passes.
    let attacker = env.root.join("attacker.age");
    let mut cmd = std::process::Command::new(crate::common::peer("age-keygen"));
    cmd.arg("-o").arg(&attacker);
    crate::common::run(cmd, b"").success();
    let theirs = std::fs::read_to_string(&attacker).unwrap();
    let theirs = theirs
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    let mut all = readers.clone();
    all.push(theirs.clone());
    let input = env.write("work/attack.yaml", "token: attacker-chosen\n");
    let input = input.display().to_string();
    let out = sops(
        &env,
        &[
            "encrypt",
            "--filename-override",
            "secrets/yaml/app.yaml",
            "--age",
            &all.join(","),
            &input,
        ],
        &attacker,
    )
    .success();
    let mine = entry_of(&out.stdout, &theirs);
    let planted = out.stdout.replacen(&mine, "", 1);
    assert_eq!(recipients(&planted).len(), readers.len());
    std::fs::write(&file, &planted).unwrap();
    let lock = repo.join("secrets/keys.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let line = text.lines().find(|l| l.starts_with("yaml/app ")).unwrap();
    let old_sum = line.split(' ').nth(2).unwrap();
    let new_sum = keys::format::lockfile::sha256_hex(planted.as_bytes());
    std::fs::write(&lock, text.replace(old_sum, &new_sum)).unwrap();
    env.keys(&["check"]).success();

    // The admin writes a value; the attacker puts their entry back.
    env.keys_stdin(&["set", "yaml/app", "token"], b"REAL-after-plant\n")
        .success();
    let written = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, with_entry(&written, &mine)).unwrap();
    let (by_sops, by_keys) = decrypt_with(&env, &file, &attacker);
    assert_ne!(by_sops.code, 0, "{}", by_sops.stdout);
    assert!(!by_sops.stdout.contains("REAL"));
    assert_ne!(by_keys.code, 0, "{}", by_keys.stdout);
    assert!(!by_keys.stdout.contains("REAL") && !by_keys.stderr.contains("REAL"));
    // `rekey --all` makes the key anew too.
    std::fs::write(&file, &written).unwrap();
    env.keys(&["rekey", "--all"]).success();
    let rekeyed = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, with_entry(&rekeyed, &mine)).unwrap();
    let (by_sops, _) = decrypt_with(&env, &file, &attacker);
    assert_ne!(by_sops.code, 0, "{}", by_sops.stdout);
}
