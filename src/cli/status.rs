//! `keys status`: the fleet at a glance — admins, hosts and containers, each with
//! the recipients secrets are encrypted to.

use crate::error::Result;
use crate::ops::check;
use crate::policy::fleet::{Fleet, Host};

use super::{shared, ui};

/// Show the fleet: admins, hosts and containers with their recipients, and the secrets
/// with their readers and status.
#[derive(clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(ctx: &super::Context, _args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let fleet = Fleet::load(repo)?;
    let mut s = format!("fleet {}\n", repo.root().display());

    s.push_str(&format!("\nadmins ({})\n", fleet.admins.len()));
    for admin in &fleet.admins {
        for (i, r) in admin.recipients.iter().enumerate() {
            let name = if i == 0 { admin.name.as_str() } else { "" };
            s.push_str(&format!(
                "  {name:<14} {:<11} {}\n",
                r.kind(),
                r.fingerprint()
            ));
        }
    }

    let hosts: Vec<&Host> = fleet.hosts()?.collect();
    s.push_str(&format!("\nhosts ({})\n", hosts.len()));
    for host in &hosts {
        s.push_str(&format!(
            "  {:<14} ssh-ed25519 {}\n",
            host.name,
            host.key.fingerprint()
        ));
        s.push_str(&format!(
            "  {:<14} age         {}\n",
            "",
            host.key.to_x25519().unwrap_or_default()
        ));
        let mut deploy = Vec::new();
        if let Some(addr) = &host.address {
            deploy.push(format!("root@{addr}:{}", host.ssh_port));
        }
        if let Some(system) = &host.system {
            deploy.push(system.clone());
        }
        deploy.push(format!(".#{}", host.flake_attr));
        if let Some(p) = &host.persist {
            deploy.push(format!("persist {p}"));
        }
        s.push_str(&format!("  {:<14} deploy      {}\n", "", deploy.join(", ")));
    }

    let containers: Vec<_> = hosts
        .iter()
        .flat_map(|h| h.containers.iter().map(move |c| (h, c)))
        .collect();
    s.push_str(&format!("\ncontainers ({})\n", containers.len()));
    for (host, c) in containers {
        let how = if c.own_key.is_some() {
            "own key".to_string()
        } else {
            "host key, read-only bind mount".to_string()
        };
        s.push_str(&format!("  {:<14} on {} ({how})\n", c.name, host.name));
        s.push_str(&format!(
            "  {:<14} age         {}\n",
            "",
            c.key(host).to_x25519().unwrap_or_default()
        ));
    }
    let records = crate::ops::local::records(repo)?;
    let local: Vec<_> = records
        .iter()
        .flat_map(|r| r.secrets.iter().map(move |(name, e)| (r, name, e)))
        .collect();
    if !local.is_empty() {
        s.push_str(&format!(
            "\nlocal secrets ({}), kept only on their host\n",
            local.len()
        ));
        for (record, name, e) in local {
            s.push_str(&format!(
                "  {:<14} on {} at {}, set {} by {}\n",
                name, record.host, e.path, e.set, e.by
            ));
        }
    }
    let report = check::secrets(repo)?;
    s.push_str(&format!("\nsecrets ({})\n", report.secrets.len()));
    s.push_str(&shared::secrets_table(&report.secrets, "  ", false));
    let problems = report.problems();
    if problems > 0 {
        s.push_str(&format!(
            "\n{problems} problem{} found: run `keys check` for details\n",
            ui::plural(problems)
        ));
    }
    ui::out(&s)
}
