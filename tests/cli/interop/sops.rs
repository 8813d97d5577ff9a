//! sops files against the real sops 3.11: every sops vector decrypts with `keys`,
//! files `keys` writes decrypt with `sops`, files `sops` writes decrypt with `keys`,
//! and tampering is refused with the right error.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{TestEnv, peer, private_copy, run, vectors};
use crate::fixture::{sops, sops_encrypted, sops_fleet, tree};

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(vectors().join("MANIFEST.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["files"].as_array().unwrap().clone()
}

/// An identity file for a vector's identity entry, as `keys -i` takes it.
fn identity_file(env: &TestEnv, identity: &str, kind: &str) -> PathBuf {
    let path = vectors().join(identity);
    match kind {
        "ssh-converted" => {
            let out = env
                .keys(&["to-age", "--private", &path.display().to_string()])
                .success();
            crate::common::write_private(
                env,
                &format!("ids/{}.txt", identity.replace('/', "_")),
                out.stdout,
            )
        }
        _ => private_copy(env, &path, &identity.replace('/', "_")),
    }
}

#[test]
fn every_sops_vector_decrypts_to_what_sops_prints() {
    let mut checked = 0;
    for e in manifest() {
        let format = e["format"].as_str().unwrap();
        if !format.starts_with("sops-") {
            continue;
        }
        let file = vectors().join(e["path"].as_str().unwrap());
        let want = std::fs::read(vectors().join(e["plaintext"].as_str().unwrap())).unwrap();
        let mut ids = vec![(e["identity"].clone(), e["identity_kind"].clone())];
        for alt in e["alternatives"].as_array().unwrap() {
            ids.push((alt["identity"].clone(), alt["identity_kind"].clone()));
        }
        for (identity, kind) in ids {
            let env = TestEnv::new();
            let id = identity_file(&env, identity.as_str().unwrap(), kind.as_str().unwrap());
            let out = env
                .keys(&[
                    "decrypt",
                    "-i",
                    &id.display().to_string(),
                    &file.display().to_string(),
                ])
                .success();
            assert!(
                out.raw_stdout == want,
                "{} with {identity}:\n--- keys\n{}\n--- sops\n{}",
                file.display(),
                out.stdout,
                String::from_utf8_lossy(&want)
            );
            checked += 1;
        }
    }
    println!("sops vectors decrypted: {checked} (file, identity) pairs");
    assert_eq!(checked, 27, "every listed (file, identity) pair");
}

#[test]
fn files_keys_writes_are_read_by_sops_and_files_sops_writes_are_read_by_keys() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let cases = [
        ("yaml/basic", "sops/basic.plain.yaml", "yaml"),
        ("yaml/types", "sops/types.plain.yaml", "yaml"),
        ("json/basic", "sops/basic.plain.json", "json"),
        ("env/app", "sops/app.plain.env", "env"),
        ("ini/app", "sops/app.plain.ini", "ini"),
        ("bin/blob", "sops/blob.plain.bin", "bin"),
        ("regex/x", "sops/mac-only-encrypted.plain.yaml", "yaml"),
        ("regex/y", "sops/encrypted-regex.plain.yaml", "yaml"),
        ("suffix/x", "sops/encrypted-suffix.plain.json", "json"),
        ("clear/x", "sops/unencrypted-suffix.plain.yaml", "yaml"),
        ("json/native", "sops/native-age.plain.json", "json"),
    ];
    for (name, plain, ext) in cases {
        let plaintext = std::fs::read(vectors().join(plain)).unwrap();
        env.keys_stdin(&["encrypt", name], &plaintext).success();
        let file = repo.join(format!("secrets/{name}.{ext}"));
        let kind = match ext {
            "yaml" => "yaml",
            "json" => "json",
            "env" => "dotenv",
            "ini" => "ini",
            _ => "binary",
        };
        let by_sops = sops(
            &env,
            &[
                "decrypt",
                "--input-type",
                kind,
                "--output-type",
                kind,
                &file.display().to_string(),
            ],
            &admin,
        )
        .success();
        assert!(
            by_sops.raw_stdout == plaintext,
            "{name}: sops read\n{}",
            by_sops.stdout
        );
        assert_eq!(
            env.keys(&["decrypt", name]).success().raw_stdout,
            plaintext,
            "{name}"
        );

        // And the other way: sops encrypts, keys decrypts.
        let admin_file = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
        let recipient = admin_file.lines().find(|l| l.starts_with("age1")).unwrap();
        let input = env.write(
            &format!("sops-in/{}.{ext}", name.replace('/', "_")),
            &plaintext,
        );
        let enc = sops(
            &env,
            &[
                "encrypt",
                "--age",
                recipient.trim(),
                "--input-type",
                kind,
                "--output-type",
                kind,
                &input.display().to_string(),
            ],
            &admin,
        )
        .success();
        let written = env.write(
            &format!("sops-out/{}.{ext}", name.replace('/', "_")),
            &enc.raw_stdout,
        );
        let ours = env
            .keys(&["decrypt", &written.display().to_string()])
            .success();
        assert!(
            ours.raw_stdout == plaintext,
            "{name}: keys read sops's file\n{}",
            ours.stdout
        );
    }
    env.keys(&["check"]).success();
}

