//! `keys check`: the read-only guard that the pre-commit hook runs.

use crate::error::{Error, Result};
use crate::layout::Repo;
use crate::ops::check::{self, Fix, Severity};
use crate::snapshot::{Blob, Snapshot};

use super::{error, ui};

/// Check the repository: policy, keys.lock, and no plaintext or private keys.
///
/// Reports files under secrets/ that are not valid encrypted files of their format
/// (plaintext, truncated, wrong magic), files changed outside keys (hash differs from
/// keys.lock), secrets whose recipients differ from what the policy resolves to
/// (drift), secrets the lock lists that are missing and files it does not list,
/// secrets no rule matches, a generated host key that is not the key its host file
/// names, an interrupted rekey or host key rotation, and private key material (age
/// identities, PEM, OpenSSH and PuTTY private keys, however indented, quoted,
/// commented or escaped) in any file, secrets/ included, except where a policy's
/// allow_private_keys permits it. In a git repository where `keys hook install` ran,
/// it also reports a keys hook that git no longer runs (core.hooksPath changed, or
/// not executable). Needs no identity and never writes. Exits 0 when clean and 8
/// when it finds a problem; warnings (a rule that matches nothing) do not fail it.
///
/// It also warns of each secret whose value is older than its rule's rotate_every
/// (or whose lock line does not say when it last changed), and of each secret a
/// reader taken away by a rekey or host key rotation could read, until its value
/// changes (`keys ls --exposed` lists them). With --strict, an overdue or exposed
/// secret fails the check.
///
/// With --deploy HOST… it checks only what a deployer (keys update, colmena,
/// deploy-rs) needs before sending each HOST its configuration: that the host, and
/// each of its containers, can decrypt every secret its policy gives it (the secret
/// up to date in keys.lock, and its file naming that machine's key).
#[derive(clap::Args)]
#[command(after_long_help = super::json::check_schema())]
pub(crate) struct Args {
    /// Print what was found as JSON (version 1, described below); the exit code is
    /// the same.
    #[arg(long)]
    json: bool,

    /// Check what will be committed: the blobs staged in the git index (honouring
    /// GIT_INDEX_FILE), not the work tree. Any error blocks the commit.
    #[arg(long)]
    staged: bool,

    /// Check only that each HOST can decrypt every secret it is sent, as `keys
    /// update` does before it sends anything; run it before any other deployer.
    #[arg(long, value_name = "HOST", num_args = 1.., conflicts_with_all = ["json", "staged", "openbao"], add = super::complete::host_names())]
    deploy: Vec<String>,

    /// Check only the secrets pushed to OpenBao (`keys push openbao`) against its
    /// metadata, reading no value: each secret never pushed, changed in OpenBao since
    /// it was pushed, deleted or destroyed there, or behind the repository (its
    /// encrypted file changed since). Connects as `keys push openbao` does.
    #[arg(long, conflicts_with_all = ["json", "staged"])]
    openbao: bool,

