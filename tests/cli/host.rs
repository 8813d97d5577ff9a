//! `keys host add|ls|rm` and `keys container add` on the demo fleet: keys from files,
//! from ssh-keyscan (a fake program and a real sshd) and generated, with the generated
//! private keys read back by the real ssh-keygen.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Run, TestEnv, mode_of, peer, run, vectors};
use crate::fixture::{fleet, tree};

pub(crate) fn check_clean(env: &TestEnv) {
    let run = env.keys(&["check"]).success();
    assert!(run.stdout.contains("ok: "), "{}", run.stdout);
}

fn vector(name: &str) -> PathBuf {
    vectors().join("keys").join(name)
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `ssh-keygen -lf FILE`'s `SHA256:…` fingerprint.
fn fingerprint(env: &TestEnv, pubkey: &Path) -> String {
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.arg("-lf").arg(pubkey);
    env.apply(&mut cmd);
    let out = run(cmd, b"").success().stdout;
    out.split_whitespace().nth(1).unwrap().to_string()
}

/// The `ssh-ed25519 base64` of the first line in a text that has one.
fn key_of(text: &str) -> String {
    let t: Vec<&str> = text
        .lines()
        .find(|l| l.contains("ssh-ed25519 "))
        .unwrap_or_else(|| panic!("no ssh-ed25519 key in {text:?}"))
        .split_whitespace()
        .collect();
    let i = t.iter().position(|x| *x == "ssh-ed25519").unwrap();
    format!("{} {}", t[i], t[i + 1])
}

/// The `ssh_key:` lines of a host file, in order (host first, then containers).
pub(crate) fn ssh_keys(host_file: &str) -> Vec<String> {
    host_file
        .lines()
        .filter(|l| l.trim_start().starts_with("ssh_key:"))
        .map(key_of)
        .collect()
}

/// Decrypts a generated key secret with the admin identity and returns the public key
/// `ssh-keygen -y` derives from it.
pub(crate) fn public_of_secret(env: &TestEnv, secret: &str) -> String {
    let out = env.root.join("plain-key");
    let _ = std::fs::remove_file(&out);
    env.keys(&["decrypt", secret, "-o", out.to_str().unwrap()])
        .success();
    assert_eq!(mode_of(&out), 0o600);
    assert!(read(&out).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.arg("-y").arg("-f").arg(&out);
    env.apply(&mut cmd);
    let public = run(cmd, b"").success().stdout;
    std::fs::remove_file(&out).unwrap();
    key_of(&public)
}

/// No file in the repository holds a private key in clear.
pub(crate) fn no_clear_private_key(repo: &Path) {
    for (path, data) in tree(repo) {
        let text = String::from_utf8_lossy(&data);
        assert!(
            !text.contains("PRIVATE KEY"),
            "{} holds a private key in clear",
            path.display()
        );
    }
}

/// A fake ssh-keyscan: records its arguments in `args` and prints `output`.
pub(crate) fn fake_keyscan(env: &mut TestEnv, output: &str) -> PathBuf {
    let args = env.root.join("keyscan-args");
    let script = env.script(
        "bin/fake-keyscan",
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\necho '# 203.0.113.9:2222 SSH-2.0-OpenSSH_9.2' >&2\ncat <<'END'\n{output}\nEND\n",
            args.display()
        ),
    );
    env.set("KEYS_SSH_KEYSCAN", script.display().to_string());
    args
}

#[test]
fn add_with_key_reads_public_key_and_keyscan_lines() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let pubkey = vector("ed25519-01.pub");
    let run = env
        .keys(&[
            "host",
            "add",
            "web",
            "--key",
            pubkey.to_str().unwrap(),
            "--address",
            "192.0.2.7",
            "--ssh-port",
            "2200",
            "--system",
            "x86_64-linux",
            "--flake-attr",
            "webserver",
            "--persist",
            "/persist",
        ])
        .success();
    let fp = fingerprint(&env, &pubkey);
    let age = read(&vector("ed25519-01.age-recipient"));
    crate::assert_output!(env, "add_web", run.stdout);
    assert!(run.stdout.contains(&fp), "{}", run.stdout);
    assert!(run.stdout.contains(age.trim()), "{}", run.stdout);
    let file = repo.join("recipients/hosts/web.yaml");
    assert_eq!(mode_of(&file), 0o644);
    let text = read(&file);
    assert_eq!(ssh_keys(&text), vec![key_of(&read(&pubkey))]);
    let status = env.keys(&["status", "--long"]).success().stdout;
    // web's address, port, system, flake attribute and persist path.
    crate::assert_output!(env, "status_with_web", status);
    assert!(!repo.join("policies/00-host-keys.yaml").exists());
    check_clean(&env);

    // A known_hosts / ssh-keyscan line, with other key types around it.
    let line = format!(
        "# scanned\n[203.0.113.9]:2222 {}\n[203.0.113.9]:2222 {}",
        read(&vector("ecdsa-01.pub")).trim(),
        key_of(&read(&vector("ed25519-02.pub")))
    );
    let scanned = env.write("scan.txt", line);
    env.keys(&["host", "add", "db", "--key", scanned.to_str().unwrap()])
        .success();
    let ls = env.keys(&["host", "ls"]).success().stdout;
    // db without an address (-), web at 192.0.2.7:2200, vps-arm with its container.
    crate::assert_output!(env, "host_ls", &ls);
    // The table cuts the keys to fit 80 columns; the JSON has them whole.
    let json = env.keys(&["host", "ls", "--json"]).success().stdout;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let db = &json["hosts"][0];
    assert_eq!(db["name"], "db");
    assert_eq!(
        db["fingerprint"],
        fingerprint(&env, &vector("ed25519-02.pub"))
    );
    assert_eq!(db["age"], read(&vector("ed25519-02.age-recipient")).trim());
    assert_eq!(db["address"], serde_json::Value::Null);
    check_clean(&env);
}

