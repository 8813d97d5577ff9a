//! Files `keys` writes are read by the real age 1.1, and files age writes are read by
//! `keys`, for native age keys, ssh-ed25519 keys and their converted recipients.

use std::process::Command;

use keys::crypto::age::Armor;
use keys::error::Location;
use keys::recipient::Recipient;

use crate::common::{TestEnv, peer, private_copy, run, vectors};

fn age(env: &TestEnv, args: &[&str], stdin: &[u8]) -> crate::common::Run {
    let mut cmd = Command::new(peer("age"));
    cmd.args(args);
    env.apply(&mut cmd);
    run(cmd, stdin)
}

#[test]
fn reference_tools_are_installed_at_the_pinned_versions() {
    let env = TestEnv::new();
    let v = age(&env, &["--version"], b"").success();
    assert!(
        v.stdout.trim_start_matches('v').starts_with("1.1."),
        "age {}",
        v.stdout
    );
    let mut sops = Command::new(peer("sops"));
    sops.args(["--disable-version-check", "--version"]);
    env.apply(&mut sops);
    let s = run(sops, b"").success();
    assert!(s.stdout.starts_with("sops 3.11."), "{}", s.stdout);
    peer("ssh-keygen");
    peer("keyctl");
}

#[test]
fn real_age_opens_files_keys_writes_for_derived_and_native_ssh_recipients() {
    let env = TestEnv::new();
    let key = vectors().join("keys/ed25519-02");
    let public = std::fs::read_to_string(vectors().join("keys/ed25519-02.pub")).unwrap();
    let derived = env
        .keys(&["to-age", &format!("{}.pub", key.display())])
        .success()
        .stdout;
    let converted = env.root.join("converted.txt");
    env.keys(&[
        "to-age",
        "--private",
        &key.display().to_string(),
        "-o",
        &converted.display().to_string(),
    ])
    .success();
    assert_eq!(crate::common::mode_of(&converted), 0o600);
    let ssh_key = private_copy(&env, &key, "ed25519-02");
    let at = Location::named("test");
    let plaintext = b"telegram-token: 123456:ABC\n";
    for armor in [Armor::Binary, Armor::Ascii] {
        let to_derived = Recipient::parse_line(derived.trim(), &at).unwrap();
        let file = env.write(
            "derived.age",
            keys::crypto::age::encrypt(plaintext, &[to_derived], armor, &at).unwrap(),
        );
        let out = age(
            &env,
            &[
                "-d",
                "-i",
                &converted.display().to_string(),
                &file.display().to_string(),
            ],
            b"",
        )
        .success();
        assert_eq!(out.raw_stdout, plaintext);
        // An X25519 stanza does not open with the ssh key used natively by age.
        let native = age(
            &env,
            &[
                "-d",
                "-i",
                &ssh_key.display().to_string(),
                &file.display().to_string(),
            ],
            b"",
        );
        assert_ne!(native.code, 0);

        let to_ssh = Recipient::parse_line(public.trim(), &at).unwrap();
        let file = env.write(
            "native.age",
            keys::crypto::age::encrypt(plaintext, &[to_ssh], armor, &at).unwrap(),
        );
        let out = age(
            &env,
            &[
                "-d",
                "-i",
                &ssh_key.display().to_string(),
                &file.display().to_string(),
            ],
            b"",
        )
        .success();
        assert_eq!(out.raw_stdout, plaintext);
    }
}

