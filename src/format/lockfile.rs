//! `secrets/keys.lock`: what every secret was last encrypted to and the hash of the
//! file as written, so `keys check` can tell drift from edits made outside `keys`
//! without any identity (X25519 stanzas do not reveal their recipient); and the life
//! of its value: when it last changed, and the readers taken away since who could
//! read it. One secret per line, sorted, so that merges stay simple.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};
use crate::format::Format;
use crate::layout;
use crate::recipient::short_id;

mod locate;
pub use locate::{LOOK, Spot, locate};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub format: Format,
    /// Lowercase hex SHA-256 of the file as written.
    pub sha256: String,
    /// Sorted short recipient fingerprints (see `short_id`).
    pub recipients: Vec<String>,
    /// When the value last changed (`encrypt`, `edit`, `set`; a rekey does not change
    /// it), to the second; `None` when the lock does not say (written before keys
    /// recorded it).
    pub changed: Option<SystemTime>,
    /// The readers taken away from the secret (by a rekey or a host key rotation)
    /// since its value last changed: each could read the value it has now. Sorted by
    /// id, each once.
    pub seen: Vec<Seen>,
}

/// A reader taken away from a secret that could read its current value: its short
/// fingerprint and, when keys could name it then, the reader as the policy named it
/// (`alice`, `host:web1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub id: String,
    pub label: Option<String>,
}

impl Seen {
    fn parse(text: &str) -> Option<Seen> {
        let (id, label) = match text.strip_suffix(')') {
            Some(rest) => {
                let (id, label) = rest.split_once('(')?;
                (id, Some(label))
            }
            None => (text, None),
        };
        let plain = |t: &str| !t.is_empty() && !t.contains(['(', ')', ',']);
        if !plain(id) || label.is_some_and(|l| !plain(l)) {
            return None;
        }
        Some(Seen {
            id: short_id(id).to_string(),
            label: label.map(str::to_string),
        })
    }
}

impl Entry {
    /// This entry after a rekey to `recipients`: the value and the date it changed
    /// are the same, and every recipient taken away is recorded as having seen the
    /// value (named by `label`, when it can be). A recipient given back is a reader
    /// again, not a removed one.
    pub fn rekeyed(
        &self,
        sha256: String,
        recipients: Vec<String>,
        label: &dyn Fn(&str) -> Option<String>,
    ) -> Entry {
        let mut seen: Vec<Seen> = self
            .seen
            .iter()
            .cloned()
            .chain(
                self.recipients
                    .iter()
                    .filter(|r| !recipients.contains(r))
                    .map(|id| Seen {
                        id: id.clone(),
                        label: label(id),
                    }),
            )
            .filter(|s| !recipients.contains(&s.id))
            .collect();
        // One key once, a record that names it before one that does not.
        seen.sort_by(|a, b| {
            a.id.cmp(&b.id)
                .then(b.label.is_some().cmp(&a.label.is_some()))
        });
        seen.dedup_by(|a, b| a.id == b.id);
        seen.shrink_to_fit();
        Entry {
            format: self.format,
            sha256,
            recipients,
            changed: self.changed,
            seen,
        }
    }
}

/// A date in the lock: RFC 3339 in UTC to the second (`2026-03-01T09:30:00Z`), as keys
/// writes it, or a day alone (`2026-03-01`, its midnight UTC), as one may write it by
/// hand.
pub fn parse_date(text: &str) -> Option<SystemTime> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    humantime::parse_rfc3339(&full).ok()
}

/// Now, to the second, as the lock records when a value changed.
pub fn now() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// The date of a new value replacing one of `previous`: now, or a second after
/// `previous` if that is not past (`keys check` takes an unchanged date for the same value).
pub fn changed_after(previous: Option<SystemTime>) -> SystemTime {
    let now = now();
    match previous {
        Some(p) if p >= now => p + std::time::Duration::from_secs(1),
        _ => now,
    }
}