#[test]
fn generate_stores_the_private_key_for_the_admins_only() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let run = env
        .keys(&[
            "host",
            "add",
            "fresh",
            "--generate",
            "--address",
            "fresh.example",
        ])
        .success();
    assert!(!run.stdout.contains("PRIVATE") && !run.stderr.contains("PRIVATE"));
    // The policy file created for generated keys, and the secret for the admins.
    env.snapshots_of_new_keys()
        .bind(|| insta::assert_snapshot!("generate_fresh", run.stdout));
    let policy = read(&repo.join("policies/00-host-keys.yaml"));
    assert!(policy.contains("secrets: \"hosts/**/ssh_host_ed25519_key\""));
    assert!(policy.contains("readers: [admins]") && policy.starts_with('#'));

    let host_file = read(&repo.join("recipients/hosts/fresh.yaml"));
    let keys = ssh_keys(&host_file);
    assert_eq!(keys.len(), 1);
    assert!(host_file.contains("root@fresh"), "{host_file}");
    let secret = repo.join("secrets/hosts/fresh/ssh_host_ed25519_key.age");
    assert!(
        std::fs::read(&secret)
            .unwrap()
            .starts_with(b"age-encryption.org/v1\n")
    );
    assert_eq!(
        public_of_secret(&env, "hosts/fresh/ssh_host_ed25519_key"),
        keys[0]
    );
    no_clear_private_key(&repo);

    // keys.lock: encrypted to the admin alone, not to the hosts or containers the
    // catch-all rule of the other policy names.
    let lock = read(&repo.join("secrets/keys.lock"));
    let line = lock
        .lines()
        .find(|l| l.starts_with("hosts/fresh/ssh_host_ed25519_key age "))
        .unwrap_or_else(|| panic!("{lock}"));
    let admin = read(&repo.join("recipients/admins/demo.pub"));
    let admin = admin.lines().find(|l| l.starts_with("age1")).unwrap();
    // The lock keeps a short fingerprint: the recipient's first 16 characters.
    assert_eq!(line.split(' ').nth(3), Some(&admin[..16]), "{line}");
    check_clean(&env);

    // A second generated host reuses the rule; `rm --with-key` removes key and lock line.
    let run = env.keys(&["host", "add", "other", "--generate"]).success();
    assert!(!run.stdout.contains("00-host-keys"), "{}", run.stdout);
    let run = env.keys(&["host", "rm", "fresh", "--with-key"]).success();
    crate::assert_output!(env, "rm_fresh_with_key", run.stdout);
    assert!(!secret.exists() && !repo.join("secrets/hosts/fresh").exists());
    assert!(!read(&repo.join("secrets/keys.lock")).contains("hosts/fresh/"));
    let run = env.keys(&["host", "rm", "other"]).success();
    crate::assert_output!(env, "rm_other_keeps_its_key", run.stdout);
    check_clean(&env);
}

