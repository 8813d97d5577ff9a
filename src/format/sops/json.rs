//! The sops JSON store, as sops 3.11 reads and writes it: key order kept, every
//! number a float64 (3.11's decoder does not use `UseNumber`, so `8080` is
//! encrypted as `type:float`), strings escaped as Go's `json.Marshal` escapes them,
//! tab-indented as `json.Indent` lays them out. The binary store's encrypted form
//! is this store's too.
//!
//! The reader is written here rather than taken from serde_json because sops's
//! reading is Go's: lone surrogate escapes become U+FFFD, every number is a float,
//! and errors must give a line and key path without quoting the document.

use std::collections::HashSet;

use super::document::{Branches, EncryptedDocument, Item, Store, Value};
use super::golang::json_float;
use super::text::{Bom, MAX_DEPTH, invalid, join_index, join_key, line_at, text};
use crate::error::Result;

/// The top-level key under which sops keeps its metadata.
pub const METADATA_KEY: &str = "sops";

/// The sops JSON store.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonStore;

impl Store for JsonStore {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<Branches> {
        let branch = parse(data, file)?;
        if branch.iter().any(|i| i.key() == Some(METADATA_KEY)) {
            return Err(invalid(
                file,
                None,
                "top-level key `sops` is reserved for sops metadata: is this file already encrypted?",
            ));
        }
        Ok(vec![branch])
    }

    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<EncryptedDocument> {
        let mut branch = parse(data, file)?;
        let at = branch
            .iter()
            .position(|i| i.key() == Some(METADATA_KEY))
            .ok_or_else(|| invalid(file, None, "not a sops file: no sops metadata"))?;
        match branch.remove(at) {
            Item::Pair(_, Value::Map(metadata)) => Ok(EncryptedDocument {
                branches: vec![branch],
                metadata,
            }),
            _ => Err(invalid(file, None, "sops metadata `sops` is not an object")),
        }
    }

    fn emit_plain(&self, branches: &Branches) -> Result<Vec<u8>> {
        let branch = single_branch(branches, "json")?;
        let mut out = String::new();
        write_map(&mut out, branch, 0);
        out.push('\n');
        Ok(out.into_bytes())
    }

    fn emit_encrypted(&self, doc: &EncryptedDocument) -> Result<Vec<u8>> {
        let branch = single_branch(&doc.branches, "json")?;
        let mut branch = branch.to_vec();
        refuse_metadata_key(&branch, "json")?;
        branch.push(Item::Pair(
            METADATA_KEY.into(),
            Value::Map(doc.metadata.clone()),
        ));
        self.emit_plain(&vec![branch])
    }
}

pub(crate) fn single_branch<'a>(branches: &'a Branches, store: &str) -> Result<&'a [Item]> {
    match branches.as_slice() {
        [branch] => Ok(branch),
        _ => Err(super::text::unemittable(
            store,
            format!(
                "a {store} file holds exactly one document, not {}",
                branches.len()
            ),
        )),
    }
}

pub(crate) fn refuse_metadata_key(branch: &[Item], store: &str) -> Result<()> {
    if branch.iter().any(|i| i.key() == Some(METADATA_KEY)) {
        return Err(super::text::unemittable(
            store,
            "the document already has a top-level `sops` key",
        ));
    }
    Ok(())
}

// ---- reading ----

