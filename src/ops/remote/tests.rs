use super::*;

#[test]
fn quotes_words_for_the_shell() {
    assert_eq!(shell_word("root@203.0.113.1"), "root@203.0.113.1");
    assert_eq!(shell_word(".#vps-arm"), ".#vps-arm");
    assert_eq!(shell_word("a b"), "'a b'");
    assert_eq!(shell_word("it's"), r"'it'\''s'");
    assert_eq!(shell_word(""), "''");
    assert_eq!(shell_word("$(x)"), "'$(x)'");
    assert_eq!(shell_quote(b"plain"), b"'plain'");
    assert_eq!(shell_quote(b"it's"), b"'it'\\''s'");
}

#[test]
fn shell_quote_survives_quotes() {
    assert_eq!(shell_quote(b"plain"), b"'plain'");
    assert_eq!(shell_quote(b"it's"), b"'it'\\''s'");
    let tricky = b"a'b\"c $d `e` \\f\ng";
    let quoted = String::from_utf8(shell_quote(tricky)).unwrap();
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &format!("printf %s {quoted}")])
        .output()
        .unwrap();
    assert_eq!(out.stdout, tricky);
}

/// sh reads back every word as it was, quoted or shown bare: every byte but NUL
/// alone, next to a quote, and words a command line or a hook script holds.
#[test]
fn the_shell_reads_every_quoted_word_back() {
    use std::os::unix::ffi::OsStringExt;
    let mut words: Vec<Vec<u8>> = (1..=255u8)
        .flat_map(|b| [vec![b], vec![b'\'', b, b'\''], vec![b'a', b, b'b']])
        .collect();
    for w in [
        "",
        "'",
        "''",
        "a'b\"c $d `e` \\f\ng",
        "./fleet's -dir",
        "-n",
        "~",
        "a=b",
        "#x",
        "[ab]",
        "*",
        "root@[2001:db8::1]",
        "nixos-rebuild switch --flake /x#y",
    ] {
        words.push(w.as_bytes().to_vec());
    }
    let mut script = b"printf '%s\\0'".to_vec();
    let mut shown = script.clone();
    for w in &words {
        script.push(b' ');
        script.extend_from_slice(&shell_quote(w));
        shown.push(b' ');
        match std::str::from_utf8(w) {
            Ok(text) => shown.extend_from_slice(shell_word(text).as_bytes()),
            Err(_) => shown.extend_from_slice(&shell_quote(w)),
        }
    }
    let mut want: Vec<u8> = Vec::new();
    for w in &words {
        want.extend_from_slice(w);
        want.push(0);
    }
    for script in [script, shown] {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsString::from_vec(script))
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, want);
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5";

fn host(extra: &str) -> Host {
    let text = format!("ssh_key: {KEY}\naddress: 192.0.2.9\n{extra}");
    crate::policy::host_file::parse_host("h", &text, "h.yaml").unwrap()
}

