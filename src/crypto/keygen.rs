//! New key pairs made here, held only in zeroized memory: an SSH ed25519 host key,
//! drawn from the operating system's random source through ssh-key's own RNG, and an
//! admin's age X25519 identity from the age crate's.

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
    (text, Recipient::X25519(public))
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
