//! `keys deploy-key`: a CI's deploy key, tried against a real sshd whose
//! authorized_keys is what keys.nix declares: it runs its command and nothing else,
//! and a rotated key stops working.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Run, TestEnv, executable, peer, run};
use crate::deploy::{append, free_port, keygen, sshd, user};
use crate::fixture::{fleet, tree};
use crate::hook::git;

/// An ssh client for 127.0.0.1:`port` with `key` only, the server's key pinned.
fn ssh(env: &TestEnv, known: &Path, port: u16, key: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(peer("ssh"));
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
    ])
    .args(["-o", "StrictHostKeyChecking=yes", "-o"])
    .arg(format!("UserKnownHostsFile={}", known.display()))
    .args(["-p", &port.to_string(), "-l", &user(), "-i"])
    .arg(key)
    .args(args);
    env.apply(&mut cmd);
    cmd
}

/// A child killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a connection through `ssh -L SOCKET:127.0.0.1:PORT` reads, and what ssh
/// said about it.
fn through_local_forward(mut cmd: Command, socket: &Path, log: &Path) -> (Vec<u8>, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    let child = Running(cmd.spawn().unwrap());
    wait_for(socket);
    let mut conn = UnixStream::connect(socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = vec![0u8; 8];
    let n = conn.read(&mut got).unwrap_or(0);
    got.truncate(n);
    drop(conn);
    drop(child);
    (got, std::fs::read_to_string(log).unwrap())
}

#[test]
fn a_deploy_key_runs_only_its_command_and_a_rotated_key_stops_working() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let root = env.root.clone();

    // The host's clone of the repository, where the default command pulls and
    // switches (nixos-rebuild is a stand-in that records where and how it ran).
    let origin = root.join("origin");
    let flake = root.join("flake");
    git(&env, &["init", "-q", &origin.display().to_string()], b"").success();
    std::fs::write(origin.join("flake.nix"), "v1\n").unwrap();
    let commit = |message: &str| {
        let dir = origin.display().to_string();
        git(&env, &["-C", &dir, "add", "-A"], b"").success();
        git(&env, &["-C", &dir, "commit", "-q", "-m", message], b"").success();
    };
    commit("v1");
    git(
        &env,
        &[
            "clone",
            "-q",
            &origin.display().to_string(),
            &flake.display().to_string(),
        ],
        b"",
    )
    .success();
    append(
        &repo.join("recipients/hosts/vps-arm.yaml"),
        &format!("flake_dir: {}\n", flake.display()),
    );

    let added = env
        .keys(&["deploy-key", "add", "ci", "--host", "vps-arm"])
        .success();
    let command = format!(
        "cd {} && git pull --ff-only && nixos-rebuild switch --flake .#vps-arm",
        flake.display()
    );
    assert!(
        added.stdout.contains(&format!(
            "line      restrict,command=\"{command}\" ssh-ed25519 "
        )),
        "{}",
        added.stdout
    );
    assert!(repo.join("policies/00-deploy-keys.yaml").is_file());
    env.keys(&["check"]).success();

    // What keys.nix gives root's authorized_keys, evaluated by Nix against the NixOS
    // option's type, is what `deploy-key ls --authorized-keys` prints.
    env.keys(&["export", "nix"]).success();
    let arm = crate::export::evaluated(&env, &repo, "vps-arm", true);
    let declared: Vec<String> = arm["authorizedKeys"]["root"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(declared.len(), 1, "{arm}");
    let listed = env
        .keys(&["deploy-key", "ls", "--authorized-keys", "--host", "vps-arm"])
        .success()
        .stdout;
    assert_eq!(listed, format!("{}\n", declared[0]));

    // The server: that line, and an unrestricted key to show what the server allows
    // any other key.
    let other = root.join("other_key");
    keygen(&other);
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let authorized = root.join("authorized_keys");
    std::fs::write(&authorized, format!("{}\n{other_pub}", declared[0])).unwrap();
    let bin = root.join("remote-bin");
    let tmp = root.join("remote-tmp");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let record = root.join("rebuild.log");
    let rebuild = bin.join("nixos-rebuild");
    executable(
        &rebuild,
        format!(
            "#!/bin/sh\nprintf '%s|%s|%s|%s\\n' \"$PWD\" \"$*\" \"${{SSH_ORIGINAL_COMMAND:-none}}\" \"${{SSH_AUTH_SOCK:-none}}\" >> '{}'\necho switched\n",
            record.display()
        ),
    );
    let host_key = root.join("host_key");
    keygen(&host_key);
    let port = free_port();
    let known = root.join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "[127.0.0.1]:{port} {}",
            std::fs::read_to_string(host_key.with_extension("pub")).unwrap()
        ),
    )
    .unwrap();
    let _server = sshd(&root, &host_key, &authorized, &bin, &tmp, port);
    let ci = root.join("ci_key");
    env.keys(&["decrypt", "deploy/ci", "-o", &ci.display().to_string()])
        .success();
    let records = || std::fs::read_to_string(&record).unwrap_or_default();
    let flake_line = |original: &str| {
        format!(
            "{}|switch --flake .#vps-arm|{original}|none\n",
            flake.display()
        )
    };

    // A shell request runs the command: the host pulls and switches.
    std::fs::write(origin.join("flake.nix"), "v2\n").unwrap();
    commit("v2");
    let r = run(ssh(&env, &known, port, &ci, &["127.0.0.1"]), b"").success();
    assert!(r.stdout.contains("switched"), "{}", r.stdout);
    assert_eq!(
        std::fs::read_to_string(flake.join("flake.nix")).unwrap(),
        "v2\n"
    );
    assert_eq!(records(), flake_line("none"));

    // A command of the client's own runs the forced command instead.
    let planted = root.join("planted");
    let own = format!("touch {}", planted.display());
    run(ssh(&env, &known, port, &ci, &["127.0.0.1", &own]), b"").success();
    assert!(!planted.exists());
    assert_eq!(
        records(),
        format!("{}{}", flake_line("none"), flake_line(&own))
    );

    // No terminal.
    let r = run(ssh(&env, &known, port, &ci, &["-tt", "127.0.0.1"]), b"");
    assert!(
        r.stderr.contains("PTY allocation request failed"),
        "{}",
        r.stderr
    );

    // No agent forwarding: the command sees no agent; the other key's session does.
    let socket = root.join("agent.sock");
    let mut agent = Command::new(peer("ssh-agent"));
    agent.arg("-D").arg("-a").arg(&socket);
    env.apply(&mut agent);
    let _agent = Running(
        agent
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&socket);
    let with_agent = |key: &Path, args: &[&str]| -> Run {
        let mut cmd = ssh(&env, &known, port, key, &["-A", "127.0.0.1"]);
        cmd.args(args).env("SSH_AUTH_SOCK", &socket);
        run(cmd, b"")
    };
    with_agent(&ci, &[]).success();
    assert!(records().ends_with(&flake_line("none")), "{}", records());
    let r = with_agent(&other, &["echo ${SSH_AUTH_SOCK:-none}"]).success();
    assert_ne!(
        r.stdout.trim(),
        "none",
        "the server forwards an agent to other keys"
    );

    // No port forwarding, local or remote.
    let local = |key: &Path, name: &str| {
        let sock = root.join(format!("{name}.sock"));
        let forward = format!("{}:127.0.0.1:{port}", sock.display());
        let cmd = ssh(
            &env,
            &known,
            port,
            key,
            &["-N", "-L", &forward, "127.0.0.1"],
        );
        through_local_forward(cmd, &sock, &root.join(format!("{name}.log")))
    };
    let (got, said) = local(&ci, "ci-forward");
    assert!(got.is_empty(), "{got:?}");
    assert!(said.contains("administratively prohibited"), "{said}");
    let (got, _) = local(&other, "other-forward");
    assert!(
        got.starts_with(b"SSH-2.0"),
        "the server forwards for other keys: {got:?}"
    );
    let remote = format!("0:127.0.0.1:{port}");
    let r = run(
        ssh(
            &env,
            &known,
            port,
            &ci,
            &[
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-R",
                &remote,
                "127.0.0.1",
            ],
        ),
        b"",
    );
    assert_eq!(r.code, 255, "{}", r.stderr);
    assert!(
        r.stderr.contains("remote port forwarding failed"),
        "{}",
        r.stderr
    );

    // Rotated: the host authorizes the new key only, and the old one is refused.
    let nix_before = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    env.keys(&["deploy-key", "rotate", "ci"]).success();
    let listed = env
        .keys(&["deploy-key", "ls", "--authorized-keys"])
        .success()
        .stdout;
    assert_ne!(listed, format!("{}\n", declared[0]));
    let nix_after = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    assert_ne!(nix_before, nix_after);
    assert!(
        nix_after.contains(listed.split(' ').nth(2).unwrap()),
        "{nix_after}"
    );
    std::fs::write(&authorized, format!("{listed}{other_pub}")).unwrap();
    let r = run(ssh(&env, &known, port, &ci, &["127.0.0.1"]), b"");
    assert_eq!(r.code, 255, "{}", r.stderr);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    let rotated = root.join("ci_key_2");
    env.keys(&["decrypt", "deploy/ci", "-o", &rotated.display().to_string()])
        .success();
    let r = run(ssh(&env, &known, port, &rotated, &["127.0.0.1"]), b"").success();
    assert!(r.stdout.contains("switched"), "{}", r.stdout);
    env.keys(&["check"]).success();
}

