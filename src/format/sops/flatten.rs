//! sops metadata in the flat stores (dotenv, INI): the nested `sops` map written as
//! one `key = string` per leaf, keys joined with `__map_` and `__list_N`
//! (`age__list_0__map_recipient`), newlines written as `\n`. sops's
//! `stores.Flatten`/`Unflatten`, `EncodeNewLines`/`DecodeNewLines` and
//! `EncodeNonStrings`/`DecodeNonStrings`, in one place.

use super::document::{Item, Value};
use super::golang::json_float;
use super::text::{invalid, join_index, join_key, val_to_string};

const MAP_SEPARATOR: &str = "__map_";
const LIST_SEPARATOR: &str = "__list_";

/// The metadata as flat `(key, value)` pairs, in the order of a walk of the tree
/// (sops itself writes dotenv keys sorted and INI keys in Go map order). Comments
/// and null leaves are left out, as are empty maps and lists, as sops does.
pub fn flatten_metadata(metadata: &[Item]) -> crate::error::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in metadata {
        if let Item::Pair(key, value) = item {
            flatten_value(key, key, value, &mut out)?;
        }
    }
    Ok(out)
}

fn flatten_value(
    top: &str,
    prefix: &str,
    value: &Value,
    out: &mut Vec<(String, String)>,
) -> crate::error::Result<()> {
    match value {
        Value::Map(items) => {
            for item in items {
                if let Item::Pair(k, v) = item {
                    flatten_value(top, &format!("{prefix}{MAP_SEPARATOR}{k}"), v, out)?;
                }
            }
        }
        Value::List(values) => {
            let values = values.iter().filter(|v| !matches!(v, Value::Comment(_)));
            for (i, v) in values.enumerate() {
                flatten_value(top, &format!("{prefix}{LIST_SEPARATOR}{i}"), v, out)?;
            }
        }
        Value::Null | Value::Comment(_) => {}
        // EncodeNonStrings: sops's JSON round trip makes shamir_threshold a float,
        // written with "%.0f".
        Value::Float(f) if top == "shamir_threshold" && prefix == top => {
            let s = json_float(f.round());
            out.push((prefix.to_string(), s));
        }
        Value::Bytes(_) => {
            return Err(invalid(
                "(sops metadata)",
                None,
                format!("metadata key {prefix} is not UTF-8 text"),
            ));
        }
        scalar => {
            let s = val_to_string(scalar).unwrap_or_default();
            let s = String::from_utf8(s).unwrap_or_default();
            // EncodeNewLines.
            out.push((prefix.to_string(), s.replace('\n', "\\n")));
        }
    }
    Ok(())
}

/// A path segment of a flattened key.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Map(String),
    List(usize),
}

/// sops's `tokenize`: split at every `__map_` and `__list_`.
fn tokenize(path: &str, file: &str) -> crate::error::Result<Vec<Token>> {
    #[derive(Clone, Copy)]
    enum State {
        Normal,
        Map,
        List,
    }
    let bytes = path.as_bytes();
    let mut tokens = Vec::new();
    let mut state = State::Normal;
    let mut last = 0;
    let mut i = 0;
    let mut finish = |state: State, last: usize, i: usize| -> crate::error::Result<()> {
        tokens.push(match state {
            State::Normal => Token::Map(path[last..i].to_string()),
            State::Map => Token::Map(path[last + MAP_SEPARATOR.len()..i].to_string()),
            State::List => {
                let index = &path[last + LIST_SEPARATOR.len()..i];
                Token::List(index.parse().map_err(|_| {
                    invalid(
                        file,
                        None,
                        format!("sops metadata key {path}: list index is not a number"),
                    )
                })?)
            }
        });
        Ok(())
    };
    while i < bytes.len() {
        if bytes[i..].starts_with(MAP_SEPARATOR.as_bytes()) {
            finish(state, last, i)?;
            last = i;
            state = State::Map;
            i += MAP_SEPARATOR.len();
        } else if bytes[i..].starts_with(LIST_SEPARATOR.as_bytes()) {
            finish(state, last, i)?;
            last = i;
            state = State::List;
            i += LIST_SEPARATOR.len();
        } else {
            i += 1;
        }
    }
    finish(state, last, i)?;
    Ok(tokens)
}

