//! Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`) as a backend:
//! OpenAI chat requests, replies, streams and errors translated. Messages become
//! `contents` with `parts` (text, inline images and PDFs, function calls and responses),
//! system messages `systemInstruction`, sampling `generationConfig`, tools
//! `functionDeclarations`; `usageMetadata` becomes usage and a safety block a
//! `content_filter` finish.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::openai::{self, text_of};
use super::reasoning::Effort;
use super::{object, push_turn};
use crate::error::ProxyError;

/// Separates a tool call id from the Gemini thought signature carried in it.
const THOUGHT_SEP: &str = "__thought__";

/// A tool call id for a Gemini function call. Gemini wants a call's `thoughtSignature`
/// back with the call in the next turn (Gemini 3 refuses the turn without it), and OpenAI
/// and Anthropic clients echo only the id — so the signature rides in the id, in
/// URL-safe base64, which fits Anthropic's `^[a-zA-Z0-9_-]+$` id rule as well.
fn call_id(base: &str, signature: Option<&str>) -> String {
    match signature {
        Some(sig) => {
            let safe: String = sig
                .chars()
                .filter(|c| *c != '=')
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    c => c,
                })
                .collect();
            format!("{base}{THOUGHT_SEP}{safe}")
        }
        None => base.to_string(),
    }
}

/// The thought signature carried in a tool call id by [`call_id`], as Gemini sent it.
fn signature_of_call_id(id: &str) -> Option<String> {
    let (_, safe) = id.split_once(THOUGHT_SEP)?;
    let mut sig: String = safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while sig.len() % 4 != 0 {
        sig.push('=');
    }
    Some(sig)
}

fn invalid(message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidField {
        param: "messages",
        message: message.into(),
    }
}

