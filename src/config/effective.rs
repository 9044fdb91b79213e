//! The effective configuration written back in the file's own schema (`continuum config
//! show`): every setting the router runs with — defaults, environment and command-line
//! overrides included — as a tree that reads back to the same [`Config`]. Secrets are
//! included; whoever prints the tree redacts it (`http::admin::redact`).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::access::{ApiKeyConfig, AuthMode, Rate, RateStorage};
use super::files::{FilesAuthMethod, MetadataStorage};
use super::interpolate::EnvSource;
use super::model::*;
use super::operations::AdminAuth;
use super::prompts::{MergeStrategy, PromptSource};
use super::Overrides;

/// The whole configuration as a tree in the file's schema.
pub fn to_tree(c: &Config) -> Value {
    let strategy = |s: SelectionStrategy| {
        SelectionStrategy::ALL
            .iter()
            .find(|(_, x)| *x == s)
            .map(|(n, _)| *n)
            .unwrap_or("RoundRobin")
    };
    json!({
        "server": server(&c.server),
        "backends": c.backends.iter().map(backend).collect::<Vec<_>>(),
        "selection_strategy": strategy(c.selection_strategy),
        "timeouts": timeouts(&c.timeouts),
        "logging": {
            "level": c.logging.level,
            "format": match c.logging.format {
                LogFormat::Pretty => "pretty",
                LogFormat::Json => "json",
            },
            "access_log": c.logging.access_log,
        },
        "health_checks": health_checks(&c.health_checks),
        "retry": retry(&c.retry),
        "circuit_breaker": circuit_breaker(&c.circuit_breaker),
        "fallback": fallback(&c.fallback),
        "routing": {
            "bounded_load_epsilon": c.routing.bounded_load_epsilon,
            "cache_aware": {
                "match_threshold": c.routing.cache_aware.match_threshold,
                "balance_abs_threshold": c.routing.cache_aware.balance_abs_threshold,
                "max_nodes": c.routing.cache_aware.max_nodes,
                "max_memory": byte_size(c.routing.cache_aware.max_memory),
                "expiry": duration(c.routing.cache_aware.expiry),
            },
            "load_signals": {
                "enabled": c.routing.load_signals.enabled,
                "interval": duration(c.routing.load_signals.interval),
            },
        },
        "model_configs": c.model_configs.iter().map(|m| json!({
            "id": m.id,
            "aliases": m.aliases,
            "metadata": m.metadata,
            "selection_strategy": m.selection_strategy.map(strategy),
        })).collect::<Vec<_>>(),
        "model_metadata_file": c.model_metadata_file.as_ref().map(|p| p.display().to_string()),
        "metrics": {"enabled": c.metrics.enabled, "path": c.metrics.path},
        "api_keys": api_keys(c),
        "rate_limiting": rate_limiting(c),
        "cors": {
            "enabled": c.cors.enabled,
            "allowed_origins": c.cors.allowed_origins,
            "allowed_methods": c.cors.allowed_methods,
            "allowed_headers": c.cors.allowed_headers,
            "expose_headers": c.cors.expose_headers,
            "allow_credentials": c.cors.allow_credentials,
            "max_age": c.cors.max_age.map(duration),
        },
        "model_aliases": pairs(&c.model_aliases),
        "admin": admin(c),
        "hot_reload": {
            "enabled": c.hot_reload.enabled,
            "poll_interval": duration(c.hot_reload.poll_interval),
        },
        "global_prompts": global_prompts(c),
        "tracing": {
            "enabled": c.tracing.enabled,
            "w3c_trace_context": c.tracing.w3c_trace_context,
            "headers": {
                "trace_id": c.tracing.trace_id_header.as_str(),
                "request_id": c.tracing.request_id_header.as_str(),
                "correlation_id": c.tracing.correlation_id_header.as_str(),
            },
            "otlp_endpoint": c.tracing.otlp_endpoint,
            "service_name": c.tracing.service_name,
        },
        "cache": cache(c),
        "store": {"path": c.store.path.display().to_string()},
        "responses": {"retention": duration(c.responses.retention)},
        "files": files(c),
        "acp": acp(&c.acp),
        "webui": {"enabled": c.webui.enabled, "path_prefix": c.webui.path_prefix},
    })
}

