//! The sops dotenv store, as sops 3.11 reads and writes it: one `KEY=value` per
//! line, the value verbatim after the first `=` (quotes and spaces kept, `\n`
//! meaning a newline), `#` lines as comments, blank lines dropped, a repeated key
//! kept as often as it comes, a byte order mark kept as part of the first line, and
//! the metadata as `sops_`-prefixed flattened keys in sorted order at the end.

use std::collections::HashMap;

use super::document::{Branches, EncryptedDocument, Item, Store, Value};
use super::flatten::{flatten_metadata, unflatten_metadata};
use super::json::single_branch;
use super::text::{check_size, invalid, unemittable, val_to_string};
use crate::error::Result;

/// The prefix of the keys that hold sops metadata.
pub const METADATA_PREFIX: &str = "sops_";

/// The sops dotenv store.
#[derive(Debug, Clone, Copy, Default)]
pub struct DotenvStore;

/// The items of a dotenv file, each with its line, as sops's `LoadPlainFile`
/// reads them: every line on its own, so a repeated key is two items and a byte
/// order mark is the start of the first key. A value is bytes, as in Go: one that
/// is not UTF-8 is kept as it is; keys and comments must be UTF-8.
fn parse(data: &[u8], file: &str) -> Result<Vec<(u64, Item)>> {
    check_size(data, file)?;
    let mut items = Vec::new();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        let n = n as u64 + 1;
        let text = |bytes: &[u8], what: &str| {
            std::str::from_utf8(bytes).map(str::to_string).map_err(|_| {
                invalid(
                    file,
                    Some(n),
                    format!(
                        "invalid UTF-8 in a {what}; dotenv keys and comments must be UTF-8 text"
                    ),
                )
            })
        };
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix(b"#") {
            items.push((n, Item::Comment(text(comment, "comment")?)));
            continue;
        }
        let Some(eq) = memchr::memchr(b'=', line) else {
            return Err(invalid(file, Some(n), "expected KEY=VALUE or a # comment"));
        };
        let value = match String::from_utf8(unescape_newlines(&line[eq + 1..])) {
            Ok(value) => Value::Str(value),
            Err(e) => Value::Bytes(e.into_bytes()),
        };
        items.push((n, Item::Pair(text(&line[..eq], "key")?, value)));
    }
    Ok(items)
}

