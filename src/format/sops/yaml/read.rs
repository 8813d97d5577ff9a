//! Reading YAML into the sops document model: the parser's events built into maps
//! and lists, comments placed where sops places them, aliases expanded within a
//! budget, and every refusal naming the line and never the value.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_saphyr::granit_parser::{self as gp, Event, Placement, ScalarStyle};

use super::resolve;
use super::{MAX_ALIAS_BYTES, MAX_DEPTH, MAX_INPUT, invalid};
use crate::error::{Location, Result};
use crate::format::sops::document::{Branches, Item, Value};
use crate::format::sops::text::line_at;

/// A collection being built.
enum Frame {
    Map {
        items: Vec<Item>,
        /// The key read, waiting for its value.
        key: Option<String>,
        keys: HashSet<String>,
    },
    List(Vec<Value>),
}

struct Open {
    frame: Frame,
    /// Column of the collection's first entry, once seen: comments indented at
    /// least this far that close the collection belong to it.
    col: Option<usize>,
    anchor: usize,
    /// For a flow map or list (`{`, `[`), how many comments were pending when it
    /// opened: go-yaml drops the own-line comments inside one that ends with no
    /// entry (sops writes a comment to the right of `{}` there, `{` / `#ENC[…]` / `}`).
    flow_from: Option<usize>,
}

struct Builder<'f> {
    file: &'f str,
    /// The input, and its lines (split at `\n`), 0-based.
    text: &'f str,
    lines: Vec<&'f str>,
    stack: Vec<Open>,
    /// Own-line comments not yet placed, with their column and (1-based) line.
    pending: Vec<(String, usize, usize)>,
    /// The (1-based) line of the last comment in `pending`.
    pending_line: usize,
    /// Whether a collection closed since the last node: the innermost of a run
    /// of closes takes the comments right after its last entry.
    closed: bool,
    /// go-yaml gives the pending comments to what follows them (a blank line ended
    /// the innermost collection's foot, `foot_then_blank`, or `none_kept`): the
    /// collections closing before it take none of them.
    reserved: bool,
    /// Whether the last node read was empty, with no anchor or tag (`k:`, `- `).
    last_empty: bool,
    /// The document's top-level map, once complete.
    root: Option<Vec<Item>>,
    /// Whether the document had a root node at all.
    root_seen: bool,
    branches: Branches,
    anchors: HashMap<usize, (Value, usize)>,
    alias_bytes: usize,
    /// The line of the first `<<` key whose value is not a map or a list of maps.
    scalar_merge: Option<usize>,
    /// The (1-based) line of the last scalar or alias in a list, or flow collection's
    /// end: a comment to the right of a list's dash with none of these before it on
    /// its line follows a bare `- `.
    content_line: usize,
    /// Where in `pending` the comments begin that follow a bare `- ` (the one to its
    /// right and the own-line ones after it), until the dash's node starts: go-yaml
    /// makes them the first entries of a list nested there, and puts them before
    /// any other node.
    after_dash: Option<usize>,
    /// The (1-based) line where a flow collection (`]`, `}`) was the last node to
    /// end: a comment to its right belongs inside it, as go-yaml gives it to that
    /// node and sops makes it the collection's first entry.
    flow_end: Option<usize>,
    /// The anchor of the last node completed (0: none).
    last_anchor: usize,
    /// Whether the last node was the null of a bare `- # c` whose comment was kept
    /// for what follows: closing its list, go-yaml gives that to the enclosing map.
    carried: bool,
    /// A comment to the right of a map's key whose value has not been read: before
    /// that entry, unless the value is an empty one with an anchor or tag.
    right_of_key: Option<String>,
    /// The comment to the right of an empty value with an anchor or tag (`k: &a #
    /// c`), with the depth of its map: go-yaml gives it to the map's next entry,
    /// after the comments below, or to the map itself, before its first entry,
    /// where it has none.
    held_head: Option<(String, usize)>,
    /// A run of comments go-yaml carries past the first node of a list's next entry
    /// (`defer_dedented_run`), until that node is read.
    deferred: Option<Deferred>,
}

/// Comments held for the first node of a list's next entry, or of a block map or
/// list that opened as a map's value.
struct Deferred {
    run: Vec<(String, usize, usize)>,
    /// The depth of that list, or of the collection that opened (its place in the
    /// stack, from 1).
    depth: usize,
    /// Whether the next value it takes is that entry or first node (not yet, while
    /// the entry the run follows is still to be added).
    armed: bool,
}

/// The documents read, and what sops could not read back once written.
pub(super) struct Parsed {
    pub branches: Branches,
    /// The line of the first `<<` key whose value is not a map or a list of maps:
    /// sops writes that key as `!!merge <<`, a merge key, and then refuses the file.
    pub scalar_merge: Option<usize>,
}

