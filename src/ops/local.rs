//! `keys remote set|ls|rm`: secrets that live only on a host, as root-only files (0600
//! in 0700 directories owned by the ssh user, root on a real host), written over ssh
//! with the host's key pinned and the value on ssh's standard input. The repository
//! keeps only the fact (`recipients/local/HOST.yaml`): name, path, when, by whom, and
//! a digest the host computes with a key only it holds.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::layout::Repo;
use crate::ops::workspace::WriterLock;
use crate::policy::fleet::{Fleet, Host};
use crate::policy::local::{self, Entry, Record};
use crate::scratch::Scratch;
use crate::signal::SignalGuard;

use super::remote::{self, Failure};

/// How long one remote step may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Writes standard input to `$2` (a file under the root `$1`) through a temp file
/// beside it and a rename, every directory from the root down 0700 and the ssh
/// user's, and prints `keys: set DIGEST` (SHA-256 of the root's digest key, made at
/// the first set, followed by the value). `$3` is `new` when no file may be there yet.
const SET: &str = r#"set -u
trap '' PIPE
umask 077
root=$1 path=$2 expect=$3
say() { printf 'keys: %s\n' "$1"; }
fail() { say "error $1"; exit 1; }
tmp=
trap 'if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi' EXIT
trap 'exit 1' HUP INT TERM
for tool in id stat mkdir mktemp cat head ln sha256sum chmod mv sync; do
  command -v "$tool" >/dev/null 2>&1 || fail "missing $tool"
done
me=$(id -u)
private() {
  if [ ! -e "$1" ] && [ ! -L "$1" ]; then mkdir -m 700 -- "$1" || return 1; fi
  if [ -L "$1" ] || [ ! -d "$1" ]; then return 1; fi
  [ "$(stat -c '%u %a' -- "$1")" = "$me 700" ]
}
parent=${root%/*}
if [ -n "$parent" ] && [ ! -d "$parent" ]; then mkdir -p -- "$parent" || fail root; fi
private "$root" || fail "root $(stat -c '%u %a' -- "$root" 2>/dev/null)"
rest=${path#"$root"/}
dir=$root
while :; do
  case $rest in */*) ;; *) break ;; esac
  dir=$dir/${rest%%/*}
  rest=${rest#*/}
  private "$dir" || fail "dir $dir"
done
if [ -L "$path" ] || { [ -e "$path" ] && [ ! -f "$path" ]; }; then fail not-file; fi
if [ "$expect" = new ] && [ -e "$path" ]; then fail exists; fi
key=$root/.keys-digest-key
if [ -L "$key" ] || { [ -e "$key" ] && [ ! -f "$key" ]; }; then fail digest-key; fi
if [ ! -e "$key" ]; then
  tmp=$(mktemp "$root/.keys-digest-key.XXXXXX") || fail write
  head -c 32 /dev/urandom >"$tmp" || fail write
  ln -- "$tmp" "$key" 2>/dev/null || [ -f "$key" ] || fail write
  rm -f -- "$tmp"
  tmp=
fi
[ "$(stat -c '%s %u %a' -- "$key")" = "32 $me 600" ] || fail digest-key
tmp=$(mktemp "$dir/.keys-set.XXXXXX") || fail write
cat >"$tmp" || fail write
chmod 600 "$tmp" || fail write
digest=$(cat -- "$key" "$tmp" | sha256sum) || fail write
digest=${digest%% *}
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$path" || fail write
tmp=
sync -- "$dir" 2>/dev/null || sync
say "set $digest"
"#;

