//! `secrets/keys.lock`: what every secret was last encrypted to and the hash of the
//! file as written, so `keys check` can tell drift from edits made outside `keys`
//! without any identity (X25519 stanzas do not reveal their recipient). One secret
//! per line, sorted, so that merges stay simple.

use std::collections::BTreeMap;
use std::fmt::Write;

use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};
use crate::layout;
use crate::policy::Format;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub format: Format,
    /// Lowercase hex SHA-256 of the file as written.
    pub sha256: String,
    /// Sorted recipient fingerprints (`age1…`, `SHA256:…` for SSH keys).
    pub recipients: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lock {
    pub entries: BTreeMap<String, Entry>,
}

const HEADER: &str = "\
# keys.lock: what each secret under secrets/ was last encrypted to. Written by keys.
# One secret per line: NAME FORMAT SHA-256 RECIPIENT,RECIPIENT,...
";

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl Lock {
    /// Parses the lock's text; errors name `secrets/keys.lock` and the line.
    pub fn parse(text: &str) -> Result<Lock> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let at = || Location::named(layout::LOCK).at_line(i as u64 + 1);
            let bad = |reason: &str| Error::InvalidFile {
                at: at(),
                reason: reason.to_string(),
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(' ');
            let (Some(name), Some(format), Some(sha), Some(recipients), None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                return Err(bad(
                    "expected NAME FORMAT SHA-256 RECIPIENTS separated by single spaces",
                ));
            };
            if let Err(reason) = layout::check_secret_name(name) {
                return Err(bad(&format!("invalid secret name: {reason}")));
            }
            let format = Format::from_name(format).ok_or_else(|| bad("unknown format"))?;
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("the hash is not 64 hex digits"));
            }
            let mut list = Vec::with_capacity(4);
            list.extend(recipients.split(',').map(str::to_string));
            let recipients = list;
            if recipients.iter().any(String::is_empty) {
                return Err(bad("an empty recipient"));
            }
            let entry = Entry {
                format,
                sha256: sha.to_ascii_lowercase(),
                recipients,
            };
            if entries.insert(name.to_string(), entry).is_some() {
                return Err(bad(&format!("{name} is listed twice")));
            }
        }
        Ok(Lock { entries })
    }

    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for (name, e) in &self.entries {
            let _ = writeln!(
                out,
                "{name} {} {} {}",
                e.format.name(),
                e.sha256,
                e.recipients.join(",")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_sorted_one_line_per_secret() {
        let mut lock = Lock::default();
        for name in ["z/last", "a/first"] {
            lock.entries.insert(
                name.into(),
                Entry {
                    format: Format::Age,
                    sha256: sha256_hex(name.as_bytes()),
                    recipients: vec!["SHA256:x".into(), "age1y".into()],
                },
            );
        }
        let text = lock.render();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("a/first age "));
        assert_eq!(Lock::parse(&text).unwrap(), lock);
    }

    #[test]
    fn errors_name_the_line() {
        let sha = "0".repeat(64);
        for (text, want) in [
            (format!("a age {sha}\n"), "secrets/keys.lock:1: expected"),
            (
                format!("# c\n../a age {sha} x\n"),
                "secrets/keys.lock:2: invalid secret name",
            ),
            (
                format!("a tar {sha} x\n"),
                "secrets/keys.lock:1: unknown format",
            ),
            ("a age abc x\n".to_string(), "secrets/keys.lock:1: the hash"),
            (
                format!("a age {sha} x,,y\n"),
                "secrets/keys.lock:1: an empty",
            ),
            (
                format!("a age {sha} x\na age {sha} x\n"),
                "secrets/keys.lock:2: a is listed twice",
            ),
        ] {
            let err = Lock::parse(&text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
