//! sops's regular-expression options (`encrypted_regex`, `unencrypted_regex` and
//! the two comment ones) evaluated as sops evaluates them: with Go's `regexp`, whose
//! RE2 syntax differs from the `regex` crate's (`\w \d \s \b` are ASCII, `\Q…\E`
//! quotes, `\123` is octal, `\<` is a plain `<`, the only flags are `i m s U`). A
//! pattern is parsed here the way Go parses it and handed to the regex engine as a
//! syntax tree, so no rule of the Rust syntax ever applies.
//!
//! sops ignores a pattern Go refuses (`regexp.Match`'s error is dropped), so such
//! an option matches nothing; `keys` refuses one in a policy instead.

use regex_automata::meta;
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Dot, Hir, HirKind, Look};

/// A pattern as Go's `regexp` matches it.
#[derive(Debug)]
pub struct GoRegex(Option<meta::Regex>);

impl GoRegex {
    /// Compiles `pattern` as Go does; the reason says why Go refuses it, in Go's
    /// words and with the offending part.
    pub fn new(pattern: &str) -> Result<GoRegex, String> {
        deep_stack(pattern, || {
            let tree = Parser::new(pattern, Limits::GO).parse()?;
            tree.check_size()?;
            compile(&tree).map(|re| GoRegex(Some(re)))
        })
    }

    /// `pattern` as sops uses it when it reads or writes a file: one that Go refuses
    /// matches nothing. Errs only when Go accepts a pattern too large for this engine.
    pub fn as_sops_uses(pattern: &str) -> Result<GoRegex, String> {
        deep_stack(pattern, || {
            match Parser::new(pattern, Limits::READING).parse() {
                Ok(tree) => compile(&tree).map(|re| GoRegex(Some(re))),
                Err(_) => Ok(GoRegex(None)),
            }
        })
    }

    /// Whether the pattern matches anywhere in `text` (Go's `regexp.Match`).
    pub fn is_match(&self, text: &str) -> bool {
        self.0.as_ref().is_some_and(|re| re.is_match(text))
    }
}