/// Lists everything under the root `$1`: `keys: root UID MODE ME`, then one
/// `keys: entry KIND UID MODE DIGEST HEXPATH` per entry (the path hex-encoded, so any
/// name reads back), `keys: end`; `keys: none` when there is no root.
const LIST: &str = r#"set -u
trap '' PIPE
root=$1
say() { printf 'keys: %s\n' "$1"; }
for tool in id stat find od tr cat sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { say "error missing $tool"; exit 1; }
done
if [ ! -e "$root" ] && [ ! -L "$root" ]; then say none; exit 0; fi
if [ -L "$root" ] || [ ! -d "$root" ]; then say "error not-dir"; exit 1; fi
say "root $(stat -c '%u %a' -- "$root") $(id -u)"
key=$root/.keys-digest-key
if [ ! -f "$key" ] || [ -L "$key" ]; then key=; say no-digest-key; fi
find "$root" -mindepth 1 ! -path "$root/.keys-digest-key" -exec sh -c '
key=$1
shift
for f in "$@"; do
  hex=$(printf %s "$f" | od -An -v -tx1 | tr -d " \n")
  if [ -L "$f" ]; then printf "keys: entry link - - - %s\n" "$hex"
  elif [ -d "$f" ]; then printf "keys: entry dir %s - %s\n" "$(stat -c "%u %a" -- "$f")" "$hex"
  elif [ -f "$f" ]; then
    d=-
    if [ -n "$key" ]; then d=$(cat -- "$key" "$f" | sha256sum); d=${d%% *}; fi
    printf "keys: entry file %s %s %s\n" "$(stat -c "%u %a" -- "$f")" "$d" "$hex"
  else printf "keys: entry other - - - %s\n" "$hex"; fi
done' keys-ls "$key" {} + || { say "error find"; exit 1; }
say end
"#;

/// Removes the file `$2` under the root `$1`: `keys: removed`, or `keys: absent`.
const REMOVE: &str = r#"set -u
trap '' PIPE
root=$1 path=$2
say() { printf 'keys: %s\n' "$1"; }
fail() { say "error $1"; exit 1; }
if [ ! -e "$root" ] && [ ! -L "$root" ]; then say absent; exit 0; fi
if [ -L "$root" ] || [ ! -d "$root" ] || [ "$(stat -c '%u %a' -- "$root")" != "$(id -u) 700" ]; then
  fail "root $(stat -c '%u %a' -- "$root" 2>/dev/null)"
fi
if [ ! -e "$path" ] && [ ! -L "$path" ]; then say absent; exit 0; fi
if [ -L "$path" ] || [ ! -f "$path" ]; then fail not-file; fi
rm -f -- "$path" || fail write
sync -- "${path%/*}" 2>/dev/null || sync
say removed
"#;

/// The record of `host`, or an empty one when it has none.
pub fn load_record(repo: &Repo, host: &str) -> Result<Record> {
    let rel = local::rel(host);
    fsutil::refuse_links(repo.root(), Path::new(local::DIR))?;
    match fsutil::read_optional(&repo.root().join(&rel))? {
        Some(data) => Record::parse(host, crate::policy::text_of(&rel, &data)?, &rel),
        None => Ok(Record::new(host)),
    }
}

/// Every record in the work tree, with the file each came from.
pub fn records(repo: &Repo) -> Result<Vec<Record>> {
    let dir = repo.root().join(local::DIR);
    fsutil::refuse_links(repo.root(), Path::new(local::DIR))?;
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut hosts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(host) = file.strip_suffix(".yaml").filter(|h| !h.is_empty()) {
            hosts.push(host.to_string());
        }
    }
    hosts.sort();
    for host in hosts {
        out.push(load_record(repo, &host)?);
    }
    Ok(out)
}

/// Writes the record, or removes its file when it records nothing.
fn save(repo: &Repo, record: &Record) -> Result<()> {
    let path = repo.root().join(local::rel(&record.host));
    if record.secrets.is_empty() && record.root.is_none() {
        if std::fs::symlink_metadata(&path).is_ok() {
            fsutil::remove(&path)?;
        }
        return Ok(());
    }
    let text = record.render()?;
    fsutil::create_dirs_within(repo.root(), Path::new(local::DIR), 0o755)?;
    fsutil::write_atomic(&path, text.as_bytes(), fsutil::PUBLIC)
}

