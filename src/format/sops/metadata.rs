//! The `sops:` metadata: the data key wrapped per age recipient, `lastmodified`,
//! the encrypted MAC, `version`, and the options that say which values are
//! encrypted, and the data key wrapped by OpenBao transit keys (`hc_vault`). Read
//! from and written back to the store's map, keeping keys `keys` does not use (pgp,
//! kms, …) as they were. A file may instead hold `key_groups`:
//! each group's keys wrap one Shamir share of the data key, and `shamir_threshold`
//! shares open it.

use super::document::{Item, Value};
use crate::recipient::Recipient;

/// The sops version `keys` writes files as.
pub const VERSION: &str = "3.11.0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeEntry {
    pub recipient: String,
    /// The data key as an armored age file.
    pub enc: String,
}

/// An `hc_vault` entry: the data key wrapped by an OpenBao (or Vault) transit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    pub vault_address: String,
    pub engine_path: String,
    pub key_name: String,
    pub created_at: String,
    /// The wrapped data key, as transit gives it (`vault:v1:…`).
    pub enc: String,
}

impl VaultEntry {
    /// `ADDRESS/v1/ENGINE/keys/NAME`, as sops names the key.
    pub fn url(&self) -> String {
        format!(
            "{}/v1/{}/keys/{}",
            self.vault_address, self.engine_path, self.key_name
        )
    }
}

/// A creation rule's options: which values are encrypted (the defaults are sops's),
/// and how the file is laid out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<String>,
    pub encrypted_regex: Option<String>,
    pub unencrypted_comment_regex: Option<String>,
    pub encrypted_comment_regex: Option<String>,
    pub mac_only_encrypted: bool,
    /// sops's `stores.<format>.indent` (`.sops.yaml`), which the file does not
    /// record: `None` is sops's default.
    pub indent: Option<u8>,
}

impl Options {
    /// sops's default when no option is given: `unencrypted_suffix: _unencrypted`.
    pub fn with_default(mut self) -> Options {
        if self.encrypted_suffix.is_none()
            && self.unencrypted_regex.is_none()
            && self.encrypted_regex.is_none()
            && self.unencrypted_suffix.is_none()
            && self.unencrypted_comment_regex.is_none()
            && self.encrypted_comment_regex.is_none()
        {
            self.unencrypted_suffix = Some("_unencrypted".into());
        }
        self
    }
}

/// One of a file's `key_groups`: its age entries, each wrapping the group's share,
/// and the other key sources it holds (`pgp`, `kms`, …), which `keys` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyGroup {
    pub age: Vec<AgeEntry>,
    pub foreign: Vec<String>,
}

/// Key groups a file is written for: each group's recipients wrap one share of the
/// data key, and any `threshold` groups open it.
#[derive(Debug, Clone)]
pub struct Shamir {
    pub groups: Vec<Vec<Recipient>>,
    pub threshold: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The top-level age entries (each wrapping the whole data key).
    pub age: Vec<AgeEntry>,
    /// The top-level `hc_vault` entries (each wrapping the whole data key).
    pub hc_vault: Vec<VaultEntry>,
    pub lastmodified: String,
    pub mac: String,
    pub version: String,
    pub options: Options,
    /// `key_groups`, used (as sops uses them) when no top-level key source holds
    /// anything.
    pub key_groups: Vec<KeyGroup>,
    /// `shamir_threshold`: how many of `key_groups` open the file (0 when absent).
    pub shamir_threshold: usize,
    /// The map as read, for writing back what `keys` does not manage.
    pub raw: Vec<Item>,
}

/// The key sources sops has besides `age`, each a list of wrapped data keys.
const FOREIGN: [&str; 6] = [
    "pgp",
    "kms",
    "gcp_kms",
    "azure_kv",
    "hc_vault",
    "key_groups",
];

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::List(l) => l.iter().all(|v| matches!(v, Value::Comment(_))),
        Value::Map(m) => m.iter().all(|i| matches!(i, Item::Comment(_))),
        Value::Str(s) => s.is_empty(),
        _ => false,
    }
}