fn words(c: &CommandLine) -> Vec<String> {
    c.args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The commands of an update: sudo for a user other than root, the remote path
/// quoted for the remote shell when rsync has no -s, and a local build with the
/// pinned options in NIX_SSHOPTS.
#[test]
fn update_commands_follow_the_user_and_the_rsync() {
    let repo = Repo::at(PathBuf::from("/fleet"));
    let files = ["flake.nix".to_string()];
    let kh = Path::new("/run/kh");
    for (extra, protect_args) in [
        ("", true),
        ("ssh_user: deploy\nflake_dir: /srv/my flake\n", false),
    ] {
        let h = host(extra);
        let u = Update {
            repo: &repo,
            host: &h,
            known_hosts: kh,
            ssh_key: None,
        };
        let steps = update_commands(
            &u,
            &Build::Remote {
                files: &files,
                protect_args,
            },
        )
        .unwrap();
        let steps: Vec<(Step, Vec<String>)> = steps.iter().map(|(s, c)| (*s, words(c))).collect();
        assert_eq!(
            steps.iter().map(|s| s.0).collect::<Vec<_>>(),
            [Step::Connect, Step::Send, Step::Switch]
        );
        let (probe, rsync, switch) = (&steps[0].1, &steps[1].1, &steps[2].1);
        if extra.is_empty() {
            assert_eq!(probe.last().unwrap(), "true");
            assert!(rsync.contains(&"-s".to_string()));
            assert!(!rsync.iter().any(|a| a.starts_with("--rsync-path")));
            assert_eq!(rsync.last().unwrap(), "root@192.0.2.9:/etc/nixos/");
            assert_eq!(
                switch.last().unwrap(),
                "nixos-rebuild switch --flake /etc/nixos#h"
            );
        } else {
            assert_eq!(probe.last().unwrap(), "sudo -n true");
            assert!(!rsync.contains(&"-s".to_string()));
            assert!(rsync.contains(&"--rsync-path=sudo -n rsync".to_string()));
            assert_eq!(rsync.last().unwrap(), "deploy@192.0.2.9:'/srv/my flake'/");
            assert_eq!(
                switch.last().unwrap(),
                "sudo -n nixos-rebuild switch --flake '/srv/my flake#h'"
            );
        }
    }
    let h = host("ssh_user: deploy\nssh_port: 2222\n");
    let u = Update {
        repo: &repo,
        host: &h,
        known_hosts: kh,
        ssh_key: Some(Path::new("/k/id")),
    };
    let steps = update_commands(&u, &Build::Local(&Runner::Nix)).unwrap();
    assert_eq!(steps.len(), 2);
    let (step, local) = &steps[1];
    assert_eq!(*step, Step::BuildHere);
    let w = words(local);
    let tail = &w[w.len() - 5..];
    assert_eq!(
        tail,
        [
            "--flake",
            ".#h",
            "--target-host",
            "deploy@192.0.2.9",
            "--use-remote-sudo"
        ]
    );
    assert_eq!(local.cwd.as_deref(), Some(Path::new("/fleet")));
    let (name, opts) = &local.env[0];
    assert_eq!(name, "NIX_SSHOPTS");
    assert_eq!(
        opts.to_string_lossy(),
        "-p 2222 -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/run/kh -o GlobalKnownHostsFile=/dev/null -o HostKeyAlgorithms=ssh-ed25519 -o UpdateHostKeys=no -o CheckHostIP=no -o ConnectTimeout=20 -i /k/id -o IdentitiesOnly=yes"
    );
    // A key path with a space cannot go through NIX_SSHOPTS.
    let u = Update {
        repo: &repo,
        host: &h,
        known_hosts: kh,
        ssh_key: Some(Path::new("/my keys/id")),
    };
    assert!(matches!(
        update_commands(&u, &Build::Local(&Runner::Nix)),
        Err(Error::SshOptionSpace { .. })
    ));
}

#[test]
fn the_agent_a_container_gets() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let some = |p: &Path| Some(p.as_os_str().to_owned());
    assert_eq!(agent(false, some(&sock)), Some(Agent::Socket(sock.clone())));
    assert_eq!(agent(false, some(&file)), None);
    assert_eq!(agent(false, some(&dir.path().join("gone"))), None);
    assert_eq!(agent(false, Some("relative.sock".into())), None);
    assert_eq!(agent(false, None), None);
    assert_eq!(agent(false, Some("".into())), None);
    // Docker Desktop: the Mac's socket cannot be mounted; its forwarded one is.
    assert_eq!(agent(true, some(&file)), Some(Agent::DockerDesktop));
    assert_eq!(agent(true, None), None);
}

#[test]
fn passthrough_keeps_what_keys_gives_nixos_anywhere() {
    let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
    assert!(
        check_passthrough(&args(&[
            "--build-on",
            "remote",
            "--kexec",
            "https://x/k.tar.gz"
        ]))
        .is_ok()
    );
    assert!(
        check_passthrough(&args(&[
            "--generate-hardware-config",
            "nixos-facter",
            "./facter.json"
        ]))
        .is_ok()
    );
    for own in [
        "--flake",
        "-f",
        "--extra-files",
        "--target-host",
        "-i",
        "-p",
        "--ssh-port",
    ] {
        let err = check_passthrough(&args(&["--debug", own, "x"])).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("{own} after `--`")),
            "{err}"
        );
    }
}

/// The login shell runs `sh -c SCRIPT NAME ARGS…` with every word as given, and
/// behind `sudo -n` for an ssh user other than root.
#[test]
fn a_remote_script_reaches_sh_word_for_word() {
    let text = "ssh_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5\nssh_user: deploy\n";
    let mut host = crate::policy::host_file::parse_host("h", text, "h.yaml").unwrap();
    let args = ["a b", "it's", "$(x)", "", "\n"];
    let line = remote_script(&host, "keys-x", "printf '%s|' \"$0\" \"$@\"", &args);
    assert!(line.starts_with("'sudo' '-n' 'sh' '-c' "), "{line}");
    host.ssh_user = "root".into();
    let line = remote_script(&host, "keys-x", "printf '%s|' \"$0\" \"$@\"", &args);
    assert!(line.starts_with("'sh' '-c' "), "{line}");
    let out = Command::new("/bin/sh")
        .args(["-c", &line])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "keys-x|a b|it's|$(x)||\n|"
    );
}

#[test]
fn last_line_skips_blank_lines() {
    assert_eq!(last_line("a\nb\n\n  \n"), "b");
    assert_eq!(last_line(""), "");
}

#[test]
fn parses_keyscan_targets() {
    let ok = [
        ("vps", ("vps", None)),
        ("203.0.113.20:2222", ("203.0.113.20", Some(2222))),
        ("[2001:db8::1]:22", ("2001:db8::1", Some(22))),
        ("2001:db8::1", ("2001:db8::1", None)),
    ];
    for (t, (a, p)) in ok {
        assert_eq!(parse_target(t).unwrap(), (a.to_string(), p), "{t}");
    }
    for bad in ["", "-oProxyCommand=x", "a b", "h:0", "h:99999", "[::1"] {
        assert!(parse_target(bad).is_err(), "{bad}");
    }
}