/// A command that would break the authorized_keys line, a user name that is not
/// one, an unknown host or a taken name: one line, exit 3, nothing written.
#[test]
fn bad_deploy_key_input_is_refused_and_nothing_is_written() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys(&["export", "nix"]).success();
    env.keys(&["deploy-key", "add", "ci", "--host", "vps-arm"])
        .success();
    let before = tree(&env.root);
    let long = "u".repeat(33);
    let long_error = format!("keys: error: --user: \"{long}\" is longer than 32 characters");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--command", "deploy\nrm -rf /"],
            "keys: error: --command: contains a line break, which would end the authorized_keys line; nothing was written",
        ),
        (
            &["--command", "deploy\r"],
            "keys: error: --command: contains a line break",
        ),
        (
            &["--command", "echo \"x\" ssh-ed25519 AAAA"],
            "keys: error: --command: contains a double quote",
        ),
        (
            &["--command", "echo x\\"],
            "keys: error: --command: ends with a backslash",
        ),
        (&["--command", "  "], "keys: error: --command: is empty"),
        (
            &["--command", "a\u{1b}b"],
            "keys: error: --command: contains a control character",
        ),
        (
            &["--user", "Root"],
            "keys: error: --user: \"Root\" is not a user name",
        ),
        (
            &["--user=-oProxyCommand=x"],
            "keys: error: --user: \"-oProxyCommand=x\" is not a user name",
        ),
        (
            &["--user", "a b"],
            "keys: error: --user: \"a b\" is not a user name",
        ),
        (&["--user", &long], &long_error),
    ];
    for (extra, want) in cases {
        let mut args = vec!["deploy-key", "add", "ci2", "--host", "vps-arm"];
        args.extend_from_slice(extra);
        let r = env.keys(&args).failure(3);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert!(lines[0].starts_with(want), "{extra:?}: {}", r.stderr);
        assert!(
            lines.len() == 2 && lines[1].starts_with("  hint: "),
            "{}",
            r.stderr
        );
        assert_eq!(tree(&env.root), before, "{extra:?}");
    }
    for (args, want) in [
        (
            &["deploy-key", "add", "ci", "--host", "vps-x86"][..],
            "keys: error: deploy key ci already exists, on host vps-arm (recipients/hosts/vps-arm.yaml)",
        ),
        (
            &["deploy-key", "add", "ci2", "--host", "nope"],
            "keys: error: no host named nope",
        ),
        (
            &["deploy-key", "rotate", "cd"],
            "keys: error: no deploy key named cd",
        ),
        (
            &["deploy-key", "rm", "cd"],
            "keys: error: no deploy key named cd",
        ),
        (
            &["deploy-key", "add", "../x", "--host", "vps-arm"],
            "keys: error: deploy key name: invalid name \"../x\"",
        ),
    ] {
        let r = env.keys(args).failure(3);
        assert!(r.stderr.starts_with(want), "{args:?}: {}", r.stderr);
        assert_eq!(tree(&env.root), before, "{args:?}");
    }

    // A host file edited by hand to a command sshd would misread names its line.
    let host = repo.join("recipients/hosts/vps-arm.yaml");
    let text = std::fs::read_to_string(&host).unwrap();
    let line = text
        .lines()
        .position(|l| l.trim_start().starts_with("command:"))
        .unwrap()
        + 1;
    let broken: String = text
        .lines()
        .map(|l| match l.trim_start().starts_with("command:") {
            true => "    command: 'echo \"x\"'\n".to_string(),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&host, broken).unwrap();
    let r = env.keys(&["deploy-key", "ls"]).failure(3);
    assert!(
        r.stderr.starts_with(&format!(
            "keys: error: recipients/hosts/vps-arm.yaml:{line}: command contains a double quote"
        )),
        "{}",
        r.stderr
    );
    std::fs::write(&host, &text).unwrap();

    // Removed: the host file as it was before, the secret and its lock line gone.
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("recipients/hosts/vps-arm.yaml"),
    )
    .unwrap();
    env.keys(&["deploy-key", "rm", "ci"]).success();
    assert_eq!(std::fs::read_to_string(&host).unwrap(), original);
    assert!(!repo.join("secrets/deploy/ci.age").exists());
    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    assert!(!lock.contains("deploy/ci"), "{lock}");
    let nix = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    assert!(!nix.contains("authorizedKeys"), "{nix}");
    env.keys(&["check"]).success();
}

