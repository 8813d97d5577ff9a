//! `keys update`: the files git tracks in the flake go to a real OpenSSH server on
//! 127.0.0.1 with real rsync; a host that does not present its pinned key is refused.

use super::*;

#[test]
fn update_sends_the_flake_over_real_ssh_and_refuses_a_changed_host_key() {
    let (mut env, repo, _rundir, port) = local_host();
    let remote = env.root.join("remote");
    let flake_dir = remote.join("etc-nixos");
    let remote_tmp = remote.join("tmp");
    std::fs::create_dir_all(&remote_tmp).unwrap();
    append(
        &repo.join("recipients/hosts/srv.yaml"),
        &format!("ssh_user: {}\nflake_dir: {}\n", user(), flake_dir.display()),
    );
    env.write(
        "work/policies/0-srv.yaml",
        "rules:\n  - secrets: \"srv/conf\"\n    format: sops-yaml\n    readers: [admins, host:srv]\n  - secrets: \"srv/*\"\n    format: age\n    readers: [admins, host:srv]\n",
    );
    env.keys_stdin(&["encrypt", "srv/token"], b"srv-canary-token")
        .success();
    env.keys_stdin(
        &["encrypt", "srv/conf"],
        b"db:\n  password: srv-canary-pw\n",
    )
    .success();
    env.keys_stdin(&["encrypt", "bot/other"], b"not-for-srv")
        .success();
    for (rel, text) in [
        ("work/flake.nix", "{ outputs = _: { }; }\n"),
        ("work/flake.lock", "{}\n"),
        ("work/host.nix", "{ }\n"),
        ("work/modules/a.nix", "{ }\n"),
        ("work/containers/bot.nix", "{ }\n"),
        ("work/containers/web/default.nix", "{ }\n"),
        ("work/README.md", "tracked, so sent\n"),
        ("work/.gitignore", "/.keys-writer\n/.keys-journal\n"),
    ] {
        env.write(rel, text);
    }
    // The flake is what git tracks: everything but a file nobody added.
    crate::hook::git(&env, &["init", "-q"], b"").success();
    crate::hook::git(&env, &["add", "-A"], b"").success();
    env.write("work/notes.txt", "untracked, so not sent\n");

    // The server: srv's own host key, our client key, a recording nixos-rebuild.
    let (host_key, client, authorized) = server_keys(&env);
    let bin = env.root.join("remote-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = env.root.join("rebuild.args");
    let rebuild = bin.join("nixos-rebuild");
    executable(
        &rebuild,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            record.display()
        ),
    );
    let server = sshd(&env.root, &host_key, &authorized, &bin, &remote_tmp, port);
    let client_arg = client.display().to_string();

    // A secret srv cannot decrypt (the policy changed, no rekey yet) stops the update.
    let policy = repo.join("policies/0-srv.yaml");
    let original_policy = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        original_policy.replace(
            "host:srv]\n  - secrets: \"srv/*\"",
            "host:srv, host:vps-x86]\n  - secrets: \"srv/*\"",
        ),
    )
    .unwrap();
    let r = env
        .keys(&["update", "--host", "srv", "--ssh-key", &client_arg])
        .failure(8);
    crate::assert_output!(
        env,
        "update_sends_the_flake_over_real_ssh_and_refuses_a_changed_host_key",
        r.stderr
    );
    assert!(!flake_dir.exists());
    std::fs::write(&policy, &original_policy).unwrap();

    // No flake.lock, or one git does not track: a one-line error, nothing sent.
    let update = ["update", "--host", "srv", "--ssh-key", &client_arg];
    let lock = repo.join("flake.lock");
    std::fs::rename(&lock, env.root.join("flake.lock.away")).unwrap();
    let r = env.keys(&update).failure(3);
    assert_eq!(
        r.stderr,
        format!(
            "keys: error: {}: missing: a host is built only from a locked flake\n  hint: run `nix flake lock` and commit flake.lock, then run keys again\n",
            lock.display()
        )
    );
    std::fs::rename(env.root.join("flake.lock.away"), &lock).unwrap();
    crate::hook::git(&env, &["rm", "-q", "--cached", "flake.lock"], b"").success();
    refused(
        &env,
        &update,
        3,
        "flake.lock: not tracked by git, and nix reads only the files git tracks",
    );
    assert!(!flake_dir.exists());
    crate::hook::git(&env, &["add", "flake.lock"], b"").success();

    let r = env.keys(&update).success();
    crate::assert_output!(
        env,
        "update_sends_the_flake_over_real_ssh_and_refuses_a_changed_host_key_2",
        r.stderr
    );
    // Every tracked file but the secrets srv does not read (another host's, srv's own
    // private key for the admins, the lock): least privilege stays.
    assert_eq!(
        listing(&flake_dir),
        expect(&[
            (".gitignore", 0o644),
            ("README.md", 0o644),
            ("containers", 0o755),
            ("containers/bot.nix", 0o644),
            ("containers/web", 0o755),
            ("containers/web/default.nix", 0o644),
            ("flake.nix", 0o644),
            ("flake.lock", 0o644),
            ("host.nix", 0o644),
            ("modules", 0o755),
            ("modules/a.nix", 0o644),
            ("policies", 0o755),
            ("policies/0-srv.yaml", 0o644),
            ("policies/00-host-keys.yaml", 0o644),
            ("policies/default.yaml", 0o644),
            ("recipients", 0o755),
            ("recipients/admins", 0o755),
            ("recipients/admins/demo.pub", 0o644),
            ("recipients/hosts", 0o755),
            ("recipients/hosts/srv.yaml", 0o644),
            ("recipients/hosts/vps-arm.yaml", 0o644),
            ("recipients/hosts/vps-x86.yaml", 0o644),
            ("secrets", 0o755),
            ("secrets/srv", 0o755),
            ("secrets/srv/token.age", 0o644),
            ("secrets/srv/conf.yaml", 0o644),
        ])
    );
    for rel in [
        "flake.nix",
        "secrets/srv/token.age",
        "secrets/srv/conf.yaml",
    ] {
        assert_eq!(
            std::fs::read(flake_dir.join(rel)).unwrap(),
            std::fs::read(repo.join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        format!("switch\n--flake\n{}#srv\n", flake_dir.display())
    );
    assert_eq!(std::fs::read_dir(&remote_tmp).unwrap().count(), 0);
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains("canary"));
    }

    // install's check after the reboot passes against the same server...
    let (log, _) = stand_in(&mut env, 0);
    let install = [
        "install",
        "--host",
        "srv",
        "--ssh-key",
        &client_arg,
        "--wait",
        "10",
    ];
    env.keys(&install).success();
    assert!(log.exists());
    drop(server);

    // ...and a server presenting another key is refused before anything is copied.
    let other = env.root.join("other_host_key");
    keygen(&other);
    let _server = sshd(&env.root, &other, &authorized, &bin, &remote_tmp, port);
    std::fs::remove_dir_all(&flake_dir).unwrap();
    let r = refused(
        &env,
        &["update", "--host", "srv", "--ssh-key", &client_arg],
        9,
        &format!("127.0.0.1:{port} does not present srv's key"),
    );
    assert!(r.stderr.contains("keys host rotate srv"), "{}", r.stderr);
    assert!(!flake_dir.exists());
    assert_eq!(std::fs::read_to_string(&record).unwrap().lines().count(), 3);
    refused(&env, &install, 9, "does not present srv's key");
    assert_eq!(std::fs::read_dir(&remote_tmp).unwrap().count(), 0);
}
