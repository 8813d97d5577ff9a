//! Names and paths: symlinks anywhere under the repository (never followed, for
//! reading, writing or removing), names that could pass for readers, `decrypt -o` to
//! something that is not a file, hard links where keys writes or wipes, globs that
//! would overflow the glob compiler, the writer lock's pid, and host file paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{Run, TestEnv, sha256_hex};
use crate::fixture::{POLICY, fleet, tree};

/// What is at one path, never following a symlink.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    /// The SHA-256 of its bytes.
    File(String),
    Link(PathBuf),
    Other,
}

/// Every path under `dir` with what is there (symlinks as their targets, not
/// followed), but the writer lock, which holds the last writer's pid.
fn listing(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        let p = e.path();
        if e.file_name() == ".keys-writer" {
            continue;
        }
        let t = e.file_type();
        let entry = if t.is_symlink() {
            Entry::Link(std::fs::read_link(p).unwrap())
        } else if t.is_dir() {
            Entry::Dir
        } else if t.is_file() {
            Entry::File(sha256_hex(&std::fs::read(p).unwrap()))
        } else {
            Entry::Other
        };
        out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), entry);
    }
    out
}

/// Copies the directories and regular files under `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for (rel, entry) in listing(from) {
        match entry {
            Entry::Dir => std::fs::create_dir_all(to.join(rel)).unwrap(),
            Entry::File(_) => {
                std::fs::create_dir_all(to.join(&rel).parent().unwrap()).unwrap();
                std::fs::copy(from.join(&rel), to.join(rel)).unwrap();
            }
            other => panic!("{}: {other:?} in a template", rel.display()),
        }
    }
}

/// A fresh environment whose repository is a copy of `template`'s.
fn copy_of(template: &TestEnv) -> TestEnv {
    let mut env = TestEnv::new();
    fleet(&mut env);
    copy_tree(&template.work, &env.work);
    env
}

/// Moves `repo/rel` out of the repository to `outside/NAME` and leaves a symlink to
/// it in its place. Returns the outside directory.
fn link_out(env: &TestEnv, rel: &str) -> PathBuf {
    let outside = env.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let target = outside.join(rel.replace('/', "-"));
    std::fs::rename(env.work.join(rel), &target).unwrap();
    std::os::unix::fs::symlink(&target, env.work.join(rel)).unwrap();
    outside
}

