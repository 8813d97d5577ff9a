//! YAML that sops 3.11 writes and reads beyond the common shapes: `? key` entries,
//! merge keys and the string `<<`, tags, line separators, deep nesting and comments
//! after nested maps. Each document goes both ways: sops encrypts it and `keys
//! decrypt` prints what `sops decrypt` prints; `keys encrypt` writes it and `sops
//! decrypt` prints the same again.

use std::path::Path;

use crate::common::TestEnv;
use crate::fixture::{demo_age, sops, sops_encrypted, sops_fleet};

/// What `sops decrypt` prints for `plaintext` encrypted by sops; asserts that
/// `keys decrypt` prints the same for that file and that the file `keys encrypt`
/// writes for `plaintext` (as `SECRET` under the policy's rules, e.g. `yaml/x` or
/// `clear/x`) decrypts to it with both tools, without a warning from sops.
fn both_ways(env: &TestEnv, repo: &Path, secret: &str, plaintext: &str) -> String {
    let admin = env.root.join("keys/demo.txt");
    let name = secret.replace('/', "-") + ".yaml";
    let theirs = sops_encrypted(env, repo, &name, plaintext.as_bytes());
    let sops_decrypt = |path: &Path| {
        let run = sops(env, &["decrypt", &path.display().to_string()], &admin);
        assert_eq!(run.code, 0, "{secret}: sops decrypt: {}", run.stderr);
        assert!(
            !run.stderr.contains("level=warning"),
            "{secret}: {}",
            run.stderr
        );
        run.stdout
    };
    let expected = sops_decrypt(&theirs);
    let read = env.keys(&["decrypt", &theirs.display().to_string()]);
    assert_eq!(read.code, 0, "{secret}: keys decrypt: {}", read.stderr);
    assert_eq!(
        read.stdout, expected,
        "{secret}: keys reads sops's file differently"
    );
    let wrote = env.keys_stdin(&["encrypt", secret], plaintext.as_bytes());
    assert_eq!(wrote.code, 0, "{secret}: keys encrypt: {}", wrote.stderr);
    let ours = repo.join(format!("secrets/{secret}.yaml"));
    assert_eq!(
        sops_decrypt(&ours),
        expected,
        "{secret}: sops reads keys' file differently"
    );
    assert_eq!(
        env.keys(&["decrypt", secret]).success().stdout,
        expected,
        "{secret}: keys reads its own file differently"
    );
    expected
}

/// `text` with each ciphertext masked, its length and type kept.
fn masked(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("ENC[AES256_GCM,data:") {
        let (head, tail) = rest.split_at(at);
        let end = tail.find(']').unwrap();
        let fields: Vec<&str> = tail[..end].split(',').collect();
        let data = fields[1].trim_start_matches("data:");
        let kind = fields.last().unwrap().trim_start_matches("type:");
        out.push_str(&format!("{head}ENC[{} {kind}]", data.len()));
        rest = &tail[end + 1..];
    }
    out + rest
}

/// The encrypted file at `path` above its `sops:` block, ciphertexts masked: what
/// must be byte for byte what sops writes.
fn body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    masked(text.split("sops:\n").next().unwrap())
}

/// For each plaintext and what `sops decrypt` prints for it: `both_ways` (as
/// `yaml/PREFIX-N`), and the file keys writes above its `sops:` block, ciphertexts
/// masked, is byte for byte the one sops writes.
fn placed_as_sops(env: &TestEnv, repo: &Path, prefix: &str, cases: &[(&str, &str)]) {
    for (n, (plaintext, want)) in cases.iter().enumerate() {
        let secret = format!("yaml/{prefix}-{n}");
        assert_eq!(
            both_ways(env, repo, &secret, plaintext),
            *want,
            "{plaintext:?}"
        );
        let theirs = sops_encrypted(
            env,
            repo,
            &format!("{prefix}-{n}.yaml"),
            plaintext.as_bytes(),
        );
        let ours = repo.join(format!("secrets/{secret}.yaml"));
        assert_eq!(body(&ours), body(&theirs), "{plaintext:?}");
    }
}

/// go-yaml writes a key over 128 bytes (or with a line break) as `? key` and `:
/// value`, and reads it back; so does keys, in maps at every depth and in lists.
#[test]
fn keys_over_128_bytes_are_written_and_read_as_sops_does() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let long = "k".repeat(130);
    let plaintext = format!(
        "a: 1\n{long}: v\n{long}x:\n    n: 2\n{long}y:\n    - 1\n{long}z: {{}}\n\
         lst:\n    - {long}: 3\nm:\n    {long}: 4\n\"multi\\nline\": 5\n"
    );
    let printed = both_ways(&env, &repo, "yaml/long-keys", &plaintext);
    assert!(
        printed.starts_with(&format!("a: 1\n? {long}\n: v\n? {long}x\n:   \"n\": 2\n")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("    - ? {long}\n      : 3\n")),
        "{printed}"
    );
    assert!(
        printed.contains("? |-\n    multi\n    line\n: 5\n"),
        "{printed}"
    );
}

