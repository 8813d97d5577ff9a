//! `keys generate` and `keys rotate`: each kind's value checked for its kind by the
//! real tools (ssh-keygen, age-keygen, openssl) where there is one; a key's public
//! half beside it and in keys.nix; a secret that exists left alone without --force;
//! bad `generate:` options refused at the line; no value in any output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, mode_of, peer, run, runtime_dir, write_private};
use crate::fixture::{fleet, host_key, tree};

const GENERATE: &str = "\
rules:
  - secrets: \"gen/alnum\"
    format: age
    readers: [admins, host:vps-arm]
    generate: {kind: alnum, length: 40}
  - secrets: \"gen/hex\"
    format: age
    readers: [admins, host:vps-arm]
    generate: {kind: hex}
  - secrets: \"gen/b64\"
    format: sops-binary
    readers: [admins, host:vps-arm]
    generate: {kind: base64, length: 24}
  - secrets: \"gen/phrase\"
    format: age
    readers: [admins]
    generate: {kind: passphrase, words: 7}
  - secrets: \"gen/ssh\"
    format: age
    readers: [admins, host:vps-arm]
    generate: {kind: ssh-ed25519}
  - secrets: \"{host}/wg\"
    format: age
    readers: [admins, \"host:{host}\"]
    generate: {kind: wireguard}
  - secrets: \"gen/age\"
    format: age
    readers: [admins, host:vps-arm]
    generate: {kind: age}
  - secrets: \"gen/root\"
    format: age
    readers: [admins, host:vps-arm]
    generate: {kind: hashed-password}
  - secrets: \"gen/manual\"
    format: age
    readers: [admins]
";

/// The demo fleet with the rules above before its own.
fn generating_fleet(env: &mut TestEnv) -> PathBuf {
    let repo = fleet(env);
    env.write("work/policies/0-generate.yaml", GENERATE);
    repo
}

fn value(env: &TestEnv, name: &str) -> Vec<u8> {
    env.keys(&["decrypt", name]).success().raw_stdout
}

fn tool(env: &TestEnv, name: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(peer(name));
    cmd.args(args);
    env.apply(&mut cmd);
    run(cmd, stdin)
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `ssh-ed25519 AAAA…` without the comment.
fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn generate_makes_each_kind_as_its_tools_read_it_and_prints_no_value() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut env = TestEnv::new();
    let repo = generating_fleet(&mut env);
    let made = env.keys(&["generate", "--all"]).success();
    let mut said = made.stdout.clone() + &made.stderr;
    for name in [
        "gen/alnum",
        "gen/hex",
        "gen/phrase",
        "gen/ssh",
        "vps-arm/wg",
        "vps-x86/wg",
        "gen/age",
        "gen/root",
    ] {
        assert!(
            made.stderr.contains(&format!("wrote secrets/{name}.age")),
            "{}",
            made.stderr
        );
    }
    assert!(made.stderr.contains("wrote secrets/gen/b64.bin"));
    assert!(!made.stderr.contains("gen/manual"), "{}", made.stderr);
    let secrets = repo.join("secrets");

    // alnum: 40 letters and digits, no newline.
    let alnum = value(&env, "gen/alnum");
    assert_eq!(alnum.len(), 40);
    assert!(alnum.iter().all(u8::is_ascii_alphanumeric));
    // hex: 32 random bytes as 64 lowercase hex digits.
    let hex = value(&env, "gen/hex");
    assert_eq!(hex.len(), 64);
    assert!(hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    // base64 in a sops-binary file: 24 bytes.
    let base = value(&env, "gen/b64");
    assert_eq!(b64.decode(&base).unwrap().len(), 24);
    assert_eq!(base.len(), 32);
    // passphrase: seven words of the EFF long list.
    let phrase = String::from_utf8(value(&env, "gen/phrase")).unwrap();
    let words: Vec<&str> = phrase.split(' ').collect();
    assert_eq!(words.len(), 7, "{}", words.len());
    for w in &words {
        assert!(diceware_wordlists::EFF_LONG_WORDLIST.contains(w));
    }

    // ssh-ed25519: ssh-keygen derives the public key beside it from the private key.
    let ssh = value(&env, "gen/ssh");
    let ssh_file = write_private(&env, "ssh-key", &ssh);
    let derived = tool(
        &env,
        "ssh-keygen",
        &["-y", "-f", &ssh_file.display().to_string()],
        b"",
    )
    .success()
    .stdout;
    let public = text(&secrets.join("gen/ssh.pub"));
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert_eq!(key_part(&derived), key_part(&public));
    assert_eq!(mode_of(&secrets.join("gen/ssh.pub")), 0o644);

    // wireguard: a clamped X25519 key whose public key is the one beside it.
    for host in ["vps-arm", "vps-x86"] {
        let private = String::from_utf8(value(&env, &format!("{host}/wg"))).unwrap();
        assert!(private.ends_with('\n'));
        let bytes: [u8; 32] = b64.decode(private.trim()).unwrap().try_into().unwrap();
        assert_eq!((bytes[0] & 7, bytes[31] & 0xc0), (0, 0x40), "clamped");
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(bytes));
        assert_eq!(
            text(&secrets.join(format!("{host}/wg.pub"))),
            format!("{}\n", b64.encode(public.as_bytes()))
        );
        said.push_str(&private);
    }
    assert_ne!(
        text(&secrets.join("vps-arm/wg.pub")),
        text(&secrets.join("vps-x86/wg.pub"))
    );

    // age: age-keygen -y gives the recipient beside it.
    let identity = value(&env, "gen/age");
    let id_file = write_private(&env, "age-id", &identity);
    let derived = tool(
        &env,
        "age-keygen",
        &["-y", &id_file.display().to_string()],
        b"",
    )
    .success()
    .stdout;
    assert_eq!(derived, text(&secrets.join("gen/age.pub")));

    // hashed-password: openssl's SHA-512 crypt of the clear passphrase, with the
    // hash's own salt, is the hash; the host reads the hash, never the passphrase.
    let hash = String::from_utf8(value(&env, "gen/root")).unwrap();
    let clear = value(&env, "gen/root.clear");
    assert!(hash.starts_with("$6$rounds=5000$"), "{hash}");
    let salt = hash.rsplit_once('$').unwrap().0.trim_start_matches("$6$");
    let again = tool(
        &env,
        "openssl",
        &["passwd", "-6", "-salt", salt, "-stdin"],
        &clear,
    )
    .success()
    .stdout;
    assert_eq!(again.trim_end(), hash);
    assert_eq!(
        String::from_utf8(clear.clone()).unwrap().split(' ').count(),
        6
    );
    let host = host_key(&env, "vps-arm");
    let age_d = |file: &str| {
        let file = secrets.join(file).display().to_string();
        tool(
            &env,
            "age",
            &["-d", "-i", &host.display().to_string(), &file],
            b"",
        )
    };
    assert_eq!(age_d("gen/root.age").success().raw_stdout, hash.as_bytes());
    assert_ne!(
        age_d("gen/root.clear.age").code,
        0,
        "only the admins read it"
    );

    // The rule of the clear passphrases is the policy's doing, not a written rule.
    let rules = env.keys(&["rule", "ls"]).success().stdout;
    assert!(!rules.contains(".clear"), "{rules}");
    let listed = env.keys(&["ls"]).success().stdout;
    let line = listed
        .lines()
        .find(|l| l.starts_with("gen/root.clear "))
        .unwrap();
    assert!(line.trim_end().ends_with("ok      admins"), "{line}");
    // keys check accepts the public halves; nothing printed a value.
    env.keys(&["check"]).success();
    for v in [
        &alnum,
        &hex,
        &base,
        phrase.as_bytes(),
        &ssh,
        &identity,
        &clear,
    ] {
        let v = String::from_utf8_lossy(v);
        let v = v.trim();
        assert!(!said.contains(v), "a value was printed: {said}");
    }
    assert!(!said.contains("AGE-SECRET-KEY") && !said.contains("PRIVATE KEY"));
}

#[test]
fn generate_leaves_what_exists_unless_forced_and_rotate_makes_a_new_value() {
    let mut env = TestEnv::new();
    let repo = generating_fleet(&mut env);
    env.keys(&["generate", "vps-arm/wg", "gen/root"]).success();
    let wg = value(&env, "vps-arm/wg");
    let before = tree(&repo);

    let again = env.keys(&["generate", "vps-arm/wg", "gen/root"]).success();
    assert!(
        again
            .stderr
            .contains("vps-arm/wg exists; left as it is (--force makes a new value)"),
        "{}",
        again.stderr
    );
    assert_eq!(tree(&repo), before, "nothing changed without --force");

    let forced = env.keys(&["generate", "--force", "vps-arm/wg"]).success();
    assert!(forced.stderr.contains("replaced secrets/vps-arm/wg.age"));
    let new = value(&env, "vps-arm/wg");
    assert_ne!(new, wg);
    let public = text(&repo.join("secrets/vps-arm/wg.pub"));
    assert_ne!(
        public.as_bytes(),
        &before[&repo.join("secrets/vps-arm/wg.pub")][..]
    );
    env.keys(&["check"]).success();

    // rotate: the generator's new value, with a new passphrase for a hashed password.
    let clear = value(&env, "gen/root.clear");
    let rotated = env.keys(&["rotate", "gen/root"]).success();
    assert!(
        rotated.stderr.contains("rotated secrets/gen/root.age"),
        "{}",
        rotated.stderr
    );
    assert_ne!(value(&env, "gen/root.clear"), clear);
    assert!(
        !rotated
            .stderr
            .contains(&String::from_utf8_lossy(&clear).to_string())
    );
    env.keys(&["check"]).success();

    // keys rm takes the public half with the key.
    env.keys(&["rm", "vps-arm/wg"]).success();
    assert!(!repo.join("secrets/vps-arm/wg.pub").exists());
    env.keys(&["check"]).success();
}

#[test]
fn rotate_opens_the_editor_for_a_secret_without_a_generator() {
    let mut env = TestEnv::new();
    generating_fleet(&mut env);
    let _run_dir = runtime_dir(&mut env);
    env.keys_stdin(&["encrypt", "gen/manual"], b"old-canary")
        .success();
    let editor = env.script(
        "bin/fake-editor",
        "#!/bin/sh\nprintf 'new-canary' > \"$1\"\n",
    );
    env.set("EDITOR", editor.display().to_string());
    let run = env.keys(&["rotate", "gen/manual"]).success();
    assert!(!run.stderr.contains("canary"));
    assert_eq!(value(&env, "gen/manual"), b"new-canary");
    // A secret that does not exist is not rotated.
    let run = env.keys(&["rotate", "gen/alnum"]).failure(3);
    assert!(
        run.stderr.contains("no secret named gen/alnum"),
        "{}",
        run.stderr
    );
}

#[test]
fn generate_refuses_bad_options_at_their_line_and_names_without_a_generator() {
    let mut env = TestEnv::new();
    let repo = generating_fleet(&mut env);
    let run = env.keys(&["generate", "gen/manual"]).failure(3);
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "keys: error: policies/0-generate.yaml:34: the rule for secret gen/manual has no generate: option"
    );
    assert!(
        run.stderr
            .contains("hint: give its rule `generate: {kind: KIND}`")
    );
    for (from, to, line, what) in [
        (
            "kind: hex}",
            "kind: hexx}",
            9,
            "unknown generate kind \"hexx\"; expected one of alnum, hex, base64, passphrase, ssh-ed25519, wireguard, age, hashed-password",
        ),
        (
            "kind: wireguard}",
            "kind: wireguard, length: 40}",
            25,
            "length applies only to generate kinds alnum, hex and base64, not wireguard",
        ),
        (
            "kind: alnum, length: 40",
            "kind: alnum, length: 4",
            5,
            "generate length 4 for alnum is not between 8 and 4096",
        ),
        (
            "words: 7",
            "words: 2",
            17,
            "generate words 2 for passphrase is not between 4 and 64",
        ),
        (
            "kind: hex}",
            "kind: hex, words: 5}",
            9,
            "words applies only to generate kind passphrase, not hex",
        ),
        (
            "format: sops-binary",
            "format: sops-yaml",
            13,
            "generate applies only to formats age and sops-binary (a generated value is the whole secret), not sops-yaml",
        ),
        (
            "kind: age}",
            "kind: age, size: 3}",
            29,
            "unknown field `size`",
        ),
    ] {
        env.write("work/policies/0-generate.yaml", GENERATE.replace(from, to));
        let before = tree(&repo);
        let run = env.keys(&["generate", "--all"]).failure(3);
        let first = run.stderr.lines().next().unwrap();
        assert!(
            first.starts_with(&format!(
                "keys: error: policies/0-generate.yaml:{line}: {what}"
            )),
            "{first}"
        );
        assert!(run.stderr.contains("hint: "), "{}", run.stderr);
        assert_eq!(tree(&repo), before);
    }
}

