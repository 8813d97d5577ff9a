//! `keys host add|rm|rotate`: machines joining and leaving the fleet, and the journal
//! that lets a killed rotation be undone or finished. A host is named by its SSH
//! ed25519 host key; a generated private key is stored only as an age secret for the
//! admins, the same way for a host and for a container with a key of its own.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::keygen;
use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::fsutil;
use crate::layout::{self, Repo};
use crate::ops::rekey::Rewrite;
use crate::ops::secret::{self, EncryptOptions};
use crate::ops::workspace::{Hosts, Workspace};
use crate::policy::host_file::{self, NewHost};
use crate::policy::{Policy, Reader};
use crate::recipient::{HOST_KEY_PURPOSE, Recipient};
use crate::snapshot::{Blob, Snapshot};

/// The policy file `keys` writes for generated host and container keys; it sorts
/// first so its rule wins over broader globs.
pub const KEY_POLICY: &str = "policies/00-host-keys.yaml";
/// The glob of that rule: every host key and every container key under `hosts/`.
pub const KEY_GLOB: &str = "hosts/**/ssh_host_ed25519_key";

const KEY_POLICY_TEXT: &str = "\
# Generated SSH host keys (`keys host add --generate`, `keys container add --own-key`).
# The private keys are read by the admins only: they are decrypted on an admin's
# machine to stage a host's install (nixos-anywhere --extra-files); a host never needs
# to read its own key, and no host may read another's. This file sorts first so its
# rule wins over broader globs in the other policy files.
rules:
  - secrets: \"hosts/**/ssh_host_ed25519_key\"
    format: age
    readers: [admins]
";

/// A policy file keys creates so that private keys it generates are read by the
/// admins alone: its path, the glob of its one rule, and its text.
pub(super) struct AdminsRule {
    pub file: &'static str,
    pub glob: &'static str,
    pub text: &'static str,
}

/// The rule for generated host and container keys.
const HOST_KEYS: AdminsRule = AdminsRule {
    file: KEY_POLICY,
    glob: KEY_GLOB,
    text: KEY_POLICY_TEXT,
};

/// Where a new host's public key comes from.
pub enum KeySource {
    /// A key the user gave (a file, or what ssh-keyscan returned).
    Given(Recipient),
    /// A new ed25519 key pair made here.
    Generate,
    /// A key pair made before keys (an OpenSSH private key file): its public half is
    /// recorded and the private key stored as a generated one would be.
    Existing {
        public: Recipient,
        private: Zeroizing<String>,
    },
}

impl KeySource {
    /// The host's public key, and its private key when one is made here (named
    /// `root@HOST`). A given key must be ssh-ed25519.
    fn pair(self, host: &str) -> Result<(Recipient, Option<Zeroizing<String>>)> {
        match self {
            KeySource::Given(r @ Recipient::SshEd25519(_)) => Ok((r, None)),
            KeySource::Given(r) => Err(Error::UnsupportedKey {
                at: Location::named("host key"),
                key_type: r.kind().to_string(),
                purpose: Some(HOST_KEY_PURPOSE),
            }),
            KeySource::Generate => {
                let (public, private) = keygen::ssh_ed25519(&format!("root@{host}"))?;
                Ok((public, Some(private)))
            }
            KeySource::Existing { public, private } => Ok((public, Some(private))),
        }
    }
}

pub struct HostSpec {
    pub name: String,
    pub key: KeySource,
    pub address: Option<String>,
    pub ssh_port: u16,
    pub system: Option<String>,
    pub flake_attr: Option<String>,
    pub persist: Option<String>,
}

/// One effect of a host or container command (a file made, changed or removed, or a
/// key secret stored or left in place), with the repository-relative path it touched.
pub enum Effect {
    Created(String),
    Updated(String),
    Removed(String),
    /// A generated private key, stored encrypted.
    KeyStored {
        secret: String,
        path: String,
        recipients: usize,
    },
    /// A generated key secret left in place (`host rm` without `--with-key`).
    KeyKept {
        secret: String,
    },
    /// A secret left in place whose rule, made by a placeholder (`glob`) for the
    /// host removed, no longer applies.
    Unbound {
        secret: String,
        glob: String,
    },
}

#[derive(Default)]
pub struct Report {
    pub effects: Vec<Effect>,
    /// The machine's public key (for `add`), to show its fingerprint and age key.
    pub key: Option<Recipient>,
}

pub(super) fn name_error(what: &str, name: &str) -> impl FnOnce(&'static str) -> Error {
    let (what, name) = (what.to_string(), name.to_string());
    move |reason| Error::InvalidName {
        at: Location::named(&what),
        name,
        reason,
    }
}

