//! Policy files changed as text, so their comments, order and layout stay: a rule
//! appended to `rules:`, a member added to or removed from a group, a group made.
//! Only the block and one-line flow layouts a person writes are edited; anything
//! else is refused with the reason. Whoever edits loads the result with the real
//! loader before writing it.

/// A rule to append, as the command line gives it.
pub struct NewRule<'a> {
    pub glob: &'a str,
    pub format: &'a str,
    pub readers: &'a [String],
}

/// A text cut into lines, each with its line ending.
struct Lines<'a> {
    lines: Vec<&'a str>,
    /// The line ending new lines get: the file's own.
    eol: &'static str,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            lines: text.split_inclusive('\n').collect(),
            eol: if text.contains("\r\n") { "\r\n" } else { "\n" },
        }
    }

    /// The top-level key `key:` line, and what follows the colon on it.
    fn key(&self, key: &str) -> Option<(usize, &'a str)> {
        self.lines.iter().enumerate().find_map(|(i, l)| {
            let rest = l.strip_prefix(key)?.trim_start_matches([' ', '\t']);
            rest.strip_prefix(':').map(|v| (i, v))
        })
    }

    /// The lines after line `at` that belong to its block: up to the next line at
    /// the left margin that is not a comment, blank or a `- ` item.
    fn block(&self, at: usize) -> std::ops::Range<usize> {
        let end = self.lines[at + 1..]
            .iter()
            .position(|l| top_level(l))
            .map_or(self.lines.len(), |n| at + 1 + n);
        at + 1..end
    }

    /// The text with `new` put in place of lines `range`.
    fn splice(&self, range: std::ops::Range<usize>, new: &str) -> String {
        let mut out = String::new();
        for l in &self.lines[..range.start] {
            out.push_str(l);
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(self.eol);
        }
        out.push_str(new);
        for l in &self.lines[range.end..] {
            out.push_str(l);
        }
        out
    }
}

/// Whether a line starts something at the left margin (a key, a document marker):
/// not blank, not a comment, not a sequence item.
fn top_level(line: &str) -> bool {
    match line.chars().next() {
        None | Some(' ' | '\t' | '#' | '\r' | '\n') => false,
        Some('-') => line.starts_with("---") || line.starts_with("-\t"),
        Some(_) => true,
    }
}

/// A line's content without its line ending, and whether it holds anything but
/// blanks and a comment.
fn content(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A value on a key's line, split from its trailing comment (` # …`).
fn value_and_comment(rest: &str) -> (&str, &str) {
    let rest = content(rest);
    let mut quote: Option<char> = None;
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i == 0 || rest[..i].ends_with([' ', '\t']) => {
                return (rest[..i].trim(), &rest[i..]);
            }
            _ => {}
        }
    }
    (rest.trim(), "")
}

/// A scalar as a policy file writes it: plain when it is one word YAML reads as
/// that string, else double-quoted.
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+@:/-".contains(c))
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !matches!(
            text,
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && text.parse::<f64>().is_err();
    if plain {
        text.to_string()
    } else {
        quoted(text)
    }
}

fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A one-line flow list's items as written (`[a, "b"]`), or `None` when the value is
/// not one.
fn flow_items(value: &str) -> Option<Vec<&str>> {
    let inner = value.strip_prefix('[')?.strip_suffix(']')?;
    if inner.contains(['[', ']', '{', '}', '#']) {
        return None;
    }
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    Some(inner.split(',').map(str::trim).collect())
}

/// A key's line whose one-line flow list holds `items` instead: everything else on
/// it (the spacing, a comment) as it was.
fn with_flow_items(line: &str, items: &[impl AsRef<str>]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    let colon = line.find(':').unwrap_or(0);
    match (line[colon..].find('['), line[colon..].find(']')) {
        (Some(open), Some(close)) => format!(
            "{}{}{}",
            &line[..colon + open + 1],
            items.join(", "),
            &line[colon + close..]
        ),
        // A block list left empty: `[]` after the colon.
        _ => format!(
            "{} [{}]{}",
            &line[..colon + 1],
            items.join(", "),
            &line[colon + 1..]
        ),
    }
}

