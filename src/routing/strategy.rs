//! Selection strategies: the order in which a route's backends are tried. Each walks the
//! route's targets in its own order and takes the first one `usable` accepts (healthy,
//! circuit closed, not yet tried), so unhealthy backends are skipped by every strategy.
//! Cost is O(k) in the k backends serving the model, never in all backends or models.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;

use super::prefix_index::{self, PromptBlocks, BLOCK};
use super::{Route, Target};
use crate::backend::Backend;
use crate::config::routing::RoutingConfig;
use crate::config::SelectionStrategy;

/// Probability that LeastLatency explores a random backend instead of the fastest, so a
/// recovered or slow-then-fast backend gets measured again.
const EXPLORATION: f64 = 0.1;

/// Longest smooth-weighted sequence kept per route; larger weight sums are scaled down.
const MAX_WEIGHTED_ORDER: u32 = 1000;

/// What a hashing strategy hashes: a session key or a prompt prefix.
pub type HashKey = Option<u64>;

/// What a request offers the strategies besides its route.
#[derive(Clone, Copy)]
pub struct Affinity<'a> {
    /// The hashing strategies' key.
    pub key: HashKey,
    /// The prompt's blocks (`CacheAware` only).
    pub prompt: Option<&'a PromptBlocks>,
    /// `routing:`.
    pub settings: &'a RoutingConfig,
}

/// A chosen target, and why it was chosen.
#[derive(Debug)]
pub struct Choice<'t> {
    /// The target.
    pub target: &'t Target,
    /// Why (the `x-continuum-route-reason` header).
    pub reason: Reason,
}

/// Why a backend was chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// The strategy's own order (turn, weight, latency, chance, or hash).
    Order(SelectionStrategy),
    /// `CacheAware`: this many bytes of the prompt were recently sent to it.
    CacheMatch {
        /// Bytes matched.
        matched: usize,
        /// The prompt's bytes.
        prompt: usize,
    },
    /// `CacheAware`: the least-loaded backend, as no long enough match was within the
    /// load bound.
    LeastLoaded {
        /// Its load.
        load: usize,
        /// The longest match anywhere (bytes).
        best_match: usize,
        /// The prompt's bytes.
        prompt: usize,
    },
    /// `BoundedLoadHash`: past this many backends over the bound, in the key's order.
    Spilled {
        /// Backends passed over.
        skipped: usize,
        /// The load bound.
        bound: usize,
    },
    /// Every backend was at the load bound: the first usable one all the same.
    AllAtBound {
        /// The load bound.
        bound: usize,
    },
}

impl Reason {
    /// The header value: a kind, then `key=value` details.
    pub fn header_value(&self) -> String {
        match self {
            Reason::Order(s) => {
                let name = SelectionStrategy::ALL
                    .iter()
                    .find(|(_, x)| x == s)
                    .map_or("", |(n, _)| n);
                format!("strategy; name={name}")
            }
            Reason::CacheMatch { matched, prompt } => {
                format!("cache-match; matched_bytes={matched}; prompt_bytes={prompt}")
            }
            Reason::LeastLoaded {
                load,
                best_match,
                prompt,
            } => format!(
                "least-loaded; load={load}; best_match_bytes={best_match}; prompt_bytes={prompt}"
            ),
            Reason::Spilled { skipped, bound } => {
                format!("bounded-load; skipped={skipped}; bound={bound}")
            }
            Reason::AllAtBound { bound } => format!("all-at-bound; bound={bound}"),
        }
    }
}

/// The most load a backend may carry and still take a request: ⌈(1 + ε) · (m + 1) / n⌉
/// for m requests on the n healthy backends of the route, counting the one being placed
/// (consistent hashing with bounded loads, Mirrokni, Thorup and Zadimoghaddam).
fn load_bound(t: &[Target], backends: &[std::sync::Arc<Backend>], epsilon: f64) -> usize {
    let (mut total, mut healthy) = (0usize, 0usize);
    for x in t {
        let s = &backends[x.backend].state;
        if s.health.is_healthy() {
            total += s.load();
            healthy += 1;
        }
    }
    let mean = (total + 1) as f64 / healthy.max(1) as f64;
    ((1.0 + epsilon) * mean).ceil().max(1.0) as usize
}