fn user_parts(content: &Value) -> Result<Vec<Value>, ProxyError> {
    match content {
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => Ok(json!({"text": p["text"]})),
                Some("image_url") => {
                    let url = p["image_url"]["url"].as_str().unwrap_or_default();
                    let (mime, data) = url
                        .strip_prefix("data:")
                        .and_then(|r| r.split_once(";base64,"))
                        .ok_or_else(|| {
                            invalid("gemini backends take images as data: URLs (base64), not links")
                        })?;
                    Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
                }
                Some("file") => {
                    let (data, _) = openai::pdf_file_part(p).map_err(invalid)?;
                    Ok(json!({"inlineData": {"mimeType": "application/pdf", "data": data}}))
                }
                other => Err(invalid(format!(
                    "content part type {} is not supported by gemini backends",
                    other.unwrap_or("(none)")
                ))),
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

/// A `countTokens` body counting everything a `generateContent` body would send (system
/// instruction and tools included): `{"generateContentRequest": {"model": "models/…", …}}`.
/// `model` must be a bare id checked by `backend::gemini::bare_model_id`.
pub fn count_tokens_body(generate: &[u8], model: &str) -> Bytes {
    // `generate` is an object this module wrote; splice the model in as its first field.
    let rest = generate.strip_prefix(b"{").unwrap_or(generate);
    let mut out = Vec::with_capacity(generate.len() + model.len() + 48);
    out.extend_from_slice(b"{\"generateContentRequest\":{\"model\":\"models/");
    out.extend_from_slice(model.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(rest);
    out.push(b'}');
    Bytes::from(out)
}

/// `totalTokens` of a `countTokens` answer.
pub fn parse_count_tokens(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Count {
        #[serde(rename = "totalTokens")]
        total_tokens: u64,
    }
    serde_json::from_slice::<Count>(body)
        .ok()
        .map(|c| c.total_tokens)
}

/// Translates an OpenAI chat request into a Gemini `generateContent` body; also says
/// whether the client asked for a usage chunk.
pub fn from_openai_request(body: &[u8], model: &str) -> Result<(Bytes, bool), ProxyError> {
    let req = openai::parse_request(body)?;
    let (system, contents) = turns(openai::messages(&req))?;
    let mut out = object([("contents", Value::Array(contents))]);
    if !system.is_empty() {
        out["systemInstruction"] = object([("parts", Value::Array(system))]);
    }
    let config = generation_config(&req, model);
    if !config.is_empty() {
        out["generationConfig"] = Value::Object(config);
    }
    copy_tools(&req, &mut out);
    let include_usage = openai::include_usage(&req);
    serde_json::to_vec(&out)
        .map(|b| (Bytes::from(b), include_usage))
        .map_err(|e| ProxyError::InvalidJson(e.to_string()))
}

/// The OpenAI messages as Gemini's system instruction parts and `contents` turns.
fn turns(input: &[Value]) -> Result<(Vec<Value>, Vec<Value>), ProxyError> {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Gemini answers a function call by its name; OpenAI by the call's id.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for m in input {
        match m["role"].as_str() {
            Some("system") | Some("developer") => {
                system.push(json!({"text": text_of(&m["content"])}))
            }
            Some("user") => push_turn(&mut contents, "user", "parts", user_parts(&m["content"])?),
            Some("assistant") => contents.push(model_turn(m, &mut call_names)?),
            Some("tool") => {
                let part = function_response(m, &call_names);
                push_turn(&mut contents, "user", "parts", vec![part]);
            }
            other => {
                return Err(invalid(format!(
                    "role {} is not supported",
                    other.unwrap_or("(none)")
                )))
            }
        }
    }
    Ok((system, contents))
}

/// An assistant message as a `model` turn: its text and its tool calls as function calls
/// (each call's name noted in `call_names` under its id).
fn model_turn(m: &Value, call_names: &mut HashMap<String, String>) -> Result<Value, ProxyError> {
    let mut parts = Vec::new();
    let text = text_of(&m["content"]);
    if !text.is_empty() {
        parts.push(json!({"text": text}));
    }
    for c in m["tool_calls"].as_array().into_iter().flatten() {
        let name = c["function"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(id) = c["id"].as_str() {
            call_names.insert(id.to_string(), name.clone());
        }
        let args: Value = c["function"]["arguments"]
            .as_str()
            .filter(|a| !a.trim().is_empty())
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| invalid("tool call arguments must be a JSON object"))?
            .unwrap_or_else(|| json!({}));
        let mut part = object([(
            "functionCall",
            object([("name", name.into()), ("args", args)]),
        )]);
        if let Some(sig) = c["id"].as_str().and_then(signature_of_call_id) {
            part["thoughtSignature"] = Value::String(sig);
        }
        parts.push(part);
    }
    Ok(object([
        ("role", "model".into()),
        ("parts", Value::Array(parts)),
    ]))
}

/// A `tool` message as a `functionResponse` part, named after the call it answers.
fn function_response(m: &Value, call_names: &HashMap<String, String>) -> Value {
    let id = m["tool_call_id"].as_str().unwrap_or_default();
    let name = call_names
        .get(id)
        .cloned()
        .or_else(|| m["name"].as_str().map(str::to_string))
        .unwrap_or_default();
    let text = text_of(&m["content"]);
    let response = serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"result": text}));
    object([(
        "functionResponse",
        object([("name", name.into()), ("response", response)]),
    )])
}

/// `generationConfig`: sampling, stop sequences, response format and thinking.
fn generation_config(req: &Map<String, Value>, model: &str) -> Map<String, Value> {
    let mut config = Map::new();
    openai::copy_renamed(
        req,
        &[
            ("temperature", "temperature"),
            ("top_p", "topP"),
            ("seed", "seed"),
            ("max_completion_tokens", "maxOutputTokens"),
            ("max_tokens", "maxOutputTokens"),
            ("presence_penalty", "presencePenalty"),
            ("frequency_penalty", "frequencyPenalty"),
        ],
        &mut config,
    );
    if let Some(stop) = openai::stop_list(req) {
        config.insert("stopSequences".into(), stop);
    }
    if let Some(rf) = req.get("response_format") {
        match rf["type"].as_str() {
            Some("json_object") => {
                config.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                config.insert("responseMimeType".into(), json!("application/json"));
                if let Some(schema) = rf["json_schema"].get("schema") {
                    config.insert("responseJsonSchema".into(), schema.clone());
                }
            }
            _ => {}
        }
    }
    if let Some(effort) = req
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .and_then(Effort::parse)
    {
        let thinking = if model.starts_with("gemini-3") {
            json!({"thinkingLevel": effort.as_str()})
        } else {
            json!({"thinkingBudget": effort.gemini_budget()})
        };
        config.insert("thinkingConfig".into(), thinking);
    }
    config
}