fn acp(a: &super::acp::AcpConfig) -> Value {
    json!({
        "enabled": a.enabled,
        "transport": {"stdio": {"enabled": a.stdio}},
        "default_model": a.default_model,
        "capabilities": {"load_session": a.load_session, "mcp": a.mcp},
        "permissions": {
            "default_policy": a.permissions.default_policy.as_str(),
            "auto_allow": a.permissions.auto_allow,
            "always_ask": a.permissions.always_ask,
        },
        "sessions": {
            "max_concurrent": a.sessions.max_concurrent,
            "idle_timeout": duration(a.sessions.idle_timeout),
            "storage": a.sessions.storage.as_str(),
        },
    })
}

/// A duration in the largest unit that holds it exactly (`"30s"`, `"5m"`, `"250ms"`).
pub fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    const UNITS: [(u128, &str); 7] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    if nanos == 0 {
        return "0s".to_string();
    }
    UNITS
        .iter()
        .find(|(n, _)| nanos % n == 0)
        .map(|(n, unit)| format!("{}{unit}", nanos / n))
        .unwrap_or_else(|| format!("{nanos}ns"))
}

/// A byte size in the largest binary unit that holds it exactly (`"32MB"`), else bytes.
pub fn byte_size(n: u64) -> Value {
    for (shift, unit) in [(30, "GB"), (20, "MB"), (10, "KB")] {
        if n > 0 && n % (1 << shift) == 0 {
            return Value::from(format!("{}{unit}", n >> shift));
        }
    }
    Value::from(n)
}

/// Name → value pairs as a mapping.
fn pairs(list: &[(String, String)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect(),
    )
}

fn server(s: &ServerConfig) -> Value {
    let mut v = json!({
        "bind_address": s.bind_address.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "workers": s.workers,
        "connection_pool_size": s.connection_pool_size,
        "max_body_size": byte_size(s.max_body_size),
        "max_stream_event_size": byte_size(s.max_stream_event_size),
        "shutdown_grace": duration(s.shutdown_grace),
        "expose_backend_header": s.expose_backend_header,
        "max_concurrent_requests": s.max_concurrent_requests,
        "queue_timeout": duration(s.queue_timeout),
        "header_read_timeout": duration(s.header_read_timeout),
        "body_read_timeout": duration(s.body_read_timeout),
        "keep_alive_timeout": duration(s.keep_alive_timeout),
        "client_write_timeout": duration(s.client_write_timeout),
        "max_connections": s.max_connections.map_or(json!("auto"), |n| json!(n)),
    });
    // Unset (the umask's mode) has no spelling: the key is left out.
    if let Some(m) = s.socket_mode {
        v["socket_mode"] = json!(format!("0o{m:o}"));
    }
    v
}

fn backend(b: &BackendConfig) -> Value {
    let mut v = json!({
        "name": b.name,
        "type": b.kind.as_str(),
        "url": b.url,
        "api_key": b.api_key.as_ref().map(|k| k.expose().to_string()),
        "org_id": b.org_id,
        "weight": b.weight,
        "models": b.models,
        "model_aliases": pairs(&b.model_aliases),
        "headers": pairs(&b.headers),
        "retry_override": b.retry_override.as_ref().map(retry),
        "model_configs": b.model_configs.iter().map(|m| json!({
            "id": m.id,
            "aliases": m.aliases,
            "metadata": m.metadata,
        })).collect::<Vec<_>>(),
        "max_concurrent": b.max_concurrent,
        "auth": b.oauth.as_ref().map(|o| json!({
            "type": "oauth",
            "oauth": {
                "client_id": o.client_id,
                "client_secret": o.client_secret.as_ref().map(|s| s.expose().to_string()),
                "device_authorization_url": o.device_authorization_url,
                "token_url": o.token_url,
                "scopes": o.scopes,
                "token_store": o.token_store.display().to_string(),
            },
        })),
        "responses_api": b.responses_api,
        "responses_only_models": b.responses_only_models,
    });
    if b.kind == BackendType::Mock {
        v["mock"] = json!({
            "first_token_latency": duration(b.mock.first_token_latency),
            "tokens_per_second": b.mock.tokens_per_second,
            "fail_rate": b.mock.fail_rate,
        });
    }
    v
}

