//! The pre-commit hook and `keys check --staged`: what is checked is what git will
//! commit (the index), not the work tree, and every failure blocks the commit.

use std::path::Path;
use std::process::Command;

use crate::common::{Run, TestEnv, mode_of, peer, run};
use crate::fixture::fleet;

pub(crate) fn git(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Run {
    run(git_command(env, args), stdin)
}

fn git_command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(peer("git"));
    cmd.args(args);
    env.apply(&mut cmd);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org");
    cmd
}

/// `git` with the keys under test first on PATH, as an installed keys would be (for
/// hooks that run the `keys` on PATH: a pre-commit `language: system` id, lefthook).
pub(crate) fn git_with_keys(env: &TestEnv, args: &[&str]) -> Run {
    let mut cmd = git_command(env, args);
    let bin = Path::new(crate::common::keys_bin());
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    run(cmd, b"")
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
    crate::assert_output!(
        env,
        "a_key_staged_with_add_p_is_blocked_though_the_work_tree_is_clean",
        staged.stdout
    );
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
    crate::assert_output!(
        env,
        "staged_check_reads_odd_paths_renames_and_an_alternate_index",
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
    crate::assert_output!(
        env,
        "staged_check_reads_odd_paths_renames_and_an_alternate_index_2",
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
    crate::assert_output!(
        env2,
        "staged_check_reads_odd_paths_renames_and_an_alternate_index_3",
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
    crate::assert_output!(
        env,
        "install_chains_an_existing_hook_honours_hooks_path_and_fails_closed",
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
    env.snapshots_of_new_keys()
        .bind(|| insta::assert_snapshot!("init_installs_the_hook", run.stdout));
    assert!(env.work.join(".git/hooks/pre-commit").is_file());
    let run = env.keys(&["init", "--admin", "alice"]).success();
    crate::assert_output!(
        env,
        "init_installs_the_hook_in_a_git_repository_2",
        run.stdout
    );
}

fn head(env: &TestEnv) -> String {
    git(env, &["rev-parse", "HEAD"], b"").success().stdout
}

#[test]
fn a_merge_that_brings_a_private_key_in_is_refused_by_the_pre_merge_commit_hook() {
    let mut env = TestEnv::new();
    repo_with_hook(&mut env);
    let hook = env.work.join(".git/hooks/pre-merge-commit");
    assert_eq!(mode_of(&hook), 0o755);
    // A branch that slipped a key past the hooks (--no-verify)...
    git(&env, &["checkout", "-q", "-b", "side"], b"").success();
    env.write("work/deploy.env", format!("DEPLOY_KEY={AGE_ID}\n"));
    git(&env, &["add", "deploy.env"], b"").success();
    git(&env, &["commit", "-q", "--no-verify", "-m", "key"], b"").success();
    // ...merged into a branch that moved on, so git makes a merge commit.
    git(&env, &["checkout", "-q", "main"], b"").success();
    env.write("work/other.md", "fine\n");
    git(&env, &["add", "other.md"], b"").success();
    git(&env, &["commit", "-qm", "other"], b"").success();
    let before = head(&env);
    let run = git(&env, &["merge", "--no-edit", "side"], b"");
    assert_ne!(run.code, 0, "the merge went through: {}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("deploy.env: contains an age identity"),
        "{all}"
    );
    assert!(all.contains("keys: commit blocked"), "{all}");
    assert!(!all.contains("QYQSZ"), "{all}");
    assert_eq!(head(&env), before, "a merge commit was made");
    git(&env, &["merge", "--abort"], b"").success();
    // A clean merge goes through the same hook.
    git(&env, &["checkout", "-q", "-b", "clean", "HEAD~1"], b"").success();
    env.write("work/third.md", "fine\n");
    git(&env, &["add", "third.md"], b"").success();
    git(&env, &["commit", "-qm", "third"], b"").success();
    git(&env, &["checkout", "-q", "main"], b"").success();
    git(&env, &["merge", "-q", "--no-edit", "clean"], b"").success();
    assert_eq!(
        git(&env, &["rev-list", "--count", "--merges", "HEAD"], b"")
            .stdout
            .trim(),
        "1"
    );
}

#[test]
fn check_reports_a_hook_that_git_no_longer_runs() {
    let mut env = TestEnv::new();
    repo_with_hook(&mut env);
    env.keys(&["check"]).success();
    // husky: hooks now come from another directory, where there is no keys hook.
    git(&env, &["config", "core.hooksPath", ".husky/_"], b"").success();
    for args in [&["check"][..], &["check", "--staged"]] {
        let run = env.keys(args).failure(8);
        assert!(
            run.stdout.contains(
                ".husky/_/pre-commit: git looks for its pre-commit hook here (core.hooksPath) and finds no keys hook; the one installed at .git/hooks/pre-commit never runs"
            ),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("run `keys hook install` again"),
            "{}",
            run.stdout
        );
    }
    // Which is so: a key goes in unchecked.
    env.write("work/leak.txt", format!("{AGE_ID}\n"));
    git(&env, &["add", "leak.txt"], b"").success();
    git(&env, &["commit", "-qm", "unchecked"], b"").success();
    git(&env, &["rm", "-q", "leak.txt"], b"").success();
    git(&env, &["commit", "-qm", "removed"], b"").success();
    // Installing again puts the hooks where git looks, and the check is clean.
    let run = env.keys(&["hook", "install"]).success();
    crate::assert_output!(
        env,
        "check_reports_a_hook_that_git_no_longer_runs",
        run.stdout
    );

    env.keys(&["check"]).success();
    // Moving on from a recorded directory is reported too, and so is a hook git
    // skips because it is not executable.
    git(&env, &["config", "core.hooksPath", "elsewhere"], b"").success();
    let run = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "check_reports_a_hook_that_git_no_longer_runs_2",
        run.stdout
    );
    git(&env, &["config", "--unset", "core.hooksPath"], b"").success();
    env.keys(&["check"]).success();
    let hook = env.work.join(".git/hooks/pre-commit");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let run = env.keys(&["check"]).failure(8);
    crate::assert_output!(
        env,
        "check_reports_a_hook_that_git_no_longer_runs_3",
        run.stdout
    );
}

#[test]
fn a_repository_whose_hook_was_never_installed_is_not_reported() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    env.keys_stdin(&["encrypt", "bot/token"], b"x").success();
    env.keys(&["check"]).success();
    git(&env, &["config", "core.hooksPath", ".husky/_"], b"").success();
    env.keys(&["check"]).success();
    // Nor one whose hook was replaced by another framework's (which runs `keys
    // check --staged` itself, as the keys-check hook id does).
    git(&env, &["config", "--unset", "core.hooksPath"], b"").success();
    env.keys(&["hook", "install"]).success();
    env.write(
        "work/.git/hooks/pre-commit",
        "#!/bin/sh\nexec keys check --staged\n",
    );
    env.keys(&["check"]).success();
}

#[test]
fn install_adds_pre_merge_commit_beside_an_older_pre_commit_hook() {
    let mut env = TestEnv::new();
    repo_with_hook(&mut env);
    let hooks = env.work.join(".git/hooks");
    let merge = hooks.join("pre-merge-commit");
    std::fs::remove_file(&merge).unwrap();
    let run = env.keys(&["check"]).success();
    crate::assert_output!(
        env,
        "install_adds_pre_merge_commit_beside_an_older_pre_commit_hook",
        run.stdout
    );
    // An existing pre-merge-commit hook is chained like pre-commit's.
    let marker = env.root.join("merge-hook-ran");
    env.script(
        "work/.git/hooks/pre-merge-commit",
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    );
    let run = env.keys(&["hook", "install"]).success();
    crate::assert_output!(
        env,
        "install_adds_pre_merge_commit_beside_an_older_pre_commit_hook_2",
        run.stdout
    );
    let run = env.keys(&["check"]).success();
    assert!(!run.stdout.contains("pre-merge-commit"), "{}", run.stdout);
    git(&env, &["checkout", "-q", "-b", "side"], b"").success();
    env.write("work/a.md", "a\n");
    git(&env, &["add", "a.md"], b"").success();
    git(&env, &["commit", "-qm", "a"], b"").success();
    git(&env, &["checkout", "-q", "main"], b"").success();
    env.write("work/b.md", "b\n");
    git(&env, &["add", "b.md"], b"").success();
    git(&env, &["commit", "-qm", "b"], b"").success();
    git(&env, &["merge", "-q", "--no-edit", "side"], b"").success();
    assert!(
        marker.exists(),
        "the chained pre-merge-commit hook did not run"
    );
}

/// `keys hook uninstall` takes out what `keys hook install --diff` put in, puts back
/// the hook it kept, leaves every other line, and says what it did.
#[test]
fn uninstall_removes_the_hooks_and_drivers_and_says_so() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    let old = b"#!/bin/sh\nexit 0\n";
    let hook = env.work.join(".git/hooks/pre-commit");
    std::fs::write(&hook, old).unwrap();
    std::fs::write(env.work.join(".gitattributes"), "*.png binary\n").unwrap();
    env.keys(&["hook", "install", "--diff"]).success();
    let r = env.keys(&["hook", "uninstall"]).success();
    assert_eq!(
        r.stdout,
        "removed .git/hooks/pre-commit and put back the hook it kept (.git/hooks/pre-commit.before-keys)\n\
         removed .git/hooks/pre-merge-commit\n\
         removed keys.hooksdir from the repository's git configuration\n\
         removed merge.keys-lock from the repository's git configuration\n\
         removed merge.keys-export from the repository's git configuration\n\
         removed diff.keys from the repository's git configuration\n\
         removed from .gitattributes (commit it): secrets/keys.lock merge=keys-lock, keys.nix merge=keys-export, secrets.nix merge=keys-export, .sops.yaml merge=keys-export, secrets/**/*.age diff=keys\n"
    );
    assert_eq!(std::fs::read(&hook).unwrap(), old);
    assert_eq!(
        std::fs::read_to_string(env.work.join(".gitattributes")).unwrap(),
        "*.png binary\n"
    );
    let config = std::fs::read_to_string(env.work.join(".git/config")).unwrap();
    assert!(!config.contains("keys"), "{config}");
    let again = env.keys(&["hook", "uninstall"]).success();
    assert_eq!(
        again.stdout,
        "nothing to remove: keys' hooks are not installed here\n"
    );
}
