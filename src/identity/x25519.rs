//! An age X25519 identity that knows its public key.
//!
//! An X25519 stanza's wrapping key is derived with the identity's public key in its
//! salt. The age library derives that public key from the secret on every stanza it
//! tries, a fixed-base multiplication as costly as a fifth of the key agreement
//! itself; a rekey tries one stanza per secret. This identity derives it once.
//! Everything else is the age library's: the stanza is read and checked as it reads
//! it (<https://c2sp.org/age#x25519-recipient-stanza>), with its primitives.

use age::secrecy::ExposeSecret;
use age_core::format::{FILE_KEY_BYTES, FileKey, Stanza};
use age_core::primitives::{aead_decrypt, hkdf};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// The X25519 stanza's tag, and the label of its wrapping key's HKDF.
pub(crate) const TAG: &str = "X25519";
pub(crate) const LABEL: &[u8] = b"age-encryption.org/v1/X25519";
/// The file key and its Poly1305 tag.
const BODY_BYTES: usize = FILE_KEY_BYTES + 16;

#[derive(Clone)]
pub struct Key {
    secret: StaticSecret,
    public: PublicKey,
}

impl Key {
    /// The same key as `identity`, its public key derived once.
    pub fn new(identity: &age::x25519::Identity) -> Option<Key> {
        let text = identity.to_string();
        let (hrp, data) = bech32::decode(text.expose_secret()).ok()?;
        let data = Zeroizing::new(data);
        if !hrp.as_str().eq_ignore_ascii_case("age-secret-key-") {
            return None;
        }
        let bytes = Zeroizing::new(<[u8; 32]>::try_from(data.as_slice()).ok()?);
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret);
        // The public key the library derives, or the library's own identity is used.
        let (_, theirs) = bech32::decode(&identity.to_public().to_string()).ok()?;
        (theirs.as_slice() == public.as_bytes()).then_some(Key { secret, public })
    }
}

impl age::Identity for Key {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.open(stanza, |epk| {
            let shared = self.secret.diffie_hellman(&PublicKey::from(*epk));
            if shared.was_contributory() {
                Shared::Secret(Zeroizing::new(shared.to_bytes()))
            } else {
                Shared::Invalid
            }
        })
    }
}

impl Key {
    /// The key's public half, as an `age1…` recipient holds it.
    pub fn public(&self) -> &[u8; 32] {
        self.public.as_bytes()
    }

    /// This key, opening only the stanza made with `witness` (see `Witnessed`).
    pub fn witnessed<'a>(&'a self, witness: &'a Witness) -> Witnessed<'a> {
        Witnessed { key: self, witness }
    }

    /// Opens an X25519 stanza with the secret it shares with this key, which
    /// `shared` computes from the ephemeral share.
    fn open(
        &self,
        stanza: &Stanza,
        shared: impl FnOnce(&[u8; 32]) -> Shared,
    ) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != TAG {
            return None;
        }
        let invalid = || Some(Err(age::DecryptError::InvalidHeader));
        let [arg] = &stanza.args[..] else {
            return invalid();
        };
        // Canonical unpadded base64 of exactly 32 bytes, as the library requires.
        let mut share = [0u8; 33];
        let epk: [u8; 32] = match STANDARD_NO_PAD.decode_slice(arg, &mut share) {
            Ok(32) => share[..32].try_into().ok()?,
            _ => return invalid(),
        };
        let Ok(body) = <[u8; BODY_BYTES]>::try_from(stanza.body.as_slice()) else {
            return invalid();
        };
        let shared = match shared(&epk) {
            Shared::Secret(shared) => shared,
            Shared::NotOurs => return None,
            Shared::Invalid => return invalid(),
        };
        let wrapping = wrapping_key(LABEL, &epk, self.public.as_bytes(), &shared);
        // Not opening is not an error: the stanza may be for another X25519 key.
        let mut plain = Zeroizing::new(aead_decrypt(&wrapping, FILE_KEY_BYTES, &body).ok()?);
        Some(Ok(FileKey::init_with_mut(|key| {
            key.copy_from_slice(&plain);
            zeroize::Zeroize::zeroize(&mut *plain);
        })))
    }
}

/// The ephemeral secret `e` of a stanza this process made, and its share
/// `epk = [e]B`: what lets the identity the stanza is for compute the secret they
/// share without the ladder (`Witnessed`).
pub struct Witness {
    pub(crate) epk: [u8; 32],
    pub(crate) e: Zeroizing<[u8; 32]>,
}

