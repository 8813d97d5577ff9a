//! Secret-name validation on any text: an accepted name maps to a file strictly
//! under `secrets/` that maps back to the same name, for every format.
#![no_main]

use std::path::{Component, Path};

use keys::layout::{check_name, check_secret_name, secret_names_nest};
use keys::format::{Format, secret_of_path, secret_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if check_secret_name(name).is_ok() {
        assert!(!name.contains(['\\', '\0']) && !name.chars().any(char::is_control));
        for format in Format::ALL {
            let rel = secret_path(name, format);
            let components: Vec<Component> = Path::new(&rel).components().collect();
            assert_eq!(
                components.first(),
                Some(&Component::Normal("secrets".as_ref()))
            );
            assert!(components.len() >= 2, "{rel:?}");
            assert!(
                components.iter().all(|c| matches!(c, Component::Normal(s) if !s.to_string_lossy().starts_with(['.', '-']))),
                "{rel:?}"
            );
            assert_eq!(secret_of_path(&rel), Some((name, format)), "{rel:?}");
        }
    }
    if let Some((inner, format)) = secret_of_path(name)
        && check_secret_name(inner).is_ok()
    {
        assert_eq!(secret_path(inner, format), name);
    }
    if check_name(name).is_ok() {
        assert_eq!(Path::new(name).components().count(), 1);
        assert!(matches!(
            Path::new(name).components().next(),
            Some(Component::Normal(_))
        ));
        assert!(check_secret_name(name).is_ok(), "{name:?}");
    }
    if let Some((a, b)) = name.split_once('\n') {
        assert_eq!(secret_names_nest(a, b), secret_names_nest(b, a));
    }
});
