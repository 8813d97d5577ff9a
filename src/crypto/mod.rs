//! How a secret is sealed, and the only place that holds keys to do it: `age` encrypts
//! and decrypts whole age files with the identities found, `aes` seals one sops value,
//! `sops` seals, opens and re-wraps whole sops files (values, MAC, data key), `shamir`
//! splits a data key among sops key groups, `transit` wraps one with an OpenBao
//! transit key, `x25519` wraps file keys for the X25519 recipients of many files,
//! and `keygen` makes the host keys generated here.

pub mod aes;
pub mod age;
pub mod keygen;
pub mod shamir;
pub mod sops;
pub mod transit;
pub mod x25519;
