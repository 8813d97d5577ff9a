//! `keys`: secrets and machine identities for a NixOS fleet kept in git.
//!
//! Layers, highest first; each uses only its own layer and those below it, and no
//! module loop exists (the `layers` tests below check both):
//! `cli` → `ops` → {`policy`, `crypto`} → {`format`, `identity`} → `recipient` →
//! {`snapshot`, `scratch`, `signal`, `git`, `fsutil`, `layout`} → `error`.

pub mod cli;
pub mod crypto;
pub mod error;
pub mod format;
pub mod fsutil;
pub mod git;
pub mod identity;
pub mod layout;
pub mod ops;
pub mod policy;
pub mod recipient;
pub mod scratch;
pub mod signal;
pub mod snapshot;

/// The layers, highest first: a module may use modules of its own layer and below,
/// never above, and nothing uses `cli`.
#[cfg(test)]
mod layers {
    const LAYERS: &[&[&str]] = &[
        &["cli"],
        &["ops"],
        &["policy", "crypto"],
        &["format", "identity"],
        &["recipient"],
        &["snapshot", "scratch", "signal", "git", "fsutil", "layout"],
        &["error"],
    ];

    fn layer(module: &str) -> Option<usize> {
        LAYERS.iter().position(|l| l.contains(&module))
    }

    /// Every `crate::NAME` a source file names outside comments, with its line.
    fn uses(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let code = without_strings(line.split("//").next().unwrap_or(""));
            let code = code.as_str();
            for (i, _) in code.match_indices("crate::") {
                if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((n + 1, name));
            }
        }
        out
    }

    /// `line` with the text of its string literals left out.
    fn without_strings(line: &str) -> String {
        let mut out = String::with_capacity(line.len());
        let (mut quoted, mut escaped) = (false, false);
        for c in line.chars() {
            match (quoted, escaped, c) {
                (true, false, '\\') => escaped = true,
                (true, true, _) => escaped = false,
                (_, _, '"') => quoted = !quoted,
                (false, _, c) => out.push(c),
                (true, false, _) => {}
            }
        }
        out
    }

    #[test]
    fn no_module_uses_one_above_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for entry in walkdir::WalkDir::new(&src) {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let top = rel.split(['/', '.']).next().unwrap_or_default().to_string();
            let Some(own) = layer(&top) else {
                assert!(
                    matches!(top.as_str(), "lib" | "main"),
                    "src/{rel}: module {top} is in no layer; add it to LAYERS"
                );
                continue;
            };
            let text = std::fs::read_to_string(path).unwrap();
            for (line, used) in uses(&text) {
                let Some(theirs) = layer(&used) else {
                    wrong.push(format!("src/{rel}:{line}: crate::{used} is in no layer"));
                    continue;
                };
                if theirs < own {
                    wrong.push(format!(
                        "src/{rel}:{line}: {top} uses crate::{used}, a layer above it"
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// No module loop: no module reaches itself through the modules it uses.
    #[test]
    fn no_module_loop() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut edges = std::collections::BTreeSet::new();
        for entry in walkdir::WalkDir::new(&src) {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let top = rel.split(['/', '.']).next().unwrap_or_default().to_string();
            for (_, used) in uses(&std::fs::read_to_string(path).unwrap()) {
                if used != top {
                    edges.insert((top.clone(), used));
                }
            }
        }
        // What each module reaches, grown until nothing changes.
        let mut reach = edges.clone();
        loop {
            let more: Vec<(String, String)> = reach
                .iter()
                .flat_map(|(a, b)| {
                    edges
                        .iter()
                        .filter(move |(c, _)| c == b)
                        .map(move |(_, d)| (a.clone(), d.clone()))
                })
                .filter(|pair| !reach.contains(pair))
                .collect();
            if more.is_empty() {
                break;
            }
            reach.extend(more);
        }
        let loops: Vec<&String> = reach
            .iter()
            .filter(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect();
        assert!(loops.is_empty(), "modules in a loop: {loops:?}");
    }

    #[test]
    fn the_scanner_finds_paths_and_skips_comments() {
        let text = "use crate::format::Format;\n// crate::cli in a comment\nlet x = crate::ops::f(); // crate::cli\nlet y = mycrate::cli::x;\nlet z = \"crate::cli \\\" crate::cli\";";
        let found: Vec<String> = super::layers::uses(text)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(found, ["format", "ops"]);
    }
}