/// A key's line without the empty collection (`[]`, `{}`) written on it, its
/// comment kept where it was.
fn without_empty(line: &str, empty: &str) -> String {
    line.replacen(empty, "", 1)
}

/// An item as written, unquoted.
fn unquote(item: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = item.strip_prefix(q).and_then(|i| i.strip_suffix(q)) {
            return inner;
        }
    }
    item
}

/// Appends `rule` to the end of the `rules:` list of a policy file's text (making
/// the list when there is none, or it is `[]`). Returns the new text and the line of
/// the new rule's `secrets:`.
pub fn append_rule(text: &str, rule: &NewRule<'_>) -> Result<(String, u64), String> {
    let lines = Lines::new(text);
    let eol = lines.eol;
    let item = |pad: &str| {
        let readers: Vec<String> = rule.readers.iter().map(|r| scalar(r)).collect();
        format!(
            "{pad}- secrets: {}{eol}{pad}  format: {}{eol}{pad}  readers: [{}]{eol}",
            quoted(rule.glob),
            scalar(rule.format),
            readers.join(", ")
        )
    };
    let line_of = |index: usize| index as u64 + 1;
    let Some((at, rest)) = lines.key("rules") else {
        let new = format!("rules:{eol}{}", item("  "));
        let end = lines.lines.len();
        return Ok((lines.splice(end..end, &new), line_of(end) + 1));
    };
    let (value, comment) = value_and_comment(rest);
    match value {
        "" => {}
        "[]" => {
            let head = without_empty(lines.lines[at], "[]");
            let head = if comment.is_empty() {
                format!("rules:{eol}")
            } else {
                head
            };
            let new = format!("{head}{}", item("  "));
            return Ok((lines.splice(at..at + 1, &new), line_of(at) + 1));
        }
        _ => {
            return Err(format!(
                "its `rules:` is written as {value:?}, which keys does not edit; write the list one rule per `- ` item, or give another file"
            ));
        }
    }
    let block = lines.block(at);
    let items: Vec<usize> = block
        .clone()
        .filter(|&i| {
            let t = lines.lines[i].trim_start_matches(' ');
            t.starts_with("- ") || content(t) == "-"
        })
        .collect();
    let pad = items.first().map_or(2, |&i| indent_of(lines.lines[i]));
    if items.iter().any(|&i| indent_of(lines.lines[i]) < pad) {
        return Err("its `rules:` list is indented unevenly".into());
    }
    // After the last line of the list that holds anything.
    let last = block
        .clone()
        .rev()
        .find(|&i| !is_blank_or_comment(lines.lines[i]))
        .unwrap_or(at);
    let new = item(&" ".repeat(pad));
    Ok((lines.splice(last + 1..last + 1, &new), line_of(last + 1)))
}

/// Where a group's members are written: its key's line, and the members' lines.
struct Group {
    key: usize,
    /// The flow list on the key's line, or the block list's item lines.
    members: Members,
}

enum Members {
    Flow,
    Block(Vec<usize>),
}

/// The group `name` under the top-level `groups:` key; `Ok(None)` when the file
/// has none of that name.
fn find_group(lines: &Lines<'_>, name: &str) -> Result<Option<Group>, String> {
    let Some((at, rest)) = lines.key("groups") else {
        return Ok(None);
    };
    match value_and_comment(rest).0 {
        "" => {}
        "{}" => return Ok(None),
        v => {
            return Err(format!(
                "its `groups:` is written as {v:?}, which keys does not edit; write one group a line"
            ));
        }
    }
    let block = lines.block(at);
    let key_indent = block
        .clone()
        .find(|&i| !is_blank_or_comment(lines.lines[i]))
        .map(|i| indent_of(lines.lines[i]));
    let Some(key_indent) = key_indent else {
        return Ok(None);
    };
    for i in block.clone() {
        let line = lines.lines[i];
        if indent_of(line) != key_indent || is_blank_or_comment(line) {
            continue;
        }
        let t = line.trim_start_matches(' ');
        let Some(rest) = [name.to_string(), quoted(name), format!("'{name}'")]
            .iter()
            .find_map(|k| t.strip_prefix(k.as_str()))
            .and_then(|r| r.trim_start_matches([' ', '\t']).strip_prefix(':'))
        else {
            continue;
        };
        let (value, _) = value_and_comment(rest);
        if !value.is_empty() {
            if flow_items(value).is_none() {
                return Err(format!(
                    "group {name} is written as {value:?}, which keys does not edit; write it as [a, b] or one `- ` item a line"
                ));
            }
            return Ok(Some(Group {
                key: i,
                members: Members::Flow,
            }));
        }
        let items: Vec<usize> = (i + 1..block.end)
            .take_while(|&j| {
                let l = lines.lines[j];
                is_blank_or_comment(l)
                    || indent_of(l) > key_indent
                    || (indent_of(l) == key_indent && l.trim_start().starts_with("- "))
            })
            .filter(|&j| !is_blank_or_comment(lines.lines[j]))
            .collect();
        if items.is_empty()
            || items
                .iter()
                .any(|&j| !lines.lines[j].trim_start().starts_with("- "))
        {
            return Err(format!(
                "group {name} is not a list keys can edit; write it as [a, b] or one `- ` item a line"
            ));
        }
        return Ok(Some(Group {
            key: i,
            members: Members::Block(items),
        }));
    }
    Ok(None)
}

