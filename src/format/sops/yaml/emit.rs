//! Writing the tree as sops does: sops builds go-yaml nodes (stores/yaml/store.go
//! appendTreeBranch), go-yaml turns them into events (encode.go) and its emitter
//! writes them (emitterc.go). Each step is ported for what sops produces: block maps
//! and lists, empty ones in flow style, comments and scalars (`scalar`), with the
//! indentation of `stores.yaml.indent` (four spaces by default).

mod metadata;
mod scalar;

use scalar::{ScalarData, Style, go_base64, go_float, string_node};

use super::invalid;
use crate::error::{Location, Result};
use crate::format::sops::document::{Item, Value};

/// sops's indentation when `.sops.yaml` sets none.
pub(super) const DEFAULT_INDENT: i64 = 4;

struct Node {
    kind: Kind,
    head: String,
    line: String,
    foot: String,
}

enum Kind {
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
    Scalar {
        value: String,
        style: Style,
        tag: Option<&'static str>,
    },
}

impl Node {
    fn new(kind: Kind) -> Self {
        Node {
            kind,
            head: String::new(),
            line: String::new(),
            foot: String::new(),
        }
    }

    fn scalar(value: String, style: Style) -> Self {
        Node::new(Kind::Scalar {
            value,
            style,
            tag: None,
        })
    }
}

fn join_comments(comments: &[&str]) -> String {
    format!("#{}", comments.join("\n#"))
}

/// sops's `addCommentsHead`.
fn add_head(node: &mut Node, comments: &mut Vec<&str>) {
    if comments.is_empty() {
        return;
    }
    let comment = join_comments(comments);
    node.head = if node.head.is_empty() {
        comment
    } else {
        format!("{comment}\n{}", node.head)
    };
    comments.clear();
}

/// sops's `addCommentsFoot`.
fn add_foot(node: &mut Node, comments: &[&str]) {
    if comments.is_empty() {
        return;
    }
    let comment = join_comments(comments);
    if node.foot.is_empty() {
        node.foot = comment;
    } else {
        node.foot = format!("{}\n{comment}", node.foot);
    }
}

/// sops's `appendTreeBranch`. The tree has no inline comments (sops itself turns
/// them into head comments when it re-reads what it wrote), so every comment is a
/// head or foot comment.
/// With `last`, a pair whose value is a map follows the items (the `sops` key).
fn map_node(items: &[Item], last: Option<(&str, &[Item])>) -> Result<Node> {
    let mut mapping = Node::new(Kind::Map(Vec::new()));
    let mut pairs = Vec::new();
    let mut head: Vec<&str> = Vec::new();
    let mut beginning = true;
    let mut pair = |key: &str, value: Node, head: &mut Vec<&str>| {
        if beginning {
            add_head(&mut mapping, head);
            beginning = false;
        }
        let mut key_node = string_node(key);
        add_head(&mut key_node, head);
        pairs.push((key_node, value));
    };
    for item in items {
        match item {
            Item::Comment(text) => head.push(text),
            Item::Pair(key, value) => pair(key, value_node(value)?, &mut head),
        }
    }
    if let Some((key, map)) = last {
        pair(key, map_node(map, None)?, &mut head);
    }
    if !head.is_empty() {
        match pairs.last_mut() {
            None => add_head(&mut mapping, &mut head),
            Some((key, _)) => add_foot(key, &head),
        }
    }
    mapping.kind = Kind::Map(pairs);
    Ok(mapping)
}

/// sops's `appendSequence`.
fn seq_node(values: &[Value]) -> Result<Node> {
    let mut sequence = Node::new(Kind::Seq(Vec::new()));
    let mut nodes = Vec::new();
    let mut head: Vec<&str> = Vec::new();
    let mut beginning = true;
    for value in values {
        if let Value::Comment(text) = value {
            head.push(text);
            continue;
        }
        if beginning {
            add_head(&mut sequence, &mut head);
            beginning = false;
        }
        let mut node = value_node(value)?;
        add_head(&mut node, &mut head);
        nodes.push(node);
    }
    if !head.is_empty() {
        match nodes.last_mut() {
            None => add_head(&mut sequence, &mut head),
            Some(node) => add_foot(node, &head),
        }
    }
    sequence.kind = Kind::Seq(nodes);
    Ok(sequence)
}