#[track_caller]
fn refused_naming(run: Run, code: i32, what: &str, needle: &str) {
    let run = run.failure(code);
    assert!(run.stderr.contains(needle), "{what}: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 2, "{what}: {}", run.stderr);
}

#[test]
fn commands_never_write_or_remove_through_a_symlinked_directory() {
    // One repository with a secret, a generated host key, and drift (so rekey has
    // work), copied for each case.
    let mut template = TestEnv::new();
    fleet(&mut template);
    template
        .keys(&["host", "add", "gen-box", "--generate"])
        .success();
    template
        .keys_stdin(&["encrypt", "bot/token"], b"token-canary")
        .success();
    template.write(
        "work/policies/default.yaml",
        POLICY.replace(
            "[admins, host:vps-arm]",
            "[admins, host:vps-arm, host:vps-x86]",
        ),
    );
    // Each command, with the directory under secrets/ it reads or writes, and whether
    // it changes the repository when nothing is linked.
    let commands: [(&[&str], &str, bool); 8] = [
        (&["rekey"], "bot", true),
        (&["rm", "bot/token"], "bot", true),
        (&["host", "rotate", "vps-arm", "--generate"], "bot", true),
        (&["host", "rm", "gen-box", "--with-key"], "hosts", true),
        (
            &["container", "add", "c1", "--host", "vps-x86", "--own-key"],
            "hosts",
            true,
        ),
        (&["encrypt", "--force", "bot/token"], "bot", true),
        (&["decrypt", "bot/token"], "bot", false),
        (&["edit", "bot/token"], "bot", false),
    ];
    for (args, dir, writes) in commands {
        // Without a link, each command works (and the writers change something).
        let mut env = copy_of(&template);
        env.set("EDITOR", "true");
        let before = listing(&env.work);
        env.keys_stdin(args, b"new-token").success();
        assert_eq!(listing(&env.work) != before, writes, "{args:?}");

        for link in [
            "secrets".to_string(),
            format!("secrets/{dir}"),
            "recipients".to_string(),
            "recipients/hosts".to_string(),
        ] {
            let mut env = copy_of(&template);
            env.set("EDITOR", "true");
            let outside = link_out(&env, &link);
            let (outside_before, repo_before) = (listing(&outside), listing(&env.work));
            assert!(outside_before.values().any(|e| matches!(e, Entry::File(_))));
            let what = format!("{args:?} with {link} a symlink");
            refused_naming(
                env.keys_stdin(args, b"new-token"),
                3,
                &what,
                &format!("{link}: is a symbolic link"),
            );
            assert_eq!(listing(&outside), outside_before, "{what}: outside changed");
            // Every file as it was (`host rotate` puts back what it wrote before the
            // rekey found the link, and may leave an empty directory).
            let files = |l: BTreeMap<PathBuf, Entry>| {
                l.into_iter()
                    .filter(|(_, e)| *e != Entry::Dir)
                    .collect::<BTreeMap<_, _>>()
            };
            assert_eq!(
                files(listing(&env.work)),
                files(repo_before),
                "{what}: repository changed"
            );
        }
    }
}

#[test]
fn symlinked_fleet_files_and_directories_are_refused_by_every_command_and_reported() {
    let mut template = TestEnv::new();
    fleet(&mut template);
    template
        .keys_stdin(&["encrypt", "bot/token"], b"token-canary")
        .success();
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let extra_policy = "rules:\n  - secrets: \"extra/*\"\n    format: age\n    readers: [admins]\n";
    let host = std::fs::read(top.join("recipients/hosts/vps-x86.yaml")).unwrap();
    let admin = std::fs::read(top.join("recipients/admins/demo.pub")).unwrap();
    let commands: &[&[&str]] = &[
        &["status"],
        &["ls"],
        &["host", "ls"],
        &["rekey"],
        &["rekey", "--dry-run"],
        &["encrypt", "bot/new"],
        &["decrypt", "bot/token"],
        &["edit", "bot/token"],
        &["rm", "bot/token"],
        &["unset", "bot/token", "a"],
        &["host", "add", "new-box", "--generate"],
        &["host", "rm", "vps-x86"],
        &["host", "rotate", "vps-x86", "--generate"],
        &["container", "add", "c1", "--host", "vps-x86"],
        &["export", "nix"],
        &["export", "sops-config"],
        &["export", "agenix-rules"],
        &["stage-install", "--host", "vps-arm"],
        &["install", "--host", "vps-arm", "--dry-run"],
        &["update", "--host", "vps-arm", "--dry-run"],
    ];
    let files: [(&str, &[u8]); 3] = [
        ("policies/extra.yaml", extra_policy.as_bytes()),
        ("recipients/hosts/extra.yaml", &host),
        ("recipients/admins/extra.pub", &admin),
    ];
    let mut cases: Vec<(String, TestEnv)> = Vec::new();
    for (rel, data) in files {
        let env = copy_of(&template);
        let target = env.write("outside/extra", data);
        std::os::unix::fs::symlink(&target, env.work.join(rel)).unwrap();
        cases.push((rel.to_string(), env));
    }
    for dir in [
        "policies",
        "recipients",
        "recipients/hosts",
        "recipients/admins",
    ] {
        let env = copy_of(&template);
        link_out(&env, dir);
        cases.push((dir.to_string(), env));
    }
    for (link, mut env) in cases {
        env.set("EDITOR", "true");
        let before = listing(&env.root);
        let needle = format!("{link}: is a symbolic link");
        for args in commands {
            let what = format!("{args:?} with {link} a symlink");
            if *args == ["host", "ls"] && link.starts_with("policies") {
                // It reads no policy.
                env.keys(args).success();
                continue;
            }
            refused_naming(env.keys_stdin(args, b"x"), 3, &what, &needle);
        }
        let check = env.keys(&["check"]).failure(8);
        assert!(check.stdout.contains(&needle), "{link}: {}", check.stdout);
        assert_eq!(listing(&env.root), before, "{link}: a file changed");
    }
}

#[test]
fn a_staged_symlinked_policy_or_host_file_blocks_the_commit_check() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let git = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::common::peer("git"));
        cmd.args(args);
        env.apply(&mut cmd);
        crate::common::run(cmd, b"").success()
    };
    git(&["init", "-q", "-b", "main"]);
    env.keys(&["check", "--staged"]).success();
    let rule = env.write(
        "outside/extra.yaml",
        "rules:\n  - secrets: \"extra/*\"\n    format: age\n    readers: [admins]\n",
    );
    for rel in ["policies/extra.yaml", "recipients/hosts/extra.yaml"] {
        std::os::unix::fs::symlink(&rule, repo.join(rel)).unwrap();
        git(&["add", rel]);
        let run = env.keys(&["check", "--staged"]).failure(8);
        assert!(
            run.stdout.contains(&format!("{rel}: is a symbolic link")),
            "{}",
            run.stdout
        );
        git(&["rm", "-q", "--cached", rel]);
        std::fs::remove_file(repo.join(rel)).unwrap();
    }
}

