//! `api_keys:` — who may call the router (the original Continuum Router's names: `mode`,
//! the list `api_keys`, `api_keys_file`), read with every problem reported by key path.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::reader::{child, Keys, Reader};

/// Whether a request without a key is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No key: served as anonymous; a wrong key: 401.
    #[default]
    Permissive,
    /// A valid key is required.
    Blocking,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `GET /v1/models`.
    Read,
    /// Every inference endpoint.
    Write,
    /// The files API.
    Files,
    /// The admin API (with `admin.auth.method: api_key`).
    Admin,
    /// Chat endpoints only (`/v1/chat/completions`, `/v1/messages`).
    Chat,
    /// Embeddings only.
    Embeddings,
    /// Image generation only.
    Images,
    /// Audio only.
    Audio,
}

impl Scope {
    /// The scope a config spelling names.
    pub fn parse_name(s: &str) -> Option<Scope> {
        Scope::parse(s)
    }

    fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "read" => Scope::Read,
            "write" => Scope::Write,
            "files" => Scope::Files,
            "admin" => Scope::Admin,
            "chat" => Scope::Chat,
            "embeddings" => Scope::Embeddings,
            "images" => Scope::Images,
            "audio" => Scope::Audio,
            _ => return None,
        })
    }

    /// Its spelling in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Files => "files",
            Scope::Admin => "admin",
            Scope::Chat => "chat",
            Scope::Embeddings => "embeddings",
            Scope::Images => "images",
            Scope::Audio => "audio",
        }
    }
}

/// A request rate: a sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: u32,
}

/// One API key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyConfig {
    /// SHA-256 of the key (`key` is hashed when read; `key_hash` is given as such). The
    /// key itself is not kept.
    pub digest: [u8; 32],
    /// Identifier (logs, metrics, rate limits); `key-<n>` when not given.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// The user it belongs to.
    pub user_id: Option<String>,
    /// The organization it belongs to.
    pub organization_id: Option<String>,
    /// What it may do (default: read and write).
    pub scopes: Vec<Scope>,
    /// Model-name globs it may use (`*`, `?`); empty: every model.
    pub allowed_models: Vec<String>,
    /// Its own rate limit.
    pub rate_limit: Option<Rate>,
    /// Unix seconds after which it is refused.
    pub expires_at: Option<u64>,
    /// Refused when false.
    pub enabled: bool,
}

/// `api_keys:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiKeysConfig {
    /// Whether the section is present at all (absent: no authentication).
    pub enabled: bool,
    /// permissive or blocking.
    pub mode: AuthMode,
    /// Inline keys, then those of `api_keys_file`.
    pub keys: Vec<ApiKeyConfig>,
    /// `api_keys_file`, as written (resolved when the config is loaded).
    pub keys_file: Option<std::path::PathBuf>,
}

const API_KEYS: Keys = Keys {
    known: &["mode", "api_keys", "api_keys_file"],
    unsupported: &[],
};

const KEY: Keys = Keys {
    known: &[
        "key",
        "key_hash",
        "id",
        "name",
        "user_id",
        "organization_id",
        "scopes",
        "allowed_models",
        "rate_limit",
        "expires_at",
        "enabled",
    ],
    unsupported: &[],
};

const RATE: Keys = Keys {
    known: &["requests_per_second", "burst_capacity"],
    unsupported: &[],
};

/// Reads the `api_keys:` section.
pub fn read_api_keys(v: Option<&Value>, r: &mut Reader) -> ApiKeysConfig {
    let mut c = ApiKeysConfig::default();
    let p = "api_keys";
    let Some(m) = v.and_then(|v| r.section(v, p, &API_KEYS)) else {
        return c;
    };
    c.enabled = true;
    c.mode = match r.string(m, p, "mode").as_deref() {
        None | Some("permissive") => AuthMode::Permissive,
        Some("blocking") => AuthMode::Blocking,
        Some(other) => {
            r.error(
                child(p, "mode"),
                format!("'{other}' is not a mode; use permissive or blocking"),
            );
            AuthMode::Permissive
        }
    };
    if let Some(list) = m.get("api_keys").filter(|v| !v.is_null()) {
        c.keys = read_key_list(list, &child(p, "api_keys"), 0, r);
    }
    c.keys_file = r
        .string(m, p, "api_keys_file")
        .filter(|f| !f.is_empty())
        .map(std::path::PathBuf::from);
    check_unique_ids(&c.keys, p, r);
    c
}

