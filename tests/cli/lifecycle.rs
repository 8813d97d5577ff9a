//! The life of a secret's value as `keys.lock` keeps it: when it last changed
//! (`rotate_every` and overdue secrets), and the readers taken away since who could
//! read it (`keys check`, `keys ls --exposed`).

use std::path::Path;

use crate::common::TestEnv;
use crate::fixture::{POLICY, fleet, sops_fleet, tree};

fn lock(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("secrets/keys.lock")).unwrap()
}

/// The lock line of secret `name`.
fn line(repo: &Path, name: &str) -> String {
    lock(repo)
        .lines()
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name} in\n{}", lock(repo)))
        .to_string()
}

/// The `KEY=` field of a lock line, if any.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

/// Rewrites `name`'s lock line by hand: its `changed=` field replaced by `changed`
/// (or dropped, as an older lock has none).
fn set_changed(repo: &Path, name: &str, changed: Option<&str>) {
    let text: String = lock(repo)
        .lines()
        .map(|l| {
            if l.split(' ').next() != Some(name) {
                return format!("{l}\n");
            }
            let mut fields: Vec<String> = l
                .split(' ')
                .filter(|f| !f.starts_with("changed="))
                .map(str::to_string)
                .collect();
            if let Some(c) = changed {
                fields.insert(4, format!("changed={c}"));
            }
            format!("{}\n", fields.join(" "))
        })
        .collect();
    std::fs::write(repo.join("secrets/keys.lock"), text).unwrap();
}

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn the_lock_records_when_a_value_changed_and_a_rekey_keeps_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    env.keys_stdin(&["encrypt", "yaml/app"], b"db:\n    password: one\n")
        .success();
    for name in ["bot/token", "yaml/app"] {
        let l = line(&repo, name);
        let changed = field(&l, "changed").expect(&l);
        assert!(
            changed.starts_with(&today()) && changed.ends_with('Z'),
            "{l}"
        );
    }
    // A date written by hand, long ago: a rekey (every file rewritten) keeps it.
    set_changed(&repo, "bot/token", Some("2020-01-02"));
    set_changed(&repo, "yaml/app", Some("2020-01-02T03:04:05Z"));
    env.keys(&["rekey", "--all"]).success();
    assert_eq!(
        field(&line(&repo, "bot/token"), "changed"),
        Some("2020-01-02T00:00:00Z")
    );
    assert_eq!(
        field(&line(&repo, "yaml/app"), "changed"),
        Some("2020-01-02T03:04:05Z")
    );
    // encrypt --force and set write a new value: the clock starts again.
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"two")
        .success();
    env.keys_stdin(&["set", "yaml/app", "db.password"], b"two")
        .success();
    for name in ["bot/token", "yaml/app"] {
        let l = line(&repo, name);
        assert!(field(&l, "changed").unwrap().starts_with(&today()), "{l}");
    }
    // edit too, through a real editor program.
    set_changed(&repo, "bot/token", Some("2020-01-02"));
    let editor = env.script("bin/append-editor", "#!/bin/sh\nprintf x >> \"$1\"\n");

    env.set("EDITOR", editor.display().to_string());
    env.keys(&["edit", "bot/token"]).success();
    let l = line(&repo, "bot/token");
    assert!(field(&l, "changed").unwrap().starts_with(&today()), "{l}");
}

/// The fleet's policy with `rotate_every: EVERY` on the `bot/*` rule.
fn rotating(every: &str) -> String {
    POLICY.replace(
        "readers: [admins, host:vps-arm]\n",
        &format!("readers: [admins, host:vps-arm]\n    rotate_every: {every}\n"),
    )
}

