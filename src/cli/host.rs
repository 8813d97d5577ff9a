//! `keys host add|ls|rm`: hosts joining and leaving the fleet.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result, usage};
use crate::ops::host::{self, HostSpec, KeySource};
use crate::ops::{push, remote};
use crate::policy::fleet::Fleet;
use crate::recipient::Recipient;
use crate::scratch::{Medium, Scratch};
use crate::signal::SignalGuard;

use super::ui::{self, Table};
use super::{prompt, shared};

/// How long ssh-keyscan may take.
const KEYSCAN_TIMEOUT: Duration = Duration::from_secs(10);

/// Add, list and remove hosts (recipients/hosts/NAME.yaml).
#[derive(clap::Args)]
#[command(after_long_help = super::json::host_ls_schema())]
pub(crate) struct Args {
    #[command(subcommand)]
    command: HostCommand,
}

#[derive(clap::Subcommand)]
enum HostCommand {
    Add(AddArgs),
    Ls(LsArgs),
    Rm(RmArgs),
    Rotate(RotateArgs),
    #[command(mut_args(super::complete::on("old", super::complete::host_names())))]
    Rename(super::shared::RenameArgs),
}

/// Give a host a new host key and re-encrypt what it reads, in one run.
///
/// The new key comes from exactly one of --key FILE, --keyscan ADDR[:PORT] (shown and
/// confirmed, or --yes) or --generate (the private key replaces the one stored in
/// hosts/NAME/ssh_host_ed25519_key, and is stored before the host file names it; a
/// key from --key or --keyscan removes a stored key of the old one). Then every
/// secret whose rule names the host or one of its containers is re-encrypted as
/// `keys rekey --host NAME` does. If that fails, the host file, the stored key and
/// keys.lock are put back as they were. If the run is killed, a journal
/// (.keys-rotation) lets `keys check` report it and the next `keys rekey` or `keys
/// host rotate` undo it (when the host file does not name the new key yet) or
/// finish it.
///
/// With --generate --push, the host is running and gets the new key first: over one
/// ssh session pinned to its old key (as the host file's ssh_user, through `sudo -n`
/// when that is not root), the private key (on ssh's standard input) is
/// written beside <persist>/etc/ssh/ssh_host_ed25519_key and renamed over it, and
/// sshd is reloaded (`systemctl reload sshd.service`, else a SIGHUP to its main
/// process; nothing with socket activation). A fresh connection that knows only the
/// new key must then succeed; only then is the key recorded and the secrets rekeyed,
/// and the host told to keep it. Until then the host holds its old key beside the
/// new one and puts it back if anything fails, the session ends or 15 minutes pass,
/// and the repository is put back too.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["key", "keyscan", "generate"])))]
struct RotateArgs {
    /// The host's name.
    #[arg(value_name = "NAME", add = super::complete::host_names())]
    name: String,

    #[command(flatten)]
    source: KeySourceArgs,

    /// Install the generated key on the running host (at its address, as its
    /// ssh_user, its old key pinned) and prove it answers with it before recording it.
    #[arg(long)]
    push: bool,

    /// With --push: the SSH private key to log in with (ssh -i).
    #[arg(long, value_name = "FILE", requires = "push")]
    ssh_key: Option<PathBuf>,
}

/// Where a host key comes from: exactly one of --key, --keyscan and --generate.
#[derive(clap::Args)]
struct KeySourceArgs {
    /// Read the host key from this file: an ssh-ed25519 public key, a known_hosts or
    /// ssh-keyscan line, or the host's unencrypted OpenSSH private key (its public half
    /// is recorded).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,

    /// With --key PRIVATE_KEY: also store that private key as the host's key secret
    /// (hosts/NAME/ssh_host_ed25519_key, encrypted to the admins, as --generate does),
    /// so stage-install can install a key made before keys.
    #[arg(long, requires = "key")]
    store_private: bool,