/// Reads a list of key entries at `path`; `first` numbers default ids after earlier keys.
pub fn read_key_list(v: &Value, path: &str, first: usize, r: &mut Reader) -> Vec<ApiKeyConfig> {
    let Value::Array(list) = v else {
        r.error(path, "expected a list of keys ({key, id, scopes, ...})");
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let ep = format!("{path}[{i}]");
            let m = r.section(e, &ep, &KEY)?;
            read_key(m, &ep, first + i + 1, r)
        })
        .collect()
}

/// Ids must be unique: they name keys in rate limits, logs and metrics.
pub fn check_unique_ids(keys: &[ApiKeyConfig], path: &str, r: &mut Reader) {
    let mut seen = std::collections::HashSet::new();
    for k in keys {
        if !seen.insert(k.id.as_str()) {
            r.error(
                child(path, "api_keys"),
                format!("two keys have the id '{}'", k.id),
            );
        }
    }
}

fn read_key(m: &Map<String, Value>, p: &str, n: usize, r: &mut Reader) -> Option<ApiKeyConfig> {
    let key = r.string(m, p, "key").filter(|k| !k.is_empty());
    let hash = r.string(m, p, "key_hash");
    let digest = match (key, hash) {
        (Some(_), Some(_)) => {
            r.error(
                child(p, "key_hash"),
                "give either key or key_hash, not both",
            );
            None
        }
        (Some(k), None) => Some(Sha256::digest(k.as_bytes()).into()),
        (None, Some(h)) => match parse_hash(&h) {
            Some(d) => Some(d),
            None => {
                r.error(
                    child(p, "key_hash"),
                    "expected sha256:<64 hex digits> (e.g. from `printf %s KEY | sha256sum`)",
                );
                None
            }
        },
        (None, None) => {
            r.missing(child(p, "key"), "key (or key_hash)");
            None
        }
    };
    let id = r
        .string(m, p, "id")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("key-{n}"));
    let scopes = match r.string_list(m, p, "scopes") {
        Some(list) => list
            .iter()
            .filter_map(|s| {
                let parsed = Scope::parse(s);
                if parsed.is_none() {
                    r.error(
                        child(p, "scopes"),
                        format!("'{s}' is not a scope; use read, write, files, admin, chat, embeddings, images or audio"),
                    );
                }
                parsed
            })
            .collect(),
        None => vec![Scope::Read, Scope::Write],
    };
    let allowed_models = r.string_list(m, p, "allowed_models").unwrap_or_default();
    let rate_limit = m
        .get("rate_limit")
        .filter(|v| !v.is_null())
        .and_then(|v| read_rate(v, &child(p, "rate_limit"), r));
    let expires_at = r
        .string(m, p, "expires_at")
        .and_then(|s| match parse_rfc3339(&s) {
            Some(t) => Some(t),
            None => {
                r.error(
                    child(p, "expires_at"),
                    format!("'{s}' is not an RFC 3339 time like 2027-01-01T00:00:00Z"),
                );
                None
            }
        });
    let enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    Some(ApiKeyConfig {
        digest: digest?,
        id,
        name: r.string(m, p, "name"),
        user_id: r.string(m, p, "user_id"),
        organization_id: r.string(m, p, "organization_id"),
        scopes,
        allowed_models,
        rate_limit,
        expires_at,
        enabled,
    })
}

