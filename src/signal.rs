//! What the process does about signals and crashes while it holds plaintext:
//! `SignalGuard` keeps SIGINT, SIGTERM, SIGHUP and SIGQUIT from killing it while
//! plaintext sits in a file (so the scratch directory is always removed), a write past
//! `ulimit -f` fails instead of killing it, and no core file is ever written.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use signal_hook::SigId;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::error::{Error, Result};

/// Makes this process's memory, which holds plaintext and keys, stay out of core
/// files: the core size limit goes to 0, soft and hard (so nothing started from here
/// can raise it again), and the process is marked not dumpable, which also keeps other
/// processes of the same user from reading its memory through ptrace or /proc.
/// Programs it starts (an editor, ssh) are dumpable again after their exec, as usual.
pub fn no_core_dumps() -> io::Result<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit};
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    Ok(())
}

/// Makes a write past the file size limit (`ulimit -f`) fail with EFBIG, which keys
/// reports and undoes like a full disk, instead of killing the process half way
/// through a change (SIGXFSZ). Programs keys runs start with the default again.
pub fn catch_file_size_limit() {
    let caught = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::signal::SIGXFSZ, caught);
}

/// The signals that would otherwise kill `keys` while plaintext sits in a file.
const SIGNALS: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// Process-wide signal state, installed by the first `SignalGuard`.
struct Installed {
    /// Guards alive now.
    live: usize,
    /// True while no guard is alive: the default action (terminate) then runs.
    default_armed: Arc<AtomicBool>,
    /// Signals the process was started with ignored (`nohup`, `cmd &` in a script):
    /// `keys` never installs a handler for those, so they stay ignored, in the editor too.
    ignored: u64,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

/// Set once an interruption has been reported: the process is on its way out with
/// 128 + signal, so the default action is not armed again. A signal sent to the whole
/// process group (Ctrl-C) may be handled on another thread after the editor it killed
/// was already seen to die; re-arming would let that late delivery kill the process
/// instead of letting it exit with its code.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// The error for an interruption by `signal`, noted so that no later delivery of the
/// same group signal terminates the process before it exits cleanly.
pub fn interruption(signal: i32) -> Error {
    REPORTED.store(true, Ordering::SeqCst);
    Error::Interrupted { signal }
}

/// Whether `signal` is one a `SignalGuard` catches (SIGINT, SIGTERM, SIGHUP, SIGQUIT).
pub fn is_guarded(signal: i32) -> bool {
    SIGNALS.contains(&signal)
}

/// While alive, SIGINT, SIGTERM, SIGHUP and SIGQUIT do not kill the process: they are
/// recorded, and `interrupted()` returns the one received. Drop unregisters the
/// recording handlers; once no guard is alive the signals terminate the process again,
/// as by default.
///
/// Signal-safe handlers can only store a fixed value, so if two different signals
/// arrive before `interrupted()` is first called, the later one is reported; from then
/// on the answer does not change.
pub struct SignalGuard {
    received: Arc<AtomicUsize>,
    first: AtomicUsize,
    ids: Vec<SigId>,
}

impl SignalGuard {
    pub fn new() -> Result<SignalGuard> {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        let state = match &mut *installed {
            Some(state) => state,
            none => none.insert(install()?),
        };
        let received = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::with_capacity(SIGNALS.len());
        for signal in SIGNALS {
            if state.ignored & signal_bit(signal) != 0 {
                continue;
            }
            let signal_number = usize::try_from(signal).unwrap_or(0);
            match signal_hook::flag::register_usize(signal, Arc::clone(&received), signal_number) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    for id in ids {
                        signal_hook::low_level::unregister(id);
                    }
                    return Err(Error::io("<signal handlers>", e));
                }
            }
        }
        // Recording first, then disarming the default: a signal in between is both
        // recorded and fatal, never lost.
        state.live += 1;
        state.default_armed.store(false, Ordering::SeqCst);
        Ok(SignalGuard {
            received,
            first: AtomicUsize::new(0),
            ids,
        })
    }

    /// The signal received while this guard was alive, if any.
    pub fn interrupted(&self) -> Option<i32> {
        let now = self.received.load(Ordering::SeqCst);
        let first = match self
            .first
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => now,
            Err(earlier) => earlier,
        };
        match first {
            0 => None,
            signal => i32::try_from(signal).ok(),
        }
    }

    /// `Err(Error::Interrupted { signal })` if a signal arrived.
    pub fn check(&self) -> Result<()> {
        match self.interrupted() {
            Some(signal) => Err(interruption(signal)),
            None => Ok(()),
        }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = installed.as_mut() {
            state.live = state.live.saturating_sub(1);
            if state.live == 0 && !REPORTED.load(Ordering::SeqCst) {
                state.default_armed.store(true, Ordering::SeqCst);
            }
        }
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl std::fmt::Debug for SignalGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalGuard")
            .field("received", &self.received.load(Ordering::SeqCst))
            .finish()
    }
}

