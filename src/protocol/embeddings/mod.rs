//! Dense embeddings. OpenAI's embeddings API (`POST /v1/embeddings`) is the pivot: clients
//! speak it and OpenAI-compatible backends take it as it is. This module holds the pure
//! translations for backends that speak something else, and the base64 encoding the router
//! does itself when a backend can only send floats:
//!
//! - Gemini `POST /v1beta/models/{model}:batchEmbedContents` ([`to_gemini_batch`],
//!   [`from_gemini_batch`]; <https://ai.google.dev/api/embeddings>);
//! - Ollama `POST /api/embed` ([`to_ollama_embed`], [`from_ollama_embed`];
//!   <https://docs.ollama.com/api/embed>);
//! - `encoding_format: "base64"` ([`without_base64`] asks a backend for floats,
//!   [`encode_base64`] encodes its reply as OpenAI does).
//!
//! Vectors keep their precision: a float reply carries the backend's number text through
//! unchanged, and base64 is computed from the numbers read as `f32`, exactly as OpenAI encodes
//! (IEEE-754 binary32, little-endian, standard base64 with padding).
//!
//! Errors are `String`s naming the field at fault (`input[3] must be a string`); the caller
//! answers a request error with a 400 and a reply error with a 502.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::input::{is_number_array, named, parse_reply, parse_request, texts, to_bytes, Input};

/// The path of Ollama's embeddings endpoint, relative to the backend's base URL.
pub const OLLAMA_PATH: &str = "/api/embed";

/// The path of Gemini's batch embeddings endpoint for `model` (with or without its
/// `models/` prefix), relative to `https://generativelanguage.googleapis.com`.
pub fn gemini_batch_path(model: &str) -> String {
    let name = model.strip_prefix("models/").unwrap_or(model);
    format!("/v1beta/models/{name}:batchEmbedContents")
}

/// How the client wants its vectors: OpenAI's `encoding_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingFormat {
    /// JSON arrays of numbers (OpenAI's default).
    #[default]
    Float,
    /// A standard base64 string of the vector's little-endian `f32` bytes.
    Base64,
}

/// The request fields the router acts on itself, read without touching `input`, so the
/// pipeline can tell whether to ask a backend for floats ([`without_base64`]) and encode
/// base64 itself ([`encode_base64`]), and can check `dimensions` before any backend sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmbeddingParams {
    /// `encoding_format`; `float` when absent or null.
    pub encoding_format: EncodingFormat,
    /// `dimensions`, a positive integer, when given.
    pub dimensions: Option<u32>,
}

impl EmbeddingParams {
    /// Reads `encoding_format` and `dimensions` from an OpenAI embeddings request body.
    pub fn read(body: &[u8]) -> Result<Self, String> {
        let wire: ParamsWire = parse_request(body)?;
        params(wire.encoding_format, wire.dimensions)
    }
}

/// The body with `encoding_format` removed, so the backend answers with floats (every
/// OpenAI-compatible server's default) that [`encode_base64`] then encodes. A body that is
/// not a JSON object, or has no `encoding_format`, is returned unchanged; every other field is
/// kept byte for byte.
pub fn without_base64(body: &Bytes) -> Bytes {
    let Ok(mut fields) = serde_json::from_slice::<BTreeMap<String, &RawValue>>(body) else {
        return body.clone();
    };
    if fields.remove("encoding_format").is_none() {
        return body.clone();
    }
    serde_json::to_vec(&fields).map_or_else(|_| body.clone(), Bytes::from)
}

/// Rewrites an OpenAI float reply's `data[].embedding` arrays as base64 strings, exactly as
/// OpenAI sends them for `encoding_format: "base64"`: each number read as `f32`, its four
/// little-endian bytes concatenated, standard base64 with padding. An embedding that is
/// already a string is left alone; every other field is kept byte for byte.
pub fn encode_base64(reply: &[u8]) -> Result<Bytes, String> {
    const WHAT: &str = "embeddings reply";
    let top: BTreeMap<String, &RawValue> = parse_reply(reply, WHAT)?;
    let data = *top
        .get("data")
        .ok_or_else(|| format!("{WHAT} has no data"))?;
    let items: Vec<BTreeMap<String, &RawValue>> = serde_json::from_str(data.get())
        .map_err(|_| format!("{WHAT}: data must be an array of objects"))?;
    let mut out: Vec<BTreeMap<String, Cow<'_, RawValue>>> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let mut fields: BTreeMap<String, Cow<'_, RawValue>> = item
            .into_iter()
            .map(|(k, v)| (k, Cow::Borrowed(v)))
            .collect();
        let embedding = fields
            .get("embedding")
            .ok_or_else(|| format!("{WHAT}: data[{i}] has no embedding"))?;
        if !embedding.get().starts_with('"') {
            let encoded = base64_of(embedding).ok_or_else(|| {
                format!("{WHAT}: data[{i}].embedding must be an array of numbers")
            })?;
            fields.insert("embedding".to_owned(), Cow::Owned(encoded));
        }
        out.push(fields);
    }
    let data = serde_json::value::to_raw_value(&out).map_err(|e| e.to_string())?;
    let mut top: BTreeMap<&str, Cow<'_, RawValue>> = top
        .iter()
        .map(|(k, v)| (k.as_str(), Cow::Borrowed(*v)))
        .collect();
    top.insert("data", Cow::Owned(data));
    Ok(to_bytes(&top))
}