/// Hashes bytes to a key for ConsistentHash / PrefixAwareHash.
pub fn hash_key(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The smooth weighted round-robin order (nginx's algorithm) for `weights`, as indices.
/// Weights 5,1,1 give a,a,b,a,c,a,a: never a burst longer than needed.
pub fn smooth_weighted_order(weights: &[u32]) -> Vec<u16> {
    if weights.len() <= 1 || weights.len() > u16::MAX as usize {
        return Vec::new();
    }
    let gcd = weights.iter().copied().fold(0, gcd);
    let mut w: Vec<u64> = weights.iter().map(|x| u64::from(x / gcd.max(1))).collect();
    let sum: u64 = w.iter().sum();
    if sum > u64::from(MAX_WEIGHTED_ORDER) {
        for x in &mut w {
            *x = (*x * u64::from(MAX_WEIGHTED_ORDER) / sum).max(1);
        }
    }
    let total: i64 = w.iter().map(|x| *x as i64).sum();
    let mut current = vec![0i64; w.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i] as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(best as u16);
    }
    order
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Rendezvous (highest random weight) score of a backend for a key: the backend with the
/// highest score wins, and adding or removing a backend moves only the keys it wins/won.
/// The backend's name hash is computed once; the mix is splitmix64's finaliser.
fn rendezvous(key: u64, backend: &Backend) -> u64 {
    let mut z = key ^ backend.name_hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Walks targets from the highest rendezvous score down, taking the first usable one.
/// Scores live on the stack for up to 64 targets; `usable` is called once per target tried.
fn by_rendezvous<'t>(
    t: &'t [Target],
    key: u64,
    backends: &[std::sync::Arc<Backend>],
    usable: &mut dyn FnMut(&Target) -> bool,
) -> Option<&'t Target> {
    let mut stack = [0u64; 64];
    let mut heap = Vec::new();
    let scores: &mut [u64] = if t.len() <= 64 {
        &mut stack[..t.len()]
    } else {
        heap.resize(t.len(), 0);
        &mut heap
    };
    for (s, x) in scores.iter_mut().zip(t) {
        // Reserve 0 for "already rejected".
        *s = rendezvous(key, &backends[x.backend]).max(1);
    }
    loop {
        let (i, best) = scores.iter().enumerate().max_by_key(|(_, s)| **s)?;
        if *best == 0 {
            return None;
        }
        if usable(&t[i]) {
            return Some(&t[i]);
        }
        scores[i] = 0;
    }
}

impl Route {
    /// The target `strategy` picks among those `usable` accepts, and why; `None` if none
    /// is usable.
    pub fn select(
        &self,
        strategy: SelectionStrategy,
        affinity: Affinity<'_>,
        backends: &[std::sync::Arc<Backend>],
        mut usable: impl FnMut(&Target) -> bool,
    ) -> Option<Choice<'_>> {
        let t = &self.targets;
        let settings = affinity.settings;
        match (strategy, affinity.key, affinity.prompt) {
            (SelectionStrategy::CacheAware, _, Some(prompt)) => {
                return cache_aware(t, prompt, settings, backends, &mut usable)
            }
            (SelectionStrategy::BoundedLoadHash, Some(key), _) if t.len() > 1 => {
                return bounded_load(t, key, settings.bounded_load_epsilon, backends, &mut usable)
            }
            _ => {}
        }
        let order = |target| Choice {
            target,
            reason: Reason::Order(strategy),
        };
        self.in_order(strategy, affinity.key, backends, &mut usable)
            .map(order)
    }

    /// The plain strategies' walk (and the load-aware ones' when a request offers them
    /// nothing to go by).
    fn in_order(
        &self,
        strategy: SelectionStrategy,
        key: HashKey,
        backends: &[std::sync::Arc<Backend>],
        mut usable: impl FnMut(&Target) -> bool,
    ) -> Option<&Target> {
        let t = &self.targets;
        let n = t.len();
        if n == 1 {
            return usable(&t[0]).then_some(&t[0]);
        }
        let rotate = |start: usize, usable: &mut dyn FnMut(&Target) -> bool| {
            (0..n).map(|i| &t[(start + i) % n]).find(|x| usable(x))
        };
        match (strategy, key) {
            (SelectionStrategy::RoundRobin, _) => {
                rotate(self.next.fetch_add(1, Ordering::Relaxed), &mut usable)
            }
            (SelectionStrategy::WeightedRoundRobin, _) if !self.weighted.is_empty() => {
                let w = &self.weighted;
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                let mut tried = 0u64; // bit set of rejected targets (first 64)
                for i in 0..w.len() {
                    let idx = w[(start + i) % w.len()] as usize;
                    if idx < 64 && tried & (1 << idx) != 0 {
                        continue;
                    }
                    if usable(&t[idx]) {
                        return Some(&t[idx]);
                    }
                    if idx < 64 {
                        tried |= 1 << idx;
                    }
                }
                None
            }
            (SelectionStrategy::WeightedRoundRobin, _) => rotate(0, &mut usable),
            (SelectionStrategy::Random, _) => rotate(fastrand::usize(..n), &mut usable),
            (SelectionStrategy::LeastLatency, _) => {
                if fastrand::f64() < EXPLORATION {
                    return rotate(fastrand::usize(..n), &mut usable);
                }
                // Unknown latency sorts first, so new backends get measured.
                let mut order: Vec<(u64, usize)> = t
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let l = backends[x.backend]
                            .state
                            .latency_ewma()
                            .map_or(0, |d| d.as_micros() as u64);
                        (l, i)
                    })
                    .collect();
                order.sort_unstable();
                order.into_iter().map(|(_, i)| &t[i]).find(|x| usable(x))
            }
            (
                SelectionStrategy::ConsistentHash
                | SelectionStrategy::PrefixAwareHash
                | SelectionStrategy::BoundedLoadHash,
                Some(key),
            ) => by_rendezvous(t, key, backends, &mut usable),
            // Nothing to go by (no key to hash, no prompt): the least loaded.
            (SelectionStrategy::BoundedLoadHash | SelectionStrategy::CacheAware, _) => {
                least_loaded(t, backends, &mut usable)
            }
            // No key to hash: spread like round robin.
            (SelectionStrategy::ConsistentHash | SelectionStrategy::PrefixAwareHash, None) => {
                rotate(self.next.fetch_add(1, Ordering::Relaxed), &mut usable)
            }
        }
    }
}

