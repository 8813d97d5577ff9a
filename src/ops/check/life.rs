//! The life of a secret's value as `keys.lock` records it: rotation due or of unknown
//! date under its rule's `rotate_every`, and readers taken away that saw it.

use super::kind::Kind;
use super::report::{Finding, Severity};
use crate::format::lockfile;
use crate::ops::readers::Labels;
use crate::policy;

/// The readers a lock entry records as taken away, each named by the fleet when it
/// knows the key now, else as the lock recorded it.
pub(super) fn name_seen(seen: &[lockfile::Seen], labels: &Labels) -> Vec<lockfile::Seen> {
    seen.iter()
        .map(|s| lockfile::Seen {
            id: s.id.clone(),
            label: labels.get(&s.id).cloned().or_else(|| s.label.clone()),
        })
        .collect()
}

/// A reader taken away, as `keys check` and `keys ls --exposed` name it:
/// `host:web (SHA256:…)`, or its short id alone.
pub fn seen_text(s: &lockfile::Seen) -> String {
    match &s.label {
        Some(label) => format!("{label} ({})", s.id),
        None => s.id.clone(),
    }
}

/// The day of a lock date (`2026-03-01`).
pub fn day(t: std::time::SystemTime) -> String {
    let mut text = lockfile::format_date(t);
    text.truncate(10);
    text
}

/// What the lock says of the life of a secret's value at `now`: overdue for its
/// rule's `rotate_every`, or seen by readers taken away since it last changed.
pub(super) fn warnings(
    findings: &mut Vec<Finding>,
    now: std::time::SystemTime,
    rel: &str,
    name: &str,
    rule: Option<&policy::Rule>,
    entry: &lockfile::Entry,
    seen: &[lockfile::Seen],
) {
    let mut warn = |kind: Kind, what: String, fix: String| {
        findings.push(Finding::new(Severity::Warning, kind, rel, what, fix))
    };
    let renew = match rule.and_then(|r| r.generate) {
        Some(_) => format!("give it a new value: `keys rotate {name}` (its rule generates one)"),
        None => format!(
            "give it a new value: `keys edit {name}` (or `keys set`, `keys encrypt --force`)"
        ),
    };
    if let Some(rule) = rule
        && let Some(period) = &rule.rotate_every
    {
        match entry.changed {
            None => warn(
                Kind::RotationUnknown,
                format!(
                    "rotation date unknown: secrets/keys.lock does not say when its value last changed, and its rule ({}) says rotate_every: {}",
                    rule.at, period.text
                ),
                format!(
                    "{renew} to start its clock, or if you know when it last changed, add changed=YYYY-MM-DD to its line in secrets/keys.lock"
                ),
            ),
            Some(changed) => {
                let age = now.duration_since(changed).unwrap_or_default();
                if age > period.duration() {
                    warn(
                        Kind::RotationDue,
                        format!(
                            "rotation due: its value last changed on {}, {} days ago, and its rule ({}) says rotate_every: {}",
                            day(changed),
                            age.as_secs() / 86_400,
                            rule.at,
                            period.text
                        ),
                        renew.clone(),
                    );
                }
            }
        }
    }
    if !seen.is_empty() {
        let names: Vec<String> = seen.iter().map(seen_text).collect();
        warn(
            Kind::Exposed,
            format!(
                "value seen by a removed reader, not changed since: {}",
                names.join(", ")
            ),
            format!("{renew}; until then a reader taken away knows it"),
        );
    }
}
