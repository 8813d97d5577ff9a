//! sops files as they are on disk, read without any key: the stores (one per file
//! format) parse into one document model, `audit` checks it against its options, and
//! `Readers` says who its metadata names. Encryption is `crypto::sops`.

/// A file the real sops wrote, from the shared vectors, for the stores' unit tests.
#[cfg(test)]
macro_rules! sops_vector {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/sops/",
            $name
        ))
    };
}

pub mod audit;
pub mod binary;
pub mod cipher;
pub mod config;
pub mod document;
pub mod dotenv;
pub mod flatten;
pub(crate) mod golang;
pub mod goregex;
pub mod ini;
pub mod json;
pub mod metadata;
mod text;
pub mod yaml;

use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::recipient::{Recipient, TRANSIT_PREFIX};

use crate::format::age::Stanzas;
use document::Store;
pub use metadata::Options;
use metadata::{Metadata, Shamir};
pub use text::MAX_INPUT;
pub(crate) use text::val_to_string;

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

/// The store for a sops format writing with sops's `stores.<format>.indent` setting
/// (`yaml`, `json`, and `json_binary` for a binary file's JSON): `None` is sops's
/// default, four spaces in YAML and a tab in JSON.
pub fn indented_store(format: Format, indent: Option<u8>) -> Option<Box<dyn Store>> {
    Some(match (format, indent) {
        (Format::SopsYaml, _) => Box::new(yaml::IndentedYamlStore(indent)),
        (Format::SopsJson | Format::SopsBinary, Some(spaces)) => Box::new(IndentedJson {
            store: store(format)?,
            spaces,
            plain_too: format == Format::SopsJson,
        }),
        _ => Box::new(AsIs(store(format)?)),
    })
}

