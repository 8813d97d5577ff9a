//! `keys update` beyond a root login and rsync 3: a ssh_user other than root (sudo,
//! on the host's real sshd), the rsync macOS ships (no `-s`, a stand-in for it), a
//! build here with `--build-on local` (a recording nixos-rebuild that connects with
//! the options it is given) and through Docker (a recording docker).

use super::*;

/// Who logs in: a user other than root. Run as root, the tests give sshd a private
/// mount namespace whose /etc/passwd adds `deploy` (uid 0, so that what the session
/// writes can be read back); run as anyone else, that user is already not root.
fn login_user() -> String {
    if rustix::process::geteuid().is_root() {
        "deploy".into()
    } else {
        user()
    }
}

/// A real sshd as [`sshd`] starts one, which also lets [`login_user`] in.
fn sshd_for_login(
    dir: &Path,
    host_key: &Path,
    authorized: &Path,
    bin: &Path,
    tmp: &Path,
    port: u16,
) -> Sshd {
    if !rustix::process::geteuid().is_root() {
        return sshd(dir, host_key, authorized, bin, tmp, port);
    }
    std::fs::create_dir_all("/run/sshd").unwrap();
    let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd.push_str("deploy:x:0:0:keys test:/root:/bin/sh\n");
    let passwd_file = dir.join(format!("passwd.{port}"));
    std::fs::write(&passwd_file, passwd).unwrap();
    let config = sshd_config(dir, host_key, authorized, bin, tmp, port);
    let child = Command::new("unshare")
        .args([
            "--mount",
            "sh",
            "-c",
            "mount --bind \"$1\" /etc/passwd && exec /usr/sbin/sshd -D -e -f \"$2\"",
            "sh",
        ])
        .arg(&passwd_file)
        .arg(&config)
        .stderr(std::fs::File::create(dir.join(format!("sshd.{port}.log"))).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "sshd did not start: {}",
            std::fs::read_to_string(dir.join(format!("sshd.{port}.log"))).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Sshd { child }
}

/// An executable script at `path`.
fn script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    executable(path, text);
}

/// Host `srv` on a real sshd at 127.0.0.1, logged into as [`login_user`], with a
/// committed flake, a secret it reads, and on the host a recording `sudo` and
/// `nixos-rebuild`.
struct Fleet {
    env: TestEnv,
    repo: PathBuf,
    client: String,
    flake_dir: PathBuf,
    remote_bin: PathBuf,
    sudo_log: PathBuf,
    rebuild_log: PathBuf,
    remote_tmp: PathBuf,
    authorized: PathBuf,
    port: u16,
    login: String,
    server: Option<Sshd>,
    _rundir: tempfile::TempDir,
}

impl Fleet {
    fn new(flake_dir_name: &str) -> Fleet {
        let (env, repo, rundir, port) = local_host();
        let login = login_user();
        let remote = env.root.join("remote");
        let flake_dir = remote.join(flake_dir_name);
        let remote_tmp = remote.join("tmp");
        std::fs::create_dir_all(&remote_tmp).unwrap();
        append(
            &repo.join("recipients/hosts/srv.yaml"),
            &format!(
                "ssh_user: {login}\nflake_dir: \"{}\"\n",
                flake_dir.display()
            ),
        );
        env.write(
            "work/policies/0-srv.yaml",
            "rules:\n  - secrets: \"srv/*\"\n    format: age\n    readers: [admins, host:srv]\n",
        );
        env.keys_stdin(&["encrypt", "srv/token"], b"srv-canary-token")
            .success();
        for (rel, text) in [
            ("work/flake.nix", "{ outputs = _: { }; }\n"),
            ("work/flake.lock", "{}\n"),
            ("work/modules/a.nix", "{ }\n"),
            ("work/.gitignore", "/.keys-writer\n/.keys-journal\n"),
        ] {
            env.write(rel, text);
        }
        crate::hook::git(&env, &["init", "-q"], b"").success();
        crate::hook::git(&env, &["add", "-A"], b"").success();

        let (host_key, client, authorized) = server_keys(&env);
        let remote_bin = env.root.join("remote-bin");
        let sudo_log = env.root.join("sudo.log");
        let rebuild_log = env.root.join("rebuild.args");
        // sudo that records what it runs, and insists on -n (no password prompt).
        script(
            &remote_bin.join("sudo"),
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n[ \"$1\" = -n ] || exit 64\nshift\nexec \"$@\"\n",
                sudo_log.display()
            ),
        );
        script(
            &remote_bin.join("nixos-rebuild"),
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
                rebuild_log.display()
            ),
        );
        let server = sshd_for_login(
            &env.root,
            &host_key,
            &authorized,
            &remote_bin,
            &remote_tmp,
            port,
        );
        Fleet {
            client: client.display().to_string(),
            env,
            repo,
            flake_dir,
            remote_bin,
            sudo_log,
            rebuild_log,
            remote_tmp,
            authorized,
            port,
            login,
            server: Some(server),
            _rundir: rundir,
        }
    }

    fn update(&self, more: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["update", "--host", "srv", "--ssh-key", &self.client]
            .map(String::from)
            .to_vec();
        args.extend(more.iter().map(|s| s.to_string()));
        args
    }

    /// Restarts the server with another host key than the one the repository pins.
    fn swap_host_key(&mut self) {
        drop(self.server.take());
        let other = self.env.root.join("other_host_key");
        keygen(&other);
        self.server = Some(sshd_for_login(
            &self.env.root,
            &other,
            &self.authorized,
            &self.remote_bin,
            &self.remote_tmp,
            self.port,
        ));
    }

    /// Puts `bin` first on the PATH keys runs with.
    fn local_bin(&mut self, bin: &Path) {
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        self.env.set("PATH", path);
    }
}

