//! `keys install`: nixos-anywhere (a stand-in that records what it was given) gets
//! the staged tree, which is removed afterwards.

use super::*;

#[test]
fn install_runs_nixos_anywhere_with_the_staged_tree_and_removes_it() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    flake(&env);
    let rundir = runtime_dir(&mut env);
    let (log, copy) = stand_in(&mut env, 0);

    // --dry-run: the commands, no secret, nothing staged or run.
    let dry = env
        .keys(&["install", "--host", "imp", "--dry-run"])
        .success();
    // The plan: stage, install, check the new host presents the staged key, clean up.
    env.snapshots_of_new_keys()
        .bind(|| insta::assert_snapshot!("install_plan", dry.stdout));
    assert!(!dry.stdout.contains("PRIVATE KEY") && !dry.stdout.contains("AGE-SECRET-KEY"));
    assert!(!log.exists());
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
    // Through Docker, as the seed's bootstrap.sh: the repository and the tree mounted,
    // git told the repository is safe, /nix in its volume, image and nixos-anywhere
    // pinned.
    let docker = env
        .keys(&["install", "--host", "imp", "--dry-run", "--via", "docker"])
        .success();
    let want = format!(
        "docker run --rm -i -v {}:/work -v '$STAGED_TREE:/extra-files:ro' -v '$GITCONFIG:/root/.gitconfig:ro' -v keys-nix-2.35.2:/nix -w /work nixos/nix:2.35.2 nix --extra-experimental-features 'nix-command flakes' run github:nix-community/nixos-anywhere/1.13.0 -- --flake /work#imp --extra-files /extra-files --target-host root@192.0.2.2",
        repo.display()
    );
    assert!(docker.stdout.contains(&want), "{}", docker.stdout);

    env.keys(&["install", "--host", "imp", "--wait", "0"])
        .success();
    let args: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(args[..2], ["--flake", ".#imp"]);
    assert_eq!(args[2], "--extra-files");
    assert_eq!(args[4..], ["--target-host", "root@192.0.2.2"]);
    let tree = PathBuf::from(&args[3]);
    assert!(tree.starts_with(rundir.path()), "{}", tree.display());
    assert!(!tree.exists(), "the staged tree was left behind");
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
    // What nixos-anywhere saw: the host's key, with its modes.
    let key = copy.join("persistent/etc/ssh/ssh_host_ed25519_key");
    assert_eq!(mode_of(&key), 0o600);
    assert_eq!(
        mode_of(&copy.join("persistent/var/lib/sops-nix/key.txt")),
        0o600
    );
    assert_eq!(
        age_of_private(&env, &key),
        host_file_age(&env, &repo, "imp")
    );

    // A failing nixos-anywhere: exit 9, and the tree is gone all the same.
    std::fs::remove_dir_all(&copy).unwrap();
    stand_in(&mut env, 3);
    refused(
        &env,
        &[
            "install",
            "--host",
            "plain",
            "--wait",
            "0",
            "--target",
            "root@198.51.100.7",
        ],
        9,
        "nixos-anywhere failed (exit 3)",
    );
    assert!(copy.join("etc/ssh/ssh_host_ed25519_key").exists());
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);

    // SIGTERM while nixos-anywhere runs: passed on, the tree removed, exit 130.
    let pid_file = env.root.join("keys.pid");
    let _bin = env.script(
        "bin/nixos-anywhere",
        format!(
            "#!/bin/sh\necho $PPID > '{}.tmp'; mv '{0}.tmp' '{0}'\nexec sleep 30\n",
            pid_file.display()
        ),
    );
    let mut cmd = env.command(&["install", "--host", "plain", "--wait", "0"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pid_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "nixos-anywhere did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 1);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);

    // A host with no stored key has nothing to install with.
    refused(
        &env,
        &["install", "--host", "vps-arm", "--wait", "0"],
        3,
        "secret hosts/vps-arm/ssh_host_ed25519_key does not exist",
    );

    // A host file without an address: a clear error before anything runs.
    let host = repo.join("recipients/hosts/plain.yaml");
    let text = std::fs::read_to_string(&host).unwrap();
    std::fs::write(
        &host,
        text.lines()
            .filter(|l| !l.starts_with("address:"))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let r = env.keys(&["install", "--host", "plain"]).failure(3);
    crate::assert_output!(
        env,
        "install_runs_nixos_anywhere_with_the_staged_tree_and_removes_it_2",
        r.stderr
    );
    let r = env.keys(&["update", "--host", "plain"]).failure(3);
    crate::assert_output!(
        env,
        "install_runs_nixos_anywhere_with_the_staged_tree_and_removes_it_3",
        r.stderr
    );
}

#[test]
fn dry_run_prints_commands_a_shell_reads_back_as_run() {
    let mut env = TestEnv::new();
    generated_fleet(&mut env);
    flake(&env);
    env.write("id", "not checked past its mode\n");
    std::fs::set_permissions(env.root.join("id"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(env.root.join("id"), env.work.join("#id")).unwrap();
    // A word starting with '#' would be a comment, one with brackets a glob.
    let dry = env
        .keys(&[
            "install",
            "--host",
            "plain",
            "--dry-run",
            "--ssh-key",
            "#id",
            "--target",
            "root@[2001:db8::1]",
        ])
        .success();
    assert!(dry.stdout.contains(" -i '#id'"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains(" --target-host 'root@[2001:db8::1]'"),
        "{}",
        dry.stdout
    );
}

/// The flake an install or update needs at the repository root.
pub(crate) fn flake(env: &TestEnv) {
    env.write("work/flake.nix", "{ outputs = _: { }; }\n");
    env.write("work/flake.lock", "{}\n");
}