#[test]
fn an_overdue_secret_is_a_warning_and_a_failure_with_strict() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write("work/policies/default.yaml", rotating("90d"));
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    env.keys_stdin(&["encrypt", "misc/other"], b"other")
        .success();
    let clean = env.keys(&["check", "--strict"]).success();
    assert!(!clean.stdout.contains("rotation"), "{}", clean.stdout);

    // Changed 91 days before the check runs… written by hand, as the lock has it.
    set_changed(&repo, "bot/token", Some("2020-01-02"));
    set_changed(&repo, "misc/other", Some("2020-01-02"));
    let before = tree(&repo);
    let warned = env.keys(&["check"]).success();
    let warning = warned
        .stdout
        .lines()
        .find(|l| l.contains("rotation due"))
        .unwrap_or_else(|| panic!("{}", warned.stdout));
    assert!(
        warning.starts_with(
            "warning: secrets/bot/token.age: rotation due: its value last changed on 2020-01-02, "
        ) && warning
            .ends_with("days ago, and its rule (policies/default.yaml:4) says rotate_every: 90d"),
        "{warning}"
    );
    // misc/other has no rotate_every: never due.
    assert!(!warned.stdout.contains("misc/other"), "{}", warned.stdout);
    assert!(
        warned
            .stdout
            .contains("  fix: give it a new value: `keys edit bot/token`")
    );

    let strict = env.keys(&["check", "--strict"]).failure(8);
    assert!(
        strict
            .stdout
            .contains("secrets/bot/token.age: rotation due: its value last changed on 2020-01-02"),
        "{}",
        strict.stdout
    );
    let json = |args: &[&str], code: i32| -> serde_json::Value {
        let run = env.keys(args);
        assert_eq!(run.code, code, "{}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let kinds = |v: &serde_json::Value, list: &str| -> Vec<String> {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] != "unused-rule")
            .map(|f| {
                format!(
                    "{} {}",
                    f["kind"].as_str().unwrap(),
                    f["file"].as_str().unwrap()
                )
            })
            .collect()
    };
    let plain = json(&["check", "--json"], 0);
    assert_eq!(
        kinds(&plain, "warnings"),
        ["rotation-due secrets/bot/token.age"]
    );
    assert!(kinds(&plain, "problems").is_empty());
    let strict = json(&["check", "--json", "--strict"], 8);
    assert_eq!(
        kinds(&strict, "problems"),
        ["rotation-due secrets/bot/token.age"]
    );
    assert_eq!(tree(&repo), before, "check writes nothing");

    // `keys ls --json` says when it changed and the rule's period.
    let ls: serde_json::Value =
        serde_json::from_str(&env.keys(&["ls", "--json"]).success().stdout).unwrap();
    let bot = &ls["secrets"][0];
    assert_eq!(bot["name"], "bot/token");
    assert_eq!(bot["changed"], "2020-01-02T00:00:00Z");
    assert_eq!(bot["rotate_every"], "90d");

    // A new value is no longer due.
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"two")
        .success();
    let clean = env.keys(&["check", "--strict"]).success();
    assert!(!clean.stdout.contains("rotation"), "{}", clean.stdout);
}

#[test]
fn a_lock_without_dates_loads_and_an_unknown_date_is_not_overdue() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write("work/policies/default.yaml", rotating("1w"));
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    // A lock as keys wrote it before it recorded dates.
    set_changed(&repo, "bot/token", None);
    assert_eq!(line(&repo, "bot/token").split(' ').count(), 4);
    let out = env.keys(&["check", "--strict"]).success();
    assert!(
        out.stdout.contains(
            "warning: secrets/bot/token.age: rotation date unknown: secrets/keys.lock does not say when its value last changed, and its rule (policies/default.yaml:4) says rotate_every: 1w"
        ),
        "{}",
        out.stdout
    );
    let v: serde_json::Value =
        serde_json::from_str(&env.keys(&["check", "--json"]).success().stdout).unwrap();
    assert_eq!(v["warnings"][0]["kind"], "rotation-unknown");
    // A rekey keeps the date unknown; a new value records it.
    env.keys(&["rekey", "--all"]).success();
    assert_eq!(field(&line(&repo, "bot/token"), "changed"), None);
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"two")
        .success();
    assert!(field(&line(&repo, "bot/token"), "changed").is_some());
}

#[test]
fn a_bad_rotate_every_is_refused_with_its_file_and_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    for (every, why) in [
        ("3m", "is not a period"),
        ("90", "is not a period"),
        ("d", "is not a period"),
        ("-1d", "is not a period"),
        ("0d", "is not between one day and a hundred years"),
        ("101y", "is not between one day and a hundred years"),
    ] {
        env.write("work/policies/default.yaml", rotating(every));
        let before = tree(&repo);
        let out = env
            .keys_stdin(&["encrypt", "--force", "bot/token"], b"two")
            .failure(3);
        let want = format!("keys: error: policies/default.yaml:7: rotate_every {every:?} {why}");
        assert!(out.stderr.starts_with(&want), "{every}: {}", out.stderr);
        assert_eq!(tree(&repo), before, "{every}: nothing written");
    }
}

