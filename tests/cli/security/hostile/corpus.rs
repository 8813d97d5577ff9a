//! The hostile inputs, by kind: public and private keys, age and sops files, YAML,
//! and secret names, each a case of the corpus with what it must be refused as.

use super::*;

pub(crate) fn flip(data: &[u8], offset: usize, bit: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    out[offset] ^= 1 << (bit % 8);
    out
}

/// `n` offsets spread evenly over `range`.
pub(crate) fn spread(range: std::ops::Range<usize>, n: usize) -> Vec<usize> {
    let len = range.end.saturating_sub(range.start);
    let mut out: Vec<usize> = (0..n.min(len))
        .map(|i| range.start + i * len / n.min(len))
        .collect();
    out.dedup();
    out
}

pub(crate) fn ssh_string(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// Public key blobs of every SSH type: (type, blob).
pub(crate) fn public_keys() -> Vec<(String, Vec<u8>)> {
    let read = |name: &str| {
        let text = std::fs::read_to_string(vectors().join("keys").join(name)).unwrap();
        let mut it = text.split_whitespace();
        let t = it.next().unwrap().to_string();
        (t, B64.decode(it.next().unwrap()).unwrap())
    };
    let ed = read("ed25519-01.pub");
    let rsa = read("rsa-01.pub");
    let ecdsa = read("ecdsa-01.pub");
    let point = &ed.1[ed.1.len() - 32..];
    let mut sk_ed = Vec::new();
    ssh_string(&mut sk_ed, b"sk-ssh-ed25519@openssh.com");
    ssh_string(&mut sk_ed, point);
    ssh_string(&mut sk_ed, b"ssh:");
    // An ecdsa blob is (type, curve, Q); the sk- form adds the application.
    let q = &ecdsa.1[4 + 19 + 4 + 8 + 4..];
    let mut sk_ecdsa = Vec::new();
    ssh_string(&mut sk_ecdsa, b"sk-ecdsa-sha2-nistp256@openssh.com");
    ssh_string(&mut sk_ecdsa, b"nistp256");
    ssh_string(&mut sk_ecdsa, q);
    ssh_string(&mut sk_ecdsa, b"ssh:");
    let mut dss = Vec::new();
    ssh_string(&mut dss, b"ssh-dss");
    for n in [&[0x00, 0xc1, 0x01][..], &[0x0b], &[0x02], &[0x03]] {
        ssh_string(&mut dss, n);
    }
    vec![
        ed,
        rsa,
        ecdsa,
        ("sk-ssh-ed25519@openssh.com".into(), sk_ed),
        ("sk-ecdsa-sha2-nistp256@openssh.com".into(), sk_ecdsa),
        ("ssh-dss".into(), dss),
    ]
}

/// Public key lines that no conversion or host file may accept: (what, line, is a
/// valid key of a type keys refuses, could an admin file take it).
pub(crate) fn bad_public_lines() -> Vec<(String, Vec<u8>, bool)> {
    let keys = public_keys();
    let mut out: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for (t, blob) in &keys {
        let b64 = B64.encode(blob);
        let line = |b: &str| format!("{t} {b}").into_bytes();
        if t != "ssh-ed25519" {
            // Valid keys of a type keys refuses everywhere but admin files (ssh-rsa).
            out.push((format!("{t} as is"), line(&b64), t != "ssh-rsa"));
        }
        for len in spread(1..b64.len() - 1, 8) {
            out.push((format!("{t} base64 cut to {len}"), line(&b64[..len]), true));
        }
        // The blob's header: length, type name, the next field's length.
        let header = 4 + t.len() + 4;
        for off in spread(0..header, 9) {
            let b = B64.encode(flip(blob, off, off));
            out.push((format!("{t} blob bit flip at {off}"), line(&b), true));
        }
        for (i, pos) in [5, b64.len() / 2].into_iter().enumerate() {
            for bad in ["!", "\u{e9}", "*", "\u{0}"] {
                let mut b = b64.clone();
                b.replace_range(pos..pos + 1, bad);
                out.push((
                    format!("{t} bad base64 {bad:?} at {pos} ({i})"),
                    line(&b),
                    true,
                ));
            }
        }
        for (other, _) in &keys {
            if other != t {
                out.push((
                    format!("{t} data labelled {other}"),
                    format!("{other} {b64}").into_bytes(),
                    true,
                ));
            }
        }
        let mut trailing = blob.clone();
        trailing.extend_from_slice(&[0, 0, 0, 3, b'a', b'b', b'c']);
        out.push((
            format!("{t} blob with trailing data"),
            line(&B64.encode(&trailing)),
            true,
        ));
        out.push((format!("{t} without data"), t.clone().into_bytes(), true));
        let mut binary = line(&b64);
        binary.splice(t.len() + 3..t.len() + 3, [0xff, 0xfe]);
        out.push((format!("{t} invalid UTF-8 in data"), binary, true));
    }
    out.push(("1 MiB of base64".into(), line_of_len(1 << 20), true));
    out.push(("empty".into(), Vec::new(), true));
    out.push(("only a comment".into(), b"# nothing here".to_vec(), true));
    out
}

pub(crate) fn line_of_len(n: usize) -> Vec<u8> {
    let mut l = b"ssh-ed25519 ".to_vec();
    l.extend(std::iter::repeat_n(b'A', n));
    l
}

pub(crate) fn pubkey_cases(c: &mut Corpus) {
    const CAT: &str = "ssh public key";
    let host_cmds: [&[&str]; 4] = [&["status"], &["check"], &["ls"], &["encrypt", "misc/new"]];
    for (i, (what, line, admin_ok)) in bad_public_lines().into_iter().enumerate() {
        // `keys to-age` on stdin, the key's comment the canary.
        let canary = c.canary("pub");
        let mut input = line.clone();
        input.extend_from_slice(format!(" {canary}\n").as_bytes());
        c.loose(
            CAT,
            format!("to-age stdin: {what}"),
            canary,
            vec![],
            &["to-age"],
            &["stdin"],
        )
        .stdin = input.clone();
        let canary = c.canary("pub");
        let mut input = line.clone();
        input.extend_from_slice(format!(" {canary}\n").as_bytes());
        match i % 3 {
            0 => {
                c.loose(
                    CAT,
                    format!("to-age file: {what}"),
                    canary,
                    vec![("in.pub".into(), input)],
                    &["to-age", "in.pub"],
                    &["in.pub"],
                );
            }
            1 if admin_ok => {
                let mut files = c.repo_files(&canary);
                files.push(("recipients/admins/eve.pub".into(), line.clone()));
                let cmd = host_cmds[i / 3 % 4];
                c.in_repo(
                    CAT,
                    format!("admin file, {cmd:?}: {what}"),
                    canary.clone(),
                    files,
                    cmd,
                    &["recipients/admins/eve.pub"],
                )
                .stdin = canary.as_bytes().to_vec();
            }
            _ => {
                let mut files = c.repo_files(&canary);
                let mut host = b"ssh_key: ".to_vec();
                host.extend_from_slice(&line);
                host.extend_from_slice(b" root@h1\naddress: 203.0.113.9\n");
                files.push(("recipients/hosts/h1.yaml".into(), host));
                let cmd = host_cmds[i / 3 % 4];
                c.in_repo(
                    CAT,
                    format!("host file, {cmd:?}: {what}"),
                    canary.clone(),
                    files,
                    cmd,
                    &["recipients/hosts/h1.yaml"],
                )
                .stdin = canary.as_bytes().to_vec();
            }
        }
    }
}

/// An OpenSSH ed25519 private key whose comment is `comment`.
pub(crate) fn ssh_private(seed: u8, comment: &str) -> String {
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
    ssh_key::PrivateKey::new(pair.into(), comment)
        .unwrap()
        .to_openssh(ssh_key::LineEnding::LF)
        .unwrap()
        .to_string()
}

/// A passphrase-protected ed25519 key from ssh-keygen (2 KDF rounds: fast).
pub(crate) fn ssh_private_encrypted(dir: &Path, comment: &str, pass: &str) -> String {
    let path = dir.join(comment);
    let mut cmd = Command::new(peer("ssh-keygen"));
    cmd.args([
        "-q", "-t", "ed25519", "-a", "2", "-N", pass, "-C", comment, "-f",
    ])
    .arg(&path);
    run(cmd, b"").success();
    std::fs::read_to_string(&path).unwrap()
}

/// The body of an armored text between its BEGIN and END lines, decoded.
pub(crate) fn armor_body(text: &str) -> Vec<u8> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(body).unwrap()
}