/// `tools` as `functionDeclarations`, and `tool_choice` as `toolConfig`.
fn copy_tools(req: &Map<String, Value>, out: &mut Value) {
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let f = &t["function"];
                // `parameters` takes Gemini's OpenAPI `Schema` subset and refuses the rest
                // (`additionalProperties`, which OpenAI's strict mode requires, `$schema`,
                // `const`…); `parametersJsonSchema` takes JSON Schema as it is.
                let key = if openapi_schema(&f["parameters"]) {
                    "parameters"
                } else {
                    "parametersJsonSchema"
                };
                object([
                    ("name", f["name"].clone()),
                    ("description", f["description"].clone()),
                    (key, f["parameters"].clone()),
                ])
            })
            .collect();
        out["tools"] = Value::Array(vec![object([(
            "functionDeclarations",
            Value::Array(decls),
        )])]);
        if let Some(choice) = req.get("tool_choice") {
            out["toolConfig"] = match choice {
                Value::String(s) if s == "required" => {
                    json!({"functionCallingConfig": {"mode": "ANY"}})
                }
                Value::String(s) if s == "none" => {
                    json!({"functionCallingConfig": {"mode": "NONE"}})
                }
                Value::Object(_) => {
                    json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}})
                }
                _ => json!({"functionCallingConfig": {"mode": "AUTO"}}),
            };
        }
    }
}

/// Whether `schema` uses only the fields of Gemini's `Schema` (an OpenAPI 3.0 subset),
/// https://ai.google.dev/api/caching#Schema.
fn openapi_schema(schema: &Value) -> bool {
    const FIELDS: &[&str] = &[
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ];
    match schema {
        Value::Object(map) => map.iter().all(|(k, v)| match k.as_str() {
            "properties" => v
                .as_object()
                .is_some_and(|props| props.values().all(openapi_schema)),
            "items" => openapi_schema(v),
            "anyOf" => v
                .as_array()
                .is_some_and(|alts| alts.iter().all(openapi_schema)),
            _ => FIELDS.contains(&k.as_str()),
        }),
        Value::Null => true,
        _ => false,
    }
}

fn finish_reason(reason: Option<&str>, has_calls: bool) -> &'static str {
    if has_calls {
        return "tool_calls";
    }
    match reason {
        Some("MAX_TOKENS") => "length",
        Some("SAFETY")
        | Some("RECITATION")
        | Some("BLOCKLIST")
        | Some("PROHIBITED_CONTENT")
        | Some("SPII") => "content_filter",
        _ => "stop",
    }
}

fn usage(u: &Value) -> Value {
    let prompt = u["promptTokenCount"].as_u64().unwrap_or(0);
    let completion = u["candidatesTokenCount"].as_u64().unwrap_or(0)
        + u["thoughtsTokenCount"].as_u64().unwrap_or(0);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
           "prompt_tokens_details": {"cached_tokens": u["cachedContentTokenCount"].as_u64().unwrap_or(0)},
           "completion_tokens_details": {"reasoning_tokens": u["thoughtsTokenCount"].as_u64().unwrap_or(0)}})
}

/// The text and function calls of a response's first candidate, plus its finish reason.
fn candidate(v: &Value, first_call: usize) -> (String, Vec<Value>, Option<String>) {
    let c = &v["candidates"][0];
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in c["content"]["parts"].as_array().into_iter().flatten() {
        if p["thought"].as_bool() == Some(true) {
            continue;
        }
        if let Some(t) = p["text"].as_str() {
            text.push_str(t);
        }
        if let Some(f) = p.get("functionCall") {
            let i = first_call + calls.len();
            let base = f["id"]
                .as_str()
                .map_or_else(|| format!("call_{i}"), str::to_string);
            let id = call_id(&base, p["thoughtSignature"].as_str());
            calls.push(json!({"index": i, "id": id,
                "type": "function", "function": {"name": f["name"], "arguments": f["args"].to_string()}}));
        }
    }
    let reason = c["finishReason"]
        .as_str()
        .or_else(|| {
            v["promptFeedback"]["blockReason"]
                .as_str()
                .map(|_| "SAFETY")
        })
        .map(str::to_string);
    (text, calls, reason)
}

