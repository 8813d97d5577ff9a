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
    let mut out = text.to_string();
    let (mut offset, mut past) = (0, 1usize);
    for (at, l) in text.split('\n').enumerate() {
        if at + 1 == line {
            let have = l.len() - l.trim_start_matches(' ').len();
            out.insert_str(offset, &" ".repeat(past.saturating_sub(have)));
            break;
        }
        past = past.max(content_start(l) + 1);
        offset += l.len() + 1;
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
