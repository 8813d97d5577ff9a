//! Who can read a secret: age X25519 recipients, SSH public keys and age plugin
//! recipients, parsed from the lines users paste (authorized_keys, known_hosts,
//! ssh-keyscan output), and the ssh-ed25519 → age conversion ssh-to-age does.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bech32::{Bech32, Hrp};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use sha2::{Digest, Sha512};
use ssh_key::{HashAlg, PublicKey};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Location, Result};

const AGE_RECIPIENT_HRP: &str = "age";
const AGE_IDENTITY_HRP: &str = "age-secret-key-";

/// One public key that a secret can be encrypted to.
#[derive(Clone)]
pub enum Recipient {
    /// `age1…`: a native age X25519 key.
    X25519(X25519Key),
    /// `ssh-ed25519 AAAA…`: an SSH key, used natively by age (agenix) or converted.
    SshEd25519(SshKey),
    /// `ssh-rsa AAAA…`: only usable natively (agenix); it has no X25519 form.
    SshRsa(SshKey),
    /// `age1<plugin>1…`: handled by an `age-plugin-<name>` program.
    Plugin(age::plugin::Recipient),
    /// `transit:URL`: an OpenBao (or Vault) transit key that wraps a sops file's
    /// data key (sops's `hc_vault`).
    Transit(TransitKey),
}

/// An age X25519 recipient and its `age1…` text, encoded once: a rekey names every
/// recipient of every file it rewrites (in the file, the lock and the checks), and
/// encoding the key anew each time costs about what hashing the file does.
#[derive(Clone)]
pub struct X25519Key {
    key: age::x25519::Recipient,
    text: Box<str>,
}

impl X25519Key {
    /// The age library's recipient.
    pub fn key(&self) -> &age::x25519::Recipient {
        &self.key
    }

    /// The `age1…` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<age::x25519::Recipient> for X25519Key {
    fn from(key: age::x25519::Recipient) -> X25519Key {
        let text = key.to_string().into_boxed_str();
        X25519Key { key, text }
    }
}

/// The prefix of a transit key as a policy names it.
pub const TRANSIT_PREFIX: &str = "transit:";

/// An OpenBao transit key, as sops records it: the server's address, the path the
/// transit engine is mounted at, and the key's name. Its URL is
/// `ADDRESS/v1/ENGINE/keys/NAME`, the form `sops --hc-vault-transit` takes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TransitKey {
    pub address: String,
    pub engine_path: String,
    pub key_name: String,
}

impl TransitKey {
    /// Reads `transit:URL` (the prefix may be left out), `URL` as
    /// `http(s)://HOST[:PORT]/v1/ENGINE/keys/NAME`; the reason says what is wrong.
    pub fn parse(text: &str) -> std::result::Result<TransitKey, String> {
        let url = text.strip_prefix(TRANSIT_PREFIX).unwrap_or(text);
        let form = "write it as transit:https://HOST:PORT/v1/ENGINE/keys/NAME";
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!("{url:?} is not a URL; {form}"));
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!("{url:?}: the scheme is http or https; {form}"));
        }
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '\\'))
        {
            return Err(format!(
                "{url:?} holds a space, a query or a fragment; {form}"
            ));
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() || host.contains('@') {
            return Err(format!("{url:?} names no host (or holds a user); {form}"));
        }
        let segments: Vec<&str> = path.split('/').collect();
        let n = segments.len();
        if n < 4
            || segments[0] != "v1"
            || segments[n - 2] != "keys"
            || segments
                .iter()
                .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(format!("{url:?} is not a transit key's URL; {form}"));
        }
        Ok(TransitKey {
            address: format!("{scheme}://{host}"),
            engine_path: segments[1..n - 2].join("/"),
            key_name: segments[n - 1].to_string(),
        })
    }

    /// `ADDRESS/v1/ENGINE/keys/NAME`, as sops names the key.
    pub fn url(&self) -> String {
        format!(
            "{}/v1/{}/keys/{}",
            self.address, self.engine_path, self.key_name
        )
    }

    /// `ENGINE/keys/NAME`: where the key is, on its server.
    pub fn path(&self) -> String {
        format!("{}/keys/{}", self.engine_path, self.key_name)
    }

    /// A stable identifier of the URL: `transit:` and the hex SHA-256 of the URL.
    pub fn fingerprint(&self) -> String {
        let digest = sha2::Sha256::digest(self.url().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{TRANSIT_PREFIX}{hex}")
    }
}

/// An SSH public key as it was written (type, base64 blob, comment).
#[derive(Clone)]
pub struct SshKey {
    key: PublicKey,
    comment: String,
}

impl SshKey {
    /// `type base64` without the comment: the form age and agenix expect.
    pub fn openssh(&self) -> String {
        let mut key = self.key.clone();
        key.set_comment("");
        key.to_openssh().unwrap_or_default().trim().to_string()
    }

    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    fn ed25519_bytes(&self) -> Option<[u8; 32]> {
        self.key.key_data().ed25519().map(|k| k.0)
    }
}

/// Why a key of another type is refused where a host key is expected.
pub const HOST_KEY_PURPOSE: &str = "(a host is named by its ssh-ed25519 host key)";

