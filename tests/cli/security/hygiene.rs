//! Plaintext hygiene, proven with `strace -f`: a canary plaintext is written only where
//! it may go (stdout when asked, the 0700 tmpfs directory, the staged tree, an `-o`
//! file), never to any other file, never in a child's argv or environment; and no file
//! keys writes has its mode changed after data went into it.

use std::path::Path;
use std::process::Command;

use crate::common::{TestEnv, keys_bin, peer, run, runtime_dir};
use crate::fixture::sops_fleet;

/// The canary as strace prints a buffer with `-xx`: every byte hex-escaped.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("\\x{b:02x}")).collect()
}

/// Runs keys under strace and returns the trace.
fn traced(env: &TestEnv, args: &[&str], stdin: &[u8]) -> (crate::common::Run, String) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(peer("strace"));
    cmd.args(["-f", "-qq", "-y", "-xx", "-v", "-s", "1000000", "-e"])
        .arg(
            "trace=execve,write,pwrite64,writev,pwritev,pwritev2,sendto,sendmsg,chmod,fchmod,fchmodat",
        )
        .arg("-o")
        .arg(log.path())
        .arg(keys_bin())
        .args(args);
    env.apply(&mut cmd);
    let r = run(cmd, stdin);
    (r, std::fs::read_to_string(log.path()).unwrap())
}

/// Undoes strace's `-xx` escaping of a path.
fn unhex(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 4);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && i + 4 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 2..i + 4], 16)
        {
            out.push(b);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fd and path strace shows for a call's first argument: `write(3</a/b>, …`.
fn fd_path(call: &str) -> Option<(String, String)> {
    let open = call.find('(')?;
    let rest = &call[open + 1..];
    let lt = rest.find('<')?;
    let fd = &rest[..lt];
    let end = rest.find(">,").or_else(|| rest.find(">)"))?;
    Some((fd.to_string(), unhex(&rest[lt + 1..end])))
}

/// Checks a trace: every write carrying the canary goes to an allowed place; no
/// execve carries it; no chmod follows data into the same file.
fn assert_clean(trace: &str, canary: &str, allowed: &dyn Fn(&str, &str) -> bool, what: &str) {
    let needle = hex(canary);
    let mut written: Vec<String> = Vec::new();
    let mut carried = 0;
    for line in trace.lines() {
        let call = line.split_once(' ').map_or(line, |(_, c)| c).trim_start();
        let name = call.split('(').next().unwrap_or("");
        match name {
            "execve" => assert!(
                !call.contains(&needle),
                "{what}: the plaintext is in a child's argv or environment: {call:.200}"
            ),
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "sendto" | "sendmsg" => {
                let Some((fd, path)) = fd_path(call) else {
                    assert!(
                        !call.contains(&needle),
                        "{what}: unattributed write: {call:.200}"
                    );
                    continue;
                };
                if call.contains(&needle) {
                    carried += 1;
                    assert!(
                        allowed(&fd, &path),
                        "{what}: the plaintext was written to {path} (fd {fd})"
                    );
                }
                if !path.starts_with("pipe:") && !path.starts_with("/dev/") {
                    written.push(path);
                }
            }
            "fchmod" => {
                if let Some((_, path)) = fd_path(call) {
                    assert!(
                        !written.contains(&path),
                        "{what}: {path} had its mode changed after data was written"
                    );
                }
            }
            "chmod" | "fchmodat" | "fchmodat2" => {
                for w in &written {
                    assert!(
                        !call.contains(&format!("\"{}\"", hex(w))) && !call.contains(w.as_str()),
                        "{what}: {w} had its mode changed after data was written"
                    );
                }
            }
            _ => {}
        }
    }
    eprintln!("{what}: {carried} writes carried the plaintext, all to allowed places");
}

#[test]
fn plaintext_goes_only_where_it_may_and_no_mode_changes_after_data() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let rundir = runtime_dir(&mut env);
    let scratch = rundir.path().display().to_string();
    let in_scratch = |_: &str, path: &str| path.starts_with(&scratch);
    let nowhere = |_: &str, _: &str| false;

    // encrypt: the plaintext comes in on stdin and goes out only as ciphertext.
    let canary = "canary-encrypt-7f3a9c";
    let (r, trace) = traced(&env, &["encrypt", "bot/a"], canary.as_bytes());
    r.success();
    assert_clean(&trace, canary, &nowhere, "encrypt");

    // decrypt to stdout: written to fd 1 only.
    let (r, trace) = traced(&env, &["decrypt", "bot/a"], b"");
    assert_eq!(r.success().stdout, canary);
    assert_clean(&trace, canary, &|fd, _| fd == "1", "decrypt");

    // decrypt -o: written to that file only, created 0600.
    let out = env.root.join("out.txt");
    let out_s = out.display().to_string();
    let (r, trace) = traced(&env, &["decrypt", "bot/a", "-o", &out_s], b"");
    r.success();
    // Through a temp file beside it, renamed over it.
    let tmp_prefix = format!("{}/.keys-tmp-", env.root.display());
    assert_clean(
        &trace,
        canary,
        &|_, p| p == out_s || p.starts_with(&tmp_prefix),
        "decrypt -o",
    );
    assert_eq!(crate::common::mode_of(&out), 0o600);

    // edit: the plaintext goes to the 0700 tmpfs directory (keys and the editor), and
    // the edited text comes back as ciphertext only.
    let editor = env.script(
        "bin/ed",
        "#!/bin/sh\nfor a; do f=$a; done\nprintf '%s' -canary-edited-41d2 >> \"$f\"\n",
    );
    env.set("EDITOR", editor.display().to_string());
    let (r, trace) = traced(&env, &["edit", "bot/a"], b"");
    r.success();
    assert_clean(&trace, canary, &in_scratch, "edit");
    assert_clean(&trace, "-canary-edited-41d2", &in_scratch, "edit (edited)");

    // set: a sops value from stdin, written only encrypted.
    env.keys_stdin(&["encrypt", "yaml/s"], b"db:\n  password: old\n")
        .success();
    let value = "canary-set-5be0e1";
    let (r, trace) = traced(&env, &["set", "yaml/s", "db.password"], value.as_bytes());
    r.success();
    assert_clean(&trace, value, &nowhere, "set");

    // rekey: every secret decrypted and re-encrypted in memory.
    let policy = repo.join("policies/default.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("readers: [admins]", "readers: [admins, host:vps-x86]"),
    )
    .unwrap();
    let (r, trace) = traced(&env, &["rekey"], b"");
    r.success();
    assert_clean(&trace, canary, &nowhere, "rekey");
    assert_clean(&trace, "-canary-edited-41d2", &nowhere, "rekey");
    assert_clean(&trace, value, &nowhere, "rekey (sops)");

    // stage-install: the host key goes to the staged tree only.
    env.keys(&["host", "add", "gen", "--generate", "--address", "192.0.2.9"])
        .success();
    let key = env
        .keys(&["decrypt", "hosts/gen/ssh_host_ed25519_key"])
        .success()
        .stdout;
    let body: String = key.lines().nth(2).unwrap().to_string();
    assert!(body.len() >= 40, "{body}");
    let (r, trace) = traced(&env, &["stage-install", "--host", "gen"], b"");
    let tree = r.success().stdout.trim().to_string();
    assert!(tree.starts_with(&scratch));
    assert_clean(&trace, &body, &in_scratch, "stage-install");
    env.keys(&["stage-install", "--clean", &tree]).success();
    assert!(Path::new(&tree).parent().is_some_and(|p| !p.exists()));
}

