//! `keys merge-lock BASE OURS THEIRS [PATH]`: the git merge driver for keys.lock.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::format::lockfile::{self, Lockfile};
use crate::fsutil;

/// Merge keys.lock secret by secret (git runs this as a merge driver).
///
/// `keys hook install` (and `keys init`) register it for secrets/keys.lock through
/// the fleet's .gitattributes and the repository's git configuration. Entries for
/// different secrets merge cleanly; the same secret changed differently on both sides
/// is a conflict naming it, left between conflict markers in OURS.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The common ancestor's version (git's %O).
    base: PathBuf,
    /// This branch's version, where the result is written (git's %A).
    ours: PathBuf,
    /// The other branch's version (git's %B).
    theirs: PathBuf,
    /// The file's path in the repository (git's %P), for messages.
    path: Option<String>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let shown = args.path.as_deref().unwrap_or("secrets/keys.lock");
    // git hands over each version as a temporary file: an error names the lock and
    // which version it found the fault in.
    let read = |p: &PathBuf, version: &str| -> Result<Lockfile> {
        let named = format!("{shown} ({version})");
        let data = fsutil::read_optional(p)?.unwrap_or_default();
        let text = String::from_utf8(data).map_err(|_| Error::InvalidFile {
            at: crate::error::Location::named(&named),
            reason: "not UTF-8 text".into(),
        })?;
        Lockfile::parse(&text).map_err(|mut e| {
            if let Error::InvalidFile { at, .. } = &mut e {
                at.file = named.clone();
            }
            e
        })
    };
    let (base, ours, theirs) = (
        read(&args.base, "the common ancestor's version")?,
        read(&args.ours, "this branch's version")?,
        read(&args.theirs, "the other branch's version")?,
    );
    let (text, conflicts) = lockfile::merge3(&base, &ours, &theirs);
    fsutil::write_atomic(&args.ours, text.as_bytes(), fsutil::PUBLIC)?;
    if conflicts.is_empty() {
        return Ok(());
    }
    Err(Error::MergeConflict {
        file: shown.to_string(),
        names: conflicts,
    })
}
