use super::*;

/// The markers are split so that this file holds no key material itself.
const BEGIN: &str = concat!("-----BEGIN OPENSSH PRIVATE", " KEY-----");
const END: &str = concat!("-----END OPENSSH PRIVATE", " KEY-----");
const BODY: [&str; 2] = [
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACCr/XxGrAQj0Fq3QgGZ2SQ2pmdR3IxONS5K4FXBWK0zSgAAAJi3c7xot3O8",
];
const AGE_ID: &str = concat!(
    "AGE-SECRET-",
    "KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS3290GG"
);

/// Pieces a key and its disguises are made of, so that generated input reaches
/// every branch of the search.
const PIECES: &[&str] = &[
    BEGIN,
    END,
    BODY[0],
    "AGE-SECRET-",
    "KEY-1",
    "qpzry9x8gf2tvdw0s3jn54khce6mua7l",
    "\n",
    "\\n",
    "\\/",
    "\\u000a",
    "\n  ",
    "# ",
    "\"",
    "Proc-Type: 4",
    "Version: x",
    "PuTTY-User-Key-File-3: ",
    "Private-Lines: 1",
    "-",
    "//",
    "",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    /// Any bytes are searched without a panic; a key's body put after a BEGIN
    /// line, with whatever separators, is found.
    #[test]
    fn any_bytes_are_searched_and_a_key_after_any_separators_is_found(
        pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..24),
        raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        gap in proptest::collection::vec(proptest::sample::select(&[" ", "\t", "\r\n", "\\n", "\"", "# ", "  - "][..]), 0..6),
    ) {
        let text = pieces.concat();
        let _ = private_key_material(text.as_bytes());
        let _ = private_key_material(&raw);
        let key = format!("{text}{BEGIN}{}{}\n", gap.concat(), BODY[0]);
        proptest::prop_assert!(private_key_material(key.as_bytes()).is_some(), "{}", key);
    }
}

#[test]
fn key_material_is_found_but_mentions_are_not() {
    let [b1, b2] = BODY;
    let block = |sep: &str, indent: &str| {
        format!("{indent}{BEGIN}{sep}{indent}{b1}{sep}{indent}{b2}{sep}{indent}{END}{sep}")
    };
    let rsa = concat!(
        "-----BEGIN RSA PRIVATE",
        " KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n"
    );
    let pgp = format!(
        "{}\nVersion: GnuPG v2\nComment: x\n\n{b1}\n",
        concat!("-----BEGIN PGP PRIVATE", " KEY BLOCK-----")
    );
    let hits = [
        AGE_ID.to_string(),
        format!("x = \"{}\"", AGE_ID.to_lowercase()),
        format!("export KEY={AGE_ID}; echo"),
        format!("https://example.org/?identity={AGE_ID}&x=1"),
        format!(
            "'{}'",
            AGE_ID.replacen("AGE-SECRET-KEY", "Age-Secret-Key", 1)
        ),
        format!("# {AGE_ID}-1\n"),
        block("\n", ""),
        block("\r\n", ""),
        block("\n", "    "),
        block("\n", "\t\t"),
        format!("host_key: |\n{}", block("\n", "  ")),
        format!("{{\"key\": \"{}\"}}", block("\\n", "")),
        format!("{{\"key\": \"{}\"}}", block("\\n", "").replace('/', "\\/")),
        format!("{BEGIN}  \t\r\n\n{b1}\n"),
        format!("{BEGIN}\n\n\n{b1}\n"),
        format!("  key = ''\n{}  '';\n", block("\n", "    ")),
        format!("key = \"{}\";\n", block("\\n", "")),
        format!("cat > k <<EOF\n{}EOF\n", block("\n", "")),
        format!("cat > k <<-EOF\n{}\tEOF\n", block("\n", "\t")),
        block("\n", "# "),
        block("\n", "// "),
        format!("lines:\n  - \"{BEGIN}\"\n  - \"{b1}\"\n"),
        format!("k = (\"{BEGIN}\\n\"\n     \"{b1}\\n\")"),
        format!("KEY_unencrypted=\"{}\"\n", block("\\n", "")),
        rsa.into(),
        pgp,
        "PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\nAAAA\n".into(),
    ];
    for hit in &hits {
        assert!(private_key_material(hit.as_bytes()).is_some(), "{hit}");
    }
    let misses = [
            "if line.starts_with(\"AGE-SECRET-KEY-1\") {".to_string(),
            "an identity looks like AGE-SECRET-KEY-1…".into(),
            format!("const BEGIN: &str = \"{BEGIN}\";\nconst END: &str = \"{END}\";\n"),
            format!("{BEGIN}\n...\n{END}\n"),
            format!("{BEGIN}\n<your key here>\n{END}\n"),
            format!("{BEGIN}\n{END}\n"),
            format!("match x {{\n  \"{BEGIN}\" => parse(rest),\n}}\n"),
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n".into(),
            "-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n".into(),
            "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhYmNk\n".into(),
            "    enc: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhYmNk\n".into(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfGJPhTmEUhNRTXhlljX+/pWA7Q7nbJ0sZzDiIUM5O5 root@h".into(),
            "age1t9jzmsuj2txxh6q5857skvch8drp4r8h4kxxvfll33nfany4wftq72qkyu".into(),
            "AGE-PLUGIN-YUBIKEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS3290GG".into(),
            "if at_line_start(b\"PuTTY-User-Key-File-\") && at_line_start(b\"Private-Lines: \")".into(),
        ];
    for miss in &misses {
        assert_eq!(private_key_material(miss.as_bytes()), None, "{miss}");
    }
}
