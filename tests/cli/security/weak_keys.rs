//! Small-order and non-canonical public keys, wherever a key enters `keys`: host and
//! admin files, `host add` and `host rotate` (a key file, ssh-keyscan, a real sshd,
//! and a generated key beside a weak one), `to-age`, and private key files given as
//! identities. Each is refused in one line naming the file and line, exit 3, with
//! every file left as it was; `keys check` reports one already in a repository.

use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bech32::{Bech32, Hrp};
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::montgomery::MontgomeryPoint;

use crate::common::{Run, TestEnv, vectors};
use crate::fixture::sops_fleet;
use crate::fixture::{POLICY, fleet, tree};
use crate::host::{fake_keyscan, start_sshd_with_key};
use crate::security::hostile::{
    armor_body, rearmor, ssh_private, ssh_private_encrypted, ssh_string,
};

/// The field prime 2^255 - 19, little-endian.
const P: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// `x + p`, when it is still below 2^255 (a second encoding of the same number).
fn plus_p(x: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(x[i]) + u16::from(P[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    (carry == 0 && out[31] & 0x80 == 0).then_some(out)
}

/// The 8 points of order dividing 8 (the identity among them) as ssh-ed25519 key
/// bytes, and every other encoding of them that decompresses: y + p where that is
/// below 2^255, and the sign bit set where x = 0.
fn small_order_ed25519() -> Vec<(String, [u8; 32])> {
    let mut out = Vec::new();
    for (i, point) in EIGHT_TORSION.iter().enumerate() {
        let bytes = point.compress().to_bytes();
        let x_is_zero = *point == -point;
        out.push((format!("[{i}]T"), bytes));
        let mut y = bytes;
        y[31] &= 0x7f;
        if let Some(mut reduced) = plus_p(&y) {
            reduced[31] |= bytes[31] & 0x80;
            out.push((format!("[{i}]T as y+p"), reduced));
            if x_is_zero {
                reduced[31] |= 0x80;
                out.push((format!("[{i}]T as y+p, sign set"), reduced));
            }
        }
        if x_is_zero {
            let mut signed = bytes;
            signed[31] |= 0x80;
            out.push((format!("[{i}]T, sign set"), signed));
        }
    }
    let mut distinct: Vec<[u8; 32]> = out.iter().map(|(_, b)| *b).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 14, "8 canonical and 6 other encodings");
    out
}

/// The low-order X25519 u-coordinates: 0, 1 and the two of order 8 (from the
/// curve's 8-torsion), p - 1 (order 4 on the twist), and their other encodings:
/// u + p where that is below 2^255, and the top bit set.
fn low_order_x25519() -> Vec<(String, [u8; 32])> {
    let mut canonical: Vec<[u8; 32]> = EIGHT_TORSION
        .iter()
        .map(|p| p.to_montgomery().to_bytes())
        .collect();
    canonical.sort();
    canonical.dedup();
    assert_eq!(canonical.len(), 4, "u = 0, 1 and two of order 8");
    let mut minus_one = P;
    minus_one[0] -= 1;
    canonical.push(minus_one);
    let mut out = Vec::new();
    for (i, u) in canonical.iter().enumerate() {
        out.push((format!("u{i}"), *u));
        if let Some(plus) = plus_p(u) {
            out.push((format!("u{i}+p"), plus));
        }
        let mut top = *u;
        top[31] |= 0x80;
        out.push((format!("u{i}, top bit set"), top));
    }
    assert_eq!(out.len(), 12, "5 canonical and 7 other encodings");
    for (what, u) in &out {
        let product = MontgomeryPoint(*u).mul_clamped([0x42; 32]);
        assert_eq!(product.to_bytes(), [0u8; 32], "{what} is not of low order");
    }
    out
}

/// `ssh-ed25519 AAAA…` for a point.
fn ssh_line(point: &[u8; 32]) -> String {
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-ed25519");
    ssh_string(&mut blob, point);
    format!("ssh-ed25519 {}", B64.encode(blob))
}

/// `age1…` for a u-coordinate.
fn age_line(u: &[u8; 32]) -> String {
    bech32::encode::<Bech32>(Hrp::parse("age").unwrap(), u).unwrap()
}

fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

/// An OpenSSH private key file whose public key (everywhere it is written in the
/// clear) is `public` instead of its seed's.
fn with_public(key: &str, public: &[u8; 32]) -> String {
    let real = ssh_key::PrivateKey::from_openssh(key)
        .unwrap()
        .public_key()
        .key_data()
        .ed25519()
        .unwrap()
        .0;
    let body = replace_all(&armor_body(key), &real, public);
    assert_ne!(body, armor_body(key));
    rearmor("OPENSSH PRIVATE KEY", &body, 70)
}

/// Asserts a refusal: exit `code`, exactly one error line, naming `at` (with its line
/// when there is one) and saying `what`, and no panic.
#[track_caller]
fn refused(run: Run, code: i32, at: &str, what: &str, case: &str) {
    assert!(
        !run.stderr.contains("panicked"),
        "{case}: panicked\n{}",
        run.stderr
    );
    let run = run.failure(code);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("keys: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{case}: {}", run.stderr);
    let said = if code == 8 { &run.stdout } else { errors[0] };
    assert!(
        said.contains(&format!("{at}: ")) && said.contains(what),
        "{case}: expected {at}: …{what}…\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

const SMALL: &str = "is a small-order point (anyone could decrypt what is sealed to it)";

/// A host file with a weak key, for the host or for one of its containers, stops
/// every command that reads it: encrypting to it (age and sops, which used to
/// panic), adding or rotating another host with a generated key; `check` reports it.
#[test]
fn a_weak_key_in_a_host_file_is_refused_by_file_and_line() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let host_file = repo.join("recipients/hosts/vps-arm.yaml");
    let original = std::fs::read_to_string(&host_file).unwrap();
    assert!(original.lines().nth(1).unwrap().starts_with("ssh_key: "));
    assert_eq!(original.lines().nth(9), Some("  nannuo-bot: {}"));
    for (what, point) in small_order_ed25519() {
        let line = ssh_line(&point);
        let host = original.replacen(
            original.lines().nth(1).unwrap(),
            &format!("ssh_key: {line} root@vps-arm"),
            1,
        );
        let container = original.replacen(
            "  nannuo-bot: {}",
            &format!("  nannuo-bot:\n    ssh_key: {line}"),
            1,
        );
        for (text, at, secrets) in [
            (
                &host,
                "recipients/hosts/vps-arm.yaml:2",
                ["bot/x", "yaml/x"],
            ),
            (
                &container,
                "recipients/hosts/vps-arm.yaml:11",
                ["misc/x", "yaml/x"],
            ),
        ] {
            std::fs::write(&host_file, text).unwrap();
            let before = tree(&repo);
            let case = format!("{what} at {at}");
            for secret in secrets {
                let run = env.keys_stdin(&["encrypt", secret], b"a: b\n");
                refused(run, 3, at, SMALL, &case);
            }
            for args in [
                &["host", "add", "web", "--generate"][..],
                &["host", "rotate", "vps-x86", "--generate"],
            ] {
                refused(env.keys(args), 3, at, SMALL, &case);
            }
            refused(env.keys(&["check"]), 8, at, SMALL, &case);
            assert!(tree(&repo) == before, "{case}: a file changed");
        }
    }
    std::fs::write(&host_file, original).unwrap();
    env.keys_stdin(&["encrypt", "yaml/x"], b"a: b\n").success();
}

/// An admin file naming a weak ssh-ed25519 or `age1…` key (which used to panic
/// `encrypt`) is refused by every command that reads the admins.
#[test]
fn a_weak_key_in_an_admin_file_is_refused_by_file_and_line() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let policy = repo.join("policies/default.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(POLICY.contains("admins: [demo]\n") && text.contains("admins: [demo]\n"));
    std::fs::write(
        &policy,
        text.replacen("admins: [demo]", "admins: [demo, mallory]", 1),
    )
    .unwrap();
    let admin = repo.join("recipients/admins/mallory.pub");
    let ed = small_order_ed25519()
        .into_iter()
        .map(|(what, p)| (what, ssh_line(&p), "ssh-ed25519 key"));
    let x = low_order_x25519()
        .into_iter()
        .map(|(what, u)| (what, age_line(&u), "age recipient"));
    for (what, line, kind) in ed.chain(x) {
        std::fs::write(&admin, format!("# mallory's laptop\n{line}\n")).unwrap();
        let before = tree(&repo);
        let at = "recipients/admins/mallory.pub:2";
        let case = format!("{what}: {line}");
        let said = format!("{kind} {SMALL}");
        for secret in ["misc/x", "yaml/x"] {
            let run = env.keys_stdin(&["encrypt", secret], b"a: b\n");
            refused(run, 3, at, &said, &case);
        }
        refused(
            env.keys(&["host", "add", "web", "--generate"]),
            3,
            at,
            &said,
            &case,
        );
        refused(env.keys(&["check"]), 8, at, &said, &case);
        assert!(tree(&repo) == before, "{case}: a file changed");
    }
}

/// An ssh-rsa key anyone could compute the private half of (a prime modulus, a
/// small factor, two factors side by side; built for the test, not by ssh-keygen)
/// is refused in an admin file and by `admin add`, where a real ssh-keygen RSA key
/// is taken; agenix encrypts to ssh-rsa keys, so such a key would open secrets.
#[test]
fn an_ssh_rsa_key_whose_private_half_anyone_can_compute_is_refused() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let policy = repo.join("policies/default.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replacen("admins: [demo]", "admins: [demo, mallory]", 1),
    )
    .unwrap();
    let admin = repo.join("recipients/admins/mallory.pub");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/weak-rsa");
    for (file, said) in [
        ("prime-modulus.pub", "ssh-rsa key has a prime modulus"),
        ("small-factor.pub", "ssh-rsa key has a small prime factor"),
        ("close-factors.pub", "ssh-rsa key has two factors so close"),
    ] {
        let line = std::fs::read_to_string(fixtures.join(file)).unwrap();
        std::fs::write(&admin, format!("# mallory\n{line}")).unwrap();
        let before = tree(&repo);
        let at = "recipients/admins/mallory.pub:2";
        refused(
            env.keys_stdin(&["encrypt", "misc/x"], b"a"),
            3,
            at,
            said,
            file,
        );
        refused(env.keys(&["check"]), 8, at, said, file);
        assert!(tree(&repo) == before, "{file}: a file changed");
        std::fs::remove_file(&admin).unwrap();
        let before = tree(&repo);
        let key = fixtures.join(file).display().to_string();
        let run = env.keys(&["admin", "add", "mallory2", "--key", &key]);
        refused(run, 3, &format!("{key}:1"), said, file);
        assert!(tree(&repo) == before, "{file}: a file changed");
    }
    let real = vectors().join("keys/rsa-01.pub");
    std::fs::copy(&real, &admin).unwrap();
    env.keys_stdin(&["encrypt", "misc/x"], b"a").success();
}

/// `host add` and `host rotate` refuse a weak key from `--key FILE` or from the
/// ssh-keyscan program, even beside a good key.
#[test]
fn weak_host_keys_from_a_file_or_keyscan_are_refused_by_add_and_rotate() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let before = tree(&repo);
    let file = env.root.join("web.pub");
    let good = std::fs::read_to_string(vectors().join("keys/ed25519-01.pub")).unwrap();
    for (what, point) in small_order_ed25519() {
        let line = ssh_line(&point);
        std::fs::write(&file, format!("{line} root@web\n")).unwrap();
        let shown = file.display().to_string();
        let at = format!("{shown}:1");
        for args in [
            &["host", "add", "web", "--key", &shown][..],
            &["host", "rotate", "vps-arm", "--key", &shown],
        ] {
            refused(env.keys(args), 3, &at, SMALL, &what);
        }
        fake_keyscan(&mut env, &format!("203.0.113.9 {line}"));
        for args in [
            &["host", "add", "web", "--keyscan", "203.0.113.9", "--yes"][..],
            &[
                "host",
                "rotate",
                "vps-arm",
                "--keyscan",
                "203.0.113.9",
                "--yes",
            ],
        ] {
            let at = "ssh-keyscan 203.0.113.9:22:1";
            refused(env.keys(args), 3, at, SMALL, &what);
        }
        assert!(tree(&repo) == before, "{what}: a file changed");
    }
    // A weak key is not passed over for a good one on another line.
    let weak = ssh_line(&EIGHT_TORSION[1].compress().to_bytes());
    std::fs::write(&file, format!("{good}{weak}\n")).unwrap();
    let shown = file.display().to_string();
    let run = env.keys(&["host", "add", "web", "--key", &shown]);
    refused(run, 3, &format!("{shown}:2"), SMALL, "good, then weak");
    assert!(tree(&repo) == before);
}