#[test]
fn keyscan_runs_the_program_given_and_records_address_and_port() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let key = key_of(&read(&vector("ed25519-03.pub")));
    let args = fake_keyscan(&mut env, &format!("[203.0.113.9]:2222 {key}"));
    let run = env
        .keys(&[
            "host",
            "add",
            "scanned",
            "--keyscan",
            "203.0.113.9:2222",
            "--yes",
        ])
        .success();
    assert_eq!(read(&args), "-T\n10\n-t\ned25519\n-p\n2222\n203.0.113.9\n");
    let fp = fingerprint(&env, &vector("ed25519-03.pub"));
    assert!(
        run.stderr.contains(&format!(
            "203.0.113.9 port 2222 has host key ssh-ed25519 {fp}"
        )),
        "{}",
        run.stderr
    );
    let text = read(&repo.join("recipients/hosts/scanned.yaml"));
    assert_eq!(ssh_keys(&text), vec![key.clone()]);
    assert!(
        text.contains("address: 203.0.113.9\nssh_port: 2222\n"),
        "{text}"
    );
    check_clean(&env);

    // An explicit --address wins; --ssh-port is the port scanned when none is given.
    env.keys(&[
        "host",
        "add",
        "scanned2",
        "--keyscan",
        "10.0.0.1",
        "--ssh-port",
        "2022",
        "--address",
        "scanned2.example",
        "--yes",
    ])
    .success();
    assert!(read(&args).contains("-p\n2022\n10.0.0.1\n"));
    let text = read(&repo.join("recipients/hosts/scanned2.yaml"));
    assert!(
        text.contains("address: scanned2.example\nssh_port: 2022\n"),
        "{text}"
    );
    check_clean(&env);
}

#[test]
fn keyscan_without_a_terminal_or_yes_fails_at_once() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let args = fake_keyscan(&mut env, "");
    let before = tree(&repo);
    let run = env
        .keys(&["host", "add", "scanned", "--keyscan", "203.0.113.9"])
        .failure(2);
    crate::assert_output!(env, "keyscan_without_a_terminal", run.stderr);
    assert!(run.elapsed < Duration::from_secs(5));
    assert!(!args.exists(), "ssh-keyscan must not run");
    assert_eq!(tree(&repo), before);
}

#[test]
fn keyscan_failures_name_the_program_and_what_it_said() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = tree(&repo);
    // Only another key type: refused by name.
    fake_keyscan(
        &mut env,
        &format!("203.0.113.9 {}", read(&vector("ecdsa-01.pub")).trim()),
    );
    let run = env
        .keys(&["host", "add", "h", "--keyscan", "203.0.113.9", "--yes"])
        .failure(3);
    crate::assert_output!(env, "keyscan_finds_only_ecdsa", run.stderr);
    // Nothing at all: an external failure quoting its stderr.
    fake_keyscan(&mut env, "");
    let run = env
        .keys(&["host", "add", "h", "--keyscan", "203.0.113.9", "--yes"])
        .failure(9);
    crate::assert_output!(env, "keyscan_finds_nothing", run.stderr);
    // A missing program.
    env.set("KEYS_SSH_KEYSCAN", "/nonexistent/ssh-keyscan");
    let run = env
        .keys(&["host", "add", "h", "--keyscan", "203.0.113.9", "--yes"])
        .failure(9);
    crate::assert_output!(env, "keyscan_missing", run.stderr);
    // An address that would read as an option.
    env.keys(&["host", "add", "h", "--keyscan=-oProxyCommand=x", "--yes"])
        .failure(2);
    assert_eq!(tree(&repo), before);
}

