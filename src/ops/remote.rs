//! Everything that talks to another machine: ssh-keyscan for a host's key, and the
//! commands of `keys install` and `keys update` (nixos-anywhere, rsync, ssh with the
//! host's key pinned from the repository), shown by `--dry-run` and run here.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::{self, Repo};
use crate::policy::fleet::Host;
use crate::recipient::Recipient;
use crate::signal::SignalGuard;

/// A program and its arguments, run in a directory with some variables set.
pub struct CommandLine {
    pub program: String,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// Variables set for it on top of keys' own environment (never a secret).
    pub env: Vec<(String, OsString)>,
}

impl CommandLine {
    fn new(program: &str) -> CommandLine {
        CommandLine {
            program: program.to_string(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
        }
    }

    fn arg(mut self, arg: impl Into<OsString>) -> CommandLine {
        self.args.push(arg.into());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> CommandLine {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

impl std::fmt::Display for CommandLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(cwd) = &self.cwd {
            write!(f, "(cd {} && ", shell_word(&cwd.to_string_lossy()))?;
        }
        for (name, value) in &self.env {
            write!(f, "{name}={} ", shell_word(&value.to_string_lossy()))?;
        }
        f.write_str(&shell_word(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_word(&a.to_string_lossy()))?;
        }
        if self.cwd.is_some() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Quotes `word` for a POSIX shell: in single quotes, inside which every byte stands
/// for itself, each `'` written as `'\''` (close, escaped quote, reopen). The one
/// quoting rule of every command line and script keys writes.
pub fn shell_quote(word: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len() + 2);
    out.push(b'\'');
    for &b in word {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// A word of a command line as shown to the user: bare when it is made only of
/// characters the shell takes literally, else [`shell_quote`]d. A `#` is literal
/// inside a word, not at its start (a comment), and `[` or `]` would make it a glob.
pub fn shell_word(word: &str) -> String {
    let literal = !word.is_empty()
        && !word.starts_with('#')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-#".contains(c));
    if literal {
        word.to_string()
    } else {
        String::from_utf8_lossy(&shell_quote(word.as_bytes())).into_owned()
    }
}

/// The host's address from its host file; a clear error when it has none.
pub fn address(host: &Host) -> Result<&str> {
    host.address.as_deref().ok_or_else(|| Error::NoAddress {
        host: host.name.clone(),
        file: format!("{}/{}.yaml", layout::HOSTS, host.name),
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

/// Checks the `--ssh-key` file as ssh does before using it, so that a run fails
/// here and not halfway: a regular file that, when it is the user's own, group and
/// others cannot read or write.
pub fn check_ssh_key(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            name: path.display().to_string(),
            what: if meta.is_dir() {
                "a directory"
            } else {
                "a special file"
            },
            wanted: "an SSH private key file",
        });
    }
    let mode = meta.mode() & 0o7777;
    if meta.uid() == rustix::process::geteuid().as_raw() && mode & 0o077 != 0 {
        return Err(Error::OpenPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// `user@address`, as ssh takes it.
fn login(host: &Host, address: &str) -> String {
    format!("{}@{address}", host.ssh_user)
}

/// `user@address` as rsync's `HOST:PATH` takes it: an IPv6 address in brackets.
fn rsync_login(host: &Host, address: &str) -> String {
    if address.contains(':') {
        format!("{}@[{address}]", host.ssh_user)
    } else {
        login(host, address)
    }
}

/// Whether the host's ssh user needs `sudo` for what keys runs there: anyone but root.
pub fn needs_sudo(host: &Host) -> bool {
    host.ssh_user != "root"
}

/// How keys runs a command as root on a host whose ssh user is not root: sudo that
/// fails at once rather than wait for a password nobody can type.
const SUDO: &str = "sudo -n";

/// Whether the `rsync` on PATH has `-s` (`--protect-args`, rsync 3.0 and later),
/// asked by running `rsync -s --version`: the rsync macOS ships (2.6.9, or
/// openrsync) refuses it as an unknown option.
pub fn rsync_protects_args() -> bool {
    Command::new("rsync")
        .args(["-s", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One step of `keys update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A connection that proves the host presents its pinned key (and, for a user
    /// other than root, that sudo works without a password).
    Connect,
    /// rsync of the flake's files to `flake_dir`.
    Send,
    /// `nixos-rebuild switch` on the host, from `flake_dir`.
    Switch,
    /// `nixos-rebuild switch --target-host` here: build, copy the closure, switch.
    BuildHere,
}

/// What `keys update` connects with.
pub struct Update<'a> {
    pub repo: &'a Repo,
    pub host: &'a Host,
    pub known_hosts: &'a Path,
    pub ssh_key: Option<&'a Path>,
}

/// Where `keys update` builds the new system.
pub enum Build<'a> {
    /// On the host: send `files` with rsync (`protect_args`: the local rsync has
    /// `-s`), then `nixos-rebuild switch` there.
    Remote {
        files: &'a [String],
        protect_args: bool,
    },
    /// Here, with `nixos-rebuild switch --target-host`, which copies the closure.
    Local(&'a Runner),
}

/// The commands of `keys update`, each with its step: a connection that proves the
/// host presents its pinned key, then either rsync of the flake files and
/// `nixos-rebuild switch` over ssh (`sudo -n` for a user other than root), or
/// `nixos-rebuild switch --target-host` run here with the same pinned ssh options.
pub fn update_commands(u: &Update<'_>, build: &Build<'_>) -> Result<Vec<(Step, CommandLine)>> {
    let host = u.host;
    let address = address(host)?;
    let options = ssh_options(u.known_hosts, host.ssh_port, u.ssh_key);
    let sudo = needs_sudo(host);
    let probe = CommandLine::new("ssh")
        .args(options.iter().cloned())
        .arg(login(host, address))
        .arg(if sudo { "sudo -n true" } else { "true" });
    let mut commands = vec![(Step::Connect, probe)];
    match build {
        Build::Remote {
            files,
            protect_args,
        } => {
            let mut remote_shell = String::from("ssh");
            for o in &options {
                let o = o.to_string_lossy();
                if o.contains('\'') {
                    return Err(Error::SshOptionQuote {
                        option: o.into_owned(),
                    });
                }
                remote_shell.push(' ');
                remote_shell.push_str(&shell_word(&o));
            }
            let dir = host.flake_dir.trim_end_matches('/');
            // Without -s the remote shell reads the path: it is quoted for it.
            let remote_dir = if *protect_args {
                dir.to_string()
            } else {
                shell_word(dir)
            };
            let mut rsync =
                CommandLine::new("rsync").args(["--recursive", "--links", "--times", "--relative"]);
            if *protect_args {
                rsync = rsync.arg("-s");
            }
            rsync = rsync.arg("--chmod=D0755,F0644");
            if sudo {
                rsync = rsync.arg(format!("--rsync-path={SUDO} rsync"));
            }
            rsync = rsync
                .arg("-e")
                .arg(remote_shell)
                .arg("--")
                .args(files.iter().map(|f| format!("./{f}")))
                .arg(format!("{}:{remote_dir}/", rsync_login(host, address)));
            rsync.cwd = Some(u.repo.root().to_path_buf());
            let flake = format!("{dir}#{}", host.flake_attr);
            let switch = CommandLine::new("ssh")
                .args(options)
                .arg(login(host, address))
                .arg(format!(
                    "{}nixos-rebuild switch --flake {}",
                    if sudo { "sudo -n " } else { "" },
                    shell_word(&flake)
                ));
            commands.push((Step::Send, rsync));
            commands.push((Step::Switch, switch));
        }
        Build::Local(runner) => {
            commands.push((Step::BuildHere, local_switch(u, runner)?));
        }
    }
    Ok(commands)
}

/// `NIX_SSHOPTS`, which nixos-rebuild splits at spaces and hands to ssh and to
/// `nix copy`: the pinned options, each word checked to need no quoting.
fn nix_sshopts(options: &[OsString]) -> Result<OsString> {
    let mut out = OsString::new();
    for (i, o) in options.iter().enumerate() {
        let text = o.to_string_lossy();
        if text.is_empty() || text.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c)) {
            return Err(Error::SshOptionSpace {
                option: text.into_owned(),
            });
        }
        if i > 0 {
            out.push(" ");
        }
        out.push(o);
    }
    Ok(out)
}

/// `nixos-rebuild switch --flake .#ATTR --target-host USER@ADDR` run here: the
/// `nixos-rebuild` on PATH, else the one of the flake's own nixpkgs through `nix
/// shell`, else that inside the nixos/nix image with the repository, the pinned
/// known_hosts and the key mounted.
fn local_switch(u: &Update<'_>, runner: &Runner) -> Result<CommandLine> {
    let host = u.host;
    let address = address(host)?;
    let target = login(host, address);
    let rebuild = |command: CommandLine, flake_root: &str| {
        let mut command = command.args([
            "switch",
            "--flake",
            &format!("{flake_root}#{}", host.flake_attr),
            "--target-host",
            &target,
        ]);
        if needs_sudo(host) {
            command = command.arg("--use-remote-sudo");
        }
        command
    };
    let from_nixpkgs = |command: CommandLine, flake_root: &str| {
        command.args([
            "shell",
            "--inputs-from",
            flake_root,
            "nixpkgs#nixos-rebuild",
            "--command",
            "nixos-rebuild",
        ])
    };
    match runner {
        Runner::Nix => {
            let sshopts = nix_sshopts(&ssh_options(u.known_hosts, host.ssh_port, u.ssh_key))?;
            let command = if on_path("nixos-rebuild") {
                CommandLine::new("nixos-rebuild")
            } else {
                from_nixpkgs(CommandLine::new("nix").args(NIX_FEATURES), ".")
            };
            let mut command = rebuild(command, ".");
            command.cwd = Some(u.repo.root().to_path_buf());
            command.env.push(("NIX_SSHOPTS".into(), sshopts));
            Ok(command)
        }
        Runner::Docker(docker) => {
            let inside_key = u.ssh_key.map(|_| Path::new(IN_SSH_KEY));
            let sshopts = nix_sshopts(&ssh_options(
                Path::new(IN_KNOWN_HOSTS),
                host.ssh_port,
                inside_key,
            ))?;
            let mut mounts = vec![(u.known_hosts.as_os_str().to_owned(), IN_KNOWN_HOSTS)];
            if let Some(key) = u.ssh_key {
                mounts.push((key.as_os_str().to_owned(), IN_SSH_KEY));
            }
            let command = docker.run(u.repo, &mounts, &[("NIX_SSHOPTS", sshopts)]);
            Ok(rebuild(from_nixpkgs(command, WORK), WORK))
        }
    }
}

/// How `keys install` runs nixos-anywhere and `keys update --build-on local` runs
/// nixos-rebuild, as the user asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The program on PATH, else through `nix`.
    Nix,
    /// The pinned `nixos/nix` Docker image, with the repository mounted.
    Docker,
}

/// Where a program runs: here through nix, or in the nixos/nix image.
pub enum Runner {
    Nix,
    Docker(Docker),
}

/// nixos-anywhere, pinned to a release rather than whatever its default branch holds.
pub const NIXOS_ANYWHERE: &str = "github:nix-community/nixos-anywhere/1.13.0";
/// The Docker image, pinned to a Nix release.
pub const DOCKER_IMAGE: &str = "nixos/nix:2.35.2";
/// The named volume that keeps the image's /nix (its store and what it built or
/// fetched) from one run to the next; named after the image, so that another
/// image's store is never mixed in.
pub const NIX_VOLUME: &str = "keys-nix-2.35.2";
const NIX_FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// Where things are inside the container.
const WORK: &str = "/work";
const IN_SSH_KEY: &str = "/root/.ssh/id";
const IN_KNOWN_HOSTS: &str = "/root/.ssh/keys_known_hosts";
const IN_AGENT: &str = "/run/keys-ssh-agent.sock";
const IN_GITCONFIG: &str = "/root/.gitconfig";
/// The agent socket Docker Desktop (and OrbStack) forward from the Mac into every
/// container that mounts it; the Mac's own socket cannot be mounted.
pub const DESKTOP_AGENT: &str = "/run/host-services/ssh-auth.sock";

/// The git configuration mounted as the container's global one: the repository,
/// which belongs to another user there, is safe to read (else git and nix refuse it).
pub const GITCONFIG: &str = "[safe]\n\tdirectory = /work\n";

/// The ssh agent a container is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// The socket `$SSH_AUTH_SOCK` names, mounted.
    Socket(PathBuf),
    /// Docker Desktop's forwarded socket (macOS, where the Mac's cannot be mounted).
    DockerDesktop,
}

/// What a command run in the nixos/nix image is given beyond the repository.
pub struct Docker {
    /// A file holding [`GITCONFIG`], mounted as the global git configuration.
    pub gitconfig: PathBuf,
    pub agent: Option<Agent>,
    /// Whether to allocate a terminal (`-t`): when keys has one on stdin and stdout.
    pub tty: bool,
}

impl Docker {
    /// The agent and terminal of this process, and the gitconfig file at `gitconfig`.
    pub fn detect(gitconfig: PathBuf) -> Docker {
        use std::io::IsTerminal;
        Docker {
            gitconfig,
            agent: agent(cfg!(target_os = "macos"), std::env::var_os("SSH_AUTH_SOCK")),
            tty: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
        }
    }

    /// `docker run` of the image with the repository at /work, `mounts` (source,
    /// where) read-only, the agent, the gitconfig, /nix in its named volume and
    /// `env`, up to and including `nix` and its experimental features.
    fn run(
        &self,
        repo: &Repo,
        mounts: &[(OsString, &str)],
        env: &[(&str, OsString)],
    ) -> CommandLine {
        let volume = |source: &OsStr, inside: &str, ro: bool| {
            let mut v = source.to_owned();
            v.push(format!(":{inside}"));
            if ro {
                v.push(":ro");
            }
            v
        };
        let mut command = CommandLine::new("docker").args(["run", "--rm", "-i"]);
        if self.tty {
            command = command.arg("-t");
        }
        command = command
            .arg("-v")
            .arg(volume(repo.root().as_os_str(), WORK, false));
        for (source, inside) in mounts {
            command = command.arg("-v").arg(volume(source, inside, true));
        }
        let agent = match &self.agent {
            Some(Agent::Socket(path)) => Some((path.as_os_str(), IN_AGENT)),
            Some(Agent::DockerDesktop) => Some((OsStr::new(DESKTOP_AGENT), DESKTOP_AGENT)),
            None => None,
        };
        if let Some((source, inside)) = agent {
            command = command
                .arg("-v")
                .arg(volume(source, inside, false))
                .arg("-e")
                .arg(format!("SSH_AUTH_SOCK={inside}"));
        }
        command = command
            .arg("-v")
            .arg(volume(self.gitconfig.as_os_str(), IN_GITCONFIG, true))
            .arg("-v")
            .arg(format!("{NIX_VOLUME}:/nix"));
        for (name, value) in env {
            let mut e = OsString::from(format!("{name}="));
            e.push(value);
            command = command.arg("-e").arg(e);
        }
        command
            .args(["-w", WORK, DOCKER_IMAGE, "nix"])
            .args(NIX_FEATURES)
    }
}

/// The agent to give a container: on macOS, Docker Desktop's forwarded socket when
/// an agent runs (`$SSH_AUTH_SOCK` is set); elsewhere the socket `$SSH_AUTH_SOCK`
/// names, when it is one (a missing path would make docker create a directory there).
fn agent(docker_desktop: bool, sock: Option<OsString>) -> Option<Agent> {
    use std::os::unix::fs::FileTypeExt;
    let sock = sock.filter(|s| !s.is_empty())?;
    if docker_desktop {
        return Some(Agent::DockerDesktop);
    }
    let path = PathBuf::from(sock);
    let socket =
        path.is_absolute() && std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_socket());
    socket.then_some(Agent::Socket(path))
}

/// Whether `program` is an executable on PATH.
fn on_path(program: &str) -> bool {
    which::which(program).is_ok()
}

/// Picks nix when `program` or nix is on PATH, else Docker.
pub fn default_via(program: &str) -> Via {
    if on_path(program) || on_path("nix") {
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
    /// Disk encryption keys: where nixos-anywhere puts each on the installer, and
    /// the staged file it reads.
    pub disk_keys: &'a [(String, PathBuf)],
    /// What the user passed on to nixos-anywhere, after keys' own arguments.
    pub extra: &'a [OsString],
}

/// nixos-anywhere options that keys gives itself, and what sets each in keys.
const OWN_OPTIONS: &[(&str, &str)] = &[
    ("-f", "the host file's flake_attr"),
    ("--flake", "the host file's flake_attr"),
    ("--target-host", "--target"),
    ("--extra-files", "the tree keys stages"),
    ("-i", "--ssh-key"),
    ("-p", "--port"),
    ("--ssh-port", "--port"),
];

/// Refuses arguments for nixos-anywhere that would replace what keys gives it.
pub fn check_passthrough(extra: &[OsString]) -> Result<()> {
    for arg in extra {
        if let Some((option, instead)) = OWN_OPTIONS.iter().find(|(o, _)| arg == *o) {
            return Err(crate::error::usage(
                format!("{option} after `--` would replace what keys gives nixos-anywhere"),
                format!("leave it out and use {instead}"),
            ));
        }
    }
    Ok(())
}

/// The nixos-anywhere command of `keys install`.
pub fn install_command(runner: &Runner, i: &Install<'_>) -> CommandLine {
    let anywhere_args =
        |flake_root: &str, tree: OsString, key: Option<OsString>, disk: Vec<OsString>| {
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
            for ((remote, _), local) in i.disk_keys.iter().zip(disk) {
                args.push("--disk-encryption-keys".into());
                args.push(remote.into());
                args.push(local);
            }
            args.extend(i.extra.iter().cloned());
            args
        };
    let nix_run = |command: CommandLine| command.args(["run", NIXOS_ANYWHERE, "--"]);
    match runner {
        Runner::Nix => {
            let command = if on_path("nixos-anywhere") {
                CommandLine::new("nixos-anywhere")
            } else {
                nix_run(CommandLine::new("nix").args(NIX_FEATURES))
            };
            let disk = i
                .disk_keys
                .iter()
                .map(|(_, local)| local.as_os_str().to_owned())
                .collect();
            let mut command = command.args(anywhere_args(
                ".",
                i.tree.into(),
                i.ssh_key.map(Into::into),
                disk,
            ));
            command.cwd = Some(i.repo.root().to_path_buf());
            command
        }
        Runner::Docker(docker) => {
            let mut mounts = vec![(i.tree.as_os_str().to_owned(), "/extra-files")];
            let inside: Vec<String> = (1..=i.disk_keys.len())
                .map(|n| format!("/disk-keys/{n}"))
                .collect();
            for ((_, local), inside) in i.disk_keys.iter().zip(&inside) {
                mounts.push((local.as_os_str().to_owned(), inside));
            }
            if let Some(key) = i.ssh_key {
                mounts.push((key.as_os_str().to_owned(), IN_SSH_KEY));
            }
            let command = docker.run(i.repo, &mounts, &[]);
            nix_run(command).args(anywhere_args(
                WORK,
                "/extra-files".into(),
                i.ssh_key.map(|_| IN_SSH_KEY.into()),
                inside.into_iter().map(Into::into).collect(),
            ))
        }
    }
}

/// The connection `install` makes after the reboot to prove the new host presents
/// the staged key.
pub fn verify_command(
    host: &Host,
    known_hosts: &Path,
    ssh_key: Option<&Path>,
) -> Result<CommandLine> {
    let address = address(host)?;
    Ok(CommandLine::new("ssh")
        .args(ssh_options(known_hosts, host.ssh_port, ssh_key))
        .args(["-o", "BatchMode=yes"])
        .arg(login(host, address))
        .arg("true"))
}

/// The command line a host's login shell runs for `keys`: `sh -c SCRIPT NAME ARGS…`,
/// every word quoted, so that no value is ever read as shell code, and behind
/// `sudo -n` when the host's `ssh_user` is not root. Secrets never go here: they go
/// on the session's standard input.
pub fn remote_script(host: &Host, name: &str, script: &str, args: &[&str]) -> String {
    let mut words: Vec<&[u8]> = Vec::new();
    if host.ssh_user != "root" {
        words.extend([b"sudo".as_slice(), b"-n".as_slice()]);
    }
    words.extend([
        b"sh".as_slice(),
        b"-c".as_slice(),
        script.as_bytes(),
        name.as_bytes(),
    ]);
    words.extend(args.iter().map(|a| a.as_bytes()));
    let quoted: Vec<String> = words
        .iter()
        .map(|w| String::from_utf8_lossy(&shell_quote(w)).into_owned())
        .collect();
    quoted.join(" ")
}

/// `ssh` running `remote` (a command line for the login shell) on the host, with the
/// keys in `known_hosts` pinned, never asking anything (BatchMode) and with no
/// terminal.
pub fn ssh_command(
    host: &Host,
    known_hosts: &Path,
    ssh_key: Option<&Path>,
    remote: String,
) -> Result<CommandLine> {
    let address = address(host)?;
    Ok(CommandLine::new("ssh")
        .args(ssh_options(known_hosts, host.ssh_port, ssh_key))
        .args(["-o", "BatchMode=yes", "-T"])
        .arg(login(host, address))
        .arg(remote))
}

/// An ssh session whose standard input `keys` writes and whose standard output it
/// reads line by line: secrets go to the host on its input, never on a command line.
/// Dropping it closes the input and ends the session (the program is killed if it is
/// still running), which the scripts `keys` runs on a host read as "put everything
/// back".
pub struct Session {
    program: String,
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

/// The longest line a session's output may have; a longer one is cut.
const MAX_LINE: usize = 4096;

impl Session {
    /// Starts `command` with piped standard input, output and error.
    pub fn start(command: &CommandLine) -> Result<Session> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &command.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd.spawn().map_err(|e| Error::External {
            program: command.program.clone(),
            reason: format!("cannot run it ({e})"),
        })?;
        let input = child.stdin.take();
        let (tx, lines) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                use std::io::BufRead;
                let mut reader = std::io::BufReader::new(out);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader
                        .by_ref()
                        .take(MAX_LINE as u64)
                        .read_until(b'\n', &mut line)
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&line);
                            if tx.send(text.trim_end().to_string()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = err.by_ref().take(1 << 20).read_to_end(&mut buf);
                buf
            })
        });
        Ok(Session {
            program: command.program.clone(),
            child,
            input,
            lines,
            stderr,
        })
    }

    /// Writes `data` to the session's input. False when the session has ended.
    pub fn send(&mut self, data: &[u8]) -> bool {
        use std::io::Write;
        match &mut self.input {
            Some(input) => input.write_all(data).and_then(|()| input.flush()).is_ok(),
            None => false,
        }
    }

    /// Closes the session's input: the program reads the end of it.
    pub fn close_input(&mut self) {
        self.input = None;
    }

    /// The next line of output, within `timeout`. None when the output ended or
    /// nothing came in time. A signal received meanwhile is `Interrupted`.
    pub fn line(&mut self, timeout: Duration, guard: &SignalGuard) -> Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(signal) = guard.interrupted() {
                return Err(crate::signal::interruption(signal));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => return Ok(Some(line)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    /// The next line of output within `timeout`, whatever signal comes meanwhile:
    /// for the answer to a step that cannot be taken back once asked for.
    pub fn line_regardless(&mut self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Ends the session: closes its input, waits up to `timeout` for the program to
    /// exit (then kills it), and returns how it ended with what it wrote on stderr.
    pub fn finish(mut self, timeout: Duration) -> Result<(), Failure> {
        self.input = None;
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok(()),
            status => Err(Failure::Exit {
                code: status.and_then(|s| s.code()),
                stderr,
            }),
        }
    }

    /// The program the session runs, for messages.
    pub fn program(&self) -> &str {
        &self.program
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.input = None;
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs `command` with `input` on its standard input and its output captured (at
/// most 16 MiB), within `timeout`: the lines it printed, and how it ended. A signal
/// received meanwhile is `Interrupted`.
pub fn run_with_input(
    command: &CommandLine,
    input: &[u8],
    timeout: Duration,
    guard: &SignalGuard,
) -> Result<(Vec<String>, Result<(), Failure>)> {
    let mut session = match Session::start(command) {
        Ok(s) => s,
        Err(Error::External { reason, .. }) => {
            return Ok((
                Vec::new(),
                Err(Failure::Missing(std::io::Error::other(reason))),
            ));
        }
        Err(e) => return Err(e),
    };
    session.send(input);
    session.close_input();
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    let mut size = 0usize;
    while let Some(line) =
        session.line(deadline.saturating_duration_since(Instant::now()), guard)?
    {
        size += line.len() + 1;
        if size > 16 << 20 {
            break;
        }
        lines.push(line);
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    Ok((lines, session.finish(left)))
}

/// How a command ended, when it did not succeed.
pub enum Failure {
    /// The program could not be started.
    Missing(std::io::Error),
    /// It exited non-zero (or was killed); the last lines of its stderr when captured.
    Exit { code: Option<i32>, stderr: String },
}

/// Where a command's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// To the terminal, as it comes.
    Shown,
    /// Kept, for the last lines of a failure (`Failure::Exit`).
    Captured,
}

/// Runs a command with the terminal's stdin, stdout and stderr (stderr captured
/// when asked). A signal received by `keys` is passed on to the program, which is
/// then waited for, and reported as `Interrupted`.
pub fn run(
    command: &CommandLine,
    guard: &SignalGuard,
    errors: Stderr,
) -> Result<Result<(), Failure>> {
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args);
    if let Some(cwd) = &command.cwd {
        cmd.current_dir(cwd);
    }
    cmd.envs(command.env.iter().map(|(k, v)| (k, v)));
    if errors == Stderr::Captured {
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
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io(&command.program, e))?
        {
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
        return Err(crate::signal::interruption(signal));
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

/// `ADDR`, `ADDR:PORT`, `[ADDR]:PORT` or a bare IPv6 address.
pub fn parse_target(target: &str) -> Result<(String, Option<u16>)> {
    let bad = |reason: &'static str| Error::BadAddress {
        target: target.to_string(),
        reason,
    };
    let (addr, port) = if let Some(rest) = target.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
        match after {
            "" => (addr, None),
            p => (
                addr,
                Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            ),
        }
    } else {
        match target.split_once(':') {
            Some((a, p)) if !p.contains(':') => (a, Some(p)),
            _ => (target, None),
        }
    };
    if addr.is_empty()
        || addr.starts_with('-')
        || !addr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:%".contains(c))
    {
        return Err(bad("not a host name or IP address"));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        ),
        None => None,
    };
    Ok((addr.to_string(), port))
}

/// Asks a host for its ed25519 host key: `PROGRAM -T SECS -t ed25519 -p PORT ADDR`
/// (no shell), killed after `timeout`; its stderr is kept for the error.
pub fn keyscan(program: &Path, addr: &str, port: u16, timeout: Duration) -> Result<Recipient> {
    let shown = program.display().to_string();
    let external = |reason: String| Error::External {
        program: shown.clone(),
        reason,
    };
    let mut child = Command::new(program)
        .args(["-T", &timeout.as_secs().max(1).to_string()])
        .args(["-t", "ed25519", "-p", &port.to_string(), addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| external(format!("cannot run it: {e}")))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.by_ref().take(1 << 20).read_to_end(&mut buf);
            buf
        })
    };
    let out = child.stdout.take().map(|s| drain(Box::new(s)));
    let err = child.stderr.take().map(|s| drain(Box::new(s)));
    let deadline = Instant::now() + timeout + Duration::from_secs(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(external(format!(
                    "no answer from {addr} port {port} within {} s",
                    timeout.as_secs()
                )));
            }
            Err(e) => return Err(external(e.to_string())),
        }
    };
    let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let (stdout, stderr) = (collect(out), collect(err));
    let origin = format!("ssh-keyscan {addr}:{port}");
    let has_key = stdout
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if has_key {
        return Recipient::host_key_in(&stdout, &origin);
    }
    let said = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    Err(external(format!(
        "no ssh-ed25519 host key from {addr} port {port} ({status}){said}"
    )))
}

#[cfg(test)]
mod tests;
