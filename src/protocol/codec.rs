//! Translation dispatched per wire format: the one place that knows which pure translator
//! turns a client's wire into the operation's pivot, the pivot into a backend's wire, and
//! the backend's replies, streams and errors back. Translation stays N+M through the pivot
//! (OpenAI chat for chat and count, OpenAI embeddings, the Cohere/Jina rerank shape, TEI's
//! sparse shape); no pair of wires is translated directly.

use bytes::{Bytes, BytesMut};
use http::StatusCode;

use super::anthropic_client as anthropic;
use super::embeddings::{self, EmbeddingParams, EncodingFormat};
use super::errors::ProviderError;
use super::ollama;
use super::{anthropic_backend, gemini, images, rerank, responses, sparse};
use crate::config::BackendType;
use crate::error::ProxyError;
use crate::pipeline::fields::{parse_routing, Routing};
use crate::pipeline::op::{Operation, Wire};

/// The pivot wire of an operation: what client requests are translated into, and what
/// translated backend replies are translated back from.
pub fn pivot(op: Operation) -> Wire {
    match op {
        Operation::Chat | Operation::CountTokens | Operation::Responses => Wire::OpenAiChat,
        Operation::Completion => Wire::OpenAiCompletions,
        Operation::Embed => Wire::OpenAiEmbeddings,
        Operation::Rerank => Wire::Rerank,
        Operation::EmbedSparse => Wire::TeiSparse,
        Operation::ImageGenerate => Wire::OpenAiImages,
        Operation::ImageEdit => Wire::OpenAiImageEdits,
        Operation::ImageVariation => Wire::OpenAiImageVariations,
    }
}

/// A client's request in its operation's pivot form.
#[derive(Debug, Clone)]
pub struct Pivot {
    /// The pivot body.
    pub body: Bytes,
    /// Its routing fields.
    pub routing: Routing,
    /// A Responses request's translation (hosted tools, echo fields, input items).
    pub responses: Option<responses::ChatRequest>,
}

/// A client's request in the pivot form, with its routing fields (`history`: a Responses
/// conversation's earlier items).
pub fn to_pivot(
    client: Wire,
    body: &Bytes,
    history: &[serde_json::Value],
) -> Result<Pivot, ProxyError> {
    let mut responses_request = None;
    let pivot = match client {
        Wire::OpenAiResponses => {
            let r = responses::to_chat_request(body, history)?;
            let chat = r.body.clone();
            responses_request = Some(r);
            chat
        }
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
        Wire::OpenAiSparse => sparse::request_to_tei(body).map_err(invalid("input"))?,
        _ => body.clone(),
    };
    let mut routing = parse_routing(&pivot).or_else(|e| match e {
        // TEI's shape names no model: the client's routing fields stand.
        ProxyError::MissingModel if client == Wire::OpenAiSparse => parse_routing(body),
        e => Err(e),
    })?;
    if client == Wire::OpenAiSparse {
        routing.model_in_body = false;
    }
    Ok(Pivot {
        body: pivot,
        routing,
        responses: responses_request,
    })
}

/// Request fields the codecs name at the start of their messages ("top_n must be …").
const FIELDS: [&str; 22] = [
    "query",
    "documents",
    "top_n",
    "return_documents",
    "model",
    "input",
    "encoding_format",
    "dimensions",
    "user",
    "inputs",
    "truncate",
    "truncation_direction",
    "prompt_name",
    "prompt",
    "n",
    "size",
    "quality",
    "response_format",
    "output_format",
    "background",
    "style",
    "stream",
];

/// A client-input error from a codec's message, naming the field the message starts
/// with (else `param`).
fn invalid(param: &'static str) -> impl Fn(String) -> ProxyError {
    move |message| {
        let head = message
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        let param = FIELDS
            .iter()
            .find(|f| **f == head)
            .copied()
            .unwrap_or(param);
        ProxyError::InvalidField { param, message }
    }
}

