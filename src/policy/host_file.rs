//! A host file, `recipients/hosts/NAME.yaml`: read with serde into a checked [`Host`],
//! written new with serde through the same YAML crate, and edited as text where the
//! rest of the file, comments included, must stay as it is (a container added, a key
//! replaced).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::{DoubleQuoted, Spanned};

use crate::error::{Error, Location, Result};
use crate::layout;
use crate::recipient::Recipient;

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
    /// Keys that may log in to this host only to run one command (a CI's deploy).
    pub deploy_keys: Vec<DeployKey>,
    /// Its users with keys of their own, who read secrets through home-manager.
    pub users: Vec<User>,
}

/// A user of a host who decrypts with their own SSH key (`~/.ssh/id_ed25519`), as
/// the reader `user:NAME@HOST`.
pub struct User {
    pub name: String,
    pub key: Recipient,
}

pub struct Container {
    pub name: String,
    /// `None`: shares the host's key through a read-only bind mount.
    pub own_key: Option<Recipient>,
}

/// A deploy key: an SSH key that the host authorizes for `user` only to run
/// `command`, its private half kept as the admins' secret `deploy/NAME`.
pub struct DeployKey {
    pub name: String,
    pub key: Recipient,
    pub user: String,
    pub command: String,
}

impl DeployKey {
    /// The line of `authorized_keys` that lets the key run its command and nothing
    /// else: no shell, no port, agent or X11 forwarding, no terminal.
    pub fn authorized_key(&self) -> String {
        format!(
            "restrict,command=\"{}\" {}",
            self.command,
            key_line(&self.key)
        )
    }
}

/// The host key's path on the machine, below the persist prefix (where
/// `keys stage-install` puts it and the exported NixOS modules read it).
pub const HOST_KEY: &str = "etc/ssh/ssh_host_ed25519_key";
/// Where the containers' own keys live on their host, below the persist prefix.
pub const CONTAINER_KEYS: &str = "etc/ssh/containers";

impl Host {
    /// The absolute path on the machine of `rel` (below the persist prefix).
    pub fn on_host(&self, rel: &str) -> String {
        format!("{}/{rel}", self.persist.as_deref().unwrap_or(""))
    }
}

impl Container {
    /// The key this container decrypts with: its own, or its host's.
    pub fn key<'a>(&'a self, host: &'a Host) -> &'a Recipient {
        self.own_key.as_ref().unwrap_or(&host.key)
    }

    /// Where its own key lives on its host, below the persist prefix.
    pub fn own_key_path(&self) -> String {
        format!("{CONTAINER_KEYS}/{}/ssh_host_ed25519_key", self.name)
    }
}

