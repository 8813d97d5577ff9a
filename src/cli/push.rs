//! `keys push openbao`: each secret whose rule names an OpenBao destination,
//! decrypted and written to its KV v2 path with check-and-set, many at once over
//! kept-alive connections; `secrets/openbao.lock` records what was written.

use rayon::prelude::*;

use crate::crypto::sops::Mac;
use crate::error::{Error, Location, Result};
use crate::openbao::{Client, Config};
use crate::ops::openbao::{self, Outcome, PushLock, Pushed};
use crate::ops::secret;
use crate::ops::workspace::Hosts;

use super::ui;

/// Write secrets to OpenBao's KV v2 engine, as their policy rules' `openbao:` say.
///
/// Each secret whose rule has `openbao: {mount: MOUNT, path: "apps/{name}"}` is
/// decrypted and written to MOUNT at that path (`{name}` is the secret's name): a
/// sops document's top-level keys as fields (numbers and booleans as strings; a
/// map, a list or a null is refused), an age file as the one field `value` (UTF-8
/// text only). Every write uses check-and-set with the version recorded in
/// secrets/openbao.lock (0 for a secret never pushed), so a secret changed in
/// OpenBao since it was pushed is reported and left as it is there. A secret whose
/// encrypted file is as pushed, and whose version OpenBao still holds, is not
/// written again. The lock records each path, version and time, never a value.
///
/// OpenBao is found as `bao` finds it: BAO_ADDR (or VAULT_ADDR), the token in
/// BAO_TOKEN (or VAULT_TOKEN, else ~/.vault-token), the CA in BAO_CACERT (or
/// VAULT_CACERT).
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where to push: `openbao` (OpenBao or Vault KV version 2).
    #[arg(value_name = "TARGET", value_parser = ["openbao"])]
    target: String,

    /// Decrypt and list what would be written, without connecting to OpenBao.
    #[arg(long)]
    dry_run: bool,

    /// Push only these secrets (default: every secret with an openbao destination).
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    names: Vec<String>,

    /// How many writes run at once, each on its own kept-alive connection.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let ws = ctx.writable_workspace(Hosts::AsNeeded)?;
    let root = ws.repo.root().to_path_buf();
    let targets = openbao::targets(&ws, &args.names)?;
    if targets.is_empty() {
        ui::note("no secret has an openbao destination (add openbao: to a policy rule)");
        return Ok(());
    }
    let mut lock = PushLock::read(&root)?;
    // Decrypted one by one (the identities ask for passphrases), before anything is
    // sent: a secret that cannot be a KV entry stops the push before any write.
    let mut fields = Vec::with_capacity(targets.len());
    {
        let mut ids = ctx.identities()?;
        for t in &targets {
            let opened = secret::open_file(&t.file, t.format, &mut ids, ctx.prompt(), Mac::Check)?;
            fields.push(openbao::fields(&opened, &Location::file(&t.file))?);
        }
    }
    if args.dry_run {
        for t in &targets {
            let what = match lock.entries.get(&t.name) {
                None => "new".to_string(),
                Some(r) if r.digest == t.digest && r.mount == t.mount && r.path == t.path => {
                    format!("as pushed (version {})", r.version)
                }
                Some(r) => format!("changed since version {}", r.version),
            };
            ui::out(&format!("{} -> {}/{} ({what})\n", t.name, t.mount, t.path))?;
        }
        return Ok(());
    }
    let config = Config::from_env()?;
    let jobs = usize::from(args.jobs);
    let client = Client::connect(config, jobs)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Error::Bug {
            what: format!("no threads for the push: {e}"),
        })?;
    let outcomes: Vec<Outcome> = pool.install(|| {
        targets
            .par_iter()
            .zip(fields.par_iter())
            .map(|(t, f)| openbao::push_one(&client, t, lock.entries.get(&t.name), f))
            .collect()
    });
    drop(fields);
    let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let (mut pushed, mut unchanged) = (0usize, 0usize);
    let mut conflicts = Vec::new();
    let mut failures: Vec<Error> = Vec::new();
    for (t, outcome) in targets.iter().zip(outcomes) {
        match outcome {
            Outcome::Pushed(version) => {
                pushed += 1;
                lock.entries.insert(
                    t.name.clone(),
                    Pushed {
                        mount: t.mount.clone(),
                        path: t.path.clone(),
                        version,
                        digest: t.digest.clone(),
                        when: when.clone(),
                    },
                );
            }
            Outcome::Unchanged => unchanged += 1,
            Outcome::Conflict { recorded, current } => {
                let now = match current {
                    Some(v) if recorded == 0 => {
                        format!(
                            "already exists in OpenBao (version {v}) and was never pushed from here"
                        )
                    }
                    Some(v) => format!(
                        "is at version {v} in OpenBao; version {recorded} was pushed from here"
                    ),
                    None => {
                        format!("is not at version {recorded} in OpenBao, the one pushed from here")
                    }
                };
                ui::warn(&format!(
                    "{}: {}/{} {now}: not overwritten",
                    t.name, t.mount, t.path
                ));
                conflicts.push(t.name.clone());
            }
            Outcome::Failed(e) => failures.push(e),
        }
    }
    if pushed > 0 {
        lock.write(&root)?;
    }
    let summary = format!(
        "pushed {pushed} secret{}, {unchanged} unchanged, to {}",
        ui::plural(pushed),
        client.addr
    );
    ui::note(&summary);
    if !failures.is_empty() {
        let first = failures.remove(0);
        for e in &failures {
            ui::warn(&e.to_string());
        }
        return Err(first);
    }
    if !conflicts.is_empty() {
        return Err(Error::Remote {
            message: format!(
                "OpenBao at {}: {} secret{} changed there since pushed, not overwritten: {}",
                client.addr,
                conflicts.len(),
                ui::plural(conflicts.len()),
                conflicts.join(", ")
            ),
            hint: "see `keys check --openbao`; remove their lines from secrets/openbao.lock to overwrite them".into(),
        });
    }
    Ok(())
}

