//! Replacing many files as one change: staged beside their targets, made durable
//! together, renamed in order, and put back as they were if any step fails.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{
    FileRoom, TEMP_PREFIX, Upto, check_way, parent_of, remove, sync_dir, unsynced, write_atomic,
};
use crate::error::{Error, Result};

/// Replaces several files: each is written beside its target, all are made durable,
/// then renamed in order, and the renames made durable (see `settle`). A crash leaves
/// every target either old or new; the renames happen only after every file is
/// durable. What the targets held is kept under a second name until the end, so a
/// failure at any step puts all of them back.
pub fn write_batch(files: &[(&Path, &[u8], u32)]) -> Result<()> {
    write_batch_with(files, Vec::new())
}

/// `write_batch` of `files` and of files already written beside their targets
/// (`stage_splice`), each with its target, as one change; `staged` are renamed last.
pub fn write_batch_with(
    files: &[(&Path, &[u8], u32)],
    staged: Vec<(&Path, Spliced)>,
) -> Result<()> {
    check_dirs(
        files
            .iter()
            .map(|(path, _, _)| *path)
            .chain(staged.iter().map(|(path, _)| *path)),
    )?;
    let keep: Vec<(&Path, PathBuf)> = staged
        .iter()
        .filter_map(|(path, spliced)| Some((*path, spliced.spare.clone()?)))
        .collect();
    let mut all = files
        .iter()
        .map(|(path, data, mode)| Ok((*path, unsynced(path, data, *mode)?)))
        .collect::<Result<Vec<_>>>()?;
    all.extend(
        staged
            .into_iter()
            .map(|(path, spliced)| (path, spliced.tmp)),
    );
    replace_staged(all, &keep)
}

