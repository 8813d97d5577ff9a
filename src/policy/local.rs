//! A host's local secrets, `recipients/local/HOST.yaml`: what `keys remote set` wrote
//! on the host as root-only files (name, path, when, by whom) and a digest of each,
//! keyed with a random key that only the host holds. No value is ever recorded: the
//! secret lives on the host alone. Read with serde, written whole by keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::{Error, Location, Result};
use crate::layout;

/// Where the record files are.
pub const DIR: &str = "recipients/local";
/// Where a host keeps its local secrets unless its record says `root:`.
pub const DEFAULT_ROOT: &str = "/var/lib/keys/local";
/// The file, in the root, holding the host's digest key.
pub const DIGEST_KEY: &str = ".keys-digest-key";

/// The longest path a record may name.
const MAX_PATH: usize = 1024;

/// The record of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub host: String,
    /// The directory the host's local secrets live under, when the record sets one.
    pub root: Option<String>,
    pub secrets: BTreeMap<String, Entry>,
}

/// One local secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its file on the host, under the root.
    pub path: String,
    /// When it was last set (RFC 3339, UTC).
    pub set: String,
    /// Who set it (the git author, else the login name).
    pub by: String,
    /// SHA-256 of the host's digest key followed by the value, as the host computed
    /// it: it shows a change, and without the host's key it tests no guess.
    pub digest: String,
}

/// The record file of `host`, relative to the repository root.
pub fn rel(host: &str) -> String {
    format!("{DIR}/{host}.yaml")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    root: Option<Spanned<String>>,
    #[serde(default)]
    secrets: BTreeMap<String, FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    path: Spanned<String>,
    set: Spanned<String>,
    by: Spanned<String>,
    digest: Spanned<String>,
}

#[derive(Serialize)]
struct Written<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<&'a str>,
    secrets: BTreeMap<&'a str, WrittenEntry<'a>>,
}

#[derive(Serialize)]
struct WrittenEntry<'a> {
    path: &'a str,
    set: serde_saphyr::DoubleQuoted<&'a str>,
    by: serde_saphyr::DoubleQuoted<&'a str>,
    digest: &'a str,
}

const HEAD: &str = "\
# Secrets kept only on this host, as root-only files (`keys remote set`); no value is
# recorded here. `digest` is SHA-256 of a random key only the host holds followed by
# the value: `keys remote ls` compares it with the host's files. keys rewrites this file.
";

/// Why `name` cannot name a local secret: one segment of a secret name (no '/', no
/// leading '.' or '-', no control character).
pub fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.contains('/') {
        return Err(
            "contains '/'; a local secret's name is one segment (give --path for a subdirectory)",
        );
    }
    layout::check_reader_name(name)
}