#[test]
fn group_and_admin_names_follow_the_secret_name_rule_and_never_name_a_reader() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = listing(&repo);
    // A group named like a host would take that host's place among the readers.
    for (name, line) in [
        ("\"host:vps-arm\"", 3),
        ("\"container:nannuo-bot\"", 3),
        ("\"host:\"", 3),
        ("a/b", 3),
        ("\".x\"", 3),
        ("\"-x\"", 3),
    ] {
        let policy = format!(
            "groups:\n  admins: [demo]\n  {name}: [demo]\nrules:\n  - secrets: \"bot/*\"\n    format: age\n    readers: [admins, host:vps-arm]\n"
        );
        env.write("work/policies/default.yaml", &policy);
        let shown = name.trim_matches('"');
        let needle = format!("policies/default.yaml:{line}: invalid name {shown:?}");
        refused_naming(
            env.keys_stdin(&["encrypt", "bot/x"], b"x"),
            3,
            name,
            &needle,
        );
        refused_naming(env.keys(&["status"]), 3, name, &needle);
        let check = env.keys(&["check"]).failure(8);
        assert!(check.stdout.contains(&needle), "{}", check.stdout);
    }
    env.write("work/policies/default.yaml", POLICY);
    assert_eq!(listing(&repo), before);
    let demo = std::fs::read(repo.join("recipients/admins/demo.pub")).unwrap();
    for name in ["host:x", "container:x"] {
        let file = format!("recipients/admins/{name}.pub");
        env.write(&format!("work/{file}"), &demo);
        let needle = format!("{file}: invalid name {name:?}");
        refused_naming(env.keys(&["status"]), 3, name, &needle);
        std::fs::remove_file(repo.join(&file)).unwrap();
    }
    for name in ["host:x", "container:x", "a/b"] {
        let fresh = TestEnv::new();
        let run = fresh.keys(&["init", "--admin", name]).failure(3);
        assert!(run.stderr.contains("invalid name"), "{}", run.stderr);
        assert!(listing(&fresh.work).is_empty());
    }
    // The same rule allows '+' and '@' in admin and group names.
    env.write("work/recipients/admins/me@laptop.pub", &demo);
    env.write(
        "work/policies/default.yaml",
        POLICY.replace(
            "admins: [demo]",
            "admins: [demo]\n  ops+oncall: [me@laptop]",
        ),
    );
    env.keys(&["status"]).success();
}

/// A character device to write to: a node of our own when root (so no run, however
/// wrong, can replace the system's /dev/null), else /dev/null.
fn device(env: &TestEnv) -> PathBuf {
    if !rustix::process::geteuid().is_root() {
        return PathBuf::from("/dev/null");
    }
    let node = env.root.join("null");
    let ok = std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(ok.success());
    node
}

