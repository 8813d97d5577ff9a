//! An encrypted file read in two parts: the document before its top-level `sops:`
//! key by the general reader, and the metadata after it by a reader of the layout
//! sops and keys write it in (block maps and lists, identifiers as keys, one-line
//! plain and quoted scalars, literal blocks), which is most of a file's bytes (each
//! wrapped data key is an armored age file). Anything else in the metadata, or a
//! document the split could change the reading of, is left to the general reader:
//! `None` here means only "read it the general way", never that the file is bad.
//! Where this reader answers, its answer is the general reader's.

use super::read;
use super::resolve::resolve_plain;
use crate::format::sops::document::{EncryptedDocument, Item, Value};

/// `data` read as the general reader reads it, when its metadata is laid out as
/// sops writes it and the document before it stands on its own.
pub(super) fn load(data: &[u8], file: &str) -> Option<EncryptedDocument> {
    if data.len() > super::MAX_INPUT {
        return None;
    }
    let at = split(data)?;
    let (body, tail) = data.split_at(at);
    if !stands_alone(body) {
        return None;
    }
    let metadata = metadata(tail)?;
    let branches = match block_map(body) {
        Some(items) => vec![items],
        None => read::parse(body, file).ok()?.branches,
    };
    if branches.len() != 1 || branches[0].iter().any(|item| item.key() == Some("sops")) {
        return None;
    }
    Some(EncryptedDocument { branches, metadata })
}

/// The document before the metadata, when it is a block map in the layout this
/// reader takes (as sops writes a map of encrypted values: one `key: ENC[…]` per
/// line); `None` leaves it to the general reader.
fn block_map(body: &[u8]) -> Option<Vec<Item>> {
    let text = printable(body)?;
    let mut lines = Lines::new(text, 0);
    if lines.indent()? != 0 {
        return None;
    }
    let items = lines.map(0, false)?;
    (lines.pos == lines.lines.len()).then_some(items)
}

/// `text` without its last line break, when it has one and every other byte is
/// printable ASCII or a line break.
fn printable(text: &[u8]) -> Option<&str> {
    // Each chunk folded whole, without a branch per byte, so that it runs a vector
    // of bytes at a time.
    let printable = |chunk: &[u8]| {
        chunk.iter().fold(true, |all, &b| {
            all & ((b == b'\n') | (b.wrapping_sub(0x20) < 0x7f - 0x20))
        })
    };
    if !text.chunks(64).all(printable) {
        return None;
    }
    std::str::from_utf8(text).ok()?.strip_suffix('\n')
}

/// Where the line `sops:` starts, the first at the start of a line after some
/// document.
fn split(data: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\nsops:\n";
    memchr::memmem::find(data, KEY).map(|i| i + 1)
}

/// Whether the document before the metadata reads the same alone as followed by
/// it: one document (no marker or directive at the start of a line, which could
/// make the metadata a document of its own), ending with a line break, whose first
/// line of content is a key at column 0 (so `sops:` is a key of the same map), and
/// whose last line is content without a comment (the comments that end a document
/// go to the node the next line's column names).
fn stands_alone(body: &[u8]) -> bool {
    let mut lines = body.split(|&b| b == b'\n');
    let markers = lines
        .clone()
        .any(|l| l.starts_with(b"---") || l.starts_with(b"...") || l.starts_with(b"%"));
    let first = lines
        .find(|l| {
            let content = l.trim_ascii_start();
            !content.is_empty() && !content.starts_with(b"#")
        })
        .and_then(|l| l.first().copied());
    let last = body
        .strip_suffix(b"\n")
        .map(|b| match b.iter().rposition(|&c| c == b'\n') {
            Some(i) => &b[i + 1..],
            None => b,
        });
    last.is_some_and(|l| !l.trim_ascii().is_empty() && !l.contains(&b'#'))
        && !markers
        && first.is_some_and(|b| {
            !b.is_ascii_whitespace() && (!INDICATORS.contains(&b) || b == b'"' || b == b'\'')
        })
}

/// The `sops` map of `tail` (which starts with the line `sops:`), when every line
/// of it is printable ASCII in the layout this reader takes.
fn metadata(tail: &[u8]) -> Option<Vec<Item>> {
    let text = printable(tail)?;
    let mut lines = Lines::new(text, 1);
    if lines.lines[0] != "sops:" {
        return None;
    }
    let indent = lines.indent()?;
    if indent == 0 {
        return None;
    }
    let items = lines.map(indent, false)?;
    (lines.pos == lines.lines.len()).then_some(items)
}

