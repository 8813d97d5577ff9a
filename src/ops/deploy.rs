//! What `keys update` sends a host: the check, without any private key, that the
//! host can decrypt every secret it will be sent, and the files git tracks in the
//! flake that go with them. The commands that send them are in `remote`.

use crate::error::{Error, FlakeProblem, Result};
use crate::format::Format;
use crate::layout::{self, Repo};
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

/// The flake's own files, which must be at the repository root.
pub const FLAKE: &str = "flake.nix";
pub const FLAKE_LOCK: &str = "flake.lock";

/// Checks the flake a host is installed or updated from: `flake.nix` and `flake.lock`
/// at the repository root and, in a git work tree, both tracked (nix reads only what
/// git tracks). Returns the files git tracks there, or None outside a git work tree.
pub fn check_flake(repo: &Repo) -> Result<Option<Vec<String>>> {
    let root = repo.root();
    for name in [FLAKE, FLAKE_LOCK] {
        let path = root.join(name);
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(Error::FlakeFile {
                path,
                problem: FlakeProblem::Missing,
            });
        }
    }
    let tracked = crate::git::tracked_files(root)?;
    if let Some(tracked) = &tracked {
        for name in [FLAKE, FLAKE_LOCK] {
            if tracked.binary_search_by(|t| t.as_str().cmp(name)).is_err() {
                return Err(Error::FlakeFile {
                    path: root.join(name),
                    problem: FlakeProblem::Untracked,
                });
            }
        }
    }
    Ok(tracked)
}

/// What `update` sends, relative to the repository root: every file git tracks in
/// the flake except those under `secrets/`, and of `secrets/` only the files of the
/// secrets the host reads (`secrets`). A tracked file deleted from the work tree is
/// not sent, as nix would not see it.
pub fn flake_files(repo: &Repo, secrets: &[Needed]) -> Result<Vec<String>> {
    let Some(tracked) = check_flake(repo)? else {
        return Err(Error::FlakeFile {
            path: repo.root().to_path_buf(),
            problem: FlakeProblem::NotInGit,
        });
    };
    let secrets_dir = format!("{}/", layout::SECRETS);
    let mut files: Vec<String> = tracked
        .into_iter()
        .filter(|f| !f.starts_with(&secrets_dir))
        .filter(|f| std::fs::symlink_metadata(repo.root().join(f)).is_ok())
        .collect();
    files.extend(secrets.iter().map(|s| s.file.clone()));
    files.sort();
    files.dedup();
    Ok(files)
}

/// What was sent, in a few words: each file at the root, each directory with the
/// number of files in it, and the secrets.
pub fn summary(files: &[String]) -> String {
    let secrets_dir = format!("{}/", layout::SECRETS);
    let mut parts: Vec<(String, usize)> = Vec::new();
    let mut secrets = 0;
    for f in files {
        if f.starts_with(&secrets_dir) {
            secrets += 1;
            continue;
        }
        let top = match f.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => f.clone(),
        };
        match parts.iter_mut().find(|(p, _)| *p == top) {
            Some((_, n)) => *n += 1,
            None => parts.push((top, 1)),
        }
    }
    let mut words: Vec<String> = parts
        .into_iter()
        .map(|(p, n)| match p.ends_with('/') {
            true => format!("{p} ({n})"),
            false => p,
        })
        .collect();
    if secrets > 0 {
        words.push(format!(
            "{secrets} secret{}",
            if secrets == 1 { "" } else { "s" }
        ));
    }
    words.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_directories_and_secrets() {
        let files: Vec<String> = [
            "containers/a.nix",
            "containers/b/c.nix",
            "flake.lock",
            "flake.nix",
            "keys.nix",
            "modules/x.nix",
            "secrets/srv/a.age",
            "secrets/srv/b.yaml",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            summary(&files),
            "containers/ (2), flake.lock, flake.nix, keys.nix, modules/ (1), 2 secrets"
        );
        assert_eq!(summary(&files[2..3]), "flake.lock");
    }
}