/// The entry for `name` in `text` (a whole lock, or some of its lines), if it lists
/// it and its line parses; only that line is parsed.
pub fn entry_in(text: &str, name: &str) -> Option<Entry> {
    let line = text.lines().find(|l| l.split(' ').next() == Some(name))?;
    let mut found = None;
    let _ = parse_entries(line, |_, e| {
        found = Some(e);
        Ok(())
    });
    found
}

/// A date as the lock writes it.
pub fn format_date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `keys.lock` parsed: every entry, by secret name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lockfile {
    pub entries: BTreeMap<String, Entry>,
}

const HEADER: &str = "\
# keys.lock: what each secret under secrets/ was last encrypted to. Written by keys.
# One secret per line: NAME FORMAT SHA-256 RECIPIENT,RECIPIENT,...
";

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

// The header is the same as before lines had `changed=` and `seen=`: a lock written
// by an older keys is still as keys writes it, and merges with a newer one's header.
// After the recipients a line may have `changed=DATE` (when its value last changed)
// and `seen=ID(READER),...` (the readers taken away since, who could read it).

impl Lockfile {
    /// Parses the lock file's text; errors name `secrets/keys.lock` and the line.
    pub fn parse(text: &str) -> Result<Lockfile> {
        // The map is built at once from every entry: built so its nodes are full,
        // where one grown by an insert per line leaves them about half full.
        let mut entries = Vec::new();
        parse_entries(text, |name, entry| {
            entries.push((name.to_string(), entry));
            Ok(())
        })?;
        Ok(Lockfile {
            entries: entries.into_iter().collect(),
        })
    }

    /// The lock's text as `keys` writes it, in one allocation of its exact size (a
    /// large fleet's lock is held beside every file a rekey read).
    pub fn render(&self) -> String {
        let mut size = Count(HEADER.len());
        for (name, e) in &self.entries {
            // Counting cannot fail.
            let _ = write_line(&mut size, name, e);
        }
        let mut out = String::with_capacity(size.0);
        out.push_str(HEADER);
        for (name, e) in &self.entries {
            // Writing to a String cannot fail.
            let _ = write_line(&mut out, name, e);
        }
        out
    }

