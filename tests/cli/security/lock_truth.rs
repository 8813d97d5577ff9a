//! `keys.lock` is text anyone can edit: `check` and `rekey` compare each file's own
//! header with the policy, so a lock that claims a reader is gone does not keep that
//! reader, and `rekey --all` rewrites every secret whatever the lock says.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, peer, run, sha256_hex, vectors};
use crate::fixture::{POLICY, fleet, host_key, tree};
use crate::fixture::{sops, sops_fleet};

fn age_decrypt(env: &TestEnv, identity: &Path, file: &Path) -> Run {
    let mut cmd = Command::new(peer("age"));
    cmd.arg("-d").arg("-i").arg(identity).arg(file);
    env.apply(&mut cmd);
    run(cmd, b"")
}

fn lock_path(repo: &Path) -> PathBuf {
    repo.join("secrets/keys.lock")
}

/// The lock's line for `name`, split into its four fields.
fn lock_line(repo: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(lock_path(repo)).unwrap();
    let line = text
        .lines()
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in the lock:\n{text}"));
    line.split(' ').map(str::to_string).collect()
}

/// Rewrites the lock's line for `name` with `edit` applied to its fields.
fn forge_lock(repo: &Path, name: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(lock_path(repo)).unwrap();
    let mut fields = lock_line(repo, name);
    let old = fields.join(" ");
    edit(&mut fields);
    std::fs::write(lock_path(repo), text.replace(&old, &fields.join(" "))).unwrap();
}

/// The demo admin's short fingerprint, as the lock records it.
const ADMIN: &str = "age1t9jzmsuj2txx";

#[test]
fn a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_an_age_secret() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let arm = host_key(&env, "vps-arm");
    let admin = env.root.join("keys/demo.txt");
    env.keys_stdin(&["encrypt", "bot/token"], b"removed-host-canary")
        .success();
    let file = repo.join("secrets/bot/token.age");
    assert_eq!(
        age_decrypt(&env, &arm, &file).success().stdout,
        "removed-host-canary"
    );

    // The rule no longer names vps-arm, and the lock is edited to say so already.
    env.write(
        "work/policies/default.yaml",
        POLICY.replace("[admins, host:vps-arm]", "[admins]"),
    );
    forge_lock(&repo, "bot/token", |f| f[3] = ADMIN.into());
    let forged = tree(&repo);

    let check = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_an_age_secret",
        check.stdout
    );

    assert_eq!(tree(&repo), forged, "check writes nothing");

    let dry = env.keys(&["rekey", "--dry-run"]).success();
    crate::assert_output!(
        env,
        "a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_an_age_secret_2",
        dry.stdout
    );
    assert!(!dry.stdout.contains("up to date"), "{}", dry.stdout);
    assert_eq!(tree(&repo), forged, "--dry-run writes nothing");

    env.keys(&["rekey"]).success();
    assert_ne!(
        age_decrypt(&env, &arm, &file).code,
        0,
        "the removed host still decrypts"
    );
    assert_eq!(
        age_decrypt(&env, &admin, &file).success().stdout,
        "removed-host-canary"
    );
    assert_eq!(
        lock_line(&repo, "bot/token")[2],
        sha256_hex(&std::fs::read(&file).unwrap())
    );
    env.keys(&["check"]).success();
    let again = env.keys(&["rekey"]).success();
    crate::assert_output!(
        env,
        "a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_an_age_secret_3",
        again.stdout
    );
}