/// Runs `f` on a thread with room for the recursion of a deeply nested pattern
/// (the tree and the engine's compiler walk it recursively); a short pattern
/// cannot nest deeply and runs here.
fn deep_stack(
    pattern: &str,
    f: impl FnOnce() -> Result<GoRegex, String> + Send,
) -> Result<GoRegex, String> {
    if pattern.len() < 128 {
        return f();
    }
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(scope, f)
            .map_err(|_| "expression too large".to_string())?;
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn compile(tree: &Tree) -> Result<meta::Regex, String> {
    let hir = tree.hir();
    meta::Regex::builder()
        .configure(meta::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
        .build_from_hir(&hir)
        .map_err(|_| "expression too large".to_string())
}

/// About the memory Go allows a compiled pattern (128 MiB).
const NFA_SIZE_LIMIT: usize = 128 << 20;

/// Go's limits: repetition counts (and their nested product), tree height, and the
/// size of the compiled program and of its character classes.
#[derive(Clone, Copy)]
struct Limits {
    repeat: u32,
    height: usize,
}

impl Limits {
    const GO: Limits = Limits {
        repeat: 1000,
        height: 1000,
    };
    /// Reading a pattern sops wrote: Go's counts, and a height with room for where
    /// this tree's shape differs from Go's (Go factors alternatives), still shallow
    /// enough for the recursive steps that follow.
    const READING: Limits = Limits {
        repeat: 1000,
        height: 2000,
    };
}

/// Go's `maxSize` (instructions) and `maxRunes` (class bounds).
const MAX_SIZE: u64 = (128 << 20) / 40;
const MAX_RUNES: u64 = (128 << 20) / 4;

#[derive(Clone, Copy, Default)]
struct Flags {
    fold: bool,
    multi_line: bool,
    dot_nl: bool,
    ungreedy: bool,
}

/// A parsed pattern: Go's tree, with its height.
struct Tree {
    node: Node,
    height: usize,
}

enum Node {
    Empty,
    /// A code point (a surrogate from `\x{D800}` matches nothing).
    Char {
        c: u32,
        fold: bool,
    },
    Class(ClassUnicode),
    Any {
        newline: bool,
    },
    Look(Look),
    /// A capturing group: a node in Go's tree, transparent to matching.
    Capture(Box<Tree>),
    Repeat {
        min: u32,
        max: Option<u32>,
        greedy: bool,
        /// `{n,m}` (Go's OpRepeat), not `*`, `+` or `?`.
        counted: bool,
        sub: Box<Tree>,
    },
    Concat(Vec<Tree>),
    Alternate(Vec<Tree>),
}

impl Tree {
    fn leaf(node: Node) -> Tree {
        Tree { node, height: 1 }
    }

    fn subs(&self) -> &[Tree] {
        match &self.node {
            Node::Capture(sub) | Node::Repeat { sub, .. } => std::slice::from_ref(sub),
            Node::Concat(subs) | Node::Alternate(subs) => subs,
            _ => &[],
        }
    }

    /// Go's check that nested counted repetitions make at most `n` copies.
    fn repeat_is_valid(&self, mut n: u32) -> bool {
        if let Node::Repeat {
            counted: true,
            min,
            max,
            ..
        } = &self.node
        {
            let m = match max {
                Some(0) => return true,
                Some(m) => *m,
                None => *min,
            };
            if m > n {
                return false;
            }
            n = n.checked_div(m).unwrap_or(n);
        }
        self.subs().iter().all(|s| s.repeat_is_valid(n))
    }

    /// Go's estimate of the compiled program, and the class bounds it holds.
    fn size(&self) -> (u64, u64) {
        let (mut size, mut runes) = (0u64, 0u64);
        let mut sub_sizes = Vec::new();
        for sub in self.subs() {
            let (s, r) = sub.size();
            sub_sizes.push(s);
            runes = runes.saturating_add(r);
        }
        let sum: u64 = sub_sizes.iter().fold(0, |a, b| a.saturating_add(*b));
        match &self.node {
            Node::Char { .. } => {
                size = 1;
                runes += 1;
            }
            Node::Class(c) => runes += 2 * c.ranges().len() as u64,
            Node::Capture(_) => size = sum.saturating_add(2),
            Node::Repeat {
                min,
                max,
                counted: false,
                ..
            } => size = sum.saturating_add(if *min == 0 && max.is_none() { 2 } else { 1 }),
            Node::Repeat { min, max, .. } => {
                size = match max {
                    None if *min == 0 => sum.saturating_add(2),
                    None => sum.saturating_mul(u64::from(*min)).saturating_add(1),
                    Some(max) => sum
                        .saturating_mul(u64::from(*max))
                        .saturating_add(u64::from(max - min)),
                }
            }
            Node::Concat(_) => size = sum,
            Node::Alternate(subs) => size = sum.saturating_add(subs.len() as u64 - 1),
            _ => {}
        }
        (size.max(1), runes)
    }

    fn check_size(&self) -> Result<(), String> {
        let (size, runes) = self.size();
        if size > MAX_SIZE || runes > MAX_RUNES {
            return Err("expression too large".into());
        }
        Ok(())
    }

    fn hir(&self) -> Hir {
        match &self.node {
            Node::Empty => Hir::empty(),
            Node::Char { c, fold } => match char::from_u32(*c) {
                None => Hir::fail(),
                Some(c) if *fold => Hir::class(Class::Unicode(folded(single(c)))),
                Some(c) => Hir::literal(c.to_string().into_bytes()),
            },
            Node::Class(class) => Hir::class(Class::Unicode(class.clone())),
            Node::Any { newline: true } => Hir::dot(Dot::AnyChar),
            Node::Any { newline: false } => Hir::dot(Dot::AnyCharExceptLF),
            Node::Look(look) => Hir::look(*look),
            Node::Capture(sub) => sub.hir(),
            Node::Repeat {
                min,
                max,
                greedy,
                sub,
                ..
            } => Hir::repetition(regex_syntax::hir::Repetition {
                min: *min,
                max: *max,
                greedy: *greedy,
                sub: Box::new(sub.hir()),
            }),
            Node::Concat(subs) => Hir::concat(subs.iter().map(Tree::hir).collect()),
            Node::Alternate(subs) => Hir::alternation(subs.iter().map(Tree::hir).collect()),
        }
    }
}

fn single(c: char) -> ClassUnicode {
    ClassUnicode::new([ClassUnicodeRange::new(c, c)])
}

fn folded(mut class: ClassUnicode) -> ClassUnicode {
    class.case_fold_simple();
    class
}

/// The code points `lo..=hi` (surrogates, which never match, left out).
fn range(lo: u32, hi: u32) -> ClassUnicode {
    let mut class = ClassUnicode::empty();
    for (a, b) in [(lo, hi.min(0xD7FF)), (lo.max(0xE000), hi)] {
        if let (Some(a), Some(b)) = (char::from_u32(a), char::from_u32(b))
            && a <= b
        {
            class.union(&ClassUnicode::new([ClassUnicodeRange::new(a, b)]));
        }
    }
    class
}

/// Go's POSIX classes (`[:alpha:]`): ASCII, the same as the regex crate's.
fn posix_class(name: &str) -> Option<ClassUnicode> {
    const NAMES: &str =
        "alnum alpha ascii blank cntrl digit graph lower print punct space upper word xdigit";
    if !NAMES.split(' ').any(|n| n == name) {
        return None;
    }
    let hir = regex_syntax::Parser::new()
        .parse(&format!("[[:{name}:]]"))
        .ok()?;
    match hir.into_kind() {
        HirKind::Class(Class::Unicode(class)) => Some(class),
        _ => None,
    }
}

/// Go's Perl classes (`\d`, `\D`…): ASCII, and `\s` without `\v`.
fn perl_class(c: char) -> Option<(bool, ClassUnicode)> {
    let class = match c.to_ascii_lowercase() {
        'd' => posix_class("digit"),
        'w' => posix_class("word"),
        's' => posix_class("space").map(|mut space| {
            space.difference(&single('\u{b}'));
            space
        }),
        _ => None,
    }?;
    Some((c.is_ascii_uppercase(), class))
}

/// A Perl or POSIX class as Go builds it: case-folded first, then negated.
fn group(negated: bool, mut class: ClassUnicode, flags: Flags) -> ClassUnicode {
    if flags.fold {
        class.case_fold_simple();
    }
    if negated {
        class.negate();
    }
    class
}

/// Go's `canonicalName`: first letter upper case, the rest lower case, without
/// `_`, `-` and spaces.
fn canonical(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().filter(|c| !matches!(c, '_' | '-' | ' ')) {
        if out.is_empty() {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Go's general categories (with `LC` and `Cn`), their Unicode aliases as
/// `alias=category`, and the scripts of Unicode 15.0 (Go's Unicode version) that
/// Go 1.25 finds: it looks a script up by the canonical form of the name given
/// (`Greek`), which no name of two words (`Old_Italic`) or with a capital inside
/// (`SignWriting`) has.
const CATEGORIES: &str = "C Cc Cf Cn Co Cs L LC Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf \
Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs";
const CATEGORY_ALIASES: &str = "\
Other=C Control=Cc cntrl=Cc Format=Cf Unassigned=Cn Private_Use=Co Surrogate=Cs Letter=L \
Cased_Letter=LC Lowercase_Letter=Ll Modifier_Letter=Lm Other_Letter=Lo \
Titlecase_Letter=Lt Uppercase_Letter=Lu Mark=M Combining_Mark=M Spacing_Mark=Mc \
Enclosing_Mark=Me Nonspacing_Mark=Mn Number=N Decimal_Number=Nd digit=Nd Letter_Number=Nl \
Other_Number=No Punctuation=P punct=P Connector_Punctuation=Pc Dash_Punctuation=Pd \
Close_Punctuation=Pe Final_Punctuation=Pf Initial_Punctuation=Pi Other_Punctuation=Po \
Open_Punctuation=Ps Symbol=S Currency_Symbol=Sc Modifier_Symbol=Sk Math_Symbol=Sm \
Other_Symbol=So Separator=Z Line_Separator=Zl Paragraph_Separator=Zp Space_Separator=Zs";
const SCRIPTS: &str = "\
Adlam Ahom Arabic Armenian Avestan Balinese Bamum Batak Bengali Bhaiksuki Bopomofo Brahmi \
Braille Buginese Buhid Carian Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform \
Cypriot Cyrillic Deseret Devanagari Dogra Duployan Elbasan Elymaic Ethiopic Georgian \
Glagolitic Gothic Grantha Greek Gujarati Gurmukhi Han Hangul Hanunoo Hatran Hebrew \
Hiragana Inherited Javanese Kaithi Kannada Katakana Kawi Kharoshthi Khmer Khojki \
Khudawadi Lao Latin Lepcha Limbu Lisu Lycian Lydian Mahajani Makasar Malayalam Mandaic \
Manichaean Marchen Medefaidrin Miao Modi Mongolian Mro Multani Myanmar Nabataean \
Nandinagari Newa Nko Nushu Ogham Oriya Osage Osmanya Palmyrene Phoenician Rejang Runic \
Samaritan Saurashtra Sharada Shavian Siddham Sinhala Sogdian Soyombo Sundanese Syriac \
Tagalog Tagbanwa Takri Tamil Tangsa Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta \
Toto Ugaritic Vai Vithkuqi Wancho Yezidi Yi";

/// The code points of a Unicode class Go knows by `name`, looked up as Go 1.25 does
/// (case, `_`, `-` and spaces ignored); `None` for a name Go does not know.
fn unicode_table(name: &str) -> Option<ClassUnicode> {
    let name = canonical(name);
    let property = match name.as_str() {
        "Any" => return Some(range(0, 0x10FFFF)),
        "Ascii" => return Some(range(0, 0x7F)),
        "Assigned" => "Assigned",
        "Cs" | "Surrogate" => return Some(ClassUnicode::empty()),
        _ => CATEGORIES
            .split(' ')
            .find(|n| canonical(n) == name)
            .or_else(|| SCRIPTS.split(' ').find(|n| *n == name))
            .or_else(|| {
                CATEGORY_ALIASES
                    .split(' ')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(alias, _)| canonical(alias) == name)
                    .map(|(_, category)| category)
            })?,
    };
    let hir = regex_syntax::Parser::new()
        .parse(&format!("\\p{{{property}}}"))
        .ok()?;
    Some(match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class.clone(),
        HirKind::Literal(lit) => std::str::from_utf8(&lit.0)
            .ok()
            .and_then(|s| s.chars().next())
            .map_or_else(ClassUnicode::empty, single),
        _ => ClassUnicode::empty(),
    })
}

/// One open group: the alternatives so far and the concatenation being built.
struct Frame {
    /// `None` for the whole pattern.
    capture: Option<bool>,
    /// The flags to restore at its `)`.
    flags: Flags,
    alternatives: Vec<Tree>,
    concat: Vec<Tree>,
}

impl Frame {
    fn new(capture: Option<bool>, flags: Flags) -> Frame {
        Frame {
            capture,
            flags,
            alternatives: Vec::new(),
            concat: Vec::new(),
        }
    }
}

/// Go's error: its code and the offending part of the pattern.
fn refused(code: &str, fragment: &str) -> String {
    let hint = match code {
        INVALID_ESCAPE if fragment.len() == 2 && fragment.as_bytes()[1].is_ascii_digit() => {
            " (a backreference: Go's regexp has none)"
        }
        INVALID_PERL_OP if fragment.starts_with("(?=") || fragment.starts_with("(?!") => {
            " (lookahead: Go's regexp has none)"
        }
        INVALID_NAMED_CAPTURE if fragment.starts_with("(?<=") || fragment.starts_with("(?<!") => {
            " (lookbehind: Go's regexp has none)"
        }
        INVALID_REPEAT_OP if fragment.ends_with('+') => {
            " (a possessive repetition: Go's regexp has none)"
        }
        _ => "",
    };
    format!("{code}: `{fragment}`{hint}")
}

const INVALID_CHAR_CLASS_RANGE: &str = "invalid character class range";
const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_BRACKET: &str = "missing closing ]";
const MISSING_PAREN: &str = "missing closing )";
const MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const UNEXPECTED_PAREN: &str = "unexpected )";
const NESTING_DEPTH: &str = "expression nests too deeply";

struct Parser<'p> {
    whole: &'p str,
    limits: Limits,
    flags: Flags,
    frames: Vec<Frame>,
}

fn first(s: &str) -> Option<char> {
    s.chars().next()
}

/// What `s` had before `rest`: the part consumed.
fn taken<'a>(s: &'a str, rest: &str) -> &'a str {
    &s[..s.len() - rest.len()]
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn octal(c: char) -> Option<u32> {
    c.to_digit(8)
}

impl<'p> Parser<'p> {
    fn new(whole: &'p str, limits: Limits) -> Parser<'p> {
        Parser {
            whole,
            limits,
            flags: Flags::default(),
            frames: vec![Frame::new(None, Flags::default())],
        }
    }

    fn frame(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("the whole pattern's frame")
    }

    fn push(&mut self, tree: Tree) {
        self.frame().concat.push(tree);
    }

    fn literal(&mut self, c: u32) {
        let fold = self.flags.fold;
        self.push(Tree::leaf(Node::Char { c, fold }));
    }

    fn class(&mut self, class: ClassUnicode) {
        self.push(Tree::leaf(Node::Class(class)));
    }

    fn check_height(&self, tree: &Tree) -> Result<(), String> {
        if tree.height > self.limits.height {
            return Err(refused(NESTING_DEPTH, self.whole));
        }
        Ok(())
    }

    fn parse(mut self) -> Result<Tree, String> {
        let mut t: &str = self.whole;
        let mut last_repeat: Option<&str> = None;
        while let Some(c) = first(t) {
            let mut repeat = None;
            match c {
                '(' if t[1..].starts_with('?') => t = self.perl_flags(t)?,
                '(' => {
                    self.frames.push(Frame::new(Some(true), self.flags));
                    t = &t[1..];
                }
                '|' => {
                    let concat = self.concat()?;
                    self.frame().alternatives.push(concat);
                    t = &t[1..];
                }
                ')' => {
                    self.right_paren()?;
                    t = &t[1..];
                }
                '^' => {
                    let look = if self.flags.multi_line {
                        Look::StartLF
                    } else {
                        Look::Start
                    };
                    self.push(Tree::leaf(Node::Look(look)));
                    t = &t[1..];
                }
                '$' => {
                    let look = if self.flags.multi_line {
                        Look::EndLF
                    } else {
                        Look::End
                    };
                    self.push(Tree::leaf(Node::Look(look)));
                    t = &t[1..];
                }
                '.' => {
                    let newline = self.flags.dot_nl;
                    self.push(Tree::leaf(Node::Any { newline }));
                    t = &t[1..];
                }
                '[' => t = self.parse_class(t)?,
                '*' | '+' | '?' => {
                    let (min, max) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    let before = t;
                    t = self.repeat(min, max, false, before, &t[1..], last_repeat)?;
                    repeat = Some(before);
                }
                '{' => match parse_repeat(t) {
                    None => {
                        self.literal('{' as u32);
                        t = &t[1..];
                    }
                    Some((min, max, after)) => {
                        let before = t;
                        let op = taken(before, after);
                        let limit = self.limits.repeat;
                        match (min, max) {
                            (Some(min), Some(Some(max)))
                                if min <= limit && max <= limit && min <= max => {}
                            (Some(min), Some(None)) if min <= limit => {}
                            _ => return Err(refused(INVALID_REPEAT_SIZE, op)),
                        }
                        let (min, max) = (min.unwrap_or(0), max.flatten());
                        t = self.repeat(min, max, true, before, after, last_repeat)?;
                        repeat = Some(before);
                    }
                },
                '\\' => t = self.escape(t)?,
                c => {
                    self.literal(c as u32);
                    t = &t[c.len_utf8()..];
                }
            }
            last_repeat = repeat;
        }
        let concat = self.concat()?;
        self.frame().alternatives.push(concat);
        if self.frames.len() != 1 {
            return Err(refused(MISSING_PAREN, self.whole));
        }
        let frame = self.frames.pop().expect("the whole pattern's frame");
        self.alternate(frame.alternatives)
    }

    /// `(?` … : a named capture, or flags with or without a group.
    fn perl_flags(&mut self, s: &'p str) -> Result<&'p str, String> {
        let b = s.as_bytes();
        let starts_with_p = b.len() > 4 && b[2] == b'P' && b[3] == b'<';
        let starts_with_name = b.len() > 3 && b[2] == b'<';
        if starts_with_p || starts_with_name {
            let start = if starts_with_p { 4 } else { 3 };
            let Some(end) = s.find('>') else {
                return Err(refused(INVALID_NAMED_CAPTURE, s));
            };
            let name = &s[start..end];
            if name.is_empty() || !name.chars().all(|c| c == '_' || is_alnum(c)) {
                return Err(refused(INVALID_NAMED_CAPTURE, &s[..=end]));
            }
            self.frames.push(Frame::new(Some(true), self.flags));
            return Ok(&s[end + 1..]);
        }
        let mut t = &s[2..];
        let mut flags = self.flags;
        let mut negated = false;
        let mut saw_flag = false;
        while let Some(c) = first(t) {
            t = &t[c.len_utf8()..];
            let value = !negated;
            match c {
                'i' => flags.fold = value,
                'm' => flags.multi_line = value,
                's' => flags.dot_nl = value,
                'U' => flags.ungreedy = value,
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                    continue;
                }
                ':' | ')' if !negated || saw_flag => {
                    if c == ':' {
                        self.frames.push(Frame::new(Some(false), self.flags));
                    }
                    self.flags = flags;
                    return Ok(t);
                }
                _ => break,
            }
            saw_flag = true;
        }
        Err(refused(INVALID_PERL_OP, taken(s, t)))
    }

    /// The current concatenation, taken out of its frame.
    fn concat(&mut self) -> Result<Tree, String> {
        let items = std::mem::take(&mut self.frame().concat);
        let mut flat: Vec<Tree> = Vec::new();
        for item in items {
            match item.node {
                Node::Concat(subs) => flat.extend(subs),
                node => flat.push(Tree {
                    node,
                    height: item.height,
                }),
            }
        }
        let tree = match flat.len() {
            0 => Tree::leaf(Node::Empty),
            1 => flat.pop().expect("one item"),
            _ => {
                // Go keeps a run of literals as one node.
                let literals = flat.iter().all(|t| matches!(t.node, Node::Char { .. }));
                let height = if literals {
                    1
                } else {
                    1 + flat.iter().map(|t| t.height).max().unwrap_or(0)
                };
                Tree {
                    node: Node::Concat(flat),
                    height,
                }
            }
        };
        self.check_height(&tree)?;
        Ok(tree)
    }

    fn alternate(&self, alternatives: Vec<Tree>) -> Result<Tree, String> {
        let mut flat: Vec<Tree> = Vec::new();
        for alt in alternatives {
            match alt.node {
                Node::Alternate(subs) => flat.extend(subs),
                node => flat.push(Tree {
                    node,
                    height: alt.height,
                }),
            }
        }
        let tree = if flat.len() == 1 {
            flat.pop().expect("one alternative")
        } else {
            let height = 1 + flat.iter().map(|t| t.height).max().unwrap_or(0);
            Tree {
                node: Node::Alternate(flat),
                height,
            }
        };
        self.check_height(&tree)?;
        Ok(tree)
    }

    fn right_paren(&mut self) -> Result<(), String> {
        let concat = self.concat()?;
        self.frame().alternatives.push(concat);
        if self.frames.len() < 2 {
            return Err(refused(UNEXPECTED_PAREN, self.whole));
        }
        let frame = self.frames.pop().expect("an open group");
        self.flags = frame.flags;
        let inner = self.alternate(frame.alternatives)?;
        let tree = if frame.capture == Some(true) {
            Tree {
                height: inner.height + 1,
                node: Node::Capture(Box::new(inner)),
            }
        } else {
            inner
        };
        self.check_height(&tree)?;
        self.push(tree);
        Ok(())
    }

    /// Applies a repetition to the last item; `after` is the pattern after the
    /// operator, `before` from it.
    fn repeat(
        &mut self,
        min: u32,
        max: Option<u32>,
        counted: bool,
        before: &'p str,
        mut after: &'p str,
        last_repeat: Option<&'p str>,
    ) -> Result<&'p str, String> {
        let mut ungreedy = self.flags.ungreedy;
        if let Some(rest) = after.strip_prefix('?') {
            after = rest;
            ungreedy = !ungreedy;
        }
        if let Some(last) = last_repeat {
            return Err(refused(INVALID_REPEAT_OP, taken(last, after)));
        }
        let Some(sub) = self.frame().concat.pop() else {
            return Err(refused(MISSING_REPEAT_ARGUMENT, taken(before, after)));
        };
        let tree = Tree {
            height: sub.height + 1,
            node: Node::Repeat {
                min,
                max,
                greedy: !ungreedy,
                counted,
                sub: Box::new(sub),
            },
        };
        self.check_height(&tree)?;
        if counted
            && (min >= 2 || max.is_some_and(|m| m >= 2))
            && !tree.repeat_is_valid(self.limits.repeat)
        {
            return Err(refused(INVALID_REPEAT_SIZE, taken(before, after)));
        }
        self.push(tree);
        Ok(after)
    }

    /// A backslash outside a class.
    fn escape(&mut self, t: &'p str) -> Result<&'p str, String> {
        match t[1..].chars().next() {
            Some('A') => {
                self.push(Tree::leaf(Node::Look(Look::Start)));
                return Ok(&t[2..]);
            }
            Some('z') => {
                self.push(Tree::leaf(Node::Look(Look::End)));
                return Ok(&t[2..]);
            }
            Some('b') => {
                self.push(Tree::leaf(Node::Look(Look::WordAscii)));
                return Ok(&t[2..]);
            }
            Some('B') => {
                self.push(Tree::leaf(Node::Look(Look::WordAsciiNegate)));
                return Ok(&t[2..]);
            }
            Some('C') => return Err(refused(INVALID_ESCAPE, &t[..2])),
            Some('Q') => {
                let (quoted, rest) = match t[2..].find("\\E") {
                    Some(end) => (&t[2..2 + end], &t[2 + end + 2..]),
                    None => (&t[2..], ""),
                };
                for c in quoted.chars() {
                    self.literal(c as u32);
                }
                return Ok(rest);
            }
            Some('p' | 'P') => {
                let (class, rest) = self.unicode_class(t)?;
                self.class(class);
                return Ok(rest);
            }
            Some(c) => {
                if let Some((negated, class)) = perl_class(c) {
                    let class = group(negated, class, self.flags);
                    self.class(class);
                    return Ok(&t[2..]);
                }
            }
            None => {}
        }
        let (c, rest) = parse_escape(t)?;
        self.literal(c);
        Ok(rest)
    }

    /// `\pN`, `\p{Name}`, `\PN`, `\P{Name}`, `\p{^Name}`.
    fn unicode_class(&self, s: &'p str) -> Result<(ClassUnicode, &'p str), String> {
        let mut negated = s.as_bytes()[1] == b'P';
        let t = &s[2..];
        let (seq, mut name, rest) = match first(t) {
            Some('{') => {
                let Some(end) = s.find('}') else {
                    return Err(refused(INVALID_CHAR_CLASS_RANGE, s));
                };
                (&s[..=end], &s[3..end], &s[end + 1..])
            }
            Some(c) => {
                let len = 2 + c.len_utf8();
                (&s[..len], &s[2..len], &s[len..])
            }
            None => (s, "", ""),
        };
        if let Some(n) = name.strip_prefix('^') {
            negated = !negated;
            name = n;
        }
        let mut class =
            unicode_table(name).ok_or_else(|| refused(INVALID_CHAR_CLASS_RANGE, seq))?;
        if self.flags.fold {
            class.case_fold_simple();
        }
        if negated {
            class.negate();
        }
        Ok((class, rest))
    }

    /// A bracketed class, as Go reads it: `]` first is a member, `-` is a member
    /// where it cannot make a range, `[` is a member unless it opens `[:name:]`.
    fn parse_class(&mut self, s: &'p str) -> Result<&'p str, String> {
        let mut t = &s[1..];
        let mut negated = false;
        if let Some(rest) = t.strip_prefix('^') {
            negated = true;
            t = rest;
        }
        let mut class = ClassUnicode::empty();
        let mut first_item = true;
        while first_item || !t.starts_with(']') {
            first_item = false;
            if t.len() > 2
                && t.starts_with("[:")
                && let Some(i) = t[2..].find(":]")
            {
                let name = &t[..i + 4];
                let inner = &name[2..name.len() - 2];
                let (neg, inner) = match inner.strip_prefix('^') {
                    Some(n) => (true, n),
                    None => (false, inner),
                };
                let posix =
                    posix_class(inner).ok_or_else(|| refused(INVALID_CHAR_CLASS_RANGE, name))?;
                class.union(&group(neg, posix, self.flags));
                t = &t[name.len()..];
                continue;
            }
            if t.len() >= 2 && t.starts_with('\\') {
                let c = t[1..].chars().next().unwrap_or('\\');
                if c == 'p' || c == 'P' {
                    let (u, rest) = self.unicode_class(t)?;
                    class.union(&u);
                    t = rest;
                    continue;
                }
                if let Some((neg, perl)) = perl_class(c) {
                    class.union(&group(neg, perl, self.flags));
                    t = &t[2..];
                    continue;
                }
            }
            let start = t;
            let (lo, rest) = class_char(t, s)?;
            t = rest;
            let mut hi = lo;
            if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
                let (h, rest) = class_char(&t[1..], s)?;
                t = rest;
                if h < lo {
                    return Err(refused(INVALID_CHAR_CLASS_RANGE, taken(start, t)));
                }
                hi = h;
            }
            let mut r = range(lo, hi);
            if self.flags.fold {
                r.case_fold_simple();
            }
            class.union(&r);
        }
        if negated {
            class.negate();
        }
        self.class(class);
        Ok(&t[1..])
    }
}

/// A class member: an escape or a character; `whole` is the class, for the error
/// when it is not closed.
fn class_char<'a>(t: &'a str, whole: &str) -> Result<(u32, &'a str), String> {
    match first(t) {
        None => Err(refused(MISSING_BRACKET, whole)),
        Some('\\') => parse_escape(t),
        Some(c) => Ok((c as u32, &t[c.len_utf8()..])),
    }
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `s`: (min, max, rest), where `max` is
/// `Some(None)` for no upper bound and a number too large is `None`; `None` when
/// `s` does not have that form (the brace is then a literal).
#[allow(clippy::type_complexity)]
fn parse_repeat(s: &str) -> Option<(Option<u32>, Option<Option<u32>>, &str)> {
    let s = s.strip_prefix('{')?;
    let (min, s) = parse_int(s)?;
    let (max, s) = match s.strip_prefix(',') {
        None => (Some(min), s),
        Some(s) if s.starts_with('}') => (None, s),
        Some(s) => {
            let (max, s) = parse_int(s)?;
            (Some(max), s)
        }
    };
    let rest = s.strip_prefix('}')?;
    // A bound too large makes the whole count invalid.
    let max = match max {
        Some(None) => None,
        Some(Some(m)) => Some(Some(m)),
        None => Some(None),
    };
    let min = if max.is_none() { None } else { min };
    Some((min, max, rest))
}

/// A decimal number without leading zeros: `None` inside when it is over 10^8.
fn parse_int(s: &str) -> Option<(Option<u32>, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let value = if digits > 9 {
        None
    } else {
        s[..digits]
            .parse::<u32>()
            .ok()
            .filter(|v| *v <= 100_000_000)
    };
    Some((value, &s[digits..]))
}

/// A single-character escape: `\n`, `\x41`, `\x{263a}`, octal `\123`, or an escaped
/// punctuation character.
fn parse_escape(s: &str) -> Result<(u32, &str), String> {
    let mut t = &s[1..];
    let Some(c) = first(t) else {
        return Err(refused(TRAILING_BACKSLASH, ""));
    };
    t = &t[c.len_utf8()..];
    let bad = |t: &str| refused(INVALID_ESCAPE, taken(s, t));
    match c {
        '1'..='7' if first(t).is_none_or(|d| octal(d).is_none()) => Err(bad(t)),
        '0'..='7' => {
            let mut r = octal(c).unwrap_or(0);
            for _ in 1..3 {
                match first(t).and_then(octal) {
                    Some(d) => {
                        r = r * 8 + d;
                        t = &t[1..];
                    }
                    None => break,
                }
            }
            Ok((r, t))
        }
        'x' => {
            let Some(c) = first(t) else {
                return Err(bad(t));
            };
            t = &t[c.len_utf8()..];
            if c == '{' {
                let mut r: u32 = 0;
                let mut digits = 0;
                loop {
                    let Some(c) = first(t) else {
                        return Err(bad(t));
                    };
                    t = &t[c.len_utf8()..];
                    if c == '}' {
                        break;
                    }
                    let Some(v) = c.to_digit(16) else {
                        return Err(bad(t));
                    };
                    r = r * 16 + v;
                    if r > 0x10FFFF {
                        return Err(bad(t));
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return Err(bad(t));
                }
                return Ok((r, t));
            }
            let x = c.to_digit(16);
            let y = first(t).and_then(|c| c.to_digit(16));
            if let Some(d) = first(t) {
                t = &t[d.len_utf8()..];
            }
            match (x, y) {
                (Some(x), Some(y)) => Ok((x * 16 + y, t)),
                _ => Err(bad(t)),
            }
        }
        'a' => Ok((0x07, t)),
        'f' => Ok((0x0C, t)),
        'n' => Ok((0x0A, t)),
        'r' => Ok((0x0D, t)),
        't' => Ok((0x09, t)),
        'v' => Ok((0x0B, t)),
        c if c.is_ascii() && !is_alnum(c) => Ok((c as u32, t)),
        _ => Err(bad(t)),
    }
}

#[cfg(test)]
mod tests;
