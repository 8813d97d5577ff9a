//! Encrypting, decrypting and re-wrapping whole sops files: each value sealed under
//! its key path where the file's options say, the MAC over the plaintext values checked
//! on every decrypt, and the data key wrapped per age recipient and per OpenBao transit
//! key. Every write of values seals them under a new data key, and so does a rekey
//! that takes a reader away: whoever held the old key (a reader removed, or anyone
//! who wrote the file, since the wrapped keys are not under the MAC) opens nothing
//! written after. Age identities are tried first; a transit key only when none of
//! them opens the file.

use std::collections::HashSet;

use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto;
use crate::crypto::aes::{self, DataKey};
use crate::crypto::age::Armor;
use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::format::sops;
use crate::format::sops::audit::{Leaf, Rules, corrupt, walk_items, walk_scalars};
use crate::format::sops::cipher;
use crate::format::sops::document::{Branches, EncryptedDocument, Item, Store, Value};
use crate::format::sops::golang::{Fmt, format_float};
use crate::format::sops::metadata::{
    AgeEntry, KeyGroup, Metadata, Options, Shamir, VERSION, VaultEntry,
};
use crate::identity::{Identities, Prompt};
use crate::recipient::{Recipient, TransitKey};

/// The first 32 bytes of the MAC hash when `mac_only_encrypted` is set: SHA-256("sops").
const MAC_ONLY_ENCRYPTED_SEED: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A decrypted document; its plaintext strings are wiped on drop.
pub struct Plain(pub Branches);

/// Overwrites a plaintext value, and every value inside it.
fn wipe(v: &mut Value) {
    match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.zeroize(),
        Value::Bytes(b) => b.zeroize(),
        Value::Int(i) => i.zeroize(),
        Value::Float(f) => f.zeroize(),
        Value::Bool(b) => *b = false,
        Value::Null => {}
        Value::Map(items) => items.iter_mut().for_each(wipe_item),
        Value::List(list) => list.iter_mut().for_each(wipe),
    }
}

fn wipe_item(i: &mut Item) {
    match i {
        Item::Pair(k, v) => {
            k.zeroize();
            wipe(v);
        }
        Item::Comment(c) => c.zeroize(),
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        self.0.iter_mut().flatten().for_each(wipe_item);
    }
}

/// What decrypting a file gives: the plaintext, and its metadata (options and key
/// sources) for writing it again.
pub struct Opened {
    pub plain: Plain,
    pub metadata: Metadata,
    pub key: DataKey,
}

/// A scalar's bytes and sops type name, as sops hashes and encrypts it.
fn scalar(v: &Value) -> Option<(Zeroizing<Vec<u8>>, &'static str)> {
    let (bytes, kind) = match v {
        Value::Str(s) => (s.as_bytes().to_vec(), "str"),
        Value::Bytes(b) => (b.clone(), "str"),
        Value::Int(i) => (i.to_string().into_bytes(), "int"),
        // sops's ToBytes: Go's FormatFloat(f, 'f', -1, 64), `+Inf` and `NaN` included.
        Value::Float(f) => (format_float(*f, Fmt::F).into_bytes(), "float"),
        Value::Bool(b) => (
            (if *b { "True" } else { "False" }).as_bytes().to_vec(),
            "bool",
        ),
        Value::Time(t) => (t.as_bytes().to_vec(), "time"),
        _ => return None,
    };
    Some((Zeroizing::new(bytes), kind))
}

