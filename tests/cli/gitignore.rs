//! A repository whose git ignores part of what keys keeps (seed 000 keeps a
//! `.gitignore`d `secrets/`): `check` fails naming the ignoring line and still reads
//! every file under `secrets/`; `init` refuses to scaffold under such a line unless
//! `--fix-gitignore` removes it.

use crate::common::TestEnv;
use crate::fixture::{fleet, tree};
use crate::hook::git;

#[test]
fn check_fails_on_an_ignored_secrets_dir_and_reads_the_plaintext_in_it() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
        .success();
    env.keys(&["check"]).success();
    env.write("work/.gitignore", "/build/\n# local only\nsecrets/\n");
    // A plaintext API key where git does not look.
    env.write("work/secrets/api.txt", "API_KEY=sk-live-canary\n");
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.lines().next().unwrap().starts_with(
            ".gitignore:3: git ignores secrets/, which keys keeps and git must commit"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("--fix-gitignore"), "{}", run.stdout);
    assert!(run.stdout.contains("secrets/api.txt"), "{}", run.stdout);
    assert!(!run.stdout.contains("ok: "), "{}", run.stdout);
    assert!(!run.stdout.contains("canary"), "{}", run.stdout);
    // The staged check fails the same way: nothing under secrets/ can be committed.
    let staged = env.keys(&["check", "--staged"]).failure(8);
    assert!(staged.stdout.contains(".gitignore:3:"), "{}", staged.stdout);

    // A narrower line that ignores only some secrets, and one in .git/info/exclude.
    env.write("work/.gitignore", "/build/\n*.age\n");
    std::fs::remove_file(env.work.join("secrets/api.txt")).unwrap();
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout.contains(".gitignore:2: git ignores secrets/"),
        "{}",
        run.stdout
    );
    env.write("work/.gitignore", "/build/\n");
    env.write("work/.git/info/exclude", "keys.nix\n");
    let run = env.keys(&["check"]).failure(8);
    assert!(
        run.stdout
            .contains(".git/info/exclude:1: git ignores keys.nix"),
        "{}",
        run.stdout
    );
    // Lines that ignore nothing keys keeps, or re-include it, are fine.
    env.write("work/.git/info/exclude", "*.age\n!secrets/**\n");
    env.keys(&["check"]).success();
}

#[test]
fn init_refuses_an_ignored_secrets_dir_until_fix_gitignore_removes_the_line() {
    let env = TestEnv::new();
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    env.write("work/.gitignore", "node_modules/\nsecrets/\n.env\n");
    let before = tree(&env.work);
    let run = env.keys(&["init", "--admin", "alice"]).failure(8);
    assert!(
        run.stderr.starts_with(
            "keys: error: .gitignore:2: git ignores secrets/, which keys keeps and git must commit\n  hint: remove that line (`keys init --fix-gitignore` does)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(tree(&env.work), before, "init changed files");
    assert!(
        !env.home.join(".config/keys").exists(),
        "an identity was made"
    );

    let run = env
        .keys(&["init", "--admin", "alice", "--fix-gitignore"])
        .success();
    assert!(
        run.stdout.contains("removed   .gitignore:2: secrets/"),
        "{}",
        run.stdout
    );
    let ignore = std::fs::read_to_string(env.work.join(".gitignore")).unwrap();
    assert!(ignore.starts_with("node_modules/\n.env\n"), "{ignore}");
    assert!(env.work.join("secrets").is_dir());
    env.keys(&["check"]).success();
}
