//! Configuration: where it is found, how it is parsed (YAML or TOML), substituted
//! (`${VAR}`), validated (every problem with its key path) and overridden
//! (command line > environment > file > defaults).

pub mod access;
pub mod acp;
mod backends;
pub mod effective;
pub mod files;
pub(crate) mod interpolate;
mod listen;
pub mod metadata;
pub mod migrate;
mod model;
pub mod operations;
mod overrides;
pub mod prompts;
mod reader;
mod resilience;
pub mod routing;
pub mod sample;
pub mod store;
pub mod types;
mod validate;
pub mod webui;

use std::path::{Path, PathBuf};

pub use backends::normalize_url;
pub use interpolate::{EnvSource, ProcessEnv};
pub use listen::{listen_address, ListenAddress};
pub use model::*;
pub use reader::Problem;
pub use types::{BindAddr, Secret};
pub use validate::{parse_log_format, parse_log_level};

/// The top-level sections, in the order of the sample config (`config show` prints them
/// in this order; any other top-level key is unknown).
pub const SECTIONS: &[&str] = &[
    "server",
    "backends",
    "selection_strategy",
    "model_configs",
    "model_metadata_file",
    "model_aliases",
    "timeouts",
    "health_checks",
    "retry",
    "circuit_breaker",
    "fallback",
    "routing",
    "logging",
    "metrics",
    "api_keys",
    "rate_limiting",
    "cors",
    "admin",
    "hot_reload",
    "global_prompts",
    "tracing",
    "cache",
    "store",
    "responses",
    "files",
    "acp",
    "webui",
];

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML/TOML.
    #[error("{file}: {message}")]
    Syntax {
        /// The file (or `<text>`).
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parsed but its values are wrong.
    #[error("{file}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file (or `<text>`, or `<defaults>`).
        file: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// A command-line flag or environment override is wrong.
    #[error("{origin}: {message}")]
    Override {
        /// The flag or variable, e.g. `--bind` or `CONTINUUM_BIND_ADDRESS`.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The file formats a config may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// TOML (`.toml`).
    Toml,
}

impl Format {
    /// The format a path's extension implies (YAML unless `.toml`).
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Yaml,
        }
    }
}

