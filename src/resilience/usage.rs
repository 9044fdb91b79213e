//! Prompt-cache accounting for the cache-seeking strategies (PrefixAwareHash,
//! BoundedLoadHash, CacheAware): the prompt tokens a backend reports and how many of them
//! it served from its cache, so the benefit of prefix routing is visible per backend.
//! Read from each reply's usage in the shape its server sends:
//! - OpenAI, vLLM, SGLang, recent llama.cpp: `usage.prompt_tokens` and
//!   `usage.prompt_tokens_details.cached_tokens`;
//! - Anthropic: `usage.input_tokens` (uncached) plus `cache_read_input_tokens` (cached) and
//!   `cache_creation_input_tokens`;
//! - llama.cpp without cached-token details: `timings.cache_n` (reused from its cache) and
//!   `timings.prompt_n` (processed), also when a stream carries no usage.
//!
//! Only responses of models routed by those strategies are inspected.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    timings: Option<Timings>,
    /// Anthropic's `message_start` carries usage inside `message`.
    #[serde(default)]
    message: Option<Box<Reply>>,
    /// Anthropic's event type: `message_delta` repeats the input counts, not counted again.
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Timings {
    #[serde(default)]
    prompt_n: Option<i64>,
    #[serde(default)]
    cache_n: Option<i64>,
}

/// Prompt tokens and cache hits reported by one backend.
#[derive(Debug, Default)]
pub struct CacheStats {
    prompt_tokens: AtomicU64,
    cached_tokens: AtomicU64,
}

impl CacheStats {
    /// (prompt tokens, of which cached) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.prompt_tokens.load(Ordering::Relaxed),
            self.cached_tokens.load(Ordering::Relaxed),
        )
    }

    /// Counts the usage of a JSON response body (or one SSE event's data), if it has one.
    pub fn count_json(&self, json: &[u8]) {
        let Ok(reply) = serde_json::from_slice::<Reply>(json) else {
            return;
        };
        if reply.kind.as_deref() == Some("message_delta") {
            return;
        }
        let (usage, timings) = match reply.message {
            Some(m) if reply.usage.is_none() => (m.usage, m.timings),
            _ => (reply.usage, reply.timings),
        };
        let cache_n = timings
            .as_ref()
            .and_then(|t| t.cache_n)
            .map(|n| n.max(0) as u64);
        let (prompt, cached) = match usage {
            Some(u) => {
                let read = u.cache_read_input_tokens;
                let prompt = u.prompt_tokens.or_else(|| {
                    u.input_tokens
                        .map(|i| i + read.unwrap_or(0) + u.cache_creation_input_tokens.unwrap_or(0))
                });
                let cached = u
                    .prompt_tokens_details
                    .and_then(|d| d.cached_tokens)
                    .or(read)
                    .or(cache_n);
                (prompt.unwrap_or(0), cached.unwrap_or(0))
            }
            // A llama.cpp stream without a usage chunk still ends with its timings.
            None => match (timings.and_then(|t| t.prompt_n), cache_n) {
                (Some(p), Some(c)) => (p.max(0) as u64 + c, c),
                _ => return,
            },
        };
        self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        self.cached_tokens
            .fetch_add(cached.min(prompt), Ordering::Relaxed);
    }

    /// Counts the usage events in a chunk of an SSE stream (events split across chunks are
    /// missed; backends send the usage event whole, at the end).
    pub fn count_sse(&self, chunk: &[u8]) {
        if !contains(chunk, b"\"usage\"") && !contains(chunk, b"\"timings\"") {
            return;
        }
        for data in crate::protocol::sse::data_fields(chunk) {
            if contains(data, b"\"usage\"") || contains(data, b"\"timings\"") {
                self.count_json(data);
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_json_and_sse_usage() {
        let s = CacheStats::default();
        s.count_json(br#"{"id":"x","usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":64}}}"#);
        s.count_json(br#"{"id":"x","usage":{"prompt_tokens":10}}"#);
        s.count_json(br#"{"id":"x"}"#);
        s.count_sse(b"data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"prompt_tokens_details\":{\"cached_tokens\":48}}}\n\ndata: [DONE]\n\n");
        assert_eq!(s.totals(), (160, 112));
    }

    #[test]
    fn counts_anthropic_and_llama_cpp_shapes() {
        let s = CacheStats::default();
        // Anthropic: input_tokens is the uncached part.
        s.count_json(br#"{"type":"message","usage":{"input_tokens":20,"cache_read_input_tokens":80,"cache_creation_input_tokens":0,"output_tokens":5}}"#);
        assert_eq!(s.totals(), (100, 80));
        // Streamed: message_start counts, message_delta does not again.
        s.count_sse(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":30}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":30,\"output_tokens\":9}}\n\n");
        assert_eq!(s.totals(), (140, 110));
        // llama.cpp before cached-token details: timings.cache_n.
        s.count_json(br#"{"usage":{"prompt_tokens":300,"completion_tokens":4},"timings":{"cache_n":250,"prompt_n":50}}"#);
        assert_eq!(s.totals(), (440, 360));
        // A llama.cpp stream without a usage chunk: its last chunk's timings.
        s.count_sse(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"timings\":{\"cache_n\":90,\"prompt_n\":10}}\n\ndata: [DONE]\n\n");
        assert_eq!(s.totals(), (540, 450));
        // Nonsense never counts more cached than prompt tokens.
        s.count_json(
            br#"{"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":99}}}"#,
        );
        assert_eq!(s.totals(), (541, 451));
    }
}
