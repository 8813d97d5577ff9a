//! `keys init`: scaffold a fleet repository and create or import its first admin.

use std::path::PathBuf;

use crate::error::{self, Result};
use crate::identity::keyring::Backend;
use crate::layout::Repo;
use crate::ops::init::{self, Options, Outcome, Source, Store};

use super::{prompt, shared, ui};

#[derive(Clone, Copy, clap::ValueEnum)]
enum StoreArg {
    /// The OS keyring ($KEYS_KEYRING chooses which; default: Keychain on macOS,
    /// Secret Service on Linux).
    Keyring,
    /// ~/.config/keys/identity.txt, mode 0600.
    File,
}

/// Create a fleet repository here (or at --repo) with its first admin.
///
/// Creates recipients/admins/, recipients/hosts/, policies/ and secrets/, the admin's
/// public key in recipients/admins/NAME.pub and a starter policy. The admin's identity
/// is a new age key (the default) kept in the OS keyring or in
/// ~/.config/keys/identity.txt, or an existing key given with -i FILE (an age identity
/// or an SSH private key), of which only the public key is recorded. Nothing that
/// exists is ever overwritten; running it again changes nothing.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The first admin's name (asked on a terminal when absent).
    #[arg(long, value_name = "NAME")]
    admin: Option<String>,

    /// Generate a new age identity for the admin (the default without -i).
    #[arg(long, conflicts_with = "identities")]
    generate: bool,

    /// Where to keep a generated identity.
    #[arg(long, value_enum, default_value = "file")]
    store: StoreArg,

    /// Encrypt the identity file with a passphrase (asked twice on the terminal, or
    /// read from $KEYS_PASSPHRASE_FILE / --passphrase-fd).
    #[arg(long)]
    passphrase: bool,

    /// Remove the lines of the repository's .gitignore files (or .git/info/exclude)
    /// that make git ignore secrets/, policies/, recipients/ or the exports; without it,
    /// init refuses to scaffold under such a line.
    #[arg(long)]
    fix_gitignore: bool,

    /// Do not install the pre-commit hook.
    #[arg(long)]
    no_hook: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = Repo::at(ctx.new_repo_root()?);
    let admin = match args.admin.clone() {
        Some(a) => a,
        None => {
            let default = std::env::var("USER").unwrap_or_else(|_| "admin".into());
            prompt::ask_line("Admin name", &default).ok_or_else(|| {
                error::usage(
                    "keys init needs an admin name and there is no terminal to ask for it",
                    "pass --admin NAME (and --store, --passphrase or -i FILE as wanted)",
                )
            })?
        }
    };
    let source = match ctx.identity_files() {
        [] => Source::Generate(store(ctx, &args)?),
        [one] => {
            if args.passphrase {
                return Err(error::usage(
                    "--passphrase applies to a generated identity, not one given with -i",
                    "leave out --passphrase; the key file keeps its own protection",
                ));
            }
            Source::Import(one.clone())
        }
        _ => {
            return Err(error::usage(
                "keys init takes at most one -i FILE",
                "give the first admin's key; add more admin keys to recipients/admins/ later",
            ));
        }
    };
    let report = init::run(
        &repo,
        &Options {
            admin,
            source,
            fix_gitignore: args.fix_gitignore,
        },
        ctx.prompt(),
    )?;
    let mut s = String::new();
    for outcome in &report.outcomes {
        let line = match outcome {
            Outcome::Created(p) => format!("created   {p}"),
            Outcome::Kept(p) => format!("kept      {p}"),
            Outcome::IdentityStored(w) => format!("identity  new age identity stored in {w}"),
            Outcome::IdentityReused(w) => format!("identity  existing identity in {w} reused"),
            Outcome::IdentityImported(w) => format!("identity  public key of {w} recorded"),
            Outcome::Removed(at, pattern) => format!("removed   {at}: {pattern}"),
            Outcome::Warning(w) => format!("warning   {w}"),
        };
        s.push_str(&line);
        s.push('\n');
    }
    if !args.no_hook {
        let line = match crate::git::hooks_dir(repo.root())? {
            Some(_) => shared::install_hooks(repo.root())?,
            None => "not a git repository: after `git init`, run `keys hook install`".to_string(),
        };
        for line in line.lines() {
            s.push_str(&format!("hook      {line}\n"));
        }
    }
    if let Some(r) = &report.admin_recipient {
        s.push_str(&format!("admin     {r}\n"));
    }
    if report.unchanged() {
        s.push_str("nothing to do: this repository is already initialised\n");
    }
    ui::out(&s)
}

fn store(ctx: &super::Context, args: &Args) -> Result<Store> {
    match args.store {
        StoreArg::Keyring => {
            if args.passphrase {
                return Err(error::usage(
                    "--passphrase applies to --store file",
                    "the OS keyring protects what it stores by itself",
                ));
            }
            Ok(Store::Keyring(Backend::from_env()?))
        }
        StoreArg::File => {
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let path = crate::identity::identity_file(home.as_deref()).ok_or_else(|| {
                error::usage("HOME is not set", "set HOME, or use --store keyring")
            })?;
            let passphrase = if args.passphrase && !path.exists() {
                Some(ctx.prompt().new_passphrase(&path.display().to_string())?.ok_or_else(|| {
                    error::usage(
                        "--passphrase needs a terminal or a passphrase source",
                        "run on a terminal, or set KEYS_PASSPHRASE_FILE=FILE or --passphrase-fd N",
                    )
                })?)
            } else {
                None
            };
            Ok(Store::File { path, passphrase })
        }
    }
}
