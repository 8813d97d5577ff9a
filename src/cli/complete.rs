//! Shell completion as the user types: the scripts `keys completions SHELL` prints ask
//! `keys` itself for candidates (clap_complete's dynamic engine), and the completers
//! here offer the repository's secret, host, container and admin names. A completer
//! only lists names: it never decrypts, prompts, touches the keyring or writes, and
//! offers nothing, silently, when there is no repository to read.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Arg;
use clap_complete::engine::{
    ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};
use clap_complete::env::{CompleteEnv, EnvCompleter, Shells};

use crate::layout::Repo;
use crate::ops::workspace;
use crate::policy::fleet;

/// The variable a completion script sets (to its shell's name) when it runs `keys` for
/// candidates.
const VAR: &str = "KEYS_COMPLETE";

/// `--repo DIR` as given on the command line being completed.
static REPO_FLAG: OnceLock<Option<PathBuf>> = OnceLock::new();

/// When this run is a completion script asking for candidates (`$KEYS_COMPLETE` set),
/// prints them and exits; otherwise returns at once.
pub(crate) fn answer_if_asked() {
    if std::env::var_os(VAR).is_none() {
        return;
    }
    let words: Vec<OsString> = std::env::args_os().skip_while(|a| a != "--").collect();
    let _ = REPO_FLAG.set(repo_flag(&words));
    CompleteEnv::with_factory(super::command)
        .var(VAR)
        .complete();
}

/// The script that registers completion for `keys` in `shell` (bash, zsh, fish,
/// elvish or powershell), calling this program by the name it was run as.
pub(crate) fn registration(shell: &str) -> std::io::Result<Vec<u8>> {
    let shells = Shells::builtins();
    let completer: &dyn EnvCompleter = shells
        .completer(shell)
        .ok_or_else(|| std::io::Error::other(format!("no completion for {shell}")))?;
    let mut buf = Vec::new();
    completer.write_registration(VAR, "keys", "keys", &program(), &mut buf)?;
    Ok(buf)
}

/// How the script calls `keys`: by its bare name when it was found on PATH, so the
/// script keeps working when keys is upgraded; else by its absolute path.
fn program() -> String {
    let arg0 = PathBuf::from(std::env::args_os().next().unwrap_or_else(|| "keys".into()));
    let path = if arg0.components().count() > 1 {
        let cwd = std::env::current_dir().unwrap_or_default();
        cwd.join(&arg0).components().collect()
    } else {
        arg0
    };
    path.to_string_lossy().into_owned()
}

/// The value of the last `--repo DIR` or `--repo=DIR` among the words, `~/` read as
/// $HOME.
fn repo_flag(words: &[OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let value = if word == "--repo" {
            // bash splits `--repo=DIR` into three words.
            match words.next() {
                Some(eq) if eq == "=" => words.next(),
                next => next,
            }
            .map(OsString::as_os_str)
        } else {
            word.to_str()
                .and_then(|w| w.strip_prefix("--repo="))
                .map(OsStr::new)
        };
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            found = Some(expand_home(Path::new(value)));
        }
    }
    found
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// The repository the completed command would work in: --repo on its line, else
/// $KEYS_REPO, else the one around the working directory.
fn repo() -> Option<Repo> {
    let cwd = std::env::current_dir().ok()?;
    let env = std::env::var_os("KEYS_REPO")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let flag = REPO_FLAG.get().and_then(Option::as_deref);
    Repo::discover(flag, env.as_deref(), &cwd).ok()
}

/// A name to offer, and what to show beside it.
type Name = (String, Option<String>);

/// The candidates among `names` that start with what has been typed.
fn offer(current: &OsStr, names: impl IntoIterator<Item = Name>) -> Vec<CompletionCandidate> {
    let Some(typed) = current.to_str() else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter(|(name, _)| name.starts_with(typed))
        .map(|(name, help)| CompletionCandidate::new(name).help(help.map(Into::into)))
        .collect()
}

/// A completer offering the names `names` lists in the repository, or none when
/// there is no repository.
fn names_in_repo(names: fn(&Repo) -> Vec<Name>) -> ArgValueCompleter {
    ArgValueCompleter::new(move |current: &OsStr| match repo() {
        Some(repo) => offer(current, names(&repo)),
        None => Vec::new(),
    })
}

fn plain(names: Vec<String>) -> Vec<Name> {
    names.into_iter().map(|n| (n, None)).collect()
}

/// Adds `completer` to the argument `id` of a command whose arguments another type
/// defines (`#[command(mut_args(on("old", host_names())))]`), keeping their order.
pub(crate) fn on(id: &'static str, completer: ArgValueCompleter) -> impl FnMut(Arg) -> Arg {
    move |arg| {
        if arg.get_id() == id {
            arg.add(completer.clone())
        } else {
            arg
        }
    }
}

