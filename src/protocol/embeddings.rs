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
use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::value::RawValue;

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

// ---------------------------------------------------------------------------------------
// Shared by the rerank and sparse codecs.

/// Serializes a wire value the codecs built themselves (plain structs, strings, numbers
/// and verbatim JSON: serialization cannot fail).
pub(super) fn to_bytes<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("wire types always serialize"))
}

/// serde_json's message without its ` at line L column C` suffix: the messages the codecs
/// raise name the field themselves, and a position in a one-line body helps nobody.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}

/// Parses a client request body, which must be a JSON object (serde would also read a
/// struct from an array); a data error keeps the message naming the field, a body that is
/// not JSON says so.
pub(super) fn parse_request<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err("request body must be a JSON object".into());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => message(&e),
        _ => format!("request body is not valid JSON: {}", message(&e)),
    })
}

/// Parses a backend reply; errors start with `what` (`gemini reply`) so a 502 says whose
/// answer was wrong.
pub(super) fn parse_reply<'a, T: Deserialize<'a>>(
    reply: &'a [u8],
    what: &str,
) -> Result<T, String> {
    serde_json::from_slice(reply).map_err(|e| match e.classify() {
        Category::Data => format!("{what}: {}", message(&e)),
        _ => format!("{what} is not valid JSON: {}", message(&e)),
    })
}

/// Deserializes a field, replacing serde's type error (which never names the field) with
/// `message`. Used through small per-field `deserialize_with` functions.
pub(super) fn named<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
    message: &'static str,
) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|_| de::Error::custom(message))
}

/// Whether a JSON value is a number (valid JSON starting with `-` or a digit is one).
pub(super) fn is_number(raw: &RawValue) -> bool {
    raw.get()
        .as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
}

/// Whether a JSON value is an array of numbers, checked without allocating.
pub(super) fn is_number_array(raw: &RawValue) -> bool {
    struct Numbers;
    impl<'de> Deserialize<'de> for Numbers {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Numbers;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an array of numbers")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Numbers, A::Error> {
                    while seq.next_element::<f64>()?.is_some() {}
                    Ok(Numbers)
                }
            }
            d.deserialize_seq(V)
        }
    }
    serde_json::from_str::<Numbers>(raw.get()).is_ok()
}

