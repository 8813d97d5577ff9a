//! The guard against private keys in clear: every file a check reads is searched
//! for key material, however a key is wrapped or disguised.

use super::kind::Kind;
use super::report::Report;
use crate::policy::Policy;
use crate::snapshot::{Blob, Snapshot};

/// Finds private key material in clear in any file of `files`.
pub(super) fn private_keys(files: &Snapshot, policy: Option<&Policy>, report: &mut Report) {
    // Every file, secrets/ included: ciphertext never looks like a key, and a key
    // pasted into a note, a comment of keys.lock or a sops value left in clear is
    // as leaked as one anywhere else.
    for (rel, blob) in files.iter() {
        if policy.is_some_and(|p| p.allows_private_key(rel)) {
            continue;
        }
        if let Blob::File(data) = blob
            && let Some(kind) = private_key_material(data)
        {
            report.problem(
                Kind::PrivateKey,
                rel,
                format!("contains {kind} in clear"),
                "remove it and keep it only as a secret (`keys encrypt NAME`); if it was ever committed, rotate the key",
            );
        }
    }
}

const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Names the private key material in `data`, if any: an age identity, a PEM or
/// OpenSSH private key block with a body, or a PuTTY private key. A key is found
/// however it is wrapped: indented, in a YAML block scalar, a heredoc or a Nix
/// string, JSON-escaped (`\n`), commented out line by line, with blank lines or
/// trailing blanks after its first line. A mention of a marker alone (in code or
/// docs) is not reported.
pub fn private_key_material(data: &[u8]) -> Option<&'static str> {
    if has_age_identity(data) {
        return Some("an age identity (AGE-SECRET-KEY-…)");
    }
    if has_key_block(data) {
        return Some("a private key block (-----BEGIN … PRIVATE KEY-----)");
    }
    let at_line_start = |needle: &[u8]| {
        memchr::memmem::find_iter(data, needle).any(|i| {
            let lead = data[..i]
                .iter()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            i == lead || data[i - lead - 1] == b'\n' || data[..i - lead].ends_with(b"\\n")
        })
    };
    if at_line_start(b"PuTTY-User-Key-File-") && at_line_start(b"Private-Lines: ") {
        return Some("a PuTTY private key");
    }
    None
}

/// `AGE-SECRET-KEY-1` in any case, anywhere in a line, followed by the bech32 data
/// of a key (an identity has 58 characters of it).
fn has_age_identity(data: &[u8]) -> bool {
    const HRP: &[u8] = b"age-secret-key-1";
    memchr::memchr_iter(b'-', data)
        .filter(|&dash| dash >= 3)
        .map(|dash| dash - 3)
        .any(|at| {
            data[at..].len() > HRP.len()
                && data[at..at + HRP.len()].eq_ignore_ascii_case(HRP)
                && data[at + HRP.len()..]
                    .iter()
                    .take_while(|b| BECH32.contains(&b.to_ascii_lowercase()))
                    .count()
                    >= 50
        })
}

/// A `-----BEGIN … PRIVATE KEY-----` line followed by a key's body.
fn has_key_block(data: &[u8]) -> bool {
    memchr::memmem::find_iter(data, b"-----BEGIN ").any(|at| {
        let rest = &data[at + 11..];
        let Some(end) = memchr::memmem::find(&rest[..rest.len().min(64)], b"-----") else {
            return false;
        };
        let label = &rest[..end];
        (label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
            && key_body(&rest[end + 5..])
    })
}

/// Whether the text after a BEGIN line is a key's body. What a disguise puts
/// between its lines is skipped: blanks and line breaks, escaped line breaks (`\n`,
/// `\r`, `\` at the end of a line), quotes, commas, `+` and comment markers. Then
/// comes either a PEM header (`Proc-Type:` of an encrypted key, PGP's `Version:`)
/// or a run of at least 40 base64 characters (a body line has 64 or 70).
fn key_body(after: &[u8]) -> bool {
    // Far enough for a few blank, indented or commented lines and headers.
    let text = &after[..after.len().min(1024)];
    let mut i = 0;
    let mut headers = 0;
    while i < text.len() {
        i += separators(&text[i..]);
        let rest = &text[i..];
        if rest.starts_with(b"Proc-Type:") {
            return true;
        }
        if headers < 4
            && let Some(len) = header_line(rest)
        {
            headers += 1;
            i += len;
            continue;
        }
        let (run, len) = base64_run(rest);
        if run >= 40 {
            return true;
        }
        // A `//` comment marker is base64 too.
        if len == 0 || !rest[..len].iter().all(|&b| b == b'/') {
            return false;
        }
        i += len;
    }
    false
}

/// How many bytes at the start of `text` only separate the lines of a key.
fn separators(text: &[u8]) -> usize {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => i += 1,
            b'"' | b'\'' | b'`' | b',' | b'+' | b'#' | b';' | b'*' | b'>' | b'|' | b'-' => i += 1,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' => i += 1,
            b'\\' => match text.get(i + 1) {
                Some(b'n' | b'r' | b't' | b'\\' | b'"' | b'\'' | b'\n' | b'\r') => i += 2,
                Some(b'u')
                    if matches!(
                        &text[i..],
                        [_, _, b'0', b'0', b'0', b'a' | b'A' | b'd' | b'D', ..]
                    ) =>
                {
                    i += 6
                }
                _ => break,
            },
            _ => break,
        }
    }
    i
}

/// The length of a PEM header line (`Name: value` up to its line break), if `text`
/// starts with one.
fn header_line(text: &[u8]) -> Option<usize> {
    let name = text
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    if name == 0
        || !text[..name][0].is_ascii_alphabetic()
        || text.get(name..name + 2) != Some(b": ")
    {
        return None;
    }
    let line = memchr::memchr(b'\n', text).unwrap_or(text.len());
    let escaped = memchr::memmem::find(&text[..line], b"\\n").unwrap_or(line);
    Some(escaped.min(line))
}

/// The base64 characters at the start of `text` (a JSON-escaped `\/` counts as one)
/// and the bytes they take.
fn base64_run(text: &[u8]) -> (usize, usize) {
    let (mut run, mut i) = (0, 0);
    while i < text.len() {
        match text[i] {
            b if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') => i += 1,
            b'\\' if text.get(i + 1) == Some(&b'/') => i += 2,
            _ => break,
        }
        run += 1;
    }
    (run, i)
}

#[cfg(test)]
mod tests;