/// An identity that opens one stanza it was made for, the one with a `Witness`'s
/// share, by computing their shared secret `[i]([e]B)` as `[i·e]B`: a fixed-base
/// multiplication by the product of the two (clamped) scalars, a third of the cost
/// of the Montgomery ladder `[i]epk`, and the same point, as the base point `B` has
/// the prime order `ℓ` the product is reduced by. It is the same secret computed
/// another way, from this identity's own secret: a stanza sealed to any other key,
/// or under a secret computed wrongly when it was made, does not open. A stanza
/// with any other share is not for it.
pub struct Witnessed<'a> {
    key: &'a Key,
    witness: &'a Witness,
}

impl age::Identity for Witnessed<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.key.open(stanza, |epk| {
            if *epk != self.witness.epk {
                return Shared::NotOurs;
            }
            let scalar = |bytes: &[u8; 32]| {
                Zeroizing::new(Scalar::from_bytes_mod_order(clamp_integer(*bytes)))
            };
            let i = scalar(&Zeroizing::new(self.key.secret.to_bytes()));
            let e = scalar(&self.witness.e);
            let product = Zeroizing::new(*i * *e);
            let shared =
                Zeroizing::new(EdwardsPoint::mul_base(&product).to_montgomery().to_bytes());
            if shared.iter().all(|&b| b == 0) {
                Shared::Invalid
            } else {
                Shared::Secret(shared)
            }
        })
    }
}

/// The secret an identity shares with a stanza's ephemeral share.
enum Shared {
    Secret(Zeroizing<[u8; 32]>),
    /// The stanza is not for this identity.
    NotOurs,
    /// An all-zero secret: a share of small order.
    Invalid,
}

/// The key a file key is sealed under in an X25519 or ssh-ed25519 stanza: the HKDF
/// (under `label`) of the `shared` secret, salted with the ephemeral share `epk`
/// then the recipient's Montgomery key `u`.
pub(crate) fn wrapping_key(
    label: &[u8],
    epk: &[u8; 32],
    u: &[u8; 32],
    shared: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(epk);
    salt[32..].copy_from_slice(u);
    Zeroizing::new(hkdf(&salt, label, shared))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn encrypt(to: &age::x25519::Recipient, plain: &[u8]) -> Vec<u8> {
        let enc = age::Encryptor::with_recipients(std::iter::once(to as _)).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        w.write_all(plain).unwrap();
        w.finish().unwrap();
        out
    }

    fn decrypt(data: &[u8], id: &dyn age::Identity) -> Result<Vec<u8>, age::DecryptError> {
        let d = age::Decryptor::new(data)?;
        let mut r = d.decrypt(std::iter::once(id))?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        Ok(out)
    }

    #[test]
    fn opens_what_the_library_opens_and_nothing_else() {
        let id = age::x25519::Identity::generate();
        let key = Key::new(&id).unwrap();
        let data = encrypt(&id.to_public(), b"a secret");
        assert_eq!(decrypt(&data, &key).unwrap(), b"a secret");
        let other = age::x25519::Identity::generate();
        let theirs = encrypt(&other.to_public(), b"a secret");
        assert!(matches!(
            decrypt(&theirs, &key),
            Err(age::DecryptError::NoMatchingKeys)
        ));
    }

    #[test]
    fn a_malformed_stanza_is_refused_as_the_library_refuses_it() {
        let id = age::x25519::Identity::generate();
        let key = Key::new(&id).unwrap();
        let stanza = |args: Vec<String>, body: Vec<u8>| Stanza {
            tag: TAG.into(),
            args,
            body,
        };
        let epk = STANDARD_NO_PAD.encode([9u8; 32]);
        let cases = [
            stanza(vec![], vec![0; 32]),
            stanza(vec![epk.clone(), epk.clone()], vec![0; 32]),
            stanza(vec![format!("{epk}=")], vec![0; 32]),
            stanza(vec![STANDARD_NO_PAD.encode([9u8; 31])], vec![0; 32]),
            stanza(vec![epk.clone()], vec![0; 31]),
            // A low-order share: the agreement is all zeros.
            stanza(vec![STANDARD_NO_PAD.encode([0u8; 32])], vec![0; 32]),
        ];
        for s in &cases {
            let ours = age::Identity::unwrap_stanza(&key, s).map(|r| r.is_ok());
            let theirs = age::Identity::unwrap_stanza(&id, s).map(|r| r.is_ok());
            assert_eq!(ours, theirs, "{:?}", s.args);
            assert_eq!(ours, Some(false), "{:?}", s.args);
        }
        // Another tag is not this identity's to read.
        let other = Stanza {
            tag: "scrypt".into(),
            args: vec![],
            body: vec![],
        };
        assert!(age::Identity::unwrap_stanza(&key, &other).is_none());
    }
}
