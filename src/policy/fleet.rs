//! The fleet as the repository describes it: `recipients/admins/NAME.pub` (one or
//! more public keys per admin) and `recipients/hosts/NAME.yaml` (a host's SSH host
//! key, how to reach and deploy it, and its containers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::{Error, Location, Result};
use crate::layout::{self, Repo};
use crate::recipient::Recipient;
use crate::snapshot::Snapshot;

pub use super::host_file::{Container, DeployKey, Host, User, parse_host};

pub struct Admin {
    pub name: String,
    pub recipients: Vec<Recipient>,
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
                read = crate::fsutil::read(path)?;
                read.as_slice()
            }
        };
        let host = parse_host(&self.name, super::text_of(&self.rel, data)?, &self.rel)?;
        Ok(self.parsed.get_or_init(|| host))
    }
}

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
        refuse_symlink(files, layout::HOSTS, "yaml")?;
        let slots = files
            .files_in(layout::HOSTS, "yaml")
            .map(|(rel, data)| {
                Ok(Slot {
                    name: name_of(rel, layout::check_name)?,
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
        crate::fsutil::refuse_links(repo.root(), Path::new(layout::HOSTS))?;
        let mut slots = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| Error::io(&dir, e))?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if file.strip_suffix(".yaml").is_none_or(str::is_empty) {
                        continue;
                    }
                    let rel = format!("{}/{file}", layout::HOSTS);
                    // Regular files only, as a snapshot lists them; a symlink is refused.
                    match entry.file_type() {
                        Ok(t) if t.is_symlink() => {
                            return Err(Error::Symlink { path: rel.into() });
                        }
                        Ok(t) if t.is_file() => {}
                        _ => continue,
                    }
                    slots.push(Slot {
                        name: name_of(&rel, layout::check_name)?,
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
        // Parsed on every core (each key's point is checked, a scalar multiplication);
        // the first file in error is the one reported.
        let hosts: Vec<Result<&Host>> = self.slots.par_iter().map(Slot::host).collect();
        let hosts = hosts.into_iter().collect::<Result<Vec<&Host>>>()?;
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let mut deploy_keys: BTreeMap<&str, &str> = BTreeMap::new();
        for (slot, host) in self.slots.iter().zip(&hosts) {
            for d in &host.deploy_keys {
                if let Some(other) = deploy_keys.insert(&d.name, &host.name) {
                    return Err(Error::InvalidFile {
                        at: Location::named(&slot.rel),
                        reason: format!(
                            "deploy key {} is also declared by host {other} (its secret is deploy/{})",
                            d.name, d.name
                        ),
                    });
                }
            }
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

    /// Every host's name, in order (without reading the host files).
    pub fn host_names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.name.as_str())
    }

    /// Every container's name, in order (which reads every host file).
    pub fn container_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .hosts()?
            .flat_map(|h| h.containers.iter().map(|c| c.name.clone()))
            .collect();
        names.sort();
        Ok(names)
    }

    fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// A host, its file parsed now if it was not yet.
    pub fn host(&self, name: &str) -> Result<Option<&Host>> {
        self.slot(name).map(Slot::host).transpose()
    }

    /// A host, its file parsed now if it was not yet; [`Error::NoHost`] when no host
    /// file declares it.
    pub fn require_host(&self, name: &str) -> Result<&Host> {
        self.host(name)?.ok_or_else(|| {
            let near = crate::error::nearest(name, self.slots.iter().map(|s| s.name.clone()));
            no_host_near(name, near)
        })
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

    /// A host's user with a key of their own (which reads only that host's file).
    pub fn user(&self, name: &str, host: &str) -> Result<Option<(&Host, &User)>> {
        Ok(self
            .host(host)?
            .and_then(|h| h.users.iter().find(|u| u.name == name).map(|u| (h, u))))
    }

    /// A deploy key and the host that authorizes it (which needs every host file).
    pub fn deploy_key(&self, name: &str) -> Result<Option<(&Host, &DeployKey)>> {
        Ok(self.hosts()?.find_map(|h| {
            h.deploy_keys
                .iter()
                .find(|d| d.name == name)
                .map(|d| (h, d))
        }))
    }
}

/// The admin names `recipients/admins/*.pub` gives, in name order, without reading
/// the files. For offering names (shell completion), never for deciding anything: a
/// directory that cannot be read gives none, and a file that is not a regular file or
/// whose name is not valid is left out.
pub fn admin_names(repo: &Repo) -> Vec<String> {
    stems(&repo.admins_dir(), "pub", layout::check_reader_name)
}

/// The host names `recipients/hosts/*.yaml` gives, in name order, without reading the
/// files; as forgiving as [`admin_names`].
pub fn host_names(repo: &Repo) -> Vec<String> {
    stems(&repo.hosts_dir(), "yaml", layout::check_name)
}

/// Every container the host files declare, with its host, host by host; as forgiving
/// as [`admin_names`]: a host file that cannot be read or parsed gives none, and
/// nothing is checked across files.
pub fn container_names(repo: &Repo) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for host in host_names(repo) {
        let rel = format!("{}/{host}.yaml", layout::HOSTS);
        let Ok(data) = crate::fsutil::read(&repo.host_file(&host)) else {
            continue;
        };
        let parsed = super::text_of(&rel, &data).and_then(|text| parse_host(&host, text, &rel));
        if let Ok(parsed) = parsed {
            out.extend(
                parsed
                    .containers
                    .into_iter()
                    .map(|c| (c.name, host.clone())),
            );
        }
    }
    out
}

/// The valid names of the regular `*.EXT` files in `dir`, sorted.
fn stems(
    dir: &Path,
    ext: &str,
    check: fn(&str) -> std::result::Result<(), &'static str>,
) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            if !entry.file_type().ok()?.is_file() {
                return None;
            }
            let file = entry.file_name().into_string().ok()?;
            let name = file.strip_suffix(ext)?.strip_suffix('.')?;
            check(name).ok()?;
            Some(name.to_string())
        })
        .collect();
    names.sort();
    names
}

