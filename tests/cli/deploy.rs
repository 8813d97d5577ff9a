//! stage-install, install, update and export nix: the staged tree exactly, a
//! nixos-anywhere stand-in that records what it was given, and updates against a real
//! OpenSSH server on 127.0.0.1 with real rsync.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::common::{TestEnv, mode_of, peer, run, runtime_dir};
use crate::secrets::fleet;

/// Every entry below `dir` with its mode, relative to `dir`.
fn listing(dir: &Path) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                todo.push(p.clone());
            }
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            out.insert(rel, meta.permissions().mode() & 0o7777);
        }
    }
    out
}

/// Runs keys, expecting exit `code` and `needle` in its error.
#[track_caller]
fn refused(env: &TestEnv, args: &[&str], code: i32, needle: &str) -> crate::common::Run {
    let r = env.keys(args).failure(code);
    assert!(r.stderr.contains(needle), "{}", r.stderr);
    r
}

fn expect(entries: &[(&str, u32)]) -> BTreeMap<String, u32> {
    entries.iter().map(|(p, m)| (p.to_string(), *m)).collect()
}

fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).unwrap();
    s.push_str(text);
    std::fs::write(path, s).unwrap();
}

/// The derived age1 key of an OpenSSH private key, through ssh-keygen -y and keys to-age.
fn age_of_private(env: &TestEnv, key: &Path) -> String {
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.arg("-y").arg("-f").arg(key);
    env.apply(&mut cmd);
    let public = run(cmd, b"").success().stdout;
    env.keys_stdin(&["to-age"], public.as_bytes())
        .success()
        .stdout
}

fn host_file_age(env: &TestEnv, repo: &Path, host: &str) -> String {
    let text = std::fs::read_to_string(repo.join(format!("recipients/hosts/{host}.yaml"))).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ssh_key: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    env.keys_stdin(&["to-age"], line.as_bytes())
        .success()
        .stdout
}

/// A fleet with two generated hosts: `plain`, and `imp` (persist /persistent, a
/// sops-nix key file, a container with its own key and one sharing the host's).
fn generated_fleet(env: &mut TestEnv) -> PathBuf {
    let repo = fleet(env);
    env.keys(&[
        "host",
        "add",
        "plain",
        "--generate",
        "--address",
        "192.0.2.1",
    ])
    .success();
    env.keys(&[
        "host",
        "add",
        "imp",
        "--generate",
        "--address",
        "192.0.2.2",
        "--persist",
        "/persistent",
    ])
    .success();
    append(
        &repo.join("recipients/hosts/imp.yaml"),
        "age_key_file: /var/lib/sops-nix/key.txt\n",
    );
    env.keys(&["container", "add", "own", "--host", "imp", "--own-key"])
        .success();
    env.keys(&["container", "add", "shared", "--host", "imp"])
        .success();
    repo
}

