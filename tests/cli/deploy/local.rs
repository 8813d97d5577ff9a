//! `keys remote set|ls|rm`: secrets kept only on a host, written over real ssh to a
//! real sshd on 127.0.0.1 with the host's key pinned. The host's local root is a
//! temp directory (`root:` in the record), and "root-only" is "0600 in 0700
//! directories of the ssh user", who here is the user running the tests.

use super::*;
use crate::fixture::tree;

const VALUE: &[u8] = b"123456:local-canary-token\n";

struct Host {
    env: TestEnv,
    repo: PathBuf,
    root: PathBuf,
    client: String,
    ssh_log: PathBuf,
    port: u16,
    authorized: PathBuf,
    bin: PathBuf,
    tmp: PathBuf,
    server: Option<Sshd>,
    _rundir: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        let (mut env, repo, rundir, port) = local_host();
        append(
            &repo.join("recipients/hosts/srv.yaml"),
            &format!("ssh_user: {}\n", user()),
        );
        let remote = env.root.join("remote");
        let tmp = remote.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let root = remote.join("var/lib/keys/local");
        env.write(
            "work/recipients/local/srv.yaml",
            format!("root: {}\n", root.display()),
        );
        let (host_key, client, authorized) = server_keys(&env);
        // sudo, for an ssh_user other than root: runs the command as it is.
        let bin = env.root.join("remote-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let sudo = bin.join("sudo");
        executable(&sudo, "#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n");
        // ssh here records its command line, then runs the real one.
        let ssh_log = env.root.join("ssh.args");
        let local_bin = env.root.join("local-bin");
        std::fs::create_dir_all(&local_bin).unwrap();
        let wrapper = local_bin.join("ssh");
        executable(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
                ssh_log.display(),
                peer("ssh").display()
            ),
        );
        env.set(
            "PATH",
            format!("{}:{}", local_bin.display(), std::env::var("PATH").unwrap()),
        );
        let server = sshd(&env.root, &host_key, &authorized, &bin, &tmp, port);
        Host {
            env,
            repo,
            root,
            client: client.display().to_string(),
            ssh_log,
            port,
            authorized,
            bin,
            tmp,
            server: Some(server),
            _rundir: rundir,
        }
    }

    fn keys(&self, args: &[&str], stdin: &[u8]) -> crate::common::Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--ssh-key", &self.client]);
        self.env.keys_stdin(&all, stdin)
    }

    fn record(&self) -> String {
        std::fs::read_to_string(self.repo.join("recipients/local/srv.yaml")).unwrap()
    }
}

