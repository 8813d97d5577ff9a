//! `keys ls`: every secret with its format, readers and status, or those one reader
//! can open.

use crate::error::Result;
use crate::ops::check;
use crate::ops::readers::{self, Audience, Keys};

use super::{json, shared, ui};

/// List every secret: name, format, status and readers.
///
/// Status is ok, drift (encrypted to other recipients or in another format than the
/// policy says), modified (changed outside keys), unknown file (not in keys.lock or
/// matched by no rule), invalid (not a valid encrypted file) or missing (in keys.lock,
/// not on disk). Needs no identity; `keys check` explains each problem. The table
/// fits the terminal (80 columns when stdout is not one, or $COLUMNS), cutting long
/// cells with …; --json prints every field in full.
///
/// With --exposed, only the secrets whose value a reader taken away (by a rekey or a
/// host key rotation) could read and that have not changed since, with those readers.
#[derive(clap::Args)]
#[command(after_long_help = json::ls_schema())]
pub(crate) struct Args {
    /// Only the secrets READER can open, by the keys the policy resolves its rule to:
    /// an admin, host:NAME, container:NAME, or a group of the policies (the secrets
    /// every member can open; `admins` is every admin unless a group has that name).
    /// A container that shares its host's key opens what the host opens.
    #[arg(long, value_name = "READER", add = super::complete::reader_names())]
    reader: Option<String>,

    /// Print JSON (version 1, described below) instead of the table.
    #[arg(long)]
    json: bool,

    /// Only the secrets whose value a reader taken away could read, not changed
    /// since: each with the date it last changed and those readers. Give each a new
    /// value (`keys rotate NAME`) to take it off the list.
    #[arg(long)]
    exposed: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let listing = check::listing(repo)?;
    let (policy, fleet) = (&listing.policy, &listing.fleet);
    let mut secrets: Vec<&check::Secret> = listing.report.secrets.iter().collect();
    if args.exposed {
        secrets.retain(|s| !s.seen.is_empty());
    }
    if !args.json && args.reader.is_none() {
        return show(&secrets, args.exposed);
    }
    // Each rule's readers resolved to their keys: what --reader and --json need.
    let audience = Audience::new(policy, fleet);
    if let Some(name) = &args.reader {
        let keys = readers::named(policy, fleet, name)?
            .iter()
            .map(|r| Keys::of(fleet, r))
            .collect::<Result<Vec<_>>>()?;
        secrets.retain(|s| {
            !keys.is_empty()
                && s.rule
                    .is_some_and(|i| keys.iter().all(|k| audience.opens(i, k)))
        });
        if secrets.is_empty() && !args.json {
            ui::note(&format!("{name} can open no secret"));
        }
    }
    if args.json {
        return json::print(&json::SecretList {
            version: json::VERSION,
            secrets: secrets
                .iter()
                .map(|s| json::Secret::new(s, policy, &audience))
                .collect(),
        });
    }
    show(&secrets, args.exposed)
}

/// The table of `secrets`; for `--exposed`, with who saw each value and when it last
/// changed.
fn show(secrets: &[&check::Secret], exposed: bool) -> Result<()> {
    if !exposed {
        return ui::out(&shared::secrets_table(secrets, ""));
    }
    if secrets.is_empty() {
        ui::note("no secret's value was seen by a reader taken away since it last changed");
        return Ok(());
    }
    let mut table = ui::Table::new("");
    table.header(["NAME", "CHANGED", "SEEN BY"]);
    table.keep(0, shared::NAME_WIDTH);
    table.cut_middle(0);
    for s in secrets {
        let seen: Vec<String> = s.seen.iter().map(check::seen_text).collect();
        table.row([
            s.name.clone(),
            s.changed.map_or_else(|| "unknown".to_string(), check::day),
            seen.join(", "),
        ]);
    }
    ui::out(&table.render())
}
