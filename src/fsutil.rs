//! Safe file writes: every file is written to a temp file beside its target, created
//! with its final mode, synced, then renamed over the target, so a crash leaves either
//! the old file or the new one and a symlink at the target is replaced, never followed.
//! Below a repository root (`confine`), nothing is read, written or removed through a
//! symbolic link: every directory on the way is checked right before each operation
//! (a pass of reads over many files, `Reads`, checks each directory before its first).

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::{self, File, Permissions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};

mod batch;
mod room;

pub use batch::{
    Backup, Splice, Spliced, Staged, check_dirs, commit, names_file, stage, stage_kept,
    stage_splice, write_and_remove, write_batch, write_batch_with, write_many,
};
pub use room::{FileRoom, close_all, widen_file_table};

/// The repository roots this process works in (see `confine`).
static ROOTS: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Confines every read, write and removal below `root` that goes through this module:
/// a symbolic link at any component between `root` and the file is refused
/// (`Error::Symlink`), and a file read is never itself a link. `root` may be reached
/// through a link (a user's checkout path); only what is below it is checked.
pub fn confine(root: &Path) {
    let mut roots = ROOTS.write().unwrap_or_else(PoisonError::into_inner);
    if !roots.iter().any(|r| r == root) {
        roots.push(root.to_path_buf());
    }
}

/// The confined root `path` lies below (the deepest, should roots nest) and the rest
/// of `path`, or `None` for a path outside every repository.
fn confined(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let roots = ROOTS.read().unwrap_or_else(PoisonError::into_inner);
    roots
        .iter()
        .filter_map(|root| Some((root, path.strip_prefix(root).ok()?)))
        .max_by_key(|(root, _)| root.as_os_str().len())
        .map(|(root, rel)| (root.clone(), rel.to_path_buf()))
}

/// How far along a path symbolic links are refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upto {
    /// The directories above the last component (which is opened without following
    /// a link, or replaced by a rename).
    Parent,
    /// Every component, the last one too.
    Last,
}

/// Refuses `rel` below `root` when a component of it is a symbolic link, the last
/// one included. A component that does not exist ends the walk (nothing below it
/// can be reached through a link).
pub fn refuse_links(root: &Path, rel: &Path) -> Result<()> {
    refuse_links_upto(root, rel, Upto::Last)
}

fn refuse_links_upto(root: &Path, rel: &Path, upto: Upto) -> Result<()> {
    let parts: Vec<Component> = rel.components().collect();
    let checked = match upto {
        Upto::Last => parts.len(),
        Upto::Parent => parts.len().saturating_sub(1),
    };
    let mut here = root.to_path_buf();
    let mut shown = PathBuf::new();
    for part in &parts[..checked] {
        match part {
            Component::Normal(name) => {
                here.push(name);
                shown.push(name);
            }
            Component::CurDir => continue,
            _ => {
                return Err(Error::io(
                    root.join(rel),
                    std::io::Error::other("leaves the repository; keys does not go there"),
                ));
            }
        }
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Symlink { path: shown });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&here, e)),
        }
    }
    Ok(())
}

/// `refuse_links` (up to `upto`) for a path below a confined root; nothing for any
/// other path.
fn check_way(path: &Path, upto: Upto) -> Result<()> {
    match confined(path) {
        Some((root, rel)) => refuse_links_upto(&root, &rel, upto),
        None => Ok(()),
    }
}

/// The error for `path`, found to be a symbolic link where it was opened.
fn link_error(path: &Path) -> Error {
    let shown = confined(path).map_or_else(|| path.to_path_buf(), |(_, rel)| rel);
    Error::Symlink { path: shown }
}

/// The name prefix of temp files, so leftovers of a killed run can be recognised.
/// The full name is `.keys-tmp-<pid>-…`, and `.keys-tmp-<pid>-plain-…` for plaintext,
/// so that the next run can tell whose it was and whether that process is gone.
pub const TEMP_PREFIX: &str = ".keys-tmp-";
/// Marks a temp file that holds plaintext (`decrypt -o`).
const PLAIN_MARK: &str = "plain-";

