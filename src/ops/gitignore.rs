//! What git must never ignore in a fleet repository: `secrets/`, `policies/`,
//! `recipients/` and the exports. An ignored secret is one `check` cannot guard and
//! a commit silently leaves behind; an ignored plaintext file sits beside the secrets
//! unseen. `check` reports each ignoring line, `init` refuses to scaffold under one
//! and, when asked, removes it.

use std::path::Path;

use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::fsutil;
use crate::git::{self, IgnoredBy};
use crate::layout;
use crate::ops::export::Export;

/// The directories keys keeps, every file of which must be committed.
const KEPT_DIRS: [&str; 3] = [layout::SECRETS, layout::POLICIES, layout::RECIPIENTS];

/// What git ignores of what keys keeps.
#[derive(Default)]
pub struct Ignored {
    /// The lines of the repository's ignore files (and git's global ones) that do it,
    /// one per line, each naming the first path it ignores.
    pub lines: Vec<IgnoredBy>,
    /// The files there now that git ignores, repository-relative.
    pub files: Vec<String>,
    /// Whether the fleet is in a git work tree at all.
    pub in_git: bool,
}

/// What git ignores of `secrets/`, `policies/`, `recipients/` and the exports.
/// Nothing outside git.
pub fn ignored(root: &Path) -> Result<Ignored> {
    let Some(existing) = git::ignored_files(root, &KEPT_DIRS)? else {
        return Ok(Ignored::default());
    };
    let mut paths: Vec<String> = KEPT_DIRS.iter().map(|d| format!("{d}/")).collect();
    paths.extend([
        format!("{}/", layout::ADMINS),
        format!("{}/", layout::HOSTS),
    ]);
    // Names a file of each kind would have, whether or not one exists yet.
    for f in Format::ALL {
        paths.push(format!("{}/a/b.{}", layout::SECRETS, f.extension()));
    }
    paths.extend([
        layout::LOCKFILE.to_string(),
        format!("{}/hosts/a/ssh_host_ed25519_key.age", layout::SECRETS),
        format!("{}/a.yaml", layout::POLICIES),
        format!("{}/a.pub", layout::ADMINS),
        format!("{}/a.yaml", layout::HOSTS),
    ]);
    paths.extend(Export::ALL.iter().map(|e| e.file().to_string()));
    paths.extend(existing.iter().cloned());
    let Some(found) = git::ignored_by(root, &paths)? else {
        return Ok(Ignored::default());
    };
    let mut lines: Vec<IgnoredBy> = Vec::new();
    for hit in found {
        if !lines
            .iter()
            .any(|l| l.source == hit.source && l.line == hit.line)
        {
            lines.push(hit);
        }
    }
    Ok(Ignored {
        lines,
        files: existing,
        in_git: true,
    })
}

/// Where a line is, for a message: `FILE:LINE`.
pub fn location(line: &IgnoredBy) -> Location {
    Location::named(&line.source).at_line(line.line as u64)
}

/// Removes each ignoring line from the file inside the repository that holds it,
/// writing each file once (temp file and rename). A line in an ignore file outside the
/// repository (git's global excludes) is refused: keys edits only the repository.
/// Returns the lines removed.
pub fn remove_lines(root: &Path, lines: &[IgnoredBy]) -> Result<Vec<IgnoredBy>> {
    let mut by_file: Vec<(&str, Vec<&IgnoredBy>)> = Vec::new();
    for l in lines {
        if Path::new(&l.source).is_absolute() || l.source.split('/').any(|c| c == "..") {
            return Err(Error::IgnoredByGit {
                at: location(l),
                path: l.path.clone(),
                outside: true,
            });
        }
        match by_file.iter_mut().find(|(f, _)| *f == l.source) {
            Some((_, v)) => v.push(l),
            None => by_file.push((&l.source, vec![l])),
        }
    }
    // Read and check every file before writing any.
    let mut edits = Vec::new();
    for (file, remove) in by_file {
        let path = root.join(file);
        let data = fsutil::read_optional(&path)?.unwrap_or_default();
        let text = String::from_utf8(data).map_err(|_| Error::InvalidFile {
            at: Location::named(file),
            reason: "not UTF-8 text".into(),
        })?;
        let kept: String = text
            .split_inclusive('\n')
            .enumerate()
            .filter(|(i, _)| !remove.iter().any(|l| l.line == i + 1))
            .map(|(_, l)| l)
            .collect();
        edits.push((path, kept));
    }
    let files: Vec<(&Path, &[u8], u32)> = edits
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_bytes(), fsutil::PUBLIC))
        .collect();
    fsutil::write_batch(&files)?;
    Ok(lines.to_vec())
}
