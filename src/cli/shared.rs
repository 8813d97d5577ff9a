//! What several commands say or check the same way: the secrets table of `ls` and
//! `status`, the lines of a host change, the hooks installed, an `-o` path, where
//! `--allow-disk-temp` lets plaintext go, and the words for a remote step that failed.
//! Commands import this, never each other.

use std::path::Path;

use crate::error::{Error, Result, usage};
use crate::format::Format;
use crate::ops::check;
use crate::ops::hook::{self, Installed};
use crate::ops::host::{Effect, Report};
use crate::ops::remote::{self, Docker, Runner, Via};
use crate::policy::fleet::Host;
use crate::recipient::Recipient;
use crate::scratch::Medium;

use super::ui::{Table, plural};

/// Where `--allow-disk-temp` lets plaintext be put.
pub(crate) fn medium(allow_disk_temp: bool) -> Medium {
    if allow_disk_temp {
        Medium::RamOrDisk
    } else {
        Medium::Ram
    }
}

/// How to run nixos-anywhere (install) or nixos-rebuild (update --build-on local).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ViaArg {
    Nix,
    Docker,
}

/// Stands for the file holding the container's git configuration in `--dry-run`.
pub(crate) const GITCONFIG: &str = "$GITCONFIG";

/// What runs `program` for `via` (default: nix when `program` or nix is on PATH,
/// else docker). With docker, `gitconfig` makes the file the container reads as its
/// git configuration (called only then).
pub(crate) fn runner(
    via: Option<ViaArg>,
    program: &str,
    gitconfig: impl FnOnce() -> Result<std::path::PathBuf>,
) -> Result<Runner> {
    let via = match via {
        Some(ViaArg::Nix) => Via::Nix,
        Some(ViaArg::Docker) => Via::Docker,
        None => remote::default_via(program),
    };
    Ok(match via {
        Via::Nix => Runner::Nix,
        Via::Docker => Runner::Docker(Docker::detect(gitconfig()?)),
    })
}

/// The comment `--dry-run` prints for the container's git configuration.
pub(crate) fn gitconfig_comment(runner: &Runner) -> String {
    match runner {
        Runner::Docker(_) => format!(
            "# {GITCONFIG}: {}\n",
            remote::GITCONFIG
                .replace('\n', " ")
                .replace('\t', "")
                .trim()
        ),
        Runner::Nix => String::new(),
    }
}

/// The largest plaintext accepted.
pub(crate) const MAX_SECRET: usize = 64 << 20;

/// Refuses an `-o` path that exists and is not a regular file: the output would
/// replace a device, a FIFO or a symlink with a file and never reach what the user
/// meant, so nothing is written.
pub(crate) fn refuse_special_output(path: &Path) -> Result<()> {
    match crate::fsutil::special_output(path) {
        None => Ok(()),
        Some(what) => Err(usage(
            format!(
                "-o {}: is {what}; keys writes only to a new or regular file",
                path.display()
            ),
            "leave out -o (or give `-o -`) to write to stdout, or name a regular file",
        )),
    }
}

/// Secrets as a table under a header: name, format, status, readers.
pub(crate) fn secrets_table(secrets: &[&check::Secret], indent: &'static str) -> String {
    let mut table = Table::new(indent);
    table.header(["NAME", "FORMAT", "STATUS", "READERS"]);
    table.keep(0, NAME_WIDTH);
    table.cut_middle(0);
    for s in secrets {
        table.row([
            s.name.clone(),
            s.format.map_or("?", |f| f.name()).to_string(),
            s.status.name().to_string(),
            s.readers.join(", "),
        ]);
    }
    table.render()
}

/// A secret's name is cut (in its middle) only beyond this many columns.
pub(crate) const NAME_WIDTH: usize = 48;

/// How many secrets have each status. Shown in words (`25 ok, 2 drift`, or `none`);
/// as JSON, every status in the order of [`check::Status::ALL`] with its count.
pub(crate) struct Counts([usize; check::Status::ALL.len()]);

