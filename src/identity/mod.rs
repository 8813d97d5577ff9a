//! Who is reading: the admin's private keys, found in a fixed order (the OS keyring,
//! the keys identity file, `~/.ssh/id_ed25519`, then where sops users keep theirs),
//! or only those named with `-i` or `KEYS_IDENTITY`, and unlocked at most once per
//! run. Passphrases come through the caller's [`Prompt`].

pub mod keyring;
mod pem;
pub(crate) mod x25519;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::recipient::{self, Recipient};

/// Asks the user for a passphrase. Implementations return `Ok(None)` when there is
/// no way to ask (no terminal and no passphrase source) and never block forever.
pub trait Prompt: Send + Sync {
    fn passphrase(&self, description: &str) -> Result<Option<SecretString>>;
}

/// A prompt that can never ask: for non-interactive library use.
pub struct NoPrompt;

impl Prompt for NoPrompt {
    fn passphrase(&self, _: &str) -> Result<Option<SecretString>> {
        Ok(None)
    }
}

/// Asks for the passphrase of `origin`, failing when there is no way to ask.
pub fn ask(prompt: &dyn Prompt, origin: &str) -> Result<SecretString> {
    prompt
        .passphrase(&format!("Passphrase for {origin}"))?
        .ok_or_else(|| Error::NoPassphrase {
            at: Location::named(origin),
        })
}

/// One decrypting key, ready for the age library.
type Key = Box<dyn age::Identity + Send + Sync>;

/// A private key file or keyring entry as found, possibly still locked.
pub struct Identity {
    origin: String,
    state: State,
}

enum State {
    Ready {
        keys: Vec<Key>,
        summary: String,
        /// The recipients the keys are for, as keys writes them (an SSH key also
        /// as the `age1…` recipient it converts to).
        names: Vec<String>,
        /// The X25519 keys among `keys` (an SSH key's converted one too), to prove
        /// what is wrapped for them (`x25519::Witnessed`).
        x25519: Vec<x25519::Key>,
    },
    LockedSsh(Zeroizing<Vec<u8>>),
    LockedAgeFile(Zeroizing<Vec<u8>>),
}

/// What a private key parses to before it is made ready for decryption.
pub enum Parsed {
    /// age X25519 and plugin identities (an age identity file).
    Age(Vec<AgeKey>),
    /// An unencrypted SSH private key.
    Ssh(SshPrivate),
    /// A passphrase-protected OpenSSH key (its binary form, still encrypted).
    EncryptedSsh(Zeroizing<Vec<u8>>),
    /// A passphrase-encrypted age file holding an identity file.
    EncryptedAgeFile,
}

pub enum AgeKey {
    X25519(age::x25519::Identity),
    Plugin(age::plugin::Identity),
}

impl Parsed {
    /// Parses identity text or bytes; `origin` names it in errors.
    pub fn parse(data: &[u8], origin: &str) -> Result<Parsed> {
        let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
        if data.starts_with(b"age-encryption.org/v1\n")
            || data.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        {
            return Ok(Parsed::EncryptedAgeFile);
        }
        if let Some(block) = pem::find(data, origin)? {
            return parse_armored(block, origin);
        }
        let at = Location::named(origin);
        let text = std::str::from_utf8(data).map_err(|_| Error::InvalidKey {
            at: at.clone(),
            reason: "not a key file (binary data)".into(),
        })?;
        if text.trim_start().starts_with("-----BEGIN") {
            return Err(Error::InvalidKey {
                at,
                reason: "unrecognised PEM block; expected an OpenSSH or age private key".into(),
            });
        }
        parse_age_identities(text, origin).map(Parsed::Age)
    }
}

fn unsupported(at: &Location, key_type: &str) -> Error {
    Error::UnsupportedKey {
        at: at.clone(),
        key_type: key_type.to_string(),
        purpose: None,
    }
}

/// A private key in a PEM-style armor: OpenSSH's own format, or RSA's legacy PEM.
fn parse_armored(block: pem::Block, origin: &str) -> Result<Parsed> {
    let at = Location::named(origin).at_line(block.line);
    match block.label.as_str() {
        "OPENSSH PRIVATE KEY" => parse_openssh(&block.decode()?.data, origin),
        "RSA PRIVATE KEY" => {
            let armor = block.decode()?;
            if armor.encrypted {
                return Err(invalid_key(
                    &at,
                    "encrypted PEM keys are not supported; convert with ssh-keygen -p -o",
                ));
            }
            // Legacy PEM: only RSA uses it, and RSA only works natively. The key
            // goes on in the plain layout age's parser reads.
            SshPrivate::native_only(rsa_pem(&armor.data), origin).map(Parsed::Ssh)
        }
        "DSA PRIVATE KEY" => Err(unsupported(&at, "ssh-dss")),
        "EC PRIVATE KEY" => Err(unsupported(&at, "ecdsa")),
        _ => Err(invalid_key(
            &at,
            "unrecognised PEM block; expected an OpenSSH or age private key",
        )),
    }
}

