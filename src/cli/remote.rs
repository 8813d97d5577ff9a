//! `keys remote set|ls|rm`: secrets kept only on a host, as root-only files.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::error::{Error, Result, usage};
use crate::ops::local::{self, Reach, State};
use crate::scratch::{Medium, Scratch};
use crate::signal::SignalGuard;

use super::prompt;
use super::shared::MAX_SECRET;
use super::ui::{self, Table};

/// Keep secrets only on a host, as root-only files (local mode).
///
/// A local secret is written on the host alone, over ssh with the host's key pinned
/// (as the host file's ssh_user, through `sudo -n` when that is not root): a 0600
/// file in a 0700 directory owned by that user (root), by default
/// /var/lib/keys/local/NAME; `root:` in recipients/local/HOST.yaml names another
/// directory. The repository records only the fact, in recipients/local/HOST.yaml:
/// the name, the path, when and by whom, and a digest the host computes (SHA-256 of a
/// random key that only the host holds, followed by the value), so `keys remote ls`
/// can tell a file changed outside keys without the repository holding anything a
/// guess could be tested against. `keys check` and `keys status` read the record.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(clap::Subcommand)]
enum RemoteCommand {
    Set(SetArgs),
    Ls(LsArgs),
    Rm(RmArgs),
}

/// Write a secret on a host as a root-only file, and record that it is there.
///
/// The value comes from standard input when it is not a terminal, or is typed twice
/// without echo; never from the command line, and it never touches a local disk: it
/// goes to the host on ssh's standard input. There it is written to a temp file
/// beside its path and renamed over it (0600, every directory from the root down
/// 0700 and the ssh user's), then recorded in recipients/local/HOST.yaml. A file the
/// record does not name is not replaced without --force.
#[derive(clap::Args)]
struct SetArgs {
    /// The host.
    #[arg(long, value_name = "HOST")]
    host: String,

    /// The secret's name: one segment (letters, digits, '.', '_', '-', '+', '@').
    #[arg(value_name = "NAME")]
    name: String,

    /// Where on the host: a path below its local root [default: ROOT/NAME].
    #[arg(long, value_name = "PATH")]
    path: Option<String>,

    /// Replace a file at the path that the record does not name.
    #[arg(long)]
    force: bool,

    /// Accept an empty value.
    #[arg(long)]
    allow_empty: bool,

    /// The SSH private key to log in with (ssh -i).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,
}

/// Compare a host's local secrets with the record.
///
/// Lists every file under the host's local root and every secret the record names:
/// ok, missing, changed outside keys (the host's keyed digest differs), not recorded,
/// or not private (not a 0600 file, or a directory not 0700, of the ssh user).
/// Exits 8 when anything differs.
#[derive(clap::Args)]
struct LsArgs {
    /// The host.
    #[arg(long, value_name = "HOST")]
    host: String,

    /// The SSH private key to log in with (ssh -i).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,
}

/// Remove a local secret from a host and from the record.
#[derive(clap::Args)]
struct RmArgs {
    /// The host.
    #[arg(long, value_name = "HOST")]
    host: String,

    /// The secret's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// The SSH private key to log in with (ssh -i).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    match args.command {
        RemoteCommand::Set(a) => set(ctx, a),
        RemoteCommand::Ls(a) => ls(ctx, a),
        RemoteCommand::Rm(a) => rm(ctx, a),
    }
}

fn set(ctx: &super::Context, args: SetArgs) -> Result<()> {
    let repo = ctx.repo()?;
    // Name, host and path are checked before the value is read.
    let plan = local::plan_set(repo, &args.host, &args.name, args.path.as_deref())?;
    let value = if !std::io::stdin().is_terminal() {
        prompt::read_secret(std::io::stdin().lock(), "<stdin>", MAX_SECRET)?
    } else {
        if std::fs::File::open("/dev/tty").is_err() {
            return Err(usage(
                "no value: standard input is a terminal that cannot be opened",
                "pipe the secret in",
            ));
        }
        prompt::secret_from_tty(&args.name)?
    };
    if value.is_empty() && !args.allow_empty {
        return Err(Error::EmptySecret {
            name: args.name.clone(),
        });
    }
    let guard = SignalGuard::new()?;
    // Not secret, but private and temporary: removed on every exit path.
    let scratch = Scratch::create(Medium::RamOrDisk)?;
    let path = plan.path().to_string();
    let reach = Reach {
        ssh_key: args.ssh_key.as_deref(),
        scratch: &scratch,
        guard: &guard,
    };
    let record = local::apply_set(plan, &value, args.force, &reach)?;
    ui::note(&format!(
        "wrote {path} on {} (0600) and recorded it in {record}",
        args.host
    ));
    Ok(())
}

fn ls(ctx: &super::Context, args: LsArgs) -> Result<()> {
    let repo = ctx.repo()?;
    let guard = SignalGuard::new()?;
    let scratch = Scratch::create(Medium::RamOrDisk)?;
    let reach = Reach {
        ssh_key: args.ssh_key.as_deref(),
        scratch: &scratch,
        guard: &guard,
    };
    let listing = local::list(repo, &args.host, &reach)?;
    let mut table = Table::new("");
    table.header(["NAME", "STATUS", "PATH", "SET", "BY"]);
    // The name and what differs are what the listing is for: kept whole.
    table.keep(0, 24);
    table.keep(1, 44);
    table.cut_middle(2);
    for row in &listing.rows {
        let (set, by) = match &row.entry {
            Some(e) => (e.set.clone(), e.by.clone()),
            None => ("-".into(), "-".into()),
        };
        table.row([
            row.name.clone().unwrap_or_else(|| "-".into()),
            row.state.text(),
            row.path.escape_debug().to_string(),
            set,
            by,
        ]);
    }
    let mut text = table.render();
    if listing.rows.is_empty() {
        text = format!("no local secrets under {} on {}\n", listing.root, args.host);
    }
    ui::out(&text)?;
    let count = listing.problems();
    if count > 0 {
        return Err(Error::LocalDrift {
            host: args.host,
            file: listing.record_file,
            count,
        });
    }
    debug_assert!(listing.rows.iter().all(|r| r.state == State::Ok));
    Ok(())
}

fn rm(ctx: &super::Context, args: RmArgs) -> Result<()> {
    let repo = ctx.repo()?;
    let plan = local::plan_remove(repo, &args.host, &args.name)?;
    let guard = SignalGuard::new()?;
    let scratch = Scratch::create(Medium::RamOrDisk)?;
    let path = plan.path().to_string();
    let record = plan.record_file();
    let reach = Reach {
        ssh_key: args.ssh_key.as_deref(),
        scratch: &scratch,
        guard: &guard,
    };
    let had = local::apply_remove(plan, &reach)?;
    if had {
        ui::note(&format!(
            "removed {path} on {} and its line in {record}",
            args.host
        ));
    } else {
        ui::note(&format!(
            "{path} was not on {}; removed its line in {record}",
            args.host
        ));
    }
    Ok(())
}