fn keys(f: &Fleet, args: &[String]) -> crate::common::Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    f.env.keys(&args)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A ssh_user other than root: the probe checks sudo works without a password, rsync
/// writes through `sudo -n rsync`, nixos-rebuild runs under `sudo -n`. The local
/// rsync is one without -s (macOS's 2.6.9 or openrsync): keys finds that out, leaves
/// -s out and quotes the remote path for the remote shell (a flake_dir with a space).
#[test]
fn a_user_other_than_root_updates_through_sudo_with_an_rsync_without_s() {
    let mut f = Fleet::new("etc nixos");
    let local_bin = f.env.root.join("local-bin");
    let rsync_log = f.env.root.join("rsync.args");
    // The old rsync: no -s, and its remote arguments go to the remote shell as they
    // are (what --old-args makes rsync 3 do).
    script(
        &local_bin.join("rsync"),
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in -s|--protect-args|--secluded-args) echo 'rsync: -s: unknown option' >&2; exit 1;; esac; done\nprintf '%s\\n' \"$@\" > '{}'\nexec '{}' --old-args \"$@\"\n",
            rsync_log.display(),
            peer("rsync").display()
        ),
    );
    f.local_bin(&local_bin);

    let dry = keys(&f, &f.update(&["--dry-run"])).success();
    assert!(
        dry.stdout
            .contains(&format!(" {}@127.0.0.1 'sudo -n true'\n", f.login)),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains(" '--rsync-path=sudo -n rsync' "),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains(" -s "), "{}", dry.stdout);
    assert!(!f.sudo_log.exists());

    let r = keys(&f, &f.update(&[])).success();
    assert!(
        r.stderr.contains(&format!(
            "keys: srv: sent 12 files to {}: .gitignore, flake.lock, flake.nix, modules/ (1), policies/ (3), recipients/ (4), 1 secret",
            f.flake_dir.display()
        )),
        "{}",
        r.stderr
    );
    for rel in [
        "flake.nix",
        "flake.lock",
        "modules/a.nix",
        "secrets/srv/token.age",
    ] {
        assert_eq!(
            std::fs::read(f.flake_dir.join(rel)).unwrap(),
            std::fs::read(f.repo.join(rel)).unwrap(),
            "{rel}"
        );
    }
    let sent = lines(&rsync_log);
    assert!(!sent.iter().any(|a| a == "-s"), "{sent:?}");
    assert!(
        sent.contains(&"--rsync-path=sudo -n rsync".to_string()),
        "{sent:?}"
    );
    let sudo = lines(&f.sudo_log);
    assert_eq!(sudo[0], "-n true");
    assert!(sudo[1].starts_with("-n rsync --server "), "{sudo:?}");
    assert_eq!(
        sudo[2],
        format!(
            "-n nixos-rebuild switch --flake {}#srv",
            f.flake_dir.display()
        )
    );
    assert_eq!(
        lines(&f.rebuild_log),
        [
            "switch",
            "--flake",
            &format!("{}#srv", f.flake_dir.display())
        ]
    );
    assert!(!r.stderr.contains("canary"));

    // sudo that wants a password: stopped at the connection, nothing sent.
    std::fs::remove_dir_all(&f.flake_dir).unwrap();
    script(
        &f.remote_bin.join("sudo"),
        "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n",
    );
    let r = keys(&f, &f.update(&[])).failure(9);
    assert_eq!(
        r.stderr.lines().nth(2).unwrap_or_default(),
        "keys: error: srv connecting failed (exit 1): sudo: a password is required; nothing was sent",
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("lets {} run sudo without a password", f.login)),
        "{}",
        r.stderr
    );
    assert!(!f.flake_dir.exists());
}