/// sops writes an encrypted comment among a list's items as an item of its own (a
/// string of type `comment`), not as a `#` line; keys writes the same, so a list's
/// leading comment before a map item that starts with a comment is kept, as sops
/// keeps it.
#[test]
fn comments_in_lists_are_written_as_sops_writes_them() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let plaintext = "list:\n   key:\n  # c1\n    - k:\n  # c2\n           v\nplain:\n    # c\n    - a\n    # d\n    - b\n    # e\n";
    env.keys_stdin(&["encrypt", "yaml/lists"], plaintext.as_bytes())
        .success();
    let ours = repo.join("secrets/yaml/lists.yaml");
    let admin_file = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let recipient = admin_file.lines().find(|l| l.starts_with("age1")).unwrap();
    let input = env.write("sops-in/lists.yaml", plaintext);
    let theirs = sops(
        &env,
        &[
            "encrypt",
            "--age",
            recipient.trim(),
            &input.display().to_string(),
        ],
        &admin,
    )
    .success();
    let theirs = env.write("sops-out/lists.yaml", &theirs.raw_stdout);
    // The same layout: which lines are comment items, comments and values.
    let shape = |path: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .take_while(|l| !l.starts_with("sops:"))
            .map(|l| {
                let kind = l.rsplit("type:").next().unwrap_or("").trim_end_matches(']');
                format!("{} {kind}", l.split("ENC[").next().unwrap())
            })
            .collect()
    };
    assert_eq!(shape(&ours), shape(&theirs));
    let decrypt = |path: &std::path::Path| {
        sops(&env, &["decrypt", &path.display().to_string()], &admin)
            .success()
            .stdout
    };
    let expected = decrypt(&theirs);
    assert!(
        expected.contains("        # c1\n        # c2\n        - k: v\n"),
        "{expected}"
    );
    assert_eq!(decrypt(&ours), expected);
    assert_eq!(
        env.keys(&["decrypt", "yaml/lists"]).success().stdout,
        expected
    );
    env.keys(&["check"]).success();
}

/// A float is encrypted in the layout sops gives it (Go's `FormatFloat(f, 'f', -1,
/// 64)`), which the MAC covers: infinities are `+Inf` and `-Inf`, so sops verifies
/// and decrypts what keys wrote, and the other way round.
#[test]
fn floats_sops_reads_back_including_infinities() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let plaintext = "up: .inf\ndown: -.inf\nnot: .nan\ntiny: 1.0e-7\nhuge: 1.0e+21\nhalf: 0.5\n";
    env.keys_stdin(&["encrypt", "yaml/floats"], plaintext.as_bytes())
        .success();
    let file = repo.join("secrets/yaml/floats.yaml");
    let by_sops = sops(&env, &["decrypt", &file.display().to_string()], &admin);
    assert_eq!(
        by_sops.code, 0,
        "sops refused keys' file: {}",
        by_sops.stderr
    );
    let expected = "up: .inf\ndown: -.inf\nnot: .nan\ntiny: 1e-07\nhuge: 1e+21\nhalf: 0.5\n";
    assert_eq!(by_sops.stdout, expected);
    assert_eq!(
        env.keys(&["decrypt", "yaml/floats"]).success().stdout,
        expected
    );
    let theirs = sops_encrypted(&env, &repo, "floats.yaml", plaintext.as_bytes());
    assert_eq!(
        env.keys(&["decrypt", &theirs.display().to_string()])
            .success()
            .stdout,
        expected
    );
}