fn aad(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

fn new_mac(options: &Options) -> Sha512 {
    let mut hash = Sha512::new();
    if options.mac_only_encrypted {
        hash.update(MAC_ONLY_ENCRYPTED_SEED);
    }
    hash
}

fn mac_hex(hash: Sha512) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let digest = hash.finalize();
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// Decrypts every value of `branches` in place; returns the MAC of the plaintext.
fn open_branches(
    branches: &mut Branches,
    rules: &Rules,
    key: &DataKey,
    at: &Location,
) -> Result<String> {
    let mut hash = new_mac(&rules.options);
    let mut visit = |leaf: Leaf, path: &[String], comments: &[Vec<String>]| -> Result<()> {
        match leaf {
            leaf @ (Leaf::Comment(_) | Leaf::ListComment(_)) => {
                let Some(c) = leaf.into_comment() else {
                    return Ok(());
                };
                // sops keeps a comment that does not decrypt as it is (older files).
                let a = aad(path);
                if rules.encrypts_comment(path, comments)
                    && let Some(sealed) = cipher::parse(c)
                    && let Some(plain) = aes::open(key, &sealed, &a)
                {
                    let text = std::str::from_utf8(&plain).map_err(|_| {
                        corrupt(
                            at,
                            path,
                            "has a comment that is not UTF-8, which keys cannot print",
                        )
                    })?;
                    *c = text.to_string();
                }
            }
            Leaf::Scalar(v) => {
                let encrypted = rules.encrypts_value(path, comments);
                if encrypted {
                    let not_sealed = "not encrypted, but the file's options say it must be";
                    let Value::Str(s) = v else {
                        return Err(corrupt(at, path, not_sealed));
                    };
                    if !s.is_empty() {
                        let sealed =
                            cipher::parse(s).ok_or_else(|| corrupt(at, path, not_sealed))?;
                        let a = aad(path);
                        let plain = aes::open(key, &sealed, &a).ok_or_else(|| {
                            corrupt(
                                at,
                                path,
                                "does not authenticate (changed, or moved from another key)",
                            )
                        })?;
                        *v = typed(&sealed.kind, &plain)
                            .ok_or_else(|| corrupt(at, path, "has a malformed or unknown type"))?;
                    }
                }
                if (!rules.options.mac_only_encrypted || encrypted)
                    && let Some((bytes, _)) = scalar(v)
                {
                    hash.update(&bytes);
                }
            }
        }
        Ok(())
    };
    for branch in branches.iter_mut() {
        walk_items(branch, &mut Vec::new(), &mut Vec::new(), &mut visit)?;
    }
    Ok(mac_hex(hash))
}

/// The MAC of the plaintext of `branches`, as `open_branches` computes it, reading
/// the tree only: each value is decrypted, must authenticate under `key`, is hashed
/// and wiped (comments are not part of the MAC and are not decrypted).
fn values_mac(branches: &Branches, rules: &Rules, key: &DataKey, at: &Location) -> Result<String> {
    let mut hash = new_mac(&rules.options);
    let mut visit = |v: &Value, path: &[String], comments: &[Vec<String>]| -> Result<()> {
        let encrypted = rules.encrypts_value(path, comments);
        if !encrypted {
            if !rules.options.mac_only_encrypted
                && let Some((bytes, _)) = scalar(v)
            {
                hash.update(&bytes);
            }
            return Ok(());
        }
        let not_sealed = "not encrypted, but the file's options say it must be";
        let Value::Str(s) = v else {
            return Err(corrupt(at, path, not_sealed));
        };
        if s.is_empty() {
            return Ok(());
        }
        let sealed = cipher::parse(s).ok_or_else(|| corrupt(at, path, not_sealed))?;
        let plain = aes::open(key, &sealed, &aad(path)).ok_or_else(|| {
            corrupt(
                at,
                path,
                "does not authenticate (changed, or moved from another key)",
            )
        })?;
        let mut value = typed(&sealed.kind, &plain)
            .ok_or_else(|| corrupt(at, path, "has a malformed or unknown type"))?;
        if let Some((bytes, _)) = scalar(&value) {
            hash.update(&bytes);
        }
        wipe(&mut value);
        Ok(())
    };
    for branch in branches {
        walk_scalars(branch, &mut Vec::new(), &mut Vec::new(), &mut visit)?;
    }
    Ok(mac_hex(hash))
}

/// Encrypts every value of `branches` in place; returns the MAC of the plaintext,
/// where a value left in clear counts as what `store` reads it back as.
fn seal_branches(
    branches: &mut Branches,
    rules: &Rules,
    key: &DataKey,
    store: &dyn Store,
) -> String {
    let mut hash = new_mac(&rules.options);
    let mut visit = |leaf: Leaf, path: &[String], comments: &[Vec<String>]| -> Result<()> {
        let seal_comment = |c: &str| {
            (rules.encrypts_comment(path, comments) && !c.is_empty())
                .then(|| aes::seal(key, c.as_bytes(), "comment", &aad(path)))
        };
        match leaf {
            Leaf::Comment(c) => {
                if let Some(sealed) = seal_comment(c) {
                    *c = sealed;
                }
            }
            Leaf::ListComment(item) => {
                if let Value::Comment(c) = item {
                    if let Some(sealed) = seal_comment(c) {
                        *item = Value::Str(sealed);
                    } else if c.is_empty() && rules.encrypts_comment(path, comments) {
                        // sops writes an empty comment it would encrypt as an empty
                        // string, an entry of the list like the sealed ones.
                        *item = Value::Str(String::new());
                    }
                }
            }
            Leaf::Scalar(v) => {
                let encrypted = rules.encrypts_value(path, comments);
                if !encrypted {
                    let read = store.reread(v);
                    if !rules.options.mac_only_encrypted
                        && let Some((bytes, _)) = scalar(read.as_ref().unwrap_or(v))
                    {
                        hash.update(&bytes);
                    }
                } else if let Some((bytes, kind)) = scalar(v) {
                    hash.update(&bytes);
                    if !bytes.is_empty() {
                        *v = Value::Str(aes::seal(key, &bytes, kind, &aad(path)));
                    }
                }
            }
        }
        Ok(())
    };
    for branch in branches.iter_mut() {
        // The visitor never fails when sealing.
        let _ = walk_items(branch, &mut Vec::new(), &mut Vec::new(), &mut visit);
    }
    mac_hex(hash)
}

/// A decrypted value of sops type `kind`.
fn typed(kind: &str, plain: &[u8]) -> Option<Value> {
    let text = || std::str::from_utf8(plain).ok().map(str::to_string);
    Some(match kind {
        "str" => match std::str::from_utf8(plain) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => Value::Bytes(plain.to_vec()),
        },
        "bytes" => Value::Bytes(plain.to_vec()),
        "int" => Value::Int(text()?.parse().ok()?),
        "float" => Value::Float(text()?.parse().ok()?),
        "bool" => Value::Bool(match text()?.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return None,
        }),
        "time" => Value::Time(text()?),
        "comment" => Value::Comment(text()?),
        _ => return None,
    })
}

