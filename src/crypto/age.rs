//! age files: encryption to a set of recipients (never to a small-order key) and
//! decryption with the identities found, asking for passphrases only when no unlocked
//! key opens it; and the passphrase-encrypted file that holds the admin's own identity.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{Read, Write};

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::identity::{Identities, Prompt};
use crate::recipient::{self, Recipient};

/// Refuses every recipient that age would wrap a file key to with an all-zero
/// shared secret (a small-order point, on the curve or its twist): anyone could
/// unwrap such a stanza from the file alone. Checked here, before any stanza is
/// written, whatever the key's parser and the age crate do; each key once per run,
/// and not again for a key the parser's full checks found sound.
pub fn refuse_low_order(recipients: &[Recipient], at: &Location) -> Result<()> {
    // Per thread: the threads of a rekey each check a key once, without a lock
    // between them.
    thread_local! {
        static SOUND: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    }
    for r in recipients {
        if matches!(
            r,
            Recipient::SshRsa(_) | Recipient::Plugin(_) | Recipient::Transit(_)
        ) {
            continue;
        }
        // A key read in this run was found sound, small order included.
        if r.found_sound() {
            continue;
        }
        let key = r.to_string();
        if SOUND.with_borrow(|sound| sound.contains(&key)) {
            continue;
        }
        if r.montgomery_u()
            .is_none_or(|u| recipient::is_low_order_u(&u))
        {
            return Err(Error::WeakKey {
                at: at.clone(),
                reason: format!(
                    "cannot encrypt to {} key {}: it is a small-order point (anyone could decrypt what is sealed to it)",
                    r.kind(),
                    r.fingerprint()
                ),
            });
        }
        SOUND.with_borrow_mut(|sound| sound.insert(key));
    }
    Ok(())
}

/// How an age file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Armor {
    Binary,
    /// PEM-like text (`-----BEGIN AGE ENCRYPTED FILE-----`).
    Ascii,
}

impl Armor {
    /// `Ascii` when a policy rule says `armor: true`.
    pub fn when(armored: bool) -> Armor {
        if armored { Armor::Ascii } else { Armor::Binary }
    }
}

/// Encrypts `plaintext` to every recipient, armored (PEM-like text) or binary.
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[Recipient],
    armor: Armor,
    at: &Location,
) -> Result<Vec<u8>> {
    Ok(encrypt_for(plaintext, recipients, armor, None, at)?.0)
}

/// What proves, at a third of the cost of opening it, that a file `encrypt_proven`
/// made opens with a ready identity: the ephemeral secret of the stanza made for
/// that identity's X25519 key `u` (`identity::x25519::Witnessed`).
pub struct Proof {
    u: [u8; 32],
    pub(crate) witness: crate::identity::x25519::Witness,
}

impl Proof {
    /// The plaintext of `data` (the file as written) opened by the identity of `u`
    /// with the witness; `None` when it does not open (or that identity is gone).
    pub fn opens(
        &self,
        data: &[u8],
        identities: &Identities,
        at: &Location,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match identities.x25519_for(&self.u) {
            Some(key) => try_decrypt_with(data, vec![&key.witnessed(&self.witness)], at),
            None => Ok(None),
        }
    }
}

/// `encrypt`, with the `Proof` for the first X25519 recipient whose identity is
/// ready in `identities`, if any is.
pub fn encrypt_proven(
    plaintext: &[u8],
    recipients: &[Recipient],
    armor: Armor,
    identities: &Identities,
    at: &Location,
) -> Result<(Vec<u8>, Option<Proof>)> {
    encrypt_for(plaintext, recipients, armor, Some(identities), at)
}

