//! The sops JSON store, as sops 3.11 reads and writes it: key order kept, every
//! number a float64 (3.11's decoder does not use `UseNumber`, so `8080` is
//! encrypted as `type:float`), strings escaped as Go's `json.Marshal` escapes them,
//! tab-indented as `json.Indent` lays them out. The binary store's encrypted form
//! is this store's too.
//!
//! The reader is written here rather than taken from serde_json because sops's
//! reading is Go's: lone surrogate escapes become U+FFFD, every number is a float,
//! and errors must give a line and key path without quoting the document.

use super::document::{Branches, EncryptedDocument, Item, Store, Value};
use super::golang::json_float;
use super::text::{check_size, invalid, join_index, join_key, line_at, refuse_bom};
use crate::error::Result;

/// The top-level key under which sops keeps its metadata.
pub const METADATA_KEY: &str = "sops";

/// Objects and arrays nested deeper than this (the top-level object is the first
/// level) are refused: Go's JSON scanner stops there, so sops can neither write
/// nor read such a file.
pub const MAX_DEPTH: usize = 10_000;

/// The sops JSON store.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonStore;

impl Store for JsonStore {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<Branches> {
        let branch = parse(data, file, Rest::Ignored)?;
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
        let mut branch = parse(data, file, Rest::Refused)?;
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
        refuse_non_finite(branch.iter().filter_map(Item::value))?;
        let mut out = String::new();
        write_document(&mut out, branch);
        out.push('\n');
        Ok(out.into_bytes())
    }

    fn emit_value(&self, value: &Value) -> Result<Vec<u8>> {
        refuse_non_finite([value])?;
        let mut out = String::new();
        write_value(&mut out, value);
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

/// Refuses a document with an infinity or NaN, as sops does (Go's JSON encoder
/// has no way to write one) rather than print it as something else.
fn refuse_non_finite<'a>(values: impl IntoIterator<Item = &'a Value>) -> Result<()> {
    let mut stack: Vec<&Value> = values.into_iter().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Float(f) if !f.is_finite() => {
                return Err(super::text::unemittable(
                    "json",
                    format!("JSON has no way to write the number {f}, as sops says too"),
                ));
            }
            Value::Map(items) => stack.extend(items.iter().filter_map(Item::value)),
            Value::List(values) => stack.extend(values),
            _ => {}
        }
    }
    Ok(())
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

/// Whether anything but white space may follow the top-level object.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rest {
    /// sops reads a plaintext file token by token and stops at the end of the
    /// first object: what follows (a second document, anything) is not read.
    Ignored,
    /// sops reads an encrypted file whole with `json.Unmarshal` first, which
    /// refuses anything after the object.
    Refused,
}

