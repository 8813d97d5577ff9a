//! age conformance: every C2SP CCTV age vector through the path `keys decrypt` takes.
//! Success only where the vector expects it, with the plaintext hashing to `payload`;
//! every failure class its own documented error, and nothing released on failure.

use std::collections::BTreeMap;
use std::io::Read;

use crate::common::{TestEnv, sha256_hex, vectors};

struct Vector {
    name: String,
    expect: String,
    payload: Option<String>,
    identities: Vec<String>,
    passphrases: Vec<String>,
    file: Vec<u8>,
}

fn load(name: &str, data: &[u8]) -> Option<Vector> {
    let split = data.windows(2).position(|w| w == b"\n\n")?;
    let header = std::str::from_utf8(&data[..split]).ok()?;
    let mut body = data[split + 2..].to_vec();
    let mut v = Vector {
        name: name.to_string(),
        expect: String::new(),
        payload: None,
        identities: Vec::new(),
        passphrases: Vec::new(),
        file: Vec::new(),
    };
    let mut compressed = false;
    for line in header.lines() {
        let (k, val) = line.split_once(": ")?;
        match k {
            "expect" => v.expect = val.to_string(),
            "payload" => v.payload = Some(val.to_string()),
            "identity" => v.identities.push(val.to_string()),
            "passphrase" => v.passphrases.push(val.to_string()),
            "compressed" => compressed = val == "zlib",
            "armored" | "file key" | "comment" => {}
            _ => return None,
        }
    }
    if compressed {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&body[..])
            .read_to_end(&mut out)
            .ok()?;
        body = out;
    }
    v.file = body;
    Some(v)
}

/// The phrases each failure class's error carries; no phrase belongs to two classes.
fn class_phrases(expect: &str) -> &'static [&'static str] {
    match expect {
        "no match" => &["no identity can decrypt"],
        "HMAC failure" => &["header MAC mismatch"],
        "header failure" => &["malformed age header", "not an age file"],
        "payload failure" => &["payload failed to authenticate"],
        "armor failure" => &["broken age armor"],
        _ => &[],
    }
}

#[test]
fn every_cctv_age_vector_is_decided_as_expected() {
    let dir = vectors().join("cctv-age/testdata");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut skipped: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut checked = 0;
    let mut seen: BTreeMap<String, (i32, String)> = BTreeMap::new();
    for name in &names {
        let data = std::fs::read(dir.join(name)).unwrap();
        let Some(v) = load(name, &data) else {
            skipped
                .entry("unknown header key")
                .or_default()
                .push(name.clone());
            continue;
        };
        if !v.passphrases.is_empty() {
            // keys secrets are encrypted to recipients; passphrase files are refused.
            skipped
                .entry("scrypt (passphrase) files")
                .or_default()
                .push(name.clone());
            continue;
        }
        if v.identities
            .iter()
            .any(|i| !i.starts_with("AGE-SECRET-KEY-1"))
        {
            skipped
                .entry("hybrid post-quantum identities")
                .or_default()
                .push(name.clone());
            continue;
        }
        let env = TestEnv::new();
        let mut identities = v.identities.clone();
        if identities.is_empty() {
            // A vector with no identity still has its file parsed: try a stranger's key.
            use age::secrecy::ExposeSecret;
            let stranger = age::x25519::Identity::generate();
            identities.push(stranger.to_string().expose_secret().to_string());
        }
        let ids = crate::common::write_private(&env, "ids.txt", identities.join("\n") + "\n");
        let file = env.write("vector.age", &v.file);
        let run = env.keys(&[
            "decrypt",
            "-i",
            &ids.display().to_string(),
            &file.display().to_string(),
        ]);
        if v.expect == "success" {
            assert_eq!(run.code, 0, "{}: {}", v.name, run.stderr);
            assert_eq!(Some(sha256_hex(&run.raw_stdout)), v.payload, "{}", v.name);
        } else {
            assert_ne!(run.code, 0, "{}: expected {}", v.name, v.expect);
            assert!(
                run.raw_stdout.is_empty(),
                "{}: released plaintext on failure",
                v.name
            );
            let first = run.stderr.lines().next().unwrap_or_default().to_string();
            assert!(
                class_phrases(&v.expect).iter().any(|p| first.contains(p)),
                "{} ({}): {first}",
                v.name,
                v.expect
            );
            seen.insert(v.expect.clone(), (run.code, first));
        }
        checked += 1;
    }
    for (class, (code, example)) in &seen {
        println!("{class}: exit {code}, e.g. {example}");
    }
    for (why, list) in &skipped {
        println!("skipped {} ({why}): {}", list.len(), list.join(", "));
    }
    println!(
        "cctv age vectors: {checked} checked, {} skipped",
        skipped.values().map(Vec::len).sum::<usize>()
    );
    assert_eq!(seen.len(), 5, "every failure class was exercised: {seen:?}");
}
