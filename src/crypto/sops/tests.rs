use super::*;
use crate::format::Format;
use crate::format::sops::{examine, readers, store};
use crate::identity::{NoPrompt, Search};

fn doc() -> Branches {
    let s = |v: &str| Value::Str(v.into());
    vec![vec![
        Item::Comment(" top comment".into()),
        Item::Pair(
            "db".into(),
            Value::Map(vec![
                Item::Pair("user".into(), s("app")),
                Item::Pair("password".into(), s("hunter2-canary")),
                Item::Pair("port".into(), Value::Int(5432)),
                Item::Pair("ratio".into(), Value::Float(0.75)),
                Item::Pair("tls".into(), Value::Bool(true)),
                Item::Pair("note_unencrypted".into(), s("visible")),
                Item::Pair("empty".into(), s("")),
                Item::Pair("nothing".into(), Value::Null),
            ]),
        ),
        Item::Pair(
            "list".into(),
            Value::List(vec![
                s("a"),
                Value::Comment(" in a list".into()),
                Value::Int(2),
            ]),
        ),
    ]]
}

fn identity() -> (tempfile::TempDir, Identities, Recipient) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id.txt");
    std::fs::write(&path, id.to_string().expose_secret()).unwrap();
    // A private key file others can read is refused, as ssh refuses one.
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&path, private).unwrap();
    let search = Search {
        flags: vec![path],
        env_identity: None,
        keyring: crate::identity::keyring::Backend::Disabled,
        config_dir: None,
        home: None,
        sops: crate::identity::SopsPlaces::default(),
    };
    let ids = Identities::search(&search).unwrap();
    (dir, ids, Recipient::X25519(id.to_public().into()))
}

/// `seal_under` a fresh data key.
fn seal(
    store: &dyn Store,
    branches: &Branches,
    recipients: &[Recipient],
    shamir: Option<&Shamir>,
    options: Options,
    previous: Option<&Opened>,
    at: &Location,
) -> Result<EncryptedDocument> {
    seal_under(
        &aes::fresh_key(),
        store,
        branches,
        recipients,
        shamir,
        options,
        previous,
        at,
    )
}

fn yaml() -> &'static dyn Store {
    store(Format::SopsYaml).unwrap()
}

fn flat(doc: &EncryptedDocument) -> String {
    format!("{:?}", doc.branches)
}