    /// Writes the lock's text, as `render` returns it, to `out` line by line: a large
    /// fleet's lock is not held whole in memory a second time.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(HEADER.as_bytes())?;
        let mut line = String::new();
        for (name, e) in &self.entries {
            line.clear();
            // Writing to a String cannot fail.
            let _ = write_line(&mut line, name, e);
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

/// Each entry of the lock's text, given to `each` in the order of its lines as it is
/// parsed, one line at a time; errors as `Lockfile::parse` reports them (the first
/// line in error, or the first error of `each`).
pub fn parse_entries<'a>(
    text: &'a str,
    mut each: impl FnMut(&'a str, Entry) -> Result<()>,
) -> Result<()> {
    // While the names come in order, as keys writes them, a name given twice is the
    // one before it; from the first name out of order on, every name is looked up.
    let mut last: Option<&str> = None;
    let mut names: Option<HashSet<&str>> = None;
    for (i, line) in text.lines().enumerate() {
        let at = || Location::named(layout::LOCKFILE).at_line(i as u64 + 1);
        let bad = |reason: &str| Error::InvalidFile {
            at: at(),
            reason: reason.to_string(),
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(' ');
        let (Some(name), Some(format), Some(sha), Some(recipients)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad(
                "expected NAME FORMAT SHA-256 RECIPIENTS separated by single spaces",
            ));
        };
        if let Err(reason) = layout::check_secret_name(name) {
            return Err(bad(&format!("invalid secret name: {reason}")));
        }
        let format = Format::from_name(format).ok_or_else(|| bad("unknown format"))?;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the hash is not 64 hex digits"));
        }
        let mut list = Vec::with_capacity(4);
        list.extend(recipients.split(',').map(|r| short_id(r).to_string()));
        let recipients = list;
        if recipients.iter().any(String::is_empty) {
            return Err(bad("an empty recipient"));
        }
        let (mut changed, mut seen) = (None, None);
        for field in fields {
            match field.split_once('=') {
                Some(("changed", date)) if changed.is_none() => {
                    changed = Some(parse_date(date).ok_or_else(|| {
                        bad(&format!(
                            "changed={date} is not a date such as 2026-03-01 or 2026-03-01T09:30:00Z"
                        ))
                    })?);
                }
                Some(("seen", list)) if seen.is_none() => {
                    let mut list = list
                        .split(',')
                        .map(Seen::parse)
                        .collect::<Option<Vec<Seen>>>()
                        .ok_or_else(|| {
                            bad("seen= is not a list of ID or ID(READER) separated by commas")
                        })?;
                    list.sort();
                    list.dedup_by(|a, b| a.id == b.id);
                    list.shrink_to_fit();
                    seen = Some(list);
                }
                Some((key @ ("changed" | "seen"), _)) => {
                    return Err(bad(&format!("{key}= is given twice")));
                }
                _ => {
                    return Err(bad(&format!(
                        "unexpected {field:?} after the recipients (expected changed=DATE or seen=ID,...)"
                    )));
                }
            }
        }
        let entry = Entry {
            format,
            sha256: sha.to_ascii_lowercase(),
            recipients,
            changed,
            seen: seen.unwrap_or_default(),
        };
        let twice = match &mut names {
            Some(names) => !names.insert(name),
            None if last.is_some_and(|last| name <= last) => {
                let mut all: HashSet<&str> = text.lines().take(i).filter_map(parsed_name).collect();
                let twice = !all.insert(name);
                names = Some(all);
                twice
            }
            None => false,
        };
        if twice {
            return Err(bad(&format!("{name} is listed twice")));
        }
        last = Some(name);
        each(name, entry)?;
    }
    Ok(())
}

/// Whether `text` is exactly what `Lockfile::render` writes for the lock it parses to,
/// found a line at a time without parsing it whole: the header, then each entry's line
/// as keys writes it, the names in order, nothing else.
pub fn is_as_written(text: &str) -> bool {
    entries_as_written(text).is_some()
}

/// Each entry of `text` in the order of its lines, when `text` is as written
/// (`is_as_written`); its lines are read on every core.
pub fn entries_as_written(text: &str) -> Option<Vec<(&str, Entry)>> {
    use rayon::prelude::*;
    let body = text.strip_prefix(HEADER)?;
    let entries: Vec<(&str, Entry)> = body
        .par_split_inclusive('\n')
        .map_init(String::new, |rendered, line| {
            line_as_written(line, rendered)
        })
        .collect::<Option<_>>()?;
    entries
        .windows(2)
        .all(|pair| pair[0].0 < pair[1].0)
        .then_some(entries)
}

/// The entry of `line` (with its line break), if `line` is one as keys writes it;
/// `rendered` is room to write it again in.
fn line_as_written<'a>(line: &'a str, rendered: &mut String) -> Option<(&'a str, Entry)> {
    let mut found = None;
    parse_entries(line, |name, entry| {
        found = Some((name, entry));
        Ok(())
    })
    .ok()?;
    let (name, entry) = found?;
    rendered.clear();
    let _ = write_line(rendered, name, &entry);
    (rendered == line).then_some((name, entry))
}

/// The name a line of the lock gives an entry, if it is an entry's line (as `parse`
/// reads them).
fn parsed_name(line: &str) -> Option<&str> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    line.split(' ').next()
}

/// A `fmt::Write` that only counts the bytes written to it.
struct Count(usize);