#[test]
fn stage_install_lays_out_plain_and_impermanent_hosts_and_cleans_up() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    let rundir = runtime_dir(&mut env);

    let tree = PathBuf::from(
        env.keys(&["stage-install", "--host", "plain"])
            .success()
            .stdout
            .trim(),
    );
    let parent = tree.parent().unwrap();
    assert_eq!(parent.parent().unwrap(), rundir.path());
    assert_eq!(mode_of(parent), 0o700);
    assert_eq!(mode_of(&tree), 0o755);
    assert_eq!(
        listing(&tree),
        expect(&[
            ("etc", 0o755),
            ("etc/ssh", 0o755),
            ("etc/ssh/ssh_host_ed25519_key", 0o600),
            ("etc/ssh/ssh_host_ed25519_key.pub", 0o644),
        ])
    );
    let staged = tree.join("etc/ssh/ssh_host_ed25519_key");
    let stored = env
        .keys(&["decrypt", "hosts/plain/ssh_host_ed25519_key"])
        .success()
        .raw_stdout;
    assert_eq!(std::fs::read(&staged).unwrap(), stored);
    assert_eq!(
        age_of_private(&env, &staged),
        host_file_age(&env, &repo, "plain")
    );
    env.keys(&["stage-install", "--clean", &tree.display().to_string()])
        .success();
    assert!(!parent.exists());

    let tree = PathBuf::from(
        env.keys(&["stage-install", "--host", "imp"])
            .success()
            .stdout
            .trim(),
    );
    assert_eq!(
        listing(&tree),
        expect(&[
            ("persistent", 0o755),
            ("persistent/etc", 0o755),
            ("persistent/etc/ssh", 0o755),
            ("persistent/etc/ssh/ssh_host_ed25519_key", 0o600),
            ("persistent/etc/ssh/ssh_host_ed25519_key.pub", 0o644),
            ("persistent/etc/ssh/containers", 0o755),
            ("persistent/etc/ssh/containers/own", 0o755),
            (
                "persistent/etc/ssh/containers/own/ssh_host_ed25519_key",
                0o600
            ),
            (
                "persistent/etc/ssh/containers/own/ssh_host_ed25519_key.pub",
                0o644
            ),
            ("persistent/var", 0o755),
            ("persistent/var/lib", 0o755),
            ("persistent/var/lib/sops-nix", 0o755),
            ("persistent/var/lib/sops-nix/key.txt", 0o600),
        ])
    );
    let key = tree.join("persistent/etc/ssh/ssh_host_ed25519_key");
    let age = host_file_age(&env, &repo, "imp");
    assert_eq!(age_of_private(&env, &key), age);
    let converted = env
        .keys(&["to-age", "--private", &key.display().to_string()])
        .success()
        .stdout;
    let key_txt =
        std::fs::read_to_string(tree.join("persistent/var/lib/sops-nix/key.txt")).unwrap();
    assert!(key_txt.contains(converted.trim()), "{key_txt}");
    assert!(key_txt.starts_with(&format!("# public key: {}", age.trim())));
    let own = env
        .keys(&["decrypt", "hosts/imp/containers/own/ssh_host_ed25519_key"])
        .success()
        .raw_stdout;
    assert_eq!(
        std::fs::read(tree.join("persistent/etc/ssh/containers/own/ssh_host_ed25519_key")).unwrap(),
        own
    );
    env.keys(&["stage-install", "--clean", &tree.display().to_string()])
        .success();
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
}

#[test]
fn stage_install_refuses_symlinks_full_and_foreign_directories() {
    let mut env = TestEnv::new();
    generated_fleet(&mut env);
    let rundir = runtime_dir(&mut env);
    let base = rundir.path();

    // A planted symlink at the output: refused, nothing lands behind it.
    let elsewhere = base.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, base.join("out")).unwrap();
    let out = base.join("out").display().to_string();
    refused(
        &env,
        &["stage-install", "--host", "plain", "--out", &out],
        2,
        &out,
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // A non-empty directory: refused, left as it was.
    let full = base.join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep"), b"mine").unwrap();
    refused(
        &env,
        &[
            "stage-install",
            "--host",
            "plain",
            "--out",
            &full.display().to_string(),
        ],
        2,
        "is not empty",
    );
    assert_eq!(std::fs::read(full.join("keep")).unwrap(), b"mine");

    // --clean refuses a directory that holds anything keys does not stage.
    refused(
        &env,
        &["stage-install", "--clean", &full.display().to_string()],
        2,
        "keep",
    );
    assert_eq!(std::fs::read(full.join("keep")).unwrap(), b"mine");

    // A new directory given with --out becomes the tree root, mode 0755.
    let fresh = base.join("fresh");
    let printed = env
        .keys(&[
            "stage-install",
            "--host",
            "plain",
            "--out",
            &fresh.display().to_string(),
        ])
        .success()
        .stdout;
    assert_eq!(printed.trim(), fresh.display().to_string());
    assert_eq!(mode_of(&fresh), 0o755);
    assert_eq!(mode_of(&fresh.join("etc/ssh/ssh_host_ed25519_key")), 0o600);
    env.keys(&["stage-install", "--clean", &fresh.display().to_string()])
        .success();
    assert!(!fresh.exists());

    // A host whose key was not generated here has nothing to stage.
    refused(
        &env,
        &["stage-install", "--host", "vps-arm"],
        3,
        "hosts/vps-arm/ssh_host_ed25519_key",
    );
}

