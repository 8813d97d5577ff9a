//! The readers of a rule: each label of its `readers:` and `key_groups:` expanded
//! (groups, admins, hosts, containers, users, transit keys), and resolved to the
//! recipients its format's consumer needs.

use serde_saphyr::Spanned;

use super::{Groups, Placeholder, Policy, Rule, invalid};
use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::format::sops::metadata::Shamir;
use crate::policy::fleet::Fleet;
use crate::recipient::{Recipient, TRANSIT_PREFIX, TransitKey};

/// One reader named by a rule, after groups are expanded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reader {
    Admin(String),
    Host(String),
    Container(String),
    /// `transit:URL`: an OpenBao transit key that wraps a sops file's data key.
    Transit(TransitKey),
    /// A host's user, reading through home-manager with their own key.
    User {
        name: String,
        host: String,
    },
}

impl Reader {
    /// The reader as a policy names it: `NAME`, `host:NAME` or `container:NAME`.
    pub fn label(&self) -> String {
        match self {
            Reader::Admin(n) => n.clone(),
            Reader::Host(n) => format!("host:{n}"),
            Reader::Container(n) => format!("container:{n}"),
            Reader::Transit(t) => format!("{TRANSIT_PREFIX}{}", t.url()),
            Reader::User { name, host } => format!("user:{name}@{host}"),
        }
    }
}

/// The recipients a rule resolves to for its format, and their sorted short
/// fingerprints, as the lock records them.
pub struct Resolved {
    pub recipients: Vec<Recipient>,
    pub fingerprints: Vec<String>,
    /// A `key_groups` rule's groups, each resolved as `recipients` is.
    pub shamir: Option<Shamir>,
}

/// Key groups are at most this many, as sops splits a key into at most 255 shares.
const MAX_KEY_GROUPS: usize = 255;

/// A rule's `key_groups` and `shamir_threshold`, each group's labels expanded
/// with `expand`; empty when the rule has none.
pub(super) type LabelGroups = Option<Spanned<Vec<Spanned<Vec<Spanned<String>>>>>>;

/// Expands one reader label (a group, an admin, `host:NAME`, …) into readers.
pub(super) type Expand<'a> = &'a dyn Fn(&Spanned<String>, &mut Vec<Reader>) -> Result<()>;

pub(super) fn key_groups(
    list: &LabelGroups,
    threshold: &Option<Spanned<i64>>,
    format: Format,
    at: &Location,
    expand: Expand,
    line: &dyn Fn(u64) -> Location,
) -> Result<(Vec<Vec<Reader>>, usize)> {
    let Some(list) = list else {
        if let Some(t) = threshold {
            return Err(invalid(
                line(t.referenced.line()),
                "shamir_threshold applies only to a rule with key_groups",
            ));
        }
        return Ok((Vec::new(), 0));
    };
    if format == Format::Age {
        return Err(invalid(
            at.clone(),
            "key_groups applies only to sops formats (an age file has no key groups)",
        ));
    }
    let n = list.value.len();
    if n < 2 {
        return Err(invalid(
            at.clone(),
            "key_groups needs at least two groups (one group is `readers`)",
        ));
    }
    if n > MAX_KEY_GROUPS {
        return Err(invalid(
            at.clone(),
            format!("key_groups has {n} groups; at most {MAX_KEY_GROUPS}"),
        ));
    }
    let mut groups = Vec::new();
    for (i, group) in list.value.iter().enumerate() {
        let mut readers = Vec::new();
        for label in &group.value {
            expand(label, &mut readers)?;
        }
        readers.sort();
        readers.dedup();
        if readers.is_empty() {
            return Err(invalid(
                line(group.referenced.line()),
                format!("key group {} has no readers", i + 1),
            ));
        }
        if readers.iter().any(|r| matches!(r, Reader::Transit(_))) {
            return Err(invalid(
                line(group.referenced.line()),
                format!(
                    "key group {} names a transit key; keys wraps key groups' shares for age recipients only: name the transit key in a rule's readers",
                    i + 1
                ),
            ));
        }
        groups.push(readers);
    }
    let threshold = match threshold {
        None => n,
        Some(t) => {
            if t.value < 2 || t.value > n as i64 {
                return Err(invalid(
                    line(t.referenced.line()),
                    format!(
                        "shamir_threshold {} is not between 2 and the {n} key groups",
                        t.value
                    ),
                ));
            }
            t.value as usize
        }
    };
    Ok((groups, threshold))
}