/// An sshd on 127.0.0.1 with a fresh host key, stopped when dropped.
pub(crate) struct Sshd {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    pubkey: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(env: &TestEnv) -> Sshd {
    start_sshd_with_key(env, None)
}

/// A real sshd on a free local port, serving `host_key` (OpenSSH private key text)
/// or, without one, a key ssh-keygen makes.
pub(crate) fn start_sshd_with_key(env: &TestEnv, host_key: Option<&str>) -> Sshd {
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.is_file(),
        "/usr/sbin/sshd is not installed: run scripts/test, which installs openssh-server"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = dir.path().join("ssh_host_ed25519_key");
    if let Some(text) = host_key {
        std::fs::write(&key, text).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    } else {
        let mut cmd = Command::new(peer("ssh-keygen"));
        cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "sshd-test", "-f"])
            .arg(&key);
        env.apply(&mut cmd);
        run(cmd, b"").success();
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM no\nStrictModes no\n",
            key.display(),
            dir.path().join("sshd.pid").display()
        ),
    )
    .unwrap();
    // As root, sshd wants its privilege separation directory; run it as nobody instead.
    let root = rustix::process::geteuid().is_root();
    let mut cmd = if root {
        for f in [dir.path(), &key, &config] {
            std::os::unix::fs::chown(f, Some(65534), Some(65534)).unwrap();
        }
        let mut c = Command::new(peer("setpriv"));
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(sshd);
        c
    } else {
        Command::new(sshd)
    };
    let child = cmd
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sshd");
    let server = Sshd {
        child,
        port,
        pubkey: key.with_extension("pub"),
        _dir: dir,
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn keyscan_reads_the_key_of_a_real_sshd() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    peer("ssh-keyscan");
    let sshd = start_sshd(&env);
    let target = format!("127.0.0.1:{}", sshd.port);
    let run = env
        .keys(&["host", "add", "local", "--keyscan", &target, "--yes"])
        .success();
    let fp = fingerprint(&env, &sshd.pubkey);
    assert!(run.stderr.contains(&fp), "{}", run.stderr);
    let text = read(&repo.join("recipients/hosts/local.yaml"));
    assert_eq!(ssh_keys(&text), vec![key_of(&read(&sshd.pubkey))]);
    assert!(
        text.contains(&format!("address: 127.0.0.1\nssh_port: {}\n", sshd.port)),
        "{text}"
    );
    check_clean(&env);
}

#[test]
fn other_key_types_are_refused_by_name() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = tree(&repo);
    for (file, kind) in [
        ("ecdsa-01.pub", "ecdsa-sha2-nistp256"),
        ("rsa-01.pub", "ssh-rsa"),
    ] {
        let path = vector(file);
        let run = env
            .keys(&["host", "add", "h", "--key", path.to_str().unwrap()])
            .failure(3);
        crate::assert_output!(env, format!("unsupported_{kind}"), run.stderr);
    }
    let age = env.write("age.txt", read(&vector("ed25519-01.age-recipient")));
    let run = env
        .keys(&["host", "add", "h", "--key", age.to_str().unwrap()])
        .failure(3);
    crate::assert_output!(env, "unsupported_age", run.stderr);
    let junk = env.write("junk.txt", "ssh-ed25519 AAAA\n");
    env.keys(&["host", "add", "h", "--key", junk.to_str().unwrap()])
        .failure(3);
    assert_eq!(tree(&repo), before);
}

#[test]
fn taken_names_and_bad_arguments_leave_every_file_unchanged() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = tree(&repo);
    let pubkey = vector("ed25519-01.pub");
    let run = env
        .keys(&["host", "add", "vps-arm", "--generate"])
        .failure(5);
    crate::assert_output!(env, "host_exists", run.stderr);
    env.keys(&["host", "add", "vps-x86", "--key", pubkey.to_str().unwrap()])
        .failure(5);
    let run = env
        .keys(&["host", "add", "nannuo-bot", "--generate"])
        .failure(3);
    crate::assert_output!(env, "name_of_a_container", run.stderr);
    fake_keyscan(&mut env, "");
    env.keys(&["host", "add", "vps-arm", "--keyscan", "192.0.2.1", "--yes"])
        .failure(5);
    env.keys(&["host", "add", "../evil", "--generate"])
        .failure(3);
    env.keys(&[
        "host",
        "add",
        "h",
        "--generate",
        "--system",
        "riscv64-linux",
    ])
    .failure_usage();
    env.keys(&["host", "add", "h", "--generate", "--persist", "relative"])
        .failure(3);
    env.keys(&["host", "add", "h"]).failure_usage();
    env.keys(&[
        "host",
        "add",
        "h",
        "--generate",
        "--key",
        pubkey.to_str().unwrap(),
    ])
    .failure_usage();
    let run = env
        .keys(&["container", "add", "vps-x86", "--host", "vps-arm"])
        .failure(5);
    crate::assert_output!(env, "container_name_of_a_host", run.stderr);
    env.keys(&["container", "add", "nannuo-bot", "--host", "vps-x86"])
        .failure(3);
    env.keys(&["container", "add", "c", "--host", "nowhere"])
        .failure(3);
    assert_eq!(tree(&repo), before);
}

