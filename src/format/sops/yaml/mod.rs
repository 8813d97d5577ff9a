//! The sops YAML store: parses YAML into the sops document model the way sops 3.11
//! (go-yaml v3 underneath) types and places things, and emits the bytes sops writes:
//! go-yaml's emitter with four-space indentation, ported for the subset sops uses.
//!
//! Known differences from sops: the tree has no inline-comment flag, so `a: 1 # c`
//! is re-emitted as a head comment (as `sops decrypt` prints it anyway); a block
//! scalar starting with a space or newline inside a list is double-quoted, where
//! go-yaml writes an indentation indicator that no parser (sops included) reads
//! back; keys that are not strings, aliases as keys, integers beyond `i64`, nesting
//! beyond [`MAX_DEPTH`] and comment-only input are refused rather than passed
//! through; so is a `<<` key over a scalar on encryption, which sops writes as a
//! merge key and then cannot read.
//!
//! `read` builds the tree from the parser's events, `resolve` types its scalars as
//! YAML 1.1 does, and `emit` writes it back.

mod emit;
mod read;
mod resolve;
mod tail;

use super::document::{Branches, EncryptedDocument, Item, Store, Value};
use crate::error::{Error, Location, Result};

pub use super::text::MAX_INPUT;

/// Maps and lists nested deeper than this are refused. go-yaml (and so sops) stops
/// at 10,000; a file within the input size limit that sops writes (four spaces a
/// level) cannot nest much beyond 2,800. The tree is walked recursively when
/// encrypted and written, so the limit keeps that walk well within the stack.
pub const MAX_DEPTH: usize = 1024;

/// What alias expansions may add in total, in bytes of the tree (about 48 a node
/// plus its text): a document whose aliases expand beyond it (an alias bomb) is
/// refused. go-yaml's own limit is a ratio of aliases to nodes decoded.
pub const MAX_ALIAS_BYTES: usize = 32 << 20;

/// The sops YAML store (`.yaml`, `.yml`).
pub struct YamlStore;

impl Store for YamlStore {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<Branches> {
        let read::Parsed {
            branches,
            scalar_merge,
        } = read::parse(data, file)?;
        if let Some(line) = scalar_merge {
            return Err(invalid(
                Location::named(file).at_line(line as u64),
                "a `<<` key whose value is not a map or a list of maps: sops writes it \
                 as a merge key and cannot read that file back",
            ));
        }
        if branches
            .iter()
            .flatten()
            .any(|item| item.key() == Some("sops"))
        {
            return Err(invalid(
                Location::named(file),
                "top-level key `sops` is reserved for sops metadata: is the file already encrypted?",
            ));
        }
        Ok(branches)
    }

    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<EncryptedDocument> {
        if let Some(doc) = tail::load(data, file) {
            #[cfg(debug_assertions)]
            // Compared as printed, where a NaN equals itself.
            assert_eq!(
                format!("{:?}", Some(&doc)),
                format!("{:?}", load_encrypted(data, file).ok().as_ref()),
                "{file}: the metadata's own reader and the general one differ"
            );
            return Ok(doc);
        }
        load_encrypted(data, file)
    }

    fn emit_plain(&self, branches: &Branches) -> Result<Vec<u8>> {
        emit::emit(
            branches.iter().map(|b| (b.as_slice(), None)),
            emit::DEFAULT_INDENT,
        )
    }

    fn emit_encrypted(&self, doc: &EncryptedDocument) -> Result<Vec<u8>> {
        IndentedYamlStore(None).emit_encrypted(doc)
    }

    fn emit_value(&self, value: &Value) -> Result<Vec<u8>> {
        emit::emit_value(value)
    }

    /// go-yaml writes a float in Go's shortest `'g'` layout, which reads back as an
    /// integer where it has no point or exponent: `1.0` is written `1`, and `-0.0`
    /// is written `-0`, the integer 0, which sops hashes as `0`.
    fn reread(&self, value: &Value) -> Option<Value> {
        let Value::Float(f) = value else {
            return None;
        };
        match resolve::resolve_plain(&emit::float_text(*f)) {
            Ok(v @ Value::Int(_)) => Some(v),
            _ => None,
        }
    }
}

