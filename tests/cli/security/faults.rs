//! Fault injection with `strace -e inject`: ENOSPC and EIO at each write, fsync,
//! syncfs, link and rename of `keys encrypt`, `keys edit` and `keys rekey` in turn. Every run
//! either succeeds, or fails non-zero with one error line leaving every file
//! byte-identical. (strace counts calls per thread: `write` #N fails in each thread.)

use std::process::Command;

use crate::common::{TestEnv, keys_bin, peer, run};
use crate::fixture::{fleet, tree};
use crate::hook::git;

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
    let editor = env.script(
        "bin/ed",
        "#!/bin/sh\nfor a; do f=$a; done\necho more >> \"$f\"\n",
    );
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
    // Other tests run beside this one: a `sync` of theirs may flush the ballast
    // before keys looks (so it takes one syncfs where fsyncs were expected), and
    // their writes may leave much unsynced (so it takes fsyncs where a syncfs was);
    // some systems never show the ballast as waiting at all. Try again until a
    // failure of each kind reaches keys, each try held to the same rules: for fsync
    // with a command writing one file (`rule add`), which keys always fsyncs.
    for (calls, inject) in [
        (&["fsync", "fdatasync"][..], "fsync"),
        (&["syncfs"][..], "syncfs"),
    ] {
        for i in 0..40 {
            if calls
                .iter()
                .any(|c| failed_at.get(c).is_some_and(|n| *n > 0))
            {
                break;
            }
            let before = tree(&repo);
            if inject == "syncfs" {
                rustix::fs::sync();
            } else {
                busy_disk(&ballast);
            }
            let glob = format!("retry{i}/*");
            let args: &[&str] = if inject == "syncfs" {
                &["encrypt", "--force", "bot/a"]
            } else {
                &[
                    "rule",
                    "add",
                    &glob,
                    "--format",
                    "age",
                    "--readers",
                    "admins",
                ]
            };
            let r = injected(&env, inject, "EIO", 1, args, b"canary-plaintext");
            assert_ne!(r.code, 101, "{inject} retry: panic\n{}", r.stderr);
            assert!(!r.stderr.contains("canary") && !r.stdout.contains("canary"));
            if r.code == 0 {
                succeeded += 1;
            } else {
                failed += 1;
                *failed_at.entry(inject).or_default() += 1;
                assert_eq!(
                    tree(&repo),
                    before,
                    "{inject} retry changed a file: {}",
                    r.stderr
                );
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
    // Written every time: data other processes left dirty may be flushed between a
    // reading of /proc/meminfo and the run, and the ballast's own pages are replaced,
    // not added to, when it is written again.
    std::fs::write(ballast, vec![7u8; 24 << 20]).unwrap();
}

#[test]
fn injected_failures_during_a_rekey_leave_every_file_as_it_was() {
    let mut env = TestEnv::new();
    let repo = crate::fixture::sops_fleet(&mut env);
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

#[test]
fn rm_that_fails_at_any_write_leaves_the_secret_and_the_lock_as_they_were() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/a"], b"canary-a").success();
    // Enough secrets that keys.lock is larger than one 1 KiB block.
    let input: String = (0..12).map(|i| format!("{i}\n")).collect();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "for i in $(cat); do printf x | '{}' encrypt other/s$i || exit 1; done",
        keys_bin()
    ));
    env.apply(&mut sh);
    assert_eq!(run(sh, input.as_bytes()).code, 0);
    let secret = repo.join("secrets/bot/a.age");
    let lock = repo.join("secrets/keys.lock");
    let mut failed_at: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut removed = 0;
    for (syscall, err) in [
        ("write", "ENOSPC"),
        ("linkat", "ENOSPC"),
        ("rename", "ENOSPC"),
        ("renameat", "ENOSPC"),
        ("renameat2", "ENOSPC"),
        ("unlink", "EIO"),
        ("unlinkat", "EIO"),
        ("fsync", "EIO"),
        ("fdatasync", "EIO"),
        ("syncfs", "EIO"),
    ] {
        {
            // Past the calls a removal makes, nothing is injected and rm succeeds:
            // two successes in a row end the round (an early call, such as removing
            // a backup's second name at the end, may fail without failing rm).
            let mut in_a_row = 0;
            for n in 1.. {
                if in_a_row == 2 {
                    break;
                }
                let before = tree(&repo);
                let r = injected(&env, syscall, err, n, &["rm", "bot/a"], b"");
                let at = format!("{syscall} {err} #{n}");
                assert_ne!(r.code, 101, "{at}: panic\n{}", r.stderr);
                if r.code == 0 {
                    assert!(!secret.exists(), "{at}");
                    assert!(!std::fs::read_to_string(&lock).unwrap().contains("bot/a "));
                    if syscall.starts_with("unlink") {
                        // A backup's second name that could not be removed at the end
                        // is left for the next rekey to sweep.
                        env.keys(&["rekey"]).success();
                    }
                    let check = env.keys(&["check"]);
                    assert_eq!(check.code, 0, "{at}: {}", check.stdout);
                    env.keys_stdin(&["encrypt", "bot/a"], b"canary-a").success();
                    removed += 1;
                    in_a_row += 1;
                    continue;
                }
                in_a_row = 0;
                *failed_at.entry(syscall).or_default() += 1;
                let errors: Vec<&str> = r
                    .stderr
                    .lines()
                    .filter(|l| l.starts_with("keys: error: "))
                    .collect();
                assert_eq!(errors.len(), 1, "{at}: {}", r.stderr);
                assert_eq!(
                    changed(&before, &tree(&repo)),
                    Vec::<String>::new(),
                    "{at}: {}",
                    r.stderr
                );
            }
        }
    }
    println!("rm fault injection: failed cleanly at {failed_at:?}, {removed} removals");
    for syscall in ["write", "renameat", "unlink", "fsync"] {
        assert!(
            failed_at.get(syscall).is_some_and(|n| *n > 0),
            "no {syscall} failure reached rm"
        );
    }

    // A file size limit: none at all (the writer lock cannot be taken), then one
    // block (the lock cannot be written). Either way nothing is removed.
    assert!(std::fs::metadata(&lock).unwrap().len() > 1024);
    for (limit, names) in [("0", ".keys-writer"), ("1", "keys.lock")] {
        let before = tree(&repo);
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("ulimit -f {limit}; exec '{}' rm bot/a", keys_bin()));
        env.apply(&mut sh);
        let r = run(sh, b"");
        assert_eq!(r.code, 5, "ulimit -f {limit}: {}", r.stderr);
        assert!(r.stderr.starts_with("keys: error: "), "{}", r.stderr);
        assert!(r.stderr.contains(names), "ulimit -f {limit}: {}", r.stderr);
        assert_eq!(
            changed(&before, &tree(&repo)),
            Vec::<String>::new(),
            "ulimit -f {limit}"
        );
    }
    assert_eq!(env.keys(&["decrypt", "bot/a"]).success().stdout, "canary-a");
    env.keys(&["check"]).success();
}