/// An RSA private key (PKCS#1 DER) as PEM text: 64 base64 characters a line, LF.
fn rsa_pem(der: &[u8]) -> Zeroizing<String> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN RSA PRIVATE KEY-----\n";
    const END: &str = "-----END RSA PRIVATE KEY-----\n";
    let b64_len = der.len().div_ceil(3) * 4;
    // Room for all of it up front: a growing buffer would leave copies of the key
    // behind in freed memory.
    let mut b64 = Zeroizing::new(String::with_capacity(b64_len));
    base64::engine::general_purpose::STANDARD.encode_string(der, &mut b64);
    let mut text = Zeroizing::new(String::with_capacity(
        BEGIN.len() + b64_len + b64_len / 64 + 1 + END.len(),
    ));
    text.push_str(BEGIN);
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 is ASCII, so every chunk is whole characters.
        text.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        text.push('\n');
    }
    text.push_str(END);
    text
}

/// An OpenSSH private key (its binary form, `openssh-key-v1\0…`).
fn parse_openssh(blob: &[u8], origin: &str) -> Result<Parsed> {
    let at = Location::named(origin);
    // The public key in the clear header is checked first, as any key is where it
    // enters, even when the sealed part of the file is never opened.
    if let Some(public) = declared_public(blob)
        && let Ok(line) = public.to_openssh()
        && let Err(e @ Error::WeakKey { .. }) = Recipient::parse_line(&line, &at)
    {
        return Err(e);
    }
    let key = ssh_key::PrivateKey::from_bytes(blob).map_err(|e| match e {
        ssh_key::Error::Crypto | ssh_key::Error::PublicKey => invalid_key(&at, MISMATCH),
        _ => invalid_key(&at, "malformed or truncated OpenSSH private key"),
    })?;
    check_ssh_algorithm(&key.algorithm(), &at)?;
    if key.is_encrypted() {
        return Ok(Parsed::EncryptedSsh(Zeroizing::new(blob.to_vec())));
    }
    SshPrivate::from_key(&key, origin).map(Parsed::Ssh)
}

const MISMATCH: &str =
    "inconsistent OpenSSH private key (its public key or check bytes do not match its private key)";

/// The public key an OpenSSH private key declares in its clear header, read without
/// the rest of the key (sealed, when the key has a passphrase).
fn declared_public(blob: &[u8]) -> Option<ssh_key::PublicKey> {
    let mut rest = blob.strip_prefix(b"openssh-key-v1\0")?;
    // Cipher, KDF and KDF options; then the number of keys, and the first key.
    for _ in 0..3 {
        ssh_string(&mut rest)?;
    }
    let (count, mut rest) = rest.split_first_chunk::<4>()?;
    if u32::from_be_bytes(*count) != 1 {
        return None;
    }
    ssh_key::PublicKey::from_bytes(ssh_string(&mut rest)?).ok()
}

/// The next SSH wire string (a 32-bit big-endian length, then the bytes).
fn ssh_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    if tail.len() < len {
        return None;
    }
    let (value, tail) = tail.split_at(len);
    *rest = tail;
    Some(value)
}

fn check_ssh_algorithm(alg: &ssh_key::Algorithm, at: &Location) -> Result<()> {
    if alg.clone().is_ed25519() || alg.clone().is_rsa() {
        Ok(())
    } else {
        Err(unsupported(at, alg.as_str()))
    }
}

/// An unencrypted SSH private key: usable natively by age, and (ed25519 only)
/// convertible to the X25519 identity sops-nix derives from it.
pub struct SshPrivate {
    /// Unencrypted OpenSSH (or RSA PEM) text, as age's parser reads it.
    text: Zeroizing<String>,
    /// The ed25519 seed, for the converted identity.
    seed: Option<Zeroizing<[u8; 32]>>,
    origin: String,
}