impl Policy {
    /// The readers `label` names as a rule's `readers:` would take it (a group, an
    /// admin, `admins`, `host:NAME`, `container:NAME`), sorted, each once.
    pub fn readers_of(&self, label: &str, fleet: &Fleet) -> Result<Vec<Reader>> {
        let mut out = Vec::new();
        resolve_label(
            label,
            &Location::named(label),
            &self.raw_groups,
            fleet,
            &mut out,
        )?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Each of a rule's readers with the recipients it resolves to, in the form the
    /// rule's format needs (as [`Policy::resolve`] gives them, before duplicates
    /// are dropped: a container that shares its host's key has the same one).
    pub fn recipients_by_reader<'a>(
        &self,
        rule: &'a Rule,
        fleet: &Fleet,
    ) -> Result<Vec<(&'a Reader, Vec<Recipient>)>> {
        rule.readers
            .iter()
            .map(|r| Ok((r, recipients_of(rule, std::slice::from_ref(r), fleet)?)))
            .collect()
    }

    /// The recipients a rule's readers resolve to, each in the form its format's
    /// consumer needs: for `.age` files (agenix) a host is its ssh-ed25519 key; for sops
    /// files (sops-nix) it is the derived `age1…` key.
    pub fn resolve(&self, rule: &Rule, fleet: &Fleet) -> Result<Resolved> {
        let recipients = recipients_of(rule, &rule.readers, fleet)?;
        let mut fingerprints: Vec<String> = recipients.iter().map(Recipient::lock_id).collect();
        fingerprints.sort();
        let shamir = if rule.key_groups.is_empty() {
            None
        } else {
            let groups = rule
                .key_groups
                .iter()
                .map(|g| recipients_of(rule, g, fleet))
                .collect::<Result<Vec<_>>>()?;
            if let Some(i) = groups.iter().position(Vec::is_empty) {
                return Err(invalid(
                    rule.readers_at.clone(),
                    format!("key group {} has no recipients", i + 1),
                ));
            }
            Some(Shamir {
                groups,
                threshold: rule.shamir_threshold,
            })
        };
        Ok(Resolved {
            recipients,
            fingerprints,
            shamir,
        })
    }
}

/// The recipients `readers` of `rule` resolve to, each once, in the form the rule's
/// format's consumer needs.
fn recipients_of(rule: &Rule, readers: &[Reader], fleet: &Fleet) -> Result<Vec<Recipient>> {
    let mut recipients: Vec<Recipient> = Vec::new();
    for reader in readers {
        let machine_key = |key: &Recipient| -> Result<Recipient> {
            if rule.format == Format::Age {
                return Ok(key.clone());
            }
            key.to_x25519()
                .and_then(|s| s.parse::<age::x25519::Recipient>().ok())
                .map(|r| Recipient::X25519(r.into()))
                .ok_or_else(|| {
                    invalid(
                        rule.at.clone(),
                        format!("{reader:?} has no ed25519 key to derive an age key from"),
                    )
                })
        };
        match reader {
            Reader::Admin(name) => {
                if let Some(admin) = fleet.admin(name) {
                    recipients.extend(admin.recipients.iter().cloned());
                }
            }
            Reader::Host(name) => match fleet.host(name)? {
                Some(host) => recipients.push(machine_key(&host.key)?),
                None => return Err(unknown_host(&rule.readers_at, name)),
            },
            Reader::Container(name) => match fleet.container(name)? {
                Some((host, c)) => recipients.push(machine_key(c.key(host))?),
                None => return Err(unknown_container(&rule.readers_at, name)),
            },
            Reader::Transit(key) => recipients.push(Recipient::Transit(key.clone())),
            Reader::User { name, host } => match fleet.user(name, host)? {
                Some((_, u)) => recipients.push(machine_key(&u.key)?),
                None => return Err(unknown_user(&rule.readers_at, name, host, fleet)),
            },
        }
    }
    let mut seen: Vec<String> = Vec::new();
    recipients.retain(|r| {
        let f = r.fingerprint();
        if seen.contains(&f) {
            false
        } else {
            seen.push(f);
            true
        }
    });
    Ok(recipients)
}

