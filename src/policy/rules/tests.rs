use proptest::prelude::*;

use super::*;
use crate::snapshot::Blob;

const HOST: &str = "ssh_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5\ncontainers:\n  bot: {}\n";
const ADMIN: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n";

fn load(policy: &str) -> Result<(Fleet, Policy)> {
    load_bytes(policy.as_bytes())
}

fn load_bytes(policy: &[u8]) -> Result<(Fleet, Policy)> {
    let mut s = Snapshot::default();
    s.insert(
        "recipients/admins/alice.pub".into(),
        Blob::File(ADMIN.into()),
    );
    s.insert("recipients/hosts/web.yaml".into(), Blob::File(HOST.into()));
    s.insert("policies/a.yaml".into(), Blob::File(policy.to_vec()));
    let fleet = Fleet::from_snapshot(&s)?;
    let policy = Policy::from_snapshot(&s, &fleet)?;
    Ok((fleet, policy))
}

#[test]
fn first_match_wins_and_hosts_take_the_key_their_format_needs() {
    let (fleet, p) = load(
            "groups:\n  ops: [alice]\nrules:\n  - secrets: \"bot/special\"\n    format: sops-yaml\n    readers: [ops, container:bot]\n  - secrets: \"bot/*\"\n    format: age\n    readers: [admins, host:web]\n",
        )
        .unwrap();
    let (i, r) = p.rule_for("bot/special").unwrap();
    assert_eq!((i, r.format), (0, Format::SopsYaml));
    assert_eq!(p.rule_for("bot/token").unwrap().0, 1);
    assert!(p.rule_for("bot/a/b").is_none(), "* stays within a segment");
    assert!(p.rule_for("other").is_none());
    let age = p.resolve(&p.rules[1], &fleet).unwrap();
    assert!(age.fingerprints.iter().any(|f| f.starts_with("SHA256:")));
    let sops = p.resolve(&p.rules[0], &fleet).unwrap();
    assert!(sops.fingerprints.iter().all(|f| f.starts_with("age1")));
    assert_eq!(sops.fingerprints.len(), 2);
}

#[test]
fn key_groups_resolve_per_group_and_are_checked() {
    let (fleet, p) = load(
            "rules:\n  - secrets: x\n    format: sops-yaml\n    key_groups: [[alice], [host:web, container:bot]]\n    shamir_threshold: 2\n",
        )
        .unwrap();
    let rule = &p.rules[0];
    assert_eq!(rule.key_groups.len(), 2);
    assert_eq!(rule.readers.len(), 3, "every group's readers");
    let r = p.resolve(rule, &fleet).unwrap();
    let shamir = r.shamir.unwrap();
    assert_eq!(shamir.threshold, 2);
    assert_eq!(
        shamir.groups.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 1],
        "the container shares its host's key"
    );
    assert_eq!(r.recipients.len(), 2);
    // Without a threshold, every group is needed.
    let (fleet, p) = load(
        "rules:\n  - secrets: x\n    format: sops-json\n    key_groups: [[alice], [host:web]]\n",
    )
    .unwrap();
    let shamir = p.resolve(&p.rules[0], &fleet).unwrap().shamir.unwrap();
    assert_eq!(shamir.threshold, 2);
    for (rule, says) in [
        (
            "    format: age\n    key_groups: [[alice], [host:web]]\n",
            "policies/a.yaml:4: key_groups applies only to sops formats",
        ),
        (
            "    format: sops-yaml\n    readers: [alice]\n    key_groups: [[alice], [host:web]]\n",
            "policies/a.yaml:5: give a rule readers or key_groups, not both",
        ),
        (
            "    format: sops-yaml\n    key_groups: [[alice], []]\n",
            "policies/a.yaml:4: key group 2 has no readers",
        ),
        (
            "    format: sops-yaml\n    key_groups: [[alice], [host:web]]\n    shamir_threshold: 1\n",
            "policies/a.yaml:5: shamir_threshold 1 is not between 2 and the 2 key groups",
        ),
        (
            "    format: sops-yaml\n",
            "policies/a.yaml:2: rule \"x\" has no readers (give readers or key_groups)",
        ),
    ] {
        let err = load(&format!("rules:\n  - secrets: x\n{rule}"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with(says), "{rule}: {err}");
    }
}