/// A rate: an integer per minute (the original form), or
/// `{requests_per_second, burst_capacity}`.
pub fn read_rate(v: &Value, p: &str, r: &mut Reader) -> Option<Rate> {
    match v {
        Value::Number(n) => match n.as_u64().filter(|n| *n > 0) {
            Some(per_minute) => Some(Rate {
                per_second: per_minute as f64 / 60.0,
                burst: u32::try_from(per_minute).unwrap_or(u32::MAX),
            }),
            None => {
                r.error(p, "expected a positive number of requests per minute");
                None
            }
        },
        Value::Object(_) => {
            let m = r.section(v, p, &RATE)?;
            let rps = r.number(m, p, "requests_per_second");
            let burst = r.integer(m, p, "burst_capacity");
            match rps {
                Some(x) if x > 0.0 && x.is_finite() => {}
                Some(_) => {
                    r.error(child(p, "requests_per_second"), "must be above 0");
                    return None;
                }
                None => {
                    r.missing(child(p, "requests_per_second"), "requests_per_second");
                    return None;
                }
            }
            let per_second = rps?;
            let burst = match burst {
                Some(0) => {
                    r.error(child(p, "burst_capacity"), "must be at least 1");
                    return None;
                }
                Some(b) => u32::try_from(b).unwrap_or(u32::MAX),
                None => per_second.ceil().max(1.0) as u32,
            };
            Some(Rate { per_second, burst })
        }
        _ => {
            r.error(
                p,
                "expected requests per minute, or {requests_per_second, burst_capacity}",
            );
            None
        }
    }
}

fn parse_hash(h: &str) -> Option<[u8; 32]> {
    let hex = h.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `2026-12-02T04:23:44Z` (UTC, seconds).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix seconds of an RFC 3339 time (`2027-01-01T00:00:00Z`, `…+02:00`, fractions ignored).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (y, mo, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (t, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            t,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let time = time.split('.').next()?;
    let mut t = time.split(':');
    let (h, mi, sec): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + sec - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        use std::time::UNIX_EPOCH;
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_185_424);
        assert_eq!(rfc3339(t), "2026-12-02T04:23:44Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2027-01-01T00:00:00Z"), Some(1_798_761_600));
        assert_eq!(
            parse_rfc3339("2027-01-01T02:00:00.5+02:00"),
            Some(1_798_761_600)
        );
        assert_eq!(parse_rfc3339("2027-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }

    #[test]
    fn hashes() {
        let d: [u8; 32] = Sha256::digest(b"secret-key").into();
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_hash(&format!("sha256:{hex}")), Some(d));
        assert_eq!(parse_hash("sha256:abc"), None);
        assert_eq!(parse_hash(&hex), None);
    }
}

/// Where rate-limit buckets (or cached responses) live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RateStorage {
    /// In this process.
    #[default]
    Memory,
    /// In a Redis shared by several routers.
    Redis {
        /// `redis://host:port`.
        url: String,
        /// Prefix of every bucket key.
        key_prefix: String,
        /// Longest wait for one decision before failing open (or closed).
        timeout: std::time::Duration,
    },
}

/// An IP network from a CIDR (`10.0.0.0/8`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

/// `10.0.0.0/8` (as [`IpNet::parse`] reads it), for `config show`.
impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNet {
    /// Parses `a.b.c.d/n`, `a:b::/n`, or a bare address.
    pub fn parse(s: &str) -> Option<IpNet> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.trim().parse().ok()?, Some(p.trim().parse::<u8>().ok()?)),
            None => (s.trim().parse().ok()?, None),
        };
        let max = match addr {
            std::net::IpAddr::V4(_) => 32,
            std::net::IpAddr::V6(_) => 128,
        };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `storage` (memory | redis) and `redis: {url, key_prefix, timeout}` of a section at `p`
