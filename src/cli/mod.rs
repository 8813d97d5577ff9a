//! The command line: clap definitions (one file per subcommand), the one dispatch
//! `match`, and the `Context` that gives a command its repository, workspace and
//! identities. Only this module prints (through `ui`) or prompts.

mod admin;
mod adopt;
mod check;
mod complete;
mod completions;
mod container;
mod decrypt;
mod deploy_key;
mod edit;
mod editor;
mod encrypt;
mod error;
mod exec;
mod export;
mod generate;
mod hook;
mod host;
mod import;
mod init;
mod install;
mod json;
mod ls;
mod merge_lock;
mod prompt;
mod push;
mod rekey;
mod remote;
mod rm;
mod rotate;
mod rule;
mod set;
mod shared;
mod stage;
mod status;
mod to_age;
mod ui;
mod update;

use std::cell::{OnceCell, RefCell, RefMut};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use error::EXIT_CODES;

use crate::error::{Error, Result};
use crate::identity::{Identities, Search};
use crate::layout::Repo;
use crate::ops::workspace::{Hosts, Workspace};

/// Secrets and machine identities for a NixOS fleet kept in git.
///
/// keys derives age recipients from SSH host keys, encrypts secrets for sops-nix and
/// agenix from one policy, and drives nixos-anywhere installs and updates.
#[derive(Parser)]
#[command(name = "keys", version, about, long_about, after_long_help = error::exit_codes_help())]
pub struct Cli {
    /// The fleet repository (default: $KEYS_REPO, else the nearest ancestor with
    /// policies/ and recipients/).
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,

    /// An identity file to decrypt with (age identity or SSH private key); repeatable.
    /// As with age and sops, only the identities named are tried. Without -i:
    /// $KEYS_IDENTITY alone when set, else the OS keyring, ~/.config/keys/identity.txt,
    /// ~/.ssh/id_ed25519, $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE,
    /// $SOPS_AGE_SSH_PRIVATE_KEY_FILE and sops's keys.txt. Like ssh, keys refuses a key
    /// file other users can read.
    #[arg(short = 'i', long = "identity", global = true, value_name = "FILE")]
    identities: Vec<PathBuf>,