/// Whether `key` is a key this reader takes: letters, digits and underscores that
/// read as a string (not `true`, `null`, a number, …), as every key of sops's
/// metadata.
fn is_word(key: &str) -> bool {
    let Some(&first) = key.as_bytes().first() else {
        return false;
    };
    key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && (first.is_ascii_lowercase() && !matches!(key, "true" | "false" | "null")
            || matches!(resolve_plain(key), Ok(Value::Str(_))))
}

struct Lines<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    /// How many maps and lists the current line is in.
    depth: usize,
}

/// Maps and lists nested deeper, and maps with more keys, are left to the general
/// reader (sops's metadata nests five deep and has a dozen keys).
const MAX_NESTING: usize = 16;
const MAX_KEYS: usize = 64;

/// Characters a plain scalar this reader takes may not start with: YAML's
/// indicators.
const INDICATORS: &[u8] = b"-?:,[]{}#&*!|>'\"%@`";

impl<'a> Lines<'a> {
    /// The lines of `text` (in a vector allocated once), read from line `pos`.
    fn new(text: &'a str, pos: usize) -> Self {
        let mut lines = Vec::with_capacity(memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1);
        lines.extend(text.split('\n'));
        Lines {
            lines,
            pos,
            depth: 0,
        }
    }

    /// The indentation of the current line, `None` past the end.
    fn indent(&self) -> Option<usize> {
        let line = self.lines.get(self.pos)?;
        Some(line.len() - line.trim_start_matches(' ').len())
    }

    /// A block map whose keys are at column `col`; with `inline`, its first key
    /// follows a list item's `- ` on the current line.
    fn map(&mut self, col: usize, mut inline: bool) -> Option<Vec<Item>> {
        let mut items: Vec<Item> = Vec::new();
        while inline || self.indent() == Some(col) {
            inline = false;
            let line = &self.lines[self.pos][col..];
            let colon = line.find(':')?;
            let key = &line[..colon];
            if !is_word(key)
                || items.len() == MAX_KEYS
                || items.iter().any(|i| i.key() == Some(key))
            {
                return None;
            }
            let rest = &line[colon + 1..];
            let value = if rest.is_empty() {
                self.pos += 1;
                self.nested(col)?
            } else {
                self.scalar(rest.strip_prefix(' ')?, col)?
            };
            items.push(Item::Pair(key.to_string(), value));
            // A deeper line here would continue a scalar or be out of place.
            if self.indent().is_some_and(|i| i > col) {
                return None;
            }
        }
        (!items.is_empty()).then_some(items)
    }

