//! The OS keyring as a home for the admin's identity: macOS Keychain, Secret Service,
//! or the Linux kernel keyutils store. Every call is bounded in time, so a locked or
//! absent keyring is an error within seconds, never a hang.

use std::sync::mpsc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

const SERVICE: &str = "keys";
const DEFAULT_ENTRY: &str = "identity";

/// The entry name: `KEYS_KEYRING_ENTRY`, so one machine can hold one identity per fleet.
fn entry_name() -> String {
    std::env::var("KEYS_KEYRING_ENTRY")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_ENTRY.to_string())
}
const TIMEOUT: Duration = Duration::from_secs(5);

/// Which keyring to use; `KEYS_KEYRING` chooses, the platform decides the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Keychain,
    SecretService,
    Keyutils,
    Disabled,
}

impl Backend {
    pub fn from_env() -> Result<Backend> {
        match std::env::var("KEYS_KEYRING") {
            Ok(v) if !v.is_empty() => Backend::parse(&v),
            _ => Ok(Backend::platform_default()),
        }
    }

    pub fn parse(value: &str) -> Result<Backend> {
        match value {
            "keychain" => Ok(Backend::Keychain),
            "secret-service" => Ok(Backend::SecretService),
            "keyutils" => Ok(Backend::Keyutils),
            "none" => Ok(Backend::Disabled),
            other => Err(crate::error::Error::UnknownKeyring {
                value: other.to_string(),
            }),
        }
    }

    pub fn platform_default() -> Backend {
        if cfg!(target_os = "macos") {
            Backend::Keychain
        } else if cfg!(target_os = "linux") {
            Backend::SecretService
        } else {
            Backend::Disabled
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Keychain => "keychain",
            Backend::SecretService => "secret-service",
            Backend::Keyutils => "keyutils",
            Backend::Disabled => "none",
        }
    }

    /// Whether what is stored here survives a reboot.
    pub fn is_persistent(self) -> bool {
        matches!(self, Backend::Keychain | Backend::SecretService)
    }
}

fn keyring_error(backend: Backend, reason: impl Into<String>) -> Error {
    Error::Keyring {
        backend: backend.name().to_string(),
        reason: reason.into(),
    }
}

/// Runs `f` on its own thread and gives up after [`TIMEOUT`].
fn bounded<T: Send + 'static>(
    backend: Backend,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(result) => result,
        Err(_) => Err(keyring_error(
            backend,
            format!("no answer within {} seconds (locked?)", TIMEOUT.as_secs()),
        )),
    }
}

fn entry(backend: Backend) -> Result<keyring_core::Entry> {
    let store: std::sync::Arc<keyring_core::CredentialStore> = match backend {
        #[cfg(target_os = "linux")]
        Backend::Keyutils => linux_keyutils_keyring_store::Store::new()
            .map_err(|e| keyring_error(backend, e.to_string()))?,
        #[cfg(target_os = "linux")]
        Backend::SecretService => zbus_secret_service_keyring_store::Store::new()
            .map_err(|e| keyring_error(backend, e.to_string()))?,
        #[cfg(target_os = "macos")]
        Backend::Keychain => apple_native_keyring_store::keychain::Store::new()
            .map_err(|e| keyring_error(backend, e.to_string()))?,
        Backend::Disabled => return Err(keyring_error(backend, "disabled by KEYS_KEYRING=none")),
        #[allow(unreachable_patterns)]
        _ => return Err(keyring_error(backend, "not available on this platform")),
    };
    store
        .build(SERVICE, &entry_name(), None)
        .map_err(|e| keyring_error(backend, e.to_string()))
}

/// Reads the stored identity; `Ok(None)` when the keyring works but holds none.
pub fn load(backend: Backend) -> Result<Option<Zeroizing<String>>> {
    if backend == Backend::Disabled {
        return Ok(None);
    }
    bounded(backend, move || {
        let entry = entry(backend)?;
        match entry.get_secret() {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| keyring_error(backend, "stored identity is not text"))?;
                Ok(Some(Zeroizing::new(text.to_string())))
            }
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(backend, e.to_string())),
        }
    })
}

/// Stores an identity; refuses to replace one that is already there.
pub fn store(backend: Backend, secret: &str) -> Result<()> {
    if backend == Backend::Disabled {
        return Err(keyring_error(backend, "disabled by KEYS_KEYRING=none"));
    }
    if load(backend)?.is_some() {
        return Err(keyring_error(
            backend,
            "an identity is already stored; keys never overwrites one",
        ));
    }
    let secret = Zeroizing::new(secret.as_bytes().to_vec());
    bounded(backend, move || {
        entry(backend)?
            .set_secret(&secret)
            .map_err(|e| keyring_error(backend, e.to_string()))
    })
}