/// Translates a Gemini `generateContent` reply into an OpenAI chat completion.
pub fn to_openai_response(body: &[u8], model: &str, id: &str) -> Result<Bytes, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable Gemini reply: {e}"))?;
    let (text, mut calls, reason) = candidate(&v, 0);
    for c in &mut calls {
        if let Some(o) = c.as_object_mut() {
            o.remove("index");
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    let has_calls = !calls.is_empty();
    if has_calls {
        message["tool_calls"] = Value::Array(calls);
    }
    let out = json!({
        "id": format!("chatcmpl-{id}"), "object": "chat.completion", "created": 0,
        "model": v["modelVersion"].as_str().unwrap_or(model),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(reason.as_deref(), has_calls)}],
        "usage": usage(&v["usageMetadata"]),
    });
    Ok(Bytes::from(out.to_string()))
}

/// Turns Gemini's SSE stream (`alt=sse`: each event a partial response) into OpenAI chunks.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    /// An error that came after text in one feed, held for the next.
    held: Option<String>,
    sse: super::sse::SseDecoder,
    id: String,
    model: String,
    include_usage: bool,
    started: bool,
    calls: usize,
    usage: Value,
    reason: Option<String>,
    done: bool,
}

impl StreamTranslator {
    /// A translator for one stream.
    pub fn new(model: &str, id: &str, include_usage: bool) -> StreamTranslator {
        StreamTranslator {
            id: format!("chatcmpl-{id}"),
            model: model.to_string(),
            include_usage,
            ..Default::default()
        }
    }