impl SshPrivate {
    fn from_key(key: &ssh_key::PrivateKey, origin: &str) -> Result<SshPrivate> {
        let at = Location::named(origin);
        // The public key age reads from the file must be the seed's own.
        if let Some(pair) = key.key_data().ed25519() {
            let seed = Zeroizing::new(pair.private.to_bytes());
            let derived = ssh_key::private::Ed25519Keypair::from_seed(&seed).public;
            if derived != pair.public || key.public_key().key_data().ed25519() != Some(&derived) {
                return Err(invalid_key(&at, MISMATCH));
            }
        }
        let text = key
            .to_openssh(ssh_key::LineEnding::LF)
            .map_err(|_| invalid_key(&at, "cannot re-encode the private key"))?;
        let seed = key
            .key_data()
            .ed25519()
            .map(|pair| Zeroizing::new(pair.private.to_bytes()));
        Ok(SshPrivate {
            text,
            seed,
            origin: origin.to_string(),
        })
    }

    fn native_only(text: Zeroizing<String>, origin: &str) -> Result<SshPrivate> {
        let key = SshPrivate {
            text,
            seed: None,
            origin: origin.to_string(),
        };
        key.native()?;
        Ok(key)
    }

    /// The key as age uses it for ssh-ed25519 / ssh-rsa stanzas.
    pub fn native(&self) -> Result<age::ssh::Identity> {
        let at = Location::named(&self.origin);
        match age::ssh::Identity::from_buffer(self.text.as_bytes(), Some(self.origin.clone())) {
            Ok(id @ age::ssh::Identity::Unencrypted(_)) => Ok(id),
            Ok(age::ssh::Identity::Unsupported(age::ssh::UnsupportedKey::EncryptedPem)) => {
                Err(invalid_key(
                    &at,
                    "encrypted PEM keys are not supported; convert with ssh-keygen -p -o",
                ))
            }
            Ok(age::ssh::Identity::Unsupported(
                age::ssh::UnsupportedKey::Type(t) | age::ssh::UnsupportedKey::Hardware(t),
            )) => Err(unsupported(&at, &t)),
            _ => Err(invalid_key(&at, "malformed or truncated SSH private key")),
        }
    }

    /// The public key: `ssh-ed25519 …` or `ssh-rsa …`.
    pub fn public(&self) -> Result<Recipient> {
        let at = Location::named(&self.origin);
        let native = age::ssh::Recipient::try_from(self.native()?)
            .map_err(|_| invalid_key(&at, "cannot derive the public key"))?;
        Recipient::parse_line(&native.to_string(), &at)
    }

    /// The `AGE-SECRET-KEY-1…` identity this key converts to (ed25519 only).
    pub fn age_identity(&self) -> Result<Zeroizing<String>> {
        match &self.seed {
            Some(seed) => Ok(recipient::ssh_ed25519_seed_to_age_identity(&seed[..])),
            None => Err(Error::UnsupportedKey {
                at: Location::named(&self.origin),
                key_type: "ssh-rsa".into(),
                purpose: Some("for conversion to age (only ssh-ed25519 converts)"),
            }),
        }
    }
}

/// Decrypts a passphrase-protected OpenSSH key (its binary form, as
/// [`Parsed::EncryptedSsh`] holds it).
pub fn unlock_ssh(blob: &[u8], pass: &SecretString, origin: &str) -> Result<SshPrivate> {
    let at = Location::named(origin);
    let key = ssh_key::PrivateKey::from_bytes(blob)
        .map_err(|_| invalid_key(&at, "malformed or truncated OpenSSH private key"))?;
    let key = key
        .decrypt(pass.expose_secret().as_bytes())
        .map_err(|e| match e {
            // The sealed key opened, and holds another public key than the header's.
            ssh_key::Error::PublicKey => invalid_key(&at, MISMATCH),
            _ => Error::WrongPassphrase { at: at.clone() },
        })?;
    SshPrivate::from_key(&key, origin)
}

/// The public key embedded (unencrypted) in an OpenSSH private key (its binary form),
/// encrypted or not.
pub fn ssh_public_of_encrypted(blob: &[u8], origin: &str) -> Result<Recipient> {
    let at = Location::named(origin);
    let key = ssh_key::PrivateKey::from_bytes(blob)
        .map_err(|_| invalid_key(&at, "malformed OpenSSH private key"))?;
    let line = key
        .public_key()
        .to_openssh()
        .map_err(|_| invalid_key(&at, "cannot read the public key"))?;
    Recipient::parse_line(&line, &at)
}

fn invalid_key(at: &Location, reason: &str) -> Error {
    Error::InvalidKey {
        at: at.clone(),
        reason: reason.to_string(),
    }
}