/// OpenAI's `input` (and the router's sparse `input`): one string, or an array whose items
/// are strings or token ids. Wrong shapes are kept as [`Input::Invalid`] /
/// [`Item::Invalid`] so the caller can name the offending index instead of serde.
pub(super) enum Input<'a> {
    /// A single string.
    One(Cow<'a, str>),
    /// An array; a bare array of integers is one token-id list (its items are
    /// [`Item::Token`]).
    Many(Vec<Item<'a>>),
    /// Neither (a number, an object, a boolean).
    Invalid,
}

/// One element of an [`Input::Many`].
pub(super) enum Item<'a> {
    /// A string.
    Text(Cow<'a, str>),
    /// A token id: the whole input is one list of token ids.
    Token,
    /// A list of token ids.
    Tokens,
    /// Anything else.
    Invalid,
}

impl Input<'_> {
    /// Checks the shape: strings, or (when `tokens` is allowed) token ids; no empty input or
    /// empty string. `field` is the request's name for it (`input`, TEI's `inputs`);
    /// `backend` names who refuses token ids.
    pub(super) fn check(&self, field: &str, tokens: bool, backend: &str) -> Result<(), String> {
        let refuse =
            |at: &str| format!("{at} is a list of token ids; {backend} backends take text only");
        match self {
            Input::Invalid => Err(format!("{field} must be a string or an array of strings")),
            Input::One(s) if s.is_empty() => Err(format!("{field} must not be an empty string")),
            Input::One(_) => Ok(()),
            Input::Many(items) if items.is_empty() => {
                Err(format!("{field} must not be an empty array"))
            }
            Input::Many(items) => {
                if items.iter().all(|i| matches!(i, Item::Token)) {
                    return if tokens { Ok(()) } else { Err(refuse(field)) };
                }
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Item::Text(s) if s.is_empty() => {
                            return Err(format!("{field}[{i}] must not be an empty string"))
                        }
                        Item::Text(_) => {}
                        Item::Tokens if tokens => {}
                        Item::Tokens => return Err(refuse(&format!("{field}[{i}]"))),
                        Item::Token | Item::Invalid => {
                            return Err(format!("{field}[{i}] must be a string"))
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// The texts of `input` for a backend that embeds text only, and whether the client sent a
/// single string (rather than a list).
pub(super) fn texts<'b>(
    input: Option<&'b Input<'_>>,
    backend: &str,
) -> Result<(Vec<&'b str>, bool), String> {
    let input = input.ok_or("input is required")?;
    input.check("input", false, backend)?;
    Ok(match input {
        Input::One(s) => (vec![s.as_ref()], true),
        Input::Many(items) => (
            items
                .iter()
                .filter_map(|i| match i {
                    Item::Text(s) => Some(s.as_ref()),
                    _ => None,
                })
                .collect(),
            false,
        ),
        Input::Invalid => unreachable!("check refuses it"),
    })
}

/// Visitor methods that turn every JSON type a visitor does not take into `$invalid`
/// (draining objects so parsing carries on).
macro_rules! otherwise_invalid {
    ($value:ty, $invalid:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($invalid)
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Input<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Input<'a>, E> {
                Ok(Input::One(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Input<'a>, E> {
                Ok(Input::One(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Input<'a>, E> {
                Ok(Input::One(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input<'a>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element::<Item<'a>>()? {
                    items.push(item);
                }
                Ok(Input::Many(items))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Input<'a>, E> {
                Ok(Input::Invalid)
            }
            otherwise_invalid!(Input<'a>, Input::Invalid);
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Item<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of token ids")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item<'a>, E> {
                Ok(Item::Token)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item<'a>, A::Error> {
                let mut all_ids = true;
                while let Some(id) = seq.next_element::<&'de RawValue>()? {
                    all_ids &= serde_json::from_str::<u32>(id.get()).is_ok();
                }
                Ok(if all_ids { Item::Tokens } else { Item::Invalid })
            }
            otherwise_invalid!(Item<'a>, Item::Invalid);
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn value(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// Decodes an OpenAI base64 embedding back to its floats.
    fn decode(b64: &str) -> Vec<f32> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(bytes.len() % 4, 0, "{b64} is not whole f32s");
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    const BATCH_REQUEST: &str =
        include_str!("../../tests/fixtures/embeddings/openai_batch_request.json");

    #[test]
    fn gemini_batch_request_matches_the_golden_body() {
        let body = to_gemini_batch(BATCH_REQUEST.as_bytes(), "gemini-embedding-001").unwrap();
        assert_eq!(
            value(&body),
            fixture(include_str!(
                "../../tests/fixtures/embeddings/gemini_batch_request.json"
            ))
        );
        // A model already carrying its `models/` prefix is not prefixed twice.
        let again =
            to_gemini_batch(BATCH_REQUEST.as_bytes(), "models/gemini-embedding-001").unwrap();
        assert_eq!(body, again);
        assert_eq!(
            gemini_batch_path("models/gemini-embedding-001"),
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(
            gemini_batch_path("text-embedding-004"),
            "/v1beta/models/text-embedding-004:batchEmbedContents"
        );
    }

    #[test]
    fn gemini_batch_reply_becomes_an_openai_reply() {
        let reply = include_str!("../../tests/fixtures/embeddings/gemini_batch_reply.json");
        let out = from_gemini_batch(
            reply.as_bytes(),
            "gemini-embedding-001",
            EncodingFormat::Float,
        )
        .unwrap();
        assert_eq!(
            value(&out),
            fixture(include_str!(
                "../../tests/fixtures/embeddings/openai_from_gemini.json"
            ))
        );
        // The number text is Gemini's own, digit for digit.
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.contains("[0.0040157186,-0.011254091,0.022301596,-0.0026489256]"),
            "{text}"
        );
    }

    #[test]
    fn gemini_base64_reply_decodes_to_the_same_floats() {
        let reply = include_str!("../../tests/fixtures/embeddings/gemini_batch_reply.json");
        let out = value(
            &from_gemini_batch(
                reply.as_bytes(),
                "gemini-embedding-001",
                EncodingFormat::Base64,
            )
            .unwrap(),
        );
        let gemini = fixture(reply);
        for (i, e) in gemini["embeddings"].as_array().unwrap().iter().enumerate() {
            let expected: Vec<f32> = serde_json::from_value(e["values"].clone()).unwrap();
            let got = decode(out["data"][i]["embedding"].as_str().unwrap());
            assert_eq!(got, expected, "embedding {i}");
            assert_eq!(out["data"][i]["index"], i);
        }
        assert_eq!(out["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
    }

    #[test]
    fn ollama_request_and_reply_match_the_golden_bodies() {
        let body = to_ollama_embed(
            include_bytes!("../../tests/fixtures/embeddings/openai_ollama_request.json"),
            "all-minilm",
        )
        .unwrap();
        assert_eq!(
            value(&body),
            fixture(include_str!(
                "../../tests/fixtures/embeddings/ollama_embed_request.json"
            ))
        );
        let reply = include_str!("../../tests/fixtures/embeddings/ollama_embed_reply.json");
        let out = from_ollama_embed(reply.as_bytes(), "all-minilm", EncodingFormat::Float).unwrap();
        assert_eq!(
            value(&out),
            fixture(include_str!(
                "../../tests/fixtures/embeddings/openai_from_ollama.json"
            ))
        );
    }

    #[test]
    fn ollama_keeps_a_single_string_single_and_passes_truncate_and_dimensions() {
        let body = to_ollama_embed(
            br#"{"model":"x","input":"Why is the sky blue?","dimensions":128,"truncate":false,"user":"u1"}"#,
            "embeddinggemma",
        )
        .unwrap();
        assert_eq!(
            value(&body),
            json!({"model": "embeddinggemma", "input": "Why is the sky blue?", "dimensions": 128, "truncate": false})
        );
    }

    #[test]
    fn ollama_base64_reply_decodes_to_the_same_floats_with_usage() {
        let reply = include_str!("../../tests/fixtures/embeddings/ollama_embed_reply.json");
        let out = value(
            &from_ollama_embed(reply.as_bytes(), "all-minilm", EncodingFormat::Base64).unwrap(),
        );
        let ollama = fixture(reply);
        for i in 0..2 {
            let expected: Vec<f32> =
                serde_json::from_value(ollama["embeddings"][i].clone()).unwrap();
            assert_eq!(
                decode(out["data"][i]["embedding"].as_str().unwrap()),
                expected
            );
        }
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 16, "total_tokens": 16})
        );
    }

    #[test]
    fn encode_base64_matches_an_independent_encoder() {
        // The golden base64 strings were made with Python's struct.pack('<f', ...) and
        // base64.b64encode, not with this code.
        let out = encode_base64(include_bytes!(
            "../../tests/fixtures/embeddings/openai_float_reply.json"
        ))
        .unwrap();
        assert_eq!(
            value(&out),
            fixture(include_str!(
                "../../tests/fixtures/embeddings/openai_base64_reply.json"
            ))
        );
    }

    #[test]
    fn encode_base64_round_trips_through_decoding() {
        let floats = [
            0.0023064255_f32,
            -0.009327292,
            1.0e-7,
            -3.4028235e38,
            0.0,
            1.5,
        ];
        let reply = json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": floats}],
            "model": "m",
            "usage": {"prompt_tokens": 3, "total_tokens": 3}
        });
        let out = value(&encode_base64(reply.to_string().as_bytes()).unwrap());
        assert_eq!(
            decode(out["data"][0]["embedding"].as_str().unwrap()),
            floats
        );
        assert_eq!(out["usage"], reply["usage"]);
        assert_eq!(out["model"], "m");
        // Already base64: unchanged.
        let again = value(&encode_base64(out.to_string().as_bytes()).unwrap());
        assert_eq!(again, out);
    }

    #[test]
    fn encode_base64_refuses_what_is_not_a_float_reply() {
        assert_eq!(
            encode_base64(br#"{"object":"list"}"#).unwrap_err(),
            "embeddings reply has no data"
        );
        assert_eq!(
            encode_base64(br#"{"data":[{"embedding":[1.0]},{"embedding":[1,"x"]}]}"#).unwrap_err(),
            "embeddings reply: data[1].embedding must be an array of numbers"
        );
        assert_eq!(
            encode_base64(br#"{"data":[{"index":0}]}"#).unwrap_err(),
            "embeddings reply: data[0] has no embedding"
        );
        assert_eq!(
            encode_base64(br#"{"data":[{"embedding":[1e300]}]}"#).unwrap_err(),
            "embeddings reply: data[0].embedding must be an array of numbers"
        );
        assert!(encode_base64(b"not json")
            .unwrap_err()
            .starts_with("embeddings reply is not valid JSON"));
    }

    #[test]
    fn params_are_read_and_checked() {
        assert_eq!(
            EmbeddingParams::read(br#"{"input":"x","model":"m"}"#).unwrap(),
            EmbeddingParams::default()
        );
        assert_eq!(
            EmbeddingParams::read(br#"{"input":"x","encoding_format":"base64","dimensions":256}"#)
                .unwrap(),
            EmbeddingParams {
                encoding_format: EncodingFormat::Base64,
                dimensions: Some(256)
            }
        );
        assert_eq!(
            EmbeddingParams::read(br#"{"encoding_format":null}"#)
                .unwrap()
                .encoding_format,
            EncodingFormat::Float
        );
        assert_eq!(
            EmbeddingParams::read(br#"{"encoding_format":"int8"}"#).unwrap_err(),
            "encoding_format must be \"float\" or \"base64\""
        );
        for bad in [
            r#"{"dimensions":0}"#,
            r#"{"dimensions":-3}"#,
            r#"{"dimensions":"256"}"#,
            r#"{"dimensions":1.5}"#,
            r#"{"dimensions":99999999999}"#,
        ] {
            assert_eq!(
                EmbeddingParams::read(bad.as_bytes()).unwrap_err(),
                "dimensions must be a positive integer",
                "{bad}"
            );
        }
        assert_eq!(
            EmbeddingParams::read(b"[1]").unwrap_err(),
            "request body must be a JSON object"
        );
        assert_eq!(
            EmbeddingParams::read(b" \"x\"").unwrap_err(),
            "request body must be a JSON object"
        );
        assert!(EmbeddingParams::read(b"{")
            .unwrap_err()
            .starts_with("request body is not valid JSON"));
    }

    #[test]
    fn without_base64_drops_only_encoding_format() {
        let body = Bytes::from_static(br#"{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":8,"user":"u"}"#);
        let out = without_base64(&body);
        assert_eq!(
            value(&out),
            json!({"model": "m", "input": ["a", "b"], "dimensions": 8, "user": "u"})
        );
        let plain = Bytes::from_static(br#"{"model":"m","input":"a"}"#);
        assert_eq!(without_base64(&plain), plain);
        let junk = Bytes::from_static(b"not json");
        assert_eq!(without_base64(&junk), junk);
    }

    #[test]
    fn inputs_are_refused_with_the_index_at_fault() {
        let err = |body: &str| to_gemini_batch(body.as_bytes(), "m").unwrap_err();
        assert_eq!(err(r#"{"model":"m"}"#), "input is required");
        assert_eq!(err(r#"{"input":null}"#), "input is required");
        assert_eq!(err(r#"{"input":""}"#), "input must not be an empty string");
        assert_eq!(err(r#"{"input":[]}"#), "input must not be an empty array");
        assert_eq!(
            err(r#"{"input":42}"#),
            "input must be a string or an array of strings"
        );
        assert_eq!(
            err(r#"{"input":{"text":"a"}}"#),
            "input must be a string or an array of strings"
        );
        assert_eq!(
            err(r#"{"input":["a","b","",""]}"#),
            "input[2] must not be an empty string"
        );
        assert_eq!(
            err(r#"{"input":["a","b","c",4]}"#),
            "input[3] must be a string"
        );
        assert_eq!(
            err(r#"{"input":["a","b","c",{"x":1}]}"#),
            "input[3] must be a string"
        );
        assert_eq!(err(r#"{"input":["a",null]}"#), "input[1] must be a string");
        assert_eq!(err(r#"{"input":["a",["b"]]}"#), "input[1] must be a string");
        assert_eq!(
            err(r#"{"input":[[1,2],[3]]}"#),
            "input[0] is a list of token ids; Gemini backends take text only"
        );
        assert_eq!(
            to_ollama_embed(br#"{"input":[1,2,3]}"#, "m").unwrap_err(),
            "input is a list of token ids; Ollama backends take text only"
        );
        assert_eq!(
            to_ollama_embed(br#"{"input":"a","truncate":"yes"}"#, "m").unwrap_err(),
            "truncate must be a boolean"
        );
        assert_eq!(
            err(r#"{"input":"a","dimensions":0}"#),
            "dimensions must be a positive integer"
        );
    }

    #[test]
    fn escaped_strings_survive() {
        let body = to_gemini_batch(br#"{"input":["line\nbreak \"q\" \u00e9"]}"#, "m").unwrap();
        assert_eq!(
            value(&body)["requests"][0]["content"]["parts"][0]["text"],
            "line\nbreak \"q\" é"
        );
    }

    #[test]
    fn bad_backend_replies_name_the_field() {
        let g = |r: &str| from_gemini_batch(r.as_bytes(), "m", EncodingFormat::Float).unwrap_err();
        assert_eq!(g("{}"), "gemini reply has no embeddings");
        assert_eq!(
            g(r#"{"embeddings":[{"values":[1]},{"values":"x"}]}"#),
            "gemini reply: embeddings[1].values must be an array of numbers"
        );
        assert_eq!(
            g(r#"{"embeddings":[{}]}"#),
            "gemini reply: embeddings[0].values must be an array of numbers"
        );
        let o = |r: &str| from_ollama_embed(r.as_bytes(), "m", EncodingFormat::Float).unwrap_err();
        assert_eq!(o(r#"{"model":"m"}"#), "ollama reply has no embeddings");
        assert_eq!(
            o(r#"{"embeddings":[[0.1],[null]]}"#),
            "ollama reply: embeddings[1] must be an array of numbers"
        );
        assert_eq!(
            o(r#"{"embeddings":[[0.1]],"prompt_eval_count":"8"}"#),
            "ollama reply: prompt_eval_count must be a non-negative integer"
        );
        assert!(o("<html>").starts_with("ollama reply is not valid JSON"));
    }

    #[test]
    fn empty_embedding_lists_are_kept() {
        // An empty list is what the backend said; the reply stays well formed.
        let out =
            value(&from_gemini_batch(br#"{"embeddings":[]}"#, "m", EncodingFormat::Float).unwrap());
        assert_eq!(out["data"], json!([]));
        let out = value(
            &from_ollama_embed(br#"{"embeddings":[[]]}"#, "m", EncodingFormat::Base64).unwrap(),
        );
        assert_eq!(out["data"][0]["embedding"], "");
    }
}