/// A merge key reads as sops reads it: the key `<<` with the alias expanded under
/// it, written back as `!!merge <<`; so is the string `<<`, as a value and in a
/// list, including values sops stores in clear (which the MAC covers).
#[test]
fn merge_keys_anchors_and_the_string_merge_are_read_as_sops_does() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = "base: &b\n    x: 1\n    y: [2, &s two]\nd:\n    <<: *b\n    y: 3\n\
                     e:\n    <<: [*b]\nf: *s\ns: \"<<\"\nt: <<\nl:\n    - \"<<\"\n";
    let printed = both_ways(&env, &repo, "yaml/merge", plaintext);
    assert!(
        printed.contains("d:\n    !!merge <<:\n        x: 1\n"),
        "{printed}"
    );
    assert!(
        printed.contains("s: !!merge <<\nt: !!merge <<\nl:\n    - !!merge <<\n"),
        "{printed}"
    );
    let clear = "s_unencrypted: \"<<\"\nl_unencrypted:\n    - \"<<\"\n";
    let printed = both_ways(&env, &repo, "clear/merge", clear);
    assert_eq!(
        printed,
        "s_unencrypted: !!merge <<\nl_unencrypted:\n    - !!merge <<\n"
    );

    // Many aliases, as sops reads them (go-yaml limits their share of the nodes,
    // not their count); an alias bomb stays refused (the hostile input tests).
    let mut many = String::from("a: &x {b: 1}\n");
    for i in 0..150 {
        many.push_str(&format!("c{i}: *x\n"));
    }
    let printed = both_ways(&env, &repo, "yaml/aliases", &many);
    assert!(printed.ends_with("c149:\n    b: 1\n"), "{printed}");

    // A quoted `"<<"` key over a scalar: sops encrypts it and then cannot read its
    // own file (the key comes back a merge key); keys refuses to write it.
    let bad = "a: 1\n\"<<\": SECRETVALUE\n";
    let theirs = sops_encrypted(&env, &repo, "bad-merge.yaml", bad.as_bytes());
    let admin = env.root.join("keys/demo.txt");
    let run = sops(&env, &["decrypt", &theirs.display().to_string()], &admin);
    assert_ne!(run.code, 0, "sops now reads it: {}", run.stdout);
    let before = crate::fixture::tree(&repo);
    let run = env
        .keys_stdin(&["encrypt", "yaml/bad-merge"], bad.as_bytes())
        .failure(3);
    assert!(
        run.stderr
            .contains("yaml/bad-merge.yaml:2: a `<<` key whose value is not a map"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("SECRETVALUE"));
    assert_eq!(crate::fixture::tree(&repo), before);
}

/// sops drops custom tags and the collection tags go-yaml does not resolve: a
/// tagged scalar is its text (a string), a tagged map or list its content; the
/// non-specific tag `!` types a plain scalar as if it had none.
#[test]
fn custom_and_collection_tags_are_dropped_as_sops_drops_them() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = "a: !foo 123\nb: !foo bar\nc: !!str 123\nd: !!int \"12\"\n\
                     f: !foo\n    g: 1\nh: !!set\n    ? x\n    ? y\ni: !!omap\n    - k: 1\n\
                     j: !<tag:example.com,2000:x> 5\nk: !foo [1, 2]\nl: ! 12\nn: !foo true\n\
                     !foo o: 1\n";
    let printed = both_ways(&env, &repo, "yaml/tags", plaintext);
    assert!(
        printed
            .starts_with("a: \"123\"\nb: bar\nc: \"123\"\nd: 12\nf:\n    g: 1\nh:\n    x: null\n"),
        "{printed}"
    );
    assert!(
        printed.contains("j: \"5\"\nk:\n    - 1\n    - 2\nl: 12\n\"n\": \"true\"\no: 1\n"),
        "{printed}"
    );
}

/// Nesting as deep as sops files have (150 levels here) is read and written both
/// ways; a document nested far deeper (100,000 levels, which go-yaml refuses past
/// 10,000) is refused naming the line, without crashing and without writing.
#[test]
fn deep_nesting_is_read_as_sops_reads_it_and_absurd_depth_is_refused() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let mut deep = String::new();
    for level in 0..150 {
        deep.push_str(&format!("{}k{level}:\n", "    ".repeat(level)));
    }
    deep.push_str(&format!("{}- v: SECRETVALUE\n", "    ".repeat(150)));
    let printed = both_ways(&env, &repo, "yaml/deep", &deep);
    assert_eq!(printed, deep);

    let before = crate::fixture::tree(&repo);
    let flow = format!("a: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let mut block = String::from("a:\n");
    for level in 1..1100 {
        block.push_str(&format!("{}-\n", " ".repeat(level)));
    }
    for (name, input, line) in [("flow", flow, 1), ("block", block, 1025)] {
        let run = env
            .keys_stdin(&["encrypt", &format!("yaml/{name}")], input.as_bytes())
            .failure(3);
        let want = format!("yaml/{name}.yaml:{line}: nested deeper than 1024 levels; refused");
        assert!(run.stderr.contains(&want), "{want}: {}", run.stderr);
    }
    assert_eq!(crate::fixture::tree(&repo), before);
}

