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
    let reader = age::armor::ArmoredReader::new(ciphertext);
    let decryptor = age::Decryptor::new_buffered(reader).map_err(|e| match e {
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
    if stream.read_to_end(&mut plain).is_err() {
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
