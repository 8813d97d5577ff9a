//! A hermetic environment for running `keys`: its own HOME and working directory, no
//! agent socket, no terminal (every run is under `setsid`), the keyring disabled
//! unless a test asks for one, and a time limit on every run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const TIME_LIMIT: Duration = Duration::from_secs(20);

pub struct TestEnv {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub work: PathBuf,
    env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
    pub elapsed: Duration,
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failure(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.lines().any(|l| l.starts_with("keys: error: ")),
            "stderr: {}",
            self.stderr
        );
        self
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        let work = root.join("work");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        TestEnv {
            _dir: dir,
            root,
            home,
            work,
            env: vec![("KEYS_KEYRING".into(), "none".into())],
        }
    }

    pub fn set(&mut self, key: &str, value: impl AsRef<str>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.as_ref().to_string()));
    }

    pub fn unset(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// The command line `setsid -w keys ARGS…` with the hermetic environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setsid");
        cmd.arg("-w").arg(keys_bin()).args(args);
        self.apply(&mut cmd);
        cmd
    }

    pub fn apply(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("LC_ALL", "C.UTF-8")
            .current_dir(&self.work);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    pub fn keys(&self, args: &[&str]) -> Run {
        self.keys_stdin(args, b"")
    }

    pub fn keys_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run(self.command(args), stdin)
    }

    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        path
    }

    /// Writes an executable script under the root, as [`executable`] does.
    pub fn script(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        executable(&path, text);
        path
    }
}

/// Writes an executable file from a child process. A file this process held open
/// for writing could be inherited by a child another test thread forks at that
/// moment, and running it would then fail with "Text file busy" until that child
/// execs; a file the child process wrote was never open here.
pub fn executable(path: &Path, text: impl AsRef<[u8]>) {
    use std::io::Write;
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_ref())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "writing {}",
        path.display()
    );
}

/// Compares a whole output with its committed snapshot (`insta`, under `snapshots/`
/// beside the test file), with this environment's temporary root written `[ROOT]` and
/// this checkout `[PROJECT]`. A missing or different snapshot fails the test;
/// `cargo insta review` (or `INSTA_UPDATE=always`) writes it.
#[macro_export]
macro_rules! assert_output {
    ($env:expr, $name:expr, $output:expr $(,)?) => {
        $env.snapshots()
            .bind(|| insta::assert_snapshot!($name, $output))
    };
}

impl TestEnv {
    /// The snapshot settings of [`assert_output!`].
    pub fn snapshots(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(&regex::escape(&self.root.display().to_string()), "[ROOT]");
        settings.add_filter(&regex::escape(env!("CARGO_MANIFEST_DIR")), "[PROJECT]");
        settings.set_omit_expression(true);
        settings
    }

    /// [`TestEnv::snapshots`] for an output naming keys made during the test: their
    /// fingerprints and age recipients read `[FINGERPRINT]` and `[AGE]`.
    pub fn snapshots_of_new_keys(&self) -> insta::Settings {
        let mut settings = self.snapshots();
        settings.add_filter(r"SHA256:[A-Za-z0-9+/]{43}", "SHA256:[FINGERPRINT]");
        settings.add_filter(r"\bage1[02-9ac-hj-np-z]{58}\b", "[AGE]");
        settings.add_filter(
            r"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}",
            "ssh-ed25519 [KEY]",
        );
        settings
    }
}

pub fn keys_bin() -> &'static str {
    env!("CARGO_BIN_EXE_keys")
}

/// Runs a command to completion within [`TIME_LIMIT`], feeding it `stdin`.
pub fn run(mut cmd: Command, stdin: &[u8]) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    {
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin);
    }
    let out = wait_limited(child);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw_stdout: out.stdout,
        elapsed: start.elapsed(),
    }
}

fn wait_limited(child: std::process::Child) -> Output {
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIME_LIMIT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("command did not finish within {TIME_LIMIT:?}");
        }
    }
}

/// A reference tool the tests run against; missing is a failure, never a skip.
pub fn peer(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: run scripts/test, which installs every tool the tests use"
            )
        })
}

/// `../shared/vectors`, beside the repository.
pub fn vectors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors");
    assert!(
        dir.join("MANIFEST.json").is_file(),
        "missing {}",
        dir.display()
    );
    dir
}

/// `../shared/nix`, beside the repository: nixpkgs' lib and the agenix, sops-nix and
/// colmena module sources.
pub fn nix_sources() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/nix");
    assert!(
        dir.join("nixpkgs-lib/default.nix").is_file(),
        "missing {}",
        dir.display()
    );
    dir
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Writes a private key file with mode 0600, as keys (like ssh) refuses one that
/// other users can read.
pub fn write_private(env: &TestEnv, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.write(rel, data);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Copies a private key fixture with mode 0600 (git keeps only 0644).
pub fn private_copy(env: &TestEnv, src: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dst = env.write(&format!("keys/{name}"), std::fs::read(src).unwrap());
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    dst
}

/// A private tmpfs directory standing in for $XDG_RUNTIME_DIR, so a test sees what
/// keys leaves there.
pub fn runtime_dir(env: &mut TestEnv) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("keys-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.set("XDG_RUNTIME_DIR", dir.path().display().to_string());
    dir
}
