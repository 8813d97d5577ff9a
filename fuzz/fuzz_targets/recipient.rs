//! Key parsing on any bytes. Public keys (age recipients, SSH public keys in every
//! form users paste): what parses prints back to something that parses to the same
//! key, and the ssh-ed25519 → age conversion gives an age recipient that parses.
//! Private keys (age identity files, OpenSSH and PEM keys): an ed25519 key converts,
//! as ssh-to-age does, to an age identity whose recipient is the conversion of its
//! public key, so sops-nix hosts read what `keys` writes for them.
#![no_main]

use std::str::FromStr;

use keys::error::Location;
use keys::identity::{NoPrompt, Parsed, public_of};
use keys::recipient::{Recipient, ssh_ed25519_to_age};
use libfuzzer_sys::fuzz_target;

fn check(r: &Recipient) {
    let at = Location::named("printed");
    let printed = r.to_string();
    let back = Recipient::parse_line(&printed, &at)
        .unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
    assert_eq!(back.to_string(), printed);
    assert_eq!(back.fingerprint(), r.fingerprint());
    assert_eq!(back.kind(), r.kind());
    if let Some(age) = r.to_x25519() {
        let x = Recipient::parse_line(&age, &at)
            .unwrap_or_else(|e| panic!("converted {age:?} does not parse: {e}"));
        assert_eq!(x.kind(), "age");
        assert_eq!(x.to_string(), age);
    }
    match r {
        Recipient::X25519(_) | Recipient::SshEd25519(_) => {
            assert!(r.to_x25519().is_some());
            assert!(
                r.age_recipient().is_some(),
                "age cannot encrypt to {printed:?}"
            );
        }
        Recipient::SshRsa(_) => {
            assert!(r.to_x25519().is_none());
            assert!(
                r.age_recipient().is_some(),
                "age cannot encrypt to {printed:?}"
            );
        }
        Recipient::Plugin(_) => assert!(r.to_x25519().is_none()),
    }
}

fn private(data: &[u8]) {
    match Parsed::parse(data, keys_fuzz::FILE) {
        Ok(Parsed::Ssh(key)) => {
            let Ok(public) = key.public() else { return };
            check(&public);
            if let Ok(identity) = key.age_identity() {
                assert!(matches!(public, Recipient::SshEd25519(_)));
                let id = age::x25519::Identity::from_str(&identity)
                    .expect("a converted identity parses");
                assert_eq!(
                    Some(id.to_public().to_string()),
                    public.to_x25519(),
                    "converted private and public keys disagree"
                );
            }
        }
        Ok(Parsed::Age(keys)) => keys
            .iter()
            .filter_map(|k| k.recipient())
            .for_each(|r| check(&r)),
        Ok(_) => {}
        Err(e) => keys_fuzz::assert_one_line(&e, keys_fuzz::FILE),
    }
    match public_of(data, keys_fuzz::FILE, &NoPrompt) {
        Ok(r) => check(&r),
        Err(e) => keys_fuzz::assert_one_line(&e, keys_fuzz::FILE),
    }
}

fuzz_target!(|data: &[u8]| {
    private(data);
    if let Ok(ed) = <[u8; 32]>::try_from(data)
        && let Some(age) = ssh_ed25519_to_age(&ed)
    {
        assert!(Recipient::parse_line(&age, &Location::named("x")).is_ok());
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Recipient::parse_all(text, keys_fuzz::FILE) {
        Ok(all) => all.iter().for_each(|(_, r)| check(r)),
        Err(e) => keys_fuzz::assert_one_line(&e, keys_fuzz::FILE),
    }
    if let Some(line) = text.lines().next() {
        match Recipient::parse_line(line, &Location::named(keys_fuzz::FILE)) {
            Ok(r) => check(&r),
            Err(e) => keys_fuzz::assert_one_line(&e, keys_fuzz::FILE),
        }
    }
});
