//! Operator-facing sections: `admin` (who may use `/admin/*`, usage statistics) and
//! `hot_reload` (applying a changed config without a restart).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::access::IpNet;
use super::reader::{child, Keys, Reader};
use super::types::Secret;

/// How `/admin/*` callers prove who they are (`admin.auth.method`).
#[derive(Debug, Clone, PartialEq)]
pub enum AdminAuth {
    /// No `admin` section: only loopback and Unix-socket clients may call.
    LoopbackOnly,
    /// `none`: anyone who can reach the router.
    None,
    /// `bearer` / `bearer_token`: `Authorization: Bearer TOKEN`.
    Bearer(Secret),
    /// `basic`: `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `ip_whitelist`: clients from these networks (`allowed_ips`).
    IpWhitelist(Vec<IpNet>),
    /// `api_key`: an `api_keys` entry with the `admin` scope, in `X-API-Key` or Bearer.
    ApiKey,
}

/// `admin.stats`: per model, backend and key usage kept for `/admin/stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsConfig {
    /// Collect at all.
    pub enabled: bool,
    /// How far back `/admin/stats` looks (a ring of one-minute buckets).
    pub retention_window: Duration,
    /// Count tokens from responses' usage.
    pub token_tracking: bool,
    /// Snapshots on disk, loaded at start.
    pub persistence: Option<StatsPersistence>,
}

/// `admin.stats.persistence`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsPersistence {
    /// Snapshot file (relative paths from the config file's directory).
    pub path: PathBuf,
    /// How often a snapshot is written (also at shutdown).
    pub snapshot_interval: Duration,
    /// A snapshot older than this is not loaded at start.
    pub max_age: Duration,
}

impl Default for StatsConfig {
    fn default() -> StatsConfig {
        StatsConfig {
            enabled: true,
            retention_window: Duration::from_secs(24 * 3600),
            token_tracking: true,
            persistence: None,
        }
    }
}

/// `admin:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Who may call `/admin/*`.
    pub auth: AdminAuth,
    /// Usage statistics.
    pub stats: StatsConfig,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            auth: AdminAuth::LoopbackOnly,
            stats: StatsConfig::default(),
        }
    }
}

const ADMIN: Keys = Keys {
    known: &["auth", "stats", "webui"],
    unsupported: &[],
};

const ADMIN_AUTH: Keys = Keys {
    known: &[
        "method",
        "token",
        "bearer_token",
        "username",
        "password",
        "allowed_ips",
    ],
    unsupported: &[],
};

const STATS: Keys = Keys {
    known: &[
        "enabled",
        "retention_window",
        "token_tracking",
        "persistence",
    ],
    unsupported: &[],
};

const PERSISTENCE: Keys = Keys {
    known: &["enabled", "path", "snapshot_interval", "max_age"],
    unsupported: &[],
};

/// The longest `retention_window` (one-minute buckets are kept for it).
const MAX_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Reads the `admin:` section.
pub fn read_admin(v: Option<&Value>, r: &mut Reader) -> AdminConfig {
    let p = "admin";
    let mut c = AdminConfig::default();
    let Some(m) = v.and_then(|v| r.section(v, p, &ADMIN)) else {
        return c;
    };
    if let Some(a) = m
        .get("auth")
        .and_then(|v| r.section(v, "admin.auth", &ADMIN_AUTH))
    {
        let Some(auth) = read_admin_auth(a, r) else {
            return c;
        };
        c.auth = auth;
    }
    if let Some(s) = m
        .get("stats")
        .and_then(|v| r.section(v, "admin.stats", &STATS))
    {
        read_stats(s, &mut c.stats, r);
    }
    c
}

