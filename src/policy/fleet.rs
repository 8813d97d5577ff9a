//! The fleet as the repository describes it: `recipients/admins/NAME.pub` (one or
//! more public keys per admin) and `recipients/hosts/NAME.yaml` (a host's SSH host
//! key, how to reach and deploy it, and its containers).

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::{Error, Location, Result};
use crate::layout::{self, Repo};
use crate::recipient::Recipient;
use crate::tree::Snapshot;

pub struct Admin {
    pub name: String,
    pub recipients: Vec<Recipient>,
}

pub struct Host {
    pub name: String,
    pub key: Recipient,
    pub address: Option<String>,
    pub ssh_port: u16,
    pub system: Option<String>,
    pub flake_attr: String,
    pub persist: Option<String>,
    /// The user `keys update` and `keys install` log in as after the install.
    pub ssh_user: String,
    /// Where `keys update` puts the flake on the host.
    pub flake_dir: String,
    /// Where sops-nix reads an age key file (the host key converted), when the host
    /// file asks for one; relative to the root, the persist prefix not included.
    pub age_key_file: Option<String>,
    pub containers: Vec<Container>,
}

pub struct Container {
    pub name: String,
    /// `None`: shares the host's key through a read-only bind mount.
    pub own_key: Option<Recipient>,
}

impl Container {
    /// The key this container decrypts with: its own, or its host's.
    pub fn key<'a>(&'a self, host: &'a Host) -> &'a Recipient {
        self.own_key.as_ref().unwrap_or(&host.key)
    }
}

/// The admins, and the hosts with their containers. A host file is parsed when first
/// needed: a fleet read whole has parsed and cross-checked every one; a fleet opened
/// for one secret reads only the host files that secret's readers name.
pub struct Fleet {
    pub admins: Vec<Admin>,
    /// Every host file, in name order.
    slots: Vec<Slot>,
    /// Set once every host is parsed and no container is declared twice.
    whole: OnceLock<()>,
}

/// One host file: its name, where its text comes from, and the host once parsed.
struct Slot {
    name: String,
    rel: String,
    source: Source,
    parsed: OnceLock<Host>,
}

enum Source {
    /// Already read, from a snapshot of the work tree or the index.
    Read(Vec<u8>),
    /// In the work tree, read on first use.
    Path(PathBuf),
}

impl Slot {
    fn host(&self) -> Result<&Host> {
        if let Some(host) = self.parsed.get() {
            return Ok(host);
        }
        let read;
        let data = match &self.source {
            Source::Read(data) => data.as_slice(),
            Source::Path(path) => {
                read = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                read.as_slice()
            }
        };
        let host = parse_host(&self.name, text_of(&self.rel, data)?, &self.rel)?;
        Ok(self.parsed.get_or_init(|| host))
    }
}

/// The host file as written on disk.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    /// The host's public SSH host key (`ssh-ed25519 AAAA…`).
    pub ssh_key: Spanned<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub ssh_port: Option<u16>,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub flake_attr: Option<String>,
    #[serde(default)]
    pub persist: Option<String>,
    #[serde(default)]
    pub ssh_user: Option<String>,
    #[serde(default)]
    pub flake_dir: Option<String>,
    #[serde(default)]
    pub age_key_file: Option<String>,
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerFile {
    /// The container's own key; absent when it shares the host's.
    #[serde(default)]
    pub ssh_key: Option<Spanned<String>>,
}

const SYSTEMS: &[&str] = &["x86_64-linux", "aarch64-linux"];

impl Fleet {
    /// Reads `recipients/` from the work tree, every host file parsed and checked.
    pub fn load(repo: &Repo) -> Result<Fleet> {
        Fleet::from_snapshot(&Snapshot::from_work_tree(
            repo,
            &[layout::ADMINS, layout::HOSTS],
        )?)
    }

