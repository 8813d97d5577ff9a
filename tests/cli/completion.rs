//! `keys completions SHELL`: the script, sourced in the real bash, zsh and fish, has
//! the shell offer the repository's secret, host and admin names; answering reads
//! only names, and offers nothing, silently, where there is no repository.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{TestEnv, keys_bin, peer, run};
use crate::fixture;

/// The demo fleet with a few secrets (their bytes are never read).
fn fleet_with_secrets(env: &mut TestEnv) -> PathBuf {
    let repo = fixture::fleet(env);
    for file in [
        "bot/telegram-token.age",
        "vps-x86/restic-password.age",
        "nannuo-bot/config.yaml",
        "hosts/vps-arm/ssh_host_ed25519_key.age",
    ] {
        env.write(&format!("work/secrets/{file}"), "not read");
    }
    repo
}

/// What each shell offers, and where, for each line typed so far.
const CASES: &[(&str, &[&str])] = &[
    ("keys decrypt b", &["bot/telegram-token"]),
    ("keys edit nannuo-bot/", &["nannuo-bot/config"]),
    ("keys rm h", &["hosts/vps-arm/ssh_host_ed25519_key"]),
    ("keys host rm v", &["vps-arm", "vps-x86"]),
    ("keys host rotate vps-a", &["vps-arm"]),
    ("keys host rename vps-x", &["vps-x86"]),
    ("keys admin rename d", &["demo"]),
    (
        "keys container add web --host vps-",
        &["vps-arm", "vps-x86"],
    ),
    ("keys rekey --host vps-x", &["vps-x86"]),
    ("keys sta", &["stage-install", "status"]),
];

/// The script `keys completions SHELL` prints, saved to a file.
fn script(env: &TestEnv, shell: &str) -> PathBuf {
    let run = env.keys(&["completions", shell]).success();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    env.write(&format!("{shell}-completion"), run.stdout)
}

/// The candidates `shell` offers for each line, the script sourced in it and the
/// shell run in `dir`, each list sorted.
fn offered(env: &TestEnv, shell: &str, dir: &Path, lines: &[&str]) -> Vec<Vec<String>> {
    let script = script(env, shell);
    let mut cmd = match shell {
        "bash" => bash(env, &script, lines),
        "zsh" => zsh(env, &script, lines),
        "fish" => fish(env, &script, lines),
        _ => unreachable!(),
    };
    cmd.current_dir(dir);
    let _ = std::fs::remove_file(env.root.join("zsh-matches"));
    let r = run(cmd, b"").success();
    let text = match shell {
        "zsh" => std::fs::read_to_string(env.root.join("zsh-matches")).unwrap_or_default(),
        _ => r.stdout,
    };
    // One list per line, each ended by a line "--".
    let mut lists: Vec<Vec<String>> = text
        .split_terminator("--\n")
        .map(|list| {
            let mut names: Vec<String> = list
                .lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_string())
                .filter(|l| !l.is_empty())
                .collect();
            names.sort();
            names.dedup();
            names
        })
        .collect();
    lists.resize(lines.len(), Vec::new());
    lists
}

