//! `keys deploy-key add|rotate|rm`: SSH keys a CI deploys with, each allowed to run
//! one command on one host and nothing else. The public key is recorded in the host
//! file, from which `keys.nix` authorizes it; the private key is the admins' secret
//! `deploy/NAME`, from which the CI's copy is decrypted.

use crate::crypto::keygen;
use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::layout::{self, Repo};
use crate::ops::host::{self, AdminsRule, Effect, Report, name_error};
use crate::ops::secret::{self, EncryptOptions};
use crate::ops::workspace::{Hosts, Workspace};
use crate::policy::fleet::{self, DeployKey, Host};
use crate::policy::host_file;

/// The policy file `keys` writes for deploy keys; it sorts first so its rule wins
/// over broader globs.
pub const DEPLOY_POLICY: &str = "policies/00-deploy-keys.yaml";

const DEPLOY_KEYS: AdminsRule = AdminsRule {
    file: DEPLOY_POLICY,
    glob: "deploy/*",
    text: "\
# Deploy keys (`keys deploy-key add`). The private keys are read by the admins only:
# an admin decrypts one (`keys decrypt deploy/NAME`) to give it to the CI that
# deploys with it; no host reads them. This file sorts first so its rule wins over
# broader globs in the other policy files.
rules:
  - secrets: \"deploy/*\"
    format: age
    readers: [admins]
",
};

pub struct DeployKeySpec {
    pub name: String,
    pub host: String,
    /// The user it logs in as [default: root].
    pub user: Option<String>,
    /// What it runs [default: pull the flake and switch to it].
    pub command: Option<String>,
}

/// What a deploy key command did: the files it changed, and the key's record as it
/// is now (or was, once removed) with its host.
pub struct Changed {
    pub report: Report,
    pub host: String,
    pub key: DeployKey,
}

/// The command a deploy key runs unless told otherwise: pull the repository in the
/// host's flake directory and switch to the host's configuration.
pub fn default_command(host: &Host, user: &str) -> String {
    let sudo = if user == "root" { "" } else { "sudo " };
    format!(
        "cd {} && git pull --ff-only && {sudo}nixos-rebuild switch --flake {}",
        shell_word(&host.flake_dir),
        shell_word(&format!(".#{}", host.flake_attr))
    )
}

/// `word` as one word for sh: as it is when it holds nothing sh reads specially,
/// else in single quotes.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+=,#-".contains(c))
        && !word.starts_with('#')
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Adds a deploy key to a host: a new ed25519 key pair, the public key and what it
/// may run recorded in the host's file (its comments kept), the private key stored
/// as secret `deploy/NAME` for the admins (and `policies/00-deploy-keys.yaml`
/// created when no rule gives it to exactly the admins). Everything is checked
/// before the first file is written; the secret, `keys.lock` and the host file are
/// written as one batch.
pub fn add(repo: &Repo, spec: DeployKeySpec) -> Result<Changed> {
    layout::check_name(&spec.name).map_err(name_error("deploy key name", &spec.name))?;
    layout::check_name(&spec.host).map_err(name_error("host name", &spec.host))?;
    let user = spec.user.unwrap_or_else(|| "root".to_string());
    host_file::unix_user(&user).map_err(|why| Error::InvalidArgument {
        arg: "--user",
        reason: format!("{user:?} {why}"),
    })?;
    if let Some(command) = &spec.command {
        host_file::forced_command(command).map_err(|why| Error::InvalidArgument {
            arg: "--command",
            reason: why.to_string(),
        })?;
    }
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    if !ws.fleet.has_host(&spec.host) {
        return Err(fleet::no_host(&spec.host));
    }
    if let Some((other, _)) = ws.fleet.deploy_key(&spec.name)? {
        return Err(Error::DeployKeyExists {
            name: spec.name.clone(),
            host: other.name.clone(),
            file: format!("{}/{}.yaml", layout::HOSTS, other.name),
        });
    }
    let host = ws.fleet.require_host(&spec.host)?;
    let file = repo.host_file(&spec.host);
    let rel = repo.rel(&file);
    let command = match spec.command {
        Some(command) => command,
        None => {
            let command = default_command(host, &user);
            host_file::forced_command(&command).map_err(|why| Error::InvalidFile {
                at: Location::named(&rel),
                reason: format!(
                    "the default deploy command, made from flake_dir and flake_attr, {why}; give --command"
                ),
            })?;
            command
        }
    };
    let count = host.deploy_keys.len();
    let secret_name = layout::deploy_key_secret(&spec.name);
    if let Ok((path, _)) = ws.locate(&secret_name) {
        return Err(Error::Exists { path });
    }
    let (public, private) = keygen::ssh_ed25519(&secret_name)?;
    let record = DeployKey {
        name: spec.name.clone(),
        key: public,
        user,
        command,
    };
    let old = host_file::read(&file, &rel)?;
    let text = host_file::insert_deploy_key(&old, &rel, &spec.name, &record)?;
    read_back(
        &spec.host,
        &text,
        &rel,
        &spec.name,
        count + 1,
        Some(&record),
    )?;
    let report = store(
        &mut ws,
        secret_name,
        private.as_bytes(),
        &file,
        &text,
        false,
    )?;
    Ok(Changed {
        report,
        host: spec.host,
        key: record,
    })
}