#[test]
fn seal_then_open_round_trips_and_every_write_takes_a_new_data_key() {
    let (_d, mut ids, r) = identity();
    let at = Location::named("t.yaml");
    let sealed = seal(
        yaml(),
        &doc(),
        std::slice::from_ref(&r),
        None,
        Options::default(),
        None,
        &at,
    )
    .unwrap();
    let text = flat(&sealed);
    assert!(
        !text.contains("hunter2") && !text.contains("top comment"),
        "{text}"
    );
    assert!(
        text.contains("visible"),
        "the unencrypted suffix stays clear"
    );
    let opened = open(&sealed, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
    assert_eq!(opened.plain.0, doc());
    // Sealed again from the previous version: the same plaintext under a new key.
    let again = seal(
        yaml(),
        &doc(),
        std::slice::from_ref(&r),
        None,
        Options::default(),
        Some(&opened),
        &at,
    )
    .unwrap();
    let reopened = open(&again, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
    assert_eq!(reopened.plain.0, doc());
    assert_ne!(reopened.key, opened.key);
    assert_ne!(flat(&again), text);
    assert_ne!(metadata_age(&again), metadata_age(&sealed));
    // The old wrapped key, put back in the new file's metadata (it is not under the
    // MAC), opens the old data key, under which no new value authenticates.
    let planted = EncryptedDocument {
        branches: again.branches.clone(),
        metadata: sealed.metadata.clone(),
    };
    let err = open(&planted, &mut ids, &NoPrompt, &at, Mac::Check)
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not authenticate"), "{err}");
}

fn metadata_age(doc: &EncryptedDocument) -> Vec<AgeEntry> {
    Metadata::from_items(&doc.metadata).unwrap().age
}

#[test]
fn tampering_gives_distinct_errors() {
    let (_d, mut ids, r) = identity();
    let at = Location::named("t.yaml");
    let sealed = seal(yaml(), &doc(), &[r], None, Options::default(), None, &at).unwrap();
    let db = |d: &mut EncryptedDocument| match &mut d.branches[0][1] {
        Item::Pair(_, Value::Map(items)) => items.clone(),
        _ => unreachable!(),
    };
    // Swap two values' ciphertexts: each fails to authenticate at its new key.
    let mut swapped = sealed.clone();
    let mut items = db(&mut swapped);
    let (u, p) = (items[0].clone(), items[1].clone());
    if let (Item::Pair(_, uv), Item::Pair(_, pv)) = (&u, &p) {
        items[0] = Item::Pair("user".into(), pv.clone());
        items[1] = Item::Pair("password".into(), uv.clone());
    }
    swapped.branches[0][1] = Item::Pair("db".into(), Value::Map(items));
    let err = open(&swapped, &mut ids, &NoPrompt, &at, Mac::Check)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("value at db.user: does not authenticate"),
        "{err}"
    );
    // Remove a clear value: the MAC no longer matches.
    let mut removed = sealed.clone();
    let mut items = db(&mut removed);
    items.retain(|i| i.key() != Some("note_unencrypted"));
    removed.branches[0][1] = Item::Pair("db".into(), Value::Map(items));
    assert!(matches!(
        open(&removed, &mut ids, &NoPrompt, &at, Mac::Check),
        Err(Error::MacMismatch { .. })
    ));
    assert!(
        open(&removed, &mut ids, &NoPrompt, &at, Mac::Ignore).is_ok(),
        "--ignore-mac"
    );
    // The MAC's type is part of its form: sops reads only a string.
    let mut retyped = sealed.clone();
    for item in &mut retyped.metadata {
        if let Item::Pair(k, Value::Str(mac)) = item
            && k == "mac"
        {
            *mac = mac.replace(",type:str]", ",type:Atr]");
        }
    }
    assert!(matches!(
        open(&retyped, &mut ids, &NoPrompt, &at, Mac::Check),
        Err(Error::MacMismatch { .. })
    ));
    // A plaintext value where the options require encryption.
    let mut plain = sealed.clone();
    let mut items = db(&mut plain);
    items[1] = Item::Pair("password".into(), Value::Str("hunter2-canary".into()));
    plain.branches[0][1] = Item::Pair("db".into(), Value::Map(items));
    let err = open(&plain, &mut ids, &NoPrompt, &at, Mac::Check)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("db.password: not encrypted") && !err.contains("hunter2"),
        "{err}"
    );
    // Nobody's key.
    let (_d2, mut other, _) = identity();
    assert!(matches!(
        open(&sealed, &mut other, &NoPrompt, &at, Mac::Check),
        Err(Error::NoIdentity { .. })
    ));
}

