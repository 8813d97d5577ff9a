//! Quoted scalars whose lines go-yaml reads at any indentation.
//!
//! go-yaml folds a single- or double-quoted scalar's lines whatever their
//! indentation (`a: 'one` / `bad'` at column 0 is `one bad`); YAML, and the
//! parser, want each line indented past the enclosing block. A line's leading
//! blanks are not part of the value, so such a line can be indented further and
//! the text read again, to the same value.

/// `text` with its (1-based) `line` indented past every block above it: past
/// the content's start (after blanks and `- `, `? `, `: ` indicators) of each
/// line above, which bounds the indentation of any block that can enclose it.
pub(super) fn reindent(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(bad) = line.checked_sub(1).filter(|&at| at < lines.len()) else {
        return text.to_string();
    };
    let past = lines[..bad]
        .iter()
        .map(|l| content_start(l))
        .max()
        .unwrap_or(0)
        + 1;
    let have = lines[bad].len() - lines[bad].trim_start_matches(' ').len();
    let mut out = String::with_capacity(text.len() + past);
    for (at, l) in lines.iter().enumerate() {
        if at > 0 {
            out.push('\n');
        }
        if at == bad {
            out.extend(std::iter::repeat_n(' ', past.saturating_sub(have)));
        }
        out.push_str(l);
    }
    out
}

/// The column where `line`'s content starts, after its indentation and any block
/// indicators (`- `, `? `, `: `) that open nested blocks on it.
fn content_start(line: &str) -> usize {
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start_matches(' ');
        match trimmed.as_bytes() {
            [b'-' | b'?' | b':', b' ', ..] => rest = &trimmed[2..],
            _ => return line.len() - trimmed.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_indented_past_every_block_above_it() {
        assert_eq!(reindent("a: 'one\nbad'\n", 2), "a: 'one\n bad'\n");
        assert_eq!(
            reindent("l:\n- - a: 'x\n  y'\n", 3),
            "l:\n- - a: 'x\n     y'\n"
        );
        assert_eq!(reindent("a:\n  b: 'x\n    y'", 3), "a:\n  b: 'x\n    y'");
        assert_eq!(reindent("a: 1\n", 9), "a: 1\n");
    }
}
