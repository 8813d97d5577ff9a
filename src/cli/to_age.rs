//! `keys to-age`: what ssh-to-age does. Public keys (authorized_keys, known_hosts,
//! ssh-keyscan lines) become `age1…` recipients; with `--private`, an ed25519 private
//! key becomes its `AGE-SECRET-KEY-1…` identity.

use std::io::Read;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::identity::{self, Parsed};
use crate::recipient::Recipient;

use super::{shared, ui};

/// Convert SSH ed25519 keys to age recipients (or, with --private, identities).
///
/// Reads FILE, or standard input when FILE is absent or "-". In public mode every
/// ssh-ed25519 line gives one age1… line, in order; other key types are skipped with
/// a note on stderr, and finding no ed25519 key at all is an error. age1… recipients
/// pass through unchanged, so a mixed recipients file converts as a whole.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Convert a private key (plain or passphrase-protected OpenSSH ed25519).
    #[arg(long)]
    private: bool,

    /// Write to this file (mode 0600 with --private, 0644 otherwise) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// The key file to read.
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let output = args.output.as_deref().filter(|p| p.as_os_str() != "-");
    if let Some(path) = output {
        shared::refuse_special_output(path)?;
    }
    let (name, data) = read_input(args.input.as_ref())?;
    let (text, mode) = if args.private {
        (private(ctx.prompt(), &data, &name)?, fsutil::PRIVATE)
    } else {
        (Zeroizing::new(public(&data, &name)?), fsutil::PUBLIC)
    };
    match output {
        Some(path) => fsutil::write_atomic(path, text.as_bytes(), mode),
        None => ui::out(&text),
    }
}

/// Key files are small; a larger input on stdin is refused.
const MAX_STDIN: usize = 1 << 20;

fn read_input(input: Option<&PathBuf>) -> Result<(String, Zeroizing<Vec<u8>>)> {
    match input {
        Some(path) if path.as_os_str() != "-" => {
            // A regular file of at most 1 MiB, read into one buffer sized from it.
            Ok((path.display().to_string(), fsutil::read_private(path)?.data))
        }
        _ => {
            // Room for the whole input up front: a growing buffer would leave copies
            // of a private key behind in freed memory.
            let mut data = Zeroizing::new(Vec::with_capacity(MAX_STDIN + 1));
            std::io::stdin()
                .take(MAX_STDIN as u64 + 1)
                .read_to_end(&mut data)
                .map_err(|e| Error::io("<stdin>", e))?;
            if data.len() > MAX_STDIN {
                return Err(Error::InvalidKey {
                    at: Location::named("<stdin>"),
                    reason: format!("more than {} KiB: not a key file", MAX_STDIN / 1024),
                });
            }
            Ok(("<stdin>".to_string(), data))
        }
    }
}

fn public(data: &[u8], name: &str) -> Result<String> {
    let text = std::str::from_utf8(data).map_err(|_| Error::InvalidKey {
        at: Location::named(name),
        reason: "not a public key file (binary data)".into(),
    })?;
    let mut out = String::new();
    let mut skipped: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches('\u{feff}').trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = Location::named(name).at_line(n as u64 + 1);
        match Recipient::parse_line(trimmed, &at) {
            Ok(r @ (Recipient::SshEd25519(_) | Recipient::X25519(_))) => {
                out.push_str(&r.to_x25519().unwrap_or_default());
                out.push('\n');
            }
            Ok(other) => skip(&at, other.kind(), &mut skipped),
            Err(Error::UnsupportedKey { key_type, .. }) => skip(&at, &key_type, &mut skipped),
            Err(e) => return Err(e),
        }
    }
    if out.is_empty() {
        let at = Location::named(name);
        return Err(if skipped.is_empty() {
            Error::InvalidKey {
                at,
                reason: "no public key in this input".into(),
            }
        } else {
            skipped.dedup();
            Error::UnsupportedKey {
                at,
                key_type: skipped.join(", "),
                purpose: Some("for conversion to age (only ssh-ed25519 converts)"),
            }
        });
    }
    Ok(out)
}

fn skip(at: &Location, key_type: &str, skipped: &mut Vec<String>) {
    ui::note(&format!(
        "{at}: skipped {key_type} key (only ssh-ed25519 converts to age)"
    ));
    skipped.push(key_type.to_string());
}

fn private(prompt: &dyn identity::Prompt, data: &[u8], name: &str) -> Result<Zeroizing<String>> {
    let at = Location::named(name);
    let key = match Parsed::parse(data, name)? {
        Parsed::Ssh(key) => key,
        Parsed::EncryptedSsh(text) => {
            identity::unlock_ssh(&text, &identity::ask(prompt, name)?, name)?
        }
        Parsed::Age(_) | Parsed::EncryptedAgeFile => {
            return Err(Error::InvalidKey {
                at,
                reason: "already an age identity, not an SSH private key".into(),
            });
        }
    };
    let id = key.age_identity()?;
    Ok(Zeroizing::new(format!("{}\n", id.as_str())))
}
