//! Every key and age entry of `../shared/vectors/MANIFEST.json` through the real binary.

use serde_json::Value;

use crate::common::{TestEnv, sha256_hex, vectors};

fn manifest() -> Vec<Value> {
    let dir = vectors();
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let files = m["files"].as_array().unwrap().clone();
    for e in &files {
        let data = std::fs::read(dir.join(e["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            sha256_hex(&data),
            e["sha256"].as_str().unwrap(),
            "{} changed",
            e["path"]
        );
    }
    files
}

fn path_of(e: &Value, key: &str) -> String {
    vectors()
        .join(e[key].as_str().unwrap())
        .display()
        .to_string()
}

fn with_passphrase(env: &mut TestEnv, pass: Option<&str>) {
    match pass {
        Some(p) => {
            let f = env.write("pass.txt", format!("{p}\n"));
            env.set("KEYS_PASSPHRASE_FILE", f.display().to_string());
        }
        None => env.set("KEYS_PASSPHRASE_FILE", ""),
    }
}

#[test]
fn every_key_vector_converts_like_ssh_to_age() {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for e in manifest() {
        let format = e["format"].as_str().unwrap();
        let ok = e["expect"] == "ok";
        let path = path_of(&e, "path");
        let mut env = TestEnv::new();
        match (format, ok) {
            ("ssh-pub", true) => {
                let want: Vec<String> = match e["age_recipients"].as_array() {
                    Some(list) => list
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                    None => vec![e["age_recipient"].as_str().unwrap().to_string()],
                };
                let run = env.keys(&["to-age", &path]).success();
                assert_eq!(run.stdout, format!("{}\n", want.join("\n")), "{path}");
            }
            ("ssh-priv", true) => {
                with_passphrase(&mut env, e["passphrase"].as_str());
                let run = env.keys(&["to-age", "--private", &path]).success();
                assert_eq!(
                    run.stdout.trim_end(),
                    e["age_identity"].as_str().unwrap(),
                    "{path}"
                );
                assert!(!run.stderr.contains("AGE-SECRET-KEY"), "{path}");
                // The loader's public half converts to the same recipient.
                let public = path_of(&e, "public_key");
                let run = env.keys(&["to-age", &public]).success();
                assert_eq!(run.stdout.trim_end(), e["age_recipient"].as_str().unwrap());
            }
            ("age-recipient", true) => {
                let run = env.keys(&["to-age", &path]).success();
                assert_eq!(
                    run.stdout.trim_end(),
                    e["age_recipient"].as_str().unwrap(),
                    "{path}"
                );
            }
            ("age-identity", true) => {
                // The identity loader derives the recipient age-keygen -y prints.
                let data = std::fs::read(&path).unwrap();
                let recipient =
                    keys::identity::public_of(&data, &path, &keys::identity::NoPrompt).unwrap();
                assert_eq!(
                    recipient.to_string(),
                    e["age_recipient"].as_str().unwrap(),
                    "{path}"
                );
            }
            ("ssh-pub" | "ssh-priv", false) => {
                let args: Vec<&str> = if format == "ssh-priv" {
                    vec!["to-age", "--private", &path]
                } else {
                    vec!["to-age", &path]
                };
                let run = env.keys(&args).failure(3);
                assert!(run.stdout.is_empty(), "{path}: {}", run.stdout);
                let key_type = e["key_type"].as_str().unwrap();
                let first_line = run
                    .stderr
                    .lines()
                    .find(|l| l.starts_with("keys: error:"))
                    .unwrap();
                assert!(
                    first_line.contains(&path) && first_line.contains(key_type),
                    "{path}: {first_line}"
                );
                assert!(!run.stderr.contains("PRIVATE KEY") && !run.stderr.contains("AGE-SECRET"));
            }
            _ => continue,
        }
        *counts
            .entry(format!("{format}/{}", e["expect"].as_str().unwrap()))
            .or_default() += 1;
    }
    println!("key vectors checked: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 17 + 18 + 15 + 12 + 4 + 4);
}

#[test]
fn every_age_vector_decrypts_with_each_listed_identity_and_no_other() {
    let mut checked = 0;
    let mut files = 0;
    for e in manifest() {
        if !matches!(e["format"].as_str().unwrap(), "age" | "age-armor") {
            continue;
        }
        let file = path_of(&e, "path");
        let mut ids = vec![(e["identity"].clone(), e["identity_kind"].clone())];
        for alt in e["alternatives"].as_array().unwrap() {
            ids.push((alt["identity"].clone(), alt["identity_kind"].clone()));
        }
        files += 1;
        let listed: Vec<String> = ids
            .iter()
            .map(|(i, _)| i.as_str().unwrap().to_string())
            .collect();
        for (identity, kind) in ids {
            let mut env = TestEnv::new();
            with_passphrase(&mut env, e["identity_passphrase"].as_str());
            let id_path = vectors().join(identity.as_str().unwrap());
            let id_file = match kind.as_str().unwrap() {
                "ssh-converted" => {
                    let run = env
                        .keys(&["to-age", "--private", &id_path.display().to_string()])
                        .success();
                    crate::common::write_private(&env, "converted.txt", run.stdout)
                }
                _ => crate::common::private_copy(&env, &id_path, "id"),
            };
            let run = env
                .keys(&["decrypt", "-i", &id_file.display().to_string(), &file])
                .success();
            assert_eq!(
                sha256_hex(&run.raw_stdout),
                e["plaintext_sha256"].as_str().unwrap(),
                "{file} with {identity}"
            );
            checked += 1;
        }
        // A key that is not listed opens nothing, and nothing is printed.
        let stranger = ["keys/ed25519-10", "keys/ed25519-09"]
            .into_iter()
            .find(|k| !listed.iter().any(|l| l == k))
            .unwrap();
        let env = TestEnv::new();
        let id = crate::common::private_copy(&env, &vectors().join(stranger), "stranger");
        let out = env.root.join("out.txt");
        let run = env
            .keys(&[
                "decrypt",
                "-i",
                &id.display().to_string(),
                &file,
                "-o",
                &out.display().to_string(),
            ])
            .failure(4);
        assert!(run.stdout.is_empty());
        assert!(!out.exists(), "a failed decrypt wrote {}", out.display());
        assert!(run.stderr.contains("no identity can decrypt") && run.stderr.contains(&file));
    }
    println!("age vectors decrypted: {files} files, {checked} (file, identity) pairs");
    assert_eq!((files, checked), (14, 20));
}