#[test]
fn decrypt_output_is_a_new_or_regular_file_or_stdout() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"token-canary")
        .success();
    let fifo = env.root.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let null = device(&env);
    let stdout = env.root.join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &stdout).unwrap();
    let file = env.write("kept", b"kept");
    let link = env.root.join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let dir = env.root.join("dir");
    std::fs::create_dir(&dir).unwrap();
    for (target, kind) in [
        (&null, "a character device"),
        (&fifo, "a FIFO"),
        (&stdout, "a symbolic link"),
        (&link, "a symbolic link"),
        (&dir, "a directory"),
    ] {
        let before = listing(&env.root);
        let out = target.to_str().unwrap();
        let run = env.keys(&["decrypt", "bot/token", "-o", out]);
        assert!(!run.stdout.contains("canary") && !run.stderr.contains("canary"));
        refused_naming(run, 2, out, &format!("-o {out}: is {kind}"));
        assert_eq!(listing(&env.root), before, "{out} changed");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"kept");
    // The other commands that take -o refuse the same targets.
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hosts/vps-arm.ssh_host_ed25519_key.pub"
    );
    for (target, kind) in [
        (&null, "a character device"),
        (&fifo, "a FIFO"),
        (&link, "a symbolic link"),
    ] {
        let out = target.to_str().unwrap();
        for args in [
            &["export", "nix", "-o", out][..],
            &["to-age", key, "-o", out],
        ] {
            let before = listing(&env.root);
            refused_naming(env.keys(args), 2, out, &format!("-o {out}: is {kind}"));
            assert_eq!(listing(&env.root), before, "{args:?} changed {out}");
        }
    }
    let run = env.keys(&["to-age", key, "-o", "-"]).success();
    assert!(run.stdout.starts_with("age1"), "{}", run.stdout);
    assert_eq!(std::fs::read(&file).unwrap(), b"kept");
    let run = env.keys(&["decrypt", "bot/token", "-o", "-"]).success();
    assert_eq!(run.stdout, "token-canary");
    assert!(!env.work.join("-").exists());
    // A new file, and a regular file replaced, as before.
    let new = env.root.join("new");
    env.keys(&["decrypt", "bot/token", "-o", new.to_str().unwrap()])
        .success();
    env.keys(&["decrypt", "bot/token", "-o", file.to_str().unwrap()])
        .success();
    assert_eq!(std::fs::read(&new).unwrap(), b"token-canary");
    assert_eq!(std::fs::read(&file).unwrap(), b"token-canary");
}

#[test]
fn clean_and_the_writer_lock_never_write_through_a_hard_link() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    // A tree shaped as stage-install writes one, whose key has a second name.
    let victim = env.write("victim", b"precious");
    let tree = env.root.join("keys-x/tree");
    std::fs::create_dir_all(tree.join("etc/ssh")).unwrap();
    std::fs::hard_link(&victim, tree.join("etc/ssh/ssh_host_ed25519_key")).unwrap();
    let before = listing(&env.root);
    let clean = tree.to_str().unwrap();
    refused_naming(
        env.keys(&["stage-install", "--clean", clean]),
        2,
        "clean",
        "holds etc/ssh/ssh_host_ed25519_key, which has 2 names (a hard link)",
    );
    assert_eq!(listing(&env.root), before);

    let lock = repo.join(".keys-writer");
    std::fs::hard_link(&victim, &lock).unwrap();
    let run = env.keys_stdin(&["encrypt", "bot/x"], b"x");
    refused_naming(
        run,
        5,
        "writer lock",
        ".keys-writer: has 3 names (a hard link)",
    );
    assert_eq!(listing(&env.root), before);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn deeply_nested_braces_are_refused_by_the_loader_and_reported_by_check() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    for depth in [17, 250, 1000] {
        let glob = format!("{}a{}", "{".repeat(depth), "}".repeat(depth));
        let why = if depth == 1000 {
            "bad glob: longer than 1024 bytes"
        } else {
            "bad glob: {…} alternatives nested more than 16 deep"
        };
        for (text, line) in [
            (
                format!(
                    "rules:\n  - secrets: \"{glob}\"\n    format: age\n    readers: [admins]\n"
                ),
                2,
            ),
            (format!("allow_private_keys:\n  - \"{glob}\"\n"), 2),
        ] {
            env.write("work/policies/00-deep.yaml", &text);
            let before = listing(&repo);
            let needle = format!("policies/00-deep.yaml:{line}: {why}");
            refused_naming(env.keys_stdin(&["encrypt", "a"], b"x"), 3, &glob, &needle);
            let check = env.keys(&["check"]).failure(8);
            assert!(check.stdout.contains(&needle), "{}", check.stdout);
            assert_eq!(listing(&repo), before);
        }
    }
    // Sixteen levels are within the cap, and work.
    let glob = format!("{}a{}", "{b,".repeat(16), "}".repeat(16));
    env.write(
        "work/policies/00-deep.yaml",
        format!("rules:\n  - secrets: \"{glob}\"\n    format: age\n    readers: [admins]\n"),
    );
    env.keys_stdin(&["encrypt", "a"], b"x").success();
    env.keys_stdin(&["encrypt", "b"], b"x").success();
}

