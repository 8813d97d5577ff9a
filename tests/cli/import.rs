//! `keys import agenix` on a repository the real agenix script made: admins, hosts
//! and one rule per reader set from secrets.nix, every file adopted as it is, and
//! agenix still working afterwards.

use std::process::Command;

use crate::adopt::run_agenix;
use crate::common::{TestEnv, peer, run};
use crate::fixture::tree;

#[test]
fn an_agenix_repository_becomes_a_keys_repository_in_place() {
    let mut env = TestEnv::new();
    env.set("KEYS_IDENTITY", "");
    // alice's age key, bob's SSH key, the web host's key.
    let alice = env.root.join("alice.txt");
    let mut keygen = Command::new(peer("age-keygen"));
    keygen.arg("-o").arg(&alice);
    env.apply(&mut keygen);
    run(keygen, b"").success();
    let alice_pub = std::fs::read_to_string(&alice)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .unwrap();
    let ssh = |name: &str, comment: &str| {
        let path = env.root.join(name);
        let mut k = Command::new(peer("ssh-keygen"));
        k.args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&path);
        env.apply(&mut k);
        run(k, b"").success();
        std::fs::read_to_string(path.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string()
    };
    let bob = ssh("bob", "bob@laptop");
    let web = ssh("web", "root@web");
    env.write(
        "work/secrets.nix",
        format!(
            "let\n  alice = \"{alice_pub}\";\n  bob = \"{bob}\";\n  users = [ alice bob ];\n\n  web = \"{web}\";\n  systems = [ web ];\nin\n{{\n  \"secrets/db-password.age\".publicKeys = users ++ systems;\n  \"secrets/api-token.age\".publicKeys = users ++ systems;\n  \"secrets/admin-only.age\".publicKeys = users;\n  \"secrets/armored.age\" = {{ publicKeys = [ alice ]; armor = true; }};\n}}\n"
        ),
    );
    let id = alice.display().to_string();
    for (file, value) in [
        ("secrets/db-password.age", "db-secret"),
        ("secrets/api-token.age", "api-secret"),
        ("secrets/admin-only.age", "admin-secret"),
        ("secrets/armored.age", "armored-secret"),
    ] {
        std::fs::create_dir_all(env.work.join("secrets")).unwrap();
        run_agenix(&env, &["-e", file, "-i", &id], value.as_bytes()).success();
    }
    // A file the rules do not name.
    let mut stray = Command::new(peer("age"));
    stray.args(["-r", &alice_pub, "-o", "secrets/stray.age"]);
    env.apply(&mut stray);
    run(stray, b"s").success();
    let before: Vec<_> = tree(&env.work.join("secrets")).into_iter().collect();

    let out = env.keys(&["import", "agenix"]).success();
    for line in [
        "admin     alice\n",
        "admin     bob\n",
        "host      web\n",
        "policy    policies/imported-agenix.yaml (3 rules)\n",
        "adopted   4 secrets as they are\n",
        "left      secrets/stray.age: not in ",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    // Nothing was re-encrypted.
    let after: Vec<_> = tree(&env.work.join("secrets"))
        .into_iter()
        .filter(|(p, _)| !p.ends_with("keys.lock"))
        .collect();
    assert_eq!(after, before);
    let policy = std::fs::read_to_string(env.work.join("policies/imported-agenix.yaml")).unwrap();
    assert!(
        policy.contains("secrets: \"{api-token,db-password}\"\n    format: age\n    readers: [admins, host:web]\n"),
        "{policy}"
    );
    assert!(policy.contains("armor: true"), "{policy}");

    std::fs::remove_file(env.work.join("secrets/stray.age")).unwrap();
    env.keys(&["check"]).success();
    let r = env.keys(&["rekey", "--dry-run"]).success();
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    for (name, value) in [("db-password", "db-secret"), ("armored", "armored-secret")] {
        let got = env.keys(&["decrypt", "-i", &id, name]).success();
        assert_eq!(got.stdout, value);
    }
    // The web host reads what secrets.nix gave it, and agenix still works.
    let web_key = env.root.join("web").display().to_string();
    env.keys(&["decrypt", "-i", &web_key, "api-token"])
        .success();
    env.keys(&["decrypt", "-i", &web_key, "admin-only"])
        .failure(4);
    let back = run_agenix(&env, &["-d", "secrets/admin-only.age", "-i", &id], b"").success();
    assert_eq!(back.stdout, "admin-secret");
}

#[test]
fn a_sops_repository_becomes_a_keys_repository_in_place() {
    let mut env = TestEnv::new();
    env.set("KEYS_IDENTITY", "");
    let keygen = |name: &str| {
        let path = env.root.join(name);
        let mut k = Command::new(peer("age-keygen"));
        k.arg("-o").arg(&path);
        env.apply(&mut k);
        run(k, b"").success();
        let public = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
            .unwrap();
        (path, public)
    };
    let (alice, alice_pub) = keygen("alice.txt");
    let (_, bob_pub) = keygen("bob.txt");
    env.write(
        "work/.sops.yaml",
        format!(
            "keys:\n  - &alice {alice_pub}\n  - &bob {bob_pub}\ncreation_rules:\n  - path_regex: secrets/shared/.*\\.yaml$\n    age:\n      - *alice\n      - *bob\n  - path_regex: secrets/.*\\.json$\n    encrypted_regex: ^password$\n    age:\n      - *alice\n"
        ),
    );
    let sops_in = |rel: &str, text: &str| {
        env.write(&format!("work/{rel}"), text);
        let mut cmd = Command::new(peer("sops"));
        cmd.args(["--disable-version-check", "encrypt", "-i", rel]);
        env.apply(&mut cmd);
        run(cmd, b"").success();
    };
    sops_in("secrets/shared/db.yaml", "password: db-secret\n");
    sops_in("secrets/shared/cache.yaml", "password: cache-secret\n");
    sops_in("secrets/app.json", "{\"password\": \"p\", \"user\": \"u\"}");
    let before = tree(&env.work.join("secrets"));

    let out = env.keys(&["import", "sops"]).success();
    for line in [
        "admin     alice\n",
        "admin     bob\n",
        "policy    policies/imported-sops.yaml (2 rules)\n",
        "adopted   3 secrets as they are\n",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    let after: std::collections::BTreeMap<_, _> = tree(&env.work.join("secrets"))
        .into_iter()
        .filter(|(p, _)| !p.ends_with("keys.lock"))
        .collect();
    assert_eq!(after, before, "nothing is re-encrypted");
    let policy = std::fs::read_to_string(env.work.join("policies/imported-sops.yaml")).unwrap();
    assert!(
        policy.contains("secrets: \"{shared/cache,shared/db}\"\n    format: sops-yaml\n    readers: [alice, bob]\n"),
        "{policy}"
    );
    assert!(policy.contains("encrypted_regex: '^password$'"), "{policy}");
    env.keys(&["check"]).success();
    let id = alice.display().to_string();
    let got = env.keys(&["decrypt", "-i", &id, "shared/db"]).success();
    assert_eq!(got.stdout, "password: db-secret\n");
    // sops still works with its own configuration, on a file keys now writes.
    env.keys_stdin(
        &["encrypt", "--force", "-i", &id, "shared/db"],
        b"password: new\n",
    )
    .success();
    let mut dec = Command::new(peer("sops"));
    dec.args([
        "--disable-version-check",
        "decrypt",
        "secrets/shared/db.yaml",
    ]);
    env.apply(&mut dec);
    dec.env("SOPS_AGE_KEY_FILE", &alice);
    assert_eq!(run(dec, b"").success().stdout, "password: new\n");
}