fn data_key(raw: &[u8], at: &Location) -> Result<DataKey> {
    let key = <[u8; 32]>::try_from(raw).map_err(|_| Error::Corrupt {
        at: at.clone(),
        reason: "the sops data key is not 32 bytes".into(),
    })?;
    Ok(Zeroizing::new(key))
}

/// Whether opening a sops file checks its MAC (values authenticate one by one
/// either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mac {
    Check,
    /// As `sops decrypt --ignore-mac`.
    Ignore,
}

/// What `rewrap` keeps of a file's data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// The data key, unless the file loses a reader, and the wrapped key of a
    /// recipient that stays, when it is wrapped for that recipient alone, byte for
    /// byte (as `sops updatekeys`).
    KeepStaying,
    /// Nothing: a new data key, every value sealed under it, wrapped for every
    /// recipient (as `sops rotate`).
    Anew,
}

/// Decrypts every value with the data key and checks the MAC (unless told to ignore it).
fn verified(
    doc: &EncryptedDocument,
    metadata: &Metadata,
    key: &DataKey,
    at: &Location,
    mac: Mac,
) -> Result<Plain> {
    let rules = Rules::new(&metadata.options, at)?;
    let mut plain = Plain(doc.branches.clone());
    let computed = open_branches(&mut plain.0, &rules, key, at)?;
    if mac == Mac::Check && !mac_is(metadata, key, &computed) {
        return Err(Error::MacMismatch { at: at.clone() });
    }
    Ok(plain)
}

/// Whether the metadata's MAC, opened with the data key, is `computed`.
fn mac_is(metadata: &Metadata, key: &DataKey, computed: &str) -> bool {
    // sops writes the MAC as a string and refuses any other type on reading.
    cipher::parse(&metadata.mac)
        .filter(|s| s.kind == "str")
        .and_then(|s| aes::open(key, &s, &metadata.lastmodified))
        .is_some_and(|stored| stored.as_slice() == computed.as_bytes())
}

/// Checks that every value of `doc` authenticates under the data key (an error
/// names the first that does not) and returns whether its MAC matches them,
/// without decrypting the document into a copy.
fn values_check(
    doc: &EncryptedDocument,
    metadata: &Metadata,
    key: &DataKey,
    at: &Location,
) -> Result<bool> {
    let rules = Rules::new(&metadata.options, at)?;
    let computed = values_mac(&doc.branches, &rules, key, at)?;
    Ok(mac_is(metadata, key, &computed))
}

type Share = Option<Zeroizing<Vec<u8>>>;

/// Decrypts the share of each key group not yet opened that a ready identity opens
/// (any one of its age entries); keeps the last failure of a damaged entry.
fn group_shares(
    metadata: &Metadata,
    identities: &Identities,
    shares: &mut [Share],
    failure: &mut Option<Error>,
    at: &Location,
) {
    for (group, share) in metadata.key_groups.iter().zip(shares.iter_mut()) {
        if share.is_some() {
            continue;
        }
        for entry in trial_order(&group.age, identities) {
            match crypto::age::try_decrypt(entry.enc.as_bytes(), identities, at) {
                Ok(Some(part)) => {
                    *share = Some(part);
                    break;
                }
                Ok(None) => {}
                Err(e) => *failure = Some(e),
            }
        }
    }
}

/// The entries with a wrapped key, those named for a ready identity first: trying
/// an X25519 key on an entry costs a key agreement whoever it is for, and the entry
/// named for it is the one it opens. The rest keep their order.
fn trial_order<'a>(entries: &'a [AgeEntry], identities: &Identities) -> Vec<&'a AgeEntry> {
    let (mut first, rest): (Vec<&AgeEntry>, Vec<&AgeEntry>) = entries
        .iter()
        .filter(|e| !e.enc.is_empty())
        .partition(|e| identities.ready_for(&e.recipient));
    first.extend(rest);
    first
}

fn opened(shares: &[Share]) -> usize {
    shares.iter().filter(|s| s.is_some()).count()
}

/// How many key groups open a file, as sops counts: one of one, else the
/// threshold (and never fewer than the two shares a secret is combined from).
fn needed(metadata: &Metadata) -> usize {
    match metadata.key_groups.len() {
        1 => 1,
        _ => metadata.shamir_threshold.max(2),
    }
}

