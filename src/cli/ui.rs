//! What a command shows the user: its output on stdout (a closed pipe ends it
//! quietly), notes and warnings on stderr, and aligned tables. No secret is ever
//! passed to a note.

use std::io::Write;

use crate::error::{Error, Result};

/// Writes to stdout, mapping a closed pipe to a quiet exit.
pub(crate) fn out(text: &str) -> Result<()> {
    out_bytes(text.as_bytes())
}

pub(crate) fn out_bytes(data: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(data)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// A note on stderr (progress, what was done); never carries secrets.
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "keys: {text}");
}

/// A warning on stderr: something the user should know that does not stop the command.
pub(crate) fn warn(text: &str) {
    note(&format!("warning: {text}"));
}

/// Says what a new scratch directory's creation wiped: plaintext that killed runs
/// had left behind.
pub(crate) fn note_swept(scratch: &crate::scratch::Scratch) {
    for left in scratch.swept() {
        note_leftover(&left.path, left.pid);
    }
}

/// Says what a new scratch directory's creation wiped and, when it is on disk for
/// want of a tmpfs (macOS), where plaintext goes: one line, in place of a flag on
/// every command.
pub(crate) fn note_scratch(scratch: &crate::scratch::Scratch) {
    note_swept(scratch);
    if scratch.in_user_temp() {
        note(&user_temp_notice(scratch.path()));
    }
}

/// The line `note_scratch` writes for a scratch directory on disk.
pub(crate) fn user_temp_notice(dir: &std::path::Path) -> String {
    format!(
        "no tmpfs here: temporary plaintext goes to {} on disk, in 0600 files that are zero-filled and removed when keys exits",
        dir.display()
    )
}

/// Says that plaintext a killed run had left at `path` was removed.
pub(crate) fn note_leftover(path: &std::path::Path, pid: u32) {
    note(&format!(
        "removed {}, plaintext left by a keys process that was killed (pid {pid})",
        path.display()
    ));
}

/// The plural ending for `n` things: an `s` unless there is exactly one.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Rows of cells in aligned columns, two spaces apart. Each column but a row's last
/// cell is padded to its widest cell or to its minimum width, whichever is more; the
/// last cell of a row is never padded.
pub(crate) struct Table {
    indent: &'static str,
    min: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose lines start with `indent`, with the given minimum column widths
    /// (columns beyond them have none).
    pub(crate) fn new(indent: &'static str, min: &[usize]) -> Table {
        Table {
            indent,
            min: min.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table's lines, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        let mut widths = self.min.clone();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut s = String::new();
        for row in &self.rows {
            s.push_str(self.indent);
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    s.push_str(cell);
                } else {
                    let w = widths[i];
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_temp_notice_is_one_line_naming_the_directory() {
        let dir = std::path::Path::new("/private/var/folders/xy/abc/T/keys-1-AbCdEf");
        let line = user_temp_notice(dir);
        assert!(!line.contains('\n'));
        assert!(
            line.contains("/private/var/folders/xy/abc/T/keys-1-AbCdEf on disk"),
            "{line}"
        );
        assert!(line.contains("zero-filled"), "{line}");
    }

    #[test]
    fn a_table_pads_every_column_but_the_last_to_its_widest_or_minimum() {
        let mut t = Table::new("  ", &[4, 6]);
        t.row(["NAME", "FORMAT", "READERS"]);
        t.row(["bot/token", "age", ""]);
        t.row(["a", "sops-yaml", "admins, host:x"]);
        assert_eq!(
            t.render(),
            "  NAME       FORMAT     READERS\n  \
             bot/token  age        \n  \
             a          sops-yaml  admins, host:x\n"
        );
        assert_eq!(Table::new("", &[3]).render(), "");
    }
}
