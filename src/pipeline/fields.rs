//! The fields the router reads from a request body — `model`, `stream`, `messages`, `user`
//! and a few more — read in place over the raw bytes (borrowed, not copied), and the one
//! edit routing makes to the bytes: the model name spliced in.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ProxyError;

/// The only fields the router reads from a chat request (borrowed, not copied).
#[derive(Deserialize)]
struct RoutingFields<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    user: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
    #[serde(borrow, default)]
    instructions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_effort: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning: Option<&'a RawValue>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// What routing needs from the body: the model name, where it sits, `stream`, and where
/// `user` and `messages` sit (for the hashing strategies).
#[derive(Debug, Clone)]
pub struct Routing {
    pub model: String,
    pub model_span: (usize, usize),
    /// `model` is in the body (a TEI-shaped body names none; the router picks one).
    pub model_in_body: bool,
    pub stream: bool,
    pub user_span: Option<(usize, usize)>,
    pub messages_span: Option<(usize, usize)>,
    /// Where the other parts of the prompt sit (`CacheAware`): Anthropic's `system`,
    /// `tools`, and the Responses API's `instructions` and `input`.
    pub system_span: Option<(usize, usize)>,
    pub tools_span: Option<(usize, usize)>,
    pub instructions_span: Option<(usize, usize)>,
    pub input_span: Option<(usize, usize)>,
    /// Which output-length parameters the client set (for the backends' quirks).
    pub limits: crate::backend::LengthParams,
    /// The client asked for a reasoning level (normalised per backend).
    pub wants_reasoning: bool,
    /// `stream_options` is present, and whether it asks for a usage chunk.
    pub stream_options: Option<bool>,
}

/// Bytes of the prompt that PrefixAwareHash hashes: enough to cover a system prompt and
/// the start of the conversation, which is what KV and prompt caches share.
pub const PREFIX_BYTES: usize = 512;

/// Reads the routing fields of a request body (a JSON object with a string `model`).
pub fn parse_routing(body: &[u8]) -> Result<Routing, ProxyError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ProxyError::InvalidJson(
            "the body must be a JSON object".into(),
        ));
    }
    let fields: RoutingFields<'_> =
        serde_json::from_slice(body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    let raw = fields.model.ok_or(ProxyError::MissingModel)?;
    let model: Cow<'_, str> = match serde_json::from_str(raw.get()) {
        Ok(m) => m,
        Err(_) if raw.get() == "null" => return Err(ProxyError::MissingModel),
        Err(_) => {
            return Err(ProxyError::InvalidField {
                param: "model",
                message: format!("'model' must be a string, not {}", raw.get()),
            })
        }
    };
    if model.is_empty() {
        return Err(ProxyError::MissingModel);
    }
    let span = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
        (start, start + raw.get().len())
    };
    Ok(Routing {
        model: model.into_owned(),
        model_span: span(raw),
        model_in_body: true,
        stream: fields.stream.unwrap_or(false),
        user_span: fields.user.filter(|u| u.get() != "null").map(span),
        messages_span: fields.messages.map(span),
        system_span: fields.system.map(span),
        tools_span: fields.tools.map(span),
        instructions_span: fields.instructions.map(span),
        input_span: fields.input.map(span),
        limits: crate::backend::LengthParams {
            max_tokens: fields.max_tokens.is_some(),
            max_completion_tokens: fields.max_completion_tokens.is_some(),
        },
        wants_reasoning: fields.reasoning_effort.is_some() || fields.reasoning.is_some(),
        stream_options: fields
            .stream_options
            .map(|o| o.include_usage.unwrap_or(false)),
    })
}

impl Routing {
    /// Routing fields for a body that names no model (TEI's shapes): the router's choice.
    pub fn named(model: String) -> Routing {
        Routing {
            model,
            model_span: (0, 0),
            model_in_body: false,
            stream: false,
            user_span: None,
            messages_span: None,
            system_span: None,
            tools_span: None,
            instructions_span: None,
            input_span: None,
            limits: crate::backend::LengthParams::default(),
            wants_reasoning: false,
            stream_options: None,
        }
    }
}

/// The body with the `model` value replaced, every other byte kept.
pub fn splice_model(body: &Bytes, span: (usize, usize), model: &str) -> Bytes {
    let quoted = serde_json::to_string(model).unwrap_or_else(|_| format!("\"{model}\""));
    let mut out = BytesMut::with_capacity(body.len() + quoted.len());
    out.extend_from_slice(&body[..span.0]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[span.1..]);
    out.freeze()
}

/// Refuses a chat request whose `messages` is missing or not an array (400 before any
/// backend is called).
pub fn require_messages(body: &[u8], routing: &Routing) -> Result<(), ProxyError> {
    let Some((a, _)) = routing.messages_span else {
        return Err(ProxyError::InvalidField {
            param: "messages",
            message: "'messages' is required: a list of messages".into(),
        });
    };
    if body[a] != b'[' {
        return Err(ProxyError::InvalidField {
            param: "messages",
            message: "'messages' must be an array of messages".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_and_stream_and_splices() {
        let body = Bytes::from_static(br#"{"messages":[{"role":"user","content":"hi","model":"x"}], "model" : "fast","stream":true}"#);
        let r = parse_routing(&body).unwrap();
        assert_eq!(r.model, "fast");
        assert!(r.stream);
        let out = splice_model(&body, r.model_span, "gpt-4o");
        assert_eq!(
            &out[..],
            br#"{"messages":[{"role":"user","content":"hi","model":"x"}], "model" : "gpt-4o","stream":true}"#
        );
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(matches!(
            parse_routing(b"{not json"),
            Err(ProxyError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_routing(b"[]"),
            Err(ProxyError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_routing(b"{}"),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            parse_routing(br#"{"model":null}"#),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            parse_routing(br#"{"model":""}"#),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            parse_routing(br#"{"model":3}"#),
            Err(ProxyError::InvalidField { .. })
        ));
        assert!(matches!(
            parse_routing(br#"{"model":"m","stream":"yes"}"#),
            Err(ProxyError::InvalidJson(_))
        ));
        let escaped = parse_routing(br#"{"model":"a\u002fb"}"#).unwrap();
        assert_eq!(escaped.model, "a/b");
    }
}
