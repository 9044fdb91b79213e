//! Turns the parsed (and substituted) configuration tree into a [`Config`], collecting
//! every problem with its key path.

use serde_json::{Map, Value};

use std::time::Duration;

use super::backends::read_backends;
use super::metadata;
use super::model::*;
use super::reader::{child, did_you_mean, Keys, Reader};
use super::resilience;
use super::types::BindAddr;

const TOP: Keys = Keys {
    known: super::SECTIONS,
    unsupported: &["web_search"],
};

const SERVER: Keys = Keys {
    known: &[
        "bind_address",
        "socket_mode",
        "workers",
        "connection_pool_size",
        "max_body_size",
        "max_stream_event_size",
        "shutdown_grace",
        "expose_backend_header",
        "max_concurrent_requests",
        "queue_timeout",
        "header_read_timeout",
        "body_read_timeout",
        "keep_alive_timeout",
        "client_write_timeout",
        "max_connections",
    ],
    unsupported: &[],
};

const TIMEOUTS: Keys = Keys {
    known: &["connection", "request", "health_check"],
    unsupported: &[],
};

const LEGACY_HEALTH_TIMEOUTS: Keys = Keys {
    known: &["timeout", "interval"],
    unsupported: &[],
};

const REQUEST_TIMEOUTS: Keys = Keys {
    known: &[
        "standard",
        "streaming",
        "model_overrides",
        "image_generation",
    ],
    unsupported: &[],
};

const MODEL_OVERRIDE: Keys = Keys {
    known: &["standard", "streaming"],
    unsupported: &[],
};

const STANDARD: Keys = Keys {
    known: &["first_byte", "total"],
    unsupported: &[],
};

const STREAMING: Keys = Keys {
    known: &["first_byte", "chunk_interval", "total"],
    unsupported: &[],
};

const METRICS: Keys = Keys {
    known: &["enabled", "path", "endpoint"],
    unsupported: &["cardinality_limit", "optional_metrics"],
};

/// Paths the router serves itself, which the metrics path must not shadow.
const RESERVED_PATHS: &[&str] = &[
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/anthropic/v1/messages",
    "/anthropic/v1/messages/count_tokens",
    "/v1/models",
    "/health",
    "/healthz",
    "/health/ready",
    "/admin/backends",
];

fn read_metrics(v: Option<&Value>, r: &mut Reader) -> MetricsConfig {
    let mut c = MetricsConfig::default();
    let p = "metrics";
    let Some(m) = v.and_then(|v| r.section(v, p, &METRICS)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    let path = match (r.string(m, p, "path"), r.string(m, p, "endpoint")) {
        (Some(a), Some(b)) if a != b => {
            r.error(
                child(p, "endpoint"),
                format!("'{b}' differs from metrics.path '{a}'; set one of them"),
            );
            None
        }
        (a, b) => a.or(b),
    };
    if let Some(path) = path {
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            r.error(
                child(p, "path"),
                format!("'{path}' must be a URL path starting with '/'"),
            );
        } else if RESERVED_PATHS.contains(&path.as_str()) || path.starts_with("/v1/models/") {
            r.error(
                child(p, "path"),
                format!("'{path}' is one of the router's own endpoints"),
            );
        } else {
            c.path = path;
        }
    }
    c
}

const LOGGING: Keys = Keys {
    known: &["level", "format", "access_log"],
    unsupported: &[],
};

