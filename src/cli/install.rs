//! `keys install`: nixos-anywhere with the host's staged key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ops::deploy;
use crate::ops::remote::{self, Failure, Install, Runner, Stderr};
use crate::ops::stage::{self, Target};
use crate::ops::workspace::Hosts;
use crate::signal::SignalGuard;

use super::shared::{self, ViaArg, exit_text, host_key_error};
use super::ui;

/// Install NixOS on a host with nixos-anywhere, its host key staged from the repo.
///
/// First checks what the install needs (flake.nix and flake.lock, tracked by git in
/// a git work tree; the --ssh-key file; the stored host key), as --dry-run does.
/// Then stages the host's key as `keys stage-install` does, and the host's disk
/// encryption keys (secrets named HOST/… or hosts/HOST/… whose policy rule sets
/// `disk_encryption_key: PATH`) as 0600 files beside the tree, and runs
/// `nixos-anywhere --flake .#ATTR --extra-files TREE --target-host TARGET
/// [--disk-encryption-keys PATH FILE]… [ARGS…]` (the nixos-anywhere on PATH, else
/// `nix run` of nixos-anywhere 1.13.0, else the same in the nixos/nix:2.35.2 Docker
/// image with the repository and the tree mounted, the ssh agent forwarded and /nix
/// kept in the volume keys-nix-2.35.2). It then waits for the host to come back and
/// checks, with known_hosts built from the repository, that it presents the staged
/// key. Everything staged is removed whatever happens: success, failure or Ctrl-C.
/// Reads address, ssh_port and flake_attr from recipients/hosts/NAME.yaml.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The host to install.
    #[arg(long, value_name = "NAME", add = super::complete::host_names())]
    host: String,

    /// Where nixos-anywhere connects before the install (default: root@ADDRESS).
    #[arg(long, value_name = "USER@ADDR")]
    target: Option<String>,

    /// The ssh port before the install (default: nixos-anywhere's, 22).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// How to run nixos-anywhere (default: nix when nixos-anywhere or nix is on PATH,
    /// else docker).
    #[arg(long, value_enum, value_name = "HOW")]
    via: Option<ViaArg>,

    /// The SSH private key to log in with (nixos-anywhere -i, ssh -i).
    #[arg(long, value_name = "FILE")]
    ssh_key: Option<PathBuf>,

    /// How long to wait for the installed host to present its key (0: do not check).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait: u64,

    /// Check what the install needs and print the commands, with no secret in them;
    /// decrypt and run nothing.
    #[arg(long)]
    dry_run: bool,

    /// Allow a disk-backed directory for the staged tree when no tmpfs is found.
    #[arg(long)]
    allow_disk_temp: bool,

    /// Arguments passed on to nixos-anywhere after keys' own, e.g. `-- --build-on
    /// remote`, `-- --generate-hardware-config nixos-facter ./facter.json`, `--
    /// --kexec URL` (relative paths are from the repository root).
    #[arg(last = true, value_name = "ARGS")]
    anywhere: Vec<OsString>,
}

