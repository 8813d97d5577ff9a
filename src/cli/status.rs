//! `keys status`: the fleet at a glance — the admins, each host's address, key and
//! secrets by status — in full with --long, or one host and what it reads with
//! --host.

use crate::error::Result;
use crate::ops::check::{self, Secret};
use crate::ops::readers::{self, Audience};
use crate::policy::fleet::{Fleet, Host};
use crate::policy::{Policy, Reader};

use super::json::{self, Whose};
use super::shared::{self, Counts};
use super::ui::{self, Table, plural};

/// Show the fleet at a glance: the admins, and each host's address, key and secrets
/// by status.
///
/// A host's secrets are those the policy gives it or one of its containers. The
/// summary fits the terminal (80 columns when stdout is not one, or $COLUMNS)
/// however large the fleet. --long adds each admin's, host's and container's keys
/// and settings and lists every secret with its status and readers; --host NAME
/// shows one host and the secrets it and its containers read. Needs no identity;
/// `keys check` explains each problem.
#[derive(clap::Args)]
#[command(after_long_help = json::status_schema())]
pub(crate) struct Args {
    /// Show every admin's, host's and container's keys and settings, and list every
    /// secret with its format, status and readers.
    #[arg(long)]
    long: bool,

    /// Show only this host, with its keys and settings, and list the secrets the
    /// policy gives it or its containers.
    #[arg(long, value_name = "NAME", add = super::complete::host_names())]
    host: Option<String>,

    /// Print JSON (version 1, described below) instead.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &super::Context, args: Args) -> Result<()> {
    let repo = ctx.repo()?;
    let listing = check::listing(repo)?;
    let (fleet, policy, report) = (&listing.fleet, &listing.policy, &listing.report);
    let focus = match &args.host {
        Some(name) => Some(fleet.require_host(name)?),
        None => None,
    };
    let view = View {
        hosts: match focus {
            Some(h) => vec![h],
            None => fleet.hosts()?.collect(),
        },
        secrets: match focus {
            Some(h) => report
                .secrets
                .iter()
                .filter(|s| gives(policy, s, &Whose::Host(h)))
                .collect(),
            None => report.secrets.iter().collect(),
        },
        counts: &|whose| {
            Counts::of(
                report
                    .secrets
                    .iter()
                    .filter(|s| gives(policy, s, whose))
                    .map(|s| s.status),
            )
        },
        policy,
        width: ui::width(),
    };
    let problems = report.problems();
    if args.json {
        let audience = Audience::new(policy, fleet);
        return json::print(&json::Fleetwide {
            version: json::VERSION,
            repository: repo.root().display().to_string(),
            admins: fleet
                .admins
                .iter()
                .map(|a| json::Admin {
                    name: a.name.clone(),
                    recipients: a.recipients.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            hosts: view
                .hosts
                .iter()
                .map(|h| json::Host::new(h, Some(view.counts)))
                .collect(),
            secrets: view
                .secrets
                .iter()
                .map(|s| json::Secret::new(s, policy, &audience))
                .collect(),
            totals: view.totals(),
            problems,
        });
    }
    let mut s = format!("fleet {}\n", repo.root().display());
    match focus {
        Some(host) => s.push_str(&view.one_host(host)),
        None if args.long => s.push_str(&view.long(fleet)),
        None => s.push_str(&view.summary(fleet)),
    }
    s.push_str(&local_secrets(
        repo,
        focus.map(|h| h.name.as_str()),
        focus.is_some() || args.long,
        view.width,
    )?);
    if problems > 0 {
        // Right under the summary's totals; after a table, apart from it.
        if focus.is_some() || args.long {
            s.push('\n');
        }
        s.push_str(&format!(
            "{problems} problem{} found: run `keys check` for details\n",
            plural(problems)
        ));
    }
    if focus.is_none() && !args.long {
        s.push_str(&ui::cut(
            "`keys status --long` lists every secret, `--host NAME` what a host reads",
            view.width,
        ));
        s.push('\n');
    }
    ui::out(&s)
}

/// The secrets `keys remote set` keeps only on their hosts, from the records: a table
/// (of one host's, with `only`), or in the summary one line counting them.
fn local_secrets(
    repo: &crate::layout::Repo,
    only: Option<&str>,
    table: bool,
    width: usize,
) -> Result<String> {
    let records = crate::ops::local::records(repo)?;
    let local: Vec<_> = records
        .iter()
        .filter(|r| only.is_none_or(|h| r.host == h))
        .flat_map(|r| r.secrets.iter().map(move |(name, e)| (r, name, e)))
        .collect();
    if local.is_empty() {
        return Ok(String::new());
    }
    if !table {
        let hosts = records.iter().filter(|r| !r.secrets.is_empty()).count();
        return Ok(format!(
            "{} local secret{} kept only on {hosts} host{} (`keys remote ls --host NAME`)\n",
            local.len(),
            plural(local.len()),
            plural(hosts)
        ));
    }
    let mut t = Table::new("  ");
    t.header(["LOCAL SECRET", "HOST", "PATH", "SET", "BY"]);
    t.cut_middle(2);
    for (record, name, e) in local {
        t.row([
            name.clone(),
            record.host.clone(),
            e.path.clone(),
            e.set.clone(),
            e.by.clone(),
        ]);
    }
    Ok(format!(
        "\nkept only on their host (keys remote)\n{}",
        t.render_to(width)
    ))
}

/// What is shown: the hosts and secrets (all, or one host's), and how to count the
/// secrets of a host or container.
struct View<'a> {
    hosts: Vec<&'a Host>,
    secrets: Vec<&'a Secret>,
    counts: &'a dyn Fn(&Whose) -> Counts,
    policy: &'a Policy,
    width: usize,
}

/// The width of the labels of a host's, container's or admin's details.
const LABEL: usize = "ssh-ed25519".len();

impl View<'_> {
    fn totals(&self) -> Counts {
        Counts::of(self.secrets.iter().map(|s| s.status))
    }