/// The fleet's policy with the `bot/*` rule's readers replaced.
fn bot_readers(readers: &str) -> String {
    POLICY.replace(
        "readers: [admins, host:vps-arm]\n",
        &format!("readers: [{readers}]\n"),
    )
}

#[test]
fn a_reader_taken_away_is_listed_until_the_value_changes() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    env.keys_stdin(&["encrypt", "bot/other"], b"other")
        .success();
    assert!(field(&line(&repo, "bot/token"), "seen").is_none());
    let none = env.keys(&["ls", "--exposed"]).success();
    assert_eq!(none.stdout, "");

    // vps-arm leaves the rule: a rekey takes it away from both secrets.
    env.write("work/policies/default.yaml", bot_readers("admins"));
    env.keys(&["rekey"]).success();
    let l = line(&repo, "bot/token");
    assert!(
        field(&l, "seen")
            .is_some_and(|s| s.starts_with("SHA256:") && s.ends_with("(host:vps-arm)")),
        "{l}"
    );
    // A new value for one of them clears it there.
    env.keys_stdin(&["encrypt", "--force", "bot/other"], b"new")
        .success();
    assert!(field(&line(&repo, "bot/other"), "seen").is_none());

    let check = env.keys(&["check"]).success();
    let warning = check
        .stdout
        .lines()
        .find(|l| l.contains("removed reader"))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(
        warning.starts_with(
            "warning: secrets/bot/token.age: value seen by a removed reader, not changed since: host:vps-arm (SHA256:"
        ),
        "{warning}"
    );
    assert!(!check.stdout.contains("bot/other"), "{}", check.stdout);
    let strict = env.keys(&["check", "--strict"]).failure(8);
    assert!(strict.stdout.contains("value seen by a removed reader"));
    let v: serde_json::Value =
        serde_json::from_str(&env.keys(&["check", "--json", "--strict"]).stdout).unwrap();
    assert_eq!(v["problems"][0]["kind"], "exposed");
    assert_eq!(v["problems"][0]["file"], "secrets/bot/token.age");

    let ls = env.keys(&["ls", "--exposed"]).success();
    let rows: Vec<&str> = ls.stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{}", ls.stdout);
    assert!(rows[0].starts_with("NAME") && rows[0].contains("SEEN BY"));
    assert!(
        rows[1].starts_with("bot/token")
            && rows[1].contains(&today())
            && rows[1].contains("host:vps-arm (SHA256:"),
        "{}",
        ls.stdout
    );
    let v: serde_json::Value =
        serde_json::from_str(&env.keys(&["ls", "--exposed", "--json"]).success().stdout).unwrap();
    let secrets = v["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["name"], "bot/token");
    assert_eq!(secrets[0]["seen_by"][0]["reader"], "host:vps-arm");
    assert!(
        secrets[0]["seen_by"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );

    // Given back to vps-arm, it is a reader again, not a removed one.
    env.write("work/policies/default.yaml", POLICY);
    env.keys(&["rekey"]).success();
    assert!(field(&line(&repo, "bot/token"), "seen").is_none());
    env.keys(&["check", "--strict"]).success();
}

#[test]
fn a_reader_added_then_removed_without_a_new_value_still_counts() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write("work/policies/default.yaml", bot_readers("admins"));
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    env.write(
        "work/policies/default.yaml",
        bot_readers("admins, host:vps-x86"),
    );
    env.keys(&["rekey"]).success();
    env.keys(&["check", "--strict"]).success();
    env.write("work/policies/default.yaml", bot_readers("admins"));
    env.keys(&["rekey"]).success();
    // The host file goes too: the lock still names the reader it recorded.
    std::fs::remove_file(repo.join("recipients/hosts/vps-x86.yaml")).unwrap();
    let out = env.keys(&["check", "--strict"]).failure(8);
    assert!(
        out.stdout.contains(
            "secrets/bot/token.age: value seen by a removed reader, not changed since: host:vps-x86 (SHA256:"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn a_host_key_rotation_records_the_old_key_as_a_removed_reader() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    let old = field(&line(&repo, "bot/token"), "changed")
        .unwrap()
        .to_string();
    env.keys(&["host", "rotate", "vps-arm", "--generate"])
        .success();
    let l = line(&repo, "bot/token");
    // The value is the same: its date too. The old key is named by the host it was.
    assert_eq!(field(&l, "changed"), Some(old.as_str()));
    let seen = field(&l, "seen").unwrap_or_else(|| panic!("{l}"));
    assert!(
        seen.starts_with("SHA256:") && seen.ends_with("(host:vps-arm)") && !seen.contains(','),
        "{l}"
    );
    let out = env.keys(&["ls", "--exposed"]).success();
    assert!(
        out.stdout.contains("host:vps-arm (SHA256:"),
        "{}",
        out.stdout
    );
    env.keys(&["check", "--strict"]).failure(8);
}

#[test]
fn a_lock_date_that_does_not_read_is_refused_by_its_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    set_changed(&repo, "bot/token", Some("last-tuesday"));
    let before = tree(&repo);
    let line_no = lock(&repo)
        .lines()
        .position(|l| l.starts_with("bot/token "))
        .unwrap()
        + 1;
    let out = env.keys(&["rekey", "--all"]).failure(3);
    assert!(
        out.stderr.starts_with(&format!(
            "keys: error: secrets/keys.lock:{line_no}: changed=last-tuesday is not a date such as 2026-03-01"
        )),
        "{}",
        out.stderr
    );
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.contains(&format!(
            "secrets/keys.lock: {line_no}: changed=last-tuesday"
        )),
        "{}",
        check.stdout
    );
    assert_eq!(tree(&repo), before);
}