#[test]
fn mac_only_encrypted_and_regex_options() {
    let (_d, mut ids, r) = identity();
    let at = Location::named("t.yaml");
    let options = Options {
        encrypted_regex: Some("^(password|port)$".into()),
        mac_only_encrypted: true,
        ..Options::default()
    };
    let sealed = seal(yaml(), &doc(), &[r], None, options, None, &at).unwrap();
    let text = flat(&sealed);
    assert!(
        text.contains("\"app\"") && !text.contains("hunter2"),
        "{text}"
    );
    let mut changed = sealed.clone();
    if let Item::Pair(_, Value::Map(items)) = &mut changed.branches[0][1] {
        items[0] = Item::Pair("user".into(), Value::Str("someone-else".into()));
    }
    // Clear values are outside the MAC with mac_only_encrypted.
    let opened = open(&changed, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
    assert!(format!("{:?}", opened.plain.0).contains("someone-else"));
    assert!(opened.metadata.options.mac_only_encrypted);
}

/// Neither sealing nor re-wrapping writes a wrapped key for a low-order age
/// recipient, however it was made (here past the parser that refuses it).
#[test]
fn no_data_key_is_wrapped_to_a_low_order_recipient() {
    let (_d, ids, r) = identity();
    let at = Location::named("t.yaml");
    let zero =
        bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("age").unwrap(), &[0u8; 32]).unwrap();
    let weak = Recipient::X25519(zero.parse::<::age::x25519::Recipient>().unwrap().into());
    let both = [r.clone(), weak];
    let refused = |e: Error| matches!(e, Error::WeakKey { .. });
    let sealed = seal(yaml(), &doc(), &both, None, Options::default(), None, &at);
    assert!(sealed.is_err_and(refused));
    let sealed = seal(yaml(), &doc(), &[r], None, Options::default(), None, &at).unwrap();
    assert!(rewrap(sealed, &ids, &both, None, Wrap::KeepStaying, &at).is_err_and(refused));
}

fn x25519() -> Recipient {
    Recipient::X25519(::age::x25519::Identity::generate().to_public().into())
}

#[test]
fn readers_count_every_way_a_file_can_hold_a_reader_the_policy_does_not_name() {
    let at = Location::named("t");
    let (admin, host, extra) = (x25519(), x25519(), x25519());
    let policy = [admin.clone(), host.clone()];
    let file = encrypt_file(
        Format::SopsYaml,
        b"a: b\n",
        &policy,
        None,
        Options::default(),
        None,
        &at,
    )
    .unwrap();
    let differs = |data: &[u8], want: &[Recipient]| {
        readers(Format::SopsYaml, data)
            .unwrap()
            .differs_from(want, None)
    };
    assert_eq!(differs(&file, &policy), None);
    assert_eq!(
        examine(Format::SopsYaml, &file).unwrap(),
        readers(Format::SopsYaml, &file).unwrap()
    );
    // The file rewritten with its metadata changed by `edit`.
    let edited = |edit: &dyn Fn(&mut Metadata)| {
        let store = store(Format::SopsYaml).unwrap();
        let mut doc = store.load_encrypted(&file, "t").unwrap();
        let mut m = Metadata::from_items(&doc.metadata).unwrap();
        edit(&mut m);
        doc.metadata = m.to_items();
        store.emit_encrypted(&doc).unwrap()
    };
    let wrapped_twice = String::from_utf8(
        crypto::age::encrypt(&[7; 32], &[admin.clone(), extra.clone()], Armor::Ascii, &at).unwrap(),
    )
    .unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            file.clone(),
            "2 age entries holding 2 wrapped keys (1 for recipients the policy does not name); the policy calls for 1 recipient",
        ),
        (
            edited(&|m| m.age[0].enc = wrapped_twice.clone()),
            "2 age entries holding 3 wrapped keys (1 whose wrapped key is not for its recipient alone)",
        ),
        (
            edited(&|m| {
                let again = m.age[0].clone();
                m.age.push(again);
            }),
            "3 age entries holding 3 wrapped keys (1 listed twice)",
        ),
        (
            edited(&|m| m.age[1].enc.clear()),
            "2 age entries holding 1 wrapped key (1 whose wrapped key is not for its recipient alone)",
        ),
        (
            edited(&|m| m.age[1].recipient.clear()),
            "(1 for recipients the policy does not name, 1 missing)",
        ),
        (
            edited(&|m| {
                let fp = Item::Pair("fp".into(), Value::Str("0123".into()));
                m.raw.push(Item::Pair(
                    "pgp".into(),
                    Value::List(vec![Value::Map(vec![fp])]),
                ));
            }),
            "(also pgp entries)",
        ),
    ];
    for (i, (data, says)) in cases.iter().enumerate() {
        let want: &[Recipient] = if i == 0 { &policy[..1] } else { &policy };
        let what = differs(data, want).unwrap_or_else(|| panic!("case {i}: no drift"));
        assert!(what.contains(says), "case {i}: {what}");
    }
    // Empty key sources, as sops writes them, hold no reader.
    let empty_kms = edited(&|m| {
        m.raw
            .push(Item::Pair("kms".into(), Value::List(Vec::new())))
    });
    assert_eq!(differs(&empty_kms, &policy), None);
}