/// go-yaml takes U+2028 and U+2029 for line breaks: sops writes a value holding
/// one single-quoted (or as a block) with the indentation after the break, and
/// reads the indentation away. keys prints the same, and a value sops stored in
/// clear passes the MAC.
#[test]
fn line_separators_are_written_and_read_as_sops_does() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = "a: \"x\\u2028y\"\nb: \"p\\u2029q\"\nc_unencrypted: \"x\\u2028y z\"\n\
                     d_unencrypted: \"l1\\nl2\\u2028l3\"\ne:\n    f_unencrypted: \"\\u2028 a \\u2029b\"\n\
                     \x20   \"k\\u2028ey\": 1\nl_unencrypted:\n    - \"x\\u2028y\"\n    - \"l1\\nl2\\u2028l3\\n\"\n\
                     raw_unencrypted: \"x\u{2028}   y \u{2029}\\u2028 z\"\nfold_unencrypted: 'x\u{2028}\n    y'\n";
    let printed = both_ways(&env, &repo, "clear/separators", plaintext);
    assert!(
        printed.starts_with(
            "a: 'x\u{2028}    y'\nb: 'p\u{2029}    q'\nc_unencrypted: 'x\u{2028}    y z'\n"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("    - 'x\u{2028}      y'\n    - |\n      l1\n      l2\u{2028}      l3\n"),
        "{printed}"
    );
    assert!(
        printed.ends_with(
            "raw_unencrypted: \"x\\Ly\\P\\L z\"\nfold_unencrypted: |-\n    x\u{2028}\n    y\n"
        ),
        "{printed}"
    );
}

/// go-yaml makes the comments right after a nested map's last entry, before a
/// dedent, foot comments of that innermost map, whatever their indentation, and
/// sops encrypts each comment under the path of the map it is in: keys places
/// them there too, so sops decrypts the comments of a file keys wrote.
#[test]
fn comments_after_a_nested_map_in_a_list_item_decrypt_with_sops() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = "l:\n    - a:\n          b: 1\n      # after nested\n      c: 2\n    - x:\n          y: 1\n      # tail of item\nz: 1\n\
                     m:\n    x:\n        y: 1\n    # tail of m\nn:\n    - b:\n          c: 1\n      # p\n    # q\no: 1\n\
                     p:\n    b:\n        c: 1\n        # p\n    # q\n  # r\nq: 1\n";
    let printed = both_ways(&env, &repo, "yaml/nested-comments", plaintext);
    assert!(
        printed.contains("    - x:\n        \"y\": 1\n        # tail of item\nz: 1\n"),
        "{printed}"
    );
    assert!(
        printed.contains("m:\n    x:\n        \"y\": 1\n        # tail of m\n"),
        "{printed}"
    );
    assert!(
        printed.contains("        c: 1\n        # p\n# q\no: 1\n"),
        "{printed}"
    );
    assert!(
        printed.ends_with("        c: 1\n        # p\n    # q\n# r\nq: 1\n"),
        "{printed}"
    );

    // At the end of the input, an enclosing map takes only the comments at its
    // own column; the others go to the document.
    let plaintext = "m:\n    x:\n        y: 1\n        # t8\n      # t6\n";
    let printed = both_ways(&env, &repo, "yaml/end-comments", plaintext);
    assert_eq!(
        printed,
        "m:\n    x:\n        \"y\": 1\n        # t8\n# t6\n"
    );
}

/// A comment to the right of a bare `- ` belongs to what the dash starts (first in
/// a list nested there, else before the entry); under a `? key`, go-yaml writes one
/// that starts a list on the `:` line, where it reads back before the key. Encrypted,
/// a comment in a list is an entry of it. keys writes and reads both ways as sops.
#[test]
fn a_comment_after_a_bare_dash_is_read_as_sops_reads_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    for (secret, plaintext, want) in [
        (
            "yaml/complex-list-comment",
            "? |4+\n\n:   - #\n      - {}\n",
            "? |4+\n\n:   - - \"\"\n      - {}\n",
        ),
        (
            "yaml/complex-key-comment",
            "? |4+\n\n:   #\n    - - {}\n",
            "#\n? |4+\n\n:   - - {}\n",
        ),
        (
            "yaml/dash-comment-list",
            "k:\n    - a\n    - # c\n      - b\n",
            "k:\n    - a\n    # c\n    - - b\n",
        ),
        (
            "yaml/empty-list-comment",
            "k:\n    - a\n    #\n    - b\n",
            "k:\n    - a\n    - \"\"\n    - b\n",
        ),
        (
            "yaml/dash-comment-scalar",
            "k:\n    - a\n    - # c\n      b\n",
            "k:\n    - a\n    # c\n    - b\n",
        ),
        // A bare dash's null: the comment goes to what follows it, in the list or,
        // at its end, the enclosing map.
        (
            "yaml/dash-comment-null",
            "k:\n    - # c\n    - 2\nl:\n    - a\n    - # d\n    # e\nz: 1\n",
            "k:\n    - null\n    # c\n    - 2\nl:\n    - a\n    - null\n# d\n# e\nz: 1\n",
        ),
        // And the comments just above it.
        (
            "yaml/comment-above-null",
            "l:\n  # x\n  -\n  - b\nm:\n- a\n# y\n-\nz: 1\n",
            "l:\n    - null\n    # x\n    - b\nm:\n    - a\n    - null\n# y\nz: 1\n",
        ),
        // The same in a compact list, its dashes at the key's column.
        (
            "yaml/compact-dash-comment",
            "k:\n- # c\n- 2\nm:\n- # d\n  - b\nn: # r\n- # e\nz: 1\n",
            "k:\n    - null\n    # c\n    - 2\nm:\n    # d\n    - - b\n# r\n\"n\":\n    - null\n# e\nz: 1\n",
        ),
    ] {
        assert_eq!(
            both_ways(&env, &repo, secret, plaintext),
            want,
            "{plaintext:?}"
        );
    }
}