/// Refuses a name already used by a host or a container.
pub(super) fn refuse_taken(ws: &Workspace, name: &str) -> Result<()> {
    if ws.fleet.has_host(name) || ws.repo.host_file(name).exists() {
        return Err(Error::Exists {
            path: ws.repo.host_file(name),
        });
    }
    if let Some((host, _)) = ws.fleet.container(name)? {
        return Err(Error::NameTaken {
            name: name.to_string(),
            host: host.name.clone(),
            file: format!("{}/{}.yaml", layout::HOSTS, host.name),
        });
    }
    Ok(())
}

/// Checks that `name` could be added as a new host, before a key is fetched for it.
pub fn check_new_host(repo: &Repo, name: &str) -> Result<()> {
    layout::check_name(name).map_err(name_error("host name", name))?;
    refuse_taken(&Workspace::load(repo, Hosts::All)?, name)
}

/// Adds a host: writes `recipients/hosts/NAME.yaml` and, for a generated key, the
/// private key as secret `hosts/NAME/ssh_host_ed25519_key` (and the policy rule for
/// it when none gives it to exactly the admins). Everything is checked before the
/// first file is written.
pub fn add_host(repo: &Repo, spec: HostSpec) -> Result<Report> {
    layout::check_name(&spec.name).map_err(name_error("host name", &spec.name))?;
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    refuse_taken(&ws, &spec.name)?;
    let (public, private) = spec.key.pair(&spec.name)?;
    let rel = format!("{}/{}.yaml", layout::HOSTS, spec.name);
    let text = host_file::render(
        &NewHost {
            name: &spec.name,
            key: &public,
            address: spec.address.as_deref(),
            ssh_port: spec.ssh_port,
            system: spec.system.as_deref(),
            flake_attr: spec.flake_attr.as_deref(),
            persist: spec.persist.as_deref(),
        },
        &rel,
    )?;

    let mut report = Report {
        effects: Vec::new(),
        key: None,
    };
    let key_plan = match &private {
        Some(_) => Some(plan_key_secret(&ws, &layout::host_key_secret(&spec.name))?),
        None => None,
    };
    if let (Some(private), Some(plan)) = (&private, key_plan) {
        apply_key_secret(&mut ws, plan, private, &public, &mut report)?;
    }
    fsutil::create_dirs_within(repo.root(), Path::new(layout::HOSTS), 0o755)?;
    fsutil::write_new(&repo.host_file(&spec.name), text.as_bytes(), fsutil::PUBLIC)?;
    report.effects.push(Effect::Created(rel));
    report.key = Some(public);
    Ok(report)
}

/// Removes a host's file, refused while a policy rule names the host or one of its
/// containers. With `with_key`, its generated key secrets (the host's, its
/// containers' and its deploy keys') go too, with their lock entries.
pub fn remove_host(repo: &Repo, name: &str, with_key: bool) -> Result<Report> {
    layout::check_name(name).map_err(name_error("host name", name))?;
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    let host = ws.fleet.require_host(name)?;
    let containers: Vec<String> = host.containers.iter().map(|c| c.name.clone()).collect();
    let deploy_keys: Vec<String> = host
        .deploy_keys
        .iter()
        .map(|d| layout::deploy_key_secret(&d.name))
        .collect();
    // A rule a placeholder made for the host (`{host}/*`) goes with it; its secrets
    // are left for `keys check` to report.
    let mut unbound: Vec<(String, String)> = Vec::new();
    for (secret, _, _) in super::workspace::secret_files(repo)? {
        if let Some((_, rule)) = ws.policy.rule_for(&secret)
            && let Some(b) = &rule.bound
            && (b.name == name || containers.contains(&b.name))
        {
            unbound.push((secret, ws.policy.templates[b.template].glob.clone()));
        }
    }
    for rule in ws.policy.rules.iter().filter(|r| r.bound.is_none()) {
        for reader in &rule.readers {
            let named = match reader {
                Reader::Host(h) if h == name => format!("host:{h}"),
                Reader::Container(c) if containers.contains(c) => {
                    format!("container:{c} (on host {name})")
                }
                Reader::User { host, .. } if host == name => reader.label(),
                _ => continue,
            };
            return Err(Error::InvalidFile {
                at: rule.at.clone(),
                reason: format!(
                    "rule {:?} names {named}: remove it from the rule's readers (or its group) before removing the host",
                    rule.glob
                ),
            });
        }
    }
    let mut secrets = vec![layout::host_key_secret(name)];
    secrets.extend(
        containers
            .iter()
            .map(|c| layout::container_key_secret(name, c)),
    );
    secrets.extend(deploy_keys);
    let mut report = Report {
        effects: Vec::new(),
        key: None,
    };
    let mut lock_changed = false;
    for s in secrets {
        let present = ws.locate(&s).is_ok() || ws.lockfile()?.contains(&s);
        if !present {
            continue;
        }
        if with_key {
            let done = secret::remove(&mut ws, &s)?;
            if let Some(p) = done.path {
                report.effects.push(Effect::Removed(repo.rel(&p)));
            }
            lock_changed |= done.in_lock;
        } else {
            report.effects.push(Effect::KeyKept { secret: s });
        }
    }
    if lock_changed {
        report
            .effects
            .push(Effect::Updated(layout::LOCKFILE.to_string()));
    }
    let file = repo.host_file(name);
    fsutil::remove(&file)?;
    report.effects.push(Effect::Removed(repo.rel(&file)));
    for (secret, glob) in unbound {
        report.effects.push(Effect::Unbound { secret, glob });
    }
    Ok(report)
}