/// Reads `admin.auth`; None when it names no `method` (the rest of `admin` is then not
/// read).
fn read_admin_auth(a: &Map<String, Value>, r: &mut Reader) -> Option<AdminAuth> {
    let ap = "admin.auth";
    let secret = |r: &mut Reader, key: &str| r.string(a, ap, key).filter(|s| !s.is_empty());
    let Some(method) = r.string(a, ap, "method") else {
        r.missing(
            child(ap, "method"),
            "method (none, bearer, bearer_token, basic, ip_whitelist or api_key)",
        );
        return None;
    };
    Some(match method.as_str() {
        "none" => AdminAuth::None,
        "bearer" | "bearer_token" => {
            match secret(r, "token").or_else(|| secret(r, "bearer_token")) {
                Some(t) => AdminAuth::Bearer(Secret::new(t)),
                None => {
                    let key = if a.contains_key("bearer_token") {
                        "bearer_token"
                    } else {
                        "token"
                    };
                    r.missing(child(ap, key), "the admin token (token or bearer_token)");
                    AdminAuth::None
                }
            }
        }
        "basic" => {
            let username = r.string(a, ap, "username");
            let password = secret(r, "password");
            if username.as_deref().is_none_or(str::is_empty) {
                r.missing(child(ap, "username"), "username (method: basic)");
            }
            if password.is_none() {
                r.missing(child(ap, "password"), "password (method: basic)");
            }
            AdminAuth::Basic {
                username: username.unwrap_or_default(),
                password: Secret::new(password.unwrap_or_default()),
            }
        }
        "ip_whitelist" => {
            let list = r.string_list(a, ap, "allowed_ips").unwrap_or_default();
            if list.is_empty() {
                r.error(
                    child(ap, "allowed_ips"),
                    "list the client networks (CIDR) that may use the admin API",
                );
            }
            let mut nets = Vec::new();
            for (i, net) in list.iter().enumerate() {
                match IpNet::parse(net) {
                    Some(n) => nets.push(n),
                    None => r.error(
                        format!("{ap}.allowed_ips[{i}]"),
                        format!("'{net}' is not an IP address or CIDR network"),
                    ),
                }
            }
            AdminAuth::IpWhitelist(nets)
        }
        "api_key" => AdminAuth::ApiKey,
        other => {
            r.error(
                child(ap, "method"),
                format!("'{other}' is not one of: none, bearer, bearer_token, basic, ip_whitelist, api_key"),
            );
            AdminAuth::None
        }
    })
}

/// Reads `admin.stats` into `stats`.
fn read_stats(s: &Map<String, Value>, stats: &mut StatsConfig, r: &mut Reader) {
    let sp = "admin.stats";
    stats.enabled = r.boolean(s, sp, "enabled").unwrap_or(true);
    if let Some(d) = r.duration(s, sp, "retention_window") {
        if d < Duration::from_secs(60) || d > MAX_RETENTION {
            r.error(
                child(sp, "retention_window"),
                "must be between 1m and 7d (one-minute buckets are kept)",
            );
        }
        stats.retention_window = d;
    }
    stats.token_tracking = r.boolean(s, sp, "token_tracking").unwrap_or(true);
    let pp = "admin.stats.persistence";
    if let Some(ps) = s
        .get("persistence")
        .and_then(|v| r.section(v, pp, &PERSISTENCE))
    {
        if r.boolean(ps, pp, "enabled").unwrap_or(true) {
            let path = r.string(ps, pp, "path").filter(|s| !s.is_empty());
            if path.is_none() {
                r.missing(child(pp, "path"), "the snapshot file's path");
            }
            let snapshot_interval = r
                .duration(ps, pp, "snapshot_interval")
                .unwrap_or(Duration::from_secs(300));
            if snapshot_interval < Duration::from_secs(1) {
                r.error(child(pp, "snapshot_interval"), "must be at least 1s");
            }
            stats.persistence = Some(StatsPersistence {
                path: PathBuf::from(path.unwrap_or_default()),
                snapshot_interval,
                max_age: r
                    .duration(ps, pp, "max_age")
                    .unwrap_or(Duration::from_secs(7 * 24 * 3600)),
            });
        }
    }
}

/// `hot_reload:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct HotReloadConfig {
    /// Watch the config file (and the files it names) and apply changes.
    pub enabled: bool,
    /// How often the watched files are checked for a change.
    pub poll_interval: Duration,
}

impl Default for HotReloadConfig {
    fn default() -> HotReloadConfig {
        HotReloadConfig {
            enabled: false,
            poll_interval: Duration::from_secs(1),
        }
    }
}

const HOT_RELOAD: Keys = Keys {
    known: &["enabled", "poll_interval"],
    unsupported: &[],
};

