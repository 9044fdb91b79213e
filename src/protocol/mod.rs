//! Wire formats of the APIs clients speak to the router, and pure translations between
//! them and OpenAI's chat format (which every backend adapter takes).

pub mod anthropic_backend;
pub mod anthropic_client;
pub mod codec;
pub mod embeddings;
pub mod errors;
pub mod files;
pub mod gemini;
#[cfg(test)]
mod golden;
pub mod images;
mod input;
pub mod ollama;
pub mod openai;
pub mod reasoning;
pub mod rerank;
pub mod responses;
pub mod sparse;
pub mod sse;

use serde_json::{Map, Value};

/// Adds `items` to the turn list: into the last turn's `field` list when that turn is a
/// `role` turn, else as a new turn. Anthropic and Gemini want roles to alternate, so tool
/// results and the user text after them share one user turn.
pub(crate) fn push_turn(turns: &mut Vec<Value>, role: &str, field: &str, items: Vec<Value>) {
    if let Some(last) = turns.last_mut().filter(|t| t["role"] == role) {
        if let Some(list) = last[field].as_array_mut() {
            list.extend(items);
            return;
        }
    }
    turns.push(object([
        ("role", role.into()),
        (field, Value::Array(items)),
    ]));
}

/// A JSON object from owned fields. Translators build with this instead of `json!`, which
/// copies every embedded value through serde — a deep copy per nesting level.
pub(crate) fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (k, v) in fields {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

#[cfg(test)]
mod roundtrip_tests {
    //! Randomised round trips: OpenAI → Anthropic → OpenAI keeps text, roles, tool calls
    //! and tool results.

    use serde_json::{json, Value};

    use super::anthropic_client as anthropic;
    use super::{anthropic_backend, gemini};

    fn word(rng: &mut fastrand::Rng) -> String {
        const WORDS: &[&str] = &[
            "alpha",
            "beta",
            "gamma",
            "Ünïcode",
            "\"quoted\"",
            "line\nbreak",
            "tab\there",
            "emoji 🦀",
            "{json}",
        ];
        (0..rng.usize(1..6))
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn conversation(rng: &mut fastrand::Rng) -> Value {
        let mut messages = vec![json!({"role": "system", "content": word(rng)})];
        let mut call = 0;
        for _ in 0..rng.usize(1..6) {
            messages.push(json!({"role": "user", "content": word(rng)}));
            if rng.bool() {
                let calls: Vec<Value> = (0..rng.usize(1..3))
                    .map(|_| {
                        call += 1;
                        json!({"id": format!("call_{call}"), "type": "function",
                               "function": {"name": format!("tool_{}", rng.usize(..3)), "arguments": json!({"q": word(rng), "n": rng.u32(..100)}).to_string()}})
                    })
                    .collect();
                let text = if rng.bool() {
                    Value::Null
                } else {
                    json!(word(rng))
                };
                messages.push(
                    json!({"role": "assistant", "content": text, "tool_calls": calls.clone()}),
                );
                for c in &calls {
                    messages.push(
                        json!({"role": "tool", "tool_call_id": c["id"], "content": word(rng)}),
                    );
                }
            }
            messages.push(json!({"role": "assistant", "content": word(rng)}));
        }
        json!({"model": "m", "max_tokens": 100, "messages": messages})
    }

    /// A tool call: id, name, parsed arguments.
    type Call = (String, String, Value);
    /// A message: role, text, tool calls, tool_call_id.
    type Essence = (String, String, Vec<Call>, String);

    /// What must survive a round trip.
    fn essence(request: &Value) -> Vec<Essence> {
        request["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let text = match &m["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join(""),
                    _ => String::new(),
                };
                let calls = m["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let args: Value =
                            serde_json::from_str(c["function"]["arguments"].as_str().unwrap())
                                .unwrap();
                        (
                            c["id"].as_str().unwrap().to_string(),
                            c["function"]["name"].as_str().unwrap().to_string(),
                            args,
                        )
                    })
                    .collect();
                (
                    m["role"].as_str().unwrap().to_string(),
                    text,
                    calls,
                    m["tool_call_id"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn openai_to_anthropic_and_back_keeps_the_conversation() {
        let mut rng = fastrand::Rng::with_seed(7);
        for case in 0..300 {
            let original = conversation(&mut rng);
            let body = serde_json::to_vec(&original).unwrap();
            let (to_anthropic, _) =
                anthropic_backend::from_openai_request(&body, "m", false).unwrap();
            let (back, _, _) = anthropic::to_openai_request(&to_anthropic).unwrap();
            let back: Value = serde_json::from_slice(&back).unwrap();
            assert_eq!(
                essence(&back),
                essence(&original),
                "case {case}: {original}"
            );
        }
    }

    /// Reads a Gemini `generateContent` body back as an OpenAI request (test-only: the
    /// router has no Gemini front door). Gemini has no call ids, so a function response
    /// answers the earliest unanswered call of its name, as Gemini pairs them.
    fn gemini_to_openai(v: &Value) -> Value {
        let mut messages = Vec::new();
        if let Some(parts) = v["systemInstruction"]["parts"].as_array() {
            let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            messages.push(json!({"role": "system", "content": text.join("\n")}));
        }
        let mut open_calls: Vec<(String, String)> = Vec::new();
        let mut next = 0;
        for turn in v["contents"].as_array().unwrap() {
            let parts = turn["parts"].as_array().unwrap();
            let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            if turn["role"] == "model" {
                let calls: Vec<Value> = parts
                    .iter()
                    .filter_map(|p| p.get("functionCall"))
                    .map(|f| {
                        next += 1;
                        let id = format!("call_{next}");
                        let name = f["name"].as_str().unwrap().to_string();
                        open_calls.push((id.clone(), name.clone()));
                        json!({"id": id, "type": "function", "function": {"name": name, "arguments": f["args"].to_string()}})
                    })
                    .collect();
                let mut m = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    m["tool_calls"] = Value::Array(calls);
                }
                messages.push(m);
                continue;
            }
            for r in parts.iter().filter_map(|p| p.get("functionResponse")) {
                let at = open_calls
                    .iter()
                    .position(|(_, n)| r["name"] == n.as_str())
                    .expect("a response answers an open call");
                let (id, _) = open_calls.remove(at);
                messages.push(
                    json!({"role": "tool", "tool_call_id": id, "content": r["response"]["result"]}),
                );
            }
            if parts.iter().any(|p| p.get("text").is_some()) {
                messages.push(json!({"role": "user", "content": text}));
            }
        }
        json!({"model": "m", "messages": messages})
    }

    /// The essence with call ids replaced by the call's position, since Gemini carries no
    /// ids: a tool result still has to answer the same call.
    fn essence_by_position(request: &Value) -> Vec<Essence> {
        let mut ids: Vec<String> = Vec::new();
        essence(request)
            .into_iter()
            .map(|(role, text, calls, answers)| {
                let calls = calls
                    .into_iter()
                    .map(|(id, name, args)| {
                        ids.push(id);
                        (ids.len().to_string(), name, args)
                    })
                    .collect();
                let answers = ids
                    .iter()
                    .position(|i| *i == answers)
                    .map_or(String::new(), |p| (p + 1).to_string());
                (role, text, calls, answers)
            })
            .collect()
    }

    #[test]
    fn openai_to_gemini_and_back_keeps_the_conversation() {
        let mut rng = fastrand::Rng::with_seed(11);
        for case in 0..300 {
            let original = conversation(&mut rng);
            let body = serde_json::to_vec(&original).unwrap();
            let (to_gemini, _) = gemini::from_openai_request(&body, "gemini-2.5-flash").unwrap();
            let back = gemini_to_openai(&serde_json::from_slice(&to_gemini).unwrap());
            assert_eq!(
                essence_by_position(&back),
                essence_by_position(&original),
                "case {case}: {original}"
            );
        }
    }
}