/// The most a private key, identity, key file or passphrase source may hold: far
/// more than any key, and little enough that `-i /dev/zero` is refused at once.
pub const MAX_KEY_FILE: usize = 1 << 20;

/// Mode of files that hold secrets or private keys.
pub const PRIVATE: u32 = 0o600;
/// Mode of public files (recipients, policies, ciphertext).
pub const PUBLIC: u32 = 0o644;

/// Replaces (or creates) `path` with `data`, atomically, with the given mode.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    check_way(path, Upto::Parent)?;
    staged(path, data, mode)?
        .persist(path)
        .map_err(|e| Error::io(path, e.error))?;
    sync_dir(parent_of(path))
}

/// `write_atomic` for contents that `write` writes piece by piece (through a buffer,
/// to the temp file), so that a large file is never held whole in memory.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    check_way(path, Upto::Parent)?;
    let mut tmp = unsynced(path, &[], mode)?;
    let mut out = std::io::BufWriter::new(tmp.as_file_mut());
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(path, e))?;
    drop(out);
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(parent_of(path))
}

/// `write_atomic` for plaintext (mode 0600): the temp file beside `path` is named
/// `.keys-tmp-<pid>-plain-…`, so that if this process is killed before the rename,
/// the next `decrypt -o` into the same directory wipes it (`sweep_plain`) and
/// `keys check` reports it.
pub fn write_plaintext(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = unsynced_as(path, data, PRIVATE, &temp_prefix(true))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(parent_of(path))
}

/// The prefix of this process's temp files.
fn temp_prefix(plain: bool) -> String {
    format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        if plain { PLAIN_MARK } else { "" }
    )
}

/// A temp file name as this module makes them: the pid of the process that made it,
/// and whether it holds plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TempName {
    pub pid: u32,
    pub plain: bool,
}

impl TempName {
    /// `Some` for `.keys-tmp-<pid>-…`; `None` for any other name.
    pub fn parse(name: &str) -> Option<TempName> {
        let rest = name.strip_prefix(TEMP_PREFIX)?;
        let (pid, rest) = rest.split_once('-')?;
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(TempName {
            pid: pid.parse().ok()?,
            plain: rest.starts_with(PLAIN_MARK),
        })
    }
}

/// Whether process `pid` may still be running. Only a definite "no such process"
/// counts as gone: a process of another user, or one this process may not signal,
/// is taken to be alive, so nothing of a live process is ever removed.
pub fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true;
    };
    !matches!(rustix::process::test_kill_process(pid), Err(Errno::SRCH))
}

/// Wipes the plaintext temp files (`.keys-tmp-<pid>-plain-…`) in `dir` whose process
/// is gone: each regular file of ours is zero-filled, then unlinked, never through a
/// symlink. Returns the files removed, with the pid that left each.
pub fn sweep_plain(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return removed;
    };
    let Ok(dir_fd) = rustix::fs::openat(
        rustix::fs::CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(temp) = name.to_str().and_then(TempName::parse) else {
            continue;
        };
        if !temp.plain || temp.pid == std::process::id() || pid_alive(temp.pid) {
            continue;
        }
        let Ok(c_name) = std::ffi::CString::new(name.as_encoded_bytes()) else {
            continue;
        };
        if wipe_file_at(dir_fd.as_fd(), &c_name) {
            removed.push((entry.path(), temp.pid));
        }
    }
    removed
}

/// Zero-fills and unlinks the regular file `name` of ours in `dir`; false (and
/// nothing removed) for anything else.
pub fn wipe_file_at(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    let ours =
        rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                && st.st_uid == rustix::process::geteuid().as_raw()
        });
    if !ours {
        return false;
    }
    zero_fill_at(dir, name);
    rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty()).is_ok()
}

/// Zeros written over files before they are unlinked.
static ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];