/// The data key from the key groups' shares, as sops recovers it: the one group's
/// key, or every share opened combined when there are at least the threshold.
fn group_key(
    metadata: &Metadata,
    shares: &[Share],
    failure: Option<Error>,
    identities: &Identities,
    at: &Location,
) -> Result<DataKey> {
    let parts: Vec<&[u8]> = shares.iter().flatten().map(|s| s.as_slice()).collect();
    if parts.len() < needed(metadata) {
        return Err(match failure {
            Some(e) if parts.is_empty() => e,
            _ if parts.is_empty() && metadata.key_groups.len() == 1 => Error::NoIdentity {
                at: at.clone(),
                searched: identities.searched().to_vec(),
            },
            _ => Error::TooFewGroups {
                at: at.clone(),
                opened: parts.len(),
                groups: metadata.key_groups.len(),
                needed: needed(metadata),
            },
        });
    }
    if let [one] = parts.as_slice()
        && metadata.key_groups.len() == 1
    {
        return data_key(one, at);
    }
    let key = crypto::shamir::combine(&parts).map_err(|e| Error::Corrupt {
        at: at.clone(),
        reason: format!("sops key groups: {e}"),
    })?;
    data_key(&key, at)
}

/// The data key wrapped for `shamir`'s groups: each group's recipients wrap one
/// share of it (the whole key when there is one group).
fn wrap_groups(key: &DataKey, shamir: &Shamir, at: &Location) -> Result<Vec<KeyGroup>> {
    let all: Vec<Recipient> = shamir.groups.iter().flatten().cloned().collect();
    crypto::age::refuse_low_order(&all, at)?;
    let shares = match shamir.groups.len() {
        1 => vec![Zeroizing::new(key.to_vec())],
        n => crypto::shamir::split(key.as_slice(), n, shamir.threshold),
    };
    shamir
        .groups
        .iter()
        .zip(shares)
        .map(|(group, share)| {
            let age = group
                .iter()
                .map(|r| wrap_for(&share, r, at))
                .collect::<Result<_>>()?;
            Ok(KeyGroup {
                age,
                foreign: Vec::new(),
            })
        })
        .collect()
}

fn wrap_for(key: &[u8], r: &Recipient, at: &Location) -> Result<AgeEntry> {
    let enc = crypto::age::encrypt(key, std::slice::from_ref(r), Armor::Ascii, at)?;
    Ok(AgeEntry {
        recipient: r.to_string(),
        enc: String::from_utf8(enc).unwrap_or_default(),
    })
}

/// Decrypts a sops document: finds the data key with the identities, decrypts every
/// value and checks the MAC unless told to ignore it.
pub fn open(
    doc: &EncryptedDocument,
    identities: &mut Identities,
    prompt: &dyn Prompt,
    at: &Location,
    mac: Mac,
) -> Result<Opened> {
    let metadata = Metadata::from_items(&doc.metadata).map_err(|reason| Error::Corrupt {
        at: at.clone(),
        reason: format!("bad sops metadata: {reason}"),
    })?;
    if metadata.uses_groups() {
        let mut shares = vec![None; metadata.key_groups.len()];
        let mut failure = None;
        group_shares(&metadata, identities, &mut shares, &mut failure, at);
        if opened(&shares) < needed(&metadata) && identities.has_locked() {
            identities.unlock_all(prompt)?;
            group_shares(&metadata, identities, &mut shares, &mut failure, at);
        }
        let key = group_key(&metadata, &shares, failure, identities, at)?;
        let plain = verified(doc, &metadata, &key, at, mac)?;
        return Ok(Opened {
            plain,
            metadata,
            key,
        });
    }
    let wrapped: Vec<&[u8]> = trial_order(&metadata.age, identities)
        .into_iter()
        .map(|e| e.enc.as_bytes())
        .collect();
    let by_age = if wrapped.is_empty() {
        Err(Error::NoIdentity {
            at: at.clone(),
            searched: vec![
                "the file has no age recipients (only pgp, cloud KMS or transit keys)".into(),
            ],
        })
    } else {
        crypto::age::decrypt_first(&wrapped, identities, prompt, at)
    };
    let raw = match by_age {
        Err(Error::NoIdentity { .. }) if let Some(by_transit) = by_transit(&metadata) => {
            by_transit?
        }
        other => other?,
    };
    let key = data_key(&raw, at)?;
    let plain = verified(doc, &metadata, &key, at, mac)?;
    Ok(Opened {
        plain,
        metadata,
        key,
    })
}

