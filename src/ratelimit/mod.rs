//! In-memory rate limiting by GCRA (the generic cell rate algorithm, equivalent to a token
//! bucket): one atomic "theoretical arrival time" per limited subject, updated with a
//! compare-and-swap, so a decision takes no lock and no allocation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::config::access::{Rate, RateLimitingConfig, RateStorage};

pub mod redis;

/// The answer to "may this request pass?", with what the `x-ratelimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request passes.
    pub allowed: bool,
    /// The burst size (`x-ratelimit-limit`).
    pub limit: u32,
    /// Requests that could pass right now after this one (`x-ratelimit-remaining`).
    pub remaining: u32,
    /// Until the limiter is full again (`x-ratelimit-reset`).
    pub reset: Duration,
    /// Until a refused request would pass (`Retry-After`); zero when allowed.
    pub retry_after: Duration,
}

/// One GCRA limiter.
#[derive(Debug)]
pub struct Gcra {
    /// Nanoseconds between two requests at the sustained rate.
    interval: u64,
    /// Requests allowed at once.
    burst: u32,
    /// Theoretical arrival time, in nanoseconds since `epoch`.
    tat: AtomicU64,
    epoch: Instant,
}

impl Gcra {
    /// A full limiter for `rate`.
    pub fn new(rate: Rate, epoch: Instant) -> Gcra {
        let interval = (1e9 / rate.per_second).clamp(1.0, u64::MAX as f64 / 4.0) as u64;
        Gcra {
            interval,
            burst: rate.burst.max(1),
            tat: AtomicU64::new(0),
            epoch,
        }
    }

    /// Whether the limiter is full (idle): dropping it loses nothing.
    fn is_full(&self, now: Instant) -> bool {
        let now = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.tat.load(Ordering::Relaxed) <= now
    }

    /// Decides one request arriving at `now`, taking its slot when it passes.
    pub fn check(&self, now: Instant) -> Decision {
        let now = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let window = self.interval.saturating_mul(u64::from(self.burst));
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = tat.max(now) + self.interval;
            let ahead = new_tat - now;
            if ahead > window {
                let ahead_now = tat.max(now) - now;
                return Decision {
                    allowed: false,
                    limit: self.burst,
                    remaining: 0,
                    reset: Duration::from_nanos(ahead_now),
                    retry_after: Duration::from_nanos(ahead - window),
                };
            }
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Decision {
                        allowed: true,
                        limit: self.burst,
                        remaining: ((window - ahead) / self.interval) as u32,
                        reset: Duration::from_nanos(ahead),
                        retry_after: Duration::ZERO,
                    }
                }
                Err(actual) => tat = actual,
            }
        }
    }
}

/// Who a per-client limit counts: the API key, else the client's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// An authenticated key, by id.
    Key(Arc<str>),
    /// An anonymous caller, by IP.
    Ip(IpAddr),
    /// An anonymous caller on a Unix socket (one shared bucket).
    Local,
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientId::Key(id) => write!(f, "API key '{id}'"),
            ClientId::Ip(ip) => write!(f, "client {ip}"),
            ClientId::Local => f.write_str("local clients"),
        }
    }
}

/// Subjects with limiters created on first sight. Idle (full) limiters are dropped when
/// the map reaches its cap, so a flood of distinct clients cannot grow memory without
/// bound.
#[derive(Debug)]
struct Keyed<K> {
    rate: Rate,
    epoch: Instant,
    map: Mutex<HashMap<K, Gcra>>,
}

/// Most limiters kept per dimension before idle ones are dropped.
const MAX_SUBJECTS: usize = 100_000;

