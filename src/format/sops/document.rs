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
