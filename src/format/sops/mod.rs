//! sops files: the stores (one per file format) parse into one document model,
//! `seal` encrypts and decrypts it as sops does, and this module ties the two
//! together for whole files.

pub mod binary;
pub mod cipher;
pub mod dotenv;
pub mod flatten;
pub mod ini;
pub mod json;
pub mod metadata;
pub mod seal;
mod text;
pub mod tree;
pub mod yaml;

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::identity::{Identities, Prompt};
use crate::policy::Format;
use crate::recipient::Recipient;

pub use metadata::Options;
pub use seal::Opened;
use tree::Store;

/// The store for a sops format.
pub fn store(format: Format) -> Option<&'static dyn Store> {
    match format {
        Format::SopsJson => Some(&json::JsonStore),
        Format::SopsDotenv => Some(&dotenv::DotenvStore),
        Format::SopsIni => Some(&ini::IniStore),
        Format::SopsBinary => Some(&binary::BinaryStore),
        Format::SopsYaml => Some(&yaml::YamlStore),
        Format::Age => None,
    }
}

/// The sops format of a file outside the repository, by extension as sops decides:
/// `.yaml`/`.yml`, `.json`, `.env`, `.ini`, anything else binary.
pub fn format_of_path(path: &std::path::Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Format::SopsYaml,
        Some("json") => Format::SopsJson,
        Some("env") => Format::SopsDotenv,
        Some("ini") => Format::SopsIni,
        _ => Format::SopsBinary,
    }
}

fn unsupported(format: Format, at: &Location) -> Error {
    Error::Corrupt {
        at: at.clone(),
        reason: format!("{} files are not supported by this build", format.name()),
    }
}

/// Decrypts a sops file to the bytes `sops decrypt` prints, and what re-encrypting
/// an edited version needs.
pub fn decrypt_file(
    format: Format,
    data: &[u8],
    identities: &mut Identities,
    prompt: &dyn Prompt,
    at: &Location,
    ignore_mac: bool,
) -> Result<(Zeroizing<Vec<u8>>, Opened)> {
    let store = store(format).ok_or_else(|| unsupported(format, at))?;
    let doc = store.load_encrypted(data, &at.file)?;
    let opened = seal::open(&doc, identities, prompt, at, ignore_mac)?;
    let plain = Zeroizing::new(store.emit_plain(&opened.plain.0)?);
    Ok((plain, opened))
}

/// Encrypts a plaintext document of `format` for `recipients`; with `previous`, the
/// data key and the ciphertext of unchanged values are kept.
pub fn encrypt_file(
    format: Format,
    plaintext: &[u8],
    recipients: &[Recipient],
    options: Options,
    previous: Option<&Opened>,
    at: &Location,
) -> Result<Vec<u8>> {
    let store = store(format).ok_or_else(|| unsupported(format, at))?;
    let plain = seal::Plain(store.load_plain(plaintext, &at.file)?);
    let doc = seal::seal(&plain.0, recipients, options, previous, at)?;
    store.emit_encrypted(&doc)
}