/// Checks a client's request body for what its operation needs beyond routing fields (the
/// shape of a rerank request, of embedding parameters), so bad input is a 400 before any
/// backend is called.
pub fn check_request(client: Wire, body: &[u8]) -> Result<(), ProxyError> {
    match client {
        Wire::Rerank => rerank::RerankRequest::parse(body)
            .map(drop)
            .map_err(invalid("documents")),
        Wire::OpenAiEmbeddings => EmbeddingParams::read(body)
            .map(drop)
            .map_err(invalid("encoding_format")),
        Wire::TeiSparse => sparse::check_tei_request(body).map_err(invalid("inputs")),
        Wire::OpenAiImages => images::GenerateRequest::parse(body)
            .map(drop)
            .map_err(invalid("prompt")),
        _ => Ok(()),
    }
}

/// Whether an OpenAI-compatible server of this type returns base64 embeddings itself;
/// for the others the router asks for floats and encodes them.
fn native_base64(kind: BackendType) -> bool {
    matches!(
        kind,
        BackendType::Openai
            | BackendType::Vllm
            | BackendType::Llamacpp
            | BackendType::Tei
            | BackendType::Continuum
    )
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
        Wire::GeminiImages => {
            let req = images::GenerateRequest::parse(&pivot_body).map_err(invalid("prompt"))?;
            let model = crate::backend::gemini::bare_model_id(ctx.model)?;
            let body = images::to_gemini(&req, model).map_err(invalid("model"))?;
            // One image per request there: `n` requests, merged.
            Encoded {
                decode: Decode::GeminiImages {
                    count: req.n.max(1),
                },
                ..plain(body, Wire::OpenAiImages)
            }
        }
        Wire::OpenAiResponses => {
            let (body, include_usage) = responses::from_chat_request(&pivot_body)?;
            Encoded {
                decode: Decode::Responses { include_usage },
                ..plain(body, Wire::OpenAiChat)
            }
        }
        Wire::OpenAiEmbeddings
        | Wire::GeminiEmbed
        | Wire::OllamaEmbed
        | Wire::Rerank
        | Wire::TeiRerank => return encode_retrieval(wire, pivot_body, ctx),
        // Pivots, and wires only ever passed through.
        _ => plain(pivot_body, wire),
    })
}

/// [`encode`] for the retrieval operations (embeddings and reranking).
fn encode_retrieval(
    wire: Wire,
    pivot_body: Bytes,
    ctx: &EncodeCtx<'_>,
) -> Result<Encoded, ProxyError> {
    let plain = |body: Bytes, replies_in: Wire| Encoded {
        body,
        decode: Decode::Pass,
        replies_in,
        usage: None,
    };
    Ok(match wire {
        Wire::OpenAiEmbeddings => {
            let format = embedding_format(&pivot_body)?;
            if format == EncodingFormat::Base64 && !native_base64(ctx.kind) {
                Encoded {
                    decode: Decode::Base64,
                    ..plain(embeddings::without_base64(&pivot_body), wire)
                }
            } else {
                plain(pivot_body, wire)
            }
        }
        Wire::GeminiEmbed => {
            let format = embedding_format(&pivot_body)?;
            let model = crate::backend::gemini::bare_model_id(ctx.model)?;
            let body = embeddings::to_gemini_batch(&pivot_body, model).map_err(invalid("input"))?;
            Encoded {
                decode: Decode::GeminiEmbed { format },
                ..plain(body, Wire::OpenAiEmbeddings)
            }
        }
        Wire::OllamaEmbed => {
            let format = embedding_format(&pivot_body)?;
            let body =
                embeddings::to_ollama_embed(&pivot_body, ctx.model).map_err(invalid("input"))?;
            Encoded {
                decode: Decode::OllamaEmbed { format },
                ..plain(body, Wire::OpenAiEmbeddings)
            }
        }
        Wire::Rerank => Encoded {
            decode: Decode::Rerank {
                request: pivot_body.clone(),
            },
            ..plain(pivot_body, Wire::Rerank)
        },
        Wire::TeiRerank => {
            let request =
                rerank::RerankRequest::parse(&pivot_body).map_err(invalid("documents"))?;
            let body = rerank::to_tei(&request).map_err(invalid("documents"))?;
            Encoded {
                decode: Decode::TeiRerank {
                    request: pivot_body,
                },
                ..plain(body, Wire::Rerank)
            }
        }
        _ => plain(pivot_body, wire),
    })
}

