//! `keys update`: send the flake to a host and switch to it.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::ops::deploy;
use crate::ops::remote::{self, Failure, Stderr};
use crate::ops::workspace::Hosts;
use crate::scratch::{Medium, Scratch};
use crate::signal::SignalGuard;

use super::shared::{exit_text, host_key_error};
use super::ui;

/// Send the flake to a host with rsync and run nixos-rebuild switch over ssh.
///
/// First checks, without any private key, that the host can decrypt every secret
/// its policy gives it and its containers (keys.lock up to date, and each file
/// naming the host's key). Then, with known_hosts built from the repository
/// (StrictHostKeyChecking=yes: an unknown or changed host key stops here), copies
/// flake.nix, flake.lock, the *.nix files, modules/ and the host's secrets to the
/// host file's flake_dir (default /etc/nixos) and runs `nixos-rebuild switch --flake
/// FLAKE_DIR#ATTR`. Reads address, ssh_port, ssh_user and flake_attr from
/// recipients/hosts/NAME.yaml.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The host to update.
    #[arg(long, value_name = "NAME", add = super::complete::host_names())]
    host: String,

    /// The SSH private key to log in with (ssh -i).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,

    /// Check and print the commands, and run nothing.
    #[arg(long)]
    dry_run: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let ws = ctx.workspace(Hosts::All)?;
    let host = ws.host(&args.host)?;
    let address = remote::address(host)?;
    let needed = deploy::readable(repo, &ws.policy, &ws.fleet, host)?;
    let files = deploy::flake_files(repo, &needed)?;
    ui::note(&format!(
        "{} can decrypt the {} secret{} it is sent",
        host.name,
        needed.len(),
        ui::plural(needed.len())
    ));
    let known_hosts_text = remote::known_hosts(host, address, host.ssh_port);
    if args.dry_run {
        let path = std::path::Path::new("$PINNED_KNOWN_HOSTS");
        let mut out = format!("# $PINNED_KNOWN_HOSTS: {known_hosts_text}");
        for command in remote::update_commands(repo, host, &files, path, args.ssh_key.as_deref())? {
            out.push_str(&format!("{command}\n"));
        }
        return ui::out(&out);
    }
    let guard = SignalGuard::new()?;
    // Not secret, but private and temporary: removed on every exit path.
    let scratch = Scratch::create(Medium::RamOrDisk)?;
    let known_hosts = scratch.create_file("known_hosts", known_hosts_text.as_bytes(), 0o644)?;
    let commands =
        remote::update_commands(repo, host, &files, &known_hosts, args.ssh_key.as_deref())?;
    let what = [
        "connecting",
        "sending the flake",
        "running nixos-rebuild switch",
    ];
    for (i, (command, what)) in commands.iter().zip(what).enumerate() {
        ui::note(&format!("{}: {what}", host.name));
        // ssh and rsync are read for a refused host key; nixos-rebuild speaks as it goes.
        let stderr = if i < 2 {
            Stderr::Captured
        } else {
            Stderr::Shown
        };
        match remote::run(command, &guard, stderr)? {
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
                let sent = if i == 0 {
                    "nothing was sent"
                } else if i == 1 {
                    "the copy may be partial"
                } else {
                    "the flake files were sent"
                };
                let detail = remote::last_line(&stderr);
                return Err(Error::Remote {
                    message: format!(
                        "{} {what} failed ({}){}{detail}; {sent}",
                        host.name,
                        exit_text(code),
                        if detail.is_empty() { "" } else { ": " },
                    ),
                    hint: format!(
                        "check that {address}:{} accepts ssh as {} (--ssh-key FILE) and has rsync and nixos-rebuild",
                        host.ssh_port, host.ssh_user
                    ),
                });
            }
        }
    }
    ui::note(&format!("updated {}", host.name));
    Ok(())
}
