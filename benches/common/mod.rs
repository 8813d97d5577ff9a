//! What the bench binaries share: generated fleets, timing, finding a tool on PATH.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use keys::crypto::age::Armor;
use keys::format::lockfile::{self, Lockfile};
use keys::format::{Format, secret_path};
use keys::layout::Repo;
use keys::policy::{Fleet, Policy};
use keys::snapshot::Snapshot;
use rayon::prelude::*;

/// The `keys` binary as users run it: a copy of the one cargo built, as `cargo install`
/// or a package makes, made once per bench run. The file the linker has just written
/// runs slower than a byte-identical copy on this kind of machine (its code faults in
/// more slowly: about 0.6 ms more per `keys encrypt`), which would time the build, not
/// keys; the programs it is measured beside are installed copies too.
pub fn keys_bin() -> &'static Path {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("keys");
        let _ = std::fs::remove_file(&bin);
        std::fs::copy(env!("CARGO_BIN_EXE_keys"), &bin).unwrap();
        bin
    })
}

/// Drops `path` from the page cache (after writing out what is pending), so the
/// next run reads it back as an installed program is read. A file just written (the
/// copy of keys a bench makes, the bench itself) stays cached in the larger pieces
/// it was written in, and each page fault of a program run from it then maps more
/// of it: up to ~0.9 MiB more peak RSS, whichever program it is.
pub fn uncache(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

/// A temporary directory for a generated fleet: under `$KEYS_BENCH_DIR` when it is
/// set (to time another filesystem: a tmpfs, or a disk with a journal), else under
/// the system's temporary directory. The first call prints which filesystem it is.
pub fn scratch() -> tempfile::TempDir {
    static SAID: OnceLock<()> = OnceLock::new();
    let dir = match std::env::var_os("KEYS_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    SAID.get_or_init(|| {
        let kind = rustix::fs::statfs(dir.path())
            .map(|s| match s.f_type as u64 {
                0xEF53 => "ext2/3/4".to_string(),
                0x0102_1994 => "tmpfs".to_string(),
                0x9123_683E => "btrfs".to_string(),
                0x5846_5342 => "xfs".to_string(),
                other => format!("type {other:#x}"),
            })
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let base = dir.path().parent().unwrap_or(dir.path());
        println!("fleets under {} ({kind})", base.display());
    });
    dir
}

/// Directories for fleets that the filesystem places apart from each other and from
/// what was deleted before: children of a scratch directory marked as a top of a
/// hierarchy (`FS_TOPDIR_FL`, where the filesystem has it), so ext4 spreads each
/// one over a block group of its own. On an ext4 without a journal, creating a file
/// passes over every inode of its block group freed in the last minute or so, one
/// lookup each: a rekey in a directory whose 1,000 files were just replaced (by the
/// round before, or the plain program) spends about a third of its CPU time there.
/// A user's repository has not just been rewritten whole; a fresh copy per round in
/// a place of its own is what each program meets, and every copy is kept until the
/// run ends, so none of them frees inodes beside the next.
pub struct Apart {
    base: tempfile::TempDir,
    made: std::cell::Cell<usize>,
}

impl Apart {
    pub fn new() -> Apart {
        let base = scratch();
        if let Ok(dir) = std::fs::File::open(base.path()) {
            let flags = rustix::fs::ioctl_getflags(&dir).unwrap_or(rustix::fs::IFlags::empty());
            // Not every filesystem has the flag (tmpfs has no block groups anyway).
            let _ = rustix::fs::ioctl_setflags(&dir, flags | rustix::fs::IFlags::TOPDIR);
        }
        Apart {
            base,
            made: std::cell::Cell::new(0),
        }
    }

    /// Keeps every directory made after the bench ends; returns where they are.
    pub fn keep(self) -> PathBuf {
        self.base.keep()
    }