/// A run that encrypts to the same recipients many times (a rekey) wraps the later
/// files with a table of each recipient's point: real age opens those files with the
/// X25519 identity and with the ssh key, as it opens the first ones.
#[test]
fn real_age_opens_files_wrapped_once_a_recipient_has_its_table() {
    let env = TestEnv::new();
    let key = vectors().join("keys/ed25519-02");
    let public = std::fs::read_to_string(vectors().join("keys/ed25519-02.pub")).unwrap();
    let ssh_key = private_copy(&env, &key, "ed25519-02");
    let identity = env.root.join("native.txt");
    let made = Command::new(peer("age-keygen"))
        .arg("-o")
        .arg(&identity)
        .output()
        .unwrap();
    assert!(made.status.success());
    let native = std::fs::read_to_string(&identity)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .unwrap();
    let at = Location::named("test");
    let to = [
        Recipient::parse_line(&native, &at).unwrap(),
        Recipient::parse_line(public.trim(), &at).unwrap(),
    ];
    for i in 0..80 {
        let plaintext = format!("secret {i}\n");
        let data =
            keys::crypto::age::encrypt(plaintext.as_bytes(), &to, Armor::Binary, &at).unwrap();
        if i % 39 != 0 {
            continue;
        }
        // The first file, one in the middle and one from the table.
        let file = env.write(&format!("s{i}.age"), data);
        for id in [&identity, &ssh_key] {
            let out = age(
                &env,
                &[
                    "-d",
                    "-i",
                    &id.display().to_string(),
                    &file.display().to_string(),
                ],
                b"",
            )
            .success();
            assert_eq!(out.raw_stdout, plaintext.as_bytes(), "file {i}");
        }
    }
}

#[test]
fn keys_opens_files_real_age_writes_with_one_ssh_key_both_ways() {
    let env = TestEnv::new();
    let key = vectors().join("keys/ed25519-03");
    let ssh_key = private_copy(&env, &key, "ed25519-03");
    let derived = env
        .keys(&["to-age", &format!("{}.pub", key.display())])
        .success()
        .stdout;
    let plaintext = b"DISCORD_TOKEN=abc\n";
    let x = env.root.join("x.age");
    age(
        &env,
        &["-r", derived.trim(), "-o", &x.display().to_string()],
        plaintext,
    )
    .success();
    let s = env.root.join("s.age");
    let pubfile = format!("{}.pub", key.display());
    age(
        &env,
        &["-a", "-R", &pubfile, "-o", &s.display().to_string()],
        plaintext,
    )
    .success();
    for file in [&x, &s] {
        let out = env
            .keys(&[
                "decrypt",
                "-i",
                &ssh_key.display().to_string(),
                &file.display().to_string(),
            ])
            .success();
        assert_eq!(out.raw_stdout, plaintext);
    }
    // The same key from the default place, ~/.ssh/id_ed25519, with no flag at all.
    std::fs::create_dir_all(env.home.join(".ssh")).unwrap();
    std::fs::copy(&ssh_key, env.home.join(".ssh/id_ed25519")).unwrap();
    for file in [&x, &s] {
        let out = env
            .keys(&["decrypt", &file.display().to_string()])
            .success();
        assert_eq!(out.raw_stdout, plaintext);
    }
}

#[test]
fn decrypt_to_a_file_creates_it_0600_and_a_failure_writes_nothing() {
    let env = TestEnv::new();
    let key = vectors().join("keys/ed25519-04");
    let ssh_key = private_copy(&env, &key, "k");
    let enc = env.root.join("f.age");
    age(
        &env,
        &[
            "-R",
            &format!("{}.pub", key.display()),
            "-o",
            &enc.display().to_string(),
        ],
        b"s3cret",
    )
    .success();
    let out = env.root.join("plain.txt");
    env.keys(&[
        "decrypt",
        "-i",
        &ssh_key.display().to_string(),
        &enc.display().to_string(),
        "-o",
        &out.display().to_string(),
    ])
    .success();
    assert_eq!(std::fs::read(&out).unwrap(), b"s3cret");
    assert_eq!(crate::common::mode_of(&out), 0o600);

    // Truncated ciphertext: an error naming the file, and no output file.
    let mut data = std::fs::read(&enc).unwrap();
    data.truncate(data.len() - 5);
    let bad = env.write("bad.age", &data);
    let out2 = env.root.join("plain2.txt");
    let run = env
        .keys(&[
            "decrypt",
            "-i",
            &ssh_key.display().to_string(),
            &bad.display().to_string(),
            "-o",
            &out2.display().to_string(),
        ])
        .failure(3);
    crate::assert_output!(
        env,
        "decrypt_to_a_file_creates_it_0600_and_a_failure_writes_nothing",
        run.stderr
    );
    assert!(!out2.exists());
}