/// A float as the plain scalar go-yaml writes.
pub(super) fn float_text(f: f64) -> String {
    go_float(f)
}

fn value_node(value: &Value) -> Result<Node> {
    Ok(match value {
        Value::Map(items) => map_node(items, None)?,
        Value::List(values) => seq_node(values)?,
        Value::Str(s) => string_node(s),
        Value::Int(i) => Node::scalar(i.to_string(), Style::Plain),
        Value::Float(f) => Node::scalar(go_float(*f), Style::Plain),
        Value::Bool(b) => Node::scalar(b.to_string(), Style::Plain),
        Value::Time(t) => Node::scalar(t.clone(), Style::Plain),
        Value::Null => Node::scalar("null".into(), Style::Plain),
        Value::Bytes(bytes) => {
            // go-yaml writes a string that is not UTF-8 as base64 under !!binary.
            let encoded = go_base64(bytes);
            let style = if encoded.contains('\n') {
                Style::Literal
            } else {
                Style::Plain
            };
            Node::new(Kind::Scalar {
                value: encoded,
                style,
                tag: Some("!!binary"),
            })
        }
        Value::Comment(_) => {
            return Err(invalid(
                Location::named("<yaml output>"),
                "a comment where a value belongs",
            ));
        }
    })
}

// -- go-yaml's encoder: nodes to events -------------------------------------

enum Ev<'a> {
    DocStart,
    DocEnd,
    MapStart {
        head: &'a str,
        tail: &'a str,
    },
    MapEnd {
        tail: &'a str,
        line: &'a str,
        foot: &'a str,
    },
    SeqStart {
        head: &'a str,
    },
    SeqEnd {
        line: &'a str,
        foot: &'a str,
    },
    Scalar {
        value: &'a str,
        style: Style,
        tag: Option<&'static str>,
        head: &'a str,
        line: &'a str,
        foot: &'a str,
        tail: &'a str,
    },
}

fn events<'a>(node: &'a Node, tail: &'a str, out: &mut Vec<Ev<'a>>) {
    match &node.kind {
        Kind::Map(pairs) => {
            out.push(Ev::MapStart {
                head: &node.head,
                tail,
            });
            // A key's foot comment is written after its value, as the next
            // event's tail.
            let mut tail = "";
            for (key, value) in pairs {
                let foot = key.foot.as_str();
                let Kind::Scalar {
                    value: k,
                    style,
                    tag,
                } = &key.kind
                else {
                    unreachable!("keys are scalars")
                };
                out.push(Ev::Scalar {
                    value: k,
                    style: *style,
                    tag: *tag,
                    head: &key.head,
                    line: &key.line,
                    foot: "",
                    tail,
                });
                tail = foot;
                events(value, "", out);
            }
            out.push(Ev::MapEnd {
                tail,
                line: &node.line,
                foot: &node.foot,
            });
        }
        Kind::Seq(items) => {
            out.push(Ev::SeqStart { head: &node.head });
            for item in items {
                events(item, "", out);
            }
            out.push(Ev::SeqEnd {
                line: &node.line,
                foot: &node.foot,
            });
        }
        Kind::Scalar { value, style, tag } => out.push(Ev::Scalar {
            value,
            style: *style,
            tag: *tag,
            head: &node.head,
            line: &node.line,
            foot: &node.foot,
            tail,
        }),
    }
}

/// The documents as sops writes them, each with its metadata under `sops` when
/// there is one.
pub(super) fn emit<'a>(
    branches: impl Iterator<Item = (&'a [Item], Option<&'a [Item]>)>,
    indent: i64,
) -> Result<Vec<u8>> {
    let mut nodes = Vec::new();
    for (branch, metadata) in branches {
        // sops's SerializeMetadata appends `sops:` to every document.
        nodes.push(map_node(branch, metadata.map(|m| ("sops", m)))?);
    }
    let mut evs = Vec::new();
    for node in &nodes {
        evs.push(Ev::DocStart);
        events(node, "", &mut evs);
        evs.push(Ev::DocEnd);
    }
    let mut emitter = Emitter {
        out: String::with_capacity(size_hint(&evs, indent)),
        best_indent: indent,
        ..Emitter::default()
    };
    emitter.run(&evs);
    Ok(emitter.out.into_bytes())
}