/// Reads the whole tree. Returns a config only when `reader.errors` stayed empty.
pub fn read_config(root: &Value, r: &mut Reader) -> Option<Config> {
    let empty = Map::new();
    let top = match root {
        Value::Null => &empty,
        _ => r.section(root, "", &TOP)?,
    };
    let defaults = Config::default();

    let server = match top.get("server") {
        Some(v) => read_server(v, r),
        None => Some(defaults.server.clone()),
    };
    let global_retry = top
        .get("retry")
        .filter(|v| v.is_object())
        .and_then(|v| {
            resilience::read_retry(v, "retry", &RetryConfig::default(), &mut Reader::default())
        })
        .unwrap_or_default();
    let backends = match top.get("backends").filter(|v| !v.is_null()) {
        Some(v) => read_backends(v, &global_retry, r),
        None => {
            r.error("backends", "at least one backend is required");
            None
        }
    };
    let selection_strategy = resilience::read_strategy(top, r);
    let retry = match top.get("retry").filter(|v| !v.is_null()) {
        Some(v) => resilience::read_retry(v, "retry", &RetryConfig::default(), r),
        None => Some(RetryConfig::default()),
    };
    let legacy_health = legacy_health_timeouts(top, r);
    let health_checks = resilience::read_health_checks(top.get("health_checks"), legacy_health, r);
    let circuit_breaker = resilience::read_circuit_breaker(top.get("circuit_breaker"), r);
    let fallback = resilience::read_fallback(top.get("fallback"), r);
    let routing = super::routing::read_routing(top.get("routing"), r);
    let model_configs = match top.get("model_configs").filter(|v| !v.is_null()) {
        Some(v) => metadata::read_model_configs(v, "model_configs", true, r),
        None => Vec::new(),
    };
    let model_metadata_file = r
        .string(top, "", "model_metadata_file")
        .filter(|f| !f.is_empty())
        .map(std::path::PathBuf::from);
    let metrics = read_metrics(top.get("metrics"), r);
    let api_keys = super::access::read_api_keys(top.get("api_keys"), r);
    let rate_limiting = super::access::read_rate_limiting(top.get("rate_limiting"), r);
    let cors = super::access::read_cors(top.get("cors"), r);
    let model_aliases = r.string_map(top, "", "model_aliases").unwrap_or_default();
    for (alias, target) in &model_aliases {
        if alias == target {
            r.error(
                format!("model_aliases.{alias}"),
                "an alias cannot name itself",
            );
        }
    }
    let admin = super::operations::read_admin(top.get("admin"), r);
    let hot_reload = super::operations::read_hot_reload(top.get("hot_reload"), r);
    let global_prompts = super::prompts::read_global_prompts(top.get("global_prompts"), r);
    let tracing = super::operations::read_tracing(top.get("tracing"), r);
    let cache = super::operations::read_cache(top.get("cache"), r);
    let store = super::store::read_store(top.get("store"), r);
    let responses = super::store::read_responses(top.get("responses"), r);
    let files = super::files::read_files(top.get("files"), r);
    let acp = super::acp::read_acp(top.get("acp"), r);
    let webui = super::webui::read_webui(top, r);
    let p = &webui.path_prefix;
    if webui.enabled
        && metrics.enabled
        && (metrics.path == *p || metrics.path.starts_with(&format!("{p}/")))
    {
        r.error(
            "webui.path_prefix",
            format!(
                "{p} overlaps metrics.path ({}); move one of them",
                metrics.path
            ),
        );
    }

    let timeouts = match top.get("timeouts") {
        Some(v) => read_timeouts(v, r),
        None => Some(TimeoutsConfig::default()),
    };
    let logging = match top.get("logging") {
        Some(v) => read_logging(v, r),
        None => Some(defaults.logging.clone()),
    };
    if !r.errors.is_empty() {
        return None;
    }
    Some(Config {
        server: server?,
        backends: backends?,
        selection_strategy: selection_strategy?,
        timeouts: timeouts?,
        logging: logging?,
        health_checks,
        retry: retry?,
        circuit_breaker,
        fallback,
        routing,
        model_configs,
        model_metadata_file,
        metrics,
        api_keys,
        rate_limiting,
        cors,
        model_aliases,
        admin,
        hot_reload,
        global_prompts,
        tracing,
        cache,
        store,
        responses,
        files,
        acp,
        webui,
        source: root.clone(),
    })
}

