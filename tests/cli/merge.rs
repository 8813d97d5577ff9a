//! Two admins on two branches: keys.lock merges secret by secret through the merge
//! driver that `keys hook install` registers, with the real git.

use crate::common::TestEnv;
use crate::fixture::fleet;
use crate::hook::git;

#[test]
fn neighbouring_secrets_merge_cleanly_and_the_same_secret_conflicts_by_name() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    // What `keys init` writes: the files keys keeps while it runs stay out of git.
    env.write(
        "work/.gitignore",
        "/.keys-writer\n/.keys-journal\n/.keys-rotation\n",
    );
    env.keys_stdin(&["encrypt", "bot/a"], b"a").success();
    env.keys(&["export", "agenix-rules"]).success();
    env.keys(&["export", "nix"]).success();
    env.keys(&["hook", "install"]).success();
    let attributes = std::fs::read_to_string(repo.join(".gitattributes")).unwrap();
    assert!(
        attributes.contains("secrets/keys.lock merge=keys-lock\n"),
        "{attributes}"
    );
    let driver = git(&env, &["config", "merge.keys-lock.driver"], b"").success();
    assert!(
        driver.stdout.contains(" merge-lock %O %A %B %P"),
        "{}",
        driver.stdout
    );
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "fleet"], b"").success();

    // Two branches each add a secret whose lock lines are neighbours.
    git(&env, &["checkout", "-q", "-b", "alice"], b"").success();
    env.keys_stdin(&["encrypt", "bot/b"], b"b").success();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "alice adds bot/b"], b"").success();
    git(&env, &["checkout", "-q", "main"], b"").success();
    env.keys_stdin(&["encrypt", "bot/c"], b"c").success();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "bob adds bot/c"], b"").success();
    git(&env, &["merge", "-q", "--no-edit", "alice"], b"").success();
    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    for name in ["bot/a ", "bot/b ", "bot/c "] {
        assert_eq!(lock.matches(name).count(), 1, "{lock}");
    }
    // The exports, which both branches changed next to each other, did not conflict:
    // the merge kept this branch's text, and the hook regenerated them from the merged
    // secrets and staged them (git writes a merge's tree before its hook runs, so they
    // go into the next commit).
    let status = git(&env, &["status", "--porcelain"], b"").success();
    assert_eq!(status.stdout, "M  keys.nix\nM  secrets.nix\n");
    env.keys(&["check"]).success();
    git(&env, &["commit", "-qm", "exports after the merge"], b"").success();
    for export in ["secrets.nix", "keys.nix"] {
        let text = git(&env, &["show", &format!("HEAD:{export}")], b"")
            .success()
            .stdout;
        for name in ["bot/a", "bot/b", "bot/c"] {
            assert!(
                text.contains(&format!("secrets/{name}.age")),
                "{export}: {text}"
            );
        }
    }

    // Both change the same secret: a conflict naming it, the rest merged.
    git(&env, &["checkout", "-q", "-b", "carol"], b"").success();
    env.keys_stdin(&["encrypt", "--force", "bot/a"], b"carol")
        .success();
    env.keys_stdin(&["encrypt", "bot/d"], b"d").success();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "carol"], b"").success();
    git(&env, &["checkout", "-q", "main"], b"").success();
    env.keys_stdin(&["encrypt", "--force", "bot/a"], b"dave")
        .success();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "dave"], b"").success();
    let run = git(&env, &["merge", "--no-edit", "carol"], b"");
    assert_ne!(run.code, 0);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("secrets/keys.lock: both branches changed bot/a"),
        "{said}"
    );
    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    assert!(lock.contains("<<<<<<< ours\nbot/a "), "{lock}");
    assert_eq!(lock.matches("bot/d ").count(), 1, "{lock}");
    // keys check does not pass a lock in conflict.
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.starts_with("secrets/keys.lock: 3: "),
        "{}",
        check.stdout
    );

    // A lock damaged on the other branch: the driver names the lock, the version
    // and the line, not git's temporary copy of it.
    git(&env, &["merge", "--abort"], b"").success();
    git(&env, &["checkout", "-q", "-b", "erin"], b"").success();
    let lock = std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap();
    let damaged = lock.replacen("bot/b age ", "bot/b ag3 ", 1);
    assert_ne!(damaged, lock);
    env.write("work/secrets/keys.lock", &damaged);
    git(&env, &["commit", "-qam", "erin", "--no-verify"], b"").success();
    git(&env, &["checkout", "-q", "main"], b"").success();
    env.keys_stdin(&["encrypt", "bot/e"], b"e").success();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-qm", "frank"], b"").success();
    let run = git(&env, &["merge", "--no-edit", "erin"], b"");
    assert_ne!(run.code, 0);
    let said = format!("{}{}", run.stdout, run.stderr);
    let line = damaged
        .lines()
        .position(|l| l.starts_with("bot/b "))
        .unwrap()
        + 1;
    assert!(
        said.contains(&format!(
            "secrets/keys.lock (the other branch's version):{line}: unknown format"
        )),
        "{said}"
    );
    assert!(!said.contains(".merge_file_"), "{said}");
}
