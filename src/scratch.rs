//! A private RAM-backed directory for plaintext that must touch a file (edit, stage).
//!
//! `Scratch` is a fresh 0700 directory on tmpfs ($XDG_RUNTIME_DIR when it is the
//! user's own, else /dev/shm; on macOS, which has no tmpfs, the per-user $TMPDIR;
//! elsewhere disk only when the user allows it), named
//! `keys-<pid>-XXXXXX` so that what a killed run left is recognised and wiped by the
//! next one. Files are created and read through the directory's descriptor with
//! `O_NOFOLLOW`, and on drop everything inside is zero-filled and unlinked, whatever an
//! editor left there (renamed-over files, backups, swap files, subdirectories).

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, RawMode};
use rustix::io::Errno;
use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::fsutil;

/// `statfs` magic of tmpfs.
const TMPFS_MAGIC: u32 = 0x0102_1994;
/// `statfs` magic of ramfs.
const RAMFS_MAGIC: u32 = 0x8584_58f6;
/// How deep `Drop` descends into subdirectories an editor made.
const MAX_DEPTH: usize = 32;
/// Scratch directories are `keys-<pid>-XXXXXX`; kept ones `keys-kept-XXXXXX`.
const PREFIX: &str = "keys-";
const KEPT: &str = "kept-";

/// A fresh 0700 directory on tmpfs holding plaintext; removed (files zero-filled, then
/// unlinked) on drop.
pub struct Scratch {
    path: PathBuf,
    /// The directory itself, opened once: every later operation goes through it, so a
    /// path swapped underneath cannot redirect a write or a read.
    dir: OwnedFd,
    /// The directory it was made in and its name there, for `keep` to rename it (only
    /// for directories `create` made).
    base: Option<(OwnedFd, String)>,
    /// Set by `keep`: drop leaves the directory.
    kept: bool,
    /// What killed runs had left in the scratch bases, wiped before this was made.
    swept: Vec<Leftover>,
    /// Made on disk in the per-user temporary directory, for want of a tmpfs.
    in_user_temp: bool,
}

/// Whether plaintext may go to the per-user temporary directory, on disk, when no
/// tmpfs is usable: on macOS, which has none, and on no other system (Linux stays
/// tmpfs-only unless the user passes `--allow-disk-temp`). A constant of the build,
/// not a setting: nothing at run time turns it on.
const USER_TEMP_ON_DISK: bool = cfg!(target_os = "macos");

/// Where macOS keeps each user's temporary directory ($TMPDIR, `/var/folders/…/T`).
const DARWIN_USER_TEMP: [&str; 2] = ["/private/var/folders/", "/var/folders/"];

/// The per-user temporary directory `tmpdir` ($TMPDIR) resolved, or why it is not
/// one: only macOS's own, under /var/folders, so that a changed $TMPDIR cannot send
/// plaintext into a synced or shared folder.
fn user_temp_dir(tmpdir: &Path) -> std::result::Result<PathBuf, String> {
    let real = std::fs::canonicalize(tmpdir)
        .map_err(|e| format!("$TMPDIR {} cannot be read ({e})", tmpdir.display()))?;
    let text = real.to_string_lossy();
    if !DARWIN_USER_TEMP.iter().any(|p| text.starts_with(p)) {
        return Err(format!(
            "$TMPDIR {} is not the per-user temporary directory macOS makes (/var/folders/…/T)",
            tmpdir.display()
        ));
    }
    Ok(real)
}

/// Where a scratch directory may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// Only on tmpfs: plaintext never reaches a disk.
    Ram,
    /// On tmpfs when one is usable, else on disk (`--allow-disk-temp`).
    RamOrDisk,
}

/// A scratch directory a killed `keys` left behind: plaintext of an edit, or a staged
/// host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    pub pid: u32,
}

impl Scratch {
    /// Base: $XDG_RUNTIME_DIR if set, a directory of the user's own that nobody else
    /// may write to, and on tmpfs; else /dev/shm (root's sticky directory) if tmpfs.
    /// With neither, `Error::NoRuntimeDir` naming each directory and why; with
    /// `Medium::RamOrDisk`, falls back to `std::env::temp_dir()`. First wipes what killed runs left in these places
    /// (`swept`), then makes `keys-<pid>-XXXXXX` with a fresh name (mkdir fails on an
    /// existing one) and mode 0700 through the base's descriptor, and checks its owner
    /// and mode on the opened directory.
    pub fn create(medium: Medium) -> Result<Scratch> {
        let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
        let candidates = bases();
        let disk = std::env::temp_dir();
        let swept = sweep(candidates.iter().chain([&disk]).map(PathBuf::as_path));
        let user_temp = USER_TEMP_ON_DISK.then(|| user_temp_dir(&disk));
        let mut scratch =
            create_in(&candidates, medium, &disk, user_temp).map_err(|e| match e {
                Error::NoRuntimeDir { refused, disk, .. } => Error::NoRuntimeDir {
                    refused,
                    runtime_dir_set: xdg.is_some(),
                    disk,
                },
                e => e,
            })?;
        scratch.swept = swept;
        Ok(scratch)
    }