fn unknown_host(at: &Location, name: &str) -> Error {
    invalid(
        at.clone(),
        format!(
            "unknown reader {:?}: no recipients/hosts/{name}.yaml",
            format!("host:{name}")
        ),
    )
}

fn unknown_user(at: &Location, name: &str, host: &str, fleet: &Fleet) -> Error {
    if !fleet.has_host(host) {
        return unknown_host(at, host);
    }
    invalid(
        at.clone(),
        format!(
            "unknown reader {:?}: recipients/hosts/{host}.yaml has no user {name} (under users:, with ssh_key)",
            format!("user:{name}@{host}")
        ),
    )
}

fn unknown_container(at: &Location, name: &str) -> Error {
    invalid(
        at.clone(),
        format!(
            "unknown reader {:?}: no host file declares container {name}",
            format!("container:{name}")
        ),
    )
}

/// Expands one reader label into readers: `host:NAME`, `container:NAME`, a group, or
/// an admin name (`admins`, when no group has that name, is every admin).
pub(super) fn resolve_label(
    label: &str,
    at: &Location,
    groups: &Groups,
    fleet: &Fleet,
    out: &mut Vec<Reader>,
) -> Result<()> {
    if let Some((rel, members)) = groups.get(label) {
        for m in members {
            if let Some(p) = Placeholder::in_text(&m.value) {
                return Err(invalid(
                    Location::named(rel).at_line(m.referenced.line()),
                    format!(
                        "group {label} holds {:?}; {} is bound by a rule, so write it in the rule's readers",
                        m.value,
                        p.token()
                    ),
                ));
            }
            if groups.contains_key(&m.value) {
                return Err(invalid(
                    at.clone(),
                    format!(
                        "group {label} names group {}; groups hold admins, host:NAME and container:NAME only",
                        m.value
                    ),
                ));
            }
            resolve_label(&m.value, at, groups, fleet, out)?;
        }
        return Ok(());
    }
    if label.starts_with(TRANSIT_PREFIX) {
        let key = TransitKey::parse(label)
            .map_err(|reason| invalid(at.clone(), format!("transit reader: {reason}")))?;
        out.push(Reader::Transit(key));
        return Ok(());
    }
    if let Some(host) = label.strip_prefix("host:") {
        if !fleet.has_host(host) {
            return Err(unknown_host(at, host));
        }
        out.push(Reader::Host(host.to_string()));
        return Ok(());
    }
    if let Some(name) = label.strip_prefix("container:") {
        // A container is declared in its host's file. A fleet read whole is asked
        // now; one opened for a single secret, when a rule naming it is resolved.
        if fleet.is_whole() && fleet.container(name)?.is_none() {
            return Err(unknown_container(at, name));
        }
        out.push(Reader::Container(name.to_string()));
        return Ok(());
    }
    if let Some(user) = label.strip_prefix("user:") {
        let Some((name, host)) = user.rsplit_once('@') else {
            return Err(invalid(
                at.clone(),
                format!("reader {label:?} names a user as user:NAME@HOST"),
            ));
        };
        if fleet.user(name, host)?.is_none() {
            return Err(unknown_user(at, name, host, fleet));
        }
        out.push(Reader::User {
            name: name.to_string(),
            host: host.to_string(),
        });
        return Ok(());
    }
    if fleet.admin(label).is_some() {
        out.push(Reader::Admin(label.to_string()));
        return Ok(());
    }
    if label == "admins" {
        out.extend(fleet.admins.iter().map(|a| Reader::Admin(a.name.clone())));
        return Ok(());
    }
    Err(invalid(
        at.clone(),
        format!(
            "unknown reader {label:?}: not a group, an admin (recipients/admins/{label}.pub), host:NAME, container:NAME or user:NAME@HOST"
        ),
    ))
}
