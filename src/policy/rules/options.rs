//! The checks of a rule's options that are not its glob, format or readers: owner
//! and mode, a disk encryption key's installer path, colmena's upload options, an
//! OpenBao destination, an indent and how often its secrets are rotated.

use super::*;

/// A rule's `openbao:` destination: a KV v2 mount, and a path under it in which
/// `{name}` stands for the secret's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenBaoTarget {
    pub mount: String,
    pub path: String,
}

impl OpenBaoTarget {
    /// The path under the mount for the secret `name`.
    pub fn path_for(&self, name: &str) -> String {
        self.path.replace("{name}", name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenBaoFile {
    pub(super) mount: Spanned<String>,
    pub(super) path: Spanned<String>,
}

/// A segment list as OpenBao paths take them: not empty, no empty, `.` or `..`
/// segment, and only letters, digits and `_-.@+=:` (with `{name}` where allowed).
pub(super) fn openbao_path(text: &str, what: &str) -> std::result::Result<(), String> {
    let bare = text.replace("{name}", "n");
    let plain = !bare.is_empty()
        && bare.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.@+=:".contains(c))
        });
    if !plain {
        return Err(format!(
            "openbao {what} {text:?} is not a path OpenBao takes: segments of letters, digits and _-.@+=: separated by single '/'{}",
            if what == "path" {
                ", with {name} for the secret's name"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Where an uploaded secret goes on its host (colmena's `destDir` and `uploadAt`);
/// `None` leaves colmena's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upload {
    pub dest_dir: Option<String>,
    pub upload_at: Option<String>,
}

/// colmena's `uploadAt` values.
pub const UPLOAD_AT: [&str; 2] = ["pre-activation", "post-activation"];

/// A user or group name as NixOS accepts one.
pub(super) fn account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// `400`, `0400` or `0o400` as four octal digits; `None` for anything else.
pub(super) fn file_mode(text: &str) -> Option<String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return None;
    }
    let value = u32::from_str_radix(digits, 8).ok()?;
    Some(format!("{value:04o}"))
}

/// A rule's `disk_encryption_key:`, the absolute path on the installer where disko
/// reads the key: plain segments of printable characters other than a quote or `\`
/// (nixos-anywhere quotes it for a remote shell). Only a secret whose plaintext is
/// the key itself (age, sops-binary) can be one.
pub(super) fn disk_key_path(format: Format, path: &str) -> std::result::Result<String, String> {
    if !matches!(format, Format::Age | Format::SopsBinary) {
        return Err(format!(
            "disk_encryption_key applies only to formats age and sops-binary (the key is the whole secret), not {}",
            format.name()
        ));
    }
    let plain = path.len() <= 1024
        && path.starts_with('/')
        && path[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && path
            .chars()
            .all(|c| c.is_ascii_graphic() && !"'\"\\`$".contains(c));
    if !plain {
        return Err(format!(
            "disk_encryption_key {path:?} is not an absolute path of plain names (such as /tmp/disk.key)"
        ));
    }
    Ok(path.to_string())
}

/// A rule's `upload:`, `dest_dir:` and `upload_at:`: the last two only with
/// `upload: true`, `dest_dir` an absolute path of plain names, `upload_at` one of
/// colmena's two moments.
pub(super) fn upload(raw: &RuleFile, line: &dyn Fn(u64) -> Location) -> Result<Option<Upload>> {
    let on = raw.upload.as_ref().is_some_and(|u| u.value);
    if !on {
        let given = [
            (
                "dest_dir",
                raw.dest_dir.as_ref().map(|d| d.referenced.line()),
            ),
            (
                "upload_at",
                raw.upload_at.as_ref().map(|u| u.referenced.line()),
            ),
        ];
        if let Some((field, Some(at))) = given.into_iter().find(|(_, at)| at.is_some()) {
            return Err(invalid(
                line(at),
                format!("{field} applies only to a rule with upload: true"),
            ));
        }
        return Ok(None);
    }
    let dest_dir = match &raw.dest_dir {
        Some(d) => {
            let path = &d.value;
            let plain = path.len() <= 1024
                && path.starts_with('/')
                && path[1..]
                    .split('/')
                    .all(|s| !s.is_empty() && s != "." && s != "..")
                && path
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !"\"\\$`".contains(c));
            if !plain {
                return Err(invalid(
                    line(d.referenced.line()),
                    format!(
                        "dest_dir {path:?} is not an absolute path of plain names (such as /run/keys)"
                    ),
                ));
            }
            Some(path.clone())
        }
        None => None,
    };
    let upload_at = match &raw.upload_at {
        Some(u) if UPLOAD_AT.contains(&u.value.as_str()) => Some(u.value.clone()),
        Some(u) => {
            return Err(invalid(
                line(u.referenced.line()),
                format!(
                    "upload_at {:?} is not {} or {}",
                    u.value, UPLOAD_AT[0], UPLOAD_AT[1]
                ),
            ));
        }
        None => None,
    };
    Ok(Some(Upload {
        dest_dir,
        upload_at,
    }))
}

/// A rule's `indent:` as `.sops.yaml`'s `stores.<format>.indent` takes it: the YAML
/// emitter indents by 2 to 9 spaces (and writes 2 for any other number), Go's JSON
/// by any number, 0 writing one value a line without indentation.
pub(super) fn check_indent(format: Format, indent: i64) -> std::result::Result<u8, String> {
    let range = match format {
        Format::SopsYaml => 2..=9,
        Format::SopsJson | Format::SopsBinary => 0..=16,
        _ => return Err("indent applies only to sops-yaml, sops-json and sops-binary".into()),
    };
    u8::try_from(indent)
        .ok()
        .filter(|i| range.contains(i))
        .ok_or_else(|| {
            format!(
                "indent {indent} for {}: sops writes {} to {} spaces",
                format.name(),
                range.start(),
                range.end()
            )
        })
}

/// Why a rule's indentation cannot stand beside another rule's of the same format.
pub(super) fn indent_conflict(
    format: Format,
    other: &Location,
    other_indent: Option<u8>,
) -> String {
    let theirs = match other_indent {
        Some(n) => format!("indent {n}"),
        None => "sops's default indentation".into(),
    };
    format!(
        "the {} rule at {other} has {theirs}; sops has one indentation per format (`stores:` in .sops.yaml), so every {} rule needs the same `indent:`",
        format.name(),
        format.name()
    )
}

/// How often a rule's secrets are to get a new value (`rotate_every: 90d`): a whole
/// number of days, weeks or years (of 365 days). Months are not taken: their length
/// varies, and `m` reads as minutes elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// As the rule writes it (`90d`).
    pub text: String,
    pub days: u64,
}

/// The longest period taken: a hundred years.
const MAX_DAYS: u64 = 36_500;

impl Period {
    pub fn parse(text: &str) -> std::result::Result<Period, String> {
        let bad = || {
            format!(
                "rotate_every {text:?} is not a period: a whole number of days, weeks or years, such as 90d, 12w or 1y"
            )
        };
        let Some((last, _)) = text.char_indices().last() else {
            return Err(bad());
        };
        let (count, unit) = text.split_at(last);
        let per = match unit {
            "d" => 1,
            "w" => 7,
            "y" => 365,
            _ => return Err(bad()),
        };
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let days = count
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(per))
            .ok_or_else(bad)?;
        if days == 0 || days > MAX_DAYS {
            return Err(format!(
                "rotate_every {text:?} is not between one day and a hundred years"
            ));
        }
        Ok(Period {
            text: text.to_string(),
            days,
        })
    }

    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.days * 86_400)
    }
}