/// Reads the `hot_reload:` section.
pub fn read_hot_reload(v: Option<&Value>, r: &mut Reader) -> HotReloadConfig {
    let p = "hot_reload";
    let mut c = HotReloadConfig::default();
    let Some(m) = v.and_then(|v| r.section(v, p, &HOT_RELOAD)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    if let Some(d) = r.duration(m, p, "poll_interval") {
        if d < Duration::from_millis(10) {
            r.error(child(p, "poll_interval"), "must be at least 10ms");
        }
        c.poll_interval = d;
    }
    c
}

/// `tracing:` section: request ids, W3C trace context and OTLP span export.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// Ids are taken, propagated and echoed at all.
    pub enabled: bool,
    /// Read and propagate W3C `traceparent` / `tracestate`.
    pub w3c_trace_context: bool,
    /// Header carrying the trace id (echoed on responses).
    pub trace_id_header: http::HeaderName,
    /// Header carrying the request id.
    pub request_id_header: http::HeaderName,
    /// Header carrying the correlation id (passed to backends, echoed).
    pub correlation_id_header: http::HeaderName,
    /// OTLP/HTTP collector root (`/v1/traces` is appended); `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported spans.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> TracingConfig {
        TracingConfig {
            enabled: false,
            w3c_trace_context: true,
            trace_id_header: http::HeaderName::from_static("x-trace-id"),
            request_id_header: http::HeaderName::from_static("x-request-id"),
            correlation_id_header: http::HeaderName::from_static("x-correlation-id"),
            otlp_endpoint: None,
            service_name: "continuum".into(),
        }
    }
}

const TRACING: Keys = Keys {
    known: &[
        "enabled",
        "w3c_trace_context",
        "headers",
        "otlp_endpoint",
        "service_name",
    ],
    unsupported: &[],
};

const TRACING_HEADERS: Keys = Keys {
    known: &["trace_id", "request_id", "correlation_id"],
    unsupported: &[],
};

/// Reads the `tracing:` section.
pub fn read_tracing(v: Option<&Value>, r: &mut Reader) -> TracingConfig {
    let p = "tracing";
    let mut c = TracingConfig::default();
    let Some(m) = v.and_then(|v| r.section(v, p, &TRACING)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    c.w3c_trace_context = r.boolean(m, p, "w3c_trace_context").unwrap_or(true);
    let hp = "tracing.headers";
    if let Some(h) = m
        .get("headers")
        .and_then(|v| r.section(v, hp, &TRACING_HEADERS))
    {
        for (key, slot) in [
            ("trace_id", &mut c.trace_id_header),
            ("request_id", &mut c.request_id_header),
            ("correlation_id", &mut c.correlation_id_header),
        ] {
            if let Some(name) = r.string(h, hp, key) {
                match http::HeaderName::from_bytes(name.as_bytes()) {
                    Ok(n) => *slot = n,
                    Err(_) => r.error(child(hp, key), format!("'{name}' is not a header name")),
                }
            }
        }
    }
    if let Some(url) = r.string(m, p, "otlp_endpoint").filter(|s| !s.is_empty()) {
        let url = url.trim_end_matches('/').to_string();
        let ok = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .is_some_and(|rest| !rest.is_empty() && url.parse::<http::Uri>().is_ok());
        if !ok {
            r.error(
                child(p, "otlp_endpoint"),
                format!("'{url}' is not an http(s) URL of an OTLP/HTTP collector (e.g. http://localhost:4318)"),
            );
        }
        c.otlp_endpoint = Some(url);
    }
    if let Some(name) = r.string(m, p, "service_name").filter(|s| !s.is_empty()) {
        c.service_name = name;
    }
    c
}

/// `cache:` section: identical deterministic non-streamed requests answered from a cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Cache at all.
    pub enabled: bool,
    /// In this process, or in a Redis shared by several routers.
    pub storage: super::access::RateStorage,
    /// How long an answer is reused.
    pub ttl: Duration,
    /// Most answers kept in memory (the oldest go first).
    pub max_entries: usize,
    /// Only requests with `temperature: 0` or a `seed`.
    pub only_deterministic: bool,
    /// Answers larger than this are not kept.
    pub max_entry_size: u64,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            enabled: false,
            storage: Default::default(),
            ttl: Duration::from_secs(600),
            max_entries: 10_000,
            only_deterministic: true,
            max_entry_size: 1 << 20,
        }
    }
}