/// Parses a JSON document whose top level is an object into its items, without
/// recursion, so that no nesting within [`MAX_DEPTH`] can exhaust the stack.
pub(crate) fn parse(data: &[u8], file: &str, rest: Rest) -> Result<Vec<Item>> {
    check_size(data, file)?;
    // Go's decoder sees a byte order mark as an invalid character.
    refuse_bom(data, file)?;
    let mut p = Parser {
        s: data,
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
    let items = p.document()?;
    p.ws();
    if rest == Rest::Refused && p.pos < p.s.len() {
        return Err(p.err("unexpected content after the top-level object"));
    }
    Ok(items)
}

/// An object or array being read. Its last item is the one being read (a
/// placeholder until its value is complete), so the open containers spell the
/// key path of the value being read.
enum Open {
    Object(Vec<Item>),
    Array(Vec<Value>),
}

impl Open {
    /// The value being read in this container.
    fn slot(&mut self) -> Option<&mut Value> {
        match self {
            Open::Object(items) => match items.last_mut() {
                Some(Item::Pair(_, value)) => Some(value),
                _ => None,
            },
            Open::Array(values) => values.last_mut(),
        }
    }

    /// `path` extended by the key or index of the item being read.
    fn extend(&self, path: &str) -> String {
        match self {
            Open::Object(items) => join_key(path, items.last().and_then(Item::key).unwrap_or("")),
            Open::Array(values) => join_index(path, values.len().saturating_sub(1)),
        }
    }
}

/// Paths longer than this many segments are shortened in errors to their first
/// and last few.
const SHOWN_SEGMENTS: usize = 16;

/// The key path the open containers spell: `a.b[2]`, with the middle of a very
/// deep one left out (`a.b.c.d[…].y.z`).
fn path_of(stack: &[Open]) -> String {
    // The top-level object's own path is empty; each container adds its item.
    if stack.len() <= SHOWN_SEGMENTS {
        return stack.iter().fold(String::new(), |p, open| open.extend(&p));
    }
    let head = stack[..4]
        .iter()
        .fold(String::new(), |p, open| open.extend(&p));
    let tail = &stack[stack.len() - 8..];
    tail.iter()
        .fold(format!("{head}[…]"), |p, open| open.extend(&p))
}

/// `path` as a container in an error: "the top-level object" when empty.
fn container(path: String) -> String {
    if path.is_empty() {
        "the top-level object".into()
    } else {
        path
    }
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

    /// Reads `close` if it comes next: the end of an empty object or array.
    fn empty(&mut self, close: u8) -> bool {
        self.ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.pos += 1;
        }
        empty
    }

    /// The object whose `{` is next, read to its end.
    fn document(&mut self) -> Result<Vec<Item>> {
        let mut stack: Vec<Open> = Vec::new();
        if self.open(&mut stack)?.is_some() {
            return Ok(Vec::new());
        }
        loop {
            // The value of the innermost container's last item.
            let Some(mut value) = self.value(&mut stack)? else {
                continue;
            };
            // Store it, and close every container it completes.
            loop {
                let Some(open) = stack.last_mut() else {
                    unreachable!("a value is read inside an open container");
                };
                if let Some(slot) = open.slot() {
                    *slot = value;
                }
                let close = match open {
                    Open::Object(_) => b'}',
                    Open::Array(_) => b']',
                };
                if !self.closed(close, &stack)? {
                    self.next_item(&mut stack)?;
                    break;
                }
                value = match stack.pop() {
                    Some(Open::Object(items)) if stack.is_empty() => return Ok(items),
                    Some(Open::Object(items)) => Value::Map(items),
                    Some(Open::Array(values)) => Value::List(values),
                    None => unreachable!("the stack was not empty"),
                };
            }
        }
    }

    /// Opens the object or array whose `{` or `[` is next: its value when it is
    /// empty, or `None` once it is on `stack` with its first item begun.
    fn open(&mut self, stack: &mut Vec<Open>) -> Result<Option<Value>> {
        if stack.len() >= MAX_DEPTH {
            return Err(self.err(format!(
                "{} is nested deeper than {MAX_DEPTH} levels, which sops cannot write either",
                path_of(stack)
            )));
        }
        let object = self.peek() == Some(b'{');
        self.pos += 1;
        if object {
            if self.empty(b'}') {
                return Ok(Some(Value::Map(Vec::new())));
            }
            stack.push(Open::Object(Vec::new()));
        } else {
            if self.empty(b']') {
                return Ok(Some(Value::List(Vec::new())));
            }
            stack.push(Open::Array(Vec::new()));
        }
        self.next_item(stack)?;
        Ok(None)
    }

    /// Begins the next item of the innermost container: an array's slot, or an
    /// object's key and `:`.
    fn next_item(&mut self, stack: &mut [Open]) -> Result<()> {
        let at = stack.len() - 1;
        if let Open::Array(values) = &mut stack[at] {
            values.push(Value::Null);
            return Ok(());
        }
        self.ws();
        match self.peek() {
            Some(b'"') => {}
            None => return Err(self.eof(&container(path_of(&stack[..at])))),
            Some(_) => {
                return Err(self.err(format!(
                    "expected a key in {}",
                    container(path_of(&stack[..at]))
                )));
            }
        }
        let key = self.string(|| "a key".into())?;
        if let Open::Object(items) = &mut stack[at] {
            items.push(Item::Pair(key, Value::Null));
        }
        self.ws();
        match self.peek() {
            Some(b':') => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.eof(&path_of(stack))),
            Some(_) => Err(self.err(format!("expected ':' after the key in {}", path_of(stack)))),
        }
    }

    /// What follows an item of the innermost container: `,` and another item
    /// (false), or its closing `close` (true).
    fn closed(&mut self, close: u8, stack: &[Open]) -> Result<bool> {
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
            None => Err(self.eof(&container(path_of(&stack[..stack.len() - 1])))),
            Some(_) => Err(self.err(format!(
                "expected ',' or '{}' after {}",
                char::from(close),
                path_of(stack)
            ))),
        }
    }

    /// The value of the innermost container's last item: a scalar or an empty
    /// container, or `None` when it opened a container that has items.
    fn value(&mut self, stack: &mut Vec<Open>) -> Result<Option<Value>> {
        self.ws();
        let Some(b) = self.peek() else {
            return Err(self.eof(&format!("the value of {}", path_of(stack))));
        };
        let invalid_value = |p: &Self| p.err(format!("invalid value for {}", path_of(stack)));
        let value = match b {
            b'{' | b'[' => return self.open(stack),
            b'"' => Some(Ok(Value::Str(
                self.string(|| format!("a string in {}", path_of(stack)))?,
            ))),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        };
        match value {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(reason)) => Err(self.err(format!("{reason} for {}", path_of(stack)))),
            None => Err(invalid_value(self)),
        }
    }

    fn literal(
        &mut self,
        word: &[u8],
        value: Value,
    ) -> Option<std::result::Result<Value, &'static str>> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Some(Ok(value))
        } else {
            None
        }
    }

    /// A JSON number: always a float, as sops 3.11's decoder has it.
    fn number(&mut self) -> Option<std::result::Result<Value, &'static str>> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos > from
        };
        let bad = Some(Err("invalid number"));
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else if !digits(self) {
            return bad;
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return bad;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return bad;
            }
        }
        // ASCII digits, signs, `.` and `e`.
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default();
        let Ok(f) = text.parse::<f64>() else {
            return bad;
        };
        if !f.is_finite() {
            return Some(Err("number out of range of a float64"));
        }
        Some(Ok(Value::Float(f)))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        let h = std::str::from_utf8(h).ok()?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(h, 16).ok()
    }

    /// A string whose opening quote is at `pos`, decoded as Go decodes it; `what`
    /// names it in errors.
    fn string(&mut self, what: impl Fn() -> String) -> Result<String> {
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
            // Go's decoder: each byte that is not part of UTF-8 is a U+FFFD.
            for chunk in self.s[run..self.pos].utf8_chunks() {
                out.push_str(chunk.valid());
                out.extend(std::iter::repeat_n('\u{fffd}', chunk.invalid().len()));
            }
            match self.peek() {
                None => return Err(self.eof(&format!("{} (unterminated string)", what()))),
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
                                return Err(self.err(format!("invalid \\u escape in {}", what())));
                            };
                            self.pos += 4;
                            out.push(self.surrogates(u));
                        }
                        None => return Err(self.eof(&what())),
                        Some(_) => {
                            self.pos -= 2;
                            return Err(self.err(format!("invalid escape in {}", what())));
                        }
                    }
                }
                Some(_) => {
                    return Err(self.err(format!("control character in {}", what())));
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

/// A line break and a tab for each level: a whole run at a time, as a deep
/// document has millions of them.
fn newline(out: &mut String, depth: usize) {
    const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";
    out.push('\n');
    let mut left = depth;
    while left > 0 {
        let n = left.min(TABS.len());
        out.push_str(&TABS[..n]);
        left -= n;
    }
}

/// A map or list being written: the items left, and whether one was written.
enum Writing<'a> {
    Map(std::slice::Iter<'a, Item>, bool),
    List(std::slice::Iter<'a, Value>, bool),
}

/// The next key (for a map) and value left in `level`, comments skipped, and
/// whether it is the first.
fn next_item<'a>(level: &mut Writing<'a>) -> Option<(Option<&'a str>, &'a Value, bool)> {
    match level {
        Writing::Map(items, started) => {
            let (k, v) = items.find_map(|i| match i {
                Item::Pair(k, v) => Some((k.as_str(), v)),
                Item::Comment(_) => None,
            })?;
            Some((Some(k), v, !std::mem::replace(started, true)))
        }
        Writing::List(values, started) => {
            let v = values.find(|v| !matches!(v, Value::Comment(_)))?;
            Some((None, v, !std::mem::replace(started, true)))
        }
    }
}

/// A map with no pairs, or a list with no values, written as `json.Indent` writes
/// it: `{}` or `[]`.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Map(items) => !items.iter().any(|i| matches!(i, Item::Pair(..))),
        Value::List(values) => values.iter().all(|v| matches!(v, Value::Comment(_))),
        _ => false,
    }
}

