use super::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";

#[test]
fn reads_a_full_host_file() {
    let text = format!(
        "ssh_key: {KEY} root@vps-arm\naddress: 203.0.113.20\nssh_port: 2222\nsystem: aarch64-linux\npersist: /persistent\ncontainers:\n  nannuo-bot: {{}}\n  own:\n    ssh_key: {KEY}\n"
    );
    let host = parse_host("vps-arm", &text, "h.yaml").unwrap();
    assert_eq!(host.ssh_port, 2222);
    assert_eq!(host.flake_attr, "vps-arm");
    assert_eq!(host.persist.as_deref(), Some("/persistent"));
    assert_eq!(host.containers.len(), 2);
    assert_eq!(
        (host.ssh_user.as_str(), host.flake_dir.as_str()),
        ("root", "/etc/nixos")
    );
    assert!(
        host.containers
            .iter()
            .any(|c| c.name == "nannuo-bot" && c.own_key.is_none())
    );
}

#[test]
fn errors_name_file_and_line() {
    let cases = [
        (
            format!("address: x\nssh_key: {KEY}\nbogus: 1\n"),
            "h.yaml:3",
        ),
        (
            "address: x\nssh_key: ssh-ed25519 AAAA\n".to_string(),
            "h.yaml:2: malformed",
        ),
        (
            "ssh_key: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n".to_string(),
            "h.yaml:1: ssh_key must be an ssh-ed25519 key",
        ),
        (format!("ssh_key: {KEY}\nssh_key: {KEY}\n"), "h.yaml:2"),
        // Two keys in one block scalar: neither is taken for the host's.
        (
            format!("ssh_key: |\n  {KEY} one\n  {KEY} two\n"),
            "h.yaml:2: a key value holds one key on one line",
        ),
        (
            format!("ssh_key: {KEY}\nsystem: riscv\n"),
            "h.yaml:2: system",
        ),
        (
            format!("ssh_key: {KEY}\ncontainers:\n  ../x: {{}}\n"),
            "h.yaml: invalid name",
        ),
        ("[1, 2".to_string(), "h.yaml:"),
        (
            format!("ssh_key: {KEY}\nssh_user: \"-oProxyCommand=x\"\n"),
            "h.yaml:2: ssh_user \"-oProxyCommand=x\" is not a user name",
        ),
        (
            format!("ssh_key: {KEY}\naddress: \"a b\"\n"),
            "h.yaml:2: address \"a b\" is not a host name or IP address",
        ),
        (
            format!("ssh_key: {KEY}\nflake_attr: \"x; rm -rf /\"\n"),
            "h.yaml:2: flake_attr",
        ),
        (
            format!("ssh_key: {KEY}\nflake_dir: etc/nixos\n"),
            "h.yaml:2: flake_dir \"etc/nixos\" must be an absolute path",
        ),
        (
            format!("ssh_key: {KEY}\nage_key_file: /var/../etc/shadow\n"),
            "h.yaml:2: age_key_file",
        ),
    ];
    let persist = |value: &str| format!("ssh_key: {KEY}\naddress: x\npersist: {value}\n");
    let bad_persist = [
        "/persistent/",
        "/a//b",
        "//",
        "/./x",
        "/a/.",
        "/a/../b",
        "relative",
        "\"\"",
        "\"/a\\tb\"",
        &format!("/{}", "x".repeat(256)),
        &format!("/{}", "x/".repeat(600)),
    ]
    .map(|v| (persist(v), "h.yaml:3: persist"));
    let cases = cases.into_iter().chain(bad_persist).chain([(
        format!("ssh_key: {KEY}\nage_key_file: /\n"),
        "h.yaml:2: age_key_file \"/\" must name a file",
    )]);
    for (text, want) in cases {
        let err = parse_host("h", &text, "h.yaml").err().unwrap().to_string();
        assert!(err.starts_with(want), "{text:?}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

fn host(text: &str) -> Host {
    parse_host("h", text, "h.yaml").unwrap_or_else(|e| panic!("{text}\n{e}"))
}

#[test]
fn inserts_containers_keeping_everything_else() {
    let head = format!("# my host\nssh_key: {KEY} root@h # the key\naddress: 192.0.2.1\n");
    let cases = [
        // No containers yet: a block at the end.
        (head.clone(), format!("{head}containers:\n  new: {{}}\n")),
        // Without a final newline.
        (
            head.trim_end().to_string(),
            format!("{head}containers:\n  new: {{}}\n"),
        ),
        // An empty flow map, with its comment.
        (
            format!("{head}containers: {{}} # none yet\nsystem: x86_64-linux\n"),
            format!("{head}containers: # none yet\n  new: {{}}\nsystem: x86_64-linux\n"),
        ),
        // A block: appended after its last entry, with its indentation, before
        // the next top-level key; comments inside kept.
        (
            format!(
                "{head}containers:\n    # the bot\n    bot: {{}}   # shares\n    own:\n        ssh_key: {KEY}\n\n# deploy\nsystem: aarch64-linux\n"
            ),
            format!(
                "{head}containers:\n    # the bot\n    bot: {{}}   # shares\n    own:\n        ssh_key: {KEY}\n    new: {{}}\n\n# deploy\nsystem: aarch64-linux\n"
            ),
        ),
        // A block at the very end without a final newline.
        (
            format!("{head}containers:\n  bot: {{}}"),
            format!("{head}containers:\n  bot: {{}}\n  new: {{}}\n"),
        ),
    ];
    for (before, want) in cases {
        let got = insert_container(&before, "h.yaml", "new", None).unwrap();
        assert_eq!(got, want, "from:\n{before}");
        let h = host(&got);
        assert!(
            h.containers
                .iter()
                .any(|c| c.name == "new" && c.own_key.is_none())
        );
    }
}

#[test]
fn inserts_a_container_with_its_own_key() {
    let before = format!("ssh_key: {KEY}\ncontainers:\n  bot: {{}}\n");
    let own = Recipient::parse_line(&format!("{KEY} root@own"), &Location::named("t")).unwrap();
    let got = insert_container(&before, "h.yaml", "own", Some(&own)).unwrap();
    assert_eq!(
        got,
        format!("{before}  own:\n    ssh_key: {KEY} root@own\n")
    );
    let h = host(&got);
    let own = h.containers.iter().find(|c| c.name == "own").unwrap();
    assert!(own.own_key.is_some());
}

fn deploy_key(name: &str, command: &str) -> DeployKey {
    let key =
        Recipient::parse_line(&format!("{KEY} deploy/{name}"), &Location::named("t")).unwrap();
    DeployKey {
        name: name.into(),
        key,
        user: "root".into(),
        command: command.into(),
    }
}

#[test]
fn edits_deploy_keys_keeping_everything_else() {
    let head = format!("# my host\nssh_key: {KEY} root@h\n");
    let ci = deploy_key("ci", "cd /etc/nixos && nixos-rebuild switch --flake .#h");
    let entry = |indent: &str| {
        format!(
            "{indent}ci:\n{indent}{indent}key: {KEY} deploy/ci\n{indent}{indent}user: root\n{indent}{indent}command: \"cd /etc/nixos && nixos-rebuild switch --flake .#h\"\n"
        )
    };
    let other = format!(
        "    # the old one\n    old:\n        key: {KEY}\n        user: deploy\n        command: run\n"
    );
    let cases = [
        (head.clone(), format!("{head}deploy_keys:\n{}", entry("  "))),
        (
            format!("{head}deploy_keys: {{}} # none yet\naddress: x\n"),
            format!("{head}deploy_keys: # none yet\n{}address: x\n", entry("  ")),
        ),
        (
            format!("{head}deploy_keys:\n{other}\n# next\naddress: x\n"),
            format!(
                "{head}deploy_keys:\n{other}{}\n# next\naddress: x\n",
                entry("    ")
            ),
        ),
    ];
    for (before, want) in cases {
        let got = insert_deploy_key(&before, "h.yaml", "ci", &ci).unwrap();
        assert_eq!(got, want, "from:\n{before}");
        let h = host(&got);
        let d = h.deploy_keys.iter().find(|d| d.name == "ci").unwrap();
        assert_eq!(
            (d.user.as_str(), d.command.as_str()),
            ("root", ci.command.as_str())
        );
        // Removing it gives back the file as it was, but for an emptied `{}`.
        let back = remove_deploy_key(&got, "h.yaml", "ci").unwrap();
        if !before.contains("{}") {
            assert_eq!(back, before);
        }
        assert!(host(&back).deploy_keys.iter().all(|d| d.name != "ci"));
    }
    // A new key replaces the `key:` line of that entry only.
    let two = format!("{head}deploy_keys:\n{other}{}", entry("    "));
    let new = Recipient::parse_line(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvsTY0E1zqA2TgZP8n1y7xwMPEDpwbW2CdnCrY7I4IJ deploy/ci",
            &Location::named("t"),
        )
        .unwrap();
    let got = replace_deploy_key(&two, "h.yaml", "ci", &new).unwrap();
    assert_eq!(
        got,
        two.replace(
            &format!("key: {KEY} deploy/ci"),
            &format!("key: {}", key_line(&new))
        )
    );
    assert_eq!(
        replace_deploy_key(&two, "h.yaml", "nope", &new)
            .unwrap_err()
            .to_string(),
        "h.yaml:3: no entry `nope:` under a block `deploy_keys:` map"
    );
    let err = insert_deploy_key(
        &format!("{head}deploy_keys: {{a: {{}}}}\n"),
        "h.yaml",
        "ci",
        &ci,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("h.yaml:3: deploy_keys is written as"),
        "{err}"
    );
}

#[test]
fn a_deploy_key_sshd_would_misread_is_named_with_its_line() {
    let file = |user: &str, command: &str| {
        format!(
            "ssh_key: {KEY}\ndeploy_keys:\n  ci:\n    key: {KEY}\n    user: {user}\n    command: {command}\n"
        )
    };
    let cases = [
        (
            file("root", "'echo \"x\"'"),
            "h.yaml:6: command contains a double quote",
        ),
        (
            file("root", "\"a\\nb\""),
            "h.yaml:6: command contains a line break",
        ),
        (
            file("root", "'a\\'"),
            "h.yaml:6: command ends with a backslash",
        ),
        (
            file("Root", "run"),
            "h.yaml:5: user \"Root\" is not a user name",
        ),
        (file("root", "''"), "h.yaml:6: command is empty"),
    ];
    for (text, want) in cases {
        let err = parse_host("h", &text, "h.yaml").err().unwrap().to_string();
        assert!(err.starts_with(want), "{text}: {err}");
    }
    let ok = host(&file("_ci-1", "run --now"));
    assert_eq!(
        ok.deploy_keys[0].authorized_key(),
        format!("restrict,command=\"run --now\" {KEY}")
    );
}

#[test]
fn refuses_a_flow_map_it_cannot_extend() {
    let before = format!("ssh_key: {KEY}\ncontainers: {{bot: {{}}}}\n");
    let err = insert_container(&before, "h.yaml", "new", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("h.yaml:2: containers is written as"),
        "{err}"
    );
    assert!(err.contains("block map"), "{err}");
}

#[test]
fn writes_new_host_files_as_they_always_were() {
    let new = |comment: &str| {
        let line = match comment {
            "" => KEY.to_string(),
            c => format!("{KEY} {c}"),
        };
        Recipient::parse_line(&line, &Location::named("t")).unwrap()
    };
    let head = "# host h, added by `keys host add`\nssh_key: ";
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        u16,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            "root@h",
            Some("203.0.113.20"),
            22,
            Some("x86_64-linux"),
            None,
            None,
            "{KEY} root@h\naddress: 203.0.113.20\nssh_port: 22\nsystem: x86_64-linux\n",
        ),
        (
            "root@h",
            Some("2001:db8::1"),
            2222,
            Some("aarch64-linux"),
            Some("true"),
            Some("/persistent"),
            "{KEY} root@h\naddress: \"2001:db8::1\"\nssh_port: 2222\nsystem: aarch64-linux\nflake_attr: \"true\"\npersist: /persistent\n",
        ),
        (
            "",
            Some("fe80::1%eth0"),
            22,
            None,
            Some("it's"),
            Some("/a b/c"),
            "{KEY}\naddress: \"fe80::1%eth0\"\nssh_port: 22\nflake_attr: \"it's\"\npersist: /a b/c\n",
        ),
        (
            "root@h",
            Some("host.example"),
            22,
            None,
            Some("yes"),
            Some("/p#x"),
            "{KEY} root@h\naddress: host.example\nssh_port: 22\nflake_attr: \"yes\"\npersist: \"/p#x\"\n",
        ),
        (
            "root@h",
            Some("10"),
            22,
            None,
            Some("a.b-c_d"),
            Some("/é/\"q\"\\"),
            "{KEY} root@h\naddress: \"10\"\nssh_port: 22\nflake_attr: a.b-c_d\npersist: \"/é/\\\"q\\\"\\\\\"\n",
        ),
        (
            "me (laptop) #1",
            Some("[::1]"),
            22,
            None,
            Some("Off"),
            Some("/"),
            "\"{KEY} me (laptop) #1\"\naddress: \"[::1]\"\nssh_port: 22\nflake_attr: \"Off\"\npersist: /\n",
        ),
        (
            "root@h",
            Some("1.2.3"),
            22,
            None,
            Some("x'y"),
            Some("/a: b"),
            "{KEY} root@h\naddress: \"1.2.3\"\nssh_port: 22\nflake_attr: \"x'y\"\npersist: \"/a: b\"\n",
        ),
        (
            "root@h",
            Some("_x.y"),
            22,
            None,
            Some("null"),
            Some("/a  b"),
            "{KEY} root@h\naddress: \"_x.y\"\nssh_port: 22\nflake_attr: \"null\"\npersist: \"/a  b\"\n",
        ),
    ];
    for (comment, address, ssh_port, system, flake_attr, persist, want) in cases {
        let key = new(comment);
        let host = NewHost {
            name: "h",
            key: &key,
            address: *address,
            ssh_port: *ssh_port,
            system: *system,
            flake_attr: *flake_attr,
            persist: *persist,
        };
        let text = render(&host, "h.yaml").unwrap();
        assert_eq!(text, format!("{head}{}", want.replace("{KEY}", KEY)));
    }
}

#[test]
fn replaces_the_key_line_only() {
    let key = Recipient::parse_line(&format!("{KEY} root@h"), &Location::named("t")).unwrap();
    let text = "# mine\nssh_key: ssh-ed25519 AAAA old # was\ncontainers:\n  c:\n    ssh_key: x\n";
    assert_eq!(
        replace_key(text, &key, "h.yaml").unwrap().unwrap(),
        format!("# mine\nssh_key: {KEY} root@h\ncontainers:\n  c:\n    ssh_key: x\n")
    );
    assert_eq!(replace_key("address: x\n", &key, "h.yaml").unwrap(), None);
}

#[test]
fn users_have_their_own_ssh_ed25519_keys() {
    let text = format!("ssh_key: {KEY}\nusers:\n  alice:\n    ssh_key: {KEY} alice@laptop\n");
    let host = parse_host("web", &text, "h.yaml").unwrap();
    assert_eq!(host.users.len(), 1);
    assert_eq!(host.users[0].name, "alice");
    for (text, says) in [
        (
            format!("ssh_key: {KEY}\nusers:\n  Alice:\n    ssh_key: {KEY}\n"),
            "h.yaml:4: user \"Alice\"",
        ),
        (
            format!(
                "ssh_key: {KEY}\nusers:\n  alice:\n    ssh_key: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"
            ),
            "h.yaml:4: a user's ssh_key must be an ssh-ed25519 key",
        ),
        (
            format!("ssh_key: {KEY}\nusers:\n  alice:\n    key: {KEY}\n"),
            "h.yaml:4",
        ),
    ] {
        let err = parse_host("web", &text, "h.yaml")
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with(says), "{err}");
    }
}
