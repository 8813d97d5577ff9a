//! `keys stage-install`: the `--extra-files` tree for nixos-anywhere.

use std::path::PathBuf;

use crate::error::Result;
use crate::ops::stage::{self, Target};
use crate::ops::workspace::Hosts;
use crate::signal::SignalGuard;

use super::{shared, ui};

/// Stage a host's pre-generated SSH host key for nixos-anywhere --extra-files.
///
/// Decrypts the host's key (stored with `keys host add --generate`) into a tree:
/// <persist>/etc/ssh/ssh_host_ed25519_key (0600) and .pub (0644), where <persist> is
/// the host file's persist prefix; the sops-nix age key file when the host file sets
/// age_key_file (0600); and the own keys of its containers under
/// <persist>/etc/ssh/containers/NAME/. The tree root is 0755 (nixos-anywhere copies
/// its mode onto /mnt) inside a new 0700 directory on tmpfs ($XDG_RUNTIME_DIR, else
/// /dev/shm). Prints the tree's path; remove it with --clean when done.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["host", "clean"])))]
pub(crate) struct Args {
    /// The host whose key to stage.
    #[arg(long, value_name = "NAME", add = super::complete::host_names())]
    host: Option<String>,

    /// Stage into this new or empty directory (it becomes the tree root).
    #[arg(long, value_name = "DIR", conflicts_with = "clean")]
    out: Option<PathBuf>,

    /// Wipe a tree stage-install made (zero-filled, then removed).
    #[arg(long, value_name = "DIR")]
    clean: Option<PathBuf>,

    /// Allow a disk-backed directory when no tmpfs is found.
    #[arg(long)]
    allow_disk_temp: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    if let Some(dir) = &args.clean {
        stage::clean(dir)?;
        ui::note(&format!("removed {}", dir.display()));
        return Ok(());
    }
    let name = args.host.as_deref().unwrap_or_default();
    let ws = ctx.workspace(Hosts::All)?;
    let host = ws.host(name)?;
    let guard = SignalGuard::new()?;
    let mut ids = ctx.identities()?;
    let files = stage::files(&ws, host, &mut ids, ctx.prompt())?;
    guard.check()?;
    let target = match &args.out {
        Some(dir) => Target::Out(dir),
        None => Target::Private,
    };
    let staged = stage::write(target, &files, shared::medium(args.allow_disk_temp))?;
    ui::note_scratch(staged.scratch());
    guard.check()?;
    let root = staged.keep();
    ui::note(&format!(
        "staged {} file{} for {name}; pass the tree to nixos-anywhere --extra-files, then run `keys stage-install --clean {}`",
        files.len(),
        ui::plural(files.len()),
        root.display()
    ));
    ui::out(&format!("{}\n", root.display()))
}
