//! A file as the last commit holds it, and as that commit's parents do: for `keys
//! check` to compare `keys.lock` with what was committed before. As everywhere in
//! this module, the path goes to git on its standard input, not its command line.

use std::path::Path;

use super::{Git, current_dir, external, failed};
use crate::error::Result;

/// One commit's version of a file.
pub struct Committed {
    /// How the commit is named to the user: `HEAD`, or `HEAD^1`, `HEAD^2` for its
    /// parents.
    pub commit: String,
    /// The file's bytes; None where that commit has no file there.
    pub data: Option<Vec<u8>>,
}

/// `rel` (a path relative to `dir`) as HEAD holds it, then as each parent of HEAD
/// does: one `git rev-list` and one `git cat-file --batch`. Empty outside a git work
/// tree or before the first commit.
pub fn head_and_parents(dir: &Path, rel: &str) -> Result<Vec<Committed>> {
    let git = Git::new(&[], &current_dir()?);
    let Some(prefix) = git.in_work_tree(dir, "--show-prefix")? else {
        return Ok(Vec::new());
    };
    let listed = git.run(dir, &["rev-list", "--parents", "-n", "1", "HEAD", "--"])?;
    if !listed.status.success() {
        // No commit yet.
        return Ok(Vec::new());
    }
    let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let mut request = Vec::new();
    for id in &ids {
        request.extend_from_slice(format!("{id}:").as_bytes());
        request.extend_from_slice(&prefix);
        request.extend_from_slice(format!("{rel}\n").as_bytes());
    }
    let args = ["cat-file", "--batch"];
    let out = git.run_with_input(dir, &args, request)?;
    if !out.status.success() {
        return Err(failed(&args, &out.status, &out.stderr));
    }
    let mut answers = &out.stdout[..];
    let mut versions = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        let commit = match i {
            0 => "HEAD".to_string(),
            n => format!("HEAD^{n}"),
        };
        let data = next_blob(&mut answers).ok_or_else(|| {
            external(format!(
                "`git {}` printed what keys cannot read",
                args.join(" ")
            ))
        })?;
        versions.push(Committed { commit, data });
    }
    Ok(versions)
}

/// The next answer of `cat-file --batch` in `answers`, consumed: `<oid> blob <size>`
/// then the bytes, or `<name> missing` (no file there: `Some(None)`); a tree or
/// another type is no file either. None where the answer does not parse.
fn next_blob(answers: &mut &[u8]) -> Option<Option<Vec<u8>>> {
    let nl = answers.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&answers[..nl]).ok()?;
    let rest = &answers[nl + 1..];
    if header.ends_with(" missing") || header.ends_with(" ambiguous") {
        *answers = rest;
        return Some(None);
    }
    let mut fields = header.rsplitn(3, ' ');
    let size: usize = fields.next()?.parse().ok()?;
    let kind = fields.next()?;
    let body = rest.get(..size)?;
    *answers = rest.get(size + 1..)?;
    Some((kind == "blob").then(|| body.to_vec()))
}