/// A comment after an empty value with a tag or an anchor (`key: !!str`, `key: &a`)
/// stays after it, in maps and lists: go-yaml gives it to what follows, and keys
/// places it there too, so sops reads it back where it was from either file.
#[test]
fn a_comment_after_an_empty_tagged_value_stays_after_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = "name: n\n# before\nnote: !!str\n# after\npassword: p\nx: &a\n# c2\ny: 1\n\
                     l:\n    - !!str\n    # c3\n    - b\nm:\n    k: !!str\n    # c4\nz: 1\n";
    let printed = both_ways(&env, &repo, "yaml/empty-tagged", plaintext);
    assert_eq!(
        printed,
        "name: \"n\"\n# before\nnote: \"\"\n# after\npassword: p\nx: null\n# c2\n\"y\": 1\n\
         l:\n    - \"\"\n    # c3\n    - b\nm:\n    k: \"\"\n    # c4\nz: 1\n"
    );
}

/// A comment that ends a list item after a nested map: sops encrypts it under the
/// item's path, go-yaml reads it back into the nested map, and sops cannot decrypt it
/// and prints it as it is. keys places and encrypts it as sops does, so both tools read
/// either file alike: the same lines, that comment still encrypted at the same place.
#[test]
fn a_comment_ending_a_list_item_after_a_nested_map_is_encrypted_as_sops_encrypts_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");
    let plaintext = "items:\n  - sub:\n      password: p\n    # last, after nested map\n";
    let theirs = sops_encrypted(&env, &repo, "item-comment.yaml", plaintext.as_bytes());
    let sops_reads = sops(&env, &["decrypt", &theirs.display().to_string()], &admin).success();
    let want = "items:\n    - sub:\n        password: p\n        #ENC[32 comment]\n";
    assert_eq!(masked(&sops_reads.stdout), want);
    assert!(sops_reads.stderr.contains("possibly unencrypted comment"));
    let read = env
        .keys(&["decrypt", &theirs.display().to_string()])
        .success();
    assert_eq!(
        read.stdout, sops_reads.stdout,
        "keys reads sops's file as sops does"
    );

    env.keys_stdin(&["encrypt", "yaml/item-comment"], plaintext.as_bytes())
        .success();
    let ours = repo.join("secrets/yaml/item-comment.yaml");
    assert_eq!(body(&ours), body(&theirs), "keys writes what sops writes");
    let sops_reads_ours = sops(&env, &["decrypt", &ours.display().to_string()], &admin).success();
    assert_eq!(masked(&sops_reads_ours.stdout), want);
    let keys_reads_ours = env.keys(&["decrypt", "yaml/item-comment"]).success();
    assert_eq!(keys_reads_ours.stdout, sops_reads_ours.stdout);
}

/// A comment to the right of a flow collection (`key: {} # none yet`, `key: [] #
/// later`, common for a setting left empty) is that collection's first entry, as
/// sops makes it: `key:` / `# c` / `- 1` for a list, and for an empty map sops
/// writes it inside the braces (`{` / `#ENC[…]` / `}`), where go-yaml drops it when
/// the file is read, so sops prints `key: {}`. keys reads and writes each alike, at
/// every depth, in lists and through an alias; a comment inside empty brackets is
/// dropped, as sops drops it, and one inside a flow list after its entries stays
/// there.
#[test]
fn a_comment_beside_a_flow_collection_is_placed_as_sops_places_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let plaintext = "a: 1\nb: {} # none yet\nc: 2\nx:\n  y: { } # nested\n  z: 3\n\
                     l:\n  - {} # in a list\n  - k: {} # in an item\n    v: 4\n\
                     m: &e [1] # anchored\nn: *e\no: [] # kept\np: {\n  # inside\n}\n\
                     q: [1, 2\n  # after\n  ]\nr: [ # opening\n  3]\ns:\n  - []\n  # foot\n";
    let printed = both_ways(&env, &repo, "yaml/flow-comments", plaintext);
    assert_eq!(
        printed,
        "a: 1\nb: {}\nc: 2\nx:\n    \"y\": {}\n    z: 3\nl:\n    # in a list\n    - {}\n    \
         - k: {}\n      v: 4\nm:\n    # anchored\n    - 1\n\"n\":\n    # anchored\n    - 1\n\
         o: []\n# kept\np: {}\nq:\n    - 1\n    - 2\n    # after\nr:\n    - 3\ns:\n    - []\n    \
         # foot\n"
    );
    // The encrypted files alike: a comment inside `{}` at the map's own indent.
    let theirs = sops_encrypted(&env, &repo, "flow-comments.yaml", plaintext.as_bytes());
    let ours = repo.join("secrets/yaml/flow-comments.yaml");
    assert_eq!(body(&ours), body(&theirs));
    assert!(
        body(&ours).contains("\nx:\n    \"y\": {\n        #ENC[12 comment]\n}\n"),
        "{}",
        body(&ours)
    );
}

