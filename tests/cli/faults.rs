//! Fault injection with `strace -e inject`: ENOSPC and EIO at each write, fsync,
//! syncfs, link and rename of `keys encrypt`, `keys edit` and `keys rekey` in turn. Every run
//! either succeeds, or fails non-zero with one error line leaving every file
//! byte-identical. (strace counts calls per thread: `write` #N fails in each thread.)

use std::process::Command;

use crate::common::{TestEnv, keys_bin, peer, run};
use crate::secrets::{fleet, tree};

/// The syscalls a write goes through, each injected on its own counter.
const SYSCALLS: [&str; 8] = [
    "write",
    "fsync",
    "fdatasync",
    "syncfs",
    "linkat",
    "rename",
    "renameat",
    "renameat2",
];

fn injected(
    env: &TestEnv,
    syscall: &str,
    err: &str,
    n: usize,
    args: &[&str],
    stdin: &[u8],
) -> crate::common::Run {
    let mut cmd = Command::new(peer("strace"));
    cmd.args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:error={err}:when={n}"))
        .arg(keys_bin())
        .args(args);
    env.apply(&mut cmd);
    run(cmd, stdin)
}

#[test]
fn injected_write_fsync_and_rename_failures_leave_every_file_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/a"], b"first").success();
    let run_dir = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.set("XDG_RUNTIME_DIR", run_dir.path().display().to_string());
    let editor = env.write(
        "bin/ed",
        "#!/bin/sh\nfor a; do f=$a; done\necho more >> \"$f\"\n",
    );
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set("EDITOR", editor.display().to_string());
    let (mut failed, mut succeeded) = (0, 0);
    // Failed runs per syscall. Whether keys syncs by fsync or by one syncfs depends
    // on how much the system has waiting to be written: the fsync rounds run with
    // unsynced ballast, the others after a sync.
    let mut failed_at: std::collections::BTreeMap<&str, usize> = Default::default();
    let ballast = env.root.join("ballast");
    for syscall in SYSCALLS {
        for err in ["ENOSPC", "EIO"] {
            for n in 1..=8 {
                for cmd in [&["encrypt", "--force", "bot/a"][..], &["edit", "bot/a"]] {
                    let before = tree(&repo);
                    if syscall.contains("sync") && syscall != "syncfs" {
                        busy_disk(&ballast);
                    } else {
                        rustix::fs::sync();
                    }
                    let r = injected(&env, syscall, err, n, cmd, b"canary-plaintext");
                    assert_ne!(
                        r.code, 101,
                        "{syscall} {err} {n} {cmd:?}: panic\n{}",
                        r.stderr
                    );
                    assert!(!r.stderr.contains("canary") && !r.stdout.contains("canary"));
                    if r.code == 0 {
                        succeeded += 1;
                        env.keys(&["check"]).success();
                    } else {
                        failed += 1;
                        *failed_at.entry(syscall).or_default() += 1;
                        assert_eq!(
                            tree(&repo),
                            before,
                            "{syscall} {err} #{n} {cmd:?} changed a file: {}",
                            r.stderr
                        );
                    }
                    assert!(
                        std::fs::read_dir(run_dir.path()).unwrap().next().is_none(),
                        "plaintext left behind"
                    );
                }
            }
        }
    }
    println!(
        "fault injection: {failed} runs failed cleanly ({failed_at:?}), {succeeded} succeeded"
    );
    let reached = |calls: &[&str]| calls.iter().filter_map(|c| failed_at.get(c)).sum::<usize>();
    assert!(reached(&["write"]) > 0, "no write failure reached keys");
    assert!(
        reached(&["fsync", "fdatasync"]) > 0,
        "no fsync failure reached keys"
    );
    assert!(reached(&["syncfs"]) > 0, "no syncfs failure reached keys");
    assert!(
        reached(&["rename", "renameat", "renameat2"]) > 0,
        "no rename failure reached keys"
    );
    env.keys(&["check"]).success();
}

/// Leaves well over 8 MiB waiting to be written (unsynced data in `ballast`), so
/// that keys syncs each file on its own rather than the whole filesystem.
fn busy_disk(ballast: &std::path::Path) {
    let dirty_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Dirty:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    if dirty_kib < 16 << 10 {
        std::fs::write(ballast, vec![7u8; 24 << 20]).unwrap();
    }
}

#[test]
fn injected_failures_during_a_rekey_leave_every_file_as_it_was() {
    let mut env = TestEnv::new();
    let repo = crate::sops::sops_fleet(&mut env);
    for (name, plain) in [
        ("bot/a", &b"canary-a"[..]),
        ("bot/b", b"canary-b"),
        ("misc/c", b"canary-c"),
        ("yaml/d", b"key: canary-d\n"),
    ] {
        env.keys_stdin(&["encrypt", name], plain).success();
    }
    let policy_file = repo.join("policies/default.yaml");
    let policy = std::fs::read_to_string(&policy_file).unwrap();
    // The other policy moves every one of the four secrets to another host.
    let moved = policy
        .replace("host:vps-arm", "host:vps-x86")
        .replace("container:nannuo-bot", "host:vps-x86");
    let (mut failed, mut rounds) = (0, 0);
    for syscall in SYSCALLS {
        for err in ["ENOSPC", "EIO"] {
            let next = if rounds % 2 == 0 { &moved } else { &policy };
            std::fs::write(&policy_file, next).unwrap();
            rounds += 1;
            let mut n = 1;
            loop {
                let before = tree(&repo);
                let r = injected(&env, syscall, err, n, &["rekey"], b"");
                let at = format!("{syscall} {err} #{n}");
                assert!(
                    r.code != 101 && !r.stderr.contains("panicked"),
                    "{at}: panic\n{}",
                    r.stderr
                );
                assert!(!r.stderr.contains("canary") && !r.stdout.contains("canary"));
                if r.code == 0 {
                    println!("{syscall} {err}: {} failed runs before success", n - 1);
                    assert!(r.stdout.contains("rekey   yaml/d"), "{at}: {}", r.stdout);
                    env.keys(&["check"]).success();
                    break;
                }
                failed += 1;
                let errors: Vec<&str> = r
                    .stderr
                    .lines()
                    .filter(|l| l.starts_with("keys: error: "))
                    .collect();
                assert_eq!(errors.len(), 1, "{at}: {}", r.stderr);
                assert_eq!(tree(&repo), before, "{at} changed a file: {}", r.stderr);
                n += 1;
                assert!(n < 200, "{at}: the rekey never succeeded");
            }
        }
    }
    println!("rekey fault injection: {failed} runs failed cleanly, {rounds} rekeys done");
    assert!(failed > 30, "the injections reached keys: {failed}");
    for (name, plain) in [("bot/a", "canary-a"), ("misc/c", "canary-c")] {
        assert_eq!(env.keys(&["decrypt", name]).success().stdout, plain);
    }
}
