//! Typing scalars as go-yaml v3 does (its `resolve.go`), which is YAML 1.1 with
//! Go's number parsing: what a plain scalar is, what an explicit `!!` tag makes
//! of one, and timestamps as the RFC 3339 text sops keeps.

use std::borrow::Cow;

use base64::Engine as _;
use serde_saphyr::granit_parser::{self as gp, ScalarStyle};

use crate::format::sops::document::Value;

/// A scalar's value, as go-yaml's `resolve` types it: a quoted or block scalar is
/// a string, a plain one is typed by its text, and a core `!!` tag says what it
/// must be. The error is a reason that never quotes the text.
pub(super) fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&gp::Tag>,
) -> Result<Value, Cow<'static, str>> {
    let Some(tag) = tag else {
        if style != ScalarStyle::Plain {
            return Ok(Value::Str(text.to_string()));
        }
        return Ok(resolve_plain(text)?);
    };
    if tag.handle().is_empty() && tag.suffix() == "!" {
        // The non-specific tag `!` types a plain scalar as if it had no tag.
        return scalar(text, style, None);
    }
    if !tag.is_yaml_core_schema() && tag.handle() != "tag:yaml.org,2002:" {
        // A custom tag (`!foo`, `!<tag:example.com,2000:x>`): go-yaml cannot
        // resolve it and keeps the text, and sops writes it back untagged.
        return Ok(Value::Str(text.to_string()));
    }
    let mismatch = || -> Cow<'static, str> {
        format!("value does not match its tag !!{}", tag.suffix()).into()
    };
    match tag.suffix() {
        "str" => Ok(Value::Str(text.to_string())),
        "binary" => {
            let cleaned: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned)
                .map_err(|_| "!!binary value is not valid base64")?;
            Ok(match String::from_utf8(bytes) {
                Ok(s) => Value::Str(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            })
        }
        "int" => match resolve_plain(text)? {
            v @ Value::Int(_) => Ok(v),
            _ => Err(mismatch()),
        },
        "float" => match resolve_plain(text)? {
            Value::Int(i) => Ok(Value::Float(i as f64)),
            v @ Value::Float(_) => Ok(v),
            _ => Err(mismatch()),
        },
        "bool" => match resolve_plain(text)? {
            v @ Value::Bool(_) => Ok(v),
            _ => Err(mismatch()),
        },
        "null" => match resolve_plain(text)? {
            v @ Value::Null => Ok(v),
            _ => Err(mismatch()),
        },
        "timestamp" => match timestamp(text) {
            Some(t) => Ok(Value::Time(t)),
            None => Err(mismatch()),
        },
        // `!!merge` (which sops writes on a `<<` string) and the core tags
        // go-yaml does not resolve on a scalar (`!!set`, `!!omap`, …): the text.
        _ => Ok(Value::Str(text.to_string())),
    }
}

