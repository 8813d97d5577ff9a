//! Encrypting, decrypting and re-wrapping whole sops files: each value sealed under
//! its key path where the file's options say, the MAC over the plaintext values checked
//! on every decrypt, and the data key wrapped per age recipient. IVs of unchanged values
//! are kept, so a rewrite changes only what changed.

use std::collections::HashMap;

use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto;
use crate::crypto::aes::{self, DataKey};
use crate::crypto::age::Armor;
use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::format::sops;
use crate::format::sops::audit::{Leaf, Rules, corrupt, walk_items};
use crate::format::sops::cipher::{self, IV_LEN};
use crate::format::sops::document::{Branches, EncryptedDocument, Item, Store, Value};
use crate::format::sops::golang::{Fmt, format_float};
use crate::format::sops::metadata::{AgeEntry, KeyGroup, Metadata, Options, Shamir, VERSION};
use crate::identity::{Identities, Prompt};
use crate::recipient::Recipient;

/// The first 32 bytes of the MAC hash when `mac_only_encrypted` is set: SHA-256("sops").
const MAC_ONLY_ENCRYPTED_SEED: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A decrypted document; its plaintext strings are wiped on drop.
pub struct Plain(pub Branches);

impl Drop for Plain {
    fn drop(&mut self) {
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
        self.0.iter_mut().flatten().for_each(wipe_item);
    }
}

/// IVs of the values as they were decrypted, by a hash of (key path, type,
/// plaintext), so the stash holds no plaintext.
#[derive(Default)]
pub struct Stash(HashMap<[u8; 32], [u8; IV_LEN]>);

impl Stash {
    fn slot(aad: &str, kind: &str, plain: &[u8]) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(aad.as_bytes());
        h.update([0]);
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(plain);
        h.finalize().into()
    }

    fn get(&self, aad: &str, kind: &str, plain: &[u8]) -> Option<[u8; IV_LEN]> {
        self.0.get(&Stash::slot(aad, kind, plain)).copied()
    }
}

/// What decrypting a file gives: the plaintext, and what re-encrypting it needs to
/// keep unchanged values byte-identical.
pub struct Opened {
    pub plain: Plain,
    pub metadata: Metadata,
    pub key: DataKey,
    pub stash: Stash,
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
    hash.finalize().iter().map(|b| format!("{b:02X}")).collect()
}