/// The document as sops writes it: `json.Indent` with a tab. Without recursion, so
/// that a deep document cannot exhaust the stack.
fn write_document(out: &mut String, items: &[Item]) {
    if !items.iter().any(|i| matches!(i, Item::Pair(..))) {
        out.push_str("{}");
        return;
    }
    out.push('{');
    write_nested(out, vec![Writing::Map(items.iter(), false)]);
}

/// One value as sops's `EmitValue` writes it for `--extract`, before `json.Indent`
/// with the store's indentation: like a document, without the final line break.
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Map(items) => write_document(out, items),
        Value::List(values) if !is_empty(value) => {
            out.push('[');
            write_nested(out, vec![Writing::List(values.iter(), false)]);
        }
        _ => write_scalar(out, value),
    }
}

/// Writes what is left of the open maps and lists on `stack`, closing each.
fn write_nested<'a>(out: &mut String, mut stack: Vec<Writing<'a>>) {
    while let Some(level) = stack.last_mut() {
        let Some((key, value, first)) = next_item(level) else {
            let close = match level {
                Writing::Map(..) => '}',
                Writing::List(..) => ']',
            };
            stack.pop();
            newline(out, stack.len());
            out.push(close);
            continue;
        };
        if !first {
            out.push(',');
        }
        newline(out, stack.len());
        if let Some(key) = key {
            quote_into(out, key);
            out.push_str(": ");
        }
        match value {
            Value::Map(items) if !is_empty(value) => {
                out.push('{');
                stack.push(Writing::Map(items.iter(), false));
            }
            Value::List(values) if !is_empty(value) => {
                out.push('[');
                stack.push(Writing::List(values.iter(), false));
            }
            _ => write_scalar(out, value),
        }
    }
}

