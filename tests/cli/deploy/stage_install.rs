//! `keys stage-install`: the staged tree exactly, for plain and impermanent hosts, and
//! its refusals (symlinks, a full or foreign directory).

use super::*;

#[test]
fn stage_install_lays_out_plain_and_impermanent_hosts_and_cleans_up() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    let rundir = runtime_dir(&mut env);

    let tree = PathBuf::from(
        env.keys(&["stage-install", "--host", "plain"])
            .success()
            .stdout
            .trim(),
    );
    let parent = tree.parent().unwrap();
    assert_eq!(parent.parent().unwrap(), rundir.path());
    assert_eq!(mode_of(parent), 0o700);
    assert_eq!(mode_of(&tree), 0o755);
    assert_eq!(
        listing(&tree),
        expect(&[
            ("etc", 0o755),
            ("etc/ssh", 0o755),
            ("etc/ssh/ssh_host_ed25519_key", 0o600),
            ("etc/ssh/ssh_host_ed25519_key.pub", 0o644),
        ])
    );
    let staged = tree.join("etc/ssh/ssh_host_ed25519_key");
    let stored = env
        .keys(&["decrypt", "hosts/plain/ssh_host_ed25519_key"])
        .success()
        .raw_stdout;
    assert_eq!(std::fs::read(&staged).unwrap(), stored);
    assert_eq!(
        age_of_private(&env, &staged),
        host_file_age(&env, &repo, "plain")
    );
    env.keys(&["stage-install", "--clean", &tree.display().to_string()])
        .success();
    assert!(!parent.exists());

    let tree = PathBuf::from(
        env.keys(&["stage-install", "--host", "imp"])
            .success()
            .stdout
            .trim(),
    );
    assert_eq!(
        listing(&tree),
        expect(&[
            ("persistent", 0o755),
            ("persistent/etc", 0o755),
            ("persistent/etc/ssh", 0o755),
            ("persistent/etc/ssh/ssh_host_ed25519_key", 0o600),
            ("persistent/etc/ssh/ssh_host_ed25519_key.pub", 0o644),
            ("persistent/etc/ssh/containers", 0o755),
            ("persistent/etc/ssh/containers/own", 0o755),
            (
                "persistent/etc/ssh/containers/own/ssh_host_ed25519_key",
                0o600
            ),
            (
                "persistent/etc/ssh/containers/own/ssh_host_ed25519_key.pub",
                0o644
            ),
            ("persistent/var", 0o755),
            ("persistent/var/lib", 0o755),
            ("persistent/var/lib/sops-nix", 0o755),
            ("persistent/var/lib/sops-nix/key.txt", 0o600),
        ])
    );
    let key = tree.join("persistent/etc/ssh/ssh_host_ed25519_key");
    let age = host_file_age(&env, &repo, "imp");
    assert_eq!(age_of_private(&env, &key), age);
    let converted = env
        .keys(&["to-age", "--private", &key.display().to_string()])
        .success()
        .stdout;
    let key_txt =
        std::fs::read_to_string(tree.join("persistent/var/lib/sops-nix/key.txt")).unwrap();
    assert!(key_txt.contains(converted.trim()), "{key_txt}");
    assert!(key_txt.starts_with(&format!("# public key: {}", age.trim())));
    let own = env
        .keys(&["decrypt", "hosts/imp/containers/own/ssh_host_ed25519_key"])
        .success()
        .raw_stdout;
    assert_eq!(
        std::fs::read(tree.join("persistent/etc/ssh/containers/own/ssh_host_ed25519_key")).unwrap(),
        own
    );
    env.keys(&["stage-install", "--clean", &tree.display().to_string()])
        .success();
    assert_eq!(std::fs::read_dir(rundir.path()).unwrap().count(), 0);
}

#[test]
fn stage_install_refuses_symlinks_full_and_foreign_directories() {
    let mut env = TestEnv::new();
    generated_fleet(&mut env);
    let rundir = runtime_dir(&mut env);
    let base = rundir.path();

    // A planted symlink at the output: refused, nothing lands behind it.
    let elsewhere = base.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, base.join("out")).unwrap();
    let out = base.join("out").display().to_string();
    refused(
        &env,
        &["stage-install", "--host", "plain", "--out", &out],
        5,
        &out,
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // A non-empty directory: refused, left as it was.
    let full = base.join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep"), b"mine").unwrap();
    refused(
        &env,
        &[
            "stage-install",
            "--host",
            "plain",
            "--out",
            &full.display().to_string(),
        ],
        5,
        "is not empty",
    );
    assert_eq!(std::fs::read(full.join("keep")).unwrap(), b"mine");

    // --clean refuses a directory that holds anything keys does not stage.
    refused(
        &env,
        &["stage-install", "--clean", &full.display().to_string()],
        2,
        "keep",
    );
    assert_eq!(std::fs::read(full.join("keep")).unwrap(), b"mine");

    // A new directory given with --out becomes the tree root, mode 0755.
    let fresh = base.join("fresh");
    let printed = env
        .keys(&[
            "stage-install",
            "--host",
            "plain",
            "--out",
            &fresh.display().to_string(),
        ])
        .success()
        .stdout;
    assert_eq!(printed.trim(), fresh.display().to_string());
    assert_eq!(mode_of(&fresh), 0o755);
    assert_eq!(mode_of(&fresh.join("etc/ssh/ssh_host_ed25519_key")), 0o600);
    env.keys(&["stage-install", "--clean", &fresh.display().to_string()])
        .success();
    assert!(!fresh.exists());

    // A host whose key was not generated here has nothing to stage.
    refused(
        &env,
        &["stage-install", "--host", "vps-arm"],
        3,
        "hosts/vps-arm/ssh_host_ed25519_key",
    );
}
