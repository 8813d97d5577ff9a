//! `keys ls`: every secret with its format, readers and status.

use crate::error::Result;
use crate::ops::check;

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
    let report = check::secrets(&repo)?;
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
        return super::out(&text);
    }
    let mut text = String::new();
    table(&mut text, &report.secrets, "", true);
    super::out(&text)
}

/// Secrets as aligned rows: name, format, status, readers.
pub(crate) fn table(out: &mut String, secrets: &[check::Secret], indent: &str, header: bool) {
    let width = secrets
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut row = |name: &str, format: &str, status: &str, readers: &str| {
        out.push_str(&format!(
            "{indent}{name:<width$}  {format:<11}  {status:<12}  {readers}\n"
        ));
    };
    if header {
        row("NAME", "FORMAT", "STATUS", "READERS");
    }
    for s in secrets {
        row(
            &s.name,
            s.format.map_or("?", |f| f.name()),
            s.status.name(),
            &s.readers.join(", "),
        );
    }
}