impl Counts {
    pub(crate) fn of(statuses: impl IntoIterator<Item = check::Status>) -> Counts {
        let mut counts = [0; check::Status::ALL.len()];
        for s in statuses {
            if let Some(i) = check::Status::ALL.iter().position(|x| *x == s) {
                counts[i] += 1;
            }
        }
        Counts(counts)
    }

    fn each(&self) -> impl Iterator<Item = (&'static str, usize)> {
        check::Status::ALL.iter().map(|s| s.name()).zip(self.0)
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<String> = self
            .each()
            .filter(|(_, n)| *n > 0)
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        if words.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&words.join(", "))
        }
    }
}

impl serde::Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (status, n) in self.each() {
            map.serialize_entry(status, &n)?;
        }
        map.end()
    }
}

/// Where a host is reached: `ADDR:PORT` (`[ADDR]:PORT` for IPv6), or `-` without an
/// address.
pub(crate) fn address(host: &Host) -> String {
    match &host.address {
        Some(a) if a.contains(':') => format!("[{a}]:{}", host.ssh_port),
        Some(a) => format!("{a}:{}", host.ssh_port),
        None => "-".into(),
    }
}

/// A host change's lines, then the new key's fingerprint and age key.
pub(crate) fn host_report(report: &Report) -> String {
    let mut s = String::new();
    for effect in &report.effects {
        let line = match effect {
            Effect::Created(p) => format!("created   {p}"),
            Effect::Updated(p) => format!("updated   {p}"),
            Effect::Removed(p) => format!("removed   {p}"),
            Effect::KeyStored {
                secret,
                path,
                recipients,
            } => format!(
                "key       private key stored as secret {secret} ({path}, for {recipients} admin recipient{})",
                plural(*recipients)
            ),
            Effect::KeyKept { secret } => {
                format!("kept      secret {secret} (pass --with-key to remove it)")
            }
            Effect::Unbound { secret, glob } => format!(
                "kept      secret {secret} (its rule {glob:?} no longer applies: `keys rm {secret}`, or add the host again)"
            ),
        };
        s.push_str(&line);
        s.push('\n');
    }
    if let Some(key) = &report.key {
        s.push_str(&key_lines(key));
    }
    s
}

fn key_lines(key: &Recipient) -> String {
    format!(
        "{:<9} {}\nage       {}\n",
        key.kind(),
        key.fingerprint(),
        key.to_x25519().unwrap_or_default()
    )
}

/// Installs the git hooks for the fleet at `root` and says what happened, one line
/// per hook.
pub(crate) fn install_hooks(root: &Path) -> Result<String> {
    let exe = std::env::current_exe().map_err(|e| Error::io("<current executable>", e))?;
    let lines: Vec<String> = hook::install(root, &exe)?
        .into_iter()
        .map(|done| match done {
            Installed::New(p) => format!("installed {}", p.display()),
            Installed::Already(p) => format!("already installed: {}", p.display()),
            Installed::Chained { hook, previous } => format!(
                "installed {} (the existing hook runs after it, as {})",
                hook.display(),
                previous.display()
            ),
            Installed::Lefthook { config } => format!(
                "added the keys-check command to {} (lefthook runs it; run `lefthook install` if its hooks are not installed)",
                config.display()
            ),
            Installed::Husky { hook, caller } => format!(
                "installed {}, called from husky's {}",
                hook.display(),
                caller.display()
            ),
        })
        .collect();
    Ok(lines.join("\n"))
}

/// How a remote program ended, for a message.
pub(crate) fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".into(),
    }
}

/// A host that answered with another key than the one its host file pins.
pub(crate) fn host_key_error(host: &Host, address: &str) -> Error {
    Error::Remote {
        message: format!(
            "{address}:{} does not present {}'s key {} (recipients/hosts/{}.yaml); nothing was sent",
            host.ssh_port,
            host.name,
            host.key.fingerprint(),
            host.name
        ),
        hint: format!(
            "if the host was reinstalled or its key rotated on purpose, record the new key with `keys host rotate {} --keyscan {address}:{}`",
            host.name, host.ssh_port
        ),
    }
}

