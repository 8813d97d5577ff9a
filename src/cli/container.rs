//! `keys container add`: a NixOS container on one of the fleet's hosts.

use crate::error::Result;
use crate::ops::container::{self, ContainerSpec};

use super::{shared, ui};

/// Add containers to a host's file.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: ContainerCommand,
}

#[derive(clap::Subcommand)]
enum ContainerCommand {
    Add(AddArgs),
}

/// Add a container to its host's file (recipients/hosts/HOST.yaml).
///
/// By default the container shares its host's identity: the host key is bind-mounted
/// read-only into it, and policies name it container:NAME. With --own-key it gets a
/// new ed25519 key pair: the public key goes into its entry in the host file, the
/// private key into the secret hosts/HOST/containers/NAME/ssh_host_ed25519_key,
/// encrypted to the admins only (policies/00-host-keys.yaml is created when no rule
/// gives it to exactly the admins). The rest of the host file, comments included, is
/// kept as it is.
#[derive(clap::Args)]
struct AddArgs {
    /// The container's name (unique among hosts and containers).
    #[arg(value_name = "NAME")]
    name: String,

    /// The host it runs on.
    #[arg(long, value_name = "HOST", add = super::complete::host_names())]
    host: String,

    /// Give it its own generated SSH host key instead of sharing the host's.
    #[arg(long)]
    own_key: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    match args.command {
        ContainerCommand::Add(a) => {
            let spec = ContainerSpec {
                name: a.name,
                host: a.host,
                own_key: a.own_key,
            };
            let report = container::add_container(ctx.repo()?, spec)?;
            ui::out(&shared::host_report(&report))?;
            shared::refresh_exports(ctx)
        }
    }
}
