//! sops's creation-rule options as sops 3.11 applies them: its regular expressions
//! are Go's (ASCII `\b` and `\w`), checked on key names and comments that are not
//! ASCII.

use crate::common::TestEnv;
use crate::fixture::{POLICY, fleet, sops};

/// The names of the top-level keys whose values a YAML sops file holds encrypted.
fn encrypted_keys(file: &str) -> Vec<&str> {
    file.lines()
        .filter(|l| l.contains(": ENC[") && !l.starts_with(' '))
        .map(|l| l.split(':').next().unwrap())
        .collect()
}

const WORDS: &str =
    "épass: canary-one\npass: canary-two\nxpass: clear-three\nüber_pass: clear-four\n";

#[test]
fn regex_options_match_non_ascii_names_as_sops_does() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let rule = "rules:
  - secrets: \"word/*\"
    format: sops-yaml
    encrypted_regex: '\\bpass'
    readers: [admins]
";
    env.write(
        "work/policies/default.yaml",
        POLICY.replace("rules:\n", rule),
    );
    let admin = env.root.join("keys/demo.txt");

    // keys encrypts what sops encrypts: `\b` is an ASCII word boundary, so `é`
    // starts a word before `pass` and `_` does not.
    env.keys_stdin(&["encrypt", "word/a"], WORDS.as_bytes())
        .success();
    let ours = repo.join("secrets/word/a.yaml");
    let text = std::fs::read_to_string(&ours).unwrap();
    assert_eq!(encrypted_keys(&text), ["épass", "pass"], "{text}");
    let read = sops(&env, &["decrypt", ours.to_str().unwrap()], &admin).success();
    assert_eq!(read.stdout, WORDS);

    env.keys(&["check"]).success();

    // sops's file, in the repository: keys decrypts it and finds nothing wrong in it
    // but that keys did not write it.
    let recipient = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let recipient = recipient.lines().find(|l| l.starts_with("age1")).unwrap();
    let input = env.write("sops-in/b.yaml", WORDS);
    let theirs = sops(
        &env,
        &[
            "encrypt",
            "--age",
            recipient.trim(),
            "--encrypted-regex",
            "\\bpass",
            input.to_str().unwrap(),
        ],
        &admin,
    )
    .success();
    assert_eq!(encrypted_keys(&theirs.stdout), ["épass", "pass"]);
    env.write("work/secrets/word/b.yaml", &theirs.raw_stdout);
    assert_eq!(env.keys(&["decrypt", "word/b"]).success().stdout, WORDS);
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stderr.contains("check found 1 problem"),
        "{}",
        check.stderr
    );
    assert!(
        check
            .stdout
            .starts_with("secrets/word/b.yaml: is not in secrets/keys.lock"),
        "{}",
        check.stdout
    );

    // A comment regex: a value under a comment that matches it stays in clear.
    let commented = "# éclear\nkept: one\n# xclear\nsealed: two\n";
    let input = env.write("sops-in/c.yaml", commented);
    let config = env.write(
        "sops-in/comments.sops.yaml",
        format!(
            "creation_rules:\n  - age: {}\n    unencrypted_comment_regex: '\\bclear'\n",
            recipient.trim()
        ),
    );
    let theirs = sops(
        &env,
        &[
            "--config",
            config.to_str().unwrap(),
            "encrypt",
            input.to_str().unwrap(),
        ],
        &admin,
    )
    .success();
    assert_eq!(encrypted_keys(&theirs.stdout), ["sealed"]);
    let file = env.write("sops-out/c.yaml", &theirs.raw_stdout);
    let read = env.keys(&["decrypt", file.to_str().unwrap()]).success();
    assert_eq!(read.stdout, commented);
}

