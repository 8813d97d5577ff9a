//! The sops INI store, as sops 3.11 reads and writes it through go-ini v1.67:
//! each section is a top-level key whose value is a map of string values. The
//! keyless first section is `DEFAULT`; every `[name]` line starts a section of its
//! own, an explicit `[DEFAULT]` and a repeated name included (go-ini's
//! `AllowNonUniqueSections`), and a key repeated in a section keeps its first place
//! with its last value and comment. Comments attach to the next section or key (and
//! are written as `; …` lines before it), `key = value` padding is re-aligned per
//! section, and the metadata is a `[sops]` section of flattened keys. Unlike sops, a
//! key, value or section name that go-ini would write back as something else (a `-`
//! auto-increment key, quotes it cannot wrap) is refused when read, and a value
//! ending in a backslash is quoted so it does not continue onto the next line.

use std::collections::HashMap;

use super::document::{Branches, EncryptedDocument, Item, Store, Value};
use super::flatten::{flatten_metadata, unflatten_metadata};
use super::json::METADATA_KEY;
use super::text::{check_size, invalid, join_key, line_at, strip_bom, unemittable, val_to_string};
use crate::error::Result;

/// The name of the section that holds keys before the first `[section]`.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// The sops INI store.
#[derive(Debug, Clone, Copy, Default)]
pub struct IniStore;

/// A section as go-ini holds it.
struct Section {
    name: String,
    line: u64,
    comment: String,
    keys: Vec<Key>,
}

struct Key {
    name: String,
    value: Value,
    comment: String,
}

/// go-ini's reader over the file, line by line, each line with its `\n`.
struct Lines<'a> {
    rest: &'a str,
    line: u64,
    eof: bool,
}

impl<'a> Lines<'a> {
    /// go-ini's `readUntil('\n')`.
    fn next_line(&mut self) -> &'a str {
        self.line += 1;
        match self.rest.find('\n') {
            Some(i) => {
                let (line, rest) = self.rest.split_at(i + 1);
                self.rest = rest;
                line
            }
            None => {
                self.eof = true;
                std::mem::take(&mut self.rest)
            }
        }
    }
}

/// go-ini's `hasSurroundedQuote`.
fn surrounded(s: &str, quote: char) -> bool {
    s.len() >= 2
        && s.starts_with(quote)
        && s.ends_with(quote)
        && s[1..].find(quote) == Some(s.len() - 2)
}

/// Where the bytes that are not UTF-8 go in the text the parser reads: byte `b` is
/// the private-use character `RAW + b`, which no rule of go-ini's treats as special
/// (Go sees such a byte as a character that is neither space nor punctuation).
const RAW: u32 = 0x10_FF00;

fn is_raw(c: char) -> bool {
    u32::from(c) >= RAW
}

/// `data` as text, each byte that is not UTF-8 carried as a `RAW` character. A
/// file with such bytes that also has characters from U+10FF00 up is refused, as
/// the two could not be told apart.
fn decode(data: &[u8], file: &str) -> Result<(String, bool)> {
    let mut out = String::with_capacity(data.len());
    let (mut raw, mut clash, mut at) = (false, None, 0);
    for chunk in data.utf8_chunks() {
        let valid = chunk.valid();
        if clash.is_none() {
            clash = valid.find(is_raw).map(|i| at + i);
        }
        out.push_str(valid);
        for &b in chunk.invalid() {
            raw = true;
            out.extend(char::from_u32(RAW + u32::from(b)));
        }
        at += valid.len() + chunk.invalid().len();
    }
    if let (true, Some(at)) = (raw, clash) {
        return Err(invalid(
            file,
            Some(line_at(data, at)),
            "invalid UTF-8 in a file that also has characters from U+10FF00 up; save it as UTF-8",
        ));
    }
    Ok((out, raw))
}