/// The error for a host name that no host file declares.
pub fn no_host(name: &str) -> Error {
    no_host_near(name, Vec::new())
}

/// The error for a host name that no host file declares, with the names close to it.
fn no_host_near(name: &str, near: Vec<String>) -> Error {
    Error::NoHost {
        name: name.to_string(),
        file: format!("{}/{name}.yaml", layout::HOSTS),
        near,
    }
}

fn admins_of(files: &Snapshot) -> Result<Vec<Admin>> {
    refuse_symlink(files, layout::ADMINS, "pub")?;
    files
        .files_in(layout::ADMINS, "pub")
        .map(|(rel, data)| load_admin(rel, data))
        .collect()
}

/// Refuses a symlink where fleet or policy files are read (`dir`, a directory above
/// it, or a `*.ext` file in it): a link is never followed, and a file is never
/// silently left out.
pub(crate) fn refuse_symlink(files: &Snapshot, dir: &str, ext: &str) -> Result<()> {
    match files.symlink_at(dir, ext) {
        Some(rel) => Err(Error::Symlink { path: rel.into() }),
        None => Ok(()),
    }
}

/// The admin or host name a fleet file's stem gives, checked by `check`.
fn name_of(rel: &str, check: fn(&str) -> std::result::Result<(), &'static str>) -> Result<String> {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let name = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    check(name).map_err(|reason| Error::InvalidName {
        at: Location::named(rel),
        name: name.to_string(),
        reason,
    })?;
    Ok(name.to_string())
}

fn load_admin(rel: &str, data: &[u8]) -> Result<Admin> {
    let name = name_of(rel, layout::check_reader_name)?;
    let recipients: Vec<Recipient> = Recipient::parse_all(super::text_of(rel, data)?, rel)?
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";

    #[test]
    fn names_are_listed_from_the_files_that_can_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path().to_path_buf());
        assert!(admin_names(&repo).is_empty() && host_names(&repo).is_empty());
        let (admins, hosts) = (repo.admins_dir(), repo.hosts_dir());
        std::fs::create_dir_all(&admins).unwrap();
        std::fs::create_dir_all(&hosts).unwrap();
        for file in ["bob.pub", "alice.pub", "notes.txt", ".pub", "a b.pub"] {
            std::fs::write(admins.join(file), "not read").unwrap();
        }
        std::fs::create_dir(admins.join("dir.pub")).unwrap();
        let host = |containers: &str| format!("ssh_key: {KEY}\ncontainers:\n{containers}");
        std::fs::write(hosts.join("b.yaml"), host("  web: {}\n  db: {}\n")).unwrap();
        std::fs::write(hosts.join("a.yaml"), host("  box: {}\n")).unwrap();
        std::fs::write(hosts.join("broken.yaml"), "ssh_key: [\n").unwrap();
        std::fs::write(hosts.join("x@y.yaml"), host("  hidden: {}\n")).unwrap();
        std::os::unix::fs::symlink(hosts.join("a.yaml"), hosts.join("link.yaml")).unwrap();

        assert_eq!(admin_names(&repo), ["alice", "bob"]);
        assert_eq!(host_names(&repo), ["a", "b", "broken"]);
        let containers = container_names(&repo);
        let containers: Vec<(&str, &str)> = containers
            .iter()
            .map(|(c, h)| (c.as_str(), h.as_str()))
            .collect();
        assert_eq!(containers, [("box", "a"), ("db", "b"), ("web", "b")]);
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
        let link = hosts.join("link.yaml");
        std::os::unix::fs::symlink(hosts.join("a.yaml"), &link).unwrap();
        let err = Fleet::open(&repo, &Snapshot::default()).err().unwrap();
        assert_eq!(
            err.to_string().split(':').next(),
            Some("recipients/hosts/link.yaml"),
            "a symlinked host file is refused, not left out: {err}"
        );
        std::fs::remove_file(&link).unwrap();

        let fleet = Fleet::open(&repo, &Snapshot::default()).unwrap();
        assert!(fleet.has_host("c") && !fleet.has_host("notes"));
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

    #[test]
    fn a_deploy_key_name_is_declared_once_in_the_fleet() {
        let mut files = Snapshot::default();
        let host = format!(
            "ssh_key: {KEY}\ndeploy_keys:\n  ci:\n    key: {KEY}\n    user: root\n    command: run\n"
        );
        for h in ["a", "b"] {
            files.insert(
                format!("recipients/hosts/{h}.yaml"),
                crate::snapshot::Blob::File(host.clone().into_bytes()),
            );
        }
        let err = Fleet::from_snapshot(&files).err().unwrap().to_string();
        assert_eq!(
            err,
            "recipients/hosts/b.yaml: deploy key ci is also declared by host a (its secret is deploy/ci)"
        );
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
        "deploy_keys:",
        "key: ",
        "user: ",
        "command: ",
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
            files.insert("recipients/hosts/h.yaml".into(), crate::snapshot::Blob::File(data));
            match Fleet::from_snapshot(&files) {
                Ok(fleet) => {
                    let host = fleet.host("h").unwrap().unwrap();
                    prop_assert!(host.key.to_x25519().is_some());
                    prop_assert!(host.persist.as_deref().is_none_or(|p| p.starts_with('/')
                        && p[1..].split('/').all(|s| !matches!(s, "" | "." | ".."))));
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