/// A real sshd serving a host key whose public half is a small-order point (OpenSSH
/// loads such a file; ssh-keyscan prints the key before any signature is checked).
#[test]
fn a_real_sshd_serving_a_small_order_host_key_is_refused() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    crate::common::peer("ssh-keyscan");
    let before = tree(&repo);
    for i in [0, 1, 2] {
        let key = with_public(
            &ssh_private(5, "sshd"),
            &EIGHT_TORSION[i].compress().to_bytes(),
        );
        let sshd = start_sshd_with_key(&env, Some(&key));
        let target = format!("127.0.0.1:{}", sshd.port);
        let run = env.keys(&["host", "add", "local", "--keyscan", &target, "--yes"]);
        let at = format!("ssh-keyscan {target}:1");
        refused(run, 3, &at, SMALL, &format!("[{i}]T"));
        assert!(tree(&repo) == before);
    }
}

/// `to-age` refuses weak public keys (ssh-ed25519 and `age1…`), printing nothing.
#[test]
fn to_age_refuses_weak_public_keys_and_prints_nothing() {
    let env = TestEnv::new();
    let good = std::fs::read_to_string(vectors().join("keys/ed25519-01.pub")).unwrap();
    let out = env.root.join("out.txt");
    let ed = small_order_ed25519()
        .into_iter()
        .map(|(what, p)| (what, ssh_line(&p), "ssh-ed25519 key"));
    let x = low_order_x25519()
        .into_iter()
        .map(|(what, u)| (what, age_line(&u), "age recipient"));
    for (what, line, kind) in ed.chain(x) {
        let file = env.write("keys.txt", format!("{good}{line}\n"));
        let shown = file.display().to_string();
        let said = format!("{kind} {SMALL}");
        let run = env.keys(&["to-age", &shown]);
        assert!(run.stdout.is_empty(), "{what}: {}", run.stdout);
        refused(run, 3, &format!("{shown}:2"), &said, &what);
        let run = env.keys_stdin(&["to-age", "-o", out.to_str().unwrap()], line.as_bytes());
        refused(run, 3, "<stdin>:1", &said, &what);
        assert!(!out.exists(), "{what}: wrote {}", out.display());
    }
}