/// A comment below a flow collection that ends a list or map, indented past its
/// dash or key (`- []` / `  # c`, `x: {a: 1}` / `    # c`), follows it as a
/// comment below a scalar does. go-yaml keeps it after an empty one in that list or
/// map, where sops writes it as the list's item `- ENC[…,type:comment]`, and sends
/// it to the document's end after one with entries. keys reads, writes and places
/// each alike, at the end of the file, where go-yaml's rules differ most.
#[test]
fn a_comment_below_a_flow_collection_is_placed_as_sops_places_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "below-flow",
        &[
            ("k:\n - []\n  # c\n", "k:\n    - []\n    # c\n"),
            ("k:\n  - {}\n    # c\n", "k:\n    - {}\n    # c\n"),
            ("k:\n - [1]\n  # c\n", "k:\n    - - 1\n\n# c\n"),
            ("k:\n - {a: 1}\n    # c\n", "k:\n    - a: 1\n\n# c\n"),
            ("k:\n  x: []\n      # c\n", "k:\n    x: []\n    # c\n"),
            ("k:\n - - []\n    # c\n", "k:\n    - - []\n      # c\n"),
            (
                "k:\n - [] # r\n  # c\n # d\n",
                "k:\n    # r\n    - []\n    # c\n    # d\n",
            ),
        ],
    );
}

/// A comment to the right of a key whose value is only an anchor or a tag (`k: &a
/// # c`, `k: !!str # c`) is not that entry's: go-yaml gives it to what follows,
/// the map's next entry (after the comments below) or, where the map has none, the
/// map itself, before its first entry; over a map's or list's entries, their first
/// comment. A list's empty entry with an anchor or tag passes the comments above it
/// on, as a bare `-` does. After a bare `- # c`, the map the dash starts takes it. keys reads and
/// writes each where sops does, and the encrypted files match line for line.
#[test]
fn a_comment_beside_an_anchor_or_tag_goes_where_sops_puts_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "marked",
        &[
            ("# top\na: 1\nb: &x # c\n", "# c\n# top\na: 1\nb: null\n"),
            (
                "a: 1\nb: !!str # c\n# h\nd: 2\n",
                "a: 1\nb: \"\"\n# h\n# c\nd: 2\n",
            ),
            (
                "m:\n  x: 1\n  b: &x # c\ne: 1\n",
                "m:\n    # c\n    x: 1\n    b: null\ne: 1\n",
            ),
            (
                "l:\n  - x: 1\n    a: &x # c\n",
                "l:\n    # c\n    - x: 1\n      a: null\n",
            ),
            (
                "a: 1\nb: &x # c\n  # own\n  x: 1\n",
                "a: 1\nb:\n    # own\n    # c\n    x: 1\n",
            ),
            (
                "a: 1\nb: !!seq # c\n  - 1\n",
                "a: 1\nb:\n    # c\n    - 1\n",
            ),
            ("k:\n- # c\n  a: 1\n", "k:\n    # c\n    - a: 1\n"),
            (
                "l:\n  - x\n  # c\n  - &a\n  - b\n",
                "l:\n    - x\n    - null\n    # c\n    - b\n",
            ),
            (
                "l: &x # c\n  - !!str\n  - b\n",
                "l:\n    - \"\"\n    # c\n    - b\n",
            ),
        ],
    );
}

/// go-yaml folds a quoted value's lines whatever their indentation, where YAML
/// wants them indented past the enclosing block: `b: 'one` / `bad'` with `bad` at
/// the key's column, or at column 0, is `one bad` to sops. keys reads them alike,
/// and writes files sops reads to the same values.
#[test]
fn a_quoted_value_with_lines_at_any_indentation_is_read_as_sops_reads_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    for (n, (plaintext, want)) in [
        ("a: \"one\nbad\"\n", "a: one bad\n"),
        (
            "a:\n  b: 'one\n  bad'\n  c: 2\n",
            "a:\n    b: one bad\n    c: 2\n",
        ),
        ("l:\n- a: 'x\n y'\n", "l:\n    - a: x y\n"),
        ("a: 'x\n\n  y\nz'\n", "a: |-\n    x\n    y z\n"),
        ("a:\n  b: 'x\n  # y'\n", "a:\n    b: 'x # y'\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let secret = format!("yaml/quoted-lines-{n}");
        assert_eq!(
            both_ways(&env, &repo, &secret, plaintext),
            want,
            "{plaintext:?}"
        );
    }
}

/// A compact list (`hosts:` / `- a`, its dashes at its key's column) has no end
/// of its own in go-yaml: the comments below its last entry go to the map's next
/// key, however far they are indented, and stay in the list only where the input
/// or an enclosing map ends there. keys places each as sops does, whether the last
/// entry is a scalar or a flow collection, and writes the same encrypted lines.
#[test]
fn comments_after_a_compact_list_go_where_sops_puts_them() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "compact",
        &[
            ("l:\n- a\n  # c\nk: 1\n", "l:\n    - a\n# c\nk: 1\n"),
            (
                "m:\n  l:\n  - a\n    # c\n  k: 1\n",
                "m:\n    l:\n        - a\n    # c\n    k: 1\n",
            ),
            (
                "m:\n  l:\n  - a\n    # c\nk: 1\n",
                "m:\n    l:\n        - a\n        # c\nk: 1\n",
            ),
            ("l:\n- []\n  # c\nk: 1\n", "l:\n    - []\n# c\nk: 1\n"),
            ("l:\n- a\n# c\n", "l:\n    - a\n    # c\n"),
            (
                "l:\n- a: 1\n  # c\nk: 1\n",
                "l:\n    - a: 1\n      # c\nk: 1\n",
            ),
            (
                "l:\n- a\n  # c\n---\nk: 1\n",
                "l:\n    - a\n# c\n---\nk: 1\n",
            ),
        ],
    );
}