#[test]
fn host_rm_is_refused_while_a_policy_names_the_host_or_its_containers() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = tree(&repo);
    let run = env.keys(&["host", "rm", "vps-arm"]).failure(3);
    crate::assert_output!(env, "rm_named_by_a_rule", run.stderr);
    // Only a container of it named, through a group.
    env.write(
        "work/policies/default.yaml",
        "groups:\n  admins: [demo]\n  bots: [container:nannuo-bot]\nrules:\n  - secrets: \"**\"\n    format: age\n    readers: [admins, bots]\n",
    );
    let run = env.keys(&["host", "rm", "vps-arm"]).failure(3);
    crate::assert_output!(env, "rm_container_named_by_a_rule", run.stderr);
    assert!(repo.join("recipients/hosts/vps-arm.yaml").exists());
    env.keys(&["host", "rm", "nowhere"]).failure(3);
    let run = env.keys(&["host", "rm", "vps-x86"]).success();
    crate::assert_output!(env, "rm_vps_x86", run.stdout);
    assert!(!repo.join("recipients/hosts/vps-x86.yaml").exists());
    let ls = env.keys(&["host", "ls"]).success().stdout;
    crate::assert_output!(env, "host_ls_without_vps_x86", ls);
    drop(before);
    check_clean(&env);
}

trait UsageFailure {
    fn failure_usage(self) -> Run;
}

