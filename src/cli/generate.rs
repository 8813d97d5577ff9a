//! `keys generate [NAME…|--all]`: make the values of secrets whose rule says how.

use crate::error::Result;
use crate::ops::generate::{self, Outcome};
use crate::ops::workspace::Hosts;

use super::{shared, ui};

/// Make secrets whose policy rule says how (`generate:`), from the OS random source.
///
/// A rule's `generate: {kind: KIND}` says how its secrets' values are made: alnum
/// (`length` letters and digits, default 32), hex and base64 (`length` random bytes,
/// default 32, as `openssl rand -hex N` and `-base64 N` count them), passphrase
/// (`words` words of the EFF long list separated by spaces, default 6), ssh-ed25519
/// (an OpenSSH private key), wireguard (a private key as `wg genkey` writes it), age
/// (an identity as `age-keygen` writes it), and hashed-password (a SHA-512 crypt hash
/// for NixOS's `hashedPasswordFile`, of a new six-word passphrase that is kept as the
/// secret NAME.clear, an age file for the admins only). Only formats age and
/// sops-binary take a generator: the value is the whole secret. A key's public half
/// is written in clear beside it, as secrets/NAME.pub, and `keys export nix` names it
/// in keys.nix. A secret that exists is left as it is unless --force. Values go from
/// the random source to the encrypted file in memory that is wiped after, and are
/// never printed.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The secrets to make, e.g. web1/wireguard.
    #[arg(value_name = "NAME", required_unless_present = "all", add = super::complete::secret_names())]
    names: Vec<String>,

    /// Every secret a rule with `generate:` names in full (a glob without wildcards,
    /// or a {host} rule's for each host), and every existing secret of such a rule.
    #[arg(long, conflicts_with = "names")]
    all: bool,

    /// Make a new value for a secret that exists (rotate it).
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let mut ws = ctx.writable_workspace(if args.all {
        Hosts::All
    } else {
        Hosts::AsNeeded
    })?;
    let names = if args.all {
        generate::all_names(&ws)?
    } else {
        let names = args
            .names
            .iter()
            .map(|n| shared::secret_name(n))
            .collect::<Result<Vec<_>>>()?;
        // Every name's rule is checked before anything is written.
        for name in &names {
            generate::generator(&ws, name)?;
        }
        names
    };
    if names.is_empty() {
        ui::note("nothing to generate: no rule with generate: names a secret in full");
    }
    for name in &names {
        match generate::generate(&mut ws, name, args.force)? {
            Outcome::Exists => ui::note(&format!(
                "{name} exists; left as it is (--force makes a new value)"
            )),
            Outcome::Made(made) => {
                let mut text = format!(
                    "{} {} ({}) for {} recipient{}",
                    if made.replaced { "replaced" } else { "wrote" },
                    ws.repo.rel(&made.path),
                    made.kind,
                    made.recipients,
                    ui::plural(made.recipients)
                );
                if let Some(public) = &made.public {
                    text.push_str(&format!(", its public half in {}", ws.repo.rel(public)));
                }
                if let Some((clear, path)) = &made.clear {
                    text.push_str(&format!(
                        ", its passphrase as {clear} ({}) for the admins",
                        ws.repo.rel(path)
                    ));
                }
                ui::note(&text);
            }
        }
    }
    drop(ws);
    shared::refresh_exports(ctx)
}