/// A `nixos-anywhere` that records its arguments and copies the --extra-files tree,
/// then exits with `code`.
fn stand_in(env: &mut TestEnv, code: i32) -> (PathBuf, PathBuf) {
    let log = env.root.join("anywhere.args");
    let copy = env.root.join("anywhere.copy");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{log}'\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --extra-files ]; then mkdir -p '{copy}' && cp -a \"$2/.\" '{copy}/'; fi\n  shift\ndone\nexit {code}\n",
        log = log.display(),
        copy = copy.display()
    );
    let bin = env.write("bin/nixos-anywhere", script);
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    env.set("PATH", path);
    (log, copy)
}

#[test]
fn dry_run_prints_commands_a_shell_reads_back_as_run() {
    let mut env = TestEnv::new();
    generated_fleet(&mut env);
    // A word starting with '#' would be a comment, one with brackets a glob.
    let dry = env
        .keys(&[
            "install",
            "--host",
            "plain",
            "--dry-run",
            "--ssh-key",
            "#id",
            "--target",
            "root@[2001:db8::1]",
        ])
        .success();
    assert!(dry.stdout.contains(" -i '#id'"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains(" --target-host 'root@[2001:db8::1]'"),
        "{}",
        dry.stdout
    );
}

#[test]
fn install_runs_nixos_anywhere_with_the_staged_tree_and_removes_it() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    let rundir = runtime_dir(&mut env);
    let (log, copy) = stand_in(&mut env, 0);

    // --dry-run: the commands, no secret, nothing staged or run.
    let dry = env
        .keys(&["install", "--host", "imp", "--dry-run"])
        .success();
    assert!(
        dry.stdout.contains(
            "nixos-anywhere --flake .#imp --extra-files '$STAGED_TREE' --target-host root@192.0.2.2"
        ),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains("PRIVATE KEY") && !dry.stdout.contains("AGE-SECRET-KEY"));
    assert!(!log.exists());
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
    // Through Docker, as the seed's bootstrap.sh: the repository and the tree mounted.
    let docker = env
        .keys(&["install", "--host", "imp", "--dry-run", "--via", "docker"])
        .success();
    let want = format!(
        "docker run --rm -i -v {}:/work -v '$STAGED_TREE:/extra-files:ro' -w /work nixos/nix nix --extra-experimental-features 'nix-command flakes' run github:nix-community/nixos-anywhere -- --flake /work#imp --extra-files /extra-files --target-host root@192.0.2.2",
        repo.display()
    );
    assert!(docker.stdout.contains(&want), "{}", docker.stdout);

    env.keys(&["install", "--host", "imp", "--wait", "0"])
        .success();
    let args: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(args[..2], ["--flake", ".#imp"]);
    assert_eq!(args[2], "--extra-files");
    assert_eq!(args[4..], ["--target-host", "root@192.0.2.2"]);
    let tree = PathBuf::from(&args[3]);
    assert!(tree.starts_with(rundir.path()), "{}", tree.display());
    assert!(!tree.exists(), "the staged tree was left behind");
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
    // What nixos-anywhere saw: the host's key, with its modes.
    let key = copy.join("persistent/etc/ssh/ssh_host_ed25519_key");
    assert_eq!(mode_of(&key), 0o600);
    assert_eq!(
        mode_of(&copy.join("persistent/var/lib/sops-nix/key.txt")),
        0o600
    );
    assert_eq!(
        age_of_private(&env, &key),
        host_file_age(&env, &repo, "imp")
    );

    // A failing nixos-anywhere: exit 9, and the tree is gone all the same.
    std::fs::remove_dir_all(&copy).unwrap();
    stand_in(&mut env, 3);
    refused(
        &env,
        &[
            "install",
            "--host",
            "plain",
            "--wait",
            "0",
            "--target",
            "root@198.51.100.7",
        ],
        9,
        "nixos-anywhere failed (exit 3)",
    );
    assert!(copy.join("etc/ssh/ssh_host_ed25519_key").exists());
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);

    // SIGTERM while nixos-anywhere runs: passed on, the tree removed, exit 130.
    let pid_file = env.root.join("keys.pid");
    let bin = env.write(
        "bin/nixos-anywhere",
        format!(
            "#!/bin/sh\necho $PPID > '{}.tmp'; mv '{0}.tmp' '{0}'\nexec sleep 30\n",
            pid_file.display()
        ),
    );
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = env.command(&["install", "--host", "plain", "--wait", "0"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pid_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "nixos-anywhere did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 1);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);

    // A host with no stored key has nothing to install with.
    refused(
        &env,
        &["install", "--host", "vps-arm", "--wait", "0"],
        3,
        "secret hosts/vps-arm/ssh_host_ed25519_key does not exist",
    );

    // A host file without an address: a clear error before anything runs.
    let host = repo.join("recipients/hosts/plain.yaml");
    let text = std::fs::read_to_string(&host).unwrap();
    std::fs::write(
        &host,
        text.lines()
            .filter(|l| !l.starts_with("address:"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let r = env.keys(&["install", "--host", "plain"]).failure(3);
    assert!(
        r.stderr
            .contains("recipients/hosts/plain.yaml has no address"),
        "{}",
        r.stderr
    );
    let r = env.keys(&["update", "--host", "plain"]).failure(3);
    assert!(
        r.stderr
            .contains("recipients/hosts/plain.yaml has no address"),
        "{}",
        r.stderr
    );
}

/// A real sshd on 127.0.0.1, as the current user, with the given host key; its
/// sessions get `bin` first on PATH and TMPDIR set to `tmp`.
struct Sshd {
    child: Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sshd(dir: &Path, host_key: &Path, authorized: &Path, bin: &Path, tmp: &Path, port: u16) -> Sshd {
    let sshd = PathBuf::from("/usr/sbin/sshd");
    assert!(
        sshd.exists(),
        "sshd is missing: install openssh-server (scripts/test does)"
    );
    if rustix::process::geteuid().is_root() {
        // sshd wants its privilege separation directory even for one test session.
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let config = dir.join(format!("sshd_config.{port}"));
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}/sshd.{port}.pid\n\
             UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             SetEnv PATH={}:/usr/bin:/bin TMPDIR={}\n",
            host_key.display(),
            authorized.display(),
            dir.display(),
            bin.display(),
            tmp.display()
        ),
    )
    .unwrap();
    let child = Command::new(&sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stderr(std::fs::File::create(dir.join(format!("sshd.{port}.log"))).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "sshd did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Sshd { child }
}

/// A new unencrypted ed25519 key pair at `path` and `path.pub`.
fn keygen(path: &Path) {
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path);
    run(cmd, b"").success();
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn update_sends_the_flake_over_real_ssh_and_refuses_a_changed_host_key() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let _rundir = runtime_dir(&mut env);
    let port = free_port();
    env.keys(&[
        "host",
        "add",
        "srv",
        "--generate",
        "--address",
        "127.0.0.1",
        "--ssh-port",
        &port.to_string(),
    ])
    .success();
    let remote = env.root.join("remote");
    let flake_dir = remote.join("etc-nixos");
    let remote_tmp = remote.join("tmp");
    std::fs::create_dir_all(&remote_tmp).unwrap();
    append(
        &repo.join("recipients/hosts/srv.yaml"),
        &format!("ssh_user: {}\nflake_dir: {}\n", user(), flake_dir.display()),
    );
    env.write(
        "work/policies/0-srv.yaml",
        "rules:\n  - secrets: \"srv/conf\"\n    format: sops-yaml\n    readers: [admins, host:srv]\n  - secrets: \"srv/*\"\n    format: age\n    readers: [admins, host:srv]\n",
    );
    env.keys_stdin(&["encrypt", "srv/token"], b"srv-canary-token")
        .success();
    env.keys_stdin(
        &["encrypt", "srv/conf"],
        b"db:\n  password: srv-canary-pw\n",
    )
    .success();
    env.keys_stdin(&["encrypt", "bot/other"], b"not-for-srv")
        .success();
    for (rel, text) in [
        ("work/flake.nix", "{ outputs = _: { }; }\n"),
        ("work/flake.lock", "{}\n"),
        ("work/host.nix", "{ }\n"),
        ("work/modules/a.nix", "{ }\n"),
        ("work/README.md", "not sent\n"),
    ] {
        env.write(rel, text);
    }

    // The server: srv's own host key, our client key, a recording nixos-rebuild.
    let host_key = env.root.join("srv_host_key");
    env.keys(&[
        "decrypt",
        "hosts/srv/ssh_host_ed25519_key",
        "-o",
        &host_key.display().to_string(),
    ])
    .success();
    let client = env.root.join("client_key");
    keygen(&client);
    let authorized = env.root.join("authorized_keys");
    std::fs::copy(client.with_extension("pub"), &authorized).unwrap();
    let bin = env.root.join("remote-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = env.root.join("rebuild.args");
    let rebuild = bin.join("nixos-rebuild");
    std::fs::write(
        &rebuild,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rebuild, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = sshd(&env.root, &host_key, &authorized, &bin, &remote_tmp, port);
    let client_arg = client.display().to_string();

    // A secret srv cannot decrypt (the policy changed, no rekey yet) stops the update.
    let policy = repo.join("policies/0-srv.yaml");
    let original_policy = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        original_policy.replace(
            "host:srv]\n  - secrets: \"srv/*\"",
            "host:srv, host:vps-x86]\n  - secrets: \"srv/*\"",
        ),
    )
    .unwrap();
    let r = env
        .keys(&["update", "--host", "srv", "--ssh-key", &client_arg])
        .failure(8);
    assert!(
        r.stderr
            .contains("srv cannot decrypt 1 secret: secrets/srv/conf.yaml (drift)"),
        "{}",
        r.stderr
    );
    assert!(!flake_dir.exists());
    std::fs::write(&policy, &original_policy).unwrap();

    let r = env
        .keys(&["update", "--host", "srv", "--ssh-key", &client_arg])
        .success();
    assert!(
        r.stderr.contains("srv can decrypt the 2 secrets"),
        "{}",
        r.stderr
    );
    assert_eq!(
        listing(&flake_dir),
        expect(&[
            ("flake.nix", 0o644),
            ("flake.lock", 0o644),
            ("host.nix", 0o644),
            ("modules", 0o755),
            ("modules/a.nix", 0o644),
            ("secrets", 0o755),
            ("secrets/srv", 0o755),
            ("secrets/srv/token.age", 0o644),
            ("secrets/srv/conf.yaml", 0o644),
        ])
    );
    for rel in [
        "flake.nix",
        "secrets/srv/token.age",
        "secrets/srv/conf.yaml",
    ] {
        assert_eq!(
            std::fs::read(flake_dir.join(rel)).unwrap(),
            std::fs::read(repo.join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        format!("switch\n--flake\n{}#srv\n", flake_dir.display())
    );
    assert_eq!(std::fs::read_dir(&remote_tmp).unwrap().count(), 0);
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains("canary"));
    }

    // install's check after the reboot passes against the same server...
    let (log, _) = stand_in(&mut env, 0);
    let install = [
        "install",
        "--host",
        "srv",
        "--ssh-key",
        &client_arg,
        "--wait",
        "10",
    ];
    env.keys(&install).success();
    assert!(log.exists());
    drop(server);

    // ...and a server presenting another key is refused before anything is copied.
    let other = env.root.join("other_host_key");
    keygen(&other);
    let _server = sshd(&env.root, &other, &authorized, &bin, &remote_tmp, port);
    std::fs::remove_dir_all(&flake_dir).unwrap();
    let r = refused(
        &env,
        &["update", "--host", "srv", "--ssh-key", &client_arg],
        9,
        &format!("127.0.0.1:{port} does not present srv's key"),
    );
    assert!(r.stderr.contains("keys host rotate srv"), "{}", r.stderr);
    assert!(!flake_dir.exists());
    assert_eq!(std::fs::read_to_string(&record).unwrap().lines().count(), 3);
    refused(&env, &install, 9, "does not present srv's key");
    assert_eq!(std::fs::read_dir(&remote_tmp).unwrap().count(), 0);
}

#[test]
fn export_nix_declares_each_hosts_secrets_and_container_bind_mounts() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    env.write(
        "work/policies/0-imp.yaml",
        "rules:\n  - secrets: \"imp/config\"\n    format: sops-yaml\n    readers: [admins, host:imp]\n    owner: bot\n    mode: \"0440\"\n  - secrets: \"own/*\"\n    format: age\n    readers: [admins, container:own]\n  - secrets: \"shared/*\"\n    format: sops-json\n    readers: [admins, container:shared]\n",
    );
    env.keys_stdin(&["encrypt", "imp/config"], b"a: 1\n")
        .success();
    env.keys_stdin(&["encrypt", "own/token"], b"t").success();
    env.keys_stdin(&["encrypt", "shared/env"], b"{\"k\": \"v\"}")
        .success();
    env.keys(&["export", "nix"]).success();
    let text = std::fs::read_to_string(repo.join("keys.nix")).unwrap();
    for want in [
        "  imp = { ... }: {\n    sops.age.sshKeyPaths = [ \"/persistent/etc/ssh/ssh_host_ed25519_key\" ];\n    sops.age.keyFile = \"/persistent/var/lib/sops-nix/key.txt\";\n    sops.secrets.\"imp/config\" = {\n      sopsFile = ./secrets/imp/config.yaml;\n      format = \"yaml\";\n      key = \"\";\n      owner = \"bot\";\n      mode = \"0440\";\n    };\n",
        "    containers.own = {\n      bindMounts.\"/var/lib/keys/ssh_host_ed25519_key\" = {\n        hostPath = \"/persistent/etc/ssh/containers/own/ssh_host_ed25519_key\";\n        isReadOnly = true;\n      };\n      config = { ... }: {\n        age.identityPaths = [ \"/var/lib/keys/ssh_host_ed25519_key\" ];\n        age.secrets.\"own/token\" = {\n          file = ./secrets/own/token.age;\n        };\n",
        "    containers.shared = {\n      bindMounts.\"/var/lib/keys/ssh_host_ed25519_key\" = {\n        hostPath = \"/persistent/etc/ssh/ssh_host_ed25519_key\";\n",
        "        sops.secrets.\"shared/env\" = {\n          sopsFile = ./secrets/shared/env.json;\n          format = \"json\";\n",
        "  plain = { ... }: {\n  };\n",
    ] {
        assert!(text.contains(want), "missing:\n{want}\nin:\n{text}");
    }
    // Deterministic, and parsed by the real Nix.
    env.keys(&["export", "nix"]).success();
    assert_eq!(
        std::fs::read_to_string(repo.join("keys.nix")).unwrap(),
        text
    );
    let mut parse = Command::new(peer("nix-instantiate"));
    parse.arg("--parse").arg(repo.join("keys.nix"));
    env.apply(&mut parse);
    run(parse, b"").success();
    env.keys(&["check"]).success();
    // A policy change makes the committed export stale.
    append(
        &repo.join("policies/0-imp.yaml"),
        "  - secrets: \"imp/extra\"\n    format: age\n    readers: [admins, host:imp]\n",
    );
    env.keys_stdin(&["encrypt", "imp/extra"], b"x").success();
    let r = env.keys(&["check"]).failure(8);
    assert!(
        r.stdout.contains("keys.nix") || r.stderr.contains("keys.nix"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}
