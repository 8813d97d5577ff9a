//! dotenv, INI and JSON files as people write them, read as sops 3.11 reads them:
//! an INI `[DEFAULT]` section anywhere, repeated keys and sections, a dotenv byte
//! order mark, a second JSON document, JSON nested far deeper than YAML usually is.
//! Each plaintext is encrypted by sops and by keys; keys decrypts sops's file to
//! what `sops decrypt` prints, and sops decrypts keys's file to the same bytes.

use std::path::{Path, PathBuf};

use crate::common::{Run, TestEnv};
use crate::fixture::{sops, sops_encrypted, sops_fleet};

struct Fleet {
    env: TestEnv,
    repo: PathBuf,
    admin: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        let mut env = TestEnv::new();
        let repo = sops_fleet(&mut env);
        let admin = env.root.join("keys/demo.txt");
        Fleet { env, repo, admin }
    }

    fn sops_decrypt(&self, file: &Path) -> Run {
        sops(&self.env, &["decrypt", file.to_str().unwrap()], &self.admin)
    }

    /// Encrypts `plaintext` with sops and with keys as `NAME.EXT` (the policy's
    /// `ini/`, `env/` or `json/` rule), checks that each tool reads both files as
    /// sops reads its own, and returns what `sops decrypt` prints.
    fn both_ways(&self, name: &str, ext: &str, plaintext: &[u8]) -> String {
        let shown = String::from_utf8_lossy(plaintext);
        let theirs = sops_encrypted(&self.env, &self.repo, &format!("{name}.{ext}"), plaintext);
        let expected = self.sops_decrypt(&theirs).success().raw_stdout;
        let ours = self
            .env
            .keys(&["decrypt", theirs.to_str().unwrap()])
            .success();
        assert!(
            ours.raw_stdout == expected,
            "{name}: keys read sops's file of {shown:?}\n--- keys\n{}\n--- sops\n{}",
            ours.stdout,
            String::from_utf8_lossy(&expected)
        );
        let dir = if ext == "env" { "env" } else { ext };
        let secret = format!("{dir}/{name}");
        self.env
            .keys_stdin(&["encrypt", &secret], plaintext)
            .success();
        let written = self.repo.join(format!("secrets/{secret}.{ext}"));
        let by_sops = self.sops_decrypt(&written);
        assert_eq!(
            by_sops.code, 0,
            "{name}: sops refused keys's file of {shown:?}: {}",
            by_sops.stderr
        );
        assert!(
            by_sops.raw_stdout == expected,
            "{name}: sops read keys's file of {shown:?}\n--- from keys's file\n{}\n--- from sops's\n{}",
            by_sops.stdout,
            String::from_utf8_lossy(&expected)
        );
        let back = self.env.keys(&["decrypt", &secret]).success();
        assert!(back.raw_stdout == expected, "{name}: {}", back.stdout);
        String::from_utf8_lossy(&expected).into_owned()
    }
}

/// go-ini starts every file with a keyless DEFAULT section and opens a new section at
/// every header, `[DEFAULT]` and a repeated name included: sops prints an explicit
/// `[DEFAULT]` with its header and comments wherever it stands.
#[test]
fn ini_default_sections_read_and_written_as_sops_does() {
    let fleet = Fleet::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "default-first",
            "[DEFAULT]\na = 1\n[s]\nb = 2\n",
            "[DEFAULT]\na = 1\n\n[s]\nb = 2\n",
        ),
        (
            "default-comments",
            "; c0\n[DEFAULT] ; c1\n; c2\na = 1\n[s]\nb = 2\n",
            "; c0\n; c1\n[DEFAULT]\n; c2\na = 1\n\n[s]\nb = 2\n",
        ),
        (
            "default-after-keys",
            "x = 0\n[DEFAULT]\na = 1\n",
            "x = 0\n\n[DEFAULT]\na = 1\n",
        ),
        (
            "default-after-section",
            "[s]\nb = 2\n[DEFAULT]\na = 1\n",
            "[s]\nb = 2\n\n[DEFAULT]\na = 1\n",
        ),
        (
            "default-twice",
            "[DEFAULT]\na = 1\n[DEFAULT]\nb = 2\n",
            "[DEFAULT]\na = 1\n\n[DEFAULT]\nb = 2\n",
        ),
        (
            "default-empty",
            "[DEFAULT]\n[s]\na=1\n",
            "[DEFAULT]\n\n[s]\na = 1\n",
        ),
        (
            "default-keyless",
            "# hello\na = 1 # tail\n",
            "; hello\n# tail\na = 1\n",
        ),
    ];
    for (name, plaintext, want) in cases {
        assert_eq!(fleet.both_ways(name, "ini", plaintext.as_bytes()), *want);
    }
    for (name, plaintext) in [
        (
            "default-three",
            "x=1\n[DEFAULT]\ny=2\n[s]\nz=3\n[DEFAULT]\nw=4\n",
        ),
        (
            "default-trailing-comment",
            "[DEFAULT]\na = 1\n; trailing\n[s]\n",
        ),
        ("default-repeats-a-key", "a = 1\n[DEFAULT]\na = 2\n"),
        ("default-lower-case", "[default]\na = 1\n[DEFAULT]\nb = 2\n"),
        ("empty-sections", "[a]\n[b]\n[a]\n"),
    ] {
        fleet.both_ways(name, "ini", plaintext.as_bytes());
    }
    fleet.env.keys(&["check"]).success();
}

