//! How a secret is sealed: age encryption to a set of recipients and decryption with
//! the identities found, asking for passphrases only when no unlocked key opens it.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::identity::{Identities, Prompt};
use crate::recipient::Recipient;

/// Encrypts `plaintext` to every recipient, armored (PEM-like text) or binary.
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[Recipient],
    armor: bool,
    at: &Location,
) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Encrypt {
        at: at.clone(),
        reason,
    };
    if recipients.is_empty() {
        return Err(fail("no recipients".into()));
    }
    let mut boxed: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
    let mut plugin_recipients: Vec<age::plugin::Recipient> = Vec::new();
    for r in recipients {
        match r {
            Recipient::Plugin(p) => plugin_recipients.push(p.clone()),
            other => boxed.push(
                other
                    .age_recipient()
                    .ok_or_else(|| fail(format!("unusable recipient {other}")))?,
            ),
        }
    }
    let mut names: Vec<&str> = plugin_recipients.iter().map(|p| p.plugin()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let plugin =
            age::plugin::RecipientPluginV1::new(name, &plugin_recipients, &[], age::NoCallbacks)
                .map_err(|_| fail(format!("age-plugin-{name} is not installed")))?;
        boxed.push(Box::new(plugin));
    }
    let encryptor =
        age::Encryptor::with_recipients(boxed.iter().map(|b| b.as_ref() as &dyn age::Recipient))
            .map_err(|e| fail(e.to_string()))?;
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let io = |e: std::io::Error| fail(e.to_string());
    let mut out = Vec::with_capacity(plaintext.len() + 512);
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, format).map_err(io)?;
    let mut writer = encryptor.wrap_output(armored).map_err(io)?;
    writer.write_all(plaintext).map_err(io)?;
    writer.finish().and_then(|a| a.finish()).map_err(io)?;
    Ok(out)
}

/// Decrypts an age file (binary or armored). Unlocked identities are tried first;
/// passphrase-protected ones are unlocked (once each) only when those fail.
/// Nothing is returned unless the whole payload authenticated.
pub fn decrypt(
    ciphertext: &[u8],
    identities: &mut Identities,
    prompt: &dyn Prompt,
    at: &Location,
) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(plain) = try_decrypt(ciphertext, identities, at)? {
        return Ok(plain);
    }
    if identities.has_locked() {
        identities.unlock_all(prompt)?;
        if let Some(plain) = try_decrypt(ciphertext, identities, at)? {
            return Ok(plain);
        }
    }
    Err(Error::NoIdentity {
        at: at.clone(),
        searched: identities.searched().to_vec(),
    })
}

/// Decrypts the first of several age files that an identity opens (sops wraps its
/// data key once per recipient). Unlocked identities are tried on every file before
/// any passphrase is asked for.
pub fn decrypt_first(
    files: &[&[u8]],
    identities: &mut Identities,
    prompt: &dyn Prompt,
    at: &Location,
) -> Result<Zeroizing<Vec<u8>>> {
    let attempt = |identities: &Identities| -> Result<Option<Zeroizing<Vec<u8>>>> {
        let mut failure = None;
        for file in files {
            match try_decrypt(file, identities, at) {
                Ok(Some(plain)) => return Ok(Some(plain)),
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
        }
        failure.map_or(Ok(None), Err)
    };
    if let Some(plain) = attempt(identities)? {
        return Ok(plain);
    }
    if identities.has_locked() {
        identities.unlock_all(prompt)?;
        if let Some(plain) = attempt(identities)? {
            return Ok(plain);
        }
    }
    Err(Error::NoIdentity {
        at: at.clone(),
        searched: identities.searched().to_vec(),
    })
}

/// Whether every stanza of a binary age header ends with a short body line (one of
/// fewer than 64 characters, possibly empty), as the age spec requires; the age
/// crate accepts a stanza whose body is missing.
fn stanzas_are_canonical(binary: &[u8]) -> bool {
    let mut open = false;
    for line in binary.split(|b| *b == b'\n').skip(1) {
        if line.starts_with(b"--- ") || line == b"---" {
            return !open;
        }
        if line.starts_with(b"-> ") {
            if open {
                return false;
            }
            open = true;
            continue;
        }
        if !open || line.len() > 64 {
            return false;
        }
        if line.len() < 64 {
            open = false;
        }
    }
    false
}

const ARMOR: &str = "broken age armor (not canonical base64 lines between the markers)";

/// Whether an I/O error from the age reader is the armor's, not the payload's.
fn is_armor_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| {
        inner
            .downcast_ref::<age::armor::ArmoredReadError>()
            .is_some()
    })
}

