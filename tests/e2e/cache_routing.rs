//! CacheAware against RoundRobin on two real llama-servers: the same multi-turn workload
//! (sessions on two shared system prompts, each with its own long first question), and the
//! share of prompt tokens the servers report they served from their KV caches.

use http::Method;
use serde_json::{json, Value};

use crate::common::*;
use crate::real::{available, Llama};

/// `continuum serve` over both servers with `strategy`.
fn serve(strategy: &str, servers: &[Llama]) -> ServeProcess {
    let dir = temp_dir("e2e-cache-routing");
    let file = dir.join("config.yaml");
    let mut yaml = format!(
        "server: {{bind_address: \"127.0.0.1:0\", expose_backend_header: true}}\nselection_strategy: {strategy}\nretry: {{max_attempts: 1}}\ntimeouts: {{request: {{standard: {{first_byte: 300s, total: 600s}}}}}}\nbackends:\n"
    );
    for (i, l) in servers.iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: llama-{i}, type: llamacpp, url: \"{}\", models: [smollm2]}}\n",
            l.url()
        ));
    }
    std::fs::write(&file, yaml).unwrap();
    ServeProcess::start(bin().args(["serve", "--config"]).arg(&file), 1)
}

/// Words that differ per `seed`, so every run and session has its own text.
fn words(seed: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{seed}{}", i % 97))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Tally {
    prompt: u64,
    cached: u64,
    reasons: Vec<String>,
}

/// Four sessions (two per system prompt) of two turns, one request at a time.
async fn workload(addr: std::net::SocketAddr, run: &str) -> Tally {
    let mut t = Tally {
        prompt: 0,
        cached: 0,
        reasons: Vec::new(),
    };
    for session in 0..4 {
        let system = format!("{run} system {}: {}", session % 2, words("rule", 120));
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": format!("{run} session {session}: {}", words("fact", 120))}),
        ];
        for turn in 0..2 {
            let body = json!({"model": "smollm2", "messages": messages, "max_tokens": 8, "temperature": 0});
            let r = send(
                Method::POST,
                format!("http://{addr}/v1/chat/completions"),
                body.to_string(),
                &[],
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v: Value = r.json();
            let usage = &v["usage"];
            let cached = usage["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .or_else(|| v["timings"]["cache_n"].as_u64())
                .expect("llama-server reports its cached prompt tokens");
            t.prompt += usage["prompt_tokens"].as_u64().unwrap();
            t.cached += cached;
            t.reasons
                .push(r.header("x-continuum-route-reason").to_string());
            let answer = v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_string();
            messages.push(json!({"role": "assistant", "content": answer}));
            messages.push(json!({"role": "user", "content": format!("And turn {turn}?")}));
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aware_serves_more_of_the_prompt_from_kv_caches_than_round_robin() {
    if !available("cache_aware_serves_more_of_the_prompt_from_kv_caches_than_round_robin") {
        return;
    }
    let servers = [Llama::chat(), Llama::chat()];
    let ratio = |t: &Tally| t.cached as f64 / t.prompt as f64;
    // Each run has its own text: nothing one run sent is cached for the other.
    let rr = {
        let p = serve("RoundRobin", &servers);
        workload(p.tcp_addr(), "alpha").await
    };
    let ca = {
        let p = serve("CacheAware", &servers);
        workload(p.tcp_addr(), "omega").await
    };
    eprintln!(
        "cached prompt tokens: RoundRobin {}/{} ({:.2}), CacheAware {}/{} ({:.2})",
        rr.cached,
        rr.prompt,
        ratio(&rr),
        ca.cached,
        ca.prompt,
        ratio(&ca)
    );
    assert!(
        ratio(&ca) > ratio(&rr) + 0.1,
        "CacheAware {:.2} is not clearly above RoundRobin {:.2}",
        ratio(&ca),
        ratio(&rr)
    );
    // Every second turn followed its session's cache.
    for (i, reason) in ca.reasons.iter().enumerate() {
        if i % 2 == 1 {
            assert!(reason.starts_with("cache-match;"), "request {i}: {reason}");
        }
    }
}