/// Repeated keys: dotenv and JSON keep every one, in order, and sops prints them
/// all; in INI a repeated key keeps its first place with its last value (and the
/// comment before its last line), and a repeated section is a section of its own.
#[test]
fn repeated_keys_and_sections_read_and_written_as_sops_does() {
    let fleet = Fleet::new();
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "dup-key",
            "ini",
            "[s]\na = 1 ; one\nb = x\na = 2\n",
            "[s]\na = 2\nb = x\n",
        ),
        (
            "dup-key-comment",
            "ini",
            "[s]\n; first\na = 1\nb = x\n; second\na = 2\n",
            "[s]\n; second\na = 2\nb = x\n",
        ),
        ("dup-keyless", "ini", "a = 1\na = 2\n", "a = 2\n"),
        (
            "dup-section",
            "ini",
            "[s]\na = 1\n[t]\nc=3\n[s]\nb = 2\n",
            "[s]\na = 1\n\n[t]\nc = 3\n\n[s]\nb = 2\n",
        ),
        ("dup", "env", "A=1\nB=2\nA=3\n", "A=1\nB=2\nA=3\n"),
        (
            "dup-suffix",
            "env",
            "A_unencrypted=1\nA_unencrypted=2\n",
            "A_unencrypted=1\nA_unencrypted=2\n",
        ),
        (
            "dup",
            "json",
            "{\"a\": 1, \"b\": 2, \"a\": 3}",
            "{\n\t\"a\": 1,\n\t\"b\": 2,\n\t\"a\": 3\n}\n",
        ),
        (
            "dup-nested",
            "json",
            "{\"x\": {\"a\": 1, \"a\": {\"b\": 2}}}",
            "{\n\t\"x\": {\n\t\t\"a\": 1,\n\t\t\"a\": {\n\t\t\t\"b\": 2\n\t\t}\n\t}\n}\n",
        ),
    ];
    for (name, ext, plaintext, want) in cases {
        assert_eq!(
            fleet.both_ways(name, ext, plaintext.as_bytes()),
            *want,
            "{name}.{ext}"
        );
    }
    fleet.env.keys(&["check"]).success();
}

/// A dotenv file starting with a byte order mark: sops keeps it as the start of the
/// first key, so the decrypted file starts with it again. Dotenv and INI values that
/// are not UTF-8 are kept as bytes; in JSON each such byte is a U+FFFD. A second JSON document
/// (or anything) after the first object: sops reads the first and ignores the rest.
#[test]
fn a_dotenv_byte_order_mark_and_a_second_json_document_as_sops_reads_them() {
    let fleet = Fleet::new();
    assert_eq!(
        fleet.both_ways("bom", "env", "\u{feff}A=1\nB=2\n".as_bytes()),
        "\u{feff}A=1\nB=2\n"
    );
    // Values are bytes to sops: Latin-1 ones, encrypted or left in clear, come back as
    // they were.
    let latin1 = b"A=\xe9t\xe9\nB_unencrypted=\xe9t\xe9\n";
    let shown = fleet.both_ways("latin1", "env", latin1);
    assert_eq!(shown, String::from_utf8_lossy(latin1));
    let latin1 = b"[s]\na             = \xe9t\xe9\nb_unencrypted = \xe9t\xe9\n";
    let shown = fleet.both_ways("latin1", "ini", latin1);
    assert_eq!(shown, String::from_utf8_lossy(latin1));
    let not_utf8: &[u8] = b"{\"a\": 1}\n\xff";
    for (name, plaintext) in [
        ("second-doc", &b"{\"a\": 1}\n{\"b\": 2}\n"[..]),
        ("trailing", b"{\"a\": 1} trailing"),
        ("trailing-not-utf8", not_utf8),
    ] {
        assert_eq!(
            fleet.both_ways(name, "json", plaintext),
            "{\n\t\"a\": 1\n}\n"
        );
    }
    // A JSON string's bytes that are not UTF-8 are each a U+FFFD to Go.
    assert_eq!(
        fleet.both_ways("latin1", "json", b"{\"k\xe9\": \"\xe9t\xe9 \xe2\x82\"}"),
        "{\n\t\"k\u{fffd}\": \"\u{fffd}t\u{fffd} \u{fffd}\u{fffd}\"\n}\n"
    );
    fleet.env.keys(&["check"]).success();
}

