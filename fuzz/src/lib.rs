//! What the fuzz targets share: the round trip every sops store must keep, and the
//! demo fleet of this repository as a `Snapshot` for the loaders and `keys check`.

use keys::error::Error;
use keys::format::sops::tree::{EncryptedDocument, Item, Store, Value};
use keys::tree::{Blob, Snapshot};

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
/// back as the integer 0), the spacing and comment characters inside comments (INI
/// `;x` → `; x`), empty comments, where a comment sits among its map's keys (go-ini
/// attaches a headerless `DEFAULT` section's comment to its first key), and the
/// order of metadata keys (dotenv and INI sort them).
pub fn sops_round_trip(store: &dyn Store, data: &[u8]) {
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

/// A tree's text with sops's write-time normalisations undone (see `sops_round_trip`).
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
                    .map(|v| value(v, sort))
                    .filter(|i| i != "Comment()")
                    .collect();
                format!("List[{}]", items.join(", "))
            }
            Value::Comment(c) => format!("Comment({})", comment(c)),
            other => format!("{other:?}"),
        }
    }
    fn map(items: &[Item], sort: bool) -> String {
        let mut pairs = Vec::new();
        let mut comments = Vec::new();
        for item in items {
            match item {
                Item::Pair(k, v) => pairs.push(format!("{k:?}: {}", value(v, sort))),
                Item::Comment(c) => comments.push(comment(c)),
            }
        }
        if sort {
            pairs.sort();
        }
        comments.retain(|c| !c.is_empty());
        comments.sort();
        format!("{{{}}} # {}", pairs.join(", "), comments.join(" # "))
    }
    fn comment(c: &str) -> String {
        c.chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, ';' | '#'))
            .collect()
    }
    let out: Vec<String> = branches.iter().map(|b| map(b, sort_maps)).collect();
    out.join("\n---\n")
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