/// Placeholders for what exists only while a real install runs.
const TREE: &str = "$STAGED_TREE";
const KNOWN_HOSTS: &str = "$PINNED_KNOWN_HOSTS";

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let ws = ctx.workspace(Hosts::All)?;
    let host = ws.host(&args.host)?;
    let target = match &args.target {
        Some(t) => t.clone(),
        None => format!("root@{}", remote::address(host)?),
    };
    if args.wait > 0 {
        remote::address(host)?;
    }
    // What the real run needs, before anything is decrypted or run: --dry-run fails
    // where the install would.
    remote::check_passthrough(&args.anywhere)?;
    if let Some(key) = &args.ssh_key {
        remote::check_ssh_key(key)?;
    }
    deploy::check_flake(repo)?;
    stage::check_stored_keys(&ws, host)?;
    let disk_keys = stage::disk_keys(&ws, host)?;
    let install = |runner: &Runner, tree: &Path, disk: &[(String, PathBuf)]| {
        remote::install_command(
            runner,
            &Install {
                repo,
                host,
                target: target.clone(),
                port: args.port,
                tree,
                ssh_key: args.ssh_key.as_deref(),
                disk_keys: disk,
                extra: &args.anywhere,
            },
        )
    };
    if args.dry_run {
        let runner = shared::runner(args.via, "nixos-anywhere", || {
            Ok(PathBuf::from(shared::GITCONFIG))
        })?;
        let mut out = format!(
            "# stage {}'s host key into {TREE} (a 0700 directory on tmpfs), as `keys stage-install --host {}`\n",
            host.name, host.name
        );
        let mut disk = Vec::new();
        for (n, key) in disk_keys.iter().enumerate() {
            let file = format!("$DISK_KEY_{}", n + 1);
            out.push_str(&format!(
                "# decrypt {} into {file}, a 0600 file beside the tree: {}'s disk encryption key at {} on the installer\n",
                key.name, host.name, key.remote
            ));
            disk.push((key.remote.clone(), PathBuf::from(file)));
        }
        out.push_str(&shared::gitconfig_comment(&runner));
        out.push_str(&format!("{}\n", install(&runner, Path::new(TREE), &disk)));
        if args.wait > 0 {
            out.push_str(&format!(
                "# {KNOWN_HOSTS}: {}",
                remote::known_hosts(host, remote::address(host)?, host.ssh_port)
            ));
            out.push_str(&format!(
                "{}\n",
                remote::verify_command(host, Path::new(KNOWN_HOSTS), args.ssh_key.as_deref())?
            ));
        }
        out.push_str(&format!("# remove {TREE}\n"));
        return ui::out(&out);
    }
    let guard = SignalGuard::new()?;
    let mut ids = ctx.identities()?;
    let files = stage::files(&ws, host, &mut ids, ctx.prompt())?;
    let disk_plain = stage::open_disk_keys(&disk_keys, &mut ids, ctx.prompt())?;
    guard.check()?;
    // Dropped on every path out of this function: the tree and the keys are wiped.
    let staged = stage::write(
        Target::Private,
        &files,
        shared::medium(args.allow_disk_temp),
    )?;
    ui::note_scratch(staged.scratch());
    let mut disk = Vec::new();
    for (n, (key, plain)) in disk_keys.iter().zip(&disk_plain).enumerate() {
        let file = staged
            .scratch()
            .create_file(&format!("disk-key-{}", n + 1), plain, 0o600)?;
        ui::note(&format!(
            "{}: disk encryption key {} goes to {} on the installer",
            host.name, key.name, key.remote
        ));
        disk.push((key.remote.clone(), file));
    }
    drop(disk_plain);
    let runner = shared::runner(args.via, "nixos-anywhere", || {
        staged
            .scratch()
            .create_file("gitconfig", remote::GITCONFIG.as_bytes(), 0o644)
    })?;
    let command = install(&runner, staged.root(), &disk);
    ui::note(&format!("running {command}"));
    match remote::run(&command, &guard, Stderr::Shown)? {
        Ok(()) => {}
        Err(Failure::Missing(e)) => {
            return Err(Error::External {
                program: command.program.clone(),
                reason: format!("cannot run it ({e}); the staged tree was removed"),
            });
        }
        Err(Failure::Exit { code, .. }) => {
            return Err(Error::Remote {
                message: format!(
                    "{} failed ({}); the staged tree was removed",
                    command.program,
                    exit_text(code)
                ),
                hint: "read its output above, fix the cause, and run `keys install` again".into(),
            });
        }
    }
    if args.wait == 0 {
        ui::note(&format!("installed {}", host.name));
        return Ok(());
    }
    let address = remote::address(host)?;
    let known_hosts = staged.scratch().create_file(
        "known_hosts",
        remote::known_hosts(host, address, host.ssh_port).as_bytes(),
        0o644,
    )?;
    let verify = remote::verify_command(host, &known_hosts, args.ssh_key.as_deref())?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        match remote::run(&verify, &guard, Stderr::Captured)? {
            Ok(()) => break,
            Err(Failure::Missing(e)) => {
                return Err(Error::External {
                    program: "ssh".into(),
                    reason: format!("cannot run it ({e})"),
                });
            }
            Err(Failure::Exit { stderr, .. }) if remote::host_key_refused(&stderr) => {
                return Err(host_key_error(host, address));
            }
            Err(Failure::Exit { stderr, .. }) => {
                if Instant::now() >= deadline {
                    return Err(Error::Remote {
                        message: format!(
                            "{} did not come back on {address}:{} within {} s: {}",
                            host.name,
                            host.ssh_port,
                            args.wait,
                            remote::last_line(&stderr)
                        ),
                        hint: "check the host's console; the install itself finished".into(),
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        guard.check()?;
    }
    ui::note(&format!(
        "installed {}: it answers on {address}:{} with its pinned key",
        host.name, host.ssh_port
    ));
    Ok(())
}