/// A blank line ends a collection's foot: go-yaml gives the collection the comments
/// right after its last value, up to the blank line, and those after it to what
/// follows, whatever their indentation (a block of commented-out settings, a blank,
/// then another one before the next section), and so does a run dedented from the
/// collection to a column no enclosing one has. After an empty value (`b:`) all of
/// them stay.
#[test]
fn comments_after_a_blank_line_go_to_what_follows_as_sops_puts_them() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "blank",
        &[
            (
                "db:\n  host: x\n  # port: 1\n\n  # user: y\nweb: 1\n",
                "db:\n    host: x\n    # port: 1\n# user: y\nweb: 1\n",
            ),
            ("k:\n- x\n  # c\n\nb: 1\n", "k:\n    - x\n    # c\nb: 1\n"),
            (
                "k:\n  - x\n  # c\n\n  # d\nb: 1\n",
                "k:\n    - x\n    # c\n# d\nb: 1\n",
            ),
            (
                "a:\n  x:\n    y: 1\n    # c\n\n    # d\n  z: 1\n",
                "a:\n    x:\n        \"y\": 1\n        # c\n    # d\n    z: 1\n",
            ),
            (
                "a:\n  x: 1\n  # c\n\n  # d\n",
                "a:\n    x: 1\n    # c\n# d\n",
            ),
            (
                "a:\n  x: |\n    t\n  # c\n\n  # d\nb: 1\n",
                "a:\n    x: |\n        t\n    # c\n# d\nb: 1\n",
            ),
            (
                "a:\n  b:\n  # c\n\n  # d\nx: 1\n",
                "a:\n    b: null\n    # c\n    # d\nx: 1\n",
            ),
            (
                "a:\n  b: {}\n  # c\n\n  # d\nx: 1\n",
                "a:\n    b: {}\n    # c\n# d\nx: 1\n",
            ),
            (
                "k:\n- x\n  # c\n# d\n\nb: 1\n",
                "k:\n    - x\n    # c\n    # d\nb: 1\n",
            ),
            // Dedented from the list to a column nothing else has.
            (
                "hosts:\n    - web\n  # db: disabled\n\nport: 1\n",
                "hosts:\n    - web\n# db: disabled\nport: 1\n",
            ),
            (
                "m:\n  a:\n      x: 1\n    # c\n\nb: 1\n",
                "m:\n    a:\n        x: 1\n# c\nb: 1\n",
            ),
            // Dedented to the left of what follows, at a column an enclosing map
            // has: to what follows too.
            (
                "a:\n  b:\n    c: 1\n# x\n\n  d: 2\n",
                "a:\n    b:\n        c: 1\n    # x\n    d: 2\n",
            ),
            (
                "a:\n  b:\n    c:\n      e: 1\n  # x\n\n    d: 2\n",
                "a:\n    b:\n        c:\n            e: 1\n        # x\n        d: 2\n",
            ),
            (
                "a:\n  b:\n    - c: 1\n      e: 1\n# x\n\n  f: 2\n",
                "a:\n    b:\n        - c: 1\n          e: 1\n    # x\n    f: 2\n",
            ),
            // With no blank line after, the innermost map's foot.
            (
                "a:\n  b:\n    c: 1\n# x\n  d: 2\n",
                "a:\n    b:\n        c: 1\n        # x\n    d: 2\n",
            ),
            // A comment at another column starts a run of its own: the first run,
            // with no blank line after it, is the innermost map's foot.
            (
                "a:\n  b:\n    c: 1\n # x\n# y\n\n  d: 2\n",
                "a:\n    b:\n        c: 1\n        # x\n    # y\n    d: 2\n",
            ),
            (
                "a:\n  b:\n    c: 1\n # x\n  # y\n\n  d: 2\n",
                "a:\n    b:\n        c: 1\n        # x\n    # y\n    d: 2\n",
            ),
        ],
    );
}

/// A list's last entry that is a bare `-` has no extent: go-yaml gives the comments
/// below it to the next key of the map the list is in, whatever their indentation.
#[test]
fn comments_below_a_last_bare_dash_go_to_the_next_key_as_sops_puts_them() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "last-dash",
        &[
            (
                "a:\n  l:\n    - x\n    -\n#c\n  b: []\n",
                "a:\n    l:\n        - x\n        - null\n    #c\n    b: []\n",
            ),
            (
                "a:\n  l:\n    - x\n    -\n    #c\n\n  b: []\n",
                "a:\n    l:\n        - x\n        - null\n    #c\n    b: []\n",
            ),
            (
                "a:\n  l:\n  - x\n  -\n  #c\n  b: 1\n",
                "a:\n    l:\n        - x\n        - null\n    #c\n    b: 1\n",
            ),
        ],
    );
}

