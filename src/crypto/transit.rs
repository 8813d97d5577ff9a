//! OpenBao transit keys that wrap a sops file's data key (sops's `hc_vault`): the
//! key goes to the server and back over one kept connection per server, and is
//! never held outside zeroized memory here.

use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::format::sops::metadata::VaultEntry;
use crate::openbao::{Client, Config, TransitPath};
use crate::recipient::TransitKey;

/// The connection to the server at `addr`, made (and its token checked) once: the
/// server `BAO_ADDR` (or `VAULT_ADDR`) names, as no other is given the token.
fn client(addr: &str, engine: &str, key: &str) -> Result<Arc<Client>> {
    static CLIENTS: Mutex<Vec<(String, Arc<Client>)>> = Mutex::new(Vec::new());
    let addr = addr.trim_end_matches('/');
    if let Some((_, c)) = CLIENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(a, _)| a == addr)
    {
        return Ok(c.clone());
    }
    let shown = format!("{engine}/keys/{key}");
    let config = Config::from_env().map_err(|e| match e {
        Error::OpenBaoToken { reason, .. } => Error::OpenBaoToken {
            addr: addr.to_string(),
            reason: format!("{reason} ({shown})"),
        },
        e => e,
    })?;
    // The token goes only to the server the environment names, never to one a
    // file or a policy names alone.
    if !config.addr.eq_ignore_ascii_case(addr) {
        return Err(Error::Remote {
            message: format!(
                "OpenBao at {addr} ({shown}): BAO_ADDR (or VAULT_ADDR) names {}, and keys sends the token only there",
                config.addr
            ),
            hint: format!("set BAO_ADDR (or VAULT_ADDR) to {addr} to use this transit key"),
        });
    }
    let client = Client::connect_for(config, 1, &shown)?;
    let client = Arc::new(client);
    CLIENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((addr.to_string(), client.clone()));
    Ok(client)
}

/// Wraps `data_key` with the transit key, as an `hc_vault` entry. A key the token
/// may read and that does not exist is refused rather than made by the call
/// (transit makes a key it is asked to encrypt with): a mistyped name would
/// otherwise wrap the data key with a new key nobody meant.
pub fn wrap(key: &TransitKey, data_key: &[u8]) -> Result<VaultEntry> {
    let client = client(&key.address, &key.engine_path, &key.key_name)?;
    let at = TransitPath {
        engine: &key.engine_path,
        key: &key.key_name,
    };
    if client.transit_key_exists(&at)? == Some(false) {
        return Err(Error::Remote {
            message: format!(
                "OpenBao at {} ({}): no such transit key",
                client.addr,
                key.path()
            ),
            hint: format!(
                "create it (`bao write -f {}`) or fix the reader's URL",
                key.path()
            ),
        });
    }
    let enc = client.transit_encrypt(&at, data_key)?;
    Ok(VaultEntry {
        vault_address: key.address.clone(),
        engine_path: key.engine_path.clone(),
        key_name: key.key_name.clone(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        enc,
    })
}

/// The data key an `hc_vault` entry wraps, unwrapped by its transit key.
pub fn unwrap(entry: &VaultEntry) -> Result<Zeroizing<Vec<u8>>> {
    let client = client(&entry.vault_address, &entry.engine_path, &entry.key_name)?;
    client.transit_decrypt(
        &TransitPath {
            engine: &entry.engine_path,
            key: &entry.key_name,
        },
        &entry.enc,
    )
}

/// The data key from the first of `entries` its transit key unwraps; the first
/// failure when none does.
pub fn unwrap_first(entries: &[VaultEntry]) -> Option<Result<Zeroizing<Vec<u8>>>> {
    let mut failure = None;
    for entry in entries.iter().filter(|e| !e.enc.is_empty()) {
        match unwrap(entry) {
            Ok(key) => return Some(Ok(key)),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    failure.map(Err)
}