impl Recipient {
    /// Parses one line: an age recipient, or an SSH public key in authorized_keys,
    /// known_hosts or ssh-keyscan form. `at` names where the line came from.
    pub fn parse_line(line: &str, at: &Location) -> Result<Recipient> {
        let line = line.trim_start_matches('\u{feff}').trim();
        // A value of several lines (a YAML block scalar) would be read as its first
        // key, the rest taken for a comment.
        if line.contains(['\n', '\r']) {
            return Err(invalid(
                at,
                "a key value holds one key on one line, and this one has several lines",
            ));
        }
        let tokens = fields(line);
        let Some(first) = tokens.first() else {
            return Err(invalid(at, "empty line where a key was expected"));
        };
        if first.starts_with("age1") {
            if tokens.len() > 1 {
                return Err(invalid(at, "an age recipient stands alone on its line"));
            }
            return parse_age(first, at);
        }
        let Some(i) = tokens.iter().position(|t| looks_like_key_type(t)) else {
            return Err(invalid(
                at,
                "no age recipient or SSH public key on this line",
            ));
        };
        let key_type = tokens[i];
        let Some(blob) = tokens.get(i + 1) else {
            return Err(invalid(
                at,
                &format!("{key_type} key without its base64 data"),
            ));
        };
        // The comment is the rest of the line after the key, where quotes mean nothing.
        let after_blob = blob.as_ptr() as usize - line.as_ptr() as usize + blob.len();
        let comment = line[after_blob..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match key_type {
            "ssh-ed25519" | "ssh-rsa" => {}
            other => {
                return Err(Error::UnsupportedKey {
                    at: at.clone(),
                    key_type: other.to_string(),
                    purpose: Some("(keys uses ssh-ed25519, ssh-rsa for agenix only, and age keys)"),
                });
            }
        }
        let malformed = || invalid(at, &format!("malformed {key_type} public key"));
        let key =
            PublicKey::from_openssh(&format!("{key_type} {blob}")).map_err(|_| malformed())?;
        // ssh-key reads some blobs OpenSSH refuses (stray bits in a length prefix) as
        // a valid key; only the canonical encoding of the key it read is accepted.
        if key.to_bytes().ok() != STANDARD.decode(blob).ok() {
            return Err(malformed());
        }
        if key.algorithm().as_str() != key_type {
            return Err(invalid(
                at,
                &format!("key data is {}, not {key_type}", key.algorithm().as_str()),
            ));
        }
        let ssh = SshKey { key, comment };
        if key_type == "ssh-ed25519" {
            if let Some(flaw) = flaw_of(Curve::Ed25519, &ssh.ed25519_bytes().unwrap_or_default()) {
                return Err(flaw.error(at, "ssh-ed25519 key"));
            }
            Ok(Recipient::SshEd25519(ssh))
        } else {
            // Refused here, where the key is named, rather than when encrypting to it.
            use age::ssh::ParseRecipientKeyError as Refused;
            match age::ssh::Recipient::from_str(&ssh.openssh()) {
                Ok(_) => match ssh.key.key_data().rsa().and_then(rsa_flaw) {
                    Some(reason) => Err(Error::WeakKey {
                        at: at.clone(),
                        reason: format!("ssh-rsa key {reason}"),
                    }),
                    None => Ok(Recipient::SshRsa(ssh)),
                },
                Err(Refused::RsaModulusTooSmall) => Err(invalid(
                    at,
                    "ssh-rsa key under 2048 bits, which age refuses as weak",
                )),
                Err(Refused::RsaModulusTooLarge) => Err(invalid(
                    at,
                    "ssh-rsa key over 4096 bits, which age does not support",
                )),
                Err(_) => Err(invalid(at, "malformed ssh-rsa public key")),
            }
        }
    }

    /// An ssh-ed25519 key taken as it is, without the checks of [`Recipient::parse_line`]:
    /// for testing the layers that must not rely on them.
    #[cfg(test)]
    pub(crate) fn ssh_ed25519_unchecked(point: [u8; 32]) -> Recipient {
        let data = ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(point));
        Recipient::SshEd25519(SshKey {
            key: PublicKey::new(data, ""),
            comment: String::new(),
        })
    }