/// A user other than root gets sudo in the default command, which follows the
/// host's flake_dir and flake attribute.
#[test]
fn the_default_command_pulls_into_the_flake_dir_and_switches() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    append(
        &repo.join("recipients/hosts/vps-x86.yaml"),
        "flake_dir: /persistent/nix-vps\n",
    );
    env.keys(&[
        "deploy-key",
        "add",
        "gh",
        "--host",
        "vps-x86",
        "--user",
        "deploy",
    ])
    .success();
    // Wide enough for the whole command.
    env.set("COLUMNS", "200");
    let listed = env.keys(&["deploy-key", "ls"]).success().stdout;
    let row = listed.lines().nth(1).unwrap();
    let cells: Vec<&str> = row.split_whitespace().take(3).collect();
    assert_eq!(cells, ["gh", "vps-x86", "deploy"]);
    assert!(
        row.ends_with(
            "cd /persistent/nix-vps && git pull --ff-only && sudo nixos-rebuild switch --flake .#vps-x86"
        ),
        "{row}"
    );
    let only = env
        .keys(&["deploy-key", "ls", "--authorized-keys", "--user", "root"])
        .success();
    assert_eq!(only.stdout, "");
    // The host's removal keeps its deploy key's secret unless told to remove it.
    let gone = env.keys(&["host", "rm", "vps-x86", "--with-key"]).success();
    assert!(
        gone.stdout.contains("removed   secrets/deploy/gh.age"),
        "{}",
        gone.stdout
    );
    assert!(!repo.join("secrets/deploy/gh.age").exists());
    env.keys(&["check"]).success();
}
