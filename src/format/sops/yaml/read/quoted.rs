//! Quoted scalars whose lines go-yaml reads at any indentation.
//!
//! go-yaml folds a single- or double-quoted scalar's lines whatever their
//! indentation (`a: 'one` / `bad'` at column 0 is `one bad`); YAML, and the
//! parser, want each line indented past the enclosing block. A line's leading
//! blanks are not part of the value, so such a line can be indented further and
//! the text read again, to the same value.

use zeroize::Zeroizing;

/// `text` with its (1-based) `line` indented past every block above it: past
/// the content's start (after blanks and `- `, `? `, `: ` indicators) of each
/// line above, which bounds the indentation of any block that can enclose it.
/// The copy is zeroized when dropped, as it holds the plaintext.
pub(super) fn reindent(text: &str, line: usize) -> Zeroizing<String> {
    let (mut offset, mut past, mut pad) = (0, 1usize, 0);
    for (at, l) in text.split('\n').enumerate() {
        if at + 1 == line {
            pad = past.saturating_sub(l.len() - l.trim_start_matches(' ').len());
            break;
        }
        past = past.max(content_start(l) + 1);
        offset += l.len() + 1;
    }
    let offset = offset.min(text.len());
    // Sized once, so no reallocation leaves a copy of the text behind.
    let mut out = Zeroizing::new(String::with_capacity(text.len() + pad));
    out.push_str(&text[..offset]);
    out.extend(std::iter::repeat_n(' ', pad));
    out.push_str(&text[offset..]);
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
        let reindent = |text: &str, line: usize| reindent(text, line).to_string();
        assert_eq!(reindent("a: 'one\nbad'\n", 2), "a: 'one\n bad'\n");
        assert_eq!(
            reindent("l:\n- - a: 'x\n  y'\n", 3),
            "l:\n- - a: 'x\n     y'\n"
        );
        assert_eq!(reindent("a:\n  b: 'x\n    y'", 3), "a:\n  b: 'x\n    y'");
        assert_eq!(reindent("a: 1\n", 9), "a: 1\n");
    }
}
