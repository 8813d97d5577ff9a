//! `keys decrypt --extract`: one value of a sops secret, byte for byte what the real
//! `sops decrypt --extract` prints for the same file and path; and what it refuses.

use crate::common::TestEnv;
use crate::fixture::{fleet, sops, sops_encrypted, sops_fleet, tree};

const YAML: &str = "\
# top comment
db:
    password: s3cret
    port: 5432
    ratio: 1.50
    on: true
    off: no
    nothing: null
    when: 2001-12-14t21:59:43.10-05:00
    multi: |
        line1
        line2
    list:
        - a
        # a comment
        - 2
        - {x: 1, y: [1, 2]}
        - [p, q]
    empty: {}
    emptyl: []
    quoted: \"with: colon\"
\"key with space\": v
'a\"b': x
blob: !!binary aGVsbG8=
";

const JSON: &str = r#"{"db": {"password": "s3cret", "port": 5432, "ratio": 1.5, "big": 1e21, "on": true, "nothing": null, "list": ["a", 2, {"x": 1, "y": [1, 2]}, [], {}], "html": "<a&b>"}, "top": "t\nu"}"#;

/// For each file sops encrypted and each path, `keys decrypt --extract PATH FILE`
/// prints exactly what `sops decrypt --extract PATH FILE` prints.
#[test]
fn extract_prints_what_sops_extract_prints() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let key = env.root.join("keys/demo.txt");
    let yaml = sops_encrypted(&env, &repo, "a.yaml", YAML.as_bytes());
    let multi = sops_encrypted(
        &env,
        &repo,
        "m.yaml",
        b"a:\n    b: 1\n    # foot\n---\nc: 2\n",
    );
    let json = sops_encrypted(&env, &repo, "b.json", JSON.as_bytes());
    let ini = sops_encrypted(
        &env,
        &repo,
        "c.ini",
        b"[sec]\na = 1\nb = two\n[other]\nc = 3\n",
    );
    let dotenv = sops_encrypted(&env, &repo, "d.env", b"# c\nA=1\nB=two\\nlines\n");
    let cases: &[(&std::path::Path, &[&str])] = &[
        (
            &yaml,
            &[
                r#"["db"]["password"]"#,
                "['db']['password']",
                r#"["db"]["port"]"#,
                r#"["db"]["ratio"]"#,
                r#"["db"]["on"]"#,
                r#"["db"]["off"]"#,
                r#"["db"]["nothing"]"#,
                r#"["db"]["when"]"#,
                r#"["db"]["multi"]"#,
                r#"["db"]["list"]"#,
                r#"["db"]["list"][0]"#,
                r#"["db"]["list"][2]"#,
                r#"["db"]["list"][+3]"#,
                r#"["db"]["list"][04]"#,
                r#"["db"]["list"][3]["y"]"#,
                r#"["db"]["empty"]"#,
                r#"["db"]["emptyl"]"#,
                r#"["db"]"#,
                r#"["key with space"]"#,
                r#"["a"b"]"#,
                r#"["blob"]"#,
                "",
            ],
        ),
        (&multi, &[r#"["a"]"#, r#"["a"]["b"]"#]),
        (
            &json,
            &[
                r#"["db"]"#,
                r#"["db"]["password"]"#,
                r#"["db"]["port"]"#,
                r#"["db"]["ratio"]"#,
                r#"["db"]["big"]"#,
                r#"["db"]["on"]"#,
                r#"["db"]["nothing"]"#,
                r#"["db"]["list"]"#,
                r#"["db"]["list"][2]"#,
                r#"["db"]["list"][3]"#,
                r#"["db"]["list"][4]"#,
                r#"["db"]["html"]"#,
                r#"["top"]"#,
            ],
        ),
        (&ini, &[r#"["sec"]["a"]"#, r#"["other"]["c"]"#]),
        (&dotenv, &[r#"["A"]"#, r#"["B"]"#]),
    ];
    let mut compared = 0;
    for (file, paths) in cases {
        let file = file.display().to_string();
        for path in *paths {
            let want = sops(&env, &["decrypt", "--extract", path, &file], &key).success();
            let got = env.keys(&["decrypt", "--extract", path, &file]).success();
            assert!(
                got.raw_stdout == want.raw_stdout,
                "{file} {path}:\n--- keys\n{:?}\n--- sops\n{:?}",
                got.stdout,
                want.stdout
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 41);
}

/// By name, a secret's value comes out the same, and a subtree is laid out with its
/// rule's `indent`, as sops lays it out with the exported `.sops.yaml`.
#[test]
fn extract_by_name_follows_the_rule_indent_as_sops_does_with_the_export() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    env.write(
        "work/policies/default.yaml",
        "groups:\n  admins: [demo]\nrules:\n  - secrets: \"wide/*\"\n    format: sops-yaml\n    indent: 2\n    readers: [admins]\n  - secrets: \"wjson/*\"\n    format: sops-json\n    indent: 3\n    readers: [admins]\n",
    );
    env.keys_stdin(&["encrypt", "wide/app"], YAML.as_bytes())
        .success();
    env.keys_stdin(&["encrypt", "wjson/app"], JSON.as_bytes())
        .success();
    env.keys(&["export", "sops-config", "-o", ".sops.yaml"])
        .success();
    let key = env.root.join("keys/demo.txt");
    for (name, file, path) in [
        ("wide/app", "secrets/wide/app.yaml", r#"["db"]"#),
        ("wide/app", "secrets/wide/app.yaml", r#"["db"]["list"]"#),
        ("wide/app", "secrets/wide/app.yaml", r#"["db"]["password"]"#),
        ("wjson/app", "secrets/wjson/app.json", r#"["db"]"#),
        ("wjson/app", "secrets/wjson/app.json", r#"["db"]["list"]"#),
    ] {
        let want = sops(&env, &["decrypt", "--extract", path, file], &key).success();
        for target in [name, file] {
            let got = env.keys(&["decrypt", target, "--extract", path]).success();
            assert_eq!(got.stdout, want.stdout, "{target} {path}");
        }
    }
}

/// A path that names nothing is one line naming the file and the path (exit 3); a
/// path sops cannot read is a usage error (exit 2) with the path written as sops
/// writes it; age and binary secrets are refused before anything is decrypted.
/// Nothing is printed on stdout, no value is quoted, and no file changes.
#[test]
fn extract_refuses_what_names_nothing_with_the_path() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "yaml/app"], YAML.as_bytes())
        .success();
    env.keys_stdin(&["encrypt", "ini/app"], b"[sec]\na = 1\n")
        .success();
    env.keys_stdin(&["encrypt", "bot/token"], b"hunter2-token")
        .success();
    env.keys_stdin(&["encrypt", "bin/blob"], b"hunter2-blob")
        .success();
    let before = tree(&repo);
    let file = repo.join("secrets/yaml/app.yaml").display().to_string();
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "yaml/app",
            r#"["db"]["missing"]"#,
            3,
            &format!(r#"keys: error: {file}: no key ["missing"] in ["db"]"#),
        ),
        (
            "yaml/app",
            r#"["nope"]["x"]"#,
            3,
            &format!(r#"keys: error: {file}: no key ["nope"] in the document"#),
        ),
        (
            "yaml/app",
            r#"["db"]["list"][9]"#,
            3,
            &format!(r#"keys: error: {file}: no item [9] in ["db"]["list"]"#),
        ),
        (
            "yaml/app",
            r#"["db"]["list"][1]"#,
            3,
            &format!(r#"keys: error: {file}: ["db"]["list"][1] is a comment line, not a value"#),
        ),
        (
            "yaml/app",
            r#"["db"]["password"]["x"]"#,
            3,
            &format!(
                r#"keys: error: {file}: ["db"]["password"] is a string, so it has no key ["x"]"#
            ),
        ),
        (
            "yaml/app",
            r#"["db"][0]"#,
            3,
            &format!(r#"keys: error: {file}: ["db"] is a map, so it has no item [0]"#),
        ),
        (
            "yaml/app",
            "db.password",
            2,
            "keys: error: --extract 'db.password': `[db.password` does not end with ]",
        ),
        (
            "yaml/app",
            "[-1]",
            2,
            "keys: error: --extract '[-1]': [-1] is a negative list index",
        ),
        (
            "ini/app",
            r#"["sec"]"#,
            3,
            "is a section, which sops cannot print alone",
        ),
        (
            "bot/token",
            r#"["a"]"#,
            2,
            "keys: error: --extract: bot/token is an age file, one value with no keys in it",
        ),
        (
            "bin/blob",
            r#"["data"]"#,
            2,
            "keys: error: --extract: bin/blob is a sops binary file, one value with no keys in it",
        ),
    ];
    for (name, path, code, message) in cases {
        let r = env
            .keys(&["decrypt", name, "--extract", path])
            .failure(*code);
        assert_eq!(r.stdout, "", "{name} {path}");
        let first = r.stderr.lines().next().unwrap();
        assert!(first.contains(message), "{name} {path}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
        assert!(r.stderr.contains("  hint: "), "{}", r.stderr);
        assert!(!r.stderr.contains("s3cret") && !r.stderr.contains("hunter2"));
    }
    // A dotted path is shown as sops writes it.
    let r = env
        .keys(&["decrypt", "yaml/app", "--extract", "db.password"])
        .failure(2);
    assert!(r.stderr.contains(r#"'["db"]["password"]'"#), "{}", r.stderr);
    // Age and binary secrets are refused without any identity at hand.
    env.set("KEYS_IDENTITY", "/nonexistent");
    env.keys(&["decrypt", "bot/token", "--extract", r#"["a"]"#])
        .failure(2);
    assert_eq!(tree(&repo), before);
}
