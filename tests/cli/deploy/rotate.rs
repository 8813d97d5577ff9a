//! `keys host rotate --generate --push`: the new key goes to a real sshd on
//! 127.0.0.1 whose `HostKey` is the file the push writes, sshd is reloaded by a real
//! SIGHUP (through a `systemctl` stand-in on the host's PATH that records what it was
//! asked), and the host must answer with the new key before the repository records
//! it. Every failure leaves the host's key and the repository as they were.

use super::*;
use crate::fixture::tree;

/// A running host `srv` with a generated key, a persisted key file its sshd serves,
/// a client key, and the stand-ins on its PATH.
struct Live {
    env: TestEnv,
    repo: PathBuf,
    key_file: PathBuf,
    client: String,
    log: PathBuf,
    mode: PathBuf,
    authorized: PathBuf,
    bin: PathBuf,
    tmp: PathBuf,
    port: u16,
    server: Option<Sshd>,
    _rundir: tempfile::TempDir,
}

impl Live {
    fn new() -> Live {
        let mut env = TestEnv::new();
        let repo = fleet(&mut env);
        let rundir = runtime_dir(&mut env);
        let port = free_port();
        let remote = env.root.join("remote");
        let persist = remote.join("persist");
        let ssh_dir = persist.join("etc/ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        let tmp = remote.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        env.keys(&[
            "host",
            "add",
            "srv",
            "--generate",
            "--address",
            "127.0.0.1",
            "--ssh-port",
            &port.to_string(),
            "--persist",
            &persist.display().to_string(),
        ])
        .success();
        append(
            &repo.join("recipients/hosts/srv.yaml"),
            &format!("ssh_user: {}\n", user()),
        );
        env.write(
            "work/policies/0-srv.yaml",
            "rules:\n  - secrets: \"srv/conf\"\n    format: sops-yaml\n    readers: [admins, host:srv]\n  - secrets: \"srv/*\"\n    format: age\n    readers: [admins, host:srv]\n",
        );
        env.keys_stdin(&["encrypt", "srv/token"], b"srv-canary-token")
            .success();
        env.keys_stdin(&["encrypt", "srv/conf"], b"db: srv-canary-pw\n")
            .success();
        let key_file = ssh_dir.join("ssh_host_ed25519_key");
        env.keys(&[
            "decrypt",
            "hosts/srv/ssh_host_ed25519_key",
            "-o",
            &key_file.display().to_string(),
        ])
        .success();
        std::fs::copy(
            repo.join("secrets/hosts/srv/ssh_host_ed25519_key.pub"),
            key_file.with_extension("pub"),
        )
        .unwrap();
        let client = env.root.join("client_key");
        keygen(&client);
        let authorized = env.root.join("authorized_keys");
        std::fs::copy(client.with_extension("pub"), &authorized).unwrap();
        // The host's systemctl: records its arguments; `reload` sends sshd a real
        // SIGHUP, does nothing, or hangs on, as `mode` says.
        let bin = env.root.join("remote-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = env.root.join("systemctl.log");
        let mode = env.root.join("reload-mode");
        let pid_file = env.root.join(format!("sshd.{port}.pid"));
        let systemctl = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\ncase \"$1\" in\n  is-active) exit 3 ;;\n  reload)\n    case \"$(cat '{mode}' 2>/dev/null)\" in\n      fail) exit 1 ;;\n      slow) kill -HUP \"$(cat '{pid}')\"; sleep 1 ;;\n      *) kill -HUP \"$(cat '{pid}')\" ;;\n    esac ;;\n  *) exit 1 ;;\nesac\n",
            log = log.display(),
            mode = mode.display(),
            pid = pid_file.display()
        );
        // sudo, for an ssh_user other than root: runs the command as it is.
        let sudo = "#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n";
        for (name, text) in [("systemctl", systemctl.as_str()), ("sudo", sudo)] {
            let path = bin.join(name);
            executable(&path, text);
        }
        let mut live = Live {
            env,
            repo,
            key_file,
            client: client.display().to_string(),
            log,
            mode,
            authorized,
            bin,
            tmp,
            port,
            server: None,
            _rundir: rundir,
        };
        let key_file = live.key_file.clone();
        live.serve(&key_file);
        live
    }

    /// (Re)starts the host's sshd with `HostKey` at `key`.
    fn serve(&mut self, key: &Path) {
        self.server = None;
        let e = &self.env;
        self.server = Some(sshd(
            &e.root,
            key,
            &self.authorized,
            &self.bin,
            &self.tmp,
            self.port,
        ));
    }

    fn rotate(&self) -> Command {
        self.env.command(&[
            "host",
            "rotate",
            "srv",
            "--generate",
            "--push",
            "--ssh-key",
            &self.client,
        ])
    }

    /// The files of the host's ssh directory, with their modes.
    fn host_dir(&self) -> BTreeMap<String, u32> {
        listing(self.key_file.parent().unwrap())
    }

    /// `ssh-keygen -y` of the key file on the host.
    fn host_public(&self) -> String {
        let mut cmd = Command::new(peer("ssh-keygen"));
        cmd.arg("-y").arg("-f").arg(&self.key_file);
        self.env.apply(&mut cmd);
        let out = run(cmd, b"").success().stdout;
        out.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    /// The key the host presents now, as ssh-keyscan sees it.
    fn presented(&self) -> String {
        let port = std::fs::read_to_string(self.repo.join("recipients/hosts/srv.yaml"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("ssh_port: ").map(str::to_string))
            .unwrap();
        for _ in 0..100 {
            let mut cmd = Command::new(peer("ssh-keyscan"));
            cmd.args(["-t", "ed25519", "-p", &port, "127.0.0.1"]);
            let out = run(cmd, b"").stdout;
            if let Some(line) = out.lines().find(|l| !l.starts_with('#')) {
                return line
                    .split_whitespace()
                    .skip(1)
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the host did not answer ssh-keyscan");
    }

    fn recorded(&self) -> String {
        let text = std::fs::read_to_string(self.repo.join("recipients/hosts/srv.yaml")).unwrap();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("ssh_key: "))
            .unwrap();
        line.trim_matches('"')
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The host key file, the ssh directory and the repository as they were.
fn unchanged(
    live: &Live,
    key: &[u8],
    dir: &BTreeMap<String, u32>,
    repo: &BTreeMap<PathBuf, Vec<u8>>,
) {
    assert_eq!(std::fs::read(&live.key_file).unwrap(), key);
    assert_eq!(&live.host_dir(), dir);
    assert_eq!(&tree(&live.repo), repo);
}

#[test]
fn push_installs_the_new_key_proves_it_and_only_then_records_it() {
    let mut live = Live::new();
    let old_key = std::fs::read(&live.key_file).unwrap();
    let old_public = live.host_public();
    let dir = live.host_dir();
    assert_eq!(
        dir,
        expect(&[
            ("ssh_host_ed25519_key", 0o600),
            ("ssh_host_ed25519_key.pub", 0o644)
        ])
    );
    let repo_before = tree(&live.repo);

    // --push needs a key made here.
    live.env
        .keys(&["host", "rotate", "srv", "--keyscan", "127.0.0.1", "--push"])
        .failure(2);

    // sshd cannot be reloaded: the new key is taken back at once.
    std::fs::write(&live.mode, "fail").unwrap();
    let r = run(live.rotate(), b"").failure(9);
    assert!(
        r.stderr.contains("sshd on srv could not be reloaded")
            && r.stderr
                .contains("the host was left as it was and nothing in the repository changed"),
        "{}",
        r.stderr
    );
    unchanged(&live, &old_key, &dir, &repo_before);

    // sshd serves a copy of the key from elsewhere: the host goes on presenting the
    // old key after the reload, so the new one is taken back and nothing is recorded.
    std::fs::write(&live.mode, "hup").unwrap();
    let elsewhere = live.env.root.join("elsewhere_host_key");
    std::fs::copy(&live.key_file, &elsewhere).unwrap();
    live.serve(&elsewhere);
    let r = run(live.rotate(), b"").failure(9);
    let error: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("keys: error:"))
        .collect();
    assert_eq!(error.len(), 1, "{}", r.stderr);
    assert!(
        error[0].contains("did not answer with the new key")
            && error[0].contains("its old key was put back")
            && error[0].contains("nothing in the repository changed"),
        "{}",
        r.stderr
    );
    unchanged(&live, &old_key, &dir, &repo_before);
    assert_eq!(live.presented(), old_public);
    let key_file = live.key_file.clone();
    live.serve(&key_file);

    // The repository part fails after the proof (no identity opens srv's secrets):
    // the host puts its old key back.
    std::fs::write(&live.mode, "hup").unwrap();
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stranger = crate::common::private_copy(
        &live.env,
        &top.join("tests/fixtures/hosts/vps-x86.ssh_host_ed25519_key"),
        "stranger",
    );
    let mut cmd = live.rotate();
    cmd.env("KEYS_IDENTITY", &stranger);
    let r = run(cmd, b"").failure(4);
    assert!(
        r.stderr.contains("the old key was put back"),
        "{}",
        r.stderr
    );
    unchanged(&live, &old_key, &dir, &repo_before);
    assert_eq!(live.presented(), old_public);

    // keys killed while the host reloads: the session ends and the host puts its
    // old key back by itself.
    std::fs::write(&live.mode, "slow").unwrap();
    std::fs::write(&live.log, "").unwrap();
    let mut cmd = live.rotate();
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !std::fs::read_to_string(&live.log)
        .unwrap()
        .contains("reload")
    {
        assert!(std::time::Instant::now() < deadline, "no reload");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::fs::read(&live.key_file).unwrap() != old_key || live.host_dir() != dir {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            live.host_dir()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    unchanged(&live, &old_key, &dir, &repo_before);
    assert_eq!(live.presented(), old_public);

    // The real thing.
    std::fs::write(&live.mode, "hup").unwrap();
    std::fs::write(&live.log, "").unwrap();
    let r = run(live.rotate(), b"").success();
    let new_public = live.host_public();
    assert_ne!(new_public, old_public);
    assert_eq!(live.presented(), new_public);
    assert_eq!(live.recorded(), new_public);
    assert_eq!(
        live.host_dir(),
        expect(&[
            ("ssh_host_ed25519_key", 0o600),
            ("ssh_host_ed25519_key.pub", 0o644)
        ])
    );
    assert_eq!(
        std::fs::read_to_string(live.key_file.with_extension("pub"))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        new_public
    );
    assert_eq!(
        std::fs::read_to_string(&live.log).unwrap(),
        "is-active --quiet sshd.socket\nreload sshd.service\n"
    );
    let env = &live.env;
    // The stored key is the one on the host, and the host's secrets open with it.
    let stored = env
        .keys(&["decrypt", "hosts/srv/ssh_host_ed25519_key"])
        .success();
    assert_eq!(stored.raw_stdout, std::fs::read(&live.key_file).unwrap());
    let key_arg = live.key_file.display().to_string();
    let token = env
        .keys(&["decrypt", "-i", &key_arg, "srv/token"])
        .success();
    assert_eq!(token.stdout, "srv-canary-token");
    env.keys(&["decrypt", "-i", &key_arg, "srv/conf"]).success();
    for out in [&r.stdout, &r.stderr] {
        assert!(
            !out.contains("PRIVATE KEY") && !out.contains("canary"),
            "{out}"
        );
    }
    assert!(
        r.stdout.contains("rekeyed   2 secrets for the new key"),
        "{}",
        r.stdout
    );
    env.keys(&["check"]).success();

    // Had keys been killed after writing the repository and before the host kept
    // the key, the host would have put its old key back, and the journal says so:
    // the next rekey puts the repository back to the old key too.
    use base64::Engine as _;
    let b64 = |rel: &str| {
        base64::engine::general_purpose::STANDARD.encode(&repo_before[&live.repo.join(rel)])
    };
    let lock_before =
        String::from_utf8(repo_before[&live.repo.join("secrets/keys.lock")].clone()).unwrap();
    let lock_line = lock_before
        .lines()
        .find_map(|l| l.strip_prefix("hosts/srv/ssh_host_ed25519_key "))
        .unwrap();
    let host_file = "recipients/hosts/srv.yaml";
    let new_line = std::fs::read_to_string(live.repo.join(host_file))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("ssh_key: ")
                .map(|k| k.trim_matches('"').to_string())
        })
        .unwrap();
    std::fs::write(
        live.repo.join(".keys-rotation"),
        format!(
            "host srv\nkey {new_line}\nsecret {}\npublic {}\nlock {lock_line}\npolicy -\npushed {}\n",
            b64("secrets/hosts/srv/ssh_host_ed25519_key.age"),
            b64("secrets/hosts/srv/ssh_host_ed25519_key.pub"),
            b64(host_file),
        ),
    )
    .unwrap();
    let r = env.keys(&["check"]).failure(8);
    assert!(
        r.stdout.contains("rotation of host srv was interrupted"),
        "{}",
        r.stdout
    );
    let r = env.keys(&["rekey"]).success();
    assert!(
        r.stdout.contains("never confirmed the pushed key"),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read(live.repo.join(host_file)).unwrap(),
        repo_before[&live.repo.join(host_file)]
    );
    let old_file = crate::common::write_private(env, "old_host_key", &old_key);
    let token = env
        .keys(&[
            "decrypt",
            "-i",
            &old_file.display().to_string(),
            "srv/token",
        ])
        .success();
    assert_eq!(token.stdout, "srv-canary-token");
    env.keys(&["check"]).success();
}