/// Makes the staged files durable, then renames each over its target, all or nothing.
/// What each target of `keep` held is kept afterwards as its spare.
fn replace_staged(
    staged: Vec<(&Path, tempfile::NamedTempFile)>,
    keep: &[(&Path, PathBuf)],
) -> Result<()> {
    settle(
        &staged
            .iter()
            .map(|(path, tmp)| (tmp.as_file(), *path))
            .collect::<Vec<_>>(),
    )?;
    // What each target held, to put back if a later step fails: all or nothing.
    let mut before = Backup::link(staged.iter().map(|(path, _)| *path));
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut done = 0;
    let mut result = Ok(());
    for (path, tmp) in staged {
        // A spare renamed from another directory changes that one too.
        let from = parent_of(tmp.path()).to_path_buf();
        if let Err(e) = tmp.persist(path) {
            result = Err(Error::io(path, e.error));
            break;
        }
        done += 1;
        for dir in [parent_of(path).to_path_buf(), from] {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    if result.is_ok() {
        result = dirs
            .iter()
            .map(|d| File::open(d).map_err(|e| Error::io(d, e)))
            .collect::<Result<Vec<File>>>()
            .and_then(|open| {
                settle(
                    &open
                        .iter()
                        .zip(dirs.iter().map(PathBuf::as_path))
                        .collect::<Vec<_>>(),
                )
            });
    }
    match result {
        Ok(()) => before.keep_as_spares(keep),
        Err(_) => before.restore_first(done),
    }
    result
}

/// A copy of a file with one part replaced, staged by `stage_splice` and not yet
/// synced, and where the file it replaces is kept once it is replaced (its spare).
pub struct Spliced {
    tmp: tempfile::NamedTempFile,
    spare: Option<PathBuf>,
    /// Where the inserted bytes are in the copy.
    inserted: std::ops::Range<u64>,
}

impl Spliced {
    /// Writes `bytes` over the inserted part of the copy, which they must match in
    /// length: a part known only after the copy was staged (a line with the hash of
    /// what it describes), written in place without copying the file again.
    pub fn rewrite_inserted(&self, bytes: &[u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let fail = |e| Error::io(self.tmp.path(), e);
        if bytes.len() as u64 != self.inserted.end - self.inserted.start {
            return Err(fail(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the new part differs in length from the one staged",
            )));
        }
        self.tmp
            .as_file()
            .write_all_at(bytes, self.inserted.start)
            .map_err(fail)
    }
}

/// Writes, with `mode`, the copy `splice` of the file at `path`, not synced: the
/// kernel copies what is kept (`copy_file_range`), so a large file changed in one
/// place never passes through this process.
///
/// With a `spare` path, the copy is written over the spare kept there by the last
/// such write, when it is a regular file of this user's with one name, on the
/// filesystem of `path` and not `from` itself; else to a new file beside `path`.
/// Either way, once `write_batch_with` has replaced `path`, the file it replaced is
/// kept as the spare. Overwriting blocks already allocated, and freeing none, costs
/// the filesystem far less than a new file of the same size and the old one's
/// release (see `Repo::lock_spare`).
pub fn stage_splice(
    path: &Path,
    splice: Splice,
    mode: u32,
    spare: Option<&Path>,
) -> Result<Spliced> {
    check_dirs([path])?;
    if let Some(at) = spare
        && let Some(spliced) = splice.onto_spare(path, at, mode, Writeback::Start)
    {
        return Ok(spliced);
    }
    let tmp = unsynced(path, &[], mode)?;
    splice
        .write(tmp.as_file(), Writeback::Start)
        .map_err(|e| Error::io(path, e))?;
    Ok(Spliced {
        tmp,
        spare: spare.map(Path::to_path_buf),
        inserted: splice.inserted(),
    })
}

/// A copy of the open file `from` (`len` bytes) with the bytes `cut` replaced by
/// `insert` (see `stage_splice`).
pub struct Splice<'a> {
    pub from: &'a File,
    pub len: u64,
    pub cut: std::ops::Range<u64>,
    pub insert: &'a [u8],
}

/// How the writing of a copy to disk begins before the flush that makes it durable.
#[derive(Clone, Copy)]
enum Writeback {
    /// Started, not waited for (`start_writeback`): the copy's pages may leave the
    /// page cache once written, and the next command reads them from disk.
    Start,
    /// Written and waited for, on a thread that has nothing else to do: the copy
    /// stays in the page cache for the commands after this one.
    Wait,
}

impl Splice<'_> {
    /// Writes the copy to `to`, from its offset, and its writeback begins as `how`.
    fn write(&self, to: &File, how: Writeback) -> std::io::Result<()> {
        copy_range(self.from, to, 0..self.cut.start)?;
        (&*to).write_all(self.insert)?;
        copy_range(self.from, to, self.cut.end..self.len)?;
        let size = self.cut.start + self.insert.len() as u64 + (self.len - self.cut.end);
        to.set_len(size)?;
        match how {
            Writeback::Start => start_writeback(to, size, self.inserted()),
            Writeback::Wait => to.sync_data()?,
        }
        Ok(())
    }

    /// Where `insert` is in the copy.
    fn inserted(&self) -> std::ops::Range<u64> {
        self.cut.start..self.cut.start + self.insert.len() as u64
    }

    /// `stage_splice` over the spare at `at` alone: the copy written there if it may
    /// stand in for a new file beside `path` (`reusable`) and takes the write, else
    /// nothing (no new file is made). A spare that cannot be written (a full disk,
    /// an attribute) is left to be replaced. Meant for a thread of its own: it
    /// returns once the copy is on disk (`Writeback::Wait`).
    pub fn over_spare(&self, path: &Path, at: &Path, mode: u32) -> Option<Spliced> {
        check_dirs([path]).ok()?;
        self.onto_spare(path, at, mode, Writeback::Wait)
    }

    /// `over_spare`, the directories above `path` checked already.
    fn onto_spare(&self, path: &Path, at: &Path, mode: u32, how: Writeback) -> Option<Spliced> {
        let file = reusable(at, path, self.from, mode)?;
        self.write(&file, how).ok()?;
        let named = tempfile::TempPath::try_from_path(at).ok()?;
        let mut tmp = tempfile::NamedTempFile::from_parts(file, named);
        // A copy never used stays as the spare, for the next write to reuse.
        tmp.disable_cleanup(true);
        Some(Spliced {
            tmp,
            spare: Some(at.to_path_buf()),
            inserted: self.inserted(),
        })
    }
}

