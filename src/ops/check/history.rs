//! `keys.lock` against the lock git committed before it: the lock is text anyone can
//! edit, and what it says of a value's life (`changed=`, `seen=`) cannot be checked
//! against the secret's file. What a commit recorded stays: while a secret keeps its
//! value, its `changed=` date stays, and every reader that could read it then (a
//! recipient, or one `seen=` lists) is a recipient still or listed in `seen=`; only
//! a new value (a later date and another file) clears them.

use std::path::Path;

use super::kind::Kind;
use super::report::{Finding, Severity};
use crate::error::{Location, Result};
use crate::format::lockfile::{self, Lockfile};
use crate::layout;
use crate::snapshot::Blob;

/// What `lock` (the staged lock with `staged`, else the work tree's) drops of what
/// the lock at HEAD records; and, for the work tree, what HEAD's lock drops of each
/// of its parents' (a commit made without the hook). Outside git, none.
pub fn lock_history(root: &Path, lock: Option<&Blob>, staged: bool) -> Result<Vec<Finding>> {
    let committed = match crate::git::head_and_parents(root, layout::LOCKFILE) {
        Ok(c) => c,
        // The hook has run git already; a work tree with no git is not in a repository.
        Err(e) if staged => return Err(e),
        Err(_) => Vec::new(),
    };
    let Some((head, parents)) = committed.split_first() else {
        return Ok(Vec::new());
    };
    // Each lock parsed once; one that does not parse is reported by the check of its
    // own, or (committed) is no record to hold this one to.
    let now = match lock {
        Some(Blob::File(data)) => parsed(Some(data)),
        _ => None,
    };
    let at_head = parsed(head.data.as_deref());
    let mut findings = Vec::new();
    if let (Some((text, new)), Some((_, old))) = (&now, &at_head) {
        compare((text, new), None, (&head.commit, old), &mut findings);
    }
    if !staged && let Some((text, new)) = &at_head {
        for parent in parents {
            if let Some((_, old)) = parsed(parent.data.as_deref()) {
                compare(
                    (text, new),
                    Some(&head.commit),
                    (&parent.commit, &old),
                    &mut findings,
                );
            }
        }
    }
    Ok(findings)
}

/// A lock's text and entries, if it is UTF-8 and parses.
fn parsed(data: Option<&[u8]>) -> Option<(&str, Lockfile)> {
    let text = std::str::from_utf8(data?).ok()?;
    Some((text, Lockfile::parse(text).ok()?))
}

/// Findings for each secret `new` (whose text is `newer`, the lock of `commit`, or
/// of the index or work tree) lists whose value `old` (the lock of commit `older`)
/// records as the same (the same date), where a reader `old` lists (a recipient, or
/// in `seen=`) is neither a recipient in `new` nor in its `seen=`; or whose date
/// `new` drops, or moves while the file stays. A date moved back with the file is
/// an older value brought back (`git revert`), which its line describes.
fn compare(
    (newer, new): (&str, &Lockfile),
    commit: Option<&str>,
    (older, old): (&str, &Lockfile),
    findings: &mut Vec<Finding>,
) {
    let at = |name: &str| {
        let prefix = format!("{name} ");
        let line = newer.lines().position(|l| l.starts_with(&prefix));
        let file = match commit {
            Some(c) => format!("{} ({c})", layout::LOCKFILE),
            None => layout::LOCKFILE.to_string(),
        };
        Location {
            file,
            line: line.map(|n| n as u64 + 1),
        }
    };
    let put_back = |name: &str| {
        format!(
            "put the line back as {} has it (`git checkout {} -- {}`), or give {name} a new \
             value (`keys edit {name}`, or `keys rotate` for a generated one)",
            older,
            older,
            layout::LOCKFILE
        )
    };
    for (name, was) in &old.entries {
        let (Some(is), Some(since)) = (new.entries.get(name), was.changed) else {
            continue;
        };
        let what = match is.changed {
            Some(t) if t > since && is.sha256 == was.sha256 => format!(
                "{name}: changed={} is later than {}'s {}, yet the file is the one {} \
                 recorded (the same SHA-256): no new value was written",
                lockfile::format_date(t),
                older,
                lockfile::format_date(since),
                older
            ),
            Some(t) if t > since => continue,
            Some(t) if t < since && is.sha256 == was.sha256 => format!(
                "{name}: changed={} is earlier than {}'s {}, yet the file is the one {} \
                 recorded (the same SHA-256)",
                lockfile::format_date(t),
                older,
                lockfile::format_date(since),
                older
            ),
            // An older value and its line brought back (`git revert`).
            Some(t) if t < since => continue,
            None => format!(
                "{name}: changed= is gone, where {} records {}",
                older,
                lockfile::format_date(since)
            ),
            Some(_) => {
                // Who could read the value then: its readers taken away, and its
                // recipients. Each is a recipient still or, taken away, in seen=.
                let mut dropped: Vec<&str> = was
                    .seen
                    .iter()
                    .map(|s| s.id.as_str())
                    .chain(was.recipients.iter().map(String::as_str))
                    .filter(|id| !is.seen.iter().any(|n| n.id == *id))
                    .filter(|id| !is.recipients.iter().any(|r| r == id))
                    .collect();
                dropped.sort_unstable();
                dropped.dedup();
                if dropped.is_empty() {
                    continue;
                }
                format!(
                    "{name}: seen= does not list {}, which the lock at {} records as able to \
                     read this value (unchanged since) and which reads it no more",
                    dropped.join(", "),
                    older
                )
            }
        };
        findings.push(Finding::new(
            Severity::Problem,
            Kind::Lock,
            at(name),
            what,
            put_back(name),
        ));
    }
}
