//! sops key groups (the data key split by Shamir secret sharing) against the real
//! sops 3.11, both ways: identities of `shamir_threshold` groups open a file, fewer
//! fail in both tools, in every store format.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{TestEnv, peer, run, write_private};
use crate::fixture::{fleet, host_key, sops, tree};

/// The store formats: sops's name, the file extension, a plaintext.
const FORMATS: [(&str, &str, &str); 5] = [
    (
        "yaml",
        "yaml",
        "db:\n    password: hunter2-canary\n    port: 5432\n",
    ),
    ("json", "json", "{\n\t\"token\": \"hunter2-canary\"\n}\n"),
    ("dotenv", "env", "TOKEN=hunter2-canary\n"),
    ("ini", "ini", "[db]\npassword = hunter2-canary\n"),
    ("binary", "bin", "hunter2-canary\n"),
];

/// A fresh age identity file and its recipient.
fn age_key(env: &TestEnv, name: &str) -> (PathBuf, String) {
    let mut cmd = Command::new(peer("age-keygen"));
    cmd.env("HOME", &env.home);
    let out = run(cmd, b"").success();
    let path = write_private(env, &format!("ids/{name}.txt"), &out.raw_stdout);
    let recipient = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (path, recipient)
}

/// One file holding the identities of `files`, as SOPS_AGE_KEY_FILE takes them.
fn key_file(env: &TestEnv, name: &str, files: &[&Path]) -> PathBuf {
    let mut all = Vec::new();
    for f in files {
        all.extend(std::fs::read(f).unwrap());
    }
    write_private(env, &format!("ids/{name}"), all)
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn files_sops_writes_with_key_groups_open_with_identities_of_threshold_groups() {
    let env = TestEnv::new();
    let keys: Vec<(PathBuf, String)> = (1..=3).map(|i| age_key(&env, &format!("k{i}"))).collect();
    let config = env.write(
        "sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
            keys[0].1, keys[1].1, keys[2].1
        ),
    );
    let two = key_file(&env, "k13", &[&keys[0].0, &keys[2].0]);
    let one = key_file(&env, "k2", &[&keys[1].0]);
    for (kind, ext, plain) in FORMATS {
        let input = env.write(&format!("in/s.{ext}"), plain);
        let types = ["--input-type", kind, "--output-type", kind];
        let mut args = vec!["--config", arg(&config), "encrypt"];
        args.extend(types);
        args.push(arg(&input));
        let enc = sops(&env, &args, &one).success();
        assert!(
            enc.stdout.contains("shamir_threshold") && enc.stdout.contains("key_groups"),
            "{kind}: {}",
            enc.stdout
        );
        let file = env.write(&format!("out/s.{ext}"), &enc.raw_stdout);
        let mut args = vec!["decrypt"];
        args.extend(types);
        args.push(arg(&file));
        let theirs = sops(&env, &args, &two).success();
        assert_eq!(theirs.stdout, plain, "{kind}: sops with two groups");
        let ours = env
            .keys(&[
                "decrypt",
                "-i",
                arg(&keys[0].0),
                "-i",
                arg(&keys[2].0),
                arg(&file),
            ])
            .success();
        assert!(
            ours.raw_stdout == theirs.raw_stdout,
            "{kind}: {}",
            ours.stdout
        );
        // One group's identity alone: both tools refuse.
        let run = sops(&env, &args, &one);
        assert_ne!(run.code, 0, "{kind}: sops opened it with one group");
        let run = env
            .keys(&["decrypt", "-i", arg(&keys[1].0), arg(&file)])
            .failure(4);
        assert_eq!(
            run.stderr.lines().next().unwrap(),
            format!(
                "keys: error: {}: the identities found open 1 of its 3 key groups; 2 are needed (Shamir threshold)",
                file.display()
            ),
            "{kind}"
        );
        assert!(!run.stderr.contains("hunter2") && run.stdout.is_empty());
    }
}

/// The policy of `fleet` with one rule per format giving key groups.
fn shamir_policy(threshold: usize) -> String {
    let mut rules = String::new();
    for (kind, _, _) in FORMATS {
        let format = match kind {
            "dotenv" => "sops-dotenv".to_string(),
            other => format!("sops-{other}"),
        };
        rules.push_str(&format!(
            "  - secrets: \"{kind}/*\"\n    format: {format}\n    key_groups: [[admins], [host:vps-arm], [host:vps-x86]]\n    shamir_threshold: {threshold}\n"
        ));
    }
    crate::fixture::POLICY.replace("rules:\n", &format!("rules:\n{rules}"))
}

/// A host's SSH key as an age identity file, as sops reads one.
fn host_age_identity(env: &TestEnv, host: &str) -> PathBuf {
    let key = host_key(env, host);
    let out = env.keys(&["to-age", "--private", arg(&key)]).success();
    write_private(env, &format!("ids/{host}.age"), out.stdout)
}

