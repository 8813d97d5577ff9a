//! `keys import agenix`: an agenix repository (`secrets.nix` and its `.age` files)
//! made a keys repository in place. The admins and hosts come from the recipients,
//! named after the `let` bindings of `secrets.nix` where they can be read; one policy
//! rule per distinct reader set; every `.age` file recorded in `keys.lock` as it is
//! (no re-encryption, no identity); and a report of what does not fit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::fsutil;
use crate::identity::NoPrompt;
use crate::layout::{self, Repo};
use crate::policy::host_file::{self, NewHost};
use crate::recipient::Recipient;

use super::workspace::{Hosts, Workspace};

/// What the import made, and what it left.
#[derive(Default)]
pub struct Imported {
    pub admins: Vec<String>,
    pub hosts: Vec<String>,
    /// The policy file written, and its rules.
    pub policy: String,
    pub rules: usize,
    /// The secrets recorded in `keys.lock`.
    pub secrets: Vec<String>,
    /// What does not fit, one line each (a path and why).
    pub left: Vec<String>,
}

/// One `secrets.nix` entry, as Nix evaluates it.
#[derive(serde::Deserialize)]
struct Entry {
    #[serde(rename = "publicKeys")]
    public_keys: Vec<String>,
    #[serde(default)]
    armor: bool,
}

/// The policy file an import writes.
pub const POLICY_FILE: &str = "imported-agenix.yaml";