/// A run of comments after a list's entry, dedented below that entry's collection
/// (the list for a scalar entry, the entry's map otherwise) and ended by a blank
/// line, where the list goes on: go-yaml carries it past the first node of the next
/// entry, after a scalar entry, and after a map entry's first pair.
#[test]
fn a_dedented_run_between_list_entries_goes_past_the_next_entry_s_first_node_as_sops_puts_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "list-carry",
        &[
            (
                "k:\n  - a\n# c\n\n  - b\n  - z\nm: 1\n",
                "k:\n    - a\n    - b\n    # c\n    - z\nm: 1\n",
            ),
            // Only the run before the blank line: what follows it heads the entry.
            (
                "k:\n  - a\n# c\n\n# d\n  - b\n  - z\nm: 1\n",
                "k:\n    - a\n    # d\n    - b\n    # c\n    - z\nm: 1\n",
            ),
            (
                "k:\n  - a\n# c\n\n  - b\nm: 1\n",
                "k:\n    - a\n    - b\n    # c\nm: 1\n",
            ),
            (
                "k:\n  - a: 1\n    b: 2\n  # c\n\n  - x: 1\n    y: 2\n    z: 3\nm: 1\n",
                "k:\n    - a: 1\n      b: 2\n    - x: 1\n      # c\n      \"y\": 2\n      z: 3\nm: 1\n",
            ),
            (
                "k:\n  - a: 1\n# c\n\n  - x:\n      y: 1\n    z: 2\nm: 1\n",
                "k:\n    - a: 1\n    - x:\n        \"y\": 1\n      # c\n      z: 2\nm: 1\n",
            ),
            (
                "k:\n  - a:\n      b: 1\n# c\n\n  - x: 1\n  - q: 1\nm: 1\n",
                "k:\n    - a:\n        b: 1\n    - x: 1\n      # c\n    - q: 1\nm: 1\n",
            ),
            (
                "k:\n  - a: 1\n# c\n\n  - s\n  - t\nm: 1\n",
                "k:\n    - a: 1\n    - s\n    # c\n    - t\nm: 1\n",
            ),
            (
                "port:\n- env\n- cache: 13\n  hosty: v\n# host: 1\n\n- host\n# db: x\nenabled: 1\n",
                "port:\n    - env\n    - cache: 13\n      hosty: v\n    - host\n    # host: 1\n# db: x\nenabled: 1\n",
            ),
            // Not dedented, or no blank line after: before the next entry.
            (
                "k:\n  - a\n  # c\n\n  - b\nm: 1\n",
                "k:\n    - a\n    # c\n    - b\nm: 1\n",
            ),
            (
                "k:\n  - a\n# c\n  - b\nm: 1\n",
                "k:\n    - a\n    # c\n    - b\nm: 1\n",
            ),
        ],
    );
}

/// The same carrying below a key whose value is a block map or list on the lines
/// below it: a run right after the key, dedented below the map the key is in and
/// ended by a blank line, goes past the new collection's first node.
#[test]
fn a_dedented_run_below_a_key_goes_past_its_value_s_first_node_as_sops_puts_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "key-carry",
        &[
            (
                "a:\n  b:\n# c\n\n    x: 1\n    y: 2\n",
                "a:\n    b:\n        x: 1\n        # c\n        \"y\": 2\n",
            ),
            (
                "a:\n  b:\n# c\n\n    x:\n      n: 1\n      m: 2\n    y: 2\n",
                "a:\n    b:\n        x:\n            \"n\": 1\n            m: 2\n        # c\n        \"y\": 2\n",
            ),
            (
                "a:\n  b:\n# c\n\n    - x\n    - y\n",
                "a:\n    b:\n        - x\n        # c\n        - \"y\"\n",
            ),
            (
                "a:\n  b:\n# c\n\n    x: 1\nz: 1\n",
                "a:\n    b:\n        x: 1\n        # c\nz: 1\n",
            ),
            (
                "a:\n  b:\n# c\n# d\n\n# e\n    x: 1\n    y: 2\n",
                "a:\n    b:\n        # e\n        x: 1\n        # c\n        # d\n        \"y\": 2\n",
            ),
            // At the key's own column, or with no blank line: the first key's head.
            (
                "a:\n  b:\n  # c\n\n    x: 1\n    y: 2\n",
                "a:\n    b:\n        # c\n        x: 1\n        \"y\": 2\n",
            ),
            (
                "a:\n  b:\n# c\n    x: 1\n    y: 2\n",
                "a:\n    b:\n        # c\n        x: 1\n        \"y\": 2\n",
            ),
            (
                "a:\n# c\n\n  b: 1\n  d: 2\n",
                "a:\n    # c\n    b: 1\n    d: 2\n",
            ),
        ],
    );
}

