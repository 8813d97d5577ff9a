//! The matrix's documents: every format and quirk, each in the class whose
//! differences it reports, and those sops itself refuses or cannot read back.

use std::collections::BTreeSet;

use super::{Doc, Docs, Kind};

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

pub(super) fn documents() -> Vec<Doc> {
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
