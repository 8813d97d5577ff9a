//! `keys container add`: a NixOS container joining one of the fleet's hosts, declared
//! in its host's file with that file's comments kept. A container shares its host's
//! key, or has one of its own, generated here and stored like a host's.

use crate::crypto::keygen;
use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::layout::{self, Repo};
use crate::ops::host::{
    Effect, Report, apply_key_secret, name_error, plan_key_secret, refuse_taken,
};
use crate::ops::workspace::{Hosts, Workspace};
use crate::policy::{fleet, host_file};
use crate::recipient::Recipient;

pub struct ContainerSpec {
    pub name: String,
    pub host: String,
    /// Generate a key of its own instead of sharing the host's.
    pub own_key: bool,
}

/// Adds a container to its host's file, keeping the file's other content and
/// comments. With `own_key`, a new key pair: the public key in the container's entry,
/// the private key as secret `hosts/HOST/containers/NAME/ssh_host_ed25519_key`.
pub fn add_container(repo: &Repo, spec: ContainerSpec) -> Result<Report> {
    layout::check_name(&spec.name).map_err(name_error("container name", &spec.name))?;
    layout::check_name(&spec.host).map_err(name_error("host name", &spec.host))?;
    let mut ws = Workspace::load_writable(repo, Hosts::All)?;
    if !ws.fleet.has_host(&spec.host) {
        return Err(fleet::no_host(&spec.host));
    }
    refuse_taken(&ws, &spec.name)?;
    let file = repo.host_file(&spec.host);
    let rel = repo.rel(&file);
    let old = host_file::read(&file, &rel)?;
    let (public, private) = if spec.own_key {
        let (public, private) = keygen::ssh_ed25519(&format!("root@{}", spec.name))?;
        (Some(public), Some(private))
    } else {
        (None, None)
    };
    let text = host_file::insert_container(&old, &rel, &spec.name, public.as_ref())?;
    let parsed = host_file::parse_host(&spec.host, &text, &rel)?;
    let added = parsed.containers.iter().find(|c| c.name == spec.name);
    let fingerprint = |r: Option<&Recipient>| r.map(Recipient::fingerprint);
    if added.is_none_or(|c| fingerprint(c.own_key.as_ref()) != fingerprint(public.as_ref())) {
        return Err(Error::InvalidFile {
            at: Location::named(&rel),
            reason: format!("cannot add container {} to this file's layout", spec.name),
        });
    }
    let mut report = Report {
        effects: Vec::new(),
        key: public,
    };
    let key_plan = match &private {
        Some(_) => Some(plan_key_secret(
            &ws,
            &layout::container_key_secret(&spec.host, &spec.name),
        )?),
        None => None,
    };
    if let (Some(private), Some(public), Some(plan)) = (&private, &report.key, key_plan) {
        let public = public.clone();
        apply_key_secret(&mut ws, plan, private, &public, &mut report)?;
    }
    fsutil::write_atomic(&file, text.as_bytes(), fsutil::PUBLIC)?;
    report.effects.push(Effect::Updated(rel));
    Ok(report)
}
