//! What a rule says about its secret on the machines that read it — where the file
//! goes, whether users need it, which units follow it — as `keys.nix` declares it,
//! evaluated with the real agenix and sops-nix modules; and the values refused.

use std::process::Command;

use crate::common::{Run, TestEnv, peer, run};
use crate::deploy::generated_fleet;
use crate::export::evaluated;
use crate::fixture::tree;

const RULES: &str = "rules:
  - secrets: \"imp/age\"
    format: age
    readers: [admins, host:imp]
    path: /etc/app/token
    symlink: false
    restart_units: [app.service, \"worker@1.service\"]
    reload_units: [nginx.service]
  - secrets: \"imp/pass\"
    format: sops-yaml
    readers: [admins, host:imp]
    needed_for_users: true
  - secrets: \"imp/cfg/*\"
    format: sops-json
    readers: [admins, host:imp]
    path: /etc/app/{name}.json
    restart_units: [app.service]
    reload_units: [nginx.service]
  - secrets: \"own/*\"
    format: age
    readers: [admins, container:own]
    restart_units: [bot.service]
";

#[test]
fn keys_nix_installs_secrets_where_rules_say_and_restarts_their_units() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    env.write("work/policies/0-install.yaml", RULES);
    for (name, text) in [
        ("imp/age", &b"a"[..]),
        ("imp/pass", b"p: 1\n"),
        ("imp/cfg/db", b"{\"a\": 1}"),
        ("own/token", b"t"),
    ] {
        env.keys_stdin(&["encrypt", name], text).success();
    }
    env.keys(&["export", "nix"]).success();
    let s = |rel: &str| repo.join("secrets").join(rel).display().to_string();

    let imp = evaluated(&env, &repo, "imp", true);
    assert_eq!(imp["assertions"], serde_json::json!([]), "{imp}");
    // agenix: its own path and symlink options.
    let age = &imp["age"]["secrets"]["imp/age"];
    assert_eq!(age["path"], "/etc/app/token", "{imp}");
    assert_eq!(age["symlink"], false);
    // agenix restarts nothing itself: a unit does, restarted with the encrypted file.
    let unit = &imp["units"]["keys-restart-imp-age"];
    assert_eq!(
        unit["restartTriggers"],
        serde_json::json!([s("imp/age.age")])
    );
    assert_eq!(
        unit["script"],
        "systemctl --no-block try-restart app.service\n\
         systemctl --no-block try-restart worker@1.service\n\
         systemctl --no-block try-reload-or-restart nginx.service\n"
    );
    assert_eq!(
        unit["before"],
        serde_json::json!(["app.service", "worker@1.service", "nginx.service"])
    );
    assert_eq!(unit["wantedBy"], serde_json::json!(["multi-user.target"]));
    assert_eq!(
        unit["serviceConfig"],
        serde_json::json!({ "Type": "oneshot", "RemainAfterExit": true })
    );
    assert_eq!(
        imp["units"].as_object().unwrap().len(),
        1,
        "sops-nix restarts its own: {imp}"
    );
    // sops-nix: its own options.
    let pass = &imp["sops"]["secrets"]["imp/pass"];
    assert_eq!(pass["neededForUsers"], true);
    assert_eq!(pass["path"], "/run/secrets-for-users/imp/pass");
    assert_eq!(pass["restartUnits"], serde_json::json!([]));
    let db = &imp["sops"]["secrets"]["imp/cfg/db"];
    assert_eq!(db["path"], "/etc/app/imp/cfg/db.json");
    assert_eq!(db["neededForUsers"], false);
    assert_eq!(db["restartUnits"], serde_json::json!(["app.service"]));
    assert_eq!(db["reloadUnits"], serde_json::json!(["nginx.service"]));
    // A container's secret: its unit is in the container's configuration.
    let own = &imp["containers"]["own"]["config"];
    assert_eq!(
        own["units"]["keys-restart-own-token"]["script"],
        "systemctl --no-block try-restart bot.service\n"
    );
    assert_eq!(
        own["age"]["secrets"]["own/token"]["path"],
        "/run/agenix/own/token"
    );
    assert_eq!(own["age"]["secrets"]["own/token"]["symlink"], true);
    env.keys(&["check"]).success();
}

