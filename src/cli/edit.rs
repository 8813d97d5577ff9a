//! `keys edit NAME`: decrypt into RAM, run the editor, re-encrypt if it changed.

use crate::error::Result;

use super::shared;

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
    shared::edit(
        ctx,
        &args.name,
        shared::EditOptions {
            new: args.new,
            allow_disk_temp: args.allow_disk_temp,
            allow_empty: args.allow_empty,
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::format::Format;

    use super::shared::file_name;

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
