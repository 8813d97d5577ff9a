//! The one document model every sops store parses into and emits from, as sops
//! itself has it: ordered maps whose items are key/value pairs or comments, lists
//! whose items are values or comments, and typed scalars. Crypto walks this tree;
//! stores never do crypto.

/// A value in a sops document. Before decryption (and after encryption) an
/// encrypted scalar is a `Str` holding `ENC[AES256_GCM,…]`, and an encrypted comment
/// is a `Comment` holding the same form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// sops's `int` (Go `int`, 64 bits).
    Int(i64),
    /// sops's `float` (Go `float64`); rendered as Go's `FormatFloat(v, 'f', -1, 64)`.
    Float(f64),
    Bool(bool),
    /// A YAML timestamp, kept as its RFC 3339 text (sops's `time`).
    Time(String),
    /// A string that is not UTF-8: only the binary store's `data` value can be one.
    /// sops encrypts it with type `str`, as Go strings hold any bytes.
    Bytes(Vec<u8>),
    /// Not encrypted and not part of the MAC.
    Null,
    Map(Vec<Item>),
    /// List items may be comments (`Value::Comment`).
    List(Vec<Value>),
    /// A comment line, as a list item. Map comments are `Item::Comment`.
    Comment(String),
}

/// One item of a map: a key and its value, or a comment line.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Pair(String, Value),
    Comment(String),
}

impl Item {
    /// The key of a pair; `None` for a comment.
    pub fn key(&self) -> Option<&str> {
        match self {
            Item::Pair(k, _) => Some(k),
            Item::Comment(_) => None,
        }
    }

    /// The value of a pair; `None` for a comment.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Item::Pair(_, v) => Some(v),
            Item::Comment(_) => None,
        }
    }
}

/// The top-level maps of a document: one per YAML document, one for every other
/// store. In an encrypted file the `sops` metadata key is not part of a branch.
pub type Branches = Vec<Vec<Item>>;

/// What a store reads from an encrypted file: the document, and the `sops`
/// metadata as a map (flattened keys already unflattened for dotenv and INI).
#[derive(Debug, Clone, PartialEq)]
pub struct EncryptedDocument {
    pub branches: Branches,
    pub metadata: Vec<Item>,
}

/// A sops store: parsing and emitting one file format, plaintext and encrypted.
/// `file` names the input in errors, which give the line or key path and never
/// quote a value.
pub trait Store {
    /// A plaintext document as the user writes it.
    fn load_plain(&self, data: &[u8], file: &str) -> crate::error::Result<Branches>;
    /// An encrypted file: the document with the top-level `sops` key taken out.
    fn load_encrypted(&self, data: &[u8], file: &str) -> crate::error::Result<EncryptedDocument>;
    /// The plaintext document, as `sops decrypt` prints it.
    fn emit_plain(&self, branches: &Branches) -> crate::error::Result<Vec<u8>>;
    /// The encrypted file, as `sops encrypt` writes it, with `metadata` under `sops`.
    fn emit_encrypted(&self, doc: &EncryptedDocument) -> crate::error::Result<Vec<u8>>;
    /// One value that is neither a string nor a map, as `sops decrypt --extract`
    /// prints it (sops's `EmitValue`). Stores whose values are all strings have none.
    fn emit_value(&self, _value: &Value) -> crate::error::Result<Vec<u8>> {
        Err(crate::error::Error::Bug {
            what: "a value other than a string in a store of strings".into(),
        })
    }
    /// What a scalar left in clear reads back as once this store has written it, where
    /// that is another value (`None` otherwise): sops's MAC covers what a reader of the
    /// file finds, not what the writer held.
    fn reread(&self, _value: &Value) -> Option<Value> {
        None
    }
}

/// One segment of a key path: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Parses a key path as sops writes it (`["db"]["password"]`, `["hosts"][0]`) or
/// dotted (`db.password`, `hosts.0`, where a number is an index).
pub fn parse_path(text: &str) -> Option<Vec<PathSegment>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if !text.starts_with('[') {
        return text
            .split('.')
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Some(PathSegment::Index(i)),
                Err(_) if !s.is_empty() => Some(PathSegment::Key(s.to_string())),
                Err(_) => None,
            })
            .collect();
    }
    let mut segments = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = if let Some(q) = inner.strip_prefix('"') {
            let close = q.find("\"]")?;
            segments.push(PathSegment::Key(q[..close].to_string()));
            close + 3
        } else {
            let close = inner.find(']')?;
            segments.push(PathSegment::Index(inner[..close].trim().parse().ok()?));
            close + 1
        };
        rest = &inner[end..];
    }
    Some(segments)
}