#[test]
fn a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_a_sops_secret() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let x86 = host_key(&env, "vps-x86");
    let converted = env
        .keys(&["to-age", "--private", &x86.display().to_string()])
        .success();
    let x86_age = env.write("keys/vps-x86-age.txt", converted.stdout);
    let yaml = std::fs::read(vectors().join("sops/unencrypted-suffix.plain.yaml")).unwrap();
    env.keys_stdin(&["encrypt", "clear/app"], &yaml).success();
    let file = repo.join("secrets/clear/app.yaml");
    let path = file.display().to_string();
    assert_eq!(
        sops(&env, &["decrypt", &path], &x86_age)
            .success()
            .raw_stdout,
        yaml
    );

    // The rule no longer names vps-x86, and the lock is edited to say so already.
    let policy = std::fs::read_to_string(repo.join("policies/default.yaml")).unwrap();
    env.write(
        "work/policies/default.yaml",
        policy.replace("[admins, host:vps-x86]", "[admins]"),
    );
    forge_lock(&repo, "clear/app", |f| f[3] = ADMIN.into());

    let check = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_a_sops_secret",
        check.stdout
    );

    let rekey = env.keys(&["rekey"]).success();
    assert!(!rekey.stdout.contains("up to date"), "{}", rekey.stdout);
    crate::assert_output!(
        env,
        "a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_a_sops_secret_2",
        rekey.stdout
    );
    assert_ne!(
        sops(&env, &["decrypt", &path], &x86_age).code,
        0,
        "the removed host still decrypts"
    );
    assert_eq!(
        sops(&env, &["decrypt", &path], &admin).success().raw_stdout,
        yaml
    );
    env.keys(&["check"]).success();
    let again = env.keys(&["rekey"]).success();
    crate::assert_output!(
        env,
        "a_lock_that_claims_a_host_is_gone_does_not_keep_it_reading_a_sops_secret_3",
        again.stdout
    );
}

#[test]
fn an_extra_x25519_stanza_the_lock_does_not_show_is_drift_and_rekey_removes_it() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    env.keys_stdin(&["encrypt", "misc/conf"], b"first")
        .success();
    let file = repo.join("secrets/misc/conf.age");

    // Encrypted again by the real age to the policy's readers plus one more X25519
    // key, and the lock's hash forged to match.
    let extra_id = vectors().join("keys/ed25519-01.age-identity");
    let extra = std::fs::read_to_string(vectors().join("keys/ed25519-01.age-recipient")).unwrap();
    let admin_pub = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let admin_pub = admin_pub.lines().find(|l| l.starts_with("age1")).unwrap();
    let arm_pub = env.write(
        "keys/vps-arm.pub",
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/hosts/vps-arm.ssh_host_ed25519_key.pub"),
        )
        .unwrap(),
    );
    let plain = env.write("plain.txt", "smuggled-reader-canary");
    let mut age = Command::new(peer("age"));
    age.args(["-e", "-r", admin_pub, "-r", extra.trim(), "-R"])
        .arg(&arm_pub)
        .arg("-o")
        .arg(&file)
        .arg(&plain);
    env.apply(&mut age);
    run(age, b"").success();
    let sha = sha256_hex(&std::fs::read(&file).unwrap());
    forge_lock(&repo, "misc/conf", |f| f[2] = sha);
    assert_eq!(
        age_decrypt(&env, &extra_id, &file).success().stdout,
        "smuggled-reader-canary"
    );

    let check = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "an_extra_x25519_stanza_the_lock_does_not_show_is_drift_and_rekey_removes_it",
        check.stdout
    );
    assert!(
        !check.stdout.contains("changed outside keys"),
        "{}",
        check.stdout
    );

    let rekey = env.keys(&["rekey"]).success();
    crate::assert_output!(
        env,
        "an_extra_x25519_stanza_the_lock_does_not_show_is_drift_and_rekey_removes_it_2",
        rekey.stdout
    );
    assert_ne!(
        age_decrypt(&env, &extra_id, &file).code,
        0,
        "the smuggled key still decrypts"
    );
    assert_eq!(
        age_decrypt(&env, &admin, &file).success().stdout,
        "smuggled-reader-canary"
    );
    env.keys(&["check"]).success();
}

