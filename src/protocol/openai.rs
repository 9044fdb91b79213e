//! Helpers over OpenAI's chat format shared by every translation: reading request
//! parameters, and writing chat completion chunks.

use serde_json::{json, Map, Value};

use crate::error::ProxyError;

/// Parses an OpenAI chat request for translation: a JSON object whose `messages` is a list.
pub fn parse_request(body: &[u8]) -> Result<Map<String, Value>, ProxyError> {
    let req: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    if !req.get("messages").is_some_and(Value::is_array) {
        return Err(ProxyError::InvalidField {
            param: "messages",
            message: "'messages' must be a list".into(),
        });
    }
    Ok(req)
}

/// The `messages` of a request checked by [`parse_request`].
pub fn messages(req: &Map<String, Value>) -> &[Value] {
    req.get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The text of a message `content`: a string, or the text parts of a list joined by newlines.
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Copies the request parameters named in `renames` (from → to) into `into`; the first of
/// several sources for one target wins.
pub fn copy_renamed(
    req: &Map<String, Value>,
    renames: &[(&str, &str)],
    into: &mut Map<String, Value>,
) {
    for (from, to) in renames {
        if let Some(v) = req.get(*from).filter(|v| !v.is_null()) {
            into.entry(*to).or_insert_with(|| v.clone());
        }
    }
}

/// `stop` as a list (OpenAI allows a string or a list).
pub fn stop_list(req: &Map<String, Value>) -> Option<Value> {
    match req.get("stop") {
        Some(Value::String(s)) => Some(json!([s])),
        Some(v @ Value::Array(_)) => Some(v.clone()),
        _ => None,
    }
}

/// The PDF a chat `file` content part carries inline, for backends that take documents:
/// the base64 of its `file.file_data` (a `data:application/pdf;base64,` URL, or bare
/// base64 of a PDF) and its `file.filename`. The error says what the part lacks.
pub fn pdf_file_part(part: &Value) -> Result<(&str, Option<&str>), String> {
    const HOW: &str = "send the PDF as file_data (data:application/pdf;base64,...)";
    let file = &part["file"];
    let filename = file["filename"].as_str();
    let Some(data) = file["file_data"].as_str() else {
        return Err(if file["file_id"].is_string() {
            format!("a file part's file_id cannot be sent to this model's backend; {HOW}")
        } else {
            format!("a file part needs file_data: {HOW}")
        });
    };
    match data
        .strip_prefix("data:")
        .map(|rest| rest.split_once(";base64,"))
    {
        Some(Some(("application/pdf", base64))) => Ok((base64, filename)),
        Some(Some((mime, _))) => Err(format!(
            "file parts take PDFs only, not {mime}, on this model's backend"
        )),
        Some(None) => Err(format!("a file part's file_data must be base64: {HOW}")),
        // Bare base64: "%PDF" encodes as "JVBE".
        None if data.starts_with("JVBE") => Ok((data, filename)),
        None => Err(format!("a file part's file_data must be a PDF: {HOW}")),
    }
}

/// Whether the client asked for a usage chunk (`stream_options.include_usage`).
pub fn include_usage(req: &Map<String, Value>) -> bool {
    req.get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// One `chat.completion.chunk` SSE event with a single choice.
pub fn chunk(id: &str, model: &str, created: u64, delta: Value, finish: Value) -> String {
    let c = json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    let mut out = String::new();
    super::sse::write_event(&mut out, None, &c.to_string());
    out
}

/// The closing usage chunk (`choices: []`), as `stream_options.include_usage` asks.
pub fn usage_chunk(id: &str, model: &str, created: u64, usage: Value) -> String {
    let c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [], "usage": usage});
    let mut out = String::new();
    super::sse::write_event(&mut out, None, &c.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_file_parts_carry_their_pdf_inline() {
        let part = |file: Value| json!({"type": "file", "file": file});
        assert_eq!(
            pdf_file_part(&part(
                json!({"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"})
            )),
            Ok(("JVBERi0x", Some("a.pdf")))
        );
        // Bare base64 of a PDF, as some clients send it.
        assert_eq!(
            pdf_file_part(&part(json!({"file_data": "JVBERi0x"}))),
            Ok(("JVBERi0x", None))
        );
        let refused = |file: Value| pdf_file_part(&part(file)).unwrap_err();
        assert!(refused(json!({"file_data": "data:text/plain;base64,aGk="}))
            .starts_with("file parts take PDFs only, not text/plain"));
        assert!(refused(json!({"file_data": "aGk="})).contains("must be a PDF"));
        assert!(
            refused(json!({"file_data": "data:application/pdf,%25PDF"})).contains("must be base64")
        );
        assert!(refused(json!({"file_id": "file-1"})).contains("file_id cannot be sent"));
        assert!(refused(json!({})).contains("needs file_data"));
    }
}
