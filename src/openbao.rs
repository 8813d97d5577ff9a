//! OpenBao's KV v2 engine as a destination: its address, token and CA from the
//! environment as `bao` reads them, writes with check-and-set, and the metadata of
//! a path (its versions, never its values). One agent keeps its connections alive
//! and is shared by every thread that writes. Its transit engine wraps and unwraps
//! sops data keys, which stay in zeroized memory on this side.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// An answer of OpenBao, whatever its status.
type Response = ureq::http::Response<ureq::Body>;

/// Where OpenBao is and who to be there: `BAO_ADDR` (else `VAULT_ADDR`), the token
/// from `BAO_TOKEN` (else `VAULT_TOKEN`, else the token helper's `~/.vault-token`),
/// and the CA to trust from `BAO_CACERT` (else `VAULT_CACERT`).
pub struct Config {
    pub addr: String,
    token: Zeroizing<String>,
    cacert: Option<PathBuf>,
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let addr = env(&["BAO_ADDR", "VAULT_ADDR"])
            .unwrap_or_else(|| "https://127.0.0.1:8200".to_string())
            .trim_end_matches('/')
            .to_string();
        let token = match env(&["BAO_TOKEN", "VAULT_TOKEN"]) {
            Some(t) => Zeroizing::new(t),
            None => {
                let file = std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".vault-token"))
                    .filter(|p| p.is_file());
                let Some(file) = file else {
                    return Err(Error::OpenBaoToken {
                        addr,
                        reason: "no token: BAO_TOKEN, VAULT_TOKEN and ~/.vault-token are all unset"
                            .into(),
                    });
                };
                let data = Zeroizing::new(crate::fsutil::read(&file)?);
                Zeroizing::new(String::from_utf8_lossy(&data).trim().to_string())
            }
        };
        let cacert = env(&["BAO_CACERT", "VAULT_CACERT"]).map(PathBuf::from);
        Ok(Config {
            addr,
            token,
            cacert,
        })
    }
}

/// A connection to OpenBao whose token it has accepted.
pub struct Client {
    agent: ureq::Agent,
    pub addr: String,
    token: Zeroizing<String>,
}

/// What a write with check-and-set did.
pub enum Written {
    /// The new version.
    Version(u64),
    /// The path's version was not the one expected: someone else wrote it.
    Conflict,
}

/// A path's metadata: its newest version and whether that one is still readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub current_version: u64,
    /// The newest version was deleted (soft) or destroyed.
    pub deleted: bool,
    pub destroyed: bool,
}

#[derive(Deserialize)]
struct MetaResponse {
    data: MetaData,
}

#[derive(Deserialize)]
struct MetaData {
    current_version: u64,
    versions: std::collections::BTreeMap<String, VersionMeta>,
}

#[derive(Deserialize)]
struct VersionMeta {
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
}

#[derive(Deserialize)]
struct WriteResponse {
    data: WriteData,
}

#[derive(Deserialize)]
struct WriteData {
    version: u64,
}