impl<K: std::hash::Hash + Eq + Clone> Keyed<K> {
    fn new(rate: Rate, epoch: Instant) -> Keyed<K> {
        Keyed {
            rate,
            epoch,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, subject: &K, now: Instant) -> Decision {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = map.get(subject) {
            return g.check(now);
        }
        if map.len() >= MAX_SUBJECTS {
            map.retain(|_, g| !g.is_full(now));
            if map.len() >= MAX_SUBJECTS {
                map.clear();
            }
        }
        let g = Gcra::new(self.rate, self.epoch);
        let d = g.check(now);
        map.insert(subject.clone(), g);
        d
    }
}

/// The `rate_limiting` section at run time: buckets in memory, or in Redis.
#[derive(Debug)]
pub struct Limits {
    config: RateLimitingConfig,
    clients: Option<Keyed<ClientId>>,
    keys: Option<Keyed<Arc<str>>>,
    global: Option<Gcra>,
    backends: Option<Keyed<usize>>,
    store: Option<redis::RedisStore>,
}

/// Why a request may not pass.
#[derive(Debug)]
pub enum AdmitError {
    /// A limit was hit: whose, and the limiter's answer.
    Limited(String, Decision),
    /// Redis could not decide and `fail_open` is off.
    StoreDown(String),
}

/// A caller identified by API key, as the limits see it.
pub struct KeyedCaller<'a> {
    /// The key's id.
    pub id: &'a Arc<str>,
    /// SHA-256 of the key (bypass by raw key).
    pub digest: &'a [u8; 32],
    /// The key's own `rate_limit`, when the limits (Redis) keep it.
    pub own_rate: Option<Rate>,
}

/// A refusal: whose limit, and the limiter's answer.
pub type Refused = (String, Decision);

impl Limits {
    /// Limiters for an enabled `rate_limiting` section (`None` when it is off), for
    /// `workers` worker threads.
    pub fn from_config(
        c: &RateLimitingConfig,
        epoch: Instant,
        workers: usize,
    ) -> Result<Option<Limits>, String> {
        if !c.enabled {
            return Ok(None);
        }
        let store = match &c.storage {
            RateStorage::Memory => None,
            RateStorage::Redis {
                url,
                key_prefix,
                timeout,
            } => Some(redis::RedisStore::new(url, key_prefix, *timeout, workers)?),
        };
        Ok(Some(Limits {
            config: c.clone(),
            clients: c.per_client.map(|r| Keyed::new(r, epoch)),
            keys: c.per_api_key.map(|r| Keyed::new(r, epoch)),
            global: c.global.map(|r| Gcra::new(r, epoch)),
            backends: c.per_backend.map(|r| Keyed::new(r, epoch)),
            store,
        }))
    }

    /// Whether buckets live in Redis (then API keys' own limits are kept there too).
    pub fn shared(&self) -> bool {
        self.store.is_some()
    }

    /// The client's address: the peer, or with `trust_forwarded_for` the
    /// `X-Forwarded-For` hop chosen by `use_rightmost_xff`.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        if self.config.trust_forwarded_for {
            let hops: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect();
            let hop = if self.config.use_rightmost_xff {
                hops.last()
            } else {
                hops.first()
            };
            if let Some(ip) = hop.and_then(|h| h.parse().ok()) {
                return Some(ip);
            }
        }
        peer
    }

    /// Whether the caller is never limited: a whitelisted address or a bypass key (by id,
    /// or — the original's form — by the key itself).
    fn bypassed(&self, ip: Option<IpAddr>, key: Option<&KeyedCaller<'_>>) -> bool {
        if ip.is_some_and(|ip| self.config.whitelist.iter().any(|n| n.contains(ip))) {
            return true;
        }
        key.is_some_and(|k| {
            self.config.bypass_keys.iter().any(|b| **b == **k.id)
                || self.config.bypass_digests.iter().any(|d| d == k.digest)
        })
    }

    /// Decides a request from `ip` with the authenticated key, if any: per-client,
    /// per-key (and the key's own limit when kept in Redis), then global limits.
    /// `Ok(Some(e))`: Redis failed and the request passes because `fail_open` is on.
    pub async fn admit(
        &self,
        shard: usize,
        ip: Option<IpAddr>,
        key: Option<KeyedCaller<'_>>,
        now: Instant,
    ) -> Result<Option<redis::StoreError>, AdmitError> {
        if self.bypassed(ip, key.as_ref()) {
            return Ok(None);
        }
        let client = match &key {
            Some(k) => ClientId::Key(k.id.clone()),
            None => ip.map_or(ClientId::Local, ClientId::Ip),
        };
        let own = key
            .as_ref()
            .and_then(|k| k.own_rate.filter(|_| self.shared()).map(|r| (k.id, r)));
        let dims = [
            self.clients.as_ref().map(|k| Dim::Client(k, &client)),
            self.keys
                .as_ref()
                .and_then(|k| key.as_ref().map(|c| Dim::Key(k, c.id))),
            own.map(|(id, rate)| Dim::Own(id, rate)),
            self.global.as_ref().map(Dim::Global),
        ];
        for dim in dims.into_iter().flatten() {
            let decided = match &self.store {
                None => Ok(dim.in_memory(now)),
                Some(store) => store.check(shard, &dim.redis_key(), dim.rate(self)).await,
            };
            match decided {
                Ok(d) if d.allowed => {}
                Ok(d) => return Err(AdmitError::Limited(dim.subject(), d)),
                Err(e) if self.config.fail_open => return Ok(Some(e)),
                Err(e) => return Err(AdmitError::StoreDown(e.to_string())),
            }
        }
        Ok(None)
    }

    /// Decides a request to backend `index` (per-backend limit, kept in this process).
    pub fn admit_backend(&self, index: usize, now: Instant) -> Option<Decision> {
        let k = self.backends.as_ref()?;
        let d = k.check(&index, now);
        (!d.allowed).then_some(d)
    }

    /// Whether the presented key (not configured under `api_keys`) is a bypass key.
    pub fn bypass_digest(&self, digest: &[u8; 32]) -> bool {
        self.config.bypass_digests.iter().any(|d| d == digest)
    }
}

