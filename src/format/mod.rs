//! How a secret is stored on disk: agenix `.age` files here; the sops stores follow.
//! Stores never choose recipients (that is `policy`) and never hold identities.

pub mod age;
pub mod sops;