#[test]
fn owner_group_and_mode_are_read_and_checked() {
    for (mode, want) in [
        ("0440", "0440"),
        ("\"0440\"", "0440"),
        ("\"400\"", "0400"),
        ("\"0o600\"", "0600"),
    ] {
        let (_, p) = load(&format!(
                "rules:\n  - secrets: x\n    format: age\n    readers: [alice]\n    owner: bot\n    group: wheel\n    mode: {mode}\n"
            ))
            .unwrap();
        let rule = &p.rules[0];
        assert_eq!(rule.mode.as_deref(), Some(want), "{mode}");
        assert_eq!(rule.owner.as_deref(), Some("bot"));
        assert_eq!(rule.group.as_deref(), Some("wheel"));
    }
    for (field, want) in [
        (
            "mode: \"0999\"",
            "policies/a.yaml:5: mode \"0999\" is not an octal file mode",
        ),
        ("mode: \"rw\"", "policies/a.yaml:5: mode"),
        (
            "owner: \"a b\"",
            "policies/a.yaml:2: owner \"a b\" is not a user or group name",
        ),
        ("group: \"-x\"", "policies/a.yaml:2: group"),
    ] {
        let err = load(&format!(
            "rules:\n  - secrets: x\n    format: age\n    readers: [alice]\n    {field}\n"
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(err.starts_with(want), "{field}: {err}");
    }
}

#[test]
fn a_disk_encryption_key_is_an_absolute_path_for_a_whole_secret() {
    for format in ["age", "sops-binary"] {
        let (_, p) = load(&format!(
                "rules:\n  - secrets: web/luks\n    format: {format}\n    readers: [alice]\n    disk_encryption_key: /tmp/secret.key\n"
            ))
            .unwrap();
        assert_eq!(
            p.rules[0].disk_encryption_key.as_deref(),
            Some("/tmp/secret.key")
        );
    }
    let (_, p) = load("rules:\n  - secrets: x\n    format: age\n    readers: [alice]\n").unwrap();
    assert_eq!(p.rules[0].disk_encryption_key, None);
    for (format, path, want) in [
        (
            "age",
            "tmp/k",
            "policies/a.yaml:5: disk_encryption_key \"tmp/k\" is not an absolute path",
        ),
        (
            "age",
            "\"/tmp/a b\"",
            "policies/a.yaml:5: disk_encryption_key \"/tmp/a b\"",
        ),
        (
            "age",
            "/tmp/../etc/k",
            "policies/a.yaml:5: disk_encryption_key",
        ),
        (
            "age",
            "\"/tmp/k'$(x)\"",
            "policies/a.yaml:5: disk_encryption_key",
        ),
        ("age", "/", "policies/a.yaml:5: disk_encryption_key"),
        (
            "sops-yaml",
            "/tmp/k",
            "policies/a.yaml:5: disk_encryption_key applies only to formats age and sops-binary",
        ),
    ] {
        let err = load(&format!(
                "rules:\n  - secrets: x\n    format: {format}\n    readers: [alice]\n    disk_encryption_key: {path}\n"
            ))
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with(want), "{path}: {err}");
    }
}

#[test]
fn regex_options_go_refuses_are_refused_with_their_line() {
    for (field, want) in [
        (
            "encrypted_regex: '(?=pass)'",
            "policies/a.yaml:5: encrypted_regex \"(?=pass)\" is not a regular expression sops can use: invalid or unsupported Perl syntax: `(?=`",
        ),
        (
            "unencrypted_regex: '(a)\\1'",
            "policies/a.yaml:5: unencrypted_regex \"(a)\\\\1\" is not a regular expression sops can use: invalid escape sequence: `\\1`",
        ),
        (
            "encrypted_regex: 'a\\Z'",
            "policies/a.yaml:5: encrypted_regex \"a\\\\Z\" is not a regular expression sops can use: invalid escape sequence: `\\Z`",
        ),
    ] {
        let err = load(&format!(
            "rules:\n  - secrets: x\n    format: sops-yaml\n    readers: [alice]\n    {field}\n"
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(err.starts_with(want), "{field}: {err}");
    }
    // What Go accepts and Rust's regex refuses, or reads otherwise, loads.
    for pattern in [r"\Qa.b\E", r"\141", r"\<x", r"[[:word:]]"] {
        let (_, p) = load(&format!(
                "rules:\n  - secrets: x\n    format: sops-yaml\n    readers: [alice]\n    encrypted_regex: '{pattern}'\n"
            ))
            .unwrap();
        assert_eq!(p.rules[0].sops.encrypted_regex.as_deref(), Some(pattern));
    }
}

#[test]
fn errors_name_file_and_line() {
    let cases = [
        (
            "rules:\n  - secrets: x\n    format: age\n    readers: [bob]\n",
            "policies/a.yaml:4: unknown reader \"bob\"",
        ),
        (
            "rules:\n  - secrets: x\n    format: age\n    readers: [host:nope]\n",
            "policies/a.yaml:4: unknown reader \"host:nope\"",
        ),
        (
            "rules:\n  - secrets: x\n    format: age\n    readers: []\n",
            "policies/a.yaml:4: rule \"x\" has no readers",
        ),
        (
            "groups:\n  none: []\nrules:\n  - secrets: x\n    format: age\n    readers: [none]\n",
            "policies/a.yaml:6: rule \"x\" has no readers",
        ),
        (
            "rules:\n  - secrets: \"a[\"\n    format: age\n    readers: [alice]\n",
            "policies/a.yaml:2: bad glob",
        ),
        (
            "rules:\n  - secrets: x\n    format: sops-toml\n    readers: [alice]\n",
            "policies/a.yaml:3: unknown format",
        ),
        (
            "rules:\n  - secrets: x\n    format: sops-json\n    armor: true\n    readers: [alice]\n",
            "policies/a.yaml:3: armor",
        ),
        (
            "rules:\n  - secrets: x\n    format: age\n    readers: [alice]\n    extra: 1\n",
            "policies/a.yaml:5",
        ),
        (
            "groups:\n  alice: [alice]\n",
            "policies/a.yaml:2: group alice has the name of an admin",
        ),
        (
            "groups:\n  \"host:web\": [alice]\nrules:\n  - secrets: x\n    format: age\n    readers: [host:web]\n",
            "policies/a.yaml:2: invalid name \"host:web\"",
        ),
        (
            "groups:\n  \"container:bot\": [alice]\n",
            "policies/a.yaml:2: invalid name \"container:bot\"",
        ),
        (
            "groups:\n  a/b: [alice]\n",
            "policies/a.yaml:2: invalid name \"a/b\"",
        ),
        (
            "rules:\n  - secrets: \"{{{{{{{{{{{{{{{{{a}}}}}}}}}}}}}}}}}\"\n    format: age\n    readers: [alice]\n",
            "policies/a.yaml:2: bad glob: {…} alternatives nested more than 16 deep",
        ),
        // A glob that would let a private key in clear pass anywhere, or in keys's
        // own directories.
        (
            "allow_private_keys: [\"tests/**\", \"**\"]\n",
            "policies/a.yaml:1: allow_private_keys glob \"**\" would accept a private key in clear anywhere",
        ),
        (
            "allow_private_keys:\n  - \"*/fixtures/*.key\"\n",
            "policies/a.yaml:2: allow_private_keys glob \"*/fixtures/*.key\" would accept",
        ),
        (
            "allow_private_keys:\n  - \"{tests,docs}/**\"\n",
            "policies/a.yaml:2: allow_private_keys glob \"{tests,docs}/**\" would accept",
        ),
        (
            "allow_private_keys:\n  - \"/etc/**\"\n",
            "policies/a.yaml:2: allow_private_keys glob \"/etc/**\" would accept",
        ),
        (
            "allow_private_keys:\n  - \"secrets/**\"\n",
            "policies/a.yaml:2: allow_private_keys glob \"secrets/**\" reaches secrets/",
        ),
    ];
    let long = format!(
        "rules:\n  - secrets: x\n    format: age\n    readers: [alice]\nallow_private_keys: [\"{}\"]\n",
        "*a".repeat(513)
    );
    let cases = cases.into_iter().chain([(
        long.as_str(),
        "policies/a.yaml:5: bad glob: longer than 1024 bytes",
    )]);
    for (text, want) in cases {
        let err = load(text).err().unwrap().to_string();
        assert!(err.starts_with(want), "{text:?}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

/// A fleet of hosts `a` and `web` (container `bot` on `web`) with one policy file.
fn load_two(policy: &str) -> Result<(Fleet, Policy)> {
    let mut s = Snapshot::default();
    s.insert(
        "recipients/admins/alice.pub".into(),
        Blob::File(ADMIN.into()),
    );
    s.insert("recipients/hosts/web.yaml".into(), Blob::File(HOST.into()));
    let plain = HOST.split("containers").next().unwrap();
    s.insert("recipients/hosts/a.yaml".into(), Blob::File(plain.into()));
    s.insert(
        "policies/a.yaml".into(),
        Blob::File(policy.as_bytes().to_vec()),
    );
    let fleet = Fleet::from_snapshot(&s)?;
    let policy = Policy::from_snapshot(&s, &fleet)?;
    Ok((fleet, policy))
}

#[test]
fn a_placeholder_binds_the_first_segment_to_each_host_in_place() {
    for readers in [
        "[admins, host:{host}]",
        "[admins, \"host:{host}\"]",
        "\n      - admins\n      - host:{host}",
    ] {
        let (fleet, p) = load_two(&format!(
                "rules:\n  - secrets: \"x/*\"\n    format: age\n    readers: [alice]\n  - secrets: \"{{host}}/*\"\n    format: age\n    readers: {readers}\n  - secrets: \"**\"\n    format: age\n    readers: [alice]\n"
            ))
            .unwrap();
        let globs: Vec<&str> = p.rules.iter().map(|r| r.glob.as_str()).collect();
        assert_eq!(globs, ["x/*", "a/*", "web/*", "**"], "{readers}");
        let (i, rule) = p.rule_for("web/token").unwrap();
        assert_eq!(i, 2);
        assert_eq!(rule.labels, ["admins", "host:web"]);
        assert_eq!(
            rule.readers,
            [Reader::Admin("alice".into()), Reader::Host("web".into())]
        );
        assert_eq!(rule.at.to_string(), "policies/a.yaml:5");
        assert_eq!(rule.bound.as_ref().unwrap().name, "web");
        assert_eq!(p.resolve(rule, &fleet).unwrap().recipients.len(), 2);
        // A name whose first segment is no host falls through to later rules.
        assert_eq!(p.rule_for("ghost/token").unwrap().0, 3);
        assert!(
            p.unbound("ghost/token").is_none(),
            "a later rule decides it"
        );
        assert!(p.unbound("web/token").is_none());
        let written: Vec<(String, &str)> = p
            .written()
            .iter()
            .map(|w| (w.at.to_string(), w.glob))
            .collect();
        assert_eq!(
            written[..2],
            [
                ("policies/a.yaml:2".to_string(), "x/*"),
                ("policies/a.yaml:5".to_string(), "{host}/*"),
            ]
        );
        assert_eq!(written[2].1, "**");
        assert_eq!(p.templates[0].labels, ["admins", "host:{host}"]);
    }
    // Containers likewise; a template that binds nothing is still listed.
    let (_, p) = load_two(
            "rules:\n  - secrets: \"{container}/env\"\n    format: sops-yaml\n    readers: [alice, \"container:{container}\"]\n  - secrets: \"{host}\"\n    format: age\n    readers: [host:{host}]\n",
        )
        .unwrap();
    assert_eq!(
        p.rule_for("bot/env").unwrap().1.labels,
        ["alice", "container:bot"]
    );
    assert!(p.rule_for("web/env").is_none());
    assert_eq!(p.rule_for("a").unwrap().1.labels, ["host:a"]);
    let u = p.unbound("web/env").unwrap();
    assert_eq!(
        (u.segment, u.template.glob.as_str()),
        ("web", "{container}/env")
    );
    assert_eq!(p.unbound("ghost").unwrap().template.glob, "{host}");
    assert!(p.unbound("ghost/a/b").is_none(), "not a template's shape");
    let (_, p) = load(
            "rules:\n  - secrets: \"{container}/*\"\n    format: age\n    readers: [\"container:{container}\"]\n",
        )
        .unwrap();
    assert_eq!(p.rules.len(), 1);
    let mut s = Snapshot::default();
    s.insert(
        "recipients/admins/alice.pub".into(),
        Blob::File(ADMIN.into()),
    );
    s.insert(
            "policies/a.yaml".into(),
            Blob::File(b"rules:\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [admins, host:{host}]\n".to_vec()),
        );
    let fleet = Fleet::from_snapshot(&s).unwrap();
    let p = Policy::from_snapshot(&s, &fleet).unwrap();
    assert!(p.rules.is_empty());
    assert_eq!(p.written().len(), 1);
    assert_eq!(
        p.unbound("bot-7f3a/telegram-token").unwrap().segment,
        "bot-7f3a"
    );
}

#[test]
fn a_misplaced_placeholder_is_refused_with_its_line() {
    for (text, want) in [
        (
            "rules:\n  - secrets: \"bot/*\"\n    format: age\n    readers: [admins, host:{host}]\n",
            "policies/a.yaml:4: reader \"host:{host}\" names {host}, and the glob \"bot/*\" does not bind it",
        ),
        (
            "rules:\n  - secrets: \"bot/*\"\n    format: age\n    readers:\n      - admins\n      - container:{container}\n",
            "policies/a.yaml:6: reader \"container:{container}\" names {container}",
        ),
        (
            "rules:\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [\"container:{container}\"]\n",
            "policies/a.yaml:4: reader \"container:{container}\" needs {container} in the glob, which binds {host}",
        ),
        (
            "rules:\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [\"admins-{host}\"]\n",
            "policies/a.yaml:4: reader \"admins-{host}\": a placeholder stands alone",
        ),
        (
            "rules:\n  - secrets: \"bots/{host}/*\"\n    format: age\n    readers: [admins]\n",
            "policies/a.yaml:2: {host} stands only for the first segment of a name",
        ),
        (
            "rules:\n  - secrets: \"{host}-x/*\"\n    format: age\n    readers: [admins]\n",
            "policies/a.yaml:2: {host} stands only for the first segment",
        ),
        (
            "rules:\n  - secrets: \"{host}/{container}\"\n    format: age\n    readers: [admins]\n",
            "policies/a.yaml:2: {host} stands only",
        ),
        (
            "groups:\n  bots:\n    - alice\n    - host:{host}\nrules:\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [bots]\n",
            "policies/a.yaml:4: group bots holds \"host:{host}\"",
        ),
        (
            "rules:\n  - secrets: \"{host}/*\"\n    format: sops-yaml\n    armor: true\n    readers: [host:{host}]\n",
            "policies/a.yaml:3: armor applies only to format age",
        ),
        (
            "rules:\n  - secrets: \"{host}/[\"\n    format: age\n    readers: [host:{host}]\n",
            "policies/a.yaml:2: bad glob",
        ),
        (
            "rules:\n  - secrets: \"{host}/*\"\n    format: age\n    readers: [bob, host:{host}]\n",
            "policies/a.yaml:4: unknown reader \"bob\"",
        ),
    ] {
        let err = load_two(text).err().unwrap().to_string();
        assert!(err.starts_with(want), "{text:?}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // The placeholder reader is quoted only where YAML could not read it.
    assert_eq!(
        quote_placeholder_readers("r: [a, host:{host}]\ns: \"{host}/*\"\nt: [host:{host} ,b]\n")
            .as_deref(),
        Some("r: [a, \"host:{host}\"]\ns: \"{host}/*\"\nt: [\"host:{host}\" ,b]\n")
    );
    assert_eq!(quote_placeholder_readers("r:\n  - host:{host}\n"), None);
}

#[test]
fn rotate_every_takes_days_weeks_and_years() {
    for (text, days) in [
        ("90d", 90),
        ("1d", 1),
        ("12w", 84),
        ("1y", 365),
        ("100y", 36_500),
    ] {
        assert_eq!(Period::parse(text).map(|p| p.days), Ok(days), "{text}");
    }
    for text in [
        "",
        "d",
        "90",
        "3m",
        "90D",
        " 90d",
        "9 0d",
        "+1d",
        "-1d",
        "1.5y",
        "0d",
        "101y",
        "99999999999999999999d",
        "9é",
    ] {
        assert!(Period::parse(text).is_err(), "{text:?}");
    }
    let (_, policy) = load(
        "groups: {}\nrules:\n  - secrets: \"a\"\n    format: age\n    readers: [alice]\n    rotate_every: 4w\n",
    )
    .unwrap();
    assert_eq!(
        policy.rules[0].rotate_every.as_ref().map(|p| p.days),
        Some(28)
    );
}

#[test]
fn brace_depth_counts_only_alternatives() {
    for (glob, depth) in [
        ("bot/*", 0),
        ("{a,b}", 1),
        ("{a,{b,c}}/{d,e}", 2),
        ("\\{\\{a", 0),
        ("[{][{]{a,b}", 1),
        ("[]{]{x}", 1),
        ("[!]{]{x}", 1),
        ("{{{", 3),
    ] {
        assert_eq!(brace_depth(glob), depth, "{glob}");
    }
    // The deepest nesting allowed, with the costliest pieces in each level,
    // compiles and matches.
    let deepest = format!("{}x{}", "{**/a*,[!b]?,".repeat(16), "}".repeat(16));
    let g = glob(&deepest).unwrap();
    assert!(g.compile_matcher().is_match("x"));
    assert!(glob(&format!("{}x{}", "{".repeat(17), "}".repeat(17))).is_err());
}

/// Pieces of policy files, in any order.
const TOKENS: &[&str] = &[
    "groups:",
    "rules:",
    "allow_private_keys:",
    "secrets:",
    "format:",
    "readers:",
    "armor:",
    "encrypted_regex:",
    "unencrypted_suffix:",
    "mac_only_encrypted:",
    "\n",
    "  ",
    "    ",
    "- ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "\"",
    "'",
    "*",
    "**/",
    "a[",
    "alice",
    "admins",
    "ops",
    "host:web",
    "container:bot",
    "host:",
    "age",
    "sops-yaml",
    "true",
    "&a ",
    "*a",
    "!!str ",
    "<<: ",
    "# c",
    "(",
    "\t",
    "~",
    "1",
    "\u{feff}",
];

fn policy_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        prop::collection::vec(prop::sample::select(TOKENS), 0..48)
            .prop_map(|t| t.concat().into_bytes()),
    ]
}

/// Globs and names over the characters that matter to glob matching.
fn glob_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(
            &[
                "a", "b", "/", "*", "**", "?", "[ab]", "[!a]", "{a,b/}", "\\*", ".",
            ][..],
        ),
        0..6,
    )
    .prop_map(|t| t.concat())
}

fn name_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(&["a", "b", "/", "*", ".", "ab"][..]),
        0..6,
    )
    .prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The literal-prefix and one-segment shortcuts never change what a glob matches.
    #[test]
    fn a_lazy_glob_matches_as_the_compiled_glob_does(g in glob_text(), name in name_text()) {
        if let Ok(glob) = super::glob(&g) {
            let full = glob.compile_matcher().is_match(&name);
            prop_assert_eq!(super::LazyGlob::new(glob).is_match(&name), full, "{} {}", g, name);
        }
    }

    #[test]
    fn loading_any_bytes_answers_or_names_the_file(policy in policy_bytes()) {
        match load_bytes(&policy) {
            Ok((fleet, p)) => {
                for rule in &p.rules {
                    prop_assert!(!rule.readers.is_empty());
                    let _ = p.resolve(rule, &fleet);
                }
                let _ = p.rule_for("bot/x");
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.starts_with("policies/a.yaml") && !e.contains('\n'), "{e}");
            }
        }
    }
}

#[test]
fn transit_readers_wrap_sops_files_only_and_lock_by_a_short_id() {
    let url = "transit:http://127.0.0.1:8200/v1/transit/keys/ci";
    let (fleet, p) = load(&format!(
        "groups:\n  ci: [\"{url}\"]\nrules:\n  - secrets: x\n    format: sops-yaml\n    readers: [alice, ci]\n"
    ))
    .unwrap();
    let rule = &p.rules[0];
    assert!(rule.readers.iter().any(|r| r.label() == url));
    let r = p.resolve(rule, &fleet).unwrap();
    assert_eq!(r.recipients.len(), 2);
    assert!(r.recipients.iter().any(|k| k.to_string() == url));
    assert!(
        r.fingerprints
            .iter()
            .any(|f| f.starts_with("transit:") && f.len() == "transit:".len() + 12)
    );
    for (policy, line, says) in [
        (
            format!("rules:\n  - secrets: x\n    format: age\n    readers:\n      - alice\n      - \"{url}\"\n"),
            6,
            "is format age",
        ),
        (
            "rules:\n  - secrets: x\n    format: sops-yaml\n    readers:\n      - \"transit:bao:8200/transit/ci\"\n".to_string(),
            5,
            "not a URL",
        ),
        (
            format!("rules:\n  - secrets: x\n    format: sops-yaml\n    key_groups:\n      - [alice]\n      - [\"{url}\"]\n"),
            6,
            "names a transit key",
        ),
    ] {
        let e = load(&policy).err().unwrap().to_string();
        assert!(
            e.contains(&format!("policies/a.yaml:{line}:")) && e.contains(says),
            "{e}"
        );
    }
}

#[test]
fn a_users_reader_is_their_own_key_in_the_form_the_format_needs() {
    let mut s = Snapshot::default();
    s.insert(
        "recipients/admins/alice.pub".into(),
        Blob::File(ADMIN.into()),
    );
    let user = HOST.replace("containers:\n  bot: {}\n", "users:\n  bob:\n    ssh_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5fiAMOFdEaEh7hZPEl4E6o0IISAxB/ixP2MzbSd+ms\n");
    s.insert("recipients/hosts/web.yaml".into(), Blob::File(user.into()));
    s.insert(
        "policies/a.yaml".into(),
        Blob::File(
            "rules:\n  - secrets: a\n    format: age\n    readers: [user:bob@web]\n  - secrets: s\n    format: sops-yaml\n    readers: [user:bob@web, host:web]\n"
                .into(),
        ),
    );
    let fleet = Fleet::from_snapshot(&s).unwrap();
    let p = Policy::from_snapshot(&s, &fleet).unwrap();
    let bob = Reader::User {
        name: "bob".into(),
        host: "web".into(),
    };
    assert_eq!(bob.label(), "user:bob@web");
    assert_eq!(p.rules[0].readers, [bob]);
    let age = p.resolve(&p.rules[0], &fleet).unwrap();
    assert!(
        age.recipients[0]
            .to_string()
            .starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5f")
    );
    let sops = p.resolve(&p.rules[1], &fleet).unwrap();
    assert_eq!(sops.recipients.len(), 2, "the user's key is not the host's");
    assert!(sops.fingerprints.iter().all(|f| f.starts_with("age1")));
}