/// A scalar, or an empty map or list.
fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Map(_) => out.push_str("{}"),
        Value::List(_) => out.push_str("[]"),
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
    use std::collections::HashSet;

    fn pair(k: &str, v: Value) -> Item {
        Item::Pair(k.into(), v)
    }

    fn load(s: &str) -> Result<Vec<Item>> {
        JsonStore
            .load_plain(s.as_bytes(), "f.json")
            .map(|mut b| b.remove(0))
    }

    /// Runs `f` on a stack as large as the command line's: parsing and writing take
    /// none, but freeing a tree 10,000 levels deep does.
    fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(256 << 20)
                .spawn_scoped(scope, f)
                .unwrap()
                .join()
                .unwrap()
        })
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
        // Go's scanner refuses nesting past 10,000 levels, the top-level object
        // the first.
        let deep = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(
            on_big_stack(|| load(&deep).is_ok()),
            "{MAX_DEPTH} levels are allowed"
        );
        let deeper = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let list_deep = format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
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
            (deeper.as_bytes(), "nested deeper than 10000 levels"),
            (list_deep.as_bytes(), "nested deeper than 10000 levels"),
            (b"{\"a\": \xff}", "f.json:1: invalid value for a"),
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
    fn duplicate_keys_are_kept_in_order_as_sops_keeps_them() {
        let tree = load("{\"a\": 1,\n\"x\": {\"k\": \"one\", \"k\": \"two\"},\n\"a\": 2}").unwrap();
        assert_eq!(
            tree,
            vec![
                pair("a", Value::Float(1.0)),
                pair(
                    "x",
                    Value::Map(vec![
                        pair("k", Value::Str("one".into())),
                        pair("k", Value::Str("two".into()))
                    ])
                ),
                pair("a", Value::Float(2.0)),
            ]
        );
        let out = JsonStore.emit_plain(&vec![tree]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n\t\"a\": 1,\n\t\"x\": {\n\t\t\"k\": \"one\",\n\t\t\"k\": \"two\"\n\t},\n\t\"a\": 2\n}\n"
        );
    }

    /// Go's decoder reads each byte of a string that is not part of UTF-8 as a
    /// U+FFFD, in keys and values.
    #[test]
    fn bytes_that_are_not_utf8_read_as_go_reads_them() {
        let tree = JsonStore
            .load_plain(
                b"{\"k\xff\": \"\xe9t\xe9 \xe2\x82 \xe2\x82\xac\"}\n\xff",
                "f.json",
            )
            .unwrap();
        assert_eq!(
            tree[0],
            vec![pair(
                "k\u{fffd}",
                Value::Str("\u{fffd}t\u{fffd} \u{fffd}\u{fffd} \u{20ac}".into())
            )]
        );
    }

    #[test]
    fn what_follows_the_object_is_ignored_in_plaintext_and_refused_when_encrypted() {
        for rest in ["\n{\"b\": 2}\n", " trailing", "]"] {
            let input = format!("{{\"a\": 1}}{rest}");
            assert_eq!(load(&input).unwrap(), vec![pair("a", Value::Float(1.0))]);
            let e = JsonStore
                .load_encrypted(input.as_bytes(), "f.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains("f.json:"), "{e}");
            assert!(e.contains("after the top-level object"), "{e}");
        }
    }

    #[test]
    fn deep_documents_are_read_and_written_without_recursion() {
        let deep = |levels: usize| {
            format!(
                "{}\"v\"{}",
                "{\"a\": [".repeat(levels / 2),
                "]}".repeat(levels / 2)
            )
        };
        on_big_stack(|| {
            assert_eq!(load(&deep(MAX_DEPTH)).unwrap().len(), 1);
            // Written with a tab a level, a tree this deep is a few MiB.
            let tree = load(&deep(1000)).unwrap();
            let out = JsonStore.emit_plain(&vec![tree.clone()]).unwrap();
            assert_eq!(JsonStore.load_plain(&out, "p").unwrap(), vec![tree]);
        });
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
