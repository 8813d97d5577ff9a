//! The policy loader on any bytes as a `policies/*.yaml` beside the demo fleet:
//! never a panic, errors on one line naming the file, and a loaded policy answers
//! every question `keys` asks it.
#![no_main]

use keys::policy::{Fleet, Policy};
use keys::snapshot::Blob;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "policies/fuzz.yaml";

const NAMES: &[&str] = &[
    "bot/telegram-token",
    "nannuo-bot/config",
    "hosts/vps-arm/ssh_host_ed25519_key",
    "a/b/c",
    "x",
];

thread_local! {
    /// The demo fleet, loaded once: only the policy changes between inputs.
    static FLEET: Fleet = Fleet::from_snapshot(&keys_fuzz::demo_repo()).expect("the demo fleet loads");
}

fuzz_target!(|data: &[u8]| FLEET.with(|fleet| check(fleet, data)));

fn check(fleet: &Fleet, data: &[u8]) {
    let mut files = keys_fuzz::demo_repo();
    files.insert(FILE.into(), Blob::File(data.to_vec()));
    match Policy::from_snapshot(&files, fleet) {
        Ok(policy) => {
            for name in NAMES {
                if let Some((i, rule)) = policy.rule_for(name) {
                    assert!(std::ptr::eq(rule, &policy.rules[i]));
                }
            }
            for rule in &policy.rules {
                assert!(!rule.readers.is_empty());
                if let Ok(resolved) = policy.resolve(rule, fleet) {
                    assert!(!resolved.recipients.is_empty());
                }
            }
            let _ = policy.allows_private_key("tests/fixtures/key");
        }
        Err(e) => keys_fuzz::assert_one_line(&e, "policies/"),
    }
}