#[track_caller]
fn one_line_error(r: &crate::common::Run, needle: &str) {
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("keys: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains(needle), "{}", r.stderr);
    assert!(r.stderr.contains("  hint: "), "{}", r.stderr);
}

#[test]
fn remote_set_writes_a_root_only_file_on_the_host_and_records_only_the_fact() {
    let host = Host::new();
    let root = &host.root;
    let before = tree(&host.repo);

    // Bad input: one line, its exit code, nothing written on either side.
    let outside = "/etc/keys-test-outside".to_string();
    let dotdot = format!("{}/../x", root.display());
    let cases: [(&[&str], &[u8], &str); 8] = [
        (
            &["remote", "set", "--host", "srv", "a/b"],
            VALUE,
            "contains '/'",
        ),
        (
            &["remote", "set", "--host", "srv", ".."],
            VALUE,
            "invalid name \"..\"",
        ),
        (
            &["remote", "set", "--host", "srv", "a\nb"],
            VALUE,
            "invalid name",
        ),
        (
            &["remote", "set", "--host", "srv", "x", "--path", &outside],
            VALUE,
            "is not under the host's local root",
        ),
        (
            &["remote", "set", "--host", "srv", "x", "--path", &dotdot],
            VALUE,
            "'..' segment",
        ),
        (
            &["remote", "set", "--host", "nowhere", "x"],
            VALUE,
            "nowhere",
        ),
        (
            &["remote", "rm", "--host", "srv", "x"],
            b"",
            "has no local secret x",
        ),
        (&["remote", "set", "--host", "srv", "x"], b"", "empty"),
    ];
    for (args, stdin, needle) in cases {
        let r = host.keys(args, stdin).failure(3);
        one_line_error(&r, needle);
        assert!(!r.stderr.contains("canary"));
    }
    assert_eq!(tree(&host.repo), before);
    assert!(!root.exists());
    assert!(
        !std::fs::read_to_string(&host.ssh_log)
            .unwrap_or_default()
            .contains("srv")
    );

    // The value goes on ssh's standard input, never its command line, and lands as a
    // 0600 file in a 0700 root; the record holds the fact and a keyed digest.
    let r = host
        .keys(&["remote", "set", "--host", "srv", "telegram-token"], VALUE)
        .success();
    let file = root.join("telegram-token");
    assert_eq!(std::fs::read(&file).unwrap(), VALUE);
    assert_eq!(mode_of(&file), 0o600);
    assert_eq!(mode_of(root), 0o700);
    let record = host.record();
    assert!(
        record.contains(&format!("path: {}", file.display())) && record.contains("set: \"20"),
        "{record}"
    );
    let digest = record
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest: "))
        .unwrap();
    assert_eq!(digest.len(), 64);
    assert_ne!(digest, crate::common::sha256_hex(VALUE));
    for out in [
        &r.stdout,
        &r.stderr,
        &std::fs::read_to_string(&host.ssh_log).unwrap(),
    ] {
        assert!(!out.contains("canary"), "{out}");
    }
    for (path, data) in tree(&host.repo) {
        assert!(
            !String::from_utf8_lossy(&data).contains("canary"),
            "{}",
            path.display()
        );
    }
    // Below the root, in a directory of its own.
    let api = root.join("bot/api-key");
    host.keys(
        &[
            "remote",
            "set",
            "--host",
            "srv",
            "api-key",
            "--path",
            &api.display().to_string(),
        ],
        b"api-canary",
    )
    .success();
    assert_eq!(mode_of(&root.join("bot")), 0o700);
    assert_eq!(mode_of(&api), 0o600);
    let r = host.keys(&["remote", "ls", "--host", "srv"], b"").success();
    assert_eq!(r.stdout.matches("  ok  ").count(), 2, "{}", r.stdout);
    host.env.keys(&["check"]).success();
    let status = host.env.keys(&["status"]).success().stdout;
    assert!(
        status.contains("2 local secrets kept only on 1 host"),
        "{status}"
    );
    let status = host.env.keys(&["status", "--long"]).success().stdout;
    assert!(
        status.contains("kept only on their host") && status.contains("telegram-token"),
        "{status}"
    );

    // Changed outside keys, a file no one recorded, a file others may read: ls says
    // which, and exits 8.
    std::fs::write(&file, b"edited by hand").unwrap();
    let stray = root.join("stray");
    std::fs::write(&stray, b"x").unwrap();
    std::fs::set_permissions(&stray, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&api, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = host
        .keys(&["remote", "ls", "--host", "srv"], b"")
        .failure(8);
    one_line_error(
        &r,
        "host srv differs from recipients/local/srv.yaml: 3 problems",
    );
    for (name, state) in [
        ("telegram-token", "changed outside keys"),
        ("-", "not recorded"),
        ("api-key", "not private (owner uid"),
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(name) && l.contains(state)),
            "{name}: {}",
            r.stdout
        );
    }

    // A file the record does not name is replaced only with --force.
    let stray_arg = stray.display().to_string();
    let set_stray = [
        "remote", "set", "--host", "srv", "stray", "--path", &stray_arg,
    ];
    let r = host.keys(&set_stray, b"new").failure(9);
    one_line_error(&r, "exists and recipients/local/srv.yaml does not name it");
    assert_eq!(std::fs::read(&stray).unwrap(), b"x");
    let mut forced = set_stray.to_vec();
    forced.push("--force");
    host.keys(&forced, b"new").success();
    assert_eq!(std::fs::read(&stray).unwrap(), b"new");

    // rm removes the file and the line.
    host.keys(&["remote", "rm", "--host", "srv", "stray"], b"")
        .success();
    assert!(!stray.exists());
    assert!(!host.record().contains("stray"));

    // A hand-broken record is reported by check, naming its line.
    let good = host.record();
    let rel = "recipients/local/srv.yaml";
    std::fs::write(
        host.repo.join(rel),
        good.replace(&api.display().to_string(), "/etc/api-key"),
    )
    .unwrap();
    let r = host.env.keys(&["check"]).failure(8);
    assert!(
        r.stdout.contains("recipients/local/srv.yaml:") && r.stdout.contains("is not under"),
        "{}",
        r.stdout
    );
    std::fs::write(host.repo.join(rel), &good).unwrap();

    // A host presenting another key gets nothing.
    let mut host = host;
    host.server = None;
    let other = host.env.root.join("other_host_key");
    keygen(&other);
    let _server = sshd(
        &host.env.root,
        &other,
        &host.authorized,
        &host.bin,
        &host.tmp,
        host.port,
    );
    let before = tree(&host.repo);
    let r = host
        .keys(&["remote", "set", "--host", "srv", "telegram-token"], VALUE)
        .failure(9);
    one_line_error(&r, "does not present srv's key");
    assert_eq!(std::fs::read(&file).unwrap(), b"edited by hand");
    assert_eq!(tree(&host.repo), before);

    // The record goes with its host when the host is renamed.
    host.env.keys(&["host", "rename", "srv", "box"]).success();
    assert!(!host.repo.join(rel).exists());
    assert_eq!(
        std::fs::read_to_string(host.repo.join("recipients/local/box.yaml")).unwrap(),
        good
    );
    host.env.keys(&["check"]).success();
}