    /// Scratch directories of killed runs that `create` wiped before making this one.
    pub fn swept(&self) -> &[Leftover] {
        &self.swept
    }

    /// Whether it is on disk, in the per-user temporary directory, because the system
    /// has no tmpfs (macOS): its files are zero-filled before removal all the same,
    /// and the caller says where plaintext goes.
    pub fn in_user_temp(&self) -> bool {
        self.in_user_temp
    }

    /// A new or empty directory at `path` with exactly `mode` (the staged tree of
    /// `stage-install --out`), owned by us, never a symlink. Its parent must be on tmpfs
    /// unless `Medium::RamOrDisk`, and not writable by others unless sticky. A
    /// non-empty directory is refused.
    pub fn create_at(path: &Path, mode: u32, medium: Medium) -> Result<Scratch> {
        let refuse = |reason: String| Error::UnsafeStagingDir {
            path: path.to_path_buf(),
            reason,
        };
        let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
            return Err(refuse("cannot hold a staged tree".into()));
        };
        if !plain_name(name) {
            return Err(refuse("is not a plain directory name".into()));
        }
        let parent_fd = rustix::fs::openat(
            CWD,
            parent,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(parent, e.into()))?;
        if medium == Medium::Ram {
            on_ram(&parent_fd).map_err(|reason| Error::NotOnTmpfs {
                path: parent.to_path_buf(),
                reason,
            })?;
        }
        let st = rustix::fs::fstat(&parent_fd).map_err(|e| Error::io(parent, e.into()))?;
        if st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0 {
            return Err(Error::UnsafeStagingDir {
                path: parent.to_path_buf(),
                reason: "is writable by others and not sticky".into(),
            });
        }
        let name = name.to_string_lossy();
        let dir = make_subdir(parent_fd.as_fd(), &name, mode).map_err(|e| refuse(e.to_string()))?;
        if !entries(dir.as_fd())
            .map_err(|e| Error::io(&absolute, e))?
            .is_empty()
        {
            return Err(refuse("is not empty".into()));
        }
        // Empty, so no data is exposed while the mode changes.
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode as RawMode))
            .map_err(|e| Error::io(&absolute, e.into()))?;
        Ok(Scratch {
            path: absolute,
            dir,
            base: None,
            kept: false,
            swept: Vec::new(),
            in_user_temp: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `dir/name` with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and `mode` given at
    /// open time, writes `data`, returns its path. `name` is a single plain file name
    /// (no '/', not '.' or '..'); anything else is a bug of the caller. An existing entry of
    /// that name (a symlink included) is `Error::Exists`.
    pub fn create_file(&self, name: &str, data: &[u8], mode: u32) -> Result<PathBuf> {
        if !plain_name(OsStr::new(name)) {
            return Err(bug(format!("{name:?} is not a plain file name")));
        }
        let path = self.path.join(name);
        create_file_in(self.dir.as_fd(), name, &path, data, mode)?;
        Ok(path)
    }

    /// Creates the file at `rel` (plain names joined by '/') with `mode`, creating the
    /// directories on the way with mode 0755, every step through the parent's
    /// descriptor with `O_NOFOLLOW`: a symlink anywhere on the path is refused.
    pub fn create_path(&self, rel: &str, data: &[u8], mode: u32) -> Result<PathBuf> {
        let segments: Vec<&str> = rel.split('/').collect();
        if segments.iter().any(|s| !plain_name(OsStr::new(s))) {
            return Err(bug(format!(
                "{rel:?} is not a relative path of plain names"
            )));
        }
        let (file, dirs) = segments.split_last().unwrap_or((&"", &[]));
        let mut path = self.path.clone();
        let mut held: Option<OwnedFd> = None;
        for dir in dirs {
            path.push(dir);
            let parent = held.as_ref().map_or(self.dir.as_fd(), AsFd::as_fd);
            let sub = make_subdir(parent, dir, 0o755).map_err(|e| Error::io(&path, e))?;
            held = Some(sub);
        }
        path.push(file);
        let parent = held.as_ref().map_or(self.dir.as_fd(), AsFd::as_fd);
        create_file_in(parent, file, &path, data, mode)?;
        Ok(path)
    }

    /// Creates the subdirectory `name` with exactly `mode`.
    pub fn create_dir(&self, name: &str, mode: u32) -> Result<PathBuf> {
        let path = self.path.join(name);
        if !plain_name(OsStr::new(name)) {
            return Err(bug(format!("{name:?} is not a plain directory name")));
        }
        make_subdir(self.dir.as_fd(), name, mode).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// Keeps the directory and everything in it: it is no longer removed on drop,
    /// and a directory `create` made is renamed `keys-kept-XXXXXX` so that no later
    /// run takes it for the leftover of a killed one. Returns where it now is.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        if let Some((base, name)) = &self.base {
            let kept = name
                .rsplit_once('-')
                .map(|(_, random)| format!("{PREFIX}{KEPT}{random}"));
            if let Some(kept) = kept {
                let renamed = match rustix::fs::renameat_with(
                    base,
                    name.as_str(),
                    base,
                    kept.as_str(),
                    rustix::fs::RenameFlags::NOREPLACE,
                ) {
                    // A file system without RENAME_NOREPLACE: the name is random, and
                    // rename(2) replaces at most an empty directory.
                    Err(Errno::INVAL) => {
                        rustix::fs::renameat(base, name.as_str(), base, kept.as_str())
                    }
                    other => other,
                };
                if renamed.is_ok() {
                    self.path.set_file_name(kept);
                }
            }
        }
        self.path.clone()
    }

    /// Reads a file inside the scratch dir into zeroized memory, refusing symlinks
    /// (O_NOFOLLOW), anything but a regular file, and files over `max` bytes. `path` is
    /// one `create_file` returned (or any `self.path()/NAME`), or a bare `NAME`.
    pub fn read_file(&self, path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>> {
        let name = self.name_in(path)?;
        let invalid = |reason: String| Error::InvalidFile {
            at: Location::file(path),
            reason,
        };
        let fd = rustix::fs::openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP => invalid("is a symbolic link; keys does not follow it".into()),
            e => Error::io(path, e.into()),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(path, e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(invalid("is not a regular file".into()));
        }
        let size = u64::try_from(st.st_size).unwrap_or(0);
        if size > max {
            return Err(invalid(format!(
                "is {size} bytes, more than the limit of {max}"
            )));
        }
        let size = usize::try_from(size).map_err(|_| invalid("is too large".into()))?;
        // One byte more than the file should hold, so growth is seen without the buffer
        // ever reallocating (which would leave an unzeroed copy behind).
        let mut buf = Zeroizing::new(vec![0u8; size + 1]);
        let mut file = File::from(fd);
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        if filled > size {
            return Err(invalid("changed size while being read".into()));
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// The entry name `path` refers to, if it names a plain file in this directory.
    fn name_in<'a>(&self, path: &'a Path) -> Result<&'a OsStr> {
        let name = match path.parent() {
            Some(parent) if parent == self.path || parent.as_os_str().is_empty() => {
                path.file_name()
            }
            _ => None,
        };
        name.filter(|n| plain_name(n)).ok_or_else(|| {
            bug(format!(
                "{} is not a file in the scratch directory {}",
                path.display(),
                self.path.display()
            ))
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // An editor may have narrowed the directory's mode; unlinking needs rwx.
        let _ = rustix::fs::fchmod(&self.dir, Mode::from_raw_mode(0o700));
        purge(self.dir.as_fd(), 0);
        let _ = std::fs::remove_dir(&self.path);
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch").field("path", &self.path).finish()
    }
}

/// Zero-fills and removes the directory `path` and everything in it, never following a
/// symlink (a symlink at `path` itself is refused).
pub fn wipe(path: &Path) -> Result<()> {
    let dir = rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(path, e.into()))?;
    let _ = rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o700));
    purge(dir.as_fd(), 0);
    std::fs::remove_dir(path).map_err(|e| Error::io(path, e))
}

