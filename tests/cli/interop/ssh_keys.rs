//! SSH private keys in every layout the reference tools take, made by the real
//! ssh-keygen: what OpenSSH (`ssh-keygen -y`), age (`age -d -i`) or ssh-to-age takes,
//! `keys` takes as an identity and converts; what none of them takes is refused with
//! the file and line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, peer, run, write_private};

const PLAIN: &[u8] = b"db-password: hunter2\n";

fn tool(env: &TestEnv, name: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(peer(name));
    cmd.args(args);
    env.apply(&mut cmd);
    run(cmd, b"")
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// A key made by ssh-keygen (`extra` picks its type and format) and an age file age
/// encrypted to its public key.
fn keygen(env: &TestEnv, name: &str, extra: &[&str]) -> (String, PathBuf) {
    let key = env.root.join(name);
    let mut args = vec!["-q", "-N", "", "-C", "me@laptop", "-f"];
    let key_arg = path(&key);
    args.push(&key_arg);
    args.extend_from_slice(extra);
    tool(env, "ssh-keygen", &args).success();
    let plain = env.write(&format!("{name}.txt"), PLAIN);
    let sealed = env.root.join(format!("{name}.age"));
    tool(
        env,
        "age",
        &[
            "-R",
            &format!("{key_arg}.pub"),
            "-o",
            &path(&sealed),
            &path(&plain),
        ],
    )
    .success();
    (std::fs::read_to_string(&key).unwrap(), sealed)
}

/// Key text rebuilt from its BEGIN line, body lines and END line.
struct Parts {
    begin: String,
    body: Vec<String>,
    end: String,
}

impl Parts {
    fn of(key: &str) -> Parts {
        let lines: Vec<String> = key.lines().map(str::to_string).collect();
        Parts {
            begin: lines[0].clone(),
            body: lines[1..lines.len() - 1].to_vec(),
            end: lines[lines.len() - 1].clone(),
        }
    }

    fn join(&self, before: &[&str], after_begin: &[&str], after_end: &[&str], eol: &str) -> String {
        let mut lines: Vec<String> = before.iter().map(|s| s.to_string()).collect();
        lines.push(self.begin.clone());
        lines.extend(after_begin.iter().map(|s| s.to_string()));
        lines.extend(self.body.iter().cloned());
        lines.push(self.end.clone());
        lines.extend(after_end.iter().map(|s| s.to_string()));
        lines.iter().map(|l| format!("{l}{eol}")).collect()
    }
}

/// (name, key text, whether ssh-to-age takes it): ssh-to-age reads a key with Go's
/// `encoding/pem`, which skips text before a BEGIN line that starts its line, takes
/// CRLF, blank lines and `Name: value` headers after BEGIN, blanks at the end of the
/// marker lines, and ignores what follows the END line.
fn layouts(key: &str) -> Vec<(&'static str, String, bool)> {
    let p = Parts::of(key);
    let lf = |before: &[&str], after_begin: &[&str], after_end: &[&str]| {
        p.join(before, after_begin, after_end, "\n")
    };
    let mut one_line = Parts::of(key);
    one_line.body = vec![p.body.concat()];
    let mut indented = Parts::of(key);
    indented.body = p.body.iter().map(|l| format!("  {l}\t")).collect();
    let mut padded = Parts::of(key);
    padded.begin.push_str("  ");
    padded.end.push_str(" \t");
    vec![
        ("as written", key.to_string(), true),
        ("a blank line after BEGIN", lf(&[], &[""], &[]), true),
        ("two blank lines after BEGIN", lf(&[], &["", ""], &[]), true),
        (
            "text after the key",
            lf(&[], &[], &["host key of vps-arm"]),
            true,
        ),
        ("blank lines after the key", lf(&[], &[], &["", ""]), true),
        (
            "a comment before BEGIN",
            lf(&["# vps-arm host key"], &[], &[]),
            true,
        ),
        ("a blank line before BEGIN", lf(&[""], &[], &[]), true),
        ("CRLF line endings", p.join(&[], &[], &[], "\r\n"), true),
        (
            "CRLF and a blank line after BEGIN",
            p.join(&[], &[""], &["trailing"], "\r\n"),
            true,
        ),
        ("no newline at the end", key.trim_end().to_string(), true),
        (
            "blanks after the markers",
            padded.join(&[], &[], &[], "\n"),
            true,
        ),
        (
            "a header after BEGIN",
            lf(&[], &["Comment: laptop"], &[]),
            true,
        ),
        (
            "the body on one line",
            one_line.join(&[], &[], &[], "\n"),
            true,
        ),
        (
            "indented body lines",
            indented.join(&[], &[], &[], "\n"),
            true,
        ),
    ]
}

#[test]
fn private_key_layouts_ssh_age_or_ssh_to_age_take_are_identities_and_convert() {
    let env = TestEnv::new();
    let (key, sealed) = keygen(&env, "ed", &["-t", "ed25519"]);
    let want = env
        .keys(&["to-age", "--private", &path(&env.root.join("ed"))])
        .success()
        .stdout;
    let sealed = path(&sealed);
    let mut taken_by = Vec::new();
    for (i, (what, text, go)) in layouts(&key).into_iter().enumerate() {
        let file = path(&write_private(&env, &format!("layout-{i}"), &text));
        let ssh = tool(&env, "ssh-keygen", &["-y", "-f", &file]).code == 0;
        let age = tool(&env, "age", &["-d", "-i", &file, &sealed]);
        let age = age.code == 0 && age.raw_stdout == PLAIN;
        assert!(ssh || age || go, "{what}: no reference tool takes it");
        taken_by.push(format!("{what}: ssh {ssh}, age {age}, ssh-to-age {go}"));
        let run = env.keys(&["decrypt", "-i", &file, &sealed]);
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        assert_eq!(run.raw_stdout, PLAIN, "{what}");
        let run = env.keys(&["to-age", "--private", &file]);
        assert_eq!(
            (run.code, run.stdout),
            (0, want.clone()),
            "{what}: {}",
            run.stderr
        );
    }
    println!("{}", taken_by.join("\n"));

    // A legacy PEM RSA key (ssh-keygen -m PEM), which age takes as an identity.
    let (key, sealed) = keygen(&env, "rsa", &["-t", "rsa", "-b", "2048", "-m", "PEM"]);
    let sealed = path(&sealed);
    let p = Parts::of(&key);
    for (what, text) in [
        ("as written", key.clone()),
        ("a blank line after BEGIN", p.join(&[], &[""], &[], "\n")),
        ("CRLF line endings", p.join(&[], &[], &["trailing"], "\r\n")),
        ("text after the key", p.join(&[], &[], &["old key"], "\n")),
    ] {
        let file = path(&write_private(&env, "rsa-layout", &text));
        let age = tool(&env, "age", &["-d", "-i", &file, &sealed]);
        assert_eq!(age.raw_stdout, PLAIN, "rsa, {what}: age {}", age.stderr);
        let run = env.keys(&["decrypt", "-i", &file, &sealed]);
        assert_eq!(run.code, 0, "rsa, {what}: {}", run.stderr);
        assert_eq!(run.raw_stdout, PLAIN, "rsa, {what}");
    }
}

#[test]
fn private_key_layouts_no_tool_takes_are_refused_by_file_and_line() {
    let env = TestEnv::new();
    let (key, sealed) = keygen(&env, "ed", &["-t", "ed25519"]);
    let sealed = path(&sealed);
    let p = Parts::of(&key);
    let last = p.body.len() + 2;
    let mut damaged = Parts::of(&key);
    damaged.body[1].replace_range(3..4, "!");
    let mut text_after_begin = Parts::of(&key);
    text_after_begin.begin.push_str(" vps-arm");
    let mut text_after_end = Parts::of(&key);
    text_after_end.end.push_str(" vps-arm");
    for (what, text, line, reason) in [
        (
            "text after BEGIN on its line",
            text_after_begin.join(&["# vps-arm"], &[], &[], "\n"),
            2,
            "text after the -----BEGIN OPENSSH PRIVATE KEY----- marker on its line",
        ),
        (
            "text after END on its line",
            text_after_end.join(&[], &[], &[], "\n"),
            last,
            "text after the -----END OPENSSH PRIVATE KEY----- marker on its line",
        ),
        (
            "no END line",
            p.join(&[], &[], &[], "\n").replace(&p.end, ""),
            1,
            "without its -----END line: the key is truncated",
        ),
        (
            "a byte that is not base64",
            damaged.join(&[], &[], &[], "\n"),
            3,
            "a character that is not base64 inside the key",
        ),
    ] {
        let file = path(&write_private(&env, "bad-layout", &text));
        assert_ne!(
            tool(&env, "ssh-keygen", &["-y", "-f", &file]).code,
            0,
            "{what}"
        );
        assert_ne!(
            tool(&env, "age", &["-d", "-i", &file, &sealed]).code,
            0,
            "{what}"
        );
        for args in [
            vec!["decrypt", "-i", &file, &sealed],
            vec!["to-age", "--private", &file],
        ] {
            let run = env.keys(&args).failure(3);
            let first = run.stderr.lines().next().unwrap();
            assert!(
                first.starts_with(&format!("keys: error: {file}:{line}: "))
                    && first.contains(reason),
                "{what}: {first}"
            );
            assert!(run.stdout.is_empty(), "{what}");
            for body in &p.body {
                assert!(
                    !run.stderr.contains(body.as_str()),
                    "{what}: key bytes in the error"
                );
            }
        }
    }
}