    /// Whether the final (finishing) event was seen and the stream closed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn chunk(&self, delta: Value, finish: Value) -> String {
        openai::chunk(&self.id, &self.model, 0, delta, finish)
    }

    /// Feeds bytes; returns the OpenAI chunks they complete, or the error an event carried.
    ///
    /// Text completed before an error is kept: the error is held and returned by the next
    /// feed or by [`StreamTranslator::finish`].
    pub fn feed(&mut self, data: &[u8]) -> Result<String, String> {
        if let Some(e) = self.held.take() {
            return Err(e);
        }
        let mut out = String::new();
        let result = self.translate(data, &mut out);
        super::sse::keep_text_before_error(&mut self.held, out, result)
    }

    /// The end of the backend's stream: the error held back by [`StreamTranslator::feed`],
    /// if any.
    pub fn finish(&mut self) -> Result<String, String> {
        self.held.take().map_or(Ok(String::new()), Err)
    }

    fn translate(&mut self, data: &[u8], out: &mut String) -> Result<(), String> {
        self.sse.push(data).map_err(|e| e.to_string())?;
        while let Some(event) = self.sse.next_event() {
            let v: Value = serde_json::from_slice(event.data.trim_ascii())
                .map_err(|e| format!("unreadable Gemini stream event: {e}"))?;
            if let Some(e) = v.get("error") {
                return Err(e["message"]
                    .as_str()
                    .unwrap_or("the backend failed")
                    .to_string());
            }
            if !self.started {
                self.started = true;
                out.push_str(&self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
            }
            let (text, calls, reason) = candidate(&v, self.calls);
            if !text.is_empty() {
                out.push_str(&self.chunk(json!({"content": text}), Value::Null));
            }
            if !calls.is_empty() {
                self.calls += calls.len();
                out.push_str(&self.chunk(json!({"tool_calls": calls}), Value::Null));
            }
            if v.get("usageMetadata").is_some() {
                self.usage = v["usageMetadata"].clone();
            }
            if reason.is_some() {
                self.reason = reason;
            }
            if self.reason.is_some() && !self.done {
                self.done = true;
                let finish = finish_reason(self.reason.as_deref(), self.calls > 0);
                out.push_str(&self.chunk(json!({}), json!(finish)));
                if self.include_usage {
                    out.push_str(&openai::usage_chunk(
                        &self.id,
                        &self.model,
                        0,
                        usage(&self.usage),
                    ));
                }
                super::sse::write_event(out, None, "[DONE]");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_keywords_need_parameters_json_schema() {
        assert!(openapi_schema(
            &json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}, "required": ["a"]})
        ));
        assert!(openapi_schema(&Value::Null));
        assert!(!openapi_schema(
            &json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false})
        ));
        assert!(!openapi_schema(
            &json!({"type": "object", "properties": {"a": {"type": "string", "const": "x"}}})
        ));
        assert!(!openapi_schema(
            &json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"})
        ));
    }

    #[test]
    fn request_translation() {
        let body = br#"{"model":"gemini-2.5-flash","max_tokens":100,"temperature":0.3,"stop":"END","messages":[
            {"role":"system","content":"Be brief."},
            {"role":"user","content":[{"type":"text","text":"Weather here?"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_7","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"call_7","content":"{\"temp\":15}"}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object"}}}],"tool_choice":"auto"}"#;
        let (out, _) = from_openai_request(body, "gemini-2.5-flash").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "generationConfig": {"maxOutputTokens": 100, "temperature": 0.3, "stopSequences": ["END"]},
                "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
                "contents": [
                    {"role": "user", "parts": [{"text": "Weather here?"}, {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 15}}}]}
                ]
            })
        );
    }

    #[test]
    fn thought_signatures_ride_in_tool_call_ids_and_go_back_to_gemini() {
        let sig = "CiQB+/+/+/+/+/+/+/+/+/+/AQIDBAX+/w==";
        let reply = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": sig}]},
            "finishReason": "STOP"}]});
        let out = to_openai_response(reply.to_string().as_bytes(), "g", "chatcmpl-1").unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        let id = out["choices"][0]["message"]["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{id} must suit Anthropic's id rule too"
        );
        let next = json!({"model": "g", "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "sunny"}]});
        let (body, _) = from_openai_request(next.to_string().as_bytes(), "g").unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["contents"][1]["parts"][0]["thoughtSignature"], sig, "{v}");
        assert_eq!(
            v["contents"][2]["parts"][0]["functionResponse"]["name"],
            "get_weather"
        );
    }

    #[test]
    fn count_tokens_wraps_the_generate_request() {
        let (generate, _) = from_openai_request(
            br#"{"model":"g","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#,
            "gemini-2.5-flash",
        )
        .unwrap();
        let body = count_tokens_body(&generate, "gemini-2.5-flash");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"generateContentRequest": {"model": "models/gemini-2.5-flash",
                "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                "systemInstruction": {"parts": [{"text": "Be brief."}]}}})
        );
        assert_eq!(
            parse_count_tokens(br#"{"totalTokens": 31, "promptTokensDetails": []}"#),
            Some(31)
        );
        assert_eq!(parse_count_tokens(br#"{"error": {}}"#), None);
    }

    #[test]
    fn reasoning_becomes_a_thinking_budget_or_level() {
        let body = br#"{"reasoning_effort":"medium","messages":[{"role":"user","content":"hi"}]}"#;
        let v: Value =
            serde_json::from_slice(&from_openai_request(body, "gemini-2.5-pro").unwrap().0)
                .unwrap();
        assert_eq!(
            v["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 8192})
        );
        let v: Value =
            serde_json::from_slice(&from_openai_request(body, "gemini-3-pro-preview").unwrap().0)
                .unwrap();
        assert_eq!(
            v["generationConfig"]["thinkingConfig"],
            json!({"thinkingLevel": "medium"})
        );
    }

    #[test]
    fn reply_and_stream_translation() {
        // Shapes from the Gemini API documentation.
        let reply = br#"{"candidates":[{"content":{"parts":[{"text":"AI learns patterns from data."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":7,"totalTokenCount":15},"modelVersion":"gemini-2.5-flash"}"#;
        let v: Value =
            serde_json::from_slice(&to_openai_response(reply, "gemini-2.5-flash", "x").unwrap())
                .unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "AI learns patterns from data."
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["total_tokens"], 15);
        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}"#;
        let v: Value =
            serde_json::from_slice(&to_openai_response(blocked, "g", "x").unwrap()).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        let call = br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}],"role":"model"},"finishReason":"STOP"}]}"#;
        let v: Value =
            serde_json::from_slice(&to_openai_response(call, "g", "x").unwrap()).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Paris"}"#
        );

        let sse = concat!(
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" sky is blue.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 5,\"totalTokenCount\": 13},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n"
        );
        let mut t = StreamTranslator::new("gemini-2.5-flash", "x", true);
        let (a, b) = sse.split_at(50);
        let out = t.feed(a.as_bytes()).unwrap() + &t.feed(b.as_bytes()).unwrap();
        let content: String = out
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|e| *e != "[DONE]")
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(content, "The sky is blue.");
        assert!(out.contains(r#""completion_tokens":5"#), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert!(t.is_done());
    }
}
