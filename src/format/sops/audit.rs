//! Which values of a sops document its options encrypt (sops's rules), the walk that
//! visits them in sops's order, and the key-less audit `keys check` runs: every value
//! the options require to be encrypted is, and the metadata is sane.

use super::cipher;
use super::document::{EncryptedDocument, Item, Value};
use super::goregex::GoRegex;
use super::metadata::{Metadata, Options};
use crate::error::{Error, Location, Result};

/// Which values a file's options encrypt, compiled once.
pub struct Rules {
    pub options: Options,
    unencrypted_regex: Option<GoRegex>,
    encrypted_regex: Option<GoRegex>,
    unencrypted_comment_regex: Option<GoRegex>,
    encrypted_comment_regex: Option<GoRegex>,
}

impl Rules {
    pub fn new(options: &Options, at: &Location) -> Result<Rules> {
        let compile = |r: &Option<String>, name: &str| -> Result<Option<GoRegex>> {
            r.as_deref()
                .map(|r| {
                    GoRegex::as_sops_uses(r).map_err(|e| Error::Corrupt {
                        at: at.clone(),
                        reason: format!("sops.{name}: {e}"),
                    })
                })
                .transpose()
        };
        Ok(Rules {
            unencrypted_regex: compile(&options.unencrypted_regex, "unencrypted_regex")?,
            encrypted_regex: compile(&options.encrypted_regex, "encrypted_regex")?,
            unencrypted_comment_regex: compile(
                &options.unencrypted_comment_regex,
                "unencrypted_comment_regex",
            )?,
            encrypted_comment_regex: compile(
                &options.encrypted_comment_regex,
                "encrypted_comment_regex",
            )?,
            options: options.clone(),
        })
    }

    /// Whether the value at `path` (under `comments`) is encrypted.
    pub fn encrypts_value(&self, path: &[String], comments: &[Vec<String>]) -> bool {
        self.should_be_encrypted(path, comments, false)
    }

    /// Whether the comment at `path` (the last of `comments`) is encrypted: it does
    /// not match `encrypted_comment_regex` by itself.
    pub fn encrypts_comment(&self, path: &[String], comments: &[Vec<String>]) -> bool {
        self.should_be_encrypted(path, comments, true)
    }

    /// sops's `shouldBeEncrypted`, rule for rule.
    fn should_be_encrypted(
        &self,
        path: &[String],
        comments: &[Vec<String>],
        is_comment: bool,
    ) -> bool {
        let o = &self.options;
        let mut encrypted = true;
        if let Some(suffix) = &o.unencrypted_suffix
            && path.iter().any(|p| p.ends_with(suffix.as_str()))
        {
            encrypted = false;
        }
        if let Some(suffix) = &o.encrypted_suffix {
            encrypted = path.iter().any(|p| p.ends_with(suffix.as_str()));
        }
        if let Some(r) = &self.unencrypted_regex
            && path.iter().any(|p| r.is_match(p))
        {
            encrypted = false;
        }
        if let Some(r) = &self.encrypted_regex {
            encrypted = path.iter().any(|p| r.is_match(p));
        }
        if let Some(r) = &self.unencrypted_comment_regex
            && comments.iter().flatten().any(|c| r.is_match(c))
        {
            encrypted = false;
        }
        if let Some(r) = &self.encrypted_comment_regex {
            let last = comments.len().saturating_sub(1);
            let last_len = comments.last().map_or(0, Vec::len);
            encrypted = comments.iter().enumerate().any(|(i, cs)| {
                cs.iter()
                    .enumerate()
                    .any(|(j, c)| !(is_comment && i == last && j + 1 == last_len) && r.is_match(c))
            });
        }
        encrypted
    }
}

