use super::GoRegex;

/// What Go's `regexp.MatchString(pattern, text)` answers, from the RE2 syntax
/// as Go documents it (regexp/syntax) and its parser's rules.
#[test]
fn patterns_match_as_go_matches_them() {
    #[rustfmt::skip]
    let table: &[(&str, &str, bool)] = &[
        // \b, \w, \d, \s are ASCII.
        (r"\bpass", "épass", true),
        (r"\bpass", "pass", true),
        (r"\bpass", "xpass", false),
        (r"\bpass", "über_pass", false),
        (r"\bpass", "über-pass", true),
        (r"^\w+$", "épass", false),
        (r"^\w+$", "pass_1", true),
        (r"\W", "é", true),
        (r"^\W$", "é", true),
        (r"\d", "٣", false),
        (r"\D", "٣", true),
        (r"\s", "\u{a0}", false),
        (r"\s", "\u{b}", false),
        (r"\s", "\u{c}", true),
        (r"\S", "\u{2003}", true),
        (r"é\B", "éé", true),
        (r"a\Bb", "a-b", false),
        (r"\B", "aéb", false),
        (r"\B", "é", true),
        (r"^.$", "é", true),
        (r"^..$", "é", false),
        (r"^.$", "\n", false),
        (r"(?s)^.$", "\n", true),
        // Perl classes and case folding: (?i)\w holds ſ and K (Kelvin).
        (r"(?i)^\w$", "ſ", true),
        (r"(?i)^\w$", "\u{212a}", true),
        (r"(?i)^\W$", "ſ", false),
        (r"(?i)^[\W]$", "ſ", false),
        (r"(?i)^[^\w]$", "ſ", false),
        (r"^[^\w]$", "ſ", true),
        (r"(?i)k", "\u{212a}", true),
        (r"(?i)^[k]$", "K", true),
        (r"(?i)^[^k]$", "K", false),
        // POSIX classes are ASCII, valid only inside brackets.
        (r"^[[:alpha:]]+$", "pass", true),
        (r"^[[:alpha:]]+$", "épass", false),
        (r"^[[:^alpha:]]$", "é", true),
        (r"[[:space:]]", "\u{b}", true),
        (r"^[[:word:]]+$", "a_1", true),
        (r"[:alpha:]", "h", true),
        (r"[:alpha:]", "b", false),
        // \Q…\E, octal, hex and other escapes.
        (r"\Qa.b\E", "a.b", true),
        (r"\Qa.b\E", "axb", false),
        (r"\Qa.b", "za.b", true),
        (r"\Q\\E", "\\", true),
        (r"^\Qab\E+$", "abbb", true),
        (r"\123", "S", true),
        (r"\0", "\0", true),
        (r"\08", "\u{0}8", true),
        (r"\141", "a", true),
        (r"\x41", "A", true),
        (r"\x{263a}", "☺", true),
        (r"\x{D800}", "\u{fffd}", false),
        (r"[\012-\015]", "\r", true),
        (r"\a\f\v", "\u{7}\u{c}\u{b}", true),
        (r"\<", "<", true),
        (r"\<a", "a", false),
        (r"a\>", "a>", true),
        (r"\_", "_", true),
        (r"\ ", " ", true),
        (r"\#", "#", true),
        // Braces that are not a repetition are literals.
        (r"a{,2}", "a{,2}", true),
        (r"a{,2}", "aa", false),
        (r"a{2", "a{2", true),
        (r"a{02}", "a{02}", true),
        (r"^a{2}$", "aa", true),
        (r"^a{2,}$", "aaa", true),
        (r"^a{0}$", "", true),
        (r"{", "{", true),
        (r"x{1001", "x{1001", true),
        // Bracket classes as Go reads them.
        (r"[a[bc]]", "[]", true),
        (r"[a[bc]]", "b]", true),
        (r"[a[bc]]", "b", false),
        (r"[a&&b]", "&", true),
        (r"[a~~b]", "~", true),
        (r"^[]a]$", "]", true),
        (r"^[^]a]$", "b", true),
        (r"^[a-]$", "-", true),
        (r"^[\d-z]$", "-", true),
        (r"^[^a]$", "\n", true),
        (r"^[α-ε]$", "γ", true),
        // Anchors and flags.
        (r"^b", "a\nb", false),
        (r"(?m)^b", "a\nb", true),
        (r"a$", "a\n", false),
        (r"(?m)a$", "a\nb", true),
        (r"\Aa", "ba", false),
        (r"a\z", "a", true),
        (r"(?i)PASS", "pass", true),
        (r"(?i:P)ASS", "pASS", true),
        (r"(?i:P)ASS", "pass", false),
        (r"(?i)p(?-i)ASS", "PASS", true),
        (r"(?i)p(?-i)ASS", "Pass", false),
        (r"a(?i)b|c", "C", true),
        (r"(a(?i)b)c", "aBC", false),
        (r"(?ii-i)a", "A", false),
        (r"(?)a", "a", true),
        (r"(?U)a+", "aaa", true),
        (r"a*?", "", true),
        (r"(?P<name>pass)", "pass", true),
        (r"(?<name>pass)", "pass", true),
        (r"(?P<1>x)(?P<1>y)", "xy", true),
        // Unicode classes.
        (r"^\pL+$", "épass", true),
        (r"^\p{L}+$", "épass", true),
        (r"^\p{Greek}$", "α", true),
        (r"^\p{greek}$", "α", true),
        (r"^\p{^Greek}$", "α", false),
        (r"^\P{Greek}$", "a", true),
        (r"^\p{Lu}$", "É", true),
        (r"(?i)^\p{Lu}$", "é", true),
        (r"^\p{Uppercase_Letter}$", "É", true),
        (r"^\p{Any}$", "\n", true),
        (r"^\p{Yi}$", "ꀀ", true),
        (r"^\p{Uppercase_Letter}$", "É", true),
        (r"^\p{uppercase-letter}$", "É", true),
        (r"^\p{lc}$", "a", true),
        (r"^\p{ASCII}$", "a", true),
        (r"^\p{Assigned}$", "a", true),
        (r"^\p{Cn}$", "a", false),
        (r"\pN", "٣", true),
        (r"^[\p{Greek}\d]+$", "α1", true),
        // Alternation and empties.
        (r"a|", "b", true),
        (r"", "x", true),
        (r"(|a)b", "b", true),
        (r"^(?:a|b)+$", "abba", true),
        (r"x*", "", true),
        (r"a**", "", false),
    ];
    for (pattern, text, want) in table {
        let re = GoRegex::as_sops_uses(pattern).unwrap();
        assert_eq!(re.is_match(text), *want, "{pattern:?} on {text:?}");
    }
}