/// The host file as written on disk.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    /// The host's public SSH host key (`ssh-ed25519 AAAA…`).
    ssh_key: Spanned<String>,
    #[serde(default)]
    address: Option<Spanned<String>>,
    #[serde(default)]
    ssh_port: Option<u16>,
    #[serde(default)]
    system: Option<Spanned<String>>,
    #[serde(default)]
    flake_attr: Option<Spanned<String>>,
    #[serde(default)]
    persist: Option<Spanned<String>>,
    #[serde(default)]
    ssh_user: Option<Spanned<String>>,
    #[serde(default)]
    flake_dir: Option<Spanned<String>>,
    #[serde(default)]
    age_key_file: Option<Spanned<String>>,
    #[serde(default)]
    containers: BTreeMap<String, ContainerFile>,
    #[serde(default)]
    deploy_keys: Option<BTreeMap<String, DeployKeyFile>>,
    #[serde(default)]
    users: BTreeMap<String, UserFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    /// The user's own public SSH key.
    ssh_key: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployKeyFile {
    key: Spanned<String>,
    user: Spanned<String>,
    command: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerFile {
    /// The container's own key; absent when it shares the host's.
    #[serde(default)]
    ssh_key: Option<Spanned<String>>,
}

const SYSTEMS: &[&str] = &["x86_64-linux", "aarch64-linux"];

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
    // Each value is checked where it is written: the file and the line of the value.
    let invalid = |value: &Spanned<String>, reason: String| Error::InvalidFile {
        at: Location::named(file).at_line(value.referenced.line()),
        reason,
    };
    if let Some(system) = &raw.system
        && !SYSTEMS.contains(&system.value.as_str())
    {
        return Err(invalid(
            system,
            format!(
                "system {:?} is not one of {}",
                system.value,
                SYSTEMS.join(", ")
            ),
        ));
    }
    for (field, value, root_allowed) in [
        ("persist", &raw.persist, true),
        ("flake_dir", &raw.flake_dir, true),
        ("age_key_file", &raw.age_key_file, false),
    ] {
        if let Some(path) = value
            && let Err(why) = plain_absolute(&path.value, root_allowed)
        {
            return Err(invalid(path, format!("{field} {:?} {why}", path.value)));
        }
    }
    let checks: [(&str, &Option<Spanned<String>>, Validator, &str); 3] = [
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
            && !valid(&value.value)
        {
            return Err(invalid(
                value,
                format!("{field} {:?} is not {what}", value.value),
            ));
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
    let mut deploy_keys = Vec::new();
    for (dname, d) in raw.deploy_keys.unwrap_or_default() {
        layout::check_name(&dname).map_err(|reason| Error::InvalidName {
            at: Location::named(file),
            name: dname.clone(),
            reason,
        })?;
        let key = spanned_key(file, &d.key, "a deploy key")?;
        if let Err(why) = unix_user(&d.user.value) {
            return Err(invalid(&d.user, format!("user {:?} {why}", d.user.value)));
        }
        if let Err(why) = forced_command(&d.command.value) {
            return Err(invalid(&d.command, format!("command {why}")));
        }
        deploy_keys.push(DeployKey {
            name: dname,
            key,
            user: d.user.value,
            command: d.command.value,
        });
    }
    let mut users = Vec::new();
    for (uname, u) in raw.users {
        if let Err(why) = unix_user(&uname) {
            return Err(invalid(&u.ssh_key, format!("user {uname:?} {why}")));
        }
        users.push(User {
            name: uname,
            key: spanned_key(file, &u.ssh_key, "a user's ssh_key")?,
        });
    }
    Ok(Host {
        name: name.to_string(),
        key,
        address: raw.address.map(|v| v.value),
        ssh_port: raw.ssh_port.unwrap_or(22),
        system: raw.system.map(|v| v.value),
        flake_attr: raw.flake_attr.map_or_else(|| name.to_string(), |v| v.value),
        persist: raw.persist.map(|v| v.value).filter(|p| p != "/"),
        ssh_user: raw.ssh_user.map_or_else(|| "root".to_string(), |v| v.value),
        flake_dir: raw
            .flake_dir
            .map_or_else(|| "/etc/nixos".to_string(), |v| v.value),
        age_key_file: raw.age_key_file.map(|v| v.value),
        containers,
        deploy_keys,
        users,
    })
}

/// Why `user` is not a user name that NixOS and useradd accept for a login: a
/// lowercase letter or '_', then lowercase letters, digits, '_' and '-', at most 32.
pub fn unix_user(user: &str) -> std::result::Result<(), &'static str> {
    let mut chars = user.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    match (first && rest, user.len() <= 32) {
        (true, true) => Ok(()),
        (_, false) => Err("is longer than 32 characters"),
        (false, _) => Err(
            "is not a user name (a lowercase letter or '_', then lowercase letters, digits, '_' and '-')",
        ),
    }
}

/// The longest forced command a deploy key may carry.
pub const MAX_COMMAND: usize = 2048;

/// Why `command` cannot be a forced command in an `authorized_keys` line: sshd reads
/// `command="…"` up to the first double quote not escaped by a backslash, and the
/// line ends at a line break.
pub fn forced_command(command: &str) -> std::result::Result<(), &'static str> {
    if command.contains(['\n', '\r']) {
        Err("contains a line break, which would end the authorized_keys line")
    } else if command.contains('"') {
        Err("contains a double quote, which would end command=\"…\" in the authorized_keys line")
    } else if command.chars().any(char::is_control) {
        Err("contains a control character")
    } else if command.ends_with('\\') {
        Err("ends with a backslash, which would escape the closing quote of command=\"…\"")
    } else if command.trim().is_empty() {
        Err("is empty")
    } else if command.len() > MAX_COMMAND {
        Err("is longer than 2048 bytes")
    } else {
        Ok(())
    }
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

/// The longest path a host file may give, and the longest segment of one (NAME_MAX):
/// a staged tree nests files below them.
const MAX_PATH: usize = 1024;
const MAX_SEGMENT: usize = 255;

/// Why `path` is not a plain absolute path on a host: one that starts with '/', has
/// no empty, `.` or `..` segment (so no `//` and no trailing '/'), no control
/// character, and fits the file system's limits. `/` itself only if `root_allowed`.
fn plain_absolute(path: &str, root_allowed: bool) -> std::result::Result<(), &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("must be an absolute path (starting with '/')");
    };
    if path.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if path.len() > MAX_PATH {
        return Err("is longer than 1024 bytes");
    }
    if rest.is_empty() {
        return match root_allowed {
            true => Ok(()),
            false => Err("must name a file, not '/'"),
        };
    }
    for segment in rest.split('/') {
        match segment {
            "" => return Err("must not contain '//' or end with '/'"),
            "." | ".." => return Err("must not contain '.' or '..' segments"),
            s if s.len() > MAX_SEGMENT => return Err("has a segment longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

/// What `keys host add` writes into a new host file.
pub struct NewHost<'a> {
    pub name: &'a str,
    pub key: &'a Recipient,
    pub address: Option<&'a str>,
    pub ssh_port: u16,
    pub system: Option<&'a str>,
    pub flake_attr: Option<&'a str>,
    pub persist: Option<&'a str>,
}

/// A new host file as serde writes it, in this order.
#[derive(Serialize)]
struct Written<'a> {
    ssh_key: Scalar<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<Scalar<'a>>,
    ssh_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<Scalar<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flake_attr: Option<Scalar<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    persist: Option<Scalar<'a>>,
}

/// A container's entry with a key of its own.
#[derive(Serialize)]
struct WrittenKey<'a> {
    ssh_key: Scalar<'a>,
}