/// The usable target with the least load (the first in route order among equals).
fn least_loaded<'t>(
    t: &'t [Target],
    backends: &[std::sync::Arc<Backend>],
    usable: &mut dyn FnMut(&Target) -> bool,
) -> Option<&'t Target> {
    let mut order: Vec<(usize, usize)> = t
        .iter()
        .enumerate()
        .map(|(i, x)| (backends[x.backend].state.load(), i))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| &t[i]).find(|x| usable(x))
}

/// `BoundedLoadHash`: the key's backends in rendezvous order (its ring), skipping those at
/// the load bound; when all are, the first usable one in that order.
fn bounded_load<'t>(
    t: &'t [Target],
    key: u64,
    epsilon: f64,
    backends: &[std::sync::Arc<Backend>],
    usable: &mut dyn FnMut(&Target) -> bool,
) -> Option<Choice<'t>> {
    let bound = load_bound(t, backends, epsilon);
    let mut skipped = 0;
    let within = by_rendezvous(t, key, backends, &mut |x| {
        if backends[x.backend].state.load() >= bound {
            skipped += 1;
            return false;
        }
        usable(x)
    });
    if let Some(target) = within {
        let reason = if skipped == 0 {
            Reason::Order(SelectionStrategy::BoundedLoadHash)
        } else {
            Reason::Spilled { skipped, bound }
        };
        return Some(Choice { target, reason });
    }
    by_rendezvous(t, key, backends, usable).map(|target| Choice {
        target,
        reason: Reason::AllAtBound { bound },
    })
}