/// A change to a host's local secrets, checked before any input is read: the
/// repository's writer lock is held until it is applied or dropped.
pub struct Plan {
    _lock: WriterLock,
    repo: Repo,
    fleet: Fleet,
    record: Record,
    name: String,
    path: String,
    /// Whether the record names it already.
    recorded: bool,
}

impl Plan {
    /// Its file on the host.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The record file, relative to the root.
    pub fn record_file(&self) -> String {
        local::rel(&self.record.host)
    }

    fn host(&self) -> Result<&Host> {
        self.fleet.require_host(&self.record.host)
    }
}

/// Loads what every change needs: the lock, the host (with an address) and its record.
fn open(repo: &Repo, host: &str) -> Result<(WriterLock, Fleet, Record)> {
    let lock = WriterLock::acquire(repo)?;
    let fleet = Fleet::load(repo)?;
    let h = fleet.require_host(host)?;
    remote::address(h)?;
    let record = load_record(repo, host)?;
    Ok((lock, fleet, record))
}

fn check_name(name: &str) -> Result<()> {
    local::check_name(name).map_err(|reason| Error::InvalidName {
        at: Location::named("local secret name"),
        name: name.to_string(),
        reason,
    })
}

/// Checks `keys remote set --host HOST NAME [--path PATH]` before the value is read:
/// the name, and the path (default ROOT/NAME) under the host's local root, the same
/// as before for a recorded secret and no other secret's.
pub fn plan_set(repo: &Repo, host: &str, name: &str, path: Option<&str>) -> Result<Plan> {
    check_name(name)?;
    let (lock, fleet, record) = open(repo, host)?;
    let root = record.root().to_string();
    let file = local::rel(host);
    let bad_path = |path: &str, reason: String| Error::LocalPath {
        host: host.to_string(),
        path: path.to_string(),
        root: root.clone(),
        file: file.clone(),
        reason,
    };
    let recorded = record.secrets.get(name);
    let path = match (path, recorded) {
        (Some(p), Some(e)) if p != e.path => {
            return Err(bad_path(
                p,
                format!(
                    "differs from where {name} is ({}); remove it first with `keys remote rm --host {host} {name}`",
                    e.path
                ),
            ));
        }
        (Some(p), _) => {
            local::check_path(&root, p).map_err(|why| bad_path(p, why.to_string()))?;
            p.to_string()
        }
        (None, Some(e)) => e.path.clone(),
        (None, None) => format!("{root}/{name}"),
    };
    if let Some((other, _)) = record
        .secrets
        .iter()
        .find(|(n, e)| *n != name && e.path == path)
    {
        return Err(bad_path(&path, format!("is already {other}'s")));
    }
    Ok(Plan {
        _lock: lock,
        repo: repo.clone(),
        recorded: recorded.is_some(),
        fleet,
        record,
        name: name.to_string(),
        path,
    })
}

/// Checks `keys remote rm --host HOST NAME`: the record must name it.
pub fn plan_remove(repo: &Repo, host: &str, name: &str) -> Result<Plan> {
    check_name(name)?;
    let (lock, fleet, record) = open(repo, host)?;
    let Some(entry) = record.secrets.get(name) else {
        return Err(Error::NoLocalSecret {
            host: host.to_string(),
            name: name.to_string(),
            file: local::rel(host),
        });
    };
    Ok(Plan {
        _lock: lock,
        repo: repo.clone(),
        path: entry.path.clone(),
        recorded: true,
        fleet,
        record,
        name: name.to_string(),
    })
}

/// How to reach the host.
pub struct Reach<'a> {
    pub ssh_key: Option<&'a Path>,
    pub scratch: &'a Scratch,
    pub guard: &'a SignalGuard,
}

