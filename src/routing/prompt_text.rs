//! The text of a prompt as `CacheAware` compares it: what a model server's chat template
//! turns into tokens (system prompt, message texts, tool calls and results), without the
//! wire format around it. So the same conversation sent as OpenAI chat (the system prompt a
//! message) or as Anthropic Messages (the system prompt a field, content in blocks) reads
//! the same, and matches the same server cache: a backend caches the translated prompt.

use serde_json::Value;

/// Keys whose values are wire structure, not prompt text: left out.
const STRUCTURE: [&str; 6] = [
    "role",
    "type",
    "id",
    "tool_call_id",
    "cache_control",
    "index",
];

/// Appends the text of the JSON value `raw` (a string, a list of messages or content blocks,
/// an object) to `out`, each string followed by a 0 byte; `raw` that is no JSON is taken
/// as it is.
pub fn append(raw: &[u8], out: &mut Vec<u8>) {
    match serde_json::from_slice::<Value>(raw) {
        Ok(v) => walk(&v, out),
        Err(_) => out.extend_from_slice(raw),
    }
}

fn walk(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if !STRUCTURE.contains(&k.as_str()) {
                    walk(v, out);
                }
            }
        }
        Value::Number(n) => {
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(0);
        }
        Value::Bool(_) | Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(parts: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            append(p.as_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn openai_and_anthropic_forms_of_one_conversation_read_the_same() {
        let openai = text(&[
            r#"[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]"#,
        ]);
        let anthropic = text(&[
            r#""Be brief.""#,
            r#"[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":"Hello"}]"#,
        ]);
        assert_eq!(openai, anthropic);
        assert_eq!(openai, b"Be brief.\0Hi\0Hello\0");
    }

    #[test]
    fn different_texts_differ_and_garbage_is_kept_as_bytes() {
        assert_ne!(
            text(&[r#"[{"content":"a"}]"#]),
            text(&[r#"[{"content":"b"}]"#])
        );
        assert_eq!(text(&["{not json"]), b"{not json");
    }
}