    /// Reads `recipients/admins/*.pub` and `recipients/hosts/*.yaml` from a view of the
    /// repository (the work tree or the git index), every host file parsed and checked.
    pub fn from_snapshot(files: &Snapshot) -> Result<Fleet> {
        let admins = admins_of(files)?;
        let slots = files
            .files_in(layout::HOSTS, "yaml")
            .map(|(rel, data)| {
                Ok(Slot {
                    name: name_of(rel)?,
                    rel: rel.to_string(),
                    source: Source::Read(data.to_vec()),
                    parsed: OnceLock::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let fleet = Fleet {
            admins,
            slots,
            whole: OnceLock::new(),
        };
        fleet.check_whole()?;
        Ok(fleet)
    }

    /// The admins from `files` (a view of the work tree that holds `recipients/admins`),
    /// and the host files found in the work tree, each parsed when first needed.
    pub fn open(repo: &Repo, files: &Snapshot) -> Result<Fleet> {
        let admins = admins_of(files)?;
        let dir = repo.hosts_dir();
        let mut slots = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| Error::io(&dir, e))?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    // Regular files only, as a snapshot lists them: a symlink is not read.
                    let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                    if !is_file || file.strip_suffix(".yaml").is_none_or(str::is_empty) {
                        continue;
                    }
                    let rel = format!("{}/{file}", layout::HOSTS);
                    slots.push(Slot {
                        name: name_of(&rel)?,
                        rel,
                        source: Source::Path(entry.path()),
                        parsed: OnceLock::new(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&dir, e)),
        }
        slots.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Fleet {
            admins,
            slots,
            whole: OnceLock::new(),
        })
    }

    /// Parses every host file and checks what spans them: a container is declared
    /// once, and never under the name of a host.
    fn check_whole(&self) -> Result<()> {
        if self.whole.get().is_some() {
            return Ok(());
        }
        let hosts = self
            .slots
            .iter()
            .map(Slot::host)
            .collect::<Result<Vec<&Host>>>()?;
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (slot, host) in self.slots.iter().zip(&hosts) {
            for c in &host.containers {
                if let Some(other) = seen.insert(&c.name, &host.name) {
                    return Err(Error::InvalidFile {
                        at: Location::named(&slot.rel),
                        reason: format!("container {} is also declared by host {other}", c.name),
                    });
                }
                if self.has_host(&c.name) {
                    return Err(Error::InvalidFile {
                        at: Location::named(&slot.rel),
                        reason: format!("container {} has the name of a host", c.name),
                    });
                }
            }
        }
        self.whole.get_or_init(|| ());
        Ok(())
    }

    /// Whether every host file has been parsed and checked.
    pub fn is_whole(&self) -> bool {
        self.whole.get().is_some()
    }

    pub fn admin(&self, name: &str) -> Option<&Admin> {
        self.admins.iter().find(|a| a.name == name)
    }

    /// Whether `recipients/hosts/NAME.yaml` exists (without reading it).
    pub fn has_host(&self, name: &str) -> bool {
        self.slot(name).is_some()
    }

    fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// A host, its file parsed now if it was not yet.
    pub fn host(&self, name: &str) -> Result<Option<&Host>> {
        self.slot(name).map(Slot::host).transpose()
    }

    /// Every host in name order, every host file parsed and checked.
    pub fn hosts(&self) -> Result<impl Iterator<Item = &Host>> {
        self.check_whole()?;
        Ok(self.slots.iter().filter_map(|s| s.parsed.get()))
    }

    /// A container and the host it runs on (which needs every host file: a container
    /// is declared in its host's).
    pub fn container(&self, name: &str) -> Result<Option<(&Host, &Container)>> {
        Ok(self
            .hosts()?
            .find_map(|h| h.containers.iter().find(|c| c.name == name).map(|c| (h, c))))
    }
}

fn admins_of(files: &Snapshot) -> Result<Vec<Admin>> {
    files
        .files_in(layout::ADMINS, "pub")
        .map(|(rel, data)| load_admin(rel, data))
        .collect()
}

/// The admin, host or container name a fleet file's stem gives.
fn name_of(rel: &str) -> Result<String> {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let name = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    layout::check_name(name).map_err(|reason| Error::InvalidName {
        at: Location::named(rel),
        name: name.to_string(),
        reason,
    })?;
    Ok(name.to_string())
}

fn text_of<'a>(rel: &str, data: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(data).map_err(|_| Error::InvalidFile {
        at: Location::named(rel),
        reason: "not UTF-8 text".into(),
    })
}

fn load_admin(rel: &str, data: &[u8]) -> Result<Admin> {
    let name = name_of(rel)?;
    let recipients: Vec<Recipient> = Recipient::parse_all(text_of(rel, data)?, rel)?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    if recipients.is_empty() {
        return Err(Error::InvalidFile {
            at: Location::named(rel),
            reason: "no public key in this admin file".into(),
        });
    }
    Ok(Admin { name, recipients })
}

fn spanned_key(file: &str, key: &Spanned<String>, what: &str) -> Result<Recipient> {
    let at = Location::named(file).at_line(key.referenced.line());
    let r = Recipient::parse_line(&key.value, &at)?;
    match r {
        Recipient::SshEd25519(_) => Ok(r),
        other => Err(Error::InvalidFile {
            at,
            reason: format!("{what} must be an ssh-ed25519 key, not {}", other.kind()),
        }),
    }
}