pub(crate) fn rearmor(label: &str, data: &[u8], width: usize) -> String {
    let b = B64.encode(data);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn private_mutations(key: &str) -> Vec<(String, String)> {
    const LABEL: &str = "OPENSSH PRIVATE KEY";
    let mut out = Vec::new();
    let end = key.find("-----END").unwrap();
    for cut in spread(1..end, 16) {
        out.push((format!("cut at {cut}"), key[..cut].to_string()));
    }
    for cut in [end + 5, end + 12, key.len() - 8] {
        out.push((format!("end line cut at {cut}"), key[..cut].to_string()));
    }
    let lines: Vec<&str> = key.lines().collect();
    for skip in 1..lines.len() - 1 {
        let kept: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        out.push((format!("body line {skip} dropped"), kept.join("\n") + "\n"));
    }
    let body = armor_body(key);
    // Magic, cipher and KDF names and lengths, the key count; then the check ints.
    for off in spread(0..52, 12) {
        out.push((
            format!("header bit flip at {off}"),
            rearmor(LABEL, &flip(&body, off, off + 1), 70),
        ));
    }
    out.push((
        "check int flipped".into(),
        rearmor(LABEL, &flip(&body, 98, 0), 70),
    ));
    out.push(("END line missing".into(), key[..end].to_string()));
    out.push((
        "BEGIN line missing".into(),
        key[key.find('\n').unwrap() + 1..].to_string(),
    ));
    out.push((
        "labelled RSA".into(),
        key.replace("OPENSSH PRIVATE KEY", "RSA PRIVATE KEY"),
    ));
    let first = key.find('\n').unwrap() + 1;
    for (i, pos) in spread(first..end - 2, 6).into_iter().enumerate() {
        let mut k = key.to_string();
        k.replace_range(pos..pos + 1, if i % 2 == 0 { "!" } else { "\u{e9}" });
        out.push((format!("bad base64 at {pos}"), k));
    }
    out.push((
        "garbage line in body".into(),
        key.replacen('\n', "\nnot base64 at all\n", 2),
    ));
    out.push(("public key instead".into(), {
        let k = ssh_key::PrivateKey::from_openssh(key).unwrap();
        k.public_key().to_openssh().unwrap()
    }));
    out
}

pub(crate) fn private_cases(c: &mut Corpus, scratch: &Path) {
    const CAT: &str = "ssh private key";
    // (what, canary, key text): each mutated key is generated with its canary as the
    // comment, which lives in the private section.
    let mut muts: Vec<(String, String, String)> = Vec::new();
    let count = private_mutations(&ssh_private(0, &c.canary("priv"))).len();
    for seed in [1u8, 2] {
        for i in 0..count {
            let canary = c.canary("priv");
            let (what, text) = private_mutations(&ssh_private(seed, &canary)).swap_remove(i);
            muts.push((format!("ed25519 {what}"), canary, text));
        }
    }
    // Refused types, and an age identity where an SSH key belongs.
    for name in [
        "rsa-01",
        "rsa-02-pem",
        "ecdsa-01",
        "ed25519-01.age-identity",
    ] {
        let text = std::fs::read_to_string(vectors().join("keys").join(name)).unwrap();
        muts.push((name.into(), c.canary("priv"), text));
    }
    for (i, (what, canary, text)) in muts.into_iter().enumerate() {
        match i % 3 {
            0 => {
                c.loose(
                    CAT,
                    format!("to-age --private file: {what}"),
                    canary,
                    vec![("id_key".into(), text.into_bytes())],
                    &["to-age", "--private", "id_key"],
                    &["id_key"],
                );
            }
            1 => {
                c.loose(
                    CAT,
                    format!("to-age --private stdin: {what}"),
                    canary,
                    vec![],
                    &["to-age", "--private"],
                    &["stdin"],
                )
                .stdin = text.into_bytes();
            }
            _ => {
                let plain = format!("age secret {canary}\n");
                let age = c.age(plain.as_bytes(), false);
                let case = c.loose(
                    CAT,
                    format!("decrypt -i: {what}"),
                    canary,
                    vec![("id_key".into(), text.into_bytes()), ("s.age".into(), age)],
                    &["decrypt", "-i", "id_key", "s.age"],
                    &["id_key"],
                );
                case.identity = false;
            }
        }
    }
    // Passphrase-protected keys: a wrong passphrase, none (no terminal), truncated.
    for i in 0..12 {
        let canary = c.canary("priv");
        let key = ssh_private_encrypted(scratch, &canary, "right passphrase");
        let (what, text, pass) = match i % 4 {
            0 => ("wrong passphrase", key.clone(), Some("wrong passphrase\n")),
            1 | 2 => ("no passphrase, no terminal", key.clone(), None),
            _ => (
                "truncated",
                key[..key.len() * (i + 1) / 14].to_string(),
                Some("right passphrase\n"),
            ),
        };
        let plain = format!("age secret {canary}\n");
        let age = c.age(plain.as_bytes(), false);
        let args: &[&str] = match i % 3 {
            0 => &["to-age", "--private", "id_key"],
            1 => &["decrypt", "-i", "id_key", "s.age"],
            _ => &["to-age", "--private"],
        };
        let names: &[&str] = if i % 3 == 2 { &["stdin"] } else { &["id_key"] };
        let case = c.loose(
            CAT,
            format!("encrypted key {what} ({})", args[0]),
            canary,
            vec![
                ("id_key".into(), text.clone().into_bytes()),
                ("s.age".into(), age),
            ],
            args,
            names,
        );
        case.identity = false;
        case.passphrase = pass;
        if i % 3 == 2 {
            case.stdin = text.into_bytes();
        }
    }
}

/// An age file read by path (outside a repository) or by name (inside one).
pub(crate) fn age_case(
    c: &mut Corpus,
    cat: &'static str,
    what: String,
    canary: String,
    data: Vec<u8>,
    i: usize,
) {
    if i % 4 == 3 {
        let mut files = c.repo_files(&canary);
        files.push(("secrets/armored/x.age".into(), data));
        c.in_repo(
            cat,
            format!("by name: {what}"),
            canary,
            files,
            &["decrypt", "armored/x"],
            &["secrets/armored/x.age"],
        );
    } else {
        c.loose(
            cat,
            format!("by path: {what}"),
            canary,
            vec![("in/x.age".into(), data)],
            &["decrypt", "in/x.age"],
            &["in/x.age"],
        );
    }
}

pub(crate) fn armor_mutations(file: &str) -> Vec<(String, String)> {
    const LABEL: &str = "AGE ENCRYPTED FILE";
    let mut out = Vec::new();
    let end = file.find("-----END").unwrap();
    let first = file.find('\n').unwrap() + 1;
    for (i, pos) in spread(first..end - 1, 24).into_iter().enumerate() {
        let mut f = file.to_string();
        f.replace_range(pos..pos + 1, ["!", "\u{e9}", "-", "\u{0}"][i % 4]);
        out.push((format!("bad base64 at {pos}"), f));
    }
    let body = armor_body(file);
    for width in [32, 63, 65, 76, 100] {
        out.push((format!("lines of {width}"), rearmor(LABEL, &body, width)));
    }
    for cut in spread(1..file.len() - 1, 20) {
        out.push((format!("cut at {cut}"), file[..cut].to_string()));
    }
    out.push(("END line missing".into(), file[..end].to_string()));
    out.push(("BEGIN line missing".into(), file[first..].to_string()));
    out.push((
        "END misspelled".into(),
        file.replace("-----END AGE", "-----END AEG"),
    ));
    out.push((
        "BEGIN misspelled".into(),
        file.replace("-----BEGIN AGE", "-----BEGIN AGF"),
    ));
    out.push(("blank line in body".into(), file.replacen('\n', "\n\n", 2)));
    out.push(("indented body".into(), file.replace("\n", "\n ")));
    out.push(("CR line ends".into(), file.replace('\n', "\r")));
    out.push(("garbage after END".into(), format!("{file}garbage\n")));
    out.push(("padding doubled".into(), {
        let last = body.len() - body.len() % 48;
        let mut b = rearmor(LABEL, &body[..last], 64);
        b = b.replace("-----END", "AA==\n-----END");
        b
    }));
    out
}

/// A change to a file's bytes.
pub(crate) type Mutation = Box<dyn Fn(&[u8]) -> Vec<u8>>;

pub(crate) fn age_cases(c: &mut Corpus) {
    const ARMOR: &str = "age armor";
    let probe = c.canary("armor");
    let probe = c.age(format!("armored {probe}\n").as_bytes(), true);
    let count = armor_mutations(&String::from_utf8(probe).unwrap()).len();
    for i in 0..count {
        let canary = c.canary("armor");
        let file = c.age(format!("armored {canary}\n").as_bytes(), true);
        let (what, text) = armor_mutations(&String::from_utf8(file).unwrap()).swap_remove(i);
        age_case(c, ARMOR, what, canary, text.into_bytes(), i);
    }

    const TAMPER: &str = "age tampered";
    // age adds random grease stanzas, so lengths vary: offsets up to the shortest.
    let len = (0..16)
        .map(|_| {
            let probe = c.canary("age");
            c.age(format!("binary {probe}\n").as_bytes(), false).len()
        })
        .min()
        .unwrap();
    let header = |f: &[u8]| f.windows(4).position(|w| w == b"--- ").unwrap();
    let mut muts: Vec<(String, Mutation)> = Vec::new();
    for off in (0..len).step_by(2) {
        muts.push((
            format!("bit flip at {off}"),
            Box::new(move |f: &[u8]| flip(f, off.min(f.len() - 1), off * 5)),
        ));
    }
    for cut in (0..len).step_by(5) {
        muts.push((
            format!("cut at {cut}"),
            Box::new(move |f: &[u8]| f[..cut.min(f.len() - 1)].to_vec()),
        ));
    }
    for line in 0..4 {
        muts.push((
            format!("CRLF on header line {line}"),
            Box::new(move |f: &[u8]| {
                let nl: Vec<usize> = f[..header(f)]
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i)
                    .collect();
                let mut out = f.to_vec();
                out.insert(nl[line.min(nl.len() - 1)], b'\r');
                out
            }),
        ));
    }
    muts.push((
        "trailing garbage".into(),
        Box::new(|f: &[u8]| [f, b"garbage"].concat()),
    ));
    muts.push((
        "payload doubled".into(),
        Box::new(move |f: &[u8]| {
            let h = header(f);
            let body = f.iter().skip(h).position(|b| *b == b'\n').unwrap() + h + 1;
            [f, &f[body..]].concat()
        }),
    ));
    for (i, (what, m)) in muts.iter().enumerate() {
        let canary = c.canary("age");
        let file = c.age(format!("binary {canary}\n").as_bytes(), false);
        age_case(c, TAMPER, what.clone(), canary, m(&file), i);
    }
}

