//! Selection strategies: the order in which a route's backends are tried. Each walks the
//! route's targets in its own order and takes the first one `usable` accepts (healthy,
//! circuit closed, not yet tried), so unhealthy backends are skipped by every strategy.
//! Cost is O(k) in the k backends serving the model, never in all backends or models.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;

use super::load_aware::{bounded_load, cache_aware, least_loaded};
pub use super::load_aware::{Choice, Reason};
use super::prefix_index::PromptBlocks;
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
pub(super) fn by_rendezvous<'t>(
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