/// A tree under construction: maps keep first-seen order, lists are indexed.
enum Node {
    Leaf(Value),
    Map(Vec<(String, Node)>),
    List(Vec<(usize, Node)>),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Leaf(_) => "a value",
            Node::Map(_) => "a map",
            Node::List(_) => "a list",
        }
    }
}

/// The child of `node` at `token`, created as `fresh` when missing.
fn child<'a>(node: &'a mut Node, token: &Token, fresh: impl FnOnce() -> Node) -> &'a mut Node {
    match (node, token) {
        (Node::Map(entries), Token::Map(key)) => {
            let at = match entries.iter().position(|(k, _)| k == key) {
                Some(at) => at,
                None => {
                    entries.push((key.clone(), fresh()));
                    entries.len() - 1
                }
            };
            &mut entries[at].1
        }
        (Node::List(entries), Token::List(index)) => {
            let at = match entries.iter().position(|(i, _)| i == index) {
                Some(at) => at,
                None => {
                    entries.push((*index, fresh()));
                    entries.len() - 1
                }
            };
            &mut entries[at].1
        }
        _ => unreachable!("the caller checks the container kind"),
    }
}

fn into_value(node: Node, path: &str, file: &str) -> crate::error::Result<Value> {
    Ok(match node {
        Node::Leaf(v) => v,
        Node::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, n)| {
                    let p = join_key(path, &k);
                    Ok(Item::Pair(k, into_value(n, &p, file)?))
                })
                .collect::<crate::error::Result<_>>()?,
        ),
        Node::List(mut entries) => {
            entries.sort_by_key(|(i, _)| *i);
            let mut values = Vec::with_capacity(entries.len());
            for (want, (i, n)) in entries.into_iter().enumerate() {
                if i != want {
                    return Err(invalid(
                        file,
                        None,
                        format!("sops metadata list {path} has no item {want}"),
                    ));
                }
                values.push(into_value(n, &join_index(path, i), file)?);
            }
            Value::List(values)
        }
    })
}

/// The nested metadata map from flat `(key, value)` pairs, in the order the keys
/// first appear. `\n` in values becomes a newline; `mac_only_encrypted` becomes a
/// bool and `shamir_threshold` an int, as sops's `DecodeNonStrings` does.
pub fn unflatten_metadata(
    pairs: Vec<(String, String)>,
    file: &str,
) -> crate::error::Result<Vec<Item>> {
    let mut root = Node::Map(Vec::new());
    for (key, raw) in pairs {
        let raw = raw.replace("\\n", "\n");
        let value = match key.as_str() {
            "mac_only_encrypted" => Value::Bool(raw == "true"),
            "shamir_threshold" => Value::Int(parse_threshold(&raw).ok_or_else(|| {
                invalid(
                    file,
                    None,
                    "sops metadata shamir_threshold is not an integer",
                )
            })?),
            _ => Value::Str(raw),
        };
        let tokens = tokenize(&key, file)?;
        let mut node = &mut root;
        for (i, token) in tokens.iter().enumerate() {
            let conflict = |found: &Node| {
                invalid(
                    file,
                    None,
                    format!(
                        "sops metadata key {key} conflicts with another key ({} already)",
                        found.kind()
                    ),
                )
            };
            match (&*node, token) {
                (Node::Map(_), Token::Map(_)) | (Node::List(_), Token::List(_)) => {}
                (found, _) => return Err(conflict(found)),
            }
            match tokens.get(i + 1) {
                None => {
                    let leaf = child(node, token, || Node::Map(Vec::new()));
                    if matches!(leaf, Node::Map(entries) if entries.is_empty()) {
                        *leaf = Node::Leaf(value);
                        break;
                    }
                    return Err(conflict(leaf));
                }
                Some(Token::Map(_)) => node = child(node, token, || Node::Map(Vec::new())),
                Some(Token::List(_)) => node = child(node, token, || Node::List(Vec::new())),
            }
        }
    }
    match into_value(root, "", file)? {
        Value::Map(items) => Ok(items),
        _ => unreachable!("the root is a map"),
    }
}