/// A value read with [`decode`] from a file that is not all UTF-8 (`raw`): text, or
/// the bytes it stands for when some are not UTF-8.
fn raw_value(value: String, raw: bool) -> Value {
    if !raw || !value.contains(is_raw) {
        return Value::Str(value);
    }
    let mut bytes = Vec::with_capacity(value.len());
    for c in value.chars() {
        if is_raw(c) {
            bytes.push((u32::from(c) - RAW) as u8);
        } else {
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    Value::Bytes(bytes)
}

/// go-ini's parser with the options sops uses (`AllowNonUniqueSections`). Values
/// are bytes, as in Go; section names, keys and comments must be UTF-8.
fn parse(data: &[u8], file: &str) -> Result<Vec<Section>> {
    check_size(data, file)?;
    // go-ini skips a UTF-8 byte order mark.
    let (text, has_raw) = decode(strip_bom(data), file)?;
    let err = |line: u64, reason: &str| invalid(file, Some(line), reason);
    let not_utf8 = |line: u64, what: &str| {
        invalid(
            file,
            Some(line),
            format!(
                "invalid UTF-8 in a {what}; INI section names, keys and comments must be UTF-8 text"
            ),
        )
    };
    let mut lines = Lines {
        rest: &text,
        line: 0,
        eof: false,
    };
    let mut sections = vec![Section {
        name: DEFAULT_SECTION.into(),
        line: 1,
        comment: String::new(),
        keys: Vec::new(),
    }];
    let mut comment = String::new();
    // The keys of the current section, by name: where each is in `keys`.
    let mut seen: HashMap<String, usize> = HashMap::new();
    while !lines.eof {
        let raw = lines.next_line();
        let n = lines.line;
        let line = raw.trim_start();
        if line.is_empty() {
            continue;
        }
        if line.starts_with(['#', ';']) {
            comment.push_str(line);
            continue;
        }
        if line.starts_with('[') {
            let Some(close) = line.rfind(']') else {
                return Err(err(n, "unclosed section header"));
            };
            let name = &line[1..close];
            if name.is_empty() {
                return Err(err(n, "empty section name"));
            }
            if !writable_section(name) {
                return Err(err(
                    n,
                    "a section name with a line break cannot be written back",
                ));
            }
            if has_raw && name.contains(is_raw) {
                return Err(not_utf8(n, "section name"));
            }
            if let Some(i) = line[close + 1..].find(['#', ';']) {
                comment.push_str(&line[close + 1 + i..]);
            }
            if has_raw && comment.contains(is_raw) {
                return Err(not_utf8(n, "comment"));
            }
            let section = Section {
                name: name.to_string(),
                line: n,
                comment: comment.trim().to_string(),
                keys: Vec::new(),
            };
            comment.clear();
            sections.push(section);
            seen.clear();
            continue;
        }
        let (name, offset) = key_name(line).map_err(|reason| err(n, reason))?;
        if has_raw && name.contains(is_raw) {
            return Err(not_utf8(n, "key"));
        }
        // go-ini reads these (`-` as an auto-increment `#N`) but writes them back as
        // something else, so sops cannot decrypt the file it wrote: refuse them here.
        if !key_reads_back(&name) {
            return Err(err(
                n,
                "a key that is empty, `-`, starts with #, ; or [, or mixes quote characters cannot be written back to an INI file",
            ));
        }
        let value =
            value(&line[offset..], &mut lines, &mut comment).map_err(|reason| err(n, reason))?;
        let value = raw_value(value, has_raw);
        if !val_to_string(&value).is_some_and(|bytes| value_reads_back(&bytes)) {
            return Err(err(
                n,
                "a value that mixes quote characters this way cannot be written back to an INI file",
            ));
        }
        let key_comment = std::mem::take(&mut comment).trim().to_string();
        if has_raw && key_comment.contains(is_raw) {
            return Err(not_utf8(n, "comment"));
        }
        let section = sections.last_mut().unwrap_or_else(|| unreachable!());
        // go-ini's `NewKey`: a key seen before in this section takes the new value
        // (and comment) in its first place.
        match seen.get(&name) {
            Some(&at) => {
                section.keys[at].value = value;
                section.keys[at].comment = key_comment;
            }
            None => {
                seen.insert(name.clone(), section.keys.len());
                section.keys.push(Key {
                    name,
                    value,
                    comment: key_comment,
                });
            }
        }
    }
    Ok(sections)
}

/// Whether `[name]` reads back as section `name`.
fn writable_section(name: &str) -> bool {
    !name.is_empty() && !name.contains(['\n', '\r'])
}

/// go-ini's quoting of a key it writes.
fn quote_key(name: &str) -> String {
    if name.contains(['"', '=', ':']) {
        format!("`{name}`")
    } else if name.contains('`') {
        format!("\"\"\"{name}\"\"\"")
    } else {
        name.to_string()
    }
}

/// Whether go-ini writes `key` so that it reads back as the same key. It does not
/// for an empty key, `-` (read as an auto-increment `#N`), a key starting with a
/// comment or section character or a byte order mark (skipped at the start of a
/// file), and keys whose quoting clashes with their content.
fn key_reads_back(key: &str) -> bool {
    !key.is_empty()
        && key.trim() == key
        && !key.contains(['\n', '\r'])
        && !key.starts_with(['#', ';', '[', '\u{feff}'])
        && key != "-"
        && key_name(&format!("{} = ", quote_key(key))).is_ok_and(|(k, _)| k == key)
}

/// go-ini's quoting of a value it writes.
fn quote_value(v: &[u8]) -> Vec<u8> {
    let has = |set: &[u8]| v.iter().any(|b| set.contains(b));
    let wrap = |quote: &[u8]| [quote, v, quote].concat();
    if has(b"\n`") {
        wrap(b"\"\"\"")
    } else if has(b"#;") || v.ends_with(b"\\") {
        // go-ini writes a trailing backslash bare, which reads back as a
        // continuation line swallowing the next key; sops then loses it.
        wrap(b"`")
    } else if has_surrounding_space(v) {
        wrap(b"\"")
    } else {
        v.to_vec()
    }
}

/// Whether a value reads back from the form `quote_value` gives it, with nothing
/// taken for a comment. Values that are not UTF-8 are written as they are.
fn value_reads_back(v: &[u8]) -> bool {
    let Ok(mut written) = String::from_utf8(quote_value(v)) else {
        return true;
    };
    written.push('\n');
    let (first, rest) = written.split_at(written.find('\n').unwrap_or_default() + 1);
    let mut lines = Lines {
        rest,
        line: 0,
        eof: false,
    };
    let mut comment = String::new();
    value(first, &mut lines, &mut comment).is_ok_and(|back| back.as_bytes() == v)
        && comment.is_empty()
        && lines.rest.is_empty()
}

/// The first of `quotes` that `line` opens with; go-ini takes `"""` only on a line
/// longer than `triple_after` bytes.
fn opening_quote(line: &str, quotes: &[&'static str], triple_after: usize) -> Option<&'static str> {
    quotes
        .iter()
        .copied()
        .find(|q| line.starts_with(q) && (*q != "\"\"\"" || line.len() > triple_after))
}

/// go-ini's `readKeyName` with delimiters `=` and `:`: the key and the offset of
/// the value.
fn key_name(line: &str) -> std::result::Result<(String, usize), &'static str> {
    if let Some(q) = opening_quote(line, &["\"\"\"", "\"", "`"], 6) {
        let start = q.len();
        let pos = line[start..].find(q).ok_or("missing closing key quote")? + start;
        let i = line[pos + start..]
            .find(['=', ':'])
            .ok_or("expected key = value")?;
        return Ok((line[start..pos].trim().to_string(), pos + i + start + 1));
    }
    match line.find(['=', ':']) {
        None => Err("expected key = value"),
        Some(0) => Err("empty key name"),
        Some(end) => Ok((line[..end].trim().to_string(), end + 1)),
    }
}

/// go-ini's `readValue` (no Python multi-line values, inline comments on).
fn value(
    input: &str,
    lines: &mut Lines,
    comment: &mut String,
) -> std::result::Result<String, &'static str> {
    let line = input.trim_start();
    if line.is_empty() {
        return Ok(String::new());
    }
    if let Some(q) = opening_quote(line, &["\"\"\"", "`"], 3) {
        let start = q.len();
        return match line[start..].rfind(q) {
            Some(pos) => Ok(line[start..start + pos].to_string()),
            None => {
                // readMultilines
                let mut val = line[start..].to_string();
                loop {
                    let next = lines.next_line();
                    if let Some(pos) = next.rfind(q) {
                        val.push_str(&next[..pos]);
                        if let Some(i) = next[pos..].find(['#', ';']) {
                            comment.push_str(next[pos + i..].trim());
                        }
                        return Ok(val);
                    }
                    val.push_str(next);
                    if lines.eof {
                        return Err("missing closing quote of a multi-line value");
                    }
                }
            }
        };
    }
    let mut line = line.trim();
    if let Some(first) = line.strip_suffix('\\') {
        // readContinuationLines
        let mut val = first.to_string();
        loop {
            let next = lines.next_line().trim();
            if next.is_empty() {
                break;
            }
            val.push_str(next);
            if !val.ends_with('\\') {
                break;
            }
            val.pop();
            if lines.eof {
                break;
            }
        }
        return Ok(val);
    }
    if let Some(i) = line.find(['#', ';']) {
        comment.push_str(&line[i..]);
        line = line[..i].trim();
    }
    if surrounded(line, '\'') || surrounded(line, '"') {
        line = &line[1..line.len() - 1];
    }
    Ok(line.to_string())
}

/// sops's `stripCommentChar`.
fn strip_comment_char(c: &str) -> &str {
    if c.starts_with(';') {
        c.trim_start_matches([';', ' '])
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' '])
    } else {
        c
    }
}

