//! New keys and values made here, held only in zeroized memory and drawn from the
//! operating system's random source: an SSH ed25519 key (through ssh-key's RNG), an
//! age X25519 identity (the age crate's), a WireGuard key, random text, passphrases
//! of the EFF long word list, and SHA-512 crypt password hashes.

use ssh_key::private::Ed25519Keypair;
use ssh_key::rand_core::{OsRng, RngCore};
use ssh_key::{LineEnding, PrivateKey};
use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::recipient::Recipient;

/// A new ed25519 key pair: the public key (with `comment`) and the private key in
/// OpenSSH's format, as `ssh-keygen` writes it, only in zeroized memory.
pub fn ssh_ed25519(comment: &str) -> Result<(Recipient, Zeroizing<String>)> {
    let at = Location::named("new host key");
    let failed = |e: ssh_key::Error| Error::Encrypt {
        at: at.clone(),
        reason: e.to_string(),
    };
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRng
        .try_fill_bytes(&mut seed[..])
        .map_err(|e| Error::Encrypt {
            at: at.clone(),
            reason: format!("no random bytes from the operating system: {e}"),
        })?;
    let pair = Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(pair.into(), comment).map_err(failed)?;
    let private = key.to_openssh(LineEnding::LF).map_err(failed)?;
    let line = key.public_key().to_openssh().map_err(failed)?;
    let public = Recipient::parse_line(&line, &at)?;
    Ok((public, private))
}

/// A new age X25519 identity in age-keygen's file format (`# title`, the public key
/// as a comment, the secret key), and its recipient.
pub fn age_x25519(title: &str) -> (Zeroizing<String>, Recipient) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let public = id.to_public();
    let text = Zeroizing::new(format!(
        "# {title}\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    ));
    (text, Recipient::X25519(public.into()))
}

/// `n` bytes from the operating system's random source, only in zeroized memory.
fn random(n: usize, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; n]);
    OsRng.try_fill_bytes(&mut out).map_err(|e| Error::Encrypt {
        at: Location::named(what),
        reason: format!("no random bytes from the operating system: {e}"),
    })?;
    Ok(out)
}

/// `count` indexes below `below`, each uniform: random 16-bit numbers, those past
/// the last whole multiple of `below` drawn again.
fn indexes(count: usize, below: usize, what: &str) -> Result<Zeroizing<Vec<usize>>> {
    let below32 = below as u32;
    let limit = (1u32 << 16) / below32 * below32;
    let mut out = Zeroizing::new(Vec::with_capacity(count));
    while out.len() < count {
        let bytes = random(2 * (count - out.len()) + 16, what)?;
        for pair in bytes.chunks_exact(2) {
            let n = u32::from(u16::from_le_bytes([pair[0], pair[1]]));
            if n < limit && out.len() < count {
                out.push((n % below32) as usize);
            }
        }
    }
    Ok(out)
}

/// `length` letters and digits, each drawn uniformly.
pub fn alnum(length: usize) -> Result<Zeroizing<String>> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let picks = indexes(length, ALNUM.len(), "new value")?;
    let mut out = Zeroizing::new(String::with_capacity(length));
    out.extend(picks.iter().map(|&i| char::from(ALNUM[i])));
    Ok(out)
}

/// `bytes` random bytes as lowercase hex digits.
pub fn hex(bytes: usize) -> Result<Zeroizing<String>> {
    const DIGITS: &[u8] = b"0123456789abcdef";
    let raw = random(bytes, "new value")?;
    let mut out = Zeroizing::new(String::with_capacity(2 * bytes));
    for b in raw.iter() {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    Ok(out)
}

/// `bytes` random bytes in standard base64, padded.
pub fn base64(bytes: usize) -> Result<Zeroizing<String>> {
    use base64::Engine as _;
    let raw = random(bytes, "new value")?;
    let mut out = Zeroizing::new(String::with_capacity(bytes.div_ceil(3) * 4));
    base64::engine::general_purpose::STANDARD.encode_string(&raw[..], &mut out);
    Ok(out)
}

/// The word list of passphrases: the EFF's long list, 7,776 words.
pub fn words() -> &'static [&'static str] {
    &diceware_wordlists::EFF_LONG_WORDLIST
}

/// `count` words of the EFF long list, each drawn uniformly, separated by spaces
/// (a few of its words hold a hyphen, none a space).
pub fn passphrase(count: usize) -> Result<Zeroizing<String>> {
    let list = words();
    let picks = indexes(count, list.len(), "new passphrase")?;
    let longest = list.iter().map(|w| w.len()).max().unwrap_or(0);
    let mut out = Zeroizing::new(String::with_capacity(count * (longest + 1)));
    for (n, &i) in picks.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(list[i]);
    }
    Ok(out)
}