#[derive(Deserialize, Default)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl Client {
    /// Connects with up to `connections` kept alive, and asks OpenBao about its own
    /// token first, so that a refused token stops everything before any write.
    pub fn connect(config: Config, connections: usize) -> Result<Client> {
        Client::connect_for(config, connections, "auth/token/lookup-self")
    }

    /// `connect`, its failures naming `shown` (what the connection is for) as
    /// their path.
    pub fn connect_for(config: Config, connections: usize, shown: &str) -> Result<Client> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &config.cacert {
            let pem = crate::fsutil::read(ca)?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(Error::InvalidFile {
                    at: crate::error::Location::file(ca),
                    reason: "no PEM certificate in the CA file (BAO_CACERT)".into(),
                });
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .max_idle_connections(connections.max(1) * 2)
            .max_idle_connections_per_host(connections.max(1) * 2)
            .timeout_global(Some(Duration::from_secs(60)))
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        let client = Client {
            agent,
            addr: config.addr,
            token: config.token,
        };
        let response = client.get("auth/token/lookup-self", shown)?;
        match response.status().as_u16() {
            200 => Ok(client),
            403 | 401 => Err(Error::OpenBaoToken {
                addr: client.addr.clone(),
                reason: if shown == "auth/token/lookup-self" {
                    "permission denied".into()
                } else {
                    format!("permission denied ({shown})")
                },
            }),
            _ => Err(client.refused(shown, response)),
        }
    }

    /// A GET of `route` (below `/v1/`) with the token; `shown` names it in errors.
    fn get(&self, route: &str, shown: &str) -> Result<Response> {
        self.agent
            .get(format!("{}/v1/{route}", self.addr))
            .header("X-Vault-Token", self.token.as_str())
            .call()
            .map_err(|e| self.unreachable(shown, e))
    }

    /// A POST of the JSON `body` to `route` (below `/v1/`) with the token; `shown`
    /// names it in errors.
    fn post(&self, route: &str, shown: &str, body: &[u8]) -> Result<Response> {
        self.agent
            .post(format!("{}/v1/{route}", self.addr))
            .header("X-Vault-Token", self.token.as_str())
            .content_type("application/json")
            .send(body)
            .map_err(|e| self.unreachable(shown, e))
    }

    fn unreachable(&self, path: &str, e: ureq::Error) -> Error {
        Error::Remote {
            message: format!("OpenBao at {} ({path}): {e}", self.addr),
            hint: "check BAO_ADDR (or VAULT_ADDR) and that OpenBao is running and unsealed".into(),
        }
    }

    /// An answer other than the ones expected, as one line naming the address and path.
    fn refused(&self, path: &str, mut response: Response) -> Error {
        let status = response.status().as_u16();
        let errors: Errors = response.body_mut().read_json().unwrap_or_default();
        let said = errors.errors.join("; ").replace('\n', " ");
        let (what, hint) = match status {
            403 => (
                "permission denied".to_string(),
                "give the token a policy with create and update on this path (and read on its metadata)",
            ),
            404 => (
                format!("no such mount or route ({said})"),
                "enable a KV version 2 engine there (`bao secrets enable -path=MOUNT kv-v2`) or fix the rule's openbao mount",
            ),
            503 => (
                format!("OpenBao is sealed or not ready ({said})"),
                "unseal OpenBao, then run the command again",
            ),
            _ => (
                format!("HTTP {status} ({said})"),
                "check the rule's openbao mount and path, and OpenBao's logs",
            ),
        };
        Error::Remote {
            message: format!("OpenBao at {} ({path}): {what}", self.addr),
            hint: hint.into(),
        }
    }

    /// Writes `body` (a KV v2 write: `{"options":{"cas":N},"data":{…}}`) to
    /// `mount/path`.
    pub fn write(&self, mount: &str, path: &str, body: &[u8]) -> Result<Written> {
        let shown = format!("{mount}/{path}");
        let mut response = self.post(&format!("{mount}/data/{path}"), &shown, body)?;
        match response.status().as_u16() {
            200 | 204 => {
                let written: WriteResponse = response
                    .body_mut()
                    .read_json()
                    .map_err(|e| self.not_kv(&shown, e))?;
                Ok(Written::Version(written.data.version))
            }
            400 => {
                let errors: Errors = response.body_mut().read_json().unwrap_or_default();
                if errors.errors.iter().any(|e| e.contains("check-and-set")) {
                    Ok(Written::Conflict)
                } else {
                    Err(Error::Remote {
                        message: format!(
                            "OpenBao at {} ({shown}): {}",
                            self.addr,
                            errors.errors.join("; ").replace('\n', " ")
                        ),
                        hint: "check that the mount is a KV version 2 engine".into(),
                    })
                }
            }
            _ => Err(self.refused(&shown, response)),
        }
    }

    /// An answer of `shown` that is not what a KV version 2 engine gives.
    fn not_kv(&self, shown: &str, e: ureq::Error) -> Error {
        Error::Remote {
            message: format!("OpenBao at {} ({shown}): unexpected answer: {e}", self.addr),
            hint: "check that the mount is a KV version 2 engine".into(),
        }
    }

    /// The metadata of `mount/path`, `None` when nothing was ever written there.
    pub fn metadata(&self, mount: &str, path: &str) -> Result<Option<Metadata>> {
        let shown = format!("{mount}/{path}");
        let mut response = self.get(&format!("{mount}/metadata/{path}"), &shown)?;
        match response.status().as_u16() {
            200 => {
                let meta: MetaResponse = response
                    .body_mut()
                    .read_json()
                    .map_err(|e| self.not_kv(&shown, e))?;
                let current = meta
                    .data
                    .versions
                    .get(&meta.data.current_version.to_string());
                Ok(Some(Metadata {
                    current_version: meta.data.current_version,
                    deleted: current.is_some_and(|v| !v.deletion_time.is_empty()),
                    destroyed: current.is_some_and(|v| v.destroyed),
                }))
            }
            404 => {
                let errors: Errors = response.body_mut().read_json().unwrap_or_default();
                if errors.errors.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::Remote {
                        message: format!(
                            "OpenBao at {} ({shown}): no such mount ({})",
                            self.addr,
                            errors.errors.join("; ").replace('\n', " ")
                        ),
                        hint: "enable a KV version 2 engine there (`bao secrets enable -path=MOUNT kv-v2`) or fix the rule's openbao mount".into(),
                    })
                }
            }
            _ => Err(self.refused(&shown, response)),
        }
    }
}