fn parse_threshold(raw: &str) -> Option<i64> {
    if let Ok(i) = raw.parse::<i64>() {
        return Some(i);
    }
    // Older sops wrote it as a float; accept it when it is integral.
    let f: f64 = raw.parse().ok()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn pair(k: &str, v: Value) -> Item {
        Item::Pair(k.into(), v)
    }

    fn age_metadata() -> Vec<Item> {
        vec![
            pair(
                "age",
                Value::List(vec![
                    Value::Map(vec![
                        pair("recipient", s("age1a")),
                        pair("enc", s("E\nF\n")),
                    ]),
                    Value::Map(vec![pair("recipient", s("age1b")), pair("enc", s("G"))]),
                ]),
            ),
            pair("lastmodified", s("2026-11-21T22:22:54Z")),
            pair("mac_only_encrypted", Value::Bool(true)),
            pair("shamir_threshold", Value::Int(2)),
            pair("version", s("3.11.0")),
        ]
    }

    fn flat(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flatten_walks_the_tree() {
        let want = flat(&[
            ("age__list_0__map_recipient", "age1a"),
            ("age__list_0__map_enc", "E\\nF\\n"),
            ("age__list_1__map_recipient", "age1b"),
            ("age__list_1__map_enc", "G"),
            ("lastmodified", "2026-11-21T22:22:54Z"),
            ("mac_only_encrypted", "true"),
            ("shamir_threshold", "2"),
            ("version", "3.11.0"),
        ]);
        assert_eq!(flatten_metadata(&age_metadata()).unwrap(), want);
    }

    #[test]
    fn unflatten_inverts_flatten() {
        let md = age_metadata();
        let back = unflatten_metadata(flatten_metadata(&md).unwrap(), "f").unwrap();
        assert_eq!(back, md);
    }

    #[test]
    fn unflatten_keeps_first_seen_order_and_sorts_list_items() {
        let pairs = flat(&[
            ("version", "3.11.0"),
            ("age__list_1__map_enc", "B"),
            ("age__list_0__map_enc", "A"),
            ("shamir_threshold", "3.0"),
            ("mac_only_encrypted", "no"),
        ]);
        let want = vec![
            pair("version", s("3.11.0")),
            pair(
                "age",
                Value::List(vec![
                    Value::Map(vec![pair("enc", s("A"))]),
                    Value::Map(vec![pair("enc", s("B"))]),
                ]),
            ),
            pair("shamir_threshold", Value::Int(3)),
            pair("mac_only_encrypted", Value::Bool(false)),
        ];
        assert_eq!(unflatten_metadata(pairs, "f").unwrap(), want);
    }

    #[test]
    fn unflatten_refuses_bad_keys() {
        let table: &[(&[(&str, &str)], &str)] = &[
            (
                &[("age__list_x__map_enc", "A")],
                "list index is not a number",
            ),
            (&[("age__list_1__map_enc", "A")], "has no item 0"),
            (&[("age", "A"), ("age__list_0__map_enc", "B")], "conflicts"),
            (&[("age__list_0__map_enc", "B"), ("age", "A")], "conflicts"),
            (&[("a__map_b", "B"), ("a__list_0", "A")], "conflicts"),
            (&[("shamir_threshold", "two")], "not an integer"),
        ];
        for (pairs, want) in table {
            let err = unflatten_metadata(flat(pairs), "f")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{pairs:?}: {err}");
            assert!(!err.contains("\"A\"") && !err.contains("\"B\""), "{err}");
        }
    }

    #[test]
    fn tokenize_like_sops() {
        let t = tokenize("key_groups__list_0__map_age__list_1__map_enc", "f").unwrap();
        assert_eq!(
            t,
            vec![
                Token::Map("key_groups".into()),
                Token::List(0),
                Token::Map("age".into()),
                Token::List(1),
                Token::Map("enc".into()),
            ]
        );
    }
}