    /// Read passphrases from this file descriptor (first line; a pipe or a regular
    /// file) instead of the terminal. $KEYS_PASSPHRASE_FILE names a file to read instead.
    #[arg(long, global = true, value_name = "N")]
    passphrase_fd: Option<u32>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Each subcommand's arguments are built only when it is the one run (or when help,
// completions or man pages need them all), which halves the time spent parsing them.
// The one-line summaries below are what `keys --help` lists without building them;
// they repeat the first paragraph of each command's own doc (a test keeps them equal).
#[command(defer = true)]
enum Command {
    /// Create a fleet repository here (or at --repo) with its first admin.
    Init(init::Args),
    /// Show the fleet at a glance: the admins, and each host's address, key and secrets
    /// by status.
    Status(status::Args),
    /// Encrypt a secret for the readers its policy rule names.
    Encrypt(encrypt::Args),
    /// Decrypt a secret (by name) or an age file (by path) to stdout or a new 0600 file.
    Decrypt(decrypt::Args),
    /// Run a command with a secret's top-level values in its environment, like `sops exec-env`.
    Exec(exec::Args),
    /// Edit a secret in $VISUAL or $EDITOR, or create it.
    Edit(edit::Args),
    /// Make secrets whose policy rule says how (`generate:`), from the OS random source.
    Generate(generate::Args),
    /// Give a secret a new value: its rule's generator makes one, else the editor opens.
    Rotate(rotate::Args),
    /// List every secret: name, format, status and readers.
    Ls(ls::Args),
    /// Check the repository: policy, keys.lock, and no plaintext or private keys.
    Check(check::Args),
    /// Re-encrypt every secret whose recipients differ from what its policy resolves to.
    Rekey(rekey::Args),
    /// Record secrets that sops or agenix wrote in secrets/keys.lock.
    Adopt(adopt::Args),
    /// Manage admins (recipients/admins/NAME.pub).
    Admin(admin::Args),
    /// Add and list policy rules (policies/*.yaml).
    Rule(rule::Args),
    /// Make an existing repository a keys repository, in place.
    Import(import::Args),
    /// Merge keys.lock secret by secret (git runs this as a merge driver).
    #[command(hide = true)]
    MergeLock(merge_lock::Args),
    /// Manage the git pre-commit hook that runs `keys check --staged`.
    Hook(hook::Args),
    /// Add, list and remove hosts (recipients/hosts/NAME.yaml).
    Host(host::Args),
    /// Add containers to a host's file.
    Container(container::Args),
    /// Manage CI deploy keys: SSH keys that can only run one command on a host.
    DeployKey(deploy_key::Args),
    /// Write the policy as another tool's configuration.
    Export(export::Args),
    /// Stage a host's pre-generated SSH host key for nixos-anywhere --extra-files.
    StageInstall(stage::Args),
    /// Install NixOS on a host with nixos-anywhere, its host key staged from the repo.
    Install(install::Args),
    /// Send the flake to a host with rsync and run nixos-rebuild switch over ssh.
    Update(update::Args),
    /// Keep secrets only on a host, as root-only files (local mode).
    Remote(remote::Args),
    /// Remove a secret: its file under secrets/ and its line in secrets/keys.lock.
    Rm(rm::Args),
    /// Set one value of a sops secret, like `sops set`.
    Set(set::SetArgs),
    /// Remove one value of a sops secret, like `sops unset`.
    Unset(set::UnsetArgs),
    /// Convert SSH ed25519 keys to age recipients (or, with --private, identities).
    ToAge(to_age::Args),
    /// Write secrets to OpenBao's KV v2 engine, as their policy rules' `openbao:` say.
    Push(push::Args),
    /// Print a completion script for a shell.
    Completions(completions::Args),
}

/// What every subcommand gets: the global options, and what they lead to (the
/// repository, its workspace, the identities), each found when first asked for.
pub(crate) struct Context {
    repo_flag: Option<PathBuf>,
    identity_files: Vec<PathBuf>,
    prompt: prompt::CliPrompt,
    repo: OnceCell<Repo>,
    identities: OnceCell<RefCell<Identities>>,
}

impl Context {
    fn new(
        repo_flag: Option<PathBuf>,
        identity_files: Vec<PathBuf>,
        prompt: prompt::CliPrompt,
    ) -> Context {
        Context {
            repo_flag,
            identity_files,
            prompt,
            repo: OnceCell::new(),
            identities: OnceCell::new(),
        }
    }

    /// The fleet repository: --repo, else $KEYS_REPO, else the nearest ancestor of the
    /// working directory with policies/ and recipients/. Found once.
    pub(crate) fn repo(&self) -> Result<&Repo> {
        if let Some(repo) = self.repo.get() {
            return Ok(repo);
        }
        let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
        let env = std::env::var_os("KEYS_REPO")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let repo = Repo::discover(self.repo_flag.as_deref(), env.as_deref(), &cwd)?;
        Ok(self.repo.get_or_init(|| repo))
    }

    /// Where `keys init` makes a repository: --repo, else the working directory.
    pub(crate) fn new_repo_root(&self) -> Result<PathBuf> {
        match &self.repo_flag {
            Some(dir) => Ok(dir.clone()),
            None => std::env::current_dir().map_err(|e| Error::io(".", e)),
        }
    }

    /// The repository's fleet, policy and lock, for a command that only reads.
    pub(crate) fn workspace(&self, hosts: Hosts) -> Result<Workspace> {
        Workspace::load(self.repo()?, hosts)
    }

    /// The workspace for a command that writes: the repository's writer lock is
    /// taken first and held for as long as the workspace lives.
    pub(crate) fn writable_workspace(&self, hosts: Hosts) -> Result<Workspace> {
        Workspace::load_writable(self.repo()?, hosts)
    }

    /// `writable_workspace` for a command that writes the secret `name`: its line of
    /// the lock is staged while the rest is read (`Workspace::load_writable_for_secret`).
    pub(crate) fn writable_workspace_for_secret(
        &self,
        hosts: Hosts,
        name: &str,
    ) -> Result<Workspace> {
        Workspace::load_writable_for_secret(self.repo()?, hosts, name)
    }

    /// The identity files given with -i, in order.
    pub(crate) fn identity_files(&self) -> &[PathBuf] {
        &self.identity_files
    }

    /// Asks for passphrases (and new ones) the way the global options say.
    pub(crate) fn prompt(&self) -> &prompt::CliPrompt {
        &self.prompt
    }

