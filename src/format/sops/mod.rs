//! sops files: the stores (one per file format) parse into one document model,
//! `seal` encrypts and decrypts it as sops does, and this module ties the two
//! together for whole files.

pub mod binary;
pub mod cipher;
pub mod document;
pub mod dotenv;
pub mod flatten;
mod golang;
pub mod ini;
pub mod json;
pub mod metadata;
pub mod seal;
mod text;
pub mod yaml;

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::identity::{Identities, Prompt};
use crate::recipient::Recipient;

use crate::format::age::Stanzas;
use document::Store;
use metadata::Metadata;
pub use metadata::Options;
pub use seal::Opened;

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

/// Who a sops file's metadata says can open it, read without any key: each age
/// entry's recipient and the stanzas of its wrapped data key, and any other key
/// source (pgp, cloud KMS, key groups) that holds something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readers {
    /// Each `sops.age` entry: the recipient it names (empty when it names none) and
    /// the stanzas of its wrapped data key (`None` when it has none or it is not a
    /// valid age file).
    pub age: Vec<(String, Option<Stanzas>)>,
    /// The other key sources that hold something (`pgp`, `kms`, `key_groups`, …).
    pub foreign: Vec<String>,
}

impl Readers {
    /// The readers of a loaded document, from its metadata alone.
    pub fn of_document(doc: &document::EncryptedDocument) -> std::result::Result<Readers, String> {
        let metadata =
            Metadata::from_items(&doc.metadata).map_err(|r| format!("bad sops metadata: {r}"))?;
        Ok(Readers::of(&metadata))
    }

    fn of(metadata: &Metadata) -> Readers {
        Readers {
            age: metadata
                .age
                .iter()
                .map(|e| {
                    let stanzas = (!e.enc.is_empty())
                        .then(|| crate::format::age::header(e.enc.as_bytes()).ok())
                        .flatten();
                    (e.recipient.clone(), stanzas)
                })
                .collect(),
            foreign: metadata.foreign(),
        }
    }