/// Re-encrypts what the policy gives `host` (or its containers) for the keys the
/// host files name now, as `keys rekey --host HOST`: how many secrets were
/// rewritten, and the sops files among them whose MAC did not match.
/// `earlier` names the readers as the fleet did before the host's key was replaced,
/// so that the lock can name the old key as a reader taken away.
fn rekey_host(
    ws: &mut Workspace,
    host: &str,
    identities: &mut crate::identity::Identities,
    prompt: &dyn crate::identity::Prompt,
    earlier: Option<&super::readers::Labels>,
) -> Result<(usize, Vec<String>)> {
    let mut plan = super::rekey::plan(ws, Some(host), Rewrite::Outdated)?;
    if let Some(earlier) = earlier {
        plan.name_readers(earlier);
    }
    if plan.changes.is_empty() {
        super::rekey::tidy(ws)?;
        return Ok((0, Vec::new()));
    }
    let done = super::rekey::apply(ws, plan, identities, prompt, &|| {})?;
    Ok((done.rewritten, done.mac_mismatch))
}

/// What `rotate_host` did: its effects on the host file and key, and the rekey.
pub struct Rotated {
    pub report: Report,
    pub rekeyed: usize,
    /// sops files rekeyed though their MAC did not match their values (relative to
    /// the root): their data keys were re-wrapped, values and MAC left as they were.
    pub mac_mismatch: Vec<String>,
}

/// Gives host `name` a new host key and re-encrypts, in the same run, every secret
/// its policy gives it (as `keys rekey --host NAME`). A generated key is stored
/// first, with its public half, and then the host file names it; a given key
/// removes a stored key of the old one first. A journal (`.keys-rotation`) written
/// before anything else lets the next `keys rekey` or `keys host rotate` undo a
/// killed run whose host file does not name the new key yet, or finish one whose
/// host file does. If the rekey fails, the host file, the key secret and the lock
/// are put back as they were, so the repository never names a key that its secrets
/// are not encrypted to.
pub fn rotate_host(
    repo: &Repo,
    name: &str,
    key: KeySource,
    identities: &mut crate::identity::Identities,
    prompt: &dyn crate::identity::Prompt,
) -> Result<Rotated> {
    prepare_rotation(repo, name, key, identities, prompt)?.apply(identities, prompt, None)
}

/// A host key rotation checked and ready to apply: the writer lock is held (from
/// here until it is applied or dropped), the new key made, and the host file's new
/// text known. Nothing is written until [`Rotation::apply`].
pub struct Rotation {
    ws: Workspace,
    name: String,
    public: Recipient,
    private: Option<Zeroizing<String>>,
    file: PathBuf,
    rel: String,
    old_text: String,
    new_text: String,
    key_plan: Option<KeyPlan>,
    stored: bool,
    mac_mismatch: Vec<String>,
}

/// What the switch on the host may answer when [`Rotation::apply`] asks it to keep
/// the new key: an error puts the repository back as it was.
pub type Switch<'a> = &'a mut dyn FnMut() -> Result<()>;