    /// The admins' names, a line for each host with its key and the statuses of its
    /// secrets (its containers' included), and the containers' names.
    fn summary(&self, fleet: &Fleet) -> String {
        let names: Vec<&str> = fleet.admins.iter().map(|a| a.name.as_str()).collect();
        let mut s = format!(
            "{}\n",
            ui::cut(
                &format!("admins ({}): {}", names.len(), names.join(", ")),
                self.width
            )
        );
        let containers = containers(&self.hosts);
        if !containers.is_empty() {
            let names: Vec<&str> = containers.iter().map(|(_, c)| c.name.as_str()).collect();
            s.push_str(&format!(
                "{}\n",
                ui::cut(
                    &format!(
                        "containers ({}, counted with their hosts): {}",
                        names.len(),
                        names.join(", ")
                    ),
                    self.width
                )
            ));
        }
        s.push_str(&format!("\nhosts ({})\n", self.hosts.len()));
        let mut table = Table::new("  ");
        table.header(["HOST", "ADDRESS", "KEY", "SECRETS"]);
        table.keep(0, 24);
        table.keep(1, 24);
        for host in &self.hosts {
            table.row([
                host.name.clone(),
                shared::address(host),
                host.key.lock_id(),
                (self.counts)(&Whose::Host(host)).to_string(),
            ]);
        }
        s.push_str(&table.render_to(self.width));
        s.push_str(&format!(
            "\nsecrets ({}): {}\n",
            self.secrets.len(),
            self.totals()
        ));
        s
    }