/// A section as sops's tree has it: the section comment first, each key's
/// comment after the key. A comment with no text (a lone `;`) is left out, as
/// writing the file would drop it.
fn section_item(section: Section) -> Item {
    let mut items = Vec::new();
    let comment = |c: &str| Some(strip_comment_char(c).to_string()).filter(|c| !c.is_empty());
    if let Some(c) = comment(&section.comment) {
        items.push(Item::Comment(c));
    }
    for key in section.keys {
        items.push(Item::Pair(key.name, key.value));
        if let Some(c) = comment(&key.comment) {
            items.push(Item::Comment(c));
        }
    }
    Item::Pair(section.name, Value::Map(items))
}

impl Store for IniStore {
    fn load_plain(&self, data: &[u8], file: &str) -> Result<Branches> {
        let sections = parse(data, file)?;
        if let Some(s) = sections.iter().find(|s| s.name == METADATA_KEY) {
            return Err(invalid(
                file,
                Some(s.line),
                "section [sops] is reserved for sops metadata: is this file already encrypted?",
            ));
        }
        Ok(vec![sections.into_iter().map(section_item).collect()])
    }

    fn load_encrypted(&self, data: &[u8], file: &str) -> Result<EncryptedDocument> {
        let mut sections = parse(data, file)?;
        let at = sections
            .iter()
            .position(|s| s.name == METADATA_KEY)
            .ok_or_else(|| invalid(file, None, "not a sops file: no sops metadata"))?;
        let section = sections.remove(at);
        let flat = section
            .keys
            .into_iter()
            .map(|k| {
                let value = val_to_string(&k.value).unwrap_or_default();
                (k.name, String::from_utf8_lossy(&value).into_owned())
            })
            .collect();
        let metadata = unflatten_metadata(flat, file)?;
        // Flattening again escapes line breaks, which can leave a value quoted
        // in a way that does not read back.
        if metadata_keys(&metadata).is_err() {
            return Err(invalid(
                file,
                Some(section.line),
                "the [sops] section holds a value that cannot be written back",
            ));
        }
        Ok(EncryptedDocument {
            branches: vec![sections.into_iter().map(section_item).collect()],
            metadata,
        })
    }

