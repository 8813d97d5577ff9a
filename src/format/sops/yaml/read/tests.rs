use super::*;
use crate::format::sops::document::Store;
use crate::format::sops::yaml::YamlStore;

fn pair(key: &str, value: Value) -> Item {
    Item::Pair(key.into(), value)
}

/// (input, what the error must say). Every input holds the value SECRETVALUE,
/// which no error may quote.
const HOSTILE: &[(&[u8], &str)] = &[
    (
        b"a: SECRETVALUE\na: SECRETVALUE\n",
        "h.yaml:2: duplicate key \"a\"",
    ),
    (
        b"sops: SECRETVALUE\n",
        "h.yaml: top-level key `sops` is reserved",
    ),
    (
        b"- SECRETVALUE\n",
        "h.yaml:1: the top level of a YAML document must be a map",
    ),
    (
        b"SECRETVALUE\n",
        "h.yaml:1: the top level of a YAML document must be a map",
    ),
    (b"a: SECRETVALUE\nb: \xff\n", "h.yaml:2: not valid UTF-8"),
    (b"a: SECRETVALUE\n  b: [\n", "h.yaml:"),
    (
        b"1: SECRETVALUE\n",
        "h.yaml:1: a map key that is not a string",
    ),
    (
        b"a: &x SECRETVALUE\n<<: *x\n",
        "h.yaml:2: a `<<` key whose value is not a map",
    ),
    (
        b"a: SECRETVALUE\n\"<<\": SECRETVALUE\n",
        "h.yaml:2: a `<<` key whose value is not a map",
    ),
    (b"# SECRETVALUE\n", "h.yaml:"),
    (
        b"a: 18446744073709551615\nb: SECRETVALUE\n",
        "h.yaml:1: integer too large",
    ),
];

#[test]
fn hostile_input_is_refused_naming_the_file_and_no_value() {
    for (input, want) in HOSTILE {
        let err = YamlStore
            .load_plain(input, "h.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err:?} lacks {want:?}");
        assert!(!err.contains("SECRETVALUE"), "{err:?} quotes a value");
    }
}

/// Found by fuzzing: a key go-yaml writes as `? key` parsed, and the file then
/// failed to emit. Such keys are written in that form, as sops writes them.
#[test]
fn keys_go_yaml_writes_in_complex_form_round_trip() {
    let fuzzed: &[u8] = b"shared_se@cr :etveadable-by-two-y-two-recipkistdddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd:\n  ... \t\t\t?\t\t\t\t\t\t - t\n  ";
    let at_limit = format!("{}: v\n", "k".repeat(128));
    let over = format!("a: b\n? {}\n: v\n", "k".repeat(129));
    let tree = YamlStore.load_plain(fuzzed, "h.yaml").unwrap();
    let out = YamlStore.emit_plain(&tree).unwrap();
    assert!(out.starts_with(b"? shared_se@cr"), "{out:?}");
    assert_eq!(YamlStore.load_plain(&out, "h.yaml").unwrap(), tree);
    for input in [at_limit, over] {
        let tree = YamlStore.load_plain(input.as_bytes(), "h.yaml").unwrap();
        assert_eq!(YamlStore.emit_plain(&tree).unwrap(), input.as_bytes());
    }
}

#[test]
fn alias_bombs_deep_nesting_and_huge_input_are_refused() {
    let mut bomb = String::from("a0: &a0 [SECRETVALUE, SECRETVALUE]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let err = YamlStore
        .load_plain(bomb.as_bytes(), "b.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("b.yaml:"), "{err}");
    assert!(err.contains("alias"), "{err}");
    assert!(!err.contains("SECRETVALUE"));

    let deep = format!("a: {}1{}\n", "[".repeat(1030), "]".repeat(1030));
    let err = YamlStore
        .load_plain(deep.as_bytes(), "d.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("d.yaml:1:"), "{err}");
    let ok = format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100));
    YamlStore.load_plain(ok.as_bytes(), "d.yaml").unwrap();

    let huge = vec![b'#'; MAX_INPUT + 1];
    let err = YamlStore
        .load_plain(&huge, "big.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("big.yaml: larger than 16 MiB"), "{err}");

    // A few aliases are fine, and expand as sops expands them.
    let tree = YamlStore
        .load_plain(b"a: &x {b: 1}\nc: *x\n", "ok.yaml")
        .unwrap();
    let inner = Value::Map(vec![pair("b", Value::Int(1))]);
    assert_eq!(tree, vec![vec![pair("a", inner.clone()), pair("c", inner)]]);
}

/// Quoted scalars holding a raw U+2028, U+2029 or NEL, read as go-yaml reads
/// them (checked against sops 3.11).
#[test]
fn quoted_scalars_with_yaml_1_1_breaks_read_as_go_yaml_reads_them() {
    let cases = [
        ("\"x\u{2028}   y\"", "x\u{2028}y"),
        ("\"p \u{2029}q\\u2028 r\"", "p\u{2029}q\u{2028} r"),
        ("\"n\u{85} m\"", "n m"),
        ("'x\u{2028}\n    y'", "x\u{2028}\ny"),
        ("'it''s \u{2028} x'", "it's\u{2028}x"),
        ("\"x\u{2028}\\\n   y  \\t z\"", "x\u{2028}y  \t z"),
        ("'a\n\n  b'", "a\nb"),
    ];
    for (raw, want) in cases {
        assert_eq!(go_flow_scalar(raw).as_deref(), Some(want), "{raw:?}");
    }
    for (input, want) in [
        ("a: x\u{2028}  y\n", "x\u{2028}y"),
        ("a: |-\n    l\u{2028}    m\n", "l\u{2028}m"),
    ] {
        let tree = YamlStore.load_plain(input.as_bytes(), "s.yaml").unwrap();
        assert_eq!(tree, vec![vec![pair("a", Value::Str(want.into()))]]);
    }
}

#[test]
fn a_byte_order_mark_is_dropped_as_sops_does() {
    let tree = YamlStore
        .load_plain(b"\xef\xbb\xbfa: 1\n", "bom.yaml")
        .unwrap();
    assert_eq!(tree, vec![vec![pair("a", Value::Int(1))]]);
    assert_eq!(YamlStore.emit_plain(&tree).unwrap(), b"a: 1\n");
}
