//! What the fleet is and who may read what: admins, hosts and containers from
//! `recipients/`, and the rules under `policies/`. This module owns the YAML crate
//! for fleet files.

pub mod fleet;
pub mod rules;

pub use fleet::Fleet;
pub use rules::{Policy, Reader, Resolved, Rule};

use crate::error::{Error, Location};

/// Turns a YAML error into a one-line error naming the file and line.
pub(crate) fn yaml_error(file: &str, err: &serde_saphyr::Error) -> Error {
    let mut at = Location::named(file);
    if let Some(loc) = err.location() {
        at = at.at_line(loc.line());
    }
    let rendered = err.without_snippet().to_string();
    let reason = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid YAML")
        .to_string();
    Error::InvalidFile { at, reason }
}

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