/// An encrypted file read by the general reader.
fn load_encrypted(data: &[u8], file: &str) -> Result<EncryptedDocument> {
    let mut branches = read::parse(data, file)?.branches;
    // As sops's ExtractMetadata: the metadata is the first document's `sops`
    // map; every document's `sops` key is dropped.
    let mut metadata = None;
    for (index, branch) in branches.iter_mut().enumerate() {
        let mut i = 0;
        while i < branch.len() {
            if branch[i].key() == Some("sops") {
                let Item::Pair(_, value) = branch.remove(i) else {
                    unreachable!()
                };
                if index == 0 {
                    if metadata.is_some() {
                        return Err(invalid(Location::named(file), "duplicate `sops` key"));
                    }
                    match value {
                        Value::Map(items) => metadata = Some(items),
                        _ => {
                            return Err(invalid(
                                Location::named(file),
                                "the `sops` key is not a map",
                            ));
                        }
                    }
                }
            } else {
                i += 1;
            }
        }
    }
    let metadata = metadata.ok_or_else(|| Error::Corrupt {
        at: Location::named(file),
        reason: "not a sops file: no sops metadata".into(),
    })?;
    Ok(EncryptedDocument { branches, metadata })
}

/// The YAML store writing with `stores.yaml.indent` as sops applies it: go-yaml
/// takes 2 to 9 spaces and writes 2 for any other number; sops takes 0 (or none)
/// for its default, 4.
pub struct IndentedYamlStore(pub Option<u8>);

impl IndentedYamlStore {
    fn indent(&self) -> i64 {
        match self.0 {
            None | Some(0) => emit::DEFAULT_INDENT,
            Some(n @ 2..=9) => i64::from(n),
            Some(_) => 2,
        }
    }
}

impl Store for IndentedYamlStore {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<Branches> {
        YamlStore.load_plain(data, file)
    }

    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<EncryptedDocument> {
        YamlStore.load_encrypted(data, file)
    }

    fn emit_plain(&self, branches: &Branches) -> Result<Vec<u8>> {
        emit::emit(branches.iter().map(|b| (b.as_slice(), None)), self.indent())
    }

    fn emit_encrypted(&self, doc: &EncryptedDocument) -> Result<Vec<u8>> {
        emit::emit_encrypted(&doc.branches, &doc.metadata, self.indent())
    }

    fn emit_value(&self, value: &Value) -> Result<Vec<u8>> {
        emit::emit_value(value)
    }

    fn reread(&self, value: &Value) -> Option<Value> {
        YamlStore.reread(value)
    }
}