/// Parses a JSON document whose top level is an object into its items.
pub(crate) fn parse(data: &[u8], file: &str) -> Result<Vec<Item>> {
    let text = text(data, file, Bom::Refused)?;
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        file,
    };
    p.ws();
    match p.peek() {
        Some(b'{') => {}
        None => return Err(p.err("empty file: expected a JSON object")),
        Some(_) => {
            return Err(p.err(
                "sops only supports JSON files with a top-level object; wrap the data in {\"data\": ...}",
            ));
        }
    }
    p.pos += 1;
    let items = p.object("", 1)?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.err("unexpected content after the top-level object"));
    }
    Ok(items)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    file: &'a str,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> crate::error::Error {
        invalid(self.file, Some(line_at(self.s, self.pos)), reason)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eof(&self, what: &str) -> crate::error::Error {
        self.err(format!(
            "unexpected end of input in {what} (truncated file?)"
        ))
    }

    fn expect(&mut self, byte: u8, what: &str, path: &str) -> Result<()> {
        self.ws();
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.eof(&container(path))),
            Some(_) => Err(self.err(format!("expected {what} in {}", container(path)))),
        }
    }

    /// Reads `close` if it comes next: the end of an empty object or array.
    fn empty(&mut self, close: u8) -> bool {
        self.ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.pos += 1;
        }
        empty
    }

    /// What follows the item `after` of the object or array at `path`: `,` and
    /// another item (false), or its closing `close` (true).
    fn closed(&mut self, close: u8, path: &str, after: &str) -> Result<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            None => Err(self.eof(&container(path))),
            Some(_) => Err(self.err(format!(
                "expected ',' or '{}' after {after}",
                char::from(close)
            ))),
        }
    }

    /// The items of an object whose `{` was just read.
    fn object(&mut self, path: &str, depth: usize) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        if self.empty(b'}') {
            return Ok(items);
        }
        loop {
            self.ws();
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.eof(&container(path))),
                Some(_) => {
                    return Err(self.err(format!("expected a key in {}", container(path))));
                }
            }
            let line = line_at(self.s, self.pos);
            let key = self.string(path)?;
            let key_path = join_key(path, &key);
            if !seen.insert(key.clone()) {
                return Err(invalid(
                    self.file,
                    Some(line),
                    format!("duplicate key {key_path}"),
                ));
            }
            self.expect(b':', "':' after the key", &key_path)?;
            let value = self.value(&key_path, depth)?;
            items.push(Item::Pair(key, value));
            if self.closed(b'}', path, &key_path)? {
                return Ok(items);
            }
        }
    }

    /// The values of an array whose `[` was just read.
    fn array(&mut self, path: &str, depth: usize) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        if self.empty(b']') {
            return Ok(values);
        }
        loop {
            let item_path = join_index(path, values.len());
            values.push(self.value(&item_path, depth)?);
            if self.closed(b']', path, &item_path)? {
                return Ok(values);
            }
        }
    }

    fn value(&mut self, path: &str, depth: usize) -> Result<Value> {
        self.ws();
        let Some(b) = self.peek() else {
            return Err(self.eof(&format!("the value of {path}")));
        };
        let nest = |p: &Self| {
            if depth + 1 > MAX_DEPTH {
                Err(p.err(format!("{path} is nested deeper than {MAX_DEPTH} levels")))
            } else {
                Ok(())
            }
        };
        match b {
            b'{' => {
                nest(self)?;
                self.pos += 1;
                Ok(Value::Map(self.object(path, depth + 1)?))
            }
            b'[' => {
                nest(self)?;
                self.pos += 1;
                Ok(Value::List(self.array(path, depth + 1)?))
            }
            b'"' => Ok(Value::Str(self.string(path)?)),
            b't' => self.literal(b"true", Value::Bool(true), path),
            b'f' => self.literal(b"false", Value::Bool(false), path),
            b'n' => self.literal(b"null", Value::Null, path),
            b'-' | b'0'..=b'9' => self.number(path),
            _ => Err(self.err(format!("invalid value for {path}"))),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value, path: &str) -> Result<Value> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err(format!("invalid value for {path}")))
        }
    }

    /// A JSON number: always a float, as sops 3.11's decoder has it.
    fn number(&mut self, path: &str) -> Result<Value> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos > from
        };
        let bad = |p: &Self| p.err(format!("invalid number for {path}"));
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else if !digits(self) {
            return Err(bad(self));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(bad(self));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(bad(self));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| bad(self))?;
        let f: f64 = text.parse().map_err(|_| bad(self))?;
        if !f.is_finite() {
            return Err(self.err(format!("number for {path} is out of range of a float64")));
        }
        Ok(Value::Float(f))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        let h = std::str::from_utf8(h).ok()?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(h, 16).ok()
    }

    /// A string whose opening quote is at `pos`, decoded as Go decodes it.
    fn string(&mut self, path: &str) -> Result<String> {
        let what = if path.is_empty() {
            "a key".to_string()
        } else {
            format!("a string in {path}")
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is UTF-8 and the run stops at ASCII bytes.
            out.push_str(std::str::from_utf8(&self.s[run..self.pos]).unwrap_or_default());
            match self.peek() {
                None => return Err(self.eof(&format!("{what} (unterminated string)"))),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let esc = self.s.get(self.pos + 1).copied();
                    self.pos += 2;
                    match esc {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let Some(u) = self.hex4(self.pos) else {
                                self.pos -= 2;
                                return Err(self.err(format!("invalid \\u escape in {what}")));
                            };
                            self.pos += 4;
                            out.push(self.surrogates(u));
                        }
                        None => return Err(self.eof(&what)),
                        Some(_) => {
                            self.pos -= 2;
                            return Err(self.err(format!("invalid escape in {what}")));
                        }
                    }
                }
                Some(_) => {
                    return Err(self.err(format!("control character in {what}")));
                }
            }
        }
    }

    /// The character of `\uXXXX` escape `u` whose digits were just read, taking a
    /// following low surrogate when `u` is a high one; U+FFFD for a lone one (Go).
    fn surrogates(&mut self, u: u32) -> char {
        if !(0xD800..0xE000).contains(&u) {
            return char::from_u32(u).unwrap_or('\u{FFFD}');
        }
        if (0xD800..0xDC00).contains(&u)
            && self.s[self.pos..].starts_with(b"\\u")
            && let Some(low) = self.hex4(self.pos + 2)
            && (0xDC00..0xE000).contains(&low)
        {
            self.pos += 6;
            let c = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
            return char::from_u32(c).unwrap_or('\u{FFFD}');
        }
        '\u{FFFD}'
    }
}