/// The value of a plain scalar. An integer beyond 64 bits (go-yaml's `uint64`) is
/// refused, as the sops model has no type for it.
pub(super) fn resolve_plain(s: &str) -> Result<Value, &'static str> {
    match s {
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        ".nan" | ".NaN" | ".NAN" => return Ok(Value::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Value::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Value::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let str = || Ok(Value::Str(s.to_string()));
    match s.as_bytes()[0] {
        b'.' => {
            if is_yaml_float(s)
                && let Ok(f) = s.parse::<f64>()
                && f.is_finite()
            {
                return Ok(Value::Float(f));
            }
            str()
        }
        b'+' | b'-' | b'0'..=b'9' => {
            if let Some(t) = timestamp(s) {
                return Ok(Value::Time(t));
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            match go_parse_int(&plain) {
                IntParse::Int(i) => return Ok(Value::Int(i)),
                IntParse::Unsigned => return Err("integer too large for 64 bits; quote it"),
                IntParse::Invalid => {}
            }
            if is_yaml_float(&plain)
                && let Ok(f) = plain.parse::<f64>()
                && f.is_finite()
            {
                return Ok(Value::Float(f));
            }
            str()
        }
        _ => str(),
    }
}

enum IntParse {
    Int(i64),
    /// Fits Go's `uint64` but not `int64`.
    Unsigned,
    Invalid,
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`.
fn go_parse_int(s: &str) -> IntParse {
    let (neg, signed, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, true, &s[1..]),
        Some(b'+') => (false, true, &s[1..]),
        _ => (false, false, s),
    };
    let lower = rest.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return IntParse::Invalid;
    }
    let Ok(magnitude) = u128::from_str_radix(digits, radix) else {
        return IntParse::Invalid;
    };
    if neg {
        if magnitude <= 1u128 << 63 {
            return IntParse::Int((magnitude as i128).wrapping_neg() as i64);
        }
        return IntParse::Invalid;
    }
    if magnitude <= i64::MAX as u128 {
        IntParse::Int(magnitude as i64)
    } else if !signed && magnitude <= u64::MAX as u128 {
        IntParse::Unsigned
    } else {
        IntParse::Invalid
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A YAML timestamp in one of the forms go-yaml v3 reads, as the RFC 3339 text Go's
/// `time.RFC3339Nano` prints for it.
fn timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut p = Cursor { b, i: 5 };
    let year: u32 = s[..4].parse().ok()?;
    let month = p.num(2)?;
    p.lit(b'-')?;
    let day = p.num(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut min, mut sec, mut frac, mut zone) = (0, 0, 0, String::new(), None);
    if p.i < b.len() {
        let with_zone = match b[p.i] {
            b'T' | b't' => true,
            b' ' => false,
            _ => return None,
        };
        p.i += 1;
        hour = p.num(2)?;
        p.lit(b':')?;
        min = p.num(2)?;
        p.lit(b':')?;
        sec = p.num(2)?;
        if hour > 23 || min > 59 || sec > 59 {
            return None;
        }
        // Go takes a fraction after `.` or `,`, keeping nine digits.
        if p.i + 1 < b.len() && matches!(b[p.i], b'.' | b',') && b[p.i + 1].is_ascii_digit() {
            p.i += 1;
            let start = p.i;
            while p.i < b.len() && b[p.i].is_ascii_digit() {
                p.i += 1;
            }
            frac = s[start..p.i].chars().take(9).collect();
        }
        if with_zone {
            if b.get(p.i) == Some(&b'Z') {
                p.i += 1;
                zone = Some(0);
            } else {
                let sign = match b.get(p.i) {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return None,
                };
                let z = b.get(p.i + 1..p.i + 6)?;
                if !(z[0].is_ascii_digit()
                    && z[1].is_ascii_digit()
                    && z[2] == b':'
                    && z[3].is_ascii_digit()
                    && z[4].is_ascii_digit())
                {
                    return None;
                }
                let zh = i32::from(z[0] - b'0') * 10 + i32::from(z[1] - b'0');
                let zm = i32::from(z[3] - b'0') * 10 + i32::from(z[4] - b'0');
                if zh > 24 || zm > 60 {
                    return None;
                }
                p.i += 6;
                zone = Some(sign * (zh * 60 + zm));
            }
        }
        if p.i != b.len() {
            return None;
        }
    }
    let frac = frac.trim_end_matches('0');
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{min:02}:{sec:02}");
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    match zone.unwrap_or(0) {
        0 => out.push('Z'),
        z => {
            let sign = if z < 0 { '-' } else { '+' };
            out.push_str(&format!("{sign}{:02}:{:02}", z.abs() / 60, z.abs() % 60));
        }
    }
    Some(out)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    /// One to `max` digits.
    fn num(&mut self, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn lit(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
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
    fn scalars_are_typed_as_sops_types_them() {
        let cases: &[(&str, Value)] = &[
            ("hello", Value::Str("hello".into())),
            ("\"0042\"", Value::Str("0042".into())),
            ("'true'", Value::Str("true".into())),
            ("42", Value::Int(42)),
            ("-7", Value::Int(-7)),
            ("+12", Value::Int(12)),
            ("017", Value::Int(15)),
            ("0o17", Value::Int(15)),
            ("0x1F", Value::Int(31)),
            ("0b101", Value::Int(5)),
            ("1_000", Value::Int(1000)),
            ("08", Value::Float(8.0)),
            ("3.5", Value::Float(3.5)),
            (".5", Value::Float(0.5)),
            ("1e3", Value::Float(1000.0)),
            (".inf", Value::Float(f64::INFINITY)),
            ("-.Inf", Value::Float(f64::NEG_INFINITY)),
            ("true", Value::Bool(true)),
            ("FALSE", Value::Bool(false)),
            ("yes", Value::Str("yes".into())),
            ("on", Value::Str("on".into())),
            ("null", Value::Null),
            ("~", Value::Null),
            ("", Value::Null),
            (
                "2024-01-02T03:04:05Z",
                Value::Time("2024-01-02T03:04:05Z".into()),
            ),
            ("2024-01-02", Value::Time("2024-01-02T00:00:00Z".into())),
            (
                "2024-1-2 3:04:05.50",
                Value::Time("2024-01-02T03:04:05.5Z".into()),
            ),
            (
                "2001-12-14t21:59:43.10-05:00",
                Value::Time("2001-12-14T21:59:43.1-05:00".into()),
            ),
            (
                "2024-01-02T03:04:05+00:00",
                Value::Time("2024-01-02T03:04:05Z".into()),
            ),
            ("2023-02-29", Value::Str("2023-02-29".into())),
            ("2024-13-01", Value::Str("2024-13-01".into())),
            ("1.2.3", Value::Str("1.2.3".into())),
            ("0x", Value::Str("0x".into())),
            ("1e400", Value::Str("1e400".into())),
            ("!!str 42", Value::Str("42".into())),
            ("!!float 1", Value::Float(1.0)),
            ("!!binary aGVsbG8=", Value::Str("hello".into())),
            ("!!binary /+8=", Value::Bytes(vec![0xff, 0xef])),
            ("|\n    a\n    b\n", Value::Str("a\nb\n".into())),
            (">\n    a\n    b\n", Value::Str("a b\n".into())),
            ("|-\n    a\n", Value::Str("a".into())),
        ];
        for (text, want) in cases {
            let doc = format!("k: {text}\n");
            let got = YamlStore.load_plain(doc.as_bytes(), "t.yaml").unwrap();
            assert_eq!(got, vec![vec![pair("k", want.clone())]], "{text:?}");
        }
    }
}