    /// What differs between the file's readers and `recipients`, in counts (never a
    /// key); `None` when every recipient has exactly one entry whose wrapped key is
    /// for it alone, and there is nothing else.
    pub fn differs_from(&self, recipients: &[Recipient]) -> Option<String> {
        let want: Vec<String> = recipients.iter().map(Recipient::to_string).collect();
        let (mut unnamed, mut twice, mut unsound, mut wrapped) = (0, 0, 0, 0);
        let mut seen: Vec<usize> = Vec::new();
        for (name, stanzas) in &self.age {
            wrapped += stanzas.as_ref().map_or(0, Stanzas::len);
            let name = canonical(name);
            let Some(i) = want.iter().position(|w| *w == name) else {
                unnamed += 1;
                continue;
            };
            if seen.contains(&i) {
                twice += 1;
                continue;
            }
            seen.push(i);
            if stanzas
                .as_ref()
                .is_none_or(|s| s.differs_from(&recipients[i..=i]).is_some())
            {
                unsound += 1;
            }
        }
        let missing = want.len() - seen.len();
        let mut what: Vec<String> = [
            (unnamed, "for recipients the policy does not name"),
            (twice, "listed twice"),
            (missing, "missing"),
            (unsound, "whose wrapped key is not for its recipient alone"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
        if !self.foreign.is_empty() {
            what.push(format!("also {} entries", self.foreign.join(", ")));
        }
        if what.is_empty() {
            return None;
        }
        let n = self.age.len();
        Some(format!(
            "its sops metadata has {n} age entr{} holding {wrapped} wrapped key{} ({}); \
             the policy calls for {} recipient{}, one wrapped key each",
            if n == 1 { "y" } else { "ies" },
            if wrapped == 1 { "" } else { "s" },
            what.join(", "),
            want.len(),
            if want.len() == 1 { "" } else { "s" },
        ))
    }
}

/// A recipient as `keys` writes it (an SSH key without its comment), or the text as
/// it is when it is not a key.
fn canonical(name: &str) -> String {
    Recipient::parse_line(name, &Location::named("sops metadata"))
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// Whether a wrapped data key is for `recipient` alone: its one stanza is that
/// recipient's.
pub(crate) fn wrapped_for(enc: &str, recipient: &Recipient) -> bool {
    crate::format::age::header(enc.as_bytes())
        .is_ok_and(|s| s.differs_from(std::slice::from_ref(recipient)).is_none())
}

/// The readers of a sops file of `format`, from its metadata alone (its values are
/// not checked).
pub fn readers(format: Format, data: &[u8]) -> std::result::Result<Readers, String> {
    load(format, data).map(|(_, readers)| readers)
}

/// A sops file of `format` parsed (its values still encrypted), with its readers.
pub fn load(
    format: Format,
    data: &[u8],
) -> std::result::Result<(document::EncryptedDocument, Readers), String> {
    let store = store(format).ok_or("not a sops format")?;
    let doc = store
        .load_encrypted(data, "")
        .map_err(|e| e.to_string().trim_start_matches(": ").to_string())?;
    let readers = Readers::of_document(&doc)?;
    Ok((doc, readers))
}

/// Checks without any key that `data` is a sops file of `format` whose values are
/// encrypted as its options require, and returns its readers, parsing it once.
pub fn examine(format: Format, data: &[u8]) -> std::result::Result<Readers, String> {
    let store = store(format).ok_or("not a sops format")?;
    let doc = store
        .load_encrypted(data, "")
        .map_err(|e| e.to_string().trim_start_matches(": ").to_string())?;
    Ok(Readers::of(&seal::audit(&doc)?))
}

/// Checks without any key that `data` is a sops file of `format` whose values are
/// encrypted as its options require; returns the recipients its metadata names.
/// The reason never quotes the file.
pub fn inspect(format: Format, data: &[u8]) -> std::result::Result<Vec<String>, String> {
    if store(format).is_some() {
        return examine(format, data).map(|r| r.age.into_iter().map(|(name, _)| name).collect());
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
    use super::document::{Branches, Item, Value};
    use super::*;
    use proptest::prelude::*;

    fn x25519() -> Recipient {
        Recipient::X25519(::age::x25519::Identity::generate().to_public())
    }

    #[test]
    fn readers_count_every_way_a_file_can_hold_a_reader_the_policy_does_not_name() {
        let at = Location::named("t");
        let (admin, host, extra) = (x25519(), x25519(), x25519());
        let policy = [admin.clone(), host.clone()];
        let file = encrypt_file(
            Format::SopsYaml,
            b"a: b\n",
            &policy,
            Options::default(),
            None,
            &at,
        )
        .unwrap();
        let differs = |data: &[u8], want: &[Recipient]| {
            readers(Format::SopsYaml, data).unwrap().differs_from(want)
        };
        assert_eq!(differs(&file, &policy), None);
        assert_eq!(
            examine(Format::SopsYaml, &file).unwrap(),
            readers(Format::SopsYaml, &file).unwrap()
        );
        // The file rewritten with its metadata changed by `edit`.
        let edited = |edit: &dyn Fn(&mut Metadata)| {
            let store = store(Format::SopsYaml).unwrap();
            let mut doc = store.load_encrypted(&file, "t").unwrap();
            let mut m = Metadata::from_items(&doc.metadata).unwrap();
            edit(&mut m);
            doc.metadata = m.to_items();
            store.emit_encrypted(&doc).unwrap()
        };
        let wrapped_twice = String::from_utf8(
            crate::crypto::encrypt(&[7; 32], &[admin.clone(), extra.clone()], true, &at).unwrap(),
        )
        .unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                file.clone(),
                "2 age entries holding 2 wrapped keys (1 for recipients the policy does not name); the policy calls for 1 recipient",
            ),
            (
                edited(&|m| m.age[0].enc = wrapped_twice.clone()),
                "2 age entries holding 3 wrapped keys (1 whose wrapped key is not for its recipient alone)",
            ),
            (
                edited(&|m| {
                    let again = m.age[0].clone();
                    m.age.push(again);
                }),
                "3 age entries holding 3 wrapped keys (1 listed twice)",
            ),
            (
                edited(&|m| m.age[1].enc.clear()),
                "2 age entries holding 1 wrapped key (1 whose wrapped key is not for its recipient alone)",
            ),
            (
                edited(&|m| m.age[1].recipient.clear()),
                "(1 for recipients the policy does not name, 1 missing)",
            ),
            (
                edited(&|m| {
                    let fp = Item::Pair("fp".into(), Value::Str("0123".into()));
                    m.raw.push(Item::Pair(
                        "pgp".into(),
                        Value::List(vec![Value::Map(vec![fp])]),
                    ));
                }),
                "(also pgp entries)",
            ),
        ];
        for (i, (data, says)) in cases.iter().enumerate() {
            let want: &[Recipient] = if i == 0 { &policy[..1] } else { &policy };
            let what = differs(data, want).unwrap_or_else(|| panic!("case {i}: no drift"));
            assert!(what.contains(says), "case {i}: {what}");
        }
        // Empty key sources, as sops writes them, hold no reader.
        let empty_kms = edited(&|m| {
            m.raw
                .push(Item::Pair("kms".into(), Value::List(Vec::new())))
        });
        assert_eq!(differs(&empty_kms, &policy), None);
    }

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