fn encrypt_for(
    plaintext: &[u8],
    recipients: &[Recipient],
    armor: Armor,
    proving: Option<&Identities>,
    at: &Location,
) -> Result<(Vec<u8>, Option<Proof>)> {
    let fail = |reason: String| encrypt_error(at, reason);
    if recipients.is_empty() {
        return Err(fail("no recipients".into()));
    }
    refuse_low_order(recipients, at)?;
    let mut boxed: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
    let mut plugin_recipients: Vec<age::plugin::Recipient> = Vec::new();
    let mut witnessed = None;
    for r in recipients {
        match r {
            Recipient::Plugin(p) => plugin_recipients.push(p.clone()),
            Recipient::X25519(_) => match r.montgomery_u() {
                Some(u)
                    if witnessed.is_none()
                        && proving.is_some_and(|ids| ids.x25519_for(&u).is_some()) =>
                {
                    let (to, slot) = super::x25519::Witnessing::new(u);
                    witnessed = Some((u, slot));
                    boxed.push(Box::new(to));
                }
                Some(u) => boxed.push(Box::new(super::x25519::Recipient(u))),
                None => return Err(fail(format!("unusable recipient {r}"))),
            },
            Recipient::SshEd25519(_)
                if let Some(to) = r
                    .ed25519_key()
                    .and_then(|ed| super::x25519::SshEd25519::new(ed, || r.montgomery_u())) =>
            {
                boxed.push(Box::new(to));
            }
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
    let out = encrypt_to(
        plaintext,
        boxed.iter().map(|b| b.as_ref() as &dyn age::Recipient),
        armor,
        at,
    )?;
    let proof = match witnessed {
        Some((u, slot)) => {
            let witness = slot.lock().ok().and_then(|mut made| made.take());
            let witness = witness.ok_or_else(|| fail("no stanza was made".into()))?;
            Some(Proof { u, witness })
        }
        None => None,
    };
    Ok((out, proof))
}

fn encrypt_error(at: &Location, reason: String) -> Error {
    Error::Encrypt {
        at: at.clone(),
        reason,
    }
}

fn encrypt_to<'a>(
    plaintext: &[u8],
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
    armor: Armor,
    at: &Location,
) -> Result<Vec<u8>> {
    let fail = |reason: String| encrypt_error(at, reason);
    let encryptor = age::Encryptor::with_recipients(recipients).map_err(|e| fail(e.to_string()))?;
    let format = match armor {
        Armor::Ascii => age::armor::Format::AsciiArmor,
        Armor::Binary => age::armor::Format::Binary,
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
    try_decrypt_with(ciphertext, identities.ready(), at)
}

/// `try_decrypt` with the age identities `ready`.
pub fn try_decrypt_with(
    ciphertext: &[u8],
    ready: Vec<&dyn age::Identity>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::age::{CHUNK, MAGIC, NONCE, Stanzas, header, looks_like_age, ssh_tags};
    use curve25519_dalek::constants::EIGHT_TORSION;
    use std::str::FromStr;

    fn age_recipient(u: &[u8; 32]) -> Recipient {
        let hrp = bech32::Hrp::parse("age").unwrap();
        let text = bech32::encode::<bech32::Bech32>(hrp, u).unwrap();
        Recipient::X25519(age::x25519::Recipient::from_str(&text).unwrap().into())
    }

    /// Every u whose X25519 product with a clamped scalar is zero: those of the
    /// curve's 8-torsion, p - 1 on the twist, and other encodings of them.
    fn low_order_us() -> Vec<[u8; 32]> {
        let mut us: Vec<[u8; 32]> = EIGHT_TORSION
            .iter()
            .map(|t| t.to_montgomery().to_bytes())
            .collect();
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        for k in [0, 1] {
            let mut u = p;
            u[0] += k;
            us.push(u);
        }
        p[0] -= 1;
        us.push(p);
        for i in 0..us.len() {
            let mut top = us[i];
            top[31] |= 0x80;
            us.push(top);
        }
        us
    }

    #[test]
    fn eight_times_u_is_zero_exactly_when_x25519_gives_zero() {
        use curve25519_dalek::montgomery::MontgomeryPoint;
        use sha2::Digest;
        // What age computes: the shared secret with a clamped scalar.
        let by_x25519 = |u: &[u8; 32]| MontgomeryPoint(*u).mul_clamped([0x5a; 32]).0 == [0u8; 32];
        // The low-order ones, and numbers of every kind: on the curve, on the twist,
        // above p.
        let mut all = low_order_us();
        let mut x = [7u8; 32];
        for _ in 0..2000 {
            x = sha2::Sha256::digest(x).into();
            all.push(x);
        }
        let mut low = 0;
        for u in &all {
            assert_eq!(recipient::is_low_order_u(u), by_x25519(u), "{u:?}");
            low += usize::from(by_x25519(u));
        }
        // The eight-torsion's 4 distinct u (0, 1 and the two of order 8), -1, and 0 and
        // 1 written as u + p, each with and without the top bit.
        assert!(low >= 16, "{low}");
    }

    #[test]
    fn no_stanza_is_written_to_a_low_order_recipient_however_it_was_made() {
        let at = Location::named("t.age");
        let good = Recipient::X25519(age::x25519::Identity::generate().to_public().into());
        assert!(encrypt(b"x", std::slice::from_ref(&good), Armor::Binary, &at).is_ok());
        for u in low_order_us() {
            assert!(recipient::is_low_order_u(&u), "{u:?}");
            // Built directly, past the parser that refuses it.
            let weak = age_recipient(&u);
            let err = encrypt(b"x", &[good.clone(), weak], Armor::Ascii, &at).unwrap_err();
            assert!(matches!(err, Error::WeakKey { .. }), "{u:?}: {err}");
            assert!(
                err.to_string()
                    .starts_with("t.age: cannot encrypt to age key age1")
            );
        }
        // ssh-ed25519 keys of small order, which age's ssh wrap would take.
        for t in EIGHT_TORSION {
            let weak = Recipient::ssh_ed25519_unchecked(t.compress().to_bytes());
            let err = encrypt(b"x", &[good.clone(), weak], Armor::Ascii, &at).unwrap_err();
            assert!(matches!(err, Error::WeakKey { .. }), "{err}");
            assert!(err.to_string().contains("ssh-ed25519 key SHA256:"), "{err}");
        }
        // Honest keys, and the converted ssh-ed25519 keys of real key pairs, pass.
        for seed in [[1u8; 32], [2; 32]] {
            let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
            let line = ssh_key::PublicKey::new(pair.public.into(), "")
                .to_openssh()
                .unwrap();
            let r = Recipient::parse_line(&line, &at).unwrap();
            assert!(!recipient::is_low_order_u(&r.montgomery_u().unwrap()));
            assert!(refuse_low_order(&[r, good.clone()], &at).is_ok());
        }
    }

    fn recipient() -> Recipient {
        let id = age::x25519::Identity::generate();
        Recipient::X25519(id.to_public().into())
    }

    fn ssh(seed: u8) -> Recipient {
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        let line = ssh_key::PublicKey::new(ssh_key::public::KeyData::Ed25519(pair.public), "")
            .to_openssh()
            .unwrap();
        Recipient::parse_line(&line, &Location::named("t")).unwrap()
    }

    /// `file` with `stanza` (its line and body, each ending in a newline) added first.
    fn with_stanza(file: &[u8], stanza: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(stanza.as_bytes());
        out.extend_from_slice(&file[MAGIC.len()..]);
        out
    }

    #[test]
    fn the_header_counts_every_reader_by_kind_and_names_ssh_keys_by_tag() {
        let at = Location::named("t");
        let (x, host, other_host) = (recipient(), ssh(1), ssh(2));
        let policy = [x.clone(), host.clone()];
        for armor in [Armor::Binary, Armor::Ascii] {
            let file = encrypt(b"secret", &policy, armor, &at).unwrap();
            let found = header(&file).unwrap();
            assert_eq!(
                found,
                Stanzas {
                    ssh: vec![host.ssh_tag().unwrap()],
                    x25519: 1,
                    other: Vec::new(),
                }
            );
            assert_eq!(found.differs_from(&policy), None);
            assert_eq!(ssh_tags(&file).unwrap(), found.ssh);
        }
        let found = header(&encrypt(b"secret", &policy, Armor::Binary, &at).unwrap()).unwrap();
        // A host removed, another host in its place, one more X25519 reader.
        for (want, says) in [
            (
                vec![x.clone()],
                "1 SSH stanza (1 for a key the policy does not name), 1 X25519 and 0 other; the policy calls for 0 SSH, 1 X25519",
            ),
            (
                vec![x.clone(), other_host.clone()],
                "1 SSH stanza (1 for a key the policy does not name), 1 X25519",
            ),
            (
                vec![x.clone(), recipient(), host.clone()],
                "the policy calls for 1 SSH, 2 X25519 and 0 plugin stanzas",
            ),
        ] {
            let what = found.differs_from(&want).unwrap();
            assert!(what.contains(says), "{what}");
        }

        // Stanzas of other kinds count; the one grease stanza the age library writes
        // does not, a second one does.
        let file = encrypt(b"secret", &policy, Armor::Binary, &at).unwrap();
        let plugin = with_stanza(&file, "-> piv-p256 abcd\nAAAA\n");
        let found = header(&plugin).unwrap();
        assert_eq!(found.other, ["piv-p256"]);
        assert!(
            found
                .differs_from(&policy)
                .unwrap()
                .contains("1 X25519 and 1 other")
        );
        let extra_x = with_stanza(&file, "-> X25519 abcd\nAAAA\n");
        assert_eq!(header(&extra_x).unwrap().x25519, 2);
        let greased = with_stanza(&file, "-> x-grease\n\n");
        let other = header(&greased).unwrap().other;
        assert!(
            other.len() == 1 && other[0].ends_with("-grease"),
            "{other:?}"
        );
        // scrypt with recipients is not a valid age file at all.
        let scrypt = with_stanza(&file, "-> scrypt abcd 10\nAAAA\n");
        assert_eq!(header(&scrypt).unwrap_err(), "malformed age header");
    }

    #[test]
    fn check_structure_accepts_what_encrypt_writes_and_names_damage() {
        let at = Location::named("t");
        let r = [recipient()];
        for size in [0, 1, 64 * 1024, 64 * 1024 + 1, 200_000] {
            let plain = vec![7u8; size];
            for armor in [Armor::Binary, Armor::Ascii] {
                let file = encrypt(&plain, &r, armor, &at).unwrap();
                assert!(header(&file).is_ok(), "size {size} {armor:?}");
                assert!(looks_like_age(&file));
            }
            let file = encrypt(&plain, &r, Armor::Binary, &at).unwrap();
            let head = memchr::memmem::find(&file, b"\n--- ").unwrap();
            let body = head + 1 + memchr::memchr(b'\n', &file[head + 1..]).unwrap() + 1;
            for end in [
                head / 2,
                head + 3,
                body + NONCE + 8,
                body + NONCE + CHUNK + 3,
            ] {
                if end >= file.len() {
                    continue;
                }
                let err = header(&file[..end]).unwrap_err();
                assert!(
                    err.contains("truncated") || err.contains("header"),
                    "{size} {end}: {err}"
                );
            }
        }
        assert!(
            header(b"TOKEN=hunter2\n")
                .unwrap_err()
                .contains("plaintext")
        );
        assert!(header(b"age-encryption.org/v1\n-> X25519\n").is_err());
        assert!(header(b"-----BEGIN AGE ENCRYPTED FILE-----\nnot base64!\n").is_err());
    }
}