/// At the end of a file, go-yaml gives the document the comments after a blank line
/// or after an empty value; a file that ends in comments with no line break after
/// the last one gives a map's last value the first run of them.
#[test]
fn comments_at_the_end_of_a_file_go_where_sops_puts_them() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "file-end",
        &[
            (
                "path:\n  value: 5432\n\n  # port: 1\n",
                "path:\n    value: 5432\n# port: 1\n",
            ),
            (
                "host:\n  url:\n  # user: admin\n",
                "host:\n    url: null\n# user: admin\n",
            ),
            ("a:\n  - 1\n\n  # x\n", "a:\n    - 1\n# x\n"),
            // After a foot ended by a blank line, the rest is the document's, even at
            // the column of a map that closes with the list.
            (
                "a:\n  key:\n    - x\n    # env: 1\n\n  # web: 2\n",
                "a:\n    key:\n        - x\n        # env: 1\n# web: 2\n",
            ),
            (
                "a:\n  b:\n    c: 1\n    # env\n\n  # web\n\n    # more\n",
                "a:\n    b:\n        c: 1\n        # env\n# web\n# more\n",
            ),
            ("a:\n  b: 1\n# c\n# d", "a:\n    b: 1\n    # c\n    # d\n"),
            ("a:\n  b: 1\n  # c\n# d", "a:\n    b: 1\n    # c\n# d\n"),
            ("a:\n  - 1\n# c", "a:\n    - 1\n# c\n"),
            // Dedented to a column of its own, then a blank line and more.
            ("a:\n    x: 1\n  # c\n\n# d\n", "a:\n    x: 1\n# c\n# d\n"),
        ],
    );
}

/// Own-line comments between a bare `-` and the block map or list on the lines
/// below it are that map's or list's first entries in go-yaml, and sops writes
/// them there (`#ENC[…]` in a map, `- ENC[…]` in a list); before a flow one they
/// stay in the outer list. keys reads the same text and writes the same lines.
#[test]
fn comments_below_a_bare_dash_belong_to_the_block_it_starts() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "below-dash",
        &[
            (
                "l:\n  -\n      # c\n      - a\n",
                "l:\n    # c\n    - - a\n",
            ),
            ("l:\n-\n  # c\n  a: 1\n", "l:\n    # c\n    - a: 1\n"),
            (
                "l:\n  - x\n  # c\n  - - a\n",
                "l:\n    - x\n    # c\n    - - a\n",
            ),
            (
                "l:\n  -\n    # c\n    {a: 1}\n",
                "l:\n    # c\n    - a: 1\n",
            ),
        ],
    );
}

/// A value of line breaks only, in a list, is written as go-yaml writes it
/// (`- |4+` over blank lines): with no line of text there is nothing for the
/// indentation indicator to misplace, and both tools read it back. (One with text
/// after a leading break or blank stays double-quoted: go-yaml's block there does
/// not read back.)
#[test]
fn a_value_of_line_breaks_in_a_list_is_written_as_sops_writes_it() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    placed_as_sops(
        &env,
        &repo,
        "breaks",
        &[(
            "l:\n  - \"\\n\"\n  - a: \"\\n\\n\"\n    b: 1\n",
            "l:\n    - |4+\n\n    - a: |4+\n\n\n      b: 1\n",
        )],
    );
}

/// A key repeated in a map: sops refuses it in the first document of a plaintext
/// and keeps it in a later one; keys refuses and keeps the same. A repeated key in
/// the first document of a file sops wrote from JSON (which keeps both pairs) is
/// refused by keys, naming the line: two values for one name, which consumers
/// resolve differently, is no secret's value.
#[test]
fn repeated_keys_are_refused_in_the_first_document_and_kept_in_later_ones() {
    let mut env = TestEnv::new();
    let repo = sops_fleet(&mut env);
    let admin = env.root.join("keys/demo.txt");

    // A later document may repeat a key, both ways.
    let printed = both_ways(&env, &repo, "yaml/later", "a: 1\n---\nb: 1\nb: 2\n");
    assert_eq!(printed, "a: 1\n---\nb: 1\nb: 2\n");

    // The first may not, for sops and for keys; nothing is written.
    let input = env.write("sops-in/first.yaml", b"a: 1\nx:\n  k: 1\n  k: 2\n");
    let theirs = sops(
        &env,
        &["encrypt", "--age", "age1x", input.to_str().unwrap()],
        &admin,
    );
    assert_ne!(
        theirs.code, 0,
        "sops took a repeated key: {}",
        theirs.stdout
    );
    let ours = env.keys_stdin(&["encrypt", "yaml/first"], b"a: 1\nx:\n  k: 1\n  k: 2\n");
    assert_eq!(ours.code, 3, "{}", ours.stderr);
    assert!(
        ours.stderr
            .contains("secrets/yaml/first.yaml:4: duplicate key \"k\""),
        "{}",
        ours.stderr
    );
    assert!(!repo.join("secrets/yaml/first.yaml").exists());

    // sops writes one from JSON; keys names the line and leaves the file as it is.
    let json = env.write("sops-in/repeat.json", br#"{"x": {"a": 1, "a": 2}}"#);
    let recipient = demo_age(&repo);
    let args = [
        "encrypt",
        "--age",
        &recipient,
        "--input-type",
        "json",
        "--output-type",
        "yaml",
        json.to_str().unwrap(),
    ];
    let enc = sops(&env, &args, &admin).success();
    let file = repo.join("secrets/yaml/repeat.yaml");
    std::fs::write(&file, &enc.raw_stdout).unwrap();
    let read = env.keys(&["decrypt", "yaml/repeat"]);
    assert_eq!(read.code, 3, "{}", read.stderr);
    assert!(
        read.stderr
            .contains("secrets/yaml/repeat.yaml:3: duplicate key \"a\""),
        "{}",
        read.stderr
    );
    assert!(!read.stdout.contains('1') && !read.stderr.contains("a: 1"));
    env.keys(&["rekey", "--all"]);
    assert_eq!(std::fs::read(&file).unwrap(), enc.raw_stdout);
}