/// The pid a writer-lock refusal names.
fn named_pid(stderr: &str) -> Option<&str> {
    let rest = &stderr[stderr.find("(pid ")? + 5..];
    Some(&rest[..rest.find(')')?])
}

#[test]
fn a_writer_lock_refusal_always_names_the_holders_pid() {
    use rustix::fs::{FlockOperation, flock};
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    // A holder between taking the lock and writing its pid, over a stale one.
    std::fs::write(repo.join(".keys-writer"), "999999999\n").unwrap();
    let held = std::fs::File::open(repo.join(".keys-writer")).unwrap();
    flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();
    let run = env.keys_stdin(&["encrypt", "bot/x"], b"x").failure(10);
    assert_eq!(
        named_pid(&run.stderr),
        Some(std::process::id().to_string().as_str()),
        "{}",
        run.stderr
    );
    drop(held);

    // Pairs of writers started together: whoever is refused names the other.
    let mut refusals = 0;
    for pair in 0..40 {
        let _ = std::fs::remove_file(repo.join(".keys-writer"));
        let start = || {
            let mut cmd = std::process::Command::new(crate::common::keys_bin());
            cmd.args(["rm", &format!("none/{pair}")]);
            env.apply(&mut cmd);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (start(), start());
        let pids = [a.id().to_string(), b.id().to_string()];
        for (i, child) in [a, b].into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            if out.status.code() == Some(10) {
                refusals += 1;
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(
                    named_pid(&stderr),
                    Some(pids[1 - i].as_str()),
                    "pair {pair}: {stderr}"
                );
            } else {
                assert_eq!(out.status.code(), Some(3), "pair {pair}");
            }
        }
    }
    println!("writer lock: {refusals} refusals in 40 pairs");
}

#[test]
fn every_bad_persist_path_names_the_host_file_and_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys(&[
        "host",
        "add",
        "gen-box",
        "--generate",
        "--persist",
        "/persistent",
    ])
    .success();
    let file = repo.join("recipients/hosts/gen-box.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let line = original
        .lines()
        .position(|l| l.starts_with("persist:"))
        .unwrap()
        + 1;
    let long = format!("/{}", "x".repeat(256));
    for value in [
        "/persistent/",
        "/a//b",
        "//",
        "/./x",
        "/a/.",
        "/a/..",
        "persistent",
        "\"\"",
        "\"/a\\tb\"",
        long.as_str(),
    ] {
        let text: String = original
            .lines()
            .map(|l| match l.starts_with("persist:") {
                true => format!("persist: {value}\n"),
                false => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&file, text).unwrap();
        let needle = format!("recipients/hosts/gen-box.yaml:{line}: persist");
        refused_naming(
            env.keys(&["stage-install", "--host", "gen-box"]),
            3,
            value,
            &needle,
        );
        refused_naming(env.keys(&["status"]), 3, value, &needle);
    }
}

#[test]
fn a_second_writer_is_refused_at_once_with_the_holders_pid() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/a"], b"a").success();
    let run_dir = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.set("XDG_RUNTIME_DIR", run_dir.path().display().to_string());
    let marker = env.root.join("editing");
    let editor = env.script(
        "bin/slow",
        format!("#!/bin/sh\ntouch '{}'\nsleep 3\n", marker.display()),
    );
    env.set("EDITOR", editor.display().to_string());
    let mut holder = env
        .command(&["edit", "bot/a"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !marker.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = tree(&repo);
    let run = env.keys_stdin(&["encrypt", "bot/b"], b"b").failure(10);
    assert!(
        run.stderr.contains("another keys process (pid "),
        "{}",
        run.stderr
    );
    assert!(
        run.elapsed < std::time::Duration::from_secs(2),
        "refused at once"
    );
    assert_eq!(tree(&repo), before);
    holder.wait().unwrap();
    env.keys_stdin(&["encrypt", "bot/b"], b"b").success();
}