    /// Parses every key in a text: one per non-blank line, `#` comments skipped.
    pub fn parse_all(text: &str, file: &str) -> Result<Vec<(u64, Recipient)>> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim_start_matches('\u{feff}').trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let line_no = n as u64 + 1;
            let at = Location::named(file).at_line(line_no);
            out.push((line_no, Recipient::parse_line(trimmed, &at)?));
        }
        Ok(out)
    }

    /// The kind, as shown to users.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::X25519(_) => "age",
            Recipient::SshEd25519(_) => "ssh-ed25519",
            Recipient::SshRsa(_) => "ssh-rsa",
            Recipient::Plugin(_) => "age-plugin",
            Recipient::Transit(_) => "transit",
        }
    }

    /// The derived `age1…` recipient, for consumers that convert SSH keys (sops-nix).
    pub fn to_x25519(&self) -> Option<String> {
        match self {
            Recipient::X25519(r) => Some(r.as_str().to_string()),
            Recipient::SshEd25519(k) => k.ed25519_bytes().and_then(|b| ssh_ed25519_to_age(&b)),
            Recipient::SshRsa(_) | Recipient::Plugin(_) | Recipient::Transit(_) => None,
        }
    }

    /// A stable identifier: the `age1…` string, or the SSH key's SHA256 fingerprint
    /// (a transit key's: `transit:` and the SHA-256 of its URL).
    pub fn fingerprint(&self) -> String {
        match self {
            Recipient::X25519(r) => r.as_str().to_string(),
            Recipient::Plugin(r) => r.to_string(),
            Recipient::SshEd25519(k) | Recipient::SshRsa(k) => k.fingerprint(),
            Recipient::Transit(t) => t.fingerprint(),
        }
    }

    /// The short fingerprint `keys.lock` records (`short_id`).
    pub fn lock_id(&self) -> String {
        short_id(&self.fingerprint()).to_string()
    }

    /// The tag an age `ssh-ed25519` or `ssh-rsa` stanza carries for this key: the first
    /// four bytes of the SHA-256 of its wire encoding, unpadded base64. Lets a file's
    /// header be matched to a key without any private key.
    pub fn ssh_tag(&self) -> Option<String> {
        match self {
            Recipient::SshEd25519(k) | Recipient::SshRsa(k) => {
                use base64::Engine;
                use sha2::Digest;
                let wire = k.key.to_bytes().ok()?;
                let digest = sha2::Sha256::digest(&wire);
                Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..4]))
            }
            Recipient::X25519(_) | Recipient::Plugin(_) | Recipient::Transit(_) => None,
        }
    }

    /// The X25519 public key (Montgomery u) that age wraps a file key to for this
    /// recipient: the key itself, or the converted ssh-ed25519 key. `None` for keys
    /// without one (ssh-rsa, plugins) and for an ssh-ed25519 key off the curve.
    pub fn montgomery_u(&self) -> Option<[u8; 32]> {
        match self {
            Recipient::X25519(r) => Some(x25519_bytes(r.as_str())),
            Recipient::SshEd25519(k) => k.ed25519_bytes().and_then(|b| ed25519_to_x25519(&b)),
            Recipient::SshRsa(_) | Recipient::Plugin(_) | Recipient::Transit(_) => None,
        }
    }

    /// Whether this X25519 or ssh-ed25519 key passed every check of a key read in
    /// this run (so it is, among other things, of no small order).
    pub fn found_sound(&self) -> bool {
        let key = match self {
            Recipient::X25519(r) => (Curve::X25519, x25519_bytes(r.as_str())),
            Recipient::SshEd25519(k) => match k.ed25519_bytes() {
                Some(bytes) => (Curve::Ed25519, bytes),
                None => return false,
            },
            Recipient::SshRsa(_) | Recipient::Plugin(_) | Recipient::Transit(_) => return false,
        };
        sound().contains(&key)
    }

    /// The 32 bytes of an ssh-ed25519 key; `None` for any other.
    pub fn ed25519_key(&self) -> Option<[u8; 32]> {
        match self {
            Recipient::SshEd25519(k) => k.ed25519_bytes(),
            _ => None,
        }
    }

    /// The age library's recipient for a native (non-plugin) key.
    pub fn age_recipient(&self) -> Option<Box<dyn age::Recipient + Send>> {
        match self {
            Recipient::X25519(r) => Some(Box::new(r.key().clone())),
            Recipient::SshEd25519(k) | Recipient::SshRsa(k) => {
                age::ssh::Recipient::from_str(&k.openssh())
                    .ok()
                    .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
            }
            Recipient::Plugin(_) | Recipient::Transit(_) => None,
        }
    }

    /// The one ssh-ed25519 key among the lines of `text` (a public key file, or
    /// known_hosts or ssh-keyscan lines): a host's key. Other key types are refused
    /// by name, `origin` and the line.
    pub fn host_key_in(text: &str, origin: &str) -> Result<Recipient> {
        let mut found: Option<Recipient> = None;
        let mut refused: Option<Error> = None;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let at = Location::named(origin).at_line(n as u64 + 1);
            match Recipient::parse_line(trimmed, &at) {
                Ok(r @ Recipient::SshEd25519(_)) => match &found {
                    Some(f) if f.fingerprint() != r.fingerprint() => {
                        return Err(Error::InvalidFile {
                            at,
                            reason:
                                "a second, different ssh-ed25519 key; give the file one host key"
                                    .into(),
                        });
                    }
                    Some(_) => {}
                    None => found = Some(r),
                },
                Ok(other) => {
                    refused.get_or_insert(Error::UnsupportedKey {
                        at,
                        key_type: other.kind().to_string(),
                        purpose: Some(HOST_KEY_PURPOSE),
                    });
                }
                // A forged key is never passed over for another line.
                Err(e @ Error::WeakKey { .. }) => return Err(e),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        match (found, refused) {
            (Some(r), _) => Ok(r),
            (None, Some(e)) => Err(e),
            (None, None) => Err(Error::InvalidKey {
                at: Location::named(origin),
                reason: "no ssh-ed25519 public key in this file".into(),
            }),
        }
    }
}

impl fmt::Display for Recipient {
    /// The canonical one-line form (SSH keys without their comment).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::X25519(r) => f.write_str(r.as_str()),
            Recipient::Plugin(r) => write!(f, "{r}"),
            Recipient::SshEd25519(k) | Recipient::SshRsa(k) => f.write_str(&k.openssh()),
            Recipient::Transit(t) => write!(f, "{TRANSIT_PREFIX}{}", t.url()),
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

/// How many characters of key data a short fingerprint keeps: 60 bits of an age
/// key's bech32, 72 of an SSH key's SHA-256 in base64.
const SHORT: usize = 12;

/// The short fingerprint the lock records for a recipient's full one: an `age1…`
/// string (or a plugin's `age1name1…`) up to its last `1` and 12 characters after it,
/// or `SHA256:` and the first 12 characters of an SSH key's fingerprint. It is how
/// users know the key (a prefix, like a short git hash), and it keeps a large fleet's
/// lock small, which every command that writes reads and rewrites whole. A full
/// fingerprint, as older locks hold, shortens to the same value. A transit key's is
/// `transit:` and 12 hex digits of the SHA-256 of its URL.
pub fn short_id(fingerprint: &str) -> &str {
    let data = if fingerprint.starts_with("SHA256:") {
        "SHA256:".len()
    } else if fingerprint.starts_with(TRANSIT_PREFIX) {
        TRANSIT_PREFIX.len()
    } else {
        fingerprint.rfind('1').map_or(0, |i| i + 1)
    };
    fingerprint.get(..data + SHORT).unwrap_or(fingerprint)
}

fn parse_age(token: &str, at: &Location) -> Result<Recipient> {
    if let Ok(r) = age::x25519::Recipient::from_str(token) {
        let r = X25519Key::from(r);
        if let Some(flaw) = flaw_of(Curve::X25519, &x25519_bytes(r.as_str())) {
            return Err(flaw.error(at, "age recipient"));
        }
        return Ok(Recipient::X25519(r));
    }
    if let Ok(r) = age::plugin::Recipient::from_str(token) {
        return Ok(Recipient::Plugin(r));
    }
    Err(invalid(
        at,
        "malformed age recipient (bad bech32 or length)",
    ))
}

/// The blank-separated fields of a key line, as sshd splits an authorized_keys line:
/// a blank inside double quotes (`command="a b"`) does not split, nor does `\"`
/// end the quotes.
fn fields(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                out.push(&line[s..i]);
            }
            continue;
        }
        start.get_or_insert(i);
        if c == '"' && !escaped {
            quoted = !quoted;
        }
        escaped = c == '\\';
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