/// Asks the kernel to start writing what was just written to `file` (`len` bytes)
/// to disk, without waiting for it, all but the pages of `held`, which
/// `rewrite_inserted` may still change: a page being written would hold that write
/// up until it is on disk. The flush that makes the file durable later (`settle`)
/// then finds most of it written, and the disk works while this process goes on.
/// Linux starts the writeback of a range's dirty pages when told they will not be
/// needed, and keeps them cached while they are being written. A kernel that does
/// not is only slower.
fn start_writeback(file: &File, len: u64, held: std::ops::Range<u64>) {
    use std::num::NonZeroU64;
    let page = rustix::param::page_size() as u64;
    let (from, to) = (held.start / page * page, held.end.div_ceil(page) * page);
    let advise = |at: u64, upto: u64| {
        if let Some(n) = NonZeroU64::new(upto.saturating_sub(at)) {
            let _ = rustix::fs::fadvise(file, at, Some(n), rustix::fs::Advice::DontNeed);
        }
    };
    advise(0, from);
    advise(to, len);
}

/// The spare at `at`, open for writing with `mode`, if it may stand in for a new
/// file beside `target`: reached through no symbolic link, a regular file of this
/// user's with no other name (so no other file is written through it), on the
/// filesystem of `target`'s directory (so it can be renamed there) and not `current`,
/// the file it is to replace.
fn reusable(at: &Path, target: &Path, current: &File, mode: u32) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    check_way(at, Upto::Parent).ok()?;
    let file = fs::OpenOptions::new()
        .write(true)
        .custom_flags(
            (rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::NONBLOCK
                | rustix::fs::OFlags::NOCTTY)
                .bits() as i32,
        )
        .open(at)
        .ok()?;
    let spare = rustix::fs::fstat(&file).ok()?;
    let dir = rustix::fs::stat(parent_of(target)).ok()?;
    let now = rustix::fs::fstat(current).ok()?;
    let fits = rustix::fs::FileType::from_raw_mode(spare.st_mode)
        == rustix::fs::FileType::RegularFile
        && spare.st_nlink == 1
        && spare.st_uid == rustix::process::geteuid().as_raw()
        && spare.st_dev == dir.st_dev
        && (spare.st_dev, spare.st_ino) != (now.st_dev, now.st_ino);
    if !fits {
        return None;
    }
    if spare.st_mode & 0o7777 != mode {
        rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(mode)).ok()?;
    }
    Some(file)
}

