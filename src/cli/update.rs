//! `keys update`: send the flake to a host and switch to it, or build here and copy
//! the closure.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, usage};
use crate::ops::deploy;
use crate::ops::remote::{self, Build, Failure, Runner, Stderr, Step, Update};
use crate::ops::workspace::Hosts;
use crate::scratch::{Medium, Scratch};
use crate::signal::SignalGuard;

use super::shared::{self, ViaArg, exit_text, host_key_error};
use super::ui;

/// Send the flake to a host with rsync and run nixos-rebuild switch over ssh.
///
/// First checks, without any private key, that the host can decrypt every secret
/// its policy gives it and its containers (keys.lock up to date, and each file
/// naming the host's key), and that flake.nix and flake.lock are there and tracked
/// by git. Then, with known_hosts built from the repository (StrictHostKeyChecking=yes:
/// an unknown or changed host key stops here), copies every file git tracks in the
/// flake, except the secrets the host does not read, to the host file's flake_dir
/// (default /etc/nixos) and runs `nixos-rebuild switch --flake FLAKE_DIR#ATTR` there.
/// With --build-on local it sends nothing to flake_dir: `nixos-rebuild switch --flake
/// .#ATTR --target-host USER@ADDRESS` builds here and copies the closure, over ssh
/// with the same pinned options. When ssh_user is not root, what runs on the host
/// runs through `sudo -n` (passwordless sudo). An rsync without -s (macOS's 2.6.9
/// or openrsync) is found out and the remote path quoted for it instead. Reads
/// address, ssh_port, ssh_user, flake_dir and flake_attr from
/// recipients/hosts/NAME.yaml.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The host to update.
    #[arg(long, value_name = "NAME", add = super::complete::host_names())]
    host: String,

    /// The SSH private key to log in with (ssh -i).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,

    /// Where the new system is built: on the host, from the flake sent to flake_dir,
    /// or here, copying the closure to the host (for a host too small to build).
    #[arg(long, value_enum, value_name = "WHERE", default_value = "remote")]
    build_on: BuildOn,

    /// With --build-on local: how to run nixos-rebuild (default: nix when
    /// nixos-rebuild or nix is on PATH, else docker).
    #[arg(long, value_enum, value_name = "HOW")]
    via: Option<ViaArg>,

    /// Check and print the commands, and run nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BuildOn {
    Remote,
    Local,
}