/// Parses an `--extract` path exactly as sops's `parseTreePath` reads it: the text
/// is cut at each `[`; every piece but an empty one must end with `]`; a piece that
/// starts with `"` or `'` is a map key (its first and last character dropped, so
/// `["a"]` and `['a']` are `a`), any other is a list index written as Go's
/// `strconv.Atoi` reads it (`[0]`, `[+1]`, `[007]`). An empty text is the whole
/// document. Where sops would crash (`[]`, `["]`, a negative index) this is an
/// error instead.
pub fn parse_tree_path(text: &str) -> Result<Vec<PathSegment>, String> {
    let mut path = Vec::new();
    for piece in text.split('[') {
        if piece.is_empty() {
            continue;
        }
        let Some(inner) = piece.strip_suffix(']') else {
            return Err(format!("`[{piece}` does not end with ]"));
        };
        let bytes = inner.as_bytes();
        match bytes.first() {
            None => return Err("[] names neither a key nor an index".into()),
            Some(b'"' | b'\'') => {
                if bytes.len() < 2 {
                    return Err(format!("[{inner}] has no closing quote"));
                }
                let key = std::str::from_utf8(&bytes[1..bytes.len() - 1])
                    .map_err(|_| format!("[{inner}] ends inside a character"))?;
                path.push(PathSegment::Key(key.to_string()));
            }
            Some(_) => {
                let digits = inner.strip_prefix(['+', '-']).unwrap_or(inner);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "[{inner}] is neither a quoted key nor a list index"
                    ));
                }
                // Go's Atoi reads up to 64 bits; sops crashes on a negative index.
                let index = inner
                    .parse::<i64>()
                    .map_err(|_| format!("[{inner}] is too large a list index"))?;
                let index = usize::try_from(index)
                    .map_err(|_| format!("[{inner}] is a negative list index"))?;
                path.push(PathSegment::Index(index));
            }
        }
    }
    Ok(path)
}

/// `path` as sops writes it: `["db"]["hosts"][0]`, keys quoted and escaped.
pub fn tree_path_text(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(k) => out.push_str(&format!("[{k:?}]")),
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// What a path leads to in a document: a map (the top-level one when the path is
/// empty) or any other value (never a `Value::Map`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Found<'a> {
    Map(&'a [Item]),
    Value(&'a Value),
}

impl<'a> Found<'a> {
    fn of(value: &'a Value) -> Found<'a> {
        match value {
            Value::Map(items) => Found::Map(items),
            other => Found::Value(other),
        }
    }
}

/// Why an `--extract` path leads nowhere: the place it names, as sops writes
/// paths, never a value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("no key {key} in {within}")]
    NoKey { within: String, key: String },
    #[error("no item [{index}] in {within}")]
    NoItem { within: String, index: usize },
    #[error("{within} is {what}, so it has no key {key}")]
    NotAMap {
        within: String,
        what: &'static str,
        key: String,
    },
    #[error("{within} is {what}, so it has no item [{index}]")]
    NotAList {
        within: String,
        what: &'static str,
        index: usize,
    },
    #[error("{at} is a comment line, not a value")]
    Comment { at: String },
}

/// What kind of value `v` is, for a message.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Str(_) | Value::Bytes(_) => "a string",
        Value::Int(_) | Value::Float(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Time(_) => "a timestamp",
        Value::Null => "null",
        Value::Map(_) => "a map",
        Value::List(_) => "a list",
        Value::Comment(_) => "a comment",
    }
}

/// Follows `path` from a top-level map as sops's `Truncate` does: a key names the
/// first pair with that key, and an index counts a list's comment lines too (so
/// `[2]` is the same item for both tools). Where sops would crash or return an
/// internal structure (a key into a scalar, an index into a map, an index naming a
/// comment line) this is an error.
pub fn find<'a>(top: &'a [Item], path: &[PathSegment]) -> Result<Found<'a>, ExtractError> {
    let mut current = Found::Map(top);
    for (depth, segment) in path.iter().enumerate() {
        let within = || match depth {
            0 => "the document".to_string(),
            _ => tree_path_text(&path[..depth]),
        };
        current = match (segment, current) {
            (PathSegment::Key(key), Found::Map(items)) => {
                let value = items
                    .iter()
                    .find_map(|item| match item {
                        Item::Pair(k, v) if k == key => Some(v),
                        _ => None,
                    })
                    .ok_or_else(|| ExtractError::NoKey {
                        within: within(),
                        key: tree_path_text(std::slice::from_ref(segment)),
                    })?;
                Found::of(value)
            }
            (PathSegment::Key(_), Found::Value(other)) => {
                return Err(ExtractError::NotAMap {
                    within: within(),
                    what: kind(other),
                    key: tree_path_text(std::slice::from_ref(segment)),
                });
            }
            (PathSegment::Index(index), Found::Value(Value::List(values))) => {
                match values.get(*index) {
                    Some(Value::Comment(_)) => {
                        return Err(ExtractError::Comment {
                            at: tree_path_text(&path[..=depth]),
                        });
                    }
                    Some(value) => Found::of(value),
                    None => {
                        return Err(ExtractError::NoItem {
                            within: within(),
                            index: *index,
                        });
                    }
                }
            }
            (PathSegment::Index(index), Found::Map(_)) => {
                return Err(ExtractError::NotAList {
                    within: within(),
                    what: "a map",
                    index: *index,
                });
            }
            (PathSegment::Index(index), Found::Value(other)) => {
                return Err(ExtractError::NotAList {
                    within: within(),
                    what: kind(other),
                    index: *index,
                });
            }
        };
    }
    Ok(current)
}