pub(crate) const SOPS_FORMATS: [(Format, &str, &str); 5] = [
    (Format::SopsYaml, "yaml", "yaml"),
    (Format::SopsJson, "json", "json"),
    (Format::SopsDotenv, "env", "env"),
    (Format::SopsIni, "ini", "ini"),
    (Format::SopsBinary, "bin", "bin"),
];

pub(crate) fn sops_plain(format: Format, canary: &str) -> Vec<u8> {
    match format {
        Format::SopsYaml => {
            format!("db:\n  password: {canary}\n  user: admin\ntoken: t-{canary}\n")
        }
        Format::SopsJson => format!("{{\"db\": {{\"password\": \"{canary}\"}}, \"token\": \"t\"}}"),
        Format::SopsDotenv => format!("PASSWORD={canary}\nUSER=admin\n"),
        Format::SopsIni => format!("[db]\npassword = {canary}\nuser = admin\n"),
        _ => format!("{canary}\nbinary\u{1}data"),
    }
    .into_bytes()
}

/// Offsets inside what sops authenticates: the values' `ENC[…]` data, IVs and tags,
/// the MAC, and the wrapped data key.
pub(crate) fn sealed_offsets(file: &[u8]) -> Vec<usize> {
    let text = String::from_utf8_lossy(file);
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("ENC[AES256_GCM,") {
        let s = from + start;
        let e = s + text[s..].find(']').unwrap();
        for (i, ch) in text[s..e].char_indices() {
            // The base64 of data, iv and tag, not the field names.
            if ch.is_ascii_alphanumeric()
                && text[s..s + i]
                    .rfind(':')
                    .is_some_and(|c| !text[s + c..s + i].contains(','))
            {
                out.push(s + i);
            }
        }
        from = e;
    }
    // The wrapped data key: the body of the armored age file.
    if let Some(b) = text.find("-----BEGIN AGE ENCRYPTED FILE-----") {
        let e = text.find("-----END AGE ENCRYPTED FILE-----").unwrap();
        let b = b + 35;
        out.extend((b..e).filter(|i| file[*i].is_ascii_alphanumeric()));
    }
    out
}