/// Decrypts with the identities that are ready (nothing is unlocked or asked for);
/// `None` when none of them opens the file. Usable from several threads at once.
pub fn try_decrypt(
    ciphertext: &[u8],
    identities: &Identities,
    at: &Location,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let corrupt = |reason: &str| Error::Corrupt {
        at: at.clone(),
        reason: reason.to_string(),
    };
    const BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
    let lead = ciphertext
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    let body = &ciphertext[lead..];
    if !body.starts_with(BEGIN)
        && !ciphertext.starts_with(b"age-encryption.org/")
        && (body.starts_with(b"-----") || memchr::memmem::find(ciphertext, BEGIN).is_some())
    {
        // A damaged begin marker, or something before it.
        return Err(corrupt(ARMOR));
    }
    // Whitespace before the armor is allowed (as in age). Armor is decoded whole first,
    // so an armor fault is told apart from a payload fault.
    let decoded;
    let binary: &[u8] = if body.starts_with(BEGIN) {
        let mut out = Vec::with_capacity(body.len());
        age::armor::ArmoredReader::new(body)
            .read_to_end(&mut out)
            .map_err(|e| {
                if is_armor_error(&e) {
                    corrupt(ARMOR)
                } else {
                    corrupt("malformed age header")
                }
            })?;
        decoded = out;
        &decoded
    } else {
        ciphertext
    };
    if binary.starts_with(b"age-encryption.org/v1\n") && !stanzas_are_canonical(binary) {
        return Err(corrupt("malformed age header"));
    }
    let decryptor = age::Decryptor::new_buffered(binary).map_err(|e| match e {
        age::DecryptError::UnknownFormat => corrupt("not an age file, or an unknown age version"),
        age::DecryptError::InvalidMac => corrupt("age header MAC mismatch (the file was altered)"),
        _ => corrupt("malformed age header"),
    })?;
    if decryptor.is_scrypt() {
        return Err(corrupt(
            "passphrase-encrypted age file; keys secrets are encrypted to recipients",
        ));
    }
    let ready = identities.ready();
    let mut stream = match decryptor.decrypt(ready.into_iter()) {
        Ok(stream) => stream,
        Err(age::DecryptError::NoMatchingKeys) => return Ok(None),
        Err(age::DecryptError::InvalidMac) => {
            return Err(corrupt("age header MAC mismatch (the file was altered)"));
        }
        Err(age::DecryptError::DecryptionFailed) => {
            return Err(corrupt(
                "a recipient stanza failed to decrypt (the file was altered)",
            ));
        }
        Err(_) => return Err(corrupt("malformed age header")),
    };
    let mut plain = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    if let Err(e) = stream.read_to_end(&mut plain) {
        if is_armor_error(&e) {
            return Err(corrupt(ARMOR));
        }
        // Drop what was read so far: a failed file releases nothing.
        return Err(corrupt(
            "payload failed to authenticate (truncated or altered)",
        ));
    }
    Ok(Some(plain))
}

/// Encrypts with a passphrase (scrypt), armored: for the admin's own identity file,
/// which `age -d` can open as well.
pub fn encrypt_with_passphrase(
    plaintext: &[u8],
    passphrase: age::secrecy::SecretString,
    at: &Location,
) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::Encrypt {
        at: at.clone(),
        reason: e.to_string(),
    };
    let encryptor = age::Encryptor::with_user_passphrase(passphrase);
    let mut out = Vec::new();
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(io)?;
    let mut writer = encryptor.wrap_output(armored).map_err(io)?;
    writer.write_all(plaintext).map_err(io)?;
    writer.finish().and_then(|a| a.finish()).map_err(io)?;
    Ok(out)
}
