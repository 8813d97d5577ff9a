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
pub mod openbao;
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
    use std::collections::BTreeSet;

    const LAYERS: &[&[&str]] = &[
        &["cli"],
        &["ops"],
        &["policy", "crypto"],
        &["format", "identity"],
        &["recipient"],
        &[
            "snapshot", "scratch", "signal", "git", "fsutil", "layout", "openbao",
        ],
        &["error"],
    ];

    fn layer(module: &str) -> Option<usize> {
        LAYERS.iter().position(|l| l.contains(&module))
    }

    /// Every source file under `src/`: its path there, its top module and its text.
    fn sources() -> Vec<(String, String, String)> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        walkdir::WalkDir::new(&src)
            .into_iter()
            .map(|entry| entry.unwrap().into_path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .map(|path| {
                let rel = path.strip_prefix(&src).unwrap().to_string_lossy();
                let top = rel.split(['/', '.']).next().unwrap_or_default().to_string();
                let text = std::fs::read_to_string(&path).unwrap();
                (rel.into_owned(), top, text)
            })
            .collect()
    }

    /// Every `crate::NAME` a source text names outside comments and string literals,
    /// with its line.
    fn uses(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let code = without_strings(line.split("//").next().unwrap_or(""));
            for (i, _) in code.match_indices("crate::") {
                if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
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

    /// Which top module uses which other.
    fn edges() -> BTreeSet<(String, String)> {
        let mut edges = BTreeSet::new();
        for (_, top, text) in sources() {
            for (_, used) in uses(&text) {
                if used != top {
                    edges.insert((top.clone(), used));
                }
            }
        }
        edges
    }

    #[test]
    fn no_module_uses_one_above_it() {
        let mut wrong = Vec::new();
        for (rel, top, text) in sources() {
            let Some(own) = layer(&top) else {
                assert!(
                    matches!(top.as_str(), "lib" | "main"),
                    "src/{rel}: module {top} is in no layer; add it to LAYERS"
                );
                continue;
            };
            for (line, used) in uses(&text) {
                match layer(&used) {
                    None => wrong.push(format!("src/{rel}:{line}: crate::{used} is in no layer")),
                    Some(theirs) if theirs < own => wrong.push(format!(
                        "src/{rel}:{line}: {top} uses crate::{used}, a layer above it"
                    )),
                    Some(_) => {}
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// No module loop: no module reaches itself through the modules it uses.
    #[test]
    fn no_module_loop() {
        let edges = edges();
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
    fn the_scanner_finds_paths_and_skips_comments_and_strings() {
        let text = "use crate::format::Format;\n// crate::cli in a comment\nlet x = crate::ops::f(); // crate::cli\nlet y = mycrate::cli::x;\nlet z = \"crate::cli \\\" crate::cli\";";
        let found: Vec<String> = uses(text).into_iter().map(|(_, n)| n).collect();
        assert_eq!(found, ["format", "ops"]);
    }
}