#[test]
fn an_admin_removed_is_named_after_its_file_is_gone() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    env.write("work/policies/default.yaml", bot_readers("admins"));
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    let alice = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    env.keys(&["admin", "add", "alice", "--key", alice])
        .success();
    env.keys(&["rekey"]).success();
    env.keys(&["check", "--strict"]).success();
    env.keys(&["admin", "rm", "alice"]).success();
    assert!(!repo.join("recipients/admins/alice.pub").exists());
    env.keys(&["rekey"]).success();
    let out = env.keys(&["check", "--strict"]).failure(8);
    assert!(
        out.stdout.contains(&format!(
            "secrets/bot/token.age: value seen by a removed reader, not changed since: alice ({})",
            &alice[..16]
        )),
        "{}",
        out.stdout
    );
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"two")
        .success();
    env.keys(&["check", "--strict"]).success();
}

/// A secret whose rule generates its value is given a new one by `keys rotate`, and
/// that is what check says for an overdue or exposed one.
#[test]
fn a_generated_secret_due_or_exposed_is_told_to_rotate() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    let generated = |readers: &str| {
        POLICY.replace(
            "readers: [admins, host:vps-arm]\n",
            &format!(
                "readers: [{readers}]\n    generate: {{kind: alnum}}\n    rotate_every: 90d\n"
            ),
        )
    };
    env.write(
        "work/policies/default.yaml",
        generated("admins, host:vps-arm"),
    );
    env.keys(&["generate", "bot/token"]).success();
    set_changed(&repo, "bot/token", Some("2020-01-02"));
    env.write("work/policies/default.yaml", generated("admins"));
    env.keys(&["rekey"]).success();

    let check = env.keys(&["check"]).success();
    let fixes: Vec<(&str, &str)> = check
        .stdout
        .lines()
        .zip(check.stdout.lines().skip(1))
        .filter(|(l, _)| l.starts_with("warning: secrets/bot/token.age: "))
        .collect();
    assert_eq!(fixes.len(), 2, "{}", check.stdout);
    for (warning, fix) in fixes {
        assert!(
            fix.starts_with(
                "  fix: give it a new value: `keys rotate bot/token` (its rule generates one)"
            ),
            "{warning}\n{fix}"
        );
    }
    assert!(!check.stdout.contains("keys edit"), "{}", check.stdout);
    env.keys(&["check", "--strict"]).failure(8);

    env.keys(&["rotate", "bot/token"]).success();
    let check = env.keys(&["check", "--strict"]).success();
    assert!(!check.stdout.contains("bot/token"), "{}", check.stdout);
}

/// `name`'s lock line with the field `key=` dropped, the rest of the lock as it is.
fn drop_field(repo: &Path, name: &str, key: &str) -> String {
    lock(repo)
        .lines()
        .map(|l| {
            if l.split(' ').next() != Some(name) {
                return format!("{l}\n");
            }
            let kept: Vec<&str> = l
                .split(' ')
                .filter(|f| !f.starts_with(&format!("{key}=")))
                .collect();
            format!("{}\n", kept.join(" "))
        })
        .collect()
}

