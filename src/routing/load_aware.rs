//! The load-aware strategies: `BoundedLoadHash` (consistent hashing with bounded loads)
//! and `CacheAware` (the backend recently sent the longest part of the prompt, within the
//! load bound), and the reason each choice is given (`x-continuum-route-reason`).
//!
//! A backend's load is what [`crate::resilience::BackendState::load`] says: the router's
//! own requests in flight to it, or what its server reports running and queued when more.

use super::prefix_index::{self, Match, PromptBlocks, BLOCK};
use super::strategy::by_rendezvous;
use super::Target;
use crate::backend::Backend;
use crate::config::routing::RoutingConfig;
use crate::config::SelectionStrategy;

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
    /// `CacheAware`: the backend holding this conversation's history, over the balance
    /// limits but at most twice `balance_abs_threshold` over the least loaded.
    HistoryKept {
        /// Bytes matched.
        matched: usize,
        /// The prompt's bytes.
        prompt: usize,
        /// Its load.
        load: usize,
        /// The load bound.
        bound: usize,
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
            Reason::HistoryKept {
                matched,
                prompt,
                load,
                bound,
            } => format!(
                "history-kept; matched_bytes={matched}; prompt_bytes={prompt}; load={load}; bound={bound}"
            ),
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
pub(super) fn load_bound(
    t: &[Target],
    backends: &[std::sync::Arc<Backend>],
    epsilon: f64,
) -> usize {
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

/// The usable target with the least load (the first in route order among equals).
pub(super) fn least_loaded<'t>(
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
pub(super) fn bounded_load<'t>(
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

/// `CacheAware`: among the backends within balance (under the load bound, or at most
/// `balance_abs_threshold` requests over the least loaded), the one recently sent the
/// longest part of the prompt when that covers `match_threshold` of it (longest first, the
/// less loaded among equals). When none within balance has such a match but the longest
/// match anywhere is the conversation's own history (it stops where an earlier prompt
/// ended), its backend keeps it while at most twice `balance_abs_threshold` over the least
/// loaded: moving would recompute the whole conversation and leave nothing another request
/// could use, where moving a shared prefix copies it for the conversations that follow.
/// Else the least loaded within the bound (the one holding fewer prefixes among equals, so
/// new prompts spread); else the least loaded of all. The prompt is then recorded as sent
/// to the backend chosen.
pub(super) fn cache_aware<'t>(
    t: &'t [Target],
    prompt: &PromptBlocks,
    settings: &RoutingConfig,
    backends: &[std::sync::Arc<Backend>],
    usable: &mut dyn FnMut(&Target) -> bool,
) -> Option<Choice<'t>> {
    let ca = &settings.cache_aware;
    let limits = prefix_index::Limits {
        max_nodes: ca.node_cap(),
        expiry_secs: ca.expiry.as_secs().clamp(1, u64::from(u32::MAX >> 1)) as u32,
    };
    let now = prefix_index::now_secs();
    let bound = load_bound(t, backends, settings.bounded_load_epsilon);
    let mut seen: Vec<Seen> = t
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let s = &backends[x.backend].state;
            let healthy = s.health.is_healthy();
            Seen {
                matched: if healthy {
                    s.prefixes.matched(prompt, now, limits)
                } else {
                    Match::default()
                },
                load: s.load(),
                prefixes: s.prefixes.nodes(),
                healthy,
                index: i,
            }
        })
        .collect();
    // Within balance: under the bound, or not more than `balance_abs_threshold` over the
    // least-loaded backend (imbalanced only when both are exceeded, as SGLang's gateway).
    let least = seen
        .iter()
        .filter(|s| s.healthy)
        .map(|s| s.load)
        .min()
        .unwrap_or(0);
    // `slack` requests over the least loaded are still within balance.
    let within = |load: usize, slack: usize| load < bound || load <= least + slack;
    let bytes = prompt.bytes();
    let long_enough =
        |m: &Match| m.blocks > 0 && (m.blocks * BLOCK) as f64 >= ca.match_threshold * bytes as f64;
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
    let matched = |s: &Seen| (s.matched.blocks * BLOCK).min(bytes);
    seen.sort_unstable_by_key(|s| (std::cmp::Reverse(s.matched.blocks), s.load, s.index));
    for s in &seen {
        if long_enough(&s.matched)
            && within(s.load, ca.balance_abs_threshold)
            && usable(&t[s.index])
        {
            let reason = Reason::CacheMatch {
                matched: matched(s),
                prompt: bytes,
            };
            return chosen(s.index, reason);
        }
    }
    // The longest match of all (first after the sort) when it is a conversation's own history.
    if let Some(s) = seen.first() {
        if long_enough(&s.matched)
            && s.matched.own_history
            && within(s.load, 2 * ca.balance_abs_threshold)
            && usable(&t[s.index])
        {
            let reason = Reason::HistoryKept {
                matched: matched(s),
                prompt: bytes,
                load: s.load,
                bound,
            };
            return chosen(s.index, reason);
        }
    }
    let best_match = seen.first().map_or(0, matched);
    seen.sort_unstable_by_key(|s| (s.load, s.prefixes, s.index));
    for s in &seen {
        if usable(&t[s.index]) {
            let reason = if s.load < bound {
                Reason::LeastLoaded {
                    load: s.load,
                    best_match,
                    prompt: bytes,
                }
            } else {
                Reason::AllAtBound { bound }
            };
            return chosen(s.index, reason);
        }
    }
    None
}

