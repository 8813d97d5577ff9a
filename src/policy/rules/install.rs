//! How a rule's secrets are installed on the machines that read them, as `keys
//! export nix` declares it: where the decrypted file goes (`path`, agenix's
//! `symlink`), whether sops-nix decrypts it before users exist (`needed_for_users`),
//! and which systemd units are restarted or reloaded when it changes.

use super::*;

/// A rule's options for the machines that decrypt its secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Install {
    /// Units restarted when the secret changes (`nginx.service`).
    pub restart_units: Vec<String>,
    /// Units reloaded when the secret changes.
    pub reload_units: Vec<String>,
    /// sops-nix decrypts the secret before users are created (a password file).
    pub needed_for_users: bool,
    /// Where the decrypted file is, with `{name}` for the secret's name.
    pub path: Option<String>,
    /// agenix's `symlink`: `false` writes the file at `path` itself.
    pub symlink: Option<bool>,
}

impl Install {
    /// The path of the secret `name` on its machine, when the rule gives one.
    pub fn path_for(&self, name: &str) -> Option<String> {
        self.path.as_ref().map(|p| p.replace("{name}", name))
    }

    /// Whether the rule asks for units to be restarted or reloaded.
    pub fn touches_units(&self) -> bool {
        !self.restart_units.is_empty() || !self.reload_units.is_empty()
    }
}

/// The kinds of systemd unit a secret's change may restart or reload.
const UNIT_TYPES: [&str; 9] = [
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
    "slice",
];

/// A unit name as systemd takes one: `NAME.TYPE` or `NAME@INSTANCE.TYPE`, of
/// letters, digits and `:-_.\`, at most 255 bytes.
fn unit_name(name: &str) -> bool {
    let Some((stem, kind)) = name.rsplit_once('.') else {
        return false;
    };
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || ":-_.\\".contains(c))
    };
    let stem_ok = match stem.split_once('@') {
        Some((prefix, instance)) => plain(prefix) && (instance.is_empty() || plain(instance)),
        None => plain(stem),
    };
    name.len() <= 255 && UNIT_TYPES.contains(&kind) && stem_ok
}

/// A list of units as a rule or a template writes it.
pub(super) type Units = Option<Spanned<Vec<Spanned<String>>>>;

/// The `restart_units` and `reload_units` of a rule or a template, each entry a
/// unit name systemd takes, each kept once.
pub(super) fn units(
    restart: &Units,
    reload: &Units,
    line: &dyn Fn(u64) -> Location,
) -> Result<[Vec<String>; 2]> {
    let mut units = [Vec::new(), Vec::new()];
    for (i, (field, list)) in [("restart_units", restart), ("reload_units", reload)]
        .into_iter()
        .enumerate()
    {
        for unit in list.iter().flat_map(|l| &l.value) {
            if !unit_name(&unit.value) {
                return Err(invalid(
                    line(unit.referenced.line()),
                    format!(
                        "{field} entry {:?} is not a systemd unit name such as nginx.service",
                        unit.value
                    ),
                ));
            }
            if !units[i].contains(&unit.value) {
                units[i].push(unit.value.clone());
            }
        }
    }
    Ok(units)
}