fn parse_age_identities(text: &str, origin: &str) -> Result<Vec<AgeKey>> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = Location::named(origin).at_line(n as u64 + 1);
        let key = if line.starts_with("AGE-SECRET-KEY-1") {
            age::x25519::Identity::from_str(line)
                .map(AgeKey::X25519)
                .ok()
        } else if line.starts_with("AGE-PLUGIN-") {
            age::plugin::Identity::from_str(line)
                .map(AgeKey::Plugin)
                .ok()
        } else {
            None
        };
        match key {
            Some(k) => keys.push(k),
            None => {
                return Err(Error::InvalidKey {
                    at,
                    reason: "not an age identity (AGE-SECRET-KEY-1… or AGE-PLUGIN-…)".into(),
                });
            }
        }
    }
    if keys.is_empty() {
        return Err(Error::InvalidKey {
            at: Location::named(origin),
            reason: "no identity in this file".into(),
        });
    }
    Ok(keys)
}

/// The public key of a private key file, for recording an admin. Only a
/// passphrase-encrypted age identity file needs its passphrase for this.
pub fn public_of(data: &[u8], origin: &str, prompt: &dyn Prompt) -> Result<Recipient> {
    let at = Location::named(origin);
    let parsed = match Parsed::parse(data, origin)? {
        Parsed::EncryptedAgeFile => {
            let inner = decrypt_with_passphrase(data, ask(prompt, origin)?, &at)?;
            Parsed::parse(&inner, origin)?
        }
        other => other,
    };
    match parsed {
        Parsed::Age(keys) => keys.iter().find_map(AgeKey::recipient).ok_or_else(|| {
            invalid_key(&at, "plugin identities have no derivable recipient here; record the plugin's age1… recipient instead")
        }),
        Parsed::Ssh(key) => key.public(),
        Parsed::EncryptedSsh(text) => ssh_public_of_encrypted(&text, origin),
        Parsed::EncryptedAgeFile => Err(invalid_key(
            &at,
            "an encrypted identity file holds another encrypted file",
        )),
    }
}

impl AgeKey {
    pub fn recipient(&self) -> Option<Recipient> {
        match self {
            AgeKey::X25519(k) => Some(Recipient::X25519(k.to_public().into())),
            AgeKey::Plugin(_) => None,
        }
    }
}

