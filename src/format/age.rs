//! agenix secrets: plain age v1 files, binary or armored, readable by `age -d` and by
//! the agenix module. `inspect` checks a file's structure without any key, for
//! `keys check`.

use std::io::Read;

use zeroize::Zeroizing;

use crate::crypto;
use crate::error::{Location, Result};
use crate::identity::{Identities, Prompt};
use crate::recipient::Recipient;

const MAGIC: &[u8] = b"age-encryption.org/v1\n";
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// Payload: a 16-byte nonce, then chunks of 64 KiB plaintext plus a 16-byte tag.
const NONCE: usize = 16;
const TAG: usize = 16;
const CHUNK: usize = 64 * 1024 + TAG;

/// Encrypts `plaintext` to `recipients`, armored when the rule says so.
pub fn seal(
    plaintext: &[u8],
    recipients: &[Recipient],
    armor: bool,
    at: &Location,
) -> Result<Vec<u8>> {
    crypto::encrypt(plaintext, recipients, armor, at)
}

/// Decrypts with the identities found; nothing is returned unless the file authenticated.
pub fn open(
    data: &[u8],
    identities: &mut Identities,
    prompt: &dyn Prompt,
    at: &Location,
) -> Result<Zeroizing<Vec<u8>>> {
    crypto::decrypt(data, identities, prompt, at)
}

/// Whether the bytes start like an age file (binary or armored).
pub fn looks_like_age(data: &[u8]) -> bool {
    let data = skip_leading_whitespace(data);
    data.starts_with(MAGIC) || data.starts_with(ARMOR_BEGIN)
}

fn skip_leading_whitespace(data: &[u8]) -> &[u8] {
    let n = data.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &data[n..]
}

/// The binary form of an age file: armor removed when there is some.
fn unarmored(data: &[u8]) -> std::result::Result<std::borrow::Cow<'_, [u8]>, String> {
    if !skip_leading_whitespace(data).starts_with(ARMOR_BEGIN) {
        return Ok(std::borrow::Cow::Borrowed(data));
    }
    let mut out = Vec::with_capacity(data.len());
    age::armor::ArmoredReader::new(data)
        .read_to_end(&mut out)
        .map_err(|_| "broken age armor".to_string())?;
    Ok(std::borrow::Cow::Owned(out))
}

/// Checks that `data` is a well-formed age file encrypted to recipients: the header
/// parses, it is not passphrase-encrypted, and the payload is not truncated. The
/// reason says what is wrong, without quoting the file.
pub fn inspect(data: &[u8]) -> std::result::Result<(), String> {
    let unarmored = unarmored(data)?;
    let binary: &[u8] = &unarmored;
    if !binary.starts_with(MAGIC) {
        return Err("not an age file (no age-encryption.org/v1 header): plaintext?".into());
    }
    let decryptor =
        age::Decryptor::new_buffered(binary).map_err(|_| "malformed age header".to_string())?;
    if decryptor.is_scrypt() {
        return Err("passphrase-encrypted, not encrypted to recipients".into());
    }
    let mac_line = memchr::memmem::find(binary, b"\n--- ").ok_or("no header MAC line")?;
    let payload_start = memchr::memchr(b'\n', &binary[mac_line + 1..])
        .map(|i| mac_line + 1 + i + 1)
        .ok_or("truncated in the header")?;
    let payload = binary.len() - payload_start;
    if payload < NONCE + TAG {
        return Err("truncated: the payload is missing".into());
    }
    let chunks = payload - NONCE;
    let last = chunks % CHUNK;
    if (last > 0 && last < TAG) || (last == 0 && chunks == 0) {
        return Err("truncated: the last chunk is cut short".into());
    }
    Ok(())
}

/// The tags of the SSH stanzas (`-> ssh-ed25519 TAG …`, `-> ssh-rsa TAG …`) in an age
/// file's header: which SSH keys it was encrypted to, readable without any key.
pub fn ssh_tags(data: &[u8]) -> std::result::Result<Vec<String>, String> {
    inspect(data)?;
    let unarmored = unarmored(data)?;
    let binary: &[u8] = &unarmored;
    let end = memchr::memmem::find(binary, b"\n--- ").unwrap_or(binary.len());
    let header = String::from_utf8_lossy(&binary[..end]);
    Ok(header
        .lines()
        .filter_map(|line| {
            let mut args = line.strip_prefix("-> ")?.split(' ');
            match args.next()? {
                "ssh-ed25519" | "ssh-rsa" => args.next().map(str::to_string),
                _ => None,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> Recipient {
        let id = age::x25519::Identity::generate();
        Recipient::X25519(id.to_public())
    }

    #[test]
    fn inspect_accepts_what_seal_writes_and_names_damage() {
        let at = Location::named("t");
        let r = [recipient()];
        for size in [0, 1, 64 * 1024, 64 * 1024 + 1, 200_000] {
            let plain = vec![7u8; size];
            for armor in [false, true] {
                let file = seal(&plain, &r, armor, &at).unwrap();
                assert_eq!(inspect(&file), Ok(()), "size {size} armor {armor}");
                assert!(looks_like_age(&file));
            }
            let file = seal(&plain, &r, false, &at).unwrap();
            let header = memchr::memmem::find(&file, b"\n--- ").unwrap();
            let body = header + 1 + memchr::memchr(b'\n', &file[header + 1..]).unwrap() + 1;
            for end in [
                header / 2,
                header + 3,
                body + NONCE + 8,
                body + NONCE + CHUNK + 3,
            ] {
                if end >= file.len() {
                    continue;
                }
                let err = inspect(&file[..end]).unwrap_err();
                assert!(
                    err.contains("truncated") || err.contains("header"),
                    "{size} {end}: {err}"
                );
            }
        }
        assert!(
            inspect(b"TOKEN=hunter2\n")
                .unwrap_err()
                .contains("plaintext")
        );
        assert!(inspect(b"age-encryption.org/v1\n-> X25519\n").is_err());
        assert!(inspect(b"-----BEGIN AGE ENCRYPTED FILE-----\nnot base64!\n").is_err());
    }
}
