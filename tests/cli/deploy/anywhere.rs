//! `keys install` beyond the plain case: arguments passed on to nixos-anywhere, disk
//! encryption keys from the policy, `--dry-run` failing where the install would, and
//! the Docker command (agent, terminal, git, /nix volume, pinned image), each against
//! a recording stand-in.

use super::install::flake;
use super::*;

/// An executable script at `path`.
fn script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    executable(path, text);
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Puts `bin` first on the PATH keys runs with.
fn first_on_path(env: &mut TestEnv, bin: &Path) {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    env.set("PATH", path);
}

/// A nixos-anywhere that records its arguments and, while it runs, copies each
/// `--disk-encryption-keys` file (with its mode) it is given.
fn anywhere(env: &mut TestEnv) -> (PathBuf, PathBuf) {
    let log = env.root.join("anywhere.args");
    let disk = env.root.join("anywhere.disk");
    let bin = env.root.join("bin");
    script(
        &bin.join("nixos-anywhere"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{log}'\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --disk-encryption-keys ]; then mkdir -p '{disk}' && stat -c %a \"$3\" > '{disk}/mode' && cat \"$3\" > '{disk}/key'; fi\n  shift\ndone\n",
            log = log.display(),
            disk = disk.display()
        ),
    );
    first_on_path(env, &bin);
    (log, disk)
}

/// `-- ARGS…` goes to nixos-anywhere after keys' own; a rule's disk_encryption_key
/// stages the host's secret as a 0600 file beside the tree for
/// `--disk-encryption-keys`, removed afterwards; options keys gives itself are refused.
#[test]
fn install_passes_arguments_on_and_stages_disk_encryption_keys() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    flake(&env);
    let rundir = runtime_dir(&mut env);
    let (log, disk) = anywhere(&mut env);
    env.write(
        "work/policies/0-disk.yaml",
        "rules:\n  - secrets: \"imp/luks*\"\n    format: age\n    readers: [admins]\n    disk_encryption_key: /tmp/secret.key\n",
    );
    env.keys_stdin(&["encrypt", "imp/luks"], b"disk-canary-passphrase")
        .success();

    let passed = [
        "--build-on",
        "remote",
        "--generate-hardware-config",
        "nixos-facter",
        "./facter.json",
    ];
    let mut args = vec!["install", "--host", "imp", "--wait", "0", "--"];
    args.extend(passed);
    let mut dry_args = args.clone();
    dry_args.insert(5, "--dry-run");
    let dry = env.keys(&dry_args).success();
    assert!(
        dry.stdout.contains("# decrypt imp/luks into $DISK_KEY_1, a 0600 file beside the tree: imp's disk encryption key at /tmp/secret.key on the installer\n"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains(
            " --target-host root@192.0.2.2 --disk-encryption-keys /tmp/secret.key '$DISK_KEY_1' --build-on remote --generate-hardware-config nixos-facter ./facter.json)\n"
        ),
        "{}",
        dry.stdout
    );
    assert!(!log.exists());

    let r = env.keys(&args).success();
    assert!(
        r.stderr.contains(
            "keys: imp: disk encryption key imp/luks goes to /tmp/secret.key on the installer"
        ),
        "{}",
        r.stderr
    );
    let got = lines(&log);
    let at = got
        .iter()
        .position(|a| a == "--disk-encryption-keys")
        .unwrap();
    assert_eq!(got[at + 1], "/tmp/secret.key");
    let staged = PathBuf::from(&got[at + 2]);
    assert!(staged.starts_with(rundir.path()), "{}", staged.display());
    assert!(!staged.starts_with(staged.parent().unwrap().join("tree")));
    assert_eq!(got[at + 3..], passed);
    assert_eq!(
        std::fs::read_to_string(disk.join("key")).unwrap(),
        "disk-canary-passphrase"
    );
    assert_eq!(std::fs::read_to_string(disk.join("mode")).unwrap(), "600\n");
    assert!(!staged.exists());
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
    for out in [&r.stdout, &r.stderr, &dry.stdout] {
        assert!(!out.contains("canary"));
    }

    // What keys gives nixos-anywhere itself cannot be replaced after `--`.
    std::fs::remove_file(&log).unwrap();
    let r = env
        .keys(&[
            "install",
            "--host",
            "imp",
            "--wait",
            "0",
            "--",
            "--extra-files",
            "/tmp/x",
        ])
        .failure(2);
    assert_eq!(
        r.stderr,
        "keys: error: --extra-files after `--` would replace what keys gives nixos-anywhere\n  hint: leave it out and use the tree keys stages\n"
    );
    assert!(!log.exists());
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);

    // Two of the host's secrets at one installer path: the rule's line, nothing run.
    env.keys_stdin(&["encrypt", "imp/luks2"], b"other")
        .success();
    let r = env.keys(&args).failure(3);
    assert!(
        r.stderr.starts_with("keys: error: policies/0-disk.yaml:2: secrets imp/luks and imp/luks2 are both imp's disk encryption key at /tmp/secret.key\n"),
        "{}",
        r.stderr
    );
    assert!(!log.exists());
    env.keys(&["rm", "imp/luks2"]).success();

    // A disk key for another host is not this one's.
    env.keys(&["install", "--host", "plain", "--wait", "0"])
        .success();
    assert!(!lines(&log).contains(&"--disk-encryption-keys".to_string()));

    // A path that is not absolute: the policy line, before anything.
    std::fs::write(
        repo.join("policies/0-disk.yaml"),
        "rules:\n  - secrets: \"imp/luks*\"\n    format: age\n    readers: [admins]\n    disk_encryption_key: secret.key\n",
    )
    .unwrap();
    let r = env
        .keys(&["install", "--host", "imp", "--dry-run"])
        .failure(3);
    assert!(
        r.stderr.starts_with("keys: error: policies/0-disk.yaml:5: disk_encryption_key \"secret.key\" is not an absolute path"),
        "{}",
        r.stderr
    );
}

