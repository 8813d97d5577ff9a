//! One writer per repository: commands that write take an exclusive `flock` on
//! `.keys-writer` at the repository root, holding their pid in it, so a second
//! process is refused at once with the holder's pid instead of interleaving.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};
use crate::layout::Repo;

/// The lock file, relative to the repository root (git should ignore it).
pub const FILE: &str = ".keys-writer";

/// How long a refused process looks for the holder's pid: the holder may have taken
/// the lock and not yet written it, or released it a moment ago.
const FIND_HOLDER: Duration = Duration::from_secs(1);

/// Held for as long as the value lives; released when dropped or when the process dies.
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    pub fn acquire(repo: &Repo) -> Result<WriterLock> {
        let path: PathBuf = repo.root().join(FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // The pid is written into the file: never into another file by a second name.
        let links = rustix::fs::fstat(&file)
            .map_err(|e| Error::io(&path, e.into()))?
            .st_nlink;
        if links > 1 {
            return Err(Error::io(
                &path,
                std::io::Error::other(format!(
                    "has {links} names (a hard link); keys does not write through it"
                )),
            ));
        }
        let deadline = Instant::now() + FIND_HOLDER;
        while flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            if let Some(pid) = holder(&file) {
                return Err(Error::Busy { path, pid });
            }
            if Instant::now() >= deadline {
                return Err(Error::Busy {
                    path,
                    pid: "unknown".into(),
                });
            }
            // Taken and not yet written, or released since: look again.
            std::thread::sleep(Duration::from_millis(2));
        }
        // Written over the old pid, then cut to length: a reader never sees it empty.
        let pid = format!("{}\n", std::process::id());
        file.write_all_at(pid.as_bytes(), 0)
            .and_then(|()| file.set_len(pid.len() as u64))
            .map_err(|e| Error::io(&path, e))?;
        Ok(WriterLock { _file: file })
    }
}

/// The pid of the process holding the lock on `file`: as the kernel records it when
/// it says (so it is right from the moment the lock is taken), else as the holder
/// wrote it into the file, once it has.
fn holder(file: &File) -> Option<String> {
    if let Some(pid) = kernel_holder(file) {
        return Some(pid.to_string());
    }
    // Read from the start each time: this is called again while the holder writes.
    let mut head = [0u8; 32];
    let n = file.read_at(&mut head, 0).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    let pid = text.lines().next()?.trim();
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then(|| pid.to_string())
}

/// The pid `/proc/locks` gives for the `flock` write lock on `file`'s inode (Linux;
/// `None` elsewhere, or for a holder outside this pid namespace).
fn kernel_holder(file: &File) -> Option<u32> {
    let st = rustix::fs::fstat(file).ok()?;
    let id = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(st.st_dev),
        rustix::fs::minor(st.st_dev),
        st.st_ino
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END`; waiters have `->`.
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [_, "FLOCK", _, "WRITE", pid, inode, ..] if inode == id => {
                pid.parse::<u32>().ok().filter(|p| *p > 0)
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_holder_before_it_has_written_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path().to_path_buf());
        // A holder that has taken the lock and written nothing yet (or left a stale pid).
        std::fs::write(dir.path().join(FILE), "999999999\n").unwrap();
        let held = File::open(dir.path().join(FILE)).unwrap();
        flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();
        let Err(Error::Busy { pid, .. }) = WriterLock::acquire(&repo) else {
            panic!("not refused");
        };
        assert_eq!(pid, std::process::id().to_string());
        drop(held);
        let lock = WriterLock::acquire(&repo).unwrap();
        drop(lock);
        std::fs::hard_link(dir.path().join(FILE), dir.path().join("other")).unwrap();
        let err = WriterLock::acquire(&repo).err().unwrap().to_string();
        assert!(err.contains("hard link"), "{err}");
    }
}