fn timeouts(t: &TimeoutsConfig) -> Value {
    let standard = |s: &StandardTimeouts| json!({"first_byte": duration(s.first_byte), "total": duration(s.total)});
    let streaming = |s: &StreamingTimeouts| {
        json!({
            "first_byte": duration(s.first_byte),
            "chunk_interval": duration(s.chunk_interval),
            "total": duration(s.total),
        })
    };
    let overrides: Map<String, Value> = t
        .model_overrides
        .iter()
        .map(|(model, (s, st))| {
            let v = json!({"standard": standard(s), "streaming": streaming(st)});
            (model.clone(), v)
        })
        .collect();
    json!({
        "connection": duration(t.connection),
        "request": {
            "standard": standard(&t.standard),
            "streaming": streaming(&t.streaming),
            "image_generation": standard(&t.image_generation),
            "model_overrides": overrides,
        },
    })
}

fn health_checks(h: &HealthChecksConfig) -> Value {
    json!({
        "enabled": h.enabled,
        "interval": duration(h.interval),
        "timeout": duration(h.timeout),
        "unhealthy_threshold": h.unhealthy_threshold,
        "healthy_threshold": h.healthy_threshold,
        "endpoint": h.endpoint,
        "warmup_check_interval": duration(h.warmup_check_interval),
        "max_warmup_duration": duration(h.max_warmup_duration),
    })
}

fn retry(r: &RetryConfig) -> Value {
    json!({
        "max_attempts": r.max_attempts,
        "initial_delay": duration(r.initial_delay),
        "max_delay": duration(r.max_delay),
        "backoff_multiplier": r.backoff_multiplier,
        "jitter": r.jitter,
        "retryable_status_codes": r.retryable_status_codes,
    })
}

fn circuit_breaker(c: &CircuitBreakerConfig) -> Value {
    json!({
        "enabled": c.enabled,
        "failure_threshold": c.failure_threshold,
        "failure_rate_threshold": c.failure_rate_threshold,
        "minimum_requests": c.minimum_requests,
        "timeout": duration(c.timeout),
        "half_open_max_requests": c.half_open_max_requests,
        "half_open_success_threshold": c.half_open_success_threshold,
    })
}

fn fallback(f: &FallbackConfig) -> Value {
    let chains: Map<String, Value> = f
        .chains
        .iter()
        .map(|(model, list)| (model.clone(), json!(list)))
        .collect();
    let t = &f.triggers;
    json!({
        "enabled": f.enabled,
        "fallback_chains": chains,
        "fallback_policy": {
            "trigger_conditions": {
                "error_codes": t.error_codes,
                "timeout": t.timeout,
                "connection_error": t.connection_error,
                "circuit_breaker_open": t.circuit_breaker_open,
                "model_not_found": t.model_not_found,
            },
            "max_fallback_attempts": f.max_fallback_attempts,
        },
        "mid_stream": if f.mid_stream_continue { "continue" } else { "error" },
    })
}

fn rate(r: &Option<Rate>) -> Value {
    match r {
        Some(r) => json!({"requests_per_second": r.per_second, "burst_capacity": r.burst}),
        None => Value::Null,
    }
}

fn storage(s: &RateStorage) -> (Value, Value) {
    match s {
        RateStorage::Memory => (json!("memory"), Value::Null),
        RateStorage::Redis {
            url,
            key_prefix,
            timeout,
        } => (
            json!("redis"),
            json!({"url": url, "key_prefix": key_prefix, "timeout": duration(*timeout)}),
        ),
    }
}

/// `null` (no section: no authentication), else the mode and every key — as its
/// SHA-256 (`key_hash`), the form the router keeps.
fn api_keys(c: &Config) -> Value {
    let a = &c.api_keys;
    if !a.enabled {
        return Value::Null;
    }
    json!({
        "mode": match a.mode {
            AuthMode::Permissive => "permissive",
            AuthMode::Blocking => "blocking",
        },
        "api_keys": a.keys.iter().map(api_key).collect::<Vec<_>>(),
        "api_keys_file": a.keys_file.as_ref().map(|p| p.display().to_string()),
    })
}

