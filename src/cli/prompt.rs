//! Passphrases and answers from the user: a file (`KEYS_PASSPHRASE_FILE`), a file
//! descriptor (`--passphrase-fd`), or the terminal (`/dev/tty`, no echo). With none
//! of these it says so at once instead of waiting.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::identity::Prompt;

enum Source {
    Fd(u32),
    File(PathBuf),
    Tty,
}

pub(crate) struct CliPrompt {
    source: Source,
    /// A passphrase read from a file or fd is read once and reused.
    cached: Mutex<Option<SecretString>>,
}

impl CliPrompt {
    pub(crate) fn new(fd: Option<u32>) -> CliPrompt {
        let source = match (fd, std::env::var_os("KEYS_PASSPHRASE_FILE")) {
            (Some(fd), _) => Source::Fd(fd),
            (None, Some(f)) if !f.is_empty() => Source::File(PathBuf::from(f)),
            _ => Source::Tty,
        };
        CliPrompt {
            source,
            cached: Mutex::new(None),
        }
    }

    /// Whether passphrases come from the terminal (no file or descriptor given).
    pub(crate) fn asks_terminal(&self) -> bool {
        matches!(self.source, Source::Tty)
    }

    /// The first line of a passphrase file: a regular file of at most 1 MiB.
    fn file_first_line(path: &Path) -> Result<SecretString> {
        let read = crate::fsutil::read_private(path)?;
        let line = read.data.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        utf8_secret(line, &path.display().to_string())
    }

    /// A new passphrase: asked twice on a terminal, read once from a file or fd.
    pub(crate) fn new_passphrase(&self, what: &str) -> Result<Option<SecretString>> {
        let Some(first) = self.passphrase(&format!("New passphrase for {what}"))? else {
            return Ok(None);
        };
        if matches!(self.source, Source::Tty) {
            let again = self
                .passphrase("Repeat it")?
                .unwrap_or_else(|| SecretString::from(String::new()));
            if again.expose_secret() != first.expose_secret() {
                return Err(crate::error::usage(
                    "the two passphrases differ",
                    "run the command again and type the same passphrase twice",
                ));
            }
        }
        if first.expose_secret().is_empty() {
            return Err(crate::error::usage(
                "an empty passphrase protects nothing",
                "type a passphrase, or leave out --passphrase",
            ));
        }
        Ok(Some(first))
    }
}

impl Prompt for CliPrompt {
    fn passphrase(&self, description: &str) -> Result<Option<SecretString>> {
        let copy = |s: &SecretString| SecretString::from(s.expose_secret().to_string());
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = cached.as_ref() {
            return Ok(Some(copy(known)));
        }
        let read = match &self.source {
            Source::Tty => {
                return Ok(rpassword::prompt_password(format!("{description}: "))
                    .ok()
                    .map(SecretString::from));
            }
            Source::Fd(fd) => {
                let name = format!("--passphrase-fd {fd}");
                let line = crate::fsutil::read_fd_line(*fd, &name)?;
                utf8_secret(&line, &name)?
            }
            Source::File(path) => Self::file_first_line(path)?,
        };
        Ok(Some(copy(cached.insert(read))))
    }
}

/// A passphrase from bytes read from a file or descriptor; `name` names it in errors.
fn utf8_secret(line: &[u8], name: &str) -> Result<SecretString> {
    let text = std::str::from_utf8(line).map_err(|_| Error::InvalidFile {
        at: crate::error::Location::named(name),
        reason: "the passphrase is not UTF-8 text".into(),
    })?;
    Ok(SecretString::from(text.to_string()))
}

/// The terminal, to ask the user something; `None` when there is none.
fn tty() -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// Writes `prompt` and `: ` on the terminal and reads the answer, trimmed.
fn ask(prompt: &str) -> Option<String> {
    let mut tty = tty()?;
    write!(tty, "{prompt}: ").ok()?;
    tty.flush().ok()?;
    let mut line = String::new();
    BufReader::new(tty).read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

/// Asks a question with a default on the terminal; `None` when there is no terminal.
pub(crate) fn ask_line(question: &str, default: &str) -> Option<String> {
    let answer = ask(&format!("{question} [{default}]"))?;
    Some(if answer.is_empty() {
        default.to_string()
    } else {
        answer
    })
}

/// Whether a terminal can be opened to ask the user something.
pub(crate) fn has_tty() -> bool {
    tty().is_some()
}

/// Asks a yes/no question on the terminal (default no); `None` when there is no
/// terminal.
pub(crate) fn confirm(question: &str) -> Option<bool> {
    let answer = ask(&format!("{question} [y/N]"))?;
    Some(matches!(answer.as_str(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

/// Reads a whole secret from `reader` into zeroized memory. The buffer grows by
/// copying into a larger zeroized one, so no freed allocation keeps a copy. It starts
/// empty: zeroizing wipes the whole capacity, so a short token costs a short wipe.
pub(crate) fn read_secret(
    mut reader: impl std::io::Read,
    what: &str,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = match reader.read(&mut chunk[..]) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(what, e)),
        };
        if buf.len() + n > max {
            return Err(crate::error::usage(
                format!("{what}: more than {} MiB; nothing was written", max >> 20),
                "secrets this large belong elsewhere; keep a key to them here instead",
            ));
        }
        if buf.len() + n > buf.capacity() {
            let mut bigger =
                Zeroizing::new(Vec::with_capacity((buf.capacity() * 2).max(buf.len() + n)));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A secret typed twice on the terminal without echo.
pub(crate) fn secret_from_tty(name: &str) -> Result<Zeroizing<Vec<u8>>> {
    let ask = |q: String| {
        rpassword::prompt_password(q)
            .map(|s| Zeroizing::new(s.into_bytes()))
            .map_err(|e| Error::io("/dev/tty", e))
    };
    let first = ask(format!("Secret for {name}: "))?;
    let again = ask("Repeat it: ".to_string())?;
    if *first != *again {
        return Err(crate::error::usage(
            "the two entries differ; nothing was written",
            "run the command again and type the same secret twice",
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_read_whole_across_chunks_and_refused_past_its_limit() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let read = read_secret(&data[..], "<test>", 1 << 20).unwrap();
        assert_eq!(&read[..], &data[..]);
        assert!(read_secret(&b""[..], "<test>", 16).unwrap().is_empty());
        let refused = read_secret(&data[..], "<test>", 40_000).unwrap_err();
        assert!(
            refused.to_string().contains("<test>: more than"),
            "{refused}"
        );
    }
}
