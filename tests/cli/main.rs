//! The one integration test binary: runs the real `keys` binary in a hermetic
//! environment and checks what a user would see. A module named after a command tests
//! that command; `security/` and `interop/` hold what holds across commands.

mod adopt;
mod check;
mod common;
mod container;
mod contracts;
mod deploy;
mod docs;
mod edit;
mod encrypt;
mod export;
mod fixture;
mod gitignore;
mod hook;
mod host;
mod husky;
mod identities;
mod import;
mod init;
mod interop;
mod lefthook;
mod ls;
mod merge;
mod precommit;
mod rekey;
mod rm;
mod security;
mod status;
mod to_age;