    fn emit_plain(&self, branches: &Branches) -> Result<Vec<u8>> {
        let sections = sections(branches)?;
        Ok(write(&sections))
    }

    fn emit_encrypted(&self, doc: &EncryptedDocument) -> Result<Vec<u8>> {
        let mut sections = sections(&doc.branches)?;
        if sections.iter().any(|s| s.name == METADATA_KEY) {
            return Err(unemittable(
                "ini",
                "the document already has a [sops] section",
            ));
        }
        sections.push(OutSection {
            name: METADATA_KEY.into(),
            comment: String::new(),
            keys: metadata_keys(&doc.metadata)?,
        });
        Ok(write(&sections))
    }
}

/// The keys of the `[sops]` section that holds `metadata`.
fn metadata_keys(metadata: &[Item]) -> Result<Vec<OutKey>> {
    flatten_metadata(metadata)?
        .into_iter()
        .map(|(name, value)| {
            if !value_reads_back(value.as_bytes()) {
                return Err(unemittable(
                    "ini",
                    format!("sops metadata {name} cannot be written to an INI file"),
                ));
            }
            Ok(OutKey {
                name,
                value: value.into_bytes(),
                comment: String::new(),
            })
        })
        .collect()
}

struct OutSection {
    name: String,
    comment: String,
    keys: Vec<OutKey>,
}

struct OutKey {
    name: String,
    value: Vec<u8>,
    comment: String,
}

/// The sections sops's `encodeTree` builds from the tree: a leading comment is
/// the section's; a later comment belongs to the key before it (the last one
/// wins, as in sops).
fn sections(branches: &Branches) -> Result<Vec<OutSection>> {
    let mut out: Vec<OutSection> = Vec::new();
    for item in branches.iter().flatten() {
        let Item::Pair(name, value) = item else {
            continue;
        };
        if !writable_section(name) {
            return Err(unemittable(
                "ini",
                format!("section name {} cannot be written", join_key("", name)),
            ));
        }
        let Value::Map(items) = value else {
            return Err(unemittable(
                "ini",
                format!("section {} must be a map of keys", join_key("", name)),
            ));
        };
        let mut section = OutSection {
            name: name.clone(),
            comment: String::new(),
            keys: Vec::new(),
        };
        let mut rest = items.as_slice();
        if let [Item::Comment(c), tail @ ..] = rest {
            section.comment = c.clone();
            rest = tail;
        }
        // The key a comment after it belongs to (go-ini's `lastItem`), and where
        // each key is.
        let mut last: Option<usize> = None;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for item in rest {
            match item {
                Item::Comment(c) => {
                    if let Some(at) = last {
                        section.keys[at].comment.clone_from(c);
                    }
                }
                Item::Pair(key, value) => {
                    let path = join_key(&join_key("", name), key);
                    if !key_reads_back(key) {
                        return Err(unemittable(
                            "ini",
                            format!("key {path} cannot be written to an INI file"),
                        ));
                    }
                    let Some(value) = val_to_string(value) else {
                        return Err(unemittable(
                            "ini",
                            format!(
                                "cannot use a map or list as an INI value; offending key {path}"
                            ),
                        ));
                    };
                    if !value_reads_back(&value) {
                        return Err(unemittable(
                            "ini",
                            format!("the value of key {path} cannot be written to an INI file"),
                        ));
                    }
                    // go-ini's `NewKey` again: a repeated key takes the new value
                    // in its first place.
                    match seen.get(key.as_str()) {
                        Some(&at) => {
                            section.keys[at].value = value;
                            last = Some(at);
                        }
                        None => {
                            seen.insert(key, section.keys.len());
                            section.keys.push(OutKey {
                                name: key.clone(),
                                value,
                                comment: String::new(),
                            });
                            last = Some(section.keys.len() - 1);
                        }
                    }
                }
            }
        }
        out.push(section);
    }
    Ok(out)
}

