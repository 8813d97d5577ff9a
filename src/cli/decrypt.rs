//! `keys decrypt`: open a secret by name, or any age file by path.

use std::path::{Path, PathBuf};

use crate::crypto::sops::Mac;
use crate::error::Result;
use crate::fsutil;
use crate::ops::secret;
use crate::ops::workspace::Hosts;

use super::{shared, ui};

/// Decrypt a secret (by name) or an age file (by path) to stdout or a new 0600 file.
///
/// TARGET is a path to an age file (binary or armored) when such a file exists, else
/// a secret name in the fleet repository (bot/telegram-token). Identities are searched
/// in order: -i FILE (repeatable), $KEYS_IDENTITY, the OS keyring,
/// ~/.config/keys/identity.txt, ~/.ssh/id_ed25519. An SSH key opens both ssh-ed25519
/// stanzas (agenix) and X25519 stanzas for its converted recipient (sops-nix).
/// Nothing is written unless the whole file decrypts and authenticates.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A secret name, or the path of an age file.
    #[arg(value_name = "TARGET", add = super::complete::secret_names())]
    target: String,

    /// Write the plaintext to this file (mode 0600) instead of stdout; `-` is stdout.
    /// An existing FILE is replaced only if it is a regular file (never a symlink, a
    /// device such as /dev/null or /dev/stdout, or a FIFO).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Do not check a sops file's MAC. Each value is still authenticated, but values
    /// added, removed or reordered outside sops and keys go unnoticed. For reading
    /// a damaged file only.
    #[arg(long)]
    ignore_mac: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let output = args.output.as_deref().filter(|p| *p != Path::new("-"));
    if let Some(path) = output {
        shared::refuse_special_output(path)?;
        // Plaintext that a killed `decrypt -o` left beside its target is wiped first.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        for (left, pid) in fsutil::sweep_plain(dir) {
            ui::note_leftover(&left, pid);
        }
    }
    let as_path = Path::new(&args.target);
    let mac = if args.ignore_mac {
        Mac::Ignore
    } else {
        Mac::Check
    };
    let plain = if std::fs::metadata(as_path).is_ok_and(|m| m.is_file()) {
        let mut ids = ctx.identities()?;
        secret::open_any(as_path, &mut ids, ctx.prompt(), mac)?
    } else {
        let ws = ctx.workspace(Hosts::AsNeeded)?;
        let (path, format) = ws.locate(&args.target)?;
        let rule = ws.rule(&args.target).ok().filter(|r| r.format == format);
        let indent = rule.and_then(|r| r.sops.indent);
        let mut ids = ctx.identities()?;
        secret::open_indented(&path, (format, indent), &mut ids, ctx.prompt(), mac)?.plain
    };
    if args.ignore_mac {
        ui::warn(
            "--ignore-mac: the sops MAC was not checked; values added, removed or reordered outside sops or keys would go unnoticed",
        );
    }
    match output {
        Some(path) => fsutil::write_plaintext(path, &plain),
        None => ui::out_bytes(&plain),
    }
}