/// Overwrites the regular file `name` of ours in `dir` with zeros, through a descriptor
/// opened without following symlinks. A read-only file is made writable through its
/// descriptor first. Best effort.
pub fn zero_fill_at(dir: BorrowedFd<'_>, name: &CStr) {
    let open = |flags: OFlags| {
        rustix::fs::openat(
            dir,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
    };
    let fd = match open(OFlags::WRONLY) {
        Ok(fd) => fd,
        Err(Errno::ACCESS) => {
            let Ok(ro) = open(OFlags::RDONLY) else { return };
            if rustix::fs::fchmod(&ro, Mode::from_raw_mode(0o600)).is_err() {
                return;
            }
            drop(ro);
            let Ok(fd) = open(OFlags::WRONLY) else { return };
            fd
        }
        Err(_) => return,
    };
    let Ok(st) = rustix::fs::fstat(&fd) else {
        return;
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != rustix::process::geteuid().as_raw()
    {
        return;
    }
    let mut file = File::from(fd);
    let mut left = u64::try_from(st.st_size).unwrap_or(0);
    while left > 0 {
        let n = usize::try_from(left).map_or(ZEROS.len(), |l| l.min(ZEROS.len()));
        if file.write_all(&ZEROS[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
    // On tmpfs this is a no-op; on disk it pushes the zeros out before the unlink lets
    // the file system drop the dirty pages.
    let _ = file.sync_data();
}

/// A private key, identity or passphrase as read, and the mode its file had.
pub struct Private {
    pub data: Zeroizing<Vec<u8>>,
    pub mode: u32,
}

/// Reads a private key, identity, key file or passphrase file: a regular file
/// (symlinks to one are followed) of at most `MAX_KEY_FILE` bytes. It is opened
/// without blocking and without becoming a controlling terminal, checked by `fstat`,
/// and read into one zeroized buffer sized from the file, so a FIFO with no writer
/// cannot hang, a device cannot fill memory, and no reallocation leaves a copy.
pub fn read_private(path: &Path) -> Result<Private> {
    let name = path.display().to_string();
    const WANTED: &str = "a regular file";
    // Refused by type before opening: opening some devices does something.
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let kind = FileType::from_raw_mode(meta.mode() as rustix::fs::RawMode);
    if kind != FileType::RegularFile {
        return Err(not_a_file(&name, kind_name(kind), WANTED));
    }
    let fd = open_nonblocking(path)?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(path, e.into()))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(not_a_file(&name, kind_name(kind), WANTED));
    }
    let size = usize::try_from(st.st_size).unwrap_or(usize::MAX);
    if size > MAX_KEY_FILE {
        return Err(too_large(&name));
    }
    // One byte more than the file holds, so growth is seen without reallocating.
    let mut buf = Zeroizing::new(vec![0u8; size + 1]);
    let filled = read_into(&mut File::from(fd), &mut buf, false, &name)?;
    if filled > size {
        return Err(Error::InvalidFile {
            at: Location::named(&name),
            reason: "grew while being read".into(),
        });
    }
    buf.truncate(filled);
    Ok(Private {
        data: buf,
        mode: st.st_mode & 0o7777,
    })
}

/// Reads the first line (without its line ending) from file descriptor `fd`, which
/// must be a pipe or a regular file: a terminal or another device is refused. Reading
/// stops at the first newline, so a writer that keeps its end open does not hang it;
/// more than `MAX_KEY_FILE` bytes without one is refused. `name` names the
/// descriptor in errors.
pub fn read_fd_line(fd: u32, name: &str) -> Result<Zeroizing<Vec<u8>>> {
    const WANTED: &str = "a pipe or a regular file";
    let path = PathBuf::from(format!("/dev/fd/{fd}"));
    let opened = open_nonblocking(&path).map_err(|e| match e {
        Error::Io { source, .. } => Error::io(name, source),
        e => e,
    })?;
    let st = rustix::fs::fstat(&opened).map_err(|e| Error::io(name, e.into()))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    match kind {
        FileType::RegularFile => {}
        // A pipe is read blocking, as it is meant to be: the writer may be slow.
        FileType::Fifo => {
            let flags = rustix::fs::fcntl_getfl(&opened).map_err(|e| Error::io(name, e.into()))?;
            rustix::fs::fcntl_setfl(&opened, flags - OFlags::NONBLOCK)
                .map_err(|e| Error::io(name, e.into()))?;
        }
        other => return Err(not_a_file(name, kind_name(other), WANTED)),
    }
    let mut buf = Zeroizing::new(vec![0u8; MAX_KEY_FILE + 1]);
    let filled = read_into(&mut File::from(opened), &mut buf, true, name)?;
    let line_end = buf[..filled].iter().position(|&b| b == b'\n');
    let end = match line_end {
        Some(end) => end,
        None if filled > MAX_KEY_FILE => return Err(too_large(name)),
        None => filled,
    };
    let end = if end > 0 && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    buf.truncate(end);
    Ok(buf)
}

fn open_nonblocking(path: &Path) -> Result<rustix::fd::OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(path, e.into()))
}

/// Fills `buf` from `file` until it is full or the input ends (or, with
/// `stop_at_newline`, a newline arrives); returns how many bytes were read.
fn read_into(file: &mut File, buf: &mut [u8], stop_at_newline: bool, name: &str) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if stop_at_newline && buf[filled - n..filled].contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(name, e)),
        }
    }
    Ok(filled)
}

