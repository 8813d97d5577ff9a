//! Finding one secret's line in a large lock by reading a few windows of it.

/// Where a secret's line is, or would go, in a lock file kept sorted by name: the
/// bytes of its line (to replace), or an empty range where it is inserted, and the
/// name of the entry found there (`None`: the end of the file).
#[derive(Debug, PartialEq, Eq)]
pub struct Spot {
    pub range: std::ops::Range<u64>,
    pub found: Option<String>,
}

impl Spot {
    /// Whether the lock has a line for the name looked up.
    pub fn is_entry(&self, name: &str) -> bool {
        self.found.as_deref() == Some(name)
    }
}

/// How much of the file one look reads; a line longer than this (far longer than any
/// entry keys writes) makes `locate` give up.
pub const LOOK: u64 = 4096;

/// Finds where `name`'s line is, or goes, in a lock file of `len` bytes sorted by
/// name, as `LockfileText::upsert` would place it, by reading a few windows of it
/// with `read_at` (offset, buffer) rather than the whole file: a binary search on
/// byte offsets, so a fleet's lock costs the same few reads whatever its size.
/// `None` when the windows cannot tell (the file does not end with a line break, a
/// line longer than a window, a run of comments): the caller reads it all instead.
pub fn locate(
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
    len: u64,
    name: &str,
) -> std::io::Result<Option<Spot>> {
    let mut read = |range: std::ops::Range<u64>| -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; usize::try_from(range.end - range.start).unwrap_or(0)];
        let mut done = 0;
        while done < buf.len() {
            match read_at(range.start + done as u64, &mut buf[done..])? {
                0 => break,
                n => done += n,
            }
        }
        buf.truncate(done);
        Ok(buf)
    };
    if len == 0 || read(len - 1..len)? != b"\n" {
        return Ok(None);
    }
    let name = name.as_bytes();
    // Every entry starting before `lo` sorts before `name`; the first entry that does
    // not is one starting in `lo..hi`, else `bound` (else there is none).
    let (mut lo, mut hi) = (0u64, len);
    let mut bound: Option<(u64, u64, Vec<u8>)> = None;
    while hi - lo > LOOK {
        let mid = lo + (hi - lo) / 2;
        let at = mid - 1;
        let buf = read(at..len.min(at + 2 * LOOK))?;
        // The first line starting at mid or after.
        let Some(nl) = memchr::memchr(b'\n', &buf) else {
            return Ok(None);
        };
        let (first, covered) = first_entry(&buf[nl + 1..], at + nl as u64 + 1, hi, &[]);
        match first {
            Some((_, end, found)) if found.as_slice() < name => lo = end,
            Some(entry) => {
                bound = Some(entry);
                hi = mid;
            }
            // No entry starts in mid..hi.
            None if covered >= hi => hi = mid,
            None => return Ok(None),
        }
    }
    // The lines starting in lo..hi, read whole.
    let buf = read(lo..len.min(hi + 2 * LOOK))?;
    let (first, covered) = first_entry(&buf, lo, hi, name);
    if first.is_none() && covered < hi {
        return Ok(None);
    }
    // A lock out of order (lines added by hand, most likely at its end) is left to a
    // whole read: the lines read here and the last ones must be in order.
    let tail_from = len.saturating_sub(2 * LOOK);
    let tail = read(tail_from..len)?;
    let whole_lines = match tail_from {
        0 => &tail[..],
        _ => match memchr::memchr(b'\n', &tail) {
            Some(nl) => &tail[nl + 1..],
            None => return Ok(None),
        },
    };
    if !in_order(&buf) || !in_order(whole_lines) {
        return Ok(None);
    }
    let spot = match first.or(bound) {
        Some((start, end, found)) => {
            let range = if found == name {
                start..end
            } else {
                start..start
            };
            Spot {
                range,
                found: Some(String::from_utf8_lossy(&found).into_owned()),
            }
        }
        None => Spot {
            range: len..len,
            found: None,
        },
    };
    Ok(Some(spot))
}

/// The first entry among the complete lines of `buf` (which starts at `base`) that
/// starts before `hi` and sorts at or after `at_least`, as (start, end, name); and
/// up to where line starts were looked at.
fn first_entry(
    buf: &[u8],
    base: u64,
    hi: u64,
    at_least: &[u8],
) -> (Option<(u64, u64, Vec<u8>)>, u64) {
    let mut covered = base;
    for (start, end, line) in lines(buf, base) {
        if start >= hi {
            break;
        }
        if is_entry(line) && entry_name(line) >= at_least {
            return (Some((start, end, entry_name(line).to_vec())), covered);
        }
        covered = end;
    }
    (None, covered)
}

/// Whether the entries among the complete lines of `buf` are sorted by name, each
/// name once.
fn in_order(buf: &[u8]) -> bool {
    let mut names = lines(buf, 0)
        .filter(|(_, _, line)| is_entry(line))
        .map(|(_, _, line)| entry_name(line));
    let Some(mut last) = names.next() else {
        return true;
    };
    for name in names {
        if name <= last {
            return false;
        }
        last = name;
    }
    true
}

/// The complete lines of `buf` (each with its line break), as (start, end, line)
/// with offsets counted from `base`.
fn lines(buf: &[u8], base: u64) -> impl Iterator<Item = (u64, u64, &[u8])> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let nl = memchr::memchr(b'\n', &buf[start..])?;
        let line = &buf[start..start + nl + 1];
        let at = base + start as u64;
        start += nl + 1;
        Some((at, at + line.len() as u64, line))
    })
}

