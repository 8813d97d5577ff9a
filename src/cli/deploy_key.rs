//! `keys deploy-key add|rotate|rm|ls`: SSH keys a CI deploys with, each allowed to
//! run one command on one host.

use crate::error::Result;
use crate::ops::deploy_key::{self, Changed, DeployKeySpec};
use crate::ops::export::Export;
use crate::ops::workspace::Hosts;

use super::ui::{self, Table};
use super::{Context, shared};

/// Manage CI deploy keys: SSH keys that can only run one command on a host.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: DeployKeyCommand,
}

#[derive(clap::Subcommand)]
enum DeployKeyCommand {
    Add(AddArgs),
    Rotate(RotateArgs),
    Rm(RmArgs),
    Ls(LsArgs),
}

/// Make a deploy key for a host: a new ed25519 key pair that can only run one
/// command.
///
/// The public key, the user and the command are recorded under deploy_keys in
/// recipients/hosts/HOST.yaml (its comments kept), and keys.nix authorizes it on the
/// host as `restrict,command="COMMAND" ssh-ed25519 …`: whatever the client asks
/// for, sshd runs COMMAND, with no terminal and no port, agent or X11 forwarding.
/// The private key is stored as secret deploy/NAME for the admins only
/// (policies/00-deploy-keys.yaml is created when no rule gives it to exactly the
/// admins); `keys decrypt deploy/NAME` prints the copy to give the CI.
#[derive(clap::Args)]
struct AddArgs {
    /// The key's name (unique in the fleet; its secret is deploy/NAME).
    #[arg(value_name = "NAME")]
    name: String,

    /// The host that authorizes it.
    #[arg(long, value_name = "HOST", add = super::complete::host_names())]
    host: String,

    /// The user it logs in as [default: root].
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// What it runs, one line without double quotes [default: `cd FLAKE_DIR && git
    /// pull --ff-only && nixos-rebuild switch --flake .#ATTR`, with sudo for a user
    /// other than root].
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
}

/// Give a deploy key a new key pair, for the same host, user and command.
///
/// The host file records the new public key and secret deploy/NAME holds the new
/// private key, written together; keys.nix follows. The host refuses the old key once
/// it runs the configuration with the new one: give the CI the new private key
/// (`keys decrypt deploy/NAME`) before switching the host.
#[derive(clap::Args)]
struct RotateArgs {
    /// The deploy key's name.
    #[arg(value_name = "NAME")]
    name: String,
}

/// Remove a deploy key: its entry in the host file, and secret deploy/NAME with its
/// keys.lock line.
#[derive(clap::Args)]
struct RmArgs {
    /// The deploy key's name.
    #[arg(value_name = "NAME")]
    name: String,
}

/// List the deploy keys: name, host, user, key fingerprint and command.
#[derive(clap::Args)]
struct LsArgs {
    /// Print the authorized_keys lines that keys.nix declares instead, one per key.
    #[arg(long)]
    authorized_keys: bool,

    /// Only the keys of this host.
    #[arg(long, value_name = "HOST", add = super::complete::host_names())]
    host: Option<String>,

    /// Only the keys that log in as this user.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
}

pub(crate) fn run(ctx: &Context, args: Args) -> Result<()> {
    match args.command {
        DeployKeyCommand::Add(a) => {
            let spec = DeployKeySpec {
                name: a.name,
                host: a.host,
                user: a.user,
                command: a.command,
            };
            let changed = deploy_key::add(ctx.repo()?, spec)?;
            report(ctx, &changed, true)
        }
        DeployKeyCommand::Rotate(a) => {
            let changed = deploy_key::rotate(ctx.repo()?, &a.name)?;
            report(ctx, &changed, true)
        }
        DeployKeyCommand::Rm(a) => {
            let changed = deploy_key::remove(ctx.repo()?, &a.name)?;
            report(ctx, &changed, false)
        }
        DeployKeyCommand::Ls(a) => ls(ctx, a),
    }
}

/// What changed, the key and its authorized_keys line, and what to do next.
fn report(ctx: &Context, changed: &Changed, made: bool) -> Result<()> {
    let mut text = shared::host_report(&changed.report);
    let key = &changed.key;
    if made {
        text.push_str(&format!(
            "{:<9} {}\nfor       {}@{}\nline      {}\n",
            key.key.kind(),
            key.key.fingerprint(),
            key.user,
            changed.host,
            key.authorized_key()
        ));
    }
    ui::out(&text)?;
    shared::refresh_exports(ctx)?;
    let nix = ctx.repo()?.root().join(Export::Nix.file());
    if !nix.exists() {
        ui::note(&format!(
            "no {} here: `keys export nix` writes it, with {}'s deploy keys",
            Export::Nix.file(),
            changed.host
        ));
    }
    if made {
        ui::note(&format!(
            "give the CI the private key `keys decrypt deploy/{}` prints; {} takes the new key once switched to its configuration",
            key.name, changed.host
        ));
    }
    Ok(())
}

fn ls(ctx: &Context, args: LsArgs) -> Result<()> {
    let ws = ctx.workspace(Hosts::All)?;
    if let Some(host) = &args.host {
        ws.fleet.require_host(host)?;
    }
    let mut table = Table::new("");
    let mut lines = String::new();
    table.header(["NAME", "HOST", "USER", "KEY", "COMMAND"]);
    for host in ws.fleet.hosts()? {
        if args.host.as_ref().is_some_and(|h| *h != host.name) {
            continue;
        }
        for d in &host.deploy_keys {
            if args.user.as_ref().is_some_and(|u| *u != d.user) {
                continue;
            }
            lines.push_str(&d.authorized_key());
            lines.push('\n');
            table.row([
                d.name.clone(),
                host.name.clone(),
                d.user.clone(),
                d.key.fingerprint(),
                d.command.clone(),
            ]);
        }
    }
    if args.authorized_keys {
        ui::out(&lines)
    } else {
        ui::out(&table.render())
    }
}