/// `--dry-run` checks what the install needs and fails, with the same one-line
/// error and exit code, where the install would: flake.nix, flake.lock (tracked, in
/// git), the --ssh-key file, the stored host key. Nothing is staged or run.
#[test]
fn dry_run_fails_where_the_install_would() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    let rundir = runtime_dir(&mut env);
    let (log, _) = anywhere(&mut env);
    let both = |env: &TestEnv, extra: &[&str], code: i32, want: &str| {
        for dry in [true, false] {
            let mut args = vec!["install", "--host", "plain", "--wait", "0"];
            if dry {
                args.push("--dry-run");
            }
            args.extend(extra);
            let r = env.keys(&args).failure(code);
            let first = r.stderr.lines().next().unwrap();
            assert_eq!(first, format!("keys: error: {want}"), "dry-run {dry}");
            assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
            assert!(r.stdout.is_empty());
        }
        assert!(!log.exists());
        assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
    };
    both(
        &env,
        &[],
        3,
        &format!(
            "{}: missing: a host is built only from a locked flake",
            repo.join("flake.nix").display()
        ),
    );
    env.write("work/flake.nix", "{ outputs = _: { }; }\n");
    both(
        &env,
        &[],
        3,
        &format!(
            "{}: missing: a host is built only from a locked flake",
            repo.join("flake.lock").display()
        ),
    );
    env.write("work/flake.lock", "{}\n");
    crate::hook::git(&env, &["init", "-q"], b"").success();
    crate::hook::git(&env, &["add", "flake.nix"], b"").success();
    both(
        &env,
        &[],
        3,
        &format!(
            "{}: not tracked by git, and nix reads only the files git tracks",
            repo.join("flake.lock").display()
        ),
    );
    crate::hook::git(&env, &["add", "flake.lock"], b"").success();
    let key = env.root.join("id");
    let key_arg = key.display().to_string();
    both(
        &env,
        &["--ssh-key", &key_arg],
        5,
        &format!("{key_arg}: No such file or directory (os error 2)"),
    );
    std::fs::write(&key, "a key\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    both(
        &env,
        &["--ssh-key", &key_arg],
        5,
        &format!("{key_arg}: private key file is open to other users (mode 644)"),
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    for dry in [&["--dry-run"][..], &[]] {
        let mut args = vec!["install", "--host", "nope"];
        args.extend(dry);
        let r = env.keys(&args).failure(3);
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            "keys: error: no host named nope (no recipients/hosts/nope.yaml)"
        );
    }
    let r = env
        .keys(&["install", "--host", "vps-arm", "--dry-run"])
        .failure(3);
    assert!(
        r.stderr
            .starts_with("keys: error: secret hosts/vps-arm/ssh_host_ed25519_key does not exist"),
        "{}",
        r.stderr
    );
    env.keys(&[
        "install",
        "--host",
        "plain",
        "--dry-run",
        "--ssh-key",
        &key_arg,
    ])
    .success();

    // Without nixos-anywhere on PATH: `nix run` of the pinned release.
    let only_git = env.root.join("only-git");
    std::fs::create_dir_all(&only_git).unwrap();
    for tool in ["git", "setsid"] {
        std::os::unix::fs::symlink(peer(tool), only_git.join(tool)).unwrap();
    }
    env.set("PATH", only_git.display().to_string());
    let dry = env
        .keys(&["install", "--host", "plain", "--dry-run", "--via", "nix"])
        .success();
    assert!(
        dry.stdout.contains(&format!(
            "(cd {} && nix --extra-experimental-features 'nix-command flakes' run github:nix-community/nixos-anywhere/1.13.0 -- --flake .#plain ",
            repo.display()
        )),
        "{}",
        dry.stdout
    );
}