    /// The map or list under a key at column `col`, on the lines below it.
    fn nested(&mut self, col: usize) -> Option<Value> {
        let inner = self.indent().filter(|&i| i > col)?;
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return None;
        }
        let value = if self.lines[self.pos][inner..].starts_with("- ") {
            self.list(inner).map(Value::List)
        } else {
            self.map(inner, false).map(Value::Map)
        };
        self.depth -= 1;
        value
    }

    /// A block list whose dashes are at column `col`, each item a map.
    fn list(&mut self, col: usize) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        while self.indent() == Some(col) && self.lines[self.pos][col..].starts_with("- ") {
            items.push(Value::Map(self.map(col + 2, true)?));
            if self.indent().is_some_and(|i| i > col) {
                return None;
            }
        }
        Some(items)
    }

    /// The scalar `text` after a key at column `col` on the current line (and the
    /// lines of a literal block below it); moves past them.
    fn scalar(&mut self, text: &str, col: usize) -> Option<Value> {
        let first = *text.as_bytes().first()?;
        if first == b' ' || text.ends_with(' ') {
            return None;
        }
        let value = match first {
            b'|' => {
                let clip = match text {
                    "|" => true,
                    "|-" => false,
                    _ => return None,
                };
                return self.literal(col, clip).map(Value::Str);
            }
            b'"' | b'\'' => {
                let inner = text
                    .strip_prefix(first as char)?
                    .strip_suffix(first as char)?;
                if inner.contains(['"', '\'', '\\']) {
                    return None;
                }
                Value::Str(inner.to_string())
            }
            _ if INDICATORS.contains(&first) => return None,
            _ => {
                if text.contains(": ") || text.contains(" #") || text.ends_with(':') {
                    return None;
                }
                match resolve_plain(text).ok()? {
                    v @ (Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Time(_)) => v,
                    _ => return None,
                }
            }
        };
        self.pos += 1;
        Some(value)
    }

    /// A literal block's lines below a key at column `col`: all at one indentation
    /// deeper than `col`, none empty or ending in a space; with `clip`, the text
    /// ends with one line break.
    fn literal(&mut self, col: usize, clip: bool) -> Option<String> {
        self.pos += 1;
        let inner = self.indent().filter(|&i| i > col)?;
        // Sized once: an armored key is a dozen lines.
        let size = self.lines[self.pos..]
            .iter()
            .take_while(|l| l.len() > inner && l.as_bytes()[..inner].iter().all(|&b| b == b' '))
            .map(|l| l.len() - inner + 1)
            .sum();
        let mut text = String::with_capacity(size);
        while let Some(i) = self.indent()
            && i >= inner
        {
            let line = self.lines[self.pos];
            if i > inner || line.len() == i || line.ends_with(' ') {
                return None;
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&line[inner..]);
            self.pos += 1;
        }
        if clip {
            text.push('\n');
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_INPUT, emit, load_encrypted};
    use super::*;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors");

    /// Both readings, printed (a NaN equals itself): `None` when this reader
    /// leaves the file to the general one.
    fn both(data: &[u8]) -> (Option<String>, Option<String>) {
        let general = load_encrypted(data, "f").ok().map(|d| format!("{d:?}"));
        (load(data, "f").map(|d| format!("{d:?}")), general)
    }

    fn agrees(data: &[u8]) -> bool {
        match both(data) {
            (None, _) => false,
            (Some(quick), general) => {
                assert_eq!(
                    Some(&quick),
                    general.as_ref(),
                    "{}",
                    String::from_utf8_lossy(data)
                );
                true
            }
        }
    }

    fn pair(key: &str, value: Value) -> Item {
        Item::Pair(key.into(), value)
    }

    fn text(rng: &mut fastrand::Rng, alphabet: &[&str], len: usize) -> String {
        (0..rng.usize(1..=len))
            .map(|_| alphabet[rng.usize(..alphabet.len())])
            .collect()
    }

    /// An armored age file's shape: base64 lines between the armor's.
    fn armored(rng: &mut fastrand::Rng) -> String {
        let mut s = String::from("-----BEGIN AGE ENCRYPTED FILE-----\n");
        for _ in 0..rng.usize(1..6) {
            let n = rng.usize(4..=64);
            s.extend((0..n).map(|_| rng.alphanumeric()));
            s.push('\n');
        }
        s.push_str("-----END AGE ENCRYPTED FILE-----\n");
        s
    }

    /// Metadata as keys and sops write it, with odd option values now and then
    /// (quotes, colons, hashes, spaces, line breaks, non-ASCII).
    fn metadata_items(rng: &mut fastrand::Rng) -> Vec<Item> {
        const ODD: &[&str] = &[
            "a", "_", "^", "$", "(", ")", "|", ".", "*", ": ", " #", "'", "\"", "\\", " ", "\n",
            "é", "-", "[", "{", "0", "1", ":", "#", "&", "!", "\t",
        ];
        let entries = |rng: &mut fastrand::Rng| {
            (0..rng.usize(1..5))
                .map(|i| {
                    Value::Map(vec![
                        pair("recipient", Value::Str(format!("age1recipient{i}"))),
                        pair("enc", Value::Str(armored(rng))),
                    ])
                })
                .collect::<Vec<_>>()
        };
        let mut items = Vec::new();
        if rng.bool() {
            items.push(pair(
                "key_groups",
                Value::List(
                    (0..rng.usize(1..3))
                        .map(|_| Value::Map(vec![pair("age", Value::List(entries(rng)))]))
                        .collect(),
                ),
            ));
        }
        if rng.u8(..4) == 0 {
            items.push(pair(
                "hc_vault",
                Value::List(vec![Value::Map(vec![
                    pair("vault_address", Value::Str("http://127.0.0.1:8200".into())),
                    pair("engine_path", Value::Str("transit".into())),
                    pair("key_name", Value::Str("fleet".into())),
                    pair("created_at", Value::Str("2026-12-03T22:32:54Z".into())),
                    pair("enc", Value::Str("vault:v1:abc+/=".into())),
                ])]),
            ));
        }
        items.push(pair("age", Value::List(entries(rng))));
        items.push(pair(
            "lastmodified",
            Value::Str("2026-12-03T22:32:54Z".into()),
        ));
        items.push(pair(
            "mac",
            Value::Str("ENC[AES256_GCM,data:q9+/=,iv:3B=,tag:ba==,type:str]".into()),
        ));
        match rng.u8(..4) {
            0 => items.push(pair(
                "unencrypted_suffix",
                Value::Str("_unencrypted".into()),
            )),
            1 => items.push(pair("encrypted_regex", Value::Str(text(rng, ODD, 12)))),
            2 => items.push(pair(
                "unencrypted_regex",
                Value::Str(text(rng, &ODD[..14], 8)),
            )),
            _ => items.push(pair("mac_only_encrypted", Value::Bool(true))),
        }
        if rng.bool() {
            items.push(pair("shamir_threshold", Value::Int(rng.i64(1..3))));
        }
        items.push(pair("version", Value::Str("3.11.0".into())));
        items
    }

    /// A document's top level: values of every kind, nested maps and lists, and
    /// comments, the last of them now and then at its end.
    fn body(rng: &mut fastrand::Rng) -> Vec<Item> {
        const WORDS: &[&str] = &[
            "a", "b", "key", " ", ": ", "#", "'", "\"", "\n", "é", "-", "1",
        ];
        let scalar = |rng: &mut fastrand::Rng| match rng.u8(..6) {
            0 => Value::Int(rng.i64(-5..5)),
            1 => Value::Bool(rng.bool()),
            2 => Value::Null,
            3 => Value::Float(0.5),
            _ => Value::Str(format!(
                "ENC[AES256_GCM,data:{},iv:x=,tag:y=,type:str]",
                text(rng, WORDS, 6)
            )),
        };
        let mut items = Vec::new();
        for i in 0..rng.usize(1..5) {
            if rng.u8(..4) == 0 {
                items.push(Item::Comment(format!(" note {i}")));
            }
            let value = match rng.u8(..4) {
                0 => Value::Map(vec![pair("inner", scalar(rng))]),
                1 => Value::List(vec![scalar(rng), Value::Map(vec![pair("x", scalar(rng))])]),
                _ => scalar(rng),
            };
            // Keys a plain scalar could read as something else than a string too.
            const KEYS: &[&str] = &[
                "k", "yes", "no", "on", "off", "y", "n", "nan", "inf", "e10", "0x1A", "1_000",
                "True", "NULL", "Null", "null", "true", "false", "_", "a_b", "tRUE", "0o17", "0b1",
                "1e3", "12", "tilde",
            ];
            let odd = KEYS[rng.usize(..KEYS.len())];
            let key = match rng.u8(..3) {
                0 if items.iter().all(|i: &Item| i.key() != Some(odd)) => odd.to_string(),
                _ => format!("k{i}"),
            };
            items.push(pair(&key, value));
        }
        if rng.u8(..4) == 0 {
            items.push(Item::Comment(" the end".into()));
        }
        items
    }

    fn emitted(rng: &mut fastrand::Rng) -> Vec<u8> {
        let branch = body(rng);
        let metadata = metadata_items(rng);
        let indent = if rng.bool() { 4 } else { rng.i64(2..10) };
        emit::emit(
            std::iter::once((branch.as_slice(), Some(metadata.as_slice()))),
            indent,
        )
        .unwrap()
    }

    /// Where the metadata's own writer writes a file, it writes the general
    /// emitter's bytes (`emit_encrypted` asserts it in a debug build, as here).
    #[test]
    fn files_written_by_the_metadata_writer_are_the_general_emitters() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut quick = 0;
        let cases = 1500;
        for _ in 0..cases {
            let branch = body(&mut rng);
            let metadata = metadata_items(&mut rng);
            let indent = if rng.bool() { 4 } else { rng.i64(2..10) };
            let general = emit::emit(
                std::iter::once((branch.as_slice(), Some(metadata.as_slice()))),
                indent,
            )
            .unwrap();
            if let Some(out) = emit::quick(&branch, &metadata, indent).unwrap() {
                quick += 1;
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&general)
                );
            }
            assert_eq!(
                emit::emit_encrypted(std::slice::from_ref(&branch), &metadata, indent).unwrap(),
                general
            );
        }
        // About a third: not odd option values, nor a document with a comment.
        assert!(quick > cases / 4, "{quick} of {cases}");
    }

    #[test]
    fn files_sops_and_keys_write_read_as_the_general_reader_reads_them() {
        let mut rng = fastrand::Rng::with_seed(24);
        let mut quick = 0;
        let cases = 600;
        for _ in 0..cases {
            quick += usize::from(agrees(&emitted(&mut rng)));
        }
        // About half are read here: all but odd option values and a comment at the end.
        assert!(quick > cases * 2 / 5, "{quick} of {cases}");
        for entry in walkdir::WalkDir::new(VECTORS) {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                agrees(&std::fs::read(entry.path()).unwrap());
            }
        }
    }

    /// The document before the metadata, where this reader takes it, is the
    /// general reader's, and the usual encrypted map is taken.
    #[test]
    fn a_block_map_of_scalars_reads_as_the_general_reader_reads_it() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut taken = 0;
        for _ in 0..2000 {
            let data = emitted(&mut rng);
            let body = &data[..split(&data).unwrap()];
            if let Some(items) = block_map(body) {
                taken += 1;
                let general = read::parse(body, "f").unwrap().branches;
                assert_eq!(
                    format!("{:?}", vec![items]),
                    format!("{general:?}"),
                    "{}",
                    String::from_utf8_lossy(body)
                );
            }
        }
        assert!(taken > 50, "{taken}");
        let sops = b"token: ENC[AES256_GCM,data:Lvq+/=,iv:FMy=,tag:B/6=,type:str]\nport_unencrypted: 5432\n";
        assert!(block_map(sops).is_some());
    }

    #[test]
    fn a_file_changed_anywhere_reads_as_the_general_reader_reads_it_or_is_left_to_it() {
        const EDITS: &[&str] = &[
            " ", "  ", "\n", "#", ":", ": ", "- ", "|", "|+", ">", "\"", "'", "\t", "{", "[",
            "&a ", "*a", "!!str ", "? ", "%", "---\n", "...\n", "é", "sops:\n", "\r", "a",
        ];
        let mut taken = 0;
        let mut rng = fastrand::Rng::with_seed(2024);
        for _ in 0..1500 {
            let mut data = emitted(&mut rng);
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..=data.len());
                match rng.u8(..4) {
                    0 => {
                        data.remove(at.min(data.len() - 1));
                    }
                    1 => {
                        // A line repeated.
                        let start = data[..at]
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |i| i + 1);
                        let end = data[at..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(data.len(), |i| at + i + 1);
                        let line = data[start..end].to_vec();
                        data.splice(end..end, line);
                    }
                    _ => {
                        let edit = EDITS[rng.usize(..EDITS.len())].as_bytes();
                        data.splice(at..at, edit.iter().copied());
                    }
                }
            }
            let (quick, general) = both(&data);
            taken += usize::from(quick.is_some());
            if quick.is_some() {
                assert_eq!(quick, general, "{}", String::from_utf8_lossy(&data));
            }
        }
        // The edits that keep the layout are read here, and agree.
        assert!(taken > 150, "{taken}");
    }

    #[test]
    fn what_the_general_reader_refuses_is_left_to_it() {
        let mut rng = fastrand::Rng::with_seed(7);
        let good = emitted(&mut rng);
        let at = split(&good).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            // Two documents: the metadata belongs to neither alone.
            [b"---\n".as_slice(), &good].concat(),
            [&good[..at], b"---\n", &good[at..]].concat(),
            // A document indented: `sops:` at column 0 ends it.
            [b"  x: 1\n".as_slice(), &good[at..]].concat(),
            // A second `sops` key, in the document.
            [b"sops: 1\n".as_slice(), &good].concat(),
            // Beyond the size limit.
            [&good[..], &vec![b'#'; MAX_INPUT]].concat(),
            // Metadata nested deeper, or with more keys, than sops writes.
            [
                &good[..at],
                b"sops:\n".as_slice(),
                &(1..40)
                    .flat_map(|d| format!("{}k{d}:\n", " ".repeat(d)).into_bytes())
                    .collect::<Vec<u8>>(),
                b"                                         v: 1\n",
            ]
            .concat(),
            [
                &good[..at],
                b"sops:\n".as_slice(),
                &(0..100)
                    .flat_map(|k| format!("    k{k}: 1\n").into_bytes())
                    .collect::<Vec<u8>>(),
            ]
            .concat(),
            // A line break other than `\n`.
            good.iter()
                .flat_map(|&b| {
                    if b == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![b]
                    }
                })
                .collect(),
        ];
        for data in cases {
            assert!(
                load(&data, "f").is_none(),
                "{}",
                String::from_utf8_lossy(&data[..data.len().min(400)])
            );
        }
    }
}