/// What a path is when it exists and is not a regular file, not following a final
/// symlink ("a FIFO", "a symbolic link", …): an output path that would be replaced by
/// a file rather than written to where the user meant.
pub fn special_output(path: &Path) -> Option<&'static str> {
    let meta = fs::symlink_metadata(path).ok()?;
    let kind = FileType::from_raw_mode(meta.mode() as rustix::fs::RawMode);
    (kind != FileType::RegularFile).then(|| kind_name(kind))
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        _ => "not a file",
    }
}

fn not_a_file(name: &str, what: &'static str, wanted: &'static str) -> Error {
    Error::NotAFile {
        name: name.to_string(),
        what,
        wanted,
    }
}

fn too_large(name: &str) -> Error {
    Error::InvalidFile {
        at: Location::named(name),
        reason: format!(
            "more than {} KiB: not a key or passphrase file",
            MAX_KEY_FILE >> 10
        ),
    }
}

/// Removes temp files a killed run left under `dir` (never following symlinks).
pub fn remove_leftovers(dir: &Path) -> Result<usize> {
    check_way(dir, Upto::Last)?;
    let mut removed = 0;
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_file()
            && entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Creates `path` with `data` only if nothing is there yet (no symlink followed).
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    check_way(path, Upto::Parent)?;
    let exists = || Error::Exists {
        path: path.to_path_buf(),
    };
    if fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    staged(path, data, mode)?
        .persist_noclobber(path)
        .map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => exists(),
            _ => Error::io(path, e.error),
        })?;
    sync_dir(parent_of(path))
}

/// A synced temp file beside `path`, created with its final mode, holding `data`.
fn staged(path: &Path, data: &[u8], mode: u32) -> Result<tempfile::NamedTempFile> {
    let tmp = unsynced(path, data, mode)?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    Ok(tmp)
}

/// A temp file beside `path`, created with its final mode, holding `data` (not synced).
fn unsynced(path: &Path, data: &[u8], mode: u32) -> Result<tempfile::NamedTempFile> {
    unsynced_as(path, data, mode, &temp_prefix(false))
}

fn unsynced_as(
    path: &Path,
    data: &[u8],
    mode: u32,
    prefix: &str,
) -> Result<tempfile::NamedTempFile> {
    let dir = parent_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(data).map_err(|e| Error::io(path, e))?;
    Ok(tmp)
}

/// Creates a directory (and its parents) with the given mode for the ones it creates;
/// below a confined root, never through a symlink (see `create_dirs_within`).
pub fn create_dir_all(path: &Path, mode: u32) -> Result<()> {
    if let Some((root, rel)) = confined(path) {
        return create_dirs_within(&root, &rel, mode);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io(path, e))
}