pub fn agenix(repo: &Repo, rules: &Path) -> Result<Imported> {
    let text = String::from_utf8(fsutil::read(rules)?).map_err(|_| Error::InvalidFile {
        at: Location::file(rules),
        reason: "not UTF-8 text".into(),
    })?;
    let entries = evaluate(rules)?;
    let base = rules.parent().unwrap_or(Path::new("."));
    let bindings = bindings(&text);
    let roles = roles(&text);
    let mut out = Imported::default();

    // Every key, named once: a binding's name, else the key comment, else a fingerprint.
    let mut names: BTreeMap<String, (String, Recipient)> = BTreeMap::new();
    for (file, entry) in &entries {
        for (i, raw) in entry.public_keys.iter().enumerate() {
            let at = Location::file(rules).at_line(line_of(&text, raw));
            let key = match Recipient::parse_line(raw, &at) {
                Ok(k) => k,
                Err(e) => {
                    out.left.push(format!("{file}: reader {}: {e}", i + 1));
                    continue;
                }
            };
            let id = key.fingerprint();
            if names.contains_key(&id) {
                continue;
            }
            let taken: Vec<&String> = names.values().map(|(n, _)| n).collect();
            let name = name_for(raw, &key, &bindings, &taken);
            names.insert(id, (name, key));
        }
    }
    // Hosts: a key bound in a list named like `systems`/`hosts`, or commented root@…;
    // only an ssh-ed25519 key names a host.
    let mut is_host: BTreeMap<String, bool> = BTreeMap::new();
    for (id, (name, key)) in &names {
        let host_like = match roles.get(name) {
            Some(role) => *role,
            None => matches!(key, Recipient::SshEd25519(k) if k.comment().starts_with("root@")),
        };
        if host_like && !matches!(key, Recipient::SshEd25519(_)) {
            out.left.push(format!(
                "{name}: a {} key where a host key is expected: recorded as an admin",
                key.kind()
            ));
        }
        is_host.insert(
            id.clone(),
            host_like && matches!(key, Recipient::SshEd25519(_)),
        );
    }

    // The files each entry names, under secrets/.
    let mut secrets: Vec<(String, Vec<String>, bool)> = Vec::new();
    for (file, entry) in &entries {
        let path = base.join(file);
        let rel = repo.rel(&std::path::absolute(&path).map_err(|e| Error::io(&path, e))?);
        let Some((name, Format::Age)) = crate::format::secret_of_path(&rel) else {
            out.left.push(format!(
                "{file}: not an .age file under {}/; move it there and import again",
                layout::SECRETS
            ));
            continue;
        };
        if !path.is_file() {
            out.left
                .push(format!("{rel}: named in {} but missing", rules.display()));
            continue;
        }
        let mut readers: Vec<String> = entry
            .public_keys
            .iter()
            .filter_map(|raw| Recipient::parse_line(raw, &Location::named("")).ok())
            .filter_map(|k| names.get(&k.fingerprint()))
            .map(|(n, k)| {
                if is_host[&k.fingerprint()] {
                    format!("host:{n}")
                } else {
                    n.clone()
                }
            })
            .collect();
        readers.sort();
        readers.dedup();
        secrets.push((name.to_string(), readers, entry.armor));
    }
    // .age files under secrets/ that secrets.nix does not name.
    let named: Vec<&String> = secrets.iter().map(|(n, _, _)| n).collect();
    for (name, format, path) in super::workspace::secret_files(repo)? {
        if format == Format::Age && !named.contains(&&name) {
            out.left.push(format!(
                "{}: not in {}: no rule made for it",
                repo.rel(&path),
                rules.display()
            ));
        }
    }

    // Recipients: admins and hosts, each a new file (an existing one is kept).
    let admins: Vec<String> = names
        .iter()
        .filter(|(id, _)| !is_host[*id])
        .map(|(_, (n, _))| n.clone())
        .collect();
    fsutil::create_dir_all(&repo.admins_dir(), 0o755)?;
    fsutil::create_dir_all(&repo.hosts_dir(), 0o755)?;
    fsutil::create_dir_all(&repo.policies_dir(), 0o755)?;
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    for (id, (name, key)) in &names {
        if is_host[id] {
            let file = repo.host_file(name);
            let shown = repo.rel(&file);
            let new = NewHost {
                name,
                key,
                address: None,
                ssh_port: 22,
                system: None,
                flake_attr: None,
                persist: None,
            };
            writes.push((file, host_file::render(&new, &shown)?));
            out.hosts.push(name.clone());
        } else {
            let file = repo.admin_file(name);
            let line = host_file::key_line(key);
            writes.push((
                file,
                format!("# admin {name}, imported from agenix\n{line}\n"),
            ));
            out.admins.push(name.clone());
        }
    }

    // One rule per distinct reader set (and armor), its secrets as a brace glob.
    let mut by_readers: BTreeMap<(Vec<String>, bool), Vec<String>> = BTreeMap::new();
    for (name, readers, armor) in &secrets {
        by_readers
            .entry((readers.clone(), *armor))
            .or_default()
            .push(name.clone());
    }
    let mut policy = format!(
        "# Imported from {} by `keys import agenix`: one rule per reader set.\ngroups:\n  admins: [{}]\nrules:\n",
        rules.display(),
        admins.join(", ")
    );
    for ((readers, armor), names) in &by_readers {
        let glob = if names.len() == 1 {
            names[0].clone()
        } else {
            format!("{{{}}}", names.join(","))
        };
        let all_admins = admins.iter().all(|a| readers.contains(a)) && !admins.is_empty();
        let mut labels: Vec<String> = if all_admins {
            vec!["admins".into()]
        } else {
            Vec::new()
        };
        labels.extend(
            readers
                .iter()
                .filter(|r| !(all_admins && admins.contains(r)))
                .cloned(),
        );
        policy.push_str(&format!(
            "  - secrets: \"{glob}\"\n    format: age\n{}    readers: [{}]\n",
            if *armor { "    armor: true\n" } else { "" },
            labels.join(", ")
        ));
    }
    out.rules = by_readers.len();
    let names: Vec<&String> = secrets.iter().map(|(n, _, _)| n).collect();
    finish(repo, writes, POLICY_FILE, policy, &names, out)
}