/// Runs `script` on the host with `args`, `input` on its standard input, and
/// returns the `keys: …` words it printed; an ssh failure or a refused host key is
/// the error, with `unchanged` saying what that means for the host.
fn call(
    host: &Host,
    reach: &Reach<'_>,
    script: &str,
    args: &[&str],
    input: &[u8],
    unchanged: &str,
) -> Result<Vec<String>> {
    let address = remote::address(host)?;
    let known_hosts = reach.scratch.create_file(
        "known_hosts",
        remote::known_hosts(host, address, host.ssh_port).as_bytes(),
        0o644,
    )?;
    let command = remote::ssh_command(
        host,
        &known_hosts,
        reach.ssh_key,
        remote::remote_script(host, "keys-local", script, args),
    )?;
    let shown = format!("{address}:{}", host.ssh_port);
    let (lines, ended) = remote::run_with_input(&command, input, TIMEOUT, reach.guard)?;
    let _ = std::fs::remove_file(&known_hosts);
    // The script's own error comes on stdout, as a word; ssh's on stderr.
    let said_error = lines.iter().any(|l| l.starts_with("keys: error "));
    match ended {
        Ok(()) => {}
        Err(_) if said_error => {}
        Err(Failure::Exit { stderr, .. }) if remote::host_key_refused(&stderr) => {
            return Err(Error::Remote {
                message: format!(
                    "{shown} does not present {}'s key {} (recipients/hosts/{}.yaml); {unchanged}",
                    host.name,
                    host.key.fingerprint(),
                    host.name
                ),
                hint: format!(
                    "if the host was reinstalled or its key rotated on purpose, record the new key with `keys host rotate {} --keyscan {shown}`",
                    host.name
                ),
            });
        }
        Err(Failure::Exit { stderr, code }) => {
            let detail = remote::last_line(&stderr);
            let how = match (detail.is_empty(), code) {
                (false, _) => detail.to_string(),
                (true, Some(c)) => format!("exit {c}"),
                (true, None) => "killed by a signal".to_string(),
            };
            return Err(Error::Remote {
                message: format!("ssh to {} ({shown}) failed: {how}; {unchanged}", host.name),
                hint: format!(
                    "check that {shown} accepts ssh as {} (--ssh-key FILE)",
                    host.ssh_user
                ),
            });
        }
        Err(Failure::Missing(e)) => {
            return Err(Error::External {
                program: "ssh".into(),
                reason: format!("cannot run it ({e})"),
            });
        }
    }
    Ok(lines
        .iter()
        .filter_map(|l| l.strip_prefix("keys: ").map(str::to_string))
        .collect())
}

/// The error for what a script refused.
fn refused(host: &Host, root: &str, what: &str, word: &str, record: &str) -> Error {
    let why = word.strip_prefix("error ").unwrap_or(word);
    let user = &host.ssh_user;
    let (message, hint) = if let Some(tool) = why.strip_prefix("missing ") {
        (
            format!("{} has no `{tool}` on its PATH", host.name),
            format!("install {tool} on {}", host.name),
        )
    } else if let Some(rest) = why.strip_prefix("root") {
        let found = match rest.trim() {
            "" => String::new(),
            r => format!(" (owner uid and mode: {r})"),
        };
        (
            format!(
                "{root} on {} is not a 0700 directory of {user}{found}",
                host.name
            ),
            format!(
                "local secrets go only where no one else can read them: fix its owner and mode on {}, or set `root:` in {record}",
                host.name
            ),
        )
    } else if let Some(dir) = why.strip_prefix("dir ") {
        (
            format!("{dir} on {} is not a 0700 directory of {user}", host.name),
            format!("fix its owner and mode on {}", host.name),
        )
    } else {
        match why {
            "not-file" => (
                format!("{what} on {} is not a regular file", host.name),
                "remove it on the host (keys never writes through a link or over a directory)"
                    .to_string(),
            ),
            "exists" => (
                format!(
                    "{what} on {} exists and {record} does not name it",
                    host.name
                ),
                "pass --force to replace it".to_string(),
            ),
            "digest-key" => (
                format!(
                    "{root}/{} on {} is not the 32-byte 0600 file keys makes",
                    local::DIGEST_KEY,
                    host.name
                ),
                format!(
                    "remove it on {}; the next `keys remote set` makes a new one (and every secret then shows as changed)",
                    host.name
                ),
            ),
            other => (
                format!("{} could not write {what} ({other})", host.name),
                format!(
                    "check the file system on {} and that {user} may write there",
                    host.name
                ),
            ),
        }
    };
    Error::Remote { message, hint }
}