fn read_server(v: &Value, r: &mut Reader) -> Option<ServerConfig> {
    let p = "server";
    let d = ServerConfig::default();
    let Some(m) = r.section(v, p, &SERVER) else {
        return (v.is_null()).then_some(d);
    };
    let mut bind_address = d.bind_address.clone();
    if let Some(list) = r.string_or_list(m, p, "bind_address") {
        if list.is_empty() {
            r.error("server.bind_address", "needs at least one address");
        }
        bind_address.clear();
        for (i, text) in list.iter().enumerate() {
            match BindAddr::parse(text) {
                Ok(a) => bind_address.push(a),
                Err(e) => {
                    let path = if m.get("bind_address").is_some_and(Value::is_array) {
                        format!("server.bind_address[{i}]")
                    } else {
                        "server.bind_address".to_string()
                    };
                    r.error(path, e)
                }
            }
        }
    }
    let socket_mode = read_socket_mode(m, r);
    let workers = r.integer(m, p, "workers").unwrap_or(0);
    if workers > 1024 {
        r.error(
            "server.workers",
            format!("{workers} worker threads is more than the 1024 allowed"),
        );
    }
    let pool = r
        .integer(m, p, "connection_pool_size")
        .unwrap_or(d.connection_pool_size as u64);
    let max_body_size = r
        .byte_size(m, p, "max_body_size")
        .unwrap_or(d.max_body_size);
    if max_body_size == 0 {
        r.error("server.max_body_size", "must be larger than 0");
    }
    let max_stream_event_size = r
        .byte_size(m, p, "max_stream_event_size")
        .unwrap_or(d.max_stream_event_size);
    if max_stream_event_size < 1024 {
        r.error(
            "server.max_stream_event_size",
            "must be at least 1KB (streams carry events of several hundred bytes)",
        );
    }
    Some(ServerConfig {
        bind_address,
        max_stream_event_size,
        socket_mode,
        workers: workers as usize,
        connection_pool_size: pool as usize,
        max_body_size,
        shutdown_grace: r
            .duration(m, p, "shutdown_grace")
            .unwrap_or(d.shutdown_grace),
        expose_backend_header: r
            .boolean(m, p, "expose_backend_header")
            .unwrap_or(d.expose_backend_header),
        max_concurrent_requests: r
            .integer(m, p, "max_concurrent_requests")
            .map_or(d.max_concurrent_requests, |n| n as usize),
        queue_timeout: r.duration(m, p, "queue_timeout").unwrap_or(d.queue_timeout),
        header_read_timeout: connection_timeout(m, r, "header_read_timeout", d.header_read_timeout),
        body_read_timeout: connection_timeout(m, r, "body_read_timeout", d.body_read_timeout),
        keep_alive_timeout: connection_timeout(m, r, "keep_alive_timeout", d.keep_alive_timeout),
        client_write_timeout: connection_timeout(
            m,
            r,
            "client_write_timeout",
            d.client_write_timeout,
        ),
        max_connections: read_max_connections(m, r),
    })
}

/// One of the client connection timeouts: longer than 0, or the connection would never
/// get a chance.
fn connection_timeout(
    m: &Map<String, Value>,
    r: &mut Reader,
    key: &str,
    default: Duration,
) -> Duration {
    match r.duration(m, "server", key) {
        Some(d) if d.is_zero() => {
            r.error(
                format!("server.{key}"),
                "must be longer than 0 (write a generous duration such as \"10m\" to relax it)",
            );
            default
        }
        Some(d) => d,
        None => default,
    }
}

/// `server.max_connections`: `auto` (or absent) for a cap from the open-file limit, or a
/// number of connections of at least 1.
fn read_max_connections(m: &Map<String, Value>, r: &mut Reader) -> Option<usize> {
    let path = "server.max_connections";
    let n = match m.get("max_connections") {
        None | Some(Value::Null) => return None,
        Some(Value::String(s)) if s.trim() == "auto" => return None,
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => {
            r.error(
                path,
                "expected a number of connections (at least 1) or auto (from the open-file limit)",
            );
            None
        }
    }
}

