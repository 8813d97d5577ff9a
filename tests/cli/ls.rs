//! `keys ls`, `keys status`, `keys host ls` and `keys check` as scripts read them
//! (`--json`), and `keys ls --reader`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::TestEnv;
use crate::fixture::{TOKEN, sops_fleet};

fn json(env: &TestEnv, args: &[&str]) -> Value {
    let run = env.keys(args).success();
    assert_eq!(run.stderr, "", "{args:?}");
    let value: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["version"], 1, "{args:?}");
    value
}

/// The short recipient ids keys.lock lists for each secret.
fn lock_ids(repo: &std::path::Path) -> BTreeMap<String, BTreeSet<String>> {
    std::fs::read_to_string(repo.join("secrets/keys.lock"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let ids = words[3].split(',').map(str::to_string).collect();
            (words[0].to_string(), ids)
        })
        .collect()
}

/// The short id keys.lock records for a recipient as the JSON gives it.
fn lock_id(recipient: &str) -> String {
    let at = keys::error::Location::named("json");
    keys::recipient::Recipient::parse_line(recipient, &at)
        .unwrap()
        .lock_id()
}

/// A secret's name, format, readers and recipients (reader, key).
type Want<'a> = (&'a str, &'a str, &'a [&'a str], Vec<(&'a str, String)>);

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

/// Each secret's readers are its rule's as the policy writes them, and its recipients
/// each reader with the keys the policy resolves it to: what keys.lock records it
/// was encrypted to, an SSH key for a host of an age rule and the age key derived
/// from it for a container of a sops rule.
#[test]
fn json_gives_each_secrets_readers_as_the_policy_names_them_and_as_their_keys() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    for name in ["bot/token", "yaml/app", "clear/db", "json/admin"] {
        let plain: &[u8] = if name == "bot/token" {
            TOKEN
        } else {
            b"{\"k\": \"v\"}"
        };
        env.keys_stdin(&["encrypt", name], plain).success();
    }
    let ls = json(&env, &["ls", "--json"]);
    let secrets = &ls["secrets"];
    assert_eq!(
        names(secrets),
        ["bot/token", "clear/db", "json/admin", "yaml/app"]
    );
    let admin = std::fs::read_to_string(repo.join("recipients/admins/demo.pub")).unwrap();
    let admin = admin.lines().find(|l| l.starts_with("age1")).unwrap();
    let host_key = |host: &str| {
        let file =
            std::fs::read_to_string(repo.join(format!("recipients/hosts/{host}.yaml"))).unwrap();
        let line = file.lines().find(|l| l.starts_with("ssh_key: ")).unwrap();
        let words: Vec<&str> = line["ssh_key: ".len()..].split(' ').collect();
        words[..2].join(" ")
    };
    let derived = |host: &str| {
        let key = env.write(&format!("{host}.pub"), format!("{}\n", host_key(host)));
        let out = env.keys(&["to-age", key.to_str().unwrap()]).success();
        out.stdout.trim().to_string()
    };
    let want: [Want; 4] = [
        (
            "bot/token",
            "age",
            &["admins", "host:vps-arm"],
            vec![
                ("demo", admin.into()),
                ("host:vps-arm", host_key("vps-arm")),
            ],
        ),
        (
            "clear/db",
            "sops-yaml",
            &["admins", "host:vps-x86"],
            vec![("demo", admin.into()), ("host:vps-x86", derived("vps-x86"))],
        ),
        (
            "json/admin",
            "sops-json",
            &["admins"],
            vec![("demo", admin.into())],
        ),
        (
            "yaml/app",
            "sops-yaml",
            &["admins", "container:nannuo-bot"],
            vec![
                ("demo", admin.into()),
                ("container:nannuo-bot", derived("vps-arm")),
            ],
        ),
    ];
    let lock = lock_ids(&repo);
    for (secret, (name, format, readers, recipients)) in
        secrets.as_array().unwrap().iter().zip(want)
    {
        assert_eq!(secret["name"], name);
        assert_eq!(secret["format"], format, "{name}");
        assert_eq!(secret["status"], "ok", "{name}");
        assert_eq!(secret["readers"], serde_json::json!(readers), "{name}");
        assert!(
            secret["rule"]
                .as_str()
                .unwrap()
                .starts_with("policies/default.yaml:"),
            "{name}: {}",
            secret["rule"]
        );
        let got: Vec<(&str, String)> = secret["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["reader"].as_str().unwrap(),
                    r["recipient"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, recipients, "{name}");
        let ids: BTreeSet<String> = got.iter().map(|(_, r)| lock_id(r)).collect();
        assert_eq!(
            ids, lock[name],
            "{name}: what keys.lock says it is encrypted to"
        );
    }

    // status --json: the same secrets, each host with what the policy gives it and its
    // containers, and the host files' keys.
    let status = json(&env, &["status", "--json"]);
    assert_eq!(status["secrets"], ls["secrets"]);
    assert_eq!(status["totals"]["ok"], 4);
    assert_eq!(status["problems"], 0);
    let hosts = json(&env, &["host", "ls", "--json"]);
    for (i, (host, reads)) in [("vps-arm", 2), ("vps-x86", 1)].into_iter().enumerate() {
        let listed = &hosts["hosts"][i];
        assert_eq!(listed["name"], host);
        assert_eq!(listed["ssh_key"], host_key(host).as_str());
        assert_eq!(listed["age"], derived(host).as_str());
        let shown = &status["hosts"][i];
        assert_eq!(shown["fingerprint"], listed["fingerprint"]);
        assert_eq!(shown["secrets"]["ok"], reads, "{host}: {shown}");
    }
    let bot = &status["hosts"][0]["containers"][0];
    assert_eq!(bot["name"], "nannuo-bot");
    assert_eq!(bot["own_key"], false);
    assert_eq!(bot["ssh_key"], host_key("vps-arm").as_str());
    assert_eq!(bot["secrets"]["ok"], 1);
    let one = json(&env, &["status", "--host", "vps-arm", "--json"]);
    assert_eq!(one["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(names(&one["secrets"]), ["bot/token", "yaml/app"]);

    // What a reader opens, by its keys: the container shares its host's key.
    for (reader, opens) in [
        ("host:vps-arm", &["bot/token", "yaml/app"][..]),
        ("container:nannuo-bot", &["bot/token", "yaml/app"]),
        ("host:vps-x86", &["clear/db"]),
        ("demo", &["bot/token", "clear/db", "json/admin", "yaml/app"]),
        (
            "admins",
            &["bot/token", "clear/db", "json/admin", "yaml/app"],
        ),
    ] {
        let list = json(&env, &["ls", "--reader", reader, "--json"]);
        assert_eq!(names(&list["secrets"]), opens, "{reader}");
        let table = env.keys(&["ls", "--reader", reader]).success().stdout;
        let listed: Vec<&str> = table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(listed, opens, "{reader}");
    }
}

/// `keys ls --reader` and `keys status --host` refuse a name that names no one, with
/// the names meant, and change nothing.
#[test]
fn an_unknown_reader_or_host_is_refused_with_the_names_meant() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], TOKEN).success();
    let before = crate::fixture::tree(&repo);
    for (args, says, hint) in [
        (
            &["ls", "--reader", "vps-arm"][..],
            "keys: error: no reader named vps-arm (not an admin, a group, host:NAME or container:NAME)",
            "  hint: did you mean host:vps-arm? (`keys status` lists the admins and hosts)",
        ),
        (
            &["ls", "--reader", "host:vps-arn", "--json"],
            "keys: error: no reader named host:vps-arn (not an admin, a group, host:NAME or container:NAME)",
            "  hint: did you mean host:vps-arm, host:vps-x86? (`keys status` lists the admins and hosts)",
        ),
        (
            &["status", "--host", "vps-arn"],
            "keys: error: no host named vps-arn (no recipients/hosts/vps-arn.yaml)",
            "  hint: did you mean vps-arm, vps-x86? (`keys host ls` lists the hosts)",
        ),
        (
            &["status", "--host", "nannuo-bot", "--json"],
            "keys: error: no host named nannuo-bot (no recipients/hosts/nannuo-bot.yaml)",
            "  hint: `keys host ls` lists the hosts; `keys host add NAME` adds one",
        ),
    ] {
        let run = env.keys(args).failure(3);
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(run.stderr, format!("{says}\n{hint}\n"), "{args:?}");
    }
    assert_eq!(crate::fixture::tree(&repo), before);
}

