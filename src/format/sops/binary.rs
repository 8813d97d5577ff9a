//! The sops binary store: a file of any bytes is one value under the key `data`,
//! and the encrypted file is a sops JSON document. Plaintext that is UTF-8 is a
//! `Str`, anything else `Bytes` (sops encrypts both as `type:str`).

use super::document::{Branches, EncryptedDocument, Item, Store, Value};
use super::json::{JsonStore, single_branch};
use super::text::{check_size, unemittable};
use crate::error::Result;

/// The one key of a binary store's document.
pub const DATA_KEY: &str = "data";

/// The sops binary store.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinaryStore;

impl Store for BinaryStore {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<Branches> {
        check_size(data, file)?;
        let value = match std::str::from_utf8(data) {
            Ok(text) => Value::Str(text.to_string()),
            Err(_) => Value::Bytes(data.to_vec()),
        };
        Ok(vec![vec![Item::Pair(DATA_KEY.into(), value)]])
    }

    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<EncryptedDocument> {
        JsonStore.load_encrypted(data, file)
    }

    fn emit_plain(&self, branches: &Branches) -> Result<Vec<u8>> {
        for item in single_branch(branches, "binary")? {
            match item {
                Item::Pair(key, Value::Str(s)) if key == DATA_KEY => {
                    return Ok(s.as_bytes().to_vec());
                }
                Item::Pair(key, Value::Bytes(b)) if key == DATA_KEY => return Ok(b.clone()),
                Item::Pair(key, _) if key == DATA_KEY => {
                    return Err(unemittable(
                        "binary",
                        "the `data` key does not hold a string",
                    ));
                }
                _ => {}
            }
        }
        Err(unemittable("binary", "no `data` key: nothing to write"))
    }

    fn emit_encrypted(&self, doc: &EncryptedDocument) -> Result<Vec<u8>> {
        JsonStore.emit_encrypted(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENC: &[u8] = sops_vector!("blob.enc.bin");
    const PLAIN: &[u8] = sops_vector!("blob.plain.bin");

    #[test]
    fn vectors_round_trip_byte_for_byte() {
        let doc = BinaryStore.load_encrypted(ENC, "blob.enc.bin").unwrap();
        assert_eq!(BinaryStore.emit_encrypted(&doc).unwrap(), ENC);
        assert!(
            matches!(&doc.branches[0][0], Item::Pair(k, Value::Str(v)) if k == "data" && v.starts_with("ENC[AES256_GCM,"))
        );
        let tree = BinaryStore.load_plain(PLAIN, "blob.plain.bin").unwrap();
        assert!(matches!(&tree[0][0], Item::Pair(_, Value::Bytes(_))));
        assert_eq!(BinaryStore.emit_plain(&tree).unwrap(), PLAIN);
    }

    #[test]
    fn plain_is_one_value() {
        let table: &[(&[u8], Value)] = &[
            (b"", Value::Str(String::new())),
            (b"text\n", Value::Str("text\n".into())),
            (b"\xEF\xBB\xBFbom", Value::Str("\u{feff}bom".into())),
            (b"\x00\xff", Value::Bytes(vec![0, 0xff])),
        ];
        for (input, want) in table {
            let tree = BinaryStore.load_plain(input, "f").unwrap();
            assert_eq!(tree, vec![vec![Item::Pair("data".into(), want.clone())]]);
            assert_eq!(BinaryStore.emit_plain(&tree).unwrap(), *input);
        }
    }

    #[test]
    fn refuses_what_it_cannot_write() {
        let table: &[(Branches, &str)] = &[
            (vec![vec![]], "no `data` key"),
            (
                vec![vec![Item::Pair("data".into(), Value::Int(1))]],
                "does not hold a string",
            ),
            (vec![], "exactly one document"),
        ];
        for (tree, want) in table {
            let e = BinaryStore.emit_plain(tree).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let big = vec![0u8; super::super::text::MAX_INPUT + 1];
        assert!(BinaryStore.load_plain(&big, "f").is_err());
        let e = BinaryStore
            .load_encrypted(b"{\"data\": \"x\"}", "f")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "f: not a sops file: no sops metadata");
    }
}