/// `(import keys.nix)."@public"` evaluated by the real Nix.
fn public_halves(env: &TestEnv, repo: &Path) -> serde_json::Value {
    let mut nix = Command::new(peer("nix-instantiate"));
    nix.args(["--eval", "--strict", "--json", "--store", "dummy://", "-E"])
        .arg(format!(
            "(import {}).\"@public\"",
            repo.join("keys.nix").display()
        ));
    env.apply(&mut nix);
    serde_json::from_str(&run(nix, b"").success().stdout).unwrap()
}

fn value_of_public(env: &TestEnv, repo: &Path, name: &str) -> String {
    public_halves(env, repo)[name].as_str().unwrap().to_string()
}

#[test]
fn keys_nix_names_the_public_halves_and_still_evaluates() {
    let mut env = TestEnv::new();
    let repo = generating_fleet(&mut env);
    env.keys(&["generate", "--all"]).success();
    env.keys(&["export", "nix"]).success();
    let public = public_halves(&env, &repo);
    let secrets = repo.join("secrets");
    for name in ["gen/ssh", "gen/age", "vps-arm/wg", "vps-x86/wg"] {
        assert_eq!(
            public[name],
            text(&secrets.join(format!("{name}.pub"))).trim_end(),
            "{name}"
        );
    }
    assert_eq!(public.as_object().unwrap().len(), 4);
    // The hosts' modules still evaluate with the real agenix and sops-nix modules.
    let host = crate::export::evaluated(&env, &repo, "vps-x86", false);
    assert_eq!(
        host["age"]["secrets"]["vps-x86/wg"]["file"],
        secrets.join("vps-x86/wg.age").display().to_string()
    );
    env.keys(&["check"]).success();
    // A host renamed takes its key and the key's public half along.
    env.keys(&["host", "rename", "vps-x86", "x86"]).success();
    let public = text(&secrets.join("x86/wg.pub"));
    assert!(!secrets.join("vps-x86/wg.pub").exists());
    env.keys(&["check"]).success();
    let keys_nix = text(&repo.join("keys.nix"));
    assert!(
        keys_nix.contains("\"x86/wg\" = builtins.replaceStrings"),
        "{keys_nix}"
    );
    assert_eq!(value_of_public(&env, &repo, "x86/wg"), public.trim_end());
    // Rotating a key changes its public half, not keys.nix.
    let nix_before = text(&repo.join("keys.nix"));
    env.keys(&["rotate", "x86/wg"]).success();
    assert_eq!(text(&repo.join("keys.nix")), nix_before);
    env.keys(&["check"]).success();
}
