//! The repository's `flake.nix`: it parses, and its outputs (a package, an app and a
//! dev shell for each system) evaluate with `nix flake show` and `nix eval` offline,
//! against a stand-in nixpkgs that carries the real nixpkgs lib and records how the
//! flake calls `rustPlatform.buildRustPackage` and `mkShell`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{nix_sources, peer};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The flake with the files its outputs read, and the stand-in nixpkgs, in `dir`.
fn flake_and_stub(dir: &Path) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let app = dir.join("keys");
    std::fs::create_dir_all(app.join("src")).unwrap();
    for file in ["flake.nix", "Cargo.toml", "Cargo.lock", "src/main.rs"] {
        std::fs::copy(root.join(file), app.join(file)).unwrap();
    }
    let stub = dir.join("nixpkgs");
    copy_dir(&root.join("tests/nix/nixpkgs-stub"), &stub);
    copy_dir(&nix_sources().join("nixpkgs-lib"), &stub.join("lib"));
    (app, stub)
}

fn nix(dir: &Path, stub: &Path, args: &[&str]) -> String {
    let out = Command::new(peer("nix"))
        .args(["--extra-experimental-features", "nix-command flakes"])
        .arg("--store")
        .arg(dir.join("store"))
        .args(args)
        .arg("--override-input")
        .arg("nixpkgs")
        .arg(format!("path:{}", stub.display()))
        .arg("--no-write-lock-file")
        .env("HOME", dir)
        .env("NIX_CONFIG", "substituters =\nwarn-dirty = false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nix {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_flake_parses() {
    let out = Command::new(peer("nix-instantiate"))
        .arg("--parse")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("flake.nix"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_flake_offers_a_package_an_app_and_a_dev_shell_for_each_system() {
    let dir = tempfile::tempdir().unwrap();
    let (app, stub) = flake_and_stub(dir.path());
    let flake = format!("path:{}", app.display());
    let show: serde_json::Value = serde_json::from_str(&nix(
        dir.path(),
        &stub,
        &["flake", "show", "--json", &flake],
    ))
    .unwrap();
    let manifest = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    for system in [
        "x86_64-linux",
        "aarch64-linux",
        "x86_64-darwin",
        "aarch64-darwin",
    ] {
        for name in ["default", "keys"] {
            let package = &show["packages"][system][name];
            assert_eq!(package["type"], "derivation", "{system} {name}: {show}");
            assert_eq!(package["name"], format!("keys-{version}"), "{system}");
        }
        assert_eq!(show["apps"][system]["default"]["type"], "app", "{system}");
        assert_eq!(
            show["devShells"][system]["default"]["type"], "derivation",
            "{system}"
        );
    }

    let eval = |attr: &str| -> serde_json::Value {
        serde_json::from_str(&nix(
            dir.path(),
            &stub,
            &["eval", "--json", &format!("{flake}#{attr}")],
        ))
        .unwrap()
    };
    // `nix run` runs the package's binary.
    let program = eval("apps.x86_64-linux.default.program");
    let program = program.as_str().unwrap();
    assert!(
        program.starts_with("/nix/store/")
            && program.ends_with(&format!("-keys-{version}/bin/keys")),
        "{program}"
    );
    // Built from Cargo.lock, without the static link of .cargo/config.toml, and
    // without the suite, which needs the real peers.
    let recorded = eval("packages.x86_64-linux.keys.recorded");
    assert_eq!(recorded["env"]["RUSTFLAGS"], "", "{recorded}");
    assert_eq!(recorded["doCheck"], false, "{recorded}");
    assert_eq!(recorded["meta"]["mainProgram"], "keys", "{recorded}");
    // The dev shell has what the package builds with, and the peers keys works beside.
    let shell = eval("devShells.x86_64-linux.default.recorded.packages");
    let names: Vec<&str> = shell
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for tool in ["age", "sops", "ssh-to-age"] {
        assert!(
            names.iter().any(|p| p.ends_with(&format!("-{tool}"))),
            "{names:?}"
        );
    }
}
