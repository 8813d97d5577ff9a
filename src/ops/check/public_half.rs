//! The public halves kept beside generated keys (`secrets/NAME.pub`): each beside
//! its secret, of the kind its rule makes, and the key its host file names.

use std::collections::BTreeSet;

use super::kind::Kind;
use super::report::Report;
use crate::format::{self, Format};
use crate::layout;
use crate::policy::{self, Fleet, Policy};
use crate::snapshot::Snapshot;

/// Checks the public half kept beside a generated key secret (`rel`, for secret
/// `name`): one ssh-ed25519 key, beside its secret, and the key its host file (or
/// its container's entry) names. It is how the stored private key is compared with
/// the host file without decrypting it.
pub(super) fn stored_key(
    report: &mut Report,
    fleet: Option<&Fleet>,
    seen: &BTreeSet<&str>,
    rel: &str,
    name: &str,
    data: &[u8],
) {
    let secret = format::secret_path(name, Format::Age);
    let at = crate::error::Location::named(rel);
    let key = std::str::from_utf8(data)
        .ok()
        .map(str::trim)
        .filter(|t| !t.contains('\n'))
        .and_then(|t| crate::recipient::Recipient::parse_line(t, &at).ok())
        .filter(|k| matches!(k, crate::recipient::Recipient::SshEd25519(_)));
    let Some(key) = key else {
        report.problem(
            Kind::StoredKey,
            rel,
            format!("is not the ssh-ed25519 public key of {secret}"),
            "restore it from git; keys writes it with the key",
        );
        return;
    };
    if !seen.contains(name) {
        report.problem(
            Kind::StoredKey,
            rel,
            format!("is the public half of {secret}, which is missing"),
            "restore the key from git, or remove this file",
        );
        return;
    }
    let parts: Vec<&str> = name.split('/').collect();
    let (host, container) = match parts.as_slice() {
        ["hosts", h, "ssh_host_ed25519_key"] => (*h, None),
        ["hosts", h, "containers", c, "ssh_host_ed25519_key"] => (*h, Some(*c)),
        _ => return,
    };
    // A host removed with its key kept has nothing to compare with.
    let Some(host) = fleet.and_then(|f| f.host(host).ok().flatten()) else {
        return;
    };
    let named = match container {
        None => Some(&host.key),
        Some(c) => host
            .containers
            .iter()
            .find(|x| x.name == c)
            .and_then(|x| x.own_key.as_ref()),
    };
    let Some(named) = named else {
        return;
    };
    if named.fingerprint() != key.fingerprint() {
        let whose = match container {
            None => "its ssh_key".to_string(),
            Some(c) => format!("the ssh_key of container {c}"),
        };
        report.problem(
            Kind::StoredKey,
            format!("{}/{}.yaml", layout::HOSTS, host.name),
            format!(
                "{whose} ({}) is not the generated key stored in {secret} ({}, says {rel}): that key's private half is not in the repository",
                named.fingerprint(),
                key.fingerprint()
            ),
            format!(
                "if `keys host rotate {}` was interrupted, run `keys rekey`; if the file was edited, restore its key from git or rotate it with `keys host rotate {} --key FILE`",
                host.name, host.name
            ),
        );
    }
}

/// Checks the public halves kept beside generated keys (`secrets/NAME.pub`): each
/// beside its secret and a public key of the kind its rule makes, and none missing.
pub(super) fn generated_keys(
    report: &mut Report,
    files: &Snapshot,
    policy: Option<&Policy>,
    seen: &BTreeSet<&str>,
    halves: &[(&str, &str, policy::Generator, &[u8])],
) {
    use crate::ops::generate;
    for &(rel, name, generator, data) in halves {
        if !seen.contains(name) {
            report.problem(
                Kind::StoredKey,
                rel,
                format!("is the public half of secret {name}, which is missing"),
                "restore the secret from git, or remove this file",
            );
        } else if !generate::is_public_half(generator, data) {
            report.problem(
                Kind::StoredKey,
                rel,
                format!(
                    "is not the {} public key of secret {name}",
                    generator.kind()
                ),
                format!("restore it from git; `keys rotate {name}` makes a new key pair"),
            );
        }
    }
    let Some(policy) = policy.filter(|p| {
        p.rules
            .iter()
            .any(|r| r.generate.is_some_and(|g| g.has_public_half()))
    }) else {
        return;
    };
    for name in seen {
        let keyed = policy
            .rule_for(name)
            .and_then(|(_, r)| r.generate)
            .is_some_and(|g| g.has_public_half());
        let rel = generate::public_half(name);
        if keyed && files.get(&rel).is_none() {
            report.problem(
                Kind::StoredKey,
                &rel,
                format!("is missing: it is the public half of secret {name}, which keys.nix reads"),
                format!("restore it from git; `keys rotate {name}` makes a new key pair"),
            );
        }
    }
}
