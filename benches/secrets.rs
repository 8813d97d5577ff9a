//! Whole-process figures for the commands a user waits on: `keys check` over
//! generated repositories of 1,000 and 5,000 secrets (3 admins and 1 of 20 hosts
//! each), and `keys encrypt` / `keys decrypt` of one secret beside one `age` process
//! doing the same. Run with `cargo bench --bench secrets`; it prints medians.
//! `keys encrypt` makes the secret and the lock durable before it returns; `age` does
//! not sync, so it is also timed with its output then fsynced.

use std::path::Path;
use std::process::{Command, Stdio};

use keys::policy::secret_path;

mod common;

use common::{keys, median, ms, which};

fn main() {
    let age = which("age");
    for n in [1_000, 5_000] {
        let dir = tempfile::tempdir().unwrap();
        let id_dir = tempfile::tempdir().unwrap();
        let ids = common::generate(dir.path(), id_dir.path(), n, keys::policy::Format::Age);
        let check = median(21, || {
            let out = keys(dir.path(), &["check"], &ids[0]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        });
        println!("keys check, {n:>5} secrets: median {:>6.1} ms", ms(check));
        if n == 1_000 {
            encrypt_decrypt(dir.path(), &ids[0], age.as_deref());
        }
        if std::env::var_os("KEYS_BENCH_KEEP").is_some() {
            println!(
                "kept {} and {}",
                dir.keep().display(),
                id_dir.keep().display()
            );
        }
    }
}

fn encrypt_decrypt(root: &Path, identity: &Path, age: Option<&Path>) {
    let scratch = tempfile::tempdir().unwrap();
    let plain = scratch.path().join("plain.txt");
    std::fs::write(&plain, b"123456789:AAE-bench-token\n").unwrap();
    // The generated repository is written out first, so the figures are those of a
    // quiet disk (keys syncs; a write of its own would otherwise also flush these).
    rustix::fs::sync();
    let mut i = 0;
    let enc = median(21, || {
        i += 1;
        let name = format!("h00/new{i}");
        let out = keys(
            root,
            &["encrypt", &name, "--from", plain.to_str().unwrap()],
            identity,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let dec = median(21, || {
        let out = keys(root, &["decrypt", "h00/s00000"], identity);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    println!("keys encrypt, one secret:   median {:>6.1} ms", ms(enc));
    println!("keys decrypt, one secret:   median {:>6.1} ms", ms(dec));
    let Some(age) = age else {
        println!("age not on PATH: no side-by-side figures");
        return;
    };
    // The same recipients: 3 admin age keys and the host's ssh-ed25519 key.
    let mut args: Vec<String> = Vec::new();
    for a in 0..common::ADMINS {
        let r = std::fs::read_to_string(root.join(format!("recipients/admins/a{a}.pub"))).unwrap();
        args.extend(["-r".into(), r.trim().to_string()]);
    }
    let host = std::fs::read_to_string(root.join("recipients/hosts/h00.yaml")).unwrap();
    let host_key = host.trim().trim_start_matches("ssh_key: ").to_string();
    args.extend(["-r".into(), host_key]);
    let out_file = scratch.path().join("age-out.age");
    let age_encrypt = || {
        let _ = std::fs::remove_file(&out_file);
        let st = Command::new(age)
            .args(&args)
            .arg("-o")
            .arg(&out_file)
            .arg(&plain)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let age_enc = median(21, age_encrypt);
    // The same, with its output then made as durable as keys makes its own (the file's
    // data and its name), for a comparison that includes the flush keys pays.
    let age_enc_durable = median(21, || {
        age_encrypt();
        for synced in [out_file.as_path(), scratch.path()] {
            std::fs::File::open(synced).unwrap().sync_all().unwrap();
        }
    });
    let file = root.join(secret_path("h00/s00000", keys::policy::Format::Age));
    let age_dec = median(21, || {
        let out = Command::new(age)
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg(&file)
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success());
    });
    println!("age -e, same recipients:    median {:>6.1} ms", ms(age_enc));
    println!(
        "age -e, then fsync:         median {:>6.1} ms",
        ms(age_enc_durable)
    );
    println!("age -d, same file:          median {:>6.1} ms", ms(age_dec));
}