fn read_socket_mode(m: &Map<String, Value>, r: &mut Reader) -> Option<u32> {
    let path = "server.socket_mode";
    let mode = match m.get("socket_mode")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let digits = s.trim().trim_start_matches("0o").trim_start_matches("0O");
            u64::from_str_radix(digits, 8).ok()
        }
        _ => None,
    };
    match mode {
        Some(mode) if mode <= 0o777 => Some(mode as u32),
        _ => {
            r.error(
                path,
                "expected a file mode such as 0o660 (octal, at most 0o777)",
            );
            None
        }
    }
}

fn legacy_health_timeouts(
    top: &Map<String, Value>,
    r: &mut Reader,
) -> (Option<Duration>, Option<Duration>) {
    let p = "timeouts.health_check";
    let Some(m) = top
        .get("timeouts")
        .and_then(|t| t.get("health_check"))
        .and_then(|v| r.section(v, p, &LEGACY_HEALTH_TIMEOUTS))
    else {
        return (None, None);
    };
    (r.duration(m, p, "timeout"), r.duration(m, p, "interval"))
}

fn read_timeouts(v: &Value, r: &mut Reader) -> Option<TimeoutsConfig> {
    let mut t = TimeoutsConfig::default();
    let Some(m) = r.section(v, "timeouts", &TIMEOUTS) else {
        return v.is_null().then_some(t);
    };
    if let Some(d) = positive(r, m, "timeouts", "connection") {
        t.connection = d;
    }
    if let Some(req) = m.get("request") {
        if let Some(rm) = r.section(req, "timeouts.request", &REQUEST_TIMEOUTS) {
            read_request_timeouts(rm, "timeouts.request", &mut t.standard, &mut t.streaming, r);
            if let Some(ig) = rm.get("image_generation").filter(|v| !v.is_null()) {
                let p = "timeouts.request.image_generation";
                if let Some(im) = r.section(ig, p, &STANDARD) {
                    if let Some(d) = positive(r, im, p, "first_byte") {
                        t.image_generation.first_byte = d;
                    }
                    if let Some(d) = positive(r, im, p, "total") {
                        t.image_generation.total = d;
                    }
                }
            }
            if let Some(ov) = rm.get("model_overrides").filter(|v| !v.is_null()) {
                let op = "timeouts.request.model_overrides";
                match ov {
                    Value::Object(models) => {
                        for (model, v) in models {
                            let mp = child(op, model);
                            if let Some(mm) = r.section(v, &mp, &MODEL_OVERRIDE) {
                                let (mut s, mut st) = (t.standard.clone(), t.streaming.clone());
                                read_request_timeouts(mm, &mp, &mut s, &mut st, r);
                                t.model_overrides.insert(model.clone(), (s, st));
                            }
                        }
                    }
                    _ => r.error(
                        op,
                        "expected a mapping of model names to {standard, streaming} deadlines",
                    ),
                }
            }
        }
    }
    Some(t)
}

/// Reads `standard` and `streaming` deadlines of `m` (at `path`) over the given values.
fn read_request_timeouts(
    m: &Map<String, Value>,
    path: &str,
    standard: &mut StandardTimeouts,
    streaming: &mut StreamingTimeouts,
    r: &mut Reader,
) {
    if let Some(s) = m.get("standard") {
        let p = child(path, "standard");
        if let Some(sm) = r.section(s, &p, &STANDARD) {
            if let Some(d) = positive(r, sm, &p, "first_byte") {
                standard.first_byte = d;
            }
            if let Some(d) = positive(r, sm, &p, "total") {
                standard.total = d;
            }
        }
    }
    if let Some(s) = m.get("streaming") {
        let p = child(path, "streaming");
        if let Some(sm) = r.section(s, &p, &STREAMING) {
            if let Some(d) = positive(r, sm, &p, "first_byte") {
                streaming.first_byte = d;
            }
            if let Some(d) = positive(r, sm, &p, "chunk_interval") {
                streaming.chunk_interval = d;
            }
            if let Some(d) = positive(r, sm, &p, "total") {
                streaming.total = d;
            }
        }
    }
}

