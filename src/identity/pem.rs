//! The armor of an SSH private key file (`-----BEGIN … PRIVATE KEY-----`, base64,
//! `-----END … PRIVATE KEY-----`), read so that every file OpenSSH, age or ssh-to-age
//! takes as a key is taken here too:
//!
//! - text before the BEGIN line (a comment, blank lines) and after the END line is
//!   ignored, and so is a byte-order mark; a file with an `AGE-SECRET-KEY-1…` line
//!   before the BEGIN line is an age identity file, never an SSH key;
//! - lines end with LF, CRLF or CR, and may carry leading or trailing blanks;
//! - blank lines and `Name: value` header lines may follow the BEGIN line, blank lines
//!   may sit anywhere in the base64, and the base64 may be wrapped at any width.
//!
//! What none of them takes is refused with the file, the line and the reason: text
//! after the BEGIN or END marker on its line, a missing END line, a character that is
//! not base64. Errors never quote the file's content.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};

/// The first private-key block of a file, found by its BEGIN line.
pub struct Block<'a> {
    /// What the BEGIN line names: `OPENSSH PRIVATE KEY`, `RSA PRIVATE KEY`, …
    pub label: String,
    /// The line of the BEGIN marker.
    pub line: u64,
    lines: Lines<'a>,
    origin: &'a str,
}

/// The decoded content of a private-key block.
pub struct Armor {
    /// A `Proc-Type: 4,ENCRYPTED` header: a legacy PEM key sealed with a passphrase.
    pub encrypted: bool,
    /// The decoded bytes (`openssh-key-v1\0…`, or DER for a legacy PEM key).
    pub data: Zeroizing<Vec<u8>>,
}

/// The first `-----BEGIN … PRIVATE KEY-----` block of `data`; `None` when the file
/// has no such BEGIN line (it is then no SSH private key). `origin` names the file
/// in errors.
pub fn find<'a>(data: &'a [u8], origin: &'a str) -> Result<Option<Block<'a>>> {
    let mut lines = Lines::new(data);
    while let Some((line, text)) = lines.next() {
        // An age identity file, which the age parser reads (and names a BEGIN line
        // in it as what it is not).
        if text.starts_with(b"AGE-SECRET-KEY-") || text.starts_with(b"AGE-PLUGIN-") {
            return Ok(None);
        }
        if let Some(label) = begin_label(text, origin, line)? {
            return Ok(Some(Block {
                label,
                line,
                lines,
                origin,
            }));
        }
    }
    Ok(None)
}

impl Block<'_> {
    /// The block's content, decoded from its base64.
    pub fn decode(self) -> Result<Armor> {
        let Block {
            label,
            line,
            mut lines,
            origin,
        } = self;
        // Room for the whole rest of the file: it bounds the base64.
        let capacity = lines.rest.len();
        let at = |n: u64| Location::named(origin).at_line(n);
        // The base64, blanks dropped, and where each line's part of it starts (to name
        // the line of a decoding error). Room for all of it up front: a growing buffer
        // would leave copies of the key behind in freed memory.
        let mut encoded = Zeroizing::new(Vec::with_capacity(capacity));
        let mut starts: Vec<(usize, u64)> = Vec::new();
        let mut encrypted = false;
        let mut in_headers = true;
        let mut end = None;
        for (n, text) in lines.by_ref() {
            if text.is_empty() {
                in_headers = false;
                continue;
            }
            if text.starts_with(b"-----END") {
                end_line(text, &label, at(n))?;
                end = Some(n);
                break;
            }
            if in_headers && let Some(colon) = memchr::memchr(b':', text) {
                let (name, value) = (&text[..colon], &text[colon + 1..]);
                if name.trim_ascii().eq_ignore_ascii_case(b"Proc-Type")
                    && memchr::memmem::find(value, b"ENCRYPTED").is_some()
                {
                    encrypted = true;
                }
                continue;
            }
            in_headers = false;
            starts.push((encoded.len(), n));
            for &c in text {
                if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=') {
                    encoded.push(c);
                } else if !c.is_ascii_whitespace() {
                    return Err(refused(
                        at(n),
                        "a character that is not base64 inside the key",
                    ));
                }
            }
        }
        if end.is_none() {
            return Err(refused(
                at(line),
                &format!("-----BEGIN {label}----- without its -----END line: the key is truncated"),
            ));
        }
        let line_of = |offset: usize| {
            let i = starts.partition_point(|&(start, _)| start <= offset);
            starts.get(i.saturating_sub(1)).map_or(line, |&(_, n)| n)
        };
        let mut decoded = Zeroizing::new(Vec::with_capacity(encoded.len()));
        BASE64
        .decode_vec(&*encoded, &mut decoded)
        .map_err(|e| {
            use base64::DecodeError as D;
            let offset = match e {
                D::InvalidByte(i, _) | D::InvalidLastSymbol { offset: i, .. } => i,
                D::InvalidLength(_) | D::InvalidPadding => encoded.len().saturating_sub(1),
            };
            refused(
                at(line_of(offset)),
                "the key's base64 is malformed (a line is missing or damaged, or the padding is wrong)",
            )
        })?;
        Ok(Armor {
            encrypted,
            data: decoded,
        })
    }
}