    /// Ask the host for its key with ssh-keyscan (port: the one given here, else
    /// --ssh-port when adding, else 22). When adding, its address is recorded unless
    /// --address says otherwise.
    #[arg(long, value_name = "ADDR[:PORT]")]
    keyscan: Option<String>,

    /// Generate a new ed25519 host key pair and store the private key encrypted to the
    /// admins.
    #[arg(long)]
    generate: bool,

    /// Accept the scanned key without asking (check its fingerprint another way).
    #[arg(long, requires = "keyscan")]
    yes: bool,
}

/// Add a host, named by its SSH ed25519 host key.
///
/// The key comes from exactly one of --key FILE (an ssh-ed25519 public key, a
/// known_hosts or ssh-keyscan line, or the host's OpenSSH private key, which
/// --store-private also stores as its key secret), --keyscan ADDR[:PORT] (runs `ssh-keyscan -t
/// ed25519`, shows the key's SHA256 fingerprint and asks on the terminal to confirm it,
/// unless --yes), or --generate (a new key pair made here: the public key goes into the
/// host file, the OpenSSH private key into the secret hosts/NAME/ssh_host_ed25519_key,
/// encrypted to the admins only, so it can be installed with nixos-anywhere before the
/// host first boots). A generated key needs a policy rule giving it to exactly the
/// admins; when there is none, policies/00-host-keys.yaml is created with one.
///
/// Writes recipients/hosts/NAME.yaml; refuses a name already used by a host or a
/// container. $KEYS_SSH_KEYSCAN names the ssh-keyscan program to run (default:
/// ssh-keyscan on PATH).
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["key", "keyscan", "generate"])))]
struct AddArgs {
    /// The host's name (also the file name and the default flake attribute).
    #[arg(value_name = "NAME")]
    name: String,

    #[command(flatten)]
    source: KeySourceArgs,

    /// The address to deploy to (IP address or DNS name).
    #[arg(long, value_name = "ADDR")]
    address: Option<String>,

    /// The SSH port [default: 22, or the one given with --keyscan].
    #[arg(long, value_name = "PORT")]
    ssh_port: Option<u16>,

    /// The host's Nix system.
    #[arg(long, value_parser = ["x86_64-linux", "aarch64-linux"])]
    system: Option<String>,

    /// The flake's nixosConfigurations attribute [default: NAME].
    #[arg(long, value_name = "ATTR")]
    flake_attr: Option<String>,

    /// The impermanence prefix under which the host keeps /etc/ssh (e.g. /persistent).
    #[arg(long, value_name = "PREFIX")]
    persist: Option<String>,
}

/// List the hosts: name, address, host key fingerprint, derived age key and
/// containers.
///
/// The table fits the terminal (80 columns when stdout is not one, or $COLUMNS),
/// cutting long keys with …; --json prints every field in full.
#[derive(clap::Args)]
#[command(after_long_help = super::json::host_ls_schema())]
struct LsArgs {
    /// Print JSON (version 1, described below) instead of the table.
    #[arg(long)]
    json: bool,
}

/// Remove a host's file, recipients/hosts/NAME.yaml.
///
/// Refused while a policy rule names host:NAME or one of its containers (directly or
/// through a group); the error names the rule's file and line. Secrets encrypted to it
/// are left as they are.
#[derive(clap::Args)]
struct RmArgs {
    /// The host's name.
    #[arg(value_name = "NAME", add = super::complete::host_names())]
    name: String,

    /// Also remove its generated private keys (hosts/NAME/ssh_host_ed25519_key, those
    /// of its containers and its deploy keys' deploy/KEY) and their keys.lock lines.
    #[arg(long)]
    with_key: bool,
}

