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
/// Key paths named by a sample: keys of active lines and of commented-out example
/// lines (`# key: value`, `# [table]`, `# key = value`), inline mappings expanded.
pub(crate) mod paths {
    use std::collections::BTreeSet;

    /// `line` with one level of `# ` removed, keeping its indentation; `None` when it
    /// is not a comment.
    fn uncomment(line: &str) -> Option<String> {
        let indent = line.len() - line.trim_start().len();
        let rest = line.trim_start().strip_prefix('#')?;
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        Some(format!("{}{rest}", &line[..indent]))
    }

    /// The line and every uncommented form of it (`# # key: v` → `# key: v` → `key: v`).
    fn forms(line: &str) -> Vec<String> {
        let mut out = vec![line.to_string()];
        while let Some(next) = uncomment(out.last().map_or("", |s| s.as_str())) {
            out.push(next);
        }
        out
    }

    fn is_key(k: &str) -> bool {
        let k = k.trim_matches('"');
        k.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    }

    fn nested(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(m) = v {
            for (k, v) in m.iter().filter(|(k, _)| is_key(k)) {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                nested(&p, v, out);
            }
        }
    }

    /// Key paths of a YAML sample, by indentation.
    pub fn yaml(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<(usize, String)> = Vec::new();
        for line in text.lines() {
            for form in forms(line) {
                let body = form.trim_start();
                let mut indent = form.len() - body.len();
                let body = match body.strip_prefix("- ") {
                    Some(b) => {
                        indent += 2;
                        b
                    }
                    None => body,
                };
                let Some((key, value)) = body.split_once(':') else {
                    continue;
                };
                if !is_key(key) || !(value.is_empty() || value.starts_with(' ')) {
                    continue;
                }
                while stack.last().is_some_and(|(i, _)| *i >= indent) {
                    stack.pop();
                }
                let mut path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
                path.push(key.trim_matches('"'));
                let path = path.join(".");
                if let Ok(v) = serde_yaml::from_str::<serde_json::Value>(value) {
                    nested(&path, &v, &mut out);
                }
                out.insert(path);
                stack.push((indent, key.trim_matches('"').to_string()));
                break;
            }
        }
        out
    }

    /// Key paths of a TOML sample: table headers and `key = value` lines.
    pub fn toml(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut active = String::new();
        let mut example = String::new();
        for line in text.lines() {
            for (n, form) in forms(line).into_iter().enumerate() {
                let body = form.trim();
                if let Some(header) = body.strip_prefix('[') {
                    let name = header.trim_start_matches('[');
                    let Some(end) = name.find(']') else { continue };
                    let name: String = name[..end]
                        .split('.')
                        .map(|k| k.trim().trim_matches('"'))
                        .collect::<Vec<_>>()
                        .join(".");
                    if !name.split('.').all(is_key) {
                        continue;
                    }
                    out.insert(name.clone());
                    if n == 0 {
                        active = name.clone();
                    }
                    example = name;
                    break;
                }
                let Some((key, value)) = body.split_once('=') else {
                    continue;
                };
                let key = key.trim().trim_matches('"');
                if !is_key(key) {
                    continue;
                }
                let table = if n == 0 { &active } else { &example };
                let path = if table.is_empty() {
                    key.to_string()
                } else {
                    format!("{table}.{key}")
                };
                if let Ok(v) = ::toml::from_str::<serde_json::Value>(&format!("v = {value}")) {
                    nested(&path, &v["v"], &mut out);
                }
                out.insert(path);
                break;
            }
        }
        // A table header names its parents too (`[a.b]` is under `a`).
        let parents: Vec<String> = out
            .iter()
            .flat_map(|p| {
                let parts: Vec<&str> = p.split('.').collect();
                (1..parts.len()).map(move |i| parts[..i].join("."))
            })
            .collect();
        out.extend(parents);
        out
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

    /// Every key path of the YAML sample, its commented-out examples included, is in the
    /// TOML sample, and the other way round (list items share their list's path).
    #[test]
    fn yaml_and_toml_samples_have_the_same_examples() {
        for minimal in [false, true] {
            let yaml = super::paths::yaml(sample(Format::Yaml, minimal));
            let toml = super::paths::toml(sample(Format::Toml, minimal));
            let only_yaml: Vec<_> = yaml.difference(&toml).collect();
            let only_toml: Vec<_> = toml.difference(&yaml).collect();
            assert!(
                only_yaml.is_empty() && only_toml.is_empty(),
                "minimal={minimal}: only in YAML: {only_yaml:#?}\nonly in TOML: {only_toml:#?}"
            );
        }
    }

    /// The extraction sees the commented-out examples, nested ones included.
    #[test]
    fn example_paths_are_found_in_comments() {
        let yaml = super::paths::yaml(sample(Format::Yaml, false));
        for path in [
            "server.bind_address",
            "server.socket_mode",
            "backends.api_key",
            "backends.org_id",
            "backends.retry_override.max_attempts",
            "backends.auth.oauth.token_store",
            "api_keys.api_keys.key",
            "admin.auth.token",
            "admin.auth.username",
            "rate_limiting.limits.per_client.burst_capacity",
            "rate_limiting.redis.url",
            "global_prompts.models.mock-model.prompt_file",
            "model_metadata_file",
        ] {
            assert!(yaml.contains(path), "{path} not found in {yaml:#?}");
        }
        assert!(!yaml.iter().any(|p| p.contains(' ')), "{yaml:#?}");
    }
}