/// Rewrites the exports a change made stale (`keys.nix`, `secrets.nix`, `.sops.yaml`,
/// each only if it exists), and says which.
pub(crate) fn refresh_exports(ctx: &super::Context) -> Result<()> {
    let rewritten = crate::ops::export::refresh(ctx.repo()?)?;
    if !rewritten.is_empty() {
        let files: Vec<&str> = rewritten.iter().map(|e| e.file()).collect();
        super::ui::note(&format!("updated {} to match", files.join(", ")));
    }
    Ok(())
}

/// Rename an admin or a host everywhere it is named, re-encrypting nothing.
///
/// Renames its file under recipients/, every place the policies name it (groups,
/// readers, key groups), and for a host its key secrets under secrets/hosts/NAME/
/// with their lines in keys.lock (a host whose file sets no flake_attr keeps the old
/// name as its flake attribute). Who reads what does not change: the policy is
/// checked to resolve every rule to the same recipients, or everything is put back.
#[derive(clap::Args)]
pub(crate) struct RenameArgs {
    /// The current name.
    #[arg(value_name = "OLD")]
    old: String,
    /// The new name.
    #[arg(value_name = "NEW")]
    new: String,
}

pub(crate) fn rename(
    ctx: &super::Context,
    kind: crate::ops::rename::Kind,
    args: RenameArgs,
) -> Result<()> {
    let done = crate::ops::rename::rename(ctx.repo()?, kind, &args.old, &args.new)?;
    let mut text = String::new();
    for (from, to) in &done.files {
        text.push_str(&format!("renamed   {from} -> {to}\n"));
    }
    for p in &done.policies {
        text.push_str(&format!("updated   {p}\n"));
    }
    for (from, to) in &done.secrets {
        text.push_str(&format!("moved     {from} -> {to}\n"));
    }
    super::ui::out(&text)?;
    refresh_exports(ctx)
}

/// A secret's name as the user gave it: a name, or its file's path under `secrets/`
/// (`secrets/bot/token.age` is `bot/token`). A name ending in a format's extension is
/// refused with the name meant: the format comes from the policy rule.
pub(crate) fn secret_name(arg: &str) -> Result<String> {
    let trimmed = arg.strip_prefix("./").unwrap_or(arg);
    let extension = |s: &str| {
        crate::format::Format::ALL.iter().find_map(|f| {
            s.strip_suffix(&format!(".{}", f.extension()))
                .map(str::to_string)
        })
    };
    if let Some(rest) = trimmed.strip_prefix(&format!("{}/", crate::layout::SECRETS)) {
        return Ok(extension(rest).unwrap_or_else(|| rest.to_string()));
    }
    if let Some(stem) = extension(trimmed)
        && !stem.is_empty()
    {
        return Err(crate::error::usage(
            format!("{arg}: a secret's name has no extension (its policy rule gives the format)"),
            format!("use `{stem}`"),
        ));
    }
    Ok(arg.to_string())
}

/// A secret, or an age or sops file given by path, decrypted: the plaintext, the
/// format it was read as with its layout, and where it is.
pub(crate) struct Target {
    pub(crate) opened: crate::ops::secret::Opened,
    pub(crate) layout: (crate::format::Format, Option<u8>),
    pub(crate) at: crate::error::Location,
}

/// Opens `target` as `keys decrypt` does: the file at that path when there is one
/// (its format from its name and content, as sops and age decide), else the secret
/// of that name (its format from its file, laid out by its rule's `indent`).
/// `accept` sees the format before anything is decrypted, and may refuse it.
pub(crate) fn open_target(
    ctx: &super::Context,
    target: &str,
    mac: crate::crypto::sops::Mac,
    accept: &dyn Fn(crate::format::Format) -> Result<()>,
) -> Result<Target> {
    use crate::ops::secret;
    let as_path = Path::new(target);
    if std::fs::metadata(as_path).is_ok_and(|m| m.is_file()) {
        accept(secret::format_of_file(as_path)?)?;
        let mut ids = ctx.identities()?;
        let (opened, layout) = secret::open_path(as_path, &mut ids, ctx.prompt(), mac)?;
        return Ok(Target {
            opened,
            layout,
            at: crate::error::Location::file(as_path),
        });
    }
    let ws = ctx.workspace(crate::ops::workspace::Hosts::AsNeeded)?;
    let (path, format) = ws.locate(target)?;
    accept(format)?;
    let rule = ws.rule(target).ok().filter(|r| r.format == format);
    let indent = rule.and_then(|r| r.sops.indent);
    let mut ids = ctx.identities()?;
    let opened = secret::open_indented(&path, (format, indent), &mut ids, ctx.prompt(), mac)?;
    Ok(Target {
        opened,
        layout: (format, indent),
        at: crate::error::Location::file(&path),
    })
}

