//! SSH keys made by the real ssh-keygen, in every layout the reference tools take.
//! Private keys: what OpenSSH (`ssh-keygen -y`), age (`age -d -i`) or ssh-to-age
//! takes, `keys` takes as an identity and converts; what none of them takes is
//! refused with the file and line. Public keys: `to-age` reads authorized_keys and
//! known_hosts lines as sshd and ssh-keygen do, converts each ssh-ed25519 key as
//! ssh-to-age does, and skips the other key types by line.

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

    // A passphrase-protected key (ssh-to-age's own test key, passphrase `test`).
    let key = crate::common::vectors().join("upstream/ssh-to-age/id_ed25519_passphrase");
    let key = std::fs::read_to_string(key).unwrap();
    let text = Parts::of(&key).join(&["# laptop"], &[""], &["old"], "\r\n");
    let file = path(&write_private(&env, "sealed-layout", text));
    let mut env = env;
    let pass = env.write("pass", "test\n");
    env.set("KEYS_PASSPHRASE_FILE", path(&pass));
    let run = env.keys(&["to-age", "--private", &file]).success();
    assert_eq!(
        run.stdout.trim(),
        concat!(
            "AGE-SECRET-",
            "KEY-1EJQ0DZ679RZ4MF6KDC8L8F327SHUULYD5XP53C08ZHYT0KQLNWJQHG7X8P"
        )
    );

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

/// A public key line of `kind` for the ed25519 key `point` (base64 of its wire form).
fn public_line(kind: &str, point: &[u8], extra: &[u8], comment: &str) -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    for part in [kind.as_bytes(), point, extra] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    format!("{kind} {b64} {comment}")
}

#[test]
fn public_key_lines_are_read_as_sshd_reads_them_and_other_types_are_skipped_by_line() {
    let env = TestEnv::new();
    let ed = env.root.join("ed");
    let ec = env.root.join("ec");
    let ca = env.root.join("ca");
    for (key, kind) in [(&ed, "ed25519"), (&ec, "ecdsa"), (&ca, "ed25519")] {
        tool(
            &env,
            "ssh-keygen",
            &["-q", "-N", "", "-t", kind, "-f", &path(key)],
        )
        .success();
    }
    let ed_pub = format!("{}.pub", path(&ed));
    // A user certificate of the ed25519 key, signed by the CA key.
    tool(
        &env,
        "ssh-keygen",
        &["-q", "-s", &path(&ca), "-I", "me", "-n", "root", &ed_pub],
    )
    .success();
    let line = std::fs::read_to_string(&ed_pub).unwrap().trim().to_string();
    let cert = std::fs::read_to_string(env.root.join("ed-cert.pub")).unwrap();
    let ecdsa = std::fs::read_to_string(format!("{}.pub", path(&ec))).unwrap();
    let want = env.keys(&["to-age", &ed_pub]).success().stdout;
    assert!(want.starts_with("age1") && want.lines().count() == 1);
    // A security-key line: ssh-keygen makes one only with a FIDO token at hand.
    let point = {
        use base64::Engine;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(line.split(' ').nth(1).unwrap())
            .unwrap();
        blob[blob.len() - 32..].to_vec()
    };
    let sk = public_line("sk-ssh-ed25519@openssh.com", &point, b"ssh:", "me@token");

    // authorized_keys options, quoted blanks and a key type inside the quotes included:
    // each line is the ed25519 key, as `ssh-keygen -l` (sshd's parser) reads it.
    for (what, text) in [
        (
            "options with quoted blanks",
            format!("from=\"10.0.0.1\",command=\"echo hi there\" {line}"),
        ),
        (
            "a key type inside quotes",
            format!("command=\"echo ssh-ed25519 x\",no-pty {line}"),
        ),
        (
            "an escaped quote",
            format!("restrict,command=\"sh -c \\\" ssh-rsa AAAA\\\"\" {line}"),
        ),
        ("blanks around the line", format!("  \t{line}  ")),
    ] {
        let file = env.write("authorized_keys", format!("{text}\n"));
        tool(&env, "ssh-keygen", &["-l", "-f", &path(&file)]).success();
        let run = env.keys(&["to-age", &path(&file)]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (0, want.as_str()),
            "{what}: {}",
            run.stderr
        );
    }

    // Other key types are skipped, each named by its line; the ed25519 key converts.
    let file = env.write(
        "mixed",
        format!(
            "\u{feff}# host keys\r\n{ecdsa}{sk}\r\n{cert}  # indented comment\n   \n{line}\r\n"
        ),
    );
    let file = path(&file);
    let run = env.keys(&["to-age", &file]).success();
    assert_eq!(run.stdout, want);
    for (n, kind) in [
        (2, "ecdsa-sha2-nistp256"),
        (3, "sk-ssh-ed25519@openssh.com"),
        (4, "ssh-ed25519-cert-v01@openssh.com"),
    ] {
        let note = format!("keys: {file}:{n}: skipped {kind} key");
        assert!(run.stderr.contains(&note), "{note}: {}", run.stderr);
    }

    // Only keys that do not convert: an error, not an empty list of recipients.
    for (what, text) in [
        ("certificate", &cert),
        ("ecdsa", &ecdsa),
        ("security key", &format!("{sk}\n")),
    ] {
        let file = path(&env.write("only", text));
        let run = env.keys(&["to-age", &file]).failure(3);
        assert!(run.stdout.is_empty(), "{what}");
        let first = run
            .stderr
            .lines()
            .find(|l| l.starts_with("keys: error:"))
            .unwrap();
        assert!(
            first.starts_with(&format!("keys: error: {file}: unsupported key type")),
            "{what}: {first}"
        );
    }
}
