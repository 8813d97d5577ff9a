//! The `sops:` map written straight out, in the layout sops and keys write it in:
//! block maps with identifiers as keys, block lists of maps, one-line scalars and
//! literal blocks of printable ASCII (each wrapped data key is an armored age file,
//! most of a file's bytes). The general emitter builds a node per value, then an
//! event per node, and walks each scalar a character at a time; this writes the
//! same bytes in one pass. Anything else (a comment, an empty map, a string it would
//! escape, …) is left to the general emitter: `None` means only that.

use super::scalar::{Style, string_node};
use super::{Emitter, Kind};
use crate::format::sops::document::{Item, Value};

/// The lines `sops:` and below for the metadata `items`, as the general emitter
/// writes them after a document's last key at `indent` spaces a level.
pub(super) fn write(items: &[Item], indent: i64) -> Option<String> {
    let indent = usize::try_from(indent).ok().filter(|&n| n > 0)?;
    let mut w = Writer {
        out: String::with_capacity(size(items) + 64),
        indent,
    };
    w.out.push_str("sops:\n");
    w.map(items, indent, false)?;
    Some(w.out)
}

/// About the bytes of `items` written (their text and some indentation).
fn size(items: &[Item]) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::Str(s) => s.len() + s.len() / 4 + 8,
            Value::Map(items) => size(items),
            Value::List(values) => values.iter().map(value).sum(),
            _ => 24,
        }
    }
    items
        .iter()
        .map(|i| match i {
            Item::Pair(k, v) => k.len() + 16 + value(v),
            Item::Comment(_) => 0,
        })
        .sum()
}

struct Writer {
    out: String,
    /// Spaces a level.
    indent: usize,
}

impl Writer {
    /// The indentation of what is nested under a key at column `col`: go-yaml's next
    /// multiple of the level's spaces.
    fn inner(&self, col: usize) -> usize {
        self.indent * ((col + self.indent) / self.indent)
    }

    fn spaces(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    /// A block map whose keys are at column `col`; with `inline`, its first key
    /// follows a list item's `- `, already written.
    fn map(&mut self, items: &[Item], col: usize, mut inline: bool) -> Option<()> {
        if items.is_empty() {
            return None;
        }
        for item in items {
            let Item::Pair(key, value) = item else {
                return None;
            };
            if style(key, true)? != Style::Plain {
                return None;
            }
            if !inline {
                self.spaces(col);
            }
            inline = false;
            self.out.push_str(key);
            self.out.push(':');
            self.value(value, col)?;
        }
        Some(())
    }

    /// The value of a key at column `col`, from just after its colon.
    fn value(&mut self, value: &Value, col: usize) -> Option<()> {
        match value {
            Value::Map(items) => {
                self.out.push('\n');
                self.map(items, self.inner(col), false)
            }
            Value::List(values) => {
                self.out.push('\n');
                self.list(values, self.inner(col))
            }
            Value::Str(s) if s.contains('\n') => self.literal(s, self.inner(col)),
            Value::Str(s) => {
                let text = match style(s, false)? {
                    Style::Plain => s.as_str(),
                    Style::Double if quotable(s, b'"') => &format!("\"{s}\""),
                    Style::Single if quotable(s, b'\'') => &format!("'{s}'"),
                    _ => return None,
                };
                self.out.push(' ');
                self.out.push_str(text);
                self.out.push('\n');
                Some(())
            }
            Value::Int(n) => {
                self.out.push_str(&format!(" {n}\n"));
                Some(())
            }
            Value::Bool(b) => {
                self.out.push_str(if *b { " true\n" } else { " false\n" });
                Some(())
            }
            _ => None,
        }
    }

    /// A block list of maps with its dashes at column `col`.
    fn list(&mut self, values: &[Value], col: usize) -> Option<()> {
        if values.is_empty() {
            return None;
        }
        for value in values {
            let Value::Map(items) = value else {
                return None;
            };
            self.spaces(col);
            self.out.push_str("- ");
            self.map(items, col + 2, true)?;
        }
        Some(())
    }

    /// A literal block, its lines at column `col`: lines of printable ASCII, none
    /// empty or starting or ending with a space, and at most one final line break
    /// (the general emitter writes no indentation indicator or `+` for it).
    fn literal(&mut self, s: &str, col: usize) -> Option<()> {
        let bytes = s.as_bytes();
        let printable = |chunk: &[u8]| {
            chunk.iter().fold(true, |all, &b| {
                all & ((b == b'\n') | (b.wrapping_sub(0x20) < 0x7f - 0x20))
            })
        };
        let body = s.strip_suffix('\n').unwrap_or(s);
        if !bytes.chunks(64).all(printable)
            || body.is_empty()
            || body.starts_with([' ', '\n'])
            || body.ends_with([' ', '\n'])
            || body.contains("\n\n")
            || body.contains("\n ")
            || body.contains(" \n")
        {
            return None;
        }
        self.out.push_str(if body.len() < s.len() {
            " |\n"
        } else {
            " |-\n"
        });
        for line in body.split('\n') {
            self.spaces(col);
            self.out.push_str(line);
            self.out.push('\n');
        }
        Some(())
    }
}

/// The style the general emitter writes the one-line string `s` in, as a key or a
/// value of a block map.
fn style(s: &str, key: bool) -> Option<Style> {
    let node = string_node(s);
    let Kind::Scalar {
        style: asked,
        tag: None,
        ..
    } = node.kind
    else {
        return None;
    };
    let mut e = Emitter {
        simple_key_context: key,
        ..Emitter::default()
    };
    e.analyze_scalar(s);
    Some(e.select_scalar_style(s, asked))
}

/// Whether `s` is written between `quote`s as it is: printable ASCII with no quote
/// or backslash.
fn quotable(s: &str, quote: u8) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != quote && b != b'\\' && b != b'"')
}
