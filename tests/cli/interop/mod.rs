//! Interoperability with the reference tools: what `keys` writes the real age and sops
//! read, what they write `keys` reads, and every shared test vector and conformance
//! case gives the documented result.

mod age;
mod conformance;
mod matrix;
mod shamir;
pub(crate) mod sops;
mod sops_options;
mod ssh_keys;
mod stores_wild;
mod vectors;
mod yaml_wild;