/// Appends the bytes `range` of `from` to `to` (at its offset), by the kernel where
/// the filesystem lets it, else by reading and writing.
fn copy_range(from: &File, to: &File, range: std::ops::Range<u64>) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut at = range.start;
    while at < range.end {
        let want = usize::try_from(range.end - at).unwrap_or(usize::MAX);
        let mut offset = at;
        match rustix::fs::copy_file_range(from, Some(&mut offset), to, None, want) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n as u64,
            Err(e)
                if [
                    rustix::io::Errno::XDEV,
                    rustix::io::Errno::NOSYS,
                    rustix::io::Errno::OPNOTSUPP,
                    rustix::io::Errno::INVAL,
                ]
                .contains(&e) =>
            {
                let mut buf = vec![0; want.min(1 << 16)];
                let n = from.read_at(&mut buf, at)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                (&*to).write_all(&buf[..n])?;
                at += n as u64;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Replaces `files` (as `write_batch`) and then removes `gone`, as one change: what
/// every path holds is first kept under a second name beside it (a hard link, so
/// putting it back needs no free space), and if any step fails, every path is put
/// back as it was. A crash leaves each path old or new, and perhaps a second name
/// (`TEMP_PREFIX…`).
pub fn write_and_remove(files: &[(&Path, &[u8], u32)], gone: &[&Path]) -> Result<()> {
    check_dirs(
        files
            .iter()
            .map(|(path, _, _)| *path)
            .chain(gone.iter().copied()),
    )?;
    let before = Backup::link(
        files
            .iter()
            .map(|(path, _, _)| *path)
            .chain(gone.iter().copied()),
    );
    let result = write_batch(files).and_then(|()| {
        let mut dirs: Vec<&Path> = Vec::new();
        for path in gone {
            fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            if !dirs.contains(&parent_of(path)) {
                dirs.push(parent_of(path));
            }
        }
        dirs.into_iter().try_for_each(sync_dir)
    });
    if result.is_err() {
        before.restore();
    }
    result
}

/// What files held before a write replaced them, so that a write that fails part way
/// can put every one back: its bytes and mode, or no file where there was none.
pub struct Backup(Vec<(PathBuf, Held)>);

enum Held {
    File(Vec<u8>, u32),
    /// A second name for the file, beside it (removed when the backup is dropped).
    Linked(PathBuf),
    Nothing,
    /// A file that could not be read: left as it is.
    Unknown,
}

impl Backup {
    /// Reads what each path holds now (never following a symlink).
    pub fn read<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Backup {
        use rayon::prelude::*;
        let paths: Vec<&Path> = paths.into_iter().collect();
        Backup(
            paths
                .par_iter()
                .map(|path| (path.to_path_buf(), Held::read(path)))
                .collect(),
        )
    }

    /// What the caller read from each path moments ago, and its mode (`None`: no
    /// file there), kept without reading it again.
    pub fn holding(files: impl IntoIterator<Item = (PathBuf, Option<(Vec<u8>, u32)>)>) -> Backup {
        Backup(
            files
                .into_iter()
                .map(|(path, held)| {
                    let held = match held {
                        Some((data, mode)) => Held::File(data, mode),
                        None => Held::Nothing,
                    };
                    (path, held)
                })
                .collect(),
        )
    }

    /// This backup, then `next`: restored in reverse, `next`'s files first.
    pub fn chain(mut self, mut next: Backup) -> Backup {
        self.0.append(&mut next.0);
        self
    }

    /// Keeps what each path holds now under a second, temporary name beside it, so
    /// nothing is copied; a file that cannot be linked is read instead.
    pub fn link<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Backup {
        Backup(
            paths
                .into_iter()
                .map(|path| {
                    let reachable = check_way(path, Upto::Parent).is_ok();
                    let held = match fs::symlink_metadata(path) {
                        _ if !reachable => Held::Unknown,
                        Ok(meta) if meta.is_file() => {
                            let spare = parent_of(path)
                                .join(format!("{TEMP_PREFIX}{}", spare_suffix(path)));
                            match fs::hard_link(path, &spare) {
                                Ok(()) => Held::Linked(spare),
                                Err(_) => Held::read(path),
                            }
                        }
                        _ => Held::read(path),
                    };
                    (path.to_path_buf(), held)
                })
                .collect(),
        )
    }

    /// Keeps, for each target of `keep`, what it held (its second name) under the
    /// spare's name `keep` gives, in place of removing it. Best effort: a second name
    /// that cannot be renamed there is removed as any other.
    fn keep_as_spares(&mut self, keep: &[(&Path, PathBuf)]) {
        for (path, held) in &mut self.0 {
            let Some((_, spare)) = keep.iter().find(|(target, _)| *target == path.as_path()) else {
                continue;
            };
            if let Held::Linked(link) = held
                && check_way(spare, Upto::Parent).is_ok()
                && fs::rename(&*link, spare).is_ok()
            {
                *held = Held::Nothing;
            }
        }
    }

    /// Puts every file back, the last read first (so the first, a journal, goes last).
    pub fn restore(&self) {
        self.restore_first(self.0.len());
    }

    /// Puts back the first `n` files, in reverse order, each by a temp file and a
    /// rename. Best effort: the error that started the rollback is the one reported.
    pub fn restore_first(&self, n: usize) {
        for (path, held) in self.0.iter().take(n).rev() {
            let _ = match held {
                Held::File(data, mode) => write_atomic(path, data, *mode),
                Held::Linked(spare) => check_way(path, Upto::Parent).and_then(|()| {
                    fs::rename(spare, path)
                        .map_err(|e| Error::io(path, e))
                        .and_then(|()| sync_dir(parent_of(path)))
                }),
                Held::Nothing if fs::symlink_metadata(path).is_ok() => remove(path),
                Held::Nothing | Held::Unknown => Ok(()),
            };
        }
    }
}

impl Held {
    fn read(path: &Path) -> Held {
        if check_way(path, Upto::Parent).is_err() {
            return Held::Unknown;
        }
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Held::Nothing,
            Ok(meta) if meta.is_file() => match fs::read(path) {
                Ok(data) => Held::File(data, meta.permissions().mode() & 0o7777),
                Err(_) => Held::Unknown,
            },
            _ => Held::Unknown,
        }
    }
}

impl Drop for Backup {
    /// Removes the second names a backup made (gone already where it was restored).
    fn drop(&mut self) {
        for (_, held) in &self.0 {
            if let Held::Linked(spare) = held {
                let _ = fs::remove_file(spare);
            }
        }
    }
}

/// A name no other run picks: the process id, a counter and the target's name.
fn spare_suffix(path: &Path) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!("{}-{n}-{name}", std::process::id())
}

