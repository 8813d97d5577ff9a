//! The guard against committed key material: real keys made by ssh-keygen and
//! age-keygen, in every disguise a copy and paste gives them, in every place a
//! commit can carry them, staged with the real git. `keys check --staged` names the
//! file (exit 8) and the installed hook blocks the commit; look-alikes pass, and so
//! does every encrypted file of the interop vectors.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Run, TestEnv, peer, run, vectors};
use crate::fixture::fleet;

fn git(env: &TestEnv, args: &[&str]) -> Run {
    let mut cmd = Command::new(peer("git"));
    cmd.args(args);
    env.apply(&mut cmd);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org");
    run(cmd, b"")
}

fn tool(env: &TestEnv, name: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(peer(name));
    cmd.args(args);
    env.apply(&mut cmd);
    run(cmd, b"").success()
}

/// A private key as its tool writes it, and a piece of it that must never appear
/// in any output.
struct Key {
    kind: &'static str,
    text: String,
    tell: String,
}

fn real_keys(env: &TestEnv) -> Vec<Key> {
    let dir = env.root.join("made");
    std::fs::create_dir_all(&dir).unwrap();
    let d = |f: &str| dir.join(f).display().to_string();
    tool(
        env,
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", "x", "-f", &d("ed")],
    );
    tool(
        env,
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-m",
            "PEM",
            "-N",
            "",
            "-C",
            "x",
            "-f",
            &d("rsa"),
        ],
    );
    tool(env, "age-keygen", &["-o", &d("age")]);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let age = read("age")
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_string();
    let body = |text: &str| text.lines().nth(1).unwrap()[10..40].to_string();
    vec![
        Key {
            kind: "ssh-keygen ed25519",
            tell: body(&read("ed")),
            text: read("ed"),
        },
        Key {
            kind: "ssh-keygen rsa PEM",
            tell: body(&read("rsa")),
            text: read("rsa"),
        },
        Key {
            kind: "age-keygen",
            tell: age[20..50].to_string(),
            text: format!("{age}\n"),
        },
    ]
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// The same text as a JSON (or Nix) string literal: line breaks as `\n`.
fn escaped(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// What a copy and paste makes of a key.
fn disguises(key: &Key) -> Vec<(&'static str, String)> {
    let text = key.text.as_str();
    let first = text.find('\n').unwrap();
    let mut out = vec![
        ("as is", text.to_string()),
        ("indented", indent(text, "    ")),
        (
            "in a YAML block scalar",
            format!("deploy:\n  key: |\n{}", indent(text, "    ")),
        ),
        ("JSON-escaped", format!("{{\"key\": {}}}\n", escaped(text))),
        (
            "with a blank line and trailing blanks after its first line",
            format!("{} \t\r\n\n{}", &text[..first], &text[first + 1..]),
        ),
        (
            "in a Nix string",
            format!("{{\n  key = ''\n{}  '';\n}}\n", indent(text, "    ")),
        ),
        (
            "in a Nix string with escapes",
            format!("{{ key = {}; }}\n", escaped(text)),
        ),
        (
            "in a shell heredoc",
            format!("cat > key <<'EOF'\n{text}EOF\n"),
        ),
    ];
    if key.kind == "age-keygen" {
        let id = text.trim();
        let mixed = format!("Age-Secret-Key-1{}", id[16..].to_lowercase());
        out.extend([
            ("in quotes", format!("identity: \"{id}\"\n")),
            ("after =", format!("export SOPS_AGE_KEY={id}\n")),
            (
                "in a URL",
                format!("https://vault.example.org/import?key={id}&ttl=1h\n"),
            ),
            ("lower case", format!("key {}\n", id.to_lowercase())),
            ("mixed case", format!("'{mixed}',\n")),
        ]);
    }
    out
}

fn commented(text: &str) -> String {
    text.lines().map(|l| format!("# {l}\n")).collect()
}

fn append(env: &TestEnv, rel: &str, more: &str) {
    let path = env.work.join(rel);
    let mut data = std::fs::read_to_string(&path).unwrap();
    data.push_str(more);
    std::fs::write(&path, data).unwrap();
}

/// A sops YAML plaintext with `text` as a value left in clear.
fn with_clear_value(text: &str) -> String {
    format!("name: app\nnote_unencrypted: {}\n", escaped(text))
}

/// A committed fleet with an age secret, a sops secret and the hook installed.
fn guarded_repo(env: &mut TestEnv) {
    fleet(env);
    env.write(
        "work/policies/0-app.yaml",
        "rules:\n  - secrets: \"app/*\"\n    format: sops-yaml\n    readers: [admins]\n",
    );
    git(env, &["init", "-q", "-b", "main"]).success();
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
        .success();
    env.keys_stdin(&["encrypt", "app/config"], b"name: app\n")
        .success();
    env.write("work/secrets/.gitkeep", "");
    env.keys(&["hook", "install"]).success();
    git(env, &["add", "-A"]).success();
    git(env, &["commit", "-qm", "fleet"]).success();
    env.keys(&["check", "--staged"]).success();
}

fn head(env: &TestEnv) -> String {
    git(env, &["rev-parse", "HEAD"])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// Stages everything and expects `keys check --staged` to name each of `files` as
/// holding key material, and the hook to block the commit (when `commit`).
fn refused(env: &TestEnv, what: &str, files: &[String], tells: &[&str], commit: bool) {
    git(env, &["add", "-A"]).success();
    let check = env.keys(&["check", "--staged"]);
    assert_eq!(check.code, 8, "{what}: passed\n{}", check.stdout);
    for rel in files {
        assert!(
            check.stdout.contains(&format!("\n{rel}: contains "))
                || check.stdout.starts_with(&format!("{rel}: contains ")),
            "{what}: {rel} not named\n{}",
            check.stdout
        );
    }
    let mut outputs = vec![check.stdout, check.stderr];
    if commit {
        let before = head(env);
        let run = git(env, &["commit", "-qm", "leak"]);
        assert_ne!(run.code, 0, "{what}: the hook let the commit through");
        assert!(
            run.stderr.contains("keys: commit blocked"),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(head(env), before, "{what}");
        outputs.extend([run.stdout, run.stderr]);
    }
    for out in &outputs {
        for tell in tells {
            assert!(!out.contains(tell), "{what}: key material in the output");
        }
    }
}

#[test]
fn real_keys_in_every_disguise_and_place_are_refused_by_check_and_the_hook() {
    let mut env = TestEnv::new();
    guarded_repo(&mut env);
    let keys = real_keys(&env);
    let tells: Vec<&str> = keys.iter().map(|k| k.tell.as_str()).collect();
    let variants: Vec<(String, String)> = keys
        .iter()
        .flat_map(|key| {
            disguises(key)
                .into_iter()
                .map(move |(how, text)| (format!("{} {how}", key.kind), text))
        })
        .collect();
    let mut tried = 0;

    // Places where every variant has a file of its own: a new file, a file under
    // secrets/ and a sops file's value left in clear, all staged at once.
    let mut files = Vec::new();
    for (i, (_, text)) in variants.iter().enumerate() {
        env.write(&format!("work/notes/leak-{i}.md"), text);
        env.write(&format!("work/secrets/leak-{i}.txt"), text);
        let name = format!("app/leak-{i}");
        env.keys_stdin(&["encrypt", &name], with_clear_value(text).as_bytes())
            .success();
        files.extend([
            format!("notes/leak-{i}.md"),
            format!("secrets/leak-{i}.txt"),
            format!("secrets/{name}.yaml"),
        ]);
        tried += 3;
    }
    refused(&env, "files of their own", &files, &tells, true);
    git(&env, &["reset", "-q", "--hard"]).success();

    // Places that are one file: a variant at a time, each replacing the last.
    let start = head(&env);
    let original = |rel: &str| std::fs::read_to_string(env.work.join(rel)).unwrap();
    let host = original("recipients/hosts/vps-arm.yaml");
    let lock = original("secrets/keys.lock");
    for (i, (what, text)) in variants.iter().enumerate() {
        for (rel, content) in [
            (
                "recipients/hosts/vps-arm.yaml",
                format!("{host}{}", commented(text)),
            ),
            ("secrets/keys.lock", format!("{lock}{}", commented(text))),
            ("secrets/.gitkeep", text.clone()),
        ] {
            env.write(&format!("work/{rel}"), &content);
            // Through the hook too for every third variant (and the others
            // through `keys check --staged`, which is what it runs).
            refused(
                &env,
                &format!("{what} in {rel}"),
                &[rel.to_string()],
                &tells,
                i % 3 == 0,
            );
            env.write(&format!("work/{rel}"), original_of(rel, &host, &lock));
            tried += 1;
        }
    }
    git(&env, &["add", "-A"]).success();
    env.keys(&["check", "--staged"]).success();
    assert_eq!(head(&env), start);
    assert!(tried >= 48 && variants.len() >= 24, "{tried} variants");
}

fn original_of<'a>(rel: &str, host: &'a str, lock: &'a str) -> &'a str {
    match rel {
        "recipients/hosts/vps-arm.yaml" => host,
        "secrets/keys.lock" => lock,
        _ => "",
    }
}

#[test]
fn look_alikes_of_keys_pass_check_and_the_hook() {
    let mut env = TestEnv::new();
    guarded_repo(&mut env);
    let made = env.root.join("made");
    std::fs::create_dir_all(&made).unwrap();
    let d = |f: &str| made.join(f).display().to_string();
    tool(
        &env,
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", "x", "-f", &d("ed")],
    );
    tool(
        &env,
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-N",
            "",
            "-C",
            "x",
            "-f",
            &d("rsa"),
        ],
    );
    tool(&env, "age-keygen", &["-o", &d("age")]);
    let pkcs8 = tool(
        &env,
        "ssh-keygen",
        &["-e", "-m", "PKCS8", "-f", &d("rsa.pub")],
    )
    .stdout;
    let age_file = std::fs::read_to_string(made.join("age")).unwrap();
    let recipient = age_file
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    let mut age = Command::new(peer("age"));
    age.args(["-a", "-r", &recipient]);
    env.apply(&mut age);
    let armored = run(age, b"not a key").success().stdout;
    let begin = concat!("-----BEGIN OPENSSH PRIVATE", " KEY-----");
    let end = concat!("-----END OPENSSH PRIVATE", " KEY-----");
    let look_alikes = [
        std::fs::read_to_string(made.join("ed.pub")).unwrap(),
        std::fs::read_to_string(made.join("rsa.pub")).unwrap(),
        format!("# public key: {recipient}\n{recipient}\n"),
        pkcs8,
        armored,
        format!("A key file looks like this:\n\n    {begin}\n    ...\n    {end}\n"),
        format!("{begin}\n<paste the key here>\n{end}\n"),
        format!("const BEGIN: &str = \"{begin}\";\nconst END: &str = \"{end}\";\n"),
        "if line.starts_with(\"AGE-SECRET-KEY-1\") { return Kind::Identity; }\n".into(),
        "An identity is one line, AGE-SECRET-KEY-1 and 58 characters.\n".into(),
        concat!(
            "AGE-PLUGIN-YUBIKEY-1",
            "QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSLUZ4Y\n"
        )
        .into(),
    ];
    let variants: Vec<String> = look_alikes
        .iter()
        .flat_map(|text| {
            [
                text.clone(),
                indent(text, "  "),
                format!("{{\"k\": {}}}\n", escaped(text)),
            ]
        })
        .collect();
    // Each in a file of its own and a sops value of its own; all of them in a host
    // file's and the lock's comments.
    for (i, text) in variants.iter().enumerate() {
        env.write(&format!("work/notes/look-{i}.md"), text);
        env.keys_stdin(
            &["encrypt", &format!("app/look-{i}")],
            with_clear_value(text).as_bytes(),
        )
        .success();
        append(&env, "recipients/hosts/vps-arm.yaml", &commented(text));
        append(&env, "secrets/keys.lock", &commented(text));
    }
    git(&env, &["add", "-A"]).success();
    let check = env.keys(&["check", "--staged"]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    git(&env, &["commit", "-qm", "look-alikes"]).success();

    // An allowed path keeps its key.
    let key = std::fs::read_to_string(made.join("ed")).unwrap();
    env.write("work/tests/fixtures/host.key", &key);
    env.write(
        "work/policies/0-app.yaml",
        "rules:\n  - secrets: \"app/*\"\n    format: sops-yaml\n    readers: [admins]\nallow_private_keys: [\"tests/fixtures/**\"]\n",
    );
    git(&env, &["add", "-A"]).success();
    env.keys(&["check", "--staged"]).success();
    git(&env, &["commit", "-qm", "fixture"]).success();

    // A glob that would let a key pass anywhere (or in keys's own directories) is
    // refused, naming its policy line, and the key it was meant to wave through is
    // still found.
    env.write("work/notes/ops.md", &key);
    let mut open = PathBuf::new();
    for glob in ["**", "*/ops.md", "{notes,tests}/**", "secrets/**"] {
        open = env.write(
            "work/policies/1-open.yaml",
            format!("allow_private_keys:\n  - \"{glob}\"\n"),
        );
        git(&env, &["add", "-A"]).success();
        let check = env.keys(&["check", "--staged"]).failure(8);
        assert!(
            check.stdout.contains(&format!(
                "policies/1-open.yaml:2: allow_private_keys glob \"{glob}\""
            )),
            "{glob}: {}",
            check.stdout
        );
        assert!(!check.stdout.contains("BEGIN OPENSSH"), "{}", check.stdout);
    }
    std::fs::remove_file(open).unwrap();
    git(&env, &["add", "-A"]).success();
    let check = env.keys(&["check", "--staged"]).failure(8);
    assert!(
        check.stdout.contains("notes/ops.md") && check.stdout.contains("in clear"),
        "{}",
        check.stdout
    );
}

#[test]
fn every_encrypted_vector_passes_and_every_private_key_vector_is_found() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors().join("MANIFEST.json")).unwrap()).unwrap();
    let mut keys = Vec::new();
    let mut clean = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let dst = repo.join("vectors").join(path);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(vectors().join(path), &dst).unwrap();
        match f["format"].as_str().unwrap() {
            "ssh-priv" | "age-identity" => keys.push(format!("vectors/{path}")),
            "plaintext" => {}
            _ => clean.push(format!("vectors/{path}")),
        }
    }
    // The encrypted ones also where secrets live, beside the fleet's own.
    for path in &clean {
        if path.ends_with(".age") || path.contains(".enc.") {
            let name = Path::new(path).file_name().unwrap().to_string_lossy();
            std::fs::copy(repo.join(path), repo.join(format!("secrets/v/{name}")))
                .or_else(|_| {
                    std::fs::create_dir_all(repo.join("secrets/v"))?;
                    std::fs::copy(repo.join(path), repo.join(format!("secrets/v/{name}")))
                })
                .unwrap();
        }
    }
    let out = env.keys(&["check"]).failure(8).stdout;
    for path in &keys {
        assert!(
            out.contains(&format!("{path}: contains ")),
            "{path} not found\n{out}"
        );
    }
    for path in &clean {
        assert!(
            !out.contains(&format!("{path}: contains ")),
            "{path} reported\n{out}"
        );
    }
    for line in out.lines().filter(|l| l.contains(": contains ")) {
        assert!(!line.starts_with("secrets/"), "{line}");
    }
    assert!(
        keys.len() > 30 && clean.len() > 40,
        "{} {}",
        keys.len(),
        clean.len()
    );
}
