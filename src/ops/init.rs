//! `keys init`: scaffold a fleet repository and give it its first admin, creating
//! or importing that admin's identity. Idempotent: it never overwrites a file or an
//! identity, and a second run changes nothing.

use std::path::PathBuf;

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::identity::{self, Prompt, keyring};
use crate::layout::{self, Repo};
use crate::ops::gitignore;
use crate::recipient::Recipient;

/// Where a generated identity is kept.
pub enum Store {
    Keyring(keyring::Backend),
    /// The identity file, optionally encrypted with a passphrase.
    File {
        path: PathBuf,
        passphrase: Option<SecretString>,
    },
}

pub enum Source {
    Generate(Store),
    /// An existing private key file (age identity or SSH key); only its public key is recorded.
    Import(PathBuf),
}

pub struct Options {
    pub admin: String,
    pub source: Source,
    /// Remove the ignore-file lines that make git ignore what keys keeps, instead of
    /// refusing to scaffold under them.
    pub fix_gitignore: bool,
}

/// One thing `init` did or found already done.
pub enum Outcome {
    Created(String),
    Kept(String),
    IdentityStored(String),
    IdentityReused(String),
    IdentityImported(String),
    /// An ignore-file line removed: `FILE:LINE` and its pattern.
    Removed(String, String),
    Warning(String),
}

pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub admin_recipient: Option<String>,
}

impl Report {
    /// True when the run changed nothing.
    pub fn unchanged(&self) -> bool {
        self.outcomes
            .iter()
            .all(|s| matches!(s, Outcome::Kept(_) | Outcome::Warning(_)))
    }
}

const STARTER_POLICY: &str = "default.yaml";

pub fn run(repo: &Repo, opts: &Options, prompt: &dyn Prompt) -> Result<Report> {
    layout::check_name(&opts.admin).map_err(|reason| Error::InvalidName {
        at: Location::named("admin name"),
        name: opts.admin.clone(),
        reason,
    })?;
    let mut report = Report {
        outcomes: Vec::new(),
        admin_recipient: None,
    };
    // Before anything is made: a repository whose git ignores secrets/ (or any part of
    // what keys keeps) would never commit them, nor check the plaintext beside them.
    if repo.root().is_dir() {
        let lines = gitignore::ignored(repo.root())?.lines;
        if let Some(first) = lines.first()
            && !opts.fix_gitignore
        {
            return Err(Error::IgnoredByGit {
                at: gitignore::location(first),
                path: first.path.clone(),
                outside: std::path::Path::new(&first.source).is_absolute(),
            });
        }
        for l in gitignore::remove_lines(repo.root(), &lines)? {
            report.outcomes.push(Outcome::Removed(
                gitignore::location(&l).to_string(),
                l.pattern,
            ));
        }
    }
    let admin_file = repo.admin_file(&opts.admin);
    // An existing admin file means this admin was set up already: identities are left alone.
    let recipient = if admin_file.exists() {
        None
    } else {
        Some(admin_recipient(opts, prompt, &mut report)?)
    };

    for dir in [
        repo.admins_dir(),
        repo.hosts_dir(),
        repo.policies_dir(),
        repo.secrets_dir(),
    ] {
        let shown = format!("{}/", repo.rel(&dir));
        if dir.is_dir() {
            report.outcomes.push(Outcome::Kept(shown));
        } else {
            fsutil::create_dir_all(&dir, 0o755)?;
            report.outcomes.push(Outcome::Created(shown));
        }
    }

    match recipient {
        Some(r) => {
            let text = format!("# admin {}\n{r}\n", opts.admin);
            fsutil::write_new(&admin_file, text.as_bytes(), fsutil::PUBLIC)?;
            report
                .outcomes
                .push(Outcome::Created(repo.rel(&admin_file)));
            report.admin_recipient = Some(r.to_string());
        }
        None => report.outcomes.push(Outcome::Kept(repo.rel(&admin_file))),
    }

    let has_policy = std::fs::read_dir(repo.policies_dir())
        .map_err(|e| Error::io(repo.policies_dir(), e))?
        .filter_map(|e| e.ok())
        .any(|e| e.path().extension().is_some_and(|x| x == "yaml"));
    let policy = repo.policies_dir().join(STARTER_POLICY);
    if has_policy {
        report
            .outcomes
            .push(Outcome::Kept(format!("{}/", layout::POLICIES)));
    } else {
        fsutil::write_new(
            &policy,
            starter_policy(&opts.admin).as_bytes(),
            fsutil::PUBLIC,
        )?;
        report.outcomes.push(Outcome::Created(repo.rel(&policy)));
    }
    ignore_run_files(repo, &mut report)?;
    Ok(report)
}

