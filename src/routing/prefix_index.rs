//! An approximate prefix tree of the prompts each backend was recently sent, for the
//! `CacheAware` strategy: a request goes where the longest part of its prompt was sent
//! before, since that server most likely still holds it in its KV cache.
//!
//! A prompt (its normalised parts: system, tools, messages, in order) is cut into blocks of
//! [`BLOCK`] bytes, and block *i* is named by a hash chained over blocks 0..=*i*, so one
//! hash stands for a whole prefix: it is a node of the tree, whose parent is the previous
//! block's hash. A backend's index is a set of such nodes with the time each was last sent,
//! and whether a longer prompt went on past it; a match walks the request's blocks from the
//! first until one is missing or expired. A match that stops where an earlier prompt ended
//! is a conversation's own history; one that stops where earlier prompts went on is a
//! prefix they share (a system prompt, tools).
//! Deciding is O(prompt length) and takes no lock shared by all requests: each index is
//! split into shards with a lock each, held for one lookup or one insert.
//!
//! Memory is bounded per backend (`routing.cache_aware.max_nodes`, and `max_memory`
//! turned into nodes at [`NODE_BYTES`] each): when a shard is over its share, its expired
//! nodes go, then its least recently sent eighth.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Bytes of prompt per node. Small enough that a message boundary is found to within a
/// few words, large enough that a 10,000-token prompt is a few hundred nodes.
pub const BLOCK: usize = 128;

/// What one node costs in memory (key, time, and the hash map's own overhead).
pub const NODE_BYTES: usize = 32;

/// Shards per index: locks are per shard, so concurrent requests rarely meet.
const SHARDS: usize = 16;

/// The blocks of one prompt: each block's chained hash, and the prompt's length in bytes.
#[derive(Debug, Clone, Default)]
pub struct PromptBlocks {
    hashes: Vec<u64>,
    bytes: usize,
}

impl PromptBlocks {
    /// The blocks of the prompt made of `parts` in order (a trailing partial block counts
    /// in the length, not as a node: it cannot be a prefix of a longer prompt).
    pub fn new<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> PromptBlocks {
        let mut out = PromptBlocks::default();
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        let mut chain = 0x9e37_79b9_7f4a_7c15u64;
        for part in parts {
            out.bytes += part.len();
            let mut rest = part;
            while !rest.is_empty() {
                let take = (BLOCK - filled).min(rest.len());
                block[filled..filled + take].copy_from_slice(&rest[..take]);
                filled += take;
                rest = &rest[take..];
                if filled == BLOCK {
                    chain = chained(chain, &block);
                    out.hashes.push(chain);
                    filled = 0;
                }
            }
        }
        out
    }

    /// The prompt's length in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Its whole blocks.
    pub fn blocks(&self) -> usize {
        self.hashes.len()
    }
}

/// The hash of a block given the hash of everything before it (FxHash's mix over 8-byte
/// words: fast, and good enough, since a collision only misroutes one request).
fn chained(prev: u64, block: &[u8; BLOCK]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = prev;
    for word in block.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    // Finalise (splitmix64), so that shard and map positions use well-mixed bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Keys are hashes already: the map uses them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A node's value: the second it was last sent, and [`CONTINUED`].
type Nodes = HashMap<u64, u32, BuildHasherDefault<Identity>>;

/// Set on a node when a prompt sent went on past it (it is not where that prompt ended).
const CONTINUED: u32 = 1 << 31;

/// The time part of a node's value.
fn sent(value: u32) -> u32 {
    value & !CONTINUED
}

/// How much of a prompt a backend was recently sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Match {
    /// Leading blocks matched.
    pub blocks: usize,
    /// The match stops where an earlier prompt ended rather than where one went on: the
    /// rest of this prompt continues a conversation whose history only this backend holds.
    pub own_history: bool,
}

/// Seconds since the first use of any index: node times fit in a `u32`.
pub fn now_secs() -> u32 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs() as u32
}

/// One backend's recently sent prompt prefixes.
#[derive(Debug)]
pub struct PrefixIndex {
    shards: Box<[Mutex<Nodes>]>,
    nodes: AtomicUsize,
}

impl Default for PrefixIndex {
    fn default() -> PrefixIndex {
        PrefixIndex {
            shards: (0..SHARDS).map(|_| Mutex::new(Nodes::default())).collect(),
            nodes: AtomicUsize::new(0),
        }
    }
}

