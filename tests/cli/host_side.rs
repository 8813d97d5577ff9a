//! What a rule says about its secret on the machines that read it — where the file
//! goes, whether users need it, which units follow it — as `keys.nix` declares it,
//! evaluated with the real agenix and sops-nix modules; and the values refused.

use crate::common::TestEnv;
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
    env.keys(&["check"]).success();

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
