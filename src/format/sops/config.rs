//! The part of sops's `.sops.yaml` that changes how a file is printed: `stores:`,
//! whose `yaml`, `json` and `json_binary` entries each may set an `indent`.

use serde::Deserialize;

use crate::error::{Error, Location, Result};
use crate::format::Format;

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    stores: Stores,
}

#[derive(Deserialize, Default)]
struct Stores {
    #[serde(default)]
    yaml: Store,
    #[serde(default)]
    json: Store,
    #[serde(default)]
    json_binary: Store,
}

#[derive(Deserialize, Default)]
struct Store {
    #[serde(default)]
    indent: Option<i64>,
}

/// The indentation `.sops.yaml` (`text`, read from `file`) gives files of `format`,
/// as `indented_store` takes it; sops's errors for a value it refuses.
pub fn stores_indent(text: &str, format: Format, file: &str) -> Result<Option<u8>> {
    let invalid = |reason: String| Error::InvalidFile {
        at: Location::named(file),
        reason,
    };
    let config: ConfigFile = serde_saphyr::from_str(text)
        .map_err(|e| invalid(format!("not a sops config: {}", e.without_snippet())))?;
    let s = config.stores;
    match format {
        Format::SopsYaml => match s.yaml.indent {
            Some(i) if i < 0 => Err(invalid(format!(
                "stores.yaml.indent {i}: sops accepts no negative indentation"
            ))),
            // go-yaml writes 2 spaces for any count over 9.
            Some(i) => Ok(Some(u8::try_from(i.min(10)).unwrap_or(10))),
            None => Ok(None),
        },
        Format::SopsJson | Format::SopsBinary => {
            let (name, store) = match format {
                Format::SopsJson => ("json", s.json),
                _ => ("json_binary", s.json_binary),
            };
            match store.indent {
                None | Some(-1) => Ok(None),
                Some(i) => u8::try_from(i).map(Some).map_err(|_| {
                    invalid(format!(
                        "stores.{name}.indent {i}: keys writes 0 to 255 spaces (-1, sops's default, a tab)"
                    ))
                }),
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_indent_is_read_as_sops_reads_it() {
        let config = "creation_rules: [{age: x}]\nstores:\n  yaml:\n    indent: 2\n  json:\n    indent: 0\n  json_binary:\n    indent: -1\n";
        let get = |f| stores_indent(config, f, ".sops.yaml").unwrap();
        assert_eq!(get(Format::SopsYaml), Some(2));
        assert_eq!(get(Format::SopsJson), Some(0));
        assert_eq!(get(Format::SopsBinary), None);
        assert_eq!(get(Format::SopsIni), None);
        assert_eq!(stores_indent("{}", Format::SopsYaml, "c").unwrap(), None);
        let big = "stores: {yaml: {indent: 99}}";
        assert_eq!(stores_indent(big, Format::SopsYaml, "c").unwrap(), Some(10));
        for (bad, format, want) in [
            (
                "stores: {yaml: {indent: -2}}",
                Format::SopsYaml,
                "c: stores.yaml.indent -2",
            ),
            (
                "stores: {json: {indent: -2}}",
                Format::SopsJson,
                "c: stores.json.indent -2",
            ),
            ("stores: [", Format::SopsJson, "c: not a sops config"),
        ] {
            let err = stores_indent(bad, format, "c").unwrap_err().to_string();
            assert!(err.starts_with(want), "{bad}: {err}");
        }
    }
}
