//! A rule's `generate:`, how `keys generate` makes the values of its secrets: random
//! text of an alphabet, a passphrase, a key pair whose public half is kept in clear,
//! or a crypt hash with its clear password kept for the admins.

use super::*;

/// How the value of a secret is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// `length` letters and digits.
    Alnum { length: usize },
    /// `bytes` random bytes as `2 × bytes` lowercase hex digits.
    Hex { bytes: usize },
    /// `bytes` random bytes in standard base64, padded.
    Base64 { bytes: usize },
    /// `words` words of the EFF long list, separated by spaces.
    Passphrase { words: usize },
    /// An OpenSSH ed25519 private key.
    SshEd25519,
    /// A WireGuard (X25519) private key, as `wg genkey` writes it.
    WireGuard,
    /// An age X25519 identity, as `age-keygen` writes it.
    Age,
    /// A SHA-512 crypt hash (`$6$`) of a new passphrase, the clear passphrase
    /// kept as the admins' secret [`CLEAR_SUFFIX`].
    HashedPassword,
}

/// The suffix of the name of a hashed password's clear passphrase: `web/root` holds
/// the hash its host reads, `web/root.clear` the passphrase, for the admins only.
pub const CLEAR_SUFFIX: &str = ".clear";

/// The kinds, as `generate: {kind: …}` names them.
pub const KINDS: [&str; 8] = [
    "alnum",
    "hex",
    "base64",
    "passphrase",
    "ssh-ed25519",
    "wireguard",
    "age",
    "hashed-password",
];

/// The fewest and most characters (alnum) or bytes (hex, base64) a rule may ask for.
const LENGTHS: std::ops::RangeInclusive<i64> = 8..=4096;
/// The fewest and most words of a passphrase.
const WORDS: std::ops::RangeInclusive<i64> = 4..=64;
/// What a rule that gives no `length` or `words` gets.
const DEFAULT_LENGTH: usize = 32;
const DEFAULT_WORDS: usize = 6;

impl Generator {
    /// The kind as a policy names it.
    pub fn kind(self) -> &'static str {
        match self {
            Generator::Alnum { .. } => "alnum",
            Generator::Hex { .. } => "hex",
            Generator::Base64 { .. } => "base64",
            Generator::Passphrase { .. } => "passphrase",
            Generator::SshEd25519 => "ssh-ed25519",
            Generator::WireGuard => "wireguard",
            Generator::Age => "age",
            Generator::HashedPassword => "hashed-password",
        }
    }

    /// Whether the value is a key pair's private half, its public half kept in clear
    /// beside the secret (`secrets/NAME.pub`).
    pub fn has_public_half(self) -> bool {
        matches!(
            self,
            Generator::SshEd25519 | Generator::WireGuard | Generator::Age
        )
    }
}

/// `generate:` as a policy file writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GenerateFile {
    kind: Spanned<String>,
    #[serde(default)]
    length: Option<Spanned<i64>>,
    #[serde(default)]
    words: Option<Spanned<i64>>,
}

/// A rule's `generate:` checked against its format: a generated value is the whole
/// secret, so only formats age and sops-binary take one.
pub(super) fn generator(
    raw: &Spanned<GenerateFile>,
    format: Format,
    line: &dyn Fn(u64) -> Location,
) -> Result<Generator> {
    let g = &raw.value;
    let at = line(g.kind.referenced.line());
    if !matches!(format, Format::Age | Format::SopsBinary) {
        return Err(invalid(
            line(raw.referenced.line()),
            format!(
                "generate applies only to formats age and sops-binary (a generated value is the whole secret), not {}",
                format.name()
            ),
        ));
    }
    let kind = g.kind.value.as_str();
    let sized = matches!(kind, "alnum" | "hex" | "base64");
    if let Some(l) = &g.length
        && !sized
    {
        return Err(invalid(
            line(l.referenced.line()),
            format!("length applies only to generate kinds alnum, hex and base64, not {kind}"),
        ));
    }
    if let Some(w) = &g.words
        && kind != "passphrase"
    {
        return Err(invalid(
            line(w.referenced.line()),
            format!("words applies only to generate kind passphrase, not {kind}"),
        ));
    }
    let within = |n: &Option<Spanned<i64>>,
                  range: std::ops::RangeInclusive<i64>,
                  what: &str,
                  default: usize|
     -> Result<usize> {
        match n {
            None => Ok(default),
            Some(n) if range.contains(&n.value) => Ok(n.value as usize),
            Some(n) => Err(invalid(
                line(n.referenced.line()),
                format!(
                    "generate {what} {} for {kind} is not between {} and {}",
                    n.value,
                    range.start(),
                    range.end()
                ),
            )),
        }
    };
    Ok(match kind {
        "alnum" => Generator::Alnum {
            length: within(&g.length, LENGTHS, "length", DEFAULT_LENGTH)?,
        },
        "hex" => Generator::Hex {
            bytes: within(&g.length, LENGTHS, "length", DEFAULT_LENGTH)?,
        },
        "base64" => Generator::Base64 {
            bytes: within(&g.length, LENGTHS, "length", DEFAULT_LENGTH)?,
        },
        "passphrase" => Generator::Passphrase {
            words: within(&g.words, WORDS, "words", DEFAULT_WORDS)?,
        },
        "ssh-ed25519" => Generator::SshEd25519,
        "wireguard" => Generator::WireGuard,
        "age" => Generator::Age,
        "hashed-password" => Generator::HashedPassword,
        other => {
            return Err(invalid(
                at,
                format!(
                    "unknown generate kind {other:?}; expected one of {}",
                    KINDS.join(", ")
                ),
            ));
        }
    })
}