#[test]
fn rekey_all_rewrites_every_secret_even_when_everything_is_up_to_date() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let yaml = std::fs::read(vectors().join("sops/basic.plain.yaml")).unwrap();
    env.keys_stdin(&["encrypt", "bot/token"], b"token-canary")
        .success();
    env.keys_stdin(&["encrypt", "misc/other"], b"other-canary")
        .success();
    env.keys_stdin(&["encrypt", "yaml/app"], &yaml).success();
    env.keys_stdin(&["encrypt", "json/admin"], b"{\"a\": \"b\"}")
        .success();
    let json_before = env.keys(&["decrypt", "json/admin"]).success().raw_stdout;
    let up = env.keys(&["rekey"]).success();
    crate::assert_output!(
        env,
        "rekey_all_rewrites_every_secret_even_when_everything_is_up_to_date",
        up.stdout
    );
    let names = ["bot/token", "misc/other", "yaml/app", "json/admin"];
    let files = [
        "secrets/bot/token.age",
        "secrets/misc/other.age",
        "secrets/yaml/app.yaml",
        "secrets/json/admin.json",
    ];
    let before = tree(&repo);

    let dry = env.keys(&["rekey", "--all", "--dry-run"]).success();
    for name in names {
        assert!(
            dry.stdout.contains(&format!("rekey   {name}  (")),
            "{}",
            dry.stdout
        );
    }
    assert_eq!(tree(&repo), before, "--dry-run writes nothing");

    env.keys(&["rekey", "--all"]).success();
    let after = tree(&repo);
    for (name, rel) in names.iter().zip(files) {
        let path = repo.join(rel);
        assert_ne!(before[&path], after[&path], "{rel} was not rewritten");
        assert_eq!(
            lock_line(&repo, name)[2],
            sha256_hex(&after[&path]),
            "{rel}"
        );
    }
    assert_eq!(
        age_decrypt(&env, &admin, &repo.join(files[0]))
            .success()
            .stdout,
        "token-canary"
    );
    assert_eq!(
        age_decrypt(&env, &admin, &repo.join(files[1]))
            .success()
            .stdout,
        "other-canary"
    );
    let app = repo.join(files[2]).display().to_string();
    assert_eq!(
        sops(&env, &["decrypt", &app], &admin).success().raw_stdout,
        yaml
    );
    assert_eq!(
        env.keys(&["decrypt", "json/admin"]).success().raw_stdout,
        json_before
    );
    env.keys(&["check"]).success();

    // With --host, every secret of that host and no other.
    let before = tree(&repo);
    env.keys(&["rekey", "--all", "--host", "vps-arm"]).success();
    let after = tree(&repo);
    let changed: Vec<String> = after
        .keys()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| p.strip_prefix(&repo).unwrap().display().to_string())
        .collect();
    assert_eq!(
        changed,
        [
            "secrets/bot/token.age",
            "secrets/keys.lock",
            "secrets/misc/other.age",
            "secrets/yaml/app.yaml",
        ]
    );
}