/// Checks a rotation of host `name` to `key` and makes the key, before anything is
/// written: the host exists, the key is new, its host file names a key to replace,
/// and a generated key can be stored for the admins. A rotation a killed run left is
/// settled first (finished or undone, as `keys rekey` does).
pub fn prepare_rotation(
    repo: &Repo,
    name: &str,
    key: KeySource,
    identities: &mut crate::identity::Identities,
    prompt: &dyn crate::identity::Prompt,
) -> Result<Rotation> {
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    let mut mac_mismatch = Vec::new();
    if let Pending::Finish(host) | Pending::Reverted(host) = settle_rotation(&mut ws)? {
        mac_mismatch = rekey_host(&mut ws, &host, identities, prompt, None)?.1;
        end_rotation(&ws)?;
    }
    let host = ws.fleet.require_host(name)?;
    let old_fingerprint = host.key.fingerprint();
    let (public, private) = key.pair(name)?;
    if public.fingerprint() == old_fingerprint {
        return Err(Error::SameKey {
            host: name.to_string(),
        });
    }
    let file = repo.host_file(name);
    let rel = repo.rel(&file);
    let old_text = host_file::read(&file, &rel)?;
    let no_key_line = || Error::InvalidFile {
        at: Location::named(&rel),
        reason: "no top-level `ssh_key:` line to replace".into(),
    };
    let new_text = host_file::replace_key(&old_text, &public, &rel)?.ok_or_else(no_key_line)?;
    if host_file::parse_host(name, &new_text, &rel)?
        .key
        .fingerprint()
        != public.fingerprint()
    {
        return Err(no_key_line());
    }
    let secret_name = layout::host_key_secret(name);
    let stored = ws.locate(&secret_name).is_ok() || ws.lockfile()?.contains(&secret_name);
    let key_plan = match (&private, stored) {
        (Some(_), false) => Some(plan_key_secret(&ws, &secret_name)?),
        _ => None,
    };
    Ok(Rotation {
        ws,
        name: name.to_string(),
        public,
        private,
        file,
        rel,
        old_text,
        new_text,
        key_plan,
        stored,
        mac_mismatch,
    })
}

impl Rotation {
    /// The host as its file names it now (with the old key).
    pub fn host(&self) -> Result<&crate::policy::fleet::Host> {
        self.ws.fleet.require_host(&self.name)
    }

    /// The new key.
    pub fn public(&self) -> &Recipient {
        &self.public
    }

    /// The new key's private half, when it was made here.
    pub fn private(&self) -> Option<&Zeroizing<String>> {
        self.private.as_ref()
    }

    /// Stores the new key, writes the host file and rekeys the host's secrets. With
    /// `switch`, the new key is on the running host but not kept there yet: the
    /// journal also holds the old host file, so that a run killed before `switch`
    /// confirmed is undone whole by the next `keys rekey` (the host put its old key
    /// back when the session ended); `switch` is called once the repository is
    /// rekeyed, and an error from it puts the repository back as it was.
    pub fn apply(
        self,
        identities: &mut crate::identity::Identities,
        prompt: &dyn crate::identity::Prompt,
        mut switch: Option<Switch<'_>>,
    ) -> Result<Rotated> {
        let Rotation {
            mut ws,
            name,
            public,
            private,
            file,
            rel,
            old_text,
            new_text,
            key_plan,
            stored,
            mut mac_mismatch,
        } = self;
        let repo = ws.repo.clone();
        let name = name.as_str();
        let secret_name = layout::host_key_secret(name);
        let lock_before = fsutil::read_optional(&repo.lockfile())?;
        let earlier = super::readers::labels(&ws.fleet);
        let mut journal = Journal::read_state(
            &mut ws,
            name,
            &public,
            key_plan.as_ref().is_some_and(|p| p.policy.is_some()),
        )?;
        if switch.is_some() {
            journal.host_file = Some(old_text.clone().into_bytes());
        }
        let journal_file = repo.root().join(layout::ROTATION_JOURNAL);
        fsutil::write_atomic(&journal_file, journal.render().as_bytes(), fsutil::PUBLIC)?;
        let mut report = Report::default();
        let result = (|| -> Result<(usize, Vec<String>)> {
            // The new key's private half is stored before the host file names it.
            match (&private, key_plan) {
                (Some(private), Some(plan)) => {
                    apply_key_secret(&mut ws, plan, private, &public, &mut report)?
                }
                (Some(private), None) => {
                    let opts = EncryptOptions {
                        force: true,
                        allow_empty: false,
                    };
                    let done = store_key(&mut ws, &secret_name, private, &public, &opts)?;
                    report.effects.push(Effect::KeyStored {
                        path: ws.repo.rel(&done.path),
                        secret: secret_name.clone(),
                        recipients: done.recipients,
                    });
                }
                // A stored private key of the old key is no longer this host's.
                (None, _) if stored => {
                    let done = secret::remove(&mut ws, &secret_name)?;
                    if let Some(p) = done.path {
                        report.effects.push(Effect::Removed(ws.repo.rel(&p)));
                    }
                }
                (None, _) => {}
            }
            // From here on an interrupted rotation is finished, not undone (unless
            // the journal holds the old host file: a switch not confirmed).
            fsutil::write_atomic(&file, new_text.as_bytes(), fsutil::PUBLIC)?;
            report.effects.push(Effect::Updated(rel.clone()));
            ws.reload()?;
            let rekeyed = rekey_host(&mut ws, name, identities, prompt, Some(&earlier))?;
            if let Some(switch) = switch.as_mut() {
                switch()?;
            }
            Ok(rekeyed)
        })();
        let rekeyed = match result {
            Ok((rekeyed, mismatched)) => {
                mac_mismatch.extend(mismatched);
                rekeyed
            }
            Err(e) => {
                // Put back what the journal says, the host file and the whole lock.
                let _ = fsutil::write_atomic(&file, old_text.as_bytes(), fsutil::PUBLIC);
                ws.reload().ok();
                if switch.is_some() {
                    // Secrets the rekey wrote for the new key go back to the old one.
                    let _ = journal.undo(&mut ws);
                    ws.reload().ok();
                    let _ = rekey_host(&mut ws, name, identities, prompt, None);
                } else {
                    let _ = journal.undo(&mut ws);
                }
                let lock_file = repo.lockfile();
                let _ = match &lock_before {
                    Some(b) if switch.is_none() => {
                        fsutil::write_atomic(&lock_file, b, fsutil::PUBLIC)
                    }
                    Some(_) => Ok(()),
                    None if lock_file.exists() && switch.is_none() => fsutil::remove(&lock_file),
                    None => Ok(()),
                };
                let _ = fsutil::remove(&journal_file);
                return Err(e);
            }
        };
        end_rotation(&ws)?;
        report.key = Some(public);
        Ok(Rotated {
            report,
            rekeyed,
            mac_mismatch,
        })
    }
}

