//! Translation dispatched per wire format: the one place that knows which pure translator
//! turns a client's wire into the operation's pivot, the pivot into a backend's wire, and
//! the backend's replies, streams and errors back. Translation stays N+M through the pivot
//! (OpenAI chat for chat and count, OpenAI embeddings, the Cohere/Jina rerank shape, TEI's
//! sparse shape); no pair of wires is translated directly.

use bytes::{Bytes, BytesMut};
use http::StatusCode;

use super::errors::ProviderError;
use super::{anthropic, anthropic_backend, gemini};
use crate::backend::ollama;
use crate::config::BackendType;
use crate::error::ProxyError;
use crate::pipeline::fields::{parse_routing, Routing};
use crate::pipeline::op::{Operation, Wire};

/// The pivot wire of an operation: what client requests are translated into, and what
/// translated backend replies are translated back from.
pub fn pivot(op: Operation) -> Wire {
    match op {
        Operation::Chat | Operation::CountTokens => Wire::OpenAiChat,
        Operation::Completion => Wire::OpenAiCompletions,
        Operation::Embed => Wire::OpenAiEmbeddings,
        Operation::Rerank => Wire::Rerank,
        Operation::EmbedSparse => Wire::TeiSparse,
    }
}

/// A client's request in the pivot form, with its routing fields.
pub fn to_pivot(client: Wire, body: &Bytes) -> Result<(Bytes, Routing), ProxyError> {
    let pivot = match client {
        Wire::AnthropicMessages => anthropic::to_openai_request(body)?.0,
        Wire::AnthropicCountTokens => {
            // count_tokens takes no max_tokens; the translation wants one.
            let mut v: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
            if let Some(obj) = v.as_object_mut() {
                obj.entry("max_tokens").or_insert(serde_json::json!(1));
                obj.remove("stream");
            }
            anthropic::to_openai_request(v.to_string().as_bytes())?.0
        }
        _ => body.clone(),
    };
    let routing = parse_routing(&pivot)?;
    Ok((pivot, routing))
}

/// What one attempt needs to encode the pivot for its backend.
pub struct EncodeCtx<'a> {
    /// The model name the backend knows.
    pub model: &'a str,
    /// The client asked for a stream.
    pub stream: bool,
    /// The backend's type (for the OpenAI-compatible servers' quirks).
    pub kind: BackendType,
    /// The pivot's routing fields.
    pub routing: &'a Routing,
    /// Id for translated replies.
    pub id: &'a str,
}

/// A body in the backend's wire and how its reply is read back.
pub struct Encoded {
    /// The request body.
    pub body: Bytes,
    /// How the reply is turned into `replies_in`.
    pub decode: Decode,
    /// The wire the decoded reply is in (the pivot, or the client's own for counts).
    pub replies_in: Wire,
    /// A usage fix for OpenAI-shaped chat replies.
    pub usage: Option<UsageNeed>,
}

/// How usage is made sure of for an OpenAI-compatible backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageNeed {
    /// The router asked the backend for a usage chunk the client did not ask for: drop it.
    Strip,
    /// The backend may leave usage out: count it when it does.
    Fill,
}