fn embedding_format(body: &[u8]) -> Result<EncodingFormat, ProxyError> {
    EmbeddingParams::read(body)
        .map(|p| p.encoding_format)
        .map_err(invalid("encoding_format"))
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
#[derive(Debug, Clone)]
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
    /// Gemini image models' replies (`count` identical requests, one image each) → OpenAI's
    /// images response.
    GeminiImages {
        /// How many requests to send.
        count: u8,
    },
    /// OpenAI Responses → OpenAI chat (models served only through Responses).
    Responses {
        /// The client asked for a usage chunk.
        include_usage: bool,
    },
    /// Gemini `batchEmbedContents` → OpenAI embeddings.
    GeminiEmbed {
        /// The client's `encoding_format`.
        format: EncodingFormat,
    },
    /// Ollama `/api/embed` → OpenAI embeddings.
    OllamaEmbed {
        /// The client's `encoding_format`.
        format: EncodingFormat,
    },
    /// OpenAI float embeddings → base64, for servers that cannot encode.
    Base64,
    /// A Cohere/Jina-shaped rerank reply: sorted, `top_n` and documents as the request
    /// (the pivot body) asks.
    Rerank {
        /// The rerank request.
        request: Bytes,
    },
    /// text-embeddings-inference's rerank reply → the Cohere/Jina shape.
    TeiRerank {
        /// The rerank request.
        request: Bytes,
    },
}

/// A backend stream format translated incrementally.
pub trait ChunkTranslator: Send + Unpin + 'static {
    /// Feeds bytes; returns the translated SSE text they complete, or the error the stream
    /// carried.
    fn feed(&mut self, data: &[u8]) -> Result<String, String>;
    /// Whether the backend's stream reached its proper end.
    fn is_done(&self) -> bool;
    /// Called when the backend's stream ends: the SSE text still due, or an error the
    /// translator held back (one that came after text in a single feed).
    fn finish(&mut self) -> Result<String, String> {
        Ok(String::new())
    }
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
            fn finish(&mut self) -> Result<String, String> {
                <$t>::finish(self)
            }
        }
    };
}
chunk_translator!(ollama::StreamTranslator);
chunk_translator!(gemini::StreamTranslator);
chunk_translator!(anthropic_backend::StreamTranslator);

impl Decode {
    /// Whether the backend's stream is SSE (Ollama's is NDJSON).
    pub fn sse(&self) -> bool {
        !matches!(self, Decode::Ollama { .. })
    }

    /// The translator of the backend's stream; `None` when bytes pass through.
    pub fn stream(&self, model: &str, id: &str) -> Option<Box<dyn ChunkTranslator>> {
        match *self {
            Decode::Anthropic { include_usage } => Some(Box::new(
                anthropic_backend::StreamTranslator::new(include_usage),
            )),
            Decode::Gemini { include_usage } => Some(Box::new(gemini::StreamTranslator::new(
                model,
                id,
                include_usage,
            ))),
            Decode::Responses { include_usage } => Some(Box::new(
                responses::ChatStreamTranslator::new(model, id, include_usage),
            )),
            Decode::Ollama { include_usage } => Some(Box::new(ollama::StreamTranslator::new(
                model,
                id,
                include_usage,
            ))),
            _ => None,
        }
    }

