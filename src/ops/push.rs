//! `keys host rotate --generate --push`: a new host key installed on the running
//! host over one ssh session pinned to its old key, sshd reloaded, and a fresh
//! connection pinned to the new key only as the proof. The host keeps the old key
//! beside the new one until `keys` says so: a session that ends any other way (an
//! error, Ctrl-C, `kill -9`, a lost connection, a timeout) puts the old key back.

use std::path::Path;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::policy::fleet::Host;
use crate::policy::host_file::HOST_KEY;
use crate::recipient::Recipient;
use crate::scratch::Scratch;
use crate::signal::SignalGuard;

use super::remote::{self, Failure, Session, Stderr};

/// How long the host waits, once the new key is in place, for `keys` to say to keep
/// it (the proof, then the rekey of its secrets): then it puts the old key back.
const HOLD: Duration = Duration::from_secs(900);
/// How long the host may take to say the new key is in place.
const READY: Duration = Duration::from_secs(60);
/// How long a fresh connection is tried, after the reload, for the new key: while
/// the host does not answer (sshd restarting), and while it still presents another
/// key (a reload is not instant).
const PROOF: Duration = Duration::from_secs(15);
const PROOF_OTHER_KEY: Duration = Duration::from_secs(2);
/// How long the host may take to confirm a commit or to put the old key back.
const ANSWER: Duration = Duration::from_secs(30);

