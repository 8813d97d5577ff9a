//! The records of secrets kept only on hosts (`recipients/local/HOST.yaml`).

use super::kind::Kind;
use super::report::Report;
use crate::layout;
use crate::policy::{self, Fleet};
use crate::snapshot::{Blob, Snapshot};

/// The records of secrets kept only on hosts (`recipients/local/HOST.yaml`): each
/// must read, name only paths under its root, and belong to a host of the fleet.
pub(super) fn records(files: &Snapshot, fleet: Option<&Fleet>, report: &mut Report) {
    use crate::policy::local::{self, Record};
    let prefix = format!("{}/", local::DIR);
    for (rel, blob) in files.under(local::DIR) {
        let host = rel
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".yaml"))
            .filter(|h| layout::check_name(h).is_ok());
        let Some(host) = host else {
            report.problem(
                Kind::LocalRecord,
                rel,
                "is not a host's record (recipients/local/HOST.yaml)",
                "move or remove it: keys reads only HOST.yaml files there",
            );
            continue;
        };
        let data = match blob {
            Blob::Symlink => {
                report.problem(
                    Kind::Symlink,
                    rel,
                    "is a symlink",
                    "replace it with the file itself",
                );
                continue;
            }
            Blob::File(data) => data,
        };
        let parsed = policy::text_of(rel, data).and_then(|t| Record::parse(host, t, rel));
        if let Err(e) = parsed {
            report.problem(
                Kind::LocalRecord,
                "",
                e.to_string(),
                "fix the line named (keys remote set and rm rewrite this file)",
            );
            continue;
        }
        if let Some(fleet) = fleet
            && !fleet.has_host(host)
        {
            report.problem(
                Kind::LocalRecord,
                rel,
                format!("records local secrets of host {host}, which has no host file"),
                format!("add the host back, or remove {rel} once its secrets are gone from it"),
            );
        }
    }
}
