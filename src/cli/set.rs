//! `keys set NAME KEY-PATH` and `keys unset NAME KEY-PATH`: one value of a sops secret.

use std::io::IsTerminal;

use crate::error::{Error, Location, Result, usage};
use crate::format::sops::document::{self, Value};
use crate::ops::secret;
use crate::ops::workspace::Hosts;

use super::{prompt, shared, ui};

/// Set one value of a sops secret, like `sops set`.
///
/// KEY-PATH is sops's form (["db"]["password"], ["hosts"][0]) or dotted
/// (db.password, hosts.0); missing map keys are created. The value comes from
/// standard input when it is not a terminal (one trailing newline removed), or is
/// typed twice without echo; never from the command line. It is stored as a string
/// unless --json. Only the value's lines and the sops metadata change.
#[derive(clap::Args)]
pub(crate) struct SetArgs {
    /// The secret's name, e.g. nannuo-bot/env.
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    name: String,

    /// Where in the document, e.g. db.password or '["db"]["password"]'.
    #[arg(value_name = "KEY-PATH")]
    path: String,

    /// Read the value as JSON (a number, true/false, null, a list or a map).
    #[arg(long)]
    json: bool,
}

/// Remove one value of a sops secret, like `sops unset`.
#[derive(clap::Args)]
pub(crate) struct UnsetArgs {
    /// The secret's name.
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    name: String,

    /// Where in the document, e.g. db.password or '["db"]["password"]'.
    #[arg(value_name = "KEY-PATH")]
    path: String,
}

fn key_path(text: &str) -> Result<Vec<document::PathSegment>> {
    document::parse_path(text).ok_or_else(|| {
        usage(
            format!("cannot read key path {text:?}"),
            "write it as db.password or '[\"db\"][\"password\"]' (a number is a list index)",
        )
    })
}

pub(crate) fn set(ctx: &super::Context, mut args: SetArgs) -> Result<()> {
    args.name = super::shared::secret_name(&args.name)?;
    let path = key_path(&args.path)?;
    let mut ws = ctx.writable_workspace(Hosts::AsNeeded)?;
    ws.locate(&args.name)?;
    let mut raw = if std::io::stdin().is_terminal() {
        prompt::secret_from_tty(&format!("{} {}", args.name, args.path))?
    } else {
        prompt::read_secret(std::io::stdin().lock(), "<stdin>", shared::MAX_SECRET)?
    };
    if raw.last() == Some(&b'\n') {
        raw.pop();
    }
    let value = if args.json {
        let parsed: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| Error::InvalidFile {
                at: Location::named("<stdin>").at_line(e.line() as u64),
                reason: "not a JSON value (leave out --json to store a string)".into(),
            })?;
        from_json(parsed)
    } else {
        Value::Str(
            String::from_utf8(raw.to_vec()).map_err(|_| Error::InvalidFile {
                at: Location::named("<stdin>"),
                reason: "the value is not UTF-8 text".into(),
            })?,
        )
    };
    let mut ids = ctx.identities()?;
    let done = secret::set_value(
        &mut ws,
        &args.name,
        &path,
        Some(value),
        &mut ids,
        ctx.prompt(),
    )?;
    ui::note(&format!("set {} in {}", args.path, ws.repo.rel(&done.path)));
    Ok(())
}

pub(crate) fn unset(ctx: &super::Context, mut args: UnsetArgs) -> Result<()> {
    args.name = super::shared::secret_name(&args.name)?;
    let path = key_path(&args.path)?;
    let mut ws = ctx.writable_workspace(Hosts::AsNeeded)?;
    let mut ids = ctx.identities()?;
    let done = secret::set_value(&mut ws, &args.name, &path, None, &mut ids, ctx.prompt())?;
    ui::note(&format!(
        "removed {} from {}",
        args.path,
        ws.repo.rel(&done.path)
    ));
    Ok(())
}

fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(a) => Value::List(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| document::Item::Pair(k, from_json(v)))
                .collect(),
        ),
    }
}
