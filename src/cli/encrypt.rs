//! `keys encrypt NAME`: encrypt a secret for the readers its policy names.

use std::io::IsTerminal;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::error::{Result, usage};
use crate::ops::secret::{self, EncryptOptions};
use crate::ops::workspace::Hosts;

use super::shared::MAX_SECRET;
use super::{prompt, shared, ui};

/// Encrypt a secret for the readers its policy rule names.
///
/// NAME is the secret's name under secrets/, without extension (bot/telegram-token is
/// written to secrets/bot/telegram-token.age for a rule with format age). The
/// plaintext comes from standard input when it is not a terminal, from --from FILE,
/// or is typed twice without echo on a terminal; never from the command line. The
/// file is written to a temp file beside its target and renamed into place, and
/// secrets/keys.lock records its recipients and hash.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The secret's name, e.g. bot/telegram-token.
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    name: String,

    /// Read the plaintext from this file ("-" for standard input).
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,

    /// Replace the secret if it exists.
    #[arg(long)]
    force: bool,

    /// Accept an empty plaintext.
    #[arg(long)]
    allow_empty: bool,
}

pub(crate) fn run(ctx: &super::Context, mut args: Args) -> Result<()> {
    args.name = super::shared::secret_name(&args.name)?;
    let mut ws = ctx.writable_workspace_for_secret(Hosts::AsNeeded, &args.name)?;
    // Name and policy errors come before any input is read.
    ws.rule(&args.name)?;
    let plaintext = read_plaintext(args.from.as_ref(), &args.name)?;
    let opts = EncryptOptions {
        force: args.force,
        allow_empty: args.allow_empty,
    };
    let done = secret::encrypt(&mut ws, &args.name, &plaintext, &opts, None)?;
    ui::note(&format!(
        "{} {} for {} recipient{}",
        if done.replaced { "replaced" } else { "wrote" },
        ws.repo.rel(&done.path),
        done.recipients,
        ui::plural(done.recipients)
    ));
    drop(ws);
    shared::refresh_exports(ctx)
}

fn read_plaintext(from: Option<&PathBuf>, name: &str) -> Result<Zeroizing<Vec<u8>>> {
    match from {
        Some(path) if path.as_os_str() != "-" => {
            let file = std::fs::File::open(path).map_err(|e| crate::error::Error::io(path, e))?;
            prompt::read_secret(file, &path.display().to_string(), MAX_SECRET)
        }
        Some(_) => prompt::read_secret(std::io::stdin().lock(), "<stdin>", MAX_SECRET),
        None if !std::io::stdin().is_terminal() => {
            prompt::read_secret(std::io::stdin().lock(), "<stdin>", MAX_SECRET)
        }
        None => {
            if std::fs::File::open("/dev/tty").is_err() {
                return Err(usage(
                    "no plaintext: standard input is a terminal that cannot be opened",
                    "pipe the secret in, or pass --from FILE",
                ));
            }
            prompt::secret_from_tty(name)
        }
    }
}
