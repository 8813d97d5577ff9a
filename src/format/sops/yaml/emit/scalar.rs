//! Scalars, from a value to its bytes: the style go-yaml's encoder asks for a
//! string, float or byte string, the style its emitter allows after analysing the
//! text, and the writers for plain, single-quoted, double-quoted and literal.

use base64::Engine as _;

use super::{Emitter, Node, is_break};
use crate::format::sops::document::Value;
use crate::format::sops::golang::{Fmt, format_float};
use crate::format::sops::yaml::resolve::resolve_plain;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's `stringv`: the style asked for a string.
pub(super) fn string_node(s: &str) -> Node {
    // go-yaml reads a plain `<<` as a merge key and writes the string back
    // with that tag, as sops prints it.
    if s == "<<" {
        return Node::new(super::Kind::Scalar {
            value: s.to_string(),
            style: Style::Plain,
            tag: Some("!!merge"),
        });
    }
    if s.contains('\n') {
        return Node::scalar(s.to_string(), Style::Literal);
    }
    let plain = matches!(resolve_plain(s), Ok(Value::Str(_)))
        && !is_base60_float(s)
        && !matches!(
            s,
            "y" | "Y"
                | "yes"
                | "Yes"
                | "YES"
                | "on"
                | "On"
                | "ON"
                | "n"
                | "N"
                | "no"
                | "No"
                | "NO"
                | "off"
                | "Off"
                | "OFF"
        );
    let style = if plain { Style::Plain } else { Style::Double };
    Node::scalar(s.to_string(), style)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        match i - start {
            1 => {}
            2 if b[start] <= b'5' => {}
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// go-yaml's float: Go's `strconv.FormatFloat(f, 'g', -1, 64)` with YAML's names
/// for the specials.
pub(super) fn go_float(f: f64) -> String {
    match format_float(f, Fmt::G).as_str() {
        "+Inf" => ".inf".into(),
        "-Inf" => "-.inf".into(),
        "NaN" => ".nan".into(),
        s => s.into(),
    }
}

/// go-yaml's `encodeBase64`: lines of 70 characters, each ending in a newline,
/// when there is more than one.
pub(super) fn go_base64(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines = encoded.len() / 70 + 1;
    if lines == 1 {
        return encoded;
    }
    let mut out = String::new();
    for chunk in encoded.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

#[derive(Default)]
pub(super) struct ScalarData {
    pub(super) multiline: bool,
    block_plain_allowed: bool,
    flow_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
    style: Option<Style>,
}

/// go-yaml's `is_printable` (which, as written, rejects characters beyond the
/// Basic Multilingual Plane and C1 controls).
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// A printable ASCII character that is no indicator, space or break: nothing in a
/// scalar's analysis depends on it but that it is none of these.
fn unremarkable(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'#' | b','
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'&'
                | b'*'
                | b'!'
                | b'|'
                | b'>'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
                | b'`'
                | b'?'
                | b':'
                | b'-'
        )
}

impl Emitter {
    pub(super) fn emit_scalar(&mut self, value: &str, asked: Style, tag: Option<&'static str>) {
        let style = self.select_scalar_style(value, asked);
        self.scalar.style = Some(style);
        if let Some(tag) = tag {
            self.write_indicator(tag, true, false, false);
        }
        self.increase_indent(true, false);
        // Deliberate deviation: go-yaml writes the indentation indicator as one level
        // whatever the content's offset from its parent, so a block scalar that
        // starts with a space or line break inside a list comes out as YAML that
        // neither sops nor any parser reads back. Write those double-quoted; one of
        // line breaks only has no line to misplace, and is written as go-yaml does.
        let parent = self.indents.last().copied().unwrap_or(-1).max(0);
        let unreadable_block = style == Style::Literal
            && value.starts_with(|c: char| c == ' ' || is_break(c))
            && self.indent != parent + self.best_indent
            && !value.chars().all(is_break);
        let style = if unreadable_block {
            Style::Double
        } else {
            style
        };
        match style {
            Style::Plain => self.write_plain(value),
            Style::Single => self.write_single(value),
            Style::Double => self.write_double(value),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
        self.pop_state();
    }

    pub(super) fn select_scalar_style(&self, value: &str, asked: Style) -> Style {
        let mut style = asked;
        if self.simple_key_context && self.scalar.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            let plain_allowed = if self.flow_level > 0 {
                self.scalar.flow_plain_allowed
            } else {
                self.scalar.block_plain_allowed
            };
            if !plain_allowed
                || (value.is_empty() && (self.flow_level > 0 || self.simple_key_context))
            {
                style = Style::Single;
            }
        }
        if style == Style::Single && !self.scalar.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal
            && (!self.scalar.block_allowed || self.flow_level > 0 || self.simple_key_context)
        {
            style = Style::Double;
        }
        style
    }

    pub(super) fn analyze_scalar(&mut self, value: &str) {
        let data = &mut self.scalar;
        if value.is_empty() {
            *data = ScalarData {
                multiline: false,
                flow_plain_allowed: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
                style: None,
            };
            return;
        }
        let (mut block_indicators, mut flow_indicators) = (false, false);
        let (mut line_breaks, mut special_characters, mut tab_characters) = (false, false, false);
        let (mut leading_space, mut leading_break) = (false, false);
        let (mut trailing_space, mut trailing_break) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        if value.starts_with("---") || value.starts_with("...") {
            block_indicators = true;
            flow_indicators = true;
        }
        let mut preceded_by_whitespace = true;
        let mut at = 0;
        while let Some(c) = value[at..].chars().next() {
            // A run of characters no rule below looks at (base64, most of a sealed
            // value) leaves every flag as its last character does.
            let run = value.as_bytes()[at..]
                .iter()
                .take_while(|&&b| unremarkable(b))
                .count();
            if run > 0 {
                at += run;
                previous_space = false;
                previous_break = false;
                preceded_by_whitespace = false;
                continue;
            }
            let i = at;
            at += c.len_utf8();
            let next = value[at..].chars().next();
            let followed_by_whitespace = next.is_none_or(|n| n == ' ' || n == '\t');
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\''
                    | '"' | '%' | '@' | '`' => {
                        flow_indicators = true;
                        block_indicators = true;
                    }
                    '?' | ':' => {
                        flow_indicators = true;
                        if followed_by_whitespace {
                            block_indicators = true;
                        }
                    }
                    '-' if followed_by_whitespace => {
                        flow_indicators = true;
                        block_indicators = true;
                    }
                    _ => {}
                }
            } else {
                match c {
                    ',' | '?' | '[' | ']' | '{' | '}' => flow_indicators = true,
                    ':' => {
                        flow_indicators = true;
                        if followed_by_whitespace {
                            block_indicators = true;
                        }
                    }
                    '#' if preceded_by_whitespace => {
                        flow_indicators = true;
                        block_indicators = true;
                    }
                    _ => {}
                }
            }
            if c == '\t' {
                tab_characters = true;
            } else if !is_printable(c) {
                special_characters = true;
            }
            let last = next.is_none();
            if c == ' ' {
                if i == 0 {
                    leading_space = true;
                }
                if last {
                    trailing_space = true;
                }
                if previous_break {
                    break_space = true;
                }
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                line_breaks = true;
                if i == 0 {
                    leading_break = true;
                }
                if last {
                    trailing_break = true;
                }
                if previous_space {
                    space_break = true;
                }
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = matches!(c, ' ' | '\t') || is_break(c);
        }
        let mut d = ScalarData {
            multiline: line_breaks,
            flow_plain_allowed: true,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
            style: None,
        };
        if leading_space || leading_break || trailing_space || trailing_break {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
        }
        if trailing_space {
            d.block_allowed = false;
        }
        if break_space {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
            d.single_quoted_allowed = false;
        }
        if space_break || tab_characters || special_characters {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
            d.single_quoted_allowed = false;
        }
        if space_break || special_characters {
            d.block_allowed = false;
        }
        if line_breaks {
            d.flow_plain_allowed = false;
            d.block_plain_allowed = false;
        }
        if flow_indicators {
            d.flow_plain_allowed = false;
        }
        if block_indicators {
            d.block_plain_allowed = false;
        }
        *data = d;
    }

    // -- scalars (best_width is unlimited in go-yaml v3: no folding) --

    fn write_plain(&mut self, value: &str) {
        if !value.is_empty() && !self.whitespace {
            self.put(' ');
        }
        // A plain scalar never holds a line break here (those are literal or quoted).
        self.write_str(value);
        self.indention = false;
        if !value.is_empty() {
            self.whitespace = false;
        }
    }

    fn write_single(&mut self, value: &str) {
        self.write_indicator("'", true, false, false);
        let mut breaks = false;
        for c in value.chars() {
            if c == ' ' {
                self.write(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.write(c);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, value: &str) {
        self.write_indicator("\"", true, false, false);
        for c in value.chars() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{07}' => self.put('a'),
                    '\u{08}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{0b}' => self.put('v'),
                    '\u{0c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = c as u32;
                        let escaped = if v <= 0xff {
                            format!("x{v:02X}")
                        } else if v <= 0xffff {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        for e in escaped.chars() {
                            self.put(e);
                        }
                    }
                }
            } else {
                self.write(c);
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        // Block scalar hints.
        let first = value.chars().next();
        if first.is_some_and(|c| c == ' ' || is_break(c)) {
            self.write_indicator(&self.best_indent.to_string(), false, false, false);
        }
        self.open_ended = false;
        let mut rev = value.chars().rev();
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some('-'),
            (Some(last), _) if !is_break(last) => Some('-'),
            (Some(_), None) => Some('+'),
            (Some(_), Some(before)) if is_break(before) => Some('+'),
            _ => None,
        };
        if let Some(chomp) = chomp {
            if chomp == '+' {
                self.open_ended = true;
            }
            // go-yaml sets open_ended for `+` and the indicator clears it again.
            self.write_indicator(&chomp.to_string(), false, false, false);
        }
        self.process_line_comment(true);
        self.whitespace = true;
        let mut breaks = true;
        // Each run of characters between line breaks is written at once.
        let mut rest = value;
        while let Some(c) = rest.chars().next() {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
                rest = &rest[c.len_utf8()..];
            } else {
                if breaks {
                    self.write_indent();
                }
                let end = rest.find(is_break).unwrap_or(rest.len());
                self.write_str(&rest[..end]);
                self.indention = false;
                breaks = false;
                rest = &rest[end..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::format::sops::document::{Item, Store, Value};
    use crate::format::sops::yaml::YamlStore;

    fn pair(key: &str, value: Value) -> Item {
        Item::Pair(key.into(), value)
    }

    #[test]
    fn scalars_emit_as_sops_writes_them() {
        let cases: &[(Value, &str)] = &[
            (Value::Str("plain".into()), "plain"),
            (Value::Str("0042".into()), "\"0042\""),
            (Value::Str("true".into()), "\"true\""),
            (Value::Str("yes".into()), "\"yes\""),
            (Value::Str("1:20".into()), "\"1:20\""),
            (Value::Str("".into()), "\"\""),
            (Value::Str(" lead".into()), "' lead'"),
            (Value::Str("it's: x".into()), "'it''s: x'"),
            (Value::Str("#x".into()), "'#x'"),
            (Value::Str("a\tb".into()), "\"a\\tb\""),
            (Value::Str("\u{1F600}".into()), "\"\\U0001F600\""),
            (Value::Str("é".into()), "é"),
            (Value::Str("a\nb\n".into()), "|\n    a\n    b"),
            (Value::Str("a\nb".into()), "|-\n    a\n    b"),
            (Value::Str("a\n\n".into()), "|+\n    a\n"),
            (Value::Str(" a\nb".into()), "|4-\n     a\n    b"),
            (Value::Str("a \nb".into()), "\"a \\nb\""),
            (Value::Int(-17), "-17"),
            (Value::Float(12345.678), "12345.678"),
            (Value::Float(1.0), "1"),
            (Value::Float(1e6), "1e+06"),
            (Value::Float(1.5e-5), "1.5e-05"),
            (Value::Float(0.0001), "0.0001"),
            (Value::Float(f64::NAN), ".nan"),
            (Value::Bool(false), "false"),
            (Value::Null, "null"),
            (
                Value::Time("2024-01-02T03:04:05Z".into()),
                "2024-01-02T03:04:05Z",
            ),
            (Value::Bytes(vec![0xff, 0xef]), "!!binary /+8="),
            (Value::Map(vec![]), "{}"),
            (Value::List(vec![]), "[]"),
        ];
        for (value, want) in cases {
            let out = YamlStore
                .emit_plain(&vec![vec![pair("k", value.clone())]])
                .unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("k: {want}\n"),
                "{value:?}"
            );
        }
    }

    /// Found by property testing: a U+2028 in a nested single-quoted value came back
    /// with the indentation go-yaml writes after it. It is written as go-yaml writes
    /// it (a line break, indented after) and read as go-yaml reads it.
    #[test]
    fn line_separators_are_written_and_read_as_go_yaml_does() {
        for (value, written) in [
            ("\u{2028}A", "a:\n    b: '\u{2028}        A'\n"),
            (
                "a\u{2029}b\nc\n",
                "a:\n    b: |\n        a\u{2029}        b\n        c\n",
            ),
        ] {
            let tree = vec![vec![Item::Pair(
                "a".into(),
                Value::Map(vec![Item::Pair("b".into(), Value::Str(value.into()))]),
            )]];
            let out = YamlStore.emit_plain(&tree).unwrap();
            let text = String::from_utf8(out.clone()).unwrap();
            assert_eq!(text, written);
            assert_eq!(
                YamlStore.load_plain(&out, "p.yaml").unwrap(),
                tree,
                "{text:?}"
            );
        }
    }

    /// Found by property testing: a string `<<` was written plain, which reads back as
    /// a merge key. It is written as sops 3.11 writes it, `!!merge <<`, and reads
    /// back as the string.
    #[test]
    fn a_string_that_reads_as_a_merge_key_is_written_as_sops_writes_it() {
        let tree = vec![vec![
            Item::Pair("<<".into(), Value::Str(String::new())),
            Item::Pair("v".into(), Value::List(vec![Value::Str("<<".into())])),
        ]];
        let out = YamlStore.emit_plain(&tree).unwrap();
        assert_eq!(out, b"!!merge <<: \"\"\nv:\n    - !!merge <<\n");
        assert_eq!(
            YamlStore
                .load_encrypted(&[&out[..], b"sops: {}\n"].concat(), "p.yaml")
                .unwrap()
                .branches,
            tree
        );
    }
}