impl Args {
    /// Whether the command re-encrypts the host's secrets (`host rotate`).
    pub(crate) fn rekeys(&self) -> bool {
        matches!(self.command, HostCommand::Rotate(_))
    }
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    match args.command {
        HostCommand::Add(a) => add(ctx, a),
        HostCommand::Ls(a) => ls(ctx, a),
        HostCommand::Rotate(a) => rotate(ctx, a),
        HostCommand::Rm(a) => {
            let report = host::remove_host(ctx.repo()?, &a.name, a.with_key)?;
            ui::out(&shared::host_report(&report))?;
            shared::refresh_exports(ctx)
        }
        HostCommand::Rename(a) => shared::rename(ctx, crate::ops::rename::Kind::Host, a),
    }
}

fn add(ctx: &super::Context, args: AddArgs) -> Result<()> {
    let repo = ctx.repo()?;
    let mut address = args.address;
    let mut ssh_port = args.ssh_port;
    let key = if let Some(file) = &args.source.key {
        host::read_key_file(file, args.source.store_private)?
    } else if let Some(target) = &args.source.keyscan {
        host::check_new_host(repo, &args.name)?;
        let (found, addr, port) = scan(
            target,
            args.ssh_port,
            args.source.yes,
            &format!("Add host {} with this key?", args.name),
        )?;
        address.get_or_insert(addr);
        ssh_port.get_or_insert(port);
        KeySource::Given(found)
    } else {
        KeySource::Generate
    };
    let spec = HostSpec {
        name: args.name,
        key,
        address,
        ssh_port: ssh_port.unwrap_or(22),
        system: args.system,
        flake_attr: args.flake_attr,
        persist: args.persist,
    };
    let report = host::add_host(repo, spec)?;
    ui::out(&shared::host_report(&report))?;
    shared::refresh_exports(ctx)
}

fn rotate(ctx: &super::Context, args: RotateArgs) -> Result<()> {
    if args.push {
        if !args.source.generate {
            return Err(usage(
                "--push installs a key made here: it needs --generate",
                format!("run `keys host rotate {} --generate --push`", args.name),
            ));
        }
        return rotate_live(ctx, args);
    }
    let repo = ctx.repo()?;
    let key = if let Some(file) = &args.source.key {
        host::read_key_file(file, args.source.store_private)?
    } else if let Some(target) = &args.source.keyscan {
        let (found, _, _) = scan(
            target,
            None,
            args.source.yes,
            &format!("Rotate host {} to this key?", args.name),
        )?;
        KeySource::Given(found)
    } else {
        KeySource::Generate
    };
    let mut ids = ctx.identities()?;
    let done = host::rotate_host(repo, &args.name, key, &mut ids, ctx.prompt())?;
    super::rekey::warn_mac_mismatch(&done.mac_mismatch);
    let mut text = shared::host_report(&done.report);
    text.push_str(&format!(
        "rekeyed   {} secret{} for the new key\n",
        done.rekeyed,
        ui::plural(done.rekeyed)
    ));
    ui::out(&text)?;
    shared::refresh_exports(ctx)
}