/// What `CacheAware` weighs of one target.
struct Seen {
    matched: Match,
    load: usize,
    prefixes: usize,
    healthy: bool,
    index: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::load::Reading;
    use crate::config::{BackendConfig, BackendType};
    use crate::resilience::InFlight;
    use crate::routing::ModelIndex;
    use std::sync::Arc;
    use std::time::Duration;

    fn backends(n: usize) -> Vec<Arc<Backend>> {
        (0..n)
            .map(|i| {
                let mut c = BackendConfig::new(format!("b{i}"), BackendType::Mock);
                c.models = Some(vec!["m".into()]);
                Arc::new(Backend::new(c, &Default::default()).unwrap())
            })
            .collect()
    }

    fn affinity<'a>(
        key: Option<u64>,
        prompt: Option<&'a PromptBlocks>,
        settings: &'a RoutingConfig,
    ) -> super::super::strategy::Affinity<'a> {
        super::super::strategy::Affinity {
            key,
            prompt,
            settings,
        }
    }

    /// `CacheAware`'s choice for `prompt` on `route`, every backend usable.
    fn cache_aware_pick<'r>(
        route: &'r crate::routing::Route,
        b: &[Arc<Backend>],
        prompt: &PromptBlocks,
        settings: &RoutingConfig,
    ) -> Choice<'r> {
        route
            .select(
                SelectionStrategy::CacheAware,
                affinity(None, Some(prompt), settings),
                b,
                |_| true,
            )
            .unwrap()
    }

    fn text(seed: usize, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b'a' + ((i * 7 + seed * 3) % 26) as u8)
            .collect()
    }

    #[test]
    fn the_load_bound_counts_the_request_being_placed() {
        let b = backends(3);
        let index = ModelIndex::build(&b, &[]);
        let t = index.resolve("m").unwrap().targets();
        // Idle: ⌈1.25 · 1/3⌉ = 1, so an idle backend takes it and a busy one does not.
        assert_eq!(load_bound(t, &b, 0.25), 1);
        let _held: Vec<InFlight> = (0..5).map(|_| b[0].state.start_request()).collect();
        // 5 in flight: ⌈1.25 · 6/3⌉ = 3.
        assert_eq!(load_bound(t, &b, 0.25), 3);
    }

    #[test]
    fn bounded_load_hash_keeps_a_key_until_its_backend_is_over_the_bound() {
        let b = backends(3);
        let settings = RoutingConfig::default();
        let index = ModelIndex::build(&b, &[]);
        let route = index.resolve("m").unwrap();
        let pick = |key| {
            route
                .select(
                    SelectionStrategy::BoundedLoadHash,
                    affinity(Some(key), None, &settings),
                    &b,
                    |_| true,
                )
                .unwrap()
        };
        let first = pick(42);
        assert_eq!(
            first.reason,
            Reason::Order(SelectionStrategy::BoundedLoadHash)
        );
        let home = first.target.backend;
        // Its second choice is the consistent hash's next backend for the key.
        let next = route
            .select(
                SelectionStrategy::ConsistentHash,
                affinity(Some(42), None, &settings),
                &b,
                |t| t.backend != home,
            )
            .unwrap()
            .target
            .backend;
        // One in flight on each: bound ⌈1.25 · 4/3⌉ = 2, the key stays.
        let mut held: Vec<InFlight> = b.iter().map(|x| x.state.start_request()).collect();
        assert_eq!(pick(42).target.backend, home);
        // Two on it: bound ⌈1.25 · 5/3⌉ = 3, it stays.
        held.push(b[home].state.start_request());
        assert_eq!(pick(42).target.backend, home);
        // Three on it: bound ⌈1.25 · 6/3⌉ = 3, it is full: the key's next backend.
        held.push(b[home].state.start_request());
        let moved = pick(42);
        assert_eq!(moved.target.backend, next);
        assert_eq!(
            moved.reason,
            Reason::Spilled {
                skipped: 1,
                bound: 3
            }
        );
        drop(held);
        assert_eq!(
            pick(42).target.backend,
            home,
            "back home once the load is gone"
        );
    }

    #[test]
    fn bounded_load_hash_keeps_every_backend_within_the_bound() {
        let b = backends(4);
        let settings = RoutingConfig::default();
        let index = ModelIndex::build(&b, &[]);
        let route = index.resolve("m").unwrap();
        // 400 requests that all stay in flight, on 8 hot keys (a skewed workload).
        let mut held = Vec::new();
        for i in 0..400u64 {
            let key = crate::routing::strategy::hash_key(&(i % 8).to_le_bytes());
            let c = route
                .select(
                    SelectionStrategy::BoundedLoadHash,
                    affinity(Some(key), None, &settings),
                    &b,
                    |_| true,
                )
                .unwrap();
            held.push(b[c.target.backend].state.start_request());
            let loads: Vec<usize> = b.iter().map(|x| x.state.load()).collect();
            let total: usize = loads.iter().sum();
            let cap = (1.25 * total as f64 / 4.0).ceil() as usize;
            assert!(
                loads.iter().all(|l| *l <= cap.max(1)),
                "{loads:?} over {cap} after {i}"
            );
        }
    }

    #[test]
    fn a_session_follows_its_cached_prefix_and_new_prompts_spread() {
        let b = backends(3);
        let settings = RoutingConfig::default();
        let index = ModelIndex::build(&b, &[]);
        let route = index.resolve("m").unwrap();
        let pick = |prompt: &PromptBlocks| cache_aware_pick(route, &b, prompt, &settings);
        let system: Vec<PromptBlocks> = (0..3)
            .map(|g| PromptBlocks::new([text(g, 2000).as_slice()]))
            .collect();
        // Three new prompts, nothing cached: one each (the one holding fewer prefixes first).
        let homes: Vec<usize> = system.iter().map(|p| pick(p).target.backend).collect();
        let mut sorted = homes.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2]);
        // A later turn of the first conversation: its whole earlier prompt matches.
        let turn2 = PromptBlocks::new([text(0, 2000).as_slice(), &text(9, 300)]);
        let c = pick(&turn2);
        assert_eq!(c.target.backend, homes[0]);
        assert_eq!(
            c.reason,
            Reason::CacheMatch {
                matched: 1920,
                prompt: 2300
            }
        );
        // A short shared part (under match_threshold) does not pull: the least loaded.
        let other = PromptBlocks::new([&text(0, 256)[..], &text(20, 3000)]);
        let c = pick(&other);
        assert_ne!(c.target.backend, homes[0]);
        assert!(
            matches!(
                c.reason,
                Reason::LeastLoaded {
                    best_match: 256,
                    ..
                }
            ),
            "{:?}",
            c.reason
        );
    }

    #[test]
    fn a_deep_queue_is_passed_over_even_when_its_cache_matches() {
        let b = backends(2);
        let settings = RoutingConfig::default();
        let index = ModelIndex::build(&b, &[]);
        let route = index.resolve("m").unwrap();
        let prompt = PromptBlocks::new([text(1, 4000).as_slice()]);
        let pick = || cache_aware_pick(route, &b, &prompt, &settings);
        let home = pick().target.backend;
        assert_eq!(pick().target.backend, home);
        // Its server now reports a queue: over the bound, so the other one gets it.
        b[home].state.server_load.record(
            Reading {
                running: 2,
                waiting: 6,
                kv_usage: Some(0.9),
            },
            Duration::from_secs(60),
        );
        let c = pick();
        assert_ne!(c.target.backend, home);
        assert!(
            matches!(c.reason, Reason::LeastLoaded { load: 0, .. }),
            "{:?}",
            c.reason
        );
        // The bound is relative: once the other one queues deeper, the cache wins again (both
        // hold the prompt now: it was sent to each).
        b[1 - home].state.server_load.record(
            Reading {
                running: 9,
                waiting: 9,
                kv_usage: None,
            },
            Duration::from_secs(60),
        );
        let c = pick();
        assert_eq!(c.target.backend, home);
        assert!(
            matches!(c.reason, Reason::CacheMatch { .. }),
            "{:?}",
            c.reason
        );
        // Only the loaded one usable: taken all the same, and said so.
        let c = route
            .select(
                SelectionStrategy::CacheAware,
                affinity(None, Some(&prompt), &settings),
                &b,
                |t| t.backend == 1 - home,
            )
            .unwrap();
        assert_eq!(c.reason, Reason::AllAtBound { bound: 17 });
    }

    #[test]
    fn on_small_loads_a_session_waits_for_its_cache_rather_than_move() {
        let b = backends(3);
        let settings = RoutingConfig::default();
        let index = ModelIndex::build(&b, &[]);
        let route = index.resolve("m").unwrap();
        let pick = |p: &[u8]| cache_aware_pick(route, &b, &PromptBlocks::new([p]), &settings);
        let system = text(4, 3000);
        // One conversation, its turns growing on the shared system prompt.
        let mut conversation = [system.as_slice(), &text(5, 400)].concat();
        let home = pick(&conversation).target.backend;
        let mut next_turn = |seed: usize| {
            conversation.extend_from_slice(&text(seed, 300));
            conversation.clone()
        };
        let new_conversation = |seed: usize| [system.as_slice(), &text(seed, 400)].concat();
        // Two in flight there, none elsewhere: over the bound ⌈1.25 · 3/3⌉ = 2, but only 2
        // over the least loaded (balance_abs_threshold): both kinds of request stay.
        let mut held = vec![b[home].state.start_request(), b[home].state.start_request()];
        assert_eq!(pick(&next_turn(6)).target.backend, home);
        assert_eq!(pick(&new_conversation(7)).target.backend, home);
        // Three and four over: the conversation whose history only `home` holds stays (up
        // to twice balance_abs_threshold over the least loaded) ...
        held.push(b[home].state.start_request());
        let c = pick(&next_turn(8));
        assert_eq!(c.target.backend, home);
        assert_eq!(
            c.reason,
            Reason::HistoryKept {
                matched: 3584,
                prompt: 4000,
                load: 3,
                bound: 2
            }
        );
        held.push(b[home].state.start_request());
        let c = pick(&next_turn(9));
        assert!(
            matches!(c.reason, Reason::HistoryKept { load: 4, .. }),
            "{:?}",
            c.reason
        );
        // ... while a new conversation goes where it is least loaded: a copy of the shared
        // prefix there serves the conversations after it.
        let c = pick(&new_conversation(10));
        assert_ne!(c.target.backend, home);
        assert!(
            matches!(c.reason, Reason::LeastLoaded { load: 0, .. }),
            "{:?}",
            c.reason
        );
        let copy = c.target.backend;
        // With that copy within balance, the conversation moves to it: only its own turns
        // (under match_threshold of the prompt) are recomputed there.
        let c = pick(&next_turn(11));
        assert_eq!(c.target.backend, copy);
        assert!(
            matches!(c.reason, Reason::CacheMatch { matched: 2944, .. }),
            "{:?}",
            c.reason
        );
        drop(held);
        // A conversation over twice the slack with no copy anywhere moves too.
        let b = backends(2);
        let index = ModelIndex::build(&b, &[]);
        let route = index.resolve("m").unwrap();
        let prompt = PromptBlocks::new([text(12, 3000).as_slice()]);
        let home = cache_aware_pick(route, &b, &prompt, &settings)
            .target
            .backend;
        let _held: Vec<InFlight> = (0..5).map(|_| b[home].state.start_request()).collect();
        let c = cache_aware_pick(route, &b, &prompt, &settings);
        assert_ne!(c.target.backend, home);
    }

    #[test]
    fn reasons_read_as_header_values() {
        let r = Reason::CacheMatch {
            matched: 1024,
            prompt: 2048,
        };
        assert_eq!(
            r.header_value(),
            "cache-match; matched_bytes=1024; prompt_bytes=2048"
        );
        assert_eq!(
            Reason::HistoryKept {
                matched: 4096,
                prompt: 4200,
                load: 5,
                bound: 3
            }
            .header_value(),
            "history-kept; matched_bytes=4096; prompt_bytes=4200; load=5; bound=3"
        );
        assert_eq!(
            Reason::Order(SelectionStrategy::RoundRobin).header_value(),
            "strategy; name=RoundRobin"
        );
    }
}