impl Identity {
    /// Loads a private key; encrypted keys stay locked until [`Identities::unlock`].
    pub fn from_bytes(data: &[u8], origin: &str) -> Result<Identity> {
        let state = match Parsed::parse(data, origin)? {
            Parsed::Age(keys) => ready_age(keys),
            Parsed::Ssh(key) => ready_ssh(key),
            Parsed::EncryptedSsh(text) => State::LockedSsh(text),
            Parsed::EncryptedAgeFile => State::LockedAgeFile(Zeroizing::new(data.to_vec())),
        };
        Ok(Identity {
            origin: origin.to_string(),
            state,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A short description for the list of searched places.
    pub fn summary(&self) -> String {
        match &self.state {
            State::Ready { summary, .. } => summary.clone(),
            State::LockedSsh(_) => "passphrase-protected ssh key".into(),
            State::LockedAgeFile(_) => "passphrase-encrypted age identity file".into(),
        }
    }

    fn is_locked(&self) -> bool {
        !matches!(self.state, State::Ready { .. })
    }

    fn unlock(&mut self, prompt: &dyn Prompt) -> Result<()> {
        let at = Location::named(&self.origin);
        let state = match &self.state {
            State::Ready { .. } => return Ok(()),
            State::LockedSsh(text) => {
                let pass = ask(prompt, &self.origin)?;
                ready_ssh(unlock_ssh(text, &pass, &self.origin)?)
            }
            State::LockedAgeFile(data) => {
                let pass = ask(prompt, &self.origin)?;
                let inner = decrypt_with_passphrase(data, pass, &at)?;
                match Parsed::parse(&inner, &self.origin)? {
                    Parsed::Age(keys) => ready_age(keys),
                    Parsed::Ssh(key) => ready_ssh(key),
                    Parsed::EncryptedSsh(_) | Parsed::EncryptedAgeFile => {
                        return Err(Error::InvalidKey {
                            at,
                            reason: "an encrypted identity file holds another encrypted key".into(),
                        });
                    }
                }
            }
        };
        self.state = state;
        Ok(())
    }
}

/// The default places searched after the keyring.
#[derive(Clone, Copy)]
enum DefaultPlace {
    /// `identity.txt`: keys made it 0600, so a wider mode is an error.
    Keys,
    /// `~/.ssh/id_ed25519` and the sops places: skipped, with a warning, when others
    /// can read it.
    Ssh,
}

/// Whether a key file with `mode` is open to other users in a way that matters: a
/// passphrase-encrypted age identity file is ciphertext, and exempt.
fn open_to_others(id: &Identity, mode: u32) -> bool {
    mode & OPEN_TO_OTHERS != 0 && !matches!(id.state, State::LockedAgeFile(_))
}

/// An X25519 key ready for decryption, its public key derived once (and kept in
/// `x25519` too).
fn fast(key: age::x25519::Identity, x25519: &mut Vec<x25519::Key>) -> Key {
    match x25519::Key::new(&key) {
        Some(k) => {
            x25519.push(k.clone());
            Box::new(k)
        }
        None => Box::new(key),
    }
}

fn ready_age(keys: Vec<AgeKey>) -> State {
    let mut x25519 = 0;
    let mut plugins = Vec::new();
    let mut out: Vec<Key> = Vec::new();
    let mut names = Vec::new();
    let mut fast_keys = Vec::new();
    for key in keys {
        match key {
            AgeKey::X25519(k) => {
                x25519 += 1;
                names.push(k.to_public().to_string());
                out.push(fast(k, &mut fast_keys));
            }
            AgeKey::Plugin(k) => plugins.push(k),
        }
    }
    for p in &plugins {
        // A plugin that is not installed simply opens nothing.
        if let Ok(plugin) = age::plugin::IdentityPluginV1::new(
            p.plugin(),
            std::slice::from_ref(p),
            age::NoCallbacks,
        ) {
            out.push(Box::new(plugin));
        }
    }
    let mut summary = format!(
        "age identity ({x25519} key{})",
        if x25519 == 1 { "" } else { "s" }
    );
    if !plugins.is_empty() {
        summary.push_str(&format!(
            ", {} plugin identit{}",
            plugins.len(),
            if plugins.len() == 1 { "y" } else { "ies" }
        ));
    }
    State::Ready {
        keys: out,
        summary,
        names,
        x25519: fast_keys,
    }
}

fn ready_ssh(key: SshPrivate) -> State {
    let mut keys: Vec<Key> = Vec::new();
    let mut x25519 = Vec::new();
    let mut names: Vec<String> = key.public().iter().map(Recipient::to_string).collect();
    if let Ok(converted) = key.age_identity()
        && let Ok(x) = age::x25519::Identity::from_str(&converted)
    {
        names.push(x.to_public().to_string());
        keys.push(fast(x, &mut x25519));
    }
    let summary = if key.seed.is_some() {
        "ssh-ed25519 key (native and converted)"
    } else {
        "ssh-rsa key (native only)"
    };
    if let Ok(native) = key.native() {
        keys.push(Box::new(native));
    }
    State::Ready {
        keys,
        summary: summary.into(),
        names,
        x25519,
    }
}

/// Decrypts a passphrase-encrypted (scrypt) age file.
fn decrypt_with_passphrase(
    data: &[u8],
    pass: SecretString,
    at: &Location,
) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let reader = age::armor::ArmoredReader::new(data);
    let decryptor = age::Decryptor::new_buffered(reader).map_err(|_| Error::Corrupt {
        at: at.clone(),
        reason: "malformed age file".into(),
    })?;
    if !decryptor.is_scrypt() {
        return Err(Error::InvalidKey {
            at: at.clone(),
            reason: "encrypted identity file is not passphrase-encrypted".into(),
        });
    }
    let identity = age::scrypt::Identity::new(pass);
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|_| Error::WrongPassphrase { at: at.clone() })?;
    // Ciphertext is longer than its plaintext: no reallocation leaves a copy behind.
    let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
    reader.read_to_end(&mut out).map_err(|_| Error::Corrupt {
        at: at.clone(),
        reason: "payload failed to authenticate".into(),
    })?;
    Ok(out)
}

/// Every identity found, and a line for each place that was searched.
pub struct Identities {
    found: Vec<Identity>,
    searched: Vec<String>,
    /// Things the user should hear about the search (a key skipped or used despite
    /// its mode), one line each, for the CLI to print.
    notes: Vec<String>,
}

/// Where to look for identities, in order.
pub struct Search {
    pub flags: Vec<PathBuf>,
    pub env_identity: Option<PathBuf>,
    pub keyring: keyring::Backend,
    pub config_dir: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub sops: SopsPlaces,
}

/// Where sops users keep their age identities, searched after keys' own places.
#[derive(Default)]
pub struct SopsPlaces {
    /// `$SOPS_AGE_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// `$SOPS_AGE_KEY`: identities in the variable itself.
    pub key: Option<Zeroizing<String>>,
    /// `$SOPS_AGE_SSH_PRIVATE_KEY_FILE`.
    pub ssh_key_file: Option<PathBuf>,
    /// sops's default `keys.txt`: `$XDG_CONFIG_HOME/sops/age/keys.txt`, else
    /// `~/.config/sops/age/keys.txt` (`~/Library/Application Support/sops/age/keys.txt`
    /// on macOS).
    pub default_file: Option<PathBuf>,
}

impl SopsPlaces {
    pub fn from_env(home: Option<&Path>) -> SopsPlaces {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let config = match var("XDG_CONFIG_HOME") {
            Some(x) => Some(PathBuf::from(x)),
            None if cfg!(target_os = "macos") => {
                home.map(|h| h.join("Library").join("Application Support"))
            }
            None => home.map(|h| h.join(".config")),
        };
        SopsPlaces {
            key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
            key: std::env::var("SOPS_AGE_KEY")
                .ok()
                .filter(|v| !v.is_empty())
                .map(Zeroizing::new),
            ssh_key_file: var("SOPS_AGE_SSH_PRIVATE_KEY_FILE").map(PathBuf::from),
            default_file: config.map(|c| c.join("sops").join("age").join("keys.txt")),
        }
    }
}

impl Search {
    /// The places of DESIGN §5, read from the process environment.
    pub fn from_env(flags: Vec<PathBuf>) -> Result<Search> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        Ok(Search {
            flags,
            env_identity: std::env::var_os("KEYS_IDENTITY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            keyring: keyring::Backend::from_env()?,
            config_dir: config_dir(home.as_deref()),
            sops: SopsPlaces::from_env(home.as_deref()),
            home,
        })
    }