/// JSON nested 200 levels, in objects and in lists, is read and written as sops
/// does.
#[test]
fn deep_json_read_and_written_as_sops_does() {
    let fleet = Fleet::new();
    let objects = format!("{}\"v\"{}", "{\"a\": ".repeat(200), "}".repeat(200));
    let lists = format!("{{\"a\": {}\"v\"{}}}", "[".repeat(200), "]".repeat(200));
    // The value's line: a tab for each level it is in.
    for (name, plaintext, line) in [
        (
            "deep-objects",
            objects,
            format!("\n{}\"a\": \"v\"\n", "\t".repeat(200)),
        ),
        (
            "deep-lists",
            lists,
            format!("\n{}\"v\"\n", "\t".repeat(201)),
        ),
    ] {
        let out = fleet.both_ways(name, "json", plaintext.as_bytes());
        assert!(out.contains(&line), "{name}");
    }
    fleet.env.keys(&["check"]).success();
}

/// JSON nested 10,000 levels, the most Go's encoder writes (here with
/// `stores.json.indent: 0`, so the file stays small): keys decrypts it to what sops
/// prints without running out of stack. Encrypting it, keys would write 100 MB of
/// tabs, more than it reads back: it refuses, naming the secret and why.
#[test]
fn json_as_deep_as_sops_writes_does_not_exhaust_the_stack() {
    let fleet = Fleet::new();
    let levels = 10_000;
    let plaintext = format!("{}\"v\"{}", "{\"a\": ".repeat(levels), "}".repeat(levels));
    let admin = std::fs::read_to_string(fleet.repo.join("recipients/admins/demo.pub")).unwrap();
    let age = admin
        .lines()
        .find(|l| l.starts_with("age1"))
        .unwrap()
        .trim();
    let config = fleet.env.write(
        "sops-in/indent0.yaml",
        format!("stores:\n  json:\n    indent: 0\ncreation_rules:\n  - age: {age}\n"),
    );
    let input = fleet.env.write("sops-in/deep.json", &plaintext);
    let enc = sops(
        &fleet.env,
        &[
            "--config",
            config.to_str().unwrap(),
            "encrypt",
            input.to_str().unwrap(),
        ],
        &fleet.admin,
    )
    .success();
    let file = fleet.env.write("sops-out/deep.json", &enc.raw_stdout);
    // Printed with a tab a level, the plaintext is 100 MB: both tools write it to a file.
    let by_sops = fleet.env.root.join("by-sops.json");
    let by_keys = fleet.env.root.join("by-keys.json");
    let file = file.to_str().unwrap();
    sops(
        &fleet.env,
        &["decrypt", "--output", by_sops.to_str().unwrap(), file],
        &fleet.admin,
    )
    .success();
    fleet
        .env
        .keys(&["decrypt", "-o", by_keys.to_str().unwrap(), file])
        .success();
    let (ours, theirs) = (
        std::fs::read(&by_keys).unwrap(),
        std::fs::read(&by_sops).unwrap(),
    );
    assert!(
        ours.len() > 50_000_000 && ours == theirs,
        "{} bytes",
        ours.len()
    );
    let refused = fleet
        .env
        .keys_stdin(&["encrypt", "json/deep"], plaintext.as_bytes())
        .failure(3);
    assert!(
        refused.stderr.starts_with("keys: error: ")
            && refused.stderr.contains("json/deep")
            && refused.stderr.contains("more than the 16 MiB keys reads"),
        "{}",
        refused.stderr
    );
    assert!(!fleet.repo.join("secrets/json/deep.json").exists());
}