/// `keys check --openbao`: each secret with an OpenBao destination against the
/// record and OpenBao's metadata (versions only; no value is read).
pub(crate) fn check(ctx: &super::Context) -> Result<()> {
    use crate::ops::openbao::Drift;
    let ws = ctx.workspace(Hosts::AsNeeded)?;
    let root = ws.repo.root().to_path_buf();
    let targets = openbao::targets(&ws, &[])?;
    let lock = PushLock::read(&root)?;
    let client = Client::connect(Config::from_env()?, 16)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(16)
        .build()
        .map_err(|e| Error::Bug {
            what: format!("no threads for the check: {e}"),
        })?;
    let metas: Vec<Result<Option<crate::openbao::Metadata>>> = pool.install(|| {
        targets
            .par_iter()
            .map(|t| match lock.entries.get(&t.name) {
                Some(_) => client.metadata(&t.mount, &t.path),
                None => Ok(None),
            })
            .collect()
    });
    let mut problems = 0usize;
    let mut out = String::new();
    for (t, meta) in targets.iter().zip(metas) {
        let meta = meta?;
        for d in openbao::drift(t, lock.entries.get(&t.name), meta) {
            problems += 1;
            let at = format!("{}/{}", t.mount, t.path);
            let what = match d {
                Drift::NeverPushed => format!("never pushed to {at}"),
                Drift::Behind => format!(
                    "{at} is behind the repository: the secret changed since it was pushed (run `keys push openbao {}`)",
                    t.name
                ),
                Drift::Changed { recorded, current } => format!(
                    "{at} changed in OpenBao: version {current} there, version {recorded} pushed from here"
                ),
                Drift::Deleted => format!("{at} was deleted in OpenBao (no metadata)"),
                Drift::VersionDeleted => format!("{at}: the version pushed was deleted in OpenBao"),
                Drift::Destroyed => format!("{at}: the version pushed was destroyed in OpenBao"),
                Drift::Moved => {
                    let r = &lock.entries[&t.name];
                    format!(
                        "pushed to {}/{}, but its rule now names {at}",
                        r.mount, r.path
                    )
                }
            };
            out.push_str(&format!("{}: {what}\n", t.name));
        }
    }
    ui::out(&out)?;
    if problems > 0 {
        return Err(Error::CheckFailed { count: problems });
    }
    ui::note(&format!(
        "{} secret{} in OpenBao at {} as pushed",
        targets.len(),
        ui::plural(targets.len()),
        client.addr
    ));
    Ok(())
}