    /// Every admin's, host's and container's keys and settings, and every secret.
    fn long(&self, fleet: &Fleet) -> String {
        let mut s = format!("\nadmins ({})\n", fleet.admins.len());
        for admin in &fleet.admins {
            s.push_str(&format!("  {}\n", admin.name));
            let mut table = Table::new("    ");
            table.pad(0, LABEL);
            for r in &admin.recipients {
                table.row([r.kind().to_string(), r.fingerprint()]);
            }
            s.push_str(&table.render_to(self.width));
        }
        s.push_str(&format!("\nhosts ({})\n", self.hosts.len()));
        for host in &self.hosts {
            s.push_str(&format!("  {}\n", host.name));
            s.push_str(&self.host_details(host, "    "));
        }
        let containers = containers(&self.hosts);
        s.push_str(&format!("\ncontainers ({})\n", containers.len()));
        for (host, c) in containers {
            s.push_str(&format!("  {}\n", c.name));
            let mut table = Table::new("    ");
            table.pad(0, LABEL);
            match &c.own_key {
                Some(key) => {
                    table.row(["host".to_string(), format!("{} (own key)", host.name)]);
                    table.row([key.kind().to_string(), key.fingerprint()]);
                }
                None => table.row([
                    "host".to_string(),
                    format!("{} (host key, read-only bind mount)", host.name),
                ]),
            }
            table.row([
                "age".to_string(),
                c.key(host).to_x25519().unwrap_or_else(|| "-".into()),
            ]);
            table.row([
                "secrets".to_string(),
                (self.counts)(&Whose::Container(c)).to_string(),
            ]);
            s.push_str(&table.render_to(self.width));
        }
        s.push_str(&format!(
            "\nsecrets ({}): {}\n",
            self.secrets.len(),
            self.totals()
        ));
        s.push_str(&shared::secrets_table(&self.secrets, "  "));
        s
    }

    /// One host's keys and settings, and the secrets it and its containers read.
    fn one_host(&self, host: &Host) -> String {
        let mut s = format!("\nhost {}\n", host.name);
        s.push_str(&self.host_details(host, "  "));
        s.push_str(&format!(
            "\nsecrets {} and its containers read ({}): {}\n",
            host.name,
            self.secrets.len(),
            self.totals()
        ));
        let mut table = Table::new("  ");
        table.header(["NAME", "FORMAT", "STATUS", "READER"]);
        table.keep(0, shared::NAME_WIDTH);
        table.cut_middle(0);
        for secret in &self.secrets {
            let via: Vec<String> = rule_of(self.policy, secret)
                .map(|r| readers::on_host(r, host))
                .unwrap_or_default()
                .iter()
                .map(|r| r.label())
                .collect();
            table.row([
                secret.name.clone(),
                secret.format.map_or("?", |f| f.name()).to_string(),
                secret.status.name().to_string(),
                via.join(", "),
            ]);
        }
        s.push_str(&table.render_to(self.width));
        s
    }

    /// A host's keys, settings, containers and secrets, as rows of a two-column
    /// table whose lines start with `indent`.
    fn host_details(&self, host: &Host, indent: &'static str) -> String {
        let mut table = Table::new(indent);
        table.pad(0, LABEL);
        table.row([host.key.kind().to_string(), host.key.fingerprint()]);
        table.row([
            "age".to_string(),
            host.key.to_x25519().unwrap_or_else(|| "-".into()),
        ]);
        table.row(["address".to_string(), shared::address(host)]);
        if let Some(system) = &host.system {
            table.row(["system", system]);
        }
        table.row(["flake".to_string(), format!(".#{}", host.flake_attr)]);
        if let Some(p) = &host.persist {
            table.row(["persist", p]);
        }
        if !host.containers.is_empty() {
            let names: Vec<&str> = host.containers.iter().map(|c| c.name.as_str()).collect();
            table.row(["containers".to_string(), names.join(", ")]);
        }
        table.row([
            "secrets".to_string(),
            (self.counts)(&Whose::Host(host)).to_string(),
        ]);
        table.render_to(self.width)
    }
}

/// Every container of `hosts`, with its host.
fn containers<'a>(hosts: &[&'a Host]) -> Vec<(&'a Host, &'a crate::policy::fleet::Container)> {
    hosts
        .iter()
        .flat_map(|h| h.containers.iter().map(move |c| (*h, c)))
        .collect()
}

fn rule_of<'p>(policy: &'p Policy, secret: &Secret) -> Option<&'p crate::policy::Rule> {
    secret.rule.and_then(|i| policy.rules.get(i))
}

/// Whether the policy gives `secret` to a host (or one of its containers), or to a
/// container.
fn gives(policy: &Policy, secret: &Secret, whose: &Whose) -> bool {
    let Some(rule) = rule_of(policy, secret) else {
        return false;
    };
    match whose {
        Whose::Host(h) => !readers::on_host(rule, h).is_empty(),
        Whose::Container(c) => rule
            .readers
            .iter()
            .any(|r| matches!(r, Reader::Container(n) if *n == c.name)),
    }
}