#[test]
fn bad_install_options_are_refused_where_they_are_written() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    env.keys_stdin(&["encrypt", "imp/x"], b"x").success();
    let head = "rules:\n  - secrets: \"imp/*\"\n    readers: [admins, host:imp]\n";
    for (rule, says) in [
        (
            "    format: age\n    restart_units: [nginx]\n",
            "policies/0-bad.yaml:5: restart_units entry \"nginx\" is not a systemd unit name such as nginx.service",
        ),
        (
            "    format: sops-yaml\n    reload_units:\n      - app.service\n      - \"a b.service\"\n",
            "policies/0-bad.yaml:7: reload_units entry \"a b.service\" is not a systemd unit name",
        ),
        (
            "    format: age\n    needed_for_users: true\n",
            "policies/0-bad.yaml:5: needed_for_users is sops-nix's option; agenix already decrypts an age secret before it creates users",
        ),
        (
            "    format: sops-yaml\n    owner: app\n    needed_for_users: true\n",
            "policies/0-bad.yaml:6: needed_for_users: sops-nix decrypts the secret before users exist, so it belongs to root; remove owner",
        ),
        (
            "    format: age\n    path: etc/token\n",
            "policies/0-bad.yaml:5: path \"etc/token\" is not an absolute path of plain names",
        ),
        (
            "    format: age\n    path: /etc/token\n",
            "policies/0-bad.yaml:5: path \"/etc/token\" has no {name}: every secret of \"imp/*\" would be installed at the same path",
        ),
        (
            "    format: sops-json\n    symlink: false\n",
            "policies/0-bad.yaml:5: symlink is agenix's option and applies only to format age",
        ),
        (
            "    format: age\n    restart_unit: [a.service]\n",
            "policies/0-bad.yaml:5",
        ),
    ] {
        env.write("work/policies/0-bad.yaml", format!("{head}{rule}"));
        let before = tree(&repo);
        let r = env.keys(&["export", "nix"]).failure(3);
        let first = r.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("keys: error: {says}")),
            "{rule}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("hint: "), "{}", r.stderr);
        assert_eq!(before, tree(&repo), "{rule}: nothing written");
    }
}

const TEMPLATES: &str = "rules:
  - secrets: \"imp/age\"
    format: age
    readers: [admins, host:imp]
  - secrets: \"imp/*\"
    format: sops-yaml
    readers: [admins, host:imp]
  - secrets: \"shared/*\"
    format: sops-json
    readers: [admins, container:shared]
templates:
  - name: app.env
    reader: host:imp
    content: |
      DB=${HOME} {{ secret:imp/db }}
      API=\"{{secret:imp/api}}\" {{ not a secret }}
    owner: app
    group: app
    mode: \"0440\"
    restart_units: [app.service]
  - name: conf/bot.ini
    reader: container:shared
    content: \"token = {{ secret:shared/token }}\"
    path: /etc/bot.ini
    reload_units: [bot.service]
  - name: later.env
    reader: host:imp
    content: \"X={{ secret:imp/missing }}\"
";