/// A private key file whose public half is a small-order point, or is not its
/// seed's, is refused as an identity (`-i`, `KEYS_IDENTITY`) and by `to-age
/// --private`: a small-order one as soon as the file is read, before any passphrase
/// is asked for.
#[test]
fn private_keys_with_a_weak_or_foreign_public_half_are_refused() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/x"], b"x").success();
    let before = tree(&repo);
    let out = env.root.join("id.txt");
    let pass = env.write("pass", "pw\n");
    env.set("KEYS_PASSPHRASE_FILE", pass.display().to_string());
    let plain = ssh_private(3, "crafted");
    let sealed = ssh_private_encrypted(&env.root, "sealed", "pw");
    let foreign = ssh_key::PrivateKey::from_openssh(ssh_private(4, "other"))
        .unwrap()
        .public_key()
        .key_data()
        .ed25519()
        .unwrap()
        .0;
    const INCONSISTENT: &str = "inconsistent OpenSSH private key";
    let mut cases: Vec<(String, String, &str)> = small_order_ed25519()
        .into_iter()
        .map(|(what, p)| (what, with_public(&plain, &p), SMALL))
        .collect();
    let first = EIGHT_TORSION[0].compress().to_bytes();
    cases.push(("sealed, [0]T".into(), with_public(&sealed, &first), SMALL));
    cases.push((
        "foreign".into(),
        with_public(&plain, &foreign),
        INCONSISTENT,
    ));
    let demo = env.root.join("keys/demo.txt");
    for (what, key, said) in cases {
        let file = env.write("keys/crafted", &key);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let shown = file.display().to_string();
        let run = env.keys(&["to-age", "--private", "-o", out.to_str().unwrap(), &shown]);
        refused(run, 3, &shown, said, &what);
        assert!(!out.exists(), "{what}: wrote {}", out.display());
        let run = env.keys(&["decrypt", "-i", &shown, "bot/x"]);
        refused(run, 3, &shown, said, &what);
        env.set("KEYS_IDENTITY", &shown);
        refused(env.keys(&["decrypt", "bot/x"]), 3, &shown, said, &what);
        env.set("KEYS_IDENTITY", demo.display().to_string());
        assert!(tree(&repo) == before, "{what}: a file changed");
    }
    // A sealed key whose clear public key is another key's: found once it is opened
    // (the right passphrase is not taken for a wrong one).
    let file = env.write("keys/crafted", with_public(&sealed, &foreign));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let shown = file.display().to_string();
    let run = env.keys(&["to-age", "--private", &shown]);
    refused(run, 3, &shown, INCONSISTENT, "sealed, foreign");
    env.set("KEYS_IDENTITY", &shown);
    let run = env.keys(&["decrypt", "bot/x"]);
    refused(run, 3, &shown, INCONSISTENT, "sealed, foreign");
    assert!(tree(&repo) == before);
}
