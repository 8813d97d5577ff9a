//! What `keys update` sends a host: the check, without any private key, that the
//! host can decrypt every secret it will be sent, and the flake files that go with
//! them. The commands that send them are in `remote`.

use crate::error::{Error, Result};
use crate::format::Format;
use crate::layout::Repo;
use crate::ops::check;
use crate::policy::fleet::{Fleet, Host};
use crate::policy::{Policy, Reader};
use crate::recipient::Recipient;

/// A secret the host (or one of its containers) must decrypt, and the key it uses.
pub struct Needed {
    pub name: String,
    pub file: String,
    pub key: Recipient,
}

/// Checks, without any private key, that the host can decrypt every secret its
/// policy gives it or its containers: each secret is up to date in `keys.lock`, and
/// its file names the key (an `.age` file's ssh-ed25519 stanza, a sops file's
/// derived `age1…` recipient). Returns those secrets.
pub fn readable(repo: &Repo, policy: &Policy, fleet: &Fleet, host: &Host) -> Result<Vec<Needed>> {
    let report = check::secrets(repo)?;
    let mut needed = Vec::new();
    let mut problems = Vec::new();
    for secret in &report.secrets {
        let Some((_, rule)) = policy.rule_for(&secret.name) else {
            continue;
        };
        let mut keys: Vec<(&str, &Recipient)> = Vec::new();
        for reader in &rule.readers {
            match reader {
                Reader::Host(h) if *h == host.name => keys.push((&host.name, &host.key)),
                Reader::Container(c) => {
                    if let Some((h, container)) = fleet.container(c)?
                        && h.name == host.name
                    {
                        keys.push((&container.name, container.key(host)));
                    }
                }
                _ => {}
            }
        }
        if keys.is_empty() {
            continue;
        }
        let Some(file) = &secret.path else {
            problems.push(format!("{} (missing)", secret.name));
            continue;
        };
        if secret.status != check::Status::Ok {
            problems.push(format!("{file} ({})", secret.status.name()));
            continue;
        }
        let data = crate::fsutil::read(&repo.root().join(file))?;
        for (who, key) in keys {
            if !names_key(rule.format, &data, key) {
                problems.push(format!("{file} (not encrypted to {who}'s key)"));
            }
            needed.push(Needed {
                name: secret.name.clone(),
                file: file.clone(),
                key: key.clone(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(Error::Undeployable {
            host: host.name.clone(),
            problems,
        });
    }
    needed.dedup_by(|a, b| a.file == b.file && a.key.fingerprint() == b.key.fingerprint());
    Ok(needed)
}

/// Whether the file's header or metadata names the key as a recipient.
fn names_key(format: Format, data: &[u8], key: &Recipient) -> bool {
    match format {
        Format::Age => match (key.ssh_tag(), crate::format::age::ssh_tags(data)) {
            (Some(tag), Ok(tags)) => tags.contains(&tag),
            _ => false,
        },
        sops => match (
            key.to_x25519(),
            crate::format::sops::check_structure(sops, data),
        ) {
            (Some(age), Ok(recipients)) => recipients.contains(&age),
            _ => false,
        },
    }
}

/// The flake files `update` sends, relative to the repository root: `flake.nix`,
/// `flake.lock`, every `*.nix` at the root, `modules/`, and the given secrets.
pub fn flake_files(repo: &Repo, secrets: &[Needed]) -> Result<Vec<String>> {
    let root = repo.root();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if kind.is_file() && (name.ends_with(".nix") || name == "flake.lock") {
            files.push(name);
        } else if kind.is_dir() && name == "modules" {
            files.push(format!("{name}/"));
        }
    }
    if !files.iter().any(|f| f == "flake.nix") {
        return Err(Error::NoFlake {
            dir: root.to_path_buf(),
        });
    }
    files.extend(secrets.iter().map(|s| s.file.clone()));
    files.sort();
    files.dedup();
    Ok(files)
}
