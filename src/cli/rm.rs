//! `keys rm NAME`: remove a secret and its lock entry.

use crate::error::Result;
use crate::ops::secret;
use crate::ops::workspace::Hosts;

use super::ui;

/// Remove a secret: its file under secrets/ and its line in secrets/keys.lock.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The secret's name, e.g. bot/telegram-token.
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    name: String,
}

pub(crate) fn run(ctx: &super::Context, mut args: Args) -> Result<()> {
    args.name = super::shared::secret_name(&args.name)?;
    let mut ws = ctx.writable_workspace(Hosts::AsNeeded)?;
    let done = secret::remove(&mut ws, &args.name)?;
    match done.path {
        Some(p) => ui::note(&format!("removed {}", ws.repo.rel(&p))),
        None => ui::note(&format!("removed {} from secrets/keys.lock", args.name)),
    }
    drop(ws);
    super::shared::refresh_exports(ctx)
}
