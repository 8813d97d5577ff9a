//! Whole-process figures for `keys rekey` over generated repositories of 1,000 and
//! 5,000 secrets (~200 bytes each, readers 3 admins + 1 of 20 hosts), `.age` and sops
//! YAML: (a) one host rotated, (b) one admin rotated (every file changes). Beside
//! them, the way users rekey today, timed on a sample and scaled: a loop of
//! `age -d | age -r …` per file (what `agenix -r` does, minus its nix evaluation)
//! and `sops updatekeys -y` per file. Run with `cargo bench --bench rekey`, with age
//! and sops on PATH (e.g. target/peers/venv/bin).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{ms, which};
use keys::format::Format;

/// How many files the per-file loops are timed on before scaling.
const SAMPLE: usize = 200;

fn main() {
    for format in [Format::Age, Format::SopsYaml] {
        for n in [1_000, 5_000] {
            let dir = tempfile::tempdir().unwrap();
            let ids = tempfile::tempdir().unwrap();
            let id = common::generate(dir.path(), ids.path(), n, format);
            let root = dir.path();
            let label = format!("{} x {n:>5}", format.name());

            // (a) one host of 20 gets a new key.
            set_host_key(root, "h07", "rotated host 07");
            let t = Instant::now();
            rekey(root, &id[0], &["--host", "h07"]);
            println!("{label}: one host rotated      {:>8.1} ms", ms(t.elapsed()));

            // (b) one admin gets a new key: every file changes.
            let new_admin = age::x25519::Identity::generate();
            std::fs::write(
                root.join("recipients/admins/a2.pub"),
                format!("{}\n", new_admin.to_public()),
            )
            .unwrap();
            let t = Instant::now();
            rekey(root, &id[0], &[]);
            println!("{label}: one admin rotated     {:>8.1} ms", ms(t.elapsed()));

            if n == 1_000 {
                compare_loops(root, &id[0], format, n);
            }
        }
    }
}

fn rekey(root: &Path, identity: &Path, extra: &[&str]) {
    let args: Vec<&str> = std::iter::once("rekey")
        .chain(extra.iter().copied())
        .collect();
    let out = common::keys(root, &args, identity);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_host_key(root: &Path, host: &str, seed_text: &str) {
    use sha2::Digest;
    let seed: [u8; 32] = sha2::Sha256::digest(seed_text).into();
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let public = ssh_key::PublicKey::new(ssh_key::public::KeyData::Ed25519(pair.public), "")
        .to_openssh()
        .unwrap();
    std::fs::write(
        root.join(format!("recipients/hosts/{host}.yaml")),
        format!("ssh_key: {public}\n"),
    )
    .unwrap();
}

/// The per-file loops users run today, on SAMPLE files, scaled to every file.
fn compare_loops(root: &Path, identity: &Path, format: Format, n: usize) {
    let files: Vec<_> = walk(&root.join("secrets"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == format.extension()))
        .take(SAMPLE)
        .collect();
    let recipients: Vec<String> = (0..3)
        .map(|a| {
            std::fs::read_to_string(root.join(format!("recipients/admins/a{a}.pub")))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let t = Instant::now();
    match format {
        Format::Age => {
            let Some(age) = which("age") else {
                println!("age not on PATH: no loop figure");
                return;
            };
            for f in &files {
                let plain = Command::new(&age)
                    .arg("-d")
                    .arg("-i")
                    .arg(identity)
                    .arg(f)
                    .output()
                    .unwrap();
                assert!(plain.status.success());
                let mut enc = Command::new(&age);
                for r in &recipients {
                    enc.arg("-r").arg(r);
                }
                let mut child = enc.arg("-o").arg(f).stdin(Stdio::piped()).spawn().unwrap();
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(&plain.stdout)
                    .unwrap();
                assert!(child.wait().unwrap().success());
            }
            let per = t.elapsed().as_secs_f64() / files.len() as f64;
            println!(
                "age -d | age -r loop: {:.1} ms per file, {:.1} s for {n} (measured on {})",
                per * 1000.0,
                per * n as f64,
                files.len()
            );
        }
        _ => {
            let Some(sops) = which("sops") else {
                println!("sops not on PATH: no loop figure");
                return;
            };
            let config = root.join(".sops.yaml");
            std::fs::write(
                &config,
                format!("creation_rules:\n  - age: {}\n", recipients.join(",")),
            )
            .unwrap();
            for f in &files {
                let st = Command::new(&sops)
                    .args(["--disable-version-check", "updatekeys", "-y"])
                    .arg(f)
                    .current_dir(root)
                    .env("SOPS_AGE_KEY_FILE", identity)
                    .env("HOME", root)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success());
            }
            let per = t.elapsed().as_secs_f64() / files.len() as f64;
            println!(
                "sops updatekeys loop: {:.1} ms per file, {:.1} s for {n} (measured on {})",
                per * 1000.0,
                per * n as f64,
                files.len()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