/// The YAML documents in `data`, one branch each; `file` names it in errors.
pub(super) fn parse(data: &[u8], file: &str) -> Result<Parsed> {
    let at = || Location::named(file);
    if data.len() > MAX_INPUT {
        return Err(invalid(
            at(),
            format!("larger than {} MiB; refused", MAX_INPUT >> 20),
        ));
    }
    // sops (go-yaml) accepts and drops a UTF-8 byte order mark.
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let text = std::str::from_utf8(data).map_err(|e| {
        invalid(
            at().at_line(line_at(data, e.valid_up_to())),
            "not valid UTF-8",
        )
    })?;
    // go-yaml takes a quoted scalar's lines at any indentation; the parser holds
    // them to the YAML rules. Such a line is indented further and the text read
    // again: a continuation line's leading blanks are not part of the value.
    let mut owned: Option<zeroize::Zeroizing<String>> = None;
    let mut reindented = 0;
    loop {
        let text = owned.as_deref().map_or(text, String::as_str);
        match read_events(text, file) {
            Err(Stop::Underindented(line))
                if reindented < MAX_REINDENTED && reindented * text.len() < REREAD_BYTES =>
            {
                owned = Some(quoted::reindent(text, line));
                reindented += 1;
            }
            Err(Stop::Underindented(line)) => {
                let reason = scan_reason("invalid indentation in multiline quoted scalar");
                return Err(invalid(at().at_line(line as u64), reason));
            }
            Err(Stop::Failed(e)) => return Err(e),
            Ok(parsed) => return Ok(parsed),
        }
    }
}

/// How many under-indented lines of quoted scalars one file may have, and how many
/// bytes may be read again for them, so that a hostile file costs little.
const MAX_REINDENTED: usize = 256;
const REREAD_BYTES: usize = 64 << 20;

/// Why reading events stopped.
enum Stop {
    /// A quoted scalar's line at this (1-based) line is indented too little for the
    /// parser.
    Underindented(usize),
    Failed(crate::error::Error),
}

/// The YAML documents in `text`, one branch each.
fn read_events(text: &str, file: &str) -> std::result::Result<Parsed, Stop> {
    let options = gp::options! {
        emit_comments: true,
        max_buffered_comment_events: 100_000,
        block_nesting_limit: MAX_DEPTH + 8,
        flow_nesting_limit: MAX_DEPTH + 8,
    };
    let mut builder = Builder {
        file,
        text,
        lines: text.split('\n').collect(),
        stack: Vec::new(),
        pending: Vec::new(),
        pending_line: 0,
        closed: false,
        reserved: false,
        last_empty: false,
        root: None,
        root_seen: false,
        branches: Vec::new(),
        anchors: HashMap::new(),
        alias_bytes: 0,
        scalar_merge: None,
        content_line: 0,
        after_dash: None,
        flow_end: None,
        last_anchor: 0,
        carried: false,
        right_of_key: None,
        held_head: None,
        deferred: None,
    };
    for event in gp::Parser::new_from_str_with_options(text, options) {
        let (event, span) = event.map_err(|e| match e.kind() {
            gp::ErrorKind::InvalidQuotedScalarIndent => Stop::Underindented(e.marker().line()),
            _ => Stop::Failed(invalid(
                Location::named(file).at_line(e.marker().line() as u64),
                scan_reason(&e.info()),
            )),
        })?;
        builder.event(event, span).map_err(Stop::Failed)?;
    }
    Ok(Parsed {
        branches: builder.branches,
        scalar_merge: builder.scalar_merge,
    })
}

impl Frame {
    /// Whether the collection has an entry yet (a key or an item, not only comments).
    fn has_entries(&self) -> bool {
        match self {
            Frame::Map { items, .. } => has_pairs(items),
            Frame::List(values) => has_values(values),
        }
    }

    /// Adds the comment `text` after what the collection holds.
    fn push_comment(&mut self, text: String) {
        match self {
            Frame::Map { items, .. } => items.push(Item::Comment(text)),
            Frame::List(values) => values.push(Value::Comment(text)),
        }
    }

    /// Appends own-line comments (with their column and line) in order.
    fn push_comments(&mut self, comments: impl IntoIterator<Item = (String, usize, usize)>) {
        for (text, ..) in comments {
            self.push_comment(text)
        }
    }
}

fn has_pairs(items: &[Item]) -> bool {
    items.iter().any(|i| matches!(i, Item::Pair(..)))
}

fn has_values(values: &[Value]) -> bool {
    values.iter().any(|v| !matches!(v, Value::Comment(_)))
}

/// Puts the comment `text` first in the map or list `value`.
fn first_comment(value: &mut Value, text: String) {
    match value {
        Value::Map(items) => items.insert(0, Item::Comment(text)),
        Value::List(items) => items.insert(0, Value::Comment(text)),
        _ => {}
    }
}

/// Whether `value` is a map or list with an entry (not only comments).
fn has_entries(value: &Value) -> bool {
    match value {
        Value::Map(items) => has_pairs(items),
        Value::List(values) => has_values(values),
        _ => false,
    }
}