/// Installs, once per process, an action that runs the default (terminating) action of
/// each signal whenever no guard is alive. signal-hook never restores `SIG_DFL` by
/// itself, so without this a signal would be ignored after the last guard is gone.
fn install() -> Result<Installed> {
    let ignored = ignored_at_start();
    let default_armed = Arc::new(AtomicBool::new(true));
    let mut ids = Vec::with_capacity(SIGNALS.len());
    for signal in SIGNALS {
        if ignored & signal_bit(signal) != 0 {
            continue;
        }
        match signal_hook::flag::register_conditional_default(signal, Arc::clone(&default_armed)) {
            Ok(id) => ids.push(id),
            Err(e) => {
                for id in ids {
                    signal_hook::low_level::unregister(id);
                }
                return Err(Error::io("<signal handlers>", e));
            }
        }
    }
    Ok(Installed {
        live: 0,
        default_armed,
        ignored,
    })
}

fn signal_bit(signal: i32) -> u64 {
    u32::try_from(signal - 1)
        .ok()
        .and_then(|shift| 1u64.checked_shl(shift))
        .unwrap_or(0)
}

/// The signals this process ignores now (read before any handler is installed): the
/// `SigIgn` mask of /proc/self/status; none where that cannot be read.
fn ignored_at_start() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_sig_ign(&status))
        .unwrap_or(0)
}

fn parse_sig_ign(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// Serialises the tests that raise signals with the tests that hold a `SignalGuard`:
/// a raised signal reaches every guard in the process.
#[cfg(test)]
pub(crate) static SIGNAL_TEST_LOCK: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// Runs the unit test `test` alone in a child process with `env` set, for what
    /// must not touch this process (its limits, its signal dispositions).
    fn in_child(test: &str, env: &str) -> std::process::Output {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(env, "1")
            .output()
            .unwrap()
    }

    #[test]
    fn core_dumps_are_off_after_no_core_dumps() {
        // In a child, so that this test process keeps its limits.
        if std::env::var_os("KEYS_TEST_CORE_CHILD").is_some() {
            no_core_dumps().unwrap();
            let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
            println!("core {:?} {:?}", limit.current, limit.maximum);
            return;
        }
        let out = in_child(
            "signal::tests::core_dumps_are_off_after_no_core_dumps",
            "KEYS_TEST_CORE_CHILD",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("core Some(0) Some(0)"), "{stdout}");
    }

    #[test]
    fn sig_ign_mask_is_parsed() {
        let status = "Name:\tkeys\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000006\n";
        let mask = parse_sig_ign(status).unwrap();
        assert_eq!(mask & signal_bit(SIGINT), signal_bit(SIGINT));
        assert_eq!(mask & signal_bit(SIGQUIT), signal_bit(SIGQUIT));
        assert_eq!(mask & signal_bit(SIGTERM), 0);
        assert_eq!(parse_sig_ign("Name:\tkeys\n"), None);
    }

    /// Signals are process-wide, so every assertion that raises one lives here.
    #[test]
    fn signal_guard_records_signals_and_drop_restores_the_default() {
        let _lock = SIGNAL_TEST_LOCK
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let guard = SignalGuard::new().unwrap();
        assert_eq!(guard.interrupted(), None);
        assert!(guard.check().is_ok());
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(guard.interrupted(), Some(SIGTERM));
        assert!(matches!(
            guard.check(),
            Err(Error::Interrupted { signal }) if signal == SIGTERM
        ));

        // A guard that comes and goes leaves the outer one protecting the process.
        let inner = SignalGuard::new().unwrap();
        assert_eq!(inner.interrupted(), None);
        drop(inner);
        signal_hook::low_level::raise(SIGINT).unwrap();
        assert_eq!(guard.interrupted(), Some(SIGTERM), "the first answer stays");
        drop(guard);

        // After the last guard, SIGTERM kills again: checked in a child process.
        let out = in_child("signal::tests::signal_child", "KEYS_TEST_SIGNAL_CHILD");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("survived SIGTERM"), "{stdout}");
        assert_eq!(out.status.signal(), Some(SIGTERM), "{:?}", out.status);
    }

    /// Run only as a child of the test above.
    #[test]
    fn signal_child() {
        if std::env::var_os("KEYS_TEST_SIGNAL_CHILD").is_none() {
            return;
        }
        let guard = SignalGuard::new().unwrap();
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(guard.interrupted(), Some(SIGTERM));
        println!("survived SIGTERM");
        drop(guard);
        signal_hook::low_level::raise(SIGTERM).unwrap();
        println!("survived SIGTERM without a guard: the default was not restored");
    }
}