/// A string value as host files hold it: plain when it is a word, a path or an IPv4
/// address that every YAML reader takes for the same string, else double-quoted. The
/// YAML crate escapes it, and quotes a plain value it would read as something else.
struct Scalar<'a>(&'a str);

impl Serialize for Scalar<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let value = self.0;
        let ipv4 = value.split('.').count() == 4
            && value
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        let plain = (ipv4
            || value
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '/'))
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ./_@+=-".contains(c))
            && !value.ends_with(' ')
            && !value.contains("  ")
            && !matches!(
                value.to_ascii_lowercase().as_str(),
                "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
            );
        if plain {
            s.serialize_str(value)
        } else {
            DoubleQuoted(value).serialize(s)
        }
    }
}

/// `value` in YAML: one document, no folded lines, YAML 1.2 typing (an IPv4 address
/// stays plain) and no directive line.
fn to_yaml(value: &impl Serialize, file: &str) -> Result<String> {
    let options = serde_saphyr::ser_options! {
        prefer_block_scalars: false,
        yaml_12: true,
        no_lang_directive: true,
    };
    serde_saphyr::to_string_with_options(value, options).map_err(|e| Error::InvalidFile {
        at: Location::named(file),
        reason: format!("cannot write it: {e}"),
    })
}

/// `ssh-ed25519 AAAA… comment`, the key as a host file records it.
pub fn key_line(key: &Recipient) -> String {
    match key {
        Recipient::SshEd25519(k) if !k.comment().is_empty() => format!("{key} {}", k.comment()),
        _ => key.to_string(),
    }
}

/// The text of a new host file (`file` names it in errors), checked to read back as
/// exactly what was asked for.
pub fn render(new: &NewHost<'_>, file: &str) -> Result<String> {
    let key = key_line(new.key);
    let written = Written {
        ssh_key: Scalar(&key),
        address: new.address.map(Scalar),
        ssh_port: new.ssh_port,
        system: new.system.map(Scalar),
        flake_attr: new.flake_attr.map(Scalar),
        persist: new.persist.map(Scalar),
    };
    let text = format!(
        "# host {}, added by `keys host add`\n{}",
        new.name,
        to_yaml(&written, file)?
    );
    let host = parse_host(new.name, &text, file)?;
    let same = host.key.fingerprint() == new.key.fingerprint()
        && host.address.as_deref() == new.address
        && host.ssh_port == new.ssh_port
        && host.system.as_deref() == new.system
        && host.flake_attr == new.flake_attr.unwrap_or(new.name)
        && host.persist.as_deref() == new.persist.filter(|p| *p != "/")
        && host.containers.is_empty();
    if !same {
        return Err(Error::InvalidFile {
            at: Location::named(file),
            reason: "the host file would not read back as given".into(),
        });
    }
    Ok(text)
}

/// A host file's text, read for an edit that keeps the rest of it; `rel` names it.
pub fn read(path: &Path, rel: &str) -> Result<String> {
    let data = crate::fsutil::read(path)?;
    super::text_of(rel, &data).map(str::to_string)
}

