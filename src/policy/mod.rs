//! What the fleet is and who may read what: admins, hosts and containers from
//! `recipients/`, and the rules under `policies/`. This module owns the YAML crate
//! for fleet files.

pub mod edit;
pub mod fleet;
pub mod host_file;
pub mod local;
pub mod rules;

pub use fleet::Fleet;
pub use rules::{
    CLEAR_SUFFIX, Generator, Part, Placeholder, Policy, Reader, Resolved, Rule, SopsTemplate,
};

use crate::error::{Error, Location};

/// A fleet or policy file's bytes as text; `rel` names it in the error.
pub(crate) fn text_of<'a>(rel: &str, data: &'a [u8]) -> Result<&'a str, Error> {
    std::str::from_utf8(data).map_err(|_| Error::InvalidFile {
        at: Location::named(rel),
        reason: "not UTF-8 text".into(),
    })
}

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
