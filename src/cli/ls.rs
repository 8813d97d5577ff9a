//! `keys ls`: every secret with its format, readers and status.

use crate::error::Result;
use crate::ops::check;

use super::{shared, ui};

/// List every secret: name, format, status and readers.
///
/// Status is ok, drift (encrypted to other recipients or in another format than the
/// policy says), modified (changed outside keys), unknown file (not in keys.lock or
/// matched by no rule), invalid (not a valid encrypted file) or missing (in keys.lock,
/// not on disk). Needs no identity; `keys check` explains each problem.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print a JSON array of {name, format, path, status, readers}.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let report = check::secrets(repo)?;
    if args.json {
        let list: Vec<serde_json::Value> = report
            .secrets
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "format": s.format.map(|f| f.name()),
                    "path": s.path,
                    "status": s.status.name(),
                    "readers": s.readers,
                })
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&list).unwrap_or_default();
        text.push('\n');
        return ui::out(&text);
    }
    ui::out(&shared::secrets_table(&report.secrets, "", true))
}