/// Writes the private key as secret `secret_name` for the admins (its rule file made
/// first when missing) and the host file's new `text` beside it, as one batch.
fn store(
    ws: &mut Workspace,
    secret_name: String,
    private: &[u8],
    file: &std::path::Path,
    text: &str,
    replace: bool,
) -> Result<Report> {
    let plan = host::plan_admins_secret(ws, &secret_name, &DEPLOY_KEYS)?;
    let mut report = Report::default();
    host::create_rule_file(ws, &plan, &mut report)?;
    let opts = EncryptOptions {
        force: replace,
        allow_empty: false,
    };
    let beside = [(file, text.as_bytes())];
    let done = secret::encrypt_with(ws, &secret_name, private, &opts, None, &beside)?;
    let repo = &ws.repo;
    report.effects.push(Effect::KeyStored {
        path: repo.rel(&done.path),
        secret: secret_name,
        recipients: done.recipients,
    });
    report.effects.push(Effect::Updated(repo.rel(file)));
    Ok(report)
}

/// Gives deploy key `name` a new key pair: the host file records the new public key
/// and secret `deploy/NAME` holds the new private key, written as one batch. The
/// user and the command stay as they are.
pub fn rotate(repo: &Repo, name: &str) -> Result<Changed> {
    layout::check_name(name).map_err(name_error("deploy key name", name))?;
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    let (host, old) = ws
        .fleet
        .deploy_key(name)?
        .ok_or_else(|| Error::NoDeployKey {
            name: name.to_string(),
        })?;
    let host_name = host.name.clone();
    let count = host.deploy_keys.len();
    let file = repo.host_file(&host_name);
    let rel = repo.rel(&file);
    let secret_name = layout::deploy_key_secret(name);
    let (public, private) = keygen::ssh_ed25519(&secret_name)?;
    let record = DeployKey {
        name: name.to_string(),
        key: public,
        user: old.user.clone(),
        command: old.command.clone(),
    };
    let text = host_file::read(&file, &rel)?;
    let text = host_file::replace_deploy_key(&text, &rel, name, &record.key)?;
    read_back(&host_name, &text, &rel, name, count, Some(&record))?;
    let report = store(&mut ws, secret_name, private.as_bytes(), &file, &text, true)?;
    Ok(Changed {
        report,
        host: host_name,
        key: record,
    })
}

/// Removes deploy key `name`: its entry in the host file and secret `deploy/NAME`
/// with its `keys.lock` line, as one change.
pub fn remove(repo: &Repo, name: &str) -> Result<Changed> {
    layout::check_name(name).map_err(name_error("deploy key name", name))?;
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    let (host, old) = ws
        .fleet
        .deploy_key(name)?
        .ok_or_else(|| Error::NoDeployKey {
            name: name.to_string(),
        })?;
    let host_name = host.name.clone();
    let count = host.deploy_keys.len();
    let record = DeployKey {
        name: old.name.clone(),
        key: old.key.clone(),
        user: old.user.clone(),
        command: old.command.clone(),
    };
    let file = repo.host_file(&host_name);
    let rel = repo.rel(&file);
    let text = host_file::read(&file, &rel)?;
    let text = host_file::remove_deploy_key(&text, &rel, name)?;
    read_back(&host_name, &text, &rel, name, count - 1, None)?;
    let secret_name = layout::deploy_key_secret(name);
    let mut effects = Vec::new();
    let stored = ws.locate(&secret_name).is_ok() || ws.lockfile()?.contains(&secret_name);
    if stored {
        let beside = [(file.as_path(), text.as_bytes())];
        let done = secret::remove_with(&mut ws, &secret_name, &beside)?;
        if let Some(p) = done.path {
            effects.push(Effect::Removed(repo.rel(&p)));
        }
        if done.in_lock {
            effects.push(Effect::Updated(layout::LOCKFILE.to_string()));
        }
    } else {
        fsutil::write_atomic(&file, text.as_bytes(), fsutil::PUBLIC)?;
    }
    effects.push(Effect::Updated(rel));
    Ok(Changed {
        report: Report { effects, key: None },
        host: host_name,
        key: record,
    })
}

/// Checks that an edited host file reads back with `count` deploy keys, and with
/// `name` recorded as `want` (or gone when `want` is `None`).
fn read_back(
    host: &str,
    text: &str,
    rel: &str,
    name: &str,
    count: usize,
    want: Option<&DeployKey>,
) -> Result<()> {
    let parsed = host_file::parse_host(host, text, rel)?;
    let found = parsed.deploy_keys.iter().find(|d| d.name == name);
    let same = match (found, want) {
        (Some(f), Some(w)) => {
            f.key.fingerprint() == w.key.fingerprint() && f.user == w.user && f.command == w.command
        }
        (None, None) => true,
        _ => false,
    };
    if same && parsed.deploy_keys.len() == count {
        Ok(())
    } else {
        Err(Error::InvalidFile {
            at: Location::named(rel),
            reason: format!("cannot edit deploy key {name} in this file's layout"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_sh_would_read_them_otherwise() {
        let cases = [
            ("/etc/nixos", "/etc/nixos"),
            (".#vps-arm", ".#vps-arm"),
            ("/srv/my flake", "'/srv/my flake'"),
            (".#it's", "'.#it'\\''s'"),
            ("/a$b", "'/a$b'"),
            ("#x", "'#x'"),
            ("", "''"),
        ];
        for (word, want) in cases {
            assert_eq!(shell_word(word), want, "{word}");
        }
    }
}