/// The limits an index is kept within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most nodes per backend.
    pub max_nodes: usize,
    /// A node not sent for this many seconds no longer matches (the server's cache has
    /// most likely dropped it).
    pub expiry_secs: u32,
}

impl PrefixIndex {
    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Nodes> {
        // The top bits pick the shard; the map uses all of them.
        self.shards[(hash >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// How many leading blocks of `prompt` this backend was sent within the expiry, and
    /// whether that match ends where an earlier prompt ended.
    pub fn matched(&self, prompt: &PromptBlocks, now: u32, limits: Limits) -> Match {
        let mut m = Match::default();
        for h in &prompt.hashes {
            let value = self.shard(*h).get(h).copied();
            match value {
                Some(v) if now.saturating_sub(sent(v)) < limits.expiry_secs => {
                    m.blocks += 1;
                    m.own_history = v & CONTINUED == 0;
                }
                _ => break,
            }
        }
        m
    }

    /// Records that `prompt` was sent to this backend now.
    pub fn insert(&self, prompt: &PromptBlocks, now: u32, limits: Limits) {
        let per_shard = (limits.max_nodes / SHARDS).max(1);
        let now = sent(now);
        let last = prompt.hashes.len().saturating_sub(1);
        for (i, h) in prompt.hashes.iter().enumerate() {
            let mut shard = self.shard(*h);
            // Every block but the last has this prompt going on past it; a node once gone
            // past stays so (another prompt did).
            let continued = if i < last { CONTINUED } else { 0 };
            let added = match shard.entry(*h) {
                Entry::Occupied(mut e) => {
                    let v = e.get_mut();
                    *v = now | continued | (*v & CONTINUED);
                    false
                }
                Entry::Vacant(e) => {
                    e.insert(now | continued);
                    true
                }
            };
            if added {
                self.nodes.fetch_add(1, Ordering::Relaxed);
                if shard.len() > per_shard {
                    let before = shard.len();
                    evict(&mut shard, now, limits.expiry_secs, per_shard);
                    self.nodes
                        .fetch_sub(before - shard.len(), Ordering::Relaxed);
                }
            }
        }
    }

    /// Nodes held now.
    pub fn nodes(&self) -> usize {
        self.nodes.load(Ordering::Relaxed)
    }

    /// Forgets everything (the backend's server restarted, so its cache is empty).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            let n = s.len();
            s.clear();
            s.shrink_to_fit();
            self.nodes.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// Brings a shard under `cap`: expired nodes first, then the least recently sent eighth.
fn evict(shard: &mut Nodes, now: u32, expiry: u32, cap: usize) {
    shard.retain(|_, v| now.saturating_sub(sent(*v)) < expiry);
    if shard.len() <= cap {
        return;
    }
    let mut times: Vec<u32> = shard.values().map(|v| sent(*v)).collect();
    let drop = (shard.len() - cap)
        .max(shard.len() / 8)
        .min(times.len() - 1);
    let (_, nth, _) = times.select_nth_unstable(drop);
    let threshold = *nth;
    let older = shard.values().filter(|v| sent(**v) < threshold).count();
    let mut left = drop.saturating_sub(older);
    // Strictly older first; nodes at the threshold time only as many as still needed.
    shard.retain(|_, v| {
        let t = sent(*v);
        if t < threshold {
            return false;
        }
        if t == threshold && left > 0 {
            left -= 1;
            return false;
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_nodes: 1 << 20,
        expiry_secs: 600,
    };

    fn text(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b'a' + ((i * 7 + seed as usize) % 26) as u8)
            .collect()
    }

    #[test]
    fn blocks_do_not_depend_on_how_the_prompt_is_split() {
        let t = text(1, 1000);
        let whole = PromptBlocks::new([t.as_slice()]);
        let split = PromptBlocks::new([&t[..3], &t[3..500], &t[500..]]);
        assert_eq!(whole.hashes, split.hashes);
        assert_eq!(whole.blocks(), 1000 / BLOCK);
        assert_eq!(whole.bytes(), 1000);
    }

    #[test]
    fn a_longer_prompt_matches_what_was_sent_before_and_no_more() {
        let index = PrefixIndex::default();
        let system = text(1, 4 * BLOCK);
        let turn1 = [system.as_slice(), &text(2, 2 * BLOCK)].concat();
        let turn2 = [turn1.as_slice(), &text(3, 3 * BLOCK)].concat();
        index.insert(&PromptBlocks::new([turn1.as_slice()]), 0, LIMITS);
        assert_eq!(index.nodes(), 6);
        assert_eq!(
            index
                .matched(&PromptBlocks::new([turn2.as_slice()]), 1, LIMITS)
                .blocks,
            6
        );
        // Another conversation on the same system prompt shares its four blocks.
        let other = [system.as_slice(), &text(9, 5 * BLOCK)].concat();
        assert_eq!(
            index
                .matched(&PromptBlocks::new([other.as_slice()]), 1, LIMITS)
                .blocks,
            4
        );
        // A prompt that differs in its first byte shares nothing.
        let mut changed = turn2.clone();
        changed[0] ^= 1;
        assert_eq!(
            index
                .matched(&PromptBlocks::new([changed.as_slice()]), 1, LIMITS)
                .blocks,
            0
        );
    }

    #[test]
    fn a_match_says_whether_it_is_a_conversations_own_history() {
        let index = PrefixIndex::default();
        let system = text(1, 4 * BLOCK);
        let turn1 = [system.as_slice(), &text(2, 2 * BLOCK)].concat();
        let turn2 = [turn1.as_slice(), &text(3, 3 * BLOCK)].concat();
        let other = [system.as_slice(), &text(9, 5 * BLOCK)].concat();
        let blocks = |p: &[u8]| PromptBlocks::new([p]);
        index.insert(&blocks(&turn1), 0, LIMITS);
        // The next turn matches up to where the first one ended: its own history.
        let m = index.matched(&blocks(&turn2), 1, LIMITS);
        assert_eq!((m.blocks, m.own_history), (6, true));
        // Another conversation stops inside it, at the shared system prompt.
        let m = index.matched(&blocks(&other), 1, LIMITS);
        assert_eq!((m.blocks, m.own_history), (4, false));
        // Once the second turn is sent, the first turn's end is gone past: only a prompt
        // ending exactly there still calls it its own.
        index.insert(&blocks(&turn2), 1, LIMITS);
        let m = index.matched(&blocks(&turn2), 2, LIMITS);
        assert_eq!((m.blocks, m.own_history), (9, true));
        let m = index.matched(
            &blocks(&[turn1.as_slice(), &text(4, 3 * BLOCK)].concat()),
            2,
            LIMITS,
        );
        assert_eq!((m.blocks, m.own_history), (6, false));
        // Sending a shorter prompt again does not make a node gone past its end again.
        index.insert(&blocks(&turn1), 3, LIMITS);
        let m = index.matched(
            &blocks(&[turn1.as_slice(), &text(5, 3 * BLOCK)].concat()),
            3,
            LIMITS,
        );
        assert_eq!((m.blocks, m.own_history), (6, false));
    }

    #[test]
    fn nodes_expire() {
        let index = PrefixIndex::default();
        let p = PromptBlocks::new([text(1, 3 * BLOCK).as_slice()]);
        index.insert(&p, 100, LIMITS);
        assert_eq!(index.matched(&p, 699, LIMITS).blocks, 3);
        assert_eq!(index.matched(&p, 700, LIMITS).blocks, 0);
    }

    #[test]
    fn the_node_cap_evicts_the_least_recently_sent_first() {
        let limits = Limits {
            max_nodes: 16 * 64,
            expiry_secs: 1_000_000,
        };
        let index = PrefixIndex::default();
        // An old prompt, then many newer ones that overflow the cap.
        let old = PromptBlocks::new([text(0, 8 * BLOCK).as_slice()]);
        index.insert(&old, 0, limits);
        let prompt = |i: u32| PromptBlocks::new([&i.to_le_bytes()[..], &text(1, 8 * BLOCK)]);
        for i in 1..200u32 {
            index.insert(&prompt(i), i, limits);
        }
        assert!(index.nodes() <= limits.max_nodes, "{}", index.nodes());
        let actual: usize = index.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert_eq!(actual, index.nodes());
        assert_eq!(
            index.matched(&old, 200, limits).blocks,
            0,
            "the oldest prompt went first"
        );
        assert_eq!(index.matched(&prompt(199), 200, limits).blocks, 8);
    }

    #[test]
    fn clear_forgets_everything() {
        let index = PrefixIndex::default();
        let p = PromptBlocks::new([text(1, 3 * BLOCK).as_slice()]);
        index.insert(&p, 0, LIMITS);
        index.clear();
        assert_eq!(index.nodes(), 0);
        assert_eq!(index.matched(&p, 0, LIMITS).blocks, 0);
    }
}