/// Whether a line of the lock is an entry (as `LockfileText` counts them): not a
/// comment, not blank.
fn is_entry(line: &[u8]) -> bool {
    !line.starts_with(b"#") && !line.iter().all(u8::is_ascii_whitespace)
}

/// An entry line's first field.
fn entry_name(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .position(|b| *b == b' ' || *b == b'\n')
        .unwrap_or(line.len());
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::format::lockfile::{Entry, HEADER, LockfileText, line, sha256_hex};

    /// `locate` over `text` held in memory.
    fn locate_in(text: &str, name: &str) -> Option<Spot> {
        let bytes = text.as_bytes();
        let mut read_at = |offset: u64, buf: &mut [u8]| {
            let from = bytes.len().min(offset as usize);
            let n = buf.len().min(bytes.len() - from);
            buf[..n].copy_from_slice(&bytes[from..from + n]);
            Ok(n)
        };
        locate(&mut read_at, bytes.len() as u64, name).unwrap()
    }

    /// `text` with `name`'s line put where `locate` says, read through windows.
    fn spliced(text: &str, name: &str, entry: &Entry) -> Option<String> {
        let spot = locate_in(text, name)?;
        let (a, b) = (spot.range.start as usize, spot.range.end as usize);
        assert_eq!(spot.is_entry(name), a < b, "{name}: {spot:?}");
        Some(format!("{}{}{}", &text[..a], line(name, entry), &text[b..]))
    }

    fn entry_for(i: usize) -> Entry {
        Entry {
            format: Format::Age,
            sha256: sha256_hex(&i.to_le_bytes()),
            recipients: vec!["SHA256:xPL38ZOF7Yeb".into(), "age13dmzrwuap5l9".into()],
            changed: None,
            seen: Vec::new(),
        }
    }

    /// A lock of `names` (sorted as keys writes them), with the header and
    /// `comments` comment or blank lines after it.
    fn lock_of(names: &std::collections::BTreeSet<String>, comments: usize) -> String {
        let mut text = String::from(HEADER);
        for i in 0..comments {
            text.push_str(if i % 2 == 0 { "# note\n" } else { "\n" });
        }
        for (i, name) in names.iter().enumerate() {
            text.push_str(&line(name, &entry_for(i)));
        }
        text
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        /// Finding a line by windows puts it where reading the whole lock does, in
        /// locks from empty to larger than many windows.
        #[test]
        fn a_line_found_by_windows_goes_where_upsert_puts_it(
            names in proptest::collection::btree_set("[a-c]{1,3}(/[a-c0-9]{1,6}){0,2}", 0..1200),
            comments in 0usize..4,
            pick in proptest::prelude::any::<proptest::sample::Index>(),
            other in "[a-c]{1,3}(/[a-c0-9]{1,6}){0,2}",
            existing in proptest::prelude::any::<bool>(),
        ) {
            let text = lock_of(&names, comments);
            let name = match names.iter().nth(if names.is_empty() { 0 } else { pick.index(names.len()) }) {
                Some(n) if existing => n.clone(),
                _ => other,
            };
            let entry = entry_for(9999);
            let mut want = LockfileText::new(text.clone());
            want.upsert(&name, &entry);
            proptest::prop_assert_eq!(spliced(&text, &name, &entry), Some(want.text().to_string()));
            // The first name at or after a directory's, for nesting.
            let below = format!("{name}/");
            let spot = locate_in(&text, &below).unwrap();
            proptest::prop_assert_eq!(spot.found, names.range(below.clone()..).next().cloned());
        }
    }

    #[test]
    fn a_lock_the_windows_cannot_read_is_left_to_a_whole_read() {
        let names: std::collections::BTreeSet<String> =
            (0..400).map(|i| format!("h/s{i:05}")).collect();
        let text = lock_of(&names, 0);
        // No line break at the end.
        assert_eq!(spliced(text.trim_end(), "h/s00200", &entry_for(1)), None);
        // Lines far longer than a window: where the search lands on one, it gives up;
        // elsewhere it still finds the line where upsert puts it.
        let long = text
            .replacen(
                "h/s00199 age",
                &format!("h/s00199 age{}", " x".repeat(6000)),
                1,
            )
            .replacen(
                "h/s00300 age",
                &format!("h/s00300 age{}", " y".repeat(9000)),
                1,
            );
        let mut gave_up = 0;
        for i in (0..420).step_by(7) {
            let name = format!("h/s{i:05}");
            let mut want = LockfileText::new(long.clone());
            want.upsert(&name, &entry_for(1));
            match spliced(&long, &name, &entry_for(1)) {
                Some(got) => assert_eq!(got, want.text(), "{name}"),
                None => gave_up += 1,
            }
        }
        assert!(gave_up > 0 && gave_up < 60, "{gave_up}");
        // A line added by hand at the end, out of order: read whole.
        let appended = format!("{text}{}", line("a/late", &entry_for(7)));
        assert_eq!(spliced(&appended, "a/late", &entry_for(1)), None);
        assert_eq!(spliced(&appended, "h/s00003", &entry_for(1)), None);
        // An empty file and one with only the header.
        assert_eq!(spliced("", "a", &entry_for(1)), None);
        let header_only = spliced(HEADER, "a", &entry_for(1)).unwrap();
        assert_eq!(header_only, format!("{HEADER}{}", line("a", &entry_for(1))));
    }
}
