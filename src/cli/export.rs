//! `keys export`: the policy as `.sops.yaml`, agenix `secrets.nix` and the NixOS
//! modules of `keys.nix`.

use std::path::PathBuf;

use crate::error::Result;
use crate::fsutil;
use crate::ops::check;
use crate::ops::export::Export;
use crate::ops::workspace::Hosts;

use super::{shared, ui};

/// Write the policy as another tool's configuration.
///
/// sops-config writes .sops.yaml creation rules for the sops-format rules, so
/// `sops edit secrets/NAME.yaml` encrypts for the same readers. agenix-rules writes
/// secrets.nix listing every .age secret with its readers' keys, for `agenix -e`.
/// nix writes keys.nix, a NixOS module per host for agenix and sops-nix; colmena
/// writes colmena-keys.nix, each host's deployment.keys for the secrets of
/// `upload: true` rules. All are deterministic and start with a marker line; `keys check` reports an
/// exported file that no longer matches the policy.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[arg(value_enum)]
    what: What,

    /// Write here instead of the repository root's .sops.yaml, secrets.nix, keys.nix or
    /// colmena-keys.nix ("-" for stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    /// .sops.yaml creation rules.
    SopsConfig,
    /// agenix secrets.nix.
    AgenixRules,
    /// keys.nix: one NixOS module per host declaring its agenix and sops-nix secrets,
    /// templates, identity paths and container key bind mounts, and one home-manager
    /// module per user:NAME@HOST reader.
    Nix,
    /// colmena-keys.nix: one colmena module per host declaring deployment.keys for
    /// the secrets of `upload: true` rules it reads, each made by `keys decrypt NAME`
    /// at deploy time and uploaded as the last segment of its name.
    Colmena,
    /// Rewrite each keys-made export that exists and no longer matches, printing the
    /// files rewritten (what the git hooks run to regenerate the exports of a merge).
    Refresh,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let ws = ctx.workspace(Hosts::All)?;
    let export = match args.what {
        What::SopsConfig => Export::SopsConfig,
        What::AgenixRules => Export::AgenixRules,
        What::Nix => Export::Nix,
        What::Colmena => Export::Colmena,
        What::Refresh => {
            let rewritten = crate::ops::export::refresh(repo)?;
            let text: String = rewritten
                .iter()
                .map(|e| format!("{}\n", e.file()))
                .collect();
            return ui::out(&text);
        }
    };
    let secrets: Vec<_> = check::secrets(repo)?
        .secrets
        .into_iter()
        .filter_map(|s| Some((s.name, s.format?)))
        .collect();
    let text = export.render(&ws.policy, &ws.fleet, &secrets)?;
    if export == Export::Nix {
        for d in crate::ops::export::dangling_templates(&ws.policy, &secrets) {
            ui::warn(&format!(
                "{}: template {} left out of keys.nix: it embeds {}, and {} does not exist",
                d.template.at, d.template.name, d.secret, d.path
            ));
        }
    }
    match args.output {
        Some(p) if p.as_os_str() == "-" => ui::out(&text),
        Some(p) => {
            shared::refuse_special_output(&p)?;
            fsutil::write_atomic(&p, text.as_bytes(), fsutil::PUBLIC)
        }
        None => {
            let path = repo.root().join(export.file());
            fsutil::write_atomic(&path, text.as_bytes(), fsutil::PUBLIC)?;
            ui::note(&format!("wrote {}", export.file()));
            Ok(())
        }
    }
}