/// Infinities and NaN, encrypted and in clear (the `_unencrypted` suffix), in
/// every spelling YAML gives them. What sops wrote is read with the MAC sops
/// computed over its own layout of them: `keys decrypt` prints what `sops decrypt`
/// prints. What keys writes has the same values in clear, and sops verifies its
/// MAC and prints the same.
#[test]
fn infinities_and_nan_in_clear_and_encrypted_read_the_same_both_ways() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let plaintext = "up: .inf\ndown: -.inf\nnot: .nan\nup_unencrypted: .inf\n\
        down_unencrypted: -.inf\nnot_unencrypted: .nan\nlist_unencrypted: [.inf, -.inf, .nan, 1.5e300]\n\
        inner:\n    deep_unencrypted: -.Inf\n    tiny: -1.0e-300\n\
        spelled_unencrypted: [+.inf, .Inf, .INF, +.Inf, -.INF, .NaN, .NAN]\n\
        spelled: [+.inf, .INF, -.INF, .NaN]\n";
    let theirs = sops_encrypted(&env, &repo, "specials.yaml", plaintext.as_bytes());
    let text = std::fs::read_to_string(&theirs).unwrap();
    assert!(
        text.contains("up_unencrypted: .inf\n") && text.contains("down: ENC["),
        "{text}"
    );
    let by_sops = sops(&env, &["decrypt", &theirs.display().to_string()], &admin).success();
    assert!(by_sops.stdout.contains("- -.inf\n"), "{}", by_sops.stdout);
    let ours = env
        .keys(&["decrypt", &theirs.display().to_string()])
        .success();
    assert_eq!(ours.stdout, by_sops.stdout);

    env.keys_stdin(&["encrypt", "yaml/specials"], plaintext.as_bytes())
        .success();
    let file = repo.join("secrets/yaml/specials.yaml");
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .take_while(|l| !l.starts_with("sops:"))
            .map(|l| {
                let kind = l.rsplit("type:").next().unwrap_or("").trim_end_matches(']');
                format!("{} {kind}", l.split("ENC[").next().unwrap())
            })
            .collect()
    };
    assert_eq!(
        values(&std::fs::read_to_string(&file).unwrap()),
        values(&text)
    );
    let of_ours = sops(&env, &["decrypt", &file.display().to_string()], &admin);
    assert_eq!(
        of_ours.code, 0,
        "sops refused keys' file: {}",
        of_ours.stderr
    );
    assert_eq!(of_ours.stdout, by_sops.stdout);
    assert_eq!(
        env.keys(&["decrypt", "yaml/specials"]).success().stdout,
        by_sops.stdout
    );
}