/// sops-nix templates: a file whose text embeds secrets, rendered by the machine
/// that decrypts them; one whose secret does not exist yet is left out.
#[test]
fn keys_nix_declares_sops_templates_with_each_secrets_placeholder() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    env.write("work/policies/0-templates.yaml", TEMPLATES);
    for (name, text) in [
        ("imp/db", &b"a: 1\n"[..]),
        ("imp/api", b"b: 2\n"),
        ("shared/token", b"{\"t\": 1}"),
    ] {
        env.keys_stdin(&["encrypt", name], text).success();
    }
    env.keys(&["export", "nix"]).success();
    let imp = evaluated(&env, &repo, "imp", true);
    assert_eq!(imp["assertions"], serde_json::json!([]), "{imp}");
    let placeholder = |m: &serde_json::Value, name: &str| {
        m["sops"]["placeholder"][name]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {m}"))
            .to_string()
    };
    let app = &imp["sops"]["templates"]["app.env"];
    assert_eq!(
        app["content"].as_str().unwrap(),
        format!(
            "DB=${{HOME}} {}\nAPI=\"{}\" {{{{ not a secret }}}}\n",
            placeholder(&imp, "imp/db"),
            placeholder(&imp, "imp/api")
        )
    );
    assert!(placeholder(&imp, "imp/db").starts_with("<SOPS:"));
    assert_eq!(app["path"], "/run/secrets/rendered/app.env");
    assert_eq!(
        (&app["owner"], &app["group"]),
        (&"app".into(), &"app".into())
    );
    assert_eq!(app["mode"], "0440");
    assert_eq!(app["restartUnits"], serde_json::json!(["app.service"]));
    assert_eq!(app["reloadUnits"], serde_json::json!([]));
    assert_eq!(
        imp["sops"]["templates"].as_object().unwrap().len(),
        1,
        "later.env waits for imp/missing: {imp}"
    );
    let shared = &imp["containers"]["shared"]["config"];
    let bot = &shared["sops"]["templates"]["conf/bot.ini"];
    assert_eq!(
        bot["content"].as_str().unwrap(),
        format!("token = {}", placeholder(shared, "shared/token"))
    );
    assert_eq!(bot["path"], "/etc/bot.ini");
    assert_eq!(bot["reloadUnits"], serde_json::json!(["bot.service"]));
    assert_eq!(shared["assertions"], serde_json::json!([]), "{shared}");
    // …and check reports it where it is written.
    let check = env.keys(&["check"]).failure(8);
    assert!(
        check.stdout.contains(
            "policies/0-templates.yaml:26: template later.env for host:imp embeds secret imp/missing, and secrets/imp/missing.yaml does not exist"
        ),
        "{}",
        check.stdout
    );

    // What a template cannot embed, refused where it is written.
    let before = tree(&repo);
    for (from, to, says) in [
        (
            "{{ secret:shared/token }}",
            "{{ secret:imp/db }}",
            "policies/0-templates.yaml:23: template conf/bot.ini embeds secret imp/db: its rule at policies/0-templates.yaml:5 does not give it to container:shared",
        ),
        (
            "{{ secret:imp/missing }}",
            "{{ secret:imp/age }}",
            "policies/0-templates.yaml:28: template later.env embeds secret imp/age: it is an age secret",
        ),
        (
            "{{ secret:imp/missing }}",
            "{{ secret:imp/x",
            "policies/0-templates.yaml:28: a {{ secret:NAME }} is not closed with }}",
        ),
        (
            "\"X={{ secret:imp/missing }}\"",
            "plain",
            "policies/0-templates.yaml:28: template later.env embeds no secret",
        ),
        (
            "reader: container:shared",
            "reader: admins",
            "policies/0-templates.yaml:22: template reader \"admins\" is not one machine",
        ),
        (
            "mode: \"0440\"",
            "mode: \"rw\"",
            "policies/0-templates.yaml:19: mode \"rw\" is not an octal file mode",
        ),
        (
            "reload_units: [bot.service]",
            "reload_units: [bot]",
            "policies/0-templates.yaml:25: reload_units entry \"bot\" is not a systemd unit name",
        ),
        (
            "name: later.env",
            "name: app.env",
            "policies/0-templates.yaml:26: template app.env for host:imp is also written at policies/0-templates.yaml:12",
        ),
    ] {
        assert!(TEMPLATES.contains(from), "{from}");
        env.write(
            "work/policies/0-templates.yaml",
            TEMPLATES.replacen(from, to, 1),
        );
        let r = env.keys(&["export", "nix"]).failure(3);
        let first = r.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("keys: error: {says}")),
            "{to}: {}",
            r.stderr
        );
        env.write("work/policies/0-templates.yaml", TEMPLATES);
        assert_eq!(before, tree(&repo), "{to}: nothing written");
    }
}

/// One user's home-manager module of `keys.nix`, evaluated with the real agenix and
/// sops-nix home-manager modules (`tests/nix/eval-keys-home.nix`).
fn evaluate_home(env: &TestEnv, repo: &std::path::Path, user: &str) -> Run {
    let mut nix = Command::new(peer("nix-instantiate"));
    nix.args(["--eval", "--strict", "--json", "--store", "dummy://"])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nix/eval-keys-home.nix"))
        .args(["--arg", "nixDir"])
        .arg(crate::common::nix_sources())
        .args(["--arg", "keysNix"])
        .arg(repo.join("keys.nix"))
        .args(["--argstr", "user", user]);
    env.apply(&mut nix);
    run(nix, b"")
}

const USERS: &str = "rules:
  - secrets: \"alice/age\"
    format: age
    readers: [admins, user:alice@imp]
    mode: \"0440\"
  - secrets: \"alice/*\"
    format: sops-yaml
    readers: [admins, user:alice@imp, host:imp]
templates:
  - name: alice.conf
    reader: user:alice@imp
    content: \"pw={{ secret:alice/pw }}\"
";