/// go-ini's `WriteTo` with its defaults (`PrettyFormat`, `PrettySection`).
/// Writes a comment's lines as go-ini does: a line with its own `#` or `;` keeps it,
/// with one space after; any other gets `; ` (a key's comment lines also trimmed).
fn push_comment(buf: &mut Vec<u8>, comment: &str, trim_plain: bool) {
    if comment.is_empty() {
        return;
    }
    for line in comment.split('\n') {
        match line.as_bytes().first() {
            Some(c @ (b'#' | b';')) => {
                buf.push(*c);
                buf.push(b' ');
                buf.extend_from_slice(line[1..].trim().as_bytes());
            }
            _ => {
                buf.extend_from_slice(b"; ");
                let plain = if trim_plain { line.trim() } else { line };
                buf.extend_from_slice(plain.as_bytes());
            }
        }
        buf.push(b'\n');
    }
}

fn write(sections: &[OutSection]) -> Vec<u8> {
    let mut buf = Vec::new();
    let last = sections.len().saturating_sub(1);
    for (i, sec) in sections.iter().enumerate() {
        push_comment(&mut buf, &sec.comment, false);
        if i > 0 || sec.name.to_uppercase() != DEFAULT_SECTION {
            buf.push(b'[');
            buf.extend_from_slice(sec.name.as_bytes());
            buf.extend_from_slice(b"]\n");
        } else if sec.keys.is_empty() {
            continue;
        }
        let align = sec
            .keys
            .iter()
            .map(|k| quote_key(&k.name).len())
            .max()
            .unwrap_or(0);
        for key in &sec.keys {
            push_comment(&mut buf, &key.comment, true);
            let name = quote_key(&key.name);
            buf.extend_from_slice(name.as_bytes());
            buf.resize(buf.len() + (align - name.len()), b' ');
            buf.extend_from_slice(b" = ");
            buf.extend_from_slice(&quote_value(&key.value));
            buf.push(b'\n');
        }
        if i != last {
            buf.push(b'\n');
        }
    }
    buf
}