/// A float -0 left in clear: sops writes it `-0`, which reads back as the integer
/// 0, so its MAC must cover `0`. sops's own file fails its MAC check (and keys'
/// check, the same); the file keys writes has the same bytes and a MAC both read.
#[test]
fn negative_zero_in_clear_is_written_as_sops_writes_it_and_both_read_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let plaintext = "zero_unencrypted: -0.0\nzero: -0.0\nlist_unencrypted: [-0.0, 0.0, -0.5]\n";
    env.keys_stdin(&["encrypt", "yaml/zero"], plaintext.as_bytes())
        .success();
    let file = repo.join("secrets/yaml/zero.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let theirs = sops_encrypted(&env, &repo, "zero.yaml", plaintext.as_bytes());
    let their_text = std::fs::read_to_string(&theirs).unwrap();
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .take_while(|l| !l.starts_with("sops:"))
            .map(|l| l.split("ENC[").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(values(&text), values(&their_text));
    assert!(text.starts_with("zero_unencrypted: -0\n"), "{text}");
    let by_sops = sops(&env, &["decrypt", &file.display().to_string()], &admin);
    assert_eq!(
        by_sops.code, 0,
        "sops refused keys' file: {}",
        by_sops.stderr
    );
    let expected =
        "zero_unencrypted: 0\nzero: -0\nlist_unencrypted:\n    - 0\n    - 0\n    - -0.5\n";
    assert_eq!(by_sops.stdout, expected);
    assert_eq!(
        env.keys(&["decrypt", "yaml/zero"]).success().stdout,
        expected
    );
    // sops cannot read the file it wrote; neither can keys, for the same reason.
    let sops_own = sops(&env, &["decrypt", &theirs.display().to_string()], &admin);
    assert!(
        sops_own.stderr.contains("MAC mismatch"),
        "{}",
        sops_own.stderr
    );
    let r = env
        .keys(&["decrypt", &theirs.display().to_string()])
        .failure(3);
    assert!(r.stderr.contains("MAC mismatch"), "{}", r.stderr);
    env.keys(&["check"]).success();
}

#[test]
fn tampered_sops_files_are_refused_with_distinct_errors_and_nothing_written() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = std::fs::read(vectors().join("sops/basic.plain.yaml")).unwrap();
    env.keys_stdin(&["encrypt", "yaml/t"], &plaintext).success();
    let file = repo.join("secrets/yaml/t.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    let out = env.root.join("out.txt");
    let try_decrypt = |env: &TestEnv, text: &str| {
        std::fs::write(&file, text).unwrap();
        let before = tree(&env.root);
        let run = env.keys(&["decrypt", "yaml/t", "-o", &out.display().to_string()]);
        assert_eq!(tree(&env.root), before);
        assert!(!out.exists());
        run
    };
    // One byte of one value's ciphertext.
    let at = good.find("password: ENC[AES256_GCM,data:").unwrap() + 31;
    let mut flipped = good.clone();
    let c = if &good[at..at + 1] == "A" { "B" } else { "A" };
    flipped.replace_range(at..at + 1, c);
    let r = try_decrypt(&env, &flipped).failure(3);
    crate::assert_output!(
        env,
        "tampered_sops_files_are_refused_with_distinct_errors_and_nothing_written",
        r.stderr
    );
    // The MAC, and lastmodified (the MAC's additional data).
    let mac_at = good.find("    mac: ENC[AES256_GCM,data:").unwrap() + 30;
    let mut mac = good.clone();
    let c = if &good[mac_at..mac_at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    mac.replace_range(mac_at..mac_at + 1, c);
    let r = try_decrypt(&env, &mac).failure(3);
    crate::assert_output!(
        env,
        "tampered_sops_files_are_refused_with_distinct_errors_and_nothing_written_2",
        r.stderr
    );
    let lm = good.replace("lastmodified: \"20", "lastmodified: \"19");
    let r = try_decrypt(&env, &lm).failure(3);
    crate::assert_output!(
        env,
        "tampered_sops_files_are_refused_with_distinct_errors_and_nothing_written_3",
        r.stderr
    );
    // Two values' ciphertexts swapped.
    let line = |key: &str| {
        good.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap()
            .to_string()
    };
    let (user, pass) = (line("user: "), line("password: "));
    let swapped = good
        .replace(&user, "@@USER@@")
        .replace(&pass, &user.replace("user:", "password:"))
        .replace("@@USER@@", &pass.replace("password:", "user:"));
    let r = try_decrypt(&env, &swapped).failure(3);
    crate::assert_output!(
        env,
        "tampered_sops_files_are_refused_with_distinct_errors_and_nothing_written_4",
        r.stderr
    );
    // Two keys reordered: every value still authenticates, the MAC does not.
    let (name, replicas) = (line("name: "), line("replicas: "));
    let reordered = good
        .replacen(&name, "@@N@@", 1)
        .replacen(&replicas, &name, 1)
        .replacen("@@N@@", &replicas, 1);
    let r = try_decrypt(&env, &reordered).failure(3);
    crate::assert_output!(
        env,
        "tampered_sops_files_are_refused_with_distinct_errors_and_nothing_written_5",
        r.stderr
    );
    // --ignore-mac reads it, and says so.
    std::fs::write(&file, &reordered).unwrap();
    let r = env.keys(&["decrypt", "--ignore-mac", "yaml/t"]).success();
    crate::assert_output!(
        env,
        "tampered_sops_files_are_refused_with_distinct_errors_and_nothing_written_6",
        r.stderr
    );
    // No identity that opens the data key.
    std::fs::write(&file, &good).unwrap();
    let mut stranger = TestEnv::new();
    let id = private_copy(&stranger, &vectors().join("keys/ed25519-10"), "stranger");
    stranger.set("KEYS_IDENTITY", id.display().to_string());
    let r = stranger
        .keys(&["decrypt", &file.display().to_string()])
        .failure(4);
    assert!(r.stderr.contains("no identity can decrypt"), "{}", r.stderr);
}

/// An edit seals the whole file under a new data key (the wrapped keys are not
/// under the MAC: a wrapping slipped into the metadata must open nothing written
/// after); the layout and every clear line stay, and an edit that changes nothing
/// writes nothing.
#[test]
fn edit_seals_every_value_under_a_new_key_and_an_unchanged_file_stays() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = std::fs::read(vectors().join("sops/basic.plain.yaml")).unwrap();
    env.keys_stdin(&["encrypt", "yaml/e"], &plaintext).success();
    let file = repo.join("secrets/yaml/e.yaml");
    let before = std::fs::read_to_string(&file).unwrap();
    let run_dir = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    env.set("XDG_RUNTIME_DIR", run_dir.path().display().to_string());
    let editor = env.script(
        "bin/ed",
        "#!/bin/sh\nfor a; do f=$a; done\nsed -i 's/port: 5432/port: 5433/' \"$f\"\n",
    );
    env.set("EDITOR", editor.display().to_string());
    env.keys(&["edit", "yaml/e"]).success();
    let after = std::fs::read_to_string(&file).unwrap();
    let body = |t: &str| t[..t.find("\nsops:").unwrap()].to_string();
    assert_eq!(body(&before).lines().count(), body(&after).lines().count());
    for (a, b) in body(&before).lines().zip(body(&after).lines()) {
        // Every sealed value changed, and nothing else did.
        assert_eq!(a == b, !a.contains("ENC["), "{a}\n{b}");
    }

    let out = env.keys(&["decrypt", "yaml/e"]).success().stdout;
    assert!(out.contains("port: 5433"));
    // No change: byte-identical.
    let unchanged = env.script("bin/true-ed", "#!/bin/sh\nexit 0\n");
    env.set("EDITOR", unchanged.display().to_string());
    env.keys(&["edit", "yaml/e"]).success();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
}

#[test]
fn set_and_unset_change_one_value_and_sops_agrees() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let plaintext = std::fs::read(vectors().join("sops/basic.plain.json")).unwrap();
    env.keys_stdin(&["encrypt", "json/s"], &plaintext).success();
    let file = repo.join("secrets/json/s.json");
    let before = std::fs::read_to_string(&file).unwrap();
    env.keys_stdin(
        &["set", "json/s", r#"["service"]["name"]"#],
        b"renamed-canary\n",
    )
    .success();
    env.keys_stdin(&["set", "--json", "json/s", "service.limits.gpu"], b"2")
        .success();
    env.keys(&["unset", "json/s", "api_key"]).success();
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(!after.contains("renamed-canary"));
    let kept = before
        .lines()
        .filter(|l| l.contains("ENC["))
        .any(|l| after.contains(l));
    assert!(!kept, "every value is sealed under the new data key");
    let out = sops(&env, &["decrypt", &file.display().to_string()], &admin).success();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["service"]["name"], "renamed-canary");
    assert_eq!(doc["service"]["limits"]["gpu"], 2.0);
    assert!(doc.get("api_key").is_none());
    let r = env.keys(&["unset", "json/s", "no.such.key"]).failure(3);
    crate::assert_output!(
        env,
        "set_and_unset_change_one_value_and_sops_agrees",
        r.stderr
    );
    env.keys(&["check"]).success();
}

