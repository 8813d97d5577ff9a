//! The pre-commit framework (the real one, from PyPI) running keys through the hook
//! ids this repository offers in `.pre-commit-hooks.yaml`.

use std::path::Path;
use std::process::Command;

use crate::common::{TestEnv, peer, run};
use crate::fixture::fleet;
use crate::hook::{git, git_with_keys};

#[test]
fn the_system_hook_id_runs_the_installed_keys_and_blocks_plaintext() {
    let mut env = TestEnv::new();
    // This repository's hook definitions, as pre-commit fetches them: a git repo.
    let hooks = env.root.join("hooks-repo");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
        hooks.join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    let in_hooks = |args: &[&str]| {
        let mut cmd = Command::new(peer("git"));
        cmd.arg("-C").arg(&hooks).args(args);
        env.apply(&mut cmd);
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org");
        run(cmd, b"").success()
    };
    in_hooks(&["init", "-q", "-b", "main"]);
    in_hooks(&["add", "-A"]);
    in_hooks(&["commit", "-qm", "hooks"]);
    let rev = in_hooks(&["rev-parse", "HEAD"]).stdout.trim().to_string();

    fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    env.write(
        "work/.pre-commit-config.yaml",
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: keys-check-system\n",
            hooks.display()
        ),
    );
    let mut install = Command::new(peer("pre-commit"));
    install.arg("install");
    env.apply(&mut install);
    run(install, b"").success();

    env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
        .success();
    git(&env, &["add", "-A"], b"").success();
    let ok = git_with_keys(&env, &["commit", "-qm", "fleet"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);

    env.write("work/secrets/api.txt", "API_KEY=sk-live-canary\n");
    git(&env, &["add", "-A"], b"").success();
    let blocked = git_with_keys(&env, &["commit", "-qm", "leak"]);
    assert_ne!(blocked.code, 0, "the commit went through");
    let said = format!("{}{}", blocked.stdout, blocked.stderr);
    assert!(said.contains("secrets/api.txt"), "{said}");
    assert!(said.contains("keys check"), "{said}");
}

/// The pre-commit framework's hook and keys' hook, installed in either order: both run
/// on every commit, and a plaintext file is blocked.
#[test]
fn keys_and_pre_commit_install_in_either_order_both_run() {
    for keys_first in [true, false] {
        let mut env = TestEnv::new();
        fleet(&mut env);
        git(&env, &["init", "-q", "-b", "main"], b"").success();
        env.write(
            "work/.gitignore",
            "/.keys-writer\n/.keys-journal\n/.keys-rotation\n/framework-ran\n",
        );
        env.write(
            "work/.pre-commit-config.yaml",
            "repos:\n  - repo: local\n    hooks:\n      - id: mark\n        name: mark\n        entry: sh -c 'echo ran > framework-ran'\n        language: system\n        pass_filenames: false\n        always_run: true\n",
        );
        let pre_commit_install = || {
            let mut install = Command::new(peer("pre-commit"));
            install.arg("install");
            env.apply(&mut install);
            run(install, b"").success();
        };
        if keys_first {
            env.keys(&["hook", "install"]).success();
            pre_commit_install();
        } else {
            pre_commit_install();
            env.keys(&["hook", "install"]).success();
        }
        env.keys(&["check"]).success();
        env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
            .success();
        git(&env, &["add", "-A"], b"").success();
        let ok = git_with_keys(&env, &["commit", "-qm", "fleet"]);
        assert_eq!(
            ok.code, 0,
            "keys first: {keys_first}: {}{}",
            ok.stdout, ok.stderr
        );
        assert!(
            env.work.join("framework-ran").exists(),
            "keys first: {keys_first}: the framework's hook did not run"
        );
        env.write("work/secrets/api.txt", "API_KEY=sk-live-canary\n");
        git(&env, &["add", "-A"], b"").success();
        let blocked = git_with_keys(&env, &["commit", "-qm", "leak"]);
        assert_ne!(
            blocked.code, 0,
            "keys first: {keys_first}: the commit went through"
        );
        let said = format!("{}{}", blocked.stdout, blocked.stderr);
        assert!(said.contains("secrets/api.txt"), "{said}");
    }
}
