//! Man pages (generated from the CLI with clap_mangen, committed under man/) and the
//! README's exit-code table stay in step with the code, and every `keys-…(1)` the
//! pages, the help and the README name is a page in man/. `KEYS_BLESS=1` rewrites man/.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap_mangen::roff::{Roff, roman};

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// The command and every visible subcommand at every level, each with the page names
/// of the commands above it, nearest first. Built (so each knows its `keys-host-add`
/// page name), with no `help` subcommands: their pages would only repeat `--help`.
fn commands() -> Vec<(clap::Command, Vec<String>)> {
    fn walk(cmd: &clap::Command, above: &[String], out: &mut Vec<(clap::Command, Vec<String>)>) {
        out.push((cmd.clone(), above.to_vec()));
        let mut below = vec![page_name(cmd).to_string()];
        below.extend_from_slice(above);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, &below, out);
        }
    }
    let mut cmd = keys::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, &[], &mut out);
    out
}

fn page_name(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// One page for each command, and a SEE ALSO naming the pages above it.
fn pages() -> Vec<(String, Vec<u8>)> {
    let source = format!("keys {}", env!("CARGO_PKG_VERSION"));
    commands()
        .into_iter()
        .map(|(cmd, above)| {
            let name = page_name(&cmd).to_string();
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .source(source.clone())
                .render(&mut buf)
                .unwrap();
            if !above.is_empty() {
                let refs: Vec<String> = above.iter().map(|p| format!("{p}(1)")).collect();
                let mut see_also = Roff::default();
                see_also.control("SH", ["SEE ALSO"]);
                see_also.text([roman(refs.join(", "))]);
                buf.extend_from_slice(see_also.to_roff().as_bytes());
            }
            (format!("{name}.1"), buf)
        })
        .collect()
}

#[test]
fn man_pages_are_current() {
    let dir = man_dir();
    let bless = std::env::var_os("KEYS_BLESS").is_some();
    let pages = pages();
    let wanted: BTreeSet<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    let mut stale = Vec::new();
    for (name, data) in &pages {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, data).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&data[..]) {
            stale.push(name.clone());
        }
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if !wanted.contains(file.as_str()) {
            if bless {
                std::fs::remove_file(dir.join(&file)).unwrap();
            } else {
                stale.push(file);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages {stale:?}: run KEYS_BLESS=1 cargo test --test cli man_pages"
    );
}

/// Every `keys…(1)` named in `text` (roff's `\-` read as `-`).
fn references(text: &str) -> Vec<String> {
    let text = text.replace("\\-", "-");
    let re = regex::Regex::new(r"\bkeys(?:-[a-z0-9]+)*\(1\)").unwrap();
    re.find_iter(&text)
        .map(|m| m.as_str().to_string())
        .collect()
}

#[test]
fn every_page_reference_names_a_page_in_man() {
    let dir = man_dir();
    let mut texts: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        texts.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    for (mut cmd, _) in commands() {
        let name = page_name(&cmd).to_string();
        texts.push((format!("{name} --help"), cmd.render_long_help().to_string()));
    }
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    texts.push(("README.md".into(), std::fs::read_to_string(readme).unwrap()));

    let mut named = 0;
    for (source, text) in &texts {
        for reference in references(text) {
            named += 1;
            let file = reference.replace("(1)", ".1");
            assert!(
                dir.join(&file).is_file(),
                "{source} names {reference}, but man/{file} does not exist"
            );
        }
    }
    // The parents list their subcommands, the subcommands their parents.
    assert!(named > 2 * commands().len(), "only {named} references");
    // Each nested subcommand has its page, its parent names it and it names its parent.
    let host = std::fs::read_to_string(dir.join("keys-host.1")).unwrap();
    let add = std::fs::read_to_string(dir.join("keys-host-add.1")).unwrap();
    assert!(references(&host).contains(&"keys-host-add(1)".to_string()));
    assert!(references(&add).contains(&"keys-host(1)".to_string()));
    assert!(dir.join("keys-host-rotate.1").is_file());
    assert!(!dir.join("keys-host-help.1").exists() && !host.contains("help(1)"));
}

#[test]
fn readme_documents_every_exit_code() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for (code, what) in keys::cli::EXIT_CODES {
        let row = format!("| {code} | {what} |");
        assert!(readme.contains(&row), "README lacks the row {row}");
    }
    let man =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/keys.1")).unwrap();
    assert!(man.contains("Exit status"));
}