/// The text with `member` added to group `group`; `Ok(None)` when the file has no
/// such group.
pub fn add_member(text: &str, group: &str, member: &str) -> Result<Option<String>, String> {
    let lines = Lines::new(text);
    let Some(g) = find_group(&lines, group)? else {
        return Ok(None);
    };
    let eol = lines.eol;
    let new = match g.members {
        Members::Flow => {
            let line = lines.lines[g.key];
            let colon = line.find(':').unwrap_or(0);
            let (value, _) = value_and_comment(&line[colon + 1..]);
            let mut items: Vec<String> = flow_items(value)
                .unwrap_or_default()
                .into_iter()
                .map(str::to_string)
                .collect();
            items.push(scalar(member));
            lines.splice(g.key..g.key + 1, &with_flow_items(line, &items))
        }
        Members::Block(items) => {
            let last = *items.last().unwrap_or(&g.key);
            let pad = indent_of(lines.lines[items[0]]);
            let new = format!("{}- {}{eol}", " ".repeat(pad), scalar(member));
            lines.splice(last + 1..last + 1, &new)
        }
    };
    Ok(Some(new))
}

/// The text with a group `group` of `members` made under `groups:` (made too, before
/// the first top-level key, when the file has none).
pub fn add_group(text: &str, group: &str, members: &[String]) -> Result<String, String> {
    let lines = Lines::new(text);
    let eol = lines.eol;
    let list: Vec<String> = members.iter().map(|m| scalar(m)).collect();
    let entry = |pad: usize| {
        format!(
            "{}{}: [{}]{eol}",
            " ".repeat(pad),
            scalar(group),
            list.join(", ")
        )
    };
    match lines.key("groups") {
        Some((at, rest)) => {
            let (value, comment) = value_and_comment(rest);
            match value {
                "" => {
                    let pad = lines
                        .block(at)
                        .find(|&i| !is_blank_or_comment(lines.lines[i]))
                        .map_or(2, |i| indent_of(lines.lines[i]).max(1));
                    Ok(lines.splice(at + 1..at + 1, &entry(pad)))
                }
                "{}" => {
                    let head = if comment.is_empty() {
                        format!("groups:{eol}")
                    } else {
                        without_empty(lines.lines[at], "{}")
                    };
                    Ok(lines.splice(at..at + 1, &format!("{head}{}", entry(2))))
                }
                v => Err(format!(
                    "its `groups:` is written as {v:?}, which keys does not edit; write one group a line"
                )),
            }
        }
        None => {
            let first = lines
                .lines
                .iter()
                .position(|l| top_level(l) && !l.starts_with("---"))
                .unwrap_or(lines.lines.len());
            let new = format!("groups:{eol}{}", entry(2));
            Ok(lines.splice(first..first, &new))
        }
    }
}

