//! `keys adopt [NAME…]`: record in keys.lock the secrets sops or agenix rewrote.

use crate::error::Result;
use crate::ops::secret;
use crate::ops::workspace::Hosts;

use super::{shared, ui};

/// Record secrets that sops or agenix wrote in secrets/keys.lock.
///
/// After `sops edit`, `sops updatekeys`, `agenix -e` or `agenix -r`, a secret's file no
/// longer matches keys.lock and `keys check` names it "changed outside keys". adopt
/// checks each such file's own header against its policy rule (the recipients, or
/// the key groups, must be exactly those the rule resolves to) and, when an identity
/// is at hand, that it opens; then it records the file's hash in keys.lock. A file
/// whose recipients differ is refused (run `keys rekey`), and nothing is recorded
/// unless every file named qualifies. Without NAME: every secret whose file differs
/// from keys.lock or that keys.lock does not list.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The secrets to adopt, e.g. bot/telegram-token.
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    names: Vec<String>,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let mut ws = ctx.writable_workspace(Hosts::All)?;
    let mut ids = ctx.identities()?;
    let adopted = secret::adopt(&mut ws, &args.names, Some(&mut ids), ctx.prompt())?;
    drop(ids);
    let mut text = String::new();
    for a in &adopted {
        let how = match a.opened {
            Some(_) => "header matches its policy; opens",
            None => "header matches its policy; not opened (no identity at hand)",
        };
        text.push_str(&format!("adopted   {}  ({how})\n", a.name));
    }
    if adopted.is_empty() {
        text.push_str("nothing to adopt: every secret matches keys.lock\n");
    }
    ui::out(&text)?;
    drop(ws);
    shared::refresh_exports(ctx)
}
