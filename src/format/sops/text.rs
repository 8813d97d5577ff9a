//! What the text stores share: input limits, the errors they raise (file and line
//! or key path, never a value), key paths, and sops's rendering of a scalar as
//! text (`stores.ValToString`), which dotenv and INI output depend on byte for byte.

use super::document::Value;
use super::golang::{Fmt, format_float};
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

/// A scalar as sops's `stores.ValToString` renders it for dotenv and INI, as
/// bytes because a `Bytes` value is written as it is. `None` for maps and lists.
pub(crate) fn val_to_string(v: &Value) -> Option<Vec<u8>> {
    let s = match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.clone(),
        Value::Bytes(b) => return Some(b.clone()),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            let g = format_float(*f, Fmt::UpperG);
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
}
