//! Who reads what, by the policy: each reader of a rule with the recipients it
//! resolves to, what the policy gives a host and its containers, and which secrets a
//! reader's keys open. What `keys status` and `keys ls` show and print as JSON.

use crate::error::{Error, Result};
use crate::policy::fleet::Host;
use crate::policy::{Fleet, Policy, Reader, Resolved, Rule};
use crate::recipient::Recipient;

/// Every rule's readers, resolved once.
pub struct Audience<'a> {
    /// By rule index; `None` for a rule whose readers do not resolve (`keys check`
    /// says why).
    rules: Vec<Option<Resolution<'a>>>,
}

struct Resolution<'a> {
    resolved: Resolved,
    by_reader: Vec<(&'a Reader, Vec<Recipient>)>,
}

impl<'a> Audience<'a> {
    pub fn new(policy: &'a Policy, fleet: &Fleet) -> Audience<'a> {
        let rules = policy
            .rules
            .iter()
            .map(|rule| {
                Some(Resolution {
                    resolved: policy.resolve(rule, fleet).ok()?,
                    by_reader: policy.recipients_by_reader(rule, fleet).ok()?,
                })
            })
            .collect();
        Audience { rules }
    }

    /// Each reader of rule `rule` (an index into the policy's rules) with the
    /// recipients it resolves to; none when the rule's readers do not resolve.
    pub fn recipients(&self, rule: usize) -> &[(&'a Reader, Vec<Recipient>)] {
        match self.rules.get(rule) {
            Some(Some(r)) => &r.by_reader,
            _ => &[],
        }
    }

    /// Whether `keys` open what rule `rule` encrypts to: one of the rule's recipients,
    /// or for a rule with key groups, a recipient in as many groups as its threshold.
    pub fn opens(&self, rule: usize, keys: &Keys) -> bool {
        let Some(Some(r)) = self.rules.get(rule) else {
            return false;
        };
        match &r.resolved.shamir {
            Some(shamir) => {
                let held = shamir
                    .groups
                    .iter()
                    .filter(|g| g.iter().any(|k| keys.has(k)))
                    .count();
                held >= shamir.threshold
            }
            None => r.resolved.recipients.iter().any(|k| keys.has(k)),
        }
    }
}

/// One reader's keys, each in every form a rule may encrypt to (an SSH host key
/// and the `age1…` key derived from it).
pub struct Keys(Vec<String>);

impl Keys {
    /// The keys of `reader` in `fleet`.
    pub fn of(fleet: &Fleet, reader: &Reader) -> Result<Keys> {
        let mut ids = Vec::new();
        let mut add = |key: &Recipient| {
            ids.push(key.fingerprint());
            ids.extend(key.to_x25519());
        };
        match reader {
            Reader::Admin(name) => {
                for key in fleet
                    .admin(name)
                    .map(|a| a.recipients.as_slice())
                    .unwrap_or(&[])
                {
                    add(key);
                }
            }
            Reader::Host(name) => add(&fleet.require_host(name)?.key),
            Reader::Container(name) => {
                if let Some((host, c)) = fleet.container(name)? {
                    add(c.key(host));
                }
            }
            Reader::Transit(key) => add(&Recipient::Transit(key.clone())),
            Reader::User { name, host } => {
                if let Some((_, u)) = fleet.user(name, host)? {
                    add(&u.key);
                }
            }
        }
        Ok(Keys(ids))
    }

    fn has(&self, key: &Recipient) -> bool {
        let id = key.fingerprint();
        self.0.contains(&id)
    }
}

/// Readers by the short ids `keys.lock` records for their keys (an SSH host key and
/// the `age1…` key derived from it both name their host), as the policy names them:
/// `alice`, `host:web1`, `container:db`. A container that shares its host's key is
/// named by its host.
pub type Labels = std::collections::BTreeMap<String, String>;

/// Every reader of `fleet` by the short ids of its keys.
pub fn labels(fleet: &Fleet) -> Labels {
    let mut out = Labels::new();
    let mut add = |key: &Recipient, label: &str| {
        let ids = std::iter::once(key.fingerprint()).chain(key.to_x25519());
        for id in ids {
            let short = crate::recipient::short_id(&id).to_string();
            out.entry(short).or_insert_with(|| label.to_string());
        }
    };
    for admin in &fleet.admins {
        for key in &admin.recipients {
            add(key, &admin.name);
        }
    }
    // A host whose file does not read names nothing here; `keys check` says why.
    for host in fleet.hosts().into_iter().flatten() {
        add(&host.key, &format!("host:{}", host.name));
    }
    for host in fleet.hosts().into_iter().flatten() {
        for c in &host.containers {
            add(c.key(host), &format!("container:{}", c.name));
        }
    }
    out
}

/// The readers `name` names, as a rule's `readers:` takes it: an admin, a group (or
/// `admins`, every admin, when no group has that name), `host:NAME` or
/// `container:NAME`. An unknown name is refused with the names close to it (for a
/// bare host or container name, its `host:` or `container:` form).
pub fn named(policy: &Policy, fleet: &Fleet, name: &str) -> Result<Vec<Reader>> {
    let mut known: Vec<String> = fleet.admins.iter().map(|a| a.name.clone()).collect();
    known.extend(policy.group_names().map(str::to_string));
    known.push("admins".into());
    let mut machines = Vec::new();
    for host in fleet.hosts()? {
        machines.push((host.name.clone(), format!("host:{}", host.name)));
        for c in &host.containers {
            machines.push((c.name.clone(), format!("container:{}", c.name)));
        }
        for u in &host.users {
            let label = format!("user:{}@{}", u.name, host.name);
            machines.push((label.clone(), label));
        }
    }
    if known.iter().any(|k| k == name) || machines.iter().any(|(_, label)| label == name) {
        return policy.readers_of(name, fleet);
    }
    let bare: Vec<String> = machines
        .iter()
        .filter(|(bare, _)| bare == name)
        .map(|(_, label)| label.clone())
        .collect();
    let near = if bare.is_empty() {
        known.extend(machines.into_iter().map(|(_, label)| label));
        crate::error::nearest(name, known)
    } else {
        bare
    };
    Err(Error::NoReader {
        name: name.to_string(),
        near,
    })
}

/// The readers of `rule` that are `host` or one of its containers: what the policy
/// gives the machine (and what `keys update` checks it can decrypt).
pub fn on_host<'r>(rule: &'r Rule, host: &Host) -> Vec<&'r Reader> {
    rule.readers
        .iter()
        .filter(|r| match r {
            Reader::Host(h) => *h == host.name,
            Reader::Container(c) => host.containers.iter().any(|x| x.name == *c),
            Reader::Admin(_) | Reader::Transit(_) | Reader::User { .. } => false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Blob, Snapshot};

    const WEB: &str = "ssh_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5\ncontainers:\n  bot: {}\n";
    const DB: &str = "ssh_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5fiAMOFdEaEh7hZPEl4E6o0IISAxB/ixP2MzbSd+ms\n";
    const ALICE: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n";
    const BOB: &str = "age1f5rtndndf7l7pr27pkdxr4777wnfgdpcur255xkquqkz67w4g5vqjfcerd\n";

    fn load(policy: &str) -> (Fleet, Policy) {
        let mut s = Snapshot::default();
        for (rel, data) in [
            ("recipients/admins/alice.pub", ALICE),
            ("recipients/admins/bob.pub", BOB),
            ("recipients/hosts/web.yaml", WEB),
            ("recipients/hosts/db.yaml", DB),
            ("policies/a.yaml", policy),
        ] {
            s.insert(rel.into(), Blob::File(data.into()));
        }
        let fleet = Fleet::from_snapshot(&s).unwrap();
        let policy = Policy::from_snapshot(&s, &fleet).unwrap();
        (fleet, policy)
    }

    const POLICY: &str = "groups:\n  ops: [alice, host:db]\nrules:\n  - secrets: web/*\n    format: age\n    readers: [alice, host:web]\n  - secrets: bot/*\n    format: sops-yaml\n    readers: [bob, container:bot]\n  - secrets: split\n    format: sops-yaml\n    key_groups: [[alice], [host:db], [bob]]\n    shamir_threshold: 2\n  - secrets: ops/*\n    format: age\n    readers: [ops]\n";

    fn opened(fleet: &Fleet, policy: &Policy, name: &str) -> Vec<usize> {
        let audience = Audience::new(policy, fleet);
        let readers = named(policy, fleet, name).unwrap();
        let keys: Vec<Keys> = readers
            .iter()
            .map(|r| Keys::of(fleet, r).unwrap())
            .collect();
        (0..policy.rules.len())
            .filter(|&i| keys.iter().all(|k| audience.opens(i, k)))
            .collect()
    }

    #[test]
    fn a_reader_opens_what_its_keys_are_given() {
        let (fleet, policy) = load(POLICY);
        assert_eq!(opened(&fleet, &policy, "alice"), [0, 3]);
        // The container shares the host's key: each opens what the other is given,
        // an age rule to the SSH key and a sops rule to the key derived from it.
        assert_eq!(opened(&fleet, &policy, "host:web"), [0, 1]);
        assert_eq!(opened(&fleet, &policy, "container:bot"), [0, 1]);
        // One share of a key-groups secret opens nothing by itself.
        assert_eq!(opened(&fleet, &policy, "host:db"), [3]);
        // A group opens what every member opens.
        assert_eq!(opened(&fleet, &policy, "ops"), [3]);
        assert_eq!(opened(&fleet, &policy, "admins"), Vec::<usize>::new());
        let audience = Audience::new(&policy, &fleet);
        let labels: Vec<String> = audience
            .recipients(1)
            .iter()
            .map(|(r, keys)| format!("{} {}", r.label(), keys[0].kind()))
            .collect();
        assert_eq!(labels, ["bob age", "container:bot age"]);
    }

    #[test]
    fn an_unknown_reader_is_refused_with_the_names_near_it() {
        let (fleet, policy) = load(POLICY);
        let near = |name: &str| match named(&policy, &fleet, name) {
            Err(Error::NoReader { near, .. }) => near,
            other => panic!("{name}: {:?}", other.map(|_| ())),
        };
        assert_eq!(near("web"), ["host:web"]);
        assert_eq!(near("bot"), ["container:bot"]);
        assert_eq!(near("host:wbe")[0], "host:web");
        assert_eq!(near("alcie"), ["alice"]);
        assert!(near("zzzzzz").is_empty());
    }

    #[test]
    fn a_host_is_given_what_its_rules_name_for_it_or_its_containers() {
        let (fleet, policy) = load(POLICY);
        let web = fleet.require_host("web").unwrap();
        let given: Vec<Vec<String>> = policy
            .rules
            .iter()
            .map(|r| on_host(r, web).iter().map(|r| r.label()).collect())
            .collect();
        assert_eq!(
            given,
            [
                vec!["host:web".to_string()],
                vec!["container:bot".to_string()],
                vec![],
                vec![]
            ]
        );
    }
}
