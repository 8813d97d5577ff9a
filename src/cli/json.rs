//! What `--json` prints: each command's document as serde structs, version 1. Field
//! names are a contract with scripts: fields may be added while `version` stays 1,
//! never renamed or removed. The schemas below end each command's long help, and so
//! its man page.

use serde::Serialize;

use crate::error::Result;
use crate::ops::check;
use crate::ops::readers::Audience;
use crate::policy::fleet::{Container as FleetContainer, Host as FleetHost};
use crate::policy::{Fleet, Policy};

use super::shared::Counts;
use super::ui;

/// The version every document carries.
pub(crate) const VERSION: u32 = 1;

// The schemas keep to 72 columns and start each line but a heading with a space,
// so that the man page shows them as they are written.

/// A secret as `keys ls --json` and `keys status --json` print it.
const SECRET: &str = r#"SECRET:
  {"name": "web/token", "path": "secrets/web/token.age",
   "format": "age", "status": "ok", "rule": "policies/default.yaml:4",
   "readers": ["admins", "host:web"],
   "recipients": [
     {"reader": "alice", "recipient": "age1…"},
     {"reader": "host:web", "recipient": "ssh-ed25519 AAAA…"}],
   "changed": "2026-03-01T09:30:00Z", "rotate_every": "90d",
   "seen_by": [{"reader": "host:old", "id": "SHA256:…"}]}
  path        its file, relative to the repository
  format      age, sops-yaml, sops-json, sops-dotenv, sops-ini or
              sops-binary (null for a file of no secret format)
  status      ok, drift, modified, unknown file, invalid or missing
  rule        the policy file and line of the rule that matches it
              (null when none does)
  readers     the rule's readers as the policy writes them
  recipients  each reader the rule resolves to (groups expanded), with
              each of its keys in the form the policy encrypts to: an
              age1… key, or the SSH key of a host or container that
              reads an age file
  changed     when its value last changed, as keys.lock says (null
              when it does not say)
  rotate_every  its rule's rotate_every (null when it has none)
  seen_by     the readers taken away since its value last changed, who
              could read it: reader is the policy's name for the key
              (null when keys cannot name it), id its short fingerprint"#;

/// A host as `keys host ls --json` and `keys status --json` print it.
const HOST: &str = r#"HOST:
  {"name": "web", "address": "203.0.113.10", "ssh_port": 22,
   "ssh_key": "ssh-ed25519 AAAA…", "fingerprint": "SHA256:…",
   "age": "age1…", "system": "x86_64-linux", "flake_attr": "web",
   "persist": "/persistent", "containers": [CONTAINER, …]}
  address, system and persist are null when the host file has none;
  age is the age key derived from the SSH host key.

CONTAINER:
  {"name": "bot", "own_key": false, "ssh_key": "ssh-ed25519 AAAA…",
   "fingerprint": "SHA256:…", "age": "age1…"}
  A container without its own key has its host's."#;

const STABLE: &str = r#"While "version" is 1, fields are only added, never renamed or
removed. Errors still go to stderr as text, with the exit codes of
`keys --help`."#;

/// The long help that ends `keys ls --help` and its man page.
pub(crate) fn ls_schema() -> String {
    format!(
        "JSON (--json), version 1:\n  {{\"version\": 1, \"secrets\": [SECRET, …]}}\n\n{SECRET}\n\n{STABLE}"
    )
}

/// The long help that ends `keys status --help` and its man page.
pub(crate) fn status_schema() -> String {
    format!(
        r#"JSON (--json), version 1 (every secret, with or without --long):
  {{"version": 1, "repository": "/path/to/fleet",
   "admins": [{{"name": "alice", "recipients": ["age1…", …]}}, …],
   "hosts": [HOST, …], "secrets": [SECRET, …],
   "totals": COUNTS, "problems": 0}}
  With --host NAME, hosts holds that host alone, and secrets what it
  and its containers read. problems counts what is wrong with the
  secrets and keys.lock (`keys check` lists it).

{HOST}
  In status, a HOST and each CONTAINER also have "secrets": COUNTS,
  the secrets the policy gives it (a host's include its containers').

COUNTS:
  {{"ok": 12, "drift": 0, "modified": 0, "unknown file": 0,
   "invalid": 0, "missing": 0}}
  Every status is always present.

{SECRET}

{STABLE}"#
    )
}

/// The long help that ends `keys host ls --help` (and `keys host --help`).
pub(crate) fn host_ls_schema() -> String {
    format!(
        "JSON (keys host ls --json), version 1:\n  {{\"version\": 1, \"hosts\": [HOST, …]}}\n\n{HOST}\n\n{STABLE}"
    )
}

/// The long help that ends `keys check --help` and its man page.
pub(crate) fn check_schema() -> String {
    format!(
        r#"JSON (--json), version 1:
  {{"version": 1, "staged": false, "secrets": 12,
   "problems": [FINDING, …], "warnings": [FINDING, …]}}
  keys check --json exits 8 when problems is not empty.

FINDING:
  {{"file": "secrets/web/token.age", "line": null, "kind": "drift",
   "message": "drift: encrypted to 2 recipients, …",
   "hint": "run `keys rekey` (add --host NAME to limit it to …"}}
  file     the file it is about, relative to the repository (null when
           it is about no one file)
  line     the line in that file (null: the whole file)
  kind     {}
  message  what is wrong
  hint     what to do about it

{STABLE}"#,
        textwrap(&check::Kind::ALL.map(|k| k.name()).join(", "), 11, 72)
    )
}