/// bash: for each line, COMP_WORDS and COMP_CWORD set as readline sets them (which
/// splits `--repo=DIR` into three words at the `=`) and the registered function
/// called; COMPREPLY printed.
fn bash(env: &TestEnv, script: &Path, lines: &[&str]) -> Command {
    let program = r#"
source "$1"; shift
for line in "$@"; do
    read -ra COMP_WORDS <<< "${line//=/ = }"
    [[ $line == *' ' ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line COMP_POINT=${#line} COMPREPLY=()
    "$(complete -p keys | sed 's/.* -F \([^ ]*\) .*/\1/')" keys "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\n' "${COMPREPLY[@]}" --
done
"#;
    let mut cmd = Command::new(peer("bash"));
    env.apply(&mut cmd);
    cmd.args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(script)
        .args(lines);
    cmd
}

/// zsh: an interactive zsh on a pseudo-terminal (zsh/zpty) with the completion system
/// loaded and the script sourced; each line is typed with a TAB, and `compadd`
/// writes what the completion system would offer to a file instead of offering it.
fn zsh(env: &TestEnv, script: &Path, lines: &[&str]) -> Command {
    let harness = env.write(
        "zsh-harness",
        r#"autoload -U compinit && compinit -u -D
source $SCRIPT
compadd() {
    local -a hits
    builtin compadd -O hits "$@"
    print -rl -- $hits >> $MATCHES
}
bindkey '^I' complete-word
PS1='READY> '
"#,
    );
    let drive = r#"
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "source ${(q)HARNESS}"
zpty -r z out '*READY> *'
for line in "$@"; do
    zpty -w -n z "$line"$'\t'
    zpty -w z $'\C-u'"print -- -- >> \$MATCHES"
done
zpty -w z "print '__DO''NE__'"
zpty -r z out '*__DONE__*'
zpty -d z
"#;
    let mut cmd = Command::new(peer("zsh"));
    env.apply(&mut cmd);
    cmd.args(["-f", "-c", drive, "zsh"])
        .args(lines)
        .env("SCRIPT", script)
        .env("HARNESS", harness)
        .env("MATCHES", env.root.join("zsh-matches"));
    cmd
}

/// fish: `complete -C LINE`, which asks the registered completions for that line.
fn fish(env: &TestEnv, script: &Path, lines: &[&str]) -> Command {
    let program = r#"
source $argv[1]
for line in $argv[2..]
    complete -C "$line"
    echo -- --
end
"#;
    let mut cmd = Command::new(peer("fish"));
    env.apply(&mut cmd);
    cmd.args(["--no-config", "-c", program])
        .arg(script)
        .args(lines);
    cmd
}

fn expected(cases: &[(&str, &[&str])]) -> Vec<Vec<String>> {
    cases
        .iter()
        .map(|(_, want)| want.iter().map(|s| s.to_string()).collect())
        .collect()
}

fn each_shell(check: impl Fn(&str)) {
    for shell in ["bash", "zsh", "fish"] {
        check(shell);
    }
}

#[test]
fn each_shell_offers_the_repositorys_names() {
    let mut env = TestEnv::new();
    let repo = fleet_with_secrets(&mut env);
    let lines: Vec<&str> = CASES.iter().map(|(line, _)| *line).collect();
    each_shell(|shell| {
        let got = offered(&env, shell, &repo, &lines);
        for ((line, want), got) in CASES.iter().zip(&got) {
            assert_eq!(got, want, "{shell}: {line}<TAB>");
        }
    });
}

#[test]
fn the_names_come_from_the_repository_the_line_or_keys_repo_names() {
    let mut env = TestEnv::new();
    fleet_with_secrets(&mut env);
    let home = env.home.clone();
    let cases: &[(&str, &[&str])] = &[
        ("keys --repo ../work decrypt b", &["bot/telegram-token"]),
        ("keys --repo=../work host rm vps-x", &["vps-x86"]),
        ("keys --repo ../nowhere decrypt b", &[]),
        ("keys decrypt b", &[]),
        (
            "keys host rm ",
            &[
                "--help",
                "--identity",
                "--passphrase-fd",
                "--repo",
                "--with-key",
            ],
        ),
    ];
    let lines: Vec<&str> = cases.iter().map(|(line, _)| *line).collect();
    each_shell(|shell| {
        assert_eq!(
            offered(&env, shell, &home, &lines),
            expected(cases),
            "{shell}, out of the repository"
        );
    });

    env.set("KEYS_REPO", env.work.display().to_string());
    let cases: &[(&str, &[&str])] = &[
        ("keys decrypt vps", &["vps-x86/restic-password"]),
        (
            "keys admin rename ",
            &["--help", "--identity", "--passphrase-fd", "--repo", "demo"],
        ),
    ];
    let lines: Vec<&str> = cases.iter().map(|(line, _)| *line).collect();
    each_shell(|shell| {
        assert_eq!(
            offered(&env, shell, &home, &lines),
            expected(cases),
            "{shell}, $KEYS_REPO"
        );
    });
}

/// What a script runs to ask for candidates: `KEYS_COMPLETE=SHELL keys -- WORDS…`.
fn ask(env: &TestEnv, dir: &Path, words: &[&str]) -> Command {
    let mut cmd = Command::new(keys_bin());
    cmd.arg("--").args(words);
    env.apply(&mut cmd);
    cmd.current_dir(dir)
        .env("KEYS_COMPLETE", "bash")
        .env("_CLAP_IFS", "\n")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string());
    cmd
}

#[test]
fn answering_reads_names_only_and_writes_nothing() {
    let mut env = TestEnv::new();
    let repo = fleet_with_secrets(&mut env);
    let before = fixture::tree(&env.root);
    let log = env.home.join("strace.log");
    let mut cmd = Command::new(peer("strace"));
    cmd.args(["-f", "-qq", "-o"]).arg(&log).args([
        "-e",
        "trace=%file,%network,keyctl,add_key,request_key,write",
        keys_bin(),
        "--",
        "keys",
        "decrypt",
        "b",
    ]);
    env.apply(&mut cmd);
    // A user's environment: the OS keyring not turned off.
    cmd.env_remove("KEYS_KEYRING")
        .current_dir(&repo)
        .env("KEYS_COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2");
    let r = run(cmd, b"").success();
    assert_eq!(r.stdout, "bot/telegram-token");
    assert_eq!(r.stderr, "");
    let log = std::fs::read_to_string(&log).unwrap();
    for line in log.lines() {
        let call = line.split_once(' ').map_or(line, |(_, c)| c.trim_start());
        let writes = call.starts_with("openat(")
            && ["O_WRONLY", "O_RDWR", "O_CREAT"]
                .iter()
                .any(|f| call.contains(f));
        let changes = [
            "creat(",
            "mkdir(",
            "mkdirat(",
            "unlink(",
            "unlinkat(",
            "rename(",
            "renameat(",
            "renameat2(",
            "link(",
            "linkat(",
            "symlink(",
            "symlinkat(",
            "chmod(",
            "fchmodat(",
            "truncate(",
        ]
        .iter()
        .any(|c| call.starts_with(c));
        let reaches = ["keyctl(", "add_key(", "request_key(", "socket(", "connect("]
            .iter()
            .any(|c| call.starts_with(c));
        // The answer itself is the one write, on stdout.
        let writes_out = call.starts_with("write(") && !call.starts_with("write(1,");
        assert!(
            !(writes || changes || reaches || writes_out),
            "completing ran {call}"
        );
    }
    assert!(
        log.contains("secrets"),
        "the secrets were not listed:\n{log}"
    );
    assert_eq!(
        fixture::tree(&env.root).len(),
        before.len() + 1,
        "only the log is new"
    );
    let after = fixture::tree(&env.root);
    for (path, data) in &before {
        assert_eq!(after.get(path), Some(data), "{}", path.display());
    }
}

#[test]
fn a_repository_that_cannot_be_read_offers_nothing_silently() {
    let mut env = TestEnv::new();
    let repo = fleet_with_secrets(&mut env);
    // Host files and policies that do not parse: names come from file names alone.
    env.write("work/recipients/hosts/vps-x86.yaml", "ssh_key: [\n");
    env.write("work/policies/default.yaml", "rules: {{{\n");
    let r = run(ask(&env, &repo, &["keys", "host", "rm", "vps"]), b"").success();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("vps-arm\nvps-x86", "")
    );
    // secrets/ unreadable, and no repository at all.
    let secrets = repo.join("secrets");
    std::fs::rename(&secrets, repo.join("moved")).unwrap();
    std::fs::write(&secrets, "a file").unwrap();
    for dir in [&repo, &env.home] {
        let r = run(ask(&env, dir, &["keys", "decrypt", "b"]), b"").success();
        assert_eq!(
            (r.stdout.as_str(), r.stderr.as_str()),
            ("", ""),
            "{}",
            dir.display()
        );
    }
}

#[test]
fn answering_is_fast_at_fleet_size() {
    let mut env = TestEnv::new();
    let repo = fleet_with_secrets(&mut env);
    for i in 0..500 {
        env.write(
            &format!("work/secrets/app{}/secret-{i}.age", i % 20),
            "not read",
        );
    }
    let r = run(
        ask(&env, &repo, &["keys", "decrypt", "app7/secret-107"]),
        b"",
    )
    .success();
    assert_eq!(r.stdout, "app7/secret-107");
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
}

#[test]
fn the_script_runs_keys_by_the_name_it_was_run_by() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let by_path = env.keys(&["completions", shell]).success();
        assert!(by_path.stdout.contains("KEYS_COMPLETE"), "{shell}");
        assert!(by_path.stdout.contains(keys_bin()), "{shell}");

        let dir = Path::new(keys_bin()).parent().unwrap();
        let mut cmd = Command::new("keys");
        env.apply(&mut cmd);
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
        cmd.env("PATH", &path).args(["completions", shell]);
        let by_name = run(cmd, b"").success();
        assert!(by_name.stdout.contains("KEYS_COMPLETE"), "{shell}");
        assert!(
            !by_name.stdout.contains(keys_bin()),
            "{shell}: {}",
            by_name.stdout
        );
    }
}
