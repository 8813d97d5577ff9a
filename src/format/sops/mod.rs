//! sops files, as far as `keys check` needs before the sops stores exist: a file
//! under `secrets/` with a sops extension must at least carry sops metadata, so a
//! plaintext document dropped there is caught.

pub mod tree;
pub mod yaml;

use crate::policy::Format;

/// Checks that `data` looks like a sops file of `format`: its metadata and at least
/// one encrypted value are present. The reason never quotes the file.
pub fn inspect(format: Format, data: &[u8]) -> std::result::Result<(), String> {
    let has = |needle: &[u8]| memchr::memmem::find(data, needle).is_some();
    let metadata = match format {
        Format::SopsYaml => data.starts_with(b"sops:") || has(b"\nsops:"),
        Format::SopsJson | Format::SopsBinary => has(b"\"sops\""),
        Format::SopsDotenv => has(b"sops_version=") && has(b"sops_mac="),
        Format::SopsIni => has(b"[sops]"),
        Format::Age => return Err("not a sops format".into()),
    };
    if !metadata {
        return Err(format!(
            "not a {} file (no sops metadata): plaintext?",
            format.name()
        ));
    }
    if !has(b"ENC[AES256_GCM,") {
        return Err("sops metadata but no encrypted value: plaintext?".into());
    }
    Ok(())
}