/// What a killed rotation left, once `settle_rotation` has seen it.
pub enum Pending {
    /// No rotation was interrupted.
    None,
    /// The host file did not name the new key yet: the rotation was undone.
    Undone(String),
    /// The host file names the new key: the host's secrets must be rekeyed for it,
    /// then `end_rotation` removes the journal.
    Finish(String),
    /// A new key pushed to the running host was never confirmed there (the host put
    /// its old key back when the session ended): the host file, its key secret and
    /// lock line were put back, and the host's secrets must be rekeyed for the old
    /// key again.
    Reverted(String),
}

/// Settles a rotation that a killed run left (its journal is there). Undoes it when
/// the host file does not name the new key yet: the key secret, its public half,
/// its lock line and a policy file the rotation created are put back as they were.
/// Otherwise the rotation is to be finished by rekeying the host's secrets.
pub fn settle_rotation(ws: &mut Workspace) -> Result<Pending> {
    let path = ws.repo.root().join(layout::ROTATION_JOURNAL);
    let Some(text) = fsutil::read_optional(&path)? else {
        return Ok(Pending::None);
    };
    let journal = Journal::parse(&text)?;
    let named = ws
        .fleet
        .host(&journal.host)?
        .is_some_and(|h| h.key.fingerprint() == journal.key.fingerprint());
    if let Some(old) = &journal.host_file {
        if named {
            let file = ws.repo.host_file(&journal.host);
            let rel = ws.repo.rel(&file);
            let text = crate::policy::text_of(&rel, old)?;
            host_file::parse_host(&journal.host, text, &rel)?;
            fsutil::write_atomic(&file, old, fsutil::PUBLIC)?;
            ws.reload()?;
        }
        journal.undo(ws)?;
        fsutil::remove(&path)?;
        ws.reload()?;
        return Ok(if named {
            Pending::Reverted(journal.host)
        } else {
            Pending::Undone(journal.host)
        });
    }
    if named {
        return Ok(Pending::Finish(journal.host));
    }
    journal.undo(ws)?;
    fsutil::remove(&path)?;
    ws.reload()?;
    Ok(Pending::Undone(journal.host))
}

/// Removes the journal of a finished rotation.
pub fn end_rotation(ws: &Workspace) -> Result<()> {
    let path = ws.repo.root().join(layout::ROTATION_JOURNAL);
    if std::fs::symlink_metadata(&path).is_ok() {
        fsutil::remove(&path)?;
    }
    Ok(())
}

/// The rotation journal: the host, its new key, and what the host's key secret, its
/// public half and its lock line held before (the stored key is ciphertext for the
/// admins, as in the repository), so that a rotation killed before its host file
/// named the new key can be undone.
struct Journal {
    host: String,
    key: Recipient,
    secret: Option<Vec<u8>>,
    public: Option<Vec<u8>>,
    lock: Option<String>,
    created_policy: bool,
    /// The host file before the rotation, kept while a new key pushed to the
    /// running host is not confirmed there.
    host_file: Option<Vec<u8>>,
}

const JOURNAL_HEAD: &str = "\
# keys host rotate: a host key rotation in progress, interrupted if this file is
# still here. `keys rekey` finishes it, or undoes it if the host file does not name
# the new key yet.
";

