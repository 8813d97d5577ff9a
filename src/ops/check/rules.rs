//! The policy's rules checked as a whole: rules that match no secret, and readers
//! that cannot decrypt a key-group file by themselves.

use std::collections::BTreeSet;

use super::kind::Kind;
use super::report::{Finding, Report, Severity};
use crate::error::Location;
use crate::policy::{self, Policy};

/// Warns of each rule of `policy` that matches no secret (`used` holds the indices
/// of those that match one), and of each reader of a key-group rule that holds
/// fewer shares than its threshold.
pub(super) fn check(report: &mut Report, policy: &Policy, used: &BTreeSet<usize>) {
    for t in &policy.templates {
        let own = t.first..t.first + t.names.len();
        if !used.iter().any(|i| own.contains(i)) {
            report.findings.push(unused(&t.at, &t.glob));
        }
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        // A rule a placeholder made is told of once, as written.
        let template = rule.bound.as_ref().map(|b| &policy.templates[b.template]);
        if template.is_some_and(|t| t.first != i) {
            continue;
        }
        if template.is_none() && !rule.clear && !used.contains(&i) {
            report.findings.push(unused(&rule.at, &rule.glob));
        }
        // A machine decrypts a key-group file by itself only when it holds the
        // shares of `shamir_threshold` groups.
        for reader in &rule.readers {
            let name = match reader {
                policy::Reader::Admin(_) | policy::Reader::Transit(_) => continue,
                policy::Reader::Host(n) => format!("host:{n}"),
                policy::Reader::Container(n) => format!("container:{n}"),
                policy::Reader::User { .. } => reader.label(),
            };
            let (name, glob) = match (template, &rule.bound) {
                (Some(t), Some(b)) => (
                    name.replace(
                        &format!(":{}", b.name),
                        &format!(":{}", t.placeholder.token()),
                    ),
                    &t.glob,
                ),
                _ => (name, &rule.glob),
            };
            let holds = rule
                .key_groups
                .iter()
                .filter(|g| g.contains(reader))
                .count();
            if !rule.key_groups.is_empty() && holds < rule.shamir_threshold {
                report.findings.push(Finding::new(
                    Severity::Warning,
                    Kind::KeyGroups,
                    rule.readers_at.clone(),
                    format!(
                        "rule {:?}: {name} is in {holds} of its key groups and {} are needed, so it cannot decrypt the secret by itself (on the machine, sops-nix fails)",
                        glob, rule.shamir_threshold
                    ),
                    "put it in shamir_threshold of the groups, or leave it out if it only holds a share",
                ));
            }
        }
    }
}

/// A rule written at `at` that matches no secret.
fn unused(at: &Location, glob: &str) -> Finding {
    Finding::new(
        Severity::Warning,
        Kind::UnusedRule,
        at.clone(),
        format!("rule {glob:?} matches no secret"),
        "encrypt a secret it matches, or remove the rule",
    )
}