/// `text` in lines of at most `width` columns, each after the first indented by
/// `indent` spaces (the first follows a label of that width).
fn textwrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            line.clear();
        } else if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

/// Prints `value` as pretty JSON and a newline.
pub(crate) fn print<T: Serialize>(value: &T) -> Result<()> {
    ui::out(&to_string(value)?)
}

/// `value` as pretty JSON and a newline.
pub(crate) fn to_string<T: Serialize>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| crate::error::Error::Bug {
        what: format!("JSON output: {e}"),
    })?;
    text.push('\n');
    Ok(text)
}

#[derive(Serialize)]
pub(crate) struct Secret {
    name: String,
    path: Option<String>,
    format: Option<&'static str>,
    status: &'static str,
    rule: Option<String>,
    readers: Vec<String>,
    recipients: Vec<Recipient>,
    changed: Option<String>,
    rotate_every: Option<String>,
    seen_by: Vec<SeenBy>,
}

#[derive(Serialize)]
struct SeenBy {
    reader: Option<String>,
    id: String,
}

#[derive(Serialize)]
struct Recipient {
    reader: String,
    recipient: String,
}

impl Secret {
    pub(crate) fn new(s: &check::Secret, policy: &Policy, audience: &Audience) -> Secret {
        let recipients = s
            .rule
            .map(|i| audience.recipients(i))
            .unwrap_or_default()
            .iter()
            .flat_map(|(reader, keys)| {
                keys.iter().map(|k| Recipient {
                    reader: reader.label(),
                    recipient: k.to_string(),
                })
            })
            .collect();
        let rule = s.rule.and_then(|i| policy.rules.get(i));
        Secret {
            name: s.name.clone(),
            path: s.path.clone(),
            format: s.format.map(|f| f.name()),
            status: s.status.name(),
            rule: rule.map(|r| r.at.to_string()),
            readers: s.readers.clone(),
            recipients,
            changed: s.changed.map(crate::format::lockfile::format_date),
            rotate_every: rule.and_then(|r| r.rotate_every.as_ref().map(|p| p.text.clone())),
            seen_by: s
                .seen
                .iter()
                .map(|x| SeenBy {
                    reader: x.label.clone(),
                    id: x.id.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Host {
    name: String,
    address: Option<String>,
    ssh_port: u16,
    ssh_key: String,
    fingerprint: String,
    age: Option<String>,
    system: Option<String>,
    flake_attr: String,
    persist: Option<String>,
    containers: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<Counts>,
}

#[derive(Serialize)]
pub(crate) struct Container {
    name: String,
    own_key: bool,
    ssh_key: String,
    fingerprint: String,
    age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<Counts>,
}

impl Host {
    /// A host, with the secrets counts of it and of each container when `counts`
    /// gives them.
    pub(crate) fn new(h: &FleetHost, counts: Option<&dyn Fn(&Whose) -> Counts>) -> Host {
        Host {
            name: h.name.clone(),
            address: h.address.clone(),
            ssh_port: h.ssh_port,
            ssh_key: h.key.to_string(),
            fingerprint: h.key.fingerprint(),
            age: h.key.to_x25519(),
            system: h.system.clone(),
            flake_attr: h.flake_attr.clone(),
            persist: h.persist.clone(),
            containers: h
                .containers
                .iter()
                .map(|c| {
                    let key = c.key(h);
                    Container {
                        name: c.name.clone(),
                        own_key: c.own_key.is_some(),
                        ssh_key: key.to_string(),
                        fingerprint: key.fingerprint(),
                        age: key.to_x25519(),
                        secrets: counts.map(|f| f(&Whose::Container(c))),
                    }
                })
                .collect(),
            secrets: counts.map(|f| f(&Whose::Host(h))),
        }
    }
}

/// Whose secrets are counted: a host's (with its containers'), or one container's.
pub(crate) enum Whose<'a> {
    Host(&'a FleetHost),
    Container(&'a FleetContainer),
}

/// `keys host ls --json`.
#[derive(Serialize)]
pub(crate) struct HostList {
    pub(crate) version: u32,
    pub(crate) hosts: Vec<Host>,
}

impl HostList {
    pub(crate) fn new(fleet: &Fleet) -> Result<HostList> {
        Ok(HostList {
            version: VERSION,
            hosts: fleet.hosts()?.map(|h| Host::new(h, None)).collect(),
        })
    }
}

/// `keys ls --json`.
#[derive(Serialize)]
pub(crate) struct SecretList {
    pub(crate) version: u32,
    pub(crate) secrets: Vec<Secret>,
}

/// `keys status --json`.
#[derive(Serialize)]
pub(crate) struct Fleetwide {
    pub(crate) version: u32,
    pub(crate) repository: String,
    pub(crate) admins: Vec<Admin>,
    pub(crate) hosts: Vec<Host>,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) totals: Counts,
    pub(crate) problems: usize,
}

#[derive(Serialize)]
pub(crate) struct Admin {
    pub(crate) name: String,
    pub(crate) recipients: Vec<String>,
}

/// `keys check --json`.
#[derive(Serialize)]
pub(crate) struct CheckReport {
    pub(crate) version: u32,
    pub(crate) staged: bool,
    pub(crate) secrets: usize,
    pub(crate) problems: Vec<Finding>,
    pub(crate) warnings: Vec<Finding>,
}

#[derive(Serialize)]
pub(crate) struct Finding {
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u64>,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) hint: String,
}