/// Why `path` is not a plain absolute path on a host: '/' and then segments of
/// letters, digits, '.', '_', '-', '+' and '@', none empty, `.` or `..`.
fn plain_path(path: &str) -> std::result::Result<(), &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("is not an absolute path");
    };
    if path.len() > MAX_PATH {
        return Err("is longer than 1024 bytes");
    }
    if rest.is_empty() {
        return Err("is '/'");
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
    {
        return Err("may hold only letters, digits, '/', '.', '_', '-', '+' and '@'");
    }
    for segment in rest.split('/') {
        match segment {
            "" => return Err("has an empty segment ('//' or a trailing '/')"),
            "." | ".." => return Err("has a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a local root.
pub fn check_root(root: &str) -> std::result::Result<(), &'static str> {
    plain_path(root)
}

/// Why `path` may not hold a local secret under `root`: it must be below it, each
/// segment after the root a name (`check_name`).
pub fn check_path(root: &str, path: &str) -> std::result::Result<(), &'static str> {
    plain_path(path)?;
    let Some(rel) = path
        .strip_prefix(root)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| !r.is_empty())
    else {
        return Err("is not under the host's local root");
    };
    for segment in rel.split('/') {
        if layout::check_reader_name(segment).is_err() {
            return Err(
                "has a segment below the root that is not a name (letters, digits, '.', '_', '-', '+', '@'; not starting with '.' or '-')",
            );
        }
    }
    Ok(())
}

impl Record {
    /// An empty record for `host`.
    pub fn new(host: &str) -> Record {
        Record {
            host: host.to_string(),
            root: None,
            secrets: BTreeMap::new(),
        }
    }

    /// The directory the host's local secrets live under.
    pub fn root(&self) -> &str {
        self.root.as_deref().unwrap_or(DEFAULT_ROOT)
    }

    /// Reads a record; `file` names it in errors, with the line.
    pub fn parse(host: &str, text: &str, file: &str) -> Result<Record> {
        let raw: File = serde_saphyr::from_str(text).map_err(|e| super::yaml_error(file, &e))?;
        let invalid = |value: &Spanned<String>, reason: String| Error::InvalidFile {
            at: Location::named(file).at_line(value.referenced.line()),
            reason,
        };
        if let Some(root) = &raw.root
            && let Err(why) = check_root(&root.value)
        {
            return Err(invalid(root, format!("root {:?} {why}", root.value)));
        }
        let root = raw
            .root
            .as_ref()
            .map_or(DEFAULT_ROOT, |r| r.value.as_str())
            .to_string();
        let mut secrets = BTreeMap::new();
        let mut paths: BTreeMap<String, String> = BTreeMap::new();
        for (name, e) in raw.secrets {
            if let Err(why) = check_name(&name) {
                return Err(invalid(&e.path, format!("secret name {name:?}: {why}")));
            }
            if let Err(why) = check_path(&root, &e.path.value) {
                return Err(invalid(
                    &e.path,
                    format!("{name}: path {:?} {why} ({root})", e.path.value),
                ));
            }
            if let Some(other) = paths.insert(e.path.value.clone(), name.clone()) {
                return Err(invalid(
                    &e.path,
                    format!("{name}: path {:?} is also {other}'s", e.path.value),
                ));
            }
            if e.digest.value.len() != 64
                || !e
                    .digest
                    .value
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err(invalid(
                    &e.digest,
                    format!("{name}: digest is not 64 lowercase hex digits"),
                ));
            }
            for (field, v) in [("set", &e.set), ("by", &e.by)] {
                if v.value.chars().any(char::is_control) {
                    return Err(invalid(
                        v,
                        format!("{name}: {field} holds a control character"),
                    ));
                }
            }
            secrets.insert(
                name,
                Entry {
                    path: e.path.value,
                    set: e.set.value,
                    by: e.by.value,
                    digest: e.digest.value,
                },
            );
        }
        Ok(Record {
            host: host.to_string(),
            root: raw.root.map(|r| r.value),
            secrets,
        })
    }

    /// The record's text, checked to read back as the same record.
    pub fn render(&self) -> Result<String> {
        let file = rel(&self.host);
        let written = Written {
            root: self.root.as_deref(),
            secrets: self
                .secrets
                .iter()
                .map(|(name, e)| {
                    (
                        name.as_str(),
                        WrittenEntry {
                            path: &e.path,
                            set: serde_saphyr::DoubleQuoted(&e.set),
                            by: serde_saphyr::DoubleQuoted(&e.by),
                            digest: &e.digest,
                        },
                    )
                })
                .collect(),
        };
        let options = serde_saphyr::ser_options! {
            prefer_block_scalars: false,
            yaml_12: true,
            no_lang_directive: true,
        };
        let body = serde_saphyr::to_string_with_options(&written, options).map_err(|e| {
            Error::InvalidFile {
                at: Location::named(&file),
                reason: format!("cannot write it: {e}"),
            }
        })?;
        let text = format!("{HEAD}{body}");
        if Record::parse(&self.host, &text, &file)? != *self {
            return Err(Error::InvalidFile {
                at: Location::named(&file),
                reason: "the record would not read back as written".into(),
            });
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn names_and_paths_stay_under_the_root() {
        for ok in ["telegram-token", "a.b", "x+y@z"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..", ".hidden", "-x", "a\nb", "a b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let root = DEFAULT_ROOT;
        for ok in ["/var/lib/keys/local/x", "/var/lib/keys/local/bot/token"] {
            assert!(check_path(root, ok).is_ok(), "{ok}");
        }
        for bad in [
            "/var/lib/keys/local",
            "/var/lib/keys/local/",
            "/var/lib/keys/localx",
            "/var/lib/keys/local/../x",
            "/var/lib/keys/local/./x",
            "/var/lib/keys/local/.x",
            "/var/lib/keys/local/a//b",
            "/etc/shadow",
            "var/lib/keys/local/x",
            "/var/lib/keys/local/a\nb",
            "/var/lib/keys/local/$(x)",
        ] {
            assert!(check_path(root, bad).is_err(), "{bad:?}");
        }
        for bad in ["/", "relative", "/a/../b", "/a b"] {
            assert!(check_root(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_errors_name_the_line() {
        let mut record = Record::new("srv");
        record.secrets.insert(
            "token".into(),
            Entry {
                path: format!("{DEFAULT_ROOT}/token"),
                set: "2025-01-02T03:04:05Z".into(),
                by: "O'Brien \"ob\" <ob@example.org>: yes".into(),
                digest: DIGEST.into(),
            },
        );
        let text = record.render().unwrap();
        assert_eq!(Record::parse("srv", &text, "f").unwrap(), record);
        let bad = [
            ("root: /\n", "f:1: root \"/\" is '/'"),
            (
                "secrets:\n  x:\n    path: /etc/x\n    set: a\n    by: b\n    digest: 00\n",
                "f:3: x: path \"/etc/x\" is not under",
            ),
            (
                &format!(
                    "secrets:\n  x:\n    path: {DEFAULT_ROOT}/x\n    set: a\n    by: b\n    digest: 00\n"
                ),
                "f:6: x: digest",
            ),
            ("other: 1\n", "f:1:"),
        ];
        for (text, want) in bad {
            let err = Record::parse("srv", text, "f").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
