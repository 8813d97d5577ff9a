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
