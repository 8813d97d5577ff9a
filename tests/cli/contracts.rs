//! The command line's contract as data: each `tests/cmd/*.toml` names the arguments,
//! stdin and fixture directory of one run and pins its exit code, stdout and stderr
//! (`trycmd`). `TRYCMD=overwrite cargo test --test cli contracts` rewrites the
//! expectations. The runs are as hermetic as [`crate::common::TestEnv`]'s: an empty
//! HOME, no inherited environment, NO_COLOR, no terminal, the keyring off; a case
//! that changes files runs in a copy of its fixture (`fs.sandbox = true`).

use std::path::{Path, PathBuf};

use crate::common::{keys_bin, peer};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    cases
}

/// A case that forgot a field would pass without checking it: every case clears the
/// environment and pins its stdout and stderr (in the file or beside it).
#[test]
fn every_contract_case_is_hermetic_and_pins_all_it_prints() {
    let cases = cases();
    assert!(cases.len() > 30, "{} cases", cases.len());
    for case in cases {
        let text = std::fs::read_to_string(&case).unwrap();
        let name = case.display();
        assert!(
            text.contains("[env]\ninherit = false\n"),
            "{name}: no `[env] inherit = false`"
        );
        for stream in ["stdout", "stderr"] {
            let inline = text.lines().any(|l| l.starts_with(&format!("{stream} = ")));
            assert!(
                inline || case.with_extension(stream).is_file(),
                "{name}: {stream} is not pinned"
            );
        }
    }
}

#[test]
fn the_command_line_keeps_its_contract() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // Each run in a session of its own, so that no terminal can be opened.
    let wrapper = dir.path().join("keys");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec setsid -w '{}' \"$@\"\n", keys_bin()),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    peer("setsid");
    trycmd::TestCases::new()
        .default_bin_path(&wrapper)
        .register_bin("flock", peer("flock"))
        .env("HOME", home.display().to_string())
        // `keys` is this wrapper for a case that runs it under another program.
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("NO_COLOR", "1")
        .env("LC_ALL", "C.UTF-8")
        .env("KEYS_KEYRING", "none")
        .timeout(crate::common::TIME_LIMIT)
        .insert_var("[HOME]", home.display().to_string())
        .unwrap()
        .case(cases_dir().join("*.toml"))
        .run();
    // The cases share this HOME: none may leave anything in it for the next.
    assert!(
        std::fs::read_dir(&home).unwrap().next().is_none(),
        "a case wrote into HOME"
    );
}
