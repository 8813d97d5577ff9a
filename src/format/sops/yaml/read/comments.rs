//! Where comments go, as go-yaml places them: those on content lines (to the
//! right of a key, a bare dash, a flow collection, or a value that is only an
//! anchor or a tag), and the own-line ones after a collection's last value (its
//! foot, up to a blank line or the end of the file, or what follows).

use serde_saphyr::granit_parser::{self as gp, Event};

use super::{
    Builder, Deferred, Frame, Item, Open, Value, dash_at, first_comment, has_values, is_content,
    is_empty, size,
};

impl Builder<'_> {
    /// A comment on the same line as content: sops puts it before the entry it
    /// follows. One to the right of a bare `- ` comes before what the dash starts.
    pub(super) fn line_comment(&mut self, text: String, line: usize, col: usize, after_flow: bool) {
        // To the right of the first dash of a compact list still to open (`k:` /
        // `- # c`): as to the right of any bare dash.
        if let Some(Open {
            frame: Frame::Map { key: Some(_), .. },
            ..
        }) = self.stack.last()
            && line >= 1
            && self
                .lines
                .get(line - 1)
                .and_then(|l| l.get(..col))
                .is_some_and(|before| before.trim() == "-")
        {
            self.after_dash.get_or_insert(self.pending.len());
            self.pending.push((text, col, line));
            self.pending_line = line;
            return;
        }
        // To the right of a flow collection's opening, before its first entry
        // (`[ # c`): go-yaml drops it.
        if let Some(open) = self.stack.last()
            && open.flow_from.is_some()
            && !open.frame.has_entries()
        {
            return;
        }
        match self.stack.last_mut().map(|open| &mut open.frame) {
            // `key: {…} # c` or `key: […] # c`: the collection's first entry.
            Some(Frame::Map {
                items, key: None, ..
            }) if after_flow
                && matches!(
                    items.last(),
                    Some(Item::Pair(_, Value::Map(_) | Value::List(_)))
                ) =>
            {
                let Some(Item::Pair(_, value)) = items.last_mut() else {
                    unreachable!("matched above")
                };
                first_comment(value, text);
                // An alias of it (`*a`) has the comment too: it is the same node.
                if self.last_anchor != 0 {
                    let size = size(value);
                    self.anchors.insert(self.last_anchor, (value.clone(), size));
                }
            }
            Some(Frame::List(_)) if line > self.content_line => {
                self.after_dash.get_or_insert(self.pending.len());
                self.pending.push((text, col, line));
                self.pending_line = line;
            }
            Some(Frame::Map { key: Some(_), .. }) => self.right_of_key = Some(text),
            Some(Frame::Map { items, .. }) => {
                let at = items
                    .iter()
                    .rposition(|item| matches!(item, Item::Pair(..)))
                    .unwrap_or(items.len());
                items.insert(at, Item::Comment(text));
            }
            Some(Frame::List(items)) => {
                let at = items
                    .iter()
                    .rposition(|item| !matches!(item, Value::Comment(_)))
                    .unwrap_or(items.len());
                items.insert(at, Value::Comment(text));
            }
            // `{a: 1} # c` as the whole document: its first entry too.
            None if after_flow && let Some(root) = &mut self.root => {
                root.insert(0, Item::Comment(text));
            }
            None => self.pending.push((text, 0, 0)),
        }
    }

    /// Places the comment to the right of a map's key (`right_of_key`), now that the
    /// next event, `event`, shows what the value is: before the entry, or, for an
    /// empty value with an anchor or tag, held for what follows (`held_head`).
    pub(super) fn key_comment(&mut self, event: &Event<'_>, span: gp::Span) {
        let Some(text) = self.right_of_key.take() else {
            return;
        };
        match event {
            Event::Scalar(_, _, anchor, tag)
                if is_empty(span) && (*anchor != 0 || tag.is_some()) =>
            {
                self.held_head = Some((text, self.stack.len()));
            }
            // `k: &a # c` over the entries of a map or list: its first comment,
            // after those below the key (`open`, next, gives a map's value all
            // that is pending).
            Event::MappingStart(_, anchor, tag) | Event::SequenceStart(_, anchor, tag)
                if *anchor != 0 || tag.is_some() =>
            {
                self.pending
                    .push((text, span.start.col(), span.start.line()));
            }
            _ => self.before_entry(text),
        }
    }

    /// `text` as a comment before the entry being read in the innermost map.
    pub(super) fn before_entry(&mut self, text: String) {
        if let Some(Open {
            frame: Frame::Map { items, .. },
            ..
        }) = self.stack.last_mut()
        {
            items.push(Item::Comment(text));
        }
    }

    /// The comments a list being built holds when it has no entry yet, taken out of
    /// it as pending comments (at its entries' column).
    pub(super) fn leading_comments(&mut self) -> Vec<(String, usize, usize)> {
        let Some(Open {
            frame: Frame::List(items),
            col,
            ..
        }) = self.stack.last_mut()
        else {
            return Vec::new();
        };
        if !items.iter().all(|v| matches!(v, Value::Comment(_))) {
            return Vec::new();
        }
        let col = col.unwrap_or(0);
        items
            .drain(..)
            .filter_map(|v| match v {
                Value::Comment(text) => Some((text, col, 0)),
                _ => None,
            })
            .collect()
    }

    /// How many pending comments are the foot of the innermost collection closing,
    /// whose entries start at `col`, when a blank line ends them: the run of
    /// comments on the lines right after its last entry, none dedented from `col`,
    /// with a blank line after it and only comments at `col` or deeper between that
    /// line and what follows (at the end of the document, any comments). go-yaml
    /// gives that run to the collection and the comments after the blank to what
    /// follows, whatever their column (`x: 1` / `# c` / blank / `# d` / `b:` puts
    /// `# d` before `b`; at the end, the document takes them).
    pub(super) fn foot_then_blank(&self, col: Option<usize>) -> Option<usize> {
        let col = col?;
        if !self.follows_content() {
            return None;
        }
        let run = self.run_then_blank()?;
        let between = match self.next_content_col() {
            Some(_) => &self.pending[..],
            None => &self.pending[..run],
        };
        between.iter().all(|&(_, c, _)| c >= col).then_some(run)
    }

    /// The length of the run of pending comments on consecutive lines from the
    /// first, if a blank line follows it (before the next comment, or before what
    /// follows).
    fn run_then_blank(&self) -> Option<usize> {
        let run = 1 + self
            .pending
            .windows(2)
            .take_while(|w| w[1].2 == w[0].2 + 1)
            .count();
        let last = self.pending.get(run - 1)?.2;
        let blank = run < self.pending.len()
            || self
                .lines
                .get(last)
                .is_some_and(|l| l.trim().is_empty() && self.lines.len() > last + 1);
        blank.then_some(run)
    }

    /// Whether the first pending comment is on the line right after content (no
    /// blank line between).
    fn follows_content(&self) -> bool {
        self.pending
            .first()
            .and_then(|&(_, _, line)| line.checked_sub(2))
            .and_then(|i| self.lines.get(i))
            .is_some_and(|before| is_content(before))
    }

    /// Whether go-yaml gives none of the pending comments to `closing`, the
    /// innermost collection closing, nor to those closing with it, but all to what
    /// follows: at the end of the document, those after a blank line or after an
    /// empty value (`k:`); a run dedented to a column of its own and ended by a
    /// blank line; and those below a list's last bare `-` (its null has no extent)
    /// where the next key is the enclosing map's.
    pub(super) fn none_kept(&self, closing: &Open) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        // Right after the last value, dedented from the collection to a column no
        // enclosing one has, or to one left of what follows, and ended by a blank
        // line: go-yaml gives them to what follows (at the end of the document, when
        // comments follow the blank).
        let first = self.pending[0].1;
        let follows = self.follows_content();
        let next = self.next_content_col();
        let dedented = if follows
            && closing.col.is_some_and(|col| first < col)
            && (!self.stack.iter().any(|open| open.col == Some(first))
                || next.is_some_and(|next| first < next))
        {
            // The blank line must end the run at its own column: a comment at
            // another column first starts a run of its own (`first_run`).
            self.run_then_blank()
                .filter(|&run| run <= self.first_run(closing.col))
        } else {
            None
        };
        if next.is_none() {
            return self.last_empty
                || !follows
                || dedented.is_some_and(|run| run < self.pending.len());
        }
        if dedented.is_some() {
            return true;
        }
        self.last_empty
            && matches!(closing.frame, Frame::List(_))
            && self.stack.last().is_some_and(|up| {
                matches!(up.frame, Frame::Map { .. }) && up.col.is_some() && up.col == next
            })
    }

    /// Whether the document ends in the pending comments, right after content and
    /// with no line break after the last one.
    pub(super) fn unterminated_foot(&self) -> bool {
        !self.pending.is_empty()
            && !self.text.ends_with('\n')
            && self.next_content_col().is_none()
            && self.follows_content()
    }

    /// How long the first run of pending comments is, for a collection whose
    /// entries start at `col`: a comment dedented from `col` to another column than
    /// the first's starts a new run.
    pub(super) fn first_run(&self, col: Option<usize>) -> usize {
        let (Some(col), Some(&(_, first, _))) = (col, self.pending.first()) else {
            return 0;
        };
        1 + self.pending[1..]
            .iter()
            .take_while(|(_, c, _)| *c >= col || *c == first)
            .count()
    }

    /// How many of the pending comments go-yaml makes foot comments of the
    /// innermost collection closing, whose entries start at `col`, whatever their
    /// own indentation: the first run of them (a comment dedented from `col` to
    /// another column starts a new run), unless that run is all there is and
    /// sits at the column of what follows, whose head it then is.
    pub(super) fn foot_comments(&self, col: Option<usize>) -> usize {
        let run = self.first_run(col);
        let Some(&(_, first, _)) = self.pending.first().filter(|_| run > 0) else {
            return 0;
        };
        if run < self.pending.len() {
            return run;
        }
        // At the end of the input, the comments go by their column.
        let next = self.next_content_col();
        match next {
            Some(next) if next != first => run,
            _ => 0,
        }
    }

    /// go-yaml carries a run of comments that follows a list's entry, dedented below
    /// that entry's collection (the entry's own map, or the list for a scalar entry)
    /// and ended by a blank line, past the first node of the list's next entry, when
    /// the list goes on: `- a` / `# c` / blank / `- b` / `- z` puts `# c` between
    /// `b` and `z`, and a next entry `- x: 1` / `y: 2` puts it before `y`. Such a run
    /// is taken out of the pending comments, for `release_deferred`.
    pub(super) fn defer_dedented_run(&mut self) {
        if !self.may_carry() {
            return;
        }
        let Some(next) = self.next_content_line() else {
            return;
        };
        // The list the next line goes on with, its entry (if a collection) above it.
        let Some(at) = self.stack.iter().rposition(|open| {
            matches!(open.frame, Frame::List(_)) && open.col.is_some_and(|col| dash_at(next, col))
        }) else {
            return;
        };
        // The comments follow an entry of that list: one read, or one still open.
        let open_entry = at + 1 < self.stack.len();
        if !open_entry
            && !matches!(&self.stack[at].frame, Frame::List(values) if has_values(values))
        {
            return;
        }
        if self.stack[at..].iter().any(|open| open.flow_from.is_some()) {
            return;
        }
        let Some(below) = self.stack.get(at + 1).unwrap_or(&self.stack[at]).col else {
            return;
        };
        let Some(run) = self.run_then_blank() else {
            return;
        };
        if self.pending[..run].iter().all(|&(_, col, _)| col < below) {
            // An entry still open above the list goes in first: the run waits for
            // the one after it.
            self.deferred = Some(Deferred {
                run: self.pending.drain(..run).collect(),
                depth: at + 1,
                armed: !open_entry,
            });
        }
    }

    /// The same carrying for a block map or list opening as a map's value on the
    /// lines below its key: a run right after the key, dedented below the map the
    /// key is in and ended by a blank line, goes past the new collection's first
    /// node (`b:` / `# c` / blank / `x: 1` / `y: 2` puts `# c` before `y`). The
    /// run, taken out of the pending comments, for the caller to hold.
    pub(super) fn carry_into_value(&mut self) -> Option<Vec<(String, usize, usize)>> {
        let Some(Open {
            frame: Frame::Map { .. },
            col: Some(col),
            flow_from: None,
            ..
        }) = self.stack.last()
        else {
            return None;
        };
        if !self.may_carry() {
            return None;
        }
        let run = self.run_then_blank()?;
        self.pending[..run]
            .iter()
            .all(|&(_, c, _)| c < *col)
            .then(|| self.pending.drain(..run).collect())
    }

    /// Whether comments wait right after content and no run is held already: the
    /// first condition of both carryings.
    fn may_carry(&self) -> bool {
        self.deferred.is_none() && !self.pending.is_empty() && self.follows_content()
    }

    /// `defer_dedented_run` where the entry before is a scalar (or an alias): no
    /// collection closed after it to look then.
    pub(super) fn defer_after_scalar_entry(&mut self) {
        if let Some(Open {
            frame: Frame::List(values),
            ..
        }) = self.stack.last()
            && values
                .iter()
                .rev()
                .find(|v| !matches!(v, Value::Comment(_)))
                .is_some_and(|v| !matches!(v, Value::Map(_) | Value::List(_)))
        {
            self.defer_dedented_run();
        }
    }

    /// Places the run `defer_dedented_run` took, once the first node of the list's
    /// next entry is read: after a scalar entry, in the list; after a block map's
    /// first pair, in that map.
    pub(super) fn release_deferred(&mut self) {
        let here = self.stack.len();
        let Some(held) = &mut self.deferred else {
            return;
        };
        // The entry that was open when the run was taken, now in its list: the next
        // one is the run's.
        if here == held.depth && !held.armed {
            held.armed = true;
            return;
        }
        let depth = held.depth;
        let first_pair = held.armed
            && here == depth + 1
            && self
                .stack
                .get(depth - 1)
                .is_some_and(|list| matches!(list.frame, Frame::List(_)))
            && self.stack.last().is_some_and(|open| {
                open.flow_from.is_none()
                    && matches!(&open.frame, Frame::Map { items, .. }
                        if items.iter().filter(|i| matches!(i, Item::Pair(..))).take(2).count() == 1)
            });
        let entry = held.armed && here == depth;
        if (entry || first_pair)
            && let Some(Deferred { run, .. }) = self.deferred.take()
            && let Some(open) = self.stack.last_mut()
        {
            open.frame.push_comments(run);
        }
    }

    /// A list closing with a run still held for its next entry (which the parser
    /// did not give it after all): the run is its last entries.
    pub(super) fn release_deferred_at_close(&mut self) {
        if self
            .deferred
            .as_ref()
            .is_some_and(|held| held.depth == self.stack.len())
            && let Some(Deferred { run, .. }) = self.deferred.take()
            && let Some(open) = self.stack.last_mut()
        {
            open.frame.push_comments(run);
        }
    }
}
