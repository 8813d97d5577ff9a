//! `keys exec NAME -- CMD…`: a command run with a secret's top-level values in its
//! environment, as `sops exec-env` runs one, without a file or a command line ever
//! holding them.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::crypto::sops::Mac;
use crate::error::{Error, Result, usage};
use crate::format::Format;
use crate::ops::secret;

use super::shared;

/// Run a command with a secret's top-level values in its environment, like `sops exec-env`.
///
/// NAME is a secret of a sops dotenv, YAML or JSON format (or the path of such a
/// file). Each top-level key becomes an environment variable holding its value, as
/// sops exec-env sets it: strings as they are, numbers, booleans and timestamps as
/// sops renders them; a map, a list, a null and a key holding `=` are refused,
/// naming the key. keys then becomes CMD (looked up on PATH, no shell): CMD's exit
/// status is keys's exit status and signals reach it directly, and core dumps stay
/// off. The values are never written to a file or put on a command line.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The secret's name (e.g. nannuo-bot/config), or the path of a sops file.
    #[arg(value_name = "NAME", add = super::complete::secret_names())]
    name: String,

    /// Give CMD only the secret's values, none of keys's own environment (PATH
    /// included; CMD itself is still found on keys's PATH).
    #[arg(long)]
    pristine: bool,

    /// The command and its arguments; write `--` before it when it starts with `-`.
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<OsString>,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let (program, rest) = args.command.split_first().ok_or_else(|| {
        usage(
            "no command to run",
            "give it after the secret: keys exec NAME -- CMD [ARG…]",
        )
    })?;
    // Before anything is decrypted, so that a typo costs no passphrase.
    let resolved = find_program(program)?;
    let accept = |format: Format| match format {
        Format::SopsYaml | Format::SopsJson | Format::SopsDotenv => Ok(()),
        other => Err(usage(
            format!(
                "keys exec: {} is {}, not a dotenv, YAML or JSON document",
                args.name,
                match other {
                    Format::Age => "an age file",
                    Format::SopsIni => "a sops INI file (its values are in sections)",
                    _ => "a sops binary file",
                }
            ),
            "keys exec reads a sops-dotenv, sops-yaml or sops-json secret; `keys decrypt NAME` prints this one",
        )),
    };
    let target = shared::open_target(ctx, &args.name, Mac::Check, &accept)?;
    let env = secret::environment(&target.opened, &target.at)?;
    drop(target);
    let mut cmd = std::process::Command::new(&resolved);
    cmd.arg0(program).args(rest);
    if args.pristine {
        cmd.env_clear();
    }
    for (key, value) in &env {
        cmd.env(key, OsStr::from_bytes(value));
    }
    // Only returns when the command could not be started.
    let e = cmd.exec();
    Err(Error::External {
        program: program.to_string_lossy().into_owned(),
        reason: format!("cannot run {}: {e}", resolved.display()),
    })
}

/// Where the command is: as given when it names a path, else the first executable
/// file of that name on keys's PATH, as a shell would find it.
fn find_program(program: &OsStr) -> Result<PathBuf> {
    let not_found = |why: &str| Error::External {
        program: program.to_string_lossy().into_owned(),
        reason: why.to_string(),
    };
    if program.is_empty() {
        return Err(usage(
            "keys exec: the command is empty",
            "give it after the secret: keys exec NAME -- CMD [ARG…]",
        ));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(|| not_found("not found on PATH"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