/// What Go's `regexp.Compile` refuses, with its error.
#[test]
fn patterns_go_refuses_are_refused() {
    #[rustfmt::skip]
    let table: &[(&str, &str)] = &[
        (r"(a)\1", "invalid escape sequence: `\\1` (a backreference"),
        (r"\8", "invalid escape sequence: `\\8`"),
        (r"(?=pass)", "invalid or unsupported Perl syntax: `(?=` (lookahead"),
        (r"(?!pass)", "invalid or unsupported Perl syntax: `(?!`"),
        (r"(?<=a)b", "invalid named capture: `(?<=a)b` (lookbehind"),
        (r"(?<!a)>b", "invalid named capture: `(?<!a)>`"),
        (r"(?>a)", "invalid or unsupported Perl syntax: `(?>`"),
        (r"a++", "invalid nested repetition operator: `++` (a possessive"),
        (r"a*+", "invalid nested repetition operator: `*+`"),
        (r"a**", "invalid nested repetition operator: `**`"),
        (r"a{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
        (r"a*??", "invalid nested repetition operator: `*??`"),
        (r"(?x)a b", "invalid or unsupported Perl syntax: `(?x`"),
        (r"(?u)a", "invalid or unsupported Perl syntax: `(?u`"),
        (r"(?i-)a", "invalid or unsupported Perl syntax: `(?i-)`"),
        (r"(?--i)a", "invalid or unsupported Perl syntax: `(?--`"),
        (r"(?#c)", "invalid or unsupported Perl syntax: `(?#`"),
        (r"(?P=n)", "invalid or unsupported Perl syntax: `(?P`"),
        (r"(?P<>a)", "invalid named capture: `(?P<>`"),
        (r"(?P<a b>x)", "invalid named capture: `(?P<a b>`"),
        (r"(?P<é>x)", "invalid named capture"),
        (r"\C", "invalid escape sequence: `\\C`"),
        (r"\Z", "invalid escape sequence: `\\Z`"),
        (r"\e", "invalid escape sequence: `\\e`"),
        (r"\h", "invalid escape sequence: `\\h`"),
        (r"\u0041", "invalid escape sequence: `\\u`"),
        (r"\x4", "invalid escape sequence"),
        (r"\x{}", "invalid escape sequence: `\\x{}`"),
        (r"\x{110000}", "invalid escape sequence"),
        (r"\é", "invalid escape sequence: `\\é`"),
        (r"[\b]", "invalid escape sequence: `\\b`"),
        (r"a\", "trailing backslash at end of expression: ``"),
        (r"\p{Garay}", "invalid character class range: `\\p{Garay}`"),
        (r"\p{Canadian_Aboriginal}", "invalid character class range: `\\p{Canadian_Aboriginal}`"),
        (r"\p{Old_Italic}", "invalid character class range"),
        (r"\p{SignWriting}", "invalid character class range"),
        (r"\p{Grek}", "invalid character class range"),
        (r"\p{Emoji}", "invalid character class range: `\\p{Emoji}`"),
        (r"\p{sc=Greek}", "invalid character class range"),
        (r"\pé", "invalid character class range: `\\pé`"),
        (r"\p{L", "invalid character class range: `\\p{L`"),
        (r"[[:foo:]]", "invalid character class range: `[:foo:]`"),
        (r"[z-a]", "invalid character class range: `z-a`"),
        (r"[a--b]", "invalid character class range: `a--`"),
        (r"[a", "missing closing ]: `[a`"),
        (r"[]", "missing closing ]: `[]`"),
        (r"(a", "missing closing ): `(a`"),
        (r"a)", "unexpected ): `a)`"),
        (r"*a", "missing argument to repetition operator: `*`"),
        (r"(?i)*", "missing argument to repetition operator: `*`"),
        (r"a|*", "missing argument to repetition operator: `*`"),
        (r"{2}", "missing argument to repetition operator: `{2}`"),
        (r"\Q\E*", "missing argument to repetition operator: `*`"),
        (r"a{1001}", "invalid repeat count: `{1001}`"),
        (r"a{2,1}", "invalid repeat count: `{2,1}`"),
        (r"x{9876543210}", "invalid repeat count"),
        (r"(?:[a-z]{4}){0,251}", "invalid repeat count: `{0,251}`"),
        (r"((((((((((x{2}){2}){2}){2}){2}){2}){2}){2}){2}){2})", "invalid repeat count"),
    ];
    for (pattern, want) in table {
        let err = GoRegex::new(pattern).expect_err(pattern);
        assert!(err.starts_with(want), "{pattern:?}: {err}");
        assert!(
            !GoRegex::as_sops_uses(pattern).unwrap().is_match(""),
            "{pattern:?}"
        );
    }
    let deep = format!("{}{}", "(".repeat(1000), ")".repeat(1000));
    assert!(
        GoRegex::new(&deep)
            .unwrap_err()
            .starts_with("expression nests too deeply")
    );
    for ok in [
        format!("{}{}", "(".repeat(999), ")".repeat(999)),
        format!("{}{}", "(?:".repeat(999), ")*".repeat(999)),
        format!("({})", "|".repeat(12345)),
        "(?:[a-z]{4}){0,250}".into(),
        "((((((((((x{2}){2}){2}){2}){2}){2}){2}){2}){2}))".into(),
        format!("{}a{}", "(?:".repeat(5000), ")".repeat(5000)),
    ] {
        GoRegex::new(&ok).unwrap_or_else(|e| panic!("{}: {e}", &ok[..20]));
    }
    let large = r"\pL".repeat(27000);
    assert_eq!(GoRegex::new(&large).unwrap_err(), "expression too large");
}
