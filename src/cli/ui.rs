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

/// The width tables are fitted to: $COLUMNS when it is a number, else the terminal's
/// when stdout is one, else 80 columns (a pipe, a file, a script).
pub(crate) fn width() -> usize {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    columns
        .or_else(|| {
            terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
        })
        .unwrap_or(DEFAULT_WIDTH)
}

/// What a table fits when stdout is not a terminal.
pub(crate) const DEFAULT_WIDTH: usize = 80;

/// How many terminal columns `text` takes.
fn columns(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` cut to at most `width` terminal columns, its end replaced by `…` when cut.
pub(crate) fn cut(text: &str, width: usize) -> String {
    if columns(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// `text` cut to at most `width` terminal columns in its middle, which `…` replaces:
/// for names and paths, whose ends tell them apart.
pub(crate) fn cut_middle(text: &str, width: usize) -> String {
    if columns(text) <= width || width < 3 {
        return cut(text, width);
    }
    let chars: Vec<char> = text.chars().collect();
    let w = |c: &char| unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0);
    let room = width - 1;
    let (mut head, mut used) = (0, 0);
    while head < chars.len() && used + w(&chars[head]) <= room / 2 {
        used += w(&chars[head]);
        head += 1;
    }
    let mut tail = chars.len();
    while tail > head && used + w(&chars[tail - 1]) <= room {
        tail -= 1;
        used += w(&chars[tail]);
    }
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[tail..]);
    out
}

/// A column is narrowed no further than this unless told otherwise (or its header is
/// wider), as long as narrowing the others can make the table fit.
const FLOOR: usize = 8;

/// The narrowest a column without a header becomes when nothing else fits.
const LEAST: usize = 4;

/// Rows of cells in aligned columns, two spaces apart, under an optional header, fitted
/// to a width. Each cell but a row's last is padded to its column's width; when the
/// table is wider than the width, the widest columns are narrowed first, down to their
/// floor, and a cell wider than its column is cut with `…`. Every table keys prints
/// goes through this one.
pub(crate) struct Table {
    indent: &'static str,
    header: Vec<String>,
    floors: Vec<Option<usize>>,
    pads: Vec<usize>,
    /// Columns cut in the middle rather than at the end.
    middles: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose lines start with `indent`.
    pub(crate) fn new(indent: &'static str) -> Table {
        Table {
            indent,
            header: Vec::new(),
            floors: Vec::new(),
            pads: Vec::new(),
            middles: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The header row, printed first (never when the table has no rows).
    pub(crate) fn header<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.header = cells.into_iter().map(Into::into).collect();
    }

    /// Column `col` (from 0) is narrowed to no less than `width` columns while
    /// narrowing the other columns can make the table fit: a cell that fits in it is
    /// cut only when nothing else can be. The default is its header's width, or 8.
    pub(crate) fn keep(&mut self, col: usize, width: usize) {
        if self.floors.len() <= col {
            self.floors.resize(col + 1, None);
        }
        self.floors[col] = Some(width);
    }

    /// Column `col` is at least `width` columns wide, so that tables printed one
    /// after another line up.
    pub(crate) fn pad(&mut self, col: usize, width: usize) {
        if self.pads.len() <= col {
            self.pads.resize(col + 1, 0);
        }
        self.pads[col] = width;
    }

    /// Column `col` holds names or paths: a cell too wide for it loses its middle,
    /// not its end.
    pub(crate) fn cut_middle(&mut self, col: usize) {
        self.middles.push(col);
    }

    pub(crate) fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table's lines, each ending in a newline, fitted to [`width`].
    pub(crate) fn render(&self) -> String {
        self.render_to(width())
    }

    /// The table's lines fitted to `width` columns (as far as the floors allow).
    pub(crate) fn render_to(&self, width: usize) -> String {
        if self.rows.is_empty() {
            return String::new();
        }
        let all = || std::iter::once(&self.header).chain(&self.rows);
        let n = all().map(Vec::len).max().unwrap_or(0);
        let mut widths: Vec<usize> = (0..n)
            .map(|i| self.pads.get(i).copied().unwrap_or(0))
            .collect();
        for row in all() {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(columns(cell));
            }
        }
        let header = |i: usize| self.header.get(i).map_or(0, |h| columns(h));
        // First down to each column's floor; then, if the table is still too wide,
        // every column down to its header (or a few columns).
        let floors: Vec<usize> = (0..n)
            .map(|i| {
                let floor = self.floors.get(i).copied().flatten();
                widths[i].min(floor.unwrap_or(FLOOR.max(header(i))))
            })
            .collect();
        let least: Vec<usize> = (0..n)
            .map(|i| widths[i].min(header(i).max(LEAST)))
            .collect();
        let mut total = columns(self.indent) + widths.iter().sum::<usize>() + 2 * (n - 1);
        for floors in [&floors, &least] {
            while total > width {
                // The widest column that may still give: later ones first on a tie.
                let Some(i) = (0..n)
                    .filter(|&i| widths[i] > floors[i])
                    .max_by_key(|&i| (widths[i], i))
                else {
                    break;
                };
                widths[i] -= 1;
                total -= 1;
            }
        }
        let mut s = String::new();
        for row in all().filter(|r| !r.is_empty()) {
            s.push_str(self.indent);
            for (i, cell) in row.iter().enumerate() {
                let cell = if self.middles.contains(&i) {
                    cut_middle(cell, widths[i])
                } else {
                    cut(cell, widths[i])
                };
                s.push_str(&cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - columns(&cell) + 2;
                    s.extend(std::iter::repeat_n(' ', pad));
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
    fn a_table_pads_every_column_but_the_last_to_its_widest() {
        let mut t = Table::new("  ");
        t.header(["NAME", "FORMAT", "READERS"]);
        t.row(["bot/token", "age", ""]);
        t.row(["a", "sops-yaml", "admins, host:x"]);
        assert_eq!(
            t.render_to(80),
            "  NAME       FORMAT     READERS\n  \
             bot/token  age        \n  \
             a          sops-yaml  admins, host:x\n"
        );
        let mut empty = Table::new("");
        empty.header(["NAME"]);
        assert_eq!(empty.render_to(80), "", "no header without rows");
    }

    #[test]
    fn a_table_wider_than_its_width_narrows_its_widest_columns_first() {
        let mut t = Table::new("");
        t.header(["HOST", "KEY", "AGE"]);
        t.keep(0, 20);
        t.row([
            "a-rather-long-host",
            "SHA256:gu/4HQtiXDwee8cQMgX8",
            "age17zytj2zqen9nz4euk9hw6ur2djqkdza2",
        ]);
        t.row(["web", "-", "-"]);
        let text = t.render_to(50);
        assert_eq!(
            text,
            "HOST                KEY             AGE\n\
             a-rather-long-host  SHA256:gu/4HQ…  age17zytj2zqe…\n\
             web                 -               -\n"
        );
        assert!(text.lines().all(|l| columns(l) <= 50), "{text}");
        // Down to every column's floor first; then to the headers.
        assert_eq!(
            t.render_to(38),
            "HOST                KEY       AGE\n\
             a-rather-long-host  SHA256:…  age17zy…\n\
             web                 -         -\n"
        );
        assert_eq!(
            t.render_to(10),
            "HOST  KEY   AGE\n\
             a-r…  SHA…  age…\n\
             web   -     -\n"
        );
    }

    #[test]
    fn cells_are_cut_by_terminal_columns_not_bytes() {
        assert_eq!(cut("abcdef", 6), "abcdef");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("日本語の名前", 7), "日本語…");
        assert_eq!(cut("abc", 0), "");
        assert_eq!(
            cut_middle("hosts/web/app/worker-credentials-0004", 20),
            "hosts/web…tials-0004"
        );
        assert_eq!(cut_middle("日本語の名前", 7), "日…名前");
        assert_eq!(cut_middle("abcdef", 6), "abcdef");
    }
}