#[test]
fn key_groups_from_a_policy_rule_are_written_so_sops_reads_them_and_rekeyed_anew() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write("work/policies/default.yaml", shamir_policy(2));
    let admin = env.root.join("keys/demo.txt");
    let (arm_ssh, x86_ssh) = (host_key(&env, "vps-arm"), host_key(&env, "vps-x86"));
    let arm = host_age_identity(&env, "vps-arm");
    let x86 = host_age_identity(&env, "vps-x86");
    let admin_arm = key_file(&env, "admin-arm", &[&admin, &arm]);
    let admin_only = key_file(&env, "admin", &[&admin]);
    let file = |kind: &str, ext: &str| repo.join(format!("secrets/{kind}/s.{ext}"));
    for (kind, _, plain) in FORMATS {
        env.keys_stdin(&["encrypt", &format!("{kind}/s")], plain.as_bytes())
            .success();
    }
    let sops_reads = |key: &Path| {
        FORMATS.map(|(kind, ext, _)| {
            let types = ["--input-type", kind, "--output-type", kind];
            let mut args = vec!["decrypt"];
            args.extend(types);
            let path = file(kind, ext);
            args.push(arg(&path));
            sops(&env, &args, key)
        })
    };
    for ((kind, _, plain), run) in FORMATS.iter().zip(sops_reads(&admin_arm)) {
        assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
        assert_eq!(run.stdout, *plain, "{kind}");
    }
    for ((kind, _, _), run) in FORMATS.iter().zip(sops_reads(&admin_only)) {
        assert_ne!(
            run.code, 0,
            "{kind}: sops opened it with the admin's group alone"
        );
    }
    // keys: the admin alone opens one group of two needed; with a host's key, two.
    for (kind, ext, plain) in FORMATS {
        let name = format!("{kind}/s");
        let run = env.keys(&["decrypt", &name]).failure(4);
        assert!(
            run.stderr.contains(&format!(
                "secrets/{kind}/s.{ext}: the identities found open 1 of its 3 key groups; 2 are needed"
            )),
            "{}",
            run.stderr
        );
        let run = env
            .keys(&["decrypt", "-i", arg(&admin), "-i", arg(&x86_ssh), &name])
            .success();
        assert_eq!(run.stdout, plain);
    }
    // Each host holds one share of two needed: it cannot decrypt by itself, which
    // check warns about (and it is no failure).
    let check = env.keys(&["check"]).success();
    assert!(
        check.stdout.contains(
            "warning: policies/default.yaml:6: rule \"yaml/*\": host:vps-arm is in 1 of its key groups and 2 are needed, so it cannot decrypt the secret by itself"
        ),
        "{}",
        check.stdout
    );

    // The policy asks for all three groups: check sees it without a key, rekey
    // splits the key anew, and sops then needs three groups.
    env.write("work/policies/default.yaml", shamir_policy(3));
    let before = tree(&repo);
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.contains("Shamir threshold 2") && run.stdout.contains("(Shamir threshold 3)"),
        "{}",
        run.stdout
    );
    // The admin alone cannot re-split the key: nothing is written.
    env.keys(&["rekey"]).failure(4);
    assert_eq!(tree(&repo), before);
    // Two groups' identities re-split the key, but would not open what is written:
    // nothing is.
    let run = env
        .keys(&["rekey", "-i", arg(&admin), "-i", arg(&arm_ssh)])
        .failure(4);
    assert!(
        run.stderr
            .contains("open 2 of its 3 key groups; 3 are needed"),
        "{}",
        run.stderr
    );
    assert_eq!(tree(&repo), before);
    // With every group's identity the key is split anew (and the rewritten files
    // are proven to open with the identities used).
    env.keys(&[
        "rekey",
        "-i",
        arg(&admin),
        "-i",
        arg(&arm_ssh),
        "-i",
        arg(&x86_ssh),
    ])
    .success();
    env.keys(&["check"]).success();
    let all = key_file(&env, "all", &[&admin, &arm, &x86]);
    for ((kind, _, plain), run) in FORMATS.iter().zip(sops_reads(&all)) {
        assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
        assert_eq!(run.stdout, *plain, "{kind}");
    }
    for ((kind, _, _), run) in FORMATS.iter().zip(sops_reads(&admin_arm)) {
        assert_ne!(
            run.code, 0,
            "{kind}: sops opened it with two of three groups"
        );
    }
}