/// An encrypted document: its one branch by the general emitter and its metadata
/// by `metadata`'s writer, where that writes it, else all by the general emitter.
pub(super) fn emit_encrypted(
    branches: &[Vec<Item>],
    metadata: &[Item],
    indent: i64,
) -> Result<Vec<u8>> {
    let general = || {
        emit(
            branches.iter().map(|b| (b.as_slice(), Some(metadata))),
            indent,
        )
    };
    if let [branch] = branches
        && let Some(out) = quick(branch, metadata, indent)?
    {
        #[cfg(debug_assertions)]
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&general()?),
            "the metadata's own writer and the general emitter differ"
        );
        return Ok(out);
    }
    general()
}

/// `branch` then `sops:` and its `metadata`, when the metadata writer takes it and
/// the branch ends the same alone as followed by `sops:` (it has keys, no comment,
/// which could fall to the `sops` key, and does not end open, which `...` closes).
pub(super) fn quick(branch: &[Item], metadata: &[Item], indent: i64) -> Result<Option<Vec<u8>>> {
    if branch.is_empty() || branch.iter().any(has_comment) {
        return Ok(None);
    }
    let Some(tail) = metadata::write(metadata, indent) else {
        return Ok(None);
    };
    let mut out = emit(std::iter::once((branch, None)), indent)?;
    if !out.ends_with(b"\n") || out.ends_with(b"...\n") {
        return Ok(None);
    }
    out.extend_from_slice(tail.as_bytes());
    Ok(Some(out))
}

fn has_comment(item: &Item) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::Comment(_) => true,
            Value::Map(items) => items.iter().any(has_comment),
            Value::List(values) => values.iter().any(value),
            _ => false,
        }
    }
    match item {
        Item::Comment(_) => true,
        Item::Pair(_, v) => value(v),
    }
}

/// About the bytes `evs` are written in (each scalar with a line and its
/// indentation), so the output is allocated once, not grown by doubling.
fn size_hint(evs: &[Ev<'_>], indent: i64) -> usize {
    let depth = usize::try_from(indent).unwrap_or(4) * 3;
    evs.iter()
        .map(|ev| match ev {
            Ev::Scalar { value, .. } => value.len() + depth + value.len() / 32,
            _ => 0,
        })
        .sum::<usize>()
        + 64
}

/// One value as sops's `EmitValue` writes it for `--extract`: `yaml.Marshal` of its
/// node, a document of its own with go-yaml's default four-space indentation,
/// whatever `stores.yaml.indent` says.
pub(super) fn emit_value(value: &Value) -> Result<Vec<u8>> {
    let node = value_node(value)?;
    let mut evs = vec![Ev::DocStart];
    events(&node, "", &mut evs);
    evs.push(Ev::DocEnd);
    let mut emitter = Emitter {
        best_indent: DEFAULT_INDENT,
        ..Emitter::default()
    };
    emitter.run(&evs);
    Ok(emitter.out.into_bytes())
}

// -- go-yaml's emitter -------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum State {
    #[default]
    FirstDocStart,
    DocStart,
    DocContent,
    DocEnd,
    BlockSeqFirstItem,
    BlockSeqItem,
    BlockMapFirstKey,
    BlockMapKey,
    BlockMapSimpleValue,
    BlockMapValue,
    FlowSeqFirstItem,
    FlowMapFirstKey,
}

struct Emitter {
    out: String,
    column: i64,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
    foot_indent: i64,
    indent: i64,
    /// go-yaml's `best_indent`: the spaces of one level.
    best_indent: i64,
    indents: Vec<i64>,
    state: State,
    states: Vec<State>,
    flow_level: usize,
    simple_key_context: bool,
    head_comment: String,
    line_comment: String,
    foot_comment: String,
    tail_comment: String,
    scalar: ScalarData,
}