/// The data key from the top-level age entries, with the identities that are ready,
/// and the entry that opened it. A damaged entry is passed over (a rewrite replaces
/// it), as sops passes over a key it cannot use.
fn whole_key(
    metadata: &Metadata,
    identities: &Identities,
    at: &Location,
) -> Result<(DataKey, String)> {
    let mut raw = None;
    let mut failure = None;
    for entry in trial_order(&metadata.age, identities) {
        match crypto::age::try_decrypt(entry.enc.as_bytes(), identities, at) {
            Ok(Some(k)) => {
                raw = Some((k, entry.enc.clone()));
                break;
            }
            Ok(None) => {}
            Err(e) => failure = Some(e),
        }
    }
    let (raw, enc) = match (raw, failure, by_transit(metadata)) {
        (Some(raw), _, _) => raw,
        (None, Some(e), _) => return Err(e),
        // A key transit unwrapped: no age entry to recognise it by.
        (None, None, Some(by_transit)) => (by_transit?, String::new()),
        (None, None, None) => {
            return Err(Error::NoIdentity {
                at: at.clone(),
                searched: identities.searched().to_vec(),
            });
        }
    };
    Ok((data_key(&raw, at)?, enc))
}

/// A data key `rewrap` opened, and the wrapped key (an armored age file) that an
/// identity opened it from: the same bytes open to the same key, so a file that
/// holds them opens without decrypting them again.
pub struct KnownKey {
    enc: String,
    key: DataKey,
    /// The MAC and `lastmodified` of the document whose values were checked under
    /// `key`: the same branches under the same MAC check the same way.
    mac: String,
    lastmodified: String,
}

/// A new data key's entry (an armored age file) for a ready X25519 identity, and
/// what proves it opens.
struct MadeKey {
    enc: String,
    proof: crypto::age::Proof,
}

/// The data key of `metadata` with the identities that are ready: from an entry
/// byte for byte the one `known` was opened from, when it has one (and whether that
/// was so); from the entry `made` is for, byte for byte, opened with its identity
/// by its witness (`x25519::Witnessed`: the secret they share computed another way,
/// not taken from the wrapping); else by decrypting. Key groups are opened as
/// `rewrap` opens them.
fn proof_key(
    metadata: &Metadata,
    identities: &Identities,
    known: Option<&KnownKey>,
    made: Option<&MadeKey>,
    at: &Location,
) -> Result<(DataKey, bool)> {
    if metadata.uses_groups() {
        let mut shares = vec![None; metadata.key_groups.len()];
        let mut failure = None;
        group_shares(metadata, identities, &mut shares, &mut failure, at);
        return Ok((
            group_key(metadata, &shares, failure, identities, at)?,
            false,
        ));
    }
    if let Some(k) = known.filter(|k| metadata.age.iter().any(|e| e.enc == k.enc)) {
        return Ok((k.key.clone(), true));
    }
    if let Some(m) = made.filter(|m| metadata.age.iter().any(|e| e.enc == m.enc)) {
        let raw = m
            .proof
            .opens(m.enc.as_bytes(), identities, at)?
            .ok_or_else(|| Error::NoIdentity {
                at: at.clone(),
                searched: identities.searched().to_vec(),
            })?;
        return Ok((data_key(&raw, at)?, false));
    }
    Ok((whole_key(metadata, identities, at)?.0, false))
}

impl Rewrapped {
    /// Proves `written` (this document as read back from what was written, and its
    /// `metadata`) opens with the identities that are ready: its data key opens and
    /// every value authenticates under it. Returns whether its MAC matches too.
    /// When its key is the one `rewrap` opened, by the very entry it was opened from,
    /// and its branches, MAC and `lastmodified` are those `rewrap` checked under that
    /// key, that check stands and the values are not decrypted again.
    pub fn prove_opens(
        &self,
        written: &EncryptedDocument,
        metadata: &Metadata,
        identities: &Identities,
        at: &Location,
    ) -> Result<bool> {
        let known = self.known.as_ref();
        let (key, by_known) = proof_key(metadata, identities, known, self.made.as_ref(), at)?;
        if by_known
            && let Some(k) = known
            && metadata.mac == k.mac
            && metadata.lastmodified == k.lastmodified
            && written.branches == self.doc.branches
        {
            return Ok(!self.mac_mismatch);
        }
        values_check(written, metadata, &key, at)
    }
}

/// The data key unwrapped by the file's first transit key that unwraps it, `None`
/// when it has none.
fn by_transit(metadata: &Metadata) -> Option<Result<Zeroizing<Vec<u8>>>> {
    crypto::transit::unwrap_first(&metadata.hc_vault)
}

/// The age recipients among `recipients`, and the transit keys.
fn split(recipients: &[Recipient]) -> (Vec<Recipient>, Vec<&TransitKey>) {
    let mut age = Vec::new();
    let mut transit = Vec::new();
    for r in recipients {
        match r {
            Recipient::Transit(t) => transit.push(t),
            other => age.push(other.clone()),
        }
    }
    (age, transit)
}

/// The `hc_vault` entries for `keys`: an entry of `old` for the same key kept as
/// it is when `keep` (it wraps the same data key), else the key wrapped anew.
fn vault_entries(
    key: &DataKey,
    keys: &[&TransitKey],
    old: &[VaultEntry],
    keep: bool,
) -> Result<Vec<VaultEntry>> {
    keys.iter()
        .map(|t| {
            let url = t.url();
            let mut named = old.iter().filter(|e| e.url() == url && !e.enc.is_empty());
            if let (Some(kept), None) = (named.next(), named.next())
                && keep
            {
                return Ok(kept.clone());
            }
            crypto::transit::wrap(t, key.as_slice())
        })
        .collect()
}