/// Where scratch directories go, in order of preference: $XDG_RUNTIME_DIR (if set),
/// then /dev/shm.
fn bases() -> Vec<PathBuf> {
    let mut bases = Vec::with_capacity(2);
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        bases.push(PathBuf::from(dir));
    }
    bases.push(PathBuf::from("/dev/shm"));
    bases
}

/// `Scratch::create` with its inputs made explicit: the first usable RAM-backed
/// directory of `candidates`, else the per-user temporary directory `user_temp` when
/// the system has no tmpfs (macOS: `Some`, resolved or refused), else
/// `disk_fallback` with `Medium::RamOrDisk`, else `Error::NoRuntimeDir` saying why
/// each candidate was refused.
fn create_in(
    candidates: &[PathBuf],
    medium: Medium,
    disk_fallback: &Path,
    user_temp: Option<std::result::Result<PathBuf, String>>,
) -> Result<Scratch> {
    let mut refused = Vec::with_capacity(candidates.len() + 1);
    for base in candidates {
        let made = open_base(base, Medium::Ram).and_then(|(fd, real)| {
            make_dir(&real, fd).map_err(|e| format!("cannot hold a private directory ({e})"))
        });
        match made {
            Ok(scratch) => return Ok(scratch),
            Err(why) => refused.push(format!("{} {why}", base.display())),
        }
    }
    match user_temp {
        Some(Ok(base)) => match open_user_temp(&base) {
            Ok(mut scratch) => {
                scratch.in_user_temp = true;
                return Ok(scratch);
            }
            Err(why) => refused.push(format!("{} {why}", base.display())),
        },
        Some(Err(why)) => refused.push(why),
        None => {}
    }
    if medium == Medium::RamOrDisk {
        let (fd, real) =
            open_base(disk_fallback, Medium::RamOrDisk).map_err(|reason| Error::UnsafeTempDir {
                path: disk_fallback.to_path_buf(),
                reason,
            })?;
        return make_dir(&real, fd).map_err(|e| Error::io(disk_fallback, e));
    }
    if refused.is_empty() {
        refused.push("no candidate directory".to_string());
    }
    Err(Error::NoRuntimeDir {
        refused,
        runtime_dir_set: true,
        disk: disk_fallback.to_path_buf(),
    })
}