/// Encodes a pivot body for a backend speaking `wire` (the pivot already carries the
/// backend's model name, reasoning level and global prompt).
pub fn encode(wire: Wire, pivot_body: Bytes, ctx: &EncodeCtx<'_>) -> Result<Encoded, ProxyError> {
    let plain = |body: Bytes, replies_in: Wire| Encoded {
        body,
        decode: Decode::Pass,
        replies_in,
        usage: None,
    };
    let stream = ctx.stream;
    Ok(match wire {
        Wire::OpenAiChat => {
            let body =
                crate::backend::adapt_request(ctx.kind, ctx.model, pivot_body, ctx.routing.limits);
            let (body, usage) = usage_request(ctx.kind, body, ctx.routing);
            Encoded {
                usage,
                ..plain(body, Wire::OpenAiChat)
            }
        }
        Wire::AnthropicMessages => {
            let (body, include_usage) =
                anthropic_backend::from_openai_request(&pivot_body, ctx.model, stream)?;
            Encoded {
                decode: Decode::Anthropic { include_usage },
                ..plain(body, Wire::OpenAiChat)
            }
        }
        Wire::GeminiGenerate => {
            let (body, include_usage) = gemini::from_openai_request(&pivot_body, ctx.model)?;
            Encoded {
                decode: Decode::Gemini { include_usage },
                ..plain(body, Wire::OpenAiChat)
            }
        }
        Wire::OllamaChat => {
            let (body, include_usage) = ollama::translate_request(&pivot_body, ctx.model, stream)?;
            Encoded {
                decode: Decode::Ollama { include_usage },
                ..plain(body, Wire::OpenAiChat)
            }
        }
        Wire::GeminiCountTokens => {
            let model = crate::backend::gemini::bare_model_id(ctx.model)?;
            let (generate, _) = gemini::from_openai_request(&pivot_body, model)?;
            Encoded {
                decode: Decode::GeminiCount,
                ..plain(
                    gemini::count_tokens_body(&generate, model),
                    Wire::AnthropicCountTokens,
                )
            }
        }
        Wire::LocalCount => plain(pivot_body, Wire::AnthropicCountTokens),
        // Pivots, and wires only ever passed through.
        _ => plain(pivot_body, wire),
    })
}

/// Asks backends that stream usage when asked (OpenAI, vLLM, llama.cpp) for it on every
/// stream (the chunk is dropped again when the client did not ask); for the others, usage
/// the client asked for (or any non-streamed reply's) is counted by the router when the
/// backend leaves it out.
fn usage_request(kind: BackendType, body: Bytes, routing: &Routing) -> (Bytes, Option<UsageNeed>) {
    let streams_usage = matches!(
        kind,
        BackendType::Openai | BackendType::Vllm | BackendType::Llamacpp
    );
    match (routing.stream, routing.stream_options) {
        (true, None) if streams_usage => {
            // `{"stream_options":{"include_usage":true},` + the rest of the object.
            let start = body.iter().position(|b| *b == b'{').map_or(0, |i| i + 1);
            let field: &[u8] = b"\"stream_options\":{\"include_usage\":true},";
            let mut out = BytesMut::with_capacity(body.len() + field.len());
            out.extend_from_slice(&body[..start]);
            out.extend_from_slice(field);
            out.extend_from_slice(&body[start..]);
            (out.freeze(), Some(UsageNeed::Strip))
        }
        (true, Some(true)) | (false, _) if !streams_usage => (body, Some(UsageNeed::Fill)),
        _ => (body, None),
    }
}

/// How a backend's reply is read back into the wire the pipeline continues in.
#[derive(Debug, Clone, Copy)]
pub enum Decode {
    /// Already in that wire: bytes pass through.
    Pass,
    /// Anthropic Messages → OpenAI chat.
    Anthropic {
        /// The client asked for a usage chunk.
        include_usage: bool,
    },
    /// Gemini → OpenAI chat.
    Gemini {
        /// The client asked for a usage chunk.
        include_usage: bool,
    },
    /// Ollama → OpenAI chat.
    Ollama {
        /// The client asked for a usage chunk.
        include_usage: bool,
    },
    /// Gemini `countTokens` → Anthropic's count answer.
    GeminiCount,
}

/// A backend stream format translated incrementally.
pub trait ChunkTranslator: Send + Unpin + 'static {
    /// Feeds bytes; returns the translated SSE text they complete, or the error the stream
    /// carried.
    fn feed(&mut self, data: &[u8]) -> Result<String, String>;
    /// Whether the backend's stream reached its proper end.
    fn is_done(&self) -> bool;
}