/// Why a key path does not fit a document: which segment is missing or of the wrong
/// kind, naming keys, never values.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("an empty key path")]
    Empty,
    #[error("{0:?} is a list index where the document has a map")]
    IndexInMap(PathSegment),
    #[error("no key {0:?}")]
    NoKey(String),
    #[error("no index {0}")]
    NoIndex(usize),
    #[error("{0:?} does not match the document's shape there")]
    Shape(PathSegment),
}

/// Sets the value at `path` in a top-level map (creating missing map keys), or
/// removes it with `None`.
pub fn set_path(
    items: &mut Vec<Item>,
    path: &[PathSegment],
    value: Option<Value>,
) -> Result<(), PathError> {
    let Some((first, rest)) = path.split_first() else {
        return Err(PathError::Empty);
    };
    let PathSegment::Key(key) = first else {
        return Err(PathError::IndexInMap(first.clone()));
    };
    let pos = items.iter().position(|i| i.key() == Some(key));
    if rest.is_empty() {
        match (pos, value) {
            (Some(p), Some(v)) => items[p] = Item::Pair(key.clone(), v),
            (None, Some(v)) => items.push(Item::Pair(key.clone(), v)),
            (Some(p), None) => {
                items.remove(p);
            }
            (None, None) => return Err(PathError::NoKey(key.clone())),
        }
        return Ok(());
    }
    let p = match pos {
        Some(p) => p,
        None if value.is_some() => {
            items.push(Item::Pair(key.clone(), Value::Map(Vec::new())));
            items.len() - 1
        }
        None => return Err(PathError::NoKey(key.clone())),
    };
    match &mut items[p] {
        Item::Pair(_, child) => set_in(child, rest, value),
        Item::Comment(_) => Err(PathError::NoKey(key.clone())),
    }
}

