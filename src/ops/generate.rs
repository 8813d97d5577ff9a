//! `keys generate`: values made here, as a secret's policy rule says (`generate:`),
//! from the operating system's random source into zeroized memory and straight into
//! the encrypted file, through the same write as `keys encrypt`. A key pair's public
//! half is written in clear beside its secret; a hashed password's clear passphrase
//! is kept as a secret of its own, for the admins.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::keygen;
use crate::error::{Error, Result};
use crate::layout;
use crate::policy::{CLEAR_SUFFIX, Generator, Policy};

use super::secret::{self, EncryptOptions};
use super::workspace::{self, Workspace};

/// What `generate` did for one secret.
pub enum Outcome {
    /// A new value was written.
    Made(Made),
    /// The secret exists and `force` was not given: nothing changed.
    Exists,
}

pub struct Made {
    pub path: PathBuf,
    pub kind: &'static str,
    pub recipients: usize,
    pub replaced: bool,
    /// The public half written beside it (a key kind).
    pub public: Option<PathBuf>,
    /// The clear passphrase's secret (a hashed password) and its file.
    pub clear: Option<(String, PathBuf)>,
}

/// The file (relative to the repository) holding the public half of a generated
/// key pair kept as secret `name`.
pub fn public_half(name: &str) -> String {
    format!("{}/{name}.pub", layout::SECRETS)
}

/// Whether `text` (a public half file's content) is one public key of the kind
/// `generator` makes: an ssh-ed25519 key line, an `age1…` recipient, or a WireGuard
/// key (32 bytes in base64).
pub fn is_public_half(generator: Generator, text: &[u8]) -> bool {
    use crate::recipient::Recipient;
    let Some(line) = std::str::from_utf8(text)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.contains('\n'))
    else {
        return false;
    };
    let at = crate::error::Location::named("public half");
    match generator {
        Generator::SshEd25519 => matches!(
            Recipient::parse_line(line, &at),
            Ok(Recipient::SshEd25519(_))
        ),
        Generator::Age => matches!(Recipient::parse_line(line, &at), Ok(Recipient::X25519(_))),
        Generator::WireGuard => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(line)
                .is_ok_and(|k| k.len() == 32)
        }
        _ => false,
    }
}

/// The name of the secret holding the clear passphrase of hashed password `name`.
pub fn clear_name(name: &str) -> String {
    format!("{name}{CLEAR_SUFFIX}")
}

/// The generator that makes secret `name`'s value, or why there is none.
pub fn generator(ws: &Workspace, name: &str) -> Result<Generator> {
    let rule = ws.rule(name)?;
    rule.generate.ok_or_else(|| Error::NoGenerator {
        name: name.to_string(),
        rule: rule.at.clone(),
        clear_of: rule
            .clear
            .then(|| name.strip_suffix(CLEAR_SUFFIX).map(str::to_string))
            .flatten(),
    })
}

/// What `--all` stands for: each name a rule with `generate:` gives in full (a glob
/// without wildcards, or a `{host}` rule's glob for each host), and each existing
/// secret whose rule has `generate:`, in name order.
pub fn all_names(ws: &Workspace) -> Result<Vec<String>> {
    let mut names: Vec<String> = literal_names(&ws.policy);
    for (name, _, _) in workspace::secret_files(&ws.repo)? {
        if ws
            .policy
            .rule_for(&name)
            .is_some_and(|(_, r)| r.generate.is_some())
        {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn literal_names(policy: &Policy) -> Vec<String> {
    policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.generate.is_some())
        .filter(|(_, r)| !r.glob.contains(['*', '?', '[', '{', '\\']))
        // The first rule that matches decides: an earlier one may take the name.
        .filter(|(i, r)| policy.rule_for(&r.glob).is_some_and(|(j, _)| j == *i))
        .map(|(_, r)| r.glob.clone())
        .collect()
}

/// Makes a new value for secret `name` with its rule's generator, unless it exists
/// and `force` is not given. A hashed password's clear passphrase is written first,
/// so that no hash is ever kept without it.
pub fn generate(ws: &mut Workspace, name: &str, force: bool) -> Result<Outcome> {
    let generator = generator(ws, name)?;
    let exists = ws.locate(name).is_ok();
    if exists && !force {
        return Ok(Outcome::Exists);
    }
    let opts = EncryptOptions {
        force: true,
        allow_empty: false,
    };
    let (value, public): (Zeroizing<String>, Option<String>) = match generator {
        Generator::Alnum { length } => (keygen::alnum(length)?, None),
        Generator::Hex { bytes } => (keygen::hex(bytes)?, None),
        Generator::Base64 { bytes } => (keygen::base64(bytes)?, None),
        Generator::Passphrase { words } => (keygen::passphrase(words)?, None),
        Generator::SshEd25519 => {
            let (public, private) = keygen::ssh_ed25519(name)?;
            (private, Some(crate::policy::host_file::key_line(&public)))
        }
        Generator::WireGuard => {
            let (private, public) = keygen::wireguard()?;
            (private, Some(public))
        }
        Generator::Age => {
            let (identity, public) = keygen::age_x25519(name);
            (identity, Some(public.to_string()))
        }
        Generator::HashedPassword => {
            let clear = keygen::passphrase(6)?;
            let hash = keygen::sha512_crypt(clear.as_bytes())?;
            let companion = clear_name(name);
            let rule = ws.rule(&companion)?;
            if !rule.clear {
                return Err(Error::InvalidFile {
                    at: rule.at.clone(),
                    reason: format!(
                        "this rule decides {companion}, the clear passphrase of {name}, which only the admins may read: let it match neither name"
                    ),
                });
            }
            let written = secret::encrypt(ws, &companion, clear.as_bytes(), &opts, None)?;
            let made = write(ws, name, Zeroizing::new(hash), None, generator, exists)?;
            return Ok(Outcome::Made(Made {
                clear: Some((companion, written.path)),
                ..made
            }));
        }
    };
    Ok(Outcome::Made(write(
        ws, name, value, public, generator, exists,
    )?))
}

fn write(
    ws: &mut Workspace,
    name: &str,
    value: Zeroizing<String>,
    public: Option<String>,
    generator: Generator,
    replaced: bool,
) -> Result<Made> {
    let public_file = public
        .as_ref()
        .map(|_| ws.repo.root().join(public_half(name)));
    let line = public.map(|p| format!("{p}\n"));
    let beside: Vec<(&Path, &[u8])> = public_file
        .iter()
        .zip(&line)
        .map(|(p, l)| (p.as_path(), l.as_bytes()))
        .collect();
    let opts = EncryptOptions {
        force: true,
        allow_empty: false,
    };
    let written = secret::encrypt_with(ws, name, value.as_bytes(), &opts, None, &beside)?;
    Ok(Made {
        path: written.path,
        kind: generator.kind(),
        recipients: written.recipients,
        replaced,
        public: public_file,
        clear: None,
    })
}