/// The paths whose bytes differ between two trees (or that are in one only).
fn changed(
    before: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    after: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) -> Vec<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| p.display().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn in_a_git_fleet_failures_around_the_lock_s_spare_leave_the_work_tree_as_it_was() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    git(&env, &["init", "-q"], b"").success();
    let spare = repo.join(".git/keys-lock.spare");
    // The work tree only: what the git directory holds is git's and the spare's.
    let work_tree = || {
        let mut all = tree(&repo);
        all.retain(|path, _| !path.starts_with(repo.join(".git")));
        all
    };
    env.keys_stdin(&["encrypt", "bot/a"], b"first").success();
    let (mut failed, mut with_spare) = (0, 0);
    let mut failed_at: std::collections::BTreeMap<&str, usize> = Default::default();
    for syscall in [
        "write",
        "ftruncate",
        "syncfs",
        "fsync",
        "linkat",
        "rename",
        "renameat",
    ] {
        for err in ["ENOSPC", "EIO"] {
            for n in 1..=5 {
                // A spare waits before most runs: the last write left one, unless
                // that write failed after taking it.
                if spare.is_file() {
                    with_spare += 1;
                }
                rustix::fs::sync();
                let before = work_tree();
                let cmd = ["encrypt", "--force", "bot/a"];
                let r = injected(&env, syscall, err, n, &cmd, b"canary-plaintext");
                let at = format!("{syscall} {err} #{n}");
                assert_ne!(r.code, 101, "{at}: panic\n{}", r.stderr);
                assert!(!r.stderr.contains("canary") && !r.stdout.contains("canary"));
                if r.code == 0 {
                    env.keys(&["check"]).success();
                    assert_eq!(
                        env.keys(&["decrypt", "bot/a"]).success().stdout,
                        "canary-plaintext",
                        "{at}"
                    );
                } else {
                    failed += 1;
                    *failed_at.entry(syscall).or_default() += 1;
                    assert_eq!(work_tree(), before, "{at} changed a file: {}", r.stderr);
                    env.keys(&["check"]).success();
                }
            }
        }
    }
    println!("spare fault injection: {failed} runs failed cleanly ({failed_at:?})");
    assert!(
        with_spare > 20,
        "a spare was there before {with_spare} runs"
    );
    for syscall in ["write", "syncfs", "renameat"] {
        assert!(
            failed_at.get(syscall).is_some_and(|n| *n > 0),
            "no {syscall} failure reached keys"
        );
    }
}
