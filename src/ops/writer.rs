//! One writer per repository: commands that write take an exclusive `flock` on
//! `.keys-writer` at the repository root, holding their pid in it, so a second
//! process is refused at once with the holder's pid instead of interleaving.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};
use crate::layout::Repo;

/// The lock file, relative to the repository root (git should ignore it).
pub const FILE: &str = ".keys-writer";

/// Held for as long as the value lives; released when dropped or when the process dies.
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    pub fn acquire(repo: &Repo) -> Result<WriterLock> {
        let path: PathBuf = repo.root().join(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let pid = text.lines().next().unwrap_or("").trim();
            return Err(Error::Busy {
                path,
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_string()
                },
            });
        }
        // Written over the old pid, then cut to length: a reader never sees it empty.
        let pid = format!("{}\n", std::process::id());
        file.write_all_at(pid.as_bytes(), 0)
            .and_then(|()| file.set_len(pid.len() as u64))
            .map_err(|e| Error::io(&path, e))?;
        Ok(WriterLock { _file: file })
    }
}