/// The characters go-yaml (YAML 1.1) takes for line breaks beside `\n` and `\r`.
const GO_BREAKS: [char; 3] = ['\u{85}', '\u{2028}', '\u{2029}'];

/// A quoted scalar's text (quotes included) read as go-yaml's `scan_flow_scalar`
/// reads it: blanks around a line break dropped, a `\n` (or NEL, or CR) folded
/// to a space unless more breaks follow, U+2028 and U+2029 kept as they are.
/// `None` for an escape it does not know (the parser already accepted the text).
fn go_flow_scalar(raw: &str) -> Option<String> {
    let chars: Vec<char> = raw.chars().collect();
    let quote = *chars.first()?;
    let single = quote == '\'';
    let is_break = |c: char| matches!(c, '\n' | '\r') || GO_BREAKS.contains(&c);
    let blank = |c: char| c == ' ' || c == '\t';
    let mut s = String::new();
    let mut i = 1;
    // go-yaml's read_line: CR LF, CR and NEL become LF; U+2028 and U+2029 stay.
    let read_line = |i: &mut usize| -> char {
        let c = chars[*i];
        *i += 1;
        match c {
            '\r' if chars.get(*i) == Some(&'\n') => {
                *i += 1;
                '\n'
            }
            '\r' | '\u{85}' => '\n',
            c => c,
        }
    };
    loop {
        let mut leading_blanks = false;
        while let Some(&c) = chars.get(i) {
            if blank(c) || is_break(c) {
                break;
            }
            if single && c == '\'' && chars.get(i + 1) == Some(&'\'') {
                s.push('\'');
                i += 2;
            } else if c == quote {
                break;
            } else if !single && c == '\\' && chars.get(i + 1).is_some_and(|&n| is_break(n)) {
                i += 1;
                read_line(&mut i);
                leading_blanks = true;
                break;
            } else if !single && c == '\\' {
                let e = *chars.get(i + 1)?;
                i += 2;
                let hex = |n: usize, i: &mut usize| -> Option<char> {
                    let digits: String = chars.get(*i..*i + n)?.iter().collect();
                    *i += n;
                    char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
                };
                s.push(match e {
                    '0' => '\0',
                    'a' => '\u{07}',
                    'b' => '\u{08}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{0b}',
                    'f' => '\u{0c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' | '"' | '\'' | '/' | '\\' => e,
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(2, &mut i)?,
                    'u' => hex(4, &mut i)?,
                    'U' => hex(8, &mut i)?,
                    _ => return None,
                });
            } else {
                s.push(c);
                i += 1;
            }
        }
        match chars.get(i) {
            Some(&c) if c == quote => return Some(s),
            None => return None,
            _ => {}
        }
        let mut whitespaces = String::new();
        let mut leading_break = None;
        let mut trailing_breaks = String::new();
        while let Some(&c) = chars.get(i) {
            if blank(c) {
                if !leading_blanks {
                    whitespaces.push(c);
                }
                i += 1;
            } else if is_break(c) {
                if leading_blanks {
                    trailing_breaks.push(read_line(&mut i));
                } else {
                    whitespaces.clear();
                    leading_break = Some(read_line(&mut i));
                    leading_blanks = true;
                }
            } else {
                break;
            }
        }
        if leading_blanks {
            match leading_break {
                Some('\n') | None if trailing_breaks.is_empty() => {
                    if leading_break.is_some() {
                        s.push(' ');
                    }
                }
                Some('\n') | None => s.push_str(&trailing_breaks),
                Some(b) => {
                    s.push(b);
                    s.push_str(&trailing_breaks);
                }
            }
        } else {
            s.push_str(&whitespaces);
        }
    }
}

/// Whether the node at `span` has no text: an empty value, perhaps with an anchor
/// or tag before it (`key: &a`, `- !!str`).
fn is_empty(span: gp::Span) -> bool {
    span.start.line() == span.end.line() && span.start.col() == span.end.col()
}