/// `keys exec`: the secret's values reach the command's environment and nothing
/// else: no execve carries them in its arguments, keys opens no file to write, and
/// the only write that carries one is the command's own, to its stdout.
#[test]
fn exec_puts_the_values_in_the_commands_environment_only() {
    let mut env = TestEnv::new();
    sops_fleet(&mut env);
    let canary = "canary-exec-93b1d7";
    env.keys_stdin(
        &["encrypt", "env/app"],
        format!("TOKEN={canary}\n").as_bytes(),
    )
    .success();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(peer("strace"));
    cmd.args(["-f", "-qq", "-y", "-xx", "-v", "-s", "1000000", "-e"])
        .arg("trace=execve,open,openat,openat2,creat,mknodat,write,pwrite64,writev,pwritev,pwritev2,sendto,sendmsg")
        .arg("-o")
        .arg(log.path())
        .arg(keys_bin())
        .args(["exec", "env/app", "--", "sh", "-c", "printf '%s' \"$TOKEN\""]);
    env.apply(&mut cmd);
    let r = run(cmd, b"");
    assert_eq!(r.success().stdout, canary);
    let trace = std::fs::read_to_string(log.path()).unwrap();
    let needle = hex(canary);
    let mut in_env = 0;
    for line in trace.lines() {
        let call = line.split_once(' ').map_or(line, |(_, c)| c).trim_start();
        let name = call.split('(').next().unwrap_or("");
        match name {
            "execve" => {
                // execve("path", [argv…], [envp…]): the arguments are the first list.
                let args_end = call.find("], [").unwrap_or(call.len());
                assert!(
                    !call[..args_end].contains(&needle),
                    "the plaintext is on a command line: {call:.300}"
                );
                if call[args_end..].contains(&needle) {
                    in_env += 1;
                }
            }
            "open" | "openat" | "openat2" | "creat" | "mknodat" => {
                let writes = ["O_WRONLY", "O_RDWR", "O_CREAT"]
                    .iter()
                    .any(|f| call.contains(f))
                    || name == "creat"
                    || name == "mknodat";
                let result = call.rsplit_once(" = ").map_or("", |(_, r)| r);
                assert!(
                    !writes || result.contains("</dev/"),
                    "keys exec opened a file to write: {call:.300}"
                );
            }
            _ => {
                if call.contains(&needle) {
                    let (fd, path) = fd_path(call).unwrap_or_default();
                    assert!(
                        fd == "1" && path.starts_with("pipe:"),
                        "the plaintext was written to {path} (fd {fd}): {call:.300}"
                    );
                }
            }
        }
    }
    assert_eq!(
        in_env, 1,
        "one execve, the command's, carries the value: {trace:.2000}"
    );
}