    /// Fail (exit 8) on a secret whose value is overdue for its rule's rotate_every,
    /// or that a reader taken away could read and has not changed since: in CI, the
    /// warnings that call for a new value become problems.
    #[arg(long, conflicts_with_all = ["deploy", "openbao"])]
    strict: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    if !args.deploy.is_empty() {
        return deploy(ctx, &args.deploy);
    }
    if args.openbao {
        return super::push::check(ctx);
    }
    let repo = ctx.repo()?;
    let ignored = crate::ops::gitignore::ignored(repo.root())?;
    let files = if args.staged {
        staged(repo)?
    } else {
        work_tree(repo, &ignored.files)?
    };
    let mut report = check::inspect(&files);
    // What the lock says of a value's life is held to what git committed before.
    if args.staged || ignored.in_git {
        let lock = files.get(crate::layout::LOCKFILE);
        let history = check::lock_history(repo.root(), lock, args.staged)?;
        report.findings.extend(history);
    }
    // An ignored part of what keys keeps is never committed, and plaintext there is
    // never seen by a commit's check: each ignoring line fails the check.
    for line in ignored.lines.into_iter().rev() {
        let e = Error::IgnoredByGit {
            at: crate::ops::gitignore::location(&line),
            path: line.path.clone(),
            outside: std::path::Path::new(&line.source).is_absolute(),
        };
        report.findings.insert(
            0,
            check::Finding {
                severity: Severity::Problem,
                kind: check::Kind::Ignored,
                at: "".into(),
                what: e.to_string(),
                fix: Fix::Error(Box::new(e)),
            },
        );
    }
    if let Some(bypass) = crate::ops::hook::audit(repo.root())? {
        report.findings.push(bypass.finding(repo.root()));
    }
    if !args.staged {
        // Plaintext on this machine, outside the repository: first, as it matters most.
        report.findings.splice(0..0, check::scratch_leftovers());
    }
    if args.strict {
        for f in &mut report.findings {
            if f.kind.fails_strict() {
                f.severity = Severity::Problem;
            }
        }
    }
    let problems = report.problems();
    let text = if args.json {
        json(&report, args.staged)?
    } else {
        text(&report, args.staged)
    };
    ui::out(&text)?;
    // Left for the exit to free: freeing the thousands of buffers of a large
    // repository one by one is a measurable part of its check.
    std::mem::forget(files);
    std::mem::forget(report);
    if problems > 0 {
        return Err(Error::CheckFailed { count: problems });
    }
    Ok(())
}

/// The pre-deploy gate of `keys update`, for each host named: every host is checked
/// (an unknown name stops it before any), and each that cannot decrypt what it is
/// sent is reported with the files at fault.
fn deploy(ctx: &super::Context, names: &[String]) -> Result<()> {
    let repo = ctx.repo()?;
    let ws = ctx.workspace(crate::ops::workspace::Hosts::All)?;
    let hosts = names
        .iter()
        .map(|n| ws.host(n))
        .collect::<Result<Vec<_>>>()?;
    let mut text = String::new();
    let mut problems = 0;
    for host in hosts {
        match crate::ops::deploy::readable(repo, &ws.policy, &ws.fleet, host) {
            Ok(needed) => text.push_str(&format!(
                "ok: {} can decrypt the {} secret{} it is sent\n",
                host.name,
                needed.len(),
                ui::plural(needed.len())
            )),
            Err(e @ Error::Undeployable { .. }) => {
                if let Error::Undeployable { problems: p, .. } = &e {
                    problems += p.len();
                }
                text.push_str(&format!(
                    "{e}\n  fix: run `keys rekey --host {}` (and `keys check`), then check again before deploying\n",
                    host.name
                ));
            }
            Err(e) => return Err(e),
        }
    }
    ui::out(&text)?;
    if problems > 0 {
        return Err(Error::CheckFailed { count: problems });
    }
    Ok(())
}

/// How a finding is to be fixed.
fn hint(f: &check::Finding) -> String {
    match &f.fix {
        Fix::Do(text) => text.clone(),
        Fix::Error(e) => error::hint(e).unwrap_or_else(|| "fix the file named".into()),
    }
}

fn text(report: &check::Report, staged: bool) -> String {
    let mut text = String::new();
    for f in &report.findings {
        let label = match f.severity {
            Severity::Problem => "",
            Severity::Warning => "warning: ",
        };
        let at = if f.at.file.is_empty() {
            String::new()
        } else {
            format!("{}: ", f.at)
        };
        text.push_str(&format!("{label}{at}{}\n  fix: {}\n", f.what, hint(f)));
    }
    if report.problems() == 0 {
        text.push_str(&format!(
            "ok: {} secret{} match the policy and keys.lock{}\n",
            report.secrets.len(),
            ui::plural(report.secrets.len()),
            if staged { " (staged)" } else { "" }
        ));
    }
    text
}