/// How `edit` treats a missing secret, where its plaintext may go, and whether an
/// empty result is kept.
pub(crate) struct EditOptions {
    pub(crate) new: bool,
    pub(crate) allow_disk_temp: bool,
    pub(crate) allow_empty: bool,
}

/// Decrypts secret `name` into a private scratch file, runs the editor on it, and
/// re-encrypts it for its policy's readers if the content changed (`keys edit`, and
/// `keys rotate` of a secret whose rule has no generator).
pub(crate) fn edit(ctx: &super::Context, name: &str, opts: EditOptions) -> Result<()> {
    use zeroize::Zeroizing;

    use crate::crypto::sops::Mac;
    use crate::ops::secret::{self, EncryptOptions};
    use crate::ops::workspace::Hosts;
    use crate::scratch::Scratch;
    use crate::signal::SignalGuard;

    use super::{editor, prompt, ui};

    let mut ws = ctx.writable_workspace(Hosts::AsNeeded)?;
    let rule = ws.rule(name)?;
    let (format, indent) = (rule.format, rule.sops.indent);
    let guard = SignalGuard::new()?;
    let scratch = Scratch::create(medium(opts.allow_disk_temp))?;
    ui::note_scratch(&scratch);
    let found = ws.locate(name).ok();
    let exists = found.is_some();
    if !exists && !opts.new {
        let question = format!("There is no secret {name}. Create it?");
        if !(prompt::has_tty() && prompt::confirm(&question) == Some(true)) {
            return Err(Error::NoSecret {
                name: name.to_string(),
                near: ws.near_names(name),
            });
        }
    }
    let found_format = found.as_ref().map(|(_, format)| *format);
    let opened = match found {
        Some((path, found)) => {
            let mut ids = ctx.identities()?;
            let indent = indent.filter(|_| found == format);
            secret::open_indented(&path, (found, indent), &mut ids, ctx.prompt(), Mac::Check)?
        }
        None => secret::Opened {
            plain: Zeroizing::new(Vec::new()),
            sops: None,
        },
    };
    let original = &opened.plain;
    guard.check()?;
    let format = found_format.unwrap_or(format);
    let file = scratch.create_file(&file_name(name, format), original, 0o600)?;
    editor::edit(&file, &guard)?;
    let edited = scratch.read_file(&file, MAX_SECRET as u64)?;
    guard.check()?;
    if *edited == **original {
        ui::note(&format!(
            "no changes; {} left as it was",
            if exists { name } else { "nothing" }
        ));
        return Ok(());
    }
    let encrypt = EncryptOptions {
        force: true,
        allow_empty: opts.allow_empty,
    };
    let done = secret::encrypt(&mut ws, name, &edited, &encrypt, opened.sops.as_ref())?;
    ui::note(&format!(
        "{} {} for {} recipients",
        if exists { "re-encrypted" } else { "wrote" },
        ws.repo.rel(&done.path),
        done.recipients
    ));
    drop(ws);
    refresh_exports(ctx)
}

/// The plaintext's file name: the secret's last name segment, with the extension of
/// its format for sops files (`config.yaml`, `app.env`), so that the editor picks the
/// right syntax, as `sops edit` does; an `.age` or sops-binary secret keeps its bare
/// name (`telegram-token`).
pub(crate) fn file_name(name: &str, format: Format) -> String {
    let base = name.rsplit('/').next().unwrap_or("secret");
    match format {
        Format::Age | Format::SopsBinary => base.to_string(),
        sops => format!("{base}.{}", sops.extension()),
    }
}