/// The identities of `dirs` (each made by `identity`) in one search.
fn searched(dirs: &[&tempfile::TempDir]) -> Identities {
    let search = Search {
        flags: dirs.iter().map(|d| d.path().join("id.txt")).collect(),
        env_identity: None,
        keyring: crate::identity::keyring::Backend::Disabled,
        config_dir: None,
        home: None,
        sops: crate::identity::SopsPlaces::default(),
    };
    Identities::search(&search).unwrap()
}

/// Three identities, each the one recipient of its key group.
fn groups(threshold: usize) -> (Vec<(tempfile::TempDir, Identities, Recipient)>, Shamir) {
    let ids: Vec<_> = (0..3).map(|_| identity()).collect();
    let groups = ids.iter().map(|(_, _, r)| vec![r.clone()]).collect();
    (ids, Shamir { groups, threshold })
}

#[test]
fn key_groups_open_with_threshold_groups_and_are_split_anew_on_edit() {
    let at = Location::named("t.yaml");
    let (mut ids, shamir) = groups(2);
    let sealed = seal(
        yaml(),
        &doc(),
        &[],
        Some(&shamir),
        Options::default(),
        None,
        &at,
    )
    .unwrap();
    let keys: Vec<&str> = sealed.metadata.iter().filter_map(Item::key).collect();
    assert_eq!(
        keys,
        [
            "shamir_threshold",
            "key_groups",
            "lastmodified",
            "mac",
            "unencrypted_suffix",
            "version"
        ],
        "sops's order"
    );
    // One group's identity: too few; it names the counts.
    let err = open(&sealed, &mut ids[1].1, &NoPrompt, &at, Mac::Check)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::TooFewGroups {
                opened: 1,
                groups: 3,
                needed: 2,
                ..
            }
        ),
        "{err}"
    );
    // Two groups' identities (in one search): the file opens.
    let mut both = searched(&[&ids[0].0, &ids[2].0]);
    let opened = open(&sealed, &mut both, &NoPrompt, &at, Mac::Check).unwrap();
    assert_eq!(opened.plain.0, doc());
    // Sealed again for the same groups: new shares of a new key, for the same
    // recipients, and two groups still open it.
    let again = seal(
        yaml(),
        &doc(),
        &[],
        Some(&shamir),
        Options::default(),
        Some(&opened),
        &at,
    )
    .unwrap();
    let groups_of = |d: &EncryptedDocument| Metadata::from_items(&d.metadata).unwrap().key_groups;
    let names = |d: &EncryptedDocument| {
        groups_of(d)
            .iter()
            .map(|g| {
                g.age
                    .iter()
                    .map(|e| e.recipient.clone())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_ne!(groups_of(&again), groups_of(&sealed));
    assert_eq!(names(&again), names(&sealed));
    let reopened = open(&again, &mut both, &NoPrompt, &at, Mac::Check).unwrap();
    assert_eq!(reopened.plain.0, doc());
    assert_ne!(reopened.key, opened.key);
    // Re-wrapped for one recipient: the groups are gone, the top-level entry opens it.
    let plain = rewrap(
        sealed.clone(),
        &both,
        std::slice::from_ref(&ids[1].2),
        None,
        Wrap::Anew,
        &at,
    )
    .unwrap()
    .doc;
    let m = Metadata::from_items(&plain.metadata).unwrap();
    assert!(!m.uses_groups() && m.shamir_threshold == 0 && m.age.len() == 1);
    let keys: Vec<&str> = plain.metadata.iter().filter_map(Item::key).collect();
    assert!(
        !keys.contains(&"key_groups") && !keys.contains(&"shamir_threshold"),
        "{keys:?}"
    );
    assert!(open(&plain, &mut ids[1].1, &NoPrompt, &at, Mac::Check).is_ok());
    // And back to groups with all three needed: new shares, the old ones useless.
    let three = Shamir {
        threshold: 3,
        ..shamir.clone()
    };
    // The identities used must open what is written.
    let err = rewrap(plain.clone(), &ids[1].1, &[], Some(&three), Wrap::Anew, &at)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::TooFewGroups {
                opened: 1,
                needed: 3,
                ..
            }
        ),
        "{err}"
    );
    let all = searched(&[&ids[0].0, &ids[1].0, &ids[2].0]);
    let regrouped = rewrap(plain.clone(), &all, &[], Some(&three), Wrap::Anew, &at)
        .unwrap()
        .doc;
    let err = open(&regrouped, &mut both, &NoPrompt, &at, Mac::Check)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::TooFewGroups {
                opened: 2,
                needed: 3,
                ..
            }
        ),
        "{err}"
    );
    // Checked against a policy without any key.
    let emit = |d: &EncryptedDocument| store(Format::SopsYaml).unwrap().emit_encrypted(d).unwrap();
    let found = readers(Format::SopsYaml, &emit(&regrouped)).unwrap();
    assert_eq!(found.differs_from(&[], Some(&three)), None);
    let mut swapped = three.clone();
    swapped.groups.swap(0, 1);
    let recipients = [ids[0].2.clone()];
    let top_level = readers(Format::SopsYaml, &emit(&plain)).unwrap();
    for (what, says) in [
        (
            found.differs_from(&[], Some(&swapped)),
            "key group 1 has 1 age entry (1 for recipients the policy does not name, 1 missing); key group 2 has",
        ),
        (
            found.differs_from(&[], Some(&shamir)),
            "3 key groups (Shamir threshold 3); the policy calls for 3 key groups (Shamir threshold 2)",
        ),
        (
            found.differs_from(&recipients, None),
            "its sops metadata has 3 key groups (Shamir threshold 3); the policy calls for 1 recipient",
        ),
        (
            top_level.differs_from(&[], Some(&three)),
            "its sops metadata has 1 age entry and no key groups; the policy calls for 3 key groups",
        ),
    ] {
        let what = what.unwrap();
        assert!(what.contains(says), "{what}");
    }
}