/// The entries of a list of maps (`age`, `hc_vault`), each made by `entry` from its
/// fields; `what` names the list when it is not one.
fn entries<T>(value: &Value, what: &str, entry: impl Fn(&[Item]) -> T) -> Result<Vec<T>, String> {
    let list: &[Value] = match value {
        Value::List(list) => list,
        Value::Null => &[],
        _ => return Err(format!("{what} is not a list")),
    };
    Ok(list
        .iter()
        .filter(|v| !matches!(v, Value::Comment(_)))
        .map(|e| match e {
            Value::Map(fields) => entry(fields),
            _ => entry(&[]),
        })
        .collect())
}

/// The text of field `key` of an entry; empty when it is missing.
fn field(fields: &[Item], key: &str) -> String {
    fields
        .iter()
        .find_map(|i| match i {
            Item::Pair(n, v) if n == key => text(v),
            _ => None,
        })
        .unwrap_or_default()
}

/// The age entries of an `age` list; an entry without its recipient or its wrapped
/// key is kept (empty): it is one more entry than the policy calls for, and a rekey
/// replaces it.
fn age_entries(value: &Value, what: &str) -> Result<Vec<AgeEntry>, String> {
    entries(value, what, |fields| AgeEntry {
        recipient: field(fields, "recipient"),
        enc: field(fields, "enc"),
    })
}

/// The entries of an `hc_vault` list; a field that is missing is read as empty.
fn vault_entries(value: &Value) -> Result<Vec<VaultEntry>, String> {
    entries(value, "sops.hc_vault", |fields| VaultEntry {
        vault_address: field(fields, "vault_address"),
        engine_path: field(fields, "engine_path"),
        key_name: field(fields, "key_name"),
        created_at: field(fields, "created_at"),
        enc: field(fields, "enc"),
    })
}

fn key_groups(value: &Value) -> Result<Vec<KeyGroup>, String> {
    let list: &[Value] = match value {
        Value::List(list) => list,
        Value::Null => &[],
        _ => return Err("sops.key_groups is not a list".into()),
    };
    let mut groups = Vec::new();
    for (i, group) in list
        .iter()
        .filter(|v| !matches!(v, Value::Comment(_)))
        .enumerate()
    {
        let items: &[Item] = match group {
            Value::Map(items) => items,
            Value::Null => &[],
            _ => return Err(format!("sops.key_groups[{i}] is not a map")),
        };
        let mut g = KeyGroup::default();
        for item in items {
            let Item::Pair(key, value) = item else {
                continue;
            };
            if key == "age" {
                g.age = age_entries(value, &format!("sops.key_groups[{i}].age"))?;
            } else if FOREIGN.contains(&key.as_str()) && !empty(value) {
                g.foreign.push(key.clone());
            }
        }
        groups.push(g);
    }
    Ok(groups)
}