    /// The identities to decrypt with, in the documented order, searched once, with
    /// what the search has to say (a key skipped or used despite its mode) printed on
    /// stderr.
    pub(crate) fn identities(&self) -> Result<RefMut<'_, Identities>> {
        let cell = match self.identities.get() {
            Some(cell) => cell,
            None => {
                let search = Search::from_env(self.identity_files.clone())?;
                let ids = Identities::search_with(&search, &|path| self.published_key(path))?;
                for line in ids.notes() {
                    ui::note(line);
                }
                self.identities.get_or_init(|| RefCell::new(ids))
            }
        };
        cell.try_borrow_mut().map_err(|_| Error::Bug {
            what: "the identities were asked for while in use".into(),
        })
    }

    /// Why a key file others can read may still be used: it lies in this fleet
    /// repository where a policy's `allow_private_keys` expects private keys (a test key
    /// published with the repository, whose bytes are in git anyway).
    fn published_key(&self, path: &Path) -> Option<String> {
        let repo = self.repo().ok()?;
        let real = std::fs::canonicalize(path).ok()?;
        let root = std::fs::canonicalize(repo.root()).ok()?;
        let rel = real.strip_prefix(&root).ok()?.to_str()?.to_string();
        let ws = Workspace::load(repo, Hosts::AsNeeded).ok()?;
        let at = ws.policy.private_key_allowed_by(&rel)?;
        Some(format!(
            "allow_private_keys ({at}) lists it as a published test key"
        ))
    }
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The stack a command runs on. A document may nest as deep as sops writes one
/// (10,000 levels of JSON); reading it takes no stack, but encrypting, checking,
/// writing and freeing its tree walk it, which takes more than the 8 MiB a main
/// thread usually has. Only the pages used are ever allocated.
const STACK: usize = 256 << 20;

pub fn main() -> ExitCode {
    // A completion script asking for candidates: answered before anything else runs.
    complete::answer_if_asked();
    crate::signal::catch_file_size_limit();
    // Before anything is decrypted. Best effort: a kernel that refuses leaves the
    // process as it was.
    let _ = crate::signal::no_core_dumps();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A rekey keeps each file it replaces open (`fsutil::FileRoom`): the table of open
    // files is grown for them now, while the process has one thread.
    if cli.command.rekeys() {
        crate::fsutil::widen_file_table();
    }
    // The command line reaches the command's thread once that thread exists; if it
    // cannot be started, the command runs here. The thread starts on this processor,
    // which this one leaves to it: started on another, idle one, it waits for that
    // processor to wake (a tenth of a millisecond in a virtual machine), and this
    // one waits as long again to be woken when it ends. It may run anywhere once
    // started.
    let anywhere = here_only();
    let (give, take) = std::sync::mpsc::sync_channel::<Cli>(1);
    let spawned = std::thread::Builder::new()
        .name("keys".into())
        .stack_size(STACK)
        .spawn(move || {
            if let Some(anywhere) = &anywhere {
                let _ = rustix::thread::sched_setaffinity(None, anywhere);
            }
            take.recv().map_or(ExitCode::FAILURE, run)
        });
    if let Some(anywhere) = &anywhere {
        let _ = rustix::thread::sched_setaffinity(None, anywhere);
    }
    match spawned {
        Ok(command) => {
            let _ = give.send(cli);
            command
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }
        Err(_) => run(cli),
    }
}

/// Keeps this thread (and the threads it starts) on the processor it is on; returns
/// the processors it could run on before, or `None` if it cannot be kept there.
fn here_only() -> Option<rustix::thread::CpuSet> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
    let anywhere = sched_getaffinity(None).ok()?;
    let cpu = sched_getcpu();
    if !anywhere.is_set(cpu) {
        return None;
    }
    let mut here = CpuSet::new();
    here.set(cpu);
    sched_setaffinity(None, &here).ok()?;
    Some(anywhere)
}

impl Command {
    /// Whether the command may re-encrypt secrets as `keys rekey` does: `rekey`, and
    /// `host rotate`, which rekeys what the host reads.
    fn rekeys(&self) -> bool {
        match self {
            Command::Rekey(_) => true,
            Command::Host(args) => args.rekeys(),
            _ => false,
        }
    }
}