fn set_in(node: &mut Value, path: &[PathSegment], value: Option<Value>) -> Result<(), PathError> {
    if matches!(node, Value::Null)
        && value.is_some()
        && matches!(path.first(), Some(PathSegment::Key(_)))
    {
        *node = Value::Map(Vec::new());
    }
    match (node, &path[0]) {
        (Value::Map(items), PathSegment::Key(_)) => set_path(items, path, value),
        (Value::List(list), PathSegment::Index(i)) => {
            // Indexes count values, not comment lines.
            let slots: Vec<usize> = list
                .iter()
                .enumerate()
                .filter(|(_, v)| !matches!(v, Value::Comment(_)))
                .map(|(j, _)| j)
                .collect();
            let rest = &path[1..];
            if rest.is_empty() {
                match (slots.get(*i), value) {
                    (Some(&j), Some(v)) => list[j] = v,
                    (None, Some(v)) if *i == slots.len() => list.push(v),
                    (Some(&j), None) => {
                        list.remove(j);
                    }
                    _ => return Err(PathError::NoIndex(*i)),
                }
                return Ok(());
            }
            let &j = slots.get(*i).ok_or(PathError::NoIndex(*i))?;
            set_in(&mut list[j], rest, value)
        }
        (_, segment) => Err(PathError::Shape(segment.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sops 3.11's `parseTreePath`, case by case (`sops decrypt --extract`).
    #[test]
    fn tree_paths_parse_as_sops_parses_them() {
        let k = |s: &str| PathSegment::Key(s.into());
        let i = PathSegment::Index;
        let table: &[(&str, Vec<PathSegment>)] = &[
            ("", vec![]),
            (r#"["db"]["password"]"#, vec![k("db"), k("password")]),
            ("['db']['password']", vec![k("db"), k("password")]),
            (r#"["hosts"][0]"#, vec![k("hosts"), i(0)]),
            ("[+1][007][-0]", vec![i(1), i(7), i(0)]),
            // The last character is dropped whatever it is; quotes are not escaped.
            (r#"["a"b"]"#, vec![k("a\"b")]),
            (r#"["db]"#, vec![k("d")]),
            (r#"["a'][' x ']"#, vec![k("a"), k(" x ")]),
            (r#"["a]b"]"#, vec![k("a]b")]),
            (r#"[""]"#, vec![k("")]),
            ("[\"\u{e9}t\u{e9}\"]", vec![k("\u{e9}t\u{e9}")]),
        ];
        for (text, want) in table {
            assert_eq!(parse_tree_path(text).as_ref(), Ok(want), "{text}");
        }
        for bad in [
            "db",
            "db.password",
            r#"["db"]x"#,
            r#"["a[b"]"#,
            r#"["db"] ["x"]"#,
            "[]",
            r#"["]"#,
            "[-1]",
            "[x]",
            "[1_000]",
            "[ 1]",
            "[99999999999999999999]",
            "[\"\u{e9}]",
        ] {
            assert!(parse_tree_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn find_follows_a_path_as_sops_truncates_a_tree() {
        let doc = vec![
            Item::Comment(" top".into()),
            Item::Pair(
                "db".into(),
                Value::Map(vec![
                    Item::Pair("password".into(), Value::Str("pw".into())),
                    Item::Pair(
                        "list".into(),
                        Value::List(vec![
                            Value::Int(1),
                            Value::Comment(" c".into()),
                            Value::Bool(true),
                        ]),
                    ),
                ]),
            ),
            Item::Pair("db".into(), Value::Null),
        ];
        let find = |text: &str| find(&doc, &parse_tree_path(text).unwrap());
        assert_eq!(find(""), Ok(Found::Map(&doc)));
        assert_eq!(
            find(r#"["db"]["password"]"#),
            Ok(Found::Value(&Value::Str("pw".into())))
        );
        // A list's comment lines count, as in sops.
        assert_eq!(
            find(r#"["db"]["list"][2]"#),
            Ok(Found::Value(&Value::Bool(true)))
        );
        assert!(matches!(find(r#"["db"]"#), Ok(Found::Map(items)) if items.len() == 2));
        let err = |text: &str| find(text).unwrap_err().to_string();
        assert_eq!(err(r#"["nope"]"#), r#"no key ["nope"] in the document"#);
        assert_eq!(err(r#"["db"]["x"]["y"]"#), r#"no key ["x"] in ["db"]"#);
        assert_eq!(
            err(r#"["db"]["list"][1]"#),
            r#"["db"]["list"][1] is a comment line, not a value"#
        );
        assert_eq!(
            err(r#"["db"]["list"][3]"#),
            r#"no item [3] in ["db"]["list"]"#
        );
        assert_eq!(err("[0]"), "the document is a map, so it has no item [0]");
        assert_eq!(
            err(r#"["db"]["password"]["x"]"#),
            r#"["db"]["password"] is a string, so it has no key ["x"]"#
        );
        assert_eq!(
            err(r#"["db"]["list"]["x"]"#),
            r#"["db"]["list"] is a list, so it has no key ["x"]"#
        );
    }

    #[test]
    fn paths_parse_and_set() {
        assert_eq!(
            parse_path(r#"["db"]["hosts"][1]"#),
            Some(vec![
                PathSegment::Key("db".into()),
                PathSegment::Key("hosts".into()),
                PathSegment::Index(1)
            ])
        );
        assert_eq!(
            parse_path("db.hosts.1"),
            parse_path(r#"["db"]["hosts"][1]"#)
        );
        for bad in ["", "a..b", "[\"a\"", "[x]", "[\"a\"]b"] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
        let mut doc = vec![Item::Pair(
            "db".into(),
            Value::Map(vec![Item::Pair(
                "hosts".into(),
                Value::List(vec![
                    Value::Str("a".into()),
                    Value::Comment("c".into()),
                    Value::Str("b".into()),
                ]),
            )]),
        )];
        let s = |v: &str| Some(Value::Str(v.into()));
        set_path(&mut doc, &parse_path("db.hosts.1").unwrap(), s("B")).unwrap();
        set_path(&mut doc, &parse_path("db.hosts.2").unwrap(), s("C")).unwrap();
        set_path(&mut doc, &parse_path("new.deep.key").unwrap(), s("x")).unwrap();
        set_path(&mut doc, &parse_path("db.hosts.0").unwrap(), None).unwrap();
        assert_eq!(
            doc[0],
            Item::Pair(
                "db".into(),
                Value::Map(vec![Item::Pair(
                    "hosts".into(),
                    Value::List(vec![
                        Value::Comment("c".into()),
                        Value::Str("B".into()),
                        Value::Str("C".into())
                    ]),
                )]),
            )
        );
        assert_eq!(
            set_path(&mut doc, &parse_path("db.hosts.9").unwrap(), s("x")),
            Err(PathError::NoIndex(9))
        );
        assert_eq!(
            set_path(&mut doc, &parse_path("missing").unwrap(), None),
            Err(PathError::NoKey("missing".into()))
        );
        assert_eq!(
            set_path(&mut doc, &parse_path("db.0").unwrap(), s("x")),
            Err(PathError::Shape(PathSegment::Index(0)))
        );
    }
}
