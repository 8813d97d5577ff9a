//! sops-nix templates whose secrets do not exist: `keys.nix` leaves such a template
//! out, so the file it describes would be missing on its machine.

use super::{Kind, Report};
use crate::ops::export::dangling_templates;
use crate::policy::Policy;

/// A problem for each template that embeds a secret of none of `report`'s files.
pub(super) fn dangling(report: &mut Report, policy: &Policy) {
    let secrets: Vec<_> = report
        .secrets
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.format?)))
        .collect();
    for d in dangling_templates(policy, &secrets) {
        let name = &d.template.name;
        let secret = d.secret;
        let make = if d.generated {
            format!("make it with `keys generate {secret}`")
        } else {
            format!("encrypt it with `keys encrypt {secret}`")
        };
        report.problem(
            Kind::Template,
            d.template.at.clone(),
            format!(
                "template {name} for {} embeds secret {secret}, and {} does not exist: keys.nix leaves the template out",
                d.template.reader.label(),
                d.path
            ),
            format!("{make}, or take {{{{ secret:{secret} }}}} out of template {name}"),
        );
    }
}
