//! What the text stores share: input limits, the errors they raise (file and line
//! or key path, never a value), key paths, and Go's rendering of scalars, which
//! sops output depends on byte for byte (`strconv.FormatFloat`, `stores.ValToString`).

use super::document::Value;
use crate::error::{Error, Location};

/// Inputs larger than this are refused before parsing.
pub const MAX_INPUT: usize = 16 << 20;
/// Maps and lists nested deeper than this are refused.
pub const MAX_DEPTH: usize = 64;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An error in input `file`, at `line` when one is known. `reason` must not quote
/// the document.
pub(crate) fn invalid(file: &str, line: Option<u64>, reason: impl Into<String>) -> Error {
    let mut at = Location::named(file);
    if let Some(line) = line {
        at = at.at_line(line);
    }
    Error::InvalidFile {
        at,
        reason: reason.into(),
    }
}

/// An error while emitting: there is no input file, so the store names itself.
pub(crate) fn unemittable(store: &str, reason: impl Into<String>) -> Error {
    invalid(&format!("({store} output)"), None, reason)
}

/// The 1-based line of byte `pos` in `data`.
pub(crate) fn line_at(data: &[u8], pos: usize) -> u64 {
    let end = pos.min(data.len());
    memchr::memchr_iter(b'\n', &data[..end]).count() as u64 + 1
}

/// Refuses input over [`MAX_INPUT`].
pub(crate) fn check_size(data: &[u8], file: &str) -> crate::error::Result<()> {
    if data.len() > MAX_INPUT {
        return Err(invalid(
            file,
            None,
            format!(
                "file is larger than {} MiB; sops files this large are refused",
                MAX_INPUT >> 20
            ),
        ));
    }
    Ok(())
}

pub(crate) fn has_bom(data: &[u8]) -> bool {
    data.starts_with(BOM)
}

pub(crate) fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(BOM).unwrap_or(data)
}

pub(crate) fn refuse_bom(data: &[u8], file: &str) -> crate::error::Result<()> {
    if has_bom(data) {
        return Err(invalid(
            file,
            Some(1),
            "file starts with a byte order mark (BOM); save it as UTF-8 without one",
        ));
    }
    Ok(())
}

/// `data` as UTF-8 text, or an error naming the line of the first invalid byte.
pub(crate) fn utf8<'a>(data: &'a [u8], file: &str) -> crate::error::Result<&'a str> {
    std::str::from_utf8(data).map_err(|e| {
        invalid(
            file,
            Some(line_at(data, e.valid_up_to())),
            "invalid UTF-8; this format must be UTF-8 text",
        )
    })
}

/// Size, UTF-8 and (when `bom_allowed` is false) BOM checks, in that order.
pub(crate) fn text<'a>(
    data: &'a [u8],
    file: &str,
    bom_allowed: bool,
) -> crate::error::Result<&'a str> {
    check_size(data, file)?;
    let data = if bom_allowed {
        strip_bom(data)
    } else {
        refuse_bom(data, file)?;
        data
    };
    utf8(data, file)
}

/// `path` extended by a map key: `a.b`, or `a["odd key"]` when the key is not a
/// plain identifier. Keys are names, not secret values.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (plain, path.is_empty()) {
        (true, true) => key.to_string(),
        (true, false) => format!("{path}.{key}"),
        (false, _) => format!("{path}[{key:?}]"),
    }
}

