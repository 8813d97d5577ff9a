//! age X25519 and ssh-ed25519 recipients that many files are encrypted to in one
//! run.
//!
//! Wrapping a file key for an X25519 recipient multiplies the recipient's point by a
//! fresh ephemeral scalar: a Montgomery ladder of 255 steps, the most costly step of
//! encrypting a small file. A rekey wraps for the same few recipients thousands of
//! times, so once a recipient has been wrapped for `USES_BEFORE_TABLE` times in this
//! process, a table of its multiples is built (the one the curve library keeps for
//! the base point, made for this point) and each later multiplication is a third of
//! the ladder's cost. The point is the same `[k]P`: only the way to it differs. A
//! point off the curve (on its twist) has no table and keeps the ladder.
//!
//! An ssh-ed25519 recipient's shared secret is the ephemeral scalar times its point,
//! then times a tweak derived from its public key: `[t]([e]P)`, which is `[e]([t]P)`.
//! `[t]P` is computed once per recipient, so each wrap is one multiplication, not two,
//! and the table is `[t]P`'s.
//!
//! The stanzas are age's (<https://c2sp.org/age#x25519-recipient-stanza>, and
//! `ssh-ed25519` as the age library writes it), made with the age library's
//! primitives: the salt is the ephemeral share then the recipient's key, the
//! wrapping key its HKDF-SHA-256, the file key sealed with ChaCha20-Poly1305 under it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use age_core::primitives::{aead_encrypt, hkdf};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use curve25519_dalek::MontgomeryPoint;
use curve25519_dalek::edwards::EdwardsBasepointTable;
use curve25519_dalek::traits::BasepointTable;
use sha2::{Digest, Sha256};
use ssh_key::rand_core::OsRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::identity::x25519::{LABEL, TAG, Witness, wrapping_key};

const SSH_TAG: &str = "ssh-ed25519";
const SSH_LABEL: &[u8] = b"age-encryption.org/v1/ssh-ed25519";

/// Building a table costs about 25 ladders; it pays for itself after about 35
/// wraps, so a recipient gets one from its 64th.
const USES_BEFORE_TABLE: u32 = 64;
/// About 30 KiB each: room for an admin team and a fleet of hosts.
const MAX_TABLES: usize = 64;

enum Seen {
    Uses(u32),
    Building,
    Table(Arc<EdwardsBasepointTable>),
    /// Off the curve: the ladder it is.
    Ladder,
}

#[derive(Default)]
struct Tables {
    seen: HashMap<[u8; 32], Seen>,
    built: usize,
}

fn tables() -> &'static Mutex<Tables> {
    static TABLES: OnceLock<Mutex<Tables>> = OnceLock::new();
    TABLES.get_or_init(Mutex::default)
}

/// The table for the point `u`, counting this use: built (outside the lock) on the
/// use that reaches `USES_BEFORE_TABLE`, `None` before and for a point off the curve.
fn table(u: &[u8; 32]) -> Option<Arc<EdwardsBasepointTable>> {
    {
        let mut t = tables().lock().ok()?;
        let room = t.built < MAX_TABLES;
        let seen = t.seen.entry(*u).or_insert(Seen::Uses(0));
        match seen {
            Seen::Table(table) => return Some(table.clone()),
            Seen::Building | Seen::Ladder => return None,
            Seen::Uses(n) => {
                *n = n.saturating_add(1);
                if *n < USES_BEFORE_TABLE || !room {
                    return None;
                }
                *seen = Seen::Building;
                t.built += 1;
            }
        }
    }
    let built = MontgomeryPoint(*u)
        .to_edwards(0)
        .map(|p| Arc::new(EdwardsBasepointTable::create(&p)));
    let mut t = tables().lock().ok()?;
    let seen = match &built {
        Some(table) => Seen::Table(table.clone()),
        None => {
            // No table: its room is free again.
            t.built -= 1;
            Seen::Ladder
        }
    };
    t.seen.insert(*u, seen);
    built
}

/// A fresh ephemeral share, the secret it agrees on with the point `u` (`[e]u`, by
/// `u`'s table when it has one), and the ephemeral secret `e`.
fn agree(
    u: &[u8; 32],
) -> Result<(PublicKey, Zeroizing<[u8; 32]>, StaticSecret), age::EncryptError> {
    let esk = StaticSecret::random_from_rng(OsRng);
    let epk = PublicKey::from(&esk);
    let shared = Zeroizing::new(match table(u) {
        Some(table) => table
            .mul_base_clamped(*Zeroizing::new(esk.to_bytes()))
            .to_montgomery()
            .to_bytes(),
        None => esk.diffie_hellman(&PublicKey::from(*u)).to_bytes(),
    });
    // The recipient is no small-order point (`refuse_low_order`), so an all-zero
    // secret means the random source failed.
    if shared.iter().all(|&b| b == 0) {
        return Err(age::EncryptError::Io(std::io::Error::other(
            "the ephemeral key agreement gave all zeros: the random source is failing",
        )));
    }
    Ok((epk, shared, esk))
}

