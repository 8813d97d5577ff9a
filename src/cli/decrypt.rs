//! `keys decrypt`: open a secret by name, or any age or sops file by path; one value
//! of a sops document (`--extract`); and the plaintext git's diff shows
//! (`--textconv`).

use std::path::{Path, PathBuf};

use age::secrecy::SecretString;

use crate::crypto::sops::Mac;
use crate::error::{Error, Result, usage};
use crate::format::Format;
use crate::format::sops::document::{self, PathSegment};
use crate::fsutil;
use crate::identity::Prompt;
use crate::ops::secret;

use super::{prompt::CliPrompt, shared, ui};

/// Decrypt a secret (by name) or an age file (by path) to stdout or a new 0600 file.
///
/// TARGET is a path to an age file (binary or armored) when such a file exists, else
/// a secret name in the fleet repository (bot/telegram-token). Identities are searched
/// in order: -i FILE (repeatable), $KEYS_IDENTITY, the OS keyring,
/// ~/.config/keys/identity.txt, ~/.ssh/id_ed25519. An SSH key opens both ssh-ed25519
/// stanzas (agenix) and X25519 stanzas for its converted recipient (sops-nix).
/// A sops file whose data key an OpenBao transit key also wraps (hc_vault) opens
/// through OpenBao when no identity does: its server must be the one BAO_ADDR (or
/// VAULT_ADDR) names, and the token is BAO_TOKEN, VAULT_TOKEN or ~/.vault-token.
/// Nothing is written unless the whole file decrypts and authenticates.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A secret name, or the path of an age or sops file.
    #[arg(value_name = "TARGET", add = super::complete::secret_names())]
    target: String,

    /// Write the plaintext to this file (mode 0600) instead of stdout; `-` is stdout.
    /// An existing FILE is replaced only if it is a regular file (never a symlink, a
    /// device such as /dev/null or /dev/stdout, or a FIFO).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Print only the value at PATH of a sops YAML, JSON, INI or dotenv secret, as
    /// `sops decrypt --extract` does: PATH is written as sops writes it,
    /// '["db"]["password"]' or '["hosts"][0]' (a list's comment lines count, as in
    /// sops). A string is printed as it is, with no line break added; a map as a
    /// document of the secret's format; a list, number or boolean as that format
    /// writes one. An empty PATH is the whole document.
    #[arg(long, value_name = "PATH")]
    extract: Option<String>,

    /// Do not check a sops file's MAC. Each value is still authenticated, but values
    /// added, removed or reordered outside sops and keys go unnoticed. For reading
    /// a damaged file only.
    #[arg(long)]
    ignore_mac: bool,

    /// Print the plaintext for git's diff (`keys hook install --diff` sets git's
    /// diff.keys.textconv to run this): TARGET is a file git wrote, an age or sops
    /// file. A file that cannot be decrypted here prints one line saying so, with the
    /// start of its SHA-256, and exits 0 so the diff goes on; no passphrase is asked
    /// for on the terminal.
    #[arg(long, conflicts_with_all = ["output", "extract", "ignore_mac"])]
    textconv: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    if args.textconv {
        return textconv(ctx, Path::new(&args.target));
    }
    let extract = args.extract.as_deref().map(extract_path).transpose()?;
    let output = args.output.as_deref().filter(|p| *p != Path::new("-"));
    if let Some(path) = output {
        shared::refuse_special_output(path)?;
        // Plaintext that a killed `decrypt -o` left beside its target is wiped first.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        for (left, pid) in fsutil::sweep_plain(dir) {
            ui::note_leftover(&left, pid);
        }
    }
    let mac = if args.ignore_mac {
        Mac::Ignore
    } else {
        Mac::Check
    };
    let accept = |format: Format| match (&extract, format) {
        (Some(_), Format::Age | Format::SopsBinary) => Err(usage(
            format!(
                "--extract: {} is {}, one value with no keys in it",
                args.target,
                if format == Format::Age {
                    "an age file"
                } else {
                    "a sops binary file"
                }
            ),
            "leave out --extract: `keys decrypt` prints it whole (--extract reads sops YAML, JSON, INI and dotenv secrets)",
        )),
        _ => Ok(()),
    };
    let target = shared::open_target(ctx, &args.target, mac, &accept)?;
    if args.ignore_mac {
        ui::warn(
            "--ignore-mac: the sops MAC was not checked; values added, removed or reordered outside sops or keys would go unnoticed",
        );
    }
    let extracted;
    let plain = match &extract {
        Some(path) => {
            extracted = secret::extract(&target.opened, target.layout, path, &target.at)?;
            &extracted
        }
        None => &target.opened.plain,
    };
    match output {
        Some(path) => fsutil::write_plaintext(path, plain),
        None => ui::out_bytes(plain),
    }
}