impl Journal {
    fn read_state(
        ws: &mut Workspace,
        host: &str,
        key: &Recipient,
        created_policy: bool,
    ) -> Result<Journal> {
        let name = layout::host_key_secret(host);
        let root = ws.repo.root().to_path_buf();
        let read = |rel: String| -> Result<Option<Vec<u8>>> {
            let path = root.join(rel);
            match std::fs::symlink_metadata(&path) {
                Ok(_) => fsutil::read(&path).map(Some),
                Err(_) => Ok(None),
            }
        };
        let lock = crate::format::lockfile::Lockfile::parse(ws.lockfile()?.text())?;
        Ok(Journal {
            host: host.to_string(),
            key: key.clone(),
            secret: read(crate::format::secret_path(&name, Format::Age))?,
            public: match layout::public_half(&name) {
                Some(rel) => read(rel)?,
                None => None,
            },
            lock: lock.entries.get(&name).map(crate::format::lockfile::fields),
            created_policy,
            host_file: None,
        })
    }

    fn render(&self) -> String {
        use base64::Engine as _;
        let b64 = |d: &Option<Vec<u8>>| match d {
            Some(d) => base64::engine::general_purpose::STANDARD.encode(d),
            None => "-".into(),
        };
        let mut text = format!(
            "{JOURNAL_HEAD}host {}\nkey {}\nsecret {}\npublic {}\nlock {}\npolicy {}\n",
            self.host,
            host_file::key_line(&self.key),
            b64(&self.secret),
            b64(&self.public),
            self.lock.as_deref().unwrap_or("-"),
            if self.created_policy { "created" } else { "-" },
        );
        if self.host_file.is_some() {
            text.push_str(&format!("pushed {}\n", b64(&self.host_file)));
        }
        text
    }

    /// Reads a journal; errors name `.keys-rotation` and the line.
    fn parse(data: &[u8]) -> Result<Journal> {
        use base64::Engine as _;
        let invalid = |line: Option<usize>, reason: String| {
            let at = Location::named(layout::ROTATION_JOURNAL);
            Error::InvalidFile {
                at: match line {
                    Some(n) => at.at_line(n as u64 + 1),
                    None => at,
                },
                reason,
            }
        };
        let text = std::str::from_utf8(data).map_err(|_| invalid(None, "not UTF-8 text".into()))?;
        let mut fields = std::collections::BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            if !line.starts_with('#') && !line.is_empty() {
                let (k, v) = line.split_once(' ').unwrap_or((line, ""));
                fields.insert(k, (n, v));
            }
        }
        let field = |k: &str| {
            fields.get(k).copied().ok_or_else(|| {
                invalid(
                    None,
                    format!("no `{k}` line; remove the file if no rotation was running"),
                )
            })
        };
        let opt = |v: &str| (v != "-").then(|| v.to_string());
        let bytes = |k: &str| {
            let (n, v) = field(k)?;
            match opt(v) {
                None => Ok(None),
                Some(v) => base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(Some)
                    .map_err(|_| invalid(Some(n), "unreadable saved file".into())),
            }
        };
        let (n, host) = field("host")?;
        layout::check_name(host).map_err(|r| invalid(Some(n), format!("host name: {r}")))?;
        let (n, key) = field("key")?;
        let key = Recipient::parse_line(
            key,
            &Location::named(layout::ROTATION_JOURNAL).at_line(n as u64 + 1),
        )?;
        Ok(Journal {
            host: host.to_string(),
            key,
            secret: bytes("secret")?,
            public: bytes("public")?,
            lock: opt(field("lock")?.1),
            created_policy: field("policy")?.1 == "created",
            host_file: match fields.contains_key("pushed") {
                true => bytes("pushed")?,
                false => None,
            },
        })
    }

    /// Puts the host's key secret, its public half, its lock line and the policy
    /// back as the journal says they were.
    fn undo(&self, ws: &mut Workspace) -> Result<()> {
        let name = layout::host_key_secret(&self.host);
        let root = ws.repo.root().to_path_buf();
        let secret_file = root.join(crate::format::secret_path(&name, Format::Age));
        let public_file = layout::public_half(&name).map(|rel| root.join(rel));
        match &self.lock {
            Some(line) => {
                let entry = crate::format::lockfile::Lockfile::parse(&format!("{name} {line}\n"))?
                    .entries
                    .remove(&name)
                    .ok_or_else(|| Error::InvalidFile {
                        at: Location::named(layout::ROTATION_JOURNAL),
                        reason: "unreadable lock line".into(),
                    })?;
                ws.lockfile()?.upsert(&name, &entry);
            }
            None => {
                ws.lockfile()?.remove(&name);
            }
        }
        let lock_text = ws.lockfile()?.text().to_string();
        let lock_file = ws.repo.lockfile();
        let mut files: Vec<(&Path, &[u8], u32)> = Vec::new();
        let mut gone: Vec<&Path> = Vec::new();
        for (path, held) in std::iter::once((Some(&secret_file), &self.secret))
            .chain(std::iter::once((public_file.as_ref(), &self.public)))
        {
            let Some(path) = path else { continue };
            match held {
                Some(data) => files.push((path, data, fsutil::PUBLIC)),
                None if std::fs::symlink_metadata(path).is_ok() => gone.push(path),
                None => {}
            }
        }
        if !lock_text.is_empty() || lock_file.exists() {
            files.push((&lock_file, lock_text.as_bytes(), fsutil::PUBLIC));
        }
        if self.secret.is_some()
            && let Some(parent) = secret_file.parent()
        {
            fsutil::create_dirs_within(&root, parent.strip_prefix(&root).unwrap_or(parent), 0o755)?;
        }
        fsutil::write_and_remove(&files, &gone)?;
        let policy = root.join(KEY_POLICY);
        if self.created_policy
            && fsutil::read(&policy).is_ok_and(|p| p == KEY_POLICY_TEXT.as_bytes())
        {
            fsutil::remove(&policy)?;
        }
        Ok(())
    }
}

