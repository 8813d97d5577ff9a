//! A repository whose hooks lefthook manages (the real lefthook from npm): keys' check
//! is a command in lefthook's configuration, added without losing what is there, and
//! `keys check` reports when git would not run it.

use std::process::Command;

use crate::common::{Run, TestEnv, peer, run};
use crate::fixture::fleet;
use crate::hook::{git, git_with_keys};

fn lefthook_install(env: &TestEnv) -> Run {
    let mut cmd = Command::new(peer("lefthook"));
    cmd.arg("install");
    env.apply(&mut cmd);
    run(cmd, b"")
}

fn commit(env: &TestEnv, message: &str) -> Run {
    git(env, &["add", "-A"], b"").success();
    // lefthook runs the `keys` on PATH: the one under test.
    git_with_keys(env, &["commit", "-qm", message])
}

const CONFIG: &str = "\
# the team's hooks
pre-commit:
  commands:
    mark:
      run: echo ran > lefthook-ran
";

#[test]
fn keys_check_is_a_lefthook_command_in_either_install_order() {
    for keys_first in [true, false] {
        let mut env = TestEnv::new();
        fleet(&mut env);
        git(&env, &["init", "-q", "-b", "main"], b"").success();
        env.write(
            "work/.gitignore",
            "/.keys-writer\n/.keys-journal\n/.keys-rotation\n/lefthook-ran\n",
        );
        env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
            .success();
        if keys_first {
            // keys' plain hooks, then lefthook takes the hook's place (keeping ours as
            // `.old`, which it never runs): keys check says commits are not checked.
            env.keys(&["hook", "install"]).success();
            env.write("work/lefthook.yml", CONFIG);
            lefthook_install(&env).success();
            let r = env.keys(&["check"]).failure(8);
            assert!(
                r.stdout.contains("another hook has taken its place"),
                "{}",
                r.stdout
            );
        } else {
            env.write("work/lefthook.yml", CONFIG);
            lefthook_install(&env).success();
        }
        let run = env.keys(&["hook", "install"]).success();
        assert!(
            run.stdout.contains("added the keys-check command to"),
            "{}",
            run.stdout
        );
        let config = std::fs::read_to_string(env.work.join("lefthook.yml")).unwrap();
        assert_eq!(
            config,
            "# the team's hooks\npre-commit:\n  commands:\n    keys-check:\n      run: keys check --staged\n    mark:\n      run: echo ran > lefthook-ran\npre-merge-commit:\n  commands:\n    keys-check:\n      run: keys check --staged\n"
        );
        env.keys(&["hook", "install"]).success();
        assert_eq!(
            std::fs::read_to_string(env.work.join("lefthook.yml")).unwrap(),
            config,
            "a second install changed the configuration"
        );
        env.keys(&["check"]).success();

        let ok = commit(&env, "fleet");
        assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
        assert!(env.work.join("lefthook-ran").exists());
        env.write("work/secrets/api.txt", "API_KEY=sk-live-canary\n");
        let blocked = commit(&env, "leak");
        assert_ne!(
            blocked.code, 0,
            "keys first: {keys_first}: the commit went through"
        );
        let said = format!("{}{}", blocked.stdout, blocked.stderr);
        assert!(said.contains("secrets/api.txt"), "{said}");
    }
}
