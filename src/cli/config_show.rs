//! `continuum config show`: the configuration `serve` would run with — the file (or the
//! built-in defaults), then the environment, then the command line — every value with
//! where it came from, secrets redacted as `/admin/config` redacts them. YAML with a
//! comment per value, or `--json` (`{"file", "config", "sources"}`).

use std::path::Path;
use std::process::ExitCode;

use continuum::config::{self, effective, EnvSource, Format, Overrides, ProcessEnv, Strictness};
use serde_json::{json, Map, Value};

use super::output::{out, outln};
use super::ServeArgs;

/// Prints the effective configuration; exit 1 (with the problem) when it does not load.
pub fn show(args: ServeArgs, json: bool) -> ExitCode {
    let overrides = overrides(&args);
    let loaded = match config::load(
        args.config.as_deref(),
        &overrides,
        &ProcessEnv,
        Strictness::Serve,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let file_label = loaded.file.as_ref().map(|f| f.display().to_string());
    for w in &loaded.warnings {
        eprintln!(
            "warning: {}: {w} (ignored)",
            file_label.as_deref().unwrap_or("")
        );
    }
    let mut tree = effective::to_tree(&loaded.config);
    let sources = Sources::new(&loaded, &overrides, &ProcessEnv);
    let mut level_source = None;
    if tree["logging"]["level"].is_null() {
        // Unset: the log filter comes from RUST_LOG, else info (as `serve` does).
        let (level, from) = match ProcessEnv.var("RUST_LOG").filter(|v| !v.is_empty()) {
            Some(v) => (v, "from RUST_LOG"),
            None => ("info".to_string(), "default"),
        };
        tree["logging"]["level"] = Value::from(level);
        level_source = Some(from.to_string());
    }
    let tree = continuum::http::redact(&tree);
    let mut leaves = Vec::new();
    collect_leaves(&tree, &mut Vec::new(), &mut leaves);
    let source_of = |path: &[Seg]| -> String {
        if render(path) == "logging.level" {
            if let Some(s) = &level_source {
                return s.clone();
            }
        }
        sources.of(path)
    };
    if json {
        let map: Map<String, Value> = leaves
            .iter()
            .map(|p| (render(p), Value::from(source_of(p))))
            .collect();
        outln!(
            "{}",
            json!({"file": file_label, "config": tree, "sources": map})
        );
    } else {
        outln!(
            "# The configuration `continuum serve` would run with here (file, then environment, then command line),"
        );
        outln!("# each value with where it came from; secrets redacted.");
        match (&file_label, config_origin(&args)) {
            (Some(f), origin) => outln!("# file: {f}{origin}"),
            (None, _) => outln!("# no config file found: the built-in defaults"),
        }
        let mut lines = Vec::new();
        yaml_lines(&tree, &mut Vec::new(), 0, &mut lines);
        out!("{}", with_comments(&lines, &source_of));
    }
    ExitCode::SUCCESS
}

/// The overrides `serve` takes from these flags. Every field is named, so a flag added to
/// `serve` does not compile until `config show` takes it too.
fn overrides(args: &ServeArgs) -> Overrides {
    let ServeArgs {
        config: _,
        bind,
        backends,
        log_level,
        log_format,
        health_check_interval,
        model_metadata,
        port,
    } = args;
    Overrides {
        bind: bind.clone(),
        backends: backends.clone(),
        log_level: log_level.clone(),
        log_format: log_format.clone(),
        health_check_interval: *health_check_interval,
        model_metadata: model_metadata.clone(),
        port: *port,
    }
}

/// How the file was chosen, for the header.
fn config_origin(args: &ServeArgs) -> &'static str {
    match &args.config {
        None => " (found on the search path)",
        Some(p) if std::env::var_os("CONTINUUM_CONFIG").is_some_and(|v| Path::new(&v) == p) => {
            " (from CONTINUUM_CONFIG)"
        }
        Some(_) => " (from --config)",
    }
}

/// One step of a key path: a key, or an index into a list of mappings.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `backends[0].url`, as `config validate` names keys.
fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A list whose items are mappings is walked into; any other list is one value.
fn is_block_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(Value::is_object)
}