/// What storing a generated key needs: its secret name and, when no rule gives it to
/// exactly the admins, the policy file to create.
pub(super) struct KeyPlan {
    secret: String,
    policy: Option<PathBuf>,
    rule: &'static AdminsRule,
}

/// Checks, before anything is written, that the key secret does not exist and that
/// it will be encrypted to the admins only.
pub(super) fn plan_key_secret(ws: &Workspace, name: &str) -> Result<KeyPlan> {
    if let Ok((path, _)) = ws.locate(name) {
        return Err(Error::Exists { path });
    }
    plan_admins_secret(ws, name, &HOST_KEYS)
}

/// Checks, before anything is written, that secret `name` will be encrypted to the
/// admins only: by a rule of the policy, or by `rule`'s file, to be created.
pub(super) fn plan_admins_secret(
    ws: &Workspace,
    name: &str,
    rule: &'static AdminsRule,
) -> Result<KeyPlan> {
    let admins = admin_readers(&ws.repo, rule)?;
    let admins_only = |p: &Policy| {
        p.rule_for(name)
            .is_some_and(|(_, r)| r.format == Format::Age && r.readers == admins)
    };
    if admins_only(&ws.policy) {
        return Ok(KeyPlan {
            secret: name.to_string(),
            policy: None,
            rule,
        });
    }
    let path = ws.repo.root().join(rule.file);
    let blocking = ws.policy.rule_for(name).map(|(_, r)| r.at.clone());
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(Error::KeyRuleMissing {
            secret: name.to_string(),
            file: rule.file.to_string(),
            glob: rule.glob.to_string(),
            rule: blocking,
        });
    }
    let probe = probe_policy(&ws.repo, rule)?;
    if !admins_only(&probe) {
        let at = probe
            .rule_for(name)
            .map_or_else(|| Location::named(rule.file), |(_, r)| r.at.clone());
        return Err(Error::KeyRuleOverridden {
            secret: name.to_string(),
            file: rule.file.to_string(),
            rule: at,
        });
    }
    Ok(KeyPlan {
        secret: name.to_string(),
        policy: Some(path),
        rule,
    })
}

/// The work tree's fleet and policies with `rule`'s file added.
fn probe_policy(repo: &Repo, rule: &AdminsRule) -> Result<Policy> {
    let mut files =
        Snapshot::from_work_tree(repo, &[layout::ADMINS, layout::HOSTS, layout::POLICIES])?;
    files.insert(rule.file.to_string(), Blob::File(rule.text.into()));
    let fleet = crate::policy::Fleet::from_snapshot(&files)?;
    Policy::from_snapshot(&files, &fleet)
}

/// What `readers: [admins]` resolves to in this repository.
fn admin_readers(repo: &Repo, rule: &AdminsRule) -> Result<Vec<Reader>> {
    let probe = probe_policy(repo, rule)?;
    probe
        .rules
        .iter()
        .find(|r| r.at.file == rule.file)
        .map(|r| r.readers.clone())
        .ok_or_else(|| Error::NoAdmins {
            dir: layout::ADMINS.to_string(),
        })
}

