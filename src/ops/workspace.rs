//! The workspace a command works in: the fleet, its policy and `keys.lock`, read from
//! the work tree, and the writer lock that keeps a second writing `keys` out. Commands
//! that write take an exclusive `flock` on `.keys-writer` at the repository root,
//! holding their pid in it, so a second process is refused at once with the holder's
//! pid instead of interleaving.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Location, Result};
use crate::format::lockfile::{self, LockfileText, Spot};
use crate::format::{self, Format};
use crate::fsutil;
use crate::layout::{self, Repo};
use crate::policy::fleet::Host;
use crate::policy::{Fleet, Policy, Rule};
use crate::snapshot::Snapshot;

/// How long a refused process looks for the holder's pid: the holder may have taken
/// the lock and not yet written it, or released it a moment ago.
const FIND_HOLDER: Duration = Duration::from_secs(1);

/// Held for as long as the value lives; released when dropped or when the process dies.
pub struct WriterLock {
    file: File,
}

impl WriterLock {
    pub fn acquire(repo: &Repo) -> Result<WriterLock> {
        let path: PathBuf = repo.root().join(layout::WRITER);
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
        Ok(WriterLock { file })
    }
}

impl Drop for WriterLock {
    /// Released at once, even while a child forked a moment ago still holds the
    /// descriptor (until its exec closes it).
    fn drop(&mut self) {
        let _ = flock(&self.file, FlockOperation::Unlock);
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

/// How much of the fleet a command reads before it starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hosts {
    /// Every host file, parsed and checked: commands that report on, rekey or deploy
    /// the fleet, so a broken host file stops them.
    All,
    /// Only the host files the command's secret needs, when it needs them: commands
    /// on one secret. A broken file of another host is `keys check`'s to report.
    AsNeeded,
}

/// The fleet, its policy and the lock file, read from the work tree.
pub struct Workspace {
    pub repo: Repo,
    pub fleet: Fleet,
    pub policy: Policy,
    hosts: Hosts,
    /// Read on first use: opening a secret does not need it.
    lockfile: Option<LockfileText>,
    /// The lock copied for one secret's line ahead of the policy (see
    /// `load_writable_for_secret`). Declared before `_writer`, so that it is dropped
    /// first: the copy is done before another process may take the writer lock.
    ahead: Option<LockAhead>,
    /// Held by commands that write (see `load_writable`).
    _writer: Option<WriterLock>,
}

impl Workspace {
    pub fn load(repo: &Repo, hosts: Hosts) -> Result<Workspace> {
        let read = |dirs: &[&str]| Snapshot::from_work_tree(repo, dirs);
        let (fleet, files) = match hosts {
            Hosts::All => {
                let files = read(&[layout::ADMINS, layout::HOSTS, layout::POLICIES])?;
                (Fleet::from_snapshot(&files)?, files)
            }
            Hosts::AsNeeded => {
                let files = read(&[layout::ADMINS, layout::POLICIES])?;
                (Fleet::open(repo, &files)?, files)
            }
        };
        let policy = Policy::from_snapshot(&files, &fleet)?;
        Ok(Workspace {
            repo: repo.clone(),
            fleet,
            policy,
            hosts,
            lockfile: None,
            ahead: None,
            _writer: None,
        })
    }

    /// Reads the fleet, policy and lock file again (after this process changed them),
    /// keeping the writer lock.
    pub fn reload(&mut self) -> Result<()> {
        let fresh = Workspace::load(&self.repo, self.hosts)?;
        self.fleet = fresh.fleet;
        self.policy = fresh.policy;
        self.lockfile = None;
        self.ahead = None;
        Ok(())
    }

    /// Like `load`, for a command that writes: takes the repository's writer lock
    /// first, so what it reads cannot change under it.
    pub fn load_writable(repo: &Repo, hosts: Hosts) -> Result<Workspace> {
        Workspace::load_writing(repo, hosts, None)
    }

    /// `load_writable` for a command that writes the secret `name`: the lock's copy
    /// with that secret's line is staged first, on a guess of the line, so that the
    /// disk writes it while the policy is read and the value sealed (see `LockAhead`).
    pub fn load_writable_for_secret(repo: &Repo, hosts: Hosts, name: &str) -> Result<Workspace> {
        Workspace::load_writing(repo, hosts, Some(name))
    }

    fn load_writing(repo: &Repo, hosts: Hosts, secret: Option<&str>) -> Result<Workspace> {
        let writer = WriterLock::acquire(repo)?;
        let ahead = secret.and_then(|name| LockAhead::stage(repo, name));
        let mut ws = Workspace::load(repo, hosts)?;
        ws._writer = Some(writer);
        ws.ahead = ahead;
        Ok(ws)
    }