/// Adds the run files to `.gitignore` (created if absent); lines already there are kept.
fn ignore_run_files(repo: &Repo, report: &mut Report) -> Result<()> {
    let path = repo.root().join(".gitignore");
    let existing = match fsutil::read_optional(&path)? {
        Some(data) => Some(String::from_utf8(data).map_err(|_| Error::InvalidFile {
            at: crate::error::Location::named(".gitignore"),
            reason: "not UTF-8 text".into(),
        })?),
        None => None,
    };
    let text = existing.clone().unwrap_or_default();
    // Anchored at the root, where keys keeps them.
    let lines = layout::RUN_FILES.map(|f| format!("/{f}"));
    let missing: Vec<&String> = lines
        .iter()
        .filter(|f| !text.lines().any(|l| l.trim() == f.as_str()))
        .collect();
    if missing.is_empty() {
        report.outcomes.push(Outcome::Kept(".gitignore".into()));
        return Ok(());
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    for f in missing {
        new.push_str(f);
        new.push('\n');
    }
    fsutil::write_atomic(&path, new.as_bytes(), fsutil::PUBLIC)?;
    report
        .outcomes
        .push(Outcome::Created(if existing.is_some() {
            let [a, b, c] = &lines;
            format!(".gitignore entries for {a}, {b} and {c}")
        } else {
            ".gitignore".into()
        }));
    Ok(())
}

fn starter_policy(admin: &str) -> String {
    format!(
        "# Who may read which secrets. Rules are tried in order; the first whose glob\n\
         # matches a secret's name decides its format and readers.\n\
         groups:\n  admins: [{admin}]\nrules: []\n"
    )
}

fn admin_recipient(opts: &Options, prompt: &dyn Prompt, report: &mut Report) -> Result<Recipient> {
    match &opts.source {
        Source::Import(path) => {
            let data = fsutil::read_private(path)?.data;
            let r = identity::public_of(&data, &path.display().to_string(), prompt)?;
            report.outcomes.push(Outcome::IdentityImported(format!(
                "{} ({})",
                path.display(),
                r.kind()
            )));
            Ok(r)
        }
        Source::Generate(Store::Keyring(backend)) => {
            let origin = format!("OS keyring ({})", backend.name());
            if let Some(existing) = keyring::load(*backend)? {
                let r = identity::public_of(existing.as_bytes(), &origin, prompt)?;
                report.outcomes.push(Outcome::IdentityReused(origin));
                return Ok(r);
            }
            let (secret, r) = crate::crypto::keygen::age_x25519("keys admin identity");
            keyring::store(*backend, &secret)?;
            report.outcomes.push(Outcome::IdentityStored(origin));
            if !backend.is_persistent() {
                report.outcomes.push(Outcome::Warning(format!(
                    "the {} keyring does not survive a reboot; add a second admin key before encrypting secrets",
                    backend.name()
                )));
            }
            Ok(r)
        }
        Source::Generate(Store::File { path, passphrase }) => {
            if path.exists() {
                let data = fsutil::read_private(path)?.data;
                let r = identity::public_of(&data, &path.display().to_string(), prompt)?;
                report
                    .outcomes
                    .push(Outcome::IdentityReused(path.display().to_string()));
                return Ok(r);
            }
            let (secret, r) = crate::crypto::keygen::age_x25519("keys admin identity");
            let data = match passphrase {
                Some(p) => Zeroizing::new(crate::crypto::age::encrypt_with_passphrase(
                    secret.as_bytes(),
                    SecretString::from(p.expose_secret().to_string()),
                    &Location::file(path),
                )?),
                None => Zeroizing::new(secret.as_bytes().to_vec()),
            };
            if let Some(dir) = path.parent() {
                fsutil::create_dir_all(dir, 0o700)?;
            }
            fsutil::write_new(path, &data, fsutil::PRIVATE)?;
            report
                .outcomes
                .push(Outcome::IdentityStored(path.display().to_string()));
            Ok(r)
        }
    }
}
