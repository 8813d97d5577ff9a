//! What is on disk, read without any key: the formats a secret is stored in and
//! where its file lives, `keys.lock`, the agenix header and the sops stores. Stores
//! never choose recipients (that is `policy`) and never hold identities (`crypto`).

pub mod age;
pub mod lockfile;
pub mod sops;

use crate::recipient::Recipient;

/// How a secret is stored: an agenix `.age` file or one of the sops stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Age,
    SopsYaml,
    SopsJson,
    SopsDotenv,
    SopsIni,
    SopsBinary,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Age,
        Format::SopsYaml,
        Format::SopsJson,
        Format::SopsDotenv,
        Format::SopsIni,
        Format::SopsBinary,
    ];

    /// The name used in policies and `keys.lock`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Age => "age",
            Format::SopsYaml => "sops-yaml",
            Format::SopsJson => "sops-json",
            Format::SopsDotenv => "sops-dotenv",
            Format::SopsIni => "sops-ini",
            Format::SopsBinary => "sops-binary",
        }
    }

    /// The file extension under `secrets/`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Age => "age",
            Format::SopsYaml => "yaml",
            Format::SopsJson => "json",
            Format::SopsDotenv => "env",
            Format::SopsIni => "ini",
            Format::SopsBinary => "bin",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

/// The file a secret lives in: `secrets/NAME.EXT`, relative to the repository root.
pub fn secret_path(name: &str, format: Format) -> String {
    format!("{}/{name}.{}", crate::layout::SECRETS, format.extension())
}

/// The secret name and format of a file under `secrets/` (`None` for an unknown
/// extension). `rel` is relative to the repository root.
pub fn secret_of_path(rel: &str) -> Option<(&str, Format)> {
    let inner = rel
        .strip_prefix(crate::layout::SECRETS)?
        .strip_prefix('/')?;
    let (name, ext) = inner.rsplit_once('.')?;
    if name.is_empty() || name.ends_with('/') {
        return None;
    }
    Some((name, Format::from_extension(ext)?))
}

/// Who a secret's own bytes say can open it, read without any key: the stanzas of an
/// `.age` file's header, or a sops file's key sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readers {
    Age(age::Stanzas),
    Sops(sops::Readers),
}

impl Readers {
    /// What differs from what `recipients` (or a sops file's key groups) call
    /// for, in counts (never a key); `None` when they match.
    pub fn differs_from(
        &self,
        recipients: &[Recipient],
        shamir: Option<&sops::metadata::Shamir>,
    ) -> Option<String> {
        match self {
            Readers::Age(s) => s.differs_from(recipients),
            Readers::Sops(r) => r.differs_from(recipients, shamir),
        }
    }
}

/// Checks without any key that `data` is a valid file of `format` (as `keys check`
/// does) and returns its readers, parsing it once. The reason never quotes the file.
pub fn examine(format: Format, data: &[u8]) -> Result<Readers, String> {
    match format {
        Format::Age => age::header(data).map(Readers::Age),
        sops => sops::examine(sops, data).map(Readers::Sops),
    }
}

/// The readers of a file of `format` alone (a sops file's values are not checked).
pub fn readers(format: Format, data: &[u8]) -> Result<Readers, String> {
    match format {
        Format::Age => age::header(data).map(Readers::Age),
        sops => sops::readers(sops, data).map(Readers::Sops),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;
    use crate::layout::check_secret_name;

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-zA-Z0-9_+@][a-zA-Z0-9._+@-]{0,10}", 1..5)
            .prop_map(|segments| segments.join("/"))
    }

    /// A segment no name may have.
    const HOSTILE: &str = "|\\.|\\.\\.|\\.[a-z]{0,3}|-[a-z]{0,3}|[a-z]{0,2}[\\\\ \\x00\\n\\t\\x7f\\x{202e}ü*?:<>|~$'\"][a-z]{0,2}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn valid_names_map_to_files_under_secrets_and_back(name in name(), i in 0..Format::ALL.len()) {
            prop_assert_eq!(check_secret_name(&name), Ok(()));
            let format = Format::ALL[i];
            let rel = secret_path(&name, format);
            let mut parts = Path::new(&rel).components();
            prop_assert_eq!(parts.next(), Some(Component::Normal("secrets".as_ref())));
            prop_assert!(parts.all(|c| matches!(c, Component::Normal(_))), "{rel}");
            prop_assert_eq!(secret_of_path(&rel), Some((name.as_str(), format)));
        }

        #[test]
        fn hostile_names_are_refused(name in name(), at in any::<prop::sample::Index>(), bad in HOSTILE) {
            let mut segments: Vec<&str> = name.split('/').collect();
            let i = at.index(segments.len());
            segments[i] = &bad;
            let hostile = segments.join("/");
            prop_assert!(check_secret_name(&hostile).is_err(), "{hostile:?}");
            let (absolute, trailing) = (format!("/{name}"), format!("{name}/"));
            prop_assert!(check_secret_name(&absolute).is_err());
            prop_assert!(check_secret_name(&trailing).is_err());
        }
    }

    /// What is on disk is read without keys: no file under `src/format/` uses a layer
    /// that finds or holds keys, nor the age encryptor or the AES cipher.
    #[test]
    fn nothing_in_format_holds_a_key() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/format");
        let above = [
            "crate::crypto",
            "crate::identity",
            "crate::policy",
            "crate::ops",
            "crate::cli",
            "age::Encryptor",
            "age::Decryptor",
            "aes_gcm",
        ];
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(root) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for (n, line) in text.lines().enumerate() {
                // The code of the line: no comment, nothing between quotes.
                let code: String = line
                    .split("//")
                    .next()
                    .unwrap_or("")
                    .split('"')
                    .step_by(2)
                    .collect();
                for name in above.iter().filter(|name| code.contains(*name)) {
                    found.push(format!("{}:{}: {name}", entry.path().display(), n + 1));
                }
            }
        }
        assert!(found.is_empty(), "{found:#?}");
    }
}
