//! Prompt-cache accounting for PrefixAwareHash: the prompt tokens a backend reports and how
//! many of them it served from cache (`usage.prompt_tokens_details.cached_tokens`, as
//! OpenAI and vLLM report it), so the benefit of prefix routing is visible per backend.
//! Only responses of models routed by PrefixAwareHash are inspected.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
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
        let Ok(WithUsage { usage: Some(u) }) = serde_json::from_slice::<WithUsage>(json) else {
            return;
        };
        self.prompt_tokens
            .fetch_add(u.prompt_tokens.unwrap_or(0), Ordering::Relaxed);
        let cached = u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        self.cached_tokens.fetch_add(cached, Ordering::Relaxed);
    }

    /// Counts the usage events in a chunk of an SSE stream (events split across chunks are
    /// missed; backends send the usage event whole, at the end).
    pub fn count_sse(&self, chunk: &[u8]) {
        if !contains(chunk, b"\"usage\"") {
            return;
        }
        for data in crate::protocol::sse::data_fields(chunk) {
            if contains(data, b"\"usage\"") {
                self.count_json(data);
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
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
}
