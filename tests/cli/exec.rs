//! `keys exec NAME -- CMD…`: the command runs with the secret's top-level values in
//! its environment, as the real `sops exec-env` sets them, its exit status is keys's,
//! and what cannot be an environment variable is refused by name.

use std::collections::BTreeMap;

use crate::common::TestEnv;
use crate::fixture::{sops, sops_fleet, tree};

const YAML: &str = "\
# settings
TOKEN: s3cret-yaml
PORT: 8080
RATIO: 1.0
DEBUG: true
OFF: no
SINCE: 2001-12-14t21:59:43.10-05:00
DAY: 2002-12-14
MULTI: |
    line1
    line2
";

const DOTENV: &str = "# env\nTOKEN=s3cret-env\nLINES=a\\nb\nEMPTY=\nTOKEN=last-wins\n";

const JSON: &str = r#"{"TOKEN": "s3cret-json", "PORT": 8080, "BIG": 1e21, "ON": false}"#;

/// The variables named in `names` that `env -0` printed.
fn vars(out: &[u8], names: &[&str]) -> BTreeMap<String, String> {
    out.split(|&b| b == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (k, v) = text.split_once('=')?;
            names.contains(&k).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// For a dotenv, a YAML and a JSON secret, the command sees the same variables
/// `sops exec-env` gives its command, and keys's own environment besides.
#[test]
fn exec_sets_what_sops_exec_env_sets() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.set("KEYS_TEST_OUTER", "kept");
    let key = env.root.join("keys/demo.txt");
    for (name, file, plain, names) in [
        (
            "yaml/app",
            "secrets/yaml/app.yaml",
            YAML,
            &[
                "TOKEN", "PORT", "RATIO", "DEBUG", "OFF", "SINCE", "DAY", "MULTI",
            ][..],
        ),
        (
            "env/app",
            "secrets/env/app.env",
            DOTENV,
            &["TOKEN", "LINES", "EMPTY"][..],
        ),
        (
            "json/app",
            "secrets/json/app.json",
            JSON,
            &["TOKEN", "PORT", "BIG", "ON"][..],
        ),
    ] {
        env.keys_stdin(&["encrypt", name], plain.as_bytes())
            .success();
        let want = sops(&env, &["exec-env", file, "env -0"], &key).success();
        let want = vars(&want.raw_stdout, names);
        assert_eq!(want.len(), names.len(), "{name}: {want:?}");
        for target in [name, file] {
            let got = env.keys(&["exec", target, "--", "env", "-0"]).success();
            assert_eq!(vars(&got.raw_stdout, names), want, "{target}");
            assert_eq!(
                vars(&got.raw_stdout, &["KEYS_TEST_OUTER"]).len(),
                1,
                "{target}"
            );
        }
    }
    assert!(!repo.join("secrets/yaml/app.yaml.tmp").exists());
}

/// The command's exit status is keys's, a signal that kills it is not turned into
/// keys's own 130, and --pristine leaves only the secret's values.
#[test]
fn exec_becomes_the_command() {
    let mut env = TestEnv::new();
    sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "env/app"], DOTENV.as_bytes())
        .success();
    let r = env.keys(&["exec", "env/app", "--", "sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    // Killed by the signal itself (no exit code), not an exit keys chose.
    let r = env.keys(&["exec", "env/app", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(r.code, -1, "{}", r.stderr);
    let r = env
        .keys(&["exec", "--pristine", "env/app", "--", "env"])
        .success();
    assert_eq!(r.stdout, "EMPTY=\nLINES=a\nb\nTOKEN=last-wins\n");
    // Arguments that look like options are the command's.
    let r = env
        .keys(&[
            "exec",
            "env/app",
            "--",
            "sh",
            "-c",
            "printf '%s' \"$1\"",
            "-",
            "-n",
        ])
        .success();
    assert_eq!(r.stdout, "-n");
}

/// What cannot be an environment variable is refused before the command runs, one
/// line naming the file and the key, no value shown, nothing changed.
#[test]
fn exec_refuses_what_cannot_be_an_environment() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let secrets: &[(&str, &[u8])] = &[
        (
            "yaml/nested",
            b"TOKEN: hunter2-a\ndb:\n    password: hunter2-b\n",
        ),
        ("yaml/null", b"TOKEN: hunter2-a\nEMPTY:\n"),
        ("yaml/equals", b"\"A=B\": hunter2-a\n"),
        ("yaml/list", b"HOSTS: [a, b]\n"),
        ("ini/app", b"[sec]\na = hunter2-a\n"),
        ("bot/token", b"hunter2-token"),
        ("bin/blob", b"hunter2-blob"),
    ];
    for (name, plain) in secrets {
        env.keys_stdin(&["encrypt", name], plain).success();
    }
    let before = tree(&repo);
    let marker = env.root.join("ran");
    let touch = format!("touch {}", marker.display());
    let file = |n: &str| repo.join(format!("secrets/{n}.yaml")).display().to_string();
    let cases: Vec<(&str, i32, String)> = vec![
        (
            "yaml/nested",
            3,
            format!(
                "keys: error: {}: key \"db\" holds a map or a list, which cannot be an environment variable",
                file("yaml/nested")
            ),
        ),
        (
            "yaml/list",
            3,
            format!(
                "keys: error: {}: key \"HOSTS\" holds a map or a list",
                file("yaml/list")
            ),
        ),
        (
            "yaml/null",
            3,
            format!("keys: error: {}: key \"EMPTY\" is null", file("yaml/null")),
        ),
        (
            "yaml/equals",
            3,
            format!(
                "keys: error: {}: key \"A=B\" holds '='",
                file("yaml/equals")
            ),
        ),
        (
            "ini/app",
            2,
            "keys: error: keys exec: ini/app is a sops INI file".into(),
        ),
        (
            "bot/token",
            2,
            "keys: error: keys exec: bot/token is an age file".into(),
        ),
        (
            "bin/blob",
            2,
            "keys: error: keys exec: bin/blob is a sops binary file".into(),
        ),
    ];
    for (name, code, message) in &cases {
        let r = env
            .keys(&["exec", name, "--", "sh", "-c", &touch])
            .failure(*code);
        assert!(
            r.stderr.starts_with(message.as_str()),
            "{name}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
        assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
        assert_eq!(r.stdout, "");
        assert!(!marker.exists(), "{name}: the command ran");
    }
    // A command that is not there: exit 9, before anything is decrypted.
    env.keys_stdin(&["encrypt", "env/app"], DOTENV.as_bytes())
        .success();
    let before_app = tree(&repo);
    env.set("KEYS_IDENTITY", "/nonexistent");
    let r = env
        .keys(&["exec", "env/app", "--", "no-such-command-here"])
        .failure(9);
    assert!(
        r.stderr
            .starts_with("keys: error: no-such-command-here: not found on PATH"),
        "{}",
        r.stderr
    );
    assert_eq!(env.keys(&["exec", "env/app"]).code, 2);
    assert_eq!(tree(&repo), before_app);
    assert_ne!(before, before_app);
}