/// A scratch directory in the per-user temporary directory: one that is the user's
/// own and that nobody else may even enter (macOS makes it 0700).
fn open_user_temp(base: &Path) -> std::result::Result<Scratch, String> {
    let (fd, real) = open_base(base, Medium::RamOrDisk)?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("cannot be examined ({e})"))?;
    if st.st_mode & 0o077 != 0 {
        return Err(format!(
            "is open to group or others (mode {:o}), not private to you",
            st.st_mode & 0o7777
        ));
    }
    make_dir(&real, fd).map_err(|e| format!("cannot hold a private directory ({e})"))
}

/// Something a caller of this module got wrong.
fn bug(what: String) -> Error {
    Error::Bug { what }
}

/// Opens `base` if it may hold plaintext, else says why not (for the message): an
/// absolute directory that only this user (or root, for a sticky directory such as
/// /dev/shm) can rename entries in, with no ancestor another user could swap it
/// through, and with `Medium::Ram` on tmpfs or ramfs. The checks are made on the opened
/// directory, which is the one the scratch directory is then made in; its path is
/// returned without symlinks, for the editor to open.
fn open_base(base: &Path, medium: Medium) -> Result<(OwnedFd, PathBuf), String> {
    if !base.is_absolute() {
        return Err("is not an absolute path".into());
    }
    let real = std::fs::canonicalize(base).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => "does not exist".to_string(),
        _ => format!("cannot be read ({e})"),
    })?;
    let fd = rustix::fs::openat(
        CWD,
        &real,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOTDIR => "is not a directory".to_string(),
        e => format!("cannot be opened ({})", io::Error::from(e)),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("cannot be examined ({e})"))?;
    let euid = rustix::process::geteuid().as_raw();
    safe_base(st.st_uid, st.st_mode, euid)?;
    for ancestor in real.ancestors().skip(1) {
        let meta = std::fs::symlink_metadata(ancestor)
            .map_err(|e| format!("cannot be examined ({}: {e})", ancestor.display()))?;
        safe_ancestor(meta.uid(), meta.mode(), euid)
            .map_err(|why| format!("lies in {}, which {why}", ancestor.display()))?;
    }
    if medium == Medium::Ram {
        on_ram(&fd)?;
    }
    Ok((fd, real))
}

/// Whether the opened directory is on tmpfs or ramfs; the `Err` says why not.
fn on_ram(dir: &OwnedFd) -> Result<(), String> {
    let fs = rustix::fs::fstatfs(dir).map_err(|e| format!("cannot be examined ({e})"))?;
    #[allow(clippy::unnecessary_cast)] // the width of f_type differs between platforms
    let magic = fs.f_type as u32;
    if magic != TMPFS_MAGIC && magic != RAMFS_MAGIC {
        return Err(format!("is not on tmpfs (file system type {magic:#x})"));
    }
    Ok(())
}