/// `--via docker`: the agent socket mounted and named in SSH_AUTH_SOCK, a terminal
/// only when keys has one (here through `script`), the gitconfig that marks /work
/// safe, /nix in the named volume, the pinned image; the tree mounted read-only.
#[test]
fn install_through_docker_forwards_the_agent_and_a_terminal() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    flake(&env);
    let rundir = runtime_dir(&mut env);
    let bin = env.root.join("bin");
    let log = env.root.join("docker.args");
    let gitconfig = env.root.join("docker.gitconfig");
    let tree = env.root.join("docker.tree");
    script(
        &bin.join("docker"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{log}'\nfor a in \"$@\"; do case \"$a\" in\n  *:/root/.gitconfig:ro) cat \"${{a%%:*}}\" > '{gitconfig}';;\n  *:/extra-files:ro) rm -rf '{tree}'; cp -a \"${{a%%:*}}\" '{tree}';;\nesac; done\n",
            log = log.display(),
            gitconfig = gitconfig.display(),
            tree = tree.display()
        ),
    );
    first_on_path(&mut env, &bin);
    let sock = env.root.join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    env.set("SSH_AUTH_SOCK", sock.display().to_string());

    let install = ["install", "--host", "imp", "--wait", "0", "--via", "docker"];
    env.keys(&install).success();
    let args = lines(&log);
    let want_head = [
        "run".to_string(),
        "--rm".into(),
        "-i".into(),
        "-v".into(),
        format!("{}:/work", repo.display()),
    ];
    assert_eq!(args[..5], want_head);
    let pair = |a: &str, b: &str| args.windows(2).any(|w| w[0] == a && w[1] == b);
    assert!(
        pair(
            "-v",
            &format!("{}:/run/keys-ssh-agent.sock", sock.display())
        ),
        "{args:?}"
    );
    assert!(
        pair("-e", "SSH_AUTH_SOCK=/run/keys-ssh-agent.sock"),
        "{args:?}"
    );
    assert!(pair("-v", "keys-nix-2.35.2:/nix"), "{args:?}");
    assert!(pair("-w", "/work"), "{args:?}");
    assert!(args.contains(&"nixos/nix:2.35.2".to_string()), "{args:?}");
    assert!(
        args.contains(&"github:nix-community/nixos-anywhere/1.13.0".to_string()),
        "{args:?}"
    );
    assert!(
        !args.contains(&"-t".to_string()),
        "no terminal, no -t: {args:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&gitconfig).unwrap(),
        "[safe]\n\tdirectory = /work\n"
    );
    assert_eq!(
        mode_of(&tree.join("persistent/etc/ssh/ssh_host_ed25519_key")),
        0o600
    );
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);

    // With a terminal (script gives keys one): -t.
    let words: Vec<String> = std::iter::once(crate::common::keys_bin().to_string())
        .chain(install.iter().map(|s| s.to_string()))
        .collect();
    let mut cmd = Command::new(peer("script"));
    cmd.args(["-q", "-e", "-c", &words.join(" "), "/dev/null"]);
    env.apply(&mut cmd);
    let r = run(cmd, b"");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let args = lines(&log);
    assert_eq!(args[..4], ["run", "--rm", "-i", "-t"]);

    // $SSH_AUTH_SOCK that is not a socket: nothing mounted (docker would make a
    // directory there).
    let not_a_socket = env.root.join("not-a-socket");
    std::fs::write(&not_a_socket, b"").unwrap();
    env.set("SSH_AUTH_SOCK", not_a_socket.display().to_string());
    env.keys(&install).success();
    let args = lines(&log);
    assert!(
        !args.iter().any(|a| a.contains("SSH_AUTH_SOCK")),
        "{args:?}"
    );
}