    /// The lock copy staged ahead for `name`, if there is one (see `LockAhead`).
    pub fn take_ahead(&mut self, name: &str) -> Option<LockAhead> {
        self.ahead.take().filter(|ahead| ahead.name == name)
    }

    /// `secrets/keys.lock`, read once.
    pub fn lockfile(&mut self) -> Result<&mut LockfileText> {
        if self.lockfile.is_none() {
            self.lockfile = Some(read_lockfile(&self.repo)?);
        }
        Ok(self
            .lockfile
            .get_or_insert_with(|| LockfileText::new(String::new())))
    }

    /// `secrets/keys.lock` opened to change one line of it, for a command that has not
    /// read it yet (`None` when it has, or when there is no lock): the line is found
    /// by reading a few windows of it, whatever the size of the fleet.
    pub fn lock_on_disk(&self) -> Result<Option<LockOnDisk>> {
        if self.lockfile.is_some() {
            return Ok(None);
        }
        LockOnDisk::open(&self.repo)
    }

    /// `secrets/keys.lock` if it has been read, without reading it.
    pub fn lockfile_if_read(&self) -> Option<&LockfileText> {
        self.lockfile.as_ref()
    }

    /// Forgets the lock file read so far (after a write that failed): the next use reads it
    /// again from disk.
    pub fn forget_lockfile(&mut self) {
        self.lockfile = None;
    }

    /// The rule for a secret name, or an error saying no rule matches.
    pub fn rule(&self, name: &str) -> Result<&Rule> {
        check_name(name)?;
        self.policy
            .rule_for(name)
            .map(|(_, r)| r)
            .ok_or_else(|| match self.policy.unbound(name) {
                Some(u) => Error::Unbound {
                    name: name.to_string(),
                    segment: u.segment.to_string(),
                    kind: u.template.placeholder.kind(),
                    rule: format!("{:?} ({})", u.template.glob, u.template.at),
                },
                None => Error::NoRule {
                    name: name.to_string(),
                },
            })
    }

    /// The host of that name.
    pub fn host(&self, name: &str) -> Result<&Host> {
        self.fleet.require_host(name)
    }

    /// Where an existing secret is: the file of its rule's format, else whichever
    /// secret file exists under that name.
    pub fn locate(&self, name: &str) -> Result<(PathBuf, Format)> {
        check_name(name)?;
        let mut formats: Vec<Format> = Vec::new();
        if let Some((_, rule)) = self.policy.rule_for(name) {
            formats.push(rule.format);
        }
        formats.extend(Format::ALL);
        for f in formats {
            let path = self.repo.root().join(format::secret_path(name, f));
            if std::fs::symlink_metadata(&path).is_ok() {
                return Ok((path, f));
            }
        }
        Err(Error::NoSecret {
            name: name.to_string(),
            near: self.near_names(name),
        })
    }