/// `--build-on local`: nixos-rebuild runs here with --target-host and the pinned ssh
/// options in NIX_SSHOPTS (the stand-in connects to the real sshd with them), and
/// nothing goes to flake_dir; through Docker, the same in the pinned image with the
/// known_hosts mounted. A host answering with another key stops it first.
#[test]
fn build_on_local_switches_from_here_with_the_host_key_pinned() {
    let mut f = Fleet::new("etc-nixos");
    let local_bin = f.env.root.join("local-bin");
    let args_log = f.env.root.join("local-rebuild.args");
    let opts_log = f.env.root.join("local-rebuild.sshopts");
    let marker = f.remote_tmp.join("switched");
    script(
        &local_bin.join("nixos-rebuild"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{args}'\nprintf '%s\\n' \"$NIX_SSHOPTS\" > '{opts}'\nwhile [ $# -gt 0 ]; do [ \"$1\" = --target-host ] && target=$2; shift; done\nexec ssh $NIX_SSHOPTS -o BatchMode=yes \"$target\" 'echo switched > {marker}'\n",
            args = args_log.display(),
            opts = opts_log.display(),
            marker = marker.display()
        ),
    );
    f.local_bin(&local_bin);

    keys(&f, &f.update(&["--via", "docker"])).failure(2);
    let r = f
        .env
        .keys(&["update", "--host", "nope", "--build-on", "local"])
        .failure(3);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "keys: error: no host named nope (no recipients/hosts/nope.yaml)"
    );
    let r = keys(&f, &f.update(&["--build-on", "local"])).success();
    assert!(
        r.stderr
            .contains("keys: srv: building here and switching with nixos-rebuild --target-host"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "switched\n");
    assert_eq!(
        lines(&args_log),
        [
            "switch",
            "--flake",
            ".#srv",
            "--target-host",
            &format!("{}@127.0.0.1", f.login),
            "--use-remote-sudo"
        ]
    );
    let opts = std::fs::read_to_string(&opts_log).unwrap();
    assert!(
        opts.starts_with(&format!(
            "-p {} -o StrictHostKeyChecking=yes -o UserKnownHostsFile=",
            f.port
        )),
        "{opts}"
    );
    assert!(
        opts.contains(&format!("-i {} -o IdentitiesOnly=yes", f.client)),
        "{opts}"
    );
    assert!(
        !f.flake_dir.exists(),
        "a local build sends nothing to flake_dir"
    );
    // The first connection ran sudo; the rest is nixos-rebuild's.
    assert_eq!(lines(&f.sudo_log), ["-n true"]);

    // Through Docker: nixos-rebuild from the flake's nixpkgs, in the pinned image, the
    // pinned known_hosts and the key mounted, NIX_SSHOPTS pointing at them.
    let docker_log = f.env.root.join("docker.args");
    let mounted = f.env.root.join("docker.mounted");
    script(
        &local_bin.join("docker"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{log}'\nfor a in \"$@\"; do case \"$a\" in *:/root/.gitconfig:ro|*:/root/.ssh/keys_known_hosts:ro) cat \"${{a%%:*}}\" >> '{mounted}';; esac; done\n",
            log = docker_log.display(),
            mounted = mounted.display()
        ),
    );
    keys(&f, &f.update(&["--build-on", "local", "--via", "docker"])).success();
    let args = lines(&docker_log);
    let sshopts = format!(
        "NIX_SSHOPTS=-p {} -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/root/.ssh/keys_known_hosts -o GlobalKnownHostsFile=/dev/null -o HostKeyAlgorithms=ssh-ed25519 -o UpdateHostKeys=no -o CheckHostIP=no -o ConnectTimeout=20 -i /root/.ssh/id -o IdentitiesOnly=yes",
        f.port
    );
    assert!(args.contains(&sshopts), "{args:?}");
    assert!(
        args.contains(&format!("{}:/root/.ssh/id:ro", f.client)),
        "{args:?}"
    );
    assert!(
        args.contains(&"keys-nix-2.35.2:/nix".to_string()),
        "{args:?}"
    );
    let tail = args.iter().position(|a| a == "nixos/nix:2.35.2").unwrap();
    assert_eq!(
        args[tail..],
        [
            "nixos/nix:2.35.2",
            "nix",
            "--extra-experimental-features",
            "nix-command flakes",
            "shell",
            "--inputs-from",
            "/work",
            "nixpkgs#nixos-rebuild",
            "--command",
            "nixos-rebuild",
            "switch",
            "--flake",
            "/work#srv",
            "--target-host",
            &format!("{}@127.0.0.1", f.login),
            "--use-remote-sudo",
        ]
    );
    let seen = std::fs::read_to_string(&mounted).unwrap();
    assert!(seen.contains("[safe]\n\tdirectory = /work\n"), "{seen}");
    assert!(
        seen.contains(&format!("[127.0.0.1]:{} ssh-ed25519 ", f.port)),
        "{seen}"
    );

    // Another host key: refused at the first connection, nixos-rebuild never runs.
    std::fs::remove_file(&args_log).unwrap();
    f.swap_host_key();
    let r = keys(&f, &f.update(&["--build-on", "local"])).failure(9);
    assert!(
        r.stderr
            .contains(&format!("127.0.0.1:{} does not present srv's key", f.port)),
        "{}",
        r.stderr
    );
    assert!(!args_log.exists());
}
