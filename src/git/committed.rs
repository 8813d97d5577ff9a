//! A file as the last commit holds it, and as that commit's parents do: for `keys
//! check` to compare `keys.lock` with what was committed before.

use std::path::Path;

use super::{Git, current_dir};
use crate::error::Result;

/// One commit's version of a file.
pub struct Committed {
    /// How the commit is named to the user: `HEAD`, or `HEAD^1`, `HEAD^2` for its
    /// parents.
    pub commit: String,
    /// The file's bytes; None where that commit has no regular file there.
    pub data: Option<Vec<u8>>,
}

/// `rel` (a path relative to `dir`) as HEAD holds it, then as each parent of HEAD
/// does. Empty outside a git work tree or before the first commit.
pub fn head_and_parents(dir: &Path, rel: &str) -> Result<Vec<Committed>> {
    let git = Git::new(&[], &current_dir()?);
    if git.in_work_tree(dir, "--show-prefix")?.is_none() {
        return Ok(Vec::new());
    }
    let listed = git.run(dir, &["rev-list", "--parents", "-n", "1", "HEAD", "--"])?;
    if !listed.status.success() {
        // No commit yet.
        return Ok(Vec::new());
    }
    let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
    let mut versions = Vec::new();
    for (i, id) in ids.split_whitespace().enumerate() {
        let commit = match i {
            0 => "HEAD".to_string(),
            n => format!("HEAD^{n}"),
        };
        // The path is given to ls-tree relative to `dir`, where git runs.
        let tree = git.output(dir, &["ls-tree", "-z", id, "--", rel])?;
        let data = match blob_id(&tree) {
            Some(oid) => Some(git.output(dir, &["cat-file", "blob", oid])?),
            None => None,
        };
        versions.push(Committed { commit, data });
    }
    Ok(versions)
}

/// The object id of the one regular file in `ls-tree -z` output
/// (`<mode> blob <oid>\t<path>\0`), if it lists one.
fn blob_id(listing: &[u8]) -> Option<&str> {
    let entry = listing.split(|&b| b == 0).next()?;
    let (meta, _path) = std::str::from_utf8(entry).ok()?.split_once('\t')?;
    match meta.split(' ').collect::<Vec<_>>()[..] {
        ["100644" | "100755", "blob", oid] => Some(oid),
        _ => None,
    }
}