#[test]
fn key_groups_in_a_policy_are_checked_when_it_is_read() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let cases = [
        (
            "    key_groups: [[admins], [host:vps-arm]]\n    shamir_threshold: 3\n",
            "policies/default.yaml:7: shamir_threshold 3 is not between 2 and the 2 key groups",
        ),
        (
            "    key_groups: [[admins]]\n",
            "policies/default.yaml:6: key_groups needs at least two groups (one group is `readers`)",
        ),
        (
            "    key_groups: [[admins], [host:nowhere]]\n",
            "policies/default.yaml:6: unknown reader \"host:nowhere\"",
        ),
        (
            "    readers: [admins]\n    shamir_threshold: 2\n",
            "policies/default.yaml:7: shamir_threshold applies only to a rule with key_groups",
        ),
    ];
    for (rule, says) in cases {
        env.write(
            "work/policies/default.yaml",
            format!(
                "groups:\n  admins: [demo]\nrules:\n  - secrets: \"x/*\"\n    format: sops-yaml\n{rule}"
            ),
        );
        let before = tree(&repo);
        let run = env.keys_stdin(&["encrypt", "x/s"], b"a: b\n").failure(3);
        assert!(
            run.stderr.starts_with(&format!("keys: error: {says}")),
            "{rule}: {}",
            run.stderr
        );
        assert_eq!(tree(&repo), before);
    }
}

#[test]
fn host_rotate_rewraps_the_rotated_hosts_key_group_so_sops_reads_it() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write("work/policies/default.yaml", shamir_policy(2));
    env.keys_stdin(&["encrypt", "yaml/s"], FORMATS[0].2.as_bytes())
        .success();
    let admin = env.root.join("keys/demo.txt");
    // A value set with two groups' identities: a new key, split among the same groups.
    let file = repo.join("secrets/yaml/s.yaml");
    let groups_of = |text: &str| {
        let start = text.find("    key_groups:").unwrap();
        let end = text.find("    lastmodified:").unwrap();
        text[start..end].to_string()
    };
    let before = groups_of(&std::fs::read_to_string(&file).unwrap());
    let arm = host_key(&env, "vps-arm");
    env.keys_stdin(
        &[
            "set",
            "-i",
            arg(&admin),
            "-i",
            arg(&arm),
            "yaml/s",
            "db.port",
        ],
        b"6543\n",
    )
    .success();
    let after = groups_of(&std::fs::read_to_string(&file).unwrap());
    let recipients = |groups: &str| {
        groups
            .lines()
            .filter(|l| l.contains("recipient:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_ne!(after, before);
    assert_eq!(recipients(&after), recipients(&before));
    let old_x86 = host_age_identity(&env, "vps-x86");
    let new_key = env.root.join("new_host_key");
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "",
        "-f",
        arg(&new_key),
    ]);
    run(cmd, b"").success();
    let new_pub = new_key.with_extension("pub");
    // The admin's group alone cannot split the key anew: nothing changes.
    let before = tree(&repo);
    let rotate = ["host", "rotate", "vps-x86", "--key", arg(&new_pub)];
    let run = env.keys(&rotate).failure(4);
    assert!(
        run.stderr.contains(
            "secrets/yaml/s.yaml: the identities found open 1 of its 3 key groups; 2 are needed"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(tree(&repo), before);
    // With a second group's identity it can.
    let mut args = rotate.to_vec();
    args.extend(["-i", arg(&admin), "-i", arg(&arm)]);
    env.keys(&args).success();
    env.keys(&["check"]).success();
    let out = env.keys(&["to-age", "--private", arg(&new_key)]).success();
    let new_x86 = write_private(&env, "ids/new-x86.age", out.stdout);
    let want = FORMATS[0].2.replace("5432", "\"6543\"");
    let decrypt = |keys: &[&Path], name: &str| {
        let key = key_file(&env, name, keys);
        sops(&env, &["decrypt", arg(&file)], &key)
    };
    assert_eq!(
        decrypt(&[&admin, &new_x86], "admin-new").success().stdout,
        want
    );
    assert_ne!(decrypt(&[&admin, &old_x86], "admin-old").code, 0);
}

#[test]
fn exported_creation_rules_give_sops_the_key_groups_and_check_finds_no_drift() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write("work/policies/default.yaml", shamir_policy(2));
    env.keys(&["export", "sops-config"]).success();
    let config = std::fs::read_to_string(repo.join(".sops.yaml")).unwrap();
    assert!(
        config
            .contains("    shamir_threshold: 2\n    key_groups:\n      - age:\n          - 'age1"),
        "{config}"
    );
    // sops encrypts a new file by those rules; keys reads it and checks it without a key.
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
    assert!(
        check.stdout.contains("yaml/new") && !check.stdout.contains("drift"),
        "{}",
        check.stdout
    );
    let arm = host_key(&env, "vps-arm");
    let admin = env.root.join("keys/demo.txt");
    let out = env
        .keys(&["decrypt", "-i", arg(&admin), "-i", arg(&arm), "yaml/new"])
        .success();
    assert_eq!(out.stdout, "token: fresh\n");
    // A group's recipient that is not the policy's is drift, found without a key.
    env.write(
        "work/policies/default.yaml",
        shamir_policy(2).replace(
            "[[admins], [host:vps-arm], [host:vps-x86]]",
            "[[admins], [host:vps-x86], [host:vps-arm]]",
        ),
    );
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.contains(
            "key group 2 has 1 age entry (1 for recipients the policy does not name, 1 missing)"
        ),
        "{}",
        check.stdout
    );
}
