//! `keys admin`: the fleet's admins.

use crate::error::Result;

use super::shared;

/// Manage admins (recipients/admins/NAME.pub).
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand)]
enum AdminCommand {
    #[command(mut_args(super::complete::on("old", super::complete::admin_names())))]
    Rename(shared::RenameArgs),
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    match args.command {
        AdminCommand::Rename(a) => shared::rename(ctx, crate::ops::rename::Kind::Admin, a),
    }
}
