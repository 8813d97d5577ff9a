//! agenix secrets on disk: plain age v1 files, binary or armored, readable by `age -d`
//! and the agenix module. Read here without any key (the header's stanzas, whether the
//! file is whole) for `keys check` and rekey plans; encryption is `crypto::age`.

use std::io::Read;

use crate::recipient::Recipient;

/// The first line of a binary age v1 file.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// Payload: a 16-byte nonce, then chunks of 64 KiB plaintext plus a 16-byte tag.
pub const NONCE: usize = 16;
const TAG: usize = 16;
pub const CHUNK: usize = 64 * 1024 + TAG;

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
    if let Some(binary) = plain_armor(data) {
        return Ok(std::borrow::Cow::Owned(binary));
    }
    let mut out = Vec::with_capacity(data.len());
    age::armor::ArmoredReader::new(data)
        .read_to_end(&mut out)
        .map_err(|_| "broken age armor".to_string())?;
    Ok(std::borrow::Cow::Owned(out))
}

/// The armor as the age library writes it, decoded without it: the begin line, lines
/// of 64 characters of canonical padded base64 (the last one up to 64), the end line
/// and a line break. `None` for anything else (spaces, CRLF, another width), which
/// the age library's reader decides on.
fn plain_armor(data: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    const END: &[u8] = b"-----END AGE ENCRYPTED FILE-----\n";
    let body = data
        .strip_prefix(ARMOR_BEGIN)?
        .strip_prefix(b"\n")?
        .strip_suffix(END)?
        .strip_suffix(b"\n")?;
    let mut text = Vec::with_capacity(body.len());
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        if line.is_empty() || line.len() > 64 || (!last && line.len() != 64) {
            return None;
        }
        text.extend_from_slice(line);
    }
    base64::engine::general_purpose::STANDARD.decode(&text).ok()
}

/// Who an age file's header wraps its file key for, read without any key: one stanza
/// per reader. An SSH stanza names its key by a tag; an X25519 stanza names nothing,
/// so those are only counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanzas {
    /// The tags of the `ssh-ed25519` and `ssh-rsa` stanzas, sorted.
    pub ssh: Vec<String>,
    /// How many `X25519` stanzas.
    pub x25519: usize,
    /// The kinds of every other stanza (a plugin's, `scrypt`), sorted. The one
    /// `…-grease` stanza the age library adds to every file it writes is not counted:
    /// no identity opens it.
    pub other: Vec<String>,
}

impl Stanzas {
    /// The stanzas a file encrypted to `recipients` has, one per recipient (a plugin's
    /// counted as one of its own kind, whatever it is).
    fn expected(recipients: &[Recipient]) -> Stanzas {
        let mut want = Stanzas::default();
        for r in recipients {
            match r {
                Recipient::X25519(_) => want.x25519 += 1,
                Recipient::SshEd25519(_) | Recipient::SshRsa(_) => {
                    want.ssh.push(r.ssh_tag().unwrap_or_default())
                }
                Recipient::Plugin(_) => want.other.push("plugin".into()),
                // Never in an age header: it wraps a sops data key itself.
                Recipient::Transit(_) => {}
            }
        }
        want.ssh.sort();
        want
    }