/// `path` extended by a list index: `a[3]`.
pub(crate) fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The shortest decimal digits that read back as `v` (which is finite and not
/// zero), and the decimal point position: `v = 0.DIGITS × 10^point`, as Go's
/// `strconv` has them (`digs.d`, `digs.dp`).
fn shortest_digits(v: f64) -> (Vec<u8>, i32) {
    let e = format!("{:e}", v.abs());
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// Go's `%f` layout of `digits`/`point` with `prec` digits after the point.
fn fmt_f(out: &mut String, digits: &[u8], point: i32, prec: usize) {
    if point > 0 {
        for i in 0..point as usize {
            out.push(*digits.get(i).unwrap_or(&b'0') as char);
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let j = point + i - 1;
            let d = if j >= 0 {
                *digits.get(j as usize).unwrap_or(&b'0')
            } else {
                b'0'
            };
            out.push(d as char);
        }
    }
}

/// Go's `%e` layout with all of `digits`, an exponent of at least two digits.
fn fmt_e(out: &mut String, digits: &[u8], point: i32, e: char) {
    out.push(digits[0] as char);
    if digits.len() > 1 {
        out.push('.');
        out.extend(digits[1..].iter().map(|d| *d as char));
    }
    out.push(e);
    let exp = point - 1;
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

/// A float as Go's `encoding/json` writes it (`'f'` format, `'e'` below 1e-6 and
/// from 1e21, `e-07` shortened to `e-7`).
pub(crate) fn json_float(v: f64) -> String {
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push('0');
        return out;
    }
    let (digits, point) = shortest_digits(v);
    let abs = v.abs();
    if !(1e-6..1e21).contains(&abs) {
        fmt_e(&mut out, &digits, point, 'e');
        // Go cleans up e-09 to e-9.
        let n = out.len();
        let b = out.as_bytes();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            out.remove(n - 2);
        }
    } else {
        let prec = (digits.len() as i32 - point).max(0) as usize;
        fmt_f(&mut out, &digits, point, prec);
    }
    out
}

/// Go's `strconv.FormatFloat(v, 'G', -1, 64)`.
fn go_g(v: f64) -> String {
    let mut out = String::new();
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push('0');
        return out;
    }
    let (digits, point) = shortest_digits(v);
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        fmt_e(&mut out, &digits, point, 'E');
    } else {
        let prec = (digits.len() as i32 - point).max(0) as usize;
        fmt_f(&mut out, &digits, point, prec);
    }
    out
}

/// A scalar as sops's `stores.ValToString` renders it for dotenv and INI, as
/// bytes because a `Bytes` value is written as it is. `None` for maps and lists.
pub(crate) fn val_to_string(v: &Value) -> Option<Vec<u8>> {
    let s = match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.clone(),
        Value::Bytes(b) => return Some(b.clone()),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            let g = go_g(*f);
            if g.contains('.') || g.contains('E') || !f.is_finite() {
                g
            } else {
                // Go: FormatFloat(v, 'f', 1, 64): an integral float gets ".0".
                format!("{g}.0")
            }
        }
        Value::Bool(b) => b.to_string(),
        // Go's fmt.Sprintf("%v", nil).
        Value::Null => "<nil>".into(),
        Value::Map(_) | Value::List(_) => return None,
    };
    Some(s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_float_matches_go() {
        let table: &[(f64, &str)] = &[
            (8080.0, "8080"),
            (0.5, "0.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1e20, "100000000000000000000"),
            (12345678901234567890.0, "12345678901234567000"),
            (1.2345e-10, "1.2345e-10"),
            (-2.5e300, "-2.5e+300"),
            (1234.56789, "1234.56789"),
        ];
        for (v, want) in table {
            assert_eq!(json_float(*v), *want, "{v:e}");
        }
    }

    #[test]
    fn val_to_string_matches_go() {
        let table: &[(Value, &str)] = &[
            (Value::Float(8080.0), "8080.0"),
            (Value::Float(0.5), "0.5"),
            (Value::Float(0.0), "0.0"),
            (Value::Float(1234567.0), "1.234567E+06"),
            (Value::Float(123456.0), "123456.0"),
            (Value::Float(1e-5), "1E-05"),
            (Value::Float(0.0001), "0.0001"),
            (Value::Float(1e21), "1E+21"),
            (Value::Int(-3), "-3"),
            (Value::Bool(true), "true"),
            (Value::Null, "<nil>"),
            (Value::Str("a\nb".into()), "a\nb"),
        ];
        for (v, want) in table {
            assert_eq!(val_to_string(v).unwrap(), want.as_bytes(), "{v:?}");
        }
        assert_eq!(val_to_string(&Value::Map(vec![])), None);
    }

    #[test]
    fn key_paths() {
        assert_eq!(join_key("", "a"), "a");
        assert_eq!(join_key("a", "b_c"), "a.b_c");
        assert_eq!(join_key("a", "x y"), "a[\"x y\"]");
        assert_eq!(join_index("a", 2), "a[2]");
    }

    #[test]
    fn utf8_error_names_the_line() {
        let err = utf8(b"a\nb\n\xff", "f").unwrap_err().to_string();
        assert_eq!(err, "f:3: invalid UTF-8; this format must be UTF-8 text");
    }
}