/// `shamir_threshold` as sops reads it (an integer; the flat stores' text and JSON's
/// float included).
fn threshold(value: &Value) -> Result<usize, String> {
    let bad = || "sops.shamir_threshold is not a non-negative integer".to_string();
    match value {
        Value::Int(i) => usize::try_from(*i).map_err(|_| bad()),
        Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 1e9 => Ok(*f as usize),
        Value::Str(s) => s.trim().parse().map_err(|_| bad()),
        Value::Null => Ok(0),
        _ => Err(bad()),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Time(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Metadata {
    /// Reads the metadata map; the reason names the missing or malformed key.
    pub fn from_items(items: &[Item]) -> Result<Metadata, String> {
        let mut m = Metadata {
            age: Vec::new(),
            hc_vault: Vec::new(),
            lastmodified: String::new(),
            mac: String::new(),
            version: String::new(),
            options: Options::default(),
            key_groups: Vec::new(),
            shamir_threshold: 0,
            raw: items.to_vec(),
        };
        for item in items {
            let Item::Pair(key, value) = item else {
                continue;
            };
            let opt = || text(value).filter(|s| !s.is_empty());
            match key.as_str() {
                "age" => m.age = age_entries(value, "sops.age")?,
                "hc_vault" => m.hc_vault = vault_entries(value)?,
                "key_groups" => m.key_groups = key_groups(value)?,
                "shamir_threshold" => m.shamir_threshold = threshold(value)?,
                "lastmodified" => {
                    m.lastmodified = text(value).ok_or("sops.lastmodified is not a time")?
                }
                "mac" => m.mac = text(value).unwrap_or_default(),
                "version" => m.version = text(value).unwrap_or_default(),
                "unencrypted_suffix" => m.options.unencrypted_suffix = opt(),
                "encrypted_suffix" => m.options.encrypted_suffix = opt(),
                "unencrypted_regex" => m.options.unencrypted_regex = opt(),
                "encrypted_regex" => m.options.encrypted_regex = opt(),
                "unencrypted_comment_regex" => m.options.unencrypted_comment_regex = opt(),
                "encrypted_comment_regex" => m.options.encrypted_comment_regex = opt(),
                "mac_only_encrypted" => {
                    m.options.mac_only_encrypted = matches!(value, Value::Bool(true))
                        || matches!(value, Value::Str(s) if s == "true")
                }
                _ => {}
            }
        }
        if m.lastmodified.is_empty() {
            return Err("no sops.lastmodified".into());
        }
        Ok(m)
    }

    /// Whether the file is opened by its `key_groups`, as sops decides: no
    /// top-level key source holds anything, and there are groups.
    pub fn uses_groups(&self) -> bool {
        self.age.is_empty()
            && self.hc_vault.is_empty()
            && self.top_level_foreign().is_empty()
            && !self.key_groups.is_empty()
    }

    fn top_level_foreign(&self) -> Vec<String> {
        self.raw
            .iter()
            .filter_map(|item| match item {
                Item::Pair(key, value)
                    if !matches!(key.as_str(), "key_groups" | "hc_vault")
                        && FOREIGN.contains(&key.as_str())
                        && !empty(value) =>
                {
                    Some(key.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The key sources other than age and transit that hold something (`pgp`,
    /// `kms`, …, and `key_groups` when sops passes over them): readers `keys` never
    /// names, so a policy never calls for them.
    pub fn foreign(&self) -> Vec<String> {
        let mut out = self.top_level_foreign();
        if !self.key_groups.is_empty() && !self.uses_groups() {
            out.push("key_groups".into());
        }
        out
    }

    /// Drops every key source other than age and the top-level transit entries (key
    /// groups and their threshold included), for a file rewritten for the policy's
    /// recipients alone.
    pub fn drop_foreign(&mut self) {
        self.raw.retain(|item| {
            !item
                .key()
                .is_some_and(|key| FOREIGN.contains(&key) || key == "shamir_threshold")
        });
        self.key_groups.clear();
        self.shamir_threshold = 0;
    }

    /// Writes the data key's wrappings as key groups (replacing any top-level age
    /// entries), or as top-level age entries when `groups` is empty.
    pub fn set_groups(&mut self, groups: Vec<KeyGroup>, threshold: usize) {
        self.drop_foreign();
        if !groups.is_empty() {
            self.age.clear();
            self.hc_vault.clear();
        }
        self.key_groups = groups;
        self.shamir_threshold = threshold;
    }

    fn age_value(entries: &[AgeEntry]) -> Value {
        Value::List(
            entries
                .iter()
                .map(|e| {
                    Value::Map(vec![
                        Item::Pair("recipient".into(), Value::Str(e.recipient.clone())),
                        Item::Pair("enc".into(), Value::Str(e.enc.clone())),
                    ])
                })
                .collect(),
        )
    }

    fn vault_value(entries: &[VaultEntry]) -> Value {
        Value::List(
            entries
                .iter()
                .map(|e| {
                    Value::Map(vec![
                        Item::Pair("vault_address".into(), Value::Str(e.vault_address.clone())),
                        Item::Pair("engine_path".into(), Value::Str(e.engine_path.clone())),
                        Item::Pair("key_name".into(), Value::Str(e.key_name.clone())),
                        Item::Pair("created_at".into(), Value::Str(e.created_at.clone())),
                        Item::Pair("enc".into(), Value::Str(e.enc.clone())),
                    ])
                })
                .collect(),
        )
    }

    /// The metadata map to write: the keys read (in their order) with the key
    /// sources `keys` writes, `lastmodified`, `mac` and `version` replaced, or sops's
    /// order for a new file.
    pub fn to_items(&self) -> Vec<Item> {
        // As sops writes them: `hc_vault` and `age` at the top level, or the
        // threshold and the groups (each an `age` list) when the key is shared
        // among groups.
        let grouped =
            self.age.is_empty() && self.hc_vault.is_empty() && !self.key_groups.is_empty();
        let key_sources: Vec<(&str, Value)> = if grouped {
            let groups = self
                .key_groups
                .iter()
                .map(|g| Value::Map(vec![Item::Pair("age".into(), Metadata::age_value(&g.age))]))
                .collect();
            let mut v = Vec::new();
            if self.shamir_threshold > 0 {
                v.push(("shamir_threshold", Value::Int(self.shamir_threshold as i64)));
            }
            v.push(("key_groups", Value::List(groups)));
            v
        } else if self.hc_vault.is_empty() {
            vec![("age", Metadata::age_value(&self.age))]
        } else {
            let mut v = vec![("hc_vault", Metadata::vault_value(&self.hc_vault))];
            if !self.age.is_empty() {
                v.push(("age", Metadata::age_value(&self.age)));
            }
            v
        };
        let managed: Vec<(&str, Value)> = vec![
            ("lastmodified", Value::Str(self.lastmodified.clone())),
            ("mac", Value::Str(self.mac.clone())),
        ];
        let o = &self.options;
        let mut options: Vec<(&str, Value)> = Vec::new();
        for (k, v) in [
            ("unencrypted_suffix", &o.unencrypted_suffix),
            ("encrypted_suffix", &o.encrypted_suffix),
            ("unencrypted_regex", &o.unencrypted_regex),
            ("encrypted_regex", &o.encrypted_regex),
            ("unencrypted_comment_regex", &o.unencrypted_comment_regex),
            ("encrypted_comment_regex", &o.encrypted_comment_regex),
        ] {
            if let Some(v) = v {
                options.push((k, Value::Str(v.clone())));
            }
        }
        if o.mac_only_encrypted {
            options.push(("mac_only_encrypted", Value::Bool(true)));
        }
        if self.raw.is_empty() {
            let mut out: Vec<Item> = key_sources
                .into_iter()
                .chain(managed)
                .chain(options)
                .map(|(k, v)| Item::Pair(k.into(), v))
                .collect();
            out.push(Item::Pair(
                "version".into(),
                Value::Str(self.version.clone()),
            ));
            return out;
        }
        let mut out = self.raw.clone();
        // Key groups as read are kept as they were (with any key source in them
        // that `keys` does not use).
        let find = |k: &str| {
            self.raw.iter().find_map(|i| match i {
                Item::Pair(n, v) if n == k => Some(v),
                _ => None,
            })
        };
        let as_read = grouped
            && find("key_groups").and_then(|v| key_groups(v).ok()).as_ref()
                == Some(&self.key_groups)
            && find("shamir_threshold").map_or(Ok(0), threshold) == Ok(self.shamir_threshold);
        let key_sources = if as_read { Vec::new() } else { key_sources };
        // The key sources replace the ones read, where the first of them was.
        let replaced = |k: &str| {
            k == "age"
                || k == "hc_vault"
                || (grouped && !as_read && (k == "key_groups" || k == "shamir_threshold"))
        };
        let at = out
            .iter()
            .position(|i| i.key().is_some_and(replaced))
            .unwrap_or(0);
        out.retain(|i| !i.key().is_some_and(replaced));
        let at = at.min(out.len());
        out.splice(
            at..at,
            key_sources
                .into_iter()
                .map(|(k, v)| Item::Pair(k.into(), v)),
        );
        for (k, v) in managed
            .into_iter()
            .chain([("version", Value::Str(self.version.clone()))])
        {
            match out
                .iter_mut()
                .find(|i| matches!(i, Item::Pair(n, _) if n == k))
            {
                Some(Item::Pair(_, old)) => *old = v,
                _ => {
                    let at = if k == "version" { out.len() } else { 0 };
                    out.insert(at, Item::Pair(k.into(), v));
                }
            }
        }
        out
    }
}
