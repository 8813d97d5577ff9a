//! `keys decrypt`: open an age file with the identities found in the search order.

use std::path::PathBuf;

use crate::crypto;
use crate::error::{Location, Result};
use crate::fsutil;
use crate::identity::{Identities, Search};

/// Decrypt an age file to stdout or to a new 0600 file.
///
/// Identities are searched in order: -i FILE (repeatable), $KEYS_IDENTITY, the OS
/// keyring, ~/.config/keys/identity.txt, ~/.ssh/id_ed25519. An SSH key opens both
/// ssh-ed25519 stanzas (agenix) and X25519 stanzas for its converted recipient
/// (sops-nix). Nothing is written unless the whole file decrypts and authenticates.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The age file (binary or armored).
    #[arg(value_name = "FILE")]
    target: PathBuf,

    /// Write the plaintext to this file (mode 0600) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let ciphertext = fsutil::read(&args.target)?;
    let mut ids = Identities::search(&Search::from_env(ctx.identities.clone())?)?;
    let plain = crypto::decrypt(
        &ciphertext,
        &mut ids,
        &ctx.prompt,
        &Location::file(&args.target),
    )?;
    match &args.output {
        Some(path) => fsutil::write_atomic(path, &plain, fsutil::PRIVATE),
        None => super::out_bytes(&plain),
    }
}
