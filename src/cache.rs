//! The response cache (`cache:`): an identical, deterministic (`temperature: 0` or a
//! `seed`), non-streamed chat request from the same tenant is answered with the earlier
//! answer. The key is a SHA-256 of the endpoint, the tenant (the API key's organisation,
//! else the key id) and the request JSON in canonical form (keys sorted, no whitespace),
//! so formatting and key order do not matter. Entries live in memory (oldest evicted
//! first beyond `max_entries`) or in Redis (shared by several routers, expiring by TTL).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::access::RateStorage;
use crate::config::operations::CacheConfig;
use crate::redis::{RedisClient, Reply};

/// A cache key.
pub type Key = [u8; 32];

/// An answer kept for reuse.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// The HTTP status (always 200 today).
    pub status: u16,
    /// The headers worth replaying (content type, who answered).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Bytes,
}

/// Headers a cached answer keeps.
pub const KEPT_HEADERS: [&str; 3] = ["content-type", "x-continuum-backend", "x-continuum-model"];

impl Cached {
    /// `status`, headers as `name: value` lines, a blank line, then the body.
    fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.body.len() + 128);
        out.put_slice(format!("{}\n", self.status).as_bytes());
        for (n, v) in &self.headers {
            out.put_slice(n.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_u8(b'\n');
        }
        out.put_u8(b'\n');
        out.put_slice(&self.body);
        out.freeze()
    }

    fn decode(raw: Bytes) -> Option<Cached> {
        let end = raw.windows(2).position(|w| w == b"\n\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let mut lines = head.lines();
        let status = lines.next()?.parse().ok()?;
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line.split_once(": ")?;
            headers.push((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ));
        }
        Some(Cached {
            status,
            headers,
            body: raw.slice(end + 2..),
        })
    }
}

struct Memory {
    /// Entries with their expiry and insertion number.
    entries: HashMap<Key, (Instant, u64, Cached)>,
    /// Keys oldest first, with the insertion number they were put under (a key put again
    /// leaves a stale pair behind, skipped when it surfaces).
    order: VecDeque<(Key, u64)>,
    next: u64,
}

enum Store {
    Memory(Mutex<Memory>),
    Redis { client: RedisClient, prefix: String },
}

/// The response cache of an enabled `cache:` section.
pub struct ResponseCache {
    config: CacheConfig,
    store: Store,
    /// Bumped by [`ResponseCache::clear`]: answers of requests begun before are not kept.
    generation: std::sync::atomic::AtomicU64,
}

impl ResponseCache {
    /// The cache for `config` (`None` when off), with `slots` Redis connection slots.
    pub fn from_config(
        config: &CacheConfig,
        slots: usize,
    ) -> Result<Option<ResponseCache>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let store = match &config.storage {
            RateStorage::Memory => Store::Memory(Mutex::new(Memory {
                entries: HashMap::new(),
                order: VecDeque::new(),
                next: 0,
            })),
            RateStorage::Redis {
                url,
                key_prefix,
                timeout,
            } => Store::Redis {
                client: RedisClient::new(url, *timeout, slots)?,
                prefix: format!("{key_prefix}cache:"),
            },
        };
        Ok(Some(ResponseCache {
            config: config.clone(),
            store,
            generation: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Answers larger than this are not kept.
    pub fn max_entry_size(&self) -> u64 {
        self.config.max_entry_size
    }

    /// The key of a request to `endpoint` from `tenant`, or `None` when it may not be
    /// cached (streamed, not deterministic, not a JSON object).
    pub fn key(&self, endpoint: &str, tenant: &str, body: &[u8]) -> Option<Key> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        if map.get("stream").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        if self.config.only_deterministic {
            let zero_temperature = map
                .get("temperature")
                .and_then(Value::as_f64)
                .is_some_and(|t| t == 0.0);
            let seeded = map.get("seed").is_some_and(|s| !s.is_null());
            if !zero_temperature && !seeded {
                return None;
            }
        }
        // serde_json's map is ordered by key, so this is the canonical form.
        let mut value = Value::Object(map);
        canonical_numbers(&mut value);
        let canonical = serde_json::to_vec(&value).ok()?;
        let mut h = Sha256::new();
        for part in [
            endpoint.as_bytes(),
            b"\0",
            tenant.as_bytes(),
            b"\0",
            &canonical,
        ] {
            h.update(part);
        }
        Some(h.finalize().into())
    }

    /// The answer kept under `key`, if fresh. A Redis that cannot be asked is a miss
    /// (logged).
    pub async fn get(&self, shard: usize, key: &Key) -> Option<Cached> {
        match &self.store {
            Store::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                match m.entries.get(key) {
                    Some((expires, _, c)) if *expires > Instant::now() => Some(c.clone()),
                    Some(_) => {
                        m.entries.remove(key);
                        None
                    }
                    None => None,
                }
            }
            Store::Redis { client, prefix } => {
                let name = redis_key(prefix, key);
                match client.call(shard, &[b"GET", name.as_bytes()]).await {
                    Ok(Reply::Bulk(Some(raw))) => Cached::decode(raw),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "response cache unavailable; serving uncached");
                        None
                    }
                }
            }
        }
    }

    /// The current generation, taken before serving a request whose answer may be kept.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps `answer` under `key` for `ttl`, unless the cache was cleared since
    /// `generation` was taken (the answer may come from the old configuration).
    pub async fn put(&self, shard: usize, key: Key, answer: Cached, generation: u64) {
        if self.generation() != generation {
            return;
        }
        match &self.store {
            Store::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                let expires = Instant::now() + self.config.ttl;
                let n = m.next;
                m.next += 1;
                m.entries.insert(key, (expires, n, answer));
                m.order.push_back((key, n));
                while m.entries.len() > self.config.max_entries
                    || m.order.len() > 2 * self.config.max_entries
                {
                    let Some((old, n)) = m.order.pop_front() else {
                        break;
                    };
                    if m.entries
                        .get(&old)
                        .is_some_and(|(_, current, _)| *current == n)
                    {
                        m.entries.remove(&old);
                    }
                }
            }
            Store::Redis { client, prefix } => {
                let name = redis_key(prefix, &key);
                let ttl = self.config.ttl.as_millis().to_string();
                let value = answer.encode();
                let args: [&[u8]; 5] = [b"SET", name.as_bytes(), &value, b"PX", ttl.as_bytes()];
                if let Err(e) = client.call(shard, &args).await {
                    tracing::warn!(error = %e, "response cache unavailable; answer not kept");
                }
            }
        }
    }

    /// Forgets every answer kept in memory (after a reload changed what answers would be),
    /// and any answer still being served under the old configuration.
    pub fn clear(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Store::Memory(m) = &self.store {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            m.entries.clear();
            m.order.clear();
        }
    }
}