    /// How many stanzas in all.
    pub fn len(&self) -> usize {
        self.ssh.len() + self.x25519 + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What differs between a file's stanzas (`self`) and the ones `recipients` call
    /// for, in counts (never a key or a tag); `None` when they match. A plugin's
    /// stanza kind is its own, so only their number is compared.
    pub fn differs_from(&self, recipients: &[Recipient]) -> Option<String> {
        let want = Stanzas::expected(recipients);
        let mut unknown = self.ssh.clone();
        for tag in &want.ssh {
            if let Some(i) = unknown.iter().position(|t| t == tag) {
                unknown.swap_remove(i);
            }
        }
        if unknown.is_empty()
            && self.ssh.len() == want.ssh.len()
            && self.x25519 == want.x25519
            && self.other.len() == want.other.len()
        {
            return None;
        }
        let not_named = if unknown.is_empty() {
            String::new()
        } else {
            format!(" ({} for a key the policy does not name)", unknown.len())
        };
        Some(format!(
            "its header has {} SSH stanza{}{not_named}, {} X25519 and {} other; \
             the policy calls for {} SSH, {} X25519 and {} plugin stanzas",
            self.ssh.len(),
            plural(self.ssh.len()),
            self.x25519,
            self.other.len(),
            want.ssh.len(),
            want.x25519,
            want.other.len(),
        ))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Checks that `data` is a well-formed age file encrypted to recipients (the header
/// parses, it is not passphrase-encrypted, and the payload is not truncated) and
/// returns its header's stanzas. The reason says what is wrong, without quoting the
/// file; each caller names the file.
pub fn header(data: &[u8]) -> std::result::Result<Stanzas, String> {
    let unarmored = unarmored(data)?;
    let binary: &[u8] = &unarmored;
    let Some(mut rest) = binary.strip_prefix(MAGIC) else {
        return Err("not an age file (no age-encryption.org/v1 header): plaintext?".into());
    };
    let malformed = || "malformed age header".to_string();
    let mut stanzas = Stanzas::default();
    let mut grease = false;
    let mut scrypt = false;
    while rest.starts_with(b"-> ") {
        let (next, stanza) = age_core::format::read::age_stanza(rest).map_err(|e| {
            if e.is_incomplete() {
                "truncated in the header".to_string()
            } else {
                malformed()
            }
        })?;
        match (stanza.tag, stanza.args.first()) {
            ("X25519", _) => stanzas.x25519 += 1,
            ("ssh-ed25519" | "ssh-rsa", Some(tag)) => stanzas.ssh.push(tag.to_string()),
            (kind, _) if kind.ends_with("-grease") && !grease => grease = true,
            (kind, _) => {
                scrypt |= kind == "scrypt";
                stanzas.other.push(kind.to_string());
            }
        }
        rest = next;
    }
    if stanzas.is_empty() && !grease {
        return Err(malformed());
    }
    if scrypt {
        return Err(if stanzas.len() == 1 && !grease {
            "passphrase-encrypted, not encrypted to recipients".into()
        } else {
            malformed()
        });
    }
    // The MAC line: `---`, a space, 32 bytes in canonical unpadded base64.
    let Some(mac_end) = memchr::memchr(b'\n', rest) else {
        return Err("truncated in the header".into());
    };
    let mac = rest[..mac_end]
        .strip_prefix(b"--- ")
        .ok_or_else(malformed)?;
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD_NO_PAD.decode(mac) {
        Ok(m) if m.len() == 32 => {}
        _ => return Err(malformed()),
    }
    let payload = rest.len() - mac_end - 1;
    if payload < NONCE + TAG {
        return Err("truncated: the payload is missing".into());
    }
    let chunks = payload - NONCE;
    let last = chunks % CHUNK;
    if (last > 0 && last < TAG) || (last == 0 && chunks == 0) {
        return Err("truncated: the last chunk is cut short".into());
    }
    stanzas.ssh.sort();
    stanzas.other.sort();
    Ok(stanzas)
}

/// The tags of the SSH stanzas (`-> ssh-ed25519 TAG …`, `-> ssh-rsa TAG …`) in an age
/// file's header: which SSH keys it was encrypted to, readable without any key.
pub fn ssh_tags(data: &[u8]) -> std::result::Result<Vec<String>, String> {
    header(data).map(|s| s.ssh)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn armored(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .unwrap();
        w.write_all(payload).unwrap();
        w.finish().unwrap();
        out
    }

    fn by_the_library(data: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        age::armor::ArmoredReader::new(data)
            .read_to_end(&mut out)
            .ok()
            .map(|_| out)
    }

    #[test]
    fn armor_read_without_the_library_reads_as_the_library_or_is_left_to_it() {
        let mut rng = fastrand::Rng::with_seed(129);
        let mut taken = 0;
        for case in 0..5000 {
            // Every length around the line's 48 bytes, then random ones.
            let len = if case < 200 {
                case + 1
            } else {
                rng.usize(0..2000)
            };
            let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let mut data = armored(&payload);
            if case >= 200 {
                for _ in 0..rng.usize(0..3) {
                    const EDITS: &[&[u8]] = &[b"\n", b" ", b"\r", b"=", b"A", b"-", b"\t", b"/"];
                    let at = rng.usize(..=data.len());
                    match rng.u8(..3) {
                        0 if !data.is_empty() => {
                            data.remove(at.min(data.len() - 1));
                        }
                        _ => {
                            let edit = EDITS[rng.usize(..EDITS.len())];
                            data.splice(at..at, edit.iter().copied());
                        }
                    }
                }
            }
            if let Some(fast) = plain_armor(&data) {
                taken += 1;
                assert_eq!(
                    Some(fast),
                    by_the_library(&data),
                    "{}",
                    String::from_utf8_lossy(&data)
                );
            }
            if case < 200 {
                assert!(
                    plain_armor(&data).is_some(),
                    "{len} bytes as the library writes them"
                );
            }
        }
        assert!(taken > 1000, "{taken}");
    }
}
