//! Token counting for `POST /v1/messages/count_tokens`, in tiers, each saying what it is:
//! a real tokenizer for OpenAI model families (tiktoken's `o200k_base` for GPT-4o, GPT-4.1,
//! GPT-5 and the o-series; `cl100k_base` for GPT-4 and GPT-3.5), else an estimate of one
//! token per four characters. Tokenizer tables are loaded on first use only.
//! (The provider tier — asking Anthropic's or Gemini's own count API — arrives with those
//! backend types.)

use serde_json::Value;

/// How a count was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// A real tokenizer of the model's family (its name).
    Tokenizer(&'static str),
    /// Characters divided by four, rounded up.
    Estimate,
}

impl Tier {
    /// Text for the `x-continuum-token-count` response header.
    pub fn describe(self) -> String {
        match self {
            Tier::Tokenizer(name) => format!("tokenizer={name}"),
            Tier::Estimate => "estimate=chars/4".to_string(),
        }
    }
}

/// The tokenizer tier for a model name, if its family is known.
pub fn tier_for(model: &str) -> Tier {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let o200k = [
        "gpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "o1",
        "o3",
        "o4",
        "chatgpt-4o",
    ];
    if o200k.iter().any(|p| m.starts_with(p)) {
        return Tier::Tokenizer("o200k_base");
    }
    if m.starts_with("gpt-4") || m.starts_with("gpt-3.5") {
        return Tier::Tokenizer("cl100k_base");
    }
    Tier::Estimate
}

/// The tokens of `text` by `tier`.
pub fn count_text(tier: Tier, text: &str) -> u64 {
    match tier {
        Tier::Tokenizer("o200k_base") => tiktoken_rs::o200k_base_singleton()
            .encode_with_special_tokens(text)
            .len() as u64,
        Tier::Tokenizer(_) => tiktoken_rs::cl100k_base_singleton()
            .encode_with_special_tokens(text)
            .len() as u64,
        Tier::Estimate => text.chars().count().div_ceil(4) as u64,
    }
}

/// Counts a text that arrives in pieces (a streamed answer) without holding it whole:
/// pieces wait until [`TextTally::FLUSH_AT`] bytes, then are counted up to their last
/// whitespace (a tokenizer's tokens start at one, so the sum matches a count of the whole).
pub struct TextTally {
    tier: Tier,
    pending: String,
    tokens: u64,
    chars: u64,
}

impl TextTally {
    /// How much text waits before it is counted.
    pub const FLUSH_AT: usize = 64 << 10;

    /// An empty tally counting by `tier`.
    pub fn new(tier: Tier) -> TextTally {
        TextTally {
            tier,
            pending: String::new(),
            tokens: 0,
            chars: 0,
        }
    }

    /// Adds a piece of the text.
    pub fn push(&mut self, piece: &str) {
        if self.tier == Tier::Estimate {
            self.chars += piece.chars().count() as u64;
            return;
        }
        self.pending.push_str(piece);
        if self.pending.len() < Self::FLUSH_AT {
            return;
        }
        let cut = match self.pending.rfind(char::is_whitespace) {
            Some(cut) if cut > 0 => cut,
            // One word longer than the limit several times over: counted as it is.
            _ if self.pending.len() > 4 * Self::FLUSH_AT => self.pending.len(),
            _ => return,
        };
        self.tokens += count_text(self.tier, &self.pending[..cut]);
        self.pending.drain(..cut);
    }

    /// The tokens of all the text pushed.
    pub fn total(&self) -> u64 {
        match self.tier {
            Tier::Estimate => self.chars.div_ceil(4),
            tier => self.tokens + count_text(tier, &self.pending),
        }
    }

    /// Bytes held now (bounded by about [`TextTally::FLUSH_AT`] plus one piece).
    pub fn held(&self) -> usize {
        self.pending.len()
    }
}

/// Counts the input tokens of an OpenAI chat request (messages and tools) for `model`.
/// Message framing follows OpenAI's published rule: 3 tokens per message plus 3 to prime
/// the reply.
pub fn count_chat(model: &str, request: &Value) -> (u64, Tier) {
    let tier = tier_for(model);
    let mut total = 3;
    for m in request["messages"].as_array().into_iter().flatten() {
        total += 3 + count_text(tier, m["role"].as_str().unwrap_or(""));
        match &m["content"] {
            Value::String(s) => total += count_text(tier, s),
            Value::Array(parts) => {
                for p in parts {
                    if let Some(t) = p["text"].as_str() {
                        total += count_text(tier, t);
                    }
                }
            }
            _ => {}
        }
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            total += count_text(tier, c["function"]["name"].as_str().unwrap_or(""));
            total += count_text(tier, c["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    if let Some(tools) = request.get("tools").filter(|t| t.is_array()) {
        total += count_text(tier, &tools.to_string());
    }
    (total, tier)
}

/// Answers a count request in-process (the backend cannot count): the body is the chat
/// request in OpenAI's form, naming the backend's model; the answer is Anthropic's
/// `{"input_tokens"}` with the tier used in `x-continuum-token-count`.
pub async fn answer_count(
    body: http_body_util::Full<bytes::Bytes>,
) -> crate::pipeline::body::Response {
    use http_body_util::BodyExt as _;
    let Ok(collected) = body.collect().await;
    let request: Value = serde_json::from_slice(&collected.to_bytes()).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("");
    let (tokens, tier) = count_chat(model, &request);
    let mut resp = crate::pipeline::body::json(
        http::StatusCode::OK,
        serde_json::json!({"input_tokens": tokens}).to_string(),
    );
    if let Ok(v) = http::HeaderValue::from_str(&tier.describe()) {
        resp.headers_mut().insert("x-continuum-token-count", v);
    }
    resp
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_text_counted_in_pieces_holds_little_and_counts_as_the_whole() {
        let words: Vec<String> = (0..60_000).map(|i| format!("word{} ", i % 977)).collect();
        let whole: String = words.concat();
        for tier in [Tier::Tokenizer("cl100k_base"), Tier::Estimate] {
            let mut tally = TextTally::new(tier);
            let mut most = 0;
            for w in &words {
                tally.push(w);
                most = most.max(tally.held());
            }
            assert_eq!(tally.total(), count_text(tier, &whole), "{tier:?}");
            assert!(
                most <= TextTally::FLUSH_AT + 16,
                "{tier:?} held {most} bytes"
            );
        }
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn tiers_by_model_family() {
        assert_eq!(tier_for("gpt-4o-mini"), Tier::Tokenizer("o200k_base"));
        assert_eq!(tier_for("openai/o3-mini"), Tier::Tokenizer("o200k_base"));
        assert_eq!(tier_for("gpt-4-turbo"), Tier::Tokenizer("cl100k_base"));
        assert_eq!(tier_for("llama3.2"), Tier::Estimate);
    }

    #[test]
    fn counts() {
        // "Hello, world!" is 4 tokens in both cl100k_base and o200k_base.
        assert_eq!(
            count_text(Tier::Tokenizer("o200k_base"), "Hello, world!"),
            4
        );
        assert_eq!(
            count_text(Tier::Tokenizer("cl100k_base"), "Hello, world!"),
            4
        );
        assert_eq!(count_text(Tier::Estimate, "Hello, world!"), 4);
        let req = json!({"messages": [{"role": "user", "content": "Hello, world!"}]});
        // 3 (reply priming) + 3 (message) + 1 ("user") + 4.
        assert_eq!(
            count_chat("gpt-4o", &req),
            (11, Tier::Tokenizer("o200k_base"))
        );
    }
}
