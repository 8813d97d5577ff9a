//! `keys admin add|rm|rename`: the fleet's admins.

use std::path::PathBuf;

use crate::error::Result;
use crate::ops::admin::{self, KeyArg};

use super::{shared, ui};

/// Manage admins (recipients/admins/NAME.pub).
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand)]
enum AdminCommand {
    Add(AddArgs),
    Rm(RmArgs),
    #[command(mut_args(super::complete::on("old", super::complete::admin_names())))]
    Rename(shared::RenameArgs),
}

/// Add an admin: recipients/admins/NAME.pub, and NAME in the admins group.
///
/// The key is an age1… recipient or an ssh-ed25519 public key given as it is, or a
/// file: a public key file (every key in it is recorded), or a private key (an age
/// identity or an OpenSSH key), of which only the public half is recorded. NAME joins
/// the `admins` group of the policy, edited as text so its comments stay; without
/// such a group, one holding every admin is made, so `admins` keeps meaning every
/// admin. Nothing is written unless the policy loads with the change. The secrets
/// the admins read are encrypted to NAME by the next `keys rekey`.
#[derive(clap::Args)]
struct AddArgs {
    /// The admin's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// The admin's public key (age1…, or "ssh-ed25519 AAAA…"), or a file holding it.
    #[arg(long, value_name = "FILE|age1…")]
    key: String,
}

/// Remove an admin: recipients/admins/NAME.pub and its place in every group.
///
/// Refused for the last admin, and while a policy rule names NAME among its readers
/// (the error names the rule's file and line); its place in the groups is removed as
/// text, so the policy's comments stay. Secrets stay encrypted to the admin's keys
/// until `keys rekey`, and git keeps the old files: change what the admin could read.
#[derive(clap::Args)]
struct RmArgs {
    /// The admin's name.
    #[arg(value_name = "NAME", add = super::complete::admin_names())]
    name: String,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    match args.command {
        AdminCommand::Add(a) => add(ctx, a),
        AdminCommand::Rm(a) => rm(ctx, a),
        AdminCommand::Rename(a) => shared::rename(ctx, crate::ops::rename::Kind::Admin, a),
    }
}

fn add(ctx: &super::Context, args: AddArgs) -> Result<()> {
    let key = if ["age1", "ssh-ed25519 ", "ssh-rsa "]
        .iter()
        .any(|p| args.key.starts_with(p))
    {
        KeyArg::Literal(args.key)
    } else {
        KeyArg::File(PathBuf::from(args.key))
    };
    let keys = admin::read_keys(&key, ctx.prompt())?;
    let done = admin::add(ctx.repo()?, &args.name, &keys)?;
    let mut text = changes(&done, "added to");
    for k in &keys {
        text.push_str(&format!("{:<9} {}\n", k.kind(), k.fingerprint()));
    }
    ui::out(&text)?;
    if done.stale > 0 {
        ui::note(&format!(
            "{} secret{} the admins read {} not encrypted to {} yet: run `keys rekey`",
            done.stale,
            ui::plural(done.stale),
            if done.stale == 1 { "is" } else { "are" },
            args.name
        ));
    }
    shared::refresh_exports(ctx)
}

fn rm(ctx: &super::Context, args: RmArgs) -> Result<()> {
    let done = admin::remove(ctx.repo()?, &args.name)?;
    ui::out(&changes(&done, "taken out of"))?;
    if done.stale > 0 {
        ui::warn(&format!(
            "{} secret{} {} still encrypted to {}: run `keys rekey`, and change what {} could read (git keeps the old files)",
            done.stale,
            ui::plural(done.stale),
            if done.stale == 1 { "is" } else { "are" },
            args.name,
            args.name
        ));
    }
    shared::refresh_exports(ctx)
}

/// The lines of an admin change: files made, changed and removed.
fn changes(done: &admin::Changed, verb: &str) -> String {
    let mut text = String::new();
    for f in &done.created {
        text.push_str(&format!("created   {f}\n"));
    }
    for f in &done.removed {
        text.push_str(&format!("removed   {f}\n"));
    }
    for (f, groups) in &done.policies {
        text.push_str(&format!(
            "updated   {f} ({verb} group {})\n",
            groups.join(", ")
        ));
    }
    text
}
