//! `keys check --staged` on a staged index that is the demo fleet with one blob
//! replaced or added: the first input byte says which path, the rest is the blob.
//! Never a panic; what the blob is gets reported on one line at its path.
#![no_main]

use keys::ops::check::{Severity, inspect, private_key_material};
use keys::format::Format;
use keys::snapshot::Blob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, blob)) = data.split_first() else {
        return;
    };
    let rel = match which % 12 {
        n @ 0..6 => format!("secrets/fuzz/blob.{}", Format::ALL[n as usize].extension()),
        6 => "secrets/bot/telegram-token.age".into(),
        7 => "secrets/nannuo-bot/config.yaml".into(),
        8 => "secrets/keys.lock".into(),
        9 => "policies/default.yaml".into(),
        10 => "recipients/hosts/vps-arm.yaml".into(),
        _ => "notes/readme.txt".into(),
    };
    let mut files = keys_fuzz::demo_repo();
    files.insert(rel.clone(), Blob::File(blob.to_vec()));
    let report = inspect(&files);
    for f in &report.findings {
        assert!(!f.what.contains('\n') && !f.at.contains('\n'), "{f:?}");
    }
    if rel.starts_with("secrets/fuzz/") {
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Problem && f.at == rel),
            "an unknown blob under secrets/ passes"
        );
    }
    if private_key_material(blob).is_some() {
        assert!(
            report.findings.iter().any(|f| f.at == rel),
            "a private key passes"
        );
    }
});