/// `value` with every `\n` (backslash, n) a newline.
fn unescape_newlines(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = memchr::memmem::find(rest, b"\\n") {
        out.extend_from_slice(&rest[..at]);
        out.push(b'\n');
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
    out
}

impl Store for DotenvStore {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<Branches> {
        let mut branch = Vec::new();
        for (line, item) in parse(data, file)? {
            if let Item::Pair(key, _) = &item
                && key.starts_with(METADATA_PREFIX)
            {
                return Err(invalid(
                    file,
                    Some(line),
                    format!(
                        "key {key} starts with {METADATA_PREFIX}, which is reserved for sops metadata: is this file already encrypted?"
                    ),
                ));
            }
            branch.push(item);
        }
        Ok(vec![branch])
    }

    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<EncryptedDocument> {
        let mut branch = Vec::new();
        let mut flat: Vec<(String, String)> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (_, item) in parse(data, file)? {
            match item {
                Item::Pair(key, Value::Str(value)) if key.starts_with(METADATA_PREFIX) => {
                    // sops gathers these in a map: a repeated key's last value wins.
                    let key = key[METADATA_PREFIX.len()..].to_string();
                    match seen.get(&key) {
                        Some(&at) => flat[at].1 = value,
                        None => {
                            seen.insert(key.clone(), flat.len());
                            flat.push((key, value));
                        }
                    }
                }
                item => branch.push(item),
            }
        }
        if flat.is_empty() {
            return Err(invalid(file, None, "not a sops file: no sops metadata"));
        }
        Ok(EncryptedDocument {
            branches: vec![branch],
            metadata: unflatten_metadata(flat, file)?,
        })
    }

    fn emit_plain(&self, branches: &Branches) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for item in single_branch(branches, "dotenv")? {
            match item {
                Item::Comment(text) => {
                    if text.contains('\n') {
                        return Err(unemittable("dotenv", "a dotenv comment cannot span lines"));
                    }
                    out.push(b'#');
                    out.extend_from_slice(text.as_bytes());
                }
                Item::Pair(key, value) => {
                    if key.contains(['=', '\n']) || key.starts_with('#') {
                        return Err(unemittable(
                            "dotenv",
                            format!(
                                "key {} cannot be written to a dotenv file ('=', newline or a leading '#')",
                                super::text::join_key("", key)
                            ),
                        ));
                    }
                    let Some(value) = val_to_string(value) else {
                        return Err(unemittable(
                            "dotenv",
                            format!(
                                "cannot use a map or list as a dotenv value; offending key {}",
                                super::text::join_key("", key)
                            ),
                        ));
                    };
                    out.extend_from_slice(key.as_bytes());
                    out.push(b'=');
                    for b in value {
                        if b == b'\n' {
                            out.extend_from_slice(b"\\n");
                        } else {
                            out.push(b);
                        }
                    }
                }
            }
            out.push(b'\n');
        }
        Ok(out)
    }

    fn emit_encrypted(&self, doc: &EncryptedDocument) -> Result<Vec<u8>> {
        let mut branch = single_branch(&doc.branches, "dotenv")?.to_vec();
        if branch
            .iter()
            .any(|i| i.key().is_some_and(|k| k.starts_with(METADATA_PREFIX)))
        {
            return Err(unemittable(
                "dotenv",
                format!("the document already has a key starting with {METADATA_PREFIX}"),
            ));
        }
        let mut flat = flatten_metadata(&doc.metadata)?;
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in flat {
            branch.push(Item::Pair(
                format!("{METADATA_PREFIX}{key}"),
                Value::Str(value),
            ));
        }
        self.emit_plain(&vec![branch])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const ENC: &[u8] = sops_vector!("app.enc.env");
    const PLAIN: &[u8] = sops_vector!("app.plain.env");

    fn pair(k: &str, v: &str) -> Item {
        Item::Pair(k.into(), Value::Str(v.into()))
    }

    #[test]
    fn vectors_round_trip_byte_for_byte() {
        let doc = DotenvStore.load_encrypted(ENC, "app.enc.env").unwrap();
        assert_eq!(DotenvStore.emit_encrypted(&doc).unwrap(), ENC);
        let tree = DotenvStore.load_plain(PLAIN, "app.plain.env").unwrap();
        assert_eq!(DotenvStore.emit_plain(&tree).unwrap(), PLAIN);
    }

    #[test]
    fn vector_values_are_verbatim() {
        let tree = DotenvStore.load_plain(PLAIN, "app.plain.env").unwrap();
        let want = vec![
            Item::Comment(" database settings".into()),
            pair("DB_HOST", "db.internal.example"),
            pair("DB_PORT", "5432"),
            pair("DB_PASSWORD", "p@ss=word#1"),
            pair("API_TOKEN", "tok_0123456789abcdef"),
            pair("EMPTY", ""),
            pair("MULTILINE", "first\nsecond"),
            pair("QUOTED", "\"kept with quotes\""),
        ];
        assert_eq!(tree, vec![want]);
    }

    #[test]
    fn metadata_is_unflattened() {
        let doc = DotenvStore.load_encrypted(ENC, "app.enc.env").unwrap();
        let keys: Vec<&str> = doc.metadata.iter().filter_map(Item::key).collect();
        assert_eq!(
            keys,
            [
                "age",
                "lastmodified",
                "mac",
                "unencrypted_suffix",
                "version"
            ]
        );
        let Item::Pair(_, Value::List(age)) = &doc.metadata[0] else {
            panic!("age is a list")
        };
        let Value::Map(key) = &age[0] else {
            panic!("age[0] is a map")
        };
        let Item::Pair(k, Value::Str(enc)) = &key[0] else {
            panic!("enc")
        };
        assert_eq!(k, "enc");
        assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(matches!(&key[1], Item::Pair(k, _) if k == "recipient"));
    }

    #[test]
    fn loads_lines() {
        let table: &[(&str, Vec<Item>)] = &[
            ("", vec![]),
            ("\n\n", vec![]),
            ("A=1", vec![pair("A", "1")]),
            ("A = 1 \n", vec![pair("A ", " 1 ")]),
            ("A==\r\n", vec![pair("A", "=\r")]),
            ("=x\n", vec![pair("", "x")]),
            (
                "#c\n #x=1\n",
                vec![Item::Comment("c".into()), pair(" #x", "1")],
            ),
            ("A=a\\\\nb\n", vec![pair("A", "a\\\nb")]),
        ];
        for (input, want) in table {
            let got = DotenvStore.load_plain(input.as_bytes(), "f.env").unwrap();
            assert_eq!(&got[0], want, "{input:?}");
        }
    }

    #[test]
    fn emits_other_scalars_as_sops_does() {
        let tree = vec![vec![
            Item::Pair("F".into(), Value::Float(8080.0)),
            Item::Pair("I".into(), Value::Int(3)),
            Item::Pair("B".into(), Value::Bool(false)),
            Item::Pair("X".into(), Value::Bytes(b"\xff\n".to_vec())),
        ]];
        assert_eq!(
            DotenvStore.emit_plain(&tree).unwrap(),
            b"F=8080.0\nI=3\nB=false\nX=\xff\\n\n"
        );
        let nested = vec![vec![Item::Pair("M".into(), Value::Map(vec![]))]];
        let e = DotenvStore.emit_plain(&nested).unwrap_err().to_string();
        assert!(e.contains("offending key M"), "{e}");
    }

    #[test]
    fn repeated_keys_and_a_byte_order_mark_are_kept_as_sops_keeps_them() {
        let input = b"\xEF\xBB\xBFA=1\nB=2\nA=3\n";
        let tree = DotenvStore.load_plain(input, "f.env").unwrap();
        assert_eq!(
            tree[0],
            vec![
                Item::Pair("\u{feff}A".into(), Value::Str("1".into())),
                Item::Pair("B".into(), Value::Str("2".into())),
                Item::Pair("A".into(), Value::Str("3".into())),
            ]
        );
        assert_eq!(DotenvStore.emit_plain(&tree).unwrap(), input);
    }

    /// sops's values are Go strings, bytes of any kind: one that is not UTF-8 is
    /// read, encrypted and written back as it is.
    #[test]
    fn values_that_are_not_utf8_are_kept_as_bytes() {
        let input = b"A=\xe9t\xe9\\n\xff\nB=x\n";
        let tree = DotenvStore.load_plain(input, "f.env").unwrap();
        assert_eq!(
            tree[0],
            vec![
                Item::Pair("A".into(), Value::Bytes(b"\xe9t\xe9\n\xff".to_vec())),
                Item::Pair("B".into(), Value::Str("x".into())),
            ]
        );
        assert_eq!(DotenvStore.emit_plain(&tree).unwrap(), input);
    }

    #[test]
    fn hostile_input_is_refused_without_quoting_it() {
        let table: &[(&[u8], &str)] = &[
            (b"A=1\nhunter2\n", "f.env:2: expected KEY=VALUE"),
            (b"A=1\n\xffB=hunter2\n", "f.env:2: invalid UTF-8 in a key"),
            (b"#\xff\nB=hunter2\n", "f.env:1: invalid UTF-8 in a comment"),
            (
                b"sops_mac=hunter2\n",
                "f.env:1: key sops_mac starts with sops_",
            ),
        ];
        for (input, want) in table {
            let e = DotenvStore
                .load_plain(input, "f.env")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = DotenvStore
            .load_encrypted(b"A=1\n", "f.env")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "f.env: not a sops file: no sops metadata");
    }

    fn item() -> impl Strategy<Value = (String, Item)> {
        prop_oneof![
            "[^\n]{0,12}".prop_map(|c| (String::new(), Item::Comment(c))),
            ("[A-Za-z_][A-Za-z0-9_]{0,8}", "[^\\\\]{0,16}")
                .prop_map(|(k, v)| (k.clone(), Item::Pair(k, Value::Str(v)))),
        ]
    }

    proptest! {
        #[test]
        fn emit_then_load_is_identity(items in prop::collection::vec(item(), 0..8)) {
            let mut seen = HashSet::new();
            let branch: Vec<Item> = items
                .into_iter()
                .filter(|(k, _)| k.is_empty() || (!k.starts_with(METADATA_PREFIX) && seen.insert(k.clone())))
                .map(|(_, i)| i)
                .collect();
            let tree = vec![branch];
            let bytes = DotenvStore.emit_plain(&tree).unwrap();
            prop_assert_eq!(DotenvStore.load_plain(&bytes, "p").unwrap(), tree);
        }
    }
}