    /// Up to three existing secret names close to `name` (a typo, a missing
    /// segment), nearest first.
    pub fn near_names(&self, name: &str) -> Vec<String> {
        let names = secret_files(&self.repo).unwrap_or_default();
        crate::error::nearest(name, names.into_iter().map(|(n, _, _)| n))
    }
}

/// Every secret file under `secrets/`, by the name and format its path gives
/// (files of no secret format left out), sorted by name.
pub fn secret_files(repo: &Repo) -> Result<Vec<(String, Format, PathBuf)>> {
    let dir = repo.secrets_dir();
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in walkdir::WalkDir::new(&dir).min_depth(1) {
        let entry = entry.map_err(|e| {
            Error::io(
                e.path().unwrap_or(&dir).to_path_buf(),
                e.into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk failed")),
            )
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = repo.rel(entry.path());
        if let Some((name, format)) = format::secret_of_path(&rel) {
            out.push((name.to_string(), format, entry.into_path()));
        }
    }
    out.sort();
    Ok(out)
}

/// `secrets/keys.lock`, open, to find and replace one line of it without reading the
/// rest (`lockfile::locate`, `fsutil::stage_splice`).
pub struct LockOnDisk {
    path: PathBuf,
    file: File,
    len: u64,
    /// Where the lock a write replaces is kept, for the next write to reuse.
    spare: Option<PathBuf>,
    /// The windows read so far, by offset: the lookups of one command (a name, its
    /// parent directories, what lies below it) search the same file and read mostly
    /// the same windows.
    windows: RefCell<Vec<(u64, Vec<u8>)>>,
}

impl LockOnDisk {
    /// The lock of `repo`, open; `None` when there is none.
    fn open(repo: &Repo) -> Result<Option<LockOnDisk>> {
        let path = repo.lockfile();
        let Some(file) = fsutil::open_optional(&path)? else {
            return Ok(None);
        };
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        Ok(Some(LockOnDisk {
            path,
            file,
            len,
            spare: repo.lock_spare(),
            windows: RefCell::default(),
        }))
    }

    /// The line beside `spot`: the one it replaces or goes before, else (at the end
    /// of the file) the last one. `None` when a window does not hold it whole.
    fn line_beside(&self, spot: &Spot) -> Option<String> {
        let look = lockfile::LOOK;
        let before = spot.found.is_none();
        let from = if before {
            spot.range.start.saturating_sub(look)
        } else {
            spot.range.start
        };
        let upto = if before {
            spot.range.start
        } else {
            (spot.range.start + look).min(self.len)
        };
        let mut buf = vec![0; usize::try_from(upto - from).ok()?];
        self.file.read_exact_at(&mut buf, from).ok()?;
        let text = std::str::from_utf8(&buf).ok()?;
        let line = if before {
            text.strip_suffix('\n')?.rsplit('\n').next()?
        } else {
            text.split_once('\n')?.0
        };
        // A window that starts inside the line it ends with has no whole line.
        (!before || from == 0 || text.len() > line.len() + 1).then(|| line.to_string())
    }
    /// Where `name`'s line is or goes; `None` when the lock must be read whole to tell.
    pub fn spot(&self, name: &str) -> Result<Option<Spot>> {
        let mut read_at = |offset: u64, buf: &mut [u8]| -> std::io::Result<usize> {
            let mut windows = self.windows.borrow_mut();
            let end = offset + buf.len() as u64;
            if let Some((at, held)) = windows
                .iter()
                .find(|(at, held)| *at <= offset && end <= at + held.len() as u64)
            {
                let from = usize::try_from(offset - at).unwrap_or(0);
                buf.copy_from_slice(&held[from..from + buf.len()]);
                return Ok(buf.len());
            }
            let n = self.file.read_at(buf, offset)?;
            windows.push((offset, buf[..n].to_vec()));
            Ok(n)
        };
        lockfile::locate(&mut read_at, self.len, name).map_err(|e| Error::io(&self.path, e))
    }

    /// The text at `spot` (from `spot`): the line of the name looked up, where the
    /// lock has one.
    pub fn text_at(&self, spot: &Spot) -> Result<String> {
        let len = usize::try_from(spot.range.end - spot.range.start).unwrap_or(0);
        let mut buf = vec![0; len];
        self.file
            .read_exact_at(&mut buf, spot.range.start)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Stages the lock with `spot` (from `spot`) replaced by `line`, beside it.
    pub fn stage(&self, spot: &Spot, line: &str) -> Result<fsutil::Spliced> {
        fsutil::stage_splice(
            &self.path,
            self.splice(spot, line),
            fsutil::PUBLIC,
            self.spare.as_deref(),
        )
    }

    fn splice<'a>(&'a self, spot: &Spot, line: &'a str) -> fsutil::Splice<'a> {
        fsutil::Splice {
            from: &self.file,
            len: self.len,
            cut: spot.range.clone(),
            insert: line.as_bytes(),
        }
    }

    /// The secret in the lock that `name` would nest with (one is the other's
    /// directory); `None` when the lock must be read whole to tell.
    pub fn nesting(&self, name: &str) -> Result<Option<Option<String>>> {
        let mut prefix = String::new();
        let segments: Vec<&str> = name.split('/').collect();
        for segment in &segments[..segments.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(segment);
            match self.spot(&prefix)? {
                None => return Ok(None),
                Some(spot) if spot.is_entry(&prefix) => return Ok(Some(Some(prefix))),
                Some(_) => {}
            }
        }
        let below = format!("{name}/");
        Ok(self
            .spot(&below)?
            .map(|spot| spot.found.filter(|found| found.starts_with(&below))))
    }
}

/// A copy of the lock with one secret's line, staged before the policy is read: the
/// line is guessed from the one beside it (`lockfile::likely_line`), and a thread
/// finds its spot and copies the lock while keys reads the policy and seals the
/// value, and the disk writes the copy meanwhile. The secret's write takes it when
/// its line has the guessed length, writing the line over the guess
/// (`Spliced::rewrite_inserted`), and stages the copy again otherwise. The writer
/// lock is held from before it is staged until the copy is done, so neither the lock
/// nor the spare can change under it.
pub struct LockAhead {
    name: String,
    /// The open lock, the spot of the secret's line and the guessed line's length,
    /// sent by the thread once it has found them (before it copies).
    found: std::sync::mpsc::Receiver<(LockOnDisk, Spot, usize)>,
    copying: Copying,
}

impl LockAhead {
    /// Stages the copy for `name` over the lock's spare, on a thread; it gives up
    /// whenever that cannot be done cheaply and surely (no lock, a lock the windows
    /// cannot search, no line beside, no spare to reuse), or fails: the write then
    /// stages the lock itself, as it would have, and reports errors. Only the spare,
    /// out of the work tree, is written before the command knows it will write: a
    /// command refused, or stopped at a prompt, leaves nothing behind.
    fn stage(repo: &Repo, name: &str) -> Option<LockAhead> {
        check_name(name).ok()?;
        let (tell, found) = std::sync::mpsc::sync_channel(1);
        let (repo, secret) = (repo.clone(), name.to_string());
        let copying = std::thread::Builder::new()
            .name("keys-lock-copy".into())
            .spawn(move || {
                let disk = LockOnDisk::open(&repo).ok()??;
                let spare = disk.spare.clone()?;
                let spot = disk.spot(&secret).ok()??;
                let line = lockfile::likely_line(&secret, &disk.line_beside(&spot)?)?;
                let (path, from, len, cut) = (
                    disk.path.clone(),
                    disk.file.try_clone().ok()?,
                    disk.len,
                    spot.range.clone(),
                );
                tell.send((disk, spot, line.len())).ok()?;
                let splice = fsutil::Splice {
                    from: &from,
                    len,
                    cut,
                    insert: line.as_bytes(),
                };
                splice.over_spare(&path, &spare, fsutil::PUBLIC)
            })
            .ok()?;
        Some(LockAhead {
            name: name.to_string(),
            found,
            copying: Copying(Some(copying)),
        })
    }

    /// The open lock, the spot of the secret's line, and the copy being staged there
    /// for a line of the returned length: the copy is not waited for here, so that it
    /// goes on while the value is sealed (`Copying::join`). `None` when the thread
    /// gave up before it found the spot.
    pub fn into_parts(self) -> Option<(LockOnDisk, Spot, Copying, usize)> {
        let (disk, spot, line_len) = self.found.recv().ok()?;
        Some((disk, spot, self.copying, line_len))
    }
}

/// The thread copying the lock ahead, waited for when dropped: the spare is never
/// left being written once the writer lock is let go, nor written by anything else
/// while it is being copied.
pub struct Copying(Option<std::thread::JoinHandle<Option<fsutil::Spliced>>>);

impl Copying {
    /// The copy, once the thread is done (`None` if it could not be made).
    pub fn join(mut self) -> Option<fsutil::Spliced> {
        self.wait()
    }

    fn wait(&mut self) -> Option<fsutil::Spliced> {
        self.0.take()?.join().ok().flatten()
    }
}

impl Drop for Copying {
    fn drop(&mut self) {
        self.wait();
    }
}

pub(crate) fn read_lockfile(repo: &Repo) -> Result<LockfileText> {
    match fsutil::read_optional(&repo.lockfile())? {
        Some(data) => Ok(LockfileText::new(String::from_utf8(data).map_err(
            |_| Error::InvalidFile {
                at: Location::named(layout::LOCKFILE),
                reason: "not UTF-8 text".into(),
            },
        )?)),
        None => Ok(LockfileText::new(String::new())),
    }
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    layout::check_secret_name(name).map_err(|reason| Error::InvalidName {
        at: Location::named("secret name"),
        name: name.to_string(),
        reason,
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
        std::fs::write(dir.path().join(layout::WRITER), "999999999\n").unwrap();
        let held = File::open(dir.path().join(layout::WRITER)).unwrap();
        flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();
        let Err(Error::Busy { pid, .. }) = WriterLock::acquire(&repo) else {
            panic!("not refused");
        };
        assert_eq!(pid, std::process::id().to_string());
        // Unlocked, not only closed: a child another test forks meanwhile may hold
        // the descriptor until its exec.
        flock(&held, FlockOperation::Unlock).unwrap();
        drop(held);
        let lock = WriterLock::acquire(&repo).unwrap();
        drop(lock);
        std::fs::hard_link(dir.path().join(layout::WRITER), dir.path().join("other")).unwrap();
        let err = WriterLock::acquire(&repo).err().unwrap().to_string();
        assert!(err.contains("hard link"), "{err}");
    }
}