    /// `~/.config/keys/identity.txt` (or under `$XDG_CONFIG_HOME`).
    pub fn identity_file(&self) -> Option<PathBuf> {
        self.config_dir.as_ref().map(|d| d.join(IDENTITY_FILE))
    }

    pub fn ssh_default(&self) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|h| h.join(".ssh").join("id_ed25519"))
    }
}

const IDENTITY_FILE: &str = "identity.txt";

/// Mode bits that let other users read or change a private key file: ssh refuses a
/// key with any of them, and so does keys.
const OPEN_TO_OTHERS: u32 = 0o077;

/// The keys identity file for this user: `config_dir(home)/identity.txt`.
pub fn identity_file(home: Option<&Path>) -> Option<PathBuf> {
    config_dir(home).map(|d| d.join(IDENTITY_FILE))
}

/// `$XDG_CONFIG_HOME/keys`, else `~/.config/keys`.
pub fn config_dir(home: Option<&Path>) -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => Some(PathBuf::from(x).join("keys")),
        None => home.map(|h| h.join(".config").join("keys")),
    }
}

/// Asked about a key file named with `-i` or `KEYS_IDENTITY` whose mode lets other
/// users read it: `Some(why)` when it may be used anyway because it is published on
/// purpose (a test key the repository's policy lists under `allow_private_keys`).
/// Asked only in that rare case.
pub type Published<'a> = &'a dyn Fn(&Path) -> Option<String>;

impl Identities {
    /// Searches every place in order. An identity named explicitly (flag or
    /// `KEYS_IDENTITY`) must load; the default places are noted and skipped when absent.
    /// A private key file others can read is refused, as ssh refuses it.
    pub fn search(search: &Search) -> Result<Identities> {
        Identities::search_with(search, &|_| None)
    }

