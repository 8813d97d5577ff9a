//! Man pages (generated from the CLI with clap_mangen, committed under man/) and the
//! README's exit-code table stay in step with the code. `KEYS_BLESS=1` rewrites man/.

use std::path::Path;

fn pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = keys::cli::command();
    cmd.build();
    let mut out = Vec::new();
    let mut render = |name: String, c: clap::Command| {
        let mut buf = Vec::new();
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        clap_mangen::Man::new(c.name(static_name))
            .render(&mut buf)
            .unwrap();
        out.push((format!("{name}.1"), buf));
    };
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        render(format!("keys-{}", sub.get_name()), sub.clone());
    }
    render("keys".into(), cmd.clone());
    out
}

#[test]
fn man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let bless = std::env::var_os("KEYS_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, data) in pages() {
        let path = dir.join(&name);
        if bless {
            std::fs::write(&path, &data).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&data[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages {stale:?}: run KEYS_BLESS=1 cargo test --test cli man_pages"
    );
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

#[test]
fn completions_are_generated_for_each_shell() {
    let env = crate::common::TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = env.keys(&["completions", shell]).success();
        assert!(run.stdout.contains("to-age"), "{shell}");
    }
}
