//! Links the `keys` binary with the functions its commands run side by side, in the
//! order of `scripts/hot-functions.txt` (what a rekey of `.age` and sops files, a
//! check, an encrypt and a decrypt ran; `scripts/hot-functions` lists them anew). The
//! kernel maps a program's code 64 KiB around each first touch, so a command then
//! maps a few MiB of code rather than most of the 11 MiB of it. Release builds
//! only, and only where the linker takes the list (LLVM's, which rustc links x86_64
//! Linux programs with since 1.90, does): a small program is linked with it first. A
//! name on the list that the binary lacks is passed over.

use std::path::Path;
use std::process::{Command, Stdio};

const LIST: &str = "scripts/hot-functions.txt";

fn main() {
    println!("cargo:rerun-if-changed={LIST}");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("PROFILE") != "release" || var("CARGO_CFG_TARGET_OS") != "linux" {
        return;
    }
    let list = Path::new(&var("CARGO_MANIFEST_DIR")).join(LIST);
    let args = [
        format!("-Wl,--symbol-ordering-file={}", list.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ];
    if links_with(&args) {
        for arg in args {
            println!("cargo:rustc-link-arg-bin=keys={arg}");
        }
    }
}

/// Whether rustc, with this build's target, linker and flags, links a program with
/// `args` passed to the linker.
fn links_with(args: &[String]) -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let out = Path::new(&var("OUT_DIR")).join("link-probe");
    let mut rustc = Command::new(var("RUSTC"));
    rustc
        .args([
            "--crate-name",
            "link_probe",
            "--edition",
            "2021",
            "--target",
        ])
        .arg(var("TARGET"))
        .arg("-o")
        .arg(&out)
        .arg("-");
    let linker = var("RUSTC_LINKER");
    if !linker.is_empty() {
        rustc.arg(format!("-Clinker={linker}"));
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    rustc.args(flags.split('\u{1f}').filter(|f| !f.is_empty()));
    for arg in args {
        rustc.arg(format!("-Clink-arg={arg}"));
    }
    let Ok(mut child) = rustc
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"fn main() {}\n");
    }
    let linked = child.wait().is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&out);
    linked
}