macro_rules! chunk_translator {
    ($t:ty) => {
        impl ChunkTranslator for $t {
            fn feed(&mut self, data: &[u8]) -> Result<String, String> {
                <$t>::feed(self, data)
            }
            fn is_done(&self) -> bool {
                <$t>::is_done(self)
            }
        }
    };
}
chunk_translator!(ollama::StreamTranslator);
chunk_translator!(gemini::StreamTranslator);
chunk_translator!(anthropic_backend::StreamTranslator);

impl Decode {
    /// Whether the backend's stream is SSE (Ollama's is NDJSON).
    pub fn sse(self) -> bool {
        !matches!(self, Decode::Ollama { .. })
    }

    /// The translator of the backend's stream; `None` when bytes pass through.
    pub fn stream(self, model: &str, id: &str) -> Option<Box<dyn ChunkTranslator>> {
        match self {
            Decode::Pass | Decode::GeminiCount => None,
            Decode::Anthropic { include_usage } => Some(Box::new(
                anthropic_backend::StreamTranslator::new(include_usage),
            )),
            Decode::Gemini { include_usage } => Some(Box::new(gemini::StreamTranslator::new(
                model,
                id,
                include_usage,
            ))),
            Decode::Ollama { include_usage } => Some(Box::new(ollama::StreamTranslator::new(
                model,
                id,
                include_usage,
            ))),
        }
    }

    /// Translates a whole reply (any status); `Err` names what was unreadable.
    pub fn whole(
        self,
        status: StatusCode,
        bytes: Bytes,
        model: &str,
        id: &str,
    ) -> Result<(StatusCode, Bytes), String> {
        let ok = status.is_success();
        Ok(match self {
            Decode::Pass => (status, bytes),
            Decode::Anthropic { .. } if ok => {
                (status, anthropic_backend::to_openai_response(&bytes)?)
            }
            Decode::Gemini { .. } if ok => (status, gemini::to_openai_response(&bytes, model, id)?),
            Decode::Ollama { .. } if ok => (status, ollama::translate_response(&bytes, model, id)?),
            Decode::GeminiCount if ok => {
                let tokens = gemini::parse_count_tokens(&bytes)
                    .ok_or("countTokens answer has no totalTokens")?;
                let body = serde_json::json!({"input_tokens": tokens}).to_string();
                (status, Bytes::from(body))
            }
            Decode::Anthropic { .. } => {
                openai_error(ProviderError::from_anthropic(status, &bytes), status)
            }
            Decode::Gemini { .. } => {
                openai_error(ProviderError::from_gemini(status, &bytes), status)
            }
            Decode::Ollama { .. } => {
                openai_error(ProviderError::from_openai(status, &bytes), status)
            }
            Decode::GeminiCount => {
                let e = ProviderError::from_gemini(status, &bytes);
                (e.anthropic_status(status), e.anthropic_body())
            }
        })
    }

    /// Whether the reply's body is rewritten (its content type becomes the pivot's).
    pub fn translates(self) -> bool {
        !matches!(self, Decode::Pass)
    }
}

fn openai_error(e: ProviderError, status: StatusCode) -> (StatusCode, Bytes) {
    (e.openai_status(status), e.openai_body())
}

/// Who counted the tokens of a count answered by a backend in `wire` (the
/// `x-continuum-token-count` header; the router's own tiers name themselves).
pub fn count_source(wire: Wire) -> Option<&'static str> {
    match wire {
        Wire::AnthropicCountTokens => Some("provider=anthropic"),
        Wire::GeminiCountTokens => Some("provider=gemini"),
        _ => None,
    }
}

/// Pass-through edits for a body in its own wire: the global prompt goes into the wire's
/// system prompt.
pub fn apply_prompt(wire: Wire, body: Bytes, inj: crate::prompts::Injection<'_>) -> Bytes {
    match wire {
        Wire::AnthropicMessages => crate::prompts::apply_anthropic(&body, inj),
        Wire::OpenAiChat => crate::prompts::apply_openai(&body, inj),
        _ => body,
    }
}