/// The names of the groups under the top-level `groups:` key, in order.
fn group_names(lines: &Lines<'_>) -> Vec<String> {
    let Some((at, rest)) = lines.key("groups") else {
        return Vec::new();
    };
    if !value_and_comment(rest).0.is_empty() {
        return Vec::new();
    }
    let block = lines.block(at);
    let key_indent = block
        .clone()
        .find(|&i| !is_blank_or_comment(lines.lines[i]))
        .map(|i| indent_of(lines.lines[i]));
    block
        .filter(|&i| {
            let l = lines.lines[i];
            !is_blank_or_comment(l)
                && Some(indent_of(l)) == key_indent
                && !l.trim_start().starts_with("- ")
        })
        .filter_map(|i| {
            let l = lines.lines[i];
            l.find(':').map(|c| unquote(l[..c].trim()).to_string())
        })
        .collect()
}

/// The text with `member` taken out of every group under `groups:` (a list left
/// empty is written `[]`), and the groups it was taken out of.
pub fn remove_member(text: &str, member: &str) -> Result<(String, Vec<String>), String> {
    let mut text = text.to_string();
    let mut changed = Vec::new();
    for name in group_names(&Lines::new(&text)) {
        let lines = Lines::new(&text);
        let Some(g) = find_group(&lines, &name)? else {
            continue;
        };
        let key = lines.lines[g.key];
        let colon = key.find(':').unwrap_or(0);
        let (value, _) = value_and_comment(&key[colon + 1..]);
        let flow_line = |items: &[&str]| with_flow_items(key, items);
        let new = match g.members {
            Members::Flow => {
                let items = flow_items(value).unwrap_or_default();
                let kept: Vec<&str> = items
                    .iter()
                    .copied()
                    .filter(|m| unquote(m) != member)
                    .collect();
                if kept.len() == items.len() {
                    continue;
                }
                lines.splice(g.key..g.key + 1, &flow_line(&kept))
            }
            Members::Block(items) => {
                let gone: Vec<usize> = items
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let item = lines.lines[i].trim_start().trim_start_matches("- ");
                        unquote(value_and_comment(item).0) == member
                    })
                    .collect();
                if gone.is_empty() {
                    continue;
                }
                let mut out = String::new();
                for (i, l) in lines.lines.iter().enumerate() {
                    if i == g.key && gone.len() == items.len() {
                        out.push_str(&flow_line(&[]));
                    } else if !gone.contains(&i) {
                        out.push_str(l);
                    }
                }
                out
            }
        };
        text = new;
        changed.push(name);
    }
    Ok((text, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule<'a>(glob: &'a str, readers: &'a [String]) -> NewRule<'a> {
        NewRule {
            glob,
            format: "age",
            readers,
        }
    }

    #[test]
    fn a_rule_is_appended_after_the_last_and_every_comment_stays() {
        let readers = vec!["admins".to_string(), "host:{host}".to_string()];
        let cases: &[(&str, &str, u64)] = &[
            (
                "# head\ngroups:\n  admins: [a]\nrules:\n  # one\n  - secrets: \"x\"\n    format: age\n    readers: [a]  # who\n\n# the keys\nallow_private_keys: []\n",
                "# head\ngroups:\n  admins: [a]\nrules:\n  # one\n  - secrets: \"x\"\n    format: age\n    readers: [a]  # who\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [admins, \"host:{host}\"]\n\n# the keys\nallow_private_keys: []\n",
                9,
            ),
            (
                "groups:\n  admins: [a]\nrules: []  # none yet\n",
                "groups:\n  admins: [a]\nrules:   # none yet\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [admins, \"host:{host}\"]\n",
                4,
            ),
            (
                "# only groups\ngroups:\n  admins: [a]",
                "# only groups\ngroups:\n  admins: [a]\nrules:\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [admins, \"host:{host}\"]\n",
                5,
            ),
            (
                "rules:\n- secrets: x\n  format: age\n  readers: [a]\n",
                "rules:\n- secrets: x\n  format: age\n  readers: [a]\n- secrets: \"{host}/*\"\n  format: age\n  readers: [admins, \"host:{host}\"]\n",
                5,
            ),
            (
                "rules:\r\n  - secrets: x\r\n    format: age\r\n    readers: [a]\r\n",
                "rules:\r\n  - secrets: x\r\n    format: age\r\n    readers: [a]\r\n  - secrets: \"{host}/*\"\r\n    format: age\r\n    readers: [admins, \"host:{host}\"]\r\n",
                5,
            ),
            (
                "",
                "rules:\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [admins, \"host:{host}\"]\n",
                2,
            ),
        ];
        for (before, after, line) in cases {
            let (text, at) = append_rule(before, &rule("{host}/*", &readers)).unwrap();
            assert_eq!(&text, after, "{before:?}");
            assert_eq!(at, *line, "{before:?}");
            assert_eq!(
                text.lines().nth(*line as usize - 1).map(str::trim),
                Some("- secrets: \"{host}/*\"")
            );
        }
        let err = append_rule("rules: [{secrets: x}]\n", &rule("y", &readers)).unwrap_err();
        assert!(err.starts_with("its `rules:` is written as"), "{err}");
        // What would read as another type, or needs escaping, is quoted.
        let odd = vec!["yes".to_string(), "a b".to_string(), "1.5".to_string()];
        let (text, _) = append_rule("", &rule("a\"\\b", &odd)).unwrap();
        assert!(
            text.contains("- secrets: \"a\\\"\\\\b\"\n    format: age\n    readers: [\"yes\", \"a b\", \"1.5\"]\n"),
            "{text}"
        );
    }

    #[test]
    fn members_are_added_and_removed_in_either_list_layout() {
        let flow = "groups:\n  admins: [a, b]  # the admins\n  ops: []\nrules: []\n";
        assert_eq!(
            add_member(flow, "admins", "c").unwrap().unwrap(),
            "groups:\n  admins: [a, b, c]  # the admins\n  ops: []\nrules: []\n"
        );
        assert_eq!(
            add_member(flow, "ops", "c").unwrap().unwrap(),
            "groups:\n  admins: [a, b]  # the admins\n  ops: [c]\nrules: []\n"
        );
        assert_eq!(add_member(flow, "nope", "c").unwrap(), None);
        assert_eq!(add_member("rules: []\n", "admins", "c").unwrap(), None);
        let block =
            "groups:\n  # who\n  admins:\n    - a  # first\n    # - old\n    - b\n  ops: [a]\n";
        assert_eq!(
            add_member(block, "admins", "c").unwrap().unwrap(),
            "groups:\n  # who\n  admins:\n    - a  # first\n    # - old\n    - b\n    - c\n  ops: [a]\n"
        );
        let (text, groups) = remove_member(block, "a").unwrap();
        assert_eq!(
            text,
            "groups:\n  # who\n  admins:\n    # - old\n    - b\n  ops: []\n"
        );
        assert_eq!(groups, ["admins", "ops"]);
        let (text, groups) = remove_member(flow, "b").unwrap();
        assert_eq!(
            text,
            "groups:\n  admins: [a]  # the admins\n  ops: []\nrules: []\n"
        );
        assert_eq!(groups, ["admins"]);
        assert_eq!(remove_member(flow, "z").unwrap().1, Vec::<String>::new());
        let (text, _) = remove_member("groups:\n  admins:\n    - a\n  ops: [b]\n", "a").unwrap();
        assert_eq!(text, "groups:\n  admins: []\n  ops: [b]\n");
        let err = add_member("groups:\n  admins: {a: 1}\n", "admins", "c").unwrap_err();
        assert!(err.starts_with("group admins is written as"), "{err}");
        let err = add_member("groups: {admins: [a]}\n", "admins", "c").unwrap_err();
        assert!(err.starts_with("its `groups:` is written as"), "{err}");
    }

    #[test]
    fn a_group_is_made_where_a_reader_of_the_file_looks_for_it() {
        let members = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            add_group("# head\nrules: []\n", "admins", &members).unwrap(),
            "# head\ngroups:\n  admins: [a, b]\nrules: []\n"
        );
        assert_eq!(
            add_group("groups:\n    ops: [a]\nrules: []\n", "admins", &members).unwrap(),
            "groups:\n    admins: [a, b]\n    ops: [a]\nrules: []\n"
        );
        assert_eq!(
            add_group("groups: {}  # none\n", "admins", &members).unwrap(),
            "groups:   # none\n  admins: [a, b]\n"
        );
        assert_eq!(
            add_group("", "admins", &members).unwrap(),
            "groups:\n  admins: [a, b]\n"
        );
    }
}