/// `keys check --json` prints each problem with its file, line, kind and hint, and
/// still exits 8; a policy that does not load is named by its file and line.
#[test]
fn check_json_names_each_problem_by_file_line_and_kind_and_exits_8() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], TOKEN).success();
    env.write("work/secrets/notes.txt", "password: hunter2\n");
    let policy = repo.join("policies/default.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace(
            "readers: [admins, host:vps-arm]",
            "readers: [admins, host:vps-x86]",
        ),
    )
    .unwrap();
    let run = env.keys(&["check", "--json"]).failure(8);
    assert_eq!(
        run.stderr,
        "keys: error: check found 2 problems\n  hint: fix what is listed above, then run `keys check` again\n"
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["version"], 1);
    assert_eq!(report["staged"], false);
    let problems = report["problems"].as_array().unwrap();
    let by_kind: BTreeMap<&str, &Value> = problems
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p))
        .collect();
    assert_eq!(
        by_kind.keys().copied().collect::<Vec<_>>(),
        ["drift", "plaintext"]
    );
    let drift = by_kind["drift"];
    assert_eq!(drift["file"], "secrets/bot/token.age");
    assert_eq!(drift["line"], Value::Null);
    assert!(
        drift["message"]
            .as_str()
            .unwrap()
            .starts_with("drift: encrypted to 2 recipients, its policy (policies/default.yaml:"),
        "{drift}"
    );
    assert!(
        drift["hint"].as_str().unwrap().contains("keys rekey"),
        "{drift}"
    );
    assert_eq!(by_kind["plaintext"]["file"], "secrets/notes.txt");
    assert!(!run.stdout.contains("hunter2"));
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .all(|w| w["kind"] == "unused-rule" && w["line"].is_u64()),
        "{warnings:?}"
    );

    // A policy that does not load: its file and line, from the error.
    std::fs::write(&policy, "rules:\n  - secrets: x\n    format: nope\n").unwrap();
    let run = env.keys(&["check", "--json"]).failure(8);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let first = &report["problems"][0];
    assert_eq!(first["kind"], "policy");
    assert_eq!(first["file"], "policies/default.yaml");
    assert_eq!(first["line"], 3);
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown format \"nope\""),
        "{first}"
    );
}