/// A host's user with a key of their own is a reader, `user:NAME@HOST`: the secrets
/// are encrypted to that key, and keys.nix gives the user a home-manager module.
#[test]
fn a_users_own_key_reads_through_home_manager() {
    let mut env = TestEnv::new();
    let repo = generated_fleet(&mut env);
    let key = env.root.join("alice_ed25519");
    let mut keygen = Command::new(peer("ssh-keygen"));
    keygen.args(["-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f"]);
    keygen.arg(&key);
    env.apply(&mut keygen);
    run(keygen, b"").success();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let host_file = repo.join("recipients/hosts/imp.yaml");
    let mut text = std::fs::read_to_string(&host_file).unwrap();
    text.push_str(&format!(
        "users:\n  alice:\n    ssh_key: {}\n",
        public.trim()
    ));
    std::fs::write(&host_file, text).unwrap();
    env.write("work/policies/0-users.yaml", USERS);
    env.keys_stdin(&["encrypt", "alice/age"], b"a").success();
    env.keys_stdin(&["encrypt", "alice/pw"], b"p: 1\n")
        .success();
    env.keys(&["export", "nix"]).success();
    // The user's own key opens what the user reads.
    let mut age = Command::new(peer("age"));
    age.args(["-d", "-i"])
        .arg(&key)
        .arg(repo.join("secrets/alice/age.age"));
    env.apply(&mut age);
    assert_eq!(run(age, b"").success().stdout, "a");
    // sops-nix converts the SSH key to an age key, as `keys to-age --private` does.
    let age_key = env.root.join("alice.txt");
    env.keys_stdin(
        &["to-age", "--private", "-o", age_key.to_str().unwrap()],
        &std::fs::read(&key).unwrap(),
    )
    .success();
    let pw = repo.join("secrets/alice/pw.yaml");
    let opened = crate::fixture::sops(&env, &["decrypt", pw.to_str().unwrap()], &age_key);
    assert_eq!(opened.success().stdout, "p: 1\n");

    let r = evaluate_home(&env, &repo, "alice@imp").success();
    let home: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(home["assertions"], serde_json::json!([]), "{home}");
    let s = |rel: &str| repo.join("secrets").join(rel).display().to_string();
    assert_eq!(
        home["age"]["identityPaths"],
        serde_json::json!(["/home/alice/.ssh/id_ed25519"])
    );
    let age = &home["age"]["secrets"]["alice/age"];
    assert_eq!(age["file"], s("alice/age.age"));
    assert_eq!(age["mode"], "0440");
    assert_eq!(age["path"], "${XDG_RUNTIME_DIR}/agenix/alice/age");
    assert_eq!(home["age"]["secrets"].as_object().unwrap().len(), 1);
    assert_eq!(
        home["sops"]["sshKeyPaths"],
        serde_json::json!(["/home/alice/.ssh/id_ed25519"])
    );
    let pw = &home["sops"]["secrets"]["alice/pw"];
    assert_eq!(pw["sopsFile"], s("alice/pw.yaml"));
    assert_eq!((&pw["format"], &pw["key"]), (&"yaml".into(), &"".into()));
    assert_eq!(pw["path"], "/home/alice/.config/sops-nix/secrets/alice/pw");
    let conf = &home["sops"]["templates"]["alice.conf"];
    let placeholder = home["sops"]["placeholder"]["alice/pw"].as_str().unwrap();
    assert_eq!(conf["content"], format!("pw={placeholder}"));
    assert_eq!(
        conf["path"],
        "/home/alice/.config/sops-nix/secrets/rendered/alice.conf"
    );
    // The host reads alice/pw as a reader of its own, and nothing of alice's else.
    let imp = evaluated(&env, &repo, "imp", true);
    assert!(imp["sops"]["secrets"]["alice/pw"].is_object(), "{imp}");
    assert!(imp["age"]["secrets"]["alice/age"].is_null(), "{imp}");
    assert_eq!(imp["sops"]["templates"], serde_json::json!({}));
    env.keys(&["check"]).success();

    // What a user reader cannot be, refused where it is written.
    let before = tree(&repo);
    for (from, to, says) in [
        (
            "user:alice@imp]\n    mode",
            "user:bob@imp]\n    mode",
            "policies/0-users.yaml:4: unknown reader \"user:bob@imp\": recipients/hosts/imp.yaml has no user bob",
        ),
        (
            "user:alice@imp]\n    mode",
            "user:alice@nohost]\n    mode",
            "policies/0-users.yaml:4: unknown reader \"host:nohost\": no recipients/hosts/nohost.yaml",
        ),
        (
            "user:alice@imp]\n    mode",
            "user:alice]\n    mode",
            "policies/0-users.yaml:4: reader \"user:alice\" names a user as user:NAME@HOST",
        ),
        (
            "mode: \"0440\"",
            "restart_units: [app.service]",
            "policies/0-users.yaml:5: restart_units applies to hosts and containers, and user:alice@imp reads this rule through home-manager",
        ),
        (
            "    content:",
            "    owner: alice\n    content:",
            "policies/0-users.yaml:12: owner applies to hosts and containers; home-manager renders user:alice@imp's templates as the user",
        ),
    ] {
        assert!(USERS.contains(from), "{from}");
        env.write("work/policies/0-users.yaml", USERS.replacen(from, to, 1));
        let r = env.keys(&["export", "nix"]).failure(3);
        let first = r.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("keys: error: {says}")),
            "{to}: {}",
            r.stderr
        );
        env.write("work/policies/0-users.yaml", USERS);
        assert_eq!(before, tree(&repo), "{to}: nothing written");
    }
}
