//! Applying `global_prompts` to a chat request, in either client form: OpenAI's
//! `messages` (a leading `system`/`developer` message) or Anthropic's `system` (a string
//! or text blocks, whose `cache_control` marks are kept). Only requests a prompt applies
//! to are parsed and written again; the others pass untouched.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::config::prompts::MergeStrategy;

/// A global prompt and how it meets the client's.
#[derive(Clone, Copy)]
pub struct Injection<'a> {
    /// The prompt.
    pub prompt: &'a str,
    /// `merge_strategy`.
    pub merge: MergeStrategy,
    /// `separator`.
    pub separator: &'a str,
}

impl Injection<'_> {
    /// The client's system text merged with the prompt.
    fn merge_text(&self, client: &str) -> String {
        match self.merge {
            MergeStrategy::Prepend => format!("{}{}{client}", self.prompt, self.separator),
            MergeStrategy::Append => format!("{client}{}{}", self.separator, self.prompt),
            MergeStrategy::Replace => self.prompt.to_string(),
        }
    }

    /// Content parts (OpenAI) or text blocks (Anthropic) merged with the prompt: a text
    /// part before or after the client's, or the prompt alone.
    fn merge_parts(&self, parts: &mut Vec<Value>) {
        let block = |text: String| {
            let mut m = Map::new();
            m.insert("type".into(), Value::String("text".into()));
            m.insert("text".into(), Value::String(text));
            Value::Object(m)
        };
        match self.merge {
            MergeStrategy::Prepend => {
                parts.insert(0, block(format!("{}{}", self.prompt, self.separator)))
            }
            MergeStrategy::Append => {
                parts.push(block(format!("{}{}", self.separator, self.prompt)))
            }
            MergeStrategy::Replace => *parts = vec![block(self.prompt.to_string())],
        }
    }
}

fn object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn write(map: Map<String, Value>, fallback: &Bytes) -> Bytes {
    serde_json::to_vec(&map).map_or_else(|_| fallback.clone(), Bytes::from)
}

/// An OpenAI chat body with the prompt merged into its leading system (or developer)
/// message, or a system message put first when it has none.
pub fn apply_openai(body: &Bytes, inj: Injection<'_>) -> Bytes {
    let Some(mut map) = object(body) else {
        return body.clone();
    };
    let Some(Value::Array(messages)) = map.get_mut("messages") else {
        return body.clone();
    };
    let leading = messages
        .first_mut()
        .and_then(Value::as_object_mut)
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            )
        });
    match leading {
        Some(system) => match system.get_mut("content") {
            Some(Value::String(s)) => *s = inj.merge_text(s),
            Some(Value::Array(parts)) => inj.merge_parts(parts),
            _ => {
                system.insert("content".into(), Value::String(inj.prompt.to_string()));
            }
        },
        None => {
            let mut m = Map::new();
            m.insert("role".into(), Value::String("system".into()));
            m.insert("content".into(), Value::String(inj.prompt.to_string()));
            messages.insert(0, Value::Object(m));
        }
    }
    write(map, body)
}

/// An Anthropic Messages body with the prompt merged into `system`.
pub fn apply_anthropic(body: &Bytes, inj: Injection<'_>) -> Bytes {
    let Some(mut map) = object(body) else {
        return body.clone();
    };
    match map.get_mut("system") {
        Some(Value::String(s)) => *s = inj.merge_text(s),
        Some(Value::Array(blocks)) => inj.merge_parts(blocks),
        _ => {
            map.insert("system".into(), Value::String(inj.prompt.to_string()));
        }
    }
    write(map, body)
}

/// An OpenAI Responses body with the prompt merged into `instructions`.
pub fn apply_responses(body: &Bytes, inj: Injection<'_>) -> Bytes {
    let Some(mut map) = object(body) else {
        return body.clone();
    };
    match map.get_mut("instructions") {
        Some(Value::String(s)) if !s.is_empty() => *s = inj.merge_text(s),
        _ => {
            map.insert("instructions".into(), Value::String(inj.prompt.to_string()));
        }
    }
    write(map, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inj(merge: MergeStrategy) -> Injection<'static> {
        Injection {
            prompt: "POLICY",
            merge,
            separator: "\n--\n",
        }
    }

    #[test]
    fn responses_instructions() {
        let body = Bytes::from(json!({"model": "m", "instructions": "Be brief."}).to_string());
        let out: Value =
            serde_json::from_slice(&apply_responses(&body, inj(MergeStrategy::Prepend))).unwrap();
        assert_eq!(out["instructions"], "POLICY\n--\nBe brief.");
        let body = Bytes::from(json!({"model": "m", "input": "hi"}).to_string());
        let out: Value =
            serde_json::from_slice(&apply_responses(&body, inj(MergeStrategy::Append))).unwrap();
        assert_eq!(out["instructions"], "POLICY");
    }

    fn openai(body: Value, merge: MergeStrategy) -> Value {
        let out = apply_openai(&Bytes::from(body.to_string()), inj(merge));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn openai_system_messages_are_merged_or_added() {
        let with = json!({"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]});
        let v = openai(with.clone(), MergeStrategy::Prepend);
        assert_eq!(v["messages"][0]["content"], "POLICY\n--\nBe brief.");
        let v = openai(with.clone(), MergeStrategy::Append);
        assert_eq!(v["messages"][0]["content"], "Be brief.\n--\nPOLICY");
        let v = openai(with, MergeStrategy::Replace);
        assert_eq!(v["messages"][0]["content"], "POLICY");
        assert_eq!(v["messages"].as_array().unwrap().len(), 2);

        let without = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let v = openai(without, MergeStrategy::Append);
        assert_eq!(
            v["messages"][0],
            json!({"role": "system", "content": "POLICY"})
        );
        assert_eq!(v["messages"][1]["role"], "user");

        let parts = json!({"messages": [{"role": "developer", "content": [{"type": "text", "text": "A"}]}]});
        let v = openai(parts, MergeStrategy::Prepend);
        assert_eq!(v["messages"][0]["content"][0]["text"], "POLICY\n--\n");
        assert_eq!(v["messages"][0]["content"][1]["text"], "A");
    }

    #[test]
    fn anthropic_system_blocks_keep_their_cache_marks() {
        let body = json!({"model": "m", "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}], "messages": []});
        let out = apply_anthropic(&Bytes::from(body.to_string()), inj(MergeStrategy::Append));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(v["system"][1]["text"], "\n--\nPOLICY");
        let out = apply_anthropic(
            &Bytes::from(json!({"system": "S", "messages": []}).to_string()),
            inj(MergeStrategy::Prepend),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["system"], "POLICY\n--\nS");
        let out = apply_anthropic(
            &Bytes::from(json!({"messages": []}).to_string()),
            inj(MergeStrategy::Replace),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["system"], "POLICY");
    }
}