/// Checks without any key that `data` is a sops file of `format` whose values are
/// encrypted as its options require; returns the recipients its metadata names
/// (for drift against the policy). The reason never quotes the file.
pub fn inspect(format: Format, data: &[u8]) -> std::result::Result<Vec<String>, String> {
    if let Some(store) = store(format) {
        let doc = store
            .load_encrypted(data, "")
            .map_err(|e| e.to_string().trim_start_matches(": ").to_string())?;
        return seal::audit(&doc);
    }
    let has = |needle: &[u8]| memchr::memmem::find(data, needle).is_some();
    let metadata = match format {
        Format::SopsYaml => data.starts_with(b"sops:") || has(b"\nsops:"),
        Format::SopsJson | Format::SopsBinary => has(b"\"sops\""),
        Format::SopsDotenv => has(b"sops_version=") && has(b"sops_mac="),
        Format::SopsIni => has(b"[sops]"),
        Format::Age => return Err("not a sops format".into()),
    };
    if !metadata {
        return Err(format!(
            "not a {} file (no sops metadata): plaintext?",
            format.name()
        ));
    }
    if !has(b"ENC[AES256_GCM,") {
        return Err("sops metadata but no encrypted value: plaintext?".into());
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::tree::{Branches, Item, Value};
    use super::*;
    use proptest::prelude::*;

    /// Text with the characters each store quotes, escapes or splits on.
    const HOSTILE: &str = "[a-z0-9 \\\\\"'`#;:=\\[\\]{}\\-.,&*!|>%@\t\n]{0,12}|\\PC{0,8}";

    /// Parse → emit → parse is stable: whatever a store parses, it emits, and the
    /// emitted bytes parse to the same tree and emit to the same bytes. A generated
    /// tree the store cannot write is skipped; one it writes must parse.
    fn stable(format: Format, tree: Branches) -> std::result::Result<(), TestCaseError> {
        let store = store(format).unwrap();
        let Ok(text) = store.emit_plain(&tree) else {
            return Ok(());
        };
        let first = store.load_plain(&text, "p");
        prop_assert!(
            first.is_ok(),
            "{first:?}: {:?}",
            String::from_utf8_lossy(&text)
        );
        let first = first.unwrap();
        let again = store.emit_plain(&first).unwrap();
        let second = store.load_plain(&again, "p").unwrap();
        prop_assert_eq!(
            format!("{first:?}"),
            format!("{second:?}"),
            "{:?}",
            String::from_utf8_lossy(&again)
        );
        prop_assert_eq!(again, store.emit_plain(&second).unwrap());
        Ok(())
    }

    fn pairs(
        keys: impl Strategy<Value = String>,
        value: impl Strategy<Value = Value>,
        comment: impl Strategy<Value = String>,
        len: usize,
    ) -> impl Strategy<Value = Vec<Item>> {
        let item = prop_oneof![
            4 => (keys, value).prop_map(|(k, v)| Item::Pair(k, v)),
            1 => comment.prop_map(Item::Comment),
        ];
        prop::collection::vec(item, 0..len).prop_map(|items| {
            let mut seen = std::collections::HashSet::new();
            items
                .into_iter()
                .filter(|i| match i {
                    Item::Pair(k, _) => k != "sops" && seen.insert(k.clone()),
                    Item::Comment(_) => true,
                })
                .collect()
        })
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            HOSTILE.prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn nested() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                // No comments in lists: the YAML emitter misplaces one that follows a
                // nested collection, a tree no parsed file gives.
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
                pairs(HOSTILE, inner, "[a-z #]{0,8}", 4).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn yaml_parse_emit_parse_is_stable(top in pairs(HOSTILE, nested(), "[a-z #]{0,8}", 6)) {
            stable(Format::SopsYaml, vec![top])?;
        }

        #[test]
        fn json_parse_emit_parse_is_stable(top in pairs(HOSTILE, nested(), "[a-z]{0,8}", 6)) {
            stable(Format::SopsJson, vec![top])?;
        }

        #[test]
        fn dotenv_parse_emit_parse_is_stable(
            top in pairs("[A-Za-z_][^=\n]{0,10}", HOSTILE.prop_map(Value::Str), "[^\n]{0,10}", 8)
        ) {
            stable(Format::SopsDotenv, vec![top])?;
        }

        #[test]
        fn ini_parse_emit_parse_is_stable(
            sections in pairs(
                "[^\n\r\\]]{1,8}",
                pairs("[^\n\r]{1,10}", HOSTILE.prop_map(Value::Str), "[^\n]{0,10}", 5).prop_map(Value::Map),
                "[^\n]{0,10}",
                4,
            )
        ) {
            stable(Format::SopsIni, vec![sections])?;
        }
    }
}