/// Whether a file written for `recipients` (or `shamir`'s groups) leaves out anyone
/// who can open its data key now: an age recipient or transit key it names, or a key
/// source `keys` does not write (`pgp`, `kms`, …).
fn loses_a_reader(metadata: &Metadata, recipients: &[Recipient], shamir: Option<&Shamir>) -> bool {
    if !metadata.foreign().is_empty() || metadata.key_groups.iter().any(|g| !g.foreign.is_empty()) {
        return true;
    }
    let name = |r: &Recipient| match r {
        Recipient::Transit(t) => t.url(),
        other => other.to_string(),
    };
    let mut now: HashSet<String> = recipients.iter().map(name).collect();
    if let Some(shamir) = shamir {
        now.extend(shamir.groups.iter().flatten().map(name));
    }
    let mut had = metadata
        .age
        .iter()
        .chain(metadata.key_groups.iter().flat_map(|g| &g.age))
        .map(|e| e.recipient.clone())
        .chain(metadata.hc_vault.iter().map(VaultEntry::url));
    had.any(|r| !now.contains(&r))
}

/// Seals every encrypted value and comment of `branches` under `new` rather than
/// `old` (the same plaintext, type and key path, a fresh IV), and the metadata's MAC
/// with them, under the same `lastmodified`. A comment or MAC that does not open
/// under `old` is left as it is, as reading leaves it.
fn reseal(
    branches: &mut Branches,
    metadata: &mut Metadata,
    old: &DataKey,
    new: &DataKey,
    at: &Location,
) -> Result<()> {
    let rules = Rules::new(&metadata.options, at)?;
    let mut visit = |leaf: Leaf, path: &[String], comments: &[Vec<String>]| -> Result<()> {
        let a = aad(path);
        match leaf {
            leaf @ (Leaf::Comment(_) | Leaf::ListComment(_)) => {
                let Some(c) = leaf.into_comment() else {
                    return Ok(());
                };
                if rules.encrypts_comment(path, comments)
                    && let Some(sealed) = cipher::parse(c)
                    && let Some(plain) = aes::open(old, &sealed, &a)
                {
                    *c = aes::seal(new, &plain, &sealed.kind, &a);
                }
            }
            Leaf::Scalar(v) => {
                if rules.encrypts_value(path, comments)
                    && let Value::Str(s) = v
                    && !s.is_empty()
                {
                    let unsealed = || corrupt(at, path, "does not authenticate");
                    let sealed = cipher::parse(s).ok_or_else(unsealed)?;
                    let plain = aes::open(old, &sealed, &a).ok_or_else(unsealed)?;
                    *s = aes::seal(new, &plain, &sealed.kind, &a);
                }
            }
        }
        Ok(())
    };
    for branch in branches.iter_mut() {
        walk_items(branch, &mut Vec::new(), &mut Vec::new(), &mut visit)?;
    }
    if let Some(sealed) = cipher::parse(&metadata.mac)
        && let Some(mac) = aes::open(old, &sealed, &metadata.lastmodified)
    {
        metadata.mac = aes::seal(new, &mac, &sealed.kind, &metadata.lastmodified);
    }
    Ok(())
}

/// A document whose data key `rewrap` wrapped anew.
pub struct Rewrapped {
    pub doc: EncryptedDocument,
    /// Its MAC did not match its values, before and so after: re-wrapping the data
    /// key needs no MAC and leaves it as it was (a file sops wrote with a float -0 in
    /// clear is one).
    pub mac_mismatch: bool,
    /// The data key and the entry it was opened from (none for key groups).
    pub known: Option<KnownKey>,
    /// The entry a new data key was wrapped in for a ready identity, with what
    /// proves it opens.
    made: Option<MadeKey>,
    /// The headers of the wrapped keys it kept or made, as read.
    pub headers: sops::Headers,
}