fn json(report: &check::Report, staged: bool) -> Result<String> {
    let finding = |f: &check::Finding| {
        // A file that does not load names its place in the error itself.
        let at = match &f.fix {
            Fix::Error(e) if f.at.file.is_empty() => error::location(e),
            _ => None,
        }
        .unwrap_or_else(|| f.at.clone());
        let prefix = format!("{at}: ");
        super::json::Finding {
            file: (!at.file.is_empty()).then(|| at.file.clone()),
            line: at.line,
            kind: f.kind.name(),
            message: f.what.strip_prefix(&prefix).unwrap_or(&f.what).to_string(),
            hint: hint(f),
        }
    };
    let of = |severity: Severity| {
        report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(finding)
            .collect()
    };
    super::json::to_string(&super::json::CheckReport {
        version: super::json::VERSION,
        staged,
        secrets: report.secrets.len(),
        problems: of(Severity::Problem),
        warnings: of(Severity::Warning),
    })
}

/// The files a commit could pick up: tracked and untracked-not-ignored in git, or
/// everything but `.git` outside git.
/// Files git ignores under `secrets/` (`ignored`) are checked all the same.
fn work_tree(repo: &Repo, ignored: &[String]) -> Result<Snapshot> {
    let mut snap = candidates(repo, ignored)?;
    // git ignores the journal; an interrupted rekey must still be seen.
    let journal = crate::layout::REKEY_JOURNAL;
    if snap.get(journal).is_none() && repo.root().join(journal).is_file() {
        snap.insert(journal.to_string(), Blob::File(Vec::new()));
    }
    let rotation = crate::layout::ROTATION_JOURNAL;
    if snap.get(rotation).is_none() && repo.root().join(rotation).is_file() {
        let data = std::fs::read(repo.root().join(rotation)).unwrap_or_default();
        snap.insert(rotation.to_string(), Blob::File(data));
    }
    Ok(snap)
}

fn candidates(repo: &Repo, ignored: &[String]) -> Result<Snapshot> {
    let under_secrets = format!("{}/", crate::layout::SECRETS);
    match crate::git::candidate_files(repo.root())? {
        Some(mut list) => {
            list.extend(
                ignored
                    .iter()
                    .filter(|f| f.starts_with(&under_secrets))
                    .cloned(),
            );
            Snapshot::from_work_tree_files(repo, list)
        }
        None => {
            let mut rels = Vec::new();
            // Unsorted: the snapshot sorts what it reads.
            for entry in walkdir::WalkDir::new(repo.root())
                .min_depth(1)
                .into_iter()
                .filter_entry(|e| e.file_name() != ".git")
            {
                let entry = entry.map_err(|e| {
                    Error::io(
                        e.path().unwrap_or(repo.root()).to_path_buf(),
                        e.into_io_error()
                            .unwrap_or_else(|| std::io::Error::other("walk failed")),
                    )
                })?;
                if !entry.file_type().is_dir() {
                    rels.push(rel_of(repo, entry.path()));
                }
            }
            Snapshot::from_work_tree_files(repo, rels)
        }
    }
}

/// `repo.rel(path)` for a path the walk made by joining names to the root: the
/// root's bytes are cut off rather than compared component by component.
fn rel_of(repo: &Repo, path: &std::path::Path) -> String {
    let root = repo.root().as_os_str().as_encoded_bytes();
    let rest = path
        .as_os_str()
        .as_encoded_bytes()
        .strip_prefix(root)
        .and_then(|rest| match root.last() {
            Some(b'/') => Some(rest),
            _ => rest.strip_prefix(b"/"),
        });
    match rest.map(std::str::from_utf8) {
        Some(Ok(rel)) if !rel.is_empty() && !rel.starts_with('/') => rel.to_string(),
        _ => repo.rel(path),
    }
}

fn staged(repo: &Repo) -> Result<Snapshot> {
    let mut snap = Snapshot::default();
    for f in crate::git::staged_files(repo.root())? {
        let blob = if f.mode == 0o120000 {
            Blob::Symlink
        } else {
            Blob::File(f.data)
        };
        snap.insert(f.path, blob);
    }
    Ok(snap)
}
