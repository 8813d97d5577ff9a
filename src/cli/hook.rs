//! `keys hook install`: the hooks that run `keys check --staged` before a commit and
//! before a merge commits, and on request the diff driver that shows secrets
//! decrypted in `git diff`; `keys hook uninstall` removes them.

use crate::error::{Error, Result};
use crate::format::Format;
use crate::ops::hook::{self, Uninstalled};
use crate::ops::workspace::{Hosts, secret_files};

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
    Install(InstallArgs),
    /// Remove what `keys hook install` installed.
    ///
    /// Removes keys' pre-commit and pre-merge-commit hooks (putting back a hook they
    /// kept as NAME.before-keys), keys' lines in husky's scripts and its keys-check
    /// command in lefthook's configuration, the merge and diff drivers from the
    /// repository's configuration, and their lines from the fleet's .gitattributes
    /// (a committed file: commit the change, or other clones keep naming the
    /// drivers, which then do nothing). Everything else is kept.
    Uninstall(UninstallArgs),
}

#[derive(clap::Args)]
struct InstallArgs {
    /// Also have `git diff`, `git log -p` and `git show` show secrets decrypted:
    /// keys becomes git's diff driver for them (diff.keys.textconv = `keys decrypt
    /// --textconv` in the repository's configuration, and a `secrets/**/*.EXT
    /// diff=keys` line in the fleet's .gitattributes for .age files and each sops
    /// format the fleet uses). A file you cannot decrypt shows as one line saying
    /// so. git is never told to cache what it shows: diff.keys.cachetextconv would
    /// keep the plaintext in git's notes, so a setting of it is removed.
    #[arg(long)]
    diff: bool,
}

#[derive(clap::Args)]
struct UninstallArgs {
    /// Remove only the diff driver: the repository's diff.keys configuration and
    /// the `diff=keys` lines of the fleet's .gitattributes.
    #[arg(long)]
    diff: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    match args.command {
        HookCommand::Install(install) => {
            let mut lines = shared::install_hooks(repo.root())?;
            if install.diff {
                lines.push('\n');
                lines.push_str(&install_diff(ctx)?);
            }
            ui::out(&format!("{lines}\n"))
        }
        HookCommand::Uninstall(uninstall) => {
            let done = if uninstall.diff {
                diff_removed(hook::uninstall_diff(repo.root())?)
            } else {
                hook::uninstall(repo.root())?
            };
            let lines: Vec<String> = done.iter().map(|d| said(repo, d)).collect();
            if lines.is_empty() && uninstall.diff {
                ui::out("nothing to remove: keys is not git's diff driver here\n")
            } else if lines.is_empty() {
                ui::out("nothing to remove: keys' hooks are not installed here\n")
            } else {
                ui::out(&format!("{}\n", lines.join("\n")))
            }
        }
    }
}

/// Registers the diff driver for the formats the fleet uses (its rules' and its
/// files'), and says what changed.
fn install_diff(ctx: &super::Context) -> Result<String> {
    let repo = ctx.repo()?;
    let mut formats: Vec<Format> = secret_files(repo)?.into_iter().map(|f| f.1).collect();
    // A policy that does not load yet still leaves the files' formats to go by.
    if let Ok(ws) = ctx.workspace(Hosts::AsNeeded) {
        formats.extend(ws.policy.rules.iter().map(|r| r.format));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("<current executable>", e))?;
    let done = hook::install_diff(repo.root(), &exe, &formats)?;
    let mut lines = vec![if done.registered {
        "registered keys as git's diff driver for secrets (diff.keys.textconv)".to_string()
    } else {
        "already registered: keys as git's diff driver for secrets".to_string()
    }];
    if !done.added.is_empty() {
        lines.push(format!(
            "added to {}: {}",
            repo.rel(&done.attributes),
            done.added.join(", ")
        ));
    }
    if done.uncached {
        lines.push(
            "removed diff.keys.cachetextconv: git would keep the plaintext in its notes"
                .to_string(),
        );
    }
    Ok(lines.join("\n"))
}

fn diff_removed(done: hook::DiffRemoved) -> Vec<Uninstalled> {
    let mut out = Vec::new();
    if done.config {
        out.push(Uninstalled::Config(format!("diff.{}", hook::DIFF_DRIVER)));
    }
    if !done.removed.is_empty() {
        out.push(Uninstalled::Attributes {
            file: done.attributes,
            lines: done.removed,
        });
    }
    out
}

/// One line for a removal, paths relative to the fleet where they are in it.
fn said(repo: &crate::layout::Repo, done: &Uninstalled) -> String {
    match done {
        Uninstalled::Removed(p) => format!("removed {}", repo.rel(p)),
        Uninstalled::Restored { hook, previous } => format!(
            "removed {} and put back the hook it kept ({})",
            repo.rel(hook),
            repo.rel(previous)
        ),
        Uninstalled::Called(p) => format!("removed the call of keys' hook from {}", repo.rel(p)),
        Uninstalled::Lefthook(p) => {
            format!("removed the keys-check command from {}", repo.rel(p))
        }
        Uninstalled::Config(section) => {
            format!("removed {section} from the repository's git configuration")
        }
        Uninstalled::Attributes { file, lines } => format!(
            "removed from {} (commit it): {}",
            repo.rel(file),
            lines.join(", ")
        ),
    }
}