/// The user named as having set a secret.
fn who(repo: &Repo) -> String {
    crate::git::author(repo.root())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Writes the value on the host (replacing a file the record does not name only
/// with `force`), then records it. Returns the record file, relative to the root.
pub fn apply_set(plan: Plan, value: &[u8], force: bool, reach: &Reach<'_>) -> Result<String> {
    let host = plan.host()?;
    let root = plan.record.root().to_string();
    let record_file = plan.record_file();
    let expect = if plan.recorded || force {
        "replace"
    } else {
        "new"
    };
    let words = call(
        host,
        reach,
        SET,
        &[&root, &plan.path, expect],
        value,
        "nothing was written",
    )?;
    let digest = match words.last().map(String::as_str) {
        Some(w) if w.starts_with("set ") => w["set ".len()..].to_string(),
        Some(w) => return Err(refused(host, &root, &plan.path, w, &record_file)),
        None => {
            return Err(Error::Remote {
                message: format!("{} did not say whether it wrote {}", host.name, plan.path),
                hint: "run `keys remote ls` to see what the host has".into(),
            });
        }
    };
    let mut record = plan.record.clone();
    record.secrets.insert(
        plan.name.clone(),
        Entry {
            path: plan.path.clone(),
            set: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            by: who(&plan.repo),
            digest,
        },
    );
    save(&plan.repo, &record).map_err(|e| Error::Remote {
        message: format!(
            "{} was written on {}, but {record_file} could not be updated: {e}",
            plan.path, host.name
        ),
        hint: "fix the repository, then set the secret again".into(),
    })?;
    Ok(record_file)
}

/// Removes the file on the host, then its record. Whether the host had it.
pub fn apply_remove(plan: Plan, reach: &Reach<'_>) -> Result<bool> {
    let host = plan.host()?;
    let root = plan.record.root().to_string();
    let record_file = plan.record_file();
    let words = call(
        host,
        reach,
        REMOVE,
        &[&root, &plan.path],
        b"",
        "nothing was removed",
    )?;
    let had = match words.last().map(String::as_str) {
        Some("removed") => true,
        Some("absent") => false,
        Some(w) => return Err(refused(host, &root, &plan.path, w, &record_file)),
        None => {
            return Err(Error::Remote {
                message: format!("{} did not say whether it removed {}", host.name, plan.path),
                hint: "run `keys remote ls` to see what the host has".into(),
            });
        }
    };
    let mut record = plan.record.clone();
    record.secrets.remove(&plan.name);
    save(&plan.repo, &record)?;
    Ok(had)
}

/// How a local secret on the host compares with the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Ok,
    /// Recorded, not on the host.
    Missing,
    /// On the host with another value than keys set.
    Changed,
    /// On the host, not recorded.
    Unexpected,
    /// Recorded, but the host has no digest key to compare with.
    Unknown,
    /// Not a regular file, or others may read it (owner uid and mode as found).
    NotPrivate(String),
}

impl State {
    pub fn text(&self) -> String {
        match self {
            State::Ok => "ok".into(),
            State::Missing => "missing".into(),
            State::Changed => "changed outside keys".into(),
            State::Unexpected => "not recorded".into(),
            State::Unknown => "cannot compare (no digest key on the host)".into(),
            State::NotPrivate(how) => format!("not private ({how})"),
        }
    }
}

/// One line of `keys remote ls`.
pub struct Row {
    pub name: Option<String>,
    pub path: String,
    pub state: State,
    pub entry: Option<Entry>,
}

/// The host compared with its record.
pub struct Listing {
    pub root: String,
    pub record_file: String,
    pub rows: Vec<Row>,
}

impl Listing {
    pub fn problems(&self) -> usize {
        self.rows.iter().filter(|r| r.state != State::Ok).count()
    }
}

/// Lists what the host has under its local root and compares it with the record:
/// missing, changed (by the host's keyed digest), not recorded, not private.
pub fn list(repo: &Repo, host_name: &str, reach: &Reach<'_>) -> Result<Listing> {
    let fleet = Fleet::load(repo)?;
    let host = fleet.require_host(host_name)?;
    remote::address(host)?;
    let record = load_record(repo, host_name)?;
    let root = record.root().to_string();
    let record_file = local::rel(host_name);
    let words = call(host, reach, LIST, &[&root], b"", "nothing was changed")?;
    let mut rows = Vec::new();
    let mut me = None;
    let mut digest_key = true;
    let mut found: Vec<(String, String, String, String, String)> = Vec::new();
    let mut ended = false;
    for w in &words {
        let parts: Vec<&str> = w.split(' ').collect();
        match parts.as_slice() {
            ["none"] => ended = true,
            ["root", uid, mode, id] => {
                me = Some(id.to_string());
                if uid != id || *mode != "700" {
                    rows.push(Row {
                        name: None,
                        path: root.clone(),
                        state: State::NotPrivate(format!("owner uid {uid}, mode {mode}")),
                        entry: None,
                    });
                }
            }
            ["no-digest-key"] => digest_key = false,
            ["entry", kind, uid, mode, digest, hex] => found.push((
                kind.to_string(),
                uid.to_string(),
                mode.to_string(),
                digest.to_string(),
                decode_hex(hex),
            )),
            ["end"] => ended = true,
            _ if w.starts_with("error ") => {
                return Err(refused(host, &root, &root, w, &record_file));
            }
            _ => {}
        }
    }
    if !ended {
        return Err(Error::Remote {
            message: format!(
                "{} did not finish listing {root}; nothing was changed",
                host.name
            ),
            hint: "run the command again".into(),
        });
    }
    let me = me.unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for (name, entry) in &record.secrets {
        let state = match found.iter().find(|f| f.4 == entry.path) {
            None => State::Missing,
            Some((kind, ..)) if kind != "file" => State::NotPrivate(format!("a {kind}")),
            Some((_, uid, mode, ..)) if *uid != me || mode != "600" => {
                State::NotPrivate(format!("owner uid {uid}, mode {mode}"))
            }
            Some(_) if !digest_key => State::Unknown,
            Some((.., digest, _)) if *digest != entry.digest => State::Changed,
            Some(_) => State::Ok,
        };
        seen.insert(entry.path.clone());
        rows.push(Row {
            name: Some(name.clone()),
            path: entry.path.clone(),
            state,
            entry: Some(entry.clone()),
        });
    }
    for (kind, uid, mode, _, path) in &found {
        if seen.contains(path) {
            continue;
        }
        let state = match kind.as_str() {
            "dir" if *uid == me && mode == "700" => continue,
            "dir" => State::NotPrivate(format!("a directory, owner uid {uid}, mode {mode}")),
            _ => State::Unexpected,
        };
        rows.push(Row {
            name: None,
            path: path.clone(),
            state,
            entry: None,
        });
    }
    Ok(Listing {
        root,
        record_file,
        rows,
    })
}

/// A hex-encoded path as the host printed it; bytes that are not UTF-8 shown as �.
fn decode_hex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_parse() {
        for script in [SET, LIST, REMOVE] {
            let out = std::process::Command::new("/bin/sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn paths_come_back_from_hex() {
        assert_eq!(decode_hex("2f612f62"), "/a/b");
        assert_eq!(decode_hex("0a"), "\n");
        assert_eq!(decode_hex(""), "");
    }
}
