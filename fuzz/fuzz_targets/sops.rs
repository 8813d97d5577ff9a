//! The sops stores: parse → emit → parse is stable, plaintext and encrypted. The
//! first input byte picks the store (YAML, JSON, dotenv, INI); the rest is the file.
#![no_main]

use keys::format::Format;
use libfuzzer_sys::fuzz_target;

const STORES: [Format; 4] = [
    Format::SopsYaml,
    Format::SopsJson,
    Format::SopsDotenv,
    Format::SopsIni,
];

fuzz_target!(|data: &[u8]| {
    if let Some((&which, file)) = data.split_first() {
        let format = STORES[usize::from(which) % STORES.len()];
        keys_fuzz::sops_round_trip(format, file);
    }
});