#[test]
fn sops_edits_and_creates_files_with_the_exported_creation_rules() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    env.keys_stdin(&["encrypt", "yaml/a"], b"token: one\n")
        .success();
    env.keys(&["export", "sops-config"]).success();
    // `sops edit` on a file keys wrote.
    let editor = env.script("bin/sed-ed", "#!/bin/sh\nsed -i 's/one/two/' \"$1\"\n");
    let mut cmd = Command::new(peer("sops"));
    cmd.args(["--disable-version-check", "edit", "secrets/yaml/a.yaml"]);
    env.apply(&mut cmd);
    cmd.env("SOPS_AGE_KEY_FILE", &admin).env("EDITOR", &editor);
    run(cmd, b"").success();
    assert_eq!(
        env.keys(&["decrypt", "yaml/a"]).success().stdout,
        "token: two\n"
    );
    // A new file sops encrypts by the creation rules: the policy's readers, no drift.
    env.write("work/secrets/yaml/new.yaml", "token: fresh\n");
    let mut cmd = Command::new(peer("sops"));
    cmd.args([
        "--disable-version-check",
        "encrypt",
        "-i",
        "secrets/yaml/new.yaml",
    ]);
    env.apply(&mut cmd);
    run(cmd, b"").success();
    let check = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "sops_edits_and_creates_files_with_the_exported_creation_rules",
        check.stdout
    );

    assert!(!check.stdout.contains("drift"), "{}", check.stdout);
    let _ = repo;
}