/// (`rate_limiting`, `cache`).
pub fn read_storage(m: &serde_json::Map<String, Value>, p: &str, r: &mut Reader) -> RateStorage {
    match r.string(m, p, "storage").as_deref() {
        None | Some("memory") => RateStorage::Memory,
        Some("redis") => {
            let rp = child(p, "redis");
            let rm = m.get("redis").and_then(|v| r.section(v, &rp, &REDIS));
            let url = rm
                .and_then(|rm| r.string(rm, &rp, "url"))
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
            if let Err(e) = crate::redis::parse_url(&url) {
                r.error(child(&rp, "url"), e);
            }
            let key_prefix = rm
                .and_then(|rm| r.string(rm, &rp, "key_prefix"))
                .unwrap_or_else(|| "continuum:".into());
            let timeout = rm
                .and_then(|rm| r.duration(rm, &rp, "timeout"))
                .unwrap_or(std::time::Duration::from_millis(100));
            RateStorage::Redis {
                url,
                key_prefix,
                timeout,
            }
        }
        Some(other) => {
            r.error(
                child(p, "storage"),
                format!("'{other}' is not a storage; use memory or redis"),
            );
            RateStorage::Memory
        }
    }
}

/// `rate_limiting:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RateLimitingConfig {
    /// Limits apply at all.
    pub enabled: bool,
    /// Where buckets live.
    pub storage: RateStorage,
    /// Per client: API key id, else client IP.
    pub per_client: Option<Rate>,
    /// Per API key (keyed callers only).
    pub per_api_key: Option<Rate>,
    /// The whole router.
    pub global: Option<Rate>,
    /// Each backend (protects upstreams).
    pub per_backend: Option<Rate>,
    /// Client networks never limited.
    pub whitelist: Vec<IpNet>,
    /// API key ids (or the original's raw keys, kept as SHA-256) never limited.
    pub bypass_keys: Vec<String>,
    /// Digests of `bypass_keys` entries, for the original's raw-key form.
    pub bypass_digests: Vec<[u8; 32]>,
    /// Take the client IP from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// With `trust_forwarded_for`: the right-most hop (set by the nearest proxy) rather
    /// than the left-most (set by the client, forgeable).
    pub use_rightmost_xff: bool,
    /// When Redis cannot decide: serve anyway (true, the default) or refuse with 503.
    pub fail_open: bool,
}

const RATE_LIMITING: Keys = Keys {
    known: &[
        "enabled",
        "storage",
        "limits",
        "whitelist",
        "bypass_keys",
        "trust_forwarded_for",
        "use_rightmost_xff",
        "redis",
        "fail_open",
    ],
    unsupported: &[],
};

const REDIS: Keys = Keys {
    known: &["url", "key_prefix", "timeout"],
    unsupported: &[],
};

const LIMITS: Keys = Keys {
    known: &["per_client", "per_api_key", "global", "per_backend"],
    unsupported: &["per_model"],
};

/// Reads the `rate_limiting:` section.
pub fn read_rate_limiting(v: Option<&Value>, r: &mut Reader) -> RateLimitingConfig {
    let mut c = RateLimitingConfig {
        use_rightmost_xff: true,
        fail_open: true,
        ..RateLimitingConfig::default()
    };
    let p = "rate_limiting";
    let Some(m) = v.and_then(|v| r.section(v, p, &RATE_LIMITING)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    c.storage = read_storage(m, p, r);
    if let Some(limits) = m.get("limits").filter(|v| !v.is_null()) {
        let lp = child(p, "limits");
        if let Some(lm) = r.section(limits, &lp, &LIMITS) {
            let mut rate = |key: &str| {
                lm.get(key)
                    .filter(|v| !v.is_null())
                    .and_then(|v| read_rate(v, &child(&lp, key), r))
            };
            c.per_client = rate("per_client");
            c.per_api_key = rate("per_api_key");
            c.global = rate("global");
            c.per_backend = rate("per_backend");
        }
    }
    for (i, net) in r
        .string_list(m, p, "whitelist")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match IpNet::parse(net) {
            Some(n) => c.whitelist.push(n),
            None => r.error(
                format!("{p}.whitelist[{i}]"),
                format!("'{net}' is not an IP address or CIDR network (10.0.0.0/8)"),
            ),
        }
    }
    c.bypass_keys = r.string_list(m, p, "bypass_keys").unwrap_or_default();
    c.bypass_digests = c
        .bypass_keys
        .iter()
        .map(|k| Sha256::digest(k.as_bytes()).into())
        .collect();
    c.trust_forwarded_for = r.boolean(m, p, "trust_forwarded_for").unwrap_or(false);
    c.use_rightmost_xff = r.boolean(m, p, "use_rightmost_xff").unwrap_or(true);
    c.fail_open = r.boolean(m, p, "fail_open").unwrap_or(true);
    c
}

