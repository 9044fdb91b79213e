//! `routing:`: the settings of the load- and cache-aware strategies (`BoundedLoadHash`,
//! `CacheAware`) and of the load signals scraped from the model servers.

use std::time::Duration;

use serde_json::Value;

use super::reader::{child, Keys, Reader};

const ROUTING: Keys = Keys {
    known: &["bounded_load_epsilon", "cache_aware", "load_signals"],
    unsupported: &[],
};

const CACHE_AWARE: Keys = Keys {
    known: &[
        "match_threshold",
        "balance_abs_threshold",
        "max_nodes",
        "max_memory",
        "expiry",
    ],
    unsupported: &[],
};

const LOAD_SIGNALS: Keys = Keys {
    known: &["enabled", "interval"],
    unsupported: &[],
};

/// `routing:`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingConfig {
    /// ε of consistent hashing with bounded loads: no backend takes a request while it
    /// carries more than (1 + ε) × the mean load of the route's backends (`BoundedLoadHash`,
    /// and the balance limit of `CacheAware`).
    pub bounded_load_epsilon: f64,
    /// `CacheAware`'s prefix index.
    pub cache_aware: CacheAwareConfig,
    /// Load read from the servers' own metrics.
    pub load_signals: LoadSignalsConfig,
}

/// `routing.cache_aware`.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheAwareConfig {
    /// Follow the longest recently sent prefix only when it covers at least this share of
    /// the prompt; else the least-loaded backend.
    pub match_threshold: f64,
    /// A matching backend is followed past the load bound while it carries at most this
    /// many requests more than the least-loaded one: on small loads, where one request is
    /// a large share, the bound alone would move sessions off their caches for a wait that
    /// costs far less than the prefill they then redo. Twice this for a conversation whose
    /// own history only that backend holds.
    pub balance_abs_threshold: usize,
    /// Most prefix-tree nodes (128 prompt bytes each) remembered per backend.
    pub max_nodes: usize,
    /// Most memory the prefix tree of one backend may take (bytes).
    pub max_memory: u64,
    /// A prefix not sent to a backend for this long no longer counts (the server's own
    /// cache has most likely evicted it).
    pub expiry: Duration,
}

/// `routing.load_signals`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSignalsConfig {
    /// Scrape vLLM, llama.cpp and SGLang servers' `/metrics` (llama.cpp's `/slots` when its
    /// metrics are off) for requests running and waiting and KV-cache usage, when a
    /// load-aware strategy routes to them.
    pub enabled: bool,
    /// How often.
    pub interval: Duration,
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            bounded_load_epsilon: 0.25,
            cache_aware: CacheAwareConfig {
                match_threshold: 0.5,
                balance_abs_threshold: 2,
                max_nodes: 100_000,
                max_memory: 8 << 20,
                expiry: Duration::from_secs(600),
            },
            load_signals: LoadSignalsConfig {
                enabled: true,
                interval: Duration::from_secs(2),
            },
        }
    }
}

impl CacheAwareConfig {
    /// The node cap in force: `max_nodes`, or fewer when `max_memory` says so.
    pub fn node_cap(&self) -> usize {
        let by_memory = (self.max_memory / crate::routing::prefix_index::NODE_BYTES as u64)
            .min(usize::MAX as u64) as usize;
        self.max_nodes.min(by_memory).max(1)
    }
}