/// A leaf the walk visits: a comment line, or a scalar value (maps and lists are
/// walked through; nulls are skipped, as sops skips them).
pub enum Leaf<'v> {
    Comment(&'v mut String),
    /// A comment among a list's items (a `Value::Comment`). sops writes it, once
    /// encrypted, as an item of the list (a string of type `comment`), which reads
    /// back as a comment; as a `#` line before a map item it could be lost.
    ListComment(&'v mut Value),
    Scalar(&'v mut Value),
}

impl<'v> Leaf<'v> {
    /// The text of a comment leaf.
    pub fn into_comment(self) -> Option<&'v mut String> {
        match self {
            Leaf::Comment(c) | Leaf::ListComment(Value::Comment(c)) => Some(c),
            _ => None,
        }
    }

    pub fn comment(&self) -> Option<&str> {
        match self {
            Leaf::Comment(c) => Some(c),
            Leaf::ListComment(Value::Comment(c)) => Some(c),
            _ => None,
        }
    }
}

/// Called for each leaf with its key path and the comments seen at each level.
pub type Visitor<'f> = dyn FnMut(Leaf, &[String], &[Vec<String>]) -> Result<()> + 'f;

/// Visits every leaf in document order with its key path (list items share their
/// list's path) and the comments seen at each level, as sops's tree walk does.
pub fn walk_items(
    items: &mut [Item],
    path: &mut Vec<String>,
    comments: &mut Vec<Vec<String>>,
    visit: &mut Visitor,
) -> Result<()> {
    comments.push(Vec::new());
    for item in items.iter_mut() {
        match item {
            Item::Comment(c) => {
                if let Some(level) = comments.last_mut() {
                    level.push(c.clone());
                }
                visit(Leaf::Comment(c), path, comments)?;
            }
            Item::Pair(k, v) => {
                path.push(k.clone());
                walk_value(v, path, comments, visit)?;
                path.pop();
                if let Some(level) = comments.last_mut() {
                    level.clear();
                }
            }
        }
    }
    comments.pop();
    Ok(())
}

fn walk_value(
    v: &mut Value,
    path: &mut Vec<String>,
    comments: &mut Vec<Vec<String>>,
    visit: &mut Visitor,
) -> Result<()> {
    match v {
        Value::Map(items) => walk_items(items, path, comments, visit),
        Value::List(list) => {
            comments.push(Vec::new());
            for item in list.iter_mut() {
                if let Value::Comment(c) = item {
                    if let Some(level) = comments.last_mut() {
                        level.push(c.clone());
                    }
                    visit(Leaf::ListComment(item), path, comments)?;
                    continue;
                }
                walk_value(item, path, comments, visit)?;
                if let Some(level) = comments.last_mut() {
                    level.clear();
                }
            }
            comments.pop();
            Ok(())
        }
        Value::Null | Value::Comment(_) => Ok(()),
        scalar => visit(Leaf::Scalar(scalar), path, comments),
    }
}

/// Called for each scalar with its key path and the comments seen at each level.
pub type ScalarVisitor<'f> = dyn FnMut(&Value, &[String], &[Vec<String>]) -> Result<()> + 'f;

/// Visits every scalar of `items` in the order `walk_items` does, with the same key
/// path and comments, reading the tree only (nothing is cloned or changed): what
/// computing a MAC needs, as comments are not part of it.
pub fn walk_scalars(
    items: &[Item],
    path: &mut Vec<String>,
    comments: &mut Vec<Vec<String>>,
    visit: &mut ScalarVisitor,
) -> Result<()> {
    comments.push(Vec::new());
    for item in items {
        match item {
            Item::Comment(c) => {
                if let Some(level) = comments.last_mut() {
                    level.push(c.clone());
                }
            }
            Item::Pair(k, v) => {
                path.push(k.clone());
                walk_scalar_value(v, path, comments, visit)?;
                path.pop();
                if let Some(level) = comments.last_mut() {
                    level.clear();
                }
            }
        }
    }
    comments.pop();
    Ok(())
}

fn walk_scalar_value(
    v: &Value,
    path: &mut Vec<String>,
    comments: &mut Vec<Vec<String>>,
    visit: &mut ScalarVisitor,
) -> Result<()> {
    match v {
        Value::Map(items) => walk_scalars(items, path, comments, visit),
        Value::List(list) => {
            comments.push(Vec::new());
            for item in list {
                if let Value::Comment(c) = item {
                    if let Some(level) = comments.last_mut() {
                        level.push(c.clone());
                    }
                    continue;
                }
                walk_scalar_value(item, path, comments, visit)?;
                if let Some(level) = comments.last_mut() {
                    level.clear();
                }
            }
            comments.pop();
            Ok(())
        }
        Value::Null | Value::Comment(_) => Ok(()),
        scalar => visit(scalar, path, comments),
    }
}

/// An error naming the key path of a value (never the value).
pub fn corrupt(at: &Location, path: &[String], what: &str) -> Error {
    Error::Corrupt {
        at: at.clone(),
        reason: format!("value at {}: {what}", display_path(path)),
    }
}

fn display_path(path: &[String]) -> String {
    if path.is_empty() {
        "the top level".into()
    } else {
        path.join(".")
    }
}

fn sealed_or_empty(v: &Value) -> bool {
    matches!(v, Value::Str(s) if s.is_empty() || cipher::parse(s).is_some())
}

/// Checks without any key that every value the file's options require to be
/// encrypted is, and returns its metadata. The reason names the key path and never
/// quotes a value.
pub fn audit(doc: &EncryptedDocument) -> std::result::Result<Metadata, String> {
    let metadata =
        Metadata::from_items(&doc.metadata).map_err(|r| format!("bad sops metadata: {r}"))?;
    if !cipher::is_sealed(&metadata.mac) {
        return Err("the sops MAC is missing or not encrypted".into());
    }
    let at = Location::named("");
    let rules = Rules::new(&metadata.options, &at).map_err(|e| e.to_string())?;
    let mut branches = doc.branches.clone();
    let mut visit = |leaf: Leaf, path: &[String], comments: &[Vec<String>]| -> Result<()> {
        match leaf {
            Leaf::Scalar(v) if rules.encrypts_value(path, comments) && !sealed_or_empty(v) => {
                Err(corrupt(
                    &at,
                    path,
                    "is plaintext where the file's options require encryption",
                ))
            }
            leaf @ (Leaf::Comment(_) | Leaf::ListComment(_))
                if leaf.comment().is_some_and(|c| {
                    rules.encrypts_comment(path, comments)
                        && !c.is_empty()
                        && cipher::parse(c).is_none()
                }) =>
            {
                Err(Error::Corrupt {
                    at: at.clone(),
                    reason: format!(
                        "a comment at {} is plaintext where the file's options require encryption",
                        display_path(path)
                    ),
                })
            }
            _ => Ok(()),
        }
    };
    for branch in branches.iter_mut() {
        walk_items(branch, &mut Vec::new(), &mut Vec::new(), &mut visit)
            .map_err(|e| e.to_string().trim_start_matches(": ").to_string())?;
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_encrypted_vector_passes_the_keyless_audit_and_plaintext_fails_it() {
        use crate::format::Format;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/");
        for (file, format) in [
            ("sops/basic.enc.yaml", Format::SopsYaml),
            ("sops/types.enc.yaml", Format::SopsYaml),
            ("sops/encrypted-regex.enc.yaml", Format::SopsYaml),
            ("sops/mac-only-encrypted.enc.yaml", Format::SopsYaml),
            ("sops/unencrypted-suffix.enc.yaml", Format::SopsYaml),
            ("sops/two-recipients.enc.yaml", Format::SopsYaml),
            ("sops/ssh-recipient.enc.yaml", Format::SopsYaml),
            ("sops/basic.enc.json", Format::SopsJson),
            ("sops/native-age.enc.json", Format::SopsJson),
            ("sops/encrypted-suffix.enc.json", Format::SopsJson),
            ("sops/app.enc.env", Format::SopsDotenv),
            ("sops/app.enc.ini", Format::SopsIni),
            ("sops/blob.enc.bin", Format::SopsBinary),
            ("upstream/sops-nix/secrets.yaml", Format::SopsYaml),
        ] {
            let data = std::fs::read(format!("{dir}{file}")).unwrap();
            let found = super::super::check_structure(format, &data)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!found.is_empty(), "{file}");
            if file == "sops/basic.enc.yaml" {
                // Each encrypted value or comment in turn replaced by plaintext.
                let text = String::from_utf8(data).unwrap();
                for (at, _) in text.match_indices("ENC[AES256_GCM,data:").take(6) {
                    if text[..at].ends_with("mac: ") {
                        continue;
                    }
                    let end = text[at..].find(']').unwrap() + at + 1;
                    let tampered = format!("{}plain-canary{}", &text[..at], &text[end..]);
                    let err =
                        super::super::check_structure(format, tampered.as_bytes()).unwrap_err();
                    assert!(
                        err.contains("plaintext where") && !err.contains("canary"),
                        "{file}: {err}"
                    );
                }
            }
        }
    }
}
