//! The verbs: what a command does to a fleet repository, planned and then applied.
//! Library code here never prints; it returns reports for the CLI to show.

pub mod admin;
pub mod check;
pub mod container;
pub mod deploy;
pub mod deploy_key;
pub mod export;
pub mod generate;
pub mod gitignore;
pub mod hook;
pub mod host;
pub mod import;
pub mod init;
pub mod local;
pub mod openbao;
pub mod push;
pub mod readers;
pub mod rekey;
pub mod remote;
pub mod rename;
pub mod rule;
pub mod secret;
pub mod stage;
pub mod workspace;
