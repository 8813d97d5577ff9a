//! Which identities `keys` tries: with `-i` (or `KEYS_IDENTITY`) only those, as age,
//! agenix and sops do; without them, keys' own places and then where sops users keep
//! their age keys.

use std::path::Path;

use crate::common::{TestEnv, private_copy};
use crate::fixture::{fleet, host_key};

fn admin_identity() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo-admin.age-identity")
}

#[test]
fn i_chooses_the_identities_instead_of_adding_one() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
        .success();
    // KEYS_IDENTITY holds the admin's key, which opens everything; -i asks whether a
    // host key can read the secret, and vps-x86 cannot.
    let x86 = host_key(&env, "vps-x86");
    let run = env
        .keys(&["decrypt", "-i", &x86.display().to_string(), "bot/token"])
        .failure(4);
    assert!(!run.stdout.contains("canary"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("no other place: -i names the only identities to try"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("KEYS_IDENTITY ["), "{}", run.stderr);
    let arm = host_key(&env, "vps-arm");
    let run = env
        .keys(&["decrypt", "-i", &arm.display().to_string(), "bot/token"])
        .success();
    assert_eq!(run.stdout, "canary-token");
    // KEYS_IDENTITY alone is tried alone too: not the keys identity file behind it.
    let keys_file = env.home.join(".config/keys/identity.txt");
    std::fs::create_dir_all(keys_file.parent().unwrap()).unwrap();
    std::fs::copy(admin_identity(), &keys_file).unwrap();
    std::fs::set_permissions(
        &keys_file,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    env.set("KEYS_IDENTITY", x86.display().to_string());
    env.keys(&["decrypt", "bot/token"]).failure(4);
    env.set("KEYS_IDENTITY", "");
    let run = env.keys(&["decrypt", "bot/token"]).success();
    assert_eq!(run.stdout, "canary-token");
}

#[test]
fn the_places_sops_users_keep_age_keys_are_searched_after_keys_own() {
    let mut env = TestEnv::new();
    fleet(&mut env);
    env.keys_stdin(&["encrypt", "bot/token"], b"canary-token")
        .success();
    env.set("KEYS_IDENTITY", "");
    // Nothing anywhere: every place is named, sops's included.
    let run = env.keys(&["decrypt", "bot/token"]).failure(4);
    let first = run.stderr.lines().next().unwrap();
    for place in [
        "KEYS_IDENTITY: not set",
        "OS keyring (none): no identity stored",
        ".config/keys/identity.txt: not found",
        ".ssh/id_ed25519: not found",
        "SOPS_AGE_KEY: not set",
        "SOPS_AGE_KEY_FILE: not set",
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE: not set",
        ".config/sops/age/keys.txt: not found",
    ] {
        assert!(first.contains(place), "{place}: {first}");
    }
    let id = private_copy(&env, &admin_identity(), "sops-keys.txt");
    let arm = host_key(&env, "vps-arm");
    // $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, sops's default keys.txt, and an SSH key
    // named by $SOPS_AGE_SSH_PRIVATE_KEY_FILE each open it.
    let mut with = |var: &str, value: String| {
        env.set(var, value);
        let run = env.keys(&["decrypt", "bot/token"]).success();
        assert_eq!(run.stdout, "canary-token", "{var}");
        env.set(var, "");
    };
    with("SOPS_AGE_KEY_FILE", id.display().to_string());
    with("SOPS_AGE_KEY", std::fs::read_to_string(&id).unwrap());
    with("SOPS_AGE_SSH_PRIVATE_KEY_FILE", arm.display().to_string());
    let default = env.home.join(".config/sops/age/keys.txt");
    std::fs::create_dir_all(default.parent().unwrap()).unwrap();
    std::fs::copy(&id, &default).unwrap();
    std::fs::set_permissions(
        &default,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let run = env.keys(&["decrypt", "bot/token"]).success();
    assert_eq!(run.stdout, "canary-token");
}