/// Stands for the known_hosts file that exists only while a real update runs.
const KNOWN_HOSTS: &str = "$PINNED_KNOWN_HOSTS";

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    if args.via.is_some() && args.build_on == BuildOn::Remote {
        return Err(usage(
            "--via applies to --build-on local: a remote build runs nixos-rebuild on the host",
            "add --build-on local, or leave out --via",
        ));
    }
    let repo = ctx.repo()?;
    let ws = ctx.workspace(Hosts::All)?;
    let host = ws.host(&args.host)?;
    let address = remote::address(host)?;
    if let Some(key) = &args.ssh_key {
        remote::check_ssh_key(key)?;
    }
    let needed = deploy::readable(repo, &ws.policy, &ws.fleet, host)?;
    let files = match args.build_on {
        BuildOn::Remote => deploy::flake_files(repo, &needed)?,
        BuildOn::Local => {
            deploy::check_flake(repo)?;
            Vec::new()
        }
    };
    ui::note(&format!(
        "{} can decrypt the {} secret{} it is sent",
        host.name,
        needed.len(),
        ui::plural(needed.len())
    ));
    let protect_args = args.build_on == BuildOn::Remote && remote::rsync_protects_args();
    let known_hosts_text = remote::known_hosts(host, address, host.ssh_port);
    let commands = |known_hosts: &Path, runner: &Runner| {
        let build = match args.build_on {
            BuildOn::Remote => Build::Remote {
                files: &files,
                protect_args,
            },
            BuildOn::Local => Build::Local(runner),
        };
        remote::update_commands(
            &Update {
                repo,
                host,
                known_hosts,
                ssh_key: args.ssh_key.as_deref(),
            },
            &build,
        )
    };
    let runner_for = |gitconfig: &dyn Fn() -> Result<PathBuf>| match args.build_on {
        BuildOn::Remote => Ok(Runner::Nix),
        BuildOn::Local => shared::runner(args.via, "nixos-rebuild", gitconfig),
    };
    if args.dry_run {
        let runner = runner_for(&|| Ok(PathBuf::from(shared::GITCONFIG)))?;
        let mut out = format!("# {KNOWN_HOSTS}: {known_hosts_text}");
        out.push_str(&shared::gitconfig_comment(&runner));
        for (_, command) in commands(Path::new(KNOWN_HOSTS), &runner)? {
            out.push_str(&format!("{command}\n"));
        }
        return ui::out(&out);
    }
    let guard = SignalGuard::new()?;
    // Not secret, but private and temporary: removed on every exit path.
    let scratch = Scratch::create(Medium::RamOrDisk)?;
    let known_hosts = scratch.create_file("known_hosts", known_hosts_text.as_bytes(), 0o644)?;
    let runner =
        runner_for(&|| scratch.create_file("gitconfig", remote::GITCONFIG.as_bytes(), 0o644))?;
    let flake_dir = host.flake_dir.trim_end_matches('/');
    for (step, command) in commands(&known_hosts, &runner)? {
        let (what, after_failure) = match step {
            Step::Connect => ("connecting", "nothing was sent"),
            Step::Send => ("sending the flake", "the copy may be partial"),
            Step::Switch => ("running nixos-rebuild switch", "the flake files were sent"),
            Step::BuildHere => (
                "building here and switching with nixos-rebuild --target-host",
                "nothing was sent to the flake directory",
            ),
        };
        ui::note(&format!("{}: {what}", host.name));
        // ssh and rsync are read for a refused host key; nixos-rebuild speaks as it goes.
        let stderr = match step {
            Step::Connect | Step::Send => Stderr::Captured,
            Step::Switch | Step::BuildHere => Stderr::Shown,
        };
        match remote::run(&command, &guard, stderr)? {
            Ok(()) => {}
            Err(Failure::Missing(e)) => {
                return Err(Error::External {
                    program: command.program.clone(),
                    reason: format!("cannot run it ({e})"),
                });
            }
            Err(Failure::Exit { stderr, .. }) if remote::host_key_refused(&stderr) => {
                return Err(host_key_error(host, address));
            }
            Err(Failure::Exit { code, stderr }) => {
                let detail = remote::last_line(&stderr);
                let sudo = if remote::needs_sudo(host) {
                    format!(", lets {} run sudo without a password", host.ssh_user)
                } else {
                    String::new()
                };
                let hint = match step {
                    Step::BuildHere => format!(
                        "read nixos-rebuild's output above; {address}:{} must accept ssh as {}{sudo} and take the closure from {} (root or a trusted Nix user)",
                        host.ssh_port, host.ssh_user, host.ssh_user
                    ),
                    _ => format!(
                        "check that {address}:{} accepts ssh as {} (--ssh-key FILE){sudo} and has rsync and nixos-rebuild",
                        host.ssh_port, host.ssh_user
                    ),
                };
                return Err(Error::Remote {
                    message: format!(
                        "{} {what} failed ({}){}{detail}; {after_failure}",
                        host.name,
                        exit_text(code),
                        if detail.is_empty() { "" } else { ": " },
                    ),
                    hint,
                });
            }
        }
        if step == Step::Send {
            ui::note(&format!(
                "{}: sent {} file{} to {flake_dir}: {}",
                host.name,
                files.len(),
                ui::plural(files.len()),
                deploy::summary(&files)
            ));
        }
    }
    ui::note(&format!("updated {}", host.name));
    Ok(())
}
