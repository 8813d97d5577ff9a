//! A repository whose hooks husky manages (the real husky 9 from npm): keys' check
//! is called from husky's scripts, never replacing them, in either install order, and
//! survives husky reinstalling its hooks (what `npm install` does).

use std::process::Command;

use crate::common::{Run, TestEnv, peer, run};
use crate::fixture::fleet;
use crate::hook::git;

fn husky(env: &TestEnv) -> Run {
    let mut cmd = Command::new(peer("husky"));
    env.apply(&mut cmd);
    run(cmd, b"")
}

fn commit(env: &TestEnv, message: &str) -> Run {
    git(env, &["add", "-A"], b"").success();
    git(env, &["commit", "-qm", message], b"")
}

#[test]
fn keys_check_runs_from_huskys_scripts_in_either_install_order() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    env.write(
        "work/.gitignore",
        "/.keys-writer\n/.keys-journal\n/.keys-rotation\n/husky-ran\n",
    );
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
        .success();
    // keys first, then husky: git now runs husky's hooks, and keys check says so.
    env.keys(&["hook", "install"]).success();
    husky(&env).success();
    env.write("work/.husky/pre-commit", "echo ran > husky-ran\n");
    let r = env.keys(&["check"]).failure(8);
    assert!(r.stdout.contains("core.hooksPath"), "{}", r.stdout);

    // Installed again: into .husky/keys/, called from husky's own script.
    let run = env.keys(&["hook", "install"]).success();
    assert!(
        run.stdout
            .contains(".husky/keys/pre-commit, called from husky's "),
        "{}",
        run.stdout
    );
    let script = std::fs::read_to_string(env.work.join(".husky/pre-commit")).unwrap();
    assert!(script.starts_with("echo ran > husky-ran\n"), "{script}");
    assert!(
        script.contains("\"$(dirname \"$0\")/keys/pre-commit\"\n"),
        "{script}"
    );
    env.keys(&["check"]).success();
    let ok = commit(&env, "fleet");
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(
        env.work.join("husky-ran").exists(),
        "husky's own hook did not run"
    );

    // husky reinstalls its hooks (npm install runs it): keys' check still runs.
    husky(&env).success();
    env.write("work/secrets/api.txt", "API_KEY=sk-live-canary\n");
    let blocked = commit(&env, "leak");
    assert_ne!(blocked.code, 0, "the commit went through");
    let said = format!("{}{}", blocked.stdout, blocked.stderr);
    assert!(said.contains("secrets/api.txt"), "{said}");
    std::fs::remove_file(env.work.join("secrets/api.txt")).unwrap();
    git(&env, &["reset", "-q"], b"").success();

    // Someone drops the call from husky's script: keys check names it.
    env.write("work/.husky/pre-commit", "echo ran > husky-ran\n");
    let r = env.keys(&["check"]).failure(8);
    assert!(
        r.stdout
            .contains(".husky/pre-commit: husky runs this script"),
        "{}",
        r.stdout
    );
    env.keys(&["hook", "install"]).success();
    env.keys(&["check"]).success();
}

#[test]
fn husky_first_then_keys_keeps_huskys_hooks() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    husky(&env).success();
    let husky_hook = std::fs::read(env.work.join(".husky/_/pre-commit")).unwrap();
    env.keys(&["hook", "install"]).success();
    assert_eq!(
        std::fs::read(env.work.join(".husky/_/pre-commit")).unwrap(),
        husky_hook,
        "husky's hook was replaced"
    );
    assert!(env.work.join(".husky/keys/pre-merge-commit").is_file());
    let merge = std::fs::read_to_string(env.work.join(".husky/pre-merge-commit")).unwrap();
    assert!(merge.contains("/keys/pre-merge-commit\"\n"), "{merge}");
    env.keys(&["check"]).success();
}