fn looks_like_key_type(token: &str) -> bool {
    token.starts_with("ssh-")
        || token.starts_with("ecdsa-sha2-")
        || token.starts_with("sk-ssh-")
        || token.starts_with("sk-ecdsa-")
}

fn invalid(at: &Location, reason: &str) -> Error {
    Error::InvalidKey {
        at: at.clone(),
        reason: reason.to_string(),
    }
}

/// The 32 bytes of an `age1…` key (its Montgomery u, as written).
fn x25519_bytes(text: &str) -> [u8; 32] {
    let mut u = [0u8; 32];
    if let Ok((_, data)) = bech32::decode(text)
        && data.len() == 32
    {
        u.copy_from_slice(&data);
    }
    u
}

/// What makes a public key unusable although it decodes. An honest key (a secret
/// scalar times the base point) is a canonically encoded point of the prime-order
/// subgroup, never the identity, so it has none of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// The bytes are no point of the curve at all.
    NotOnCurve,
    /// A u-coordinate of the twist of Curve25519, not of the curve.
    OnTwist,
    /// The identity or a point of order 2, 4 or 8: every shared secret with it is
    /// fixed, so anyone can compute the key that wraps what is sealed to it.
    SmallOrder,
    /// A point written in a form no key generator writes (y or u not reduced, or
    /// the sign bit set on x = 0).
    NonCanonical,
    /// A real key with a small-order point added.
    MixedOrder,
}