/// Decrypts every value of `branches` in place; returns the MAC of the plaintext.
fn open_branches(
    branches: &mut Branches,
    rules: &Rules,
    key: &DataKey,
    stash: &mut Stash,
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
                    && let Ok(text) = std::str::from_utf8(&plain)
                {
                    if let Ok(iv) = <[u8; IV_LEN]>::try_from(sealed.iv.as_slice()) {
                        stash.0.insert(Stash::slot(&a, "comment", &plain), iv);
                    }
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
                        if let Ok(iv) = <[u8; IV_LEN]>::try_from(sealed.iv.as_slice()) {
                            stash.0.insert(Stash::slot(&a, &sealed.kind, &plain), iv);
                        }
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

/// Encrypts every value of `branches` in place; returns the MAC of the plaintext,
/// where a value left in clear counts as what `store` reads it back as.
fn seal_branches(
    branches: &mut Branches,
    rules: &Rules,
    key: &DataKey,
    stash: &Stash,
    store: &dyn Store,
) -> String {
    let mut hash = new_mac(&rules.options);
    let mut visit = |leaf: Leaf, path: &[String], comments: &[Vec<String>]| -> Result<()> {
        let seal_comment = |c: &str| {
            (rules.encrypts_comment(path, comments) && !c.is_empty()).then(|| {
                let a = aad(path);
                let iv = stash.get(&a, "comment", c.as_bytes());
                aes::seal(key, c.as_bytes(), "comment", &a, iv)
            })
        };
        match leaf {
            Leaf::Comment(c) => {
                if let Some(sealed) = seal_comment(c) {
                    *c = sealed;
                }
            }
            Leaf::ListComment(item) => {
                if let Value::Comment(c) = item
                    && let Some(sealed) = seal_comment(c)
                {
                    *item = Value::Str(sealed);
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
                        let a = aad(path);
                        let iv = stash.get(&a, kind, &bytes);
                        *v = Value::Str(aes::seal(key, &bytes, kind, &a, iv));
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

/// Which wrapped data keys `rewrap` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// The key of a recipient that stays, when it is wrapped for that recipient
    /// alone, byte for byte (as `sops updatekeys`).
    KeepStaying,
    /// None: every recipient's key is wrapped anew.
    Anew,
}

/// Decrypts every value with the data key and checks the MAC (unless told to ignore it).
fn verified(
    doc: &EncryptedDocument,
    metadata: &Metadata,
    key: &DataKey,
    at: &Location,
    mac: Mac,
) -> Result<(Plain, Stash)> {
    let rules = Rules::new(&metadata.options, at)?;
    let mut plain = Plain(doc.branches.clone());
    let mut stash = Stash::default();
    let computed = open_branches(&mut plain.0, &rules, key, &mut stash, at)?;
    if mac == Mac::Check {
        // sops writes the MAC as a string and refuses any other type on reading.
        let stored = cipher::parse(&metadata.mac)
            .filter(|s| s.kind == "str")
            .and_then(|s| aes::open(key, &s, &metadata.lastmodified))
            .ok_or_else(|| Error::MacMismatch { at: at.clone() })?;
        if stored.as_slice() != computed.as_bytes() {
            return Err(Error::MacMismatch { at: at.clone() });
        }
    }
    Ok((plain, stash))
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
        for entry in group.age.iter().filter(|e| !e.enc.is_empty()) {
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

/// Whether the file's key groups are `shamir`'s: the same threshold, and each
/// group names the same recipients, each once.
fn groups_are(metadata: &Metadata, shamir: &Shamir) -> bool {
    metadata.uses_groups()
        && metadata.shamir_threshold == shamir.threshold
        && metadata.key_groups.len() == shamir.groups.len()
        && metadata
            .key_groups
            .iter()
            .zip(&shamir.groups)
            .all(|(have, want)| {
                have.age.len() == want.len()
                    && want.iter().all(|r| {
                        let name = r.to_string();
                        have.age.iter().filter(|e| e.recipient == name).count() == 1
                    })
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
        let (plain, stash) = verified(doc, &metadata, &key, at, mac)?;
        return Ok(Opened {
            plain,
            metadata,
            key,
            stash,
        });
    }
    let wrapped: Vec<&[u8]> = metadata
        .age
        .iter()
        .filter(|e| !e.enc.is_empty())
        .map(|e| e.enc.as_bytes())
        .collect();
    if wrapped.is_empty() {
        return Err(Error::NoIdentity {
            at: at.clone(),
            searched: vec!["the file has no age recipients (only pgp or cloud KMS keys)".into()],
        });
    }
    let key = data_key(
        &crypto::age::decrypt_first(&wrapped, identities, prompt, at)?,
        at,
    )?;
    let (plain, stash) = verified(doc, &metadata, &key, at, mac)?;
    Ok(Opened {
        plain,
        metadata,
        key,
        stash,
    })
}

/// The data key from the top-level age entries, with the identities that are ready.
/// A damaged entry is passed over (a rewrite replaces it), as sops passes over a
/// key it cannot use.
fn whole_key(metadata: &Metadata, identities: &Identities, at: &Location) -> Result<DataKey> {
    let mut raw = None;
    let mut failure = None;
    for entry in metadata.age.iter().filter(|e| !e.enc.is_empty()) {
        match crypto::age::try_decrypt(entry.enc.as_bytes(), identities, at) {
            Ok(Some(k)) => {
                raw = Some(k);
                break;
            }
            Ok(None) => {}
            Err(e) => failure = Some(e),
        }
    }
    let raw = match (raw, failure) {
        (Some(raw), _) => raw,
        (None, Some(e)) => return Err(e),
        (None, None) => {
            return Err(Error::NoIdentity {
                at: at.clone(),
                searched: identities.searched().to_vec(),
            });
        }
    };
    data_key(&raw, at)
}

/// A document whose data key `rewrap` wrapped anew.
pub struct Rewrapped {
    pub doc: EncryptedDocument,
    /// Its MAC did not match its values, before and so after: re-wrapping the data
    /// key needs no MAC and leaves it as it was (a file sops wrote with a float -0 in
    /// clear is one).
    pub mac_mismatch: bool,
}

/// Re-wraps the data key of an encrypted document for `recipients`, as `sops
/// updatekeys` does: values, IVs, `lastmodified` and the MAC stay as they are, and the
/// wrapped key of a recipient that stays is kept byte for byte when it is for that
/// recipient alone (unless `wrap` is `Wrap::Anew`). Key sources other
/// than age are dropped. For `shamir`'s key groups the key is split anew, and the
/// identities must open the threshold of the new groups too. The document is checked
/// first with identities that are ready (nothing is asked for): every value
/// authenticates under the data key, and whether the MAC matches is told, not
/// required.
pub fn rewrap(
    doc: &EncryptedDocument,
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
    let key = if metadata.uses_groups() {
        let mut shares = vec![None; metadata.key_groups.len()];
        let mut failure = None;
        group_shares(&metadata, identities, &mut shares, &mut failure, at);
        group_key(&metadata, &shares, failure, identities, at)?
    } else {
        whole_key(&metadata, identities, at)?
    };
    let mac_mismatch = match verified(doc, &metadata, &key, at, Mac::Check) {
        Ok(_) => false,
        Err(Error::MacMismatch { .. }) => true,
        Err(e) => return Err(e),
    };
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
                branches: doc.branches.clone(),
                metadata: metadata.to_items(),
            },
            mac_mismatch,
        });
    }
    crypto::age::refuse_low_order(recipients, at)?;
    let old = std::mem::take(&mut metadata.age);
    metadata.drop_foreign();
    metadata.age = recipients
        .iter()
        .map(|r| {
            let name = r.to_string();
            let mut named = old.iter().filter(|e| e.recipient == name);
            if let (Some(kept), None) = (named.next(), named.next())
                && wrap == Wrap::KeepStaying
                && sops::wrapped_for(&kept.enc, r)
            {
                return Ok(kept.clone());
            }
            let enc =
                crypto::age::encrypt(key.as_slice(), std::slice::from_ref(r), Armor::Ascii, at)?;
            Ok(AgeEntry {
                recipient: name,
                enc: String::from_utf8(enc).unwrap_or_default(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Rewrapped {
        doc: EncryptedDocument {
            branches: doc.branches.clone(),
            metadata: metadata.to_items(),
        },
        mac_mismatch,
    })
}

/// Encrypts a plaintext document for `recipients`. With `previous` (the same file
/// as it was decrypted), its data key, options and the IVs of unchanged values are
/// kept, and its wrapped keys too when the recipients are the same.
pub fn seal(
    store: &dyn Store,
    branches: &Branches,
    recipients: &[Recipient],
    shamir: Option<&Shamir>,
    options: Options,
    previous: Option<&Opened>,
    at: &Location,
) -> Result<EncryptedDocument> {
    let empty = Stash::default();
    let (key, stash, mut metadata) = match previous {
        Some(p) => (p.key.clone(), &p.stash, p.metadata.clone()),
        None => (
            aes::fresh_key(),
            &empty,
            Metadata {
                age: Vec::new(),
                lastmodified: String::new(),
                mac: String::new(),
                version: VERSION.into(),
                options: options.with_default(),
                key_groups: Vec::new(),
                shamir_threshold: 0,
                raw: Vec::new(),
            },
        ),
    };
    if let Some(shamir) = shamir {
        if !groups_are(&metadata, shamir) {
            let groups = wrap_groups(&key, shamir, at)?;
            metadata.set_groups(groups, shamir.threshold);
        }
        return finish(store, branches, metadata, &key, stash, at);
    }
    if metadata.uses_groups() {
        metadata.drop_groups();
    }
    let names: Vec<String> = recipients.iter().map(Recipient::to_string).collect();
    let same = metadata.age.len() == names.len()
        && names
            .iter()
            .all(|n| metadata.age.iter().any(|e| &e.recipient == n));
    if !same {
        crypto::age::refuse_low_order(recipients, at)?;
        metadata.age = recipients
            .iter()
            .map(|r| {
                let enc = crypto::age::encrypt(
                    key.as_slice(),
                    std::slice::from_ref(r),
                    Armor::Ascii,
                    at,
                )?;
                Ok(AgeEntry {
                    recipient: r.to_string(),
                    enc: String::from_utf8(enc).unwrap_or_default(),
                })
            })
            .collect::<Result<_>>()?;
    }
    finish(store, branches, metadata, &key, stash, at)
}

/// Seals the values with the data key and writes the MAC and `lastmodified`.
fn finish(
    store: &dyn Store,
    branches: &Branches,
    mut metadata: Metadata,
    key: &DataKey,
    stash: &Stash,
    at: &Location,
) -> Result<EncryptedDocument> {
    let rules = Rules::new(&metadata.options, at)?;
    let mut out = branches.clone();
    let mac = seal_branches(&mut out, &rules, key, stash, store);
    metadata.lastmodified =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    metadata.mac = aes::seal(key, mac.as_bytes(), "str", &metadata.lastmodified, None);
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
    let mut doc = seal(&*store, &plain.0, recipients, shamir, options, previous, at)?;
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::format::sops::{examine, readers, store};
    use crate::identity::{NoPrompt, Search};

    fn doc() -> Branches {
        let s = |v: &str| Value::Str(v.into());
        vec![vec![
            Item::Comment(" top comment".into()),
            Item::Pair(
                "db".into(),
                Value::Map(vec![
                    Item::Pair("user".into(), s("app")),
                    Item::Pair("password".into(), s("hunter2-canary")),
                    Item::Pair("port".into(), Value::Int(5432)),
                    Item::Pair("ratio".into(), Value::Float(0.75)),
                    Item::Pair("tls".into(), Value::Bool(true)),
                    Item::Pair("note_unencrypted".into(), s("visible")),
                    Item::Pair("empty".into(), s("")),
                    Item::Pair("nothing".into(), Value::Null),
                ]),
            ),
            Item::Pair(
                "list".into(),
                Value::List(vec![
                    s("a"),
                    Value::Comment(" in a list".into()),
                    Value::Int(2),
                ]),
            ),
        ]]
    }

    fn identity() -> (tempfile::TempDir, Identities, Recipient) {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        std::fs::write(&path, id.to_string().expose_secret()).unwrap();
        // A private key file others can read is refused, as ssh refuses one.
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
        std::fs::set_permissions(&path, private).unwrap();
        let search = Search {
            flags: vec![path],
            env_identity: None,
            keyring: crate::identity::keyring::Backend::Disabled,
            config_dir: None,
            home: None,
            sops: crate::identity::SopsPlaces::default(),
        };
        let ids = Identities::search(&search).unwrap();
        (dir, ids, Recipient::X25519(id.to_public()))
    }

    fn yaml() -> &'static dyn Store {
        store(Format::SopsYaml).unwrap()
    }

    fn flat(doc: &EncryptedDocument) -> String {
        format!("{:?}", doc.branches)
    }

    #[test]
    fn seal_then_open_round_trips_and_keeps_unchanged_ciphertext() {
        let (_d, mut ids, r) = identity();
        let at = Location::named("t.yaml");
        let sealed = seal(
            yaml(),
            &doc(),
            std::slice::from_ref(&r),
            None,
            Options::default(),
            None,
            &at,
        )
        .unwrap();
        let text = flat(&sealed);
        assert!(
            !text.contains("hunter2") && !text.contains("top comment"),
            "{text}"
        );
        assert!(
            text.contains("visible"),
            "the unencrypted suffix stays clear"
        );
        let opened = open(&sealed, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
        assert_eq!(opened.plain.0, doc());
        // Re-sealing with the previous version keeps every ciphertext.
        let again = seal(
            yaml(),
            &doc(),
            std::slice::from_ref(&r),
            None,
            Options::default(),
            Some(&opened),
            &at,
        )
        .unwrap();
        assert_eq!(flat(&again), text);
        assert_eq!(metadata_age(&again), metadata_age(&sealed));
        // One changed value changes only that value.
        let mut changed = doc();
        if let Item::Pair(_, Value::Map(items)) = &mut changed[0][1] {
            items[0] = Item::Pair("user".into(), Value::Str("other".into()));
        }
        let third = seal(
            yaml(),
            &changed,
            &[r],
            None,
            Options::default(),
            Some(&opened),
            &at,
        )
        .unwrap();
        let (a, b) = (
            format!("{:?}", sealed.branches[0][1]),
            format!("{:?}", third.branches[0][1]),
        );
        assert_ne!(a, b);
        assert_eq!(
            format!("{:?}", sealed.branches[0][2]),
            format!("{:?}", third.branches[0][2])
        );
    }

    fn metadata_age(doc: &EncryptedDocument) -> Vec<AgeEntry> {
        Metadata::from_items(&doc.metadata).unwrap().age
    }

    #[test]
    fn tampering_gives_distinct_errors() {
        let (_d, mut ids, r) = identity();
        let at = Location::named("t.yaml");
        let sealed = seal(yaml(), &doc(), &[r], None, Options::default(), None, &at).unwrap();
        let db = |d: &mut EncryptedDocument| match &mut d.branches[0][1] {
            Item::Pair(_, Value::Map(items)) => items.clone(),
            _ => unreachable!(),
        };
        // Swap two values' ciphertexts: each fails to authenticate at its new key.
        let mut swapped = sealed.clone();
        let mut items = db(&mut swapped);
        let (u, p) = (items[0].clone(), items[1].clone());
        if let (Item::Pair(_, uv), Item::Pair(_, pv)) = (&u, &p) {
            items[0] = Item::Pair("user".into(), pv.clone());
            items[1] = Item::Pair("password".into(), uv.clone());
        }
        swapped.branches[0][1] = Item::Pair("db".into(), Value::Map(items));
        let err = open(&swapped, &mut ids, &NoPrompt, &at, Mac::Check)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("value at db.user: does not authenticate"),
            "{err}"
        );
        // Remove a clear value: the MAC no longer matches.
        let mut removed = sealed.clone();
        let mut items = db(&mut removed);
        items.retain(|i| i.key() != Some("note_unencrypted"));
        removed.branches[0][1] = Item::Pair("db".into(), Value::Map(items));
        assert!(matches!(
            open(&removed, &mut ids, &NoPrompt, &at, Mac::Check),
            Err(Error::MacMismatch { .. })
        ));
        assert!(
            open(&removed, &mut ids, &NoPrompt, &at, Mac::Ignore).is_ok(),
            "--ignore-mac"
        );
        // The MAC's type is part of its form: sops reads only a string.
        let mut retyped = sealed.clone();
        for item in &mut retyped.metadata {
            if let Item::Pair(k, Value::Str(mac)) = item
                && k == "mac"
            {
                *mac = mac.replace(",type:str]", ",type:Atr]");
            }
        }
        assert!(matches!(
            open(&retyped, &mut ids, &NoPrompt, &at, Mac::Check),
            Err(Error::MacMismatch { .. })
        ));
        // A plaintext value where the options require encryption.
        let mut plain = sealed.clone();
        let mut items = db(&mut plain);
        items[1] = Item::Pair("password".into(), Value::Str("hunter2-canary".into()));
        plain.branches[0][1] = Item::Pair("db".into(), Value::Map(items));
        let err = open(&plain, &mut ids, &NoPrompt, &at, Mac::Check)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("db.password: not encrypted") && !err.contains("hunter2"),
            "{err}"
        );
        // Nobody's key.
        let (_d2, mut other, _) = identity();
        assert!(matches!(
            open(&sealed, &mut other, &NoPrompt, &at, Mac::Check),
            Err(Error::NoIdentity { .. })
        ));
    }

    #[test]
    fn mac_only_encrypted_and_regex_options() {
        let (_d, mut ids, r) = identity();
        let at = Location::named("t.yaml");
        let options = Options {
            encrypted_regex: Some("^(password|port)$".into()),
            mac_only_encrypted: true,
            ..Options::default()
        };
        let sealed = seal(yaml(), &doc(), &[r], None, options, None, &at).unwrap();
        let text = flat(&sealed);
        assert!(
            text.contains("\"app\"") && !text.contains("hunter2"),
            "{text}"
        );
        let mut changed = sealed.clone();
        if let Item::Pair(_, Value::Map(items)) = &mut changed.branches[0][1] {
            items[0] = Item::Pair("user".into(), Value::Str("someone-else".into()));
        }
        // Clear values are outside the MAC with mac_only_encrypted.
        let opened = open(&changed, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
        assert!(format!("{:?}", opened.plain.0).contains("someone-else"));
        assert!(opened.metadata.options.mac_only_encrypted);
    }

    /// Neither sealing nor re-wrapping writes a wrapped key for a low-order age
    /// recipient, however it was made (here past the parser that refuses it).
    #[test]
    fn no_data_key_is_wrapped_to_a_low_order_recipient() {
        let (_d, ids, r) = identity();
        let at = Location::named("t.yaml");
        let zero = bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("age").unwrap(), &[0u8; 32])
            .unwrap();
        let weak = Recipient::X25519(zero.parse().unwrap());
        let both = [r.clone(), weak];
        let refused = |e: Error| matches!(e, Error::WeakKey { .. });
        let sealed = seal(yaml(), &doc(), &both, None, Options::default(), None, &at);
        assert!(sealed.is_err_and(refused));
        let sealed = seal(yaml(), &doc(), &[r], None, Options::default(), None, &at).unwrap();
        assert!(rewrap(&sealed, &ids, &both, None, Wrap::KeepStaying, &at).is_err_and(refused));
    }

    fn x25519() -> Recipient {
        Recipient::X25519(::age::x25519::Identity::generate().to_public())
    }

    #[test]
    fn readers_count_every_way_a_file_can_hold_a_reader_the_policy_does_not_name() {
        let at = Location::named("t");
        let (admin, host, extra) = (x25519(), x25519(), x25519());
        let policy = [admin.clone(), host.clone()];
        let file = encrypt_file(
            Format::SopsYaml,
            b"a: b\n",
            &policy,
            None,
            Options::default(),
            None,
            &at,
        )
        .unwrap();
        let differs = |data: &[u8], want: &[Recipient]| {
            readers(Format::SopsYaml, data)
                .unwrap()
                .differs_from(want, None)
        };
        assert_eq!(differs(&file, &policy), None);
        assert_eq!(
            examine(Format::SopsYaml, &file).unwrap(),
            readers(Format::SopsYaml, &file).unwrap()
        );
        // The file rewritten with its metadata changed by `edit`.
        let edited = |edit: &dyn Fn(&mut Metadata)| {
            let store = store(Format::SopsYaml).unwrap();
            let mut doc = store.load_encrypted(&file, "t").unwrap();
            let mut m = Metadata::from_items(&doc.metadata).unwrap();
            edit(&mut m);
            doc.metadata = m.to_items();
            store.emit_encrypted(&doc).unwrap()
        };
        let wrapped_twice = String::from_utf8(
            crypto::age::encrypt(&[7; 32], &[admin.clone(), extra.clone()], Armor::Ascii, &at)
                .unwrap(),
        )
        .unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                file.clone(),
                "2 age entries holding 2 wrapped keys (1 for recipients the policy does not name); the policy calls for 1 recipient",
            ),
            (
                edited(&|m| m.age[0].enc = wrapped_twice.clone()),
                "2 age entries holding 3 wrapped keys (1 whose wrapped key is not for its recipient alone)",
            ),
            (
                edited(&|m| {
                    let again = m.age[0].clone();
                    m.age.push(again);
                }),
                "3 age entries holding 3 wrapped keys (1 listed twice)",
            ),
            (
                edited(&|m| m.age[1].enc.clear()),
                "2 age entries holding 1 wrapped key (1 whose wrapped key is not for its recipient alone)",
            ),
            (
                edited(&|m| m.age[1].recipient.clear()),
                "(1 for recipients the policy does not name, 1 missing)",
            ),
            (
                edited(&|m| {
                    let fp = Item::Pair("fp".into(), Value::Str("0123".into()));
                    m.raw.push(Item::Pair(
                        "pgp".into(),
                        Value::List(vec![Value::Map(vec![fp])]),
                    ));
                }),
                "(also pgp entries)",
            ),
        ];
        for (i, (data, says)) in cases.iter().enumerate() {
            let want: &[Recipient] = if i == 0 { &policy[..1] } else { &policy };
            let what = differs(data, want).unwrap_or_else(|| panic!("case {i}: no drift"));
            assert!(what.contains(says), "case {i}: {what}");
        }
        // Empty key sources, as sops writes them, hold no reader.
        let empty_kms = edited(&|m| {
            m.raw
                .push(Item::Pair("kms".into(), Value::List(Vec::new())))
        });
        assert_eq!(differs(&empty_kms, &policy), None);
    }

    /// The identities of `dirs` (each made by `identity`) in one search.
    fn searched(dirs: &[&tempfile::TempDir]) -> Identities {
        let search = Search {
            flags: dirs.iter().map(|d| d.path().join("id.txt")).collect(),
            env_identity: None,
            keyring: crate::identity::keyring::Backend::Disabled,
            config_dir: None,
            home: None,
            sops: crate::identity::SopsPlaces::default(),
        };
        Identities::search(&search).unwrap()
    }

    /// Three identities, each the one recipient of its key group.
    fn groups(threshold: usize) -> (Vec<(tempfile::TempDir, Identities, Recipient)>, Shamir) {
        let ids: Vec<_> = (0..3).map(|_| identity()).collect();
        let groups = ids.iter().map(|(_, _, r)| vec![r.clone()]).collect();
        (ids, Shamir { groups, threshold })
    }

    #[test]
    fn key_groups_open_with_threshold_groups_and_are_kept_on_edit() {
        let at = Location::named("t.yaml");
        let (mut ids, shamir) = groups(2);
        let sealed = seal(
            yaml(),
            &doc(),
            &[],
            Some(&shamir),
            Options::default(),
            None,
            &at,
        )
        .unwrap();
        let keys: Vec<&str> = sealed.metadata.iter().filter_map(Item::key).collect();
        assert_eq!(
            keys,
            [
                "shamir_threshold",
                "key_groups",
                "lastmodified",
                "mac",
                "unencrypted_suffix",
                "version"
            ],
            "sops's order"
        );
        // One group's identity: too few; it names the counts.
        let err = open(&sealed, &mut ids[1].1, &NoPrompt, &at, Mac::Check)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                Error::TooFewGroups {
                    opened: 1,
                    groups: 3,
                    needed: 2,
                    ..
                }
            ),
            "{err}"
        );
        // Two groups' identities (in one search): the file opens.
        let mut both = searched(&[&ids[0].0, &ids[2].0]);
        let opened = open(&sealed, &mut both, &NoPrompt, &at, Mac::Check).unwrap();
        assert_eq!(opened.plain.0, doc());
        // Sealing it again for the same groups keeps its key groups as they were.
        let again = seal(
            yaml(),
            &doc(),
            &[],
            Some(&shamir),
            Options::default(),
            Some(&opened),
            &at,
        )
        .unwrap();
        let groups_of =
            |d: &EncryptedDocument| Metadata::from_items(&d.metadata).unwrap().key_groups;
        assert_eq!(groups_of(&again), groups_of(&sealed));
        // Re-wrapped for one recipient: the groups are gone, the top-level entry opens it.
        let plain = rewrap(
            &sealed,
            &both,
            std::slice::from_ref(&ids[1].2),
            None,
            Wrap::Anew,
            &at,
        )
        .unwrap()
        .doc;
        let m = Metadata::from_items(&plain.metadata).unwrap();
        assert!(!m.uses_groups() && m.shamir_threshold == 0 && m.age.len() == 1);
        let keys: Vec<&str> = plain.metadata.iter().filter_map(Item::key).collect();
        assert!(
            !keys.contains(&"key_groups") && !keys.contains(&"shamir_threshold"),
            "{keys:?}"
        );
        assert!(open(&plain, &mut ids[1].1, &NoPrompt, &at, Mac::Check).is_ok());
        // And back to groups with all three needed: new shares, the old ones useless.
        let three = Shamir {
            threshold: 3,
            ..shamir.clone()
        };
        // The identities used must open what is written.
        let err = rewrap(&plain, &ids[1].1, &[], Some(&three), Wrap::Anew, &at)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                Error::TooFewGroups {
                    opened: 1,
                    needed: 3,
                    ..
                }
            ),
            "{err}"
        );
        let all = searched(&[&ids[0].0, &ids[1].0, &ids[2].0]);
        let regrouped = rewrap(&plain, &all, &[], Some(&three), Wrap::Anew, &at)
            .unwrap()
            .doc;
        let err = open(&regrouped, &mut both, &NoPrompt, &at, Mac::Check)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                Error::TooFewGroups {
                    opened: 2,
                    needed: 3,
                    ..
                }
            ),
            "{err}"
        );
        // Checked against a policy without any key.
        let emit =
            |d: &EncryptedDocument| store(Format::SopsYaml).unwrap().emit_encrypted(d).unwrap();
        let found = readers(Format::SopsYaml, &emit(&regrouped)).unwrap();
        assert_eq!(found.differs_from(&[], Some(&three)), None);
        let mut swapped = three.clone();
        swapped.groups.swap(0, 1);
        let recipients = [ids[0].2.clone()];
        let top_level = readers(Format::SopsYaml, &emit(&plain)).unwrap();
        for (what, says) in [
            (
                found.differs_from(&[], Some(&swapped)),
                "key group 1 has 1 age entry (1 for recipients the policy does not name, 1 missing); key group 2 has",
            ),
            (
                found.differs_from(&[], Some(&shamir)),
                "3 key groups (Shamir threshold 3); the policy calls for 3 key groups (Shamir threshold 2)",
            ),
            (
                found.differs_from(&recipients, None),
                "its sops metadata has 3 key groups (Shamir threshold 3); the policy calls for 1 recipient",
            ),
            (
                top_level.differs_from(&[], Some(&three)),
                "its sops metadata has 1 age entry and no key groups; the policy calls for 3 key groups",
            ),
        ] {
            let what = what.unwrap();
            assert!(what.contains(says), "{what}");
        }
    }
}
