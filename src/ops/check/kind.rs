//! What kind of thing a finding of `keys check` is: the stable names scripts read
//! (`keys check --json`).

/// What kind of thing a finding is: a stable name for scripts (`keys check --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fleet or policy file that does not load: nothing else can be checked.
    Policy,
    /// `secrets/keys.lock` is a symlink or does not parse.
    Lock,
    /// A symlink where keys reads secrets.
    Symlink,
    /// Plaintext where it must not be: a file of no secret format under `secrets/`,
    /// a non-empty `.gitkeep`, what an interrupted decrypt or edit left.
    Plaintext,
    /// Private key material in clear.
    PrivateKey,
    /// A temp file an interrupted write left (ciphertext).
    TempFile,
    /// A secret whose name is not allowed.
    InvalidName,
    /// Not a valid encrypted file of its format.
    Invalid,
    /// A secret file `keys.lock` does not list.
    Unlisted,
    /// A secret changed outside keys (its hash differs from `keys.lock`).
    Modified,
    /// A secret encrypted to other recipients or in another format than its policy says.
    Drift,
    /// A secret that no policy rule matches.
    NoRule,
    /// A secret `keys.lock` lists that is not on disk.
    Missing,
    /// A secret whose name makes it a directory of another's.
    Nesting,
    /// A generated host key's public half, or a host file's key, that does not match.
    StoredKey,
    /// An interrupted rekey or host key rotation.
    Interrupted,
    /// An export (`.sops.yaml`, `secrets.nix`, `keys.nix`) the policy has moved on from.
    StaleExport,
    /// A git ignore line that hides part of what keys keeps.
    Ignored,
    /// A pre-commit hook git no longer runs.
    Hook,
    /// A rule that matches no secret (a warning).
    UnusedRule,
    /// A key-group reader that cannot decrypt by itself (a warning).
    KeyGroups,
    /// A record of secrets kept only on a host (`recipients/local/`) that does not
    /// read, or names a host the fleet no longer has.
    LocalRecord,
    /// A secret whose value is older than its rule's `rotate_every` (a warning; a
    /// problem with `--strict`).
    RotationDue,
    /// A secret whose rule has `rotate_every` and whose lock line does not say when its
    /// value last changed (a warning).
    RotationUnknown,
    /// A secret whose value a reader taken away could read, not changed since (a
    /// warning; a problem with `--strict`).
    Exposed,
    /// A sops-nix template that embeds a secret that does not exist, which
    /// `keys.nix` leaves out.
    Template,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 26] = [
        Kind::Policy,
        Kind::Lock,
        Kind::Symlink,
        Kind::Plaintext,
        Kind::PrivateKey,
        Kind::TempFile,
        Kind::InvalidName,
        Kind::Invalid,
        Kind::Unlisted,
        Kind::Modified,
        Kind::Drift,
        Kind::NoRule,
        Kind::Missing,
        Kind::Nesting,
        Kind::StoredKey,
        Kind::Interrupted,
        Kind::StaleExport,
        Kind::Ignored,
        Kind::Hook,
        Kind::UnusedRule,
        Kind::KeyGroups,
        Kind::LocalRecord,
        Kind::RotationDue,
        Kind::RotationUnknown,
        Kind::Exposed,
        Kind::Template,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Policy => "policy",
            Kind::Lock => "lock",
            Kind::Symlink => "symlink",
            Kind::Plaintext => "plaintext",
            Kind::PrivateKey => "private-key",
            Kind::TempFile => "temp-file",
            Kind::InvalidName => "invalid-name",
            Kind::Invalid => "invalid",
            Kind::Unlisted => "unlisted",
            Kind::Modified => "modified",
            Kind::Drift => "drift",
            Kind::NoRule => "no-rule",
            Kind::Missing => "missing",
            Kind::Nesting => "nesting",
            Kind::StoredKey => "stored-key",
            Kind::Interrupted => "interrupted",
            Kind::StaleExport => "stale-export",
            Kind::Ignored => "ignored",
            Kind::Hook => "hook",
            Kind::UnusedRule => "unused-rule",
            Kind::KeyGroups => "key-groups",
            Kind::LocalRecord => "local-record",
            Kind::RotationDue => "rotation-due",
            Kind::RotationUnknown => "rotation-unknown",
            Kind::Exposed => "exposed",
            Kind::Template => "template",
        }
    }

    /// Whether `keys check --strict` fails on a warning of this kind: a value that is
    /// overdue, or that a reader taken away has seen.
    pub fn fails_strict(self) -> bool {
        matches!(self, Kind::RotationDue | Kind::Exposed)
    }
}
