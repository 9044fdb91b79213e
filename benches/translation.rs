//! Translation cost for a ~4 KB chat request with tools and a multi-turn history:
//! OpenAI → Anthropic, OpenAI → Gemini, OpenAI → Ollama, Anthropic → OpenAI, and the
//! replies back. Target: under 50 µs p50 per translation. `cargo bench --bench translation`.

use std::time::Instant;

use continuum::protocol::anthropic_client as anthropic;
use continuum::protocol::{anthropic_backend, gemini, ollama};
use serde_json::json;

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() - 1) as f64 * p) as usize]
}

fn measure(name: &str, n: usize, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "{name:<34} p50 {:>7.1} µs   p99 {:>7.1} µs",
        percentile(samples.clone(), 0.5),
        percentile(samples, 0.99)
    );
}

fn main() {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a careful coding assistant. ".repeat(8)}),
    ];
    for i in 0..6 {
        messages.push(json!({"role": "user", "content": format!("Question {i}: {}", "please look at this code and explain it. ".repeat(6))}));
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": format!("call_{i}"), "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\":\"src/main.rs\"}"}}]}));
        messages.push(json!({"role": "tool", "tool_call_id": format!("call_{i}"), "content": "fn main() { println!(\"hello\"); }"}));
    }
    let openai = json!({"model": "m", "max_tokens": 512, "temperature": 0.2, "stream": true, "messages": messages,
        "tools": [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]});
    let body = serde_json::to_vec(&openai).expect("json");
    println!("request size: {} bytes", body.len());
    let (anthropic_body, _) =
        anthropic_backend::from_openai_request(&body, "claude", true).expect("translate");
    let reply = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"It prints hello."},"finish_reason":"stop"}],"usage":{"prompt_tokens":900,"completion_tokens":5,"total_tokens":905}}"#;
    let n = 20_000;
    measure("floor: parse to Value + write back", n, || {
        let v: serde_json::Value = serde_json::from_slice(&body).expect("ok");
        std::hint::black_box(serde_json::to_vec(&v).expect("ok"));
    });
    measure("OpenAI -> Anthropic request", n, || {
        std::hint::black_box(
            anthropic_backend::from_openai_request(&body, "claude", true).expect("ok"),
        );
    });
    measure("OpenAI -> Gemini request", n, || {
        std::hint::black_box(gemini::from_openai_request(&body, "gemini-2.5-flash").expect("ok"));
    });
    measure("OpenAI -> Ollama request", n, || {
        std::hint::black_box(ollama::translate_request(&body, "llama3.2", true).expect("ok"));
    });
    measure("Anthropic -> OpenAI request", n, || {
        std::hint::black_box(anthropic::to_openai_request(&anthropic_body).expect("ok"));
    });
    measure("OpenAI reply -> Anthropic reply", n, || {
        std::hint::black_box(anthropic::from_openai_response(reply, "m").expect("ok"));
    });
}