#[cfg(test)]
mod net_tests {
    use super::IpNet;

    #[test]
    fn cidrs() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("127.0.0.1")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert_eq!(IpNet::parse("10.0.0.0/33"), None);
        assert_eq!(
            IpNet::parse("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(IpNet::parse("::1").unwrap().to_string(), "::1/128");
        assert_eq!(IpNet::parse("nope"), None);
    }
}

/// `cors:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CorsConfig {
    /// Answer cross-origin requests at all.
    pub enabled: bool,
    /// Origins allowed: exact (`https://app.example.com`, `tauri://localhost`), a
    /// subdomain wildcard (`https://*.example.com`), or `*`.
    pub allowed_origins: Vec<String>,
    /// Methods a preflight allows.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight allows (`*`: whatever was asked).
    pub allowed_headers: Vec<String>,
    /// Response headers scripts may read.
    pub expose_headers: Vec<String>,
    /// Let requests carry cookies or HTTP authentication.
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer.
    pub max_age: Option<std::time::Duration>,
}

const CORS: Keys = Keys {
    known: &[
        "enabled",
        "allowed_origins",
        "allowed_methods",
        "allowed_headers",
        "expose_headers",
        "allow_credentials",
        "max_age",
    ],
    unsupported: &[],
};

/// Reads the `cors:` section.
pub fn read_cors(v: Option<&Value>, r: &mut Reader) -> CorsConfig {
    let p = "cors";
    let mut c = CorsConfig {
        allowed_methods: ["GET", "POST", "OPTIONS"].map(String::from).to_vec(),
        allowed_headers: vec!["*".into()],
        expose_headers: vec!["X-Request-ID".into()],
        ..CorsConfig::default()
    };
    let Some(m) = v.and_then(|v| r.section(v, p, &CORS)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    c.allowed_origins = r.string_list(m, p, "allowed_origins").unwrap_or_default();
    for (i, o) in c.allowed_origins.iter().enumerate() {
        let ok = o == "*"
            || o == "null"
            || o.split_once("://").is_some_and(|(scheme, host)| {
                !scheme.is_empty()
                    && !host.is_empty()
                    && !host.contains('/')
                    && (!host.contains('*')
                        || (host.starts_with("*.") && host.len() > 2 && !host[2..].contains('*')))
            });
        if !ok {
            r.error(
                format!("{p}.allowed_origins[{i}]"),
                format!("'{o}' is not an origin: scheme://host[:port], scheme://*.domain, or *"),
            );
        }
    }
    if let Some(list) = r.string_list(m, p, "allowed_methods") {
        c.allowed_methods = list.iter().map(|s| s.to_ascii_uppercase()).collect();
    }
    if let Some(list) = r.string_list(m, p, "allowed_headers") {
        c.allowed_headers = list;
    }
    if let Some(list) = r.string_list(m, p, "expose_headers") {
        c.expose_headers = list;
    }
    c.allow_credentials = r.boolean(m, p, "allow_credentials").unwrap_or(false);
    c.max_age = r.duration(m, p, "max_age");
    if c.allow_credentials && c.allowed_origins.iter().any(|o| o == "*") {
        r.error(
            child(p, "allowed_origins"),
            "'*' with allow_credentials would let any site make credentialed requests; list the origins",
        );
    }
    if c.enabled && c.allowed_origins.is_empty() {
        r.error(
            child(p, "allowed_origins"),
            "list the origins browsers may call from (or disable cors)",
        );
    }
    c
}
