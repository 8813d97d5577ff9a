//! `keys push openbao` and `keys check --openbao` against the real OpenBao dev
//! server (`bao server -dev`): fields and versions written with check-and-set, a
//! change made in OpenBao detected and left alone, drift read from the metadata
//! alone, and each failure as one line naming the address and path.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Run, TestEnv, peer};
use crate::fixture::{fleet, tree};

const TOKEN: &str = "keys-test-root";

const POLICY: &str = "\
groups:
  admins: [demo]
rules:
  - secrets: \"apps/*\"
    format: sops-yaml
    readers: [admins]
    openbao: {mount: secret, path: \"fleet/{name}\"}
  - secrets: \"bot/*\"
    format: age
    readers: [admins]
    openbao:
      mount: secret
      path: \"fleet/{name}\"
  - secrets: \"**\"
    format: age
    readers: [admins]
";

const APP: &str = "user: s3cret-user\npassword: s3cret-app-pw\nport: 5432\ndebug: true\n";
const BOT: &str = "s3cret-bot-token";

/// A dev server on a free port, killed on drop.
pub struct Bao {
    child: Child,
    pub addr: String,
    home: tempfile::TempDir,
}

impl Bao {
    pub fn start() -> Bao {
        Bao::start_with(false)
    }

    /// With `tls`, the dev server listens on https with a CA of its own, written to
    /// `ca()`; the `bao` client trusts it through `BAO_CACERT`.
    pub fn start_with(tls: bool) -> Bao {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let home = tempfile::tempdir().unwrap();
        let mut server = Command::new(peer("bao"));
        server.args([
            "server",
            "-dev",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
            &format!("-dev-root-token-id={TOKEN}"),
        ]);
        if tls {
            server
                .arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", home.path().display()));
        }
        let child = server
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bao = Bao {
            child,
            addr: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
            home,
        };
        let start = Instant::now();
        while !bao.cli(&["status"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "bao did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }

    /// The dev server's CA certificate (with `start_with(true)`).
    pub fn ca(&self) -> PathBuf {
        self.home.path().join("vault-ca.pem")
    }

    /// Runs `bao ARGS` as the root token.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_stdin(args, b"")
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut bao = Command::new(peer("bao"));
        if self.addr.starts_with("https:") {
            bao.env("BAO_CACERT", self.ca());
        }
        let mut child = bao
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", TOKEN)
            .env("HOME", self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The data of a KV v2 path, as `bao kv get` reads it.
    pub fn data(&self, path: &str) -> serde_json::Value {
        let out = self.ok(&["kv", "get", "-format=json", "-mount=secret", path]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["data"]["data"].clone()
    }

    pub fn current_version(&self, path: &str) -> u64 {
        let out = self.ok(&[
            "kv",
            "metadata",
            "get",
            "-format=json",
            "-mount=secret",
            path,
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["data"]["current_version"].as_u64().unwrap()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fleet with `POLICY`, the sops secret `apps/db` and the age secret `bot/token`,
/// and the environment pointing at `bao`.
fn setup(env: &mut TestEnv, bao: &Bao) -> PathBuf {
    let repo = fleet(env);
    env.write("work/policies/default.yaml", POLICY);
    env.keys_stdin(&["encrypt", "apps/db"], APP.as_bytes())
        .success();
    env.keys_stdin(&["encrypt", "bot/token"], BOT.as_bytes())
        .success();
    env.set("BAO_ADDR", &bao.addr);
    env.set("BAO_TOKEN", TOKEN);
    repo
}

fn lock(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("secrets/openbao.lock")).unwrap_or_default()
}

fn error_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("keys: error: "))
        .unwrap()
}

#[track_caller]
fn no_value_in(run: &Run) {
    assert!(
        !run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"),
        "a value printed: {}{}",
        run.stdout,
        run.stderr
    );
}

/// A sops document's top-level keys become fields (as strings), an age file the
/// field `value`; the lock records path and version and no value; a second push of
/// unchanged secrets writes no new version; a changed secret is written as the next.
#[test]
fn push_writes_fields_records_versions_and_skips_what_is_unchanged() {
    let bao = Bao::start();
    let mut env = TestEnv::new();
    let repo = setup(&mut env, &bao);

    let dry = env.keys(&["push", "openbao", "--dry-run"]).success();
    assert!(
        dry.stdout.contains("apps/db -> secret/fleet/apps/db (new)"),
        "{}",
        dry.stdout
    );
    assert!(!repo.join("secrets/openbao.lock").exists());
    assert!(
        !bao.cli(&["kv", "get", "-mount=secret", "fleet/apps/db"])
            .status
            .success()
    );

    let pushed = env.keys(&["push", "openbao"]).success();
    no_value_in(&pushed);
    assert!(
        pushed.stderr.contains("pushed 2 secrets, 0 unchanged"),
        "{}",
        pushed.stderr
    );
    assert_eq!(
        bao.data("fleet/apps/db"),
        serde_json::json!({"user": "s3cret-user", "password": "s3cret-app-pw", "port": "5432", "debug": "true"})
    );
    assert_eq!(
        bao.data("fleet/bot/token"),
        serde_json::json!({"value": BOT})
    );
    let recorded = lock(&repo);
    assert!(
        recorded.contains("apps/db secret fleet/apps/db 1 "),
        "{recorded}"
    );
    assert!(
        recorded.contains("bot/token secret fleet/bot/token 1 "),
        "{recorded}"
    );
    assert!(!recorded.contains("s3cret"), "{recorded}");
    env.keys(&["check", "--openbao"]).success();
    // keys check does not mistake the record for a secret.
    env.keys(&["check"]).success();

    let again = env.keys(&["push", "openbao"]).success();
    assert!(
        again.stderr.contains("pushed 0 secrets, 2 unchanged"),
        "{}",
        again.stderr
    );
    assert_eq!(bao.current_version("fleet/apps/db"), 1);
    assert_eq!(lock(&repo), recorded);

    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"s3cret-rotated")
        .success();
    let behind = env.keys(&["check", "--openbao"]).failure(8);
    assert!(
        behind
            .stdout
            .contains("bot/token: secret/fleet/bot/token is behind the repository"),
        "{}",
        behind.stdout
    );
    no_value_in(&behind);
    env.keys(&["push", "openbao", "bot/token"]).success();
    assert_eq!(bao.current_version("fleet/bot/token"), 2);
    assert_eq!(
        bao.data("fleet/bot/token"),
        serde_json::json!({"value": "s3cret-rotated"})
    );
    assert!(lock(&repo).contains("bot/token secret fleet/bot/token 2 "));
    env.keys(&["check", "--openbao"]).success();
}

/// A value changed in OpenBao after the push is detected by check-and-set: reported
/// by name, not overwritten, and the record keeps the version it had.
#[test]
fn a_change_made_in_openbao_is_reported_and_not_overwritten() {
    let bao = Bao::start();
    let mut env = TestEnv::new();
    let repo = setup(&mut env, &bao);
    env.keys(&["push", "openbao"]).success();
    bao.ok(&[
        "kv",
        "put",
        "-mount=secret",
        "fleet/bot/token",
        "value=set-in-openbao",
    ]);
    let before = lock(&repo);

    let check = env.keys(&["check", "--openbao"]).failure(8);
    assert!(
        check.stdout.contains("bot/token: secret/fleet/bot/token changed in OpenBao: version 2 there, version 1 pushed from here"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("set-in-openbao"));

    // The secret changed in the repository too: the write would overwrite.
    env.keys_stdin(&["encrypt", "--force", "bot/token"], b"s3cret-new")
        .success();
    let push = env.keys(&["push", "openbao"]).failure(9);
    no_value_in(&push);
    assert!(
        push.stderr
            .contains("bot/token: secret/fleet/bot/token is at version 2 in OpenBao"),
        "{}",
        push.stderr
    );
    let last = error_line(&push);
    assert!(
        last.starts_with(&format!(
            "keys: error: OpenBao at {}: 1 secret changed",
            bao.addr
        )),
        "{last}"
    );
    assert_eq!(
        bao.data("fleet/bot/token"),
        serde_json::json!({"value": "set-in-openbao"})
    );
    assert_eq!(lock(&repo), before);

    // A secret never pushed from here that exists in OpenBao: check-and-set 0 fails.
    std::fs::remove_file(repo.join("secrets/openbao.lock")).unwrap();
    let push = env.keys(&["push", "openbao", "bot/token"]).failure(9);
    assert!(
        push.stderr.contains("already exists in OpenBao"),
        "{}",
        push.stderr
    );
    assert_eq!(
        bao.data("fleet/bot/token"),
        serde_json::json!({"value": "set-in-openbao"})
    );
    assert!(!repo.join("secrets/openbao.lock").exists());
}

/// Each kind of drift, read from the metadata alone; no value printed.
#[test]
fn check_openbao_reports_each_kind_of_drift() {
    let bao = Bao::start();
    let mut env = TestEnv::new();
    setup(&mut env, &bao);
    for name in ["bot/a", "bot/b", "bot/c", "bot/d"] {
        env.keys_stdin(&["encrypt", name], b"s3cret-x").success();
    }
    env.keys(&["push", "openbao"]).success();
    env.keys_stdin(&["encrypt", "bot/never"], b"s3cret-y")
        .success();
    bao.ok(&["kv", "metadata", "delete", "-mount=secret", "fleet/bot/a"]);
    bao.ok(&["kv", "delete", "-mount=secret", "fleet/bot/b"]);
    bao.ok(&[
        "kv",
        "destroy",
        "-mount=secret",
        "-versions=1",
        "fleet/bot/c",
    ]);
    bao.ok(&["kv", "put", "-mount=secret", "fleet/bot/d", "value=other"]);
    let check = env.keys(&["check", "--openbao"]).failure(8);
    no_value_in(&check);
    assert_eq!(
        check.stdout,
        "\
bot/a: secret/fleet/bot/a was deleted in OpenBao (no metadata)
bot/b: secret/fleet/bot/b: the version pushed was deleted in OpenBao
bot/c: secret/fleet/bot/c: the version pushed was destroyed in OpenBao
bot/d: secret/fleet/bot/d changed in OpenBao: version 2 there, version 1 pushed from here
bot/never: never pushed to secret/fleet/bot/never
"
    );
    assert!(
        check.stderr.contains("keys: error: check found 5 problems"),
        "{}",
        check.stderr
    );
}

/// OpenBao down, a refused token, a missing mount, a denied path: one line naming
/// the address and path, exit 9 (4 for the token), and nothing recorded.
#[test]
fn openbao_failures_are_one_line_and_record_nothing() {
    let bao = Bao::start();
    let mut env = TestEnv::new();
    let repo = setup(&mut env, &bao);
    let before = tree(&repo);

    // Down: nothing listens on the address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");
    env.set("BAO_ADDR", &down);
    let out = env.keys(&["push", "openbao"]).failure(9);
    assert!(
        out.stderr.contains(&format!(
            "keys: error: OpenBao at {down} (auth/token/lookup-self): "
        )),
        "{}",
        out.stderr
    );
    env.keys(&["check", "--openbao"]).failure(9);
    env.set("BAO_ADDR", &bao.addr);

    // A refused token; VAULT_* is read when BAO_* is not set.
    env.set("BAO_TOKEN", "");
    env.set("VAULT_TOKEN", "not-a-token");
    let out = env.keys(&["push", "openbao"]).failure(4);
    assert!(
        out.stderr.contains(&format!(
            "keys: error: OpenBao at {} refused the token",
            bao.addr
        )),
        "{}",
        out.stderr
    );
    env.set("VAULT_TOKEN", "");
    let out = env.keys(&["push", "openbao"]).failure(4);
    assert!(out.stderr.contains("no token"), "{}", out.stderr);
    assert_eq!(tree(&repo), before);

    // A permission denied on the path (a token that may only read).
    bao.cli_stdin(
        &["policy", "write", "readonly", "-"],
        b"path \"secret/*\" { capabilities = [\"read\", \"list\"] }\n",
    );
    let limited = bao.ok(&["token", "create", "-policy=readonly", "-field=token"]);
    std::fs::write(env.home.join(".vault-token"), limited.trim()).unwrap();
    let out = env.keys(&["push", "openbao", "bot/token"]).failure(9);
    let last = error_line(&out);
    assert!(
        last.starts_with(&format!(
            "keys: error: OpenBao at {} (secret/fleet/bot/token): permission denied",
            bao.addr
        )),
        "{}",
        out.stderr
    );
    assert_eq!(tree(&repo), before);
    std::fs::remove_file(env.home.join(".vault-token")).unwrap();
    env.set("BAO_TOKEN", TOKEN);

    // A mount that does not exist: nothing recorded, even for the secret that was written.
    env.write(
        "work/policies/default.yaml",
        POLICY.replace("{mount: secret,", "{mount: missing,"),
    );
    let before = tree(&repo);
    let out = env.keys(&["push", "openbao"]).failure(9);
    assert!(
        out.stderr.contains(&format!(
            "keys: error: OpenBao at {} (missing/fleet/apps/db): no such mount",
            bao.addr
        )),
        "{}",
        out.stderr
    );
    no_value_in(&out);
    assert!(!lock(&repo).contains("apps/db"));
    assert!(
        lock(&repo).contains("bot/token secret fleet/bot/token 1 "),
        "{}",
        lock(&repo)
    );
    let _ = before;
}

/// A rule's openbao destination is checked when the policy is read.
#[test]
fn an_openbao_destination_is_checked_with_its_line() {
    let mut env = TestEnv::new();
    let repo = fleet(&mut env);
    for (policy, want) in [
        (
            POLICY.replace("fleet/{name}\"}", "fleet/all\"}"),
            "policies/default.yaml:7: openbao path \"fleet/all\" has no {name}",
        ),
        (
            POLICY.replace("fleet/{name}\"}", "../{name}\"}"),
            "policies/default.yaml:7: openbao path \"../{name}\" is not a path OpenBao takes",
        ),
        (
            POLICY.replace("      mount: secret", "      mount: \"{name}\""),
            "policies/default.yaml:12: openbao mount \"{name}\" cannot hold a placeholder",
        ),
        (
            POLICY.replace(
                "      mount: secret",
                "      mount: secret\n      version: 2",
            ),
            "policies/default.yaml:13: unknown field `version`",
        ),
    ] {
        env.write("work/policies/default.yaml", &policy);
        let before = tree(&repo);
        let out = env.keys(&["push", "openbao", "--dry-run"]).failure(3);
        assert!(
            out.stderr.contains(&format!("keys: error: {want}")),
            "{want}\n{}",
            out.stderr
        );
        assert_eq!(tree(&repo), before);
    }
}

/// Over https, keys trusts the CA `BAO_CACERT` (else `VAULT_CACERT`) names, and
/// nothing else: without it, or with another CA, the push fails as one line naming
/// the address, exit 9, and records nothing.
#[test]
fn over_https_the_ca_comes_from_bao_cacert_or_vault_cacert() {
    let bao = Bao::start_with(true);
    let mut env = TestEnv::new();
    let repo = setup(&mut env, &bao);
    assert!(bao.addr.starts_with("https://"));

    let untrusted = env.keys(&["push", "openbao"]).failure(9);
    no_value_in(&untrusted);
    assert!(
        error_line(&untrusted).contains(&bao.addr),
        "{}",
        untrusted.stderr
    );
    assert_eq!(lock(&repo), "");

    let other_ca = env.write("other-ca.pem", std::fs::read(bao.ca()).unwrap());
    let other = Bao::start_with(true);
    env.set("BAO_CACERT", other.ca().display().to_string());
    let wrong = env.keys(&["push", "openbao"]).failure(9);
    assert!(error_line(&wrong).contains(&bao.addr), "{}", wrong.stderr);
    assert_eq!(lock(&repo), "");

    env.unset("BAO_CACERT");
    env.set("VAULT_CACERT", other_ca.display().to_string());
    let pushed = env.keys(&["push", "openbao"]).success();
    no_value_in(&pushed);
    assert_eq!(
        bao.data("fleet/bot/token"),
        serde_json::json!({"value": BOT})
    );
    env.keys(&["check", "--openbao"]).success();

    env.set("BAO_CACERT", other.ca().display().to_string());
    env.keys(&["check", "--openbao"]).failure(9);
}
