//! What the fuzz targets share: the round trip every sops store must keep, and the
//! demo fleet of this repository as a `Snapshot` for the loaders and `keys check`.

use keys::error::Error;
use keys::format::sops::document::{EncryptedDocument, Item, Value};
use keys::format::Format;
use keys::snapshot::{Blob, Snapshot};

/// The file name given to parsers; errors must name it.
pub const FILE: &str = "fuzz-input";

/// An error is one line naming the input: what users see after `error:`.
pub fn assert_one_line(err: &Error, file: &str) {
    let text = err.to_string();
    assert!(!text.contains('\n'), "error spans lines: {text:?}");
    assert!(text.contains(file), "error does not name {file}: {text:?}");
}

/// Parse → emit → parse is stable for a store, plaintext and encrypted forms alike:
/// whatever parses emits, and the emitted bytes parse to the same data, again and
/// again.
///
/// "The same data" allows what sops itself normalises when it writes a file: an
/// integral float printed as an integer (YAML `1.0` → `1`, `-0.0` → `-0`, which reads
/// back as the integer 0) and the order of metadata keys (dotenv and INI sort them).
/// Comments are not compared: go-ini moves, merges and drops some as it writes, and
/// so does sops; and go-yaml's emitter, which sops and `keys` share, writes only the
/// last head comment when a list and its first item both carry one (a list's leading
/// comment before a map item that starts with a comment). Encrypted, that comment is
/// a list item, as sops writes it, and is kept.
pub fn sops_round_trip(format: Format, data: &[u8]) {
    let store = keys::format::sops::store(format).expect("a sops store");
    let trees = reparse(data, |d| store.load_plain(d, FILE), |t| store.emit_plain(t));
    for tree in trees.iter().skip(1) {
        assert_eq!(
            canonical(&trees[0], false),
            canonical(tree, false),
            "the data changed"
        );
    }
    let docs = reparse(
        data,
        |d| store.load_encrypted(d, FILE),
        |t| store.emit_encrypted(t),
    );
    for doc in docs.iter().skip(1) {
        let first = &docs[0];
        assert_eq!(
            canonical(&first.branches, false),
            canonical(&doc.branches, false),
            "the data changed"
        );
        let meta = |d: &EncryptedDocument| canonical(std::slice::from_ref(&d.metadata), true);
        assert_eq!(meta(first), meta(doc), "the metadata changed");
    }
}

/// Parses `data`; if it parses, emits and parses the result, twice. Returns the
/// trees parsed (none if `data` does not parse).
fn reparse<T: std::fmt::Debug>(
    data: &[u8],
    load: impl Fn(&[u8]) -> keys::error::Result<T>,
    emit: impl Fn(&T) -> keys::error::Result<Vec<u8>>,
) -> Vec<T> {
    let first = match load(data) {
        Ok(t) => t,
        Err(e) => {
            assert_one_line(&e, FILE);
            return Vec::new();
        }
    };
    let mut trees = vec![first];
    for _ in 0..2 {
        let out = emit(trees.last().expect("one tree"))
            .unwrap_or_else(|e| panic!("a parsed document does not emit: {e}"));
        let tree = load(&out).unwrap_or_else(|e| {
            panic!(
                "the emitted document does not parse: {e}\n{:?}",
                String::from_utf8_lossy(&out)
            )
        });
        trees.push(tree);
    }
    trees
}

/// A tree's data as text, without its comments, with integral floats as integers and,
/// with `sort_maps`, map keys in order.
fn canonical(branches: &[Vec<Item>], sort_maps: bool) -> String {
    fn value(v: &Value, sort: bool) -> String {
        match v {
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                format!("Int({})", *f as i64)
            }
            Value::Map(items) => format!("Map({})", map(items, sort)),
            Value::List(list) => {
                let items: Vec<String> = list
                    .iter()
                    .filter(|v| !matches!(v, Value::Comment(_)))
                    .map(|v| value(v, sort))
                    .collect();
                format!("List[{}]", items.join(", "))
            }
            other => format!("{other:?}"),
        }
    }
    fn map(items: &[Item], sort: bool) -> String {
        let mut pairs: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Pair(k, v) => Some(format!("{k:?}: {}", value(v, sort))),
                Item::Comment(_) => None,
            })
            .collect();
        if sort {
            pairs.sort();
        }
        format!("{{{}}}", pairs.join(", "))
    }
    let data: Vec<String> = branches.iter().map(|b| map(b, sort_maps)).collect();
    data.join("\n---\n")
}

/// The repository's demo fleet: its admins, hosts, policy, lock and secrets, as
/// `keys check --staged` would see them staged.
pub fn demo_repo() -> Snapshot {
    let mut files = Snapshot::default();
    for (rel, data) in DEMO {
        files.insert(rel.to_string(), Blob::File(data.to_vec()));
    }
    files
}

macro_rules! demo {
    ($($rel:literal),* $(,)?) => {
        &[$(($rel, include_bytes!(concat!("../../", $rel)))),*]
    };
}

const DEMO: &[(&str, &[u8])] = demo!(
    "recipients/admins/demo.pub",
    "recipients/hosts/vps-arm.yaml",
    "recipients/hosts/vps-x86.yaml",
    "policies/default.yaml",
    "secrets/keys.lock",
    "secrets/bot/telegram-token.age",
    "secrets/nannuo-bot/config.yaml",
    "secrets/nannuo-bot/env.age",
    "secrets/vps-x86/restic-password.age",
);
