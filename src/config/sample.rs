//! The commented sample configuration printed by `continuum config generate`.
//! `config.sample.yaml` at the repository root is exactly the full YAML sample.

use super::Format;

/// The sample text for a format; `minimal` gives the shortest useful config.
pub fn sample(format: Format, minimal: bool) -> &'static str {
    match (format, minimal) {
        (Format::Yaml, false) => include_str!("sample.yaml"),
        (Format::Toml, false) => include_str!("sample.toml"),
        (Format::Yaml, true) => include_str!("sample-minimal.yaml"),
        (Format::Toml, true) => include_str!("sample-minimal.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_text, Strictness};
    use std::collections::HashMap;

    #[test]
    fn every_sample_validates_and_yaml_matches_toml() {
        let env = HashMap::new();
        let mut full = Vec::new();
        for format in [Format::Yaml, Format::Toml] {
            for minimal in [false, true] {
                let (config, _) = from_text(
                    sample(format, minimal),
                    format,
                    "sample",
                    &env,
                    Strictness::Validate,
                )
                .unwrap_or_else(|e| panic!("{format:?} minimal={minimal}: {e}"));
                if !minimal {
                    full.push(format!("{config:?}"));
                }
            }
        }
        assert_eq!(
            full[0], full[1],
            "the YAML and TOML samples must describe the same config"
        );
    }
}