/// Parses a host file's text; `file` names it in errors.
pub fn parse_host(name: &str, text: &str, file: &str) -> Result<Host> {
    let raw: HostFile = serde_saphyr::from_str(text).map_err(|e| super::yaml_error(file, &e))?;
    let key = spanned_key(file, &raw.ssh_key, "ssh_key")?;
    if let Some(system) = &raw.system
        && !SYSTEMS.contains(&system.as_str())
    {
        return Err(Error::InvalidFile {
            at: Location::named(file),
            reason: format!("system {system:?} is not one of {}", SYSTEMS.join(", ")),
        });
    }
    for (field, value) in [
        ("persist", &raw.persist),
        ("flake_dir", &raw.flake_dir),
        ("age_key_file", &raw.age_key_file),
    ] {
        if let Some(path) = value
            && !plain_absolute(path)
        {
            return Err(Error::InvalidFile {
                at: Location::named(file),
                reason: format!(
                    "{field} {path:?} must be an absolute path without '..' or control characters"
                ),
            });
        }
    }
    let checks: [(&str, &Option<String>, Validator, &str); 3] = [
        ("ssh_user", &raw.ssh_user, user_name, "a user name"),
        (
            "flake_attr",
            &raw.flake_attr,
            attr_name,
            "a flake attribute name",
        ),
        (
            "address",
            &raw.address,
            host_address,
            "a host name or IP address",
        ),
    ];
    for (field, value, valid, what) in checks {
        if let Some(value) = value
            && !valid(value)
        {
            return Err(Error::InvalidFile {
                at: Location::named(file),
                reason: format!("{field} {value:?} is not {what}"),
            });
        }
    }
    let mut containers = Vec::new();
    for (cname, c) in raw.containers {
        layout::check_name(&cname).map_err(|reason| Error::InvalidName {
            at: Location::named(file),
            name: cname.clone(),
            reason,
        })?;
        let own_key = match &c.ssh_key {
            Some(k) => Some(spanned_key(file, k, "a container's ssh_key")?),
            None => None,
        };
        containers.push(Container {
            name: cname,
            own_key,
        });
    }
    Ok(Host {
        name: name.to_string(),
        key,
        address: raw.address,
        ssh_port: raw.ssh_port.unwrap_or(22),
        system: raw.system,
        flake_attr: raw.flake_attr.unwrap_or_else(|| name.to_string()),
        persist: raw.persist.filter(|p| p != "/"),
        ssh_user: raw.ssh_user.unwrap_or_else(|| "root".to_string()),
        flake_dir: raw.flake_dir.unwrap_or_else(|| "/etc/nixos".to_string()),
        age_key_file: raw.age_key_file,
        containers,
    })
}

/// Whether a host file's value is well-formed.
type Validator = fn(&str) -> bool;