/// The Gemini `batchEmbedContents` body for an OpenAI embeddings request: one
/// `requests[]` entry per input, each naming `models/{model}` with the text as its only
/// part, and `dimensions` as `outputDimensionality`. Token-id inputs are refused (Gemini
/// embeds text only), as are empty strings (OpenAI refuses them too).
pub fn to_gemini_batch(body: &[u8], model: &str) -> Result<Bytes, String> {
    let wire: RequestWire = parse_request(body)?;
    let params = params(wire.encoding_format, wire.dimensions)?;
    let (texts, _) = texts(wire.input.as_ref(), "Gemini")?;
    let name = if model.starts_with("models/") {
        Cow::Borrowed(model)
    } else {
        Cow::Owned(format!("models/{model}"))
    };
    let requests = texts
        .into_iter()
        .map(|text| GeminiRequest {
            model: &name,
            content: GeminiContent {
                parts: [GeminiPart { text }],
            },
            output_dimensionality: params.dimensions,
        })
        .collect();
    Ok(to_bytes(&GeminiBatch { requests }))
}

/// An OpenAI embeddings reply for Gemini's `{"embeddings":[{"values":[...]}]}`, in the
/// order Gemini answered (its order is the requests' order), as `model`, with vectors in
/// `format`. Gemini's batch reply carries no token counts and this function never sees the
/// input, so `usage` reports **zero** prompt and total tokens rather than a guess.
pub fn from_gemini_batch(
    reply: &[u8],
    model: &str,
    format: EncodingFormat,
) -> Result<Bytes, String> {
    const WHAT: &str = "gemini reply";
    let wire: GeminiReply = parse_reply(reply, WHAT)?;
    let embeddings = wire
        .embeddings
        .ok_or_else(|| format!("{WHAT} has no embeddings"))?;
    let vectors = embeddings
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            e.values.filter(|v| is_number_array(v)).ok_or_else(|| {
                format!("{WHAT}: embeddings[{i}].values must be an array of numbers")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    openai_reply(&vectors, model, format, 0, WHAT)
}

/// The Ollama `/api/embed` body for an OpenAI embeddings request: `model`, `input` (a string
/// stays a string, a list stays a list), `dimensions` when given, and `truncate` when the
/// client sent that boolean (an Ollama field OpenAI lacks; absent, Ollama's default applies).
/// Token-id inputs and empty strings are refused.
pub fn to_ollama_embed(body: &[u8], model: &str) -> Result<Bytes, String> {
    let wire: RequestWire = parse_request(body)?;
    let params = params(wire.encoding_format, wire.dimensions)?;
    let (mut texts, single) = texts(wire.input.as_ref(), "Ollama")?;
    let input = if single {
        OllamaInput::One(texts.remove(0))
    } else {
        OllamaInput::Many(texts)
    };
    Ok(to_bytes(&OllamaRequest {
        model,
        input,
        dimensions: params.dimensions,
        truncate: wire.truncate,
    }))
}

/// An OpenAI embeddings reply for Ollama's `{"embeddings":[[...]], "prompt_eval_count"}`, as
/// `model`, with vectors in `format`; `prompt_eval_count` becomes both `prompt_tokens` and
/// `total_tokens` (zero when Ollama leaves it out).
pub fn from_ollama_embed(
    reply: &[u8],
    model: &str,
    format: EncodingFormat,
) -> Result<Bytes, String> {
    const WHAT: &str = "ollama reply";
    let wire: OllamaReply = parse_reply(reply, WHAT)?;
    let embeddings = wire
        .embeddings
        .ok_or_else(|| format!("{WHAT} has no embeddings"))?;
    if let Some(i) = embeddings.iter().position(|v| !is_number_array(v)) {
        return Err(format!(
            "{WHAT}: embeddings[{i}] must be an array of numbers"
        ));
    }
    let tokens = wire.prompt_eval_count.unwrap_or(0);
    openai_reply(&embeddings, model, format, tokens, WHAT)
}

// ---------------------------------------------------------------------------------------
// Wire types

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct ParamsWire {
    #[serde(default, deserialize_with = "encoding_format")]
    encoding_format: Option<FormatWire>,
    #[serde(default, deserialize_with = "dimensions")]
    dimensions: Option<u64>,
}

/// The fields of an OpenAI embeddings request a translation reads; `user` and anything
/// else are not forwarded to non-OpenAI backends.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct RequestWire<'a> {
    #[serde(borrow, default)]
    input: Option<Input<'a>>,
    #[serde(default, deserialize_with = "encoding_format")]
    encoding_format: Option<FormatWire>,
    #[serde(default, deserialize_with = "dimensions")]
    dimensions: Option<u64>,
    #[serde(default, deserialize_with = "truncate")]
    truncate: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum FormatWire {
    Float,
    Base64,
}

fn encoding_format<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FormatWire>, D::Error> {
    named(d, "encoding_format must be \"float\" or \"base64\"")
}

fn dimensions<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    named(d, "dimensions must be a positive integer")
}

fn truncate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    named(d, "truncate must be a boolean")
}