/// Secret names (`bot/telegram-token`) from the files under secrets/. A value typed
/// as a path (starting with `/`, `.` or `secrets/`, which no name does) completes as
/// a path instead.
pub(crate) fn secret_names() -> ArgValueCompleter {
    let names = names_in_repo(secrets);
    ArgValueCompleter::new(move |current: &OsStr| {
        let typed = current.to_string_lossy();
        if typed.starts_with(['/', '.']) || typed.starts_with("secrets/") {
            PathCompleter::any().complete(current)
        } else {
            names.complete(current)
        }
    })
}

/// Host names, from recipients/hosts/NAME.yaml.
pub(crate) fn host_names() -> ArgValueCompleter {
    names_in_repo(|repo| plain(fleet::host_names(repo)))
}

/// Container names, from the host files, each shown with its host.
#[allow(dead_code, reason = "for an option that names an existing container")]
pub(crate) fn container_names() -> ArgValueCompleter {
    names_in_repo(containers)
}

/// Admin names, from recipients/admins/NAME.pub.
pub(crate) fn admin_names() -> ArgValueCompleter {
    names_in_repo(|repo| plain(fleet::admin_names(repo)))
}

/// Readers as a policy names them: admins by name, `host:NAME` and
/// `container:NAME`.
pub(crate) fn reader_names() -> ArgValueCompleter {
    names_in_repo(readers)
}

fn secrets(repo: &Repo) -> Vec<Name> {
    let mut names: Vec<String> = workspace::secret_files(repo)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    // A name stored in two formats is offered once.
    names.dedup();
    plain(names)
}

fn containers(repo: &Repo) -> Vec<Name> {
    fleet::container_names(repo)
        .into_iter()
        .map(|(c, host)| (c, Some(format!("on {host}"))))
        .collect()
}

fn readers(repo: &Repo) -> Vec<Name> {
    let admins = fleet::admin_names(repo).into_iter();
    let admins = admins.map(|a| (a, Some("admin".to_string())));
    let hosts = fleet::host_names(repo).into_iter();
    let hosts = hosts.map(|h| (format!("host:{h}"), None));
    let containers = containers(repo).into_iter();
    let containers = containers.map(|(c, on)| (format!("container:{c}"), on));
    admins.chain(hosts).chain(containers).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_is_the_last_repo_option_on_the_line() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["keys", "decrypt", "b"], None),
            (
                &["keys", "--repo", "../fleet", "decrypt", "b"],
                Some("../fleet"),
            ),
            (&["keys", "decrypt", "--repo=/srv/f", "b"], Some("/srv/f")),
            (&["keys", "--repo", "a", "ls", "--repo", "b", ""], Some("b")),
            (&["keys", "--repo=", "ls"], None),
            (&["keys", "ls", "--repo"], None),
            (&["keys", "--repo", "=", "../f", "ls"], Some("../f")),
        ];
        for (line, want) in cases {
            assert_eq!(repo_flag(&words(line)), want.map(PathBuf::from), "{line:?}");
        }
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        assert_eq!(
            repo_flag(&words(&["keys", "--repo", "~/fleet", "ls"])),
            Some(home.join("fleet"))
        );
    }

    #[test]
    fn the_names_of_each_kind_are_those_the_repository_gives() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path().to_path_buf());
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";
        write("recipients/admins/alice.pub", "not read");
        write(
            "recipients/hosts/web.yaml",
            &format!("ssh_key: {key}\ncontainers:\n  bot: {{}}\n"),
        );
        write("secrets/app/token.age", "not read");
        write("secrets/app/token.yaml", "not read");
        write("secrets/app/notes.txt", "not a secret");
        let shown = |names: Vec<Name>| -> Vec<String> {
            names
                .into_iter()
                .map(|(n, help)| help.map_or(n.clone(), |h| format!("{n} ({h})")))
                .collect()
        };
        assert_eq!(shown(secrets(&repo)), ["app/token"]);
        assert_eq!(shown(containers(&repo)), ["bot (on web)"]);
        assert_eq!(
            shown(readers(&repo)),
            ["alice (admin)", "host:web", "container:bot (on web)"]
        );
    }

    #[test]
    fn only_the_names_that_start_with_what_was_typed_are_offered() {
        let names = ["bot/a", "bot/b", "vps/c"].map(|n| (n.to_string(), None));
        let got: Vec<String> = offer(OsStr::new("bot/"), names)
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["bot/a", "bot/b"]);
    }
}
