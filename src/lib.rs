//! `keys`: secrets and machine identities for a NixOS fleet kept in git.
//!
//! Layers, lowest first: `error`, `fsutil`, `layout`; `recipient`, `identity`;
//! `crypto`, `policy`; `ops`; and `cli` on top, which nothing else imports.

pub mod cli;
pub mod crypto;
pub mod error;
pub mod format;
pub mod fsutil;
pub mod git;
pub mod identity;
pub mod layout;
pub mod ops;
pub mod policy;
pub mod recipient;
pub mod scratch;
pub mod signal;
pub mod snapshot;