fn params(format: Option<FormatWire>, dimensions: Option<u64>) -> Result<EmbeddingParams, String> {
    let dimensions = match dimensions {
        None => None,
        Some(n) => Some(
            u32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or("dimensions must be a positive integer")?,
        ),
    };
    let encoding_format = match format {
        Some(FormatWire::Base64) => EncodingFormat::Base64,
        Some(FormatWire::Float) | None => EncodingFormat::Float,
    };
    Ok(EmbeddingParams {
        encoding_format,
        dimensions,
    })
}

#[derive(Serialize)]
struct GeminiBatch<'a> {
    requests: Vec<GeminiRequest<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GeminiRequest<'a> {
    model: &'a str,
    content: GeminiContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Serialize)]
struct GeminiContent<'a> {
    parts: [GeminiPart<'a>; 1],
}

#[derive(Serialize)]
struct GeminiPart<'a> {
    text: &'a str,
}

#[derive(Deserialize)]
struct GeminiReply<'a> {
    #[serde(borrow, default)]
    embeddings: Option<Vec<GeminiEmbedding<'a>>>,
}

#[derive(Deserialize)]
struct GeminiEmbedding<'a> {
    #[serde(borrow, default)]
    values: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct OllamaRequest<'a> {
    model: &'a str,
    input: OllamaInput<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncate: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OllamaInput<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
}

#[derive(Deserialize)]
struct OllamaReply<'a> {
    #[serde(borrow, default)]
    embeddings: Option<Vec<&'a RawValue>>,
    #[serde(default, deserialize_with = "prompt_eval_count")]
    prompt_eval_count: Option<u64>,
}

fn prompt_eval_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    named(d, "prompt_eval_count must be a non-negative integer")
}

#[derive(Serialize)]
struct OpenAiReply<'a, E> {
    object: &'static str,
    data: Vec<OpenAiItem<E>>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct OpenAiItem<E> {
    object: &'static str,
    index: usize,
    embedding: E,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// An OpenAI embeddings reply from vectors already checked to be arrays of numbers: their
/// text verbatim for `float`, base64 of their `f32`s for `base64`.
fn openai_reply(
    vectors: &[&RawValue],
    model: &str,
    format: EncodingFormat,
    tokens: u64,
    what: &str,
) -> Result<Bytes, String> {
    let usage = Usage {
        prompt_tokens: tokens,
        total_tokens: tokens,
    };
    let item = |index, embedding| OpenAiItem {
        object: "embedding",
        index,
        embedding,
    };
    let body = match format {
        EncodingFormat::Float => serde_json::to_vec(&OpenAiReply {
            object: "list",
            data: vectors
                .iter()
                .enumerate()
                .map(|(i, v)| item(i, compact(v)))
                .collect(),
            model,
            usage,
        }),
        EncodingFormat::Base64 => {
            let data = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    base64_of(v)
                        .map(|b| item(i, Cow::Owned(b)))
                        .ok_or_else(|| format!("{what}: vector {i} does not fit f32"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            serde_json::to_vec(&OpenAiReply {
                object: "list",
                data,
                model,
                usage,
            })
        }
    };
    body.map(Bytes::from).map_err(|e| e.to_string())
}

/// A JSON array of numbers without the whitespace a pretty-printing backend (Gemini) puts
/// between them; the numbers' text is untouched. Only for arrays of numbers, which hold no
/// strings whose spaces would matter.
fn compact(numbers: &RawValue) -> Cow<'_, RawValue> {
    let text = numbers.get();
    if !text.bytes().any(|b| b.is_ascii_whitespace()) {
        return Cow::Borrowed(numbers);
    }
    let tight: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match RawValue::from_string(tight) {
        Ok(raw) => Cow::Owned(raw),
        Err(_) => Cow::Borrowed(numbers),
    }
}

/// A JSON array of numbers as OpenAI's base64 string (a JSON string token), or `None` when it
/// is not an array of numbers that fit `f32`.
fn base64_of(vector: &RawValue) -> Option<Box<RawValue>> {
    let floats: Vec<f32> = serde_json::from_str(vector.get()).ok()?;
    if floats.iter().any(|f| !f.is_finite()) {
        return None;
    }
    let bytes: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    RawValue::from_string(format!("\"{encoded}\"")).ok()
}

#[cfg(test)]
mod tests;
