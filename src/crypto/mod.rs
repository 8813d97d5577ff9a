//! How a secret is sealed, and the only place that holds keys to do it: `age` encrypts
//! and decrypts whole age files with the identities found, `aes` seals one sops value,
//! and `sops` seals, opens and re-wraps whole sops files (values, MAC, data key).

pub mod aes;
pub mod age;
pub mod sops;