impl Default for Emitter {
    fn default() -> Self {
        Emitter {
            out: String::new(),
            column: 0,
            whitespace: true,
            indention: true,
            open_ended: false,
            foot_indent: -1,
            indent: -1,
            best_indent: DEFAULT_INDENT,
            indents: Vec::new(),
            state: State::FirstDocStart,
            states: Vec::new(),
            flow_level: 0,
            simple_key_context: false,
            head_comment: String::new(),
            line_comment: String::new(),
            foot_comment: String::new(),
            tail_comment: String::new(),
            scalar: ScalarData::default(),
        }
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

impl Emitter {
    fn run(&mut self, evs: &[Ev<'_>]) {
        for (i, ev) in evs.iter().enumerate() {
            self.analyze(ev);
            self.dispatch(evs, i);
        }
        // STREAM-END
        if self.open_ended {
            self.write_indicator("...", true, false, false);
            self.write_indent();
        }
    }

    fn analyze(&mut self, ev: &Ev<'_>) {
        let (head, line, foot, tail) = match ev {
            Ev::DocStart | Ev::DocEnd => ("", "", "", ""),
            Ev::MapStart { head, tail } => (*head, "", "", *tail),
            Ev::MapEnd { tail, line, foot } => ("", *line, *foot, *tail),
            Ev::SeqStart { head } => (*head, "", "", ""),
            Ev::SeqEnd { line, foot } => ("", *line, *foot, ""),
            Ev::Scalar {
                head,
                line,
                foot,
                tail,
                ..
            } => (*head, *line, *foot, *tail),
        };
        if !head.is_empty() {
            self.head_comment = head.to_string();
        }
        if !line.is_empty() {
            self.line_comment = line.to_string();
        }
        if !foot.is_empty() {
            self.foot_comment = foot.to_string();
        }
        if !tail.is_empty() {
            self.tail_comment = tail.to_string();
        }
        if let Ev::Scalar { value, .. } = ev {
            self.analyze_scalar(value);
        }
    }

    fn dispatch(&mut self, evs: &[Ev<'_>], i: usize) {
        match self.state {
            State::FirstDocStart => self.document_start(true),
            State::DocStart => self.document_start(false),
            State::DocContent => {
                self.states.push(State::DocEnd);
                self.process_head_comment();
                self.node(evs, i, false);
                self.process_line_comment(false);
                self.process_foot_comment();
            }
            State::DocEnd => {
                self.foot_indent = 0;
                self.process_foot_comment();
                self.foot_indent = -1;
                self.write_indent();
                self.state = State::DocStart;
            }
            State::BlockSeqFirstItem => self.block_sequence_item(evs, i, true),
            State::BlockSeqItem => self.block_sequence_item(evs, i, false),
            State::BlockMapFirstKey => self.block_mapping_key(evs, i, true),
            State::BlockMapKey => self.block_mapping_key(evs, i, false),
            State::BlockMapSimpleValue => self.block_mapping_value(evs, i, true),
            State::BlockMapValue => self.block_mapping_value(evs, i, false),
            State::FlowSeqFirstItem => self.flow_end('[', ']'),
            State::FlowMapFirstKey => self.flow_end('{', '}'),
        }
    }

    fn document_start(&mut self, first: bool) {
        if !first {
            self.write_indent();
            self.write_indicator("---", true, false, false);
            self.write_indent();
        }
        self.state = State::DocContent;
    }

    fn pop_state(&mut self) {
        self.state = self.states.pop().unwrap_or_default();
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { self.best_indent } else { 0 };
        } else if !indentless {
            if self.states.last() == Some(&State::BlockSeqItem) {
                self.indent += 2;
            } else {
                let step = self.best_indent;
                self.indent = step * ((self.indent + step) / step);
            }
        }
    }

    /// Only empty flow collections are written (`[]`, `{}`). A comment inside `{}`
    /// (the one sops moves there from the right of it) is written at the map's own
    /// indent, as go-yaml writes it before leaving the map.
    fn flow_end(&mut self, open: char, close: char) {
        self.write_indicator(&open.to_string(), true, true, false);
        self.increase_indent(true, false);
        if close == '}' {
            self.process_head_comment();
            self.pop_indent();
        } else {
            self.pop_indent();
            if self.column == 0 {
                self.write_indent();
            }
        }
        self.write_indicator(&close.to_string(), false, false, false);
        self.process_line_comment(false);
        self.process_foot_comment();
        self.pop_state();
    }

    fn block_sequence_item(&mut self, evs: &[Ev<'_>], i: usize, first: bool) {
        if first {
            self.increase_indent(false, false);
        }
        if matches!(evs[i], Ev::SeqEnd { .. }) {
            self.pop_indent();
            self.pop_state();
            return;
        }
        self.process_head_comment();
        self.write_indent();
        self.write_indicator("-", true, false, true);
        self.states.push(State::BlockSeqItem);
        self.node(evs, i, false);
        self.process_line_comment(false);
        self.process_foot_comment();
    }

    fn block_mapping_key(&mut self, evs: &[Ev<'_>], i: usize, first: bool) {
        if first {
            self.increase_indent(false, false);
        }
        self.process_head_comment();
        if matches!(evs[i], Ev::MapEnd { .. }) {
            self.pop_indent();
            self.pop_state();
            return;
        }
        self.write_indent();
        if self.simple_key(&evs[i]) {
            self.states.push(State::BlockMapSimpleValue);
            self.node(evs, i, true);
        } else {
            // A key over 128 bytes or with a line break: `? key` then `: value`.
            self.write_indicator("?", true, false, true);
            self.states.push(State::BlockMapValue);
            self.node(evs, i, false);
        }
    }

    /// go-yaml's `check_simple_key` for the keys sops writes (scalars).
    fn simple_key(&self, ev: &Ev<'_>) -> bool {
        let Ev::Scalar { value, tag, .. } = ev else {
            return false;
        };
        !self.scalar.multiline && tag.map_or(0, str::len) + value.len() <= 128
    }

    fn block_mapping_value(&mut self, evs: &[Ev<'_>], i: usize, simple: bool) {
        if simple {
            self.write_indicator(":", false, false, false);
        } else {
            self.write_indent();
            self.write_indicator(":", true, false, true);
        }
        self.states.push(State::BlockMapKey);
        self.node(evs, i, false);
        self.process_line_comment(false);
        self.process_foot_comment();
    }

    fn node(&mut self, evs: &[Ev<'_>], i: usize, simple_key: bool) {
        self.simple_key_context = simple_key;
        let next_is = |f: fn(&Ev<'_>) -> bool| evs.get(i + 1).is_some_and(f);
        match &evs[i] {
            Ev::Scalar {
                value, style, tag, ..
            } => self.emit_scalar(value, *style, *tag),
            Ev::SeqStart { .. } => {
                self.state = if self.flow_level > 0 || next_is(|e| matches!(e, Ev::SeqEnd { .. })) {
                    State::FlowSeqFirstItem
                } else {
                    State::BlockSeqFirstItem
                };
            }
            Ev::MapStart { .. } => {
                self.state = if self.flow_level > 0 || next_is(|e| matches!(e, Ev::MapEnd { .. })) {
                    State::FlowMapFirstKey
                } else {
                    State::BlockMapFirstKey
                };
            }
            _ => unreachable!("a node event"),
        }
    }

    // -- comments --

    fn process_head_comment(&mut self) {
        if !self.tail_comment.is_empty() {
            self.write_indent();
            let tail = std::mem::take(&mut self.tail_comment);
            self.write_comment(&tail);
            self.foot_indent = self.indent.max(0);
        }
        if self.head_comment.is_empty() {
            return;
        }
        self.write_indent();
        let head = std::mem::take(&mut self.head_comment);
        self.write_comment(&head);
    }

    fn process_line_comment(&mut self, linebreak: bool) {
        if self.line_comment.is_empty() {
            if linebreak {
                self.put_break();
            }
            return;
        }
        if !self.whitespace {
            self.put(' ');
        }
        let line = std::mem::take(&mut self.line_comment);
        self.write_comment(&line);
    }

    fn process_foot_comment(&mut self) {
        if self.foot_comment.is_empty() {
            return;
        }
        self.write_indent();
        let foot = std::mem::take(&mut self.foot_comment);
        self.write_comment(&foot);
        self.foot_indent = self.indent.max(0);
    }

    fn write_comment(&mut self, comment: &str) {
        let mut breaks = false;
        let mut pound = false;
        for c in comment.chars() {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
                pound = false;
            } else {
                if breaks {
                    self.write_indent();
                }
                if !pound {
                    if c != '#' {
                        self.put('#');
                        self.put(' ');
                    }
                    pound = true;
                }
                self.write(c);
                self.indention = false;
                breaks = false;
            }
        }
        if !breaks {
            self.put_break();
        }
        self.whitespace = true;
    }

    // -- low-level writing --

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    fn write(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    /// Writes text that holds no line break, as `write` writes each of its characters.
    fn write_str(&mut self, text: &str) {
        self.out.push_str(text);
        self.column += text.chars().count() as i64;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        if self.foot_indent == indent {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.foot_indent = -1;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        self.write_str(indicator);
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
        self.open_ended = false;
    }
}