/// Everything the command line (or an embedding program) may override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--bind` addresses (replace `server.bind_address`).
    pub bind: Vec<String>,
    /// `--backends` URLs (replace `backends` with generic OpenAI-compatible ones).
    pub backends: Vec<String>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--health-check-interval` in seconds (replaces `health_checks.interval`).
    pub health_check_interval: Option<u64>,
    /// `--model-metadata` file (replaces `model_metadata_file`).
    pub model_metadata: Option<PathBuf>,
    /// `--port`: replaces the port of every TCP bind address (after `--bind` and
    /// `CONTINUUM_BIND_ADDRESS`).
    pub port: Option<u16>,
}

/// A loaded configuration and what was noticed on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The file it came from (`None`: built-in defaults).
    pub file: Option<PathBuf>,
    /// Values taken but not as written, and (when serving) unknown keys (typos, ignored):
    /// reported as warnings.
    pub warnings: Vec<Problem>,
}

/// How strictly unknown keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// `config validate`: unknown keys are errors.
    Validate,
    /// `serve`: unknown keys are warnings (and shown with the errors when there are some).
    Serve,
}

/// Parses, substitutes and validates configuration text. `file` labels messages.
pub fn from_text(
    text: &str,
    format: Format,
    file: &str,
    env: &dyn EnvSource,
    strictness: Strictness,
) -> Result<(Config, Vec<Problem>), ConfigError> {
    let (tree, mut r) = parse_and_substitute(text, format, file, env)?;
    let config = validate::read_config(&tree, &mut r);
    let mut problems = r.errors;
    let mut warnings = r.notes;
    if strictness == Strictness::Validate {
        problems.append(&mut r.unknown);
    }
    match config {
        Some(config) if problems.is_empty() => {
            warnings.extend(r.unknown.into_iter().map(|mut p| {
                p.message.push_str(" (ignored)");
                p
            }));
            Ok((config, warnings))
        }
        _ => {
            // Unknown keys are reported with the errors: a typo is often their cause.
            problems.append(&mut r.unknown);
            problems.sort_by(|a, b| a.path.cmp(&b.path));
            Err(ConfigError::Invalid {
                file: file.to_string(),
                problems,
            })
        }
    }
}

/// Parses `text` and substitutes `${VAR}` in every string; the reader starts with the
/// substitution's problems (malformed references) and unset variables.
fn parse_and_substitute(
    text: &str,
    format: Format,
    file: &str,
    env: &dyn EnvSource,
) -> Result<(serde_json::Value, reader::Reader), ConfigError> {
    let mut tree = parse_tree(text, format).map_err(|message| ConfigError::Syntax {
        file: file.to_string(),
        message,
    })?;
    let subst = interpolate::substitute_tree(&mut tree, env);
    let mut r = reader::Reader {
        unset: subst.unset,
        ..Default::default()
    };
    for (path, var, default) in subst.defaulted {
        r.notes.push(Problem {
            path,
            message: format!("{var} is unset; using the default '{default}'"),
        });
    }
    for (path, message) in subst.errors {
        r.error(path, message);
    }
    Ok((tree, r))
}

fn parse_tree(text: &str, format: Format) -> Result<serde_json::Value, String> {
    match format {
        Format::Yaml => {
            if text.trim().is_empty() {
                return Ok(serde_json::Value::Null);
            }
            serde_yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))
        }
        Format::Toml => toml::from_str(text).map_err(|e| format!("invalid TOML: {e}")),
    }
}

/// The config file to use: `explicit` (`--config`), else `CONTINUUM_CONFIG`, else the
/// first file of [`search_path`] that exists.
pub fn find_config_file(explicit: Option<&Path>, env: &dyn EnvSource) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = env.var("CONTINUUM_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    search_path(env).into_iter().find(|p| p.is_file())
}

/// The places a config file is looked for, in order: `./config.{yaml,yml,toml}`,
/// `~/.config/continuum-router/config.*`, `/etc/continuum-router/config.*`.
pub fn search_path(env: &dyn EnvSource) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    if let Some(home) = env.var("HOME").filter(|h| !h.is_empty()) {
        dirs.push(Path::new(&home).join(".config/continuum-router"));
    }
    dirs.push(PathBuf::from("/etc/continuum-router"));
    dirs.iter()
        .flat_map(|d| ["config.yaml", "config.yml", "config.toml"].map(|f| d.join(f)))
        .collect()
}

/// Loads the effective configuration: file (or defaults), then environment overrides,
/// then `overrides` from the command line.
pub fn load(
    explicit: Option<&Path>,
    overrides: &Overrides,
    env: &dyn EnvSource,
    strictness: Strictness,
) -> Result<Loaded, ConfigError> {
    let file = find_config_file(explicit, env);
    let (mut config, warnings) = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            from_text(
                &text,
                Format::of_path(path),
                &path.display().to_string(),
                env,
                strictness,
            )?
        }
        None => (Config::default(), Vec::new()),
    };
    overrides::apply_env_and_overrides(&mut config, env, overrides)?;
    // A path on the command line is taken from the working directory, one in the file
    // from the file's directory.
    let from_file_dir = file
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let metadata_file = match &overrides.model_metadata {
        Some(f) => Some((f.clone(), Path::new("."))),
        None => config
            .model_metadata_file
            .clone()
            .map(|f| (f, from_file_dir)),
    };
    if let Some(keys_file) = config.api_keys.keys_file.clone() {
        let path = resolve_path(&keys_file, from_file_dir, env);
        let first = config.api_keys.keys.len();
        let keys = load_keys_file(&path, first, env)?;
        config.api_keys.keys.extend(keys);
        config.api_keys.keys_file = Some(path);
        let mut r = reader::Reader::default();
        access::check_unique_ids(&config.api_keys.keys, "api_keys", &mut r);
        if !r.errors.is_empty() {
            return Err(ConfigError::Invalid {
                file: file
                    .as_deref()
                    .map_or_else(|| "config".into(), |f| f.display().to_string()),
                problems: r.errors,
            });
        }
    }
    if config.global_prompts.enabled {
        let problems = config.global_prompts.load_files(from_file_dir);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                file: file
                    .as_deref()
                    .map_or_else(|| "config".into(), |f| f.display().to_string()),
                problems,
            });
        }
    }
    for b in &mut config.backends {
        if let Some(o) = &mut b.oauth {
            o.token_store = resolve_path(&o.token_store, from_file_dir, env);
        }
    }
    if let Some(p) = &mut config.admin.stats.persistence {
        p.path = resolve_path(&p.path, from_file_dir, env);
    }
    config.store.path = resolve_path(&config.store.path, from_file_dir, env);
    config.files.storage_path = resolve_path(&config.files.storage_path, from_file_dir, env);
    if let Some((meta, base)) = metadata_file {
        let path = resolve_path(&meta, base, env);
        config.model_metadata_file = Some(path.clone());
        let entries = load_metadata_file(&path, env)?;
        config.model_configs.extend(entries);
    }
    Ok(Loaded {
        config,
        file,
        warnings,
    })
}

/// `~/x` → the home directory's `x`; a relative path is taken from `base` (the config
/// file's directory).
pub fn resolve_path(path: &Path, base: &Path, env: &dyn EnvSource) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = env.var("HOME").filter(|h| !h.is_empty()) {
            return Path::new(&home).join(rest);
        }
    }
    if path.is_relative() {
        base.join(path)
    } else {
        path.to_path_buf()
    }
}

/// Reads an `api_keys_file`: a list of key entries (or `api_keys:` holding one).
fn load_keys_file(
    path: &Path,
    first: usize,
    env: &dyn EnvSource,
) -> Result<Vec<access::ApiKeyConfig>, ConfigError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (tree, mut r) = parse_and_substitute(&text, Format::of_path(path), &label, env)?;
    let keys = match &tree {
        serde_json::Value::Object(m) if m.contains_key("api_keys") => {
            for key in m.keys().filter(|k| *k != "api_keys") {
                r.error(
                    key.clone(),
                    "unknown key (a keys file holds `api_keys:` only)",
                );
            }
            access::read_key_list(&m["api_keys"], "api_keys", first, &mut r)
        }
        list @ serde_json::Value::Array(_) => access::read_key_list(list, "", first, &mut r),
        _ => {
            r.error("", "expected a list of keys ({key, id, scopes, ...})");
            Vec::new()
        }
    };
    let mut problems = r.errors;
    problems.extend(r.unknown);
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(ConfigError::Invalid {
            file: label,
            problems,
        })
    }
}

/// Reads a model metadata file: `models:` holding `model_configs` entries (or the list
/// itself), YAML or TOML by extension.
fn load_metadata_file(
    path: &Path,
    env: &dyn EnvSource,
) -> Result<Vec<metadata::ModelConfig>, ConfigError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (tree, mut r) = parse_and_substitute(&text, Format::of_path(path), &label, env)?;
    let entries = match &tree {
        serde_json::Value::Object(m) if m.contains_key("models") => {
            for key in m.keys().filter(|k| *k != "models") {
                r.error(
                    key.clone(),
                    "unknown key (a metadata file holds `models:` only)",
                );
            }
            metadata::read_model_configs(&m["models"], "models", true, &mut r)
        }
        list @ serde_json::Value::Array(_) => metadata::read_model_configs(list, "", true, &mut r),
        _ => {
            r.error(
                "",
                "expected `models:` with a list of {id, aliases, metadata} entries",
            );
            Vec::new()
        }
    };
    let mut problems = r.errors;
    problems.extend(r.unknown);
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(ConfigError::Invalid {
            file: label,
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn problems(text: &str) -> Vec<String> {
        match from_text(
            text,
            Format::Yaml,
            "t.yaml",
            &env(&[]),
            Strictness::Validate,
        ) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let p = problems(
            "server:\n  bind_adress: x\n  workers: many\nbackends:\n  - name: a\n    type: vlm\n    url: ftp://x\n  - name: a\n    type: openai\n    api_key: ${NOPE}\nhealth_checks:\n  intervall: 3s\nweb_search: {enabled: true}\ntimeouts:\n  connection: 10\n",
        );
        let text = p.join("\n");
        assert!(
            text.contains("server.bind_adress: unknown key; did you mean 'bind_address'?"),
            "{text}"
        );
        assert!(
            text.contains("server.workers: expected a non-negative whole number"),
            "{text}"
        );
        assert!(
            text.contains("backends[0].type: unknown backend type 'vlm'; did you mean 'vllm'?"),
            "{text}"
        );
        assert!(
            text.contains("backends[0].url: 'ftp://x' must start with http:// or https://"),
            "{text}"
        );
        assert!(text.contains("backends[1].api_key: an api_key (type 'openai') is required, but environment variable NOPE is not set"), "{text}");
        assert!(
            text.contains("health_checks.intervall: unknown key; did you mean 'interval'?"),
            "{text}"
        );
        assert!(text.contains("web_search: not supported yet"), "{text}");
        assert!(
            text.contains("timeouts.connection: durations need a unit"),
            "{text}"
        );
    }

    #[test]
    fn duplicate_names_and_alias_targets() {
        let text = problems(
            "backends:\n  - {name: a, type: mock}\n  - name: a\n    url: http://h\n    models: [m]\n    model_aliases: {fast: other}\n",
        )
        .join("\n");
        assert!(
            text.contains("backends[1].name: 'a' is already the name"),
            "{text}"
        );
        assert!(
            text.contains("backends[1].model_aliases.fast: 'other' is not one of"),
            "{text}"
        );
    }

    #[test]
    fn toml_and_yaml_read_alike() {
        let y = "server:\n  bind_address: [\"127.0.0.1:9000\", \"unix:/tmp/c.sock\"]\n  socket_mode: 0o660\nbackends:\n  - {name: l, type: vllm, url: \"http://h:8000/v1/\"}\n";
        let t = "[server]\nbind_address = [\"127.0.0.1:9000\", \"unix:/tmp/c.sock\"]\nsocket_mode = 0o660\n[[backends]]\nname = \"l\"\ntype = \"vllm\"\nurl = \"http://h:8000/v1/\"\n";
        let (a, _) = from_text(y, Format::Yaml, "y", &env(&[]), Strictness::Validate).unwrap();
        let (b, _) = from_text(t, Format::Toml, "t", &env(&[]), Strictness::Validate).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.server.socket_mode, Some(0o660));
        assert_eq!(a.backends[0].url.as_deref(), Some("http://h:8000"));
    }

    #[test]
    fn an_ollama_url_naming_its_api_is_taken_at_its_root_with_a_warning() {
        for (url, root) in [
            ("http://localhost:11434/api", "http://localhost:11434"),
            ("http://localhost:11434/api/", "http://localhost:11434"),
            ("http://localhost:11434/api/chat", "http://localhost:11434"),
            ("https://gpu.lan/ollama/api/tags", "https://gpu.lan/ollama"),
            ("http://localhost:11434", "http://localhost:11434"),
            ("http://host/apis", "http://host/apis"),
        ] {
            for strictness in [Strictness::Validate, Strictness::Serve] {
                let (config, warnings) = from_text(
                    &format!("backends: [{{name: o, type: ollama, url: \"{url}\"}}]\n"),
                    Format::Yaml,
                    "f",
                    &env(&[]),
                    strictness,
                )
                .unwrap();
                assert_eq!(config.backends[0].url.as_deref(), Some(root), "{url}");
                if url == root {
                    assert!(warnings.is_empty(), "{warnings:?}");
                } else {
                    assert_eq!(warnings.len(), 1, "{url}");
                    assert_eq!(warnings[0].path, "backends[0].url");
                    assert!(
                        warnings[0].message.contains(&format!("using '{root}'")),
                        "{}",
                        warnings[0].message
                    );
                }
            }
        }
        // Other types keep their path: /api may be theirs.
        let (config, _) = from_text(
            "backends: [{name: g, type: generic, url: \"http://h/api\"}]\n",
            Format::Yaml,
            "f",
            &env(&[]),
            Strictness::Validate,
        )
        .unwrap();
        assert_eq!(config.backends[0].url.as_deref(), Some("http://h/api"));
    }

    #[test]
    fn unknown_keys_are_warnings_when_serving() {
        let (_, warnings) = from_text(
            "backends: [{name: m, type: mock}]\nlogging: {levle: info}\n",
            Format::Yaml,
            "f",
            &env(&[]),
            Strictness::Serve,
        )
        .unwrap();
        assert_eq!(warnings[0].path, "logging.levle");
        assert!(warnings[0].message.ends_with("(ignored)"));
    }

    #[test]
    fn search_path_prefers_explicit_then_env_then_home() {
        let home = std::env::temp_dir().join(format!("continuum-home-{}", std::process::id()));
        let dir = home.join(".config/continuum-router");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), "").unwrap();
        let h = home.display().to_string();
        assert_eq!(
            find_config_file(None, &env(&[("HOME", &h)])),
            Some(dir.join("config.toml"))
        );
        std::fs::write(dir.join("config.yaml"), "").unwrap();
        assert_eq!(
            find_config_file(None, &env(&[("HOME", &h)])),
            Some(dir.join("config.yaml")),
            ".yaml first"
        );
        let e = env(&[("HOME", &h), ("CONTINUUM_CONFIG", "/x/from-env.yaml")]);
        assert_eq!(
            find_config_file(None, &e),
            Some(PathBuf::from("/x/from-env.yaml"))
        );
        assert_eq!(
            find_config_file(Some(Path::new("/x/cli.toml")), &e),
            Some(PathBuf::from("/x/cli.toml"))
        );
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn priority_cli_over_env_over_file() {
        let dir = std::env::temp_dir().join(format!("continuum-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.yaml");
        std::fs::write(
            &file,
            "server: {bind_address: \"127.0.0.1:1111\"}\nbackends: [{name: m, type: mock}]\nlogging: {level: warn}\n",
        )
        .unwrap();
        let e = env(&[
            ("CONTINUUM_BIND_ADDRESS", "127.0.0.1:2222"),
            ("CONTINUUM_LOG_LEVEL", "debug"),
        ]);
        let loaded = load(Some(&file), &Overrides::default(), &e, Strictness::Serve).unwrap();
        assert_eq!(
            loaded.config.server.bind_address[0].to_string(),
            "127.0.0.1:2222"
        );
        assert_eq!(loaded.config.logging.level.as_deref(), Some("debug"));
        let cli = Overrides {
            bind: vec!["127.0.0.1:3333".into()],
            log_level: Some("error".into()),
            health_check_interval: Some(7),
            ..Default::default()
        };
        let loaded = load(Some(&file), &cli, &e, Strictness::Serve).unwrap();
        assert_eq!(
            loaded.config.health_checks.interval,
            std::time::Duration::from_secs(7)
        );
        assert_eq!(
            loaded.config.server.bind_address[0].to_string(),
            "127.0.0.1:3333"
        );
        assert_eq!(loaded.config.logging.level.as_deref(), Some("error"));
        let bad = env(&[("CONTINUUM_BIND_ADDRESS", "nowhere")]);
        let err = load(Some(&file), &Overrides::default(), &bad, Strictness::Serve).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("CONTINUUM_BIND_ADDRESS: 'nowhere'"),
            "{err}"
        );
        let empty = env(&[("CONTINUUM_BACKEND_URLS", " , ")]);
        let err = load(
            Some(&file),
            &Overrides::default(),
            &empty,
            Strictness::Serve,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("CONTINUUM_BACKEND_URLS: names no backend URL"),
            "{err}"
        );
        // A command-line flag wins without the environment variable being read.
        assert!(load(Some(&file), &cli, &bad, Strictness::Serve).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