/// Writes the new recipients and the policy (none may exist yet; all or none are
/// written), then records each secret in keys.lock as it is, when its header is
/// what the old configuration said (else it is reported).
fn finish(
    repo: &Repo,
    mut writes: Vec<(PathBuf, String)>,
    policy_name: &str,
    policy: String,
    secrets: &[&String],
    mut out: Imported,
) -> Result<Imported> {
    let policy_file = repo.policies_dir().join(policy_name);
    writes.push((policy_file.clone(), policy));
    for (path, _) in &writes {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::Exists { path: path.clone() });
        }
    }
    let files: Vec<(&Path, &[u8], u32)> = writes
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_bytes(), fsutil::PUBLIC))
        .collect();
    fsutil::write_batch(&files)?;
    out.policy = repo.rel(&policy_file);
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    for name in secrets {
        match super::secret::adopt(&mut ws, std::slice::from_ref(*name), None, &NoPrompt) {
            Ok(_) => out.secrets.push((*name).clone()),
            Err(e) => out.left.push(format!("{e}")),
        }
    }
    Ok(out)
}

/// `secrets.nix` evaluated by Nix: each file's public keys and armor.
fn evaluate(rules: &Path) -> Result<BTreeMap<String, Entry>> {
    let path = std::path::absolute(rules).map_err(|e| Error::io(rules, e))?;
    let expr = format!(
        "builtins.mapAttrs (n: v: {{ publicKeys = v.publicKeys; armor = v.armor or false; }}) (import {})",
        nix_path(&path)
    );
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .env("NIX_REMOTE", "dummy://")
        .output()
        .map_err(|e| Error::External {
            program: "nix-instantiate".into(),
            reason: format!("cannot run it to read {}: {e}", rules.display()),
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let line = why
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("failed");
        return Err(Error::External {
            program: "nix-instantiate".into(),
            reason: format!("{}: {}", rules.display(), line.trim()),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::InvalidFile {
        at: Location::file(rules),
        reason: format!("not an agenix rules file: {e}"),
    })
}

/// A path as a Nix string coerced to a path.
fn nix_path(path: &Path) -> String {
    let s = path.display().to_string();
    format!(
        "(/. + \"{}\")",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("${", "\\${")
    )
}

/// `NAME = "key";` bindings of the file's text, by key.
fn bindings(text: &str) -> BTreeMap<String, String> {
    let re = regex::Regex::new(r#"(?m)^\s*([A-Za-z_][A-Za-z0-9_'-]*)\s*=\s*"([^"]+)"\s*;"#)
        .expect("a valid pattern");
    re.captures_iter(text)
        .map(|c| (c[2].trim().to_string(), c[1].to_string()))
        .collect()
}

/// For each bound name, whether a list binding that names it says host (`systems`,
/// `hosts`, `machines`, `servers`) or admin (`users`, `admins`, `people`).
fn roles(text: &str) -> BTreeMap<String, bool> {
    let re = regex::Regex::new(r"([A-Za-z_][A-Za-z0-9_'-]*)\s*=\s*\[([^\]]*)\]\s*;")
        .expect("a valid pattern");
    let mut out = BTreeMap::new();
    for c in re.captures_iter(text) {
        let list = c[1].to_lowercase();
        let role = if ["system", "host", "machine", "server"]
            .iter()
            .any(|w| list.contains(w))
        {
            true
        } else if ["user", "admin", "people"].iter().any(|w| list.contains(w)) {
            false
        } else {
            continue;
        };
        for name in c[2].split_whitespace() {
            if name
                .chars()
                .all(|ch| ch.is_alphanumeric() || "_'-".contains(ch))
            {
                out.entry(name.to_string()).or_insert(role);
            }
        }
    }
    out
}

/// The line of `text` where `needle` first appears (1 when it does not).
fn line_of(text: &str, needle: &str) -> u64 {
    text.find(needle)
        .map_or(1, |at| text[..at].matches('\n').count() as u64 + 1)
}

/// A name for `key`: its binding, else its comment's user@host made a name, else a
/// fingerprint's start; made unique against `taken`.
fn name_for(
    raw: &str,
    key: &Recipient,
    bindings: &BTreeMap<String, String>,
    taken: &[&String],
) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    };
    let comment_name = match key {
        Recipient::SshEd25519(k) | Recipient::SshRsa(k) => {
            let c = k.comment();
            let host = c.rsplit('@').next().unwrap_or(c);
            (!host.is_empty()).then(|| clean(host))
        }
        _ => None,
    };
    let base = bindings
        .get(raw.trim())
        .map(|n| clean(n))
        .filter(|n| layout::check_name(n).is_ok())
        .or(comment_name.filter(|n| layout::check_name(n).is_ok()))
        .unwrap_or_else(|| {
            let f = key.fingerprint();
            let tail: String = f
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .skip(6)
                .take(8)
                .collect();
            format!("key-{}", tail.to_lowercase())
        });
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|t| **t == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// `.sops.yaml` as `keys import sops` reads it.
#[derive(serde::Deserialize)]
struct SopsConfig {
    #[serde(default)]
    creation_rules: Vec<CreationRule>,
}

#[derive(serde::Deserialize)]
struct CreationRule {
    #[serde(default)]
    path_regex: Option<String>,
    #[serde(default)]
    age: Option<AgeList>,
    #[serde(default)]
    key_groups: Option<serde_json::Value>,
    #[serde(default)]
    pgp: Option<serde_json::Value>,
    #[serde(default)]
    encrypted_regex: Option<String>,
    #[serde(default)]
    unencrypted_regex: Option<String>,
    #[serde(default)]
    encrypted_suffix: Option<String>,
    #[serde(default)]
    unencrypted_suffix: Option<String>,
    #[serde(default)]
    mac_only_encrypted: bool,
}

/// sops takes `age:` as one comma-separated string or a list.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum AgeList {
    One(String),
    Many(Vec<String>),
}

impl AgeList {
    fn keys(&self) -> Vec<String> {
        let all = match self {
            AgeList::One(s) => vec![s.clone()],
            AgeList::Many(v) => v.clone(),
        };
        all.iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// `keys import sops`: `.sops.yaml` creation rules and the sops files under `secrets/`
/// they match (the first matching rule, as sops picks it). Each age recipient becomes
/// an admin, named after its YAML anchor (`- &alice age1…`) where there is one (an
/// `age1…` key cannot name a host, whose name is its SSH key: `keys host add` then
/// replaces it); one rule per reader set and options; every file recorded as it is.
pub fn sops(repo: &Repo, config: &Path) -> Result<Imported> {
    let text = String::from_utf8(fsutil::read(config)?).map_err(|_| Error::InvalidFile {
        at: Location::file(config),
        reason: "not UTF-8 text".into(),
    })?;
    let parsed: SopsConfig = serde_saphyr::from_str(&text).map_err(|e| Error::InvalidFile {
        at: Location::file(config),
        reason: format!("not a sops configuration: {e}"),
    })?;
    let anchors: BTreeMap<String, String> = {
        let re = regex::Regex::new(r"&([A-Za-z_][A-Za-z0-9_-]*)\s+'?(age1[0-9a-z]+)")
            .expect("a valid pattern");
        re.captures_iter(&text)
            .map(|c| (c[2].to_string(), c[1].to_string()))
            .collect()
    };
    let base = config.parent().unwrap_or(Path::new("."));
    let mut out = Imported::default();
    let mut names: BTreeMap<String, (String, Recipient)> = BTreeMap::new();
    let mut rules = Vec::new();
    for (i, rule) in parsed.creation_rules.iter().enumerate() {
        let at = Location::file(config);
        if rule.key_groups.is_some() || rule.pgp.is_some() {
            out.left.push(format!(
                "{}: creation rule {}: key_groups and pgp are not imported; write that rule by hand",
                config.display(),
                i + 1
            ));
        }
        let regex = match &rule.path_regex {
            Some(p) => Some(crate::format::sops::goregex::GoRegex::new(p).map_err(|e| {
                Error::InvalidFile {
                    at: at.clone(),
                    reason: format!("path_regex {p:?}: {e}"),
                }
            })?),
            None => None,
        };
        let mut readers = Vec::new();
        for raw in rule.age.as_ref().map(AgeList::keys).unwrap_or_default() {
            let key = Recipient::parse_line(&raw, &at.clone().at_line(line_of(&text, &raw)))?;
            let id = key.fingerprint();
            if !names.contains_key(&id) {
                let taken: Vec<&String> = names.values().map(|(n, _)| n).collect();
                let name = name_for(&raw, &key, &anchors, &taken);
                names.insert(id.clone(), (name, key));
            }
            readers.push(names[&id].0.clone());
        }
        readers.sort();
        readers.dedup();
        rules.push((regex, readers, rule));
    }
    // The sops files under secrets/, each with the first rule whose path_regex matches.
    let mut secrets: Vec<(String, Format, usize)> = Vec::new();
    for (name, format, path) in super::workspace::secret_files(repo)? {
        if format == Format::Age {
            continue;
        }
        let rel = repo.rel(&path);
        let from_config = path
            .strip_prefix(base)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| rel.clone());
        match rules
            .iter()
            .position(|(re, _, _)| re.as_ref().is_none_or(|re| re.is_match(&from_config)))
        {
            Some(i) if !rules[i].1.is_empty() => secrets.push((name, format, i)),
            _ => out.left.push(format!(
                "{rel}: no creation rule with age recipients matches it"
            )),
        }
    }
    let admins: Vec<String> = names.values().map(|(n, _)| n.clone()).collect();
    fsutil::create_dir_all(&repo.admins_dir(), 0o755)?;
    fsutil::create_dir_all(&repo.hosts_dir(), 0o755)?;
    fsutil::create_dir_all(&repo.policies_dir(), 0o755)?;
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    for (name, key) in names.values() {
        writes.push((
            repo.admin_file(name),
            format!("# admin {name}, imported from sops\n{key}\n"),
        ));
        out.admins.push(name.clone());
    }
    // One rule per creation rule and format, its secrets as a brace glob.
    let mut groups: BTreeMap<(usize, &'static str), Vec<String>> = BTreeMap::new();
    for (name, format, i) in &secrets {
        groups
            .entry((*i, format.name()))
            .or_default()
            .push(name.clone());
    }
    let mut policy = format!(
        "# Imported from {} by `keys import sops`: one rule per creation rule and format.\ngroups:\n  admins: [{}]\nrules:\n",
        config.display(),
        admins.join(", ")
    );
    for ((i, format), names) in &groups {
        let (_, readers, rule) = &rules[*i];
        let glob = if names.len() == 1 {
            names[0].clone()
        } else {
            format!("{{{}}}", names.join(","))
        };
        policy.push_str(&format!(
            "  - secrets: \"{glob}\"\n    format: {format}\n    readers: [{}]\n",
            readers.join(", ")
        ));
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        for (k, v) in [
            ("encrypted_regex", &rule.encrypted_regex),
            ("unencrypted_regex", &rule.unencrypted_regex),
            ("encrypted_suffix", &rule.encrypted_suffix),
            ("unencrypted_suffix", &rule.unencrypted_suffix),
        ] {
            if let Some(v) = v {
                policy.push_str(&format!("    {k}: {}\n", quote(v)));
            }
        }
        if rule.mac_only_encrypted {
            policy.push_str("    mac_only_encrypted: true\n");
        }
    }
    out.rules = groups.len();
    let names: Vec<&String> = secrets.iter().map(|(n, _, _)| n).collect();
    finish(repo, writes, "imported-sops.yaml", policy, &names, out)
}