/// Whether a directory with owner `uid` and `mode` may hold scratch directories of
/// user `euid`: one of the user's own that nobody else can write to, or root's sticky
/// directory (/dev/shm, /tmp), where only the owner of an entry can rename it. A
/// directory of another user is refused even when its mode is private: its owner can
/// rename our directory away and put one of theirs at its path, which the editor opens.
fn safe_base(uid: u32, mode: u32, euid: u32) -> Result<(), String> {
    if uid == 0 && mode & 0o1000 != 0 {
        return Ok(());
    }
    if uid != euid {
        return Err(format!("is owned by uid {uid}, not by you (uid {euid})"));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "is writable by group or others (mode {:o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Whether a directory above a base is safe: owned by the user or root, and writable
/// by others only if sticky.
fn safe_ancestor(uid: u32, mode: u32, euid: u32) -> Result<(), String> {
    if uid != 0 && uid != euid {
        return Err(format!("is owned by uid {uid}"));
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err("is writable by others and not sticky".into());
    }
    Ok(())
}

/// Makes `keys-<pid>-XXXXXX` in the opened `base` with mode 0700, a fresh name each
/// try (mkdir fails on an existing entry, a symlink included), and checks on the
/// opened directory that it is ours and 0700.
fn make_dir(base_path: &Path, base: OwnedFd) -> io::Result<Scratch> {
    let pid = std::process::id();
    for _ in 0..64 {
        let random: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(6)
            .collect();
        let name = format!("{PREFIX}{pid}-{random}");
        match rustix::fs::mkdirat(&base, name.as_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
        let opened = rustix::fs::openat(
            &base,
            name.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
        .and_then(|dir| {
            private_dir(&dir)?;
            Ok(dir)
        });
        return match opened {
            Ok(dir) => Ok(Scratch {
                path: base_path.join(&name),
                dir,
                base: Some((base, name)),
                kept: false,
                swept: Vec::new(),
                in_user_temp: false,
            }),
            Err(e) => {
                let _ = rustix::fs::unlinkat(&base, name.as_str(), AtFlags::REMOVEDIR);
                Err(e)
            }
        };
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for a scratch directory",
    ))
}

/// Checks that a new, empty directory is owned by us with mode 0700; a umask that took
/// owner bits away is undone (the directory is still empty).
fn private_dir(dir: &OwnedFd) -> io::Result<()> {
    let euid = rustix::process::geteuid().as_raw();
    let mut st = rustix::fs::fstat(dir)?;
    if st.st_mode & 0o7777 != 0o700 && st.st_uid == euid {
        rustix::fs::fchmod(dir, Mode::from_raw_mode(0o700))?;
        st = rustix::fs::fstat(dir)?;
    }
    let mode = st.st_mode & 0o7777;
    if st.st_uid != euid || mode != 0o700 {
        return Err(io::Error::other(format!(
            "new scratch directory has owner {} and mode {mode:o}, expected owner {euid} and mode 700",
            st.st_uid
        )));
    }
    Ok(())
}

/// The pid in a scratch directory's name `keys-<pid>-XXXXXX`.
fn scratch_pid(name: &OsStr) -> Option<u32> {
    let rest = name.to_str()?.strip_prefix(PREFIX)?;
    let (pid, random) = rest.split_once('-')?;
    if pid.is_empty() || random.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// The scratch directories in `bases` that a `keys` process now gone left: our own
/// directories named `keys-<pid>-XXXXXX` whose pid no longer runs.
fn find_leftovers<'a>(bases: impl IntoIterator<Item = &'a Path>) -> Vec<Leftover> {
    let euid = rustix::process::geteuid().as_raw();
    let me = std::process::id();
    let mut found = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for base in bases {
        let Ok(real) = std::fs::canonicalize(base) else {
            continue;
        };
        if seen.contains(&real) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&real) else {
            seen.push(real);
            continue;
        };
        for entry in entries.flatten() {
            let Some(pid) = scratch_pid(&entry.file_name()) else {
                continue;
            };
            let ours = std::fs::symlink_metadata(entry.path())
                .is_ok_and(|m| m.is_dir() && m.uid() == euid);
            if ours && pid != me && !fsutil::pid_alive(pid) {
                found.push(Leftover {
                    path: base.join(entry.file_name()),
                    pid,
                });
            }
        }
        seen.push(real);
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The scratch directories killed runs left in the places `Scratch::create` uses
/// ($XDG_RUNTIME_DIR, /dev/shm and the disk fallback), for `keys check`.
pub fn leftovers() -> Vec<Leftover> {
    let disk = std::env::temp_dir();
    let bases = bases();
    find_leftovers(bases.iter().chain([&disk]).map(PathBuf::as_path))
}

/// Wipes (zero-fills, then removes) what killed runs left in `bases`; returns what
/// was removed.
fn sweep<'a>(bases: impl IntoIterator<Item = &'a Path>) -> Vec<Leftover> {
    find_leftovers(bases)
        .into_iter()
        .filter(|l| wipe(&l.path).is_ok())
        .collect()
}

/// Creates `dir/name` with O_CREAT|O_EXCL|O_NOFOLLOW and `mode` given at open time (made
/// exact before any data if the umask narrowed it), then writes `data`; `path` names it
/// in errors. On a failed write the file is removed.
fn create_file_in(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    data: &[u8],
    mode: u32,
) -> Result<()> {
    let mode = mode & 0o777;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY,
        Mode::from_raw_mode(mode as RawMode),
    )
    .map_err(|e| match e {
        Errno::EXIST => Error::Exists {
            path: path.to_path_buf(),
        },
        e => Error::io(path, e.into()),
    })?;
    let mut file = File::from(fd);
    let written = exact_mode(&file, mode).and_then(|()| file.write_all(data));
    if let Err(e) = written {
        drop(file);
        remove_entry(dir, &c_name(OsStr::new(name)), 0);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Opens the subdirectory `name` of `dir`, creating it with exactly `mode` if it does
/// not exist; never through a symlink, and only a directory of ours.
fn make_subdir(dir: BorrowedFd<'_>, name: &str, mode: u32) -> io::Result<OwnedFd> {
    let created = match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode as RawMode)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(e.into()),
    };
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => {
            io::Error::other("is a symbolic link or not a directory; keys does not follow it")
        }
        e => e.into(),
    })?;
    let st = rustix::fs::fstat(&sub)?;
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(io::Error::other("is a directory owned by another user"));
    }
    if created && st.st_mode & 0o7777 != mode {
        rustix::fs::fchmod(&sub, Mode::from_raw_mode(mode as RawMode))?;
    }
    Ok(sub)
}

