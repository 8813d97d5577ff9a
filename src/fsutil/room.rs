//! Files held open past their replacement: room for them in the process's table of
//! open files, and closing them all at the end on more threads than cores.

use std::fs::File;

/// Room to keep files open so that replacing them (a rename over each) does not free
/// them: where freeing a file waits on the disk (an ext4 without a journal mounted
/// with `discard` waits for each freed extent's discard), the renames then take
/// microseconds each, and the files are freed when closed afterwards, on every core.
/// How many may be kept is set when the room is made, within the limit of open files
/// the process may raise itself to.
pub struct FileRoom(std::sync::atomic::AtomicUsize);

impl FileRoom {
    /// Room for up to `wanted` files, the soft limit of open files raised as far as
    /// the hard one allows, leaving `SPARE_FILES` for everything else.
    pub fn for_up_to(wanted: usize) -> FileRoom {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let soft = limit.current.unwrap_or(u64::MAX);
        let want = (wanted as u64).saturating_add(SPARE_FILES);
        let soft = if soft < want {
            let raised = limit.maximum.map_or(want, |hard| hard.min(want));
            let rlimit = Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, rlimit).is_ok() {
                raised
            } else {
                soft
            }
        } else {
            soft
        };
        let room = usize::try_from(soft.saturating_sub(SPARE_FILES))
            .unwrap_or(usize::MAX)
            .min(wanted);
        // The table of open files grows at once to hold them all (unless
        // `widen_file_table` made it large enough already): grown a doubling at a
        // time, each growth in a process with several threads waits for every CPU
        // to pass a quiescent point (an RCU grace period, ~15 ms on a 2-core VM).
        if room > 0 {
            widen_file_table_to((room as u64).saturating_add(SPARE_FILES));
        }
        FileRoom(std::sync::atomic::AtomicUsize::new(room))
    }

    /// `file`, to be kept open, if there is room; else it is closed now.
    pub fn keep(&self, file: File) -> Option<File> {
        use std::sync::atomic::Ordering::Relaxed;
        self.0
            .fetch_update(Relaxed, Relaxed, |room| room.checked_sub(1))
            .ok()
            .map(|_| file)
    }
}

/// Closes `files` while `meanwhile` runs, and returns what it gave. With
/// `beyond_pool`, and enough files, they are closed on more threads than cores (up to
/// `CLOSERS`, a thread per `FILES_PER_CLOSER` files): where freeing a file waits on
/// the disk (an ext4 without a journal mounted with `discard` waits for each freed
/// extent's discard), the waits overlap; a thread that cannot start leaves its share
/// to this one. Otherwise they are closed on the pool's threads.
pub fn close_all<T: Send>(
    files: Vec<File>,
    beyond_pool: bool,
    meanwhile: impl FnOnce() -> T + Send,
) -> T {
    use rayon::prelude::*;
    let threads = CLOSERS.min(files.len() / FILES_PER_CLOSER);
    if !beyond_pool || threads < 2 {
        return rayon::join(meanwhile, || files.into_par_iter().for_each(drop)).0;
    }
    let mut shares: Vec<Vec<File>> = (0..threads)
        .map(|_| Vec::with_capacity(files.len().div_ceil(threads)))
        .collect();
    for (i, file) in files.into_iter().enumerate() {
        shares[i % threads].push(file);
    }
    std::thread::scope(|scope| {
        for share in shares {
            // Not started, the closure and its share are dropped here, on this thread.
            let _ = std::thread::Builder::new().spawn_scoped(scope, move || drop(share));
        }
        meanwhile()
    })
}

/// How many threads `close_all` closes files on, at most.
const CLOSERS: usize = 16;

/// How many files `close_all` gives each of its threads, at least.
const FILES_PER_CLOSER: usize = 32;

/// Grows the process's table of open files to hold `FILE_TABLE` of them (or as
/// many as its limit allows), for a `FileRoom` to come. Meant for the start of a
/// command, while the process has a single thread: growing the table then costs
/// microseconds, and not the RCU grace period it waits for once there are more.
pub fn widen_file_table() {
    use rustix::process::{Resource, getrlimit};
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    widen_file_table_to(soft.min(FILE_TABLE));
}

/// How many open files `widen_file_table` makes room for: a rekey of a few
/// thousand files, each held twice (the file replaced and the one replacing it).
const FILE_TABLE: u64 = 16384;

/// Grows the table of open files to hold `n` (a file descriptor is copied to the
/// number below it, and closed).
fn widen_file_table_to(n: u64) {
    let top = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    drop(rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), top));
}

/// Open files a `FileRoom` leaves the process for everything else.
const SPARE_FILES: u64 = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_room_keeps_as_many_files_as_it_was_made_for_and_closes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let room = FileRoom::for_up_to(2);
        let open = || File::create(dir.path().join("f")).unwrap();
        let kept: Vec<Option<File>> = (0..3).map(|_| room.keep(open())).collect();
        assert!(kept[0].is_some() && kept[1].is_some());
        assert!(kept[2].is_none());
        assert!(FileRoom::for_up_to(0).keep(open()).is_none());
    }

    /// Every file is closed by the time `close_all` returns, on its threads, the
    /// pool's or this one, whatever their number: each pipe's reader then reads its
    /// end.
    #[test]
    fn close_all_closes_every_file_and_returns_what_ran_meanwhile() {
        use std::io::Read;
        for n in [0, 3, 40, 100, 300, 301] {
            let (readers, writers): (Vec<File>, Vec<File>) = (0..n)
                .map(|_| {
                    let (r, w) = rustix::pipe::pipe().unwrap();
                    (File::from(r), File::from(w))
                })
                .unzip();
            let beyond_pool = n % 2 == 0;
            assert_eq!(close_all(writers, beyond_pool, || n * 2), n * 2);
            for mut r in readers {
                let mut buf = [0u8; 1];
                assert_eq!(r.read(&mut buf).unwrap(), 0, "{n} files: a writer is open");
            }
        }
    }
}
