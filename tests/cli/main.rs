//! The one integration test binary: runs the real `keys` binary in a hermetic
//! environment and checks what a user would see.

mod common;
mod conformance;
mod contracts;
mod deploy;
mod docs;
mod edit;
mod environment;
mod faults;
mod hook;
mod host;
mod hostile;
mod hygiene;
mod init;
mod interop;
mod leaks;
mod lock_truth;
mod paths;
mod rekey;
mod secrets;
mod sops;
mod status;
mod to_age;
mod vectors;
mod weak_keys;