/// The lock is text anyone can edit: what a commit recorded of a value's life is
/// held to. A reader dropped from `seen=`, or a `changed=` moved, while the value
/// stays fails `keys check` against HEAD's lock, the pre-commit check of the staged
/// lock, and, once committed past the hook, `keys check` against the parent; a reader
/// given back, or a new value, clears it.
#[test]
fn a_lock_that_forgets_who_saw_the_value_fails_the_check_against_git() {
    use crate::hook::git;
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    git(&env, &["init", "-q", "-b", "main"], b"").success();
    env.keys_stdin(&["encrypt", "bot/token"], b"one").success();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-q", "-m", "token"], b"").success();
    env.write("work/policies/default.yaml", bot_readers("admins"));
    env.keys(&["rekey"]).success();
    assert!(field(&line(&repo, "bot/token"), "seen").is_some());
    // Taken away and hidden in one change: HEAD had it as a recipient.
    let rekeyed = lock(&repo);
    std::fs::write(
        repo.join("secrets/keys.lock"),
        drop_field(&repo, "bot/token", "seen"),
    )
    .unwrap();
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check
            .stdout
            .contains("bot/token: seen= does not list SHA256:"),
        "{}",
        check.stdout
    );
    std::fs::write(repo.join("secrets/keys.lock"), &rekeyed).unwrap();
    git(&env, &["add", "-A"], b"").success();
    git(&env, &["commit", "-q", "-m", "rekey"], b"").success();
    env.keys(&["check"]).success();
    let committed = lock(&repo);
    let n = committed
        .lines()
        .position(|l| l.starts_with("bot/token "))
        .unwrap()
        + 1;

    // seen= dropped by hand: the work tree, then the staged lock.
    std::fs::write(
        repo.join("secrets/keys.lock"),
        drop_field(&repo, "bot/token", "seen"),
    )
    .unwrap();
    let check = env.keys(&["check"]).failure(8);
    let said = format!("secrets/keys.lock:{n}: bot/token: seen= does not list SHA256:");
    assert!(check.stdout.contains(&said), "{}", check.stdout);
    assert!(
        check.stdout.contains(
            "which the lock at HEAD records as able to read this value (unchanged since)"
        ),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("git checkout HEAD -- secrets/keys.lock"),
        "{}",
        check.stdout
    );
    git(&env, &["add", "-A"], b"").success();
    let staged = env.keys(&["check", "--staged"]).failure(8);
    assert!(staged.stdout.contains(&said), "{}", staged.stdout);

    // Committed past the hook: HEAD's lock against its parent's.
    git(&env, &["commit", "-q", "--no-verify", "-m", "lie"], b"").success();
    let check = env.keys(&["check"]).failure(8);
    let said = format!("secrets/keys.lock (HEAD):{n}: bot/token: seen= does not list");
    assert!(check.stdout.contains(&said), "{}", check.stdout);
    assert!(check.stdout.contains("HEAD^1"), "{}", check.stdout);
    git(&env, &["reset", "-q", "--hard", "HEAD^"], b"").success();
    env.keys(&["check"]).success();

    // changed= moved later, back, or dropped, while the file stays.
    for (changed, said) in [
        (Some("2099-01-01T00:00:00Z"), "no new value was written"),
        (Some("2000-01-01T00:00:00Z"), "is earlier than HEAD's"),
        (None, "bot/token: changed= is gone"),
    ] {
        set_changed(&repo, "bot/token", changed);
        let check = env.keys(&["check"]).failure(8);
        assert!(check.stdout.contains(said), "{}", check.stdout);
    }
    std::fs::write(repo.join("secrets/keys.lock"), &committed).unwrap();

    // Given back, the reader is a recipient again; a new value starts afresh.
    env.write("work/policies/default.yaml", POLICY);
    env.keys(&["rekey"]).success();
    assert!(field(&line(&repo, "bot/token"), "seen").is_none());
    env.keys(&["check"]).success();
    env.write("work/policies/default.yaml", bot_readers("admins"));
    env.keys(&["rekey"]).success();
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"two")
        .success();
    env.keys(&["check", "--strict"]).success();
    git(&env, &["add", "-A"], b"").success();
    env.keys(&["check", "--staged", "--strict"]).success();
}
