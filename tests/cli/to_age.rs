//! `keys to-age`: inputs, outputs and refusals.

use crate::common::{TestEnv, mode_of, vectors};

#[test]
fn reads_stdin_and_writes_files_with_the_right_mode() {
    let env = TestEnv::new();
    let pub_line = std::fs::read(vectors().join("keys/ed25519-01.pub")).unwrap();
    let want = std::fs::read_to_string(vectors().join("keys/ed25519-01.age-recipient")).unwrap();
    let run = env.keys_stdin(&["to-age"], &pub_line).success();
    assert_eq!(run.stdout.trim(), want.trim());
    let run = env.keys_stdin(&["to-age", "-"], &pub_line).success();
    assert_eq!(run.stdout.trim(), want.trim());

    let out = env.root.join("r.txt");
    env.keys_stdin(&["to-age", "-o", &out.display().to_string()], &pub_line)
        .success();
    assert_eq!(mode_of(&out), 0o644);

    let key = std::fs::read(vectors().join("keys/ed25519-01")).unwrap();
    let out = env.root.join("id.txt");
    let run = env
        .keys_stdin(
            &["to-age", "--private", "-o", &out.display().to_string()],
            &key,
        )
        .success();
    assert!(run.stdout.is_empty());
    assert_eq!(mode_of(&out), 0o600);
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("AGE-SECRET-KEY-1")
    );
}

#[test]
fn a_malformed_line_is_named_and_nothing_is_printed() {
    let env = TestEnv::new();
    let good = std::fs::read_to_string(vectors().join("keys/ed25519-01.pub")).unwrap();
    let input = format!("{good}ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfG\n");
    let file = env.write("keys.txt", input);
    let run = env
        .keys(&["to-age", &file.display().to_string()])
        .failure(3);
    assert!(run.stdout.is_empty());
    crate::assert_output!(env, "malformed_second_line", run.stderr);
}

#[test]
fn damaged_private_keys_are_refused_without_echoing_key_bytes() {
    let env = TestEnv::new();
    let key = std::fs::read_to_string(vectors().join("keys/ed25519-05")).unwrap();
    let body: Vec<&str> = key.lines().collect();
    let truncated = format!("{}\n{}\n", body[0], body[1]);
    let crlf_broken = key.replacen('A', "!", 3);
    for (name, data) in [
        ("truncated", truncated),
        ("damaged", crlf_broken),
        ("empty", String::new()),
    ] {
        let file = env.write(name, &data);
        let run = env
            .keys(&["to-age", "--private", &file.display().to_string()])
            .failure(3);
        assert!(run.stdout.is_empty(), "{name}");
        assert!(run.stderr.contains(name), "{name}: {}", run.stderr);
        for line in body.iter().skip(1).take(body.len().saturating_sub(2)) {
            assert!(!run.stderr.contains(line), "{name}: key bytes in the error");
        }
    }
}

#[test]
fn a_wrong_passphrase_is_refused() {
    let mut env = TestEnv::new();
    let pass = env.write("pass", "not it\n");
    env.set("KEYS_PASSPHRASE_FILE", pass.display().to_string());
    let key = vectors().join("keys/ed25519-pass-02");
    let run = env
        .keys(&["to-age", "--private", &key.display().to_string()])
        .failure(4);
    crate::assert_output!(env, "wrong_passphrase", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn a_passphrase_can_come_from_a_file_descriptor() {
    let env = TestEnv::new();
    let pass = env.write("pass", "vectors-pass-2!\n");
    let key = vectors().join("keys/ed25519-pass-02");
    let script = format!(
        "exec {} to-age --private --passphrase-fd 3 {} 3<{}",
        crate::common::keys_bin(),
        key.display(),
        pass.display()
    );
    let mut cmd = std::process::Command::new("setsid");
    cmd.args(["-w", "bash", "-c", &script]);
    env.apply(&mut cmd);
    let run = crate::common::run(cmd, b"").success();
    assert_eq!(
        run.stdout.trim(),
        concat!(
            "AGE-SECRET-",
            "KEY-1EMWQW7D27MGNL6EXUSAYAAM7G7HJ5M8ESQWSTHCXQ4DR5DYQHF2QZF2RP9"
        )
    );
}
