//! The security suite: properties that hold across every command (hostile input,
//! plaintext hygiene, leaked keys, paths and links, the environment, weak keys, the
//! lock file's claims, injected faults), each proven through the real binary.

mod data_key;
mod environment;
mod faults;
pub(crate) mod hostile;
mod hygiene;
mod leaks;
mod lock_truth;
mod paths;
mod weak_keys;