/// Whether Go's `strings.TrimSpace` would shorten `v` (bytes that are not UTF-8
/// are not space).
fn has_surrounding_space(v: &[u8]) -> bool {
    let lossy = String::from_utf8_lossy(v);
    lossy.trim().len() != lossy.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn pair(k: &str, v: Value) -> Item {
        Item::Pair(k.into(), v)
    }

    fn comment(c: &str) -> Item {
        Item::Comment(c.into())
    }

    fn load(input: &str) -> Vec<Item> {
        IniStore
            .load_plain(input.as_bytes(), "f.ini")
            .unwrap()
            .remove(0)
    }

    #[test]
    fn vectors_round_trip_byte_for_byte() {
        let enc = sops_vector!("app.enc.ini");
        let plain = sops_vector!("app.plain.ini");
        let doc = IniStore.load_encrypted(enc, "app.enc.ini").unwrap();
        assert_eq!(IniStore.emit_encrypted(&doc).unwrap(), enc);
        let tree = IniStore.load_plain(plain, "app.plain.ini").unwrap();
        assert_eq!(IniStore.emit_plain(&tree).unwrap(), plain);
        let tree = IniStore
            .load_plain(sops_vector!("app.input.ini"), "app.input.ini")
            .unwrap();
        assert_eq!(IniStore.emit_plain(&tree).unwrap(), plain);
    }

    #[test]
    fn vector_tree_is_sops_tree() {
        let tree = IniStore
            .load_plain(sops_vector!("app.input.ini"), "app.input.ini")
            .unwrap();
        let want = vec![
            pair(DEFAULT_SECTION, Value::Map(vec![])),
            pair(
                "database",
                Value::Map(vec![
                    comment("global comment"),
                    pair("host", s("db.internal.example")),
                    pair("port", s("5432")),
                    pair("password", s("ini-secret-value")),
                ]),
            ),
            pair(
                "api",
                Value::Map(vec![
                    pair("token", s("ini-token-abc")),
                    pair("url", s("https://api.example.test")),
                ]),
            ),
        ];
        assert_eq!(tree, vec![want]);
        let doc = IniStore
            .load_encrypted(sops_vector!("app.enc.ini"), "app.enc.ini")
            .unwrap();
        let keys: Vec<&str> = doc.metadata.iter().filter_map(Item::key).collect();
        // The order sops (Go map order) happened to write them in.
        assert_eq!(
            keys,
            [
                "version",
                "age",
                "lastmodified",
                "mac",
                "unencrypted_suffix"
            ]
        );
        assert!(matches!(&doc.metadata[1], Item::Pair(_, Value::List(l)) if l.len() == 1));
    }

    /// The file sops 3.11 was given and what `sops decrypt` printed for it
    /// (checked against the real binary).
    #[test]
    fn go_ini_quirks_as_sops_3_11() {
        let input = "top = 1\n# c before s\n[s] ; inline sec\n# k1 comment\n; k1 second\na = x ; inline\nb=  spaced  \nc = \"quoted\"\nd = `back#tick`\ne = \"\"\"multi\nline\"\"\"\nf = has#hash\nkey:colon = v\nempty =\n\n[ t ]\n# dangling\n";
        let want = "top = 1\n\n; c before s\n; inline sec\n[s]\n; k1 comment\n; k1 second\n; inline\na     = x\nb     = spaced\nc     = quoted\nd     = `back#tick`\ne     = \"\"\"multi\nline\"\"\"\n; hash\nf     = has\nkey   = colon = v\nempty = \n\n[ t ]\n";
        let tree = IniStore.load_plain(input.as_bytes(), "f.ini").unwrap();
        let out = IniStore.emit_plain(&tree).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want);
        assert_eq!(
            tree[0][0],
            pair(DEFAULT_SECTION, Value::Map(vec![pair("top", s("1"))]))
        );
    }

    #[test]
    fn loads_values() {
        let table: &[(&str, Value)] = &[
            ("a = x", s("x")),
            ("a = 'q'", s("q")),
            ("a = \"q\"x\"", s("\"q\"x\"")),
            ("a =", s("")),
            ("a = `x;y`  ; c", s("x;y")),
            ("a = x\\\n  y\\\n z\n", s("xyz")),
            ("a = \"\"\"x\n y\n\"\"\" ; c", s("x\n y\n")),
            ("`a:b` = x", s("x")),
        ];
        for (input, want) in table {
            let tree = load(input);
            let Item::Pair(_, Value::Map(items)) = &tree[0] else {
                panic!("{input}")
            };
            let Item::Pair(_, got) = &items[0] else {
                panic!("{input}")
            };
            assert_eq!(got, want, "{input:?}");
        }
    }

    /// go-ini starts every file with a keyless DEFAULT section and opens a new
    /// section at every header, `[DEFAULT]` included; only the keyless one, when
    /// first and empty, is written without its header.
    #[test]
    fn an_explicit_default_section_is_a_section_of_its_own() {
        let table: &[(&str, &str)] = &[
            (
                "[DEFAULT]\na = 1\n[s]\nb = 2\n",
                "[DEFAULT]\na = 1\n\n[s]\nb = 2\n",
            ),
            (
                "; c0\n[DEFAULT] ; c1\n; c2\na = 1\n",
                "; c0\n; c1\n[DEFAULT]\n; c2\na = 1\n",
            ),
            ("x = 0\n[DEFAULT]\na = 1\n", "x = 0\n\n[DEFAULT]\na = 1\n"),
            (
                "[s]\nb = 2\n[DEFAULT]\na = 1\n",
                "[s]\nb = 2\n\n[DEFAULT]\na = 1\n",
            ),
            ("[DEFAULT]\n[s]\na=1\n", "[DEFAULT]\n\n[s]\na = 1\n"),
        ];
        for (input, want) in table {
            let tree = IniStore.load_plain(input.as_bytes(), "f.ini").unwrap();
            let got = IniStore.emit_plain(&tree).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{input:?}");
        }
        let tree = load("[DEFAULT]\na = 1\n");
        assert_eq!(
            tree,
            vec![
                pair(DEFAULT_SECTION, Value::Map(vec![])),
                pair(DEFAULT_SECTION, Value::Map(vec![pair("a", s("1"))])),
            ]
        );
    }

    /// sops's values are Go strings, bytes of any kind: one that is not UTF-8 is
    /// read and written back as it is.
    #[test]
    fn values_that_are_not_utf8_are_kept_as_bytes() {
        // In a UTF-8 file, the characters that carry other bytes are just text.
        let tree = load("[s]\na = \u{10ff41}\n");
        assert_eq!(
            tree[1],
            pair("s", Value::Map(vec![pair("a", s("\u{10ff41}"))]))
        );
        let input = b"[s]\na = \xe9t\xe9 \xff\nb = \xe9 # c\nc = \xe9\xa0\n";
        let tree = IniStore.load_plain(input, "f.ini").unwrap();
        assert_eq!(
            tree[0][1],
            pair(
                "s",
                Value::Map(vec![
                    pair("a", Value::Bytes(b"\xe9t\xe9 \xff".to_vec())),
                    pair("b", Value::Bytes(b"\xe9".to_vec())),
                    comment("c"),
                    pair("c", Value::Bytes(b"\xe9\xa0".to_vec())),
                ])
            )
        );
        assert_eq!(
            IniStore.emit_plain(&tree).unwrap(),
            b"[s]\na = \xe9t\xe9 \xff\n; c\nb = \xe9\nc = \xe9\xa0\n"
        );
    }

    /// A repeated section is a section of its own; a repeated key keeps its first
    /// place with its last value and comment.
    #[test]
    fn repeated_sections_and_keys_read_as_go_ini_reads_them() {
        let tree = load("[s]\n; first\na = 1\nb = x\n; second\na = 2\n[t]\nc = 3\n[s]\nb = 4\n");
        assert_eq!(
            tree[1..],
            [
                pair(
                    "s",
                    Value::Map(vec![
                        pair("a", s("2")),
                        comment("second"),
                        pair("b", s("x"))
                    ])
                ),
                pair("t", Value::Map(vec![pair("c", s("3"))])),
                pair("s", Value::Map(vec![pair("b", s("4"))])),
            ]
        );
        let got = IniStore.emit_plain(&vec![tree]).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "[s]\n; second\na = 2\nb = x\n\n[t]\nc = 3\n\n[s]\nb = 4\n"
        );
    }

    #[test]
    fn bom_is_skipped_like_go_ini() {
        assert_eq!(
            load("\u{feff}[s]\na = 1\n")[1],
            pair("s", Value::Map(vec![pair("a", s("1"))]))
        );
    }

    /// Reads each input as a plaintext `f.ini` and checks it is refused with an
    /// error that starts as given and quotes no value.
    fn assert_refused(table: &[(&[u8], &str)]) {
        for (input, want) in table {
            let e = IniStore.load_plain(input, "f.ini").unwrap_err().to_string();
            assert!(e.starts_with(want), "{input:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn hostile_input_is_refused_without_quoting_it() {
        let table: &[(&[u8], &str)] = &[
            (b"[s\na = hunter2\n", "f.ini:1: unclosed section header"),
            (b"[s]\nhunter2\n", "f.ini:2: expected key = value"),
            (b"[s]\n= hunter2\n", "f.ini:2: empty key name"),
            (b"[s]\n- = hunter2\n", "f.ini:2: a key that is empty, `-`"),
            (
                b"[s]\n`#a` = hunter2\n",
                "f.ini:2: a key that is empty, `-`",
            ),
            (b"[]\n", "f.ini:1: empty section name"),
            (
                b"[s]\na = \"\"\"hunter2\n",
                "f.ini:2: missing closing quote",
            ),
            (
                b"[s]\n\"a = hunter2\n",
                "f.ini:2: missing closing key quote",
            ),
            (b"[s]\n\xffa = hunter2\n", "f.ini:2: invalid UTF-8 in a key"),
            (
                b"[s\xff]\na = hunter2\n",
                "f.ini:1: invalid UTF-8 in a section name",
            ),
            (
                b"; \xff\n[s]\na = hunter2\n",
                "f.ini:2: invalid UTF-8 in a comment",
            ),
            (
                b"[s]\na = 1 ; \xff\n",
                "f.ini:2: invalid UTF-8 in a comment",
            ),
            (
                b"[s]\na = \xff\n\nb = \xf4\x8f\xbd\x81\n",
                "f.ini:4: invalid UTF-8 in a file that also has",
            ),
            (
                b"[sops]\na = hunter2\n",
                "f.ini:1: section [sops] is reserved",
            ),
        ];
        assert_refused(table);
        let e = IniStore
            .load_encrypted(b"[s]\na = 1\n", "f.ini")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "f.ini: not a sops file: no sops metadata");
        let nested = vec![vec![pair(
            "s",
            Value::Map(vec![pair("k", Value::List(vec![]))]),
        )]];
        let e = IniStore.emit_plain(&nested).unwrap_err().to_string();
        assert!(e.contains("offending key s.k"), "{e}");
    }

    /// Found by fuzzing: keys go-ini reads but writes back as something else (here
    /// an empty quoted key) parsed, and the file then failed to emit; sops itself
    /// writes such a file and then cannot decrypt it (MAC mismatch).
    #[test]
    fn keys_that_do_not_read_back_are_refused_when_read() {
        let fuzzed: &[u8] = b"; g=b.intern\t\t{\n``...``````````````````````````````````````````````e   = 5432\nparsword = i/i-s%cret-valu.example.test\n";
        let want = "f.ini:2: a key that is empty";
        assert_refused(&[
            (fuzzed, want),
            (b"[s]\n`[a` = v\n", want),
            (b"[s]\n`;a` = v\n", want),
        ]);
        let tree = IniStore.load_plain(b"`a=b` = v\n", "f.ini").unwrap();
        assert_eq!(IniStore.emit_plain(&tree).unwrap(), b"`a=b` = v\n");
    }

    /// Found by fuzzing: keys, values and section names that go-ini reads but writes
    /// in a form that reads back as something else (so the data changed on the next
    /// encrypt). Each is refused when read, naming the line.
    #[test]
    fn what_would_not_read_back_is_refused_when_read() {
        let table: &[(&[u8], &str)] = &[
            (b"\0\"\"\"t:\"\"\"", "f.ini:1: a value that mixes quote"),
            (b"-y]\0t:\"\"\"", "f.ini:1: a value that mixes quote"),
            (
                b"\t\0```ni-s%c\"\"\"-valu.exv  = 5432\n",
                "f.ini:1: a key that is empty",
            ),
            (b"a = `\"x\"`\n", "f.ini:1: a value that mixes quote"),
            (b" \xef\xbb\xbfk = v\n", "f.ini:1: a key that is empty"),
            (
                b"; c\n[dattag:\x7f\rrOg=offype:str]\n",
                "f.ini:2: a section name with a line break",
            ),
        ];
        assert_refused(table);
    }

    /// Found by fuzzing: a `[sops]` value with a line break, quoted so it read back,
    /// was flattened to one line whose quotes then did not (`"a\nb"` lost them).
    #[test]
    fn metadata_that_does_not_read_back_is_refused_when_read() {
        let input = b"[s]\na = 1\n\n[sops]\nversion = 3.11.0\nnote = \"\"\"\"a\nb\"\"\"\"\n";
        let e = IniStore
            .load_encrypted(input, "f.ini")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("f.ini:4: the [sops] section holds a value"),
            "{e}"
        );
    }

    /// Found by property testing: a lone `;` parsed to an empty comment that the
    /// file written from it no longer had.
    #[test]
    fn comments_without_text_are_left_out() {
        let tree = IniStore
            .load_plain(b"[s] ;\na = 1 ; \x0b\n", "f.ini")
            .unwrap();
        assert_eq!(tree[0][1], pair("s", Value::Map(vec![pair("a", s("1"))])));
    }

    /// Found by fuzzing: a value ending in a backslash was written bare and read
    /// back as a continuation line taking in the next key (sops 3.11 does this:
    /// `a = "x\"` then `b = y` decrypt, re-encrypt and decrypt to `a = xb = y`).
    #[test]
    fn values_ending_in_a_backslash_are_quoted() {
        let tree = IniStore
            .load_plain(b"a = \"x\\\"\nb = y\nc = `#\\`\n", "f.ini")
            .unwrap();
        let out = IniStore.emit_plain(&tree).unwrap();
        assert_eq!(out, b"a = `x\\`\nb = y\nc = `#\\`\n");
        assert_eq!(IniStore.load_plain(&out, "f.ini").unwrap(), tree);
    }

    fn key_items() -> impl Strategy<Value = Vec<Item>> {
        let value = prop_oneof!["[a-zA-Z0-9 ./:=@_#;`-]{0,12}", "[a-z]{1,4}\n[a-z ]{0,4}",];
        let key = (
            "[a-z][a-z0-9_.:]{0,6}",
            value,
            prop::option::of("[a-zA-Z0-9][a-zA-Z0-9 #;]{0,8}[a-zA-Z0-9]"),
        );
        prop::collection::vec(key, 0..5).prop_map(|keys| {
            let mut seen = HashSet::new();
            let mut items = Vec::new();
            for (k, v, c) in keys {
                if seen.insert(k.clone()) {
                    items.push(Item::Pair(k, Value::Str(v)));
                    if let Some(c) = c {
                        items.push(Item::Comment(c));
                    }
                }
            }
            items
        })
    }

    proptest! {
        #[test]
        fn emit_then_load_is_identity(
            default in key_items(),
            sections in prop::collection::vec(
                ("[a-z][a-z0-9_]{0,6}", prop::option::of("[a-z][a-z ]{0,6}[a-z]"), key_items()),
                0..4,
            ),
        ) {
            let mut branch = vec![Item::Pair(DEFAULT_SECTION.into(), Value::Map(default))];
            let mut seen: HashSet<String> = HashSet::from(["sops".into(), "default".into()]);
            for (name, c, mut items) in sections {
                if seen.insert(name.clone()) {
                    if let Some(c) = c {
                        items.insert(0, Item::Comment(c));
                    }
                    branch.push(Item::Pair(name, Value::Map(items)));
                }
            }
            let tree = vec![branch];
            let bytes = IniStore.emit_plain(&tree).unwrap();
            prop_assert_eq!(IniStore.load_plain(&bytes, "p").unwrap(), tree);
        }
    }
}