/// Replaces the host key in a host file's text (its top-level `ssh_key:` line),
/// keeping every other line byte for byte. `None` when there is no such line.
pub fn replace_key(text: &str, key: &Recipient, file: &str) -> Result<Option<String>> {
    let line = to_yaml(
        &WrittenKey {
            ssh_key: Scalar(&key_line(key)),
        },
        file,
    )?;
    let mut replaced = false;
    let new: String = text
        .split_inclusive('\n')
        .map(|l| {
            if !replaced && l.starts_with("ssh_key:") {
                replaced = true;
                line.as_str()
            } else {
                l
            }
        })
        .collect();
    Ok(replaced.then_some(new))
}

/// Adds container `name` to a host file's text: under its block `containers:` map
/// (indented like the entries there), in place of an empty `containers: {}`, or as a
/// new `containers:` block at the end. Everything else is kept byte for byte.
pub fn insert_container(
    text: &str,
    file: &str,
    name: &str,
    own_key: Option<&Recipient>,
) -> Result<String> {
    let own_key = match own_key {
        Some(key) => Some(to_yaml(
            &WrittenKey {
                ssh_key: Scalar(&key_line(key)),
            },
            file,
        )?),
        None => None,
    };
    let entry = |indent: &str| match &own_key {
        None => format!("{indent}{name}: {{}}\n"),
        Some(key) => format!("{indent}{name}:\n{indent}{indent}{key}"),
    };
    insert_entry(text, file, "containers", name, "NAME: {}", &entry, true)
}

/// A deploy key's entry as `keys deploy-key add` writes it.
#[derive(Serialize)]
struct WrittenDeployKey<'a> {
    key: Scalar<'a>,
    user: Scalar<'a>,
    command: Scalar<'a>,
}

/// A deploy key's `key:` line.
#[derive(Serialize)]
struct WrittenDeployKeyLine<'a> {
    key: Scalar<'a>,
}

/// The top-level block map `section:` of a host file's lines: the index of its
/// line, and each entry's name with the lines it spans (its own line to its last
/// more-indented line). `None` when the file has no such line.
struct Section {
    at: usize,
    /// The value written after `section:` (without a comment): empty for a block.
    value: String,
    indent: Option<String>,
    entries: Vec<(String, std::ops::Range<usize>)>,
    /// One past the last line of the block (its last entry's last line).
    end: usize,
}

fn find_section(lines: &[&str], file: &str, key: &str) -> Result<Option<Section>> {
    let head = format!("{key}:");
    let Some(at) = lines.iter().position(|l| l.starts_with(&head)) else {
        return Ok(None);
    };
    let value = lines[at][head.len()..]
        .split('#')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let mut section = Section {
        at,
        value,
        indent: None,
        entries: Vec::new(),
        end: at + 1,
    };
    if !section.value.is_empty() {
        return Ok(Some(section));
    }
    for (i, l) in lines.iter().enumerate().skip(at + 1) {
        let body = l.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        let lead = &body[..body.len() - trimmed.len()];
        if lead.is_empty() {
            if trimmed.starts_with('#') {
                continue;
            }
            break;
        }
        if lead.contains('\t') {
            return Err(Error::InvalidFile {
                at: Location::named(file).at_line(i as u64 + 1),
                reason: format!("a tab in the indentation of {key}"),
            });
        }
        let comment = trimmed.starts_with('#');
        if !comment && section.indent.is_none() {
            section.indent = Some(lead.to_string());
        }
        let Some(indent) = section.indent.as_deref() else {
            continue;
        };
        if lead == indent && !comment {
            let name = trimmed.split(':').next().unwrap_or("").trim().to_string();
            section.entries.push((name, i..i + 1));
            section.end = i + 1;
        } else if lead.len() > indent.len()
            && let Some((_, range)) = section.entries.last_mut()
        {
            range.end = i + 1;
            section.end = i + 1;
        } else if !comment {
            section.end = i + 1;
        }
    }
    Ok(Some(section))
}

/// A file's text that keys cannot edit as asked, at `line` (0-based).
fn layout_error(file: &str, line: usize, reason: String) -> Error {
    Error::InvalidFile {
        at: Location::named(file).at_line(line as u64 + 1),
        reason,
    }
}

/// Adds deploy key `name` to a host file's text: under its block `deploy_keys:` map,
/// in place of an empty `deploy_keys: {}`, or as a new block at the end. Everything
/// else is kept byte for byte.
pub fn insert_deploy_key(text: &str, file: &str, name: &str, key: &DeployKey) -> Result<String> {
    let line = key_line(&key.key);
    let entry = to_yaml(
        &WrittenDeployKey {
            key: Scalar(&line),
            user: Scalar(&key.user),
            command: Scalar(&key.command),
        },
        file,
    )?;
    let block = |indent: &str| {
        let mut out = format!("{indent}{name}:\n");
        for l in entry.lines() {
            out.push_str(&format!("{indent}{indent}{l}\n"));
        }
        out
    };
    insert_entry(text, file, "deploy_keys", name, "NAME:", &block, false)
}

