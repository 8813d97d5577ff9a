//! `keys install`: nixos-anywhere with the host's staged key.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ops::remote::{self, Failure, Install, Stderr, Via};
use crate::ops::stage::{self, Target};
use crate::ops::workspace::Hosts;
use crate::signal::SignalGuard;

use super::shared::{self, exit_text, host_key_error};
use super::ui;

/// Install NixOS on a host with nixos-anywhere, its host key staged from the repo.
///
/// Stages the host's key as `keys stage-install` does, runs `nixos-anywhere --flake
/// .#ATTR --extra-files TREE --target-host TARGET` (the nixos-anywhere on PATH, else
/// `nix run`, else the nixos/nix Docker image with the repository and the tree
/// mounted), then waits for the host to come back and checks, with known_hosts built
/// from the repository, that it presents the staged key. The staged tree is removed
/// whatever happens: success, failure or Ctrl-C. Reads address, ssh_port and
/// flake_attr from recipients/hosts/NAME.yaml.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The host to install.
    #[arg(long, value_name = "NAME", add = super::complete::host_names())]
    host: String,

    /// Where nixos-anywhere connects before the install (default: root@ADDRESS).
    #[arg(long, value_name = "USER@ADDR")]
    target: Option<String>,

    /// The ssh port before the install (default: nixos-anywhere's, 22).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// How to run nixos-anywhere (default: nix when nixos-anywhere or nix is on PATH,
    /// else docker).
    #[arg(long, value_enum, value_name = "HOW")]
    via: Option<ViaArg>,

    /// The SSH private key to log in with (nixos-anywhere -i, ssh -i).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,

    /// How long to wait for the installed host to present its key (0: do not check).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait: u64,

    /// Print the commands, with no secret in them, and run nothing.
    #[arg(long)]
    dry_run: bool,

    /// Allow a disk-backed directory for the staged tree when no tmpfs is found.
    #[arg(long)]
    allow_disk_temp: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ViaArg {
    Nix,
    Docker,
}

/// Placeholders for what exists only while a real install runs.
const TREE: &str = "$STAGED_TREE";
const KNOWN_HOSTS: &str = "$PINNED_KNOWN_HOSTS";

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let ws = ctx.workspace(Hosts::All)?;
    let host = ws.host(&args.host)?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => format!("root@{}", remote::address(host)?),
    };
    if args.wait > 0 {
        remote::address(host)?;
    }
    let via = match args.via {
        Some(ViaArg::Nix) => Via::Nix,
        Some(ViaArg::Docker) => Via::Docker,
        None => remote::default_via(),
    };
    let install = |tree: &std::path::Path| {
        remote::install_command(
            via,
            &Install {
                repo,
                host,
                target: target.clone(),
                port: args.port,
                tree,
                ssh_key: args.ssh_key.as_deref(),
            },
        )
    };
    if args.dry_run {
        let mut out = format!(
            "# stage {}'s host key into {TREE} (a 0700 directory on tmpfs), as `keys stage-install --host {}`\n",
            host.name, host.name
        );
        out.push_str(&format!("{}\n", install(std::path::Path::new(TREE))));
        if args.wait > 0 {
            out.push_str(&format!(
                "# {KNOWN_HOSTS}: {}",
                remote::known_hosts(host, remote::address(host)?, host.ssh_port)
            ));
            out.push_str(&format!(
                "{}\n",
                remote::verify_command(
                    host,
                    std::path::Path::new(KNOWN_HOSTS),
                    args.ssh_key.as_deref()
                )?
            ));
        }
        out.push_str(&format!("# remove {TREE}\n"));
        return ui::out(&out);
    }
    let guard = SignalGuard::new()?;
    let mut ids = ctx.identities()?;
    let files = stage::files(&ws, host, &mut ids, ctx.prompt())?;
    guard.check()?;
    // Dropped on every path out of this function: the tree is wiped.
    let staged = stage::write(
        Target::Private,
        &files,
        shared::medium(args.allow_disk_temp),
    )?;
    let command = install(staged.root());
    ui::note(&format!("running {command}"));
    match remote::run(&command, &guard, Stderr::Shown)? {
        Ok(()) => {}
        Err(Failure::Missing(e)) => {
            return Err(Error::External {
                program: command.program.clone(),
                reason: format!("cannot run it ({e}); the staged tree was removed"),
            });
        }
        Err(Failure::Exit { code, .. }) => {
            return Err(Error::Remote {
                message: format!(
                    "{} failed ({}); the staged tree was removed",
                    command.program,
                    exit_text(code)
                ),
                hint: "read its output above, fix the cause, and run `keys install` again".into(),
            });
        }
    }
    if args.wait == 0 {
        ui::note(&format!("installed {}", host.name));
        return Ok(());
    }
    let address = remote::address(host)?;
    let known_hosts = staged.scratch().create_file(
        "known_hosts",
        remote::known_hosts(host, address, host.ssh_port).as_bytes(),
        0o644,
    )?;
    let verify = remote::verify_command(host, &known_hosts, args.ssh_key.as_deref())?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        match remote::run(&verify, &guard, Stderr::Captured)? {
            Ok(()) => break,
            Err(Failure::Missing(e)) => {
                return Err(Error::External {
                    program: "ssh".into(),
                    reason: format!("cannot run it ({e})"),
                });
            }
            Err(Failure::Exit { stderr, .. }) if remote::host_key_refused(&stderr) => {
                return Err(host_key_error(host, address));
            }
            Err(Failure::Exit { stderr, .. }) => {
                if Instant::now() >= deadline {
                    return Err(Error::Remote {
                        message: format!(
                            "{} did not come back on {address}:{} within {} s: {}",
                            host.name,
                            host.ssh_port,
                            args.wait,
                            remote::last_line(&stderr)
                        ),
                        hint: "check the host's console; the install itself finished".into(),
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        guard.check()?;
    }
    ui::note(&format!(
        "installed {}: it answers on {address}:{} with its pinned key",
        host.name, host.ssh_port
    ));
    Ok(())
}