    /// `search`, where an explicitly named key file that others can read is still used
    /// when `published` says why (and a note says so).
    pub fn search_with(search: &Search, published: Published<'_>) -> Result<Identities> {
        let mut ids = Identities {
            found: Vec::new(),
            searched: Vec::new(),
            notes: Vec::new(),
        };
        for path in &search.flags {
            ids.load_explicit(path, "-i", published)?;
        }
        // As age, agenix and sops: named identities are the only ones tried, so "can
        // this key read it?" is never answered by another key. -i names them first,
        // else KEYS_IDENTITY.
        if !search.flags.is_empty() {
            ids.searched
                .push("no other place: -i names the only identities to try".into());
            return Ok(ids);
        }
        if let Some(path) = &search.env_identity {
            ids.load_explicit(path, "KEYS_IDENTITY", published)?;
            ids.searched
                .push("no other place: KEYS_IDENTITY names the only identity to try".into());
            return Ok(ids);
        }
        ids.searched.push("KEYS_IDENTITY: not set".into());
        let origin = format!("OS keyring ({})", search.keyring.name());
        match keyring::load(search.keyring) {
            Ok(Some(secret)) => {
                let id = Identity::from_bytes(secret.as_bytes(), &origin)?;
                ids.searched.push(format!("{origin}: {}", id.summary()));
                ids.found.push(id);
            }
            Ok(None) => ids.searched.push(format!("{origin}: no identity stored")),
            Err(Error::Keyring { reason, .. }) => ids
                .searched
                .push(format!("{origin}: unavailable ({reason})")),
            Err(e) => ids.searched.push(format!("{origin}: unavailable ({e})")),
        }
        if let Some(path) = search.identity_file() {
            ids.load_default(&path, DefaultPlace::Keys)?;
        }
        if let Some(path) = search.ssh_default() {
            ids.load_default(&path, DefaultPlace::Ssh)?;
        }
        ids.load_sops(&search.sops)?;
        Ok(ids)
    }

    fn load_explicit(&mut self, path: &Path, how: &str, published: Published<'_>) -> Result<()> {
        let read = crate::fsutil::read_private(path)?;
        let shown = path.display().to_string();
        let id = Identity::from_bytes(&read.data, &shown)?;
        if open_to_others(&id, read.mode) {
            match published(path) {
                Some(why) => self.notes.push(format!(
                    "note: {shown} is readable by other users (mode {:o}); used because {why}",
                    read.mode & 0o777
                )),
                None => {
                    return Err(Error::OpenPermissions {
                        path: path.to_path_buf(),
                        mode: read.mode & 0o777,
                    });
                }
            }
        }
        self.searched
            .push(format!("{how} {}: {}", path.display(), id.summary()));
        self.found.push(id);
        Ok(())
    }