/// A pattern Go refuses would make sops encrypt nothing (it drops the error): a
/// policy rule with one is refused, with its line and Go's reason, including what
/// Rust's regex would accept (`(?x)`).
#[test]
fn a_regex_go_refuses_is_refused_in_a_policy_with_its_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    for (pattern, reason) in [
        (
            "(?=pass)",
            "invalid or unsupported Perl syntax: `(?=` (lookahead: Go's regexp has none)",
        ),
        ("(?x) pass", "invalid or unsupported Perl syntax: `(?x`"),
        (
            "\\p{Old_Italic}",
            "invalid character class range: `\\p{Old_Italic}`",
        ),
    ] {
        let rule = format!(
            "rules:\n  - secrets: \"word/*\"\n    format: sops-yaml\n    readers: [admins]\n    encrypted_regex: '{pattern}'\n"
        );
        env.write(
            "work/policies/default.yaml",
            POLICY.replace("rules:\n", &rule),
        );
        let r = env
            .keys_stdin(&["encrypt", "word/a"], WORDS.as_bytes())
            .failure(3);
        let want = format!(
            "keys: error: policies/default.yaml:7: encrypted_regex {pattern:?} is not a regular expression sops can use: {reason}\n"
        );
        assert!(r.stderr.starts_with(&want), "{}", r.stderr);
        assert!(!repo.join("secrets/word").exists());
    }
}

/// A sops file with what differs between two encryptions (ciphertext, the wrapped
/// data key's armor, the MAC and the date) masked, to compare layouts.
fn layout(file: &str) -> String {
    let enc = regex::Regex::new(r"ENC\[[^\]]*\]").unwrap();
    let mut out = String::new();
    let mut armor = false;
    for line in file.lines() {
        let trimmed = line.trim_start();
        let lead = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("-----BEGIN") {
            armor = true;
        }
        if armor {
            armor = !trimmed.starts_with("-----END");
            continue;
        }
        let masked = if ["\"lastmodified\"", "lastmodified:", "\"enc\""]
            .iter()
            .any(|k| trimmed.starts_with(k))
        {
            format!("{lead}{}", &trimmed[..8])
        } else {
            enc.replace_all(line, "ENC").into_owned()
        };
        out.push_str(&masked);
        out.push('\n');
    }
    out
}

const NESTED_YAML: &str = "\
app:
  name: canary
  hosts:
    - a
    - port: 1
      tls:
        - x
empty: {}
";

const NESTED_JSON: &str = "{\n  \"app\": {\n    \"name\": \"canary\",\n    \"hosts\": [\n      \"a\",\n      {\n        \"port\": 1\n      }\n    ]\n  },\n  \"empty\": {}\n}\n";

/// `indent:` in a rule is sops's `stores.<format>.indent`: files keys writes are laid
/// out as sops lays them out with the exported `.sops.yaml`, both print the same
/// plaintext, and a value set later keeps the layout.
#[test]
fn a_rule_indent_lays_files_out_as_sops_does_with_the_exported_config() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let rules = "rules:
  - secrets: \"yaml/*\"
    format: sops-yaml
    indent: 2
    readers: [admins]
  - secrets: \"json/*\"
    format: sops-json
    indent: 2
    readers: [admins]