/// Adds the entry `name` (`entry` writes it at an indent) to the top-level block map
/// `key:` of a host file's text: after the block's last line (`before_comments`:
/// after its last content line, the comments that follow staying below), in place
/// of an empty `key: {}` or null (a trailing comment kept), or as a new block at the
/// end. `form` is how the map's entries are written, for the error when it is not a
/// block map. Everything else is kept byte for byte.
fn insert_entry(
    text: &str,
    file: &str,
    key: &str,
    name: &str,
    form: &str,
    entry: &dyn Fn(&str) -> String,
    before_comments: bool,
) -> Result<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(section) = find_section(&lines, file, key)? else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key}:\n"));
        out.push_str(&entry("  "));
        return Ok(out);
    };
    let at = section.at;
    let mut out: String = lines[..at].concat();
    match section.value.as_str() {
        "" => {
            let end = if before_comments {
                (at..section.end)
                    .rev()
                    .find(|&i| {
                        let t = lines[i].trim();
                        !t.is_empty() && !t.starts_with('#')
                    })
                    .map_or(at + 1, |i| i + 1)
            } else {
                section.end
            };
            out.push_str(&lines[at..end].concat());
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&entry(section.indent.as_deref().unwrap_or("  ")));
            out.push_str(&lines[end..].concat());
        }
        "{}" | "~" | "null" => {
            let line = lines[at];
            let comment = line.find('#').map(|i| line[i..].trim_end()).unwrap_or("");
            out.push_str(&format!("{key}:"));
            if !comment.is_empty() {
                out.push_str(&format!(" {comment}"));
            }
            out.push('\n');
            out.push_str(&entry("  "));
            out.push_str(&lines[at + 1..].concat());
        }
        value => {
            return Err(layout_error(
                file,
                at,
                format!(
                    "{key} is written as {value:?}; write it as a block map (one `{form}` per line) so keys can add {name}"
                ),
            ));
        }
    }
    Ok(out)
}

/// The lines of deploy key `name`'s entry in a host file's block `deploy_keys:` map.
fn deploy_key_entry(
    lines: &[&str],
    file: &str,
    name: &str,
) -> Result<(Section, std::ops::Range<usize>)> {
    let section = find_section(lines, file, "deploy_keys")?;
    let range = section
        .as_ref()
        .and_then(|s| s.entries.iter().find(|(n, _)| n == name))
        .map(|(_, r)| r.clone());
    match (section, range) {
        (Some(section), Some(range)) => Ok((section, range)),
        (section, _) => Err(layout_error(
            file,
            section.map_or(0, |s| s.at),
            format!("no entry `{name}:` under a block `deploy_keys:` map"),
        )),
    }
}

/// Replaces deploy key `name`'s `key:` line in a host file's text, keeping every
/// other line byte for byte.
pub fn replace_deploy_key(text: &str, file: &str, name: &str, key: &Recipient) -> Result<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (_, range) = deploy_key_entry(&lines, file, name)?;
    let new = to_yaml(
        &WrittenDeployKeyLine {
            key: Scalar(&key_line(key)),
        },
        file,
    )?;
    let at = (range.start + 1..range.end)
        .find(|&i| lines[i].trim_start().starts_with("key:"))
        .ok_or_else(|| {
            layout_error(
                file,
                range.start,
                format!("deploy key {name} has no `key:` line of its own"),
            )
        })?;
    let lead = &lines[at][..lines[at].len() - lines[at].trim_start().len()];
    let mut out: String = lines[..at].concat();
    out.push_str(lead);
    out.push_str(&new);
    out.push_str(&lines[at + 1..].concat());
    Ok(out)
}

/// Removes deploy key `name`'s entry from a host file's text (and the `deploy_keys:`
/// line when nothing else is left under it), keeping every other line.
pub fn remove_deploy_key(text: &str, file: &str, name: &str) -> Result<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (section, range) = deploy_key_entry(&lines, file, name)?;
    let alone = section.entries.len() == 1
        && lines[section.at + 1..section.end]
            .iter()
            .enumerate()
            .all(|(i, l)| range.contains(&(section.at + 1 + i)) || l.trim().is_empty());
    let (from, to) = if alone {
        (section.at, section.end)
    } else {
        (range.start, range.end)
    };
    let mut out: String = lines[..from].concat();
    out.push_str(&lines[to..].concat());
    Ok(out)
}

#[cfg(test)]
mod tests;