/// Replaces many files at once, durably and cheaply: every file is written to a temp
/// file beside its target, one `syncfs` makes them all durable, then they are
/// renamed in order and a second `syncfs` makes the renames durable. A crash leaves
/// each target either old or new (and perhaps temp files, named `TEMP_PREFIX…`).
pub fn write_many(files: &[(PathBuf, Vec<u8>, u32)]) -> Result<()> {
    use rayon::prelude::*;
    check_dirs(files.iter().map(|(path, _, _)| path.as_path()))?;
    let staged: Vec<Staged> = files
        .par_iter()
        .map(|(path, data, mode)| stage(path, data, *mode))
        .collect::<Result<_>>()?;
    commit(staged).map(drop)
}

/// A file written beside its target under a temp name, neither durable nor in place
/// yet (`commit` makes it both); dropped, the temp file is removed. Its descriptor is
/// closed unless a `FileRoom` had room for it (`stage_kept`), so any number of files
/// can be staged at once.
pub struct Staged {
    target: PathBuf,
    tmp: tempfile::TempPath,
    kept: Option<File>,
}

/// Writes `data` to a temp file beside `path` with `mode`, not synced. The directories
/// above `path` are the caller's to have checked first (`check_dirs`).
pub fn stage(path: &Path, data: &[u8], mode: u32) -> Result<Staged> {
    Ok(Staged {
        target: path.to_path_buf(),
        tmp: unsynced(path, data, mode)?.into_temp_path(),
        kept: None,
    })
}

/// `stage`, keeping the temp file open if `room` has room for it: `commit` hands the
/// descriptor back, so that `names_file` can tell the file in place is this one.
pub fn stage_kept(path: &Path, data: &[u8], mode: u32, room: &FileRoom) -> Result<Staged> {
    let (file, tmp) = unsynced(path, data, mode)?.into_parts();
    Ok(Staged {
        target: path.to_path_buf(),
        tmp,
        kept: room.keep(file),
    })
}