/// `CacheAware`: among the backends within the load bound, the one recently sent the
/// longest part of the prompt when that covers `match_threshold` of it (longest first, the
/// less loaded among equals); else the least loaded within the bound (the one holding
/// fewer prefixes among equals, so new prompts spread); else the least loaded of all. The
/// prompt is then recorded as sent to the backend chosen.
fn cache_aware<'t>(
    t: &'t [Target],
    prompt: &PromptBlocks,
    settings: &RoutingConfig,
    backends: &[std::sync::Arc<Backend>],
    usable: &mut dyn FnMut(&Target) -> bool,
) -> Option<Choice<'t>> {
    let ca = &settings.cache_aware;
    let limits = prefix_index::Limits {
        max_nodes: ca.node_cap(),
        expiry_secs: ca.expiry.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
    };
    let now = prefix_index::now_secs();
    let bound = load_bound(t, backends, settings.bounded_load_epsilon);
    // (matched blocks, load, prefixes held, index) of each target.
    let mut seen: Vec<(usize, usize, usize, usize)> = t
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let s = &backends[x.backend].state;
            let matched = if s.health.is_healthy() {
                s.prefixes.matched(prompt, now, limits)
            } else {
                0
            };
            (matched, s.load(), s.prefixes.nodes(), i)
        })
        .collect();
    let best = seen
        .iter()
        .filter(|s| s.1 < bound)
        .map(|s| s.0)
        .max()
        .unwrap_or(0);
    let bytes = prompt.bytes();
    let chosen = |i: usize, reason: Reason| {
        backends[t[i].backend]
            .state
            .prefixes
            .insert(prompt, now, limits);
        Some(Choice {
            target: &t[i],
            reason,
        })
    };
    if best > 0 && (best * BLOCK) as f64 >= ca.match_threshold * bytes as f64 {
        seen.sort_unstable_by_key(|&(m, load, _, i)| (std::cmp::Reverse(m), load, i));
        for &(m, load, _, i) in &seen {
            if m == 0 || load >= bound || ((m * BLOCK) as f64) < ca.match_threshold * bytes as f64 {
                continue;
            }
            if usable(&t[i]) {
                let reason = Reason::CacheMatch {
                    matched: (m * BLOCK).min(bytes),
                    prompt: bytes,
                };
                return chosen(i, reason);
            }
        }
    }
    seen.sort_unstable_by_key(|&(_, load, nodes, i)| (load, nodes, i));
    let best_match = (best * BLOCK).min(bytes);
    for &(_, load, _, i) in &seen {
        if usable(&t[i]) {
            let reason = if load < bound {
                Reason::LeastLoaded {
                    load,
                    best_match,
                    prompt: bytes,
                }
            } else {
                Reason::AllAtBound { bound }
            };
            return chosen(i, reason);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, BackendType};
    use crate::routing::ModelIndex;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn backends(weights: &[u32]) -> Vec<Arc<Backend>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut c = BackendConfig::new(format!("b{i}"), BackendType::Mock);
                c.models = Some(vec!["m".into()]);
                c.weight = *w;
                Arc::new(Backend::new(c, &Default::default()).unwrap())
            })
            .collect()
    }

    static SETTINGS: std::sync::LazyLock<RoutingConfig> =
        std::sync::LazyLock::new(RoutingConfig::default);

    fn key(key: HashKey) -> Affinity<'static> {
        Affinity {
            key,
            prompt: None,
            settings: &SETTINGS,
        }
    }

    fn counts(
        b: &[Arc<Backend>],
        s: SelectionStrategy,
        n: usize,
        key: impl Fn(usize) -> HashKey,
    ) -> HashMap<usize, usize> {
        let index = ModelIndex::build(b, &[]);
        let route = index.resolve("m").unwrap();
        let mut out = HashMap::new();
        for i in 0..n {
            let t = route
                .select(s, super::tests::key(key(i)), b, |_| true)
                .unwrap()
                .target;
            *out.entry(t.backend).or_insert(0) += 1;
        }
        out
    }

    #[test]
    fn smooth_weighted_order_interleaves() {
        assert_eq!(smooth_weighted_order(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_weighted_order(&[2, 2]), [0, 1]);
        assert!(smooth_weighted_order(&[1_000_000, 1]).len() <= 1001);
    }

    #[test]
    fn weighted_round_robin_is_exact_over_a_cycle() {
        let b = backends(&[3, 1]);
        let c = counts(&b, SelectionStrategy::WeightedRoundRobin, 400, |_| None);
        assert_eq!((c[&0], c[&1]), (300, 100));
    }

    #[test]
    fn random_is_roughly_uniform() {
        let b = backends(&[1, 1, 1]);
        let c = counts(&b, SelectionStrategy::Random, 3000, |_| None);
        for i in 0..3 {
            assert!((800..=1200).contains(&c[&i]), "{c:?}");
        }
    }

    #[test]
    fn consistent_hash_is_sticky_and_moves_few_keys() {
        let four = backends(&[1, 1, 1, 1]);
        let three: Vec<_> = four[..3].to_vec();
        let i4 = ModelIndex::build(&four, &[]);
        let i3 = ModelIndex::build(&three, &[]);
        let (r4, r3) = (i4.resolve("m").unwrap(), i3.resolve("m").unwrap());
        let mut moved = 0;
        for k in 0..1000u64 {
            let a = r4
                .select(
                    SelectionStrategy::ConsistentHash,
                    key(Some(k)),
                    &four,
                    |_| true,
                )
                .unwrap()
                .target
                .backend;
            let again = r4
                .select(
                    SelectionStrategy::ConsistentHash,
                    key(Some(k)),
                    &four,
                    |_| true,
                )
                .unwrap()
                .target
                .backend;
            assert_eq!(a, again, "sticky");
            let b = r3
                .select(
                    SelectionStrategy::ConsistentHash,
                    key(Some(k)),
                    &three,
                    |_| true,
                )
                .unwrap()
                .target
                .backend;
            if a != b {
                assert_eq!(a, 3, "only keys of the removed backend move");
                moved += 1;
            }
        }
        assert!(
            (150..=350).contains(&moved),
            "about a quarter of the keys move: {moved}"
        );
        // Skipping an unusable backend goes to the next in that key's order, not anywhere.
        let first = r4
            .select(
                SelectionStrategy::ConsistentHash,
                key(Some(7)),
                &four,
                |_| true,
            )
            .unwrap()
            .target
            .backend;
        let next = r4
            .select(
                SelectionStrategy::ConsistentHash,
                key(Some(7)),
                &four,
                |t| t.backend != first,
            )
            .unwrap()
            .target
            .backend;
        let next2 = r4
            .select(
                SelectionStrategy::ConsistentHash,
                key(Some(7)),
                &four,
                |t| t.backend != first,
            )
            .unwrap()
            .target
            .backend;
        assert_eq!(next, next2);
    }

    #[test]
    fn least_latency_prefers_the_fastest_and_explores() {
        let b = backends(&[1, 1]);
        b[0].state
            .record_latency(std::time::Duration::from_millis(50));
        b[1].state
            .record_latency(std::time::Duration::from_millis(5));
        let c = counts(&b, SelectionStrategy::LeastLatency, 2000, |_| None);
        assert!(c[&1] > 1700, "{c:?}");
        assert!(c[&0] > 20, "exploration still reaches the slow one: {c:?}");
    }

    #[test]
    fn every_strategy_skips_unusable_backends() {
        let b = backends(&[1, 2, 3]);
        let index = ModelIndex::build(&b, &[]);
        let route = index.resolve("m").unwrap();
        for (_, s) in SelectionStrategy::ALL {
            for k in 0..50 {
                let t = route
                    .select(s, key(Some(k)), &b, |t| t.backend == 1)
                    .unwrap()
                    .target;
                assert_eq!(t.backend, 1, "{s:?}");
            }
            assert!(route.select(s, key(Some(1)), &b, |_| false).is_none());
        }
    }
}
