//! `keys completions SHELL`: the script that has a shell complete keys's commands,
//! options and the repository's names.

use clap_complete::Shell;

use crate::error::{Error, Result};

use super::{complete, ui};

/// Print a completion script for a shell.
///
/// The script asks keys for candidates as you type: besides commands and options it
/// offers the repository's secret, host and admin names (`keys decrypt b<TAB>` gives
/// bot/telegram-token), from the repository the command would use (--repo on the
/// line, else $KEYS_REPO, else the one around the working directory). Completing only
/// reads names: it never decrypts, prompts, touches the keyring or writes. The script
/// runs keys by the name it was made by: `keys` from PATH, else an absolute path.
///
/// bash (~/.bashrc): source <(keys completions bash)
///
/// zsh (~/.zshrc, after compinit): source <(keys completions zsh)
///
/// fish: echo 'keys completions fish | source' > ~/.config/fish/completions/keys.fish
///
/// elvish (~/.config/elvish/rc.elv): eval (keys completions elvish | slurp)
///
/// PowerShell ($PROFILE): keys completions powershell | Out-String | Invoke-Expression
#[derive(clap::Args)]
pub(crate) struct Args {
    /// bash, zsh, fish, elvish or powershell
    shell: Shell,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let script = complete::registration(&args.shell.to_string()).map_err(|e| Error::Bug {
        what: format!("the {} completion script: {e}", args.shell),
    })?;
    ui::out(&String::from_utf8_lossy(&script))
}