/// Makes every staged file durable with one `syncfs`, renames each over its target
/// in order, and makes the renames durable with a second `syncfs` (the `write_many`
/// protocol). A rename that fails stops there: the targets renamed so far are new,
/// and the staged files not renamed are removed. Returns, in order, the descriptors
/// `stage_kept` kept.
pub fn commit(staged: Vec<Staged>) -> Result<Vec<Option<File>>> {
    let Some(first) = staged.first() else {
        return Ok(Vec::new());
    };
    let at = first.target.clone();
    let anchor = File::open(parent_of(&at)).map_err(|e| Error::io(&at, e))?;
    let sync = || rustix::fs::syncfs(&anchor).map_err(|e| Error::io(&at, std::io::Error::from(e)));
    sync()?;
    let mut kept = Vec::with_capacity(staged.len());
    for Staged {
        target,
        tmp,
        kept: file,
    } in staged
    {
        tmp.persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        kept.push(file);
    }
    sync()?;
    Ok(kept)
}

/// Whether `path` itself (not a symlink's target) is the file `file` is open on, of
/// `len` bytes. While `file` is open its inode number cannot go to another file, so
/// a file put in its place, by anyone, is told apart.
pub fn names_file(path: &Path, file: &File, len: u64) -> Result<bool> {
    use rustix::fs::{AtFlags, CWD, fstat, statat};
    let io = |e: rustix::io::Errno| Error::io(path, std::io::Error::from(e));
    let open = fstat(file).map_err(io)?;
    let named = statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
    Ok(named.st_dev == open.st_dev
        && named.st_ino == open.st_ino
        && u64::try_from(open.st_size).is_ok_and(|size| size == len))
}

/// Checks the directory of each of `paths` once, before anything is written.
pub fn check_dirs<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let mut dirs: Vec<&Path> = Vec::new();
    for path in paths {
        let dir = parent_of(path);
        if !dirs.contains(&dir) {
            check_way(dir, Upto::Last)?;
            dirs.push(dir);
        }
    }
    Ok(())
}

/// Makes what was written to `files` (files or directories, each with the path its
/// errors name) durable. Each fsync is a flush of the disk's cache, so while little
/// else waits to be written one `syncfs` of their filesystem (when they share one)
/// does it with a single flush; otherwise each is fsynced, so another program's
/// pending writes never hold keys up.
fn settle(files: &[(&File, &Path)]) -> Result<()> {
    let Some((first, at)) = files.first() else {
        return Ok(());
    };
    let device = |f: &File| rustix::fs::fstat(f).ok().map(|st| st.st_dev);
    let one_filesystem = || {
        let dev = device(first);
        dev.is_some() && files.iter().all(|(f, _)| device(f) == dev)
    };
    if files.len() > 1
        && one_filesystem()
        && pending_writes().is_some_and(|bytes| bytes <= SETTLE_BY_SYNCFS)
    {
        return rustix::fs::syncfs(first).map_err(|e| Error::io(at, std::io::Error::from(e)));
    }
    files
        .iter()
        .try_for_each(|(f, at)| f.sync_all().map_err(|e| Error::io(at, e)))
}

/// Up to how many bytes waiting to be written, system-wide, `settle` uses `syncfs`.
const SETTLE_BY_SYNCFS: u64 = 8 << 20;

/// The bytes of page cache waiting to be written or being written (`Dirty` and
/// `Writeback` in /proc/meminfo), if the kernel says.
fn pending_writes() -> Option<u64> {
    use std::io::Read;
    // The file tells no size: read into room for all of it at once, not in growing
    // steps from a few bytes.
    let mut file = File::open("/proc/meminfo").ok()?;
    let mut buf = vec![0; 8 << 10];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]).ok()? {
            0 => break,
            n => len += n,
        }
    }
    let meminfo = std::str::from_utf8(&buf[..len]).ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(field))?;
        line[field.len()..]
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    };
    Some((kib("Dirty:")? + kib("Writeback:")?) * 1024)
}
