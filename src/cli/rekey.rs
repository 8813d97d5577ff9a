//! `keys rekey`: every secret brought to the recipients its policy names now.

use std::io::IsTerminal;

use crate::error::Result;
use crate::ops::rekey::Rewrite;
use crate::ops::workspace::Hosts;
use crate::ops::{host, rekey};

use super::{shared, ui};

/// Re-encrypt every secret whose recipients differ from what its policy resolves to.
///
/// The plan comes from the policy, secrets/keys.lock and each file's own header,
/// without decrypting anything, and is printed first. A secret is rewritten when the
/// lock or its header differs from the policy: for a .age file, the ssh-ed25519 and
/// ssh-rsa stanzas' key tags and the number of X25519 and other stanzas; for a sops
/// file, the recipients its metadata names, one wrapped data key each, and no other
/// key source (pgp, cloud KMS). The lock alone is never trusted: it is text anyone
/// can edit. A secret file the lock does not list (sops or agenix wrote it) is
/// rewritten, and recorded, when its own header differs from the policy. .age files are decrypted and re-encrypted in
/// memory; sops files keep their values, IVs and MAC and only get their data key
/// wrapped for the new recipients (as `sops updatekeys`), unless they lose a reader:
/// then, as `sops rotate`, every value is sealed again under a new data key (the same
/// plaintext and lastmodified), so the reader taken away opens nothing written after;
/// for a rule with
/// key_groups the data key is split anew among the groups, which takes identities of
/// shamir_threshold groups, of the file and of the groups it gets. If any file fails (no
/// identity, a value that does not authenticate) nothing is written and every
/// failed file is named. A sops file whose MAC does not match its values is no
/// failure, as re-wrapping its data key needs no MAC: it is rewritten all the same,
/// values and MAC carried over as they were, and a warning names it. Each rewritten file is
/// proven to open with an identity that was used (with its MAC checked unless it did
/// not match before the rekey either) before any is put in place; then all are
/// written at once (temp files, one syncfs, renames, keys.lock last) and each is checked
/// to be the very file proven: by its inode, the file written being still open, else
/// read back and hashed.
/// A lock written by an older keys, with full fingerprints, is rewritten with
/// short ones. A host key rotation that was killed (.keys-rotation) is undone first
/// when its host file does not name the new key yet, and finished by this rekey
/// otherwise. Says "up to date" and writes nothing when nothing changed.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Only secrets whose rule names this host (or one of its containers).
    #[arg(long, value_name = "NAME", add = super::complete::host_names())]
    host: Option<String>,

    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Worker threads (default: one per core, and up to 16 more for a moment, to
    /// close the files replaced, as freeing a file can wait on the disk). With N, no
    /// thread beyond the N.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,

    /// Rewrite every secret (with --host, every one of that host's), whatever
    /// keys.lock and the headers say: .age files are encrypted again, and sops files
    /// get a new data key, every value sealed again under it.
    #[arg(long)]
    all: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    // `--jobs` sizes the process's pool of worker threads before anything runs on
    // it, so that it bounds every parallel step of the run, the re-encryption's too
    // (started from a thread of its own, which no pool installed here would reach).
    let pool =
        match args.jobs {
            Some(n) => {
                let builder = || rayon::ThreadPoolBuilder::new().num_threads(n.max(1));
                match builder().build_global() {
                    Ok(()) => None,
                    // Already built: a pool of its own, for all but the re-encryption.
                    Err(_) => Some(builder().build().map_err(|e| {
                        crate::error::usage(e.to_string(), "pass a smaller --jobs")
                    })?),
                }
            }
            None => None,
        };
    let mut ws = ctx.writable_workspace(Hosts::All)?;
    // A host key rotation that was killed is undone, or finished by this rekey.
    let rotation = if args.dry_run {
        host::Pending::None
    } else {
        host::settle_rotation(&mut ws)?
    };
    let mut text = String::new();
    match &rotation {
        host::Pending::Undone(h) => text.push_str(&format!(
            "undone  the interrupted key rotation of host {h} (its host file did not name the new key)\n"
        )),
        host::Pending::Finish(h) => text.push_str(&format!(
            "finish  the interrupted key rotation of host {h}\n"
        )),
        host::Pending::Reverted(h) => text.push_str(&format!(
            "undone  the interrupted key rotation of host {h} (the host never confirmed the pushed key; its secrets go back to the old key)\n"
        )),
        host::Pending::None => {}
    }
    // Only a rekey of every secret, or of that host's, finishes a rotation.
    let finishes =
        matches!(&rotation, host::Pending::Finish(h) if args.host.as_ref().is_none_or(|a| a == h));
    let rewrite = if args.all {
        Rewrite::All
    } else {
        Rewrite::Outdated
    };
    let mut plan = rekey::plan(&mut ws, args.host.as_deref(), rewrite)?;
    // `--jobs` bounds every thread the rekey starts.
    plan.close_beyond_pool = args.jobs.is_none();
    // The plan holds the lock as it parsed it; the text is read again if needed.
    ws.forget_lockfile();
    for (name, why) in &plan.skipped {
        let why = match why {
            rekey::Skip::NoRule => "no policy rule matches it".to_string(),
            rekey::Skip::OtherFormat { rule, file } => format!(
                "its rule says format {} but it is {}; re-encrypt it with `keys decrypt {name} | keys encrypt --force {name}`",
                rule.name(),
                file.name()
            ),
            rekey::Skip::Missing { rel } => {
                format!("{rel} is missing; restore it from git, or drop it with `keys rm {name}`")
            }
            rekey::Skip::Invalid {
                rel,
                format,
                reason,
            } => format!(
                "{rel} is not a valid {} file ({reason}); restore it from git",
                format.name()
            ),
        };
        text.push_str(&format!("skip    {name}: {why}\n"));
    }
    for c in &plan.changes {
        let why = match &c.reason {
            rekey::Reason::Recipients => format!("+{} -{} recipients", c.added, c.removed),
            rekey::Reason::Header(what) => {
                format!("keys.lock agrees with the policy, the file does not: {what}")
            }
            rekey::Reason::Unlisted(what) => {
                format!("not in keys.lock, and the file differs from the policy: {what}")
            }
            rekey::Reason::Unfinished => "left by an interrupted rekey".into(),
            rekey::Reason::Forced => "--all".into(),
        };
        text.push_str(&format!(
            "rekey   {}  ({}, {why})\n",
            c.name,
            c.format.name()
        ));
    }
    if plan.changes.is_empty() {
        if plan.relock {
            text.push_str(
                "relock  secrets/keys.lock  (short fingerprints, sorted; no secret changes)\n",
            );
        } else {
            text.push_str("up to date\n");
        }
    }
    ui::out(&text)?;
    // A line per secret: not held through the rekey.
    drop(text);
    if args.dry_run {
        return Ok(());
    }
    if plan.changes.is_empty() {
        // Nothing to decrypt, so no identity is needed.
        rekey::tidy(&ws)?;
        if plan.relock {
            rekey::relock(&ws, &plan)?;
        }
        if finishes {
            host::end_rotation(&ws)?;
        }
        return shared::refresh_exports(ctx);
    }
    let mut guard = ctx.identities()?;
    let ids: &mut crate::identity::Identities = &mut guard;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(plan.changes.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} secrets")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let tick = || {
        if let Some(b) = &bar {
            b.inc(1);
        }
    };
    let prompt = ctx.prompt();
    let work = || rekey::apply(&mut ws, plan, ids, prompt, &tick);
    let done = match pool {
        Some(pool) => pool.install(work)?,
        None => work()?,
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    warn_mac_mismatch(&done.mac_mismatch);
    if finishes {
        host::end_rotation(&ws)?;
    }
    ui::note(&format!(
        "rekeyed {} secret{}; each opens with the identity used",
        done.rewritten,
        ui::plural(done.rewritten)
    ));
    shared::refresh_exports(ctx)
}

/// Names each sops file a rekey rewrote though its MAC did not match its values.
pub(crate) fn warn_mac_mismatch(files: &[String]) {
    for rel in files {
        ui::warn(&format!(
            "{rel}: MAC mismatch: the values do not match the file's MAC; its data key was \
             re-wrapped all the same, its values and MAC carried over as they were (to repair it, \
             re-encrypt what `keys decrypt --ignore-mac` prints with `keys encrypt --force`)"
        ));
    }
}
