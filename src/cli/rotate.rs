//! `keys rotate NAME`: a new value for a secret, made by its rule's generator or
//! written in the editor.

use crate::error::{Error, Result};
use crate::ops::generate::{self, Outcome};
use crate::ops::workspace::Hosts;

use super::{shared, ui};

/// Give a secret a new value: its rule's generator makes one, else the editor opens.
///
/// For a secret whose policy rule has `generate:`, this is `keys generate --force
/// NAME` for an existing secret (a hashed password gets a new passphrase too, and a
/// key a new public half). For any other, the secret opens in $VISUAL or $EDITOR as
/// with `keys edit`, to be replaced by its new value.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The secret's name, e.g. web1/db-password.
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    name: String,

    /// Allow the plaintext on a disk-backed temporary directory when no tmpfs is
    /// found (editor only).
    #[arg(long)]
    allow_disk_temp: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let name = shared::secret_name(&args.name)?;
    let mut ws = ctx.writable_workspace(Hosts::AsNeeded)?;
    if ws.locate(&name).is_err() {
        return Err(Error::NoSecret {
            near: ws.near_names(&name),
            name,
        });
    }
    if ws.rule(&name)?.generate.is_none() {
        drop(ws);
        return shared::edit(
            ctx,
            &name,
            shared::EditOptions {
                new: false,
                allow_disk_temp: args.allow_disk_temp,
                allow_empty: false,
            },
        );
    }
    if let Outcome::Made(made) = generate::generate(&mut ws, &name, true)? {
        let mut text = format!(
            "rotated {}: a new {} value for {} recipient{}",
            ws.repo.rel(&made.path),
            made.kind,
            made.recipients,
            ui::plural(made.recipients)
        );
        if let Some(public) = &made.public {
            text.push_str(&format!(", its public half in {}", ws.repo.rel(public)));
        }
        if let Some((clear, _)) = &made.clear {
            text.push_str(&format!(", a new passphrase in {clear}"));
        }
        ui::note(&text);
    }
    drop(ws);
    shared::refresh_exports(ctx)
}
