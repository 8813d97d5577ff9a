//! The one integration test binary: runs the real `keys` binary in a hermetic
//! environment and checks what a user would see. A module named after a command tests
//! that command; `security/` and `interop/` hold what holds across commands.

mod common;
mod contracts;
mod deploy;
mod docs;
mod edit;
mod hook;
mod host;
mod init;
mod interop;
mod rekey;
mod secrets;
mod security;
mod status;
mod to_age;