    /// Translates a whole reply (any status); `Err` names what was unreadable.
    pub fn whole(
        &self,
        status: StatusCode,
        bytes: Bytes,
        model: &str,
        id: &str,
    ) -> Result<(StatusCode, Bytes), String> {
        let ok = status.is_success();
        let rerank_request = |body: &Bytes| {
            rerank::RerankRequest::parse(body).map_err(|e| format!("rerank request: {e}"))
        };
        Ok(match self {
            Decode::Pass => (status, bytes),
            Decode::GeminiEmbed { format } if ok => (
                status,
                embeddings::from_gemini_batch(&bytes, model, *format)?,
            ),
            Decode::OllamaEmbed { format } if ok => (
                status,
                embeddings::from_ollama_embed(&bytes, model, *format)?,
            ),
            Decode::Base64 if ok => (status, embeddings::encode_base64(&bytes)?),
            Decode::Rerank { request } if ok => (
                status,
                rerank::normalise_reply(&bytes, &rerank_request(request)?)?,
            ),
            Decode::TeiRerank { request } if ok => {
                (status, rerank::from_tei(&bytes, &rerank_request(request)?)?)
            }
            Decode::GeminiEmbed { .. } => {
                openai_error(ProviderError::from_gemini(status, &bytes), status)
            }
            Decode::OllamaEmbed { .. }
            | Decode::Base64
            | Decode::Rerank { .. }
            | Decode::TeiRerank { .. } => {
                openai_error(ProviderError::from_openai(status, &bytes), status)
            }
            Decode::Anthropic { .. } if ok => {
                (status, anthropic_backend::to_openai_response(&bytes)?)
            }
            Decode::Gemini { .. } if ok => (status, gemini::to_openai_response(&bytes, model, id)?),
            Decode::Ollama { .. } if ok => (status, ollama::translate_response(&bytes, model, id)?),
            Decode::Responses { .. } if ok => (status, responses::to_chat_response(&bytes, model)?),
            // One reply is a merge of one.
            Decode::GeminiImages { .. } if ok => return self.merge(status, &[bytes]),
            Decode::GeminiImages { .. } => {
                openai_error(ProviderError::from_gemini(status, &bytes), status)
            }
            Decode::Responses { .. } => {
                openai_error(ProviderError::from_openai(status, &bytes), status)
            }
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

    /// How many identical requests the exchange sends (their replies are merged by
    /// [`Decode::merge`]).
    pub fn requests(&self) -> usize {
        match self {
            Decode::GeminiImages { count } => usize::from(*count).max(1),
            _ => 1,
        }
    }

    /// Merges the successful replies of [`Decode::requests`] identical requests.
    pub fn merge(
        &self,
        status: StatusCode,
        replies: &[Bytes],
    ) -> Result<(StatusCode, Bytes), String> {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let refs: Vec<&[u8]> = replies.iter().map(|b| &b[..]).collect();
        match images::from_gemini_replies(&refs, created) {
            Ok(b) => Ok((status, b)),
            Err(e) if e.starts_with(images::REFUSED) => {
                let body = serde_json::json!({"error": {"message": e, "type": "invalid_request_error", "param": "prompt", "code": "content_policy_violation"}});
                Ok((StatusCode::BAD_REQUEST, Bytes::from(body.to_string())))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the reply's body is rewritten (its content type becomes the pivot's).
    pub fn translates(&self) -> bool {
        !matches!(self, Decode::Pass)
    }
}

fn openai_error(e: ProviderError, status: StatusCode) -> (StatusCode, Bytes) {
    (e.openai_status(status), e.openai_body())
}

/// Whether a backend speaking `wire` takes PDFs as documents (Anthropic's `document`,
/// Gemini's `inlineData`, OpenAI's `file` part); others get a PDF's extracted text.
pub fn native_pdf(wire: Wire, kind: BackendType) -> bool {
    match wire {
        // Counts see what the message would carry.
        Wire::AnthropicMessages
        | Wire::AnthropicCountTokens
        | Wire::GeminiGenerate
        | Wire::GeminiCountTokens
        | Wire::OpenAiResponses => true,
        // OpenAI itself reads PDFs; OpenAI-compatible local servers do not.
        Wire::OpenAiChat => kind == BackendType::Openai,
        _ => false,
    }
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

/// A whole reply in `from` (a pivot) told in the client's wire, for the pairs translated
/// whole; `None` when `from` replies need no translation for `client` here.
pub fn client_reply(
    from: Wire,
    client: Wire,
    status: StatusCode,
    bytes: &[u8],
    model: &str,
) -> Option<Result<(StatusCode, Bytes), String>> {
    match (from, client) {
        (Wire::TeiSparse, Wire::OpenAiSparse) if status.is_success() => {
            Some(sparse::reply_from_tei(bytes, model).map(|b| (status, b)))
        }
        (Wire::TeiSparse, Wire::OpenAiSparse) => {
            let e = ProviderError::from_openai(status, bytes);
            Some(Ok((e.openai_status(status), e.openai_body())))
        }
        _ => None,
    }
}

/// Pass-through edits for a body in its own wire: the global prompt goes into the wire's
/// system prompt.
pub fn apply_prompt(wire: Wire, body: Bytes, inj: crate::prompts::Injection<'_>) -> Bytes {
    match wire {
        Wire::AnthropicMessages => crate::prompts::apply_anthropic(&body, inj),
        Wire::OpenAiChat => crate::prompts::apply_openai(&body, inj),
        Wire::OpenAiResponses => crate::prompts::apply_responses(&body, inj),
        _ => body,
    }
}
