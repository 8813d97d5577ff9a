//! The deploy commands, stage-install, install and update, one file each, and what
//! they share: a fleet of generated hosts, a nixos-anywhere stand-in that records what
//! it was given, and a real OpenSSH server on 127.0.0.1.

mod anywhere;
mod build;
mod install;
mod local;
mod rotate;
mod stage_install;
mod update;

pub(crate) use std::collections::BTreeMap;
pub(crate) use std::os::unix::fs::PermissionsExt;
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::process::{Child, Command};

pub(crate) use crate::common::{TestEnv, executable, mode_of, peer, run, runtime_dir};
pub(crate) use crate::fixture::fleet;

/// Every entry below `dir` with its mode, relative to `dir`.
pub(crate) fn listing(dir: &Path) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        out.insert(rel, e.metadata().unwrap().permissions().mode() & 0o7777);
    }
    out
}

/// Runs keys, expecting exit `code` and `needle` in its error.
#[track_caller]
pub(crate) fn refused(env: &TestEnv, args: &[&str], code: i32, needle: &str) -> crate::common::Run {
    let r = env.keys(args).failure(code);
    assert!(r.stderr.contains(needle), "{}", r.stderr);
    r
}

pub(crate) fn expect(entries: &[(&str, u32)]) -> BTreeMap<String, u32> {
    entries.iter().map(|(p, m)| (p.to_string(), *m)).collect()
}

pub(crate) fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).unwrap();
    s.push_str(text);
    std::fs::write(path, s).unwrap();
}

/// The derived age1 key of an OpenSSH private key, through ssh-keygen -y and keys to-age.
pub(crate) fn age_of_private(env: &TestEnv, key: &Path) -> String {
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.arg("-y").arg("-f").arg(key);
    env.apply(&mut cmd);
    let public = run(cmd, b"").success().stdout;
    env.keys_stdin(&["to-age"], public.as_bytes())
        .success()
        .stdout
}

pub(crate) fn host_file_age(env: &TestEnv, repo: &Path, host: &str) -> String {
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
pub(crate) fn generated_fleet(env: &mut TestEnv) -> PathBuf {
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

/// A `nixos-anywhere` that records its arguments and copies the --extra-files tree,
/// then exits with `code`.
pub(crate) fn stand_in(env: &mut TestEnv, code: i32) -> (PathBuf, PathBuf) {
    let log = env.root.join("anywhere.args");
    let copy = env.root.join("anywhere.copy");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{log}'\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --extra-files ]; then mkdir -p '{copy}' && cp -a \"$2/.\" '{copy}/'; fi\n  shift\ndone\nexit {code}\n",
        log = log.display(),
        copy = copy.display()
    );
    let bin = env.script("bin/nixos-anywhere", script);
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    env.set("PATH", path);
    (log, copy)
}

/// A real sshd on 127.0.0.1, as the current user, with the given host key; its
/// sessions get `bin` first on PATH and TMPDIR set to `tmp`.
pub(crate) struct Sshd {
    child: Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn sshd(
    dir: &Path,
    host_key: &Path,
    authorized: &Path,
    bin: &Path,
    tmp: &Path,
    port: u16,
) -> Sshd {
    let sshd = PathBuf::from("/usr/sbin/sshd");
    assert!(
        sshd.exists(),
        "sshd is missing: install openssh-server (scripts/test does)"
    );
    if rustix::process::geteuid().is_root() {
        // sshd wants its privilege separation directory even for one test session.
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let config = sshd_config(dir, host_key, authorized, bin, tmp, port);
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
pub(crate) fn keygen(path: &Path) {
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path);
    run(cmd, b"").success();
}

pub(crate) fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The demo fleet with a host `srv` whose generated key a throwaway sshd on
/// 127.0.0.1 will present, at the free port returned: the environment, the
/// repository, the private runtime directory and the port.
fn local_host() -> (TestEnv, PathBuf, tempfile::TempDir, u16) {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let rundir = runtime_dir(&mut env);
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
    (env, repo, rundir, port)
}

/// The configuration of a throwaway sshd on 127.0.0.1:`port` that presents
/// `host_key`, lets in the keys of `authorized`, and gives sessions `bin` first on
/// PATH and `tmp` as TMPDIR; its path, in `dir`.
pub(crate) fn sshd_config(
    dir: &Path,
    host_key: &Path,
    authorized: &Path,
    bin: &Path,
    tmp: &Path,
    port: u16,
) -> PathBuf {
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
    config
}

/// srv's generated host key decrypted for the server, and a client key pair whose
/// public half is the server's authorized_keys: (host key, client key, authorized).
fn server_keys(env: &TestEnv) -> (PathBuf, PathBuf, PathBuf) {
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
    (host_key, client, authorized)
}