#[test]
fn a_second_reader_hidden_in_a_sops_files_wrapped_key_is_drift_and_rekey_removes_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let yaml = std::fs::read(vectors().join("sops/basic.plain.yaml")).unwrap();
    env.keys_stdin(&["encrypt", "yaml/app"], &yaml).success();
    let file = repo.join("secrets/yaml/app.yaml");
    let path = file.display().to_string();

    // The admin's wrapped data key, unwrapped with the real age and wrapped again for
    // the admin and one more key; the lock's hash forged to match.
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find(&format!("recipient: {ADMIN}")).unwrap();
    let begin = at + text[at..].find("-----BEGIN").unwrap();
    let end = begin
        + text[begin..]
            .find("-----END AGE ENCRYPTED FILE-----")
            .unwrap()
        + 32;
    let indent = "            ";
    let block: String = text[begin..end]
        .lines()
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let wrapped = env.write("wrapped.age", block);
    let data_key = age_decrypt(&env, &admin, &wrapped).success().raw_stdout;
    let key_file = env.write("data-key", data_key);
    let extra_id = vectors().join("keys/ed25519-01.age-identity");
    let extra = std::fs::read_to_string(vectors().join("keys/ed25519-01.age-recipient")).unwrap();
    let admin_pub = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let admin_pub = admin_pub.lines().find(|l| l.starts_with("age1")).unwrap();
    let mut age = Command::new(peer("age"));
    age.args(["-e", "-a", "-r", admin_pub, "-r", extra.trim()])
        .arg(&key_file);
    env.apply(&mut age);
    let rewrapped = run(age, b"").success().stdout;
    let rewrapped = rewrapped.trim_end().replace('\n', &format!("\n{indent}"));
    let tampered = format!("{}{rewrapped}{}", &text[..begin], &text[end..]);
    std::fs::write(&file, &tampered).unwrap();
    forge_lock(&repo, "yaml/app", |f| {
        f[2] = sha256_hex(tampered.as_bytes())
    });
    assert_eq!(
        sops(&env, &["decrypt", &path], &extra_id)
            .success()
            .raw_stdout,
        yaml,
        "the hidden reader opens the file"
    );

    let check = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "a_second_reader_hidden_in_a_sops_files_wrapped_key_is_drift_and_rekey_removes_it",
        check.stdout
    );
    let rekey = env.keys(&["rekey"]).success();
    crate::assert_output!(
        env,
        "a_second_reader_hidden_in_a_sops_files_wrapped_key_is_drift_and_rekey_removes_it_2",
        rekey.stdout
    );
    assert_ne!(
        sops(&env, &["decrypt", &path], &extra_id).code,
        0,
        "the hidden reader still opens the file"
    );
    assert_eq!(
        sops(&env, &["decrypt", &path], &admin).success().raw_stdout,
        yaml
    );
    env.keys(&["check"]).success();
}

#[test]
fn a_pgp_reader_in_a_sops_nix_file_is_drift_and_rekey_drops_it() {
    let mut env = TestEnv::new();
    let upstream = vectors().join("upstream/sops-nix");
    let ages = [
        "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw",
        "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs",
    ];
    env.write(
        "work/recipients/admins/nix.pub",
        format!("{}\n{}\n", ages[0], ages[1]),
    );
    env.write("work/recipients/hosts/.keep", "");
    env.write(
        "work/policies/default.yaml",
        "groups:\n  admins: [nix]\nrules:\n  - secrets: \"nix/*\"\n    format: sops-yaml\n    readers: [admins]\n",
    );
    // The sops-nix test secret (age and PGP readers), with the lock forged to show the
    // policy's two age recipients.
    let data = std::fs::read(upstream.join("secrets.yaml")).unwrap();
    let file = env.write("work/secrets/nix/secrets.yaml", &data);
    let mut ids: Vec<&str> = ages.iter().map(|a| &a[..16]).collect();
    ids.sort();
    env.write(
        "work/secrets/keys.lock",
        format!(
            "nix/secrets sops-yaml {} {}\n",
            sha256_hex(&data),
            ids.join(",")
        ),
    );
    let key = upstream.join("age-keys.txt");
    let check = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "a_pgp_reader_in_a_sops_nix_file_is_drift_and_rekey_drops_it",
        check.stdout
    );

    let key_copy = crate::common::private_copy(&env, &key, "nix-age.txt");
    env.set("KEYS_IDENTITY", key_copy.display().to_string());
    let rekey = env.keys(&["rekey"]).success();
    crate::assert_output!(
        env,
        "a_pgp_reader_in_a_sops_nix_file_is_drift_and_rekey_drops_it_2",
        rekey.stdout
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("BEGIN PGP MESSAGE"), "{text}");
    let plain = std::fs::read(upstream.join("secrets.plain.yaml")).unwrap();
    let path = file.display().to_string();
    assert_eq!(
        sops(&env, &["decrypt", &path], &key).success().raw_stdout,
        plain
    );
    env.keys(&["check"]).success();
}
