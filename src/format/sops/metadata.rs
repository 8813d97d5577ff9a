//! The `sops:` metadata: the data key wrapped per age recipient, `lastmodified`,
//! the encrypted MAC, `version`, and the options that say which values are
//! encrypted. Read from and written back to the store's map, keeping keys `keys`
//! does not use (pgp, kms, …) as they were.

use super::document::{Item, Value};

/// The sops version `keys` writes files as.
pub const VERSION: &str = "3.11.0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeEntry {
    pub recipient: String,
    /// The data key as an armored age file.
    pub enc: String,
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

#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub age: Vec<AgeEntry>,
    pub lastmodified: String,
    pub mac: String,
    pub version: String,
    pub options: Options,
    /// `key_groups` with a Shamir threshold: not supported.
    pub key_groups: bool,
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
            lastmodified: String::new(),
            mac: String::new(),
            version: String::new(),
            options: Options::default(),
            key_groups: false,
            raw: items.to_vec(),
        };
        for item in items {
            let Item::Pair(key, value) = item else {
                continue;
            };
            let opt = || text(value).filter(|s| !s.is_empty());
            match key.as_str() {
                "age" => {
                    let Value::List(list) = value else {
                        return Err("sops.age is not a list".into());
                    };
                    // An entry without its recipient or its wrapped key is kept (empty):
                    // it is one more entry than the policy calls for, and a rekey
                    // replaces it.
                    for entry in list {
                        let fields: &[Item] = match entry {
                            Value::Map(fields) => fields,
                            _ => &[],
                        };
                        let get = |k: &str| {
                            fields
                                .iter()
                                .find_map(|i| match i {
                                    Item::Pair(n, v) if n == k => text(v),
                                    _ => None,
                                })
                                .unwrap_or_default()
                        };
                        m.age.push(AgeEntry {
                            recipient: get("recipient"),
                            enc: get("enc"),
                        });
                    }
                }
                "key_groups" => m.key_groups = !matches!(value, Value::List(l) if l.is_empty()),
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

    /// The key sources other than age that hold something (`pgp`, `kms`, `key_groups`,
    /// …): readers `keys` never names, so a policy never calls for them.
    pub fn foreign(&self) -> Vec<String> {
        self.raw
            .iter()
            .filter_map(|item| match item {
                Item::Pair(key, value) if FOREIGN.contains(&key.as_str()) && !empty(value) => {
                    Some(key.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Drops every key source other than age, for a file rewritten for the policy's
    /// recipients alone.
    pub fn drop_foreign(&mut self) {
        self.raw
            .retain(|item| !item.key().is_some_and(|key| FOREIGN.contains(&key)));
        self.key_groups = false;
    }

    /// The metadata map to write: the keys read (in their order) with `age`,
    /// `lastmodified`, `mac` and `version` replaced, or sops's order for a new file.
    pub fn to_items(&self) -> Vec<Item> {
        let age = Value::List(
            self.age
                .iter()
                .map(|e| {
                    Value::Map(vec![
                        Item::Pair("recipient".into(), Value::Str(e.recipient.clone())),
                        Item::Pair("enc".into(), Value::Str(e.enc.clone())),
                    ])
                })
                .collect(),
        );
        let managed: Vec<(&str, Value)> = vec![
            ("age", age),
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
            let mut out: Vec<Item> = managed
                .into_iter()
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