/// The file key sealed under the wrapping key of `shared` for the recipient's key `u`.
fn seal(label: &[u8], epk: &PublicKey, u: &[u8; 32], shared: &[u8; 32], key: &FileKey) -> Vec<u8> {
    aead_encrypt(
        &wrapping_key(label, epk.as_bytes(), u, shared),
        key.expose_secret(),
    )
}

/// An X25519 stanza for the key `u`, and its ephemeral secret.
fn x25519_stanza(u: &[u8; 32], file_key: &FileKey) -> Result<(Stanza, Witness), age::EncryptError> {
    let (epk, shared, esk) = agree(u)?;
    let stanza = Stanza {
        tag: TAG.into(),
        args: vec![STANDARD_NO_PAD.encode(epk.as_bytes())],
        body: seal(LABEL, &epk, u, &shared, file_key),
    };
    let witness = Witness {
        epk: epk.to_bytes(),
        e: Zeroizing::new(esk.to_bytes()),
    };
    Ok((stanza, witness))
}

/// An age X25519 recipient, its key as the 32 bytes of its `age1…` text.
pub struct Recipient(pub [u8; 32]);

impl age::Recipient for Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let (stanza, _) = x25519_stanza(&self.0, file_key)?;
        Ok((vec![stanza], HashSet::new()))
    }
}

/// An age X25519 recipient that keeps the ephemeral secret of the stanza it makes,
/// so that the identity it is for can prove the stanza opens at a third of the cost
/// of opening it (`identity::x25519::Witnessed`).
pub struct Witnessing {
    u: [u8; 32],
    made: Arc<Mutex<Option<Witness>>>,
}

/// Where a `Witnessing` recipient leaves the ephemeral secret of its stanza.
pub type WitnessSlot = Arc<Mutex<Option<Witness>>>;

impl Witnessing {
    /// The recipient of the X25519 key `u`, and where it leaves its witness.
    pub fn new(u: [u8; 32]) -> (Witnessing, WitnessSlot) {
        let made = WitnessSlot::default();
        (
            Witnessing {
                u,
                made: made.clone(),
            },
            made,
        )
    }
}

impl age::Recipient for Witnessing {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let (stanza, witness) = x25519_stanza(&self.u, file_key)?;
        if let Ok(mut made) = self.made.lock() {
            *made = Some(witness);
        }
        Ok((vec![stanza], HashSet::new()))
    }
}

/// An age ssh-ed25519 recipient: its key in SSH's wire form, its Montgomery form
/// `u`, and `[t]u` for its tweak `t`.
pub struct SshEd25519 {
    wire: [u8; WIRE_BYTES],
    u: [u8; 32],
    tweaked: [u8; 32],
}

/// An ssh-ed25519 key in SSH's wire form: the type's name and the key, each after
/// its length.
const WIRE_BYTES: usize = 4 + 11 + 4 + 32;

/// A key's Montgomery form `u` and `[t]u`.
type Forms = ([u8; 32], [u8; 32]);

impl SshEd25519 {
    /// The recipient of the ed25519 key `ed`, whose Montgomery form `u` gives
    /// (`None`: off the curve). Both forms are remembered by the whole key (a key and
    /// its negation share `u`, not their tweak), as a rekey wraps for each host's key
    /// many times.
    pub fn new(ed: [u8; 32], u: impl FnOnce() -> Option<[u8; 32]>) -> Option<SshEd25519> {
        static KNOWN: OnceLock<Mutex<HashMap<[u8; WIRE_BYTES], Forms>>> = OnceLock::new();
        let mut wire = [0u8; WIRE_BYTES];
        wire[..4].copy_from_slice(&11u32.to_be_bytes());
        wire[4..15].copy_from_slice(b"ssh-ed25519");
        wire[15..19].copy_from_slice(&32u32.to_be_bytes());
        wire[19..].copy_from_slice(&ed);
        let known = KNOWN.get_or_init(Mutex::default);
        let (u, tweaked) = match known.lock().ok().and_then(|m| m.get(&wire).copied()) {
            Some(forms) => forms,
            None => {
                let u = u()?;
                let tweak = hkdf(&wire, SSH_LABEL, &[]);
                let forms = (u, MontgomeryPoint(u).mul_clamped(tweak).to_bytes());
                if let Ok(mut m) = known.lock() {
                    m.insert(wire, forms);
                }
                forms
            }
        };
        Some(SshEd25519 { wire, u, tweaked })
    }
}

