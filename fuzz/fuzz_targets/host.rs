//! The host file loader on any bytes: never a panic, errors on one line naming the
//! file, and a loaded host keeps the promises the rest of `keys` relies on.
#![no_main]

use keys::policy::Fleet;
use keys::policy::fleet::parse_host;
use keys::recipient::Recipient;
use keys::snapshot::Blob;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "recipients/hosts/fuzz.yaml";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match parse_host("fuzz", text, FILE) {
            Ok(host) => {
                assert!(matches!(host.key, Recipient::SshEd25519(_)));
                assert!(host.key.to_x25519().is_some());
                if let Some(p) = &host.persist {
                    assert!(p.starts_with('/') && !p.split('/').any(|s| s == ".."));
                }
                for c in &host.containers {
                    assert!(keys::layout::check_name(&c.name).is_ok());
                    assert!(matches!(c.key(&host), Recipient::SshEd25519(_)));
                }
            }
            Err(e) => keys_fuzz::assert_one_line(&e, FILE),
        }
    }
    let mut files = keys_fuzz::demo_repo();
    files.insert(FILE.into(), Blob::File(data.to_vec()));
    if let Err(e) = Fleet::from_snapshot(&files) {
        keys_fuzz::assert_one_line(&e, "recipients/hosts/");
    }
});
