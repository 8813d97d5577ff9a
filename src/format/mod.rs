//! How a secret is stored on disk: agenix `.age` files here; the sops stores follow.
//! Stores never choose recipients (that is `policy`) and never hold identities.

pub mod age;
pub mod sops;

use crate::policy::Format;
use crate::recipient::Recipient;

/// Who a secret's own bytes say can open it, read without any key: the stanzas of an
/// `.age` file's header, or a sops file's key sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readers {
    Age(age::Stanzas),
    Sops(sops::Readers),
}

impl Readers {
    /// What differs from what `recipients` call for, in counts (never a key);
    /// `None` when they match.
    pub fn differs_from(&self, recipients: &[Recipient]) -> Option<String> {
        match self {
            Readers::Age(s) => s.differs_from(recipients),
            Readers::Sops(r) => r.differs_from(recipients),
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
