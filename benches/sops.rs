//! Whole-process figures for sops files: `keys decrypt` and `keys encrypt` of a
//! 20-key sops YAML file, side by side with the real `sops` on the same file. Run
//! with `cargo bench --bench sops` (sops on PATH, e.g. target/peers/venv/bin); it
//! prints medians.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::{keys, median, ms, which};

fn main() {
    let dir = common::scratch();
    let ids = common::scratch();
    let root = dir.path();
    let id = age::x25519::Identity::generate();
    let id_file = ids.path().join("admin.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&id_file, format!("{}\n", id.to_string().expose_secret())).unwrap();
    }
    for d in [
        "recipients/admins",
        "recipients/hosts",
        "policies",
        "secrets",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("recipients/admins/a.pub"),
        format!("{}\n", id.to_public()),
    )
    .unwrap();
    std::fs::write(
        root.join("policies/p.yaml"),
        "rules:\n  - secrets: \"**\"\n    format: sops-yaml\n    readers: [admins]\n",
    )
    .unwrap();
    let plain = ids.path().join("plain.yaml");
    let doc: String = (0..20)
        .map(|i| format!("key_{i:02}: value-number-{i}-of-the-bench\n"))
        .collect();
    std::fs::write(&plain, doc).unwrap();
    let p = plain.to_str().unwrap();
    let out = keys(root, &["encrypt", "bench", "--from", p], &id_file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = root.join("secrets/bench.yaml");

    let kd = median(21, || ok(keys(root, &["decrypt", "bench"], &id_file)));
    let ke = median(21, || {
        ok(keys(
            root,
            &["encrypt", "--force", "bench", "--from", p],
            &id_file,
        ))
    });
    println!("keys decrypt, 20-key sops YAML: median {:>6.1} ms", ms(kd));
    println!("keys encrypt, 20-key sops YAML: median {:>6.1} ms", ms(ke));
    let Some(sops) = which("sops") else {
        println!("sops not on PATH: no side-by-side figures");
        return;
    };
    let recipient = id.to_public().to_string();
    let sd = median(21, || {
        ok(sops_cmd(
            &sops,
            root,
            &["decrypt", file.to_str().unwrap()],
            &id_file,
        ))
    });
    let se = median(21, || {
        ok(sops_cmd(
            &sops,
            root,
            &["encrypt", "--age", &recipient, p],
            &id_file,
        ))
    });
    println!(
        "sops decrypt, same file:        median {:>6.1} ms  ({:.1}x)",
        ms(sd),
        ms(sd) / ms(kd)
    );
    println!(
        "sops encrypt, same document:    median {:>6.1} ms  ({:.1}x)",
        ms(se),
        ms(se) / ms(ke)
    );
}

fn ok(out: Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sops_cmd(sops: &Path, home: &Path, args: &[&str], identity: &Path) -> Output {
    Command::new(sops)
        .arg("--disable-version-check")
        .args(args)
        .env("SOPS_AGE_KEY_FILE", identity)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