fn invalid(at: Location, reason: impl Into<String>) -> Error {
    Error::InvalidFile {
        at,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors");

    fn read(rel: &str) -> Vec<u8> {
        std::fs::read(format!("{VECTORS}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// A comment at the indentation of a map whose keys are explicit (`? key`, as
    /// sops writes a key over 128 bytes or with a line break), after its last entry,
    /// is that map's, as sops (go-yaml) reads it: the entry starts at its `?`. Both
    /// files come out of `sops encrypt` and `sops decrypt` as they went in.
    #[test]
    fn a_comment_closing_a_map_of_explicit_keys_stays_in_that_map() {
        let (a, b) = ("a".repeat(130), "b".repeat(130));
        let long = format!("top:\n    ? {a}\n    :   ? {b}\n        : x\n        # hello\n");
        let broken = "\"\":\n    ? |4-\n\n        a\n    :   ? |\n            %\n        : \"\"\n        #\n";
        let inner = |key: &str, value: &str, comment: &str| {
            Value::Map(vec![
                Item::Pair(key.into(), Value::Str(value.into())),
                Item::Comment(comment.into()),
            ])
        };
        for (input, top, outer, inner) in [
            (long.as_str(), "top", a.clone(), inner(&b, "x", " hello")),
            (broken, "", "\na".to_string(), inner("%\n", "", "")),
        ] {
            let read = YamlStore.load_plain(input.as_bytes(), "t").unwrap();
            let want = vec![vec![Item::Pair(
                top.into(),
                Value::Map(vec![Item::Pair(outer, inner)]),
            )]];
            assert_eq!(read, want, "{input}");
            let out = YamlStore.emit_plain(&read).unwrap();
            assert_eq!(String::from_utf8_lossy(&out), input);
        }
    }

    /// A block scalar that ends the file with no line break after its last line has
    /// no final line break to keep, as go-yaml reads it (sops decrypt prints `"y"`);
    /// one that ends with a line break keeps it.
    #[test]
    fn a_block_scalar_at_the_end_of_a_file_without_a_line_break_keeps_none() {
        fn last(value: &Value) -> &Value {
            match value {
                Value::Map(items) => match items.last() {
                    Some(Item::Pair(_, v)) => last(v),
                    _ => value,
                },
                Value::List(values) => values.last().map_or(value, last),
                _ => value,
            }
        }
        for (input, want) in [
            ("e: |\n y", "y"),
            ("e: >\n y", "y"),
            ("e: |+\n y", "y"),
            ("e: |-\n y", "y"),
            ("a:\n  e: |\n    y", "y"),
            ("l:\n- |\n  y", "y"),
            ("e: |\n y  ", "y  "),
            ("e: |\n y\n", "y\n"),
            ("e: |+\n y\n\n", "y\n\n"),
        ] {
            let read = YamlStore.load_plain(input.as_bytes(), "t").unwrap();
            let Some(Item::Pair(_, value)) = read[0].last() else {
                panic!("{input:?}: {read:?}");
            };
            assert_eq!(last(value), &Value::Str(want.into()), "{input:?}");
        }
        // Not at the end of the file: its line break stays.
        let read = YamlStore.load_plain(b"e: |\n y\nf: 1", "t").unwrap();
        assert_eq!(read[0][0], Item::Pair("e".into(), Value::Str("y\n".into())));
    }

    /// A `?` that is not an explicit key's indicator leaves the comments where they
    /// were: at the end of a value (`what ?`), or in a plain key (`?x`).
    #[test]
    fn a_question_mark_elsewhere_does_not_make_a_key_explicit() {
        let input = "a:\n    b: what ?\n    ?x: 1\n  # out\nc: 2\n";
        let read = YamlStore.load_plain(input.as_bytes(), "t").unwrap();
        let plain = YamlStore
            .load_plain(input.replace('?', "q").as_bytes(), "t")
            .unwrap();
        let count = |b: &Branches| format!("{b:?}").matches("Comment").count();
        assert_eq!(count(&read), 1);
        assert_eq!(format!("{read:?}").replace('?', "q"), format!("{plain:?}"));
    }

    fn plain_roundtrip(input: &str, expected: &str) {
        let branches = YamlStore.load_plain(&read(input), input).unwrap();
        let out = YamlStore.emit_plain(&branches).unwrap();
        let want = read(expected);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want),
            "{input} -> {expected}"
        );
    }

    const PLAIN_VECTORS: &[&str] = &[
        "sops/basic",
        "sops/encrypted-regex",
        "sops/mac-only-encrypted",
        "sops/ssh-recipient",
        "sops/two-recipients",
        "sops/types",
        "sops/unencrypted-suffix",
    ];

    /// A float in clear is hashed as what its written form reads back as.
    #[test]
    fn floats_reread_as_their_written_form() {
        for (f, back) in [
            (-0.0, Some(Value::Int(0))),
            (1.0, Some(Value::Int(1))),
            (0.5, None),
            (1e21, None),
            (f64::NEG_INFINITY, None),
        ] {
            assert_eq!(YamlStore.reread(&Value::Float(f)), back, "{f}");
        }
        assert_eq!(YamlStore.reread(&Value::Int(0)), None);
    }

    #[test]
    fn plain_vectors_round_trip_byte_for_byte() {
        for name in PLAIN_VECTORS {
            plain_roundtrip(&format!("{name}.plain.yaml"), &format!("{name}.plain.yaml"));
        }
        plain_roundtrip(
            "upstream/sops-nix/secrets.plain.yaml",
            "upstream/sops-nix/secrets.plain.yaml",
        );
    }

    #[test]
    fn input_vectors_emit_what_sops_decrypt_prints() {
        plain_roundtrip("sops/basic.input.yaml", "sops/basic.plain.yaml");
    }

    #[test]
    fn encrypted_vectors_round_trip_byte_for_byte() {
        let mut names: Vec<String> = PLAIN_VECTORS
            .iter()
            .map(|n| format!("{n}.enc.yaml"))
            .collect();
        names.push("upstream/sops-nix/secrets.yaml".into());
        for name in names {
            let doc = YamlStore.load_encrypted(&read(&name), &name).unwrap();
            assert!(!doc.metadata.is_empty(), "{name}");
            let out = YamlStore.emit_encrypted(&doc).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&read(&name)),
                "{name}"
            );
        }
    }

    #[test]
    fn encrypted_load_takes_metadata_from_the_first_document() {
        let data =
            b"a: ENC[x]\nsops:\n    version: 3.11.0\n---\nb: 1\nsops:\n    version: 3.11.0\n";
        let doc = YamlStore.load_encrypted(data, "f.yaml").unwrap();
        assert_eq!(doc.branches.len(), 2);
        assert!(
            doc.branches
                .iter()
                .flatten()
                .all(|i| i.key() != Some("sops"))
        );
        assert_eq!(
            doc.metadata,
            vec![Item::Pair("version".into(), Value::Str("3.11.0".into()))]
        );
        assert_eq!(YamlStore.emit_encrypted(&doc).unwrap(), data);
        let err = YamlStore.load_encrypted(b"a: 1\n", "f.yaml").unwrap_err();
        assert!(
            err.to_string()
                .contains("f.yaml: not a sops file: no sops metadata"),
            "{err}"
        );
    }

    #[test]
    fn comments_are_placed_and_emitted_as_sops_does() {
        // Pairs of (input, what `sops decrypt` prints after `sops encrypt`),
        // checked against sops 3.11.
        let cases: &[(&str, &str)] = &[
            ("a: 1 # inline\n", "# inline\na: 1\n"),
            ("# top\n\nx: 1\n", "# top\nx: 1\n"),
            (
                "a:\n    b: 1\n    # end of a\n# head c\nc: 2\n# end\n",
                "a:\n    b: 1\n    # end of a\n# head c\nc: 2\n# end\n",
            ),
            (
                "e:\n    - x\n    # mid\n    - y # in\n    # end e\nf: 1\n",
                "e:\n    - x\n    # mid\n    # in\n    - \"y\"\n    # end e\nf: 1\n",
            ),
            (
                "a:\n    - b: 1\n      # in item\n    # list end\nz: 1\n",
                "a:\n    - b: 1\n      # in item\n# list end\nz: 1\n",
            ),
            ("a: # on key\n    b: 1\n", "# on key\na:\n    b: 1\n"),
            (
                "a: !!str\n# after a\nb: &x\n    # after b\nc: [!!str , 1]\n",
                "a: \"\"\n# after a\nb: null\n# after b\nc:\n    - \"\"\n    - 1\n",
            ),
            (
                "a: 1\n# one\n---\n# two\nb: 2\n",
                "a: 1\n# one\n---\n# two\nb: 2\n",
            ),
        ];
        for (input, want) in cases {
            let tree = YamlStore.load_plain(input.as_bytes(), "c.yaml").unwrap();
            let out = String::from_utf8(YamlStore.emit_plain(&tree).unwrap()).unwrap();
            assert_eq!(&out, want, "{input:?}");
        }
    }

    /// Found by fuzzing: a list's leading comment and the comment its first item (a
    /// map) starts with. go-yaml writes only the item's, for sops as for keys (checked
    /// with `sops encrypt --unencrypted-regex '.*'`, which writes the tree as read);
    /// encrypted, the list's comment is an item and both are kept (tests/cli/sops.rs).
    #[test]
    fn a_plain_list_comment_before_a_commented_map_item_is_written_as_sops_writes_it() {
        let input = "list:\n   key:\n  # c1\n    - k:\n  # c2\n           v\n";
        let tree = YamlStore.load_plain(input.as_bytes(), "c.yaml").unwrap();
        let out = String::from_utf8(YamlStore.emit_plain(&tree).unwrap()).unwrap();
        assert_eq!(out, "list:\n    key:\n        # c2\n        - k: v\n");
        let again = YamlStore.load_plain(out.as_bytes(), "c.yaml").unwrap();
        assert_eq!(YamlStore.emit_plain(&again).unwrap(), out.as_bytes());
    }

    /// A comment to the right of a bare `- ` belongs to what the dash starts: go-yaml
    /// makes it the first entry of a list nested there, else puts it before the
    /// entry; sops writes it on its own line. Found by fuzzing under a `? key`, where
    /// the comment lands on the `:` line and reads back before the key, in sops as
    /// in keys. Each pair is checked against sops 3.11 (`sops encrypt
    /// --unencrypted-regex '.*'`, which writes the tree as read, and `sops decrypt`).
    #[test]
    fn a_comment_after_a_bare_dash_is_placed_as_sops_places_it() {
        let c = || Value::Comment(" c".into());
        let s = |t: &str| Value::Str(t.into());
        for (input, tree, want) in [
            (
                "k:\n    - a\n    - # c\n      b\n",
                vec![s("a"), c(), s("b")],
                "k:\n    - a\n    # c\n    - b\n",
            ),
            (
                "k:\n    - a\n    - # c\n      - b\n",
                vec![s("a"), Value::List(vec![c(), s("b")])],
                "k:\n    - a\n    # c\n    - - b\n",
            ),
            (
                "k:\n    - a\n    - # c\n      x: y\n",
                vec![
                    s("a"),
                    Value::Map(vec![
                        Item::Comment(" c".into()),
                        Item::Pair("x".into(), s("y")),
                    ]),
                ],
                "k:\n    - a\n    # c\n    - x: \"y\"\n",
            ),
            (
                "k:\n    - [] # c\n    - b # d\n",
                vec![
                    c(),
                    Value::List(vec![]),
                    Value::Comment(" d".into()),
                    s("b"),
                ],
                "k:\n    # c\n    - []\n    # d\n    - b\n",
            ),
            (
                "k:\n    - | # c\n      b\n",
                vec![c(), s("b\n")],
                "k:\n    # c\n    - |\n      b\n",
            ),
        ] {
            let parsed = YamlStore.load_plain(input.as_bytes(), "c.yaml").unwrap();
            assert_eq!(
                parsed,
                vec![vec![Item::Pair("k".into(), Value::List(tree))]],
                "{input:?}"
            );
            let out = String::from_utf8(YamlStore.emit_plain(&parsed).unwrap()).unwrap();
            assert_eq!(out, want, "{input:?}");
        }
        for (input, want) in [
            (
                "? |4+\n\n:   - #\n      - {}\n",
                "? |4+\n\n:   #\n    - - {}\n",
            ),
            ("? |4+\n\n:   #\n    - - {}\n", "#\n? |4+\n\n:   - - {}\n"),
            ("#\n? |4+\n\n:   - - {}\n", "#\n? |4+\n\n:   - - {}\n"),
        ] {
            let tree = YamlStore.load_plain(input.as_bytes(), "c.yaml").unwrap();
            let out = String::from_utf8(YamlStore.emit_plain(&tree).unwrap()).unwrap();
            assert_eq!(out, want, "{input:?}");
        }
    }

    #[test]
    fn empty_input_and_empty_documents() {
        assert_eq!(
            YamlStore.load_plain(b"", "e.yaml").unwrap(),
            Branches::new()
        );
        assert_eq!(
            YamlStore.load_plain(b"---\n", "e.yaml").unwrap(),
            vec![vec![]]
        );
        assert_eq!(YamlStore.emit_plain(&vec![vec![]]).unwrap(), b"{}\n");
        assert_eq!(YamlStore.emit_plain(&Branches::new()).unwrap(), b"");
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::Str),
            "[ -~\n]{0,12}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::List),
                prop::collection::btree_map("[a-z0-9 _.-]{1,8}", inner, 0..5).prop_map(|m| {
                    Value::Map(m.into_iter().map(|(k, v)| Item::Pair(k, v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn emitted_trees_load_back_unchanged(
            top in prop::collection::btree_map("[a-zA-Z0-9 _.-]{1,10}", value(), 0..6)
        ) {
            let branch: Vec<Item> = top
                .into_iter()
                .filter(|(k, _)| k != "sops")
                .map(|(k, v)| Item::Pair(k, v))
                .collect();
            let branches = vec![branch];
            let out = YamlStore.emit_plain(&branches).unwrap();
            let back = YamlStore.load_plain(&out, "p.yaml");
            prop_assert_eq!(back.ok(), Some(branches), "{}", String::from_utf8_lossy(&out));
        }
    }
}