/// A new WireGuard key pair as `wg genkey` and `wg pubkey` write them: the clamped
/// X25519 private key in base64 (with a newline), and its public key in base64.
pub fn wireguard() -> Result<(Zeroizing<String>, String)> {
    use base64::Engine as _;
    let raw = random(32, "new WireGuard key")?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    bytes.copy_from_slice(&raw);
    bytes[0] &= 248;
    bytes[31] &= 127;
    bytes[31] |= 64;
    let secret = x25519_dalek::StaticSecret::from(*bytes);
    let public = x25519_dalek::PublicKey::from(&secret);
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut private = Zeroizing::new(String::with_capacity(45));
    engine.encode_string(&bytes[..], &mut private);
    private.push('\n');
    Ok((private, engine.encode(public.as_bytes())))
}

/// A SHA-512 crypt hash of `password` (`$6$rounds=5000$SALT$HASH`, as `mkpasswd -m
/// sha-512` makes and NixOS's `hashedPasswordFile` takes), with a new random salt.
pub fn sha512_crypt(password: &[u8]) -> Result<String> {
    use sha_crypt::PasswordHasher as _;
    let salt = random(12, "new password hash")?;
    sha_crypt::ShaCrypt::SHA512
        .hash_password_with_salt(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Encrypt {
            at: Location::named("new password hash"),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_new_pair_each_time_that_reads_back() {
        let (public, private) = ssh_ed25519("root@h").unwrap();
        let (other, _) = ssh_ed25519("root@h").unwrap();
        assert_ne!(public.fingerprint(), other.fingerprint());
        let key = PrivateKey::from_openssh(private.as_bytes()).unwrap();
        assert_eq!(key.comment(), "root@h");
        let line = key.public_key().to_openssh().unwrap();
        let back = Recipient::parse_line(&line, &Location::named("t")).unwrap();
        assert_eq!(back.fingerprint(), public.fingerprint());
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    }

    #[test]
    fn random_text_has_its_length_and_alphabet() {
        use base64::Engine as _;
        for n in [8, 33, 4096] {
            let a = alnum(n).unwrap();
            assert_eq!(a.len(), n);
            assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
            let h = hex(n).unwrap();
            assert_eq!(h.len(), 2 * n);
            assert!(h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
            let b = base64(n).unwrap();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .unwrap();
            assert_eq!(raw.len(), n);
        }
        assert_ne!(*alnum(32).unwrap(), *alnum(32).unwrap());
        // Every letter and digit comes up: nothing of the alphabet is left out.
        let many = alnum(4096).unwrap();
        assert_eq!(
            many.bytes()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            62
        );
    }

    #[test]
    fn a_passphrase_is_words_of_the_eff_long_list() {
        assert_eq!(words().len(), 7776);
        assert!(words().iter().all(|w| !w.contains(' ')));
        let p = passphrase(9).unwrap();
        let got: Vec<&str> = p.split(' ').collect();
        assert_eq!(got.len(), 9);
        assert!(got.iter().all(|w| words().contains(w)));
    }

    #[test]
    fn a_wireguard_key_is_clamped_and_its_public_key_derives_from_it() {
        use base64::Engine as _;
        let (private, public) = wireguard().unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        assert!(private.ends_with('\n'));
        let bytes: [u8; 32] = engine.decode(private.trim()).unwrap().try_into().unwrap();
        assert_eq!((bytes[0] & 7, bytes[31] & 0xc0), (0, 0x40));
        let derived = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(bytes));
        assert_eq!(engine.encode(derived.as_bytes()), public);
    }

    #[test]
    fn a_password_hash_verifies_its_password_only() {
        use sha_crypt::PasswordVerifier as _;
        let hash = sha512_crypt(b"correct horse").unwrap();
        assert!(hash.starts_with("$6$rounds=5000$"), "{hash}");
        let parsed = sha_crypt::PasswordHash::new(hash.as_str()).unwrap();
        let crypt = sha_crypt::ShaCrypt::SHA512;
        assert!(crypt.verify_password(b"correct horse", &parsed).is_ok());
        assert!(crypt.verify_password(b"correct horsf", &parsed).is_err());
        assert_ne!(
            sha512_crypt(b"correct horse").unwrap(),
            hash,
            "a new salt each time"
        );
    }

    #[test]
    fn an_age_identity_reads_back_as_its_recipient() {
        use std::str::FromStr;
        let (text, public) = age_x25519("t");
        let line = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .unwrap();
        let id = age::x25519::Identity::from_str(line).unwrap();
        assert_eq!(id.to_public().to_string(), public.to_string());
        assert!(text.starts_with(&format!("# t\n# public key: {public}\n")));
    }
}