/// Runs the command the command line names.
fn run(cli: Cli) -> ExitCode {
    let ctx = Context::new(
        cli.repo,
        cli.identities,
        prompt::CliPrompt::new(cli.passphrase_fd),
    );
    let result = match cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, args),
        Command::ToAge(args) => to_age::run(&ctx, args),
        Command::Encrypt(args) => encrypt::run(&ctx, args),
        Command::Decrypt(args) => decrypt::run(&ctx, args),
        Command::Exec(args) => exec::run(&ctx, args),
        Command::Edit(args) => edit::run(&ctx, args),
        Command::Generate(args) => generate::run(&ctx, args),
        Command::Rotate(args) => rotate::run(&ctx, args),
        Command::Ls(args) => ls::run(&ctx, args),
        Command::Check(args) => check::run(&ctx, args),
        Command::Rekey(args) => rekey::run(&ctx, args),
        Command::Adopt(args) => adopt::run(&ctx, args),
        Command::Admin(args) => admin::run(&ctx, args),
        Command::Rule(args) => rule::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::MergeLock(args) => merge_lock::run(args),
        Command::Hook(args) => hook::run(&ctx, args),
        Command::Host(args) => host::run(&ctx, args),
        Command::Container(args) => container::run(&ctx, args),
        Command::DeployKey(args) => deploy_key::run(&ctx, args),
        Command::Export(args) => export::run(&ctx, args),
        Command::StageInstall(args) => stage::run(&ctx, args),
        Command::Install(args) => install::run(&ctx, args),
        Command::Update(args) => update::run(&ctx, args),
        Command::Remote(args) => remote::run(&ctx, args),
        Command::Rm(args) => rm::run(&ctx, args),
        Command::Set(args) => set::set(&ctx, args),
        Command::Unset(args) => set::unset(&ctx, args),
        Command::Push(args) => push::run(&ctx, args),
        Command::Completions(args) => completions::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            error::report(&e);
            ExitCode::from(error::exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    /// The table of open files is widened up front for the commands that rekey
    /// (`keys rekey`, `keys host rotate`), and only for them: not for `keys rotate`,
    /// a secret's new value, nor for a secret or host named `rekey`.
    #[test]
    fn the_commands_that_rekey_are_told_apart_by_their_parsed_command_line() {
        use clap::Parser;
        let rekeys = |argv: &[&str]| {
            super::Cli::try_parse_from(argv.iter().copied())
                .unwrap()
                .command
                .rekeys()
        };
        assert!(rekeys(&["keys", "rekey", "--jobs", "2"]));
        assert!(rekeys(&["keys", "host", "rotate", "web1", "--generate"]));
        assert!(!rekeys(&["keys", "rotate", "rekey"]));
        assert!(!rekeys(&["keys", "host", "rm", "rekey"]));
        assert!(!rekeys(&["keys", "decrypt", "rekey"]));
    }

    /// The command's thread is started on the processor the main thread is on, and
    /// both may then run anywhere they could before.
    #[test]
    fn the_command_thread_starts_here_and_then_runs_anywhere() {
        use rustix::thread::sched_getaffinity;
        let before = sched_getaffinity(None).unwrap();
        let anywhere = super::here_only().expect("this thread can be kept where it is");
        assert_eq!(anywhere, before);
        let here = sched_getaffinity(None).unwrap();
        assert_eq!(here.count(), 1);
        let started = std::thread::spawn(|| sched_getaffinity(None).unwrap())
            .join()
            .unwrap();
        assert_eq!(started, here);
        rustix::thread::sched_setaffinity(None, &anywhere).unwrap();
        assert_eq!(sched_getaffinity(None).unwrap(), before);
    }

    /// `keys --help` lists each command by the summary on its variant (its arguments
    /// are not built for the listing); it must be the command's own.
    #[test]
    fn the_listed_summary_of_every_command_is_its_own() {
        let listed = super::command();
        let mut built = super::command();
        built.build();
        let about = |c: &clap::Command| c.get_about().map(|a| a.to_string());
        for sub in built.get_subcommands().filter(|s| s.get_name() != "help") {
            let summary = listed.find_subcommand(sub.get_name()).and_then(about);
            assert!(summary.is_some(), "{} has no summary", sub.get_name());
            assert_eq!(summary, about(sub), "{}", sub.get_name());
        }
    }
}
