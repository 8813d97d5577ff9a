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