/// A store as it is.
struct AsIs(&'static dyn Store);

impl Store for AsIs {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<document::Branches> {
        self.0.load_plain(data, file)
    }
    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<document::EncryptedDocument> {
        self.0.load_encrypted(data, file)
    }
    fn emit_plain(&self, branches: &document::Branches) -> Result<Vec<u8>> {
        self.0.emit_plain(branches)
    }
    fn emit_encrypted(&self, doc: &document::EncryptedDocument) -> Result<Vec<u8>> {
        self.0.emit_encrypted(doc)
    }
    fn emit_value(&self, value: &document::Value) -> Result<Vec<u8>> {
        self.0.emit_value(value)
    }
}

/// A JSON store re-indented as sops does it (Go's `json.Indent` with that many
/// spaces): the tabs that start each line become spaces. A tab elsewhere in JSON is
/// escaped inside a string, so only indentation starts a line with one.
struct IndentedJson {
    store: &'static dyn Store,
    spaces: u8,
    /// The binary store's plaintext is the data itself, not JSON.
    plain_too: bool,
}

impl IndentedJson {
    fn reindent(&self, json: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(json.len() + json.len() / 2);
        for line in json.split_inclusive(|b| *b == b'\n') {
            let tabs = line.iter().take_while(|b| **b == b'\t').count();
            out.resize(out.len() + tabs * usize::from(self.spaces), b' ');
            out.extend_from_slice(&line[tabs..]);
        }
        out
    }
}

impl Store for IndentedJson {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<document::Branches> {
        self.store.load_plain(data, file)
    }
    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<document::EncryptedDocument> {
        self.store.load_encrypted(data, file)
    }
    fn emit_plain(&self, branches: &document::Branches) -> Result<Vec<u8>> {
        let out = zeroize::Zeroizing::new(self.store.emit_plain(branches)?);
        Ok(if self.plain_too {
            self.reindent(&out)
        } else {
            out.to_vec()
        })
    }
    fn emit_encrypted(&self, doc: &document::EncryptedDocument) -> Result<Vec<u8>> {
        Ok(self.reindent(&self.store.emit_encrypted(doc)?))
    }
    fn emit_value(&self, value: &document::Value) -> Result<Vec<u8>> {
        let out = zeroize::Zeroizing::new(self.store.emit_value(value)?);
        Ok(self.reindent(&out))
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

/// The store for a sops format, or an error naming the file when this build has none.
pub fn require_store(format: Format, at: &Location) -> Result<&'static dyn Store> {
    store(format).ok_or_else(|| Error::Corrupt {
        at: at.clone(),
        reason: format!("{} files are not supported by this build", format.name()),
    })
}

/// `indented_store`, or an error naming the file when this build has no such store.
pub fn require_indented_store(
    format: Format,
    indent: Option<u8>,
    at: &Location,
) -> Result<Box<dyn Store>> {
    require_store(format, at)?;
    indented_store(format, indent).ok_or_else(|| Error::Bug {
        what: format!("no store for {}", format.name()),
    })
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
    /// The key groups, when they open the file (as `age`, one list per group), and
    /// how many of them do.
    pub groups: Vec<Vec<(String, Option<Stanzas>)>>,
    pub threshold: usize,
    /// Each top-level `hc_vault` entry: its transit key's URL, and whether it holds
    /// a wrapped data key.
    pub transit: Vec<(String, bool)>,
    /// The other key sources that hold something (`pgp`, `kms`, `key_groups` sops
    /// passes over, a key group's own, …).
    pub foreign: Vec<String>,
}

/// Each age entry's recipient and the stanzas of its wrapped data key.
fn entries(age: &[metadata::AgeEntry], known: &Headers) -> Vec<(String, Option<Stanzas>)> {
    age.iter()
        .map(|e| {
            let stanzas = (!e.enc.is_empty()).then(|| known.header(&e.enc)).flatten();
            (e.recipient.clone(), stanzas)
        })
        .collect()
}

/// How `entries` differ from one wrapped key for each of `recipients`, as counts
/// (empty when they match), and how many wrapped keys they hold.
fn tally(entries: &[(String, Option<Stanzas>)], recipients: &[Recipient]) -> (Vec<String>, usize) {
    let want: Vec<String> = recipients.iter().map(Recipient::to_string).collect();
    let (mut unnamed, mut twice, mut unsound, mut wrapped) = (0, 0, 0, 0);
    let mut seen: Vec<usize> = Vec::new();
    for (name, stanzas) in entries {
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
    let what = [
        (unnamed, "for recipients the policy does not name"),
        (twice, "listed twice"),
        (missing, "missing"),
        (unsound, "whose wrapped key is not for its recipient alone"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect();
    (what, wrapped)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Readers {
    /// The readers of a loaded document, from its metadata alone.
    pub fn of_document(doc: &document::EncryptedDocument) -> std::result::Result<Readers, String> {
        Ok(Readers::of(&metadata_of(doc)?))
    }

    /// The readers `metadata` names.
    pub fn of(metadata: &Metadata) -> Readers {
        Readers::of_known(metadata, &Headers::default())
    }

    /// The readers `metadata` names, where a wrapped key byte for byte one of
    /// `known` has that one's stanzas (its header is not read again).
    pub fn of_known(metadata: &Metadata, known: &Headers) -> Readers {
        let mut foreign = metadata.foreign();
        let mut groups = Vec::new();
        if metadata.uses_groups() {
            for (i, g) in metadata.key_groups.iter().enumerate() {
                foreign.extend(g.foreign.iter().map(|f| format!("key group {} {f}", i + 1)));
                groups.push(entries(&g.age, known));
            }
        }
        Readers {
            age: entries(&metadata.age, known),
            groups,
            threshold: if metadata.uses_groups() {
                metadata.shamir_threshold
            } else {
                0
            },
            transit: metadata
                .hc_vault
                .iter()
                .map(|e| (e.url(), !e.enc.is_empty()))
                .collect(),
            foreign,
        }
    }

    /// Every recipient the metadata names, in the groups too, and its transit keys
    /// (`transit:URL`).
    pub fn names(&self) -> Vec<String> {
        self.age
            .iter()
            .chain(self.groups.iter().flatten())
            .map(|(name, _)| name.clone())
            .chain(
                self.transit
                    .iter()
                    .map(|(url, _)| format!("{TRANSIT_PREFIX}{url}")),
            )
            .collect()
    }

    /// What differs between the file's readers and `recipients` (or the key
    /// groups of `shamir`), in counts (never a key); `None` when every recipient
    /// has exactly one entry whose wrapped key is for it alone (in its group), and
    /// there is nothing else.
    pub fn differs_from(
        &self,
        recipients: &[Recipient],
        shamir: Option<&Shamir>,
    ) -> Option<String> {
        let (recipients, transit) = split_transit(recipients);
        let recipients = recipients.as_slice();
        let mut foreign = transit_tally(&self.transit, &transit);
        if !self.foreign.is_empty() {
            foreign.push(format!("also {} entries", self.foreign.join(", ")));
        }
        let Some(shamir) = shamir else {
            if !self.groups.is_empty() {
                return Some(format!(
                    "its sops metadata has {} (Shamir threshold {}); the policy calls for {}, one wrapped key each",
                    plural(self.groups.len(), "key group", "key groups"),
                    self.threshold,
                    plural(recipients.len(), "recipient", "recipients"),
                ));
            }
            let (mut what, wrapped) = tally(&self.age, recipients);
            what.extend(foreign);
            if what.is_empty() {
                return None;
            }
            let n = self.age.len();
            let calls = if transit.is_empty() {
                plural(recipients.len(), "recipient", "recipients")
            } else {
                format!(
                    "{} and {}",
                    plural(recipients.len(), "age recipient", "age recipients"),
                    plural(transit.len(), "transit key", "transit keys")
                )
            };
            return Some(format!(
                "its sops metadata has {n} age entr{}{} holding {} ({}); \
                 the policy calls for {calls}, one wrapped key each",
                if n == 1 { "y" } else { "ies" },
                if self.transit.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and {}",
                        plural(self.transit.len(), "hc_vault entry", "hc_vault entries")
                    )
                },
                plural(wrapped, "wrapped key", "wrapped keys"),
                what.join(", "),
            ));
        };
        let calls = format!(
            "the policy calls for {} (Shamir threshold {})",
            plural(shamir.groups.len(), "key group", "key groups"),
            shamir.threshold
        );
        if self.groups.is_empty() {
            return Some(format!(
                "its sops metadata has {} and no key groups; {calls}",
                plural(self.age.len(), "age entry", "age entries"),
            ));
        }
        let mut what = Vec::new();
        if self.groups.len() != shamir.groups.len() || self.threshold != shamir.threshold {
            what.push(format!(
                "{} (Shamir threshold {})",
                plural(self.groups.len(), "key group", "key groups"),
                self.threshold
            ));
        } else {
            for (i, (have, want)) in self.groups.iter().zip(&shamir.groups).enumerate() {
                let (differs, _) = tally(have, want);
                if !differs.is_empty() {
                    what.push(format!(
                        "key group {} has {} ({})",
                        i + 1,
                        plural(have.len(), "age entry", "age entries"),
                        differs.join(", ")
                    ));
                }
            }
        }
        what.extend(foreign);
        if what.is_empty() {
            return None;
        }
        Some(format!(
            "its sops metadata differs: {}; {calls}, one wrapped share per recipient",
            what.join("; ")
        ))
    }
}

/// The age recipients among `recipients`, and the URLs of the transit keys.
fn split_transit(recipients: &[Recipient]) -> (Vec<Recipient>, Vec<String>) {
    let mut age = Vec::new();
    let mut transit = Vec::new();
    for r in recipients {
        match r {
            Recipient::Transit(t) => transit.push(t.url()),
            other => age.push(other.clone()),
        }
    }
    (age, transit)
}

/// How a file's `hc_vault` entries differ from one for each transit key the policy
/// names, as counts (empty when they match).
fn transit_tally(entries: &[(String, bool)], want: &[String]) -> Vec<String> {
    let (mut unnamed, mut twice, mut empty) = (0, 0, 0);
    let mut seen: Vec<&String> = Vec::new();
    for (url, wrapped) in entries {
        match want.iter().find(|w| *w == url) {
            None => unnamed += 1,
            Some(w) if seen.contains(&w) => twice += 1,
            Some(w) => {
                seen.push(w);
                if !wrapped {
                    empty += 1;
                }
            }
        }
    }
    let missing = want.len() - seen.len();
    [
        (
            unnamed,
            "hc_vault entry for a transit key the policy does not name",
            "hc_vault entries for transit keys the policy does not name",
        ),
        (
            twice,
            "hc_vault entry listed twice",
            "hc_vault entries listed twice",
        ),
        (missing, "transit key missing", "transit keys missing"),
        (
            empty,
            "hc_vault entry without a wrapped key",
            "hc_vault entries without a wrapped key",
        ),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| plural(n, one, many))
    .collect()
}

/// A recipient as `keys` writes it (an SSH key without its comment), or the text as
/// it is when it is not a key.
fn canonical(name: &str) -> String {
    // An `age1…` name in lower case without spaces is its own canonical form when it
    // parses (bech32 writes one string for one key), and is kept as it is when not.
    let plain = |b: u8| !b.is_ascii_uppercase() && !b.is_ascii_whitespace();
    if name.starts_with("age1") && name.bytes().all(plain) {
        return name.to_string();
    }
    Recipient::parse_line(name, &Location::named("sops metadata"))
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// Whether a wrapped data key is for `recipient` alone: its one stanza is that
/// recipient's.
pub(crate) fn wrapped_for(enc: &str, recipient: &Recipient, known: &mut Headers) -> bool {
    known
        .read(enc)
        .is_some_and(|s| s.differs_from(std::slice::from_ref(recipient)).is_none())
}

/// The stanzas of wrapped keys whose headers were read, by their armored bytes: a
/// rekey reads a kept key's header when it keeps it, and its proof reads the same
/// bytes as written.
#[derive(Default)]
pub struct Headers(Vec<(String, Option<Stanzas>)>);

impl Headers {
    /// The stanzas of the wrapped key `enc` (`None`: its header does not parse),
    /// read once and remembered.
    pub fn read(&mut self, enc: &str) -> Option<&Stanzas> {
        let i = self.position(enc).unwrap_or_else(|| {
            self.0.push((enc.to_string(), parse_header(enc)));
            self.0.len() - 1
        });
        self.0[i].1.as_ref()
    }

    /// The stanzas of `enc`, from memory when it was read, else read now.
    fn header(&self, enc: &str) -> Option<Stanzas> {
        match self.position(enc) {
            Some(i) => self.0[i].1.clone(),
            None => parse_header(enc),
        }
    }

    fn position(&self, enc: &str) -> Option<usize> {
        self.0.iter().position(|(e, _)| e == enc)
    }
}

fn parse_header(enc: &str) -> Option<Stanzas> {
    crate::format::age::header(enc.as_bytes()).ok()
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
    let doc = parsed(format, data)?;
    let readers = Readers::of_document(&doc)?;
    Ok((doc, readers))
}

/// `data` parsed as a sops file of `format`, its values still encrypted; the reason
/// never quotes the file.
fn parsed(format: Format, data: &[u8]) -> std::result::Result<document::EncryptedDocument, String> {
    store(format)
        .ok_or("not a sops format")?
        .load_encrypted(data, "")
        .map_err(|e| e.to_string().trim_start_matches(": ").to_string())
}

/// Checks that `data` is a sops file of `format` as `load` reads it (its document
/// and metadata parse), without reading its readers.
pub fn check(format: Format, data: &[u8]) -> std::result::Result<(), String> {
    metadata_of(&parsed(format, data)?).map(drop)
}

/// The metadata of a parsed file; the reason never quotes the file.
fn metadata_of(doc: &document::EncryptedDocument) -> std::result::Result<Metadata, String> {
    Metadata::from_items(&doc.metadata).map_err(|r| format!("bad sops metadata: {r}"))
}

/// Checks without any key that `data` is a sops file of `format` whose values are
/// encrypted as its options require, and returns its readers, parsing it once.
pub fn examine(format: Format, data: &[u8]) -> std::result::Result<Readers, String> {
    Ok(Readers::of(&audit::audit(&parsed(format, data)?)?))
}

/// Checks without any key that `data` is a sops file of `format` whose values are
/// encrypted as its options require; returns the recipients its metadata names.
/// The reason never quotes the file.
pub fn check_structure(format: Format, data: &[u8]) -> std::result::Result<Vec<String>, String> {
    if store(format).is_some() {
        return examine(format, data).map(|r| r.names());
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

    /// `stores.<format>.indent` as sops 3.11 prints a decrypted file with it
    /// (`sops --config … decrypt`).
    #[test]
    fn indented_stores_print_as_sops_does() {
        let yaml = "a:\n    b:\n        - x\n        - c: 1\n          d: [1]\n    e: f\n";
        #[rustfmt::skip]
        let cases: &[(Format, Option<u8>, &str)] = &[
            (Format::SopsYaml, None, "a:\n    b:\n        - x\n        - c: 1\n          d:\n            - 1\n    e: f\n"),
            (Format::SopsYaml, Some(0), "a:\n    b:\n        - x\n        - c: 1\n          d:\n            - 1\n    e: f\n"),
            (Format::SopsYaml, Some(1), "a:\n  b:\n    - x\n    - c: 1\n      d:\n        - 1\n  e: f\n"),
            (Format::SopsYaml, Some(3), "a:\n   b:\n      - x\n      - c: 1\n        d:\n         - 1\n   e: f\n"),
            (Format::SopsYaml, Some(9), "a:\n         b:\n                  - x\n                  - c: 1\n                    d:\n                           - 1\n         e: f\n"),
            (Format::SopsYaml, Some(12), "a:\n  b:\n    - x\n    - c: 1\n      d:\n        - 1\n  e: f\n"),
        ];
        let json = "{\"a\": {\"b\": [1, {\"c\": \"x\"}], \"e\": {}}}";
        #[rustfmt::skip]
        let json_cases: &[(Format, Option<u8>, &str)] = &[
            (Format::SopsJson, None, "{\n\t\"a\": {\n\t\t\"b\": [\n\t\t\t1,\n\t\t\t{\n\t\t\t\t\"c\": \"x\"\n\t\t\t}\n\t\t],\n\t\t\"e\": {}\n\t}\n}\n"),
            (Format::SopsJson, Some(0), "{\n\"a\": {\n\"b\": [\n1,\n{\n\"c\": \"x\"\n}\n],\n\"e\": {}\n}\n}\n"),
            (Format::SopsJson, Some(3), "{\n   \"a\": {\n      \"b\": [\n         1,\n         {\n            \"c\": \"x\"\n         }\n      ],\n      \"e\": {}\n   }\n}\n"),
        ];
        for (format, indent, want) in cases.iter().chain(json_cases) {
            let input = if *format == Format::SopsYaml {
                yaml
            } else {
                json
            };
            let store = indented_store(*format, *indent).unwrap();
            let tree = store.load_plain(input.as_bytes(), "t").unwrap();
            let got = store.emit_plain(&tree).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                *want,
                "{format:?} {indent:?}"
            );
        }
        // A binary file's plaintext is its data, whatever the JSON around it.
        let store = indented_store(Format::SopsBinary, Some(2)).unwrap();
        let tree = store.load_plain(b"\tx\n", "t").unwrap();
        assert_eq!(store.emit_plain(&tree).unwrap(), b"\tx\n");
    }

    /// A file `sops encrypt --hc-vault-transit URL` wrote (sops 3.11).
    const TRANSIT_ONLY: &str = "a: ENC[AES256_GCM,data:M3rLGGQCxw==,iv:qN34PYaYIZT+KeivKXE14uIQuw2wBymRai2/Zgs3dTc=,tag:yP23vzo0qnW5pnjAkHhCIg==,type:str]
sops:
    hc_vault:
        - vault_address: http://127.0.0.1:18231
          engine_path: transit
          key_name: ci
          created_at: \"2026-12-03T18:48:26Z\"
          enc: vault:v1:vLoomnCGnsPmpN8Ze2T84JLQARgDX6m
    lastmodified: \"2026-12-03T18:48:26Z\"
    mac: ENC[AES256_GCM,data:CPZF,iv:QOcGChsvNz4Y4HoQpoOxwkecpHD6sNHFLnYnEW2LHqU=,tag:pwBmpVTyh0y+OTGDNUqJQA==,type:str]
    unencrypted_suffix: _unencrypted
    version: 3.11.0
";

    fn transit(url: &str) -> Recipient {
        Recipient::Transit(crate::recipient::TransitKey::parse(url).unwrap())
    }

    #[test]
    fn hc_vault_entries_are_readers_a_policy_names_by_url() {
        let (doc, readers) = load(Format::SopsYaml, TRANSIT_ONLY.as_bytes()).unwrap();
        assert_eq!(
            readers.transit,
            [(
                "http://127.0.0.1:18231/v1/transit/keys/ci".to_string(),
                true
            )]
        );
        assert!(readers.foreign.is_empty(), "{:?}", readers.foreign);
        assert_eq!(
            readers.names(),
            ["transit:http://127.0.0.1:18231/v1/transit/keys/ci"]
        );
        let ci = transit("transit:http://127.0.0.1:18231/v1/transit/keys/ci");
        assert_eq!(readers.differs_from(std::slice::from_ref(&ci), None), None);
        let other = transit("transit:http://127.0.0.1:18231/v1/transit/keys/other");
        let what = readers.differs_from(&[other], None).unwrap();
        assert!(
            what.contains("1 hc_vault entry for a transit key the policy does not name")
                && what.contains("1 transit key missing"),
            "{what}"
        );
        let what = readers.differs_from(&[], None).unwrap();
        assert!(what.contains("does not name"), "{what}");

        // Read and written back, the metadata is as sops wrote it.
        let metadata = Metadata::from_items(&doc.metadata).unwrap();
        assert_eq!(metadata.hc_vault.len(), 1);
        assert_eq!(metadata.hc_vault[0].created_at, "2026-12-03T18:48:26Z");
        assert_eq!(metadata.to_items(), doc.metadata);
        // Dropped, the entry leaves no `hc_vault` key behind.
        let mut dropped = metadata.clone();
        dropped.hc_vault.clear();
        assert!(
            !dropped
                .to_items()
                .iter()
                .any(|i| i.key() == Some("hc_vault"))
        );
    }

    #[test]
    fn a_new_file_lists_hc_vault_before_age_as_sops_does() {
        let mut m = Metadata::from_items(&[Item::Pair(
            "lastmodified".into(),
            Value::Str("2026-01-01T00:00:00Z".into()),
        )])
        .unwrap();
        m.raw.clear();
        m.hc_vault = vec![metadata::VaultEntry {
            vault_address: "http://h".into(),
            engine_path: "transit".into(),
            key_name: "ci".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            enc: "vault:v1:x".into(),
        }];
        let keys = |m: &Metadata| -> Vec<String> {
            m.to_items()
                .iter()
                .filter_map(|i| i.key().map(str::to_string))
                .collect()
        };
        assert_eq!(keys(&m), ["hc_vault", "lastmodified", "mac", "version"]);
        m.age = vec![metadata::AgeEntry {
            recipient: "age1x".into(),
            enc: "e".into(),
        }];
        assert_eq!(
            keys(&m),
            ["hc_vault", "age", "lastmodified", "mac", "version"]
        );
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

    /// A `<<` key whose value is not a map or a list of maps, anywhere: sops writes
    /// it as a merge key and cannot read the file back, so keys refuses to write it.
    fn scalar_merge_key(items: &[Item]) -> bool {
        fn within(value: &Value) -> bool {
            match value {
                Value::Map(inner) => scalar_merge_key(inner),
                Value::List(values) => values.iter().any(within),
                _ => false,
            }
        }
        items.iter().any(|item| match item {
            Item::Pair(key, value) => {
                let merges = match value {
                    Value::Map(_) => true,
                    Value::List(values) => values.iter().all(|v| matches!(v, Value::Map(_))),
                    _ => false,
                };
                (key == "<<" && !merges) || within(value)
            }
            _ => false,
        })
    }

    /// A map opening with a comment as the first item of a list that is an item of
    /// a list: go-yaml writes the two dashes on one line (`- - key: …`), and the
    /// comment before them, where it reads back as the outer list's.
    fn comment_after_two_dashes(items: &[Item]) -> bool {
        fn opens_with_comment(value: &Value) -> bool {
            matches!(value, Value::Map(inner) if matches!(inner.first(), Some(Item::Comment(_))))
        }
        fn within(value: &Value, in_list: bool) -> bool {
            match value {
                Value::Map(inner) => comment_after_two_dashes(inner),
                Value::List(values) => {
                    (in_list && values.first().is_some_and(opens_with_comment))
                        || values.iter().any(|v| within(v, true))
                }
                _ => false,
            }
        }
        items.iter().any(|item| match item {
            Item::Pair(_, value) => within(value, false),
            _ => false,
        })
    }

    /// A map starting with a comment (or a list whose first item is one, or a list
    /// whose first item is such a list) as the value of a key go-yaml writes as `? key`
    /// (with a line break or over 128 bytes): the comment lands on the `:` line and
    /// reads back before the key, in sops as in keys.
    fn comment_under_complex_key(items: &[Item]) -> bool {
        fn opens_with_comment(value: &Value) -> bool {
            match value {
                Value::Map(inner) => matches!(inner.first(), Some(Item::Comment(_))),
                Value::List(values) => values.first().is_some_and(opens_with_comment),
                _ => false,
            }
        }
        fn nested(value: &Value) -> bool {
            match value {
                Value::Map(inner) => comment_under_complex_key(inner),
                Value::List(values) => values.iter().any(nested),
                _ => false,
            }
        }
        items.iter().any(|item| match item {
            Item::Pair(key, value) => {
                let complex =
                    key.len() > 128 || key.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']);
                (complex && opens_with_comment(value)) || nested(value)
            }
            _ => false,
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
            prop_assume!(!comment_under_complex_key(&top) && !comment_after_two_dashes(&top));
            prop_assume!(!scalar_merge_key(&top));
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