/// Whole numbers written as floats (`0.0`) become integers, so `0` and `0.0` match.
fn canonical_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonical_numbers),
        Value::Object(m) => m.values_mut().for_each(canonical_numbers),
        _ => {}
    }
}

fn redis_key(prefix: &str, key: &Key) -> String {
    format!("{prefix}{}", crate::trace::hex(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(only_deterministic: bool, max_entries: usize) -> ResponseCache {
        let config = CacheConfig {
            enabled: true,
            only_deterministic,
            max_entries,
            ..CacheConfig::default()
        };
        ResponseCache::from_config(&config, 1).unwrap().unwrap()
    }

    #[test]
    fn keys_ignore_formatting_and_separate_tenants() {
        let c = cache(true, 10);
        let a = c.key(
            "/v1/chat/completions",
            "t",
            br#"{"model":"m","temperature":0,"messages":[]}"#,
        );
        let b = c.key(
            "/v1/chat/completions",
            "t",
            br#"{ "messages": [], "temperature": 0.0, "model": "m" }"#,
        );
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(
            a,
            c.key(
                "/v1/chat/completions",
                "u",
                br#"{"model":"m","temperature":0,"messages":[]}"#
            )
        );
        assert_ne!(
            a,
            c.key(
                "/v1/messages",
                "t",
                br#"{"model":"m","temperature":0,"messages":[]}"#
            )
        );
        assert!(c
            .key("/", "t", br#"{"model":"m","temperature":0.7}"#)
            .is_none());
        assert!(c.key("/", "t", br#"{"model":"m","seed":7}"#).is_some());
        assert!(c
            .key("/", "t", br#"{"model":"m","seed":7,"stream":true}"#)
            .is_none());
        assert!(cache(false, 10)
            .key("/", "t", br#"{"model":"m"}"#)
            .is_some());
        assert!(c.key("/", "t", b"[1]").is_none());
    }

    #[tokio::test]
    async fn the_oldest_entries_go_first() {
        let c = cache(false, 2);
        let answer = |b: &'static str| Cached {
            status: 200,
            headers: vec![(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(b),
        };
        for (i, b) in ["a", "b", "c"].into_iter().enumerate() {
            c.put(0, [i as u8; 32], answer(b), c.generation()).await;
        }
        // A key put again is not evicted early by its stale place in the order.
        c.put(0, [2; 32], answer("c2"), c.generation()).await;
        c.put(0, [3; 32], answer("d"), c.generation()).await;
        assert_eq!(c.get(0, &[2; 32]).await.unwrap().body, "c2");
        // An answer begun before a clear is not kept.
        let before = c.generation();
        c.clear();
        c.put(0, [9; 32], answer("old"), before).await;
        assert!(c.get(0, &[9; 32]).await.is_none());
        assert!(c.get(0, &[0; 32]).await.is_none());
        let round = Cached::decode(answer("{\"x\":\"\\n\\n\"}").encode()).unwrap();
        assert_eq!(round, answer("{\"x\":\"\\n\\n\"}"));
    }
}
