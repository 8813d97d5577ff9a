//! `keys import agenix`: make an agenix repository a keys repository in place.

use std::path::PathBuf;

use crate::error::Result;
use crate::layout::Repo;
use crate::ops::import;

use super::ui;

/// Make an existing repository a keys repository, in place.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    from: From,
}

#[derive(clap::Subcommand)]
enum From {
    /// From agenix: secrets.nix and the .age files it names.
    ///
    /// Evaluates the rules file with nix-instantiate, writes an admin
    /// (recipients/admins/NAME.pub) or host (recipients/hosts/NAME.yaml) for each
    /// distinct key — named after its `let` binding in the rules file where one can be
    /// read, else its comment, else its fingerprint; a key bound in a list named like
    /// `systems` or `hosts` (or commented root@…) is a host — and
    /// policies/imported-agenix.yaml with one rule per distinct reader set. Every .age
    /// file is recorded in secrets/keys.lock as it is: nothing is re-encrypted and no
    /// identity is needed. A file whose header names other keys than the rules file,
    /// a file the rules do not name, and a key that cannot be a host are reported.
    /// The rules file is left as it is, so agenix keeps working.
    Agenix {
        /// The agenix rules file (default: ./secrets.nix).
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
    },
    /// From sops: .sops.yaml creation rules and the sops files under secrets/.
    ///
    /// Each age recipient of the creation rules becomes an admin, named after its YAML
    /// anchor (`- &alice age1…`) where there is one (an age key cannot name a host,
    /// whose name is its SSH key: add hosts with `keys host add`, then point the rules
    /// at them). Each sops file under secrets/ takes the first creation rule whose
    /// path_regex matches it, as sops does; policies/imported-sops.yaml gets one rule
    /// per creation rule and format with its options; every file is recorded in
    /// secrets/keys.lock as it is. key_groups and pgp rules, and files no rule
    /// matches, are reported. .sops.yaml is left as it is, so sops keeps working.
    Sops {
        /// The sops configuration (default: ./.sops.yaml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = Repo::at(ctx.new_repo_root()?);
    let done = match args.from {
        From::Agenix { rules } => {
            let rules = rules.unwrap_or_else(|| repo.root().join("secrets.nix"));
            import::agenix(&repo, &rules)?
        }
        From::Sops { config } => {
            let config = config.unwrap_or_else(|| repo.root().join(".sops.yaml"));
            import::sops(&repo, &config)?
        }
    };
    let mut text = String::new();
    for a in &done.admins {
        text.push_str(&format!("admin     {a}\n"));
    }
    for h in &done.hosts {
        text.push_str(&format!("host      {h}\n"));
    }
    text.push_str(&format!(
        "policy    {} ({} rule{})\n",
        done.policy,
        done.rules,
        ui::plural(done.rules)
    ));
    text.push_str(&format!(
        "adopted   {} secret{} as they are\n",
        done.secrets.len(),
        ui::plural(done.secrets.len())
    ));
    for l in &done.left {
        text.push_str(&format!("left      {l}\n"));
    }
    ui::out(&text)
}