/// `host rotate --generate --push`: the new key goes to the running host and is
/// proven there before the repository records it; the host keeps it only once the
/// repository is rekeyed.
fn rotate_live(ctx: &super::Context, args: RotateArgs) -> Result<()> {
    let repo = ctx.repo()?;
    let mut ids = ctx.identities()?;
    let rotation = host::prepare_rotation(
        repo,
        &args.name,
        KeySource::Generate,
        &mut ids,
        ctx.prompt(),
    )?;
    let guard = SignalGuard::new()?;
    // Not secret, but private and temporary: removed on every exit path.
    let scratch = Scratch::create(Medium::RamOrDisk)?;
    let mut pushed = {
        let host = rotation.host()?;
        let private = rotation.private().ok_or_else(|| Error::Bug {
            what: "a generated key without its private half".into(),
        })?;
        ui::note(&format!(
            "{}: installing the new key at {} and reloading sshd",
            host.name,
            push::key_path(host)
        ));
        push::push(
            &push::KeyPush {
                host,
                public: rotation.public(),
                private,
                ssh_key: args.ssh_key.as_deref(),
            },
            &scratch,
            &guard,
        )?
    };
    ui::note(&format!(
        "{} answers with the new key {}; recording it and rekeying",
        args.name,
        rotation.public().fingerprint()
    ));
    let mut kept = None;
    let mut keep = || -> Result<()> {
        kept = Some(pushed.keep(&guard)?);
        Ok(())
    };
    let done = match rotation.apply(&mut ids, ctx.prompt(), Some(&mut keep)) {
        Ok(done) => done,
        Err(e) => {
            if kept.is_none() && pushed.abort(&guard).unwrap_or(false) {
                ui::note(&format!("{}: the old key was put back", args.name));
            }
            return Err(e);
        }
    };
    super::rekey::warn_mac_mismatch(&done.mac_mismatch);
    let mut text = shared::host_report(&done.report);
    text.push_str(&format!(
        "rekeyed   {} secret{} for the new key\n",
        done.rekeyed,
        ui::plural(done.rekeyed)
    ));
    ui::out(&text)?;
    if kept == Some(push::Kept::Unconfirmed) {
        ui::warn(&format!(
            "{} did not confirm that it keeps the new key: check the key it presents (ssh-keyscan -t ed25519), and if it is the old one run `keys host rotate {} --keyscan ADDR`",
            args.name, args.name
        ));
    }
    shared::refresh_exports(ctx)
}

/// Runs ssh-keyscan on `target` (port from the target, else `port`, else 22), shows
/// the key's fingerprint and has it confirmed on the terminal unless `yes`.
fn scan(
    target: &str,
    port: Option<u16>,
    yes: bool,
    question: &str,
) -> Result<(Recipient, String, u16)> {
    let (addr, in_target) = remote::parse_target(target)?;
    let port = in_target.or(port).unwrap_or(22);
    if !yes && !prompt::has_tty() {
        return Err(usage(
            "--keyscan asks to confirm the scanned key and there is no terminal",
            "compare the host's fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it) and pass --yes, or use --key FILE",
        ));
    }
    let program = std::env::var_os("KEYS_SSH_KEYSCAN")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("ssh-keyscan"), PathBuf::from);
    let found = remote::keyscan(&program, &addr, port, KEYSCAN_TIMEOUT)?;
    ui::note(&format!(
        "{addr} port {port} has host key {} {}",
        found.kind(),
        found.fingerprint()
    ));
    if !yes && prompt::confirm(question) != Some(true) {
        return Err(usage(
            "the scanned key was not confirmed; nothing was written",
            "run again and answer y once the fingerprint matches the host's",
        ));
    }
    Ok((found, addr, port))
}

fn ls(ctx: &super::Context, args: LsArgs) -> Result<()> {
    let fleet = Fleet::load(ctx.repo()?)?;
    if args.json {
        return super::json::print(&super::json::HostList::new(&fleet)?);
    }
    let mut table = Table::new("");
    table.header(["HOST", "ADDRESS", "FINGERPRINT", "AGE", "CONTAINERS"]);
    table.keep(0, 24);
    table.keep(1, 24);
    // Keys are cut before names: a key's start still tells it apart.
    table.keep(2, 15);
    table.keep(3, 14);
    table.keep(4, 24);
    for h in fleet.hosts()? {
        let containers: Vec<String> = h
            .containers
            .iter()
            .map(|c| match c.own_key {
                Some(_) => format!("{} (own key)", c.name),
                None => c.name.clone(),
            })
            .collect();
        table.row([
            h.name.clone(),
            shared::address(h),
            h.key.fingerprint(),
            h.key.to_x25519().unwrap_or_default(),
            if containers.is_empty() {
                "-".to_string()
            } else {
                containers.join(", ")
            },
        ]);
    }
    ui::out(&table.render())
}