/// A rule's `path:`: an absolute path of plain names, `{name}` standing for the
/// secret's name.
pub(super) fn install_path(path: &str) -> bool {
    let bare = path.replace("{name}", "n");
    bare.len() <= 1024
        && bare.starts_with('/')
        && bare[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && bare
            .chars()
            .all(|c| c.is_ascii_graphic() && !"\"\\$`'{}".contains(c))
}

/// The install options of a rule of `format` for the secrets `glob_text` matches,
/// read by `readers`, checked where each is written.
pub(super) fn install(
    raw: &RuleFile,
    format: Format,
    glob_text: &str,
    readers: &[Reader],
    line: &dyn Fn(u64) -> Location,
) -> Result<Install> {
    // A user's copy is home-manager's, in the user's own directory and owned by the
    // user: the system's options have nothing to say about it.
    if let Some(user) = readers.iter().find(|r| matches!(r, Reader::User { .. })) {
        let system = [
            (
                "restart_units",
                raw.restart_units.as_ref().map(|s| s.referenced.line()),
            ),
            (
                "reload_units",
                raw.reload_units.as_ref().map(|s| s.referenced.line()),
            ),
            (
                "needed_for_users",
                raw.needed_for_users.as_ref().map(|s| s.referenced.line()),
            ),
            ("path", raw.path.as_ref().map(|s| s.referenced.line())),
            ("symlink", raw.symlink.as_ref().map(|s| s.referenced.line())),
            (
                "owner",
                raw.owner.as_ref().map(|_| raw.secrets.referenced.line()),
            ),
            (
                "group",
                raw.group.as_ref().map(|_| raw.secrets.referenced.line()),
            ),
        ];
        if let Some((field, Some(at))) = system.into_iter().find(|(_, at)| at.is_some()) {
            return Err(invalid(
                line(at),
                format!(
                    "{field} applies to hosts and containers, and {} reads this rule through home-manager: give the user's secrets a rule of their own",
                    user.label()
                ),
            ));
        }
    }
    let [restart_units, reload_units] = units(&raw.restart_units, &raw.reload_units, line)?;
    let needed_for_users = match &raw.needed_for_users {
        Some(n) if n.value && format == Format::Age => {
            return Err(invalid(
                line(n.referenced.line()),
                "needed_for_users is sops-nix's option; agenix already decrypts an age secret before it creates users (remove it, or make the rule a sops format)",
            ));
        }
        Some(n) if n.value => {
            let owned = [("owner", &raw.owner), ("group", &raw.group)]
                .into_iter()
                .find(|(_, v)| v.as_deref().is_some_and(|v| v != "root"));
            if let Some((field, _)) = owned {
                return Err(invalid(
                    line(n.referenced.line()),
                    format!(
                        "needed_for_users: sops-nix decrypts the secret before users exist, so it belongs to root; remove {field}"
                    ),
                ));
            }
            true
        }
        _ => false,
    };
    let path = match &raw.path {
        Some(p) => {
            let at = line(p.referenced.line());
            if !install_path(&p.value) {
                return Err(invalid(
                    at,
                    format!(
                        "path {:?} is not an absolute path of plain names (such as /etc/app/token, with {{name}} for the secret's name)",
                        p.value
                    ),
                ));
            }
            let literal = !glob_text.contains(['*', '?', '[', '{', '\\']);
            if !literal && !p.value.contains("{name}") {
                return Err(invalid(
                    at,
                    format!(
                        "path {:?} has no {{name}}: every secret of {:?} would be installed at the same path",
                        p.value, raw.secrets.value
                    ),
                ));
            }
            Some(p.value.clone())
        }
        None => None,
    };
    let symlink = match &raw.symlink {
        Some(s) if format != Format::Age => {
            return Err(invalid(
                line(s.referenced.line()),
                "symlink is agenix's option and applies only to format age; sops-nix always links path to its own copy",
            ));
        }
        Some(s) => Some(s.value),
        None => None,
    };
    Ok(Install {
        restart_units,
        reload_units,
        needed_for_users,
        path,
        symlink,
    })
}

#[cfg(test)]
mod tests {
    use super::unit_name;

    #[test]
    fn unit_names_are_what_systemd_takes() {
        for ok in [
            "nginx.service",
            "worker@1.service",
            "getty@.service",
            "run-a\\x2db.mount",
            "backup.timer",
        ] {
            assert!(unit_name(ok), "{ok}");
        }
        for bad in [
            "nginx",
            "a b.service",
            ".service",
            "x.device2",
            "@1.service",
            "a;b.service",
        ] {
            assert!(!unit_name(bad), "{bad}");
        }
    }
}
