//! How sops writes an encrypted value: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`
//! in standard base64, read and written here without any key (the cipher itself is
//! `crypto::aes`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// sops writes 32-byte IVs; files from other writers may use the usual 12.
pub const IV_LEN: usize = 32;
/// The length of an AES-GCM tag.
pub const TAG_LEN: usize = 16;

/// One encrypted value, parsed.
pub struct Sealed {
    pub data: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    /// `str`, `int`, `float`, `bool`, `time`, `bytes` or `comment`.
    pub kind: String,
}

/// Whether a string is in sops's encrypted-value form.
pub fn is_sealed(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,") && s.ends_with(']')
}

/// Parses `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
pub fn parse(s: &str) -> Option<Sealed> {
    let inner = s.strip_prefix("ENC[AES256_GCM,")?.strip_suffix(']')?;
    let mut fields = inner.splitn(4, ',');
    let mut field = |name: &str| fields.next()?.strip_prefix(name).map(str::to_string);
    let data = field("data:")?;
    let iv = field("iv:")?;
    let tag = field("tag:")?;
    let kind = field("type:")?;
    let decode = |t: &str| STANDARD.decode(t).ok();
    let sealed = Sealed {
        data: decode(&data)?,
        iv: decode(&iv)?,
        tag: decode(&tag)?,
        kind,
    };
    (sealed.tag.len() == TAG_LEN && matches!(sealed.iv.len(), 12 | 32)).then_some(sealed)
}

/// Writes an encrypted value of type `kind` in the form `parse` reads.
pub fn render(data: &[u8], iv: &[u8], tag: &[u8], kind: &str) -> String {
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        STANDARD.encode(data),
        STANDARD.encode(iv),
        STANDARD.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_values_do_not_parse() {
        for bad in [
            "ENC[AES256_GCM,data:!!,iv:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:,iv:,tag:,type:str]",
            "ENC[AES256_GCM,data:YQ==]",
            "plain",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
