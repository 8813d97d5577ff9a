//! What interrupted runs left behind: a rotation or rekey journal, plaintext temp
//! files of `keys decrypt -o`, scratch directories of `keys edit`.

use super::kind::Kind;
use super::report::{Finding, Report, Severity};
use crate::error::Location;
use crate::layout;
use crate::snapshot::{Blob, Snapshot};

/// The journal of a host key rotation or a rekey that did not finish.
pub(super) fn journals(files: &Snapshot, report: &mut Report) {
    if let Some(blob) = files.get(layout::ROTATION_JOURNAL) {
        let text = match blob {
            Blob::File(data) => std::str::from_utf8(data).ok(),
            Blob::Symlink => None,
        };
        let host = text
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("host ")))
            .filter(|h| layout::check_name(h).is_ok())
            .map(|h| format!(" of host {h}"));
        let pushed = text.is_some_and(|t| t.lines().any(|l| l.starts_with("pushed ")));
        if pushed {
            report.problem(
                Kind::Interrupted,
                layout::ROTATION_JOURNAL,
                format!(
                    "a host key rotation{} was interrupted before the host kept the pushed key",
                    host.unwrap_or_default()
                ),
                "run `keys rekey`: it puts the repository back to the old key, which the host put back when the session ended",
            );
        } else {
            report.problem(
                Kind::Interrupted,
                layout::ROTATION_JOURNAL,
                format!(
                    "a host key rotation{} was interrupted",
                    host.unwrap_or_default()
                ),
                "run `keys rekey`: it finishes the rotation, or undoes it if the host file does not name the new key yet",
            );
        }
    }
    if files.get(layout::REKEY_JOURNAL).is_some() {
        report.problem(
            Kind::Interrupted,
            layout::REKEY_JOURNAL,
            "a rekey was interrupted: some secrets may not match keys.lock yet",
            "run `keys rekey` to finish it",
        );
    }
}

/// Plaintext temp files (`.keys-tmp-<pid>-plain-…`) anywhere in the tree: what a
/// `keys decrypt -o` killed before its rename left. Reported whatever the pid, so that
/// no commit picks one up.
pub(super) fn plaintext_temp_files(files: &Snapshot, report: &mut Report) {
    for (rel, _) in files.iter() {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        if let Some(temp) = crate::fsutil::TempName::parse(base)
            && temp.plain
        {
            report.problem(
                Kind::Plaintext,
                rel,
                format!(
                    "plaintext left by an interrupted keys decrypt -o (pid {})",
                    temp.pid
                ),
                "delete it; the next `keys decrypt -o` into its directory wipes it",
            );
        }
    }
}

/// Scratch directories that killed `keys` processes left on tmpfs (or the disk
/// fallback), holding the plaintext of an edit: problems for `keys check`, which does
/// not remove them (the next command that uses a scratch directory does).
pub fn scratch_leftovers() -> Vec<Finding> {
    crate::scratch::leftovers()
        .into_iter()
        .map(|left| {
            Finding::new(
                Severity::Problem,
                Kind::Plaintext,
                Location::file(&left.path),
                format!(
                    "plaintext left by an interrupted keys edit (pid {})",
                    left.pid
                ),
                format!(
                    "the next `keys edit` wipes it; or remove it now: rm -r {}",
                    left.path.display()
                ),
            )
        })
        .collect()
}
