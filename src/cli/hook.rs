//! `keys hook install`: the hooks that run `keys check --staged` before a commit and
//! before a merge commits.

use crate::error::Result;

use super::{shared, ui};

/// Manage the git pre-commit hook that runs `keys check --staged`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: HookCommand,
}

#[derive(clap::Subcommand)]
enum HookCommand {
    /// Install the pre-commit hook in the git repository holding the fleet.
    ///
    /// Writes pre-commit and pre-merge-commit (so merges are checked too) in git's
    /// hooks directory (honouring core.hooksPath), and records that directory in
    /// git's configuration (keys.hooksdir), so that `keys check` reports when git no
    /// longer runs them. An existing hook is kept as NAME.before-keys and run after a
    /// passing check. The hooks fail closed: if keys is missing or the check fails,
    /// the commit or merge is blocked. Running it again changes nothing. Hooks do not
    /// run for `git commit --no-verify` or `git cherry-pick`: run `keys check` in CI.
    Install,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    match args.command {
        HookCommand::Install => ui::out(&format!("{}\n", shared::install_hooks(repo.root())?)),
    }
}