/// The paths of every value (scalars, lists of scalars, empty mappings).
fn collect_leaves(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(Seg::Key(k.clone()));
                collect_leaves(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) if is_block_list(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                collect_leaves(v, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

/// Where values came from: overrides, the file (as written, before `${VAR}`), the files
/// it names (api keys, model metadata), else the defaults.
struct Sources {
    overrides: Vec<(&'static str, String)>,
    file: Option<(String, Value)>,
    /// Entries of `api_keys.api_keys` past the file's own came from `api_keys_file`.
    file_keys: usize,
    keys_file: Option<String>,
    /// Entries of `model_configs` past the file's own came from `model_metadata_file`.
    file_models: usize,
    metadata_file: Option<String>,
}

impl Sources {
    fn new(loaded: &config::Loaded, o: &Overrides, env: &dyn EnvSource) -> Sources {
        let file = loaded.file.as_ref().and_then(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let raw: Value = match Format::of_path(path) {
                Format::Yaml => serde_yaml::from_str(&text).ok()?,
                Format::Toml => toml::from_str(&text).ok()?,
            };
            Some((path.display().to_string(), raw))
        });
        let raw = file.as_ref().map(|(_, raw)| raw);
        let count = |v: Option<&Value>| v.and_then(Value::as_array).map_or(0, Vec::len);
        let c = &loaded.config;
        Sources {
            overrides: effective::override_origins(env, o),
            file_keys: count(raw.and_then(|r| r.get("api_keys")?.get("api_keys"))),
            keys_file: c
                .api_keys
                .keys_file
                .as_ref()
                .map(|p| p.display().to_string()),
            file_models: count(raw.and_then(|r| r.get("model_configs"))),
            metadata_file: c
                .model_metadata_file
                .as_ref()
                .map(|p| p.display().to_string()),
            file,
        }
    }

    /// `from --bind`, `from CONTINUUM_BIND_ADDRESS`, `from config.yaml`, `from config.yaml
    /// (${OPENAI_API_KEY})`, `from keys.yaml`, or `default`.
    fn of(&self, path: &[Seg]) -> String {
        let keys: Vec<&str> = path
            .iter()
            .filter_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect();
        for (over, origin) in &self.overrides {
            let over: Vec<&str> = over.split('.').collect();
            if keys.starts_with(&over) {
                return format!("from {origin}");
            }
        }
        // The index of the list item under `list` this path is in, if it is in one.
        let index_under = |list: &[&str]| match path.get(list.len()) {
            Some(Seg::Index(i))
                if path
                    .iter()
                    .zip(list)
                    .all(|(s, l)| matches!(s, Seg::Key(k) if k == l)) =>
            {
                Some(*i)
            }
            _ => None,
        };
        if let (Some(i), Some(f)) = (index_under(&["api_keys", "api_keys"]), &self.keys_file) {
            if i >= self.file_keys {
                return format!("from {f}");
            }
        }
        if let (Some(i), Some(f)) = (index_under(&["model_configs"]), &self.metadata_file) {
            if i >= self.file_models {
                return format!("from {f}");
            }
        }
        if let Some((label, raw)) = &self.file {
            for spelling in spellings(path) {
                if let Some(found) = lookup(raw, &spelling) {
                    let vars = env_references(found);
                    return if vars.is_empty() {
                        format!("from {label}")
                    } else {
                        format!("from {label} ({vars})")
                    };
                }
            }
        }
        "default".to_string()
    }
}

/// A key path and the other spellings the reader takes for it.
fn spellings(path: &[Seg]) -> Vec<Vec<Seg>> {
    let rendered = render(path);
    let key = |k: &str| Seg::Key(k.to_string());
    let mut out = vec![path.to_vec()];
    let other: Option<Vec<Seg>> = match rendered.as_str() {
        "metrics.path" => Some(vec![key("metrics"), key("endpoint")]),
        "admin.auth.token" => Some(vec![key("admin"), key("auth"), key("bearer_token")]),
        "health_checks.interval" | "health_checks.timeout" => {
            Some(vec![key("timeouts"), key("health_check"), path[1].clone()])
        }
        _ if rendered.starts_with("api_keys.api_keys[") && rendered.ends_with(".key_hash") => {
            let mut p = path.to_vec();
            p.pop();
            p.push(key("key"));
            Some(p)
        }
        _ => None,
    };
    out.extend(other);
    out
}

/// The file's value at `path`: present and not null. A value written in a shorter form
/// (`rate_limit: 600`, a prompt as a plain string) counts for the keys it stands for.
fn lookup<'v>(raw: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    let mut node = raw;
    for seg in path {
        if !(node.is_object() || node.is_array()) {
            return (!node.is_null()).then_some(node);
        }
        node = match seg {
            Seg::Key(k) => node.get(k)?,
            Seg::Index(i) => node.get(*i)?,
        };
    }
    (!node.is_null()).then_some(node)
}

/// `${A}, ${B}`: the environment variables a value as written refers to (their names
/// only; a `${VAR:-default}` default may be a secret).
fn env_references(v: &Value) -> String {
    let mut names = Vec::new();
    let mut texts = Vec::new();
    match v {
        Value::String(s) => texts.push(s.as_str()),
        Value::Array(items) => texts.extend(items.iter().filter_map(Value::as_str)),
        _ => {}
    }
    for text in texts {
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            let name: String = rest[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(format!("${{{name}}}"));
            }
            rest = &rest[at + 2..];
        }
    }
    names.join(", ")
}

/// A YAML key, quoted when it is not a plain word.
fn yaml_key(k: &str) -> String {
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
    if plain {
        k.to_string()
    } else {
        Value::from(k).to_string()
    }
}

/// A value on one line: JSON's spelling, which YAML reads alike (`"text"`, `[1, 2]`, `{}`).
fn yaml_inline(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(yaml_inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        other => other.to_string(),
    }
}

/// The tree as YAML lines, each value's line carrying its path (for its comment).
fn yaml_lines(
    v: &Value,
    path: &mut Vec<Seg>,
    indent: usize,
    out: &mut Vec<(String, Option<Vec<Seg>>)>,
) {
    let Value::Object(m) = v else {
        return;
    };
    let pad = " ".repeat(indent);
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by_key(|(k, _)| (rank(path, k), k.as_str()));
    for (k, v) in entries {
        path.push(Seg::Key(k.clone()));
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push((format!("{pad}{}:", yaml_key(k)), None));
                yaml_lines(v, path, indent + 2, out);
            }
            Value::Array(items) if is_block_list(items) => {
                out.push((format!("{pad}{}:", yaml_key(k)), None));
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    let first = out.len();
                    yaml_lines(item, path, indent + 4, out);
                    if let Some((line, _)) = out.get_mut(first) {
                        line.replace_range(indent + 2..indent + 4, "- ");
                    }
                    path.pop();
                }
            }
            _ => out.push((
                format!("{pad}{}: {}", yaml_key(k), yaml_inline(v)),
                Some(path.clone()),
            )),
        }
        path.pop();
    }
}

