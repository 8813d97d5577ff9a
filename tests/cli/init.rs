//! `keys init` end to end: file store, passphrase, the kernel keyring in a private
//! session, imports, and the refusals (no terminal, unavailable keyring).

use std::process::Command;

use crate::common::{TestEnv, keys_bin, mode_of, peer, run, vectors};

fn snapshot(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(&env.root).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            out.push((
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

fn age_encrypt_to_admin(env: &TestEnv, admin: &str, plaintext: &[u8]) -> std::path::PathBuf {
    let out = env.root.join("secret.age");
    let mut cmd = Command::new(peer("age"));
    cmd.args([
        "-R",
        &format!("recipients/admins/{admin}.pub"),
        "-o",
        &out.display().to_string(),
    ]);
    env.apply(&mut cmd);
    run(cmd, plaintext).success();
    out
}

#[test]
fn file_store_then_a_second_run_changes_nothing() {
    let env = TestEnv::new();
    let first = env.keys(&["init", "--admin", "alice"]).success();
    env.snapshots_of_new_keys()
        .bind(|| insta::assert_snapshot!("first_run", first.stdout));
    for dir in [
        "recipients/admins",
        "recipients/hosts",
        "policies",
        "secrets",
    ] {
        assert!(env.work.join(dir).is_dir(), "{dir}");
    }
    let id = env.home.join(".config/keys/identity.txt");
    assert_eq!(mode_of(&id), 0o600);
    assert_eq!(mode_of(id.parent().unwrap()), 0o700);
    // The recorded recipient is the identity's, as age-keygen -y computes it.
    let mut keygen = Command::new(peer("age-keygen"));
    keygen.args(["-y", &id.display().to_string()]);
    env.apply(&mut keygen);
    let recipient = run(keygen, b"").success().stdout;
    let admin = std::fs::read_to_string(env.work.join("recipients/admins/alice.pub")).unwrap();
    assert!(admin.contains(recipient.trim()));
    let policy = std::fs::read_to_string(env.work.join("policies/default.yaml")).unwrap();
    crate::assert_output!(env, "starter_policy", policy);

    let before = snapshot(&env);
    let second = env.keys(&["init", "--admin", "alice"]).success();
    crate::assert_output!(env, "second_run", second.stdout);
    assert_eq!(before, snapshot(&env));

    // What is encrypted to the new admin opens with the stored identity, no flags.
    let secret = age_encrypt_to_admin(&env, "alice", b"hello");
    assert_eq!(
        env.keys(&["decrypt", &secret.display().to_string()])
            .success()
            .raw_stdout,
        b"hello"
    );
}

#[test]
fn passphrase_protected_identity_file_unlocks_from_a_passphrase_file_only() {
    let mut env = TestEnv::new();
    let pass = env.write("pass", "open sesame\n");
    env.set("KEYS_PASSPHRASE_FILE", pass.display().to_string());
    env.keys(&["init", "--admin", "bob", "--passphrase"])
        .success();
    let id = env.home.join(".config/keys/identity.txt");
    let text = std::fs::read_to_string(&id).unwrap();
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!text.contains("AGE-SECRET-KEY"));
    let secret = age_encrypt_to_admin(&env, "bob", b"token");
    assert_eq!(
        env.keys(&["decrypt", &secret.display().to_string()])
            .success()
            .raw_stdout,
        b"token"
    );

    let wrong = env.write("wrong", "nope\n");
    env.set("KEYS_PASSPHRASE_FILE", wrong.display().to_string());
    let run = env
        .keys(&["decrypt", &secret.display().to_string()])
        .failure(4);
    crate::assert_output!(env, "wrong_passphrase", run.stderr);

    // No terminal and no passphrase source: an error at once, not a wait.
    env.set("KEYS_PASSPHRASE_FILE", "");
    let run = env
        .keys(&["decrypt", &secret.display().to_string()])
        .failure(4);
    crate::assert_output!(env, "passphrase_without_a_terminal", run.stderr);
    assert!(run.elapsed.as_secs() < 5);
}

#[test]
fn kernel_keyring_in_a_private_session() {
    let env = TestEnv::new();
    let entry = format!(
        "test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let age = peer("age");
    // One session keyring for the whole scenario; the key is removed at the end.
    let script = format!(
        r#"set -u
k={keys}
echo "== init1"; $k init --admin kr --store keyring; echo "rc=$?"
echo "== init2"; $k init --admin kr --store keyring; echo "rc=$?"
{age} -R recipients/admins/kr.pub -o s.age <<< "from the keyring"
echo "== decrypt"; $k decrypt s.age; echo "rc=$?"
id=$(keyctl search @s user "keyring:{entry}@keys")
keyctl invalidate "$id"
echo "== after"; $k decrypt s.age; echo "rc=$?"
"#,
        keys = keys_bin(),
        age = age.display(),
    );
    let mut cmd = Command::new(peer("keyctl"));
    cmd.args(["session", "-", "bash", "-c", &script]);
    env.apply(&mut cmd);
    cmd.env("KEYS_KEYRING", "keyutils")
        .env("KEYS_KEYRING_ENTRY", &entry);
    let out = run(cmd, b"");
    let o = &out.stdout;
    assert!(
        o.contains("identity  new age identity stored in OS keyring (keyutils)"),
        "{o}\n{}",
        out.stderr
    );
    assert!(
        o.contains("warning   the keyutils keyring does not survive a reboot"),
        "{o}"
    );
    let second = o
        .split("== init2")
        .nth(1)
        .unwrap()
        .split("== decrypt")
        .next()
        .unwrap();
    assert!(
        second.contains("nothing to do") && second.contains("rc=0"),
        "{second}"
    );
    let dec = o
        .split("== decrypt")
        .nth(1)
        .unwrap()
        .split("== after")
        .next()
        .unwrap();
    assert!(dec.starts_with("\nfrom the keyring\nrc=0"), "{dec}");
    assert!(o.split("== after").nth(1).unwrap().contains("rc=4"), "{o}");
    assert!(
        out.stderr
            .contains("OS keyring (keyutils): no identity stored"),
        "{}",
        out.stderr
    );
    // Never a silent fallback to a plaintext file.
    assert!(!env.home.join(".config/keys/identity.txt").exists());
}

#[test]
fn an_unavailable_keyring_is_a_prompt_clear_error_and_writes_nothing() {
    let mut env = TestEnv::new();
    env.set("KEYS_KEYRING", "secret-service");
    env.set(
        "XDG_RUNTIME_DIR",
        env.root.join("no-bus").display().to_string(),
    );
    let run = env
        .keys(&["init", "--admin", "a", "--store", "keyring"])
        .failure(6);
    crate::assert_output!(env, "secret_service_unavailable", run.stderr);
    assert!(run.elapsed.as_secs() < 10);
    assert!(snapshot(&env).is_empty(), "files were written");
}

#[test]
fn without_a_terminal_or_flags_it_fails_at_once_with_a_hint() {
    let env = TestEnv::new();
    let run = env.keys(&["init"]).failure(2);
    crate::assert_output!(env, "no_admin_without_a_terminal", run.stderr);
    assert!(run.elapsed.as_secs() < 5);
    assert!(snapshot(&env).is_empty());

    // --passphrase with no terminal and no passphrase source: same, before anything is written.
    let run = env
        .keys(&["init", "--admin", "x", "--passphrase"])
        .failure(2);
    crate::assert_output!(env, "passphrase_flag_without_a_terminal", run.stderr);
    assert!(snapshot(&env).is_empty());
}

#[test]
fn imports_an_ssh_key_recording_only_its_public_half() {
    let env = TestEnv::new();
    // A passphrase-protected key: its public half needs no passphrase.
    let key = vectors().join("keys/ed25519-pass-01");
    env.keys(&["init", "--admin", "carol", "-i", &key.display().to_string()])
        .success();
    let admin = std::fs::read_to_string(env.work.join("recipients/admins/carol.pub")).unwrap();
    let public = std::fs::read_to_string(vectors().join("keys/ed25519-pass-01.pub")).unwrap();
    let blob = public.split_whitespace().nth(1).unwrap();
    assert!(admin.contains(&format!("ssh-ed25519 {blob}")), "{admin}");
    assert!(!env.home.join(".config/keys/identity.txt").exists());
}

#[test]
fn nothing_can_decrypt_lists_every_place_searched() {
    let mut env = TestEnv::new();
    let other = crate::common::private_copy(
        &env,
        &vectors().join("keys/age-native-01.age-identity"),
        "other",
    );
    env.set("SOPS_AGE_KEY_FILE", other.display().to_string());
    let file = vectors().join("age/x25519.armored.age");
    let run = env
        .keys(&["decrypt", &file.display().to_string()])
        .failure(4);
    // KEYS_IDENTITY, the keyring, ~/.config/keys/identity.txt, ~/.ssh/id_ed25519, and
    // sops's places: $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE, $SOPS_AGE_SSH_PRIVATE_KEY_FILE,
    // its keys.txt.
    crate::assert_output!(env, "every_place_searched", run.stderr);
    assert_eq!(run.stderr.lines().next().unwrap().matches(';').count(), 7);
}

#[test]
fn an_identity_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.keys(&["init", "--admin", "dave"]).success();
    let id = env.home.join(".config/keys/identity.txt");
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o644)).unwrap();
    let secret = age_encrypt_to_admin(&env, "dave", b"x");
    let run = env
        .keys(&["decrypt", &secret.display().to_string()])
        .failure(5);
    crate::assert_output!(env, "identity_readable_by_others", run.stderr);
}

#[test]
fn a_keyring_that_never_answers_is_an_error_within_seconds() {
    // A session bus socket that accepts connections and then says nothing, as a
    // locked or wedged keyring daemon would.
    let mut env = TestEnv::new();
    let runtime = env.root.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let socket = runtime.join("bus");
    let mut silent = Command::new(peer("python3"))
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen(8)\nkeep=[]\nend=time.time()+30\nwhile time.time()<end:\n    c,_=s.accept(); keep.append(c)\n",
            &socket.display().to_string(),
        ])
        .spawn()
        .unwrap();
    while !socket.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.set("KEYS_KEYRING", "secret-service");
    env.set("XDG_RUNTIME_DIR", runtime.display().to_string());
    let run = env.keys(&["init", "--admin", "a", "--store", "keyring"]);
    let _ = silent.kill();
    let _ = silent.wait();
    let run = run.failure(6);
    assert!(
        run.stderr.contains("no answer within 5 seconds"),
        "{}",
        run.stderr
    );
    assert!(run.elapsed.as_secs() < 10, "{:?}", run.elapsed);
    assert!(!env.work.join("recipients").exists());
    assert!(!env.home.join(".config/keys/identity.txt").exists());
}