/// Letters, digits and `extra`, not empty, not starting with '-'.
fn word(text: &str, extra: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn user_name(text: &str) -> bool {
    word(text, "._-")
}

fn attr_name(text: &str) -> bool {
    word(text, "._-'")
}

/// A DNS name, IPv4 or IPv6 address: nothing ssh or rsync would read as an option,
/// a user or a second argument.
fn host_address(text: &str) -> bool {
    word(text, ".-:[]%_")
}

/// An absolute path with no `..` segment and no control character.
fn plain_absolute(path: &str) -> bool {
    path.starts_with('/')
        && !path.split('/').any(|s| s == "..")
        && !path.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";

    #[test]
    fn reads_a_full_host_file() {
        let text = format!(
            "ssh_key: {KEY} root@vps-arm\naddress: 203.0.113.20\nssh_port: 2222\nsystem: aarch64-linux\npersist: /persistent\ncontainers:\n  nannuo-bot: {{}}\n  own:\n    ssh_key: {KEY}\n"
        );
        let host = parse_host("vps-arm", &text, "h.yaml").unwrap();
        assert_eq!(host.ssh_port, 2222);
        assert_eq!(host.flake_attr, "vps-arm");
        assert_eq!(host.persist.as_deref(), Some("/persistent"));
        assert_eq!(host.containers.len(), 2);
        assert_eq!(
            (host.ssh_user.as_str(), host.flake_dir.as_str()),
            ("root", "/etc/nixos")
        );
        assert!(
            host.containers
                .iter()
                .any(|c| c.name == "nannuo-bot" && c.own_key.is_none())
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                format!("address: x\nssh_key: {KEY}\nbogus: 1\n"),
                "h.yaml:3",
            ),
            (
                "address: x\nssh_key: ssh-ed25519 AAAA\n".to_string(),
                "h.yaml:2: malformed",
            ),
            (
                "ssh_key: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"
                    .to_string(),
                "h.yaml:1: ssh_key must be an ssh-ed25519 key",
            ),
            (format!("ssh_key: {KEY}\nssh_key: {KEY}\n"), "h.yaml:2"),
            (format!("ssh_key: {KEY}\nsystem: riscv\n"), "h.yaml: system"),
            (
                format!("ssh_key: {KEY}\ncontainers:\n  ../x: {{}}\n"),
                "h.yaml: invalid name",
            ),
            ("[1, 2".to_string(), "h.yaml:"),
            (
                format!("ssh_key: {KEY}\nssh_user: \"-oProxyCommand=x\"\n"),
                "h.yaml: ssh_user \"-oProxyCommand=x\" is not a user name",
            ),
            (
                format!("ssh_key: {KEY}\naddress: \"a b\"\n"),
                "h.yaml: address \"a b\" is not a host name or IP address",
            ),
            (
                format!("ssh_key: {KEY}\nflake_attr: \"x; rm -rf /\"\n"),
                "h.yaml: flake_attr",
            ),
            (
                format!("ssh_key: {KEY}\nflake_dir: etc/nixos\n"),
                "h.yaml: flake_dir \"etc/nixos\" must be an absolute path",
            ),
            (
                format!("ssh_key: {KEY}\nage_key_file: /var/../etc/shadow\n"),
                "h.yaml: age_key_file",
            ),
        ];
        for (text, want) in cases {
            let err = parse_host("h", &text, "h.yaml").err().unwrap().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn an_opened_fleet_reads_a_host_file_when_it_is_first_needed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path().to_path_buf());
        let hosts = repo.hosts_dir();
        std::fs::create_dir_all(&hosts).unwrap();
        let host = |containers: &str| format!("ssh_key: {KEY}\ncontainers:\n{containers}");
        std::fs::write(hosts.join("a.yaml"), host("  box: {}\n")).unwrap();
        std::fs::write(hosts.join("b.yaml"), host("  box: {}\n")).unwrap();
        std::fs::write(hosts.join("c.yaml"), "ssh_key: [\n").unwrap();
        std::fs::write(hosts.join("notes.txt"), "not a host").unwrap();
        std::os::unix::fs::symlink(hosts.join("a.yaml"), hosts.join("link.yaml")).unwrap();

        let fleet = Fleet::open(&repo, &Snapshot::default()).unwrap();
        assert!(fleet.has_host("c") && !fleet.has_host("notes") && !fleet.has_host("link"));
        assert_eq!(fleet.host("a").unwrap().unwrap().containers[0].name, "box");
        assert!(fleet.host("nope").unwrap().is_none());
        assert!(!fleet.is_whole());
        let err = fleet.host("c").err().unwrap().to_string();
        assert!(err.starts_with("recipients/hosts/c.yaml:"), "{err}");
        // A container needs every host file; so does the list of hosts.
        let err = fleet.container("box").err().unwrap().to_string();
        assert!(err.starts_with("recipients/hosts/c.yaml:"), "{err}");
        std::fs::write(hosts.join("c.yaml"), format!("ssh_key: {KEY}\n")).unwrap();
        let err = fleet.hosts().err().unwrap().to_string();
        assert_eq!(
            err,
            "recipients/hosts/b.yaml: container box is also declared by host a"
        );
        assert!(!fleet.is_whole());
    }

    /// Pieces of host files, in any order.
    const TOKENS: &[&str] = &[
        "ssh_key: ",
        "address: ",
        "ssh_port: ",
        "system: ",
        "flake_attr: ",
        "persist: ",
        "containers:",
        "\n",
        "  ",
        "    ",
        KEY,
        "ssh-ed25519 AAAA",
        "x86_64-linux",
        "riscv",
        "/persistent",
        "/..",
        "/",
        "65536",
        "22",
        "{}",
        "{",
        "}",
        "[",
        "]",
        "- ",
        ": ",
        "\"",
        "bot",
        "../x",
        "own:",
        "~",
        "&a ",
        "*a",
        "# c",
        "\u{feff}",
        "\t",
    ];

    fn host_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..128),
            prop::collection::vec(prop::sample::select(TOKENS), 0..32)
                .prop_map(|t| t.concat().into_bytes()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn loading_any_bytes_answers_or_names_the_file(data in host_bytes()) {
            let mut files = Snapshot::default();
            files.insert("recipients/hosts/h.yaml".into(), crate::tree::Blob::File(data));
            match Fleet::from_snapshot(&files) {
                Ok(fleet) => {
                    let host = fleet.host("h").unwrap().unwrap();
                    prop_assert!(host.key.to_x25519().is_some());
                    prop_assert!(host.persist.as_deref().is_none_or(|p| p.starts_with('/')));
                    for c in &host.containers {
                        prop_assert!(layout::check_name(&c.name).is_ok());
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    prop_assert!(e.starts_with("recipients/hosts/h.yaml") && !e.contains('\n'), "{e}");
                }
            }
        }
    }
}