/// Where `key` goes among its siblings under `path` (then alphabetically).
fn rank(path: &[Seg], key: &str) -> usize {
    let order: &[&str] = match path.last() {
        None => config::SECTIONS,
        Some(Seg::Index(_)) => &["name", "id", "key_hash", "type", "url"],
        Some(Seg::Key(_)) => &["enabled"],
    };
    order.iter().position(|k| *k == key).unwrap_or(order.len())
}

/// The lines with `# source` comments in one column.
fn with_comments(
    lines: &[(String, Option<Vec<Seg>>)],
    source_of: &dyn Fn(&[Seg]) -> String,
) -> String {
    let width = lines
        .iter()
        .filter(|(_, p)| p.is_some())
        .map(|(l, _)| l.chars().count())
        .filter(|n| *n <= 60)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (line, path) in lines {
        match path {
            Some(p) => out.push_str(&format!("{line:<width$}  # {}\n", source_of(p))),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_yaml_reads_back_as_the_tree() {
        let tree = json!({
            "server": {"bind_address": ["127.0.0.1:1"], "workers": 0},
            "backends": [{"name": "a b", "models": null, "headers": {}, "mock": {"fail_rate": 0.5}}, {"name": "c"}],
            "model_aliases": {"claude-3:x": "y"},
            "model_configs": [],
            "global_prompts": {"separator": "\n\n"},
        });
        let mut lines = Vec::new();
        yaml_lines(&tree, &mut Vec::new(), 0, &mut lines);
        let text = with_comments(&lines, &|p: &[Seg]| render(p));
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, tree, "{text}");
        assert!(text.contains("# backends[0].mock.fail_rate"), "{text}");
        assert!(text.contains("  - name: \"a b\""), "the name first: {text}");
        assert!(
            text.starts_with("server:"),
            "sections in the sample's order: {text}"
        );
    }

    #[test]
    fn file_values_are_found_in_any_spelling() {
        let raw = json!({
            "metrics": {"endpoint": "/m"},
            "api_keys": {"api_keys": [{"key": "${K}", "rate_limit": 600}]},
            "backends": [{"name": "x", "api_key": "${A:-sk-secret}", "url": null}],
        });
        let sources = Sources {
            overrides: vec![("server.bind_address", "--bind".into())],
            file: Some(("c.yaml".into(), raw)),
            file_keys: 1,
            keys_file: None,
            file_models: 0,
            metadata_file: None,
        };
        let p = |s: &str| -> Vec<Seg> {
            s.split('.')
                .flat_map(|part| match part.split_once('[') {
                    Some((k, i)) => vec![
                        Seg::Key(k.into()),
                        Seg::Index(i.trim_end_matches(']').parse().unwrap()),
                    ],
                    None => vec![Seg::Key(part.into())],
                })
                .collect()
        };
        assert_eq!(sources.of(&p("metrics.path")), "from c.yaml");
        assert_eq!(
            sources.of(&p("api_keys.api_keys[0].key_hash")),
            "from c.yaml (${K})"
        );
        assert_eq!(
            sources.of(&p("api_keys.api_keys[0].rate_limit.burst_capacity")),
            "from c.yaml"
        );
        assert_eq!(sources.of(&p("backends[0].api_key")), "from c.yaml (${A})");
        assert_eq!(sources.of(&p("backends[0].url")), "default");
        assert_eq!(sources.of(&p("server.bind_address")), "from --bind");
        assert_eq!(sources.of(&p("server.workers")), "default");
    }
}