/// One limit a request is checked against.
enum Dim<'a> {
    Client(&'a Keyed<ClientId>, &'a ClientId),
    Key(&'a Keyed<Arc<str>>, &'a Arc<str>),
    /// An API key's own `rate_limit` (kept here only with Redis storage).
    Own(&'a Arc<str>, Rate),
    Global(&'a Gcra),
}

impl Dim<'_> {
    fn in_memory(&self, now: Instant) -> Decision {
        match self {
            Dim::Client(k, c) => k.check(c, now),
            Dim::Key(k, id) => k.check(id, now),
            Dim::Global(g) => g.check(now),
            // Without Redis, a key's own limit is checked with the key (`crate::auth`).
            Dim::Own(_, rate) => Decision {
                allowed: true,
                limit: rate.burst,
                remaining: rate.burst,
                reset: Duration::ZERO,
                retry_after: Duration::ZERO,
            },
        }
    }

    fn rate(&self, limits: &Limits) -> Rate {
        match self {
            Dim::Client(k, _) => k.rate,
            Dim::Key(k, _) => k.rate,
            Dim::Own(_, r) => *r,
            Dim::Global(_) => limits.config.global.unwrap_or(Rate {
                per_second: 1.0,
                burst: 1,
            }),
        }
    }

    /// The bucket's name in Redis (under the key prefix).
    fn redis_key(&self) -> String {
        match self {
            Dim::Client(_, ClientId::Key(id)) => format!("client:key:{id}"),
            Dim::Client(_, ClientId::Ip(ip)) => format!("client:ip:{ip}"),
            Dim::Client(_, ClientId::Local) => "client:local".into(),
            Dim::Key(_, id) => format!("api_key:{id}"),
            Dim::Own(id, _) => format!("api_key_own:{id}"),
            Dim::Global(_) => "global".into(),
        }
    }

    /// Whose limit, for the 429 message.
    fn subject(&self) -> String {
        match self {
            Dim::Client(_, c) => c.to_string(),
            Dim::Key(_, id) => format!("API key '{id}'"),
            Dim::Own(id, _) => format!("API key '{id}' (its rate_limit)"),
            Dim::Global(_) => "the router".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let epoch = Instant::now();
        let g = Gcra::new(
            Rate {
                per_second: 10.0,
                burst: 3,
            },
            epoch,
        );
        let t = epoch + Duration::from_secs(1);
        let passed: Vec<u32> = (0..4)
            .map(|_| g.check(t))
            .filter(|d| d.allowed)
            .map(|d| d.remaining)
            .collect();
        assert_eq!(passed, [2, 1, 0]);
        let refused = g.check(t);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.reset, Duration::from_millis(300));
        // One interval later, one more passes.
        assert!(g.check(t + Duration::from_millis(100)).allowed);
        assert!(!g.check(t + Duration::from_millis(100)).allowed);
        // Idle long enough, the burst is back.
        let later = t + Duration::from_secs(10);
        assert_eq!(g.check(later).remaining, 2);
    }
}
