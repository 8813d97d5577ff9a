//! `keys completions SHELL`: shell completion scripts generated from the CLI.

use clap_complete::Shell;

use crate::error::Result;

use super::ui;

/// Print a completion script for a shell.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// bash, zsh, fish, elvish or powershell
    shell: Shell,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let mut cmd = super::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "keys", &mut buf);
    ui::out(&String::from_utf8_lossy(&buf))
}
