//! A read-only view of the repository's files: the work tree, or the blobs staged in
//! the git index. The fleet, the policy and `keys check` read through it, so the
//! pre-commit check sees exactly what will be committed.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::layout::Repo;

/// One path in the view.
pub enum Blob {
    File(Vec<u8>),
    /// A symbolic link (never followed; `keys` refuses them where secrets live).
    Symlink,
}

/// Repository-relative, '/'-separated paths and their contents, sorted.
#[derive(Default)]
pub struct Snapshot {
    files: BTreeMap<String, Blob>,
}

impl Snapshot {
    /// The regular files and symlinks under each of `dirs` (relative to the root), read
    /// from the work tree. Absent directories are empty; a directory that is a symlink,
    /// or is reached through one, is that symlink (as git records it), not followed.
    pub fn from_work_tree(repo: &Repo, dirs: &[&str]) -> Result<Snapshot> {
        let mut paths = Vec::new();
        for dir in dirs {
            match crate::fsutil::refuse_links(repo.root(), Path::new(dir)) {
                Err(Error::Symlink { path }) => {
                    paths.push((path.to_string_lossy().into_owned(), true));
                }
                Err(e) => return Err(e),
                Ok(()) => collect(repo, &repo.root().join(dir), &mut paths)?,
            }
        }
        paths.sort();
        paths.dedup();
        Snapshot::read_paths(repo, paths)
    }

    /// The given repository-relative files, read from the work tree. Paths that vanished
    /// or are not regular files or symlinks are left out.
    pub fn from_work_tree_files(repo: &Repo, rels: Vec<String>) -> Result<Snapshot> {
        Snapshot::read_paths(repo, rels.into_iter().map(|rel| (rel, false)).collect())
    }

    /// Reads each path that is not known to be a symlink: each is opened once,
    /// without following a symlink or blocking on a FIFO, and its type is told by
    /// the open file, so a file is never read through a link it was swapped for.
    fn read_paths(repo: &Repo, paths: Vec<(String, bool)>) -> Result<Snapshot> {
        let read_one = |(rel, link): (String, bool)| -> Result<Option<(String, Blob)>> {
            if link {
                return Ok(Some((rel, Blob::Symlink)));
            }
            let path = repo.root().join(&rel);
            let blob = read_no_follow(&path).map_err(|e| Error::io(&path, e))?;
            Ok(blob.map(|b| (rel, b)))
        };
        // Threads pay off only for many files; a small fleet reads faster on one.
        let read: Vec<Option<(String, Blob)>> = if paths.len() < 256 {
            paths.into_iter().map(read_one).collect::<Result<_>>()?
        } else {
            paths.into_par_iter().map(read_one).collect::<Result<_>>()?
        };
        Ok(Snapshot {
            files: read.into_iter().flatten().collect(),
        })
    }

    pub fn insert(&mut self, rel: String, blob: Blob) {
        self.files.insert(rel, blob);
    }

    pub fn remove(&mut self, rel: &str) -> Option<Blob> {
        self.files.remove(rel)
    }

    pub fn get(&self, rel: &str) -> Option<&Blob> {
        self.files.get(rel)
    }

    /// Every path strictly under `dir` (no trailing slash), in order.
    pub fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a Blob)> + 'a {
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The files directly in `dir` whose name ends with `.ext`, in order.
    pub fn files_in<'a>(
        &'a self,
        dir: &'a str,
        ext: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let skip = dir.len() + 1;
        self.under(dir).filter_map(move |(rel, blob)| match blob {
            Blob::File(data)
                if !rel[skip..].contains('/')
                    && rel
                        .rsplit_once('.')
                        .is_some_and(|(stem, e)| e == ext && !stem.ends_with('/')) =>
            {
                Some((rel, data.as_slice()))
            }
            _ => None,
        })
    }

    /// The first symlink where the files of `dir` with extension `ext` are read: the
    /// directory itself or one above it, or such a file.
    pub fn symlink_at(&self, dir: &str, ext: &str) -> Option<&str> {
        let mut end = 0;
        while end < dir.len() {
            end = dir[end..].find('/').map_or(dir.len(), |i| end + i);
            if let Some((rel, Blob::Symlink)) = self.files.get_key_value(&dir[..end]) {
                return Some(rel);
            }
            end += 1;
        }
        let skip = dir.len() + 1;
        self.under(dir)
            .find(|(rel, blob)| {
                matches!(blob, Blob::Symlink)
                    && !rel[skip..].contains('/')
                    && rel.ends_with(&format!(".{ext}"))
            })
            .map(|(rel, _)| rel)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Blob)> {
        self.files.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A regular file's bytes, `Blob::Symlink` for a symlink, `None` for anything else
/// or a path that vanished.
fn read_no_follow(path: &Path) -> std::io::Result<Option<Blob>> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    use std::io::Read;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => return Ok(Some(Blob::Symlink)),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::NXIO) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut file = std::fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    // Sized by the one fstat above, with a byte to spare for the read that finds the
    // end (`read_to_end` would ask the size again and seek).
    let mut data = vec![0; meta.len() as usize + 1];
    let mut filled = 0;
    loop {
        if filled == data.len() {
            data.resize(filled * 2, 0);
        }
        match file.read(&mut data[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.truncate(filled);
    Ok(Some(Blob::File(data)))
}

/// Walks `dir` (not following symlinks), collecting (relative path, is_symlink).
fn collect(repo: &Repo, dir: &Path, out: &mut Vec<(String, bool)>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            Error::io(
                path,
                e.into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk failed")),
            )
        })?;
        let ft = entry.file_type();
        if ft.is_file() || ft.is_symlink() {
            out.push((repo.rel(entry.path()), ft.is_symlink()));
        }
    }
    Ok(())
}
