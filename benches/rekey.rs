//! Whole-process figures for `keys rekey` over generated repositories of 1,000 and
//! 5,000 secrets (~200 bytes each, readers 3 admins + 1 of 20 hosts), `.age` and sops
//! YAML: (a) one host rotated, (b) one admin rotated (every file changes).
//!
//! Beside (b), in the same rounds, run alternately so a slow spell of the machine
//! falls on each:
//! - the cryptography's floor: the per-file re-encryption in memory with the `age`
//!   crate (decrypt with the same identity, encrypt to the same recipients; for sops,
//!   open the data key and wrap a key to each recipient, as the file loses the old
//!   admin: keys makes the data key anew and seals the values again under it, whose
//!   AES-GCM, a few microseconds a file, the floor leaves out) timed on a sample on
//!   every core and scaled to every file; and the ratio of `keys rekey` to it;
//! - a plain program that reads every file, re-encrypts them in memory and then
//!   writes and renames them, with the `age` crate on every core (all or nothing
//!   like keys, but no journal, lock, sync or proof), as a process of its own: its
//!   time, and its peak memory beside that of `keys rekey` (both programs' files
//!   dropped from the page cache first, so each is read as an installed program).
//!   The disk is synced before each of them, so keys's syncs write its own files.
//!
//! Each program, each round, rewrites a fresh copy of the fleet, in a directory the
//! filesystem places apart (`common::Apart`): on an ext4 without a journal, files
//! created where thousands were just replaced cost several times more, and that
//! would time the rounds before, not the program.
//!
//! The floor is timed on the files as keys reads them (before keys rewrites them),
//! and the plain program's copy has the admin's key replaced too: each of the three
//! wraps every sops file's data key for each of its recipients.
//!
//! Then the way users rekey today, timed on a sample and scaled: a loop of
//! `age -d | age -r …` per file (what `agenix -r` does, minus its nix evaluation)
//! and `sops updatekeys -y` per file. Run with `cargo bench --bench rekey`, with age
//! and sops on PATH (e.g. target/peers/venv/bin); peak memory needs `/usr/bin/time`.
//! `KEYS_BENCH_DIR` puts the fleets on another filesystem (see `common::scratch`);
//! `cargo bench --bench rekey -- sops-yaml 1000` runs only the runs named;
//! `KEYS_BENCH_KEEP=1` keeps their fleets and identities.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::{ms, which};
use keys::format::Format;
use rayon::prelude::*;

/// How many files the per-file loops are timed on before scaling.
const SAMPLE: usize = 200;
/// How many files the in-memory floor is timed on before scaling.
const FLOOR_SAMPLE: usize = 500;
/// The argument that runs this binary as the plain program.
const PLAIN: &str = "plain-rekey";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(PLAIN) {
        let format = Format::ALL
            .into_iter()
            .find(|f| f.name() == args[4])
            .unwrap();
        plain_rekey(Path::new(&args[2]), Path::new(&args[3]), format);
        return;
    }
    let time = Path::new("/usr/bin/time");
    let time = time.is_file().then_some(time);
    // Both programs are read as installed programs are, so neither's peak memory
    // counts how its file was last written.
    common::uncache(common::keys_bin());
    common::uncache(&std::env::current_exe().unwrap());
    if time.is_none() {
        println!("/usr/bin/time is missing: no peak memory figures");
    }
    // Words after `--` pick the runs: a format's name (`age`, `sops-yaml`) or a count.
    let picked: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |word: &str| {
        let kind = |w: &&str| w.parse::<usize>().is_ok() == word.parse::<usize>().is_ok();
        !picked.iter().any(kind) || picked.contains(&word)
    };
    // Every fleet and copy of this run, removed when it ends: a removal mid-run
    // would free thousands of inodes beside the next fleet (see `Apart`).
    let place = common::Apart::new();
    for format in [Format::Age, Format::SopsYaml] {
        for n in [1_000, 5_000] {
            if !wanted(format.name()) || !wanted(&n.to_string()) {
                continue;
            }
            let ids = common::scratch();
            let fleet = place.fresh();
            let id = common::generate(&fleet, ids.path(), n, format);
            let root = fleet.as_path();
            let label = format!("{} x {n:>5}", format.name());
            // What the generator wrote is on disk before anything is timed.
            rustix::fs::sync();

            // (a) one host of 20 gets a new key.
            set_host_key(root, "h07", "rotated host 07");
            let host = rekey(root, &id[0], &["--host", "h07"], None);
            println!("{label}: one host rotated      {:>8.1} ms", ms(host.wall));

            // (b) one admin gets a new key: every file changes.
            let rounds = if n > 1_000 { 5 } else { 7 };
            let mut figures = Rounds::default();
            // Each program rewrites a copy of the fleet of its own (see `Apart`), with
            // the admin's key replaced, so every sops file lacks a recipient.
            for _ in 0..rounds {
                let copy = place.copy_of(root);
                rotate_admin(&copy);
                // The floor is timed just before and just after keys, so a slower
                // spell of the machine falls on both, on the same files as keys read
                // them: after keys a sops file already lists the new admin, and
                // re-wrapping it would wrap nothing.
                let sample = Floor::read(&copy, &id[0], format, n);
                let before = sample.time();
                // The copy (and what the round before wrote: the plain program syncs
                // nothing) is on disk first, so keys's syncs write only its own files.
                rustix::fs::sync();
                let keys = rekey(&copy, &id[0], &[], time);
                let after = sample.time();
                drop(sample);
                let copy = place.copy_of(root);
                rotate_admin(&copy);
                rustix::fs::sync();
                let plain = plain(&copy, &id[0], format, time);
                figures.push(keys, before.mean(&after), plain);
            }
            figures.print(&label);

            if n == 1_000 {
                compare_loops(root, &id[0], format, n);
            }
            if std::env::var_os("KEYS_BENCH_KEEP").is_some() {
                println!("kept the identities in {}", ids.keep().display());
            }
        }
    }
    if std::env::var_os("KEYS_BENCH_KEEP").is_some() {
        println!(
            "kept the fleets (each with a copy per program and round) in {}",
            place.keep().display()
        );
    }
}