pub(super) fn apply_key_secret(
    ws: &mut Workspace,
    plan: KeyPlan,
    private: &Zeroizing<String>,
    public: &Recipient,
    report: &mut Report,
) -> Result<()> {
    create_rule_file(ws, &plan, report)?;
    let opts = EncryptOptions {
        force: false,
        allow_empty: false,
    };
    let done = store_key(ws, &plan.secret, private, public, &opts)?;
    report.effects.push(Effect::KeyStored {
        path: ws.repo.rel(&done.path),
        secret: plan.secret,
        recipients: done.recipients,
    });
    Ok(())
}

/// Creates the policy file a plan needs, if any, and reads the policy again.
pub(super) fn create_rule_file(
    ws: &mut Workspace,
    plan: &KeyPlan,
    report: &mut Report,
) -> Result<()> {
    if let Some(path) = &plan.policy {
        fsutil::write_new(path, plan.rule.text.as_bytes(), fsutil::PUBLIC)?;
        report
            .effects
            .push(Effect::Created(plan.rule.file.to_string()));
        ws.reload()?;
    }
    Ok(())
}

/// Encrypts a generated private key as secret `name`, with its public half beside it.
fn store_key(
    ws: &mut Workspace,
    name: &str,
    private: &Zeroizing<String>,
    public: &Recipient,
    opts: &EncryptOptions,
) -> Result<secret::Written> {
    let line = format!("{}\n", host_file::key_line(public));
    let beside = layout::public_half(name).map(|rel| ws.repo.root().join(rel));
    let beside: Vec<(&Path, &[u8])> = beside
        .iter()
        .map(|p| (p.as_path(), line.as_bytes()))
        .collect();
    secret::encrypt_with(ws, name, private.as_bytes(), opts, None, &beside)
}

/// Reads the host key from a file: an ssh-ed25519 public key, or a keyscan or
/// known_hosts line. Other key types are refused by name.
/// The host key in a file: a public key (or a known_hosts or ssh-keyscan line), or an
/// unencrypted OpenSSH ed25519 private key, whose public half is taken. With
/// `store_private` the file must be such a private key, kept to be stored as the
/// host's key secret.
pub fn read_key_file(path: &Path, store_private: bool) -> Result<KeySource> {
    let data = Zeroizing::new(fsutil::read_private(path)?.data);
    let shown = path.display().to_string();
    let at = Location::named(&shown);
    let text = std::str::from_utf8(&data).map_err(|_| Error::InvalidFile {
        at: at.clone(),
        reason: "not UTF-8 text".into(),
    })?;
    if !text.contains("PRIVATE KEY-----") {
        if store_private {
            return Err(Error::InvalidKey {
                at,
                reason:
                    "--store-private needs the host's private key; this file holds a public key"
                        .into(),
            });
        }
        return Recipient::host_key_in(text, &shown).map(KeySource::Given);
    }
    let public = match crate::identity::Parsed::parse(text.as_bytes(), &shown)? {
        crate::identity::Parsed::Ssh(key) => key.public()?,
        crate::identity::Parsed::EncryptedSsh(_) => {
            return Err(Error::InvalidKey {
                at,
                reason: "a passphrase-protected private key; a host key has no passphrase (sshd cannot use one)".into(),
            });
        }
        _ => {
            return Err(Error::InvalidKey {
                at,
                reason: "not an OpenSSH private key".into(),
            });
        }
    };
    if !matches!(public, Recipient::SshEd25519(_)) {
        return Err(Error::UnsupportedKey {
            at,
            key_type: public.kind().to_string(),
            purpose: Some(crate::recipient::HOST_KEY_PURPOSE),
        });
    }
    Ok(if store_private {
        KeySource::Existing {
            public,
            private: Zeroizing::new(text.to_string()),
        }
    } else {
        KeySource::Given(public)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";

    #[test]
    fn a_broken_journal_is_named_with_its_line() {
        let full = |secret: &str| {
            format!("# head\nhost h\nkey {KEY}\nsecret {secret}\npublic -\nlock -\npolicy -\n")
        };
        let cases = [
            ("host ../x\n".to_string(), ".keys-rotation:1: host name: "),
            (
                "host h\nkey ssh-ed25519 AAAA\n".to_string(),
                ".keys-rotation:2: malformed",
            ),
            ("host h\n".to_string(), ".keys-rotation: no `key` line"),
            (full("%%%"), ".keys-rotation:4: unreadable saved file"),
        ];
        for (text, want) in cases {
            let err = Journal::parse(text.as_bytes()).err().unwrap().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
            assert_eq!(err.matches(layout::ROTATION_JOURNAL).count(), 1, "{err}");
        }
        let journal = Journal::parse(full("-").as_bytes()).unwrap();
        assert_eq!((journal.host.as_str(), journal.secret), ("h", None));
    }
}