";
    env.write(
        "work/policies/default.yaml",
        POLICY.replace("rules:\n", rules),
    );
    let admin = env.root.join("keys/demo.txt");
    env.keys(&["export", "sops-config"]).success();
    let config = std::fs::read_to_string(repo.join(".sops.yaml")).unwrap();
    assert!(
        config.ends_with("stores:\n  yaml:\n    indent: 2\n  json:\n    indent: 2\n"),
        "{config}"
    );
    let in_repo = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::common::peer("sops"));
        cmd.arg("--disable-version-check").args(args);
        env.apply(&mut cmd);
        cmd.env("SOPS_AGE_KEY_FILE", &admin);
        crate::common::run(cmd, b"").success()
    };
    for (name, ext, plain) in [
        ("yaml/a", "yaml", NESTED_YAML),
        ("json/a", "json", NESTED_JSON),
    ] {
        env.keys_stdin(&["encrypt", name], plain.as_bytes())
            .success();
        let ours = format!("secrets/{name}.{ext}");
        // sops, with the exported config, prints the same plaintext as keys.
        assert_eq!(in_repo(&["decrypt", &ours]).stdout, plain, "{name}");
        assert_eq!(
            env.keys(&["decrypt", name]).success().stdout,
            plain,
            "{name}"
        );
        // sops lays out the same document as keys did.
        let theirs = format!("secrets/{name}-sops.{ext}");
        env.write(&format!("work/{theirs}"), plain);
        in_repo(&["encrypt", "-i", &theirs]);
        let read = |rel: &str| std::fs::read_to_string(repo.join(rel)).unwrap();
        assert_eq!(layout(&read(&ours)), layout(&read(&theirs)), "{name}");
        // A value set later: keys and sops keep the layout alike.
        let key = r#"["app"]["name"]"#;
        env.keys_stdin(&["set", name, key], b"renamed\n").success();
        in_repo(&["set", &theirs, key, "\"renamed\""]);
        assert_eq!(layout(&read(&ours)), layout(&read(&theirs)), "{name}");
        assert!(
            read(&ours).contains(if ext == "yaml" {
                "\n  name: ENC["
            } else {
                "\n    \"name\": \"ENC["
            }),
            "{}",
            read(&ours)
        );
    }
    // A new reader: keys re-wraps its files, sops updates the keys of its own with
    // the config exported again; the layouts stay alike.
    let policy = std::fs::read_to_string(repo.join("policies/default.yaml")).unwrap();
    env.write(
        "work/policies/default.yaml",
        policy.replace(
            "indent: 2\n    readers: [admins]",
            "indent: 2\n    readers: [admins, host:vps-arm]",
        ),
    );
    env.keys(&["export", "sops-config"]).success();
    env.keys(&["rekey"]).success();
    for (name, ext) in [("yaml/a", "yaml"), ("json/a", "json")] {
        let (ours, theirs) = (
            format!("secrets/{name}.{ext}"),
            format!("secrets/{name}-sops.{ext}"),
        );
        in_repo(&["updatekeys", "-y", &theirs]);
        let read = |rel: &str| std::fs::read_to_string(repo.join(rel)).unwrap();
        assert_eq!(layout(&read(&ours)), layout(&read(&theirs)), "{name}");
        // A file given by path is printed with the `.sops.yaml` sops would read here.
        let printed = env.keys(&["decrypt", &theirs]).success().stdout;
        assert_eq!(printed, in_repo(&["decrypt", &theirs]).stdout, "{name}");
        assert!(printed.contains("\n  "), "{printed}");
    }
}

#[test]
fn an_indent_sops_cannot_write_or_rules_that_disagree_are_refused() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    for (rules, want) in [
        (
            "rules:\n  - secrets: a\n    format: sops-yaml\n    readers: [admins]\n    indent: 12\n",
            "policies/default.yaml:7: indent 12 for sops-yaml: sops writes 2 to 9 spaces",
        ),
        (
            "rules:\n  - secrets: a\n    format: age\n    readers: [admins]\n    indent: 2\n",
            "policies/default.yaml:7: indent applies only to sops-yaml, sops-json and sops-binary",
        ),
        (
            "rules:\n  - secrets: a\n    format: sops-yaml\n    readers: [admins]\n    indent: 2\n  - secrets: b\n    format: sops-yaml\n    readers: [admins]\n",
            "policies/default.yaml:8: the sops-yaml rule at policies/default.yaml:7 has indent 2; sops has one indentation per format",
        ),
    ] {
        env.write(
            "work/policies/default.yaml",
            POLICY.replace("rules:\n", rules),
        );
        let r = env.keys_stdin(&["encrypt", "a"], b"a: 1\n").failure(3);
        assert!(
            r.stderr.starts_with(&format!("keys: error: {want}")),
            "{}",
            r.stderr
        );
    }
}
