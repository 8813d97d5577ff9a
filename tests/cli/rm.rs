//! `keys rm`: the file and its line in keys.lock go, empty directories are pruned.

use crate::common::TestEnv;
use crate::fixture::fleet;

#[test]
fn rm_removes_the_file_and_its_lock_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "deep/a/b"], b"x").success();
    env.keys_stdin(&["encrypt", "bot/keep"], b"y").success();
    let run = env.keys(&["rm", "deep/a/b"]).success();
    crate::assert_output!(env, "removed", run.stderr);
    assert!(
        !repo.join("secrets/deep").exists(),
        "empty directories are pruned"
    );
    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    assert!(!lock.contains("deep/a/b") && lock.contains("bot/keep"));
    env.keys(&["rm", "deep/a/b"]).failure(2);
    env.keys(&["check"]).success();
}