/// Re-wraps the data key of an encrypted document for `recipients`, as `sops
/// updatekeys` does: values, IVs, `lastmodified` and the MAC stay as they are, and the
/// wrapped key of a recipient that stays is kept byte for byte when it is for that
/// recipient alone. Key sources other than age are dropped. For `shamir`'s key
/// groups the key is split anew, and the identities must open the threshold of the
/// new groups too. The document is checked first with identities that are ready
/// (nothing is asked for): every value authenticates under the data key, and whether
/// the MAC matches is told, not required.
///
/// When the file loses a reader (a recipient, transit key or foreign key source it
/// had and is not written for), or `wrap` is `Wrap::Anew`, the data key is made anew
/// first, as `sops rotate` does: every value and encrypted comment is sealed again
/// under it (the same plaintext, type and key path), and the MAC with it, under the
/// same `lastmodified` (a MAC that did not match still does not). The reader taken
/// away keeps what they could read, and opens nothing written after.
pub fn rewrap(
    mut doc: EncryptedDocument,
    identities: &Identities,
    recipients: &[Recipient],
    shamir: Option<&Shamir>,
    wrap: Wrap,
    at: &Location,
) -> Result<Rewrapped> {
    let mut metadata = Metadata::from_items(&doc.metadata).map_err(|reason| Error::Corrupt {
        at: at.clone(),
        reason: format!("bad sops metadata: {reason}"),
    })?;
    let (key, opened_from) = if metadata.uses_groups() {
        let mut shares = vec![None; metadata.key_groups.len()];
        let mut failure = None;
        group_shares(&metadata, identities, &mut shares, &mut failure, at);
        (
            group_key(&metadata, &shares, failure, identities, at)?,
            None,
        )
    } else {
        let (key, enc) = whole_key(&metadata, identities, at)?;
        (key, Some(enc))
    };
    let mac_mismatch = !values_check(&doc, &metadata, &key, at)?;
    let anew = wrap == Wrap::Anew || loses_a_reader(&metadata, recipients, shamir);
    let (key, opened_from) = if anew {
        let fresh = aes::fresh_key();
        reseal(&mut doc.branches, &mut metadata, &key, &fresh, at)?;
        (fresh, None)
    } else {
        (key, opened_from)
    };
    let keep = !anew;
    if let Some(shamir) = shamir {
        // New shares for every group, as `sops updatekeys` splits the key anew.
        let groups = wrap_groups(&key, shamir, at)?;
        metadata.set_groups(groups, shamir.threshold);
        // The identities that opened the file open what is written (nothing is
        // written that they could not check).
        let mut shares = vec![None; metadata.key_groups.len()];
        group_shares(&metadata, identities, &mut shares, &mut None, at);
        group_key(&metadata, &shares, None, identities, at)?;
        return Ok(Rewrapped {
            doc: EncryptedDocument {
                branches: doc.branches,
                metadata: metadata.to_items(),
            },
            mac_mismatch,
            known: None,
            made: None,
            headers: sops::Headers::default(),
        });
    }
    let (recipients, transit) = split(recipients);
    crypto::age::refuse_low_order(&recipients, at)?;
    let mut headers = sops::Headers::default();
    let old = std::mem::take(&mut metadata.age);
    let old_vault = std::mem::take(&mut metadata.hc_vault);
    metadata.drop_foreign();
    metadata.hc_vault = vault_entries(&key, &transit, &old_vault, keep)?;
    // A key made here is proven to open with the first ready identity it is wrapped
    // for, by the ephemeral secret of that wrapping (`prove_opens`).
    let mut made = None;
    metadata.age = recipients
        .iter()
        .map(|r| {
            let name = r.to_string();
            let mut named = old.iter().filter(|e| e.recipient == name);
            if let (Some(kept), None) = (named.next(), named.next())
                && keep
                && sops::wrapped_for(&kept.enc, r, &mut headers)
            {
                return Ok(kept.clone());
            }
            let (enc, proof) = crypto::age::encrypt_proven(
                key.as_slice(),
                std::slice::from_ref(r),
                Armor::Ascii,
                identities,
                at,
            )?;
            let enc = String::from_utf8(enc).unwrap_or_default();
            if let (None, Some(proof)) = (&made, proof) {
                made = Some(MadeKey {
                    enc: enc.clone(),
                    proof,
                });
            }
            headers.read(&enc);
            Ok(AgeEntry {
                recipient: name,
                enc,
            })
        })
        .collect::<Result<_>>()?;
    let known = opened_from
        .filter(|enc| !enc.is_empty())
        .map(|enc| KnownKey {
            enc,
            key,
            mac: metadata.mac.clone(),
            lastmodified: metadata.lastmodified.clone(),
        });
    Ok(Rewrapped {
        doc: EncryptedDocument {
            branches: doc.branches,
            metadata: metadata.to_items(),
        },
        mac_mismatch,
        known,
        made,
        headers,
    })
}