/// Sets a new, still empty file's mode to exactly `mode` if the umask narrowed it.
fn exact_mode(file: &File, mode: u32) -> io::Result<()> {
    let st = rustix::fs::fstat(file)?;
    if st.st_mode & 0o7777 != mode {
        rustix::fs::fchmod(file, Mode::from_raw_mode(mode as RawMode))?;
    }
    Ok(())
}

/// A single file name: not empty, not '.' or '..', no '/' and no NUL.
fn plain_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes != b"."
        && bytes != b".."
        && !bytes.contains(&b'/')
        && !bytes.contains(&0)
}

fn c_name(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_default()
}

/// Empties the directory `dir`: regular files are zero-filled, then everything is
/// unlinked, subdirectories first emptied. Symlinks are unlinked, never followed.
/// Best effort: errors are ignored.
fn purge(dir: BorrowedFd<'_>, depth: usize) {
    // Removing entries while reading a directory may skip some: list, remove, repeat.
    for _ in 0..4 {
        let Ok(names) = entries(dir) else { return };
        if names.is_empty() {
            return;
        }
        for name in &names {
            remove_entry(dir, name, depth);
        }
    }
}

fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut reader = Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn remove_entry(dir: BorrowedFd<'_>, name: &CStr, depth: usize) {
    let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return;
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            if depth < MAX_DEPTH
                && let Some(sub) = open_subdir(dir, name)
            {
                purge(sub.as_fd(), depth + 1);
            }
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR);
        }
        FileType::RegularFile => {
            fsutil::zero_fill_at(dir, name);
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        }
        _ => {
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        }
    }
}

/// Opens a subdirectory (never through a symlink) and makes sure we may empty it.
fn open_subdir(dir: BorrowedFd<'_>, name: &CStr) -> Option<OwnedFd> {
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&sub).ok()?;
    if st.st_mode & 0o700 != 0o700 {
        let _ = rustix::fs::fchmod(&sub, Mode::from_raw_mode(0o700));
    }
    Some(sub)
}

#[cfg(test)]
mod tests;
