//! `keys edit NAME`: decrypt into RAM, run the editor, re-encrypt if it changed.

use zeroize::Zeroizing;

use crate::crypto::sops::Mac;
use crate::error::Result;
use crate::format::Format;
use crate::ops::secret::{self, EncryptOptions};
use crate::ops::workspace::Hosts;
use crate::scratch::Scratch;
use crate::signal::SignalGuard;

use super::{editor, prompt, shared, ui};

/// Edit a secret in $VISUAL or $EDITOR, or create it.
///
/// The plaintext goes to a new 0600 file, named like the secret with its format's
/// extension (config.yaml), in a 0700 directory on tmpfs ($XDG_RUNTIME_DIR when it
/// is yours alone, else /dev/shm); a disk-backed directory is refused unless
/// --allow-disk-temp. Vim, Neovim, Emacs and nano, recognised by the program the
/// editor resolves to (through symlinks such as /etc/alternatives/editor), are
/// started with their swap, backup, undo, auto-save and history files off; any other
/// editor is named in a warning. The secret is re-encrypted for its policy's readers
/// only if the content changed, and the plaintext is removed on every exit path,
/// including Ctrl-C (which reaches the editor, not keys); what a killed run left is
/// wiped by the next one.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The secret's name, e.g. bot/telegram-token (or its file, secrets/….age).
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    name: String,

    /// Create the secret if it does not exist (it starts empty). Without it, a name
    /// that names no secret is an error suggesting the nearest names, unless a yes
    /// on the terminal confirms the new secret.
    #[arg(long)]
    new: bool,

    /// Allow the plaintext on a disk-backed temporary directory when no tmpfs is found.
    #[arg(long)]
    allow_disk_temp: bool,

    /// Accept an empty result.
    #[arg(long)]
    allow_empty: bool,
}

pub(crate) fn run(ctx: &super::Context, mut args: Args) -> Result<()> {
    args.name = super::shared::secret_name(&args.name)?;
    let mut ws = ctx.writable_workspace(Hosts::AsNeeded)?;
    let rule = ws.rule(&args.name)?;
    let (format, indent) = (rule.format, rule.sops.indent);
    let guard = SignalGuard::new()?;
    let scratch = Scratch::create(shared::medium(args.allow_disk_temp))?;
    ui::note_scratch(&scratch);
    let found = ws.locate(&args.name).ok();
    let exists = found.is_some();
    if !exists && !args.new {
        let question = format!("There is no secret {}. Create it?", args.name);
        if !(prompt::has_tty() && prompt::confirm(&question) == Some(true)) {
            return Err(crate::error::Error::NoSecret {
                name: args.name.clone(),
                near: ws.near_names(&args.name),
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
    let file = scratch.create_file(&file_name(&args.name, format), original, 0o600)?;
    editor::edit(&file, &guard)?;
    let edited = scratch.read_file(&file, shared::MAX_SECRET as u64)?;
    guard.check()?;
    if *edited == **original {
        ui::note(&format!(
            "no changes; {} left as it was",
            if exists {
                args.name.as_str()
            } else {
                "nothing"
            }
        ));
        return Ok(());
    }
    let opts = EncryptOptions {
        force: true,
        allow_empty: args.allow_empty,
    };
    let done = secret::encrypt(&mut ws, &args.name, &edited, &opts, opened.sops.as_ref())?;
    ui::note(&format!(
        "{} {} for {} recipients",
        if exists { "re-encrypted" } else { "wrote" },
        ws.repo.rel(&done.path),
        done.recipients
    ));
    drop(ws);
    shared::refresh_exports(ctx)
}

/// The plaintext's file name: the secret's last name segment, with the extension of
/// its format for sops files (`config.yaml`, `app.env`), so that the editor picks the
/// right syntax, as `sops edit` does; an `.age` or sops-binary secret keeps its bare
/// name (`telegram-token`).
fn file_name(name: &str, format: Format) -> String {
    let base = name.rsplit('/').next().unwrap_or("secret");
    match format {
        Format::Age | Format::SopsBinary => base.to_string(),
        sops => format!("{base}.{}", sops.extension()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plaintext_is_named_for_its_format() {
        for (name, format, want) in [
            ("bot/telegram-token", Format::Age, "telegram-token"),
            ("nannuo-bot/config", Format::SopsYaml, "config.yaml"),
            ("app/settings", Format::SopsJson, "settings.json"),
            ("app/env", Format::SopsDotenv, "env.env"),
            ("app/db", Format::SopsIni, "db.ini"),
            ("app/blob", Format::SopsBinary, "blob"),
            ("top", Format::SopsYaml, "top.yaml"),
        ] {
            assert_eq!(file_name(name, format), want, "{name} {format:?}");
        }
    }
}
