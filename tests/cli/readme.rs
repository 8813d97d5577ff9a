//! The README's getting-started, run exactly as printed: its `sh` blocks, in order, in
//! one shell, in an empty directory, with a fresh HOME and keys on PATH.

use std::path::Path;
use std::process::Command;

use crate::common::{keys_bin, peer, run};

/// The text of the `sh` code blocks of the README section `heading`, in order.
fn shell_blocks(readme: &str, heading: &str) -> String {
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading}"));
    let section = &readme[start + heading.len() + 2..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut script = String::new();
    let mut inside = false;
    for line in section.lines() {
        match (inside, line) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, line) => {
                script.push_str(line);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(!script.is_empty(), "{heading} has no sh block");
    script
}

#[test]
fn the_getting_started_works_as_printed() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let script = shell_blocks(&readme, "## Getting started");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    // The one thing the section asks of the reader: git knows their name and email.
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Alice\n\temail = alice@example.org\n[init]\n\tdefaultBranch = main\n",
    )
    .unwrap();
    let bin = Path::new(keys_bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("setsid");
    cmd.args(["-w", "bash", "-euo", "pipefail", "-c", &script])
        .current_dir(&work)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", &path)
        .env("KEYS_KEYRING", "none")
        .env("LANG", "C.UTF-8");
    let out = run(cmd, b"").success();
    let stdout = String::from_utf8_lossy(&out.raw_stdout).into_owned();
    assert!(
        stdout.contains("correct horse battery staple\n"),
        "{stdout}"
    );

    // What the section promises: one commit, its check passed, and web1's own key
    // (made before web1 exists) opens the secret with the real age.
    let fleet = work.join("fleet");
    let log = Command::new("git")
        .args(["log", "--oneline"])
        .current_dir(&fleet)
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 1);
    assert!(fleet.join("keys.nix").is_file());
    let mut key = Command::new(keys_bin());
    key.args(["decrypt", "hosts/web1/ssh_host_ed25519_key"])
        .current_dir(&fleet)
        .env("HOME", &home)
        .env("KEYS_KEYRING", "none");
    let host_key = run(key, b"").success().raw_stdout;
    let key_file = dir.path().join("web1-key");
    std::fs::write(&key_file, &host_key).unwrap();
    let mut age = Command::new(peer("age"));
    age.arg("-d")
        .arg("-i")
        .arg(&key_file)
        .arg(fleet.join("secrets/web1/db-password.age"));
    assert_eq!(
        run(age, b"").success().raw_stdout,
        b"correct horse battery staple\n"
    );
}