impl age::Recipient for SshEd25519 {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let (epk, shared, _) = agree(&self.tweaked)?;
        let tag = Sha256::digest(self.wire);
        Ok((
            vec![Stanza {
                tag: SSH_TAG.into(),
                args: vec![
                    STANDARD_NO_PAD.encode(&tag[..4]),
                    STANDARD_NO_PAD.encode(epk.as_bytes()),
                ],
                body: seal(SSH_LABEL, &epk, &self.u, &shared, file_key),
            }],
            HashSet::new(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::str::FromStr;

    use curve25519_dalek::constants::EIGHT_TORSION;
    use ssh_key::rand_core::RngCore as _;

    use super::*;

    fn bytes(r: &age::x25519::Recipient) -> [u8; 32] {
        let (_, data) = bech32::decode(&r.to_string()).unwrap();
        data.try_into().unwrap()
    }

    fn encrypt(to: &dyn age::Recipient, plain: &[u8]) -> Vec<u8> {
        let enc = age::Encryptor::with_recipients(std::iter::once(to)).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        w.write_all(plain).unwrap();
        w.finish().unwrap();
        out
    }

    fn decrypt(data: &[u8], id: &age::x25519::Identity) -> Vec<u8> {
        let d = age::Decryptor::new(data).unwrap();
        let mut r = d.decrypt(std::iter::once(id as _)).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn the_age_library_opens_what_is_wrapped_with_and_without_a_table() {
        let id = age::x25519::Identity::generate();
        let to = Recipient(bytes(&id.to_public()));
        // The uses before the table and the ones after.
        for i in 0..USES_BEFORE_TABLE + 4 {
            let plain = format!("secret {i}");
            assert_eq!(
                decrypt(&encrypt(&to, plain.as_bytes()), &id),
                plain.as_bytes()
            );
        }
        assert!(table(&to.0).is_some());
    }

    #[test]
    fn the_age_library_opens_what_is_wrapped_for_an_ssh_key() {
        use ssh_key::PrivateKey;
        use ssh_key::private::Ed25519Keypair;
        let mut seed = [0u8; 32];
        OsRng.try_fill_bytes(&mut seed).unwrap();
        let pair = Ed25519Keypair::from_seed(&seed);
        let private = PrivateKey::from(pair.clone());
        let pem = private.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let id = age::ssh::Identity::from_buffer(pem.as_bytes(), None).unwrap();
        let ed = pair.public.0;
        let u = curve25519_dalek::edwards::CompressedEdwardsY(ed)
            .decompress()
            .unwrap()
            .to_montgomery()
            .to_bytes();
        let to = SshEd25519::new(ed, || Some(u)).unwrap();
        // As the age library wraps it: the same tag, and the same secret for a share.
        let theirs = age::ssh::Recipient::from_str(
            &ssh_key::PublicKey::from(pair.public).to_openssh().unwrap(),
        )
        .unwrap();
        let key = FileKey::new(Box::new([7; 16]));
        let (ours, _) = age::Recipient::wrap_file_key(&to, &key).unwrap();
        let (lib, _) = age::Recipient::wrap_file_key(&theirs, &key).unwrap();
        assert_eq!(
            (&ours[0].tag, &ours[0].args[0]),
            (&lib[0].tag, &lib[0].args[0])
        );
        let tweak = hkdf(&to.wire, SSH_LABEL, &[]);
        let e = [9u8; 32];
        assert_eq!(
            MontgomeryPoint(to.tweaked).mul_clamped(e),
            MontgomeryPoint(MontgomeryPoint(u).mul_clamped(e).to_bytes()).mul_clamped(tweak),
        );
        for i in 0..USES_BEFORE_TABLE + 4 {
            let plain = format!("secret {i}");
            let data = encrypt(&to, plain.as_bytes());
            let d = age::Decryptor::new(&data[..]).unwrap();
            let mut r = d.decrypt(std::iter::once(&id as _)).unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain.as_bytes());
        }
        assert!(table(&to.tweaked).is_some());
    }

    /// An ssh-ed25519 key and its negation share their Montgomery form, not their
    /// tweak: each is wrapped with its own.
    #[test]
    fn a_key_and_its_negation_are_wrapped_each_with_its_own_tweak() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        let id = age::x25519::Identity::generate();
        let point = MontgomeryPoint(bytes(&id.to_public()))
            .to_edwards(0)
            .unwrap();
        let (a, b) = (point.compress().0, (-point).compress().0);
        let u = |ed: [u8; 32]| {
            CompressedEdwardsY(ed)
                .decompress()
                .unwrap()
                .to_montgomery()
                .to_bytes()
        };
        assert_eq!(u(a), u(b));
        let (first, second) = (
            SshEd25519::new(a, || Some(u(a))).unwrap(),
            SshEd25519::new(b, || Some(u(b))).unwrap(),
        );
        assert_ne!(first.tweaked, second.tweaked);
        for to in [&first, &second] {
            let tweak = hkdf(&to.wire, SSH_LABEL, &[]);
            assert_eq!(
                to.tweaked,
                MontgomeryPoint(to.u).mul_clamped(tweak).to_bytes()
            );
        }
    }

    /// The table's multiple is the ladder's, for points with a small-order part too
    /// (the clamped scalar's factor 8 clears it either way).
    #[test]
    fn a_tables_multiple_is_the_ladders() {
        let id = age::x25519::Identity::generate();
        let p = MontgomeryPoint(bytes(&id.to_public()))
            .to_edwards(0)
            .unwrap();
        for torsion in EIGHT_TORSION {
            let point = p + torsion;
            let table = EdwardsBasepointTable::create(&point);
            let u = point.to_montgomery();
            for i in 0..16u8 {
                let mut k = [0u8; 32];
                OsRng.try_fill_bytes(&mut k).unwrap();
                k[0] ^= i;
                assert_eq!(table.mul_base_clamped(k).to_montgomery(), u.mul_clamped(k),);
            }
        }
        // Bit 255 of a key is no part of its point, for the ladder and the table alike.
        let mut high = bytes(&id.to_public());
        high[31] |= 0x80;
        let high_table =
            EdwardsBasepointTable::create(&MontgomeryPoint(high).to_edwards(0).unwrap());
        let k = [0x5a; 32];
        assert_eq!(
            high_table.mul_base_clamped(k).to_montgomery(),
            MontgomeryPoint(high).mul_clamped(k)
        );
        // A point on the twist has no table.
        let twist = (0u8..=255)
            .map(|b| [b; 32])
            .find(|u| MontgomeryPoint(*u).to_edwards(0).is_none())
            .unwrap();
        assert!((0..USES_BEFORE_TABLE + 1).all(|_| table(&twist).is_none()));
    }

    /// A witness opens the stanza made with it, for its own identity only, by the
    /// secret recomputed from the identity's key and the ephemeral secret: another
    /// stanza, another identity or another ephemeral secret behind the same share
    /// (a wrapping made under a wrong secret) opens nothing.
    #[test]
    fn a_witness_opens_only_the_stanza_it_was_made_for() {
        use crate::crypto::age::try_decrypt_with;
        use crate::error::Location;
        use crate::identity::x25519::Key;
        let at = Location::named("t");
        let id = age::x25519::Identity::generate();
        let key = Key::new(&id).unwrap();
        let other = Key::new(&age::x25519::Identity::generate()).unwrap();
        let witnessed = || {
            let (to, slot) = Witnessing::new(*key.public());
            let data = encrypt(&to, b"data key");
            let witness = slot.lock().unwrap().take().unwrap();
            (data, witness)
        };
        let (data, witness) = witnessed();
        let open = |with: &dyn age::Identity, data: &[u8]| {
            try_decrypt_with(data, vec![with], &at)
                .unwrap()
                .map(|p| p.to_vec())
        };
        assert_eq!(
            open(&key.witnessed(&witness), &data).as_deref(),
            Some(&b"data key"[..])
        );
        // The library and the ladder open the same file.
        assert_eq!(open(&id, &data).as_deref(), Some(&b"data key"[..]));
        assert_eq!(open(&key, &data).as_deref(), Some(&b"data key"[..]));
        // Another stanza for the same key: its share is not the witness's.
        let (again, _) = witnessed();
        assert_eq!(open(&key.witnessed(&witness), &again), None);
        // Another identity with the witness.
        assert_eq!(open(&other.witnessed(&witness), &data), None);
        // The same share with another ephemeral secret: the secret recomputed is not
        // the one the stanza is sealed under.
        let forged = crate::identity::x25519::Witness {
            epk: witness.epk,
            e: Zeroizing::new([7; 32]),
        };
        assert_eq!(open(&key.witnessed(&forged), &data), None);
    }
}