#[derive(Deserialize)]
struct TransitResponse<'a> {
    #[serde(borrow)]
    data: TransitData<'a>,
}

#[derive(Deserialize)]
struct TransitData<'a> {
    #[serde(default, borrow)]
    ciphertext: Option<&'a str>,
    #[serde(default, borrow)]
    plaintext: Option<&'a str>,
}

/// Where a transit key is on its server: its engine's mount and its name.
pub struct TransitPath<'a> {
    pub engine: &'a str,
    pub key: &'a str,
}

impl TransitPath<'_> {
    fn shown(&self) -> String {
        format!("{}/keys/{}", self.engine, self.key)
    }
}

impl Client {
    /// Why OpenBao refused a transit call, as one line naming the address and the key.
    fn transit_refused(&self, at: &TransitPath, mut response: Response) -> Error {
        let status = response.status().as_u16();
        let errors: Errors = response.body_mut().read_json().unwrap_or_default();
        let said = errors.errors.join("; ").replace(['\n', '\t'], " ");
        let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
        let (engine, key) = (at.engine, at.key);
        let (what, hint) = match status {
            403 => (
                "permission denied".to_string(),
                format!(
                    "give the token a policy with update on {engine}/encrypt/{key} and {engine}/decrypt/{key}"
                ),
            ),
            404 => (
                format!("no transit engine there ({said})"),
                format!(
                    "enable it (`bao secrets enable -path={engine} transit`) or fix the reader's URL"
                ),
            ),
            400 if said.contains("not found") => (
                "no such transit key".to_string(),
                format!("create it (`bao write -f {engine}/keys/{key}`) or fix the reader's URL"),
            ),
            503 => (
                format!("OpenBao is sealed or not ready ({said})"),
                "unseal OpenBao, then run the command again".to_string(),
            ),
            _ => (
                format!("HTTP {status} ({said})"),
                "check the transit key and OpenBao's logs".to_string(),
            ),
        };
        Error::Remote {
            message: format!("OpenBao at {} ({}): {what}", self.addr, at.shown()),
            hint,
        }
    }

    /// Calls transit's `op` (`encrypt`, `decrypt`) of the key at `at` with the JSON
    /// `body`, and gives the data of its answer to `read`.
    fn transit_call<T>(
        &self,
        at: &TransitPath,
        op: &str,
        body: &[u8],
        read: impl FnOnce(TransitData) -> Result<T>,
    ) -> Result<T> {
        let route = format!("{}/{op}/{}", at.engine, at.key);
        let mut response = self.post(&route, &at.shown(), body)?;
        if response.status().as_u16() != 200 {
            return Err(self.transit_refused(at, response));
        }
        // Read into room enough for any answer, so that the buffer holding the data
        // key is never reallocated (leaving copies behind).
        const ROOM: usize = 64 << 10;
        let mut answer = Zeroizing::new(Vec::with_capacity(ROOM));
        std::io::Read::read_to_end(
            &mut std::io::Read::take(response.body_mut().as_reader(), ROOM as u64 - 1),
            &mut answer,
        )
        .map_err(|e| Error::Remote {
            message: format!("OpenBao at {} ({}): {e}", self.addr, at.shown()),
            hint: "check BAO_ADDR (or VAULT_ADDR) and that OpenBao is running and unsealed".into(),
        })?;
        let parsed: TransitResponse =
            serde_json::from_slice(&answer).map_err(|_| self.unexpected(at, "not JSON"))?;
        read(parsed.data)
    }