fn positive(
    r: &mut Reader,
    m: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<std::time::Duration> {
    let d = r.duration(m, path, key)?;
    if d.is_zero() {
        r.error(child(path, key), "must be longer than 0");
        return None;
    }
    Some(d)
}

/// Log levels accepted by `logging.level` and `--log-level`.
pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

/// Checks a log level name.
pub fn parse_log_level(level: &str) -> Result<String, String> {
    let l = level.trim().to_ascii_lowercase();
    if LOG_LEVELS.contains(&l.as_str()) {
        return Ok(l);
    }
    let hint = did_you_mean(&l, LOG_LEVELS.iter().copied())
        .map(|s| format!("did you mean '{s}'? "))
        .unwrap_or_default();
    Err(format!(
        "unknown log level '{level}'; {hint}(one of: {})",
        LOG_LEVELS.join(", ")
    ))
}

/// Checks a log format name.
pub fn parse_log_format(format: &str) -> Result<LogFormat, String> {
    match format.trim().to_ascii_lowercase().as_str() {
        "pretty" | "text" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("unknown log format '{format}' (json or pretty)")),
    }
}

fn read_logging(v: &Value, r: &mut Reader) -> Option<LoggingConfig> {
    let mut l = Config::default().logging;
    let Some(m) = r.section(v, "logging", &LOGGING) else {
        return v.is_null().then_some(l);
    };
    if let Some(level) = r.string(m, "logging", "level") {
        match parse_log_level(&level) {
            Ok(level) => l.level = Some(level),
            Err(e) => r.error("logging.level", e),
        }
    }
    if let Some(format) = r.string(m, "logging", "format") {
        match parse_log_format(&format) {
            Ok(f) => l.format = f,
            Err(e) => r.error("logging.format", e),
        }
    }
    if let Some(on) = r.boolean(m, "logging", "access_log") {
        l.access_log = on;
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use crate::config::{from_text, ConfigError, Format, Strictness};
    use std::collections::HashMap;
    use std::time::Duration;

    fn server(text: &str) -> Result<super::ServerConfig, String> {
        let yaml = format!("server: {{{text}}}\nbackends: [{{name: m, type: mock}}]\n");
        let env = HashMap::<String, String>::new();
        match from_text(&yaml, Format::Yaml, "t.yaml", &env, Strictness::Validate) {
            Ok((config, _)) => Ok(config.server),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn connection_limits_are_read_and_checked() {
        let s = server("").unwrap();
        assert_eq!(s.header_read_timeout, Duration::from_secs(30));
        assert_eq!(s.keep_alive_timeout, Duration::from_secs(75));
        assert_eq!(s.max_connections, None);
        let s = server("header_read_timeout: 5s, body_read_timeout: 2s, keep_alive_timeout: 1m, client_write_timeout: 10s, max_connections: 500").unwrap();
        assert_eq!(s.header_read_timeout, Duration::from_secs(5));
        assert_eq!(s.body_read_timeout, Duration::from_secs(2));
        assert_eq!(s.keep_alive_timeout, Duration::from_secs(60));
        assert_eq!(s.client_write_timeout, Duration::from_secs(10));
        assert_eq!(s.max_connections, Some(500));
        assert_eq!(
            server("max_connections: auto").unwrap().max_connections,
            None
        );
        assert_eq!(
            server("max_connections: \"64\"").unwrap().max_connections,
            Some(64)
        );

        let e = server("max_connections: 0").unwrap_err();
        assert!(
            e.contains(
                "server.max_connections: expected a number of connections (at least 1) or auto"
            ),
            "{e}"
        );
        let e = server("max_connections: lots").unwrap_err();
        assert!(e.contains("server.max_connections"), "{e}");
        let e = server("keep_alive_timeout: 0s").unwrap_err();
        assert!(
            e.contains("server.keep_alive_timeout: must be longer than 0"),
            "{e}"
        );
        let e = server("client_write_timeout: 60").unwrap_err();
        assert!(
            e.contains("server.client_write_timeout: durations need a unit"),
            "{e}"
        );
    }
}