/// Creates `root/rel` and the directories between, refusing to pass through a symlink
/// or a non-directory at any step (so a write below it cannot land elsewhere).
pub fn create_dirs_within(root: &Path, rel: &Path, mode: u32) -> Result<()> {
    let mut dir = root.to_path_buf();
    for part in rel.components() {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Symlink {
                    path: dir.strip_prefix(root).unwrap_or(&dir).to_path_buf(),
                });
            }
            Ok(_) => {
                return Err(Error::io(
                    &dir,
                    std::io::Error::other("is not a directory; keys does not write through it"),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match fs::DirBuilder::new().mode(mode).create(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io(&dir, e)),
                }
                if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                    return Err(Error::io(
                        &dir,
                        std::io::Error::other("changed while creating it"),
                    ));
                }
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Ok(())
}

/// Removes a file (a symlink there is removed, not followed) and syncs its directory.
pub fn remove(path: &Path) -> Result<()> {
    check_way(path, Upto::Parent)?;
    fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    sync_dir(parent_of(path))
}

/// Reads a file, naming it in the error. Below a confined root the file must be a
/// regular file reached without any symlink (a FIFO there is refused, not waited on).
pub fn read(path: &Path) -> Result<Vec<u8>> {
    if confined(path).is_none() {
        return fs::read(path).map_err(|e| Error::io(path, e));
    }
    check_way(path, Upto::Parent)?;
    read_regular(path)
}

/// Reads `path` if it is a regular file, itself no symlink (a FIFO or a device is
/// refused, not waited on); the directories above it are the caller's to have checked.
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    read_regular_open(path).map(|(data, _, _)| data)
}

/// `read_regular`, with the file's mode (permission bits), and the file still open.
fn read_regular_open(path: &Path) -> Result<(Vec<u8>, u32, File)> {
    let (mut file, meta) = open_regular(path)?;
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // Read through `take`, whose reading does not ask the kernel the size and
    // position again: the buffer is sized by the metadata just read.
    Read::take(&mut file, u64::MAX)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    Ok((data, meta.permissions().mode() & 0o7777, file))
}

/// Opens `path` for reading if it is a regular file, itself no symlink (a FIFO or a
/// device is refused, not waited on), with its metadata.
fn open_regular(path: &Path) -> Result<(File, fs::Metadata)> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = File::options()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => link_error(path),
            _ => Error::io(path, e),
        })?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::other("is not a regular file; keys reads only regular files here"),
        ));
    }
    Ok((file, meta))
}