/// Encrypts a plaintext document for `recipients` under `key`, a new data key. With
/// `previous` (the same file as it was decrypted), its options and the metadata
/// keys sops keeps are kept; its data key is not: a wrapped key is not under the
/// MAC, so anyone who could write the file may have added a wrapping of their own,
/// or kept one for a reader the policy has since dropped.
#[allow(clippy::too_many_arguments)]
pub fn seal_under(
    key: &DataKey,
    store: &dyn Store,
    branches: &Branches,
    recipients: &[Recipient],
    shamir: Option<&Shamir>,
    options: Options,
    previous: Option<&Opened>,
    at: &Location,
) -> Result<EncryptedDocument> {
    let mut metadata = match previous {
        Some(p) => p.metadata.clone(),
        None => Metadata {
            age: Vec::new(),
            hc_vault: Vec::new(),
            lastmodified: String::new(),
            mac: String::new(),
            version: VERSION.into(),
            options: options.with_default(),
            key_groups: Vec::new(),
            shamir_threshold: 0,
            raw: Vec::new(),
        },
    };
    if let Some(shamir) = shamir {
        let groups = wrap_groups(key, shamir, at)?;
        metadata.set_groups(groups, shamir.threshold);
        return finish(store, branches, metadata, key, at);
    }
    metadata.drop_foreign();
    let (recipients, transit) = split(recipients);
    crypto::age::refuse_low_order(&recipients, at)?;
    metadata.hc_vault = vault_entries(key, &transit, &[], false)?;
    metadata.age = recipients
        .iter()
        .map(|r| wrap_for(key.as_slice(), r, at))
        .collect::<Result<_>>()?;
    finish(store, branches, metadata, key, at)
}

/// Seals the values with the data key and writes the MAC and `lastmodified`.
fn finish(
    store: &dyn Store,
    branches: &Branches,
    mut metadata: Metadata,
    key: &DataKey,
    at: &Location,
) -> Result<EncryptedDocument> {
    let rules = Rules::new(&metadata.options, at)?;
    let mut out = branches.clone();
    let mac = seal_branches(&mut out, &rules, key, store);
    metadata.lastmodified =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    metadata.mac = aes::seal(key, mac.as_bytes(), "str", &metadata.lastmodified);
    metadata.version = VERSION.into();
    Ok(EncryptedDocument {
        branches: out,
        metadata: metadata.to_items(),
    })
}

/// Decrypts a sops file to the bytes `sops decrypt` prints (with `indent`, sops's
/// `stores.<format>.indent`), and what re-encrypting an edited version needs.
pub fn decrypt_file(
    format: Format,
    data: &[u8],
    identities: &mut Identities,
    prompt: &dyn Prompt,
    at: &Location,
    mac: Mac,
    indent: Option<u8>,
) -> Result<(Zeroizing<Vec<u8>>, Opened)> {
    let store = sops::require_indented_store(format, indent, at)?;
    let doc = store.load_encrypted(data, &at.file)?;
    let opened = open(&doc, identities, prompt, at, mac)?;
    let plain = Zeroizing::new(store.emit_plain(&opened.plain.0)?);
    Ok((plain, opened))
}

/// Encrypts a plaintext document of `format` for `recipients`; with `previous`, the
/// data key and the ciphertext of unchanged values are kept.
pub fn encrypt_file(
    format: Format,
    plaintext: &[u8],
    recipients: &[Recipient],
    shamir: Option<&Shamir>,
    options: Options,
    previous: Option<&Opened>,
    at: &Location,
) -> Result<Vec<u8>> {
    let store = sops::require_indented_store(format, options.indent, at)?;
    let plain = Plain(store.load_plain(plaintext, &at.file)?);
    // A binary file is one value, always encrypted: sops ignores (and does not
    // record) the options that choose values, and so does keys.
    let options = if format == Format::SopsBinary {
        Options {
            indent: options.indent,
            ..Options::default()
        }
    } else {
        options
    };
    if plain.0.is_empty() {
        // sops refuses it too: no document is no place for the metadata.
        return Err(Error::InvalidFile {
            at: at.clone(),
            reason: "the plaintext holds no document (only blanks, comments or `...`)".into(),
        });
    }
    let key = aes::fresh_key();
    let mut doc = seal_under(
        &key, &*store, &plain.0, recipients, shamir, options, previous, at,
    )?;
    if format == Format::SopsBinary && previous.is_none() {
        // Nor sops's default suffix, which only a store of many values records.
        doc.metadata
            .retain(|item| item.key() != Some("unencrypted_suffix"));
    }
    let out = store.emit_encrypted(&doc)?;
    // A file keys would refuse to read back is not written. JSON indents a tab a
    // level, so a document nested a few thousand levels deep comes to this.
    if out.len() > sops::MAX_INPUT {
        return Err(Error::InvalidFile {
            at: at.clone(),
            reason: format!(
                "encrypted, it would be {} MiB, more than the {} MiB keys reads; nest it less deeply or split it",
                out.len() >> 20,
                sops::MAX_INPUT >> 20
            ),
        });
    }
    // Nor one that would not open again. sops writes such files under some options
    // (a comment regex can leave a value in the clear, or put the MAC over other
    // bytes than it checks on reading), and then neither tool reads them.
    let opens = store.load_encrypted(&out, &at.file).ok().and_then(|back| {
        let metadata = Metadata::from_items(&back.metadata).ok()?;
        values_check(&back, &metadata, &key, at).ok()
    });
    if opens != Some(true) {
        return Err(Error::InvalidFile {
            at: at.clone(),
            reason: "encrypted under this rule's options it would not open again (sops writes \
                     it with a value in the clear or a MAC it then refuses); a comment regex is \
                     the usual cause: change the rule or move the comment"
                .into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