/// What one run took: wall time, CPU time (user and system, every thread) and peak
/// resident memory in KiB, where known.
#[derive(Clone, Copy)]
struct Usage {
    wall: Duration,
    cpu: Option<Duration>,
    /// The part of `cpu` spent in the kernel (system time), where known.
    sys: Option<Duration>,
    rss: Option<u64>,
}

impl Usage {
    fn mean(&self, other: &Usage) -> Usage {
        Usage {
            wall: (self.wall + other.wall) / 2,
            cpu: self.cpu.zip(other.cpu).map(|(a, b)| (a + b) / 2),
            sys: None,
            rss: None,
        }
    }
}

/// The figures of (b), one per round.
#[derive(Default)]
struct Rounds {
    keys: Vec<Usage>,
    floor: Vec<Usage>,
    plain: Vec<Usage>,
}

impl Rounds {
    fn push(&mut self, keys: Usage, floor: Usage, plain: Usage) {
        self.keys.push(keys);
        self.floor.push(floor);
        self.plain.push(plain);
    }

    fn print(&self, label: &str) {
        let runs = self.keys.len();
        let wall = |all: &[Usage]| all.iter().map(|u| u.wall).collect::<Vec<_>>();
        let cpu = |all: &[Usage]| all.iter().map(|u| u.cpu).collect::<Option<Vec<_>>>();
        let ratios = |a: &[Duration], b: &[Duration]| -> Vec<f64> {
            a.iter()
                .zip(b)
                .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
                .collect()
        };
        let spread = |r: &[f64]| {
            format!(
                "median {:.2}x, rounds {:.2}x to {:.2}x",
                median(r.to_vec()),
                r.iter().copied().fold(f64::INFINITY, f64::min),
                r.iter().copied().fold(0.0, f64::max)
            )
        };
        let (keys, floor, plain) = (wall(&self.keys), wall(&self.floor), wall(&self.plain));
        println!(
            "{label}: one admin rotated     {:>8.1} ms wall (median of {runs}); crypto floor {:.1} ms \
             ({} threads); keys / floor: {}",
            ms(median(keys.clone())),
            ms(median(floor.clone())),
            rayon::current_num_threads(),
            spread(&ratios(&keys, &floor)),
        );
        if let (Some(k), Some(f)) = (cpu(&self.keys), cpu(&self.floor)) {
            println!(
                "{label}:   CPU time: keys {:.1} ms, floor {:.1} ms; keys / floor: {}",
                ms(median(k.clone())),
                ms(median(f.clone())),
                spread(&ratios(&k, &f)),
            );
        }
        // The kernel's share: where creating, writing and renaming files costs CPU
        // (on an ext4 without a journal, creating a file right after others were
        // replaced costs the most), the plain program pays it too.
        let sys = |all: &[Usage]| all.iter().map(|u| u.sys).collect::<Option<Vec<_>>>();
        if let (Some(k), Some(p)) = (sys(&self.keys), sys(&self.plain)) {
            println!(
                "{label}:   of which in the kernel: keys {:.1} ms, plain {:.1} ms",
                ms(median(k)),
                ms(median(p)),
            );
        }
        println!(
            "{label}:   plain age-crate program {:.1} ms wall; keys / plain: {}",
            ms(median(plain.clone())),
            spread(&ratios(&keys, &plain)),
        );
        let rss = |all: &[Usage]| all.iter().map(|u| u.rss).collect::<Option<Vec<_>>>();
        if let (Some(k), Some(p)) = (rss(&self.keys), rss(&self.plain)) {
            let (k, p) = (median(k), median(p));
            println!(
                "{label}:   peak RSS keys {:.1} MiB, plain {:.1} MiB (keys is {:.2}x)",
                k as f64 / 1024.0,
                p as f64 / 1024.0,
                k as f64 / p as f64
            );
        }
    }
}