impl std::fmt::Write for Count {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// A three-way merge of lock files, entry by entry: an entry changed (or added, or
/// removed) on one side only takes that side; the same change on both sides is taken
/// once; different changes to one secret are a conflict, written between git's
/// conflict markers so the merged file does not parse until it is resolved. Returns the
/// merged text and the names in conflict.
pub fn merge3(base: &Lockfile, ours: &Lockfile, theirs: &Lockfile) -> (String, Vec<String>) {
    let names: std::collections::BTreeSet<&String> = base
        .entries
        .keys()
        .chain(ours.entries.keys())
        .chain(theirs.entries.keys())
        .collect();
    let mut out = String::from(HEADER);
    let mut conflicts = Vec::new();
    for name in names {
        let (o, a, b) = (
            base.entries.get(name),
            ours.entries.get(name),
            theirs.entries.get(name),
        );
        let take = if a == b || b == o {
            a
        } else if a == o {
            b
        } else {
            conflicts.push(name.clone());
            out.push_str("<<<<<<< ours\n");
            out.push_str(&a.map(|e| line(name, e)).unwrap_or_default());
            out.push_str("=======\n");
            out.push_str(&b.map(|e| line(name, e)).unwrap_or_default());
            out.push_str(">>>>>>> theirs\n");
            continue;
        };
        if let Some(e) = take {
            out.push_str(&line(name, e));
        }
    }
    (out, conflicts)
}

/// One entry's line, with its newline.
/// The line `keys` writes for `name`.
pub fn line(name: &str, e: &Entry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_line(&mut out, name, e);
    out
}

/// The line a new value of `name` most likely gets, read off `neighbour`, the line
/// of the secret beside it in the lock: the same format and recipients (secrets side
/// by side mostly share a rule), a hash of zeros, changed now. A copy of the lock can
/// be staged with it before the policy is read, and the line written over it once it
/// is known, when it has the same length. `None` when `neighbour` is no entry.
pub fn likely_line(name: &str, neighbour: &str) -> Option<String> {
    let found = neighbour.split(' ').next()?;
    let beside = entry_in(neighbour, found)?;
    Some(line(
        name,
        &Entry {
            format: beside.format,
            sha256: "0".repeat(HASH_LEN),
            recipients: beside.recipients,
            changed: Some(now()),
            seen: Vec::new(),
        },
    ))
}

/// How long the SHA-256 field is: 64 hex digits. A line with a placeholder of this
/// length has the length of the line with the hash, which can be written over it.
pub const HASH_LEN: usize = 64;

/// Writes the line `keys` writes for `name`, with its newline, to `out`.
fn write_line(out: &mut impl std::fmt::Write, name: &str, e: &Entry) -> std::fmt::Result {
    out.write_str(name)?;
    out.write_char(' ')?;
    write_fields(out, e)?;
    out.write_char('\n')
}

/// One entry's line without its name and newline: `FORMAT SHA-256 RECIPIENTS`, then
/// `changed=` and `seen=` when they say something.
pub fn fields(e: &Entry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_fields(&mut out, e);
    out
}

/// Writes `fields` to `out`; each reader seen is `ID` or `ID(LABEL)`.
fn write_fields(out: &mut impl std::fmt::Write, e: &Entry) -> std::fmt::Result {
    out.write_str(e.format.name())?;
    out.write_char(' ')?;
    out.write_str(&e.sha256)?;
    for (i, r) in e.recipients.iter().enumerate() {
        out.write_str(if i == 0 { " " } else { "," })?;
        out.write_str(r)?;
    }
    if e.recipients.is_empty() {
        out.write_char(' ')?;
    }
    if let Some(t) = e.changed {
        write!(out, " changed={}", humantime::format_rfc3339_seconds(t))?;
    }
    for (i, s) in e.seen.iter().enumerate() {
        out.write_str(if i == 0 { " seen=" } else { "," })?;
        out.write_str(&s.id)?;
        if let Some(label) = &s.label {
            write!(out, "({label})")?;
        }
    }
    Ok(())
}

/// The lock file as text, for commands that change one entry: lines are found by their
/// first field, and the others are kept as they are without being parsed (a large
/// fleet's lock file is mostly untouched). `keys check` parses and validates it all.
pub struct LockfileText {
    text: String,
}

impl LockfileText {
    pub fn new(text: String) -> LockfileText {
        LockfileText { text }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    /// Entry lines as (name, byte range of the whole line).
    fn entries(&self) -> impl Iterator<Item = (&str, std::ops::Range<usize>)> {
        let mut start = 0;
        self.text.split_inclusive('\n').filter_map(move |l| {
            let range = start..start + l.len();
            start += l.len();
            if l.starts_with('#') || l.trim().is_empty() {
                return None;
            }
            let name = l.split([' ', '\n']).next().unwrap_or("");
            Some((name, range))
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries().map(|(n, _)| n)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// Replaces `name`'s line wherever it is, or inserts it before the first name that
    /// sorts after it.
    pub fn upsert(&mut self, name: &str, entry: &Entry) {
        let new = line(name, entry);
        if self.text.is_empty() {
            self.text.push_str(HEADER);
        } else if !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        let found = match self.entries().find(|(n, _)| *n == name) {
            Some((_, r)) => Some((true, r)),
            None => self
                .entries()
                .find(|(n, _)| *n > name)
                .map(|(_, r)| (false, r)),
        };
        match found {
            Some((true, r)) => self.text.replace_range(r, &new),
            Some((false, r)) => self.text.insert_str(r.start, &new),
            None => self.text.push_str(&new),
        }
    }

    /// Removes `name`'s line; false if there was none.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some((_, r)) = self.entries().find(|(n, _)| *n == name) else {
            return false;
        };
        self.text.replace_range(r, "");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_value_is_dated_after_the_one_it_replaces() {
        let now = now();
        assert_eq!(changed_after(None), now);
        let past = now - std::time::Duration::from_secs(60);
        assert_eq!(changed_after(Some(past)), now);
        // Replaced within the same second, or after a clock set back: a second later.
        let second = std::time::Duration::from_secs(1);
        assert_eq!(changed_after(Some(now)), now + second);
        let ahead = now + 10 * second;
        assert_eq!(changed_after(Some(ahead)), ahead + second);
    }

    #[test]
    fn round_trips_sorted_one_line_per_secret() {
        let mut lock = Lockfile::default();
        for name in ["z/last", "a/first"] {
            lock.entries.insert(
                name.into(),
                Entry {
                    format: Format::Age,
                    sha256: sha256_hex(name.as_bytes()),
                    recipients: vec!["SHA256:x".into(), "age1y".into()],
                    changed: None,
                    seen: Vec::new(),
                },
            );
        }
        let text = lock.render();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("a/first age "));
        assert_eq!(Lockfile::parse(&text).unwrap(), lock);
    }

    /// A fleet's lock: every kind of field, in every combination.
    fn fleet_lock(n: u32) -> Lockfile {
        let mut lock = Lockfile::default();
        for i in 0..n {
            let seen = (0..i % 4)
                .map(|k| Seen {
                    id: format!("age1seen{k}"),
                    label: (k % 2 == 0).then(|| format!("host:h{k}")),
                })
                .collect();
            lock.entries.insert(
                format!("h{:02}/s{i:05}", i % 20),
                Entry {
                    format: if i % 3 == 0 {
                        Format::SopsYaml
                    } else {
                        Format::Age
                    },
                    sha256: sha256_hex(&i.to_le_bytes()),
                    recipients: (0..1 + i % 4).map(|r| format!("age1r{r}")).collect(),
                    changed: (i % 2 == 0).then(|| parse_date("2026-03-01").unwrap()),
                    seen,
                },
            );
        }
        lock
    }

    #[test]
    fn a_large_lock_renders_in_one_allocation_of_its_size() {
        let lock = fleet_lock(2_000);
        let text = lock.render();
        // Nothing grown by doubling: no spare capacity, no copies left behind.
        assert_eq!(text.capacity(), text.len());
        assert_eq!(Lockfile::parse(&text).unwrap(), lock);
        let mut written = Vec::new();
        lock.write_to(&mut written).unwrap();
        assert_eq!(written, text.as_bytes());
        for (i, e) in &lock.entries {
            assert!(text.contains(&line(i, e)));
        }
    }

    #[test]
    fn as_written_is_render_compared_line_by_line() {
        let lock = fleet_lock(50);
        let text = lock.render();
        assert!(is_as_written(&text));
        assert!(is_as_written(HEADER));
        assert!(!is_as_written(""));
        let last = text.lines().last().unwrap();
        let as_render = |t: &str| Lockfile::parse(t).is_ok_and(|l| l.render() == t);
        // Still as keys writes it: a line fewer, another recipient.
        for same in [
            text.strip_suffix(&format!("{last}\n")).unwrap().to_string(),
            text.replacen("age1r0", "age1r9", 1),
        ] {
            assert!(as_render(&same) && is_as_written(&same), "{same}");
        }
        for other in [
            // A line twice, no newline at the end, the header of an older keys.
            format!("{text}{last}\n"),
            text.strip_suffix('\n').unwrap().to_string(),
            text.replacen("# keys.lock", "# keys lock", 1),
            // A comment or a blank line among the entries, a line that does not parse.
            format!("{text}# note\n"),
            format!("{text}\n"),
            format!("{text}zz age abc x\n"),
            // Two lines swapped; a full fingerprint where keys writes a short one.
            {
                let mut lines: Vec<&str> = text.lines().collect();
                let n = lines.len();
                lines.swap(n - 1, n - 2);
                lines.join("\n") + "\n"
            },
            text.replacen(" age1r0", " age1r0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1),
        ] {
            assert!(!as_render(&other), "{other}");
            assert!(!is_as_written(&other), "{other}");
        }
    }

    #[test]
    fn a_name_listed_twice_is_found_in_and_out_of_order() {
        let sha = "0".repeat(64);
        let entry = |name: &str| format!("{name} age {sha} x\n");
        for (names, want) in [
            (
                vec!["a", "b", "b"],
                "secrets/keys.lock:3: b is listed twice",
            ),
            (
                vec!["b", "a", "b"],
                "secrets/keys.lock:3: b is listed twice",
            ),
            (
                vec!["c", "a", "b", "c"],
                "secrets/keys.lock:4: c is listed twice",
            ),
            (
                vec!["a", "c", "b", "a"],
                "secrets/keys.lock:4: a is listed twice",
            ),
        ] {
            let text: String = names.iter().map(|n| entry(n)).collect();
            let e = Lockfile::parse(&text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{names:?}: {e}");
        }
        // The first line in error is named, whatever is wrong with a later one.
        let text = format!("{}{}a tar {sha} x\n", entry("b"), entry("b"));
        let e = Lockfile::parse(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("secrets/keys.lock:2: b is listed twice"),
            "{e}"
        );
        // Out of order but each once: parsed, and rendered in order.
        let text: String = ["c", "a", "b"].iter().map(|n| entry(n)).collect();
        let lock = Lockfile::parse(&text).unwrap();
        let names: Vec<&str> = lock.entries.keys().map(String::as_str).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(!is_as_written(&format!("{HEADER}{text}")));
    }

    #[test]
    fn text_edits_agree_with_the_parsed_lock() {
        let entry = |i: u8| Entry {
            format: Format::Age,
            sha256: sha256_hex(&[i]),
            recipients: vec![format!("age1r{i}")],
            changed: None,
            seen: Vec::new(),
        };
        let mut lock = Lockfile::default();
        let mut text = LockfileText::new(String::new());
        for (i, name) in ["m/b", "a", "z/z", "m/a", "m/b"].into_iter().enumerate() {
            lock.entries.insert(name.into(), entry(i as u8));
            text.upsert(name, &entry(i as u8));
            assert_eq!(text.text(), lock.render(), "after {name}");
        }
        assert!(text.contains("m/a") && !text.contains("m"));
        assert!(text.remove("m/a"));
        assert!(!text.remove("m/a"));
        lock.entries.remove("m/a");
        assert_eq!(text.text(), lock.render());
        assert_eq!(text.names().collect::<Vec<_>>(), ["a", "m/b", "z/z"]);
    }

    #[test]
    fn short_ids_keep_the_kind_and_twelve_characters_of_key_data() {
        for (full, short) in [
            (
                "age1t9jzmsuj2txxh6q5857skvch8drp4r8h4kxxvfll33nfany4wftq72qkyu",
                "age1t9jzmsuj2txx",
            ),
            (
                "age1yubikey1qwf7n3r8uynm6zth6gd8y6hvvz8wyp9wvxd6hmvq8m0s5xk4p7xlyq3l4g8",
                "age1yubikey1qwf7n3r8uynm",
            ),
            (
                "SHA256:6Iqic8mNT1vFtzqKH87gEey2As1mzRvRmw68Vc16RcE",
                "SHA256:6Iqic8mNT1vF",
            ),
            // Already short, or not a fingerprint at all: kept as they are.
            ("age1t9jzmsuj2txx", "age1t9jzmsuj2txx"),
            ("SHA256:6Iq", "SHA256:6Iq"),
            ("x", "x"),
            ("1xéééééééé", "1xéééééééé"),
            // A transit key's: 12 hex digits of its URL's SHA-256, a `1` among them
            // or not.
            (
                "transit:2876f927c8a01d4fa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3",
                "transit:2876f927c8a0",
            ),
            (
                "transit:11111111111111111111111111111111",
                "transit:111111111111",
            ),
        ] {
            assert_eq!(short_id(full), short, "{full}");
            assert_eq!(short_id(short), short, "{short} is stable");
        }
    }

    #[test]
    fn an_older_lock_with_full_fingerprints_reads_as_its_short_form() {
        let sha = sha256_hex(b"x");
        let old = format!(
            "a age {sha} SHA256:6Iqic8mNT1vFtzqKH87gEey2As1mzRvRmw68Vc16RcE,age1t9jzmsuj2txxh6q5857skvch8drp4r8h4kxxvfll33nfany4wftq72qkyu\n"
        );
        let lock = Lockfile::parse(&old).unwrap();
        assert_eq!(
            lock.entries["a"].recipients,
            ["SHA256:6Iqic8mNT1vF", "age1t9jzmsuj2txx"]
        );
        assert!(lock.render().ends_with(&format!(
            "a age {sha} SHA256:6Iqic8mNT1vF,age1t9jzmsuj2txx\n"
        )));
    }

    #[test]
    fn the_hash_goes_where_its_placeholder_was_in_every_format() {
        for format in Format::ALL {
            for name in ["a", "bot/telegram-token", "h00/new12"] {
                let e = Entry {
                    format,
                    sha256: sha256_hex(name.as_bytes()),
                    recipients: vec!["age1a".into(), "SHA256:6Iqic8mNT1vF".into()],
                    changed: Some(now()),
                    seen: Vec::new(),
                };
                let line = line(name, &e);
                let placeholder = super::line(
                    name,
                    &Entry {
                        sha256: "0".repeat(HASH_LEN),
                        ..e.clone()
                    },
                );
                assert_eq!(line.len(), placeholder.len(), "{line}");
                let at = placeholder.find(&"0".repeat(HASH_LEN)).unwrap();
                assert_eq!(&line[at..at + HASH_LEN], e.sha256, "{line}");
            }
        }
    }

    #[test]
    fn the_likely_line_is_its_neighbour_s_fields_for_a_new_value() {
        let sha = sha256_hex(b"x");
        let beside = format!(
            "bot/b age {sha} SHA256:6Iqic8mNT1vF,age1t9jzmsuj2txx changed=2026-03-01T09:30:00Z seen=age1zzzzzzzzzzzz"
        );
        let guess = likely_line("bot/a", &beside).unwrap();
        let real = line(
            "bot/a",
            &Entry {
                format: Format::Age,
                sha256: sha,
                recipients: vec!["SHA256:6Iqic8mNT1vF".into(), "age1t9jzmsuj2txx".into()],
                changed: Some(now()),
                seen: Vec::new(),
            },
        );
        assert_eq!(guess.len(), real.len());
        assert!(guess.starts_with(&format!("bot/a age {} SHA256:", "0".repeat(HASH_LEN))));
        assert_eq!(likely_line("bot/a", "# a comment"), None);
        assert_eq!(likely_line("bot/a", ""), None);
    }

    #[test]
    fn the_life_of_a_value_round_trips_on_its_one_line() {
        let sha = sha256_hex(b"x");
        let text = format!(
            "{HEADER}a age {sha} age1a changed=2026-03-01T09:30:00Z seen=SHA256:6Iqic8mNT1vFtzq(host:web),age1t9jzmsuj2txx\nb age {sha} age1a changed=2026-03-01\n"
        );
        let lock = Lockfile::parse(&text).unwrap();
        let a = &lock.entries["a"];
        assert_eq!(a.changed, parse_date("2026-03-01T09:30:00Z"));
        assert_eq!(
            a.seen,
            [
                Seen {
                    id: "SHA256:6Iqic8mNT1vF".into(),
                    label: Some("host:web".into())
                },
                Seen {
                    id: "age1t9jzmsuj2txx".into(),
                    label: None
                }
            ]
        );
        // A day alone is its midnight UTC, written in full from then on.
        assert_eq!(
            lock.entries["b"].changed,
            parse_date("2026-03-01T00:00:00Z")
        );
        let rendered = lock.render();
        assert!(rendered.contains(&format!(
            "a age {sha} age1a changed=2026-03-01T09:30:00Z seen=SHA256:6Iqic8mNT1vF(host:web),age1t9jzmsuj2txx\n"
        )));
        assert!(rendered.contains(&format!("b age {sha} age1a changed=2026-03-01T00:00:00Z\n")));
        assert_eq!(Lockfile::parse(&rendered).unwrap(), lock);
    }

    #[test]
    fn a_rekey_keeps_the_date_and_records_the_readers_taken_away() {
        let when = parse_date("2026-03-01");
        let old = Entry {
            format: Format::Age,
            sha256: sha256_hex(b"1"),
            recipients: vec!["age1a".into(), "age1b".into(), "age1c".into()],
            changed: when,
            seen: vec![Seen {
                id: "age1z".into(),
                label: None,
            }],
        };
        let named = |id: &str| (id == "age1b").then(|| "host:b".to_string());
        let new = old.rekeyed(
            sha256_hex(b"2"),
            vec!["age1a".into(), "age1z".into()],
            &named,
        );
        assert_eq!(new.changed, when);
        assert_eq!(new.sha256, sha256_hex(b"2"));
        // b and c were taken away; z, given back, reads it again.
        assert_eq!(
            new.seen,
            [
                Seen {
                    id: "age1b".into(),
                    label: Some("host:b".into())
                },
                Seen {
                    id: "age1c".into(),
                    label: None
                }
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let sha = "0".repeat(64);
        for (text, want) in [
            (format!("a age {sha}\n"), "secrets/keys.lock:1: expected"),
            (
                format!("# c\n../a age {sha} x\n"),
                "secrets/keys.lock:2: invalid secret name",
            ),
            (
                format!("a tar {sha} x\n"),
                "secrets/keys.lock:1: unknown format",
            ),
            ("a age abc x\n".to_string(), "secrets/keys.lock:1: the hash"),
            (
                format!("a age {sha} x,,y\n"),
                "secrets/keys.lock:1: an empty",
            ),
            (
                format!("a age {sha} x\na age {sha} x\n"),
                "secrets/keys.lock:2: a is listed twice",
            ),
            (
                format!("# c\na age {sha} x changed=yesterday\n"),
                "secrets/keys.lock:2: changed=yesterday is not a date",
            ),
            (
                format!("a age {sha} x changed=2026-02-30\n"),
                "secrets/keys.lock:1: changed=2026-02-30 is not a date",
            ),
            (
                format!("a age {sha} x changed=2026-01-01 changed=2026-01-02\n"),
                "secrets/keys.lock:1: changed= is given twice",
            ),
            (
                format!("a age {sha} x seen=a(b\n"),
                "secrets/keys.lock:1: seen= is not a list",
            ),
            (
                format!("a age {sha} x seen=a,,b\n"),
                "secrets/keys.lock:1: seen= is not a list",
            ),
            (
                format!("a age {sha} x extra\n"),
                "secrets/keys.lock:1: unexpected \"extra\"",
            ),
        ] {
            let err = Lockfile::parse(&text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
