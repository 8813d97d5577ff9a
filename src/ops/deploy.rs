//! `keys install` and `keys update`: the commands they run (nixos-anywhere, rsync,
//! ssh), planned from the host file, shown by `--dry-run`, and run with the host's
//! key pinned from the repository. Also the check that a host can decrypt every
//! secret it will be sent.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::Format;
use crate::layout::{self, Repo};
use crate::ops::check;
use crate::policy::fleet::{Fleet, Host};
use crate::policy::{Policy, Reader};
use crate::recipient::Recipient;
use crate::signal::SignalGuard;

/// A program and its arguments, run in a directory.
pub struct Step {
    pub program: String,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
}

impl Step {
    fn new(program: &str) -> Step {
        Step {
            program: program.to_string(),
            args: Vec::new(),
            cwd: None,
        }
    }

    fn arg(mut self, arg: impl Into<OsString>) -> Step {
        self.args.push(arg.into());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Step {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(cwd) = &self.cwd {
            write!(f, "(cd {} && ", quote(&cwd.to_string_lossy()))?;
        }
        f.write_str(&quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quote(&a.to_string_lossy()))?;
        }
        if self.cwd.is_some() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A word as a POSIX shell reads it back: bare when safe, else single-quoted.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-#[]".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The host's address from its host file; a clear error when it has none.
pub fn address(host: &Host) -> Result<&str> {
    host.address.as_deref().ok_or_else(|| {
        crate::error::usage(
            format!(
                "{}/{}.yaml has no address: keys cannot reach {}",
                layout::HOSTS,
                host.name,
                host.name
            ),
            "add `address: IP-OR-DNS-NAME` to the host file (and `ssh_port:` if not 22)",
        )
    })
}

/// The known_hosts line pinning the host's key at `address:port`.
pub fn known_hosts(host: &Host, address: &str, port: u16) -> String {
    let name = if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    };
    format!("{name} {}\n", host.key)
}

/// The ssh options of every connection made with the host's key pinned.
pub fn ssh_options(known_hosts: &Path, port: u16, ssh_key: Option<&Path>) -> Vec<OsString> {
    let mut o: Vec<OsString> = vec!["-p".into(), port.to_string().into()];
    for opt in [
        "StrictHostKeyChecking=yes".to_string(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "GlobalKnownHostsFile=/dev/null".to_string(),
        "HostKeyAlgorithms=ssh-ed25519".to_string(),
        "UpdateHostKeys=no".to_string(),
        "CheckHostIP=no".to_string(),
        "ConnectTimeout=20".to_string(),
    ] {
        o.push("-o".into());
        o.push(opt.into());
    }
    if let Some(key) = ssh_key {
        o.push("-i".into());
        o.push(key.into());
        o.push("-o".into());
        o.push("IdentitiesOnly=yes".into());
    }
    o
}

/// `user@address`, bracketing an IPv6 address where rsync needs it.
fn login(host: &Host, address: &str, for_rsync: bool) -> String {
    if for_rsync && address.contains(':') {
        format!("{}@[{address}]", host.ssh_user)
    } else {
        format!("{}@{address}", host.ssh_user)
    }
}

/// A secret the host (or one of its containers) must decrypt, and the key it uses.
pub struct Needed {
    pub name: String,
    pub file: String,
    pub key: Recipient,
}

/// Checks, without any private key, that the host can decrypt every secret its
/// policy gives it or its containers: each secret is up to date in `keys.lock`, and
/// its file names the key (an `.age` file's ssh-ed25519 stanza, a sops file's
/// derived `age1…` recipient). Returns those secrets.
pub fn readable(repo: &Repo, policy: &Policy, fleet: &Fleet, host: &Host) -> Result<Vec<Needed>> {
    let report = check::secrets(repo)?;
    let mut needed = Vec::new();
    let mut problems = Vec::new();
    for secret in &report.secrets {
        let Some((_, rule)) = policy.rule_for(&secret.name) else {
            continue;
        };
        let mut keys: Vec<(&str, &Recipient)> = Vec::new();
        for reader in &rule.readers {
            match reader {
                Reader::Host(h) if *h == host.name => keys.push((&host.name, &host.key)),
                Reader::Container(c) => {
                    if let Some((h, container)) = fleet.container(c)?
                        && h.name == host.name
                    {
                        keys.push((&container.name, container.key(host)));
                    }
                }
                _ => {}
            }
        }
        if keys.is_empty() {
            continue;
        }
        let Some(file) = &secret.path else {
            problems.push(format!("{} (missing)", secret.name));
            continue;
        };
        if secret.status != check::Status::Ok {
            problems.push(format!("{file} ({})", secret.status.name()));
            continue;
        }
        let data = crate::fsutil::read(&repo.root().join(file))?;
        for (who, key) in keys {
            if !names_key(rule.format, &data, key) {
                problems.push(format!("{file} (not encrypted to {who}'s key)"));
            }
            needed.push(Needed {
                name: secret.name.clone(),
                file: file.clone(),
                key: key.clone(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(Error::Undeployable {
            host: host.name.clone(),
            problems,
        });
    }
    needed.dedup_by(|a, b| a.file == b.file && a.key.fingerprint() == b.key.fingerprint());
    Ok(needed)
}

/// Whether the file's header or metadata names the key as a recipient.
fn names_key(format: Format, data: &[u8], key: &Recipient) -> bool {
    match format {
        Format::Age => match (key.ssh_tag(), crate::format::age::ssh_tags(data)) {
            (Some(tag), Ok(tags)) => tags.contains(&tag),
            _ => false,
        },
        sops => match (
            key.to_x25519(),
            crate::format::sops::check_structure(sops, data),
        ) {
            (Some(age), Ok(recipients)) => recipients.contains(&age),
            _ => false,
        },
    }
}

/// The flake files `update` sends, relative to the repository root: `flake.nix`,
/// `flake.lock`, every `*.nix` at the root, `modules/`, and the given secrets.
pub fn flake_files(repo: &Repo, secrets: &[Needed]) -> Result<Vec<String>> {
    let root = repo.root();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if kind.is_file() && (name.ends_with(".nix") || name == "flake.lock") {
            files.push(name);
        } else if kind.is_dir() && name == "modules" {
            files.push(format!("{name}/"));
        }
    }
    if !files.iter().any(|f| f == "flake.nix") {
        return Err(crate::error::usage(
            format!("{}: no flake.nix here to send", root.display()),
            "`keys update` sends the repository's flake; add flake.nix at its root",
        ));
    }
    files.extend(secrets.iter().map(|s| s.file.clone()));
    files.sort();
    files.dedup();
    Ok(files)
}

/// The commands of `keys update`: a connection that proves the host presents its
/// pinned key, rsync of the flake files, and `nixos-rebuild switch` over ssh.
pub fn update_steps(
    repo: &Repo,
    host: &Host,
    files: &[String],
    known_hosts: &Path,
    ssh_key: Option<&Path>,
) -> Result<Vec<Step>> {
    let address = address(host)?;
    let options = ssh_options(known_hosts, host.ssh_port, ssh_key);
    let probe = Step::new("ssh")
        .args(options.iter().cloned())
        .arg(login(host, address, false))
        .arg("true");
    let mut remote_shell = String::from("ssh");
    for o in &options {
        let o = o.to_string_lossy();
        if o.contains('\'') {
            return Err(crate::error::usage(
                format!("{o} contains a single quote, which rsync cannot pass to ssh"),
                "use paths without single quotes",
            ));
        }
        remote_shell.push(' ');
        remote_shell.push_str(&quote(&o));
    }
    let mut rsync = Step::new("rsync")
        .args(["--recursive", "--times", "--relative", "-s"])
        .arg("--chmod=D0755,F0644")
        .arg("-e")
        .arg(remote_shell)
        .arg("--")
        .args(files.iter().map(|f| format!("./{f}")))
        .arg(format!(
            "{}:{}/",
            login(host, address, true),
            host.flake_dir.trim_end_matches('/')
        ));
    rsync.cwd = Some(repo.root().to_path_buf());
    let flake = format!(
        "{}#{}",
        host.flake_dir.trim_end_matches('/'),
        host.flake_attr
    );
    let switch = Step::new("ssh")
        .args(options)
        .arg(login(host, address, false))
        .arg(format!("nixos-rebuild switch --flake {}", quote(&flake)));
    Ok(vec![probe, rsync, switch])
}

/// How `keys install` runs nixos-anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `nixos-anywhere` on PATH, else `nix run github:nix-community/nixos-anywhere`.
    Nix,
    /// The `nixos/nix` Docker image, with the repository and the tree mounted.
    Docker,
}

const NIXOS_ANYWHERE: &str = "github:nix-community/nixos-anywhere";
const DOCKER_IMAGE: &str = "nixos/nix";

/// Whether `program` is an executable on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Picks nix when nixos-anywhere or nix is on PATH, else Docker.
pub fn default_via() -> Via {
    if on_path("nixos-anywhere") || on_path("nix") {
        Via::Nix
    } else {
        Via::Docker
    }
}

pub struct Install<'a> {
    pub repo: &'a Repo,
    pub host: &'a Host,
    pub target: String,
    pub port: Option<u16>,
    pub tree: &'a Path,
    pub ssh_key: Option<&'a Path>,
}

/// The nixos-anywhere command of `keys install`.
pub fn install_step(via: Via, i: &Install<'_>) -> Step {
    let anywhere_args = |flake_root: &str, tree: OsString, key: Option<OsString>| {
        let mut args: Vec<OsString> = vec![
            "--flake".into(),
            format!("{flake_root}#{}", i.host.flake_attr).into(),
            "--extra-files".into(),
            tree,
            "--target-host".into(),
            i.target.clone().into(),
        ];
        if let Some(port) = i.port {
            args.push("--ssh-port".into());
            args.push(port.to_string().into());
        }
        if let Some(key) = key {
            args.push("-i".into());
            args.push(key);
        }
        args
    };
    let nix_run = |step: Step| {
        step.args([
            "--extra-experimental-features",
            "nix-command flakes",
            "run",
            NIXOS_ANYWHERE,
            "--",
        ])
    };
    match via {
        Via::Nix => {
            let step = if on_path("nixos-anywhere") {
                Step::new("nixos-anywhere")
            } else {
                nix_run(Step::new("nix"))
            };
            let mut step = step.args(anywhere_args(".", i.tree.into(), i.ssh_key.map(Into::into)));
            step.cwd = Some(i.repo.root().to_path_buf());
            step
        }
        Via::Docker => {
            let mut step = Step::new("docker").args(["run", "--rm", "-i"]);
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                step = step.arg("-t");
            }
            step = step
                .arg("-v")
                .arg(format!("{}:/work", i.repo.root().display()))
                .arg("-v")
                .arg(format!("{}:/extra-files:ro", i.tree.display()));
            if let Some(key) = i.ssh_key {
                step = step
                    .arg("-v")
                    .arg(format!("{}:/root/.ssh/id:ro", key.display()));
            }
            let step = step.args(["-w", "/work", DOCKER_IMAGE, "nix"]);
            nix_run(step).args(anywhere_args(
                "/work",
                "/extra-files".into(),
                i.ssh_key.map(|_| "/root/.ssh/id".into()),
            ))
        }
    }
}

/// The connection `install` makes after the reboot to prove the new host presents
/// the staged key.
pub fn verify_step(host: &Host, known_hosts: &Path, ssh_key: Option<&Path>) -> Result<Step> {
    let address = address(host)?;
    Ok(Step::new("ssh")
        .args(ssh_options(known_hosts, host.ssh_port, ssh_key))
        .args(["-o", "BatchMode=yes"])
        .arg(login(host, address, false))
        .arg("true"))
}

/// How a step ended, when it did not succeed.
pub enum Failure {
    /// The program could not be started.
    Missing(std::io::Error),
    /// It exited non-zero (or was killed); the last lines of its stderr when captured.
    Exit { code: Option<i32>, stderr: String },
}

/// Runs a step with the terminal's stdin, stdout and stderr (stderr captured when
/// `capture` is set). A signal received by `keys` is passed on to the program, which
/// is then waited for, and reported as `Interrupted`.
pub fn run(step: &Step, guard: &SignalGuard, capture: bool) -> Result<Result<(), Failure>> {
    let mut cmd = Command::new(&step.program);
    cmd.args(&step.args);
    if let Some(cwd) = &step.cwd {
        cmd.current_dir(cwd);
    }
    if capture {
        cmd.stderr(Stdio::piped());
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Ok(Err(Failure::Missing(e))),
    };
    let reader = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            buf
        })
    });
    let mut signalled = None;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::io(&step.program, e))? {
            break status;
        }
        if signalled.is_none()
            && let Some(signal) = guard.interrupted()
        {
            signalled = Some(signal);
            if let Some(pid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader
        .and_then(|r| r.join().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if let Some(signal) = signalled.or_else(|| guard.interrupted()) {
        return Err(Error::Interrupted { signal });
    }
    if status.success() {
        Ok(Ok(()))
    } else {
        Ok(Err(Failure::Exit {
            code: status.code(),
            stderr,
        }))
    }
}

/// The last non-empty line a program wrote, for a one-line error.
pub fn last_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Whether ssh refused the host's key (changed, or not the pinned one).
pub fn host_key_refused(stderr: &str) -> bool {
    stderr.contains("Host key verification failed")
        || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("No ED25519 host key is known")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_words_for_the_shell() {
        assert_eq!(quote("root@203.0.113.1"), "root@203.0.113.1");
        assert_eq!(quote(".#vps-arm"), ".#vps-arm");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(x)"), "'$(x)'");
    }

    #[test]
    fn last_line_skips_blank_lines() {
        assert_eq!(last_line("a\nb\n\n  \n"), "b");
        assert_eq!(last_line(""), "");
    }
}
