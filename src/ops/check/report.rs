//! What `keys check` and `keys ls` report: each finding with its severity, kind,
//! place and fix, and each secret with its status.

use super::kind::Kind;
use crate::error::Location;
use crate::format::Format;
use crate::format::lockfile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Problem,
    Warning,
}

/// One thing `check` found: what kind of thing, where (a file, or a file and line; an
/// empty file name when the finding names its place itself), what, and how to fix it.
#[derive(Debug)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    pub at: Location,
    pub what: String,
    pub fix: Fix,
}

impl Finding {
    pub(super) fn new(
        severity: Severity,
        kind: Kind,
        at: impl Into<Location>,
        what: impl Into<String>,
        fix: impl Into<Fix>,
    ) -> Finding {
        Finding {
            severity,
            kind,
            at: at.into(),
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// How to fix what was found.
#[derive(Debug)]
pub enum Fix {
    /// What to do, in words.
    Do(String),
    /// A fleet or policy file does not load, so nothing else can be checked: what to
    /// do is what this error calls for.
    Error(Box<crate::error::Error>),
}

impl From<String> for Fix {
    fn from(text: String) -> Fix {
        Fix::Do(text)
    }
}

impl From<&str> for Fix {
    fn from(text: &str) -> Fix {
        Fix::Do(text.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Encrypted to other recipients (or another format) than the policy says.
    Drift,
    /// The file's hash differs from the lock: changed outside keys.
    Modified,
    /// A file under `secrets/` that the lock or the policy does not know.
    Unknown,
    /// Not a valid encrypted file of its format.
    Invalid,
    /// Listed in the lock, absent on disk.
    Missing,
}

impl Status {
    /// Every status, in the order keys lists them.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Drift,
        Status::Modified,
        Status::Unknown,
        Status::Invalid,
        Status::Missing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Drift => "drift",
            Status::Modified => "modified",
            Status::Unknown => "unknown file",
            Status::Invalid => "invalid",
            Status::Missing => "missing",
        }
    }
}

/// One secret as `keys ls` shows it.
pub struct Secret {
    pub name: String,
    pub format: Option<Format>,
    /// The file, relative to the repository root.
    pub path: Option<String>,
    /// The readers of its rule as written (`admins`, `host:vps-arm`).
    pub readers: Vec<String>,
    /// The index of its rule in the policy, when one matches it.
    pub rule: Option<usize>,
    pub status: Status,
    /// When its value last changed, as `keys.lock` says.
    pub changed: Option<std::time::SystemTime>,
    /// The readers taken away since its value last changed, each named as well as
    /// keys can: by the policy's name for its key now, else as the lock recorded it.
    pub seen: Vec<lockfile::Seen>,
}

#[derive(Default)]
pub struct Report {
    pub secrets: Vec<Secret>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }

    pub(super) fn problem(
        &mut self,
        kind: Kind,
        at: impl Into<Location>,
        what: impl Into<String>,
        fix: impl Into<Fix>,
    ) {
        self.findings
            .push(Finding::new(Severity::Problem, kind, at, what, fix));
    }
}
