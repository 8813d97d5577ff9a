//! Passphrases and answers from the user: a file (`KEYS_PASSPHRASE_FILE`), a file
//! descriptor (`--passphrase-fd`), or the terminal (`/dev/tty`, no echo). With none
//! of these it says so at once instead of waiting.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
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

    fn read_first_line(path: &PathBuf) -> Result<SecretString> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut line = Zeroizing::new(String::with_capacity(1024));
        BufReader::new(file)
            .read_line(&mut line)
            .map_err(|e| Error::io(path, e))?;
        let trimmed = line.trim_end_matches(['\n', '\r']);
        Ok(SecretString::from(trimmed.to_string()))
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
        let path = match &self.source {
            Source::Fd(fd) => PathBuf::from(format!("/dev/fd/{fd}")),
            Source::File(path) => path.clone(),
            Source::Tty => {
                return Ok(rpassword::prompt_password(format!("{description}: "))
                    .ok()
                    .map(SecretString::from));
            }
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.is_none() {
            *cached = Some(Self::read_first_line(&path)?);
        }
        Ok(cached
            .as_ref()
            .map(|s| SecretString::from(s.expose_secret().to_string())))
    }
}

/// Asks a question with a default on the terminal; `None` when there is no terminal.
pub(crate) fn ask_line(question: &str, default: &str) -> Option<String> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    write!(tty, "{question} [{default}]: ").ok()?;
    tty.flush().ok()?;
    let mut line = String::new();
    BufReader::new(tty).read_line(&mut line).ok()?;
    let answer = line.trim();
    Some(if answer.is_empty() {
        default.to_string()
    } else {
        answer.to_string()
    })
}

/// Whether a terminal can be opened to ask the user something.
pub(crate) fn has_tty() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// Asks a yes/no question on the terminal (default no); `None` when there is no
/// terminal.
pub(crate) fn confirm(question: &str) -> Option<bool> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    write!(tty, "{question} [y/N]: ").ok()?;
    tty.flush().ok()?;
    let mut line = String::new();
    BufReader::new(tty).read_line(&mut line).ok()?;
    Some(matches!(line.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
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