impl UsageFailure for Run {
    /// A clap usage error: exit 2 (clap's own message, not `keys: error:`).
    #[track_caller]
    fn failure_usage(self) -> Run {
        assert_eq!(
            self.code, 2,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A fleet with a generated host `h` whose secrets are an age file and a sops file.
fn generated_host(env: &mut TestEnv) -> PathBuf {
    let repo = fleet(env);
    env.keys(&["host", "add", "h", "--generate"]).success();
    env.write(
        "work/policies/0-h.yaml",
        "rules:\n  - secrets: \"h/*\"\n    format: age\n    readers: [admins, host:h]\n  - secrets: \"hs/*\"\n    format: sops-yaml\n    readers: [admins, host:h]\n",
    );
    env.keys_stdin(&["encrypt", "h/token"], b"canary-h")
        .success();
    env.keys_stdin(&["encrypt", "hs/conf"], b"a: canary-hs\n")
        .success();
    repo
}

/// The key `recipients/hosts/h.yaml` names, and the public key of the private key
/// stored for it, derived by ssh-keygen; the stored key is also left in `out`.
fn host_and_stored(env: &TestEnv, repo: &Path, out: &Path) -> (String, String) {
    let named = ssh_keys(&read(&repo.join("recipients/hosts/h.yaml")))[0].clone();
    let _ = std::fs::remove_file(out);
    env.keys(&[
        "decrypt",
        "hosts/h/ssh_host_ed25519_key",
        "-o",
        out.to_str().unwrap(),
    ])
    .success();
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.arg("-y").arg("-f").arg(out);
    env.apply(&mut cmd);
    (named, key_of(&run(cmd, b"").success().stdout))
}

#[test]
fn a_rotation_killed_at_any_point_keeps_a_private_key_for_the_host_file() {
    let mut env = TestEnv::new();
    let repo = generated_host(&mut env);
    let stored = env.root.join("stored-key");
    let mut points = 0;
    let mut reported = 0;
    // Every change a rotation makes to the repository is a rename, a link or an
    // unlink: killing it before each of them in turn leaves each state it can be in.
    for syscall in [
        "renameat",
        "rename",
        "renameat2",
        "linkat",
        "unlink",
        "unlinkat",
    ] {
        for n in 1.. {
            let mut cmd = Command::new(peer("strace"));
            cmd.args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={syscall}"))
                .arg("-e")
                .arg(format!("inject={syscall}:signal=KILL:when={n}"))
                .arg(crate::common::keys_bin())
                .args(["host", "rotate", "h", "--generate"]);
            env.apply(&mut cmd);
            let r = run(cmd, b"");
            let at = format!("killed before {syscall} #{n}");
            assert!(!r.stderr.contains("PRIVATE"), "{at}: {}", r.stderr);
            let (named, have) = host_and_stored(&env, &repo, &stored);
            if r.code == 0 {
                assert_eq!(named, have, "{at}: finished with another key");
                check_clean(&env);
                break;
            }
            points += 1;
            let check = env.keys(&["check"]);
            if named != have {
                // The host file names a key whose private half is not stored:
                // check says so, and the next run puts things right.
                assert_eq!(check.code, 8, "{at}: check is clean\n{}", check.stdout);
                assert!(
                    check
                        .stdout
                        .contains(".keys-rotation: a host key rotation of host h was interrupted")
                        || check
                            .stdout
                            .contains("recipients/hosts/h.yaml: its ssh_key"),
                    "{at}: {}",
                    check.stdout
                );
            }
            if check.code != 0 {
                reported += 1;
                // The next run puts it right: a rekey, or the rotation run again.
                let rerun = if reported % 2 == 0 {
                    env.keys(&["rekey"])
                } else {
                    env.keys(&["host", "rotate", "h", "--generate"])
                };
                assert_eq!(rerun.code, 0, "{at}: {}", rerun.stderr);
                check_clean(&env);
                // Whatever happened, the key the host file names is the one stored.
                let (named, have) = host_and_stored(&env, &repo, &stored);
                assert_eq!(named, have, "{at}: the host file names a lost key");
            }
            // ...and it opens the host's secrets.
            let opened = env
                .keys(&["decrypt", "-i", stored.to_str().unwrap(), "h/token"])
                .success();
            assert_eq!(opened.stdout, "canary-h", "{at}");
            assert!(n < 40, "{at}: the rotation never finished");
        }
    }
    let opened = env
        .keys(&["decrypt", "-i", stored.to_str().unwrap(), "hs/conf"])
        .success();
    assert_eq!(opened.stdout, "a: canary-hs\n");
    println!("rotation killed at {points} points, {reported} reported by check");
    assert!(points >= 12, "{points} kill points");
}

#[test]
fn a_host_file_whose_key_is_not_the_generated_one_is_reported() {
    let mut env = TestEnv::new();
    let repo = generated_host(&mut env);
    let public = repo.join("secrets/hosts/h/ssh_host_ed25519_key.pub");
    let file = repo.join("recipients/hosts/h.yaml");
    assert_eq!(key_of(&read(&public)), ssh_keys(&read(&file))[0]);
    check_clean(&env);
    // The host file's key replaced by hand with another one.
    let other = key_of(&read(&vector("ed25519-01.pub")));
    let text = read(&file);
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("ssh_key:") {
                format!("ssh_key: {other} root@h\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&file, edited).unwrap();
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.contains(&format!(
            "recipients/hosts/h.yaml: its ssh_key ({}) is not the generated key stored in secrets/hosts/h/ssh_host_ed25519_key.age",
            fingerprint(&env, &vector("ed25519-01.pub"))
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("keys host rotate h --key FILE"),
        "{}",
        run.stdout
    );
    // A public half that does not belong to its secret, or to no secret.
    std::fs::write(&file, text).unwrap();
    check_clean(&env);
    std::fs::write(&public, "not a key\n").unwrap();
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.contains(
            "secrets/hosts/h/ssh_host_ed25519_key.pub: is not the ssh-ed25519 public key of secrets/hosts/h/ssh_host_ed25519_key.age"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn host_rotate_records_a_key_comment_that_yaml_would_misread() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let key: Vec<String> = read(&vector("ed25519-02.pub"))
        .split_whitespace()
        .take(2)
        .map(str::to_string)
        .collect();
    let line = format!("{} ops: laptop #2", key.join(" "));
    let file = env.write("new.pub", format!("{line}\n"));
    env.keys(&["host", "rotate", "vps-x86", "--key", file.to_str().unwrap()])
        .success();
    let text = read(&repo.join("recipients/hosts/vps-x86.yaml"));
    assert!(text.contains(&format!("\nssh_key: \"{line}\"\n")), "{text}");
    check_clean(&env);
}

#[test]
fn every_command_names_a_missing_host_in_one_way_and_exits_3() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = tree(&repo);
    let commands: &[&[&str]] = &[
        &["host", "rm", "nowhere"],
        &["host", "rotate", "nowhere", "--generate"],
        &["container", "add", "c", "--host", "nowhere"],
        &["rekey", "--host", "nowhere"],
        &["stage-install", "--host", "nowhere"],
        &["install", "--host", "nowhere", "--dry-run"],
        &["update", "--host", "nowhere", "--dry-run"],
    ];
    for args in commands {
        let run = env.keys(args).failure(3);
        assert_eq!(
            run.stderr,
            "keys: error: no host named nowhere (no recipients/hosts/nowhere.yaml)\n  \
             hint: `keys host ls` lists the hosts; `keys host add NAME` adds one\n",
            "{args:?}"
        );
    }
    assert_eq!(tree(&repo), before);
}

#[test]
fn library_errors_of_hosts_name_no_command_line_flag() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = tree(&repo);
    // A rotation to the key the host has: invalid input, the flag only in the hint.
    let text = read(&repo.join("recipients/hosts/vps-x86.yaml"));
    let line = text.lines().find_map(|l| l.strip_prefix("ssh_key: "));
    let key = env.write("same.pub", line.unwrap());
    let run = env
        .keys(&["host", "rotate", "vps-x86", "--key", key.to_str().unwrap()])
        .failure(3);
    assert!(
        run.stderr
            .starts_with("keys: error: host vps-x86 already has this key\n  hint: "),
        "{}",
        run.stderr
    );
    // A scan target that does not parse: a usage error that names the target, not
    // the flag.
    let run = env
        .keys(&["host", "add", "h", "--keyscan=h:0", "--yes"])
        .failure(2);
    assert!(
        run.stderr.starts_with(
            "keys: error: ssh-keyscan target \"h:0\": the port is not a number from 1 to 65535\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(tree(&repo), before);
}

/// A host whose key was made before keys (seed 001 keeps it under
/// `secrets-init/keys/persistent/etc/ssh/`): --key takes the private key and records
/// its public half; --store-private also stores it as the host's key secret.
#[test]
fn add_with_an_existing_private_key_records_it_and_stores_it_on_request() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let dir = env.root.join("old");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("ssh_host_ed25519_key");
    let mut keygen = Command::new(peer("ssh-keygen"));
    keygen.args(["-q", "-t", "ed25519", "-N", "", "-C", "root@old", "-f"]);
    keygen.arg(&key);
    env.apply(&mut keygen);
    crate::common::run(keygen, b"").success();
    let public = key_of(&read(&dir.join("ssh_host_ed25519_key.pub")));
    let private = read(&key);
    let shown = key.display().to_string();

    // Recorded from the private key; nothing stored without --store-private.
    let run = env
        .keys(&[
            "host",
            "add",
            "old",
            "--key",
            &shown,
            "--address",
            "192.0.2.7",
        ])
        .success();
    assert!(!run.stdout.contains("PRIVATE") && !run.stderr.contains("PRIVATE"));
    assert_eq!(
        ssh_keys(&read(&repo.join("recipients/hosts/old.yaml"))),
        vec![public.clone()]
    );
    assert!(!repo.join("secrets/hosts/old").exists());
    env.keys(&["host", "rm", "old"]).success();

    // Stored: the admins read back the very bytes of the file; the host file names it.
    env.keys(&[
        "host",
        "add",
        "old",
        "--key",
        &shown,
        "--store-private",
        "--address",
        "192.0.2.7",
    ])
    .success();
    assert_eq!(
        ssh_keys(&read(&repo.join("recipients/hosts/old.yaml"))),
        vec![public.clone()]
    );
    let back = env
        .keys(&["decrypt", "hosts/old/ssh_host_ed25519_key"])
        .success();
    assert_eq!(back.stdout, private);
    assert_eq!(
        public_of_secret(&env, "hosts/old/ssh_host_ed25519_key"),
        public
    );
    no_clear_private_key(&repo);
    check_clean(&env);

    // A public key cannot be stored, and a passphrase-protected key is no host key.
    let pubfile = dir.join("ssh_host_ed25519_key.pub").display().to_string();
    let before = crate::fixture::tree(&repo);
    let run = env
        .keys(&["host", "add", "p", "--key", &pubfile, "--store-private"])
        .failure(3);
    assert!(
        run.stderr
            .contains("--store-private needs the host's private key"),
        "{}",
        run.stderr
    );
    let locked = dir.join("locked");
    let mut keygen = Command::new(peer("ssh-keygen"));
    keygen.args(["-q", "-t", "ed25519", "-N", "pass phrase", "-f"]);
    keygen.arg(&locked);
    env.apply(&mut keygen);
    crate::common::run(keygen, b"").success();
    let run = env
        .keys(&["host", "add", "q", "--key", &locked.display().to_string()])
        .failure(3);
    assert!(
        run.stderr.contains("passphrase-protected"),
        "{}",
        run.stderr
    );
    assert_eq!(crate::fixture::tree(&repo), before);
}

/// `keys host rename` and `keys admin rename`: every place that names the reader
/// follows, nothing is re-encrypted, and `check` stays clean.
#[test]
fn hosts_and_admins_are_renamed_everywhere_they_are_named() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys(&["host", "add", "fresh", "--generate"]).success();
    env.keys(&["container", "add", "box", "--host", "fresh", "--own-key"])
        .success();
    env.write(
        "work/policies/0-fresh.yaml",
        "groups:\n  ops: [demo, host:fresh]\nrules:\n  - secrets: \"fresh/*\"\n    format: age\n    readers: [ops, container:box]\n  - secrets: \"both/*\"\n    format: age\n    readers:\n      - demo\n      - host:fresh # the web host\n",
    );
    env.keys_stdin(&["encrypt", "fresh/token"], b"t").success();
    env.keys_stdin(&["encrypt", "both/token"], b"b").success();
    env.keys(&["check"]).success();
    let values = |repo: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let dir = repo.join("secrets");
        tree(&dir)
            .into_iter()
            .filter_map(|(p, d)| Some((p.strip_prefix(&dir).ok()?.to_path_buf(), d)))
            .filter(|(p, _)| !p.ends_with("keys.lock") && !p.starts_with("hosts"))
            .collect()
    };
    let secrets_before = values(&repo);

    // A name that is taken changes nothing.
    let before = crate::fixture::tree(&repo);
    env.keys(&["host", "rename", "fresh", "vps-arm"]).failure(3);
    assert!(
        crate::fixture::tree(&repo) == before,
        "a refused rename changed files"
    );

    let run = env.keys(&["host", "rename", "fresh", "web"]).success();
    assert!(
        run.stdout
            .contains("renamed   recipients/hosts/fresh.yaml -> recipients/hosts/web.yaml"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "moved     hosts/fresh/ssh_host_ed25519_key -> hosts/web/ssh_host_ed25519_key"
        ),
        "{}",
        run.stdout
    );
    let policy = read(&repo.join("policies/0-fresh.yaml"));
    assert!(policy.contains("ops: [demo, host:web]"), "{policy}");
    assert!(
        policy.contains("      - host:web # the web host\n"),
        "{policy}"
    );
    assert!(policy.contains("secrets: \"fresh/*\""), "{policy}");
    assert!(read(&repo.join("recipients/hosts/web.yaml")).contains("flake_attr: fresh\n"));
    assert!(!repo.join("secrets/hosts/fresh").exists());
    env.keys(&["check"]).success();
    env.keys(&["decrypt", "hosts/web/ssh_host_ed25519_key"])
        .success();

    let run = env.keys(&["admin", "rename", "demo", "alice"]).success();
    assert!(
        run.stdout.contains("recipients/admins/alice.pub"),
        "{}",
        run.stdout
    );
    let policy = read(&repo.join("policies/0-fresh.yaml"));
    assert!(policy.contains("ops: [alice, host:web]"), "{policy}");
    assert!(policy.contains("      - alice\n"), "{policy}");
    assert!(read(&repo.join("policies/default.yaml")).contains("admins: [alice]"));
    env.keys(&["check"]).success();
    assert_eq!(env.keys(&["decrypt", "both/token"]).success().stdout, "b");
    // Nothing was re-encrypted.
    assert!(values(&repo) == secrets_before, "a secret was re-encrypted");
}