fn container(path: &str) -> String {
    if path.is_empty() {
        "the top-level object".into()
    } else {
        path.to_string()
    }
}

// ---- writing ----

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `s` as Go's `json.Marshal` quotes it: HTML-safe (`<`, `>`, `&` as `\u00XX`),
/// U+2028 and U+2029 escaped, `\b \f \n \r \t` short, other controls `\u00XX`.
pub(crate) fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xF) as usize] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Bytes that are not UTF-8, as Go quotes them: each invalid byte as `\ufffd`.
fn quote_bytes_into(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        let mut part = String::new();
        quote_into(&mut part, chunk.valid());
        out.push_str(&part[1..part.len() - 1]);
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push('\t');
    }
}

fn write_map(out: &mut String, items: &[Item], depth: usize) {
    let pairs: Vec<(&String, &Value)> = items
        .iter()
        .filter_map(|i| match i {
            Item::Pair(k, v) => Some((k, v)),
            Item::Comment(_) => None,
        })
        .collect();
    if pairs.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (n, (k, v)) in pairs.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        quote_into(out, k);
        out.push_str(": ");
        write_value(out, v, depth + 1);
    }
    newline(out, depth);
    out.push('}');
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Map(items) => write_map(out, items, depth),
        Value::List(values) => {
            let values: Vec<&Value> = values
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect();
            if values.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (n, v) in values.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_value(out, v, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => quote_into(out, s),
        Value::Bytes(b) => quote_bytes_into(out, b),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) if f.is_finite() => out.push_str(&json_float(*f)),
        // Go's json.Marshal refuses NaN and infinities; sops cannot produce them
        // from JSON. Write null rather than invalid JSON.
        Value::Float(_) | Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair(k: &str, v: Value) -> Item {
        Item::Pair(k.into(), v)
    }

    fn load(s: &str) -> Result<Vec<Item>> {
        JsonStore
            .load_plain(s.as_bytes(), "f.json")
            .map(|mut b| b.remove(0))
    }

    fn err(s: &[u8]) -> String {
        JsonStore.load_plain(s, "f.json").unwrap_err().to_string()
    }

    /// A vector's name, and its encrypted, decrypted and input files.
    type Vector = (&'static str, &'static [u8], &'static [u8], &'static [u8]);

    #[test]
    fn vectors_round_trip_byte_for_byte() {
        let table: &[Vector] = &[
            (
                "basic",
                sops_vector!("basic.enc.json"),
                sops_vector!("basic.plain.json"),
                sops_vector!("basic.input.json"),
            ),
            (
                "encrypted-suffix",
                sops_vector!("encrypted-suffix.enc.json"),
                sops_vector!("encrypted-suffix.plain.json"),
                sops_vector!("encrypted-suffix.input.json"),
            ),
            (
                "native-age",
                sops_vector!("native-age.enc.json"),
                sops_vector!("native-age.plain.json"),
                sops_vector!("native-age.input.json"),
            ),
        ];
        for (name, enc, plain, input) in table {
            let doc = JsonStore.load_encrypted(enc, name).unwrap();
            assert_eq!(JsonStore.emit_encrypted(&doc).unwrap(), *enc, "{name} enc");
            let tree = JsonStore.load_plain(plain, name).unwrap();
            assert_eq!(JsonStore.emit_plain(&tree).unwrap(), *plain, "{name} plain");
            let tree = JsonStore.load_plain(input, name).unwrap();
            assert_eq!(JsonStore.emit_plain(&tree).unwrap(), *plain, "{name} input");
        }
    }

    #[test]
    fn numbers_are_floats_as_in_sops_3_11() {
        let doc = JsonStore
            .load_encrypted(sops_vector!("basic.enc.json"), "basic")
            .unwrap();
        let tree = JsonStore
            .load_plain(sops_vector!("basic.plain.json"), "basic")
            .unwrap();
        let Item::Pair(_, Value::Map(service)) = &tree[0][0] else {
            panic!("service")
        };
        assert_eq!(service[1], pair("port", Value::Float(8080.0)));
        assert_eq!(service[2], pair("ratio", Value::Float(0.5)));
        // The metadata is the nested map: age is a list of maps.
        let Item::Pair(k, Value::List(age)) = &doc.metadata[0] else {
            panic!("age")
        };
        assert_eq!(k, "age");
        let Value::Map(key) = &age[0] else {
            panic!("age[0]")
        };
        assert!(matches!(&key[0], Item::Pair(k, Value::Str(_)) if k == "recipient"));
        assert!(matches!(&key[1], Item::Pair(k, Value::Str(_)) if k == "enc"));
    }

    #[test]
    fn loads_scalars_and_nesting() {
        let table: &[(&str, Vec<Item>)] = &[
            ("{}", vec![]),
            (
                r#"{"a": 1, "b": -2.5e3, "c": true, "d": null, "e": "x"}"#,
                vec![
                    pair("a", Value::Float(1.0)),
                    pair("b", Value::Float(-2500.0)),
                    pair("c", Value::Bool(true)),
                    pair("d", Value::Null),
                    pair("e", Value::Str("x".into())),
                ],
            ),
            (
                r#"{"z": {"y": [1, [], {}]}, "a": []}"#,
                vec![
                    pair(
                        "z",
                        Value::Map(vec![pair(
                            "y",
                            Value::List(vec![
                                Value::Float(1.0),
                                Value::List(vec![]),
                                Value::Map(vec![]),
                            ]),
                        )]),
                    ),
                    pair("a", Value::List(vec![])),
                ],
            ),
            (
                r#"{"s": "\u00e9\ud83d\ude00\ud800x\/\"\\\b\f\n\r\t"}"#,
                vec![pair(
                    "s",
                    Value::Str("é😀\u{FFFD}x/\"\\\u{8}\u{c}\n\r\t".into()),
                )],
            ),
        ];
        for (input, want) in table {
            assert_eq!(&load(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn emits_like_go() {
        let table: &[(Vec<Item>, &str)] = &[
            (vec![], "{}\n"),
            (
                vec![
                    pair("a<", Value::Str("x&y>\u{8}\u{1}\u{2028}\u{7f}".into())),
                    pair("n", Value::Float(12345678901234567890.0)),
                    pair("f", Value::Float(1e21)),
                    pair("e", Value::Map(vec![])),
                    Item::Comment("dropped".into()),
                    pair("l", Value::List(vec![Value::Comment("x".into())])),
                    pair("i", Value::Int(-7)),
                    pair("b", Value::Bytes(b"a\xffb".to_vec())),
                ],
                "{\n\t\"a\\u003c\": \"x\\u0026y\\u003e\\b\\u0001\\u2028\u{7f}\",\n\t\"n\": 12345678901234567000,\n\t\"f\": 1e+21,\n\t\"e\": {},\n\t\"l\": [],\n\t\"i\": -7,\n\t\"b\": \"a\\ufffdb\"\n}\n",
            ),
        ];
        for (tree, want) in table {
            let got = JsonStore.emit_plain(&vec![tree.clone()]).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), *want);
        }
    }

    #[test]
    fn hostile_input_is_refused_without_quoting_it() {
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(64),
            "1".to_string() + &"}".repeat(64)
        );
        assert!(load(&deep).is_ok(), "64 levels are allowed");
        let deeper = format!("{}1{}", "{\"a\":".repeat(65), "}".repeat(65));
        let list_deep = format!("{{\"a\":{}1{}}}", "[".repeat(64), "]".repeat(64));
        let mut big = b"{\"a\": \"".to_vec();
        big.resize(super::super::text::MAX_INPUT + 1, b'x');
        let table: &[(&[u8], &str)] = &[
            (b"", "f.json:1: empty file"),
            (
                b"{\"secret\": \"hunter2",
                "f.json:1: unexpected end of input",
            ),
            (
                b"{\"a\": {\"b\": 1,",
                "f.json:1: unexpected end of input in a",
            ),
            (b"{\"a\": 1,\n\"a\": 2}", "f.json:2: duplicate key a"),
            (b"{\"x\": {\"k\": 1, \"k\": 2}}", "duplicate key x.k"),
            (deeper.as_bytes(), "nested deeper than 64 levels"),
            (list_deep.as_bytes(), "nested deeper than 64 levels"),
            (b"{\"a\": \"\xff\"}", "f.json:1: invalid UTF-8"),
            (b"\xEF\xBB\xBF{}", "byte order mark"),
            (b"[1, 2]", "top-level object"),
            (b"{\"sops\": {}}", "reserved for sops metadata"),
            (b"{\"a\": hunter2}", "invalid value for a"),
            (b"{\"a\": 1e999}", "out of range"),
            (b"{\"a\": 01}", "expected ',' or '}' after a"),
            (
                b"{\"a\": [1 2]}",
                "f.json:1: expected ',' or ']' after a[0]",
            ),
            (b"{\"a\": [1", "f.json:1: unexpected end of input in a"),
            (b"{\"a\": \"x\ny\"}", "control character"),
            (b"{\"a\": \"\\q\"}", "invalid escape"),
            (b"{\"a\": 1} trailing", "after the top-level object"),
            (&big, "larger than 16 MiB"),
        ];
        for (input, want) in table {
            let e = err(input);
            assert!(
                e.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(&input[..input.len().min(40)])
            );
            assert!(!e.contains("hunter2") && !e.contains("secret\""), "{e}");
        }
    }

    #[test]
    fn encrypted_needs_metadata() {
        let e = JsonStore
            .load_encrypted(b"{\"a\": 1}", "f.json")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "f.json: not a sops file: no sops metadata");
        let e = JsonStore
            .load_encrypted(b"{\"sops\": 1}", "f.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an object"), "{e}");
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::Str),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
                prop::collection::vec((any::<String>(), inner), 0..4)
                    .prop_map(|kv| { Value::Map(dedup(kv)) }),
            ]
        })
    }

    fn dedup(kv: Vec<(String, Value)>) -> Vec<Item> {
        let mut seen = HashSet::new();
        kv.into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| Item::Pair(k, v))
            .collect()
    }

    proptest! {
        #[test]
        fn emit_then_load_is_identity(
            kv in prop::collection::vec(("[a-z]{0,3}|\\PC{0,6}", value()), 0..6)
        ) {
            let kv = kv.into_iter().filter(|(k, _)| k != METADATA_KEY).collect();
            let tree = vec![dedup(kv)];
            let bytes = JsonStore.emit_plain(&tree).unwrap();
            prop_assert_eq!(JsonStore.load_plain(&bytes, "p").unwrap(), tree);
        }
    }
}
