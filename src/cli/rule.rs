//! `keys rule add|ls`: the policy's rules from the command line.

use crate::error::Result;
use crate::ops::rule::{self, NewRule};

use super::shared;
use super::ui::{self, Table};

/// Add and list policy rules (policies/*.yaml).
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: RuleCommand,
}

#[derive(clap::Subcommand)]
enum RuleCommand {
    Add(AddArgs),
    Ls(LsArgs),
}

/// Add a rule: the secrets GLOB matches, their format and readers.
///
/// The rule goes after every other rule (first match wins), at the end of the policy
/// file holding the last rule, else policies/default.yaml; --file names another.
/// The file is edited as text, so its comments and layout stay, and nothing is
/// written unless the policy with the rule loads: an unknown reader, a bad glob or
/// format is refused (exit 3). A glob may begin with {host}/ (or {container}/) to
/// give each host the secrets under its own name, read by host:{host}
/// (container:{container}). Warns when an earlier rule decides a name the new one
/// matches.
#[derive(clap::Args)]
struct AddArgs {
    /// Which secrets: a glob over their names (`*` stays within one `/` segment,
    /// `**` crosses them), e.g. "bot/*" or "{host}/*".
    #[arg(value_name = "GLOB")]
    glob: String,

    /// Their format: age, sops-yaml, sops-json, sops-dotenv, sops-ini or sops-binary.
    #[arg(long, value_name = "FORMAT")]
    format: String,

    /// Who reads them, comma-separated: groups, admins, host:NAME, container:NAME,
    /// host:{host}, container:{container}.
    #[arg(long, value_name = "READER,…", value_delimiter = ',', required = true)]
    readers: Vec<String>,

    /// The policy file to add it to (NAME.yaml under policies/, made if missing).
    #[arg(long, value_name = "FILE")]
    file: Option<String>,
}

/// List the rules in match order: file and line, glob, format and readers.
#[derive(clap::Args)]
struct LsArgs {
    /// Print a JSON document: {"version": 1, "rules": [{file, line, secrets, format,
    /// readers}]}, the rules in match order.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    match args.command {
        RuleCommand::Add(a) => add(ctx, a),
        RuleCommand::Ls(a) => ls(ctx, a),
    }
}

fn add(ctx: &super::Context, args: AddArgs) -> Result<()> {
    let readers: Vec<String> = args
        .readers
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let done = rule::add(
        ctx.repo()?,
        &NewRule {
            glob: args.glob.clone(),
            format: args.format,
            readers,
            file: args.file,
        },
    )?;
    let verb = if done.created { "created" } else { "updated" };
    ui::out(&format!(
        "{verb:<9} {} (rule {:?} at line {})\n",
        done.at.file,
        args.glob,
        done.at.line.unwrap_or(0)
    ))?;
    if let Some((at, glob, name)) = &done.shadowed {
        ui::warn(&format!(
            "the earlier rule {glob:?} ({at}) also matches {name}, and the first rule that matches decides: put this rule before it (--file with a file that sorts first, or by hand)"
        ));
    }
    if !done.follow.is_empty() {
        ui::note(&format!(
            "{} existing secret{} now follow{} this rule: run `keys rekey`",
            done.follow.len(),
            ui::plural(done.follow.len()),
            if done.follow.len() == 1 { "s" } else { "" }
        ));
    }
    shared::refresh_exports(ctx)
}

fn ls(ctx: &super::Context, args: LsArgs) -> Result<()> {
    let rules = rule::list(ctx.repo()?)?;
    if args.json {
        let list: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| {
                serde_json::json!({
                    "file": r.at.file,
                    "line": r.at.line,
                    "secrets": r.glob,
                    "format": r.format.name(),
                    "readers": r.readers,
                })
            })
            .collect();
        let doc = serde_json::json!({ "version": 1, "rules": list });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        return ui::out(&text);
    }
    let rows: Vec<[String; 4]> = rules
        .iter()
        .map(|r| {
            [
                r.at.to_string(),
                r.glob.clone(),
                r.format.name().to_string(),
                r.readers.join(", "),
            ]
        })
        .collect();
    let mut table = Table::new("");
    table.header(["RULE", "SECRETS", "FORMAT", "READERS"]);
    // The place is kept whole: it is what one edits.
    table.keep(0, 40);
    table.keep(1, 12);
    table.keep(3, 12);
    for row in rows {
        table.row(row);
    }
    ui::out(&table.render())
}