impl Flaw {
    fn error(self, at: &Location, kind: &str) -> Error {
        let reason = match self {
            Flaw::NotOnCurve => return invalid(at, &format!("{kind} is not a valid curve point")),
            Flaw::OnTwist => "is not a point of Curve25519 (it lies on the twist)",
            Flaw::SmallOrder => {
                "is a small-order point (anyone could decrypt what is sealed to it)"
            }
            Flaw::NonCanonical => "has a non-canonical encoding (no key generator writes it)",
            Flaw::MixedOrder => "has a small-order component (no key generator makes one)",
        };
        Error::WeakKey {
            at: at.clone(),
            reason: format!("{kind} {reason}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Curve {
    Ed25519,
    X25519,
}

/// Why a public key is refused, if it is. Keys found sound are remembered for the
/// run: a key read again (every sops file names its recipients) costs a lookup,
/// not the point arithmetic.
fn flaw_of(curve: Curve, bytes: &[u8; 32]) -> Option<Flaw> {
    let key = (curve, *bytes);
    if sound().contains(&key) {
        return None;
    }
    let flaw = match curve {
        Curve::Ed25519 => ed25519_flaw(bytes),
        Curve::X25519 => x25519_flaw(bytes),
    };
    if flaw.is_none() {
        sound().insert(key);
    }
    flaw
}

/// The keys `flaw_of` found sound in this run.
fn sound() -> std::sync::MutexGuard<'static, BTreeSet<(Curve, [u8; 32])>> {
    static SOUND: Mutex<BTreeSet<(Curve, [u8; 32])>> = Mutex::new(BTreeSet::new());
    SOUND.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why an ed25519 public key is refused, if it is.
fn ed25519_flaw(bytes: &[u8; 32]) -> Option<Flaw> {
    let Some(point) = CompressedEdwardsY(*bytes).decompress() else {
        return Some(Flaw::NotOnCurve);
    };
    point_flaw(&point, point.compress().0 == *bytes)
}

/// Why an ssh-rsa public key age accepts is refused, if it is: its exponent is no
/// RSA exponent, or its modulus factors in ways anyone can find (prime, a small
/// factor, or two factors so close that the first steps of Fermat's method find
/// them), so anyone could compute its private key. Moduli found sound are
/// remembered for the run: each check costs a modular exponentiation.
fn rsa_flaw(key: &ssh_key::public::RsaPublicKey) -> Option<&'static str> {
    use num_bigint_dig::BigUint;
    static SOUND: Mutex<BTreeSet<Vec<u8>>> = Mutex::new(BTreeSet::new());
    let (Some(n), Some(e)) = (key.n.as_positive_bytes(), key.e.as_positive_bytes()) else {
        return Some("has a modulus or exponent that is not a positive number");
    };
    let sound = || SOUND.lock().unwrap_or_else(PoisonError::into_inner);
    if sound().contains(n) {
        return None;
    }
    let (modulus, e) = (BigUint::from_bytes_be(n), BigUint::from_bytes_be(e));
    let even = |x: &BigUint| x % 2u32 == BigUint::from(0u32);
    let is_square = |x: &BigUint| {
        let root = x.sqrt();
        &root * &root == *x
    };
    let flaw = if e < BigUint::from(3u32) || even(&e) {
        Some("has a public exponent that is even or under 3 (no RSA key has one)")
    } else if even(&modulus) || small_primes().any(|p| &modulus % p == BigUint::from(0u32)) {
        Some("has a small prime factor (anyone could compute its private key)")
    } else if num_bigint_dig::prime::probably_prime(&modulus, 20) {
        Some("has a prime modulus (anyone could compute its private key)")
    } else {
        // Fermat: n = a² − b² for a just above √n when the factors are close.
        let root = modulus.sqrt();
        let close = (0u32..=FERMAT_STEPS).any(|k| {
            let a = &root + BigUint::from(k);
            let square = &a * &a;
            square >= modulus && is_square(&(square - &modulus))
        });
        close.then_some("has two factors so close that anyone could find them")
    };
    if flaw.is_none() {
        sound().insert(n.to_vec());
    }
    flaw
}

/// How many steps of Fermat's method `rsa_flaw` takes: each step past the first
/// adds little, as the first already finds factors within about n^¼ of each other.
const FERMAT_STEPS: u32 = 4;

/// The primes below 10,000, by a sieve.
fn small_primes() -> impl Iterator<Item = u32> {
    const BELOW: usize = 10_000;
    let mut composite = vec![false; BELOW];
    (2..BELOW).filter_map(move |i| {
        if composite[i] {
            return None;
        }
        (i * i..BELOW).step_by(i).for_each(|j| composite[j] = true);
        u32::try_from(i).ok()
    })
}

/// Why an X25519 public key (a Montgomery u-coordinate) is refused, if it is.
fn x25519_flaw(u: &[u8; 32]) -> Option<Flaw> {
    // The curve point with this u (either sign: the subgroup is closed under negation).
    let Some(point) = MontgomeryPoint(*u).to_edwards(0) else {
        return Some(if is_low_order_u(u) {
            Flaw::SmallOrder
        } else {
            Flaw::OnTwist
        });
    };
    point_flaw(&point, point.to_montgomery().0 == *u)
}

/// Why a curve point read from a key is refused, if it is: of small order, read
/// from an encoding that is not its own (`canonical` false), or with a small-order
/// component.
fn point_flaw(point: &EdwardsPoint, canonical: bool) -> Option<Flaw> {
    if point.is_small_order() {
        Some(Flaw::SmallOrder)
    } else if !canonical {
        Some(Flaw::NonCanonical)
    } else if !point.is_torsion_free() {
        Some(Flaw::MixedOrder)
    } else {
        None
    }
}

/// Whether X25519 with `u` gives the all-zero shared secret whatever the secret
/// scalar: a clamped scalar is 8 times a number below both prime orders (of the
/// curve's subgroup and of the twist's), so its product with `u` is zero exactly
/// when 8 times `u` is, that is when `u` has order 1, 2, 4 or 8, on the curve or
/// on its twist (however `u` is encoded). Three doublings of the ladder, not a
/// scalar multiplication.
pub fn is_low_order_u(u: &[u8; 32]) -> bool {
    // 8, most significant bit first.
    let eight = [true, false, false, false];
    MontgomeryPoint(*u).mul_bits_be(eight.into_iter()).0 == [0u8; 32]
}

fn ed25519_to_x25519(ed: &[u8; 32]) -> Option<[u8; 32]> {
    let point = CompressedEdwardsY(*ed).decompress()?;
    Some(point.to_montgomery().to_bytes())
}

/// The `age1…` recipient of an ssh-ed25519 public key (Montgomery form, bech32).
pub fn ssh_ed25519_to_age(ed: &[u8; 32]) -> Option<String> {
    let x = ed25519_to_x25519(ed)?;
    bech32::encode::<Bech32>(Hrp::parse(AGE_RECIPIENT_HRP).ok()?, &x).ok()
}

/// The `AGE-SECRET-KEY-1…` identity of an ed25519 private key, from its 32-byte seed:
/// the first 32 bytes of SHA-512(seed), unclamped, as ssh-to-age prints it.
pub fn ssh_ed25519_seed_to_age_identity(seed: &[u8]) -> Zeroizing<String> {
    let mut digest = Sha512::digest(seed);
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&digest[..32]);
    digest.as_mut_slice().zeroize();
    let hrp = Hrp::parse(AGE_IDENTITY_HRP).expect("constant HRP is valid");
    let mut lower = bech32::encode::<Bech32>(hrp, &scalar).expect("32 bytes fit in bech32");
    scalar.zeroize();
    let upper = Zeroizing::new(lower.to_uppercase());
    lower.zeroize();
    upper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_urls_are_read_as_sops_reads_them() {
        for (text, want) in [
            (
                "transit:http://127.0.0.1:8200/v1/transit/keys/ci",
                Ok(("http://127.0.0.1:8200", "transit", "ci")),
            ),
            (
                "https://bao.example.org/v1/team/a/transit/keys/deploy-key",
                Ok(("https://bao.example.org", "team/a/transit", "deploy-key")),
            ),
            (
                "transit:127.0.0.1:8200/v1/transit/keys/ci",
                Err("not a URL"),
            ),
            ("transit:ftp://h/v1/transit/keys/ci", Err("scheme")),
            ("transit:http://h/v1/transit/ci", Err("not a transit key")),
            (
                "transit:http://h/v2/transit/keys/ci",
                Err("not a transit key"),
            ),
            ("transit:http://h/v1/keys/ci", Err("not a transit key")),
            (
                "transit:http://h/v1/transit/keys/",
                Err("not a transit key"),
            ),
            ("transit:http://h/v1/t/../keys/ci", Err("not a transit key")),
            ("transit:http://h/v1/transit/keys/ci?x=1", Err("query")),
            ("transit:http:///v1/transit/keys/ci", Err("no host")),
            ("transit:http://u@h/v1/transit/keys/ci", Err("no host")),
        ] {
            match (TransitKey::parse(text), want) {
                (Ok(k), Ok((address, engine, name))) => {
                    assert_eq!(
                        (
                            k.address.as_str(),
                            k.engine_path.as_str(),
                            k.key_name.as_str()
                        ),
                        (address, engine, name),
                        "{text}"
                    );
                    assert_eq!(TransitKey::parse(&k.url()), Ok(k.clone()), "{text}");
                }
                (Err(reason), Err(part)) => assert!(reason.contains(part), "{text}: {reason}"),
                (got, want) => panic!("{text}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_transit_key_is_named_by_its_url_and_locked_by_a_short_hash_of_it() {
        let key = TransitKey::parse("transit:http://127.0.0.1:8200/v1/transit/keys/ci").unwrap();
        let r = Recipient::Transit(key.clone());
        assert_eq!(
            r.to_string(),
            "transit:http://127.0.0.1:8200/v1/transit/keys/ci"
        );
        assert_eq!(r.kind(), "transit");
        let id = r.lock_id();
        assert_eq!(id.len(), "transit:".len() + 12);
        assert!(r.fingerprint().starts_with(&id));
        assert_eq!(short_id(&id), id);
        assert!(r.to_x25519().is_none() && r.age_recipient().is_none());
        let other = TransitKey::parse("transit:http://127.0.0.1:8200/v1/transit/keys/cd").unwrap();
        assert_ne!(Recipient::Transit(other).lock_id(), id);
    }
    use proptest::prelude::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";

    fn at() -> Location {
        Location::named("test").at_line(1)
    }

    #[test]
    fn picks_the_ed25519_key_and_names_other_types() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";
        let text = format!("# comment\n[h]:22 ssh-rsa AAAAB3NzaC1yc2E\n[h]:22 {key}\n");
        assert!(matches!(
            Recipient::host_key_in(&text, "f").unwrap(),
            Recipient::SshEd25519(_)
        ));
        let err = Recipient::host_key_in("h ecdsa-sha2-nistp256 AAAAE2VjZHNh\n", "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ecdsa-sha2-nistp256"), "{err}");
    }

    #[test]
    fn parses_the_forms_users_paste() {
        let cases = [
            (ED.to_string(), "ssh-ed25519"),
            (format!("{ED} alice@laptop"), "ssh-ed25519"),
            (format!("no-pty,command=\"x\" {ED} c"), "ssh-ed25519"),
            (format!("[vps-arm]:2222 {ED}"), "ssh-ed25519"),
            (format!("vps-x86,203.0.113.10 {ED}\r"), "ssh-ed25519"),
            (format!("@cert-authority *.example {ED}"), "ssh-ed25519"),
            (
                "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".to_string(),
                "age",
            ),
        ];
        for (line, kind) in cases {
            let r = Recipient::parse_line(&line, &at()).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(r.kind(), kind, "{line}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let cases = [
            ("", "empty"),
            ("age1notbech32", "malformed age"),
            ("ssh-ed25519", "without its base64"),
            ("ssh-ed25519 AAAA", "malformed"),
            (
                "ecdsa-sha2-nistp256 AAAAE2VjZHNh",
                "unsupported key type ecdsa-sha2-nistp256",
            ),
            ("ssh-dss AAAAB3NzaC1kc3M", "unsupported key type ssh-dss"),
            (
                "sk-ssh-ed25519@openssh.com AAAA",
                "unsupported key type sk-ssh-ed25519",
            ),
            ("hello world", "no age recipient"),
            // ED with a stray bit in the point's length prefix (0x20 -> 0x10020).
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAEAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5",
                "malformed ssh-ed25519",
            ),
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5",
                "malformed ssh-rsa",
            ),
        ];
        for (line, want) in cases {
            let err = Recipient::parse_line(line, &at()).unwrap_err().to_string();
            assert!(err.starts_with("test:1: "), "{err}");
            assert!(err.contains(want), "{line:?} gave {err:?}");
        }
    }

    #[test]
    fn plugin_and_rsa_recipients_parse_but_have_no_x25519_form() {
        let hrp = Hrp::parse("age1yubikey").unwrap();
        let plugin = bech32::encode::<Bech32>(hrp, &[7u8; 33]).unwrap();
        let r = Recipient::parse_line(&plugin, &at()).unwrap();
        assert_eq!((r.kind(), r.to_x25519()), ("age-plugin", None));
        let rsa = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/keys/rsa-01.pub"
        ))
        .unwrap();
        let r = Recipient::parse_line(&rsa, &at()).unwrap();
        assert_eq!((r.kind(), r.to_x25519()), ("ssh-rsa", None));
        assert!(
            r.age_recipient().is_some(),
            "agenix can still encrypt to ssh-rsa"
        );
        assert!(r.fingerprint().starts_with("SHA256:"));
    }

    /// Found by fuzzing: an ssh-rsa key age will not encrypt to (modulus over 4096
    /// bits here) was accepted, and encrypting to it failed later.
    #[test]
    fn rsa_keys_age_refuses_are_refused_when_read() {
        let large = "eva.thalheim.io ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAACAQEnKgLuYrFYqmUQUBjz+9bF/TUgHiL8Fq20y/gT96S7yGc/pxe936ikJIYIf5/X3auFqUOcVKWlrZ6X19PS+h/0UOd08+PG7Nd+5EFD5sgaFfIhxHs7oTzBq3v3S++uVT7wn/VfoERQpt181RIc95iBLA0ZOuuM1cF2GDI5vSCXi+cM7WVbxNHpoiwgtNDMgOGEcB//5cCh0PK39AC5PGzvZa6ynJNpEWqzkEjxJ8DWfpb99mBIKrurr4HktP55Zzw57SuGbugK4hA4j81WTOoDyhx0YT2SuVbgqRDXfRQj0vEUspDe0Y/MpqoBAzP4eexE5WD7xHlaDIglS5hBQ4KD0m2qBcri4GCBOa6+nfKdplMo/4iw7XNXAiXq1v3oMVsqli3hs6Mu0Z2rDgNB+TJCSM9daO5XXheb3kGyRT1O4k1X/S4Is4M+pgZ1Mtkjl2E3jExlEFKXwrTtWOE6VuT2q6nvWWNiU9p6Aio1oKr+UsncMHGH9dS8Ip9+Bip/0ORd/HCY3WPi2JN70hQNtESvMuZWVVFG+ZE5/+4LpydN90NJMLtLrFGKlpNqn0eRVZ8PTGYO4/OgCd/+90RUKha2qp7C+tt20bajRm0GOkbJBvEiayOojMv9UVxbd3LzQBlSRsOcoy+dpUARwcKeKO/bkYaibEb4E1o/fAVdp7AJVQ==";
        let small = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC161IjbiB1tBDo7oRNEubBmAMpfmqvwrG/vXe84kjWiUvr11tZY8hBpSFOmAkpUmMbSytYCCpx2dnY0uR+VOD5ifD+8cx1pBV8+3DBot/FfpMbW4oaZ4RqSa1j/VUQWCXwQpCXsxGe8IipFzl6hJR4a+rSPjodctwXxyEywdwItw==";
        for (line, want) in [(large, "over 4096 bits"), (small, "under 2048 bits")] {
            let err = Recipient::parse_line(line, &at()).unwrap_err().to_string();
            assert!(err.starts_with("test:1: ") && err.contains(want), "{err}");
        }
    }

    #[test]
    fn fields_split_as_sshd_splits_authorized_keys_options() {
        assert_eq!(
            fields(r#" from="a b",command="x \" y" ssh-ed25519  AAAA c d "#),
            [
                r#"from="a b",command="x \" y""#,
                "ssh-ed25519",
                "AAAA",
                "c",
                "d"
            ]
        );
        assert_eq!(fields(r#"a="unclosed b c"#), [r#"a="unclosed b c"#]);
        assert!(fields(" \t ").is_empty());
    }

    #[test]
    fn converts_like_ssh_to_age() {
        // keys/ed25519-08 of the shared vectors; ssh-to-age prints this recipient for it.
        let r = Recipient::parse_line(ED, &at()).unwrap();
        assert_eq!(
            r.to_x25519().unwrap(),
            "age1gtgcllee7sy506uce06jc57qlw5pzp7yudcp9ytn2yzjzt2ald8qm47rmy"
        );
    }

    /// The `age1…` recipient of the identity with this secret scalar.
    fn age_public(secret: &[u8; 32]) -> String {
        let hrp = Hrp::parse(AGE_IDENTITY_HRP).unwrap();
        let text = bech32::encode::<Bech32>(hrp, secret)
            .unwrap()
            .to_uppercase();
        age::x25519::Identity::from_str(&text)
            .unwrap()
            .to_public()
            .to_string()
    }

    fn ssh_line(point: &[u8; 32]) -> String {
        let data = ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(*point));
        PublicKey::new(data, "").to_openssh().unwrap()
    }

    fn age_line(u: &[u8; 32]) -> String {
        bech32::encode::<Bech32>(Hrp::parse(AGE_RECIPIENT_HRP).unwrap(), u).unwrap()
    }

    /// What parsing says of a key, in a word: "ok" or the start of its error.
    fn verdict(line: &str) -> String {
        match Recipient::parse_line(line, &at()) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    /// 2^255 - 19 plus `k`, little-endian (k < 19 keeps it below 2^255).
    fn p_plus(k: u8) -> [u8; 32] {
        let mut p = [0xff; 32];
        p[0] = 0xed + k;
        p[31] = 0x7f;
        p
    }

    #[test]
    fn small_order_and_non_canonical_points_are_refused_by_name() {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
        use curve25519_dalek::scalar::Scalar;
        let small = "is a small-order point (anyone could decrypt what is sealed to it)";
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            let ed = t.compress().to_bytes();
            let said = verdict(&ssh_line(&ed));
            assert_eq!(said, format!("test:1: ssh-ed25519 key {small}"), "[{i}]T");
            let u = t.to_montgomery().to_bytes();
            let said = verdict(&age_line(&u));
            assert_eq!(said, format!("test:1: age recipient {small}"), "[{i}]T");
            assert!(is_low_order_u(&u), "[{i}]T");
        }
        // u = p - 1 (order 4 on the twist), and u = 0 and 1 written as u + p.
        for u in [p_plus(0), p_plus(1), {
            let mut m = p_plus(0);
            m[0] -= 1;
            m
        }] {
            assert!(verdict(&age_line(&u)).ends_with(small), "{u:?}");
        }

        let honest = B * Scalar::from(0x1234_5678_9abc_u64);
        let mixed = honest + EIGHT_TORSION[1];
        let cases = [
            (ssh_line(&honest.compress().0), "ok"),
            (age_line(&honest.to_montgomery().0), "ok"),
            (
                ssh_line(&mixed.compress().0),
                "ssh-ed25519 key has a small-order component",
            ),
            (
                age_line(&mixed.to_montgomery().0),
                "age recipient has a small-order component",
            ),
            (
                age_line(&{
                    let mut u = honest.to_montgomery().0;
                    u[31] |= 0x80;
                    u
                }),
                "age recipient has a non-canonical encoding",
            ),
        ];
        for (line, want) in cases {
            let said = verdict(&line);
            assert!(
                said == want || said.starts_with(&format!("test:1: {want}")),
                "{line}: {said}"
            );
        }
        // The first 32-byte little-endian number from 2 up that `fits`.
        let small = |fits: &dyn Fn(&[u8; 32]) -> bool| {
            (2..=255u8)
                .map(|k| {
                    let mut b = [0u8; 32];
                    b[0] = k;
                    b
                })
                .find(|b| fits(b))
                .unwrap()
        };
        // A small y that decompresses, written as y + p.
        let y = small(&|b| CompressedEdwardsY(*b).decompress().is_some())[0];
        assert!(y < 19);
        let said = verdict(&ssh_line(&p_plus(y)));
        assert!(
            said.contains("ssh-ed25519 key has a non-canonical encoding"),
            "{said}"
        );
        // A u of the twist that is not of low order.
        let twist = small(&|u| MontgomeryPoint(*u).to_edwards(0).is_none() && !is_low_order_u(u));
        let said = verdict(&age_line(&twist));
        assert!(
            said.contains("age recipient is not a point of Curve25519"),
            "{said}"
        );
        // Not on the curve at all: no x for this y.
        let off = small(&|b| CompressedEdwardsY(*b).decompress().is_none());
        let said = verdict(&ssh_line(&off));
        assert!(
            said.contains("ssh-ed25519 key is not a valid curve point"),
            "{said}"
        );
    }

    /// Text with whatever known_hosts and authorized_keys put before a key.
    const PREFIX: &str =
        "([a-z0-9.,*]{1,12}|\\[[a-z0-9.]{1,8}\\]:[0-9]{1,5}|no-pty|@cert-authority [a-z.*]{1,8})";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn age_recipients_print_and_parse_back(secret in any::<[u8; 32]>()) {
            let text = age_public(&secret);
            let r = Recipient::parse_line(&format!(" {text}\r"), &at()).unwrap();
            prop_assert_eq!(r.kind(), "age");
            prop_assert_eq!(r.to_string(), text.clone());
            prop_assert_eq!(r.to_x25519(), Some(text.clone()));
            prop_assert_eq!(r.fingerprint(), text);
        }

        /// Whatever 32 bytes are offered as an ssh-ed25519 or age key, one that is
        /// accepted is the canonical encoding of a point of the prime-order subgroup
        /// other than the identity.
        #[test]
        fn every_accepted_key_is_canonical_and_torsion_free(bytes in any::<[u8; 32]>()) {
            use curve25519_dalek::traits::IsIdentity;
            if Recipient::parse_line(&ssh_line(&bytes), &at()).is_ok() {
                let point = CompressedEdwardsY(bytes).decompress().unwrap();
                prop_assert_eq!(point.compress().0, bytes);
                prop_assert!(point.is_torsion_free() && !point.is_identity());
            }
            if Recipient::parse_line(&age_line(&bytes), &at()).is_ok() {
                prop_assert!(bytes[31] & 0x80 == 0);
                let point = MontgomeryPoint(bytes).to_edwards(0).unwrap();
                prop_assert_eq!(point.to_montgomery().0, bytes);
                prop_assert!(point.is_torsion_free() && !point.is_identity());
            }
        }

        /// A real key plus a point of small order is accepted only when that point
        /// is the identity, in either form.
        #[test]
        fn a_key_is_accepted_exactly_when_it_has_no_torsion(
            scalar in any::<[u8; 32]>(),
            torsion in 0..8usize,
        ) {
            use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
            use curve25519_dalek::scalar::Scalar;
            let s = Scalar::from_bytes_mod_order(scalar);
            prop_assume!(s != Scalar::ZERO);
            let point = B * s + EIGHT_TORSION[torsion];
            let ssh = Recipient::parse_line(&ssh_line(&point.compress().0), &at());
            let age = Recipient::parse_line(&age_line(&point.to_montgomery().0), &at());
            prop_assert_eq!(ssh.is_ok(), torsion == 0);
            prop_assert_eq!(age.is_ok(), torsion == 0);
        }

        #[test]
        fn ssh_keys_print_parse_back_and_convert_as_their_private_key_does(
            seed in any::<[u8; 32]>(),
            prefix in prop::option::of(PREFIX),
            comment in "[ -~]{0,16}",
        ) {
            let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
            let key = PublicKey::new(ssh_key::public::KeyData::Ed25519(pair.public), "");
            let bare = key.to_openssh().unwrap();
            let line = format!("{} {bare} {comment}", prefix.unwrap_or_default());
            let r = Recipient::parse_line(&line, &at()).unwrap();
            prop_assert_eq!(r.kind(), "ssh-ed25519");
            prop_assert_eq!(r.to_string(), bare.clone());
            let back = Recipient::parse_line(&r.to_string(), &at()).unwrap();
            prop_assert_eq!(back.fingerprint(), r.fingerprint());
            prop_assert_eq!(back.to_x25519(), r.to_x25519());
            if let Recipient::SshEd25519(k) = &r {
                prop_assert_eq!(k.comment(), comment.split_whitespace().collect::<Vec<_>>().join(" "));
            }
            // The age identity of the private key opens what is sealed to the converted
            // recipient of its public key.
            let identity = ssh_ed25519_seed_to_age_identity(&seed);
            let identity = age::x25519::Identity::from_str(&identity).unwrap();
            prop_assert_eq!(r.to_x25519(), Some(identity.to_public().to_string()));
        }
    }
}
