//! Interoperability with the reference tools: what `keys` writes the real age and sops
//! read, what they write `keys` reads, and every shared test vector and conformance
//! case gives the documented result.

mod age;
mod conformance;
mod matrix;
pub(crate) mod sops;
mod vectors;
