//! New key pairs made here: an SSH ed25519 host key, drawn from the operating
//! system's random source through ssh-key's own RNG, held only in zeroized memory.

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
}