/// What keys refuses rather than write or print something neither tool reads as it
/// was: a YAML plaintext with no document (keys wrote an empty file), a rule whose
/// comment regex makes sops write a file it cannot open, a comment sops decrypts to
/// bytes that are not UTF-8 (keys printed its ciphertext), and an infinity in a
/// JSON file (keys printed null). Each is one error, exit 3, nothing written.
#[test]
fn what_neither_tool_would_read_as_it_was_is_refused() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let policy = repo.join("policies/default.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace(
            "rules:\n",
            "rules:\n  - secrets: \"uc/*\"\n    format: sops-yaml\n    unencrypted_comment_regex: clear\n    readers: [admins]\n",
        ),
    )
    .unwrap();
    let before = tree(&repo);
    for (name, plaintext, says) in [
        ("yaml/blank", " \n", "holds no document"),
        ("yaml/dots", "...\n", "holds no document"),
        (
            "uc/list",
            "b:\n - a: 1 #clear\n   c: f\n",
            "would not open again",
        ),
    ] {
        let r = env
            .keys_stdin(&["encrypt", name], plaintext.as_bytes())
            .failure(3);
        assert!(r.stderr.contains(says), "{name}: {}", r.stderr);
        assert_eq!(tree(&repo), before, "{name}");
    }
    // A dotenv comment sops decrypts to bytes that are not UTF-8.
    let env_file = sops_encrypted(&env, &repo, "c.env", b"#\xc3\nA=1\n");
    let r = env
        .keys(&["decrypt", env_file.to_str().unwrap()])
        .failure(3);
    assert!(
        r.stdout.is_empty() && !r.stderr.contains("ENC["),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("not UTF-8"), "{}", r.stderr);
    // Infinities in a JSON file, which sops refuses to print too.
    let plain = env.write("inf.yaml", "a: .inf\nb: 1\n");
    let age = &crate::fixture::demo_age(&repo);
    let args = [
        "encrypt",
        "--input-type",
        "yaml",
        "--output-type",
        "json",
        "--age",
        age,
        plain.to_str().unwrap(),
    ];
    let sealed = sops(&env, &args, &admin).success();
    let json = env.write("inf.json", &sealed.raw_stdout);
    assert_ne!(
        sops(&env, &["decrypt", json.to_str().unwrap()], &admin).code,
        0
    );
    let r = env.keys(&["decrypt", json.to_str().unwrap()]).failure(3);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("JSON has no way to write"),
        "{}",
        r.stderr
    );
}
