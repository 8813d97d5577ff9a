//! `keys hook install`: the pre-commit hook that runs `keys check --staged`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::ops::hook::{self, Installed};

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
    /// Writes pre-commit in git's hooks directory (honouring core.hooksPath). An
    /// existing hook is kept as pre-commit.before-keys and run after a passing check.
    /// The hook fails closed: if keys is missing or the check fails, the commit is
    /// blocked. Running it again changes nothing.
    Install,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    match args.command {
        HookCommand::Install => super::out(&format!("{}\n", install(repo.root())?)),
    }
}

/// Installs the hook and says what happened, in one line.
pub(crate) fn install(root: &Path) -> Result<String> {
    let exe = std::env::current_exe().map_err(|e| Error::io("<current executable>", e))?;
    Ok(match hook::install(root, &exe)? {
        Installed::New(p) => format!("installed {}", p.display()),
        Installed::Already(p) => format!("already installed: {}", p.display()),
        Installed::Chained { hook, previous } => format!(
            "installed {} (the existing hook runs after it, as {})",
            hook.display(),
            previous.display()
        ),
    })
}
