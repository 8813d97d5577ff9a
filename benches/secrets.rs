//! Whole-process figures for the commands a user waits on: `keys check` over
//! generated repositories of 1,000 and 5,000 secrets (3 admins and 1 of 20 hosts
//! each), beside the least any check of those files can do: a bare scan that finds
//! every `.age` file, reads it and parses its header with the `age` crate, on every
//! core; and, in each fleet, `keys encrypt` / `keys decrypt` of one secret beside one
//! `age` process doing the same, run in alternation, with their ratios. Run with `cargo bench --bench secrets`; it
//! prints medians.
//! `keys encrypt` makes the secret and the lock durable before it returns; `age` does
//! not sync, so it is also timed with its output then fsynced. The fleets are git
//! repositories for the encrypt and decrypt figures, as a user's are.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keys::format::secret_path;
use rayon::prelude::*;

mod common;

use common::{keys, ms, which};

fn main() {
    let age = which("age");
    // Both fleets stay until the end: removing the first would free its inodes
    // beside the second (see `common::Apart`).
    let place = common::Apart::new();
    for n in [1_000, 5_000] {
        let fleet = place.fresh();
        let id_dir = common::scratch();
        let ids = common::generate(&fleet, id_dir.path(), n, keys::format::Format::Age);
        // Each round runs both back to back, so a slower spell of the machine falls
        // on both; the first round warms the caches and is not counted.
        const RUNS: usize = 21;
        let (mut check, mut scan) = (Vec::new(), Vec::new());
        for round in 0..=RUNS {
            let t = Instant::now();
            let out = keys(fleet.as_path(), &["check"], &ids[0]);
            let c = t.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            let t = Instant::now();
            let parsed = header_scan(fleet.as_path());
            let s = t.elapsed();
            assert_eq!(parsed, n);
            if round > 0 {
                check.push(c);
                scan.push(s);
            }
        }
        let (check, scan) = (middle(check), middle(scan));
        println!("keys check, {n:>5} secrets: median {:>6.1} ms", ms(check));
        println!(
            "bare header scan with the age crate, {} threads: median {:>6.1} ms (keys check is {:.2}x)",
            rayon::current_num_threads(),
            ms(scan),
            check.as_secs_f64() / scan.as_secs_f64()
        );
        // A fleet is kept in git: where there is a git directory, keys keeps the lock
        // each write replaces there, for the next write to reuse its blocks.
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&fleet)
            .status()
            .expect("git, to keep the fleet in a repository");
        assert!(git.success());
        encrypt_decrypt(fleet.as_path(), &ids[0], age.as_deref(), n);
        if std::env::var_os("KEYS_BENCH_KEEP").is_some() {
            println!("kept the identities in {}", id_dir.keep().display());
        }
    }
    if std::env::var_os("KEYS_BENCH_KEEP").is_some() {
        println!("kept the fleets in {}", place.keep().display());
    }
}

fn middle(mut all: Vec<Duration>) -> Duration {
    all.sort();
    all[all.len() / 2]
}

/// The least a check of the repository's `.age` secrets can do: find them, read each
/// once and parse its header with the `age` crate, on every core. Returns how many
/// headers parsed.
fn header_scan(root: &Path) -> usize {
    let files: Vec<PathBuf> = walkdir::WalkDir::new(root.join("secrets"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.path().extension() == Some("age".as_ref()))
        .map(walkdir::DirEntry::into_path)
        .collect();
    files
        .par_iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            age::Decryptor::new_buffered(&data[..]).is_ok()
        })
        .count()
}

fn encrypt_decrypt(root: &Path, identity: &Path, age: Option<&Path>, n: usize) {
    let scratch = common::scratch();
    let plain = scratch.path().join("plain.txt");
    std::fs::write(&plain, b"123456789:AAE-bench-token\n").unwrap();
    // The generated repository is written out first, so the figures are those of a
    // quiet disk (keys syncs; a write of its own would otherwise also flush these).
    rustix::fs::sync();
    // Every process is started alike (stdin and stdout from /dev/null, stderr kept to
    // check it succeeded), and each round runs keys and age back to back, so a
    // slower or faster spell of the machine falls on both.
    let run = |program: &Path, args: &[&std::ffi::OsStr]| {
        let out = Command::new(program)
            .args(args)
            .env("KEYS_IDENTITY", identity)
            .env("KEYS_KEYRING", "none")
            .env("HOME", root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let keys_bin = common::keys_bin();
    let repo = ["--repo".as_ref(), root.as_os_str()];
    let keys_encrypt = |i: usize| {
        let name = format!("h00/new{i}");
        let args = [
            "encrypt".as_ref(),
            name.as_ref(),
            "--from".as_ref(),
            plain.as_os_str(),
        ];
        run(keys_bin, &[&args[..], &repo[..]].concat());
    };
    let keys_decrypt = || {
        run(
            keys_bin,
            &[&["decrypt".as_ref(), "h00/s00000".as_ref()][..], &repo[..]].concat(),
        )
    };
    let Some(age) = age else {
        println!("age not on PATH: no encrypt and decrypt figures beside it");
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
    args.extend(["-o".into(), out_file.to_string_lossy().into_owned()]);
    args.push(plain.to_string_lossy().into_owned());
    let age_args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let age_encrypt = || {
        let _ = std::fs::remove_file(&out_file);
        run(age, &age_args);
    };
    let file = root.join(secret_path("h00/s00000", keys::format::Format::Age));
    let age_decrypt = || {
        run(
            age,
            &[
                "-d".as_ref(),
                "-i".as_ref(),
                identity.as_os_str(),
                file.as_os_str(),
            ],
        )
    };
    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    const RUNS: usize = 41;
    let mut figures: [Vec<Duration>; 5] = Default::default();
    for round in 0..=RUNS {
        let times = [
            timed(&mut || keys_encrypt(round)),
            timed(&mut || age_encrypt()),
            // The same, with its output then made as durable as keys makes its own
            // (the file's data and its name): the flush keys pays, paid by age too.
            timed(&mut || {
                age_encrypt();
                for synced in [out_file.as_path(), scratch.path()] {
                    std::fs::File::open(synced).unwrap().sync_all().unwrap();
                }
            }),
            timed(&mut || keys_decrypt()),
            timed(&mut || age_decrypt()),
        ];
        // The first round warms the caches and is not counted.
        if round > 0 {
            for (all, t) in figures.iter_mut().zip(times) {
                all.push(t);
            }
        }
    }
    let [enc, age_enc, age_enc_durable, dec, age_dec] = figures.map(|mut all| {
        all.sort();
        all[all.len() / 2]
    });
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "keys encrypt, one secret of {n:>5}: median {:>6.1} ms",
        ms(enc)
    );
    println!(
        "age -e, same recipients:          median {:>6.1} ms (keys encrypt is {:.2}x)",
        ms(age_enc),
        ratio(enc, age_enc)
    );
    println!(
        "age -e, then fsync:               median {:>6.1} ms (keys encrypt is {:.2}x)",
        ms(age_enc_durable),
        ratio(enc, age_enc_durable)
    );
    println!(
        "keys decrypt, one secret:         median {:>6.1} ms",
        ms(dec)
    );
    println!(
        "age -d, same file:                median {:>6.1} ms (keys decrypt is {:.2}x)",
        ms(age_dec),
        ratio(dec, age_dec)
    );
}