/// Opens `path` for reading as `read` would read it (never through a symbolic
/// link, a regular file only), to read parts of it; `None` if there is no file.
pub fn open_optional(path: &Path) -> Result<Option<File>> {
    if confined(path).is_some() {
        check_way(path, Upto::Parent)?;
    }
    match open_regular(path) {
        Ok((file, _)) => Ok(Some(file)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads many files as `read` and `read_optional` do (from several threads
/// at once), checking the way to each directory for symbolic links once, before its
/// first file is read, rather than before each file: what one pass over a directory
/// of files repeats. A directory whose check fails is checked again for each file.
#[derive(Default)]
pub struct Reads {
    /// The directories whose way was checked, and whether they are below a
    /// confined root.
    checked: Mutex<HashMap<PathBuf, bool>>,
}

impl Reads {
    /// Whether `path` is below a confined root, the way to its directory checked.
    fn way(&self, path: &Path) -> Result<bool> {
        let dir = parent_of(path);
        let known = |checked: &Mutex<HashMap<PathBuf, bool>>| {
            checked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(dir)
                .copied()
        };
        if let Some(below) = known(&self.checked) {
            return Ok(below);
        }
        let below = confined(path).is_some();
        if below {
            check_way(path, Upto::Parent)?;
        }
        self.checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dir.to_path_buf(), below);
        Ok(below)
    }

    /// `read`.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>> {
        if self.way(path)? {
            read_regular(path)
        } else {
            fs::read(path).map_err(|e| Error::io(path, e))
        }
    }

    /// The file at `path` if there is one, read as `read` reads it, with its mode
    /// (permission bits), and the file still open.
    pub fn read_optional_open(&self, path: &Path) -> Result<Option<(Vec<u8>, u32, File)>> {
        match self.way(path).and_then(|_| read_regular_open(path)) {
            Ok(read) => Ok(Some(read)),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// `read`, with `None` for a file that does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match read(path) {
        Ok(data) => Ok(Some(data)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A file staged and kept open is told from any other put in its place: a copy
    /// of the same bytes, a symlink to it, or nothing.
    #[test]
    fn a_committed_file_kept_open_is_known_by_its_inode_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, b"old").unwrap();
        let room = FileRoom::for_up_to(1);
        let staged = stage_kept(&target, b"new bytes", PUBLIC, &room).unwrap();
        let kept = commit(vec![staged]).unwrap().pop().unwrap().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new bytes");
        assert!(names_file(&target, &kept, 9).unwrap());
        assert!(!names_file(&target, &kept, 8).unwrap());

        let copy = dir.path().join("copy");
        std::fs::copy(&target, &copy).unwrap();
        std::fs::rename(&copy, &target).unwrap();
        assert!(!names_file(&target, &kept, 9).unwrap());

        let elsewhere = dir.path().join("elsewhere");
        std::fs::rename(&target, &elsewhere).unwrap();
        assert!(names_file(&elsewhere, &kept, 9).is_ok());
        symlink(&elsewhere, &target).unwrap();
        assert!(!names_file(&target, &kept, 9).unwrap());
        std::fs::remove_file(&target).unwrap();
        assert!(names_file(&target, &kept, 9).is_err());
    }

    /// Without room the temp file is closed, and nothing is handed back.
    #[test]
    fn a_file_staged_without_room_is_committed_closed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        let staged = stage_kept(&target, b"x", PUBLIC, &FileRoom::for_up_to(0)).unwrap();
        assert!(commit(vec![staged]).unwrap()[0].is_none());
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
    }

    #[test]
    fn temp_names_carry_the_pid_and_whether_they_hold_plaintext() {
        for (name, want) in [
            (".keys-tmp-123-AbCdEf", Some((123, false))),
            (".keys-tmp-123-plain-AbCdEf", Some((123, true))),
            (".keys-tmp-9-0-keys.lock", Some((9, false))),
            (".keys-tmp-AbCdEf", None),
            (".keys-tmp--plain-x", None),
            ("keys-tmp-1-plain-x", None),
            ("secret.age", None),
        ] {
            let got = TempName::parse(name).map(|t| (t.pid, t.plain));
            assert_eq!(got, want, "{name}");
        }
        let mine = temp_prefix(true);
        let parsed = TempName::parse(&format!("{mine}XYZ")).unwrap();
        assert_eq!((parsed.pid, parsed.plain), (std::process::id(), true));
    }

    #[test]
    fn a_plaintext_write_leaves_no_temp_and_what_a_dead_process_left_is_wiped() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        write_plaintext(&out, b"plain").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"plain");
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let left = dir.path().join(format!(".keys-tmp-{dead}-plain-AbCdEf"));
        let ciphertext = dir.path().join(format!(".keys-tmp-{dead}-AbCdEf"));
        let live = dir
            .path()
            .join(format!(".keys-tmp-{}-plain-AbCdEf", std::process::id()));
        for f in [&left, &ciphertext, &live] {
            fs::write(f, b"secret").unwrap();
        }
        let held = File::open(&left).unwrap();
        assert_eq!(sweep_plain(dir.path()), [(left.clone(), dead)]);
        assert!(!left.exists());
        let mut seen = Vec::new();
        (&held).read_to_end(&mut seen).unwrap();
        assert_eq!(seen, [0u8; 6], "zero-filled before removal");
        assert!(ciphertext.exists() && live.exists());
    }

    #[test]
    fn private_sources_are_regular_files_of_at_most_a_mebibyte() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        fs::write(&key, b"AGE-SECRET-KEY-1\n").unwrap();
        fs::set_permissions(&key, Permissions::from_mode(0o640)).unwrap();
        let read = read_private(&key).unwrap();
        assert_eq!(&read.data[..], b"AGE-SECRET-KEY-1\n");
        assert_eq!(read.mode, 0o640);

        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let refused = |path: &Path| read_private(path).err().unwrap().to_string();
        assert_eq!(
            refused(&fifo),
            format!("{}: is a FIFO, not a regular file", fifo.display())
        );
        assert_eq!(
            refused(Path::new("/dev/zero")),
            "/dev/zero: is a character device, not a regular file"
        );
        assert_eq!(
            refused(dir.path()),
            format!(
                "{}: is a directory, not a regular file",
                dir.path().display()
            )
        );
        let big = dir.path().join("big");
        fs::write(&big, vec![b'x'; MAX_KEY_FILE + 1]).unwrap();
        assert!(refused(&big).ends_with("more than 1024 KiB: not a key or passphrase file"));
        fs::write(&big, vec![b'x'; MAX_KEY_FILE]).unwrap();
        assert_eq!(read_private(&big).unwrap().data.len(), MAX_KEY_FILE);

        // A descriptor: a pipe (its writer still open) or a file, never a device.
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"first line\r\nsecond\n").unwrap();
        let line = read_fd_line(reader.as_raw_fd() as u32, "fd").unwrap();
        assert_eq!(&line[..], b"first line");
        drop(writer);
        let file = File::open(&key).unwrap();
        let line = read_fd_line(file.as_raw_fd() as u32, "fd").unwrap();
        assert_eq!(&line[..], b"AGE-SECRET-KEY-1");
        let null = File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        assert_eq!(
            read_fd_line(fd as u32, &format!("fd {fd}"))
                .err()
                .unwrap()
                .to_string(),
            format!("fd {fd}: is a character device, not a pipe or a regular file")
        );
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces_symlink_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let target = dir.path().join("out");
        symlink(&victim, &target).unwrap();
        write_atomic(&target, b"secret", PRIVATE).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        let meta = fs::symlink_metadata(&target).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&target).unwrap(), b"secret");
    }

    #[test]
    fn batch_writes_every_file_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let a = dir.path().join("sub/a");
        let b = dir.path().join("b");
        fs::write(&b, b"old").unwrap();
        write_batch(&[(&a, b"one", PUBLIC), (&b, b"two", PRIVATE)]).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"one");
        assert_eq!(fs::read(&b).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let missing = dir.path().join("nowhere/c");
        assert!(write_batch(&[(&a, b"three", PUBLIC), (&missing, b"x", PUBLIC)]).is_err());
        assert_eq!(
            fs::read(&a).unwrap(),
            b"one",
            "nothing renamed when one fails"
        );
        assert_eq!(
            fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1,
            "no temp left"
        );
    }

    #[test]
    fn a_backup_puts_back_bytes_and_modes_and_removes_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        fs::write(&old, b"before").unwrap();
        fs::set_permissions(&old, Permissions::from_mode(0o600)).unwrap();
        let backup = Backup::read([old.as_path(), new.as_path()]);
        write_atomic(&old, b"after", PUBLIC).unwrap();
        write_atomic(&new, b"created", PUBLIC).unwrap();
        backup.restore();
        assert_eq!(fs::read(&old).unwrap(), b"before");
        assert_eq!(
            fs::metadata(&old).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!new.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
    }

    #[test]
    fn dirs_within_refuse_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        create_dirs_within(dir.path(), Path::new("secrets/bot"), 0o755).unwrap();
        assert!(dir.path().join("secrets/bot").is_dir());
        symlink(outside.path(), dir.path().join("secrets/evil")).unwrap();
        assert!(create_dirs_within(dir.path(), Path::new("secrets/evil/x"), 0o755).is_err());
        assert!(!outside.path().join("x").exists());
        fs::write(dir.path().join("secrets/file"), b"").unwrap();
        assert!(create_dirs_within(dir.path(), Path::new("secrets/file/x"), 0o755).is_err());
    }

    #[test]
    fn below_a_confined_root_nothing_goes_through_a_symlink() {
        let base = tempfile::tempdir().unwrap();
        let outside = base.path().join("outside");
        fs::create_dir_all(outside.join("bot")).unwrap();
        fs::write(outside.join("bot/x.age"), b"outside").unwrap();
        fs::write(outside.join(format!("{TEMP_PREFIX}old")), b"outside").unwrap();
        let real = base.path().join("real");
        fs::create_dir_all(real.join("secrets")).unwrap();
        // The root is reached through a link: that is allowed.
        let root = base.path().join("checkout");
        symlink(&real, &root).unwrap();
        confine(&root);
        symlink(outside.join("bot"), root.join("secrets/bot")).unwrap();
        symlink(&outside, root.join("linked")).unwrap();
        fs::write(root.join("secrets/plain"), b"inside").unwrap();
        symlink(outside.join("bot/x.age"), root.join("secrets/file-link")).unwrap();

        let through = root.join("secrets/bot/x.age");
        let is_link = |r: Result<()>, shown: &str| match r {
            Err(Error::Symlink { path }) => assert_eq!(path, Path::new(shown)),
            other => panic!("{shown}: {other:?}"),
        };
        is_link(write_atomic(&through, b"x", PUBLIC), "secrets/bot");
        is_link(
            write_new(&root.join("secrets/bot/new"), b"x", PUBLIC),
            "secrets/bot",
        );
        is_link(
            write_batch(&[
                (&root.join("secrets/plain"), b"x", PUBLIC),
                (&through, b"x", PUBLIC),
            ]),
            "secrets/bot",
        );
        is_link(
            write_many(&[
                (root.join("secrets/plain"), b"x".to_vec(), PUBLIC),
                (through.clone(), b"x".to_vec(), PUBLIC),
            ]),
            "secrets/bot",
        );
        is_link(remove(&through), "secrets/bot");
        is_link(read(&through).map(drop), "secrets/bot");
        is_link(
            read(&root.join("secrets/file-link")).map(drop),
            "secrets/file-link",
        );
        is_link(create_dir_all(&root.join("linked/sub"), 0o755), "linked");
        is_link(remove_leftovers(&root.join("linked")).map(drop), "linked");
        let backup = Backup::link([through.as_path()]);
        backup.restore();
        drop(backup);
        let backup = Backup::read([through.as_path()]);
        backup.restore();

        assert_eq!(fs::read(outside.join("bot/x.age")).unwrap(), b"outside");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 2);
        assert_eq!(fs::read_dir(outside.join("bot")).unwrap().count(), 1);
        assert_eq!(fs::read(root.join("secrets/plain")).unwrap(), b"inside");
        // What is not reached through a link works as before.
        write_atomic(&root.join("secrets/plain"), b"new", PUBLIC).unwrap();
        assert_eq!(read(&root.join("secrets/plain")).unwrap(), b"new");
        assert_eq!(read_optional(&root.join("secrets/none")).unwrap(), None);
        // A symlink at the target of a write is replaced, not followed.
        write_atomic(&root.join("secrets/file-link"), b"replaced", PUBLIC).unwrap();
        assert_eq!(fs::read(outside.join("bot/x.age")).unwrap(), b"outside");
    }

    #[test]
    fn write_new_refuses_existing_files_and_dangling_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        write_new(&target, b"one", PUBLIC).unwrap();
        assert!(matches!(
            write_new(&target, b"two", PUBLIC),
            Err(Error::Exists { .. })
        ));
        let link = dir.path().join("link");
        symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(matches!(
            write_new(&link, b"x", PUBLIC),
            Err(Error::Exists { .. })
        ));
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(fs::read(&target).unwrap(), b"one");
    }
}
