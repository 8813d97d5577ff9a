//! sops's per-value cipher: AES-256-GCM under the file's data key, with a 32-byte IV
//! and the value's key path (`a:b:`) as additional data. The `ENC[…]` text it is
//! written as belongs to `format::sops::cipher`.

use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use zeroize::Zeroizing;

use crate::format::sops::cipher::{self, IV_LEN, Sealed, TAG_LEN};

/// The data key: 32 bytes, wrapped per recipient in the metadata.
pub type DataKey = Zeroizing<[u8; 32]>;

/// Encrypts `plain` as a value of type `kind` at key path `aad`, under a fresh IV.
pub fn seal(key: &DataKey, plain: &[u8], kind: &str, aad: &str) -> String {
    seal_with_iv(key, plain, kind, aad, &fresh_iv())
}

fn seal_with_iv(key: &DataKey, plain: &[u8], kind: &str, aad: &str, iv: &[u8; IV_LEN]) -> String {
    let cipher = AesGcm::<Aes256, U32>::new(key.as_slice().into());
    // Encryption with a valid key and nonce size cannot fail.
    let out = cipher
        .encrypt(
            Nonce::<U32>::from_slice(iv),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .unwrap_or_default();
    let (data, tag) = out.split_at(out.len().saturating_sub(TAG_LEN));
    cipher::render(data, iv, tag, kind)
}

/// Decrypts a parsed value at key path `aad`; `None` when it does not authenticate.
pub fn open(key: &DataKey, sealed: &Sealed, aad: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut msg = Zeroizing::new(Vec::with_capacity(sealed.data.len() + TAG_LEN));
    msg.extend_from_slice(&sealed.data);
    msg.extend_from_slice(&sealed.tag);
    let payload = Payload {
        msg: &msg,
        aad: aad.as_bytes(),
    };
    let plain = match sealed.iv.len() {
        32 => AesGcm::<Aes256, U32>::new(key.as_slice().into())
            .decrypt(Nonce::<U32>::from_slice(&sealed.iv), payload),
        _ => AesGcm::<Aes256, U12>::new(key.as_slice().into())
            .decrypt(Nonce::<U12>::from_slice(&sealed.iv), payload),
    };
    plain.ok().map(Zeroizing::new)
}

pub fn fresh_iv() -> [u8; IV_LEN] {
    random()
}

pub fn fresh_key() -> DataKey {
    Zeroizing::new(random())
}

fn random<const N: usize>() -> [u8; N] {
    use aes_gcm::aead::rand_core::RngCore;
    let mut out = [0u8; N];
    aes_gcm::aead::OsRng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sops::cipher::{is_sealed, parse};

    #[test]
    fn seals_and_opens_with_the_key_path_bound() {
        let key = fresh_key();
        let s = seal(&key, b"hunter2", "str", "db:password:");
        assert!(is_sealed(&s) && s.ends_with(",type:str]"));
        let p = parse(&s).unwrap();
        assert_eq!(p.iv.len(), 32);
        assert_eq!(&open(&key, &p, "db:password:").unwrap()[..], b"hunter2");
        assert!(open(&key, &p, "db:user:").is_none(), "moved to another key");
        assert!(open(&fresh_key(), &p, "db:password:").is_none());
        let iv = [7u8; 32];
        assert_eq!(
            seal_with_iv(&key, b"x", "str", "a:", &iv),
            seal_with_iv(&key, b"x", "str", "a:", &iv),
            "the same IV gives the same ciphertext"
        );
        assert_ne!(
            seal(&key, b"x", "str", "a:"),
            seal(&key, b"x", "str", "a:"),
            "every seal takes a fresh IV"
        );
    }
}