/// The MAC computed reading the tree only is the one sealing wrote, whatever the
/// options choose to encrypt (comments counted or not).
#[test]
fn the_read_only_mac_is_the_sealed_mac_under_every_option() {
    let at = Location::named("t.yaml");
    for options in [
        Options::default(),
        Options {
            encrypted_regex: Some("^(password|port)$".into()),
            mac_only_encrypted: true,
            ..Options::default()
        },
        Options {
            unencrypted_regex: Some("^user$".into()),
            ..Options::default()
        },
        Options {
            encrypted_comment_regex: Some("top".into()),
            ..Options::default()
        },
        Options {
            unencrypted_comment_regex: Some("in a list".into()),
            encrypted_suffix: Some("word".into()),
            ..Options::default()
        },
    ] {
        let (_d, mut ids, r) = identity();
        let sealed = seal(yaml(), &doc(), &[r], None, options, None, &at).unwrap();
        let metadata = Metadata::from_items(&sealed.metadata).unwrap();
        let opened = open(&sealed, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
        assert!(values_check(&sealed, &metadata, &opened.key, &at).unwrap());
    }
}

/// The re-wrapped document as read back, with `edit` applied to its `db` map.
fn rewrapped_and_written(
    edit: impl FnOnce(&mut Vec<Item>, &DataKey),
) -> (Rewrapped, EncryptedDocument, Metadata, Identities) {
    let (_d, ids, r) = identity();
    let at = Location::named("t.yaml");
    let sealed = seal(
        yaml(),
        &doc(),
        std::slice::from_ref(&r),
        None,
        Options::default(),
        None,
        &at,
    )
    .unwrap();
    let done = rewrap(sealed, &ids, &[r, x25519()], None, Wrap::KeepStaying, &at).unwrap();
    assert!(!done.mac_mismatch && done.known.is_some());
    let text = yaml().emit_encrypted(&done.doc).unwrap();
    let mut written = yaml().load_encrypted(&text, "t.yaml").unwrap();
    if let Item::Pair(_, Value::Map(items)) = &mut written.branches[0][1] {
        edit(items, &done.known.as_ref().unwrap().key);
    }
    let metadata = Metadata::from_items(&written.metadata).unwrap();
    (done, written, metadata, ids)
}

/// A written file whose values are those re-wrapping checked opens without them
/// being decrypted again; one value changed (a new IV and ciphertext that still
/// authenticate) or damaged is checked in full, and the mismatch or damage found.
#[test]
fn proving_a_rewrapped_file_checks_every_value_unless_they_are_the_ones_checked() {
    let at = Location::named("t.yaml");
    let (done, written, metadata, ids) = rewrapped_and_written(|_, _| {});
    assert!(written.branches == done.doc.branches);
    assert!(done.prove_opens(&written, &metadata, &ids, &at).unwrap());

    // Sealed anew under the same key and key path: it authenticates, the MAC does not
    // match.
    let (done, written, metadata, ids) = rewrapped_and_written(|items, key| {
        items[1] = Item::Pair(
            "password".into(),
            Value::Str(aes::seal(key, b"other", "str", "db:password:")),
        );
    });
    assert!(written.branches != done.doc.branches);
    assert!(!done.prove_opens(&written, &metadata, &ids, &at).unwrap());

    // The same plaintext under another IV: the values differ, the MAC matches.
    let (done, written, metadata, ids) = rewrapped_and_written(|items, key| {
        items[1] = Item::Pair(
            "password".into(),
            Value::Str(aes::seal(key, b"hunter2-canary", "str", "db:password:")),
        );
    });
    assert!(written.branches != done.doc.branches);
    assert!(done.prove_opens(&written, &metadata, &ids, &at).unwrap());

    // A ciphertext that does not authenticate.
    let (done, written, metadata, ids) = rewrapped_and_written(|items, _| {
        if let Item::Pair(_, Value::Str(s)) = &mut items[0] {
            *s = s.replacen("data:", "data:AA", 1);
        }
    });
    let err = done
        .prove_opens(&written, &metadata, &ids, &at)
        .err()
        .unwrap();
    assert!(err.to_string().contains("db.user"), "{err}");
}

/// The entry named for the identity is tried first, but when its wrapped key is
/// not for that identity (the names swapped), the other entries are still tried:
/// the file opens and re-wraps as before.
#[test]
fn an_entry_named_for_the_identity_that_does_not_open_falls_back_to_the_others() {
    let (_d, mut ids, me) = identity();
    let other = x25519();
    let at = Location::named("t.yaml");
    let sealed = seal(
        yaml(),
        &doc(),
        &[other.clone(), me.clone()],
        None,
        Options::default(),
        None,
        &at,
    )
    .unwrap();
    let mut metadata = Metadata::from_items(&sealed.metadata).unwrap();
    assert_eq!(metadata.age[1].recipient, me.to_string());
    let (a, b) = (
        metadata.age[0].recipient.clone(),
        metadata.age[1].recipient.clone(),
    );
    metadata.age[0].recipient = b;
    metadata.age[1].recipient = a;
    let swapped = EncryptedDocument {
        branches: sealed.branches.clone(),
        metadata: metadata.to_items(),
    };
    let opened = open(&swapped, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
    assert_eq!(format!("{:?}", opened.plain.0), format!("{:?}", doc()));
    let done = rewrap(swapped, &ids, &[me, other], None, Wrap::KeepStaying, &at).unwrap();
    assert!(!done.mac_mismatch);
    let text = yaml().emit_encrypted(&done.doc).unwrap();
    let written = yaml().load_encrypted(&text, "t.yaml").unwrap();
    open(&written, &mut ids, &NoPrompt, &at, Mac::Check).unwrap();
}

#[test]
fn a_rekey_that_takes_a_reader_away_seals_every_value_under_a_new_key() {
    let at = Location::named("t.yaml");
    let (_d1, mut ids1, r1) = identity();
    let (_d2, mut ids2, r2) = identity();
    let both = [r1.clone(), r2.clone()];
    let sealed = seal(yaml(), &doc(), &both, None, Options::default(), None, &at).unwrap();
    let before = open(&sealed, &mut ids1, &NoPrompt, &at, Mac::Check).unwrap();
    // A reader added: the data key and every value stay, as `sops updatekeys`.
    let three = [r1.clone(), r2.clone(), x25519()];
    let added = rewrap(sealed.clone(), &ids1, &three, None, Wrap::KeepStaying, &at).unwrap();
    assert_eq!(flat(&added.doc), flat(&sealed));
    assert_eq!(
        open(&added.doc, &mut ids2, &NoPrompt, &at, Mac::Check)
            .unwrap()
            .key,
        before.key
    );
    // A reader taken away: the same plaintext (and MAC) under a new key.
    let one = std::slice::from_ref(&r1);
    let removed = rewrap(sealed.clone(), &ids1, one, None, Wrap::KeepStaying, &at).unwrap();
    assert_ne!(flat(&removed.doc), flat(&sealed));
    let after = open(&removed.doc, &mut ids1, &NoPrompt, &at, Mac::Check).unwrap();
    assert_eq!(after.plain.0, doc());
    assert_ne!(after.key, before.key);
    let lastmodified =
        |d: &EncryptedDocument| Metadata::from_items(&d.metadata).unwrap().lastmodified;
    assert_eq!(lastmodified(&removed.doc), lastmodified(&sealed));
    // Its old wrapped key put back (the metadata is not under the MAC): the old data
    // key, under which nothing written now authenticates.
    let planted = EncryptedDocument {
        branches: removed.doc.branches.clone(),
        metadata: sealed.metadata.clone(),
    };
    let err = open(&planted, &mut ids2, &NoPrompt, &at, Mac::Check)
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not authenticate"), "{err}");
    // `--all`: a new key whoever reads it.
    let anew = rewrap(sealed, &ids1, &both, None, Wrap::Anew, &at).unwrap();
    let opened = open(&anew.doc, &mut ids2, &NoPrompt, &at, Mac::Check).unwrap();
    assert_eq!(opened.plain.0, doc());
    assert_ne!(opened.key, before.key);
}

/// A new data key is proven to open by the ephemeral secret of its wrapping for the
/// identity used: with it the file as written proves; with another ephemeral secret
/// the secret recomputed is not the one it was wrapped under, and the proof fails
/// (it does not take the wrapping's word).
#[test]
fn a_new_data_key_is_proven_by_recomputing_the_identitys_shared_secret() {
    let at = Location::named("t.yaml");
    let (_d, ids, r) = identity();
    let sealed = seal(
        yaml(),
        &doc(),
        &[r.clone(), x25519()],
        None,
        Options::default(),
        None,
        &at,
    )
    .unwrap();
    let mut done = rewrap(
        sealed,
        &ids,
        std::slice::from_ref(&r),
        None,
        Wrap::KeepStaying,
        &at,
    )
    .unwrap();
    let text = yaml().emit_encrypted(&done.doc).unwrap();
    let written = yaml().load_encrypted(&text, "t.yaml").unwrap();
    let metadata = Metadata::from_items(&written.metadata).unwrap();
    assert!(done.made.is_some());
    assert!(done.prove_opens(&written, &metadata, &ids, &at).unwrap());
    done.made.as_mut().unwrap().proof.witness.e = Zeroizing::new([7; 32]);
    assert!(done.prove_opens(&written, &metadata, &ids, &at).is_err());
}