pub(crate) fn sops_cases(c: &mut Corpus) {
    const CAT: &str = "sops tampered";
    for (format, dir, ext) in SOPS_FORMATS {
        let probe = c.canary("sops");
        let probe = c.sops(format, &sops_plain(format, &probe));
        let sealed = sealed_offsets(&probe);
        let mut muts: Vec<(String, usize, Option<usize>)> = Vec::new();
        let mut rng = Rng(0x5eed ^ probe.len() as u64);
        for _ in 0..28 {
            let k = rng.below(sealed.len());
            muts.push(("bit flip".into(), k, None));
        }
        // Cuts short of the last line (a cut newline at the end changes nothing).
        let last = probe[..probe.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap_or(0);
        for cut in spread(0..last, 12) {
            muts.push(("cut".into(), 0, Some(cut)));
        }
        for (i, (what, k, cut)) in muts.into_iter().enumerate() {
            let canary = c.canary("sops");
            let file = c.sops(format, &sops_plain(format, &canary));
            let (what, data) = match cut {
                Some(cut) => {
                    // Lengths vary (age grease in the wrapped key): cut in proportion.
                    let cut = cut * file.len() / probe.len();
                    (format!("{ext} cut at {cut}"), file[..cut].to_vec())
                }
                None => {
                    // The same value in this file (offsets move with the ciphertext).
                    let offs = sealed_offsets(&file);
                    let off = offs[k * offs.len() / sealed.len()];
                    let mut data = flip(&file, off, i);
                    // A flip must stay inside base64 to reach the crypto, mostly.
                    if i % 3 != 0 {
                        data[off] = if file[off] == b'A' { b'B' } else { b'A' };
                    }
                    (format!("{ext} {what} at {off}"), data)
                }
            };
            if i % 3 == 2 {
                let path = format!("secrets/{dir}/x.{ext}");
                let mut files = c.repo_files(&canary);
                files.push((path.clone(), data));
                c.in_repo(
                    CAT,
                    format!("by name: {what}"),
                    canary,
                    files,
                    &["decrypt", &format!("{dir}/x")],
                    &[&path],
                );
            } else {
                let path = format!("in/x.{ext}");
                c.loose(
                    CAT,
                    format!("by path: {what}"),
                    canary,
                    vec![(path.clone(), data)],
                    &["decrypt", &path],
                    &[&path],
                );
            }
        }
    }
}

/// A hostile YAML construct: a value for a field (one line, or built), or a change to
/// the whole document.
pub(crate) enum Hostile {
    Value(&'static str),
    Field(fn(&str) -> Vec<u8>),
    Document(fn(&[u8]) -> Vec<u8>),
}

impl Hostile {
    /// A document of `prefix`, then `field` with this value, then `suffix`; a
    /// whole-document change is made to `valid` instead.
    fn document(&self, prefix: &str, field: &str, suffix: &str, valid: &[u8]) -> Vec<u8> {
        let value = match self {
            Hostile::Value(v) => format!("{field}: {v}\n").into_bytes(),
            Hostile::Field(f) => f(field),
            Hostile::Document(d) => return d(valid),
        };
        [prefix.as_bytes(), &value, suffix.as_bytes()].concat()
    }
}

pub(crate) fn hostile_yaml() -> Vec<(&'static str, Hostile)> {
    use Hostile::{Document, Field, Value};
    fn nested(field: &str, open: &str, close: &str, depth: usize) -> Vec<u8> {
        format!("{field}: {}x{}\n", open.repeat(depth), close.repeat(depth)).into_bytes()
    }
    vec![
        (
            "duplicate key",
            Field(|f| format!("{f}: {{}}\n{f}: {{}}\n").into_bytes()),
        ),
        (
            "duplicate nested key",
            Field(|f| format!("{f}:\n  a: [x]\n  a: [y]\n").into_bytes()),
        ),
        (
            "unclosed deep flow",
            Field(|f| format!("{f}: {}\n", "[".repeat(5000)).into_bytes()),
        ),
        ("deep flow sequences", Field(|f| nested(f, "[", "]", 20000))),
        (
            "deep flow mappings",
            Field(|f| nested(f, "{a: ", "}", 3000)),
        ),
        (
            "deep block mappings",
            Field(|f| {
                // Beyond the YAML store's 1,024 levels (sops reads 400).
                let mut s = format!("{f}:\n");
                for d in 1..1100 {
                    s.push_str(&format!("{}k:\n", "  ".repeat(d)));
                }
                s.into_bytes()
            }),
        ),
        (
            "deep block sequences",
            Field(|f| format!("{f}:\n{}x\n", "- ".repeat(3000)).into_bytes()),
        ),
        (
            "billion laughs",
            Field(|f| {
                let mut s =
                    format!("{f}:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
                for i in 1..10 {
                    let refs = vec![format!("*l{}", i - 1); 10].join(", ");
                    s.push_str(&format!("  l{i}: &l{i} [{refs}]\n"));
                }
                s.into_bytes()
            }),
        ),
        (
            "many aliases",
            Field(|f| {
                format!("{f}:\n  a: &a [x]\n  b: [{}]\n", vec!["*a"; 500].join(", ")).into_bytes()
            }),
        ),
        ("undefined alias", Value("*nope")),
        ("self alias", Value("&a [*a]")),
        (
            "merge key of aliases",
            Field(|f| {
                format!("{f}:\n  a: &a {{x: [y]}}\n  b:\n    <<: [*a, *a, *a]\n    <<: *a\n")
                    .into_bytes()
            }),
        ),
        ("binary tag", Value("!!binary aGVsbG8=")),
        ("custom tag", Value("!evil {a: b}")),
        (
            "python tag",
            Field(|f| {
                format!("{f}: !!python/object/apply:os.system [\"touch pwned\"]\n").into_bytes()
            }),
        ),
        ("int tag on a mapping", Value("!!int {a: b}")),
        ("verbatim tag", Value("!<tag:yaml.org,2002:str> [a]")),
        (
            "huge quoted scalar",
            Field(|f| format!("{f}: \"{}\"\n", "A".repeat(1 << 20)).into_bytes()),
        ),
        (
            "huge plain scalar",
            Field(|f| format!("{f}: {}\n", "A".repeat(1 << 20)).into_bytes()),
        ),
        (
            "huge key",
            Field(|f| format!("{f}:\n  {}: [x]\n", "k".repeat(1 << 20)).into_bytes()),
        ),
        (
            "20000 keys",
            Field(|f| {
                let mut s = format!("{f}:\n");
                for i in 0..20_000 {
                    s.push_str(&format!("  k{i}: {{x: 1}}\n"));
                }
                s.into_bytes()
            }),
        ),
        (
            "invalid UTF-8",
            Field(|f| [format!("{f}: a").as_bytes(), b"\xff\xfe", b"b\n"].concat()),
        ),
        (
            "overlong UTF-8",
            Field(|f| [format!("{f}: ").as_bytes(), b"\xc0\xaf\n"].concat()),
        ),
        (
            "UTF-16 surrogate",
            Field(|f| [format!("{f}: ").as_bytes(), b"\xed\xa0\x80\n"].concat()),
        ),
        ("BOM inside", Value("\u{feff}[a]")),
        ("NUL byte", Value("a\u{0}b")),
        ("control character", Value("a\u{7}b")),
        (
            "tab indentation",
            Field(|f| format!("{f}:\n\ta: [x]\n").into_bytes()),
        ),
        ("unterminated quote", Value("\"abc")),
        ("unterminated flow", Value("[a, b")),
        (
            "complex key",
            Field(|f| format!("{f}:\n  ? [a, b]\n  : x\n").into_bytes()),
        ),
        ("UTF-16 BOM", Document(|d| [b"\xff\xfe", d].concat())),
        ("second document", Document(|d| [d, b"---\n", d].concat())),
        (
            "YAML 9.9 directive",
            Document(|d| [b"%YAML 9.9\n---\n", d].concat()),
        ),
    ]
}

pub(crate) fn yaml_cases(c: &mut Corpus) {
    const CAT: &str = "hostile YAML";
    let other_key = std::fs::read_to_string(vectors().join("keys/ed25519-02.pub")).unwrap();
    let cmds: [&[&str]; 4] = [&["check"], &["status"], &["ls"], &["encrypt", "misc/new"]];
    for (i, (what, hostile)) in hostile_yaml().into_iter().enumerate() {
        let rule = "rules:\n  - secrets: \"zz/*\"\n    format: age\n    readers: [admins]\n";
        let valid_policy = format!("groups:\n  ops: [demo]\n{rule}");
        let policy = if i % 2 == 0 {
            hostile.document("", "groups", rule, valid_policy.as_bytes())
        } else {
            hostile.document(
                "groups:\n  ops: [demo]\n",
                "rules",
                "",
                valid_policy.as_bytes(),
            )
        };
        let host_key = format!("ssh_key: {}\n", other_key.trim());
        let host = if i % 2 == 0 {
            hostile.document(&host_key, "containers", "", host_key.as_bytes())
        } else {
            hostile.document("address: 203.0.113.9\n", "ssh_key", "", host_key.as_bytes())
        };
        for cmd in cmds {
            for (file, data) in [
                ("policies/zz-hostile.yaml", &policy),
                ("recipients/hosts/h1.yaml", &host),
            ] {
                let canary = c.canary("yaml");
                let mut files = c.repo_files(&canary);
                files.push((file.into(), data.clone()));
                c.in_repo(
                    CAT,
                    format!("{file} {cmd:?}: {what}"),
                    canary.clone(),
                    files,
                    cmd,
                    &[file],
                )
                .stdin = canary.as_bytes().to_vec();
            }
        }
        for by_name in [false, true] {
            let canary = c.canary("yaml");
            let sops = c.sops(Format::SopsYaml, &sops_plain(Format::SopsYaml, &canary));
            let data = hostile.document("", "hostile", &String::from_utf8_lossy(&sops), &sops);
            if by_name {
                let mut files = c.repo_files(&canary);
                files.push(("secrets/yaml/x.yaml".into(), data));
                c.in_repo(
                    CAT,
                    format!("sops by name: {what}"),
                    canary,
                    files,
                    &["decrypt", "yaml/x"],
                    &["secrets/yaml/x.yaml"],
                );
            } else {
                c.loose(
                    CAT,
                    format!("sops by path: {what}"),
                    canary,
                    vec![("in/x.yaml".into(), data)],
                    &["decrypt", "in/x.yaml"],
                    &["in/x.yaml"],
                );
            }
        }
    }
}

pub(crate) fn name_cases(c: &mut Corpus) {
    const CAT: &str = "hostile secret name";
    let mut names: Vec<String> = [
        "../escape",
        "../../etc/passwd",
        "/abs/path",
        "a//b",
        "a/",
        "/",
        ".",
        "..",
        ".hidden",
        "a/.hidden",
        "-rf",
        "a/-x",
        "a/../b",
        "a/./b",
        "a b",
        "a\nb",
        "a\tb",
        "a\\b",
        "a*b",
        "a?b",
        "a[b]",
        "\u{fc}n\u{ef}code",
        "emoji\u{1f600}",
        "a\u{202e}b",
        "a:b",
        "~/x",
        "$HOME",
        " ",
        "misc",
        "misc/base/x",
        "misc/base.age",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("x".repeat(300));
    names.push(format!("{}x", "a/".repeat(2100)));
    names.push("y".repeat(5000));
    for name in names {
        for cmd in ["encrypt", "decrypt", "rm"] {
            if cmd == "decrypt" && name.starts_with("misc/base.") {
                continue;
            }
            let canary = c.canary("name");
            let files = c.repo_files(&canary);
            let escaped = format!("{name:?}");
            // `--` so that a name starting with '-' reaches keys, not clap's options.
            let case = c.in_repo(
                CAT,
                format!("{cmd} {:?}", &name[..name.len().min(40)]),
                canary.clone(),
                files,
                &[cmd, "--", &name],
                &[&name, &escaped[1..escaped.len() - 1]],
            );
            case.stdin = canary.as_bytes().to_vec();
        }
    }
}