/// Standard base64 with or without its `=` padding (OpenSSH takes both).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The label of a private-key BEGIN line (`-----BEGIN RSA PRIVATE KEY-----`), `None`
/// for any other line; a BEGIN marker with text after it on its line is refused.
fn begin_label(text: &[u8], origin: &str, n: u64) -> Result<Option<String>> {
    let Some(rest) = text.strip_prefix(b"-----BEGIN ") else {
        return Ok(None);
    };
    let Some(close) = memchr::memmem::find(rest, b"PRIVATE KEY-----") else {
        return Ok(None);
    };
    let label_end = close + "PRIVATE KEY".len();
    let label = String::from_utf8_lossy(&rest[..label_end]).into_owned();
    if label_end + 5 != rest.len() {
        return Err(refused(
            Location::named(origin).at_line(n),
            &format!("text after the -----BEGIN {label}----- marker on its line"),
        ));
    }
    Ok(Some(label))
}

/// Checks an END line against the BEGIN line's label.
fn end_line(text: &[u8], label: &str, at: Location) -> Result<()> {
    let want = format!("-----END {label}-----");
    if text == want.as_bytes() {
        return Ok(());
    }
    Err(refused(
        at,
        &if text.starts_with(want.as_bytes()) {
            format!("text after the {want} marker on its line")
        } else {
            format!("this END line does not match -----BEGIN {label}-----")
        },
    ))
}

fn refused(at: Location, reason: &str) -> Error {
    Error::InvalidKey {
        at,
        reason: reason.to_string(),
    }
}

/// The lines of a file, numbered from 1, each ended by LF, CRLF or CR, with leading
/// and trailing blanks (and a byte-order mark at the start of the file) removed.
struct Lines<'a> {
    rest: &'a [u8],
    n: u64,
}

impl<'a> Lines<'a> {
    fn new(data: &'a [u8]) -> Self {
        Lines {
            rest: data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data),
            n: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        self.n += 1;
        let (line, rest) = match memchr::memchr2(b'\n', b'\r', self.rest) {
            Some(i) if self.rest[i] == b'\r' && self.rest.get(i + 1) == Some(&b'\n') => {
                (&self.rest[..i], &self.rest[i + 2..])
            }
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        Some((self.n, line.trim_ascii()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armor(body: &str) -> String {
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n")
    }

    fn refusal(data: &str) -> String {
        match find(data.as_bytes(), "k").and_then(|b| b.unwrap().decode()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {data:?}"),
        }
    }

    #[test]
    fn every_layout_the_tools_take_decodes_to_the_same_bytes() {
        let want = b"openssh-key-v1\0abc".to_vec();
        let b64 = BASE64.encode(&want);
        let (a, b) = b64.split_at(8);
        for data in [
            armor(&b64),
            armor(&format!("{a}\n{b}")),
            armor(&format!("\n\n  {a}  \n\n\t{b}\n")),
            armor(&b64).replace('\n', "\r\n"),
            armor(&b64).replace('\n', "\r"),
            format!("# my key\n\n{}trailing text\n", armor(&b64)),
            format!("\u{feff}  {}", armor(&b64)),
            armor(b64.trim_end_matches('=')),
            armor(&format!("Comment: x\n\n{b64}")),
            armor(&b64).trim_end().to_string(),
        ] {
            let block = find(data.as_bytes(), "k").unwrap().unwrap();
            assert_eq!(block.label, "OPENSSH PRIVATE KEY");
            let got = block.decode().unwrap();
            assert_eq!(*got.data, want, "{data:?}");
            assert!(!got.encrypted);
        }
    }

    #[test]
    fn refusals_name_the_line() {
        let b64 = BASE64.encode(b"openssh-key-v1\0abcdef");
        let text = armor(&b64);
        assert!(
            refusal(&text.replacen("KEY-----\n", "KEY----- x\n", 1)).contains("k:1: text after")
        );
        assert!(
            refusal(&format!(
                "#\n{}",
                text.replace("KEY-----\n", "KEY----- x\n")
            ))
            .contains("k:2:")
        );
        assert!(
            refusal(&text.replacen(
                "-----END OPENSSH PRIVATE KEY-----",
                "-----END OPENSSH PRIVATE KEY----- x",
                1
            ))
            .contains("k:3: text after the -----END")
        );
        assert!(
            refusal(&text.replace("-----END OPENSSH", "-----END RSA"))
                .contains("k:3: this END line")
        );
        assert!(refusal(&format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{b64}\n")).contains("k:1:"));
        let damaged = armor(&format!("{}\n{}!{}", &b64[..4], &b64[4..8], &b64[8..]));
        assert!(refusal(&damaged).contains("k:3: a character that is not base64"));
        let short = armor(&format!("{}\n{}", &b64[..4], &b64[5..]));
        assert!(refusal(&short).contains("k:3: the key's base64 is malformed"));
    }

    #[test]
    fn other_files_are_no_private_key() {
        let key = armor("AAAA");
        for data in [
            "AGE-SECRET-KEY-1…\n",
            &format!("AGE-SECRET-KEY-1…\n{key}"),
            "-----BEGIN CERTIFICATE-----\n",
            "",
        ] {
            assert!(find(data.as_bytes(), "k").unwrap().is_none());
        }
    }

    #[test]
    fn a_sealed_legacy_pem_key_is_marked() {
        let label = "RSA PRIVATE KEY";
        let data = format!(
            "-----BEGIN {label}-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END {label}-----\n"
        );
        let block = find(data.as_bytes(), "k").unwrap().unwrap();
        assert_eq!(block.label, "RSA PRIVATE KEY");
        assert!(block.decode().unwrap().encrypted);
    }
}
