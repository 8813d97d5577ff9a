//! The one integration test binary: runs the real `keys` binary in a hermetic
//! environment and checks what a user would see. A module named after a command tests
//! that command; `security/` and `interop/` hold what holds across commands.

mod adopt;
mod check;
mod colmena;
mod common;
mod completion;
mod container;
mod contracts;
mod decrypt;
mod deploy;
mod deploy_key;
mod diff;
mod docs;
mod edit;
mod encrypt;
mod exec;
mod export;
mod fixture;
mod flake;
mod generate;
mod gitignore;
mod hook;
mod host;
mod host_rules;
mod host_side;
mod husky;
mod identities;
mod import;
mod init;
mod interop;
mod lefthook;
mod lifecycle;
mod ls;
mod merge;
mod openbao;
mod openbao_transit;
mod policy_cli;
mod precommit;
mod readme;
mod rekey;
mod rm;
mod security;
mod status;
mod to_age;