const CACHE: Keys = Keys {
    known: &[
        "enabled",
        "storage",
        "redis",
        "ttl",
        "max_entries",
        "only_deterministic",
        "max_entry_size",
    ],
    unsupported: &[],
};

/// Reads the `cache:` section.
pub fn read_cache(v: Option<&Value>, r: &mut Reader) -> CacheConfig {
    let p = "cache";
    let mut c = CacheConfig::default();
    let Some(m) = v.and_then(|v| r.section(v, p, &CACHE)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    c.storage = super::access::read_storage(m, p, r);
    if let Some(ttl) = r.duration(m, p, "ttl") {
        if ttl < Duration::from_secs(1) {
            r.error(child(p, "ttl"), "must be at least 1s");
        }
        c.ttl = ttl;
    }
    if let Some(n) = r.integer(m, p, "max_entries") {
        if n == 0 {
            r.error(child(p, "max_entries"), "must be at least 1");
        }
        c.max_entries = usize::try_from(n).unwrap_or(usize::MAX);
    }
    c.only_deterministic = r.boolean(m, p, "only_deterministic").unwrap_or(true);
    if let Some(n) = r.byte_size(m, p, "max_entry_size") {
        c.max_entry_size = n;
    }
    c
}

/// A backend's `auth: {type: oauth, oauth: {...}}`: its bearer token comes from an OAuth
/// 2.0 device authorization grant (`continuum auth login --backend NAME`), kept in
/// `token_store` and refreshed by `serve` before it expires.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthConfig {
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret, for providers that want one.
    pub client_secret: Option<Secret>,
    /// RFC 8628 device authorization endpoint.
    pub device_authorization_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// The JSON file tokens are kept in (mode 0600), shared by backends.
    pub token_store: PathBuf,
}

const AUTH: Keys = Keys {
    known: &["type", "oauth"],
    unsupported: &[],
};

const OAUTH: Keys = Keys {
    known: &[
        "client_id",
        "client_secret",
        "device_authorization_url",
        "token_url",
        "scopes",
        "token_store",
    ],
    unsupported: &[],
};

/// The default `token_store`.
pub const DEFAULT_TOKEN_STORE: &str = "~/.config/continuum-router/tokens.json";

/// Reads a backend's `auth` section at `p` (`backends[i].auth`).
pub fn read_backend_auth(v: &Value, p: &str, r: &mut Reader) -> Option<OAuthConfig> {
    let m = r.section(v, p, &AUTH)?;
    match r.string(m, p, "type").as_deref() {
        Some("oauth") => {}
        Some(other) => {
            r.error(
                child(p, "type"),
                format!("'{other}' is not an auth type; the one supported is oauth"),
            );
            return None;
        }
        None => {
            r.missing(child(p, "type"), "type (oauth)");
            return None;
        }
    }
    let op = child(p, "oauth");
    let Some(o) = m.get("oauth").and_then(|v| r.section(v, &op, &OAUTH)) else {
        r.missing(op, "the oauth settings");
        return None;
    };
    let url = |r: &mut Reader, key: &str| {
        let u = r.string(o, &op, key).filter(|s| !s.is_empty());
        match &u {
            None => r.missing(child(&op, key), key),
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => r.error(
                child(&op, key),
                format!("'{u}' must start with http:// or https://"),
            ),
            Some(_) => {}
        }
        u.unwrap_or_default()
    };
    let device_authorization_url = url(r, "device_authorization_url");
    let token_url = url(r, "token_url");
    let client_id = r.string(o, &op, "client_id").filter(|s| !s.is_empty());
    if client_id.is_none() {
        r.missing(child(&op, "client_id"), "client_id");
    }
    Some(OAuthConfig {
        client_id: client_id.unwrap_or_default(),
        client_secret: r
            .string(o, &op, "client_secret")
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        device_authorization_url,
        token_url,
        scopes: r.string_list(o, &op, "scopes").unwrap_or_default(),
        token_store: PathBuf::from(
            r.string(o, &op, "token_store")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_TOKEN_STORE.into()),
        ),
    })
}
