//! The pre-commit hook and `keys check --staged`: what is checked is what git will
//! commit (the index), not the work tree, and every failure blocks the commit.

use std::path::Path;
use std::process::Command;

use crate::common::{Run, TestEnv, mode_of, peer, run};
use crate::secrets::fleet;

fn git(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(peer("git"));
    cmd.args(args);
    env.apply(&mut cmd);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org");
    run(cmd, stdin)
}

const AGE_ID: &str = concat!(
    "AGE-SECRET-",
    "KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS3290GG"
);

/// A committed fleet with one secret and the hook installed.
fn repo_with_hook(env: &mut TestEnv) {
    fleet(env);
    git(env, &["init", "-q", "-b", "main"], b"").success();
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
        .success();
    let filler: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    env.write("work/notes.md", &filler);
    let run = env.keys(&["hook", "install"]).success();
    assert!(run.stdout.starts_with("installed "), "{}", run.stdout);
    let hook = env.work.join(".git/hooks/pre-commit");
    assert_eq!(mode_of(&hook), 0o755);
    git(env, &["add", "-A"], b"").success();
    git(env, &["commit", "-qm", "fleet"], b"").success();
}

#[test]
fn a_key_staged_with_add_p_is_blocked_though_the_work_tree_is_clean() {
    let mut env = TestEnv::new();
    repo_with_hook(&mut env);
    // Two hunks: one adds an age identity, one harmless; stage only the first.
    let mut text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    text = text.replace("line 2\n", &format!("line 2\n{AGE_ID}\n"));
    text = text.replace("line 29\n", "line 29\nharmless\n");
    env.write("work/notes.md", &text);
    git(&env, &["add", "-p", "notes.md"], b"y\nn\n").success();
    // The work tree loses the key; the index keeps it.
    env.write("work/notes.md", text.replace(&format!("{AGE_ID}\n"), ""));
    env.keys(&["check"]).success();
    let run = git(&env, &["commit", "-qm", "leak"], b"");
    assert_ne!(run.code, 0, "the commit went through: {}", run.stderr);
    assert!(
        run.stdout.contains("notes.md: contains an age identity")
            || run.stderr.contains("notes.md: contains an age identity"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(!run.stdout.contains("QYQSZ") && !run.stderr.contains("QYQSZ"));
    let staged = env.keys(&["check", "--staged"]).failure(8);
    assert!(staged.stdout.contains("notes.md"), "{}", staged.stdout);
    assert_eq!(
        git(&env, &["rev-list", "--count", "HEAD"], b"")
            .stdout
            .trim(),
        "1"
    );
}

#[test]
fn a_clean_index_passes_though_the_work_tree_has_plaintext() {
    let mut env = TestEnv::new();
    repo_with_hook(&mut env);
    env.write("work/notes.md", format!("{AGE_ID}\n"));
    env.write("work/secrets/bot/leak.age", "TOKEN=plaintext\n");
    env.keys(&["check"]).failure(8);
    env.write("work/other.md", "fine\n");
    git(&env, &["add", "other.md"], b"").success();
    git(&env, &["commit", "-qm", "other"], b"").success();
    // Staging the plaintext secret blocks the next commit.
    git(&env, &["add", "secrets/bot/leak.age"], b"").success();
    let run = git(&env, &["commit", "-qm", "leak"], b"");
    assert_ne!(run.code, 0);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("secrets/bot/leak.age: not a valid age file"),
        "{all}"
    );
    assert!(!all.contains("TOKEN=plaintext"));
}

#[test]
fn staged_check_reads_odd_paths_renames_and_an_alternate_index() {
    let mut env = TestEnv::new();
    repo_with_hook(&mut env);
    // A rename of a secret is fine: the lock still matches the content, but the name
    // no longer does.
    git(
        &env,
        &["mv", "secrets/bot/token.age", "secrets/bot/renamed.age"],
        b"",
    )
    .success();
    let run = env.keys(&["check", "--staged"]).failure(8);
    assert!(
        run.stdout
            .contains("secrets/bot/renamed.age: is not in secrets/keys.lock"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("secrets/bot/token.age: is listed in secrets/keys.lock but missing"),
        "{}",
        run.stdout
    );
    git(
        &env,
        &["mv", "secrets/bot/renamed.age", "secrets/bot/token.age"],
        b"",
    )
    .success();
    env.keys(&["check", "--staged"]).success();

    // Paths with spaces, a newline and a leading '-', and a binary file.
    let odd = "-rf odd\nname.md";
    env.write(&format!("work/{odd}"), format!("\0\x01binary\n{AGE_ID}\n"));
    git(&env, &["add", "--", odd], b"").success();
    let run = env.keys(&["check", "--staged"]).failure(8);
    assert!(
        run.stdout
            .contains("-rf odd\nname.md: contains an age identity"),
        "{}",
        run.stdout
    );
    git(&env, &["rm", "-q", "--cached", "--", odd], b"").success();
    std::fs::remove_file(env.work.join(odd)).unwrap();

    // GIT_INDEX_FILE: an index built elsewhere is what gets checked.
    let alt = env.root.join("alt-index");
    std::fs::copy(env.work.join(".git/index"), &alt).unwrap();
    env.write("work/key.pem", concat!("-----BEGIN PRIVATE", " KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n"));
    let mut add = Command::new(peer("git"));
    add.args(["add", "key.pem"]);
    env.apply(&mut add);
    add.env("GIT_INDEX_FILE", &alt);
    crate::common::run(add, b"").success();
    env.keys(&["check", "--staged"]).success();
    let mut env2 = env;
    env2.set("GIT_INDEX_FILE", alt.display().to_string());
    let run = env2.keys(&["check", "--staged"]).failure(8);
    assert!(
        run.stdout.contains("key.pem: contains a private key block"),
        "{}",
        run.stdout
    );
}

#[test]
fn install_chains_an_existing_hook_honours_hooks_path_and_fails_closed() {
    use std::os::unix::fs::PermissionsExt;
    let mut env = TestEnv::new();
    fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    let hooks = env.work.join("githooks");
    git(&env, &["config", "core.hooksPath", "githooks"], b"").success();
    let marker = env.root.join("previous-ran");
    let previous = format!("#!/bin/sh\ntouch '{}'\n", marker.display());
    env.write("work/githooks/pre-commit", &previous);
    std::fs::set_permissions(
        hooks.join("pre-commit"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let run = env.keys(&["hook", "install"]).success();
    assert!(
        run.stdout.contains("pre-commit.before-keys"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit.before-keys")).unwrap(),
        previous
    );
    let hook = std::fs::read(hooks.join("pre-commit")).unwrap();
    let again = env.keys(&["hook", "install"]).success();
    assert!(
        again.stdout.starts_with("already installed"),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read(hooks.join("pre-commit")).unwrap(), hook);
    assert!(!env.work.join(".git/hooks/pre-commit").exists());

    env.keys_stdin(&["encrypt", "bot/token"], b"x").success();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "ok"], b"").success();
    assert!(marker.exists(), "the chained hook did not run");

    // A broken policy is an error inside keys: the commit is blocked, not waved through.
    std::fs::remove_file(&marker).unwrap();
    env.write("work/policies/default.yaml", "rules: [");
    git(&env, &["add", "-A"], b"").success();
    let run = git(&env, &["commit", "-qm", "broken"], b"");
    assert_ne!(run.code, 0);
    assert!(!marker.exists());
    let _ = Path::new("");
}

#[test]
fn init_installs_the_hook_in_a_git_repository() {
    let env = TestEnv::new();
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    let run = env.keys(&["init", "--admin", "alice"]).success();
    assert!(
        run.stdout.contains("hook      installed "),
        "{}",
        run.stdout
    );
    assert!(env.work.join(".git/hooks/pre-commit").is_file());
    let run = env.keys(&["init", "--admin", "alice"]).success();
    assert!(
        run.stdout.contains("hook      already installed"),
        "{}",
        run.stdout
    );
}