/// Whether `line` holds a list's dash at `col`, with only blanks before it.
fn dash_at(line: &str, col: usize) -> bool {
    line.get(..col)
        .is_some_and(|before| before.bytes().all(|b| b == b' '))
        && line
            .get(col..)
            .is_some_and(|rest| rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t"))
}

/// Whether `line` has content: it is neither blank nor a comment.
fn is_content(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with('#')
}

/// The first line of a parser error: it describes the syntax, never a value.
fn scan_reason(info: &str) -> String {
    let reason = info.lines().next().unwrap_or("").trim();
    if reason.contains("recursion limit exceeded") {
        // The parser's own nesting limit, a little above ours.
        format!("nested deeper than {MAX_DEPTH} levels; refused")
    } else if reason.is_empty() {
        "invalid YAML".into()
    } else {
        format!("invalid YAML: {reason}")
    }
}

impl Builder<'_> {
    fn at(&self, line: usize) -> Location {
        Location::named(self.file).at_line(line as u64)
    }

    fn event(&mut self, event: Event<'_>, span: gp::Span) -> Result<()> {
        let line = span.start.line();
        let col = span.start.col();
        if !matches!(event, Event::Comment(..)) {
            self.key_comment(&event, span);
        }
        let (after_dash, flow_end, carried) = match event {
            Event::Comment(..) => (self.after_dash, self.flow_end, self.carried),
            _ => (
                self.after_dash.take(),
                self.flow_end.take(),
                std::mem::take(&mut self.carried),
            ),
        };
        let in_list = matches!(
            self.stack.last(),
            Some(Open {
                frame: Frame::List(_),
                ..
            })
        );
        match &event {
            // A block scalar's span starts at its text, below the line of its `|`.
            Event::Scalar(_, ScalarStyle::Literal | ScalarStyle::Folded, ..) if in_list => {
                self.content_line = line;
            }
            Event::Scalar(..) | Event::Alias(_) if in_list => self.content_line = span.end.line(),
            Event::SequenceEnd | Event::MappingEnd
                if span.start.byte_offset().is_some_and(|at| {
                    self.text
                        .get(at..)
                        .is_some_and(|t| t.starts_with([']', '}']))
                }) =>
            {
                self.content_line = line;
                self.flow_end = Some(line);
            }
            _ => {}
        }
        match event {
            Event::StreamStart => {}
            Event::StreamEnd if !self.pending.is_empty() => {
                // Comments and no document: sops (go-yaml) fails on this too.
                let Some(branch) = self.branches.last_mut() else {
                    return Err(invalid(self.at(line), "no YAML document, only comments"));
                };
                let comments = std::mem::take(&mut self.pending);
                branch.extend(comments.into_iter().map(|(c, ..)| Item::Comment(c)));
            }
            Event::DocumentStart(..) => {
                self.root = None;
                self.root_seen = false;
                self.anchors.clear();
            }
            Event::DocumentEnd => {
                let mut branch = self.root.take().unwrap_or_default();
                branch.extend(
                    std::mem::take(&mut self.pending)
                        .into_iter()
                        .map(|(c, ..)| Item::Comment(c)),
                );
                self.branches.push(branch);
            }
            Event::Comment(text, placement) => {
                let text = text.into_owned();
                if placement == Placement::Right {
                    self.line_comment(text, line, col, flow_end == Some(line));
                } else {
                    self.pending.push((text, col, line));
                    self.pending_line = line;
                }
            }
            Event::Alias(id) => {
                self.closed = false;
                self.last_empty = false;
                let (value, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| invalid(self.at(line), "alias to an unknown anchor"))?;
                self.alias_bytes += size;
                if self.alias_bytes > MAX_ALIAS_BYTES {
                    return Err(invalid(
                        self.at(line),
                        format!(
                            "aliases expand to more than {} MiB; refused",
                            MAX_ALIAS_BYTES >> 20
                        ),
                    ));
                }
                if self.expects_key() {
                    return Err(invalid(
                        self.at(line),
                        "an alias as a map key is not supported",
                    ));
                }
                self.node(value, 0, line, col)?;
            }
            Event::UnresolvedAlias(_) => {
                return Err(invalid(self.at(line), "alias to an unknown anchor"));
            }
            Event::Anchor(..) => {}
            Event::Scalar(value, style, anchor, tag) => {
                self.closed = false;
                let value = self.yaml11_breaks(value, style, span);
                let value = self.unbroken_end(value, style, span);
                if self.expects_key() {
                    let key = self.key(&value, style, tag.as_deref(), line)?;
                    // The entry starts at the key, or at its `?` (`? key`).
                    let col = self.explicit_key_col(span, style).unwrap_or(col);
                    if let Some((text, _)) = self
                        .held_head
                        .take_if(|(_, depth)| *depth == self.stack.len())
                    {
                        self.pending.push((text, col, line));
                    }
                    self.place_pending(col);
                    let Some(Open {
                        frame:
                            Frame::Map {
                                key: slot, keys, ..
                            },
                        col: frame_col,
                        ..
                    }) = self.stack.last_mut()
                    else {
                        unreachable!()
                    };
                    frame_col.get_or_insert(col);
                    // A key repeated in the first document is refused, as sops refuses
                    // it in a plaintext (two values for one name, which readers resolve
                    // differently); later documents may repeat one, as sops takes them.
                    if self.branches.is_empty() && !keys.insert(key.clone()) {
                        return Err(invalid(self.at(line), format!("duplicate key {key:?}")));
                    }
                    *slot = Some(key);
                } else {
                    let value = resolve::scalar(&value, style, tag.as_deref())
                        .map_err(|reason| invalid(self.at(line), reason))?;
                    // An empty value with a tag or anchor (`key: !!str`) comes after
                    // the comments below it; go-yaml gives those to what follows.
                    let empty = is_empty(span);
                    self.last_empty = empty && anchor == 0 && tag.is_none();
                    // So does an empty entry of a list (a bare `-`, or one with only
                    // an anchor or tag): go-yaml gives the comments above it, to its
                    // right and below it to what follows.
                    let bare = in_list;
                    let after = if empty {
                        let below = self.pending.partition_point(|&(_, _, l)| l <= line);
                        let at = match after_dash {
                            Some(from) if in_list => below.min(from),
                            // A bare `-`: the comments above it too, and those that
                            // opened its list when it is the first entry.
                            _ if bare => 0,
                            _ => below,
                        };
                        let mut after = if bare {
                            self.leading_comments()
                        } else {
                            Vec::new()
                        };
                        after.extend(self.pending.split_off(at));
                        self.carried = !after.is_empty() && (at < below || bare);
                        after
                    } else {
                        Vec::new()
                    };
                    self.node(value, anchor, line, col)?;
                    self.pending.extend(after);
                }
            }
            // sops drops a map's or list's tag (`!!set`, `!!omap`, `!foo`).
            Event::SequenceStart(style, anchor, _) => {
                // A compact list (`k:` / `- # c`) opens on the line of the comment to
                // its first dash's right: the comment waits for that dash's node.
                let (inner, waiting) = match after_dash {
                    Some(from) if self.pending.get(from).is_some_and(|p| p.2 == line) => {
                        (Vec::new(), self.pending.split_off(from))
                    }
                    Some(from) if from <= self.pending.len() => {
                        (self.pending.split_off(from), Vec::new())
                    }
                    _ => (Vec::new(), Vec::new()),
                };
                let col = self.compact_dashes(line).unwrap_or(col);
                self.open(false, anchor, line, col, style)?;
                if !waiting.is_empty() {
                    self.after_dash = Some(self.pending.len());
                    self.pending.extend(waiting);
                }
                if let Some(Open {
                    frame: Frame::List(items),
                    ..
                }) = self.stack.last_mut()
                {
                    items.extend(inner.into_iter().map(|(text, ..)| Value::Comment(text)));
                }
            }
            Event::MappingStart(style, anchor, _) => {
                // A block map after a bare `- # c`: the comments after the dash are
                // its first entries, as go-yaml gives them to its first key.
                let inner = match after_dash {
                    Some(from)
                        if style == gp::StructureStyle::Block && from <= self.pending.len() =>
                    {
                        self.pending.split_off(from)
                    }
                    _ => Vec::new(),
                };
                self.open(true, anchor, line, col, style)?;
                if let Some(open) = self.stack.last_mut() {
                    open.frame.push_comments(inner);
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.close(line, carried, flow_end.is_some())?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Builder<'_> {
    /// go-yaml reads YAML 1.1, where U+0085 (NEL), U+2028 and U+2029 are line
    /// breaks; the parser (YAML 1.2) takes them for text. So, as go-yaml: a quoted
    /// scalar holding one raw is read again by go-yaml's rules; in a plain scalar
    /// the blanks around such a break go (a NEL folds to a space); in a block
    /// scalar, the indentation after it (a NEL is a newline). sops writes a value
    /// holding U+2028 or U+2029 single-quoted or as a block, indented after it.
    /// A block scalar that ends the input with no line break after its last line:
    /// there is no final line break to keep, and go-yaml keeps none, where the
    /// parser adds one (`e: |` over ` y` at the end of the file is `y`, not `y\n`).
    fn unbroken_end<'v>(
        &self,
        value: Cow<'v, str>,
        style: ScalarStyle,
        span: gp::Span,
    ) -> Cow<'v, str> {
        let at_end = span
            .end
            .byte_offset()
            .and_then(|end| self.text.get(end..))
            .is_some_and(|rest| rest.trim_matches([' ', '\t']).is_empty());
        if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
            && at_end
            && !self.text.ends_with(['\n', '\r'])
            && value.ends_with('\n')
        {
            let mut owned = value.into_owned();
            owned.pop();
            Cow::Owned(owned)
        } else {
            value
        }
    }

    fn yaml11_breaks<'v>(
        &self,
        value: Cow<'v, str>,
        style: ScalarStyle,
        span: gp::Span,
    ) -> Cow<'v, str> {
        let blank = |c: char| c == ' ' || c == '\t';
        match style {
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                let raw = span
                    .start
                    .byte_offset()
                    .zip(span.end.byte_offset())
                    .and_then(|(start, end)| self.text.get(start..end));
                match raw {
                    Some(raw) if raw.contains(GO_BREAKS) => match go_flow_scalar(raw) {
                        Some(decoded) => Cow::Owned(decoded),
                        None => value,
                    },
                    _ => value,
                }
            }
            _ if !value.contains(GO_BREAKS) => value,
            ScalarStyle::Plain => {
                let mut out = String::with_capacity(value.len());
                let mut after_break = false;
                for c in value.chars() {
                    if GO_BREAKS.contains(&c) {
                        out.truncate(out.trim_end_matches(blank).len());
                        after_break = true;
                        out.push(if c == '\u{85}' { ' ' } else { c });
                    } else if !(after_break && blank(c)) {
                        after_break = false;
                        out.push(c);
                    }
                }
                Cow::Owned(out)
            }
            _ => {
                // The block's indentation: the parser's span starts at its text.
                let indent = span.start.col();
                let mut out = String::with_capacity(value.len());
                let mut skip = 0;
                for c in value.chars() {
                    if skip > 0 && c == ' ' {
                        skip -= 1;
                        continue;
                    }
                    skip = if GO_BREAKS.contains(&c) { indent } else { 0 };
                    out.push(if c == '\u{85}' { '\n' } else { c });
                }
                Cow::Owned(out)
            }
        }
    }

    fn expects_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Open {
                frame: Frame::Map { key: None, .. },
                ..
            })
        )
    }

    /// The column of the `?` before a key whose text starts at `span` (`? key`, or
    /// `? |` over a block scalar's lines), if the key is an explicit one: only
    /// blanks, the key's tag or anchor and a block scalar's header (and the line
    /// breaks before its text) lie between them.
    fn explicit_key_col(&self, span: gp::Span, style: ScalarStyle) -> Option<usize> {
        let blank = [' ', '\t'];
        let mut rest = self.text.get(..span.start.byte_offset()?)?;
        if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            rest = rest.trim_end_matches([' ', '\t', '\r', '\n']);
            rest = rest
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '+' || c == '-')
                .strip_suffix(['|', '>'])?;
        }
        loop {
            rest = rest.trim_end_matches(blank);
            let word = rest.rsplit([' ', '\t', '\n']).next().unwrap_or("");
            if word.starts_with(['!', '&']) {
                rest = &rest[..rest.len() - word.len()];
            } else {
                break;
            }
        }
        let before = rest.strip_suffix('?')?;
        let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
        // The `?` starts a token: at the line's start or after a blank.
        (line.is_empty() || line.ends_with(blank)).then(|| line.chars().count())
    }

    /// Puts the own-line comments read so far into the innermost collection, before
    /// the entry that starts at `col`.
    fn place_pending(&mut self, col: usize) {
        let Some(open) = self.stack.last_mut() else {
            return;
        };
        open.col.get_or_insert(col);
        open.frame.push_comments(self.pending.drain(..));
    }

    /// For a list opening on `line` as a map's value: its dashes' column, when they
    /// stand at the key's column (`k:` / `- a`), where the parser starts the list
    /// at its first entry's text instead.
    fn compact_dashes(&self, line: usize) -> Option<usize> {
        let Some(Open {
            frame: Frame::Map { .. },
            col: Some(key),
            ..
        }) = self.stack.last()
        else {
            return None;
        };
        let text = self.lines.get(line.checked_sub(1)?)?;
        dash_at(text, *key).then_some(*key)
    }

    /// If the collection just opened is a flow one (`{`, `[`), notes how many
    /// comments were pending then (`Open::flow_from`).
    fn mark_flow(&mut self, style: gp::StructureStyle) {
        if style == gp::StructureStyle::Flow
            && let Some(open) = self.stack.last_mut()
        {
            open.flow_from = Some(self.pending.len());
        }
    }

    fn open(
        &mut self,
        is_map: bool,
        anchor: usize,
        line: usize,
        col: usize,
        style: gp::StructureStyle,
    ) -> Result<()> {
        let block = style == gp::StructureStyle::Block;
        if !self.closed {
            self.defer_after_scalar_entry();
        }
        self.closed = false;
        self.last_empty = false;
        if self.stack.len() >= MAX_DEPTH {
            return Err(invalid(
                self.at(line),
                format!("nested deeper than {MAX_DEPTH} levels; refused"),
            ));
        }
        if self.expects_key() {
            return Err(invalid(
                self.at(line),
                "a map key that is a map or list is not supported",
            ));
        }
        let frame = if is_map {
            Frame::Map {
                items: Vec::new(),
                key: None,
                keys: HashSet::new(),
            }
        } else {
            Frame::List(Vec::new())
        };
        let mut inner = Vec::new();
        match self.stack.last() {
            None => {
                if !is_map {
                    return Err(invalid(
                        self.at(line),
                        "the top level of a YAML document must be a map, not a list",
                    ));
                }
                self.root_seen = true;
            }
            // Own-line comments between a bare dash and the block map or list that
            // starts on a line below it: go-yaml gives them to that map or list.
            Some(Open {
                frame: Frame::List(_),
                col: dashes,
                flow_from,
                ..
            }) => {
                let dashes = dashes.filter(|_| block && flow_from.is_none());
                let dash_line = dashes.and_then(|dashes| self.dash_line(dashes, line));
                let below = dash_line.map_or(self.pending.len(), |d| {
                    self.pending.partition_point(|&(_, _, at)| at <= d)
                });
                inner = self.pending.split_off(below);
                self.place_pending(col)
            }
            // A map or list that is a map's value: comments read since its key
            // are its own.
            Some(_) => {}
        }
        let mut open = Open {
            frame,
            // A list's entries start at its dashes; a map's at its first key.
            col: (!is_map).then_some(col),
            anchor,
            flow_from: None,
        };
        let carried = if block { self.carry_into_value() } else { None };
        if matches!(
            self.stack.last(),
            None | Some(Open {
                frame: Frame::Map { .. },
                ..
            })
        ) {
            open.frame.push_comments(self.pending.drain(..));
        }
        open.frame.push_comments(inner);
        self.stack.push(open);
        if let Some(run) = carried {
            self.deferred = Some(Deferred {
                run,
                depth: self.stack.len(),
                armed: true,
            });
        }
        self.mark_flow(style);
        Ok(())
    }

    /// The (1-based) line of the bare dash, at column `dashes`, of the list entry
    /// whose node starts on `line`, with only blank and comment lines between;
    /// `None` when the node starts on its dash's line or there is no such dash.
    fn dash_line(&self, dashes: usize, line: usize) -> Option<usize> {
        let own = line.checked_sub(1)?;
        if dash_at(self.lines.get(own)?, dashes) {
            return None;
        }
        let above = self.lines.get(..own)?;
        let at = above.iter().rposition(|text| is_content(text))?;
        dash_at(above[at], dashes).then_some(at + 1)
    }

    /// Closes the innermost collection. `after_flow`: its last node was a flow
    /// collection (`[…]`, `{…}`), one node on its lines, which go-yaml follows with
    /// comments as it follows a scalar.
    fn close(&mut self, line: usize, carried: bool, after_flow: bool) -> Result<()> {
        if !self.closed {
            self.defer_dedented_run();
        }
        self.release_deferred_at_close();
        let depth = self.stack.len();
        let Some(mut open) = self.stack.pop() else {
            return Err(invalid(self.at(line), "unbalanced YAML structure"));
        };
        // A comment held for the map's next entry, which did not come: the map's own,
        // before its first entry; a list's entry before the map where it is one.
        if let (Some((text, _)), Frame::Map { items, .. }) = (
            self.held_head.take_if(|(_, held)| *held == depth),
            &mut open.frame,
        ) {
            match self.stack.last_mut() {
                Some(Open {
                    frame: Frame::List(list),
                    ..
                }) => list.push(Value::Comment(text)),
                _ => items.insert(0, Item::Comment(text)),
            }
        }
        let entries = open.frame.has_entries();
        // Own-line comments inside a flow collection: dropped where it has no entry,
        // else its last entries (`[1, 2` / `# c` / `]`).
        if let Some(from) = open.flow_from.filter(|&from| from < self.pending.len()) {
            let inside = self.pending.split_off(from);
            if entries {
                open.frame.push_comments(inside);
            }
        }
        let first = !std::mem::replace(&mut self.closed, true);
        if first {
            self.reserved = self.none_kept(&open);
        }
        let innermost = (first || after_flow) && !carried;
        // A file that ends in comments right after a map's last value, with no line
        // break after them: go-yaml gives the map their first run, whatever its
        // column.
        if innermost && matches!(open.frame, Frame::Map { .. }) && self.unterminated_foot() {
            let n = self.first_run(open.col);
            open.frame.push_comments(self.pending.drain(..n));
        }
        // The comments right after its last entry and up to a blank line are this
        // collection's; those after the blank go to what follows.
        if innermost
            && !self.last_empty
            && let Some(n) = self.foot_then_blank(open.col)
        {
            open.frame.push_comments(self.pending.drain(..n));
            self.reserved = true;
        }
        let placing = !self.reserved;
        // A compact list (`k:` / `- a`, its dashes at its key's column) that the
        // map's next key ends: go-yaml gives that key the comments after the list.
        let compact_end = placing
            && !self.pending.is_empty()
            && matches!(open.frame, Frame::List(_))
            && self
                .stack
                .last()
                .is_some_and(|up| matches!(up.frame, Frame::Map { .. }) && up.col == open.col)
            && self.next_content_col() == open.col;
        if innermost && placing && !compact_end {
            let n = self.foot_comments(open.col);
            open.frame.push_comments(self.pending.drain(..n));
        }
        // Own-line comments indented at least as far as this collection's
        // entries close it; the rest belong to an enclosing collection.
        // go-yaml gives a list whose last entry is a block map or list no comments
        // of its own after that entry: they go to the enclosing map. A flow one
        // (`[]`, `{a: 1}`) takes them as a scalar does.
        let nested_last = carried
            || !after_flow
                && matches!(
                    &open.frame,
                    Frame::List(items) if items
                        .iter()
                        .rev()
                        .find(|v| !matches!(v, Value::Comment(_)))
                        .is_some_and(has_entries)
                );
        // At the end of the input, go-yaml gives an enclosing collection only the
        // comments at its own column; the rest go to the document.
        let exact = !innermost && !self.pending.is_empty() && self.next_content_col().is_none();
        if let Some(col) = open.col.filter(|_| placing && !nested_last && !compact_end) {
            let n = self
                .pending
                .iter()
                .take_while(|(_, c, _)| *c == col || (*c > col && !exact))
                .count();
            open.frame.push_comments(self.pending.drain(..n));
        }
        if self.stack.is_empty() {
            // The root: remaining comments stay in the document.
            let Frame::Map { mut items, .. } = open.frame else {
                unreachable!("a list at the root is refused when it opens")
            };
            items.extend(self.pending.drain(..).map(|(text, ..)| Item::Comment(text)));
            if open.anchor != 0 {
                let value = Value::Map(items.clone());
                let size = size(&value);
                self.anchors.insert(open.anchor, (value, size));
            }
            self.root = Some(items);
            return Ok(());
        }
        let value = match open.frame {
            Frame::Map { items, .. } => Value::Map(items),
            Frame::List(items) => Value::List(items),
        };
        self.complete(value, open.anchor, line)
    }

    /// The column of the next line with content after the pending comments; `None`
    /// at the end of the input.
    pub(super) fn next_content_col(&self) -> Option<usize> {
        self.next_content_line()
            .map(|l| l.len() - l.trim_start().len())
    }

    /// The next line with content after the pending comments; `None` at the end of
    /// the input.
    pub(super) fn next_content_line(&self) -> Option<&str> {
        self.lines
            .iter()
            .skip(self.pending_line)
            .map(|l| l.trim_end_matches('\r'))
            .find(|l| is_content(l))
    }

    /// A scalar or alias read where a value goes.
    fn node(&mut self, value: Value, anchor: usize, line: usize, col: usize) -> Result<()> {
        if self.stack.is_empty() {
            if self.root_seen {
                return Err(invalid(self.at(line), "more than one root node"));
            }
            self.root_seen = true;
            return match value {
                // An empty document (`---` alone) is an empty map to sops.
                Value::Null => {
                    self.root = Some(Vec::new());
                    Ok(())
                }
                Value::Map(items) => {
                    self.root = Some(items);
                    Ok(())
                }
                _ => Err(invalid(
                    self.at(line),
                    "the top level of a YAML document must be a map",
                )),
            };
        }
        self.defer_after_scalar_entry();
        self.place_pending(col);
        self.complete(value, anchor, line)
    }

    fn complete(&mut self, value: Value, anchor: usize, line: usize) -> Result<()> {
        self.last_anchor = anchor;
        if anchor != 0 {
            let size = size(&value);
            self.anchors.insert(anchor, (value.clone(), size));
        }
        match self.stack.last_mut().map(|open| &mut open.frame) {
            Some(Frame::Map { items, key, .. }) => {
                let Some(key) = key.take() else {
                    return Err(invalid(self.at(line), "a map key that is not a string"));
                };
                let mergeable = match &value {
                    Value::Map(_) => true,
                    Value::List(values) => values
                        .iter()
                        .all(|v| matches!(v, Value::Map(_) | Value::Comment(_))),
                    _ => false,
                };
                if key == "<<" && !mergeable {
                    self.scalar_merge.get_or_insert(line);
                }
                items.push(Item::Pair(key, value));
            }
            Some(Frame::List(items)) => items.push(value),
            None => unreachable!("checked by the caller"),
        }
        self.release_deferred();
        Ok(())
    }

    fn key(
        &self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&gp::Tag>,
        line: usize,
    ) -> Result<String> {
        // As sops (`key.Decode`): a key is typed as a value is, tags included; a
        // `<<` merge key is the string `<<`, its value the alias expanded.
        match resolve::scalar(text, style, tag) {
            Ok(Value::Str(key)) => Ok(key),
            Ok(_) => Err(invalid(
                self.at(line),
                "a map key that is not a string (a number, bool, null or date); quote it",
            )),
            Err(reason) => Err(invalid(self.at(line), reason)),
        }
    }
}

/// About how many bytes a value takes in the tree, for the alias budget.
fn size(value: &Value) -> usize {
    const NODE: usize = 48;
    // Iterative: a value may be nested as deep as the parser allows.
    let mut total = 0;
    let mut todo = vec![value];
    while let Some(value) = todo.pop() {
        total += NODE;
        match value {
            Value::Map(items) => {
                for item in items {
                    match item {
                        Item::Pair(key, v) => {
                            total += key.len();
                            todo.push(v);
                        }
                        Item::Comment(text) => total += NODE + text.len(),
                    }
                }
            }
            Value::List(values) => todo.extend(values),
            Value::Str(s) | Value::Comment(s) | Value::Time(s) => total += s.len(),
            Value::Bytes(b) => total += b.len(),
            _ => {}
        }
    }
    total
}

mod comments;
mod quoted;
#[cfg(test)]
mod tests;