    fn unexpected(&self, at: &TransitPath, what: &str) -> Error {
        Error::Remote {
            message: format!(
                "OpenBao at {} ({}): unexpected answer: {what}",
                self.addr,
                at.shown()
            ),
            hint: "check that the engine is a transit engine".into(),
        }
    }

    /// Whether the transit key exists, when the token may read it (`None` when it
    /// may not: then only a call with it tells).
    pub fn transit_key_exists(&self, at: &TransitPath) -> Result<Option<bool>> {
        let route = format!("{}/keys/{}", at.engine, at.key);
        let mut response = self.get(&route, &at.shown())?;
        match response.status().as_u16() {
            200 => Ok(Some(true)),
            // An unknown key answers 404 and no error; an engine that is not there,
            // 404 and "no handler", which the encrypt call that follows reports.
            404 => {
                let errors: Errors = response.body_mut().read_json().unwrap_or_default();
                Ok(errors.errors.is_empty().then_some(false))
            }
            _ => Ok(None),
        }
    }

    /// Wraps `data_key` with the transit key: the ciphertext (`vault:v1:…`) transit
    /// returns, which names no key material.
    pub fn transit_encrypt(&self, at: &TransitPath, data_key: &[u8]) -> Result<String> {
        use base64::Engine;
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(data_key));
        let mut body = Zeroizing::new(Vec::with_capacity(encoded.len() + 16));
        body.extend_from_slice(b"{\"plaintext\":\"");
        body.extend_from_slice(encoded.as_bytes());
        body.extend_from_slice(b"\"}");
        self.transit_call(at, "encrypt", &body, |data| match data.ciphertext {
            Some(c) if c.starts_with("vault:") => Ok(c.to_string()),
            _ => Err(self.unexpected(at, "no ciphertext")),
        })
    }

    /// Unwraps a data key the transit key wrapped (`vault:v1:…`), into zeroized
    /// memory.
    pub fn transit_decrypt(
        &self,
        at: &TransitPath,
        ciphertext: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        use base64::Engine;
        let body = serde_json::to_vec(&serde_json::json!({ "ciphertext": ciphertext }))
            .unwrap_or_default();
        self.transit_call(at, "decrypt", &body, |data| {
            let Some(plain) = data.plaintext else {
                return Err(self.unexpected(at, "no plaintext"));
            };
            let mut key = Zeroizing::new(vec![0u8; plain.len()]);
            let n = base64::engine::general_purpose::STANDARD
                .decode_slice(plain.as_bytes(), &mut key[..])
                .map_err(|_| self.unexpected(at, "plaintext is not base64"))?;
            key.truncate(n);
            Ok(key)
        })
    }
}

/// The body of a KV v2 write of `fields` with check-and-set `cas`, in zeroized memory.
pub fn write_body(cas: u64, fields: &[(String, Zeroizing<String>)]) -> Zeroizing<Vec<u8>> {
    struct Data<'a>(&'a [(String, Zeroizing<String>)]);
    impl serde::Serialize for Data<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in self.0 {
                map.serialize_entry(k, v.as_str())?;
            }
            map.end()
        }
    }
    #[derive(serde::Serialize)]
    struct Options {
        cas: u64,
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        options: Options,
        data: Data<'a>,
    }
    let body = Body {
        options: Options { cas },
        data: Data(fields),
    };
    // Sized first, so that the buffer is never reallocated (leaving copies behind).
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, &body);
    let mut out = Zeroizing::new(Vec::with_capacity(count.0));
    let _ = serde_json::to_writer(&mut *out, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_body_holds_the_cas_and_every_field_as_a_string() {
        let fields = vec![
            ("user".to_string(), Zeroizing::new("a\"b".to_string())),
            ("port".to_string(), Zeroizing::new("8080".to_string())),
        ];
        let body = write_body(3, &fields);
        assert_eq!(body.len(), body.capacity());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"options": {"cas": 3}, "data": {"user": "a\"b", "port": "8080"}})
        );
    }
}