/// Reads `routing:`.
pub fn read_routing(v: Option<&Value>, r: &mut Reader) -> RoutingConfig {
    let mut c = RoutingConfig::default();
    let p = "routing";
    let Some(m) = v.and_then(|v| r.section(v, p, &ROUTING)) else {
        return c;
    };
    if let Some(e) = r.number(m, p, "bounded_load_epsilon") {
        if e > 0.0 && e <= 10.0 {
            c.bounded_load_epsilon = e;
        } else {
            r.error(
                child(p, "bounded_load_epsilon"),
                format!("{e} is out of range (more than 0, at most 10; 0.25 lets a backend carry 25% over the mean)"),
            );
        }
    }
    let cp = child(p, "cache_aware");
    if let Some(m) = m
        .get("cache_aware")
        .and_then(|v| r.section(v, &cp, &CACHE_AWARE))
    {
        let ca = &mut c.cache_aware;
        if let Some(f) = r.number(m, &cp, "match_threshold") {
            if (0.0..=1.0).contains(&f) {
                ca.match_threshold = f;
            } else {
                r.error(
                    child(&cp, "match_threshold"),
                    format!("{f} is not between 0.0 and 1.0"),
                );
            }
        }
        if let Some(n) = r.integer(m, &cp, "balance_abs_threshold") {
            ca.balance_abs_threshold = n.min(1_000_000) as usize;
        }
        if let Some(n) = r.integer(m, &cp, "max_nodes") {
            if n == 0 {
                r.error(child(&cp, "max_nodes"), "must be at least 1");
            } else {
                ca.max_nodes = n.min(usize::MAX as u64) as usize;
            }
        }
        if let Some(b) = r.byte_size(m, &cp, "max_memory") {
            if b < crate::routing::prefix_index::NODE_BYTES as u64 {
                r.error(
                    child(&cp, "max_memory"),
                    "is too small to hold one prefix node (32 bytes)",
                );
            } else {
                ca.max_memory = b;
            }
        }
        if let Some(d) = r.duration(m, &cp, "expiry") {
            if d < Duration::from_secs(1) {
                r.error(child(&cp, "expiry"), "must be at least 1s");
            } else {
                ca.expiry = d;
            }
        }
    }
    let lp = child(p, "load_signals");
    if let Some(m) = m
        .get("load_signals")
        .and_then(|v| r.section(v, &lp, &LOAD_SIGNALS))
    {
        if let Some(e) = r.boolean(m, &lp, "enabled") {
            c.load_signals.enabled = e;
        }
        if let Some(d) = r.duration(m, &lp, "interval") {
            if d < Duration::from_millis(100) {
                r.error(child(&lp, "interval"), "must be at least 100ms");
            } else {
                c.load_signals.interval = d;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::super::{from_text, ConfigError, Format, Strictness};

    fn problems(text: &str) -> Vec<String> {
        let env = std::collections::HashMap::<String, String>::new();
        match from_text(text, Format::Yaml, "t.yaml", &env, Strictness::Validate) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn routing_settings_are_read_and_checked() {
        let ok = "backends: [{name: m, type: mock}]\nselection_strategy: CacheAware\nrouting: {bounded_load_epsilon: 0.5, cache_aware: {match_threshold: 0.7, balance_abs_threshold: 0, max_nodes: 10, max_memory: 64KB, expiry: 30s}, load_signals: {interval: 250ms}}\n";
        assert_eq!(problems(ok), Vec::<String>::new());
        let p = problems("backends: [{name: m, type: mock}]\nselection_strategy: CacheAwre\nrouting: {bounded_load_epsilon: 0, cache_aware: {match_threshold: 1.5, max_nodes: 0, max_memory: 8B, expiry: 0s, sise: 1}, load_signals: {interval: 1ms}}\n");
        let text = p.join("\n");
        for want in [
            "selection_strategy: unknown strategy 'CacheAwre'; did you mean 'CacheAware'?",
            "routing.bounded_load_epsilon: 0 is out of range",
            "routing.cache_aware.match_threshold: 1.5 is not between 0.0 and 1.0",
            "routing.cache_aware.max_nodes: must be at least 1",
            "routing.cache_aware.max_memory: is too small",
            "routing.cache_aware.expiry: must be at least 1s",
            "routing.cache_aware.sise: unknown key",
            "routing.load_signals.interval: must be at least 100ms",
        ] {
            assert!(text.contains(want), "{want} not in:\n{text}");
        }
    }
}