/// An `--extract` path, read as sops reads it.
fn extract_path(text: &str) -> Result<Vec<PathSegment>> {
    document::parse_tree_path(text).map_err(|reason| {
        // A dotted path (as `keys set` takes) is shown the way sops writes it.
        let example = document::parse_path(text)
            .filter(|_| !text.contains('['))
            .map_or_else(
                || "'[\"db\"][\"password\"]'".to_string(),
                |p| format!("'{}'", document::tree_path_text(&p)),
            );
        usage(
            format!("--extract '{text}': {reason}"),
            format!(
                "write the path as sops does, a [\"key\"] for each map key and [N] for a list item: {example}"
            ),
        )
    })
}

/// git's textconv: the plaintext of the file git names, or one line saying why it
/// is not shown. Always succeeds, so that `git diff` and `git log -p` go on.
fn textconv(ctx: &super::Context, file: &Path) -> Result<()> {
    let data = match fsutil::read(file) {
        Ok(data) => data,
        Err(e) => return ui::out(&format!("{}\n", placeholder(&e, None))),
    };
    let mut ids = match ctx.identities() {
        Ok(ids) => ids,
        Err(e) => {
            let why = format!("no identity here opens it ({})", one_line(&e));
            return ui::out(&format!("{}\n", line(&why, Some(&data))));
        }
    };
    let opened = secret::open_any(file, &mut ids, &NoTerminal(ctx.prompt()), Mac::Check);
    match opened {
        Ok(plain) => ui::out_bytes(&plain),
        Err(e) => ui::out(&format!("{}\n", placeholder(&e, Some(&data)))),
    }
}

/// The line git's diff shows for a file keys cannot decrypt here: why, and the
/// start of the file's SHA-256, so that a changed file still shows as changed.
fn placeholder(e: &Error, data: Option<&[u8]>) -> String {
    let why = match e {
        Error::NoIdentity { .. } | Error::TooFewGroups { .. } => "no identity here opens it",
        Error::NoPassphrase { .. } | Error::WrongPassphrase { .. } => {
            "its identity needs a passphrase (set KEYS_PASSPHRASE_FILE)"
        }
        Error::Io { .. } => "it cannot be read",
        Error::MacMismatch { .. } => "its sops MAC does not match",
        _ => "it does not decrypt (`keys decrypt` on it says why)",
    };
    line(why, data)
}

fn line(why: &str, data: Option<&[u8]>) -> String {
    match data {
        Some(data) => {
            let hash = crate::format::lockfile::sha256_hex(data);
            format!("[keys: not decrypted: {why}; sha256 {}…]", &hash[..16])
        }
        None => format!("[keys: not decrypted: {why}]"),
    }
}

/// An identity search's error, on one line.
fn one_line(e: &Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Passphrases for git's textconv: from a file or descriptor when one is given, and
/// never from the terminal, which git's pager is reading.
struct NoTerminal<'a>(&'a CliPrompt);

impl Prompt for NoTerminal<'_> {
    fn passphrase(&self, description: &str) -> Result<Option<SecretString>> {
        if self.0.asks_terminal() {
            return Ok(None);
        }
        self.0.passphrase(description)
    }
}