fn api_key(k: &ApiKeyConfig) -> Value {
    let hex: String = k.digest.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "key_hash": format!("sha256:{hex}"),
        "id": k.id,
        "name": k.name,
        "user_id": k.user_id,
        "organization_id": k.organization_id,
        "scopes": k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "allowed_models": k.allowed_models,
        "rate_limit": rate(&k.rate_limit),
        "expires_at": k.expires_at.map(|t| {
            crate::config::access::rfc3339(UNIX_EPOCH + Duration::from_secs(t))
        }),
        "enabled": k.enabled,
    })
}

fn rate_limiting(c: &Config) -> Value {
    let r = &c.rate_limiting;
    let (storage, redis) = storage(&r.storage);
    json!({
        "enabled": r.enabled,
        "storage": storage,
        "redis": redis,
        "limits": {
            "per_client": rate(&r.per_client),
            "per_api_key": rate(&r.per_api_key),
            "global": rate(&r.global),
            "per_backend": rate(&r.per_backend),
        },
        "whitelist": r.whitelist.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "bypass_keys": r.bypass_keys,
        "trust_forwarded_for": r.trust_forwarded_for,
        "use_rightmost_xff": r.use_rightmost_xff,
        "fail_open": r.fail_open,
    })
}

fn admin(c: &Config) -> Value {
    let auth = match &c.admin.auth {
        AdminAuth::LoopbackOnly => Value::Null,
        AdminAuth::None => json!({"method": "none"}),
        AdminAuth::Bearer(t) => json!({"method": "bearer", "token": t.expose()}),
        AdminAuth::Basic { username, password } => {
            json!({"method": "basic", "username": username, "password": password.expose()})
        }
        AdminAuth::IpWhitelist(nets) => json!({
            "method": "ip_whitelist",
            "allowed_ips": nets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        AdminAuth::ApiKey => json!({"method": "api_key"}),
    };
    let s = &c.admin.stats;
    let persistence = match &s.persistence {
        None => json!({"enabled": false}),
        Some(p) => json!({
            "enabled": true,
            "path": p.path.display().to_string(),
            "snapshot_interval": duration(p.snapshot_interval),
            "max_age": duration(p.max_age),
        }),
    };
    json!({
        "auth": auth,
        "stats": {
            "enabled": s.enabled,
            "retention_window": duration(s.retention_window),
            "token_tracking": s.token_tracking,
            "persistence": persistence,
        },
    })
}

/// `null` (no section), else the prompts: a file as `prompt_file`/`default_file` (its
/// text is not repeated), else the text (in the form the file gave it).
fn global_prompts(c: &Config) -> Value {
    let g = &c.global_prompts;
    if !g.enabled {
        return Value::Null;
    }
    let entry = |p: &PromptSource| match &p.file {
        Some(f) => json!({"prompt_file": f.display().to_string()}),
        None if p.path.ends_with(".prompt") => json!({"prompt": p.text}),
        None => json!(p.text),
    };
    let map = |list: &[(String, PromptSource)]| -> Map<String, Value> {
        list.iter().map(|(n, p)| (n.clone(), entry(p))).collect()
    };
    let mut v = json!({
        "merge_strategy": match g.merge_strategy {
            MergeStrategy::Prepend => "prepend",
            MergeStrategy::Append => "append",
            MergeStrategy::Replace => "replace",
        },
        "separator": g.separator,
        "prompts_dir": g.prompts_dir.as_ref().map(|p| p.display().to_string()),
        "backends": map(&g.backends),
        "models": map(&g.models),
    });
    match &g.default {
        Some(PromptSource { file: Some(f), .. }) => {
            v["default_file"] = json!(f.display().to_string())
        }
        Some(p) => v["default"] = json!(p.text),
        None => v["default"] = Value::Null,
    }
    v
}

fn cache(c: &Config) -> Value {
    let k = &c.cache;
    let (storage, redis) = storage(&k.storage);
    json!({
        "enabled": k.enabled,
        "storage": storage,
        "redis": redis,
        "ttl": duration(k.ttl),
        "max_entries": k.max_entries,
        "only_deterministic": k.only_deterministic,
        "max_entry_size": byte_size(k.max_entry_size),
    })
}

fn files(c: &Config) -> Value {
    let f = &c.files;
    json!({
        "enabled": f.enabled,
        "max_file_size": byte_size(f.max_file_size),
        "storage_path": f.storage_path.display().to_string(),
        "retention_days": f.retention_days,
        "metadata_storage": match f.metadata_storage {
            MetadataStorage::Memory => "memory",
            MetadataStorage::Persistent => "persistent",
        },
        "cleanup_orphans_on_startup": f.cleanup_orphans_on_startup,
        "auth": {
            "method": match f.auth.method {
                FilesAuthMethod::None => "none",
                FilesAuthMethod::ApiKey => "api_key",
            },
            "required_scope": f.auth.required_scope.as_str(),
            "enforce_ownership": f.auth.enforce_ownership,
            "admin_can_access_all": f.auth.admin_can_access_all,
        },
    })
}

/// Which keys the command line and the environment set, and by what (`--bind`,
/// `CONTINUUM_BIND_ADDRESS`), by the rule [`super::load`] applies: a flag given wins and
/// its variable is then not read.
pub fn override_origins(env: &dyn EnvSource, o: &Overrides) -> Vec<(&'static str, String)> {
    let var = |name: &str| {
        env.var(name)
            .filter(|v| !v.trim().is_empty())
            .map(|_| name.to_string())
    };
    let mut out = Vec::new();
    let mut set = |path: &'static str, flag: bool, flag_name: &str, var_name: Option<&str>| {
        if flag {
            out.push((path, flag_name.to_string()));
        } else if let Some(v) = var_name.and_then(var) {
            out.push((path, v));
        }
    };
    set(
        "server.bind_address",
        !o.bind.is_empty() || o.port.is_some(),
        if o.port.is_some() { "--port" } else { "--bind" },
        Some("CONTINUUM_BIND_ADDRESS"),
    );
    set(
        "backends",
        !o.backends.is_empty(),
        "--backends",
        Some("CONTINUUM_BACKEND_URLS"),
    );
    set(
        "logging.level",
        o.log_level.is_some(),
        "--log-level",
        Some("CONTINUUM_LOG_LEVEL"),
    );
    set(
        "logging.format",
        o.log_format.is_some(),
        "--log-format",
        None,
    );
    set(
        "health_checks.interval",
        o.health_check_interval.is_some(),
        "--health-check-interval",
        None,
    );
    set(
        "model_metadata_file",
        o.model_metadata.is_some(),
        "--model-metadata",
        None,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_text, sample, Format, Strictness};
    use std::collections::HashMap;

    /// `config` as text that `from_text` reads back.
    fn reread(config: &Config) -> Config {
        let text = serde_yaml::to_string(&to_tree(config)).unwrap();
        let (mut back, _) = from_text(
            &text,
            Format::Yaml,
            "shown",
            &HashMap::<String, String>::new(),
            Strictness::Validate,
        )
        .unwrap_or_else(|e| panic!("the shown config does not load: {e}\n{text}"));
        back.source = Value::Null;
        back
    }

    /// A config that sets every section, in every form the reader takes.
    const EVERY_SECTION: &str = r#"server: {bind_address: ["127.0.0.1:9", "unix:/tmp/c.sock"], socket_mode: 0o640, max_body_size: 1000, queue_timeout: 1500ms}
backends:
  - {name: m, type: mock, models: [a, b], model_aliases: {x: a}, mock: {first_token_latency: 3ms, tokens_per_second: 7.5, fail_rate: 0.25}}
  - name: o
    type: openai
    api_key: sk-1
    org_id: org-1
    weight: 4
    headers: {X-Team: r}
    retry_override: {max_attempts: 5}
    model_configs: [{id: gpt-4o, metadata: {display_name: G, pricing: {input_tokens: 1.5}}}]
    max_concurrent: 9
    responses_only_models: [codex]
  - {name: h, url: "http://h:1", auth: {type: oauth, oauth: {client_id: c, client_secret: s, device_authorization_url: "http://a/d", token_url: "http://a/t", scopes: [x], token_store: /tmp/t.json}}}
selection_strategy: LeastLatency
timeouts: {connection: 2s, request: {standard: {total: 1m}, image_generation: {first_byte: 5s}, model_overrides: {a: {streaming: {chunk_interval: 4s}}}}}
logging: {level: debug, format: json}
health_checks: {enabled: false, endpoint: /health, max_warmup_duration: 0s}
retry: {max_attempts: 2, jitter: false, retryable_status_codes: [500]}
circuit_breaker: {timeout: 90s, failure_rate_threshold: 0.75}
fallback: {fallback_chains: {a: [b]}, fallback_policy: {max_fallback_attempts: 1, trigger_conditions: {model_not_found: true}}, mid_stream: continue}
routing: {bounded_load_epsilon: 0.5, cache_aware: {match_threshold: 0.3, balance_abs_threshold: 7, max_nodes: 5000, max_memory: 1MB, expiry: 5m}, load_signals: {enabled: false, interval: 500ms}}
model_configs: [{id: a, aliases: [a2], selection_strategy: Random, metadata: {limits: {context_window: 10}}}]
model_metadata_file: meta.yaml
metrics: {endpoint: /m}
api_keys: {mode: blocking, api_keys: [{key: k1, id: one, name: One, user_id: u, organization_id: o, scopes: [chat, admin], allowed_models: ["a*"], rate_limit: 600, expires_at: "2027-01-01T00:00:00Z", enabled: false}, {key_hash: "sha256:0000000000000000000000000000000000000000000000000000000000000000", rate_limit: {requests_per_second: 2.5, burst_capacity: 4}}], api_keys_file: keys.yaml}
rate_limiting: {storage: redis, redis: {url: "redis://h:1", key_prefix: "p:", timeout: 50ms}, limits: {per_client: {requests_per_second: 1}, global: 60}, whitelist: [10.0.0.0/8, "::1"], bypass_keys: [b1], trust_forwarded_for: true, use_rightmost_xff: false, fail_open: false}
cors: {allowed_origins: ["http://x"], allowed_methods: [get], allow_credentials: true, max_age: 1h}
model_aliases: {fast: a}
admin: {auth: {method: ip_whitelist, allowed_ips: [127.0.0.1]}, stats: {retention_window: 1h, token_tracking: false, persistence: {path: s.json, snapshot_interval: 10s}}}
hot_reload: {poll_interval: 250ms}
global_prompts: {merge_strategy: append, separator: "--", default: hello, prompts_dir: p, backends: {m: {prompt_file: m.md}}, models: {a: short}}
tracing: {w3c_trace_context: false, headers: {trace_id: X-T}, otlp_endpoint: "http://c:4318", service_name: svc}
cache: {ttl: 30s, max_entries: 5, only_deterministic: false, max_entry_size: 2KB}
store: {path: db.redb}
responses: {retention: 2d}
files: {enabled: false, max_file_size: 3MB, storage_path: f, retention_days: 3, metadata_storage: memory, cleanup_orphans_on_startup: true, auth: {method: api_key, required_scope: write, enforce_ownership: false, admin_can_access_all: false}}
webui: {enabled: true, path_prefix: /ops/ui}
acp: {enabled: false, transport: {stdio: {enabled: false}}, default_model: a, capabilities: {load_session: false, mcp: false}, permissions: {default_policy: deny, auto_allow: [read], always_ask: [execute, fetch]}, sessions: {max_concurrent: 3, idle_timeout: 10m, storage: persistent}}
"#;

    fn plain(mut c: Config) -> Config {
        c.source = Value::Null;
        c
    }

    /// Reading the tree back gives the same configuration: nothing is left out, nothing
    /// changes on the way.
    #[test]
    fn the_tree_reads_back_to_the_same_config() {
        let env = HashMap::<String, String>::new();
        for (text, format) in [
            (sample::sample(Format::Yaml, false), Format::Yaml),
            (sample::sample(Format::Yaml, true), Format::Yaml),
            (EVERY_SECTION, Format::Yaml),
        ] {
            let (config, _) = from_text(text, format, "t", &env, Strictness::Validate)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                format!("{:?}", reread(&config)),
                format!("{:?}", plain(config))
            );
        }
        let admin_auths = [
            "admin: {auth: {method: none}}",
            "admin: {auth: {method: bearer_token, bearer_token: t}}",
            "admin: {auth: {method: basic, username: u, password: p}}",
            "admin: {auth: {method: api_key}}",
            "cors: {enabled: false}",
            "global_prompts: {default_file: d.md}",
        ];
        for extra in admin_auths {
            let text = format!("backends: [{{name: m, type: mock}}]\n{extra}\n");
            let (config, _) = from_text(&text, Format::Yaml, "t", &env, Strictness::Validate)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                format!("{:?}", reread(&config)),
                format!("{:?}", plain(config))
            );
        }
        // The built-in defaults (no file) as shown read back to the same values too.
        let defaults = Config::default();
        assert_eq!(
            to_tree(&reread(&defaults)),
            to_tree(&defaults),
            "the defaults as shown"
        );
    }

    /// Key paths of a tree; list items share their list's path.
    fn tree_paths(prefix: &str, v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.insert(p.clone());
                    tree_paths(&p, v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| tree_paths(prefix, i, out)),
            _ => {}
        }
    }

    /// Every key the sample documents (its commented-out examples included) is shown,
    /// so a key added to the sample and the reader is not silently missing from
    /// `config show`.
    #[test]
    fn every_documented_key_is_shown() {
        let env = HashMap::<String, String>::new();
        let mut shown = std::collections::BTreeSet::new();
        let extras = [
            "admin: {auth: {method: bearer, token: t}}",
            "admin: {auth: {method: basic, username: u, password: p}}",
            "global_prompts: {models: {mock-model: {prompt_file: m.md}}, backends: {demo: {prompt: p}}}",
            "rate_limiting: {limits: {per_api_key: 5, per_backend: 9}}",
            "cache: {storage: redis}",
            "model_aliases: {claude-haiku-4-5-20251001: mock-model}",
        ];
        let texts = [
            EVERY_SECTION.to_string(),
            sample::sample(Format::Yaml, false).to_string(),
        ]
        .into_iter()
        .chain(
            extras
                .iter()
                .map(|e| format!("backends: [{{name: m, type: mock}}]\n{e}\n")),
        );
        for text in texts {
            let (config, _) = from_text(&text, Format::Yaml, "t", &env, Strictness::Validate)
                .unwrap_or_else(|e| panic!("{e}"));
            tree_paths("", &to_tree(&config), &mut shown);
        }
        // Spellings the reader takes that are shown in another form.
        let shown_otherwise = [
            "api_keys.api_keys.key",   // as key_hash: the router keeps only the digest
            "admin.auth.bearer_token", // as token
            "metrics.endpoint",        // as path
        ];
        let documented = sample::paths::yaml(sample::sample(Format::Yaml, false));
        let missing: Vec<_> = documented
            .iter()
            .filter(|p| !shown.contains(*p) && !shown_otherwise.contains(&p.as_str()))
            .collect();
        assert!(missing.is_empty(), "not shown by config show: {missing:#?}");
    }

    #[test]
    fn durations_and_sizes_in_their_largest_exact_unit() {
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(byte_size(32 << 20), json!("32MB"));
        assert_eq!(byte_size(1000), json!(1000));
    }

    #[test]
    fn origins_follow_the_load_rule() {
        let env: HashMap<String, String> = [
            ("CONTINUUM_BIND_ADDRESS", "127.0.0.1:1"),
            ("CONTINUUM_LOG_LEVEL", " "),
            ("CONTINUUM_BACKEND_URLS", "http://h"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = Overrides {
            backends: vec!["http://x".into()],
            log_format: Some("json".into()),
            ..Default::default()
        };
        assert_eq!(
            override_origins(&env, &o),
            vec![
                ("server.bind_address", "CONTINUUM_BIND_ADDRESS".to_string()),
                ("backends", "--backends".to_string()),
                ("logging.format", "--log-format".to_string()),
            ]
        );
    }
}