    /// A new empty directory, placed apart.
    pub fn fresh(&self) -> PathBuf {
        let n = self.made.get();
        self.made.set(n + 1);
        let dir = self.base.path().join(format!("f{n}"));
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    /// A copy of the tree at `from` (directories, regular files and their modes), in a
    /// new directory placed apart.
    pub fn copy_of(&self, from: &Path) -> PathBuf {
        let to = self.fresh();
        for entry in walkdir::WalkDir::new(from).min_depth(1) {
            let entry = entry.unwrap();
            let dest = to.join(entry.path().strip_prefix(from).unwrap());
            if entry.file_type().is_dir() {
                std::fs::create_dir(&dest).unwrap();
            } else {
                std::fs::copy(entry.path(), &dest).unwrap();
            }
        }
        to
    }
}

/// Runs the `keys` binary on the fleet at `root` with `identity`, hermetically.
pub fn keys(root: &Path, args: &[&str], identity: &Path) -> std::process::Output {
    std::process::Command::new(keys_bin())
        .args(args)
        .arg("--repo")
        .arg(root)
        .env("KEYS_IDENTITY", identity)
        .env("KEYS_KEYRING", "none")
        .env("HOME", root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The median of `runs` timed calls, after one untimed call to warm the caches.
pub fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub const HOSTS: usize = 20;
pub const ADMINS: usize = 3;

/// Writes a fleet of `n` secrets under `root`; returns the admins' identity files.
pub fn generate(root: &Path, id_dir: &Path, n: usize, format: Format) -> Vec<PathBuf> {
    let mut ids = Vec::new();
    std::fs::create_dir_all(root.join("recipients/admins")).unwrap();
    std::fs::create_dir_all(root.join("recipients/hosts")).unwrap();
    std::fs::create_dir_all(root.join("policies")).unwrap();
    for a in 0..ADMINS {
        let id = age::x25519::Identity::generate();
        let path = id_dir.join(format!("a{a}.txt"));
        use age::secrecy::ExposeSecret;
        std::fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            root.join(format!("recipients/admins/a{a}.pub")),
            format!("{}\n", id.to_public()),
        )
        .unwrap();
        ids.push(path);
    }
    let mut policy = String::from("rules:\n");
    for h in 0..HOSTS {
        use sha2::Digest;
        let seed: [u8; 32] = sha2::Sha256::digest(format!("bench host {h}")).into();
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
        let public = ssh_key::PublicKey::new(ssh_key::public::KeyData::Ed25519(pair.public), "")
            .to_openssh()
            .unwrap();
        std::fs::write(
            root.join(format!("recipients/hosts/h{h:02}.yaml")),
            format!("ssh_key: {public}\n"),
        )
        .unwrap();
        policy.push_str(&format!(
            "  - secrets: \"h{h:02}/*\"\n    format: {}\n    readers: [admins, host:h{h:02}]\n",
            format.name()
        ));
    }
    std::fs::write(root.join("policies/fleet.yaml"), policy).unwrap();
    let repo = Repo::at(root.to_path_buf());
    let files = Snapshot::from_work_tree(&repo, &["recipients", "policies"]).unwrap();
    let fleet = Fleet::from_snapshot(&files).unwrap();
    let policy = Policy::from_snapshot(&files, &fleet).unwrap();
    let entries: Vec<(String, lockfile::Entry)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let name = format!("h{:02}/s{i:05}", i % HOSTS);
            let (_, rule) = policy.rule_for(&name).unwrap();
            let r = policy.resolve(rule, &fleet).unwrap();
            let at = keys::error::Location::named(&name);
            let plain = format!("token: secret-{i}-{}\n", "x".repeat(150));
            let data = match format {
                Format::Age => {
                    keys::crypto::age::encrypt(plain.as_bytes(), &r.recipients, Armor::Binary, &at)
                }
                sops => keys::crypto::sops::encrypt_file(
                    sops,
                    plain.as_bytes(),
                    &r.recipients,
                    r.shamir.as_ref(),
                    Default::default(),
                    None,
                    &at,
                ),
            }
            .unwrap();
            let path = root.join(secret_path(&name, rule.format));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).unwrap();
            let entry = lockfile::Entry {
                format: rule.format,
                sha256: lockfile::sha256_hex(&data),
                recipients: r.fingerprints,
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
    ids
}