    /// The places sops reads age identities from, in sops's order.
    fn load_sops(&mut self, sops: &SopsPlaces) -> Result<()> {
        match &sops.key {
            Some(text) => {
                let origin = "$SOPS_AGE_KEY";
                match Identity::from_bytes(text.as_bytes(), origin) {
                    Ok(id) => {
                        self.searched.push(format!("{origin}: {}", id.summary()));
                        self.found.push(id);
                    }
                    Err(e) => self.searched.push(format!("{origin}: unusable ({e})")),
                }
            }
            None => self.searched.push("SOPS_AGE_KEY: not set".into()),
        }
        for (var, path) in [
            ("SOPS_AGE_KEY_FILE", &sops.key_file),
            ("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &sops.ssh_key_file),
        ] {
            match path {
                Some(path) => self.load_default(path, DefaultPlace::Ssh)?,
                None => self.searched.push(format!("{var}: not set")),
            }
        }
        if let Some(path) = &sops.default_file
            && sops.key_file.as_ref() != Some(path)
        {
            self.load_default(path, DefaultPlace::Ssh)?;
        }
        Ok(())
    }

    fn load_default(&mut self, path: &Path, which: DefaultPlace) -> Result<()> {
        let shown = path.display();
        let read = match crate::fsutil::read_private(path) {
            Ok(read) => read,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                self.searched.push(format!("{shown}: not found"));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let loaded = Identity::from_bytes(&read.data, &shown.to_string());
        let open = loaded
            .as_ref()
            .map_or(read.mode & OPEN_TO_OTHERS != 0, |id| {
                open_to_others(id, read.mode)
            });
        if open {
            let mode = read.mode & 0o777;
            match which {
                DefaultPlace::Keys => {
                    return Err(Error::OpenPermissions {
                        path: path.to_path_buf(),
                        mode,
                    });
                }
                // Not named by the user: skipped, and said so where it will be seen.
                DefaultPlace::Ssh => {
                    let why = format!(
                        "skipped: readable by other users (mode {mode:o}); run `chmod 600 {shown}`"
                    );
                    self.notes.push(format!("warning: {shown} {why}"));
                    self.searched.push(format!("{shown}: {why}"));
                    return Ok(());
                }
            }
        }
        match loaded {
            Ok(id) => {
                self.searched.push(format!("{shown}: {}", id.summary()));
                self.found.push(id);
            }
            Err(e) => self.searched.push(format!("{shown}: unusable ({e})")),
        }
        Ok(())
    }

    /// What the user should be told about the search, one line each (a key skipped
    /// or used despite its mode).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The places searched, one line each, for "nothing can decrypt" errors.
    pub fn searched(&self) -> &[String] {
        &self.searched
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Keys usable without asking for anything.
    pub fn ready(&self) -> Vec<&dyn age::Identity> {
        let mut out: Vec<&dyn age::Identity> = Vec::new();
        for id in &self.found {
            if let State::Ready { keys, .. } = &id.state {
                out.extend(keys.iter().map(|k| k.as_ref() as &dyn age::Identity));
            }
        }
        out
    }

    /// The ready X25519 key whose public key is `u`.
    pub fn x25519_for(&self, u: &[u8; 32]) -> Option<&x25519::Key> {
        self.found.iter().find_map(|id| match &id.state {
            State::Ready { x25519, .. } => x25519.iter().find(|k| k.public() == u),
            _ => None,
        })
    }

    /// Whether a ready key is for `recipient` (as a sops file names it).
    pub fn ready_for(&self, recipient: &str) -> bool {
        self.found.iter().any(|id| match &id.state {
            State::Ready { names, .. } => names.iter().any(|n| {
                recipient
                    .strip_prefix(n.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            }),
            _ => false,
        })
    }

    pub fn has_locked(&self) -> bool {
        self.found.iter().any(Identity::is_locked)
    }

    /// Unlocks every locked identity, asking once for each.
    pub fn unlock_all(&mut self, prompt: &dyn Prompt) -> Result<()> {
        for id in &mut self.found {
            id.unlock(prompt)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_report_the_bad_line() {
        let text = concat!(
            "# comment\nAGE-SECRET-",
            "KEY-1GYLS8VC9HRQ3FW27JK0CAPKTKP2EYV4KPD7P55P5UVNYA482K56SXC9XUZ\nnonsense\n"
        );
        let err = Parsed::parse(text.as_bytes(), "id.txt")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "id.txt:3: not an age identity (AGE-SECRET-KEY-1… or AGE-PLUGIN-…)"
        );
        assert!(!err.contains("GYLS8"));
    }

    #[test]
    fn a_named_key_others_can_read_is_refused_unless_published() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id.txt");
        let text = concat!(
            "AGE-SECRET-",
            "KEY-1GYLS8VC9HRQ3FW27JK0CAPKTKP2EYV4KPD7P55P5UVNYA482K56SXC9XUZ\n"
        );
        std::fs::write(&key, text).unwrap();
        let search = Search {
            flags: vec![key.clone()],
            env_identity: None,
            keyring: keyring::Backend::Disabled,
            config_dir: None,
            home: None,
            sops: SopsPlaces::default(),
        };
        let chmod =
            |mode| std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            chmod(mode);
            match Identities::search(&search) {
                Err(Error::OpenPermissions { path, mode: m }) => {
                    assert_eq!((path, m), (key.clone(), mode));
                }
                Err(e) => panic!("{mode:o}: {e}"),
                Ok(_) => panic!("{mode:o} accepted"),
            }
        }
        for mode in [0o600, 0o400] {
            chmod(mode);
            let ids = Identities::search(&search).unwrap();
            assert_eq!(ids.ready().len(), 1);
            assert!(ids.notes().is_empty());
        }
        chmod(0o644);
        let asked = std::sync::Mutex::new(Vec::new());
        let ids = Identities::search_with(&search, &|p: &Path| {
            asked.lock().unwrap().push(p.to_path_buf());
            Some("it is published".into())
        })
        .unwrap();
        assert_eq!(ids.ready().len(), 1);
        assert_eq!(*asked.lock().unwrap(), vec![key.clone()]);
        assert_eq!(
            ids.notes(),
            [format!(
                "note: {} is readable by other users (mode 644); used because it is published",
                key.display()
            )]
        );
        // A passphrase-encrypted identity file is ciphertext: its mode does not matter.
        std::fs::write(&key, "age-encryption.org/v1\n-> scrypt x 10\n").unwrap();
        let ids = Identities::search(&search).unwrap();
        assert!(ids.has_locked());
    }

    #[test]
    fn refuses_unsupported_pem_keys_by_type() {
        let err = Parsed::parse(b"-----BEGIN DSA PRIVATE KEY-----\nAAAA\n", "k")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "k:1: unsupported key type ssh-dss");
    }
}