fn median<T: Copy + PartialOrd>(mut all: Vec<T>) -> T {
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all[all.len() / 2]
}

/// Runs `keys rekey`: what it took.
fn rekey(root: &Path, identity: &Path, extra: &[&str], time: Option<&Path>) -> Usage {
    let mut cmd = measured(common::keys_bin(), time);
    cmd.arg("rekey")
        .args(extra)
        .arg("--repo")
        .arg(root)
        .env("KEYS_IDENTITY", identity)
        .env("KEYS_KEYRING", "none")
        .env("HOME", root);
    run(cmd, time)
}

/// Runs the plain program on the fleet at `root`: what it took.
fn plain(root: &Path, identity: &Path, format: Format, time: Option<&Path>) -> Usage {
    let mut cmd = measured(&std::env::current_exe().unwrap(), time);
    cmd.arg(PLAIN).arg(root).arg(identity).arg(format.name());
    run(cmd, time)
}

/// A command that runs `program`, under `time` when there is one, which then writes
/// the peak resident memory (KiB) and the user and system CPU seconds as the last
/// line of stderr.
fn measured(program: &Path, time: Option<&Path>) -> Command {
    match time {
        Some(time) => {
            let mut cmd = Command::new(time);
            cmd.args(["-f", "%M %U %S"]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn run(mut cmd: Command, time: Option<&Path>) -> Usage {
    let t = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let fields: Vec<&str> = last.split_whitespace().collect();
    let measured = time.is_some() && fields.len() == 3;
    let secs = |f: &str| f.parse::<f64>().ok().map(Duration::from_secs_f64);
    Usage {
        wall,
        cpu: measured
            .then(|| Some(secs(fields[1])? + secs(fields[2])?))
            .flatten(),
        sys: measured.then(|| secs(fields[2])).flatten(),
        rss: measured.then(|| fields[0].parse().ok()).flatten(),
    }
}

/// This process's user and system CPU time so far, every thread (Linux).
fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports in USER_HZ, 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
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

type Recipients = Vec<(String, Box<dyn age::Recipient + Send + Sync>)>;

/// The recipients the policy gives each host's secrets now (the 3 admins and the
/// host), each with its name as a sops file lists it, by the host's name, read
/// straight from the recipient files. The host is an ssh-ed25519 recipient in a
/// `.age` file and its X25519 conversion (as ssh-to-age makes it) in a sops file.
fn recipients_by_host(
    root: &Path,
    format: Format,
) -> std::collections::HashMap<String, Recipients> {
    let admins: Vec<String> = (0..common::ADMINS)
        .map(|a| {
            std::fs::read_to_string(root.join(format!("recipients/admins/a{a}.pub")))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    (0..common::HOSTS)
        .map(|h| {
            let host = format!("h{h:02}");
            let text = std::fs::read_to_string(root.join(format!("recipients/hosts/{host}.yaml")))
                .unwrap();
            let ssh = text.trim().trim_start_matches("ssh_key: ").to_string();
            let mut all: Recipients = admins
                .iter()
                .map(|a| {
                    let r = age::x25519::Recipient::from_str(a).unwrap();
                    (
                        a.clone(),
                        Box::new(r) as Box<dyn age::Recipient + Send + Sync>,
                    )
                })
                .collect();
            if format == Format::Age {
                let r = age::ssh::Recipient::from_str(&ssh).unwrap();
                all.push((ssh, Box::new(r)));
            } else {
                let x = keys::recipient::Recipient::host_key_in(&text, "host")
                    .unwrap()
                    .to_x25519()
                    .unwrap();
                let r = age::x25519::Recipient::from_str(&x).unwrap();
                all.push((x, Box::new(r)));
            }
            (host, all)
        })
        .collect()
}

fn identity(path: &Path) -> age::x25519::Identity {
    let text = std::fs::read_to_string(path).unwrap();
    age::x25519::Identity::from_str(text.trim()).unwrap()
}

/// The secret files of `format` under `root`, each with its host's name.
fn secret_files(root: &Path, format: Format) -> Vec<(String, PathBuf)> {
    walk(&root.join("secrets"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == format.extension()))
        .map(|p| {
            let host = p
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (host, p)
        })
        .collect()
}

/// A new key for the third admin, written where the policy reads it.
fn rotate_admin(root: &Path) {
    let new_admin = age::x25519::Identity::generate();
    std::fs::write(
        root.join("recipients/admins/a2.pub"),
        format!("{}\n", new_admin.to_public()),
    )
    .unwrap();
}

/// The in-memory floor of re-encrypting `n` files: FLOOR_SAMPLE of them, read and
/// parsed when it is made, re-encrypted on every core for the policy's recipients
/// then (for sops, the data key opened and wrapped for each recipient the file does
/// not list yet), the time scaled to `n`.
struct Floor {
    recipients: std::collections::HashMap<String, Recipients>,
    id: age::x25519::Identity,
    format: Format,
    sample: Vec<(String, Vec<u8>, Vec<Entry>)>,
    n: usize,
}

impl Floor {
    fn read(root: &Path, identity_file: &Path, format: Format, n: usize) -> Floor {
        let step = (n / FLOOR_SAMPLE).max(1);
        let sample = secret_files(root, format)
            .into_iter()
            .step_by(step)
            .take(FLOOR_SAMPLE)
            .map(|(host, p)| {
                let data = std::fs::read(&p).unwrap();
                match format {
                    Format::Age => (host, data, Vec::new()),
                    _ => (
                        host,
                        Vec::new(),
                        age_entries(&String::from_utf8(data).unwrap()),
                    ),
                }
            })
            .collect();
        Floor {
            recipients: recipients_by_host(root, format),
            id: identity(identity_file),
            format,
            sample,
            n,
        }
    }

    fn time(&self) -> Usage {
        let cpu = own_cpu();
        let t = Instant::now();
        self.sample.par_iter().for_each(|(host, data, entries)| {
            let recipients = &self.recipients[host];
            let out = match self.format {
                Format::Age => vec![reencrypt(data, &self.id, recipients)],
                _ => rewrap(entries, &self.id, recipients)
                    .into_iter()
                    .map(|(_, block)| block)
                    .collect(),
            };
            std::hint::black_box(out);
        });
        let wall = t.elapsed();
        let scale = self.n as f64 / self.sample.len() as f64;
        Usage {
            wall: wall.mul_f64(scale),
            cpu: own_cpu()
                .zip(cpu)
                .map(|(after, before)| (after - before).mul_f64(scale)),
            sys: None,
            rss: None,
        }
    }
}

/// Decrypts a binary age file with `id` and encrypts its plaintext to `recipients`.
fn reencrypt(data: &[u8], id: &dyn age::Identity, recipients: &Recipients) -> Vec<u8> {
    let plain = decrypt(data, id).expect("the identity opens the file");
    encrypt(
        &plain,
        recipients.iter().map(|(_, r)| r.as_ref() as _),
        age::armor::Format::Binary,
    )
}

fn decrypt(data: &[u8], id: &dyn age::Identity) -> Option<Vec<u8>> {
    let reader = age::armor::ArmoredReader::new(data);
    let decryptor = age::Decryptor::new(reader).unwrap();
    let mut stream = decryptor.decrypt(std::iter::once(id)).ok()?;
    let mut plain = Vec::new();
    stream.read_to_end(&mut plain).unwrap();
    Some(plain)
}

fn encrypt<'a>(
    plain: &[u8],
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
    armor: age::armor::Format,
) -> Vec<u8> {
    let encryptor = age::Encryptor::with_recipients(recipients).unwrap();
    let mut out = Vec::with_capacity(plain.len() + 1024);
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, armor).unwrap();
    let mut w = encryptor.wrap_output(armored).unwrap();
    w.write_all(plain).unwrap();
    w.finish().and_then(|a| a.finish()).unwrap();
    out
}

/// One entry of a sops file's age list: the recipient's name and the data key
/// wrapped for it (an armored age file).
type Entry = (String, Vec<u8>);

/// A sops file's age list for `recipients`: the data key, opened from the first
/// entry `id` opens, wrapped for each recipient the list lacks, in an armored age
/// file of its own as sops writes them; the entries of those it has are kept.
fn rewrap(entries: &[Entry], id: &dyn age::Identity, recipients: &Recipients) -> Vec<Entry> {
    let key = entries
        .iter()
        .find_map(|(_, b)| decrypt(b, id))
        .expect("the identity opens the data key");
    // A file that loses a reader gets a new data key, wrapped for every recipient.
    let loses = entries
        .iter()
        .any(|(n, _)| !recipients.iter().any(|(name, _)| name == n));
    recipients
        .iter()
        .map(|(name, r)| match entries.iter().find(|(n, _)| n == name) {
            Some(kept) if !loses => kept.clone(),
            _ => (
                name.clone(),
                encrypt(
                    &key,
                    std::iter::once(r.as_ref() as _),
                    age::armor::Format::AsciiArmor,
                ),
            ),
        })
        .collect()
}

/// The entries of a sops YAML file's age list, each block unindented.
fn age_entries(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- recipient: ") {
            entries.push((name.to_string(), Vec::new()));
        }
        if line == "-----BEGIN AGE ENCRYPTED FILE-----" {
            open = true;
        }
        if open && let Some((_, block)) = entries.last_mut() {
            block.extend_from_slice(line.as_bytes());
            block.push(b'\n');
        }
        if line == "-----END AGE ENCRYPTED FILE-----" {
            open = false;
        }
    }
    entries
}

/// The plain program: reads every secret, re-encrypts each in memory for the
/// fleet's recipients now (a sops file: its data key wrapped for each new recipient,
/// or for every recipient when the file loses one, the age list replaced), then writes each to a temp file and renames it over the
/// secret, on every core. Like `keys rekey` it writes nothing unless every file
/// re-encrypted, so it holds them all; it has no journal, lock, sync or proof.
fn plain_rekey(root: &Path, identity_file: &Path, format: Format) {
    let recipients = recipients_by_host(root, format);
    let id = identity(identity_file);
    let read: Vec<(String, PathBuf, Vec<u8>)> = secret_files(root, format)
        .into_par_iter()
        .map(|(host, path)| {
            let data = std::fs::read(&path).unwrap();
            (host, path, data)
        })
        .collect();
    let done: Vec<(&PathBuf, Vec<u8>)> = read
        .par_iter()
        .map(|(host, path, data)| {
            let out = match format {
                Format::Age => reencrypt(data, &id, &recipients[host]),
                _ => {
                    let text = std::str::from_utf8(data).unwrap();
                    let entries = rewrap(&age_entries(text), &id, &recipients[host]);
                    replace_age_list(text, &entries)
                }
            };
            (path, out)
        })
        .collect();
    done.par_iter().for_each(|(path, out)| {
        let tmp = path.with_extension("plain-tmp");
        std::fs::write(&tmp, out).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    });
}

/// A sops YAML file with its `age:` list replaced by `entries`.
fn replace_age_list(text: &str, entries: &[Entry]) -> Vec<u8> {
    let mut out = String::with_capacity(text.len() + 1024);
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        if let Some(indent) = line.strip_suffix("age:")
            && indent.trim().is_empty()
        {
            let mut list = String::new();
            while lines
                .peek()
                .is_some_and(|l| l.len() > indent.len() && l[indent.len()..].starts_with(' '))
            {
                list = list + lines.next().unwrap() + "\n";
            }
            let item = list
                .lines()
                .find_map(|l| {
                    l.strip_suffix(l.trim_start())
                        .filter(|_| l.trim_start().starts_with("- recipient:"))
                })
                .unwrap_or("    ");
            for (name, block) in entries {
                out.push_str(&format!("{item}- recipient: {name}\n{item}  enc: |\n"));
                for l in String::from_utf8_lossy(block).lines() {
                    out.push_str(&format!("{item}    {l}\n"));
                }
            }
        }
    }
    out.into_bytes()
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

fn walk(dir: &Path) -> Vec<PathBuf> {
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