/// The script the host runs, as the ssh user (or root through `sudo -n`), with the
/// key file, the old key (`TYPE BASE64`), the new key (`TYPE BASE64`), its
/// `ssh_host_ed25519_key.pub` line and how long to hold as `$1`…`$5`. The private key
/// comes on standard input, read by the shell itself (no program holds it on its
/// command line); after `keys: ready` the next input line is `commit` or anything
/// else. Every temporary file is beside the key, made by mktemp (0600), and renamed
/// over it; the old key is kept as a hard link until the commit. It prints
/// `keys: ready`, `keys: committed`, `keys: restored` or `keys: error WHAT`.
const SCRIPT: &str = r#"set -u
trap '' PIPE
umask 077
key=$1 old=$2 new=$3 newline=$4 hold=$5
dir=${key%/*}
say() { printf 'keys: %s\n' "$1"; }
fail() { say "error $1"; exit 1; }
reload() {
  if systemctl is-active --quiet sshd.socket 2>/dev/null; then return 0; fi
  if systemctl reload sshd.service 2>/dev/null; then return 0; fi
  pid=$(systemctl show --property=MainPID --value sshd.service 2>/dev/null) || return 1
  case $pid in ''|0|*[!0-9]*) return 1 ;; esac
  kill -HUP "$pid"
}
tmp= pubtmp= back= pubback= switched= kept=
finish() {
  status=$?
  trap '' HUP INT TERM
  if [ -n "$switched" ] && [ -z "$kept" ]; then
    mv -f -- "$back" "$key" && back=
    if [ -n "$pubback" ]; then mv -f -- "$pubback" "$key.pub" && pubback=
    else rm -f -- "$key.pub"; fi
    sync
    if reload; then say restored; else say "error reload-back"; fi
  fi
  for f in "$tmp" "$pubtmp" "$back" "$pubback"; do
    if [ -n "$f" ]; then rm -f -- "$f"; fi
  done
  exit "$status"
}
trap finish EXIT
trap 'exit 1' HUP INT TERM
for tool in ssh-keygen mktemp timeout head systemctl; do
  command -v "$tool" >/dev/null 2>&1 || fail "missing $tool"
done
if [ ! -d "$dir" ] || [ -L "$dir" ]; then fail no-dir; fi
if [ ! -f "$key" ] || [ -L "$key" ]; then fail no-key; fi
if [ -L "$key.pub" ] || { [ -e "$key.pub" ] && [ ! -f "$key.pub" ]; }; then fail pub-not-file; fi
cur=$(ssh-keygen -y -f "$key" 2>/dev/null) || fail unreadable
case "$cur " in "$old "*) ;; *) fail other-key ;; esac
tmp=$(mktemp "$dir/.ssh_host_ed25519_key.XXXXXX") || fail write
while IFS= read -r line; do
  printf '%s\n' "$line"
  if [ "$line" = '-----END OPENSSH PRIVATE KEY-----' ]; then break; fi
done >"$tmp" || fail write
got=$(ssh-keygen -y -f "$tmp" 2>/dev/null) || got=
case "$got " in "$new "*) ;; *) fail transfer ;; esac
pubtmp=$(mktemp "$dir/.ssh_host_ed25519_key.pub.XXXXXX") || fail write
printf '%s\n' "$newline" >"$pubtmp" && chmod 644 "$pubtmp" || fail write
back=$(mktemp "$dir/.ssh_host_ed25519_key.old.XXXXXX") || fail write
ln -f -- "$key" "$back" 2>/dev/null || cp -p -- "$key" "$back" || fail write
if [ -f "$key.pub" ]; then
  pubback=$(mktemp "$dir/.ssh_host_ed25519_key.pub.old.XXXXXX") || fail write
  ln -f -- "$key.pub" "$pubback" 2>/dev/null || cp -p -- "$key.pub" "$pubback" || fail write
fi
sync -- "$tmp" "$pubtmp" 2>/dev/null || sync
switched=1
mv -f -- "$pubtmp" "$key.pub" || fail write
pubtmp=
mv -f -- "$tmp" "$key" || fail write
tmp=
sync -- "$dir" 2>/dev/null || sync
reload || fail reload
say ready
answer=$(timeout "$hold" head -n 1) || answer=
if [ "$answer" != commit ]; then exit 1; fi
kept=1
rm -f -- "$back"
back=
if [ -n "$pubback" ]; then rm -f -- "$pubback"; fi
pubback=
sync
say committed
exit 0
"#;

/// What to push: the host as its file names it now, and the new key pair.
pub struct KeyPush<'a> {
    pub host: &'a Host,
    pub public: &'a Recipient,
    pub private: &'a Zeroizing<String>,
    pub ssh_key: Option<&'a Path>,
}

/// A new key in place on the running host and proven there, not kept yet: dropping
/// this ends the session, and the host puts its old key back.
pub struct Pushed {
    session: Session,
    host: String,
    shown: String,
}

/// Whether the host confirmed that it keeps the new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Confirmed,
    /// The word was sent but no answer came back: the host most likely keeps the
    /// new key (it puts the old one back only if the word never reached it).
    Unconfirmed,
}

/// The file the push writes on the host: the persisted host key, where
/// `stage-install` puts it and the exported modules read it.
pub fn key_path(host: &Host) -> String {
    host.on_host(HOST_KEY)
}

/// `TYPE BASE64` of a key, without its comment.
fn bare(key: &Recipient) -> String {
    key.to_string()
}

/// Installs the new key on the running host and proves it: one session pinned to
/// the old key writes it (temp file and rename, the private key on the session's
/// input), reloads sshd and waits; then a fresh connection pinned to the new key
/// only must succeed. On any failure the host has put its old key back (or is told
/// to) and the error says what happened; nothing in the repository has changed.
pub fn push(p: &KeyPush<'_>, scratch: &Scratch, guard: &SignalGuard) -> Result<Pushed> {
    let host = p.host;
    let address = remote::address(host)?;
    let shown = format!("{address}:{}", host.ssh_port);
    let old_hosts = scratch.create_file(
        "known_hosts.old",
        remote::known_hosts(host, address, host.ssh_port).as_bytes(),
        0o644,
    )?;
    let new_line = remote::known_hosts(host, address, host.ssh_port).replacen(
        &host.key.to_string(),
        &p.public.to_string(),
        1,
    );
    let new_hosts = scratch.create_file("known_hosts.new", new_line.as_bytes(), 0o644)?;
    let path = key_path(host);
    let hold = HOLD.as_secs().to_string();
    let old = bare(&host.key);
    let new = bare(p.public);
    let pub_line = crate::policy::host_file::key_line(p.public);
    let script = remote::remote_script(
        host,
        "keys-push",
        SCRIPT,
        &[&path, &old, &new, &pub_line, &hold],
    );
    let command = remote::ssh_command(host, &old_hosts, p.ssh_key, script)?;
    let mut session = Session::start(&command)?;
    let mut key = Zeroizing::new(p.private.as_bytes().to_vec());
    if !key.ends_with(b"\n") {
        key.push(b'\n');
    }
    session.send(&key);
    drop(key);
    let mut pushed = Pushed {
        session,
        host: host.name.clone(),
        shown: shown.clone(),
    };
    match pushed.answer(READY, guard)? {
        Some(word) if word == "ready" => {}
        Some(word) => {
            let why = word.strip_prefix("error ").unwrap_or(&word).to_string();
            // Let it put back what it changed before saying so.
            let _ = pushed.close(guard);
            return Err(script_error(host, &shown, &path, &why));
        }
        None => return Err(pushed.ended(host, "before the new key was in place")),
    }
    // The proof: a connection that knows only the new key.
    let probe = remote::verify_command(host, &new_hosts, p.ssh_key)?;
    let start = Instant::now();
    let last = loop {
        let (why, within) = match remote::run(&probe, guard, Stderr::Captured)? {
            Ok(()) => return Ok(pushed),
            Err(Failure::Missing(e)) => break format!("cannot run ssh ({e})"),
            Err(Failure::Exit { stderr, .. }) if remote::host_key_refused(&stderr) => {
                ("it presents another key".to_string(), PROOF_OTHER_KEY)
            }
            Err(Failure::Exit { stderr, .. }) => (remote::last_line(&stderr).to_string(), PROOF),
        };
        if start.elapsed() >= within {
            break why;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let restored = pushed.abort(guard)?;
    Err(Error::Remote {
        message: format!(
            "{} ({shown}) did not answer with the new key after sshd was reloaded ({last}); {}; nothing in the repository changed",
            host.name,
            if restored {
                "its old key was put back"
            } else {
                "it was told to put its old key back but did not confirm it"
            }
        ),
        hint: format!(
            "check that sshd on {} reads its host key from {path} (the host file's persist prefix) and that `systemctl reload sshd.service` reloads it",
            host.name
        ),
    })
}

impl Pushed {
    /// The next `keys: WORD` line of the host, skipping anything else it prints.
    fn answer(&mut self, timeout: Duration, guard: &SignalGuard) -> Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        while let Some(line) = self
            .session
            .line(deadline.saturating_duration_since(Instant::now()), guard)?
        {
            if let Some(word) = line.strip_prefix("keys: ") {
                return Ok(Some(word.to_string()));
            }
        }
        Ok(None)
    }

    /// Tells the host to keep the new key and waits for it to say so. Once the word
    /// is sent a signal no longer stops the wait: the host may already keep the key,
    /// and so must the repository.
    pub fn keep(&mut self, guard: &SignalGuard) -> Result<Kept> {
        if let Some(signal) = guard.interrupted() {
            return Err(crate::signal::interruption(signal));
        }
        if !self.session.send(b"commit\n") {
            return Err(self.lost("before it was told to keep the new key"));
        }
        let deadline = Instant::now() + ANSWER;
        while let Some(line) = self
            .session
            .line_regardless(deadline.saturating_duration_since(Instant::now()))
        {
            match line.strip_prefix("keys: ") {
                Some("committed") => return Ok(Kept::Confirmed),
                Some(word) if word == "restored" || word.starts_with("error") => {
                    let _ = self.close(guard);
                    return Err(self.lost("and put its old key back"));
                }
                _ => {}
            }
        }
        Ok(Kept::Unconfirmed)
    }

    /// Tells the host to put its old key back; whether it confirmed it did.
    pub fn abort(mut self, guard: &SignalGuard) -> Result<bool> {
        self.session.send(b"abort\n");
        self.close(guard)
    }

    /// Ends the session the way the host expects: its input closed, what it still
    /// says read to the end, and the program waited for, so that the host has put
    /// back what it changed before `keys` reports. Whether it said `restored`.
    fn close(&mut self, guard: &SignalGuard) -> Result<bool> {
        self.session.close_input();
        let mut restored = false;
        while let Some(word) = self.answer(ANSWER, guard)? {
            restored |= word == "restored";
        }
        Ok(restored)
    }

    fn lost(&self, when: &str) -> Error {
        Error::Remote {
            message: format!(
                "the session with {} ({}) ended {when}; the repository was put back as it was",
                self.host, self.shown
            ),
            hint: format!(
                "check which key {} presents (ssh-keyscan -t ed25519 -p PORT ADDRESS) and run `keys host rotate {} --generate --push` again",
                self.host, self.host
            ),
        }
    }

    /// The error for a session that ended without a word: ssh's own.
    fn ended(self, host: &Host, when: &str) -> Error {
        let Pushed { session, shown, .. } = self;
        let stderr = match session.finish(Duration::from_secs(5)) {
            Ok(()) => String::new(),
            Err(Failure::Exit { stderr, .. }) => stderr,
            Err(Failure::Missing(e)) => e.to_string(),
        };
        if remote::host_key_refused(&stderr) {
            return Error::Remote {
                message: format!(
                    "{shown} does not present {}'s key {} (recipients/hosts/{}.yaml); nothing was changed",
                    host.name,
                    host.key.fingerprint(),
                    host.name
                ),
                hint: format!(
                    "if the host was reinstalled or its key rotated already, record the key it has with `keys host rotate {} --keyscan {shown}`",
                    host.name
                ),
            };
        }
        let detail = remote::last_line(&stderr);
        Error::Remote {
            message: format!(
                "ssh to {} ({shown}) failed {when}{}{detail}; nothing was changed",
                host.name,
                if detail.is_empty() { "" } else { ": " },
            ),
            hint: format!(
                "check that {shown} accepts ssh as {} (--ssh-key FILE)",
                host.ssh_user
            ),
        }
    }
}

/// The error for what the script refused, before anything on the host changed
/// (or after it put everything back).
fn script_error(host: &Host, shown: &str, path: &str, why: &str) -> Error {
    let file = format!("recipients/hosts/{}.yaml", host.name);
    let persist = format!(
        "set `persist:` in {file} to the prefix under which {} keeps /etc/ssh",
        host.name
    );
    let (message, hint) = match why {
        "no-dir" => (
            format!("{} has no directory for {path}", host.name),
            persist,
        ),
        "no-key" => (
            format!("{path} on {} is not a regular file", host.name),
            persist,
        ),
        "pub-not-file" => (
            format!("{path}.pub on {} is not a regular file", host.name),
            format!("remove {path}.pub on {} or make it a file", host.name),
        ),
        "other-key" => (
            format!(
                "{path} on {} is not the key it presents ({})",
                host.name,
                host.key.fingerprint()
            ),
            format!("sshd reads its key from another file: {persist}"),
        ),
        "unreadable" => (
            format!(
                "{path} on {} cannot be read as {}",
                host.name, host.ssh_user
            ),
            format!("log in as root (`ssh_user:` in {file})"),
        ),
        "write" => (
            format!("cannot write the new key beside {path} on {}", host.name),
            format!(
                "check the file system on {} and that {} may write there",
                host.name, host.ssh_user
            ),
        ),
        "transfer" => (
            format!("the new key did not arrive whole on {}", host.name),
            "run the command again".to_string(),
        ),
        "reload" => (
            format!("sshd on {} could not be reloaded", host.name),
            format!("check `systemctl reload sshd.service` on {}", host.name),
        ),
        other => match other.strip_prefix("missing ") {
            Some(tool) => (
                format!("{} has no `{tool}` on its PATH", host.name),
                format!("install {tool} on {}", host.name),
            ),
            None => (
                format!("{} answered {other:?}", host.name),
                "run the command again".to_string(),
            ),
        },
    };
    Error::Remote {
        message: format!(
            "{message} ({shown}); the host was left as it was and nothing in the repository changed"
        ),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_parses() {
        let out = std::process::Command::new("/bin/sh")
            .args(["-n", "-c", SCRIPT])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
