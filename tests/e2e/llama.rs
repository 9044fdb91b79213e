//! `continuum serve` in front of real llama-server instances.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;
use crate::real::{available, Llama, Redis};

/// `continuum serve` with `yaml` (a bind address is added), as a process.
fn serve(yaml: &str) -> ServeProcess {
    let dir = temp_dir("e2e");
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!("server: {{bind_address: \"127.0.0.1:0\"}}\n{yaml}"),
    )
    .unwrap();
    ServeProcess::start(bin().args(["serve", "--config"]).arg(&file), 1)
}

fn llama_backend(name: &str, l: &Llama) -> String {
    format!(
        "  - {{name: {name}, type: llamacpp, url: \"{}\"}}\n",
        l.url()
    )
}

async fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}{path}"),
        body.to_string(),
        &[],
    )
    .await
}

fn sse_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streamed_and_not_with_usage_through_the_router() {
    if !available("chat_streamed_and_not_with_usage_through_the_router") {
        return;
    }
    let llama = Llama::ready();
    // No `models`: the router discovers llama-server's model list.
    let p = serve(&format!("backends:\n{}", llama_backend("llama", &llama)));
    let addr = p.tcp_addr();

    let models = get_path(addr, "/v1/models").await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"smollm2"), "{models}");

    let r = post(
        addr,
        "/v1/chat/completions",
        r#"{"model":"smollm2","max_tokens":8,"messages":[{"role":"user","content":"Say hi."}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "llama");
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Streamed, with the usage chunk the client asked for.
    let r = post(addr, "/v1/chat/completions", r#"{"model":"smollm2","max_tokens":8,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hi."}]}"#).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/event-stream"));
    assert!(
        r.text().trim_end().ends_with("data: [DONE]"),
        "{}",
        r.text()
    );
    let events = sse_events(&r.text());
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["delta"]["content"].is_string()));
    let usage = events
        .iter()
        .find(|e| e["usage"].is_object())
        .expect("a usage chunk");
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Without include_usage the router still asks llama-server for usage (for its metrics)
    // but the client gets no usage chunk.
    let r = post(addr, "/v1/chat/completions", r#"{"model":"smollm2","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"Say hi."}]}"#).await;
    assert!(
        sse_events(&r.text())
            .iter()
            .all(|e| !e["usage"].is_object()),
        "{}",
        r.text()
    );
    let metrics = get_path(addr, "/metrics").await.text();
    assert!(
        metrics.contains(
            "continuum_tokens_total{model=\"smollm2\",backend=\"llama\",direction=\"out\"}"
        ),
        "{metrics}"
    );

    // llama-server answers malformed JSON with 500; through the router it is the client's 400.
    let r = post(addr, "/v1/chat/completions", "{bad json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_is_translated_onto_llama_server() {
    if !available("the_anthropic_sdk_is_translated_onto_llama_server") {
        return;
    }
    let llama = Llama::ready();
    let p = serve(&format!("backends:\n{}", llama_backend("llama", &llama)));
    let url = format!("http://{}", p.tcp_addr());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/anthropic_llama.py");
    let python = crate::common::python_with("anthropic");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(url)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("anthropic sdk on llama-server ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_llama_server_warming_up() {
    if !available("readiness_follows_llama_server_warming_up") {
        return;
    }
    // The router starts first: the backend is down, then loading (503), then healthy.
    let port = crate::real::free_port();
    let p = serve(&format!(
        "health_checks: {{interval: 100ms, warmup_check_interval: 50ms, unhealthy_threshold: 1, healthy_threshold: 1}}\nbackends:\n  - {{name: llama, type: llamacpp, url: \"http://127.0.0.1:{port}\", models: [smollm2]}}\n"
    ));
    let addr = p.tcp_addr();
    assert_eq!(
        get_path(addr, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let llama = crate::real::Llama::start_on(port);
    let llama_health = format!("http://127.0.0.1:{port}/health");
    let llama_status = || async {
        let client = continuum::backend::build_client(1, Duration::from_secs(1));
        let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
        *req.uri_mut() = llama_health.parse().unwrap();
        match tokio::time::timeout(Duration::from_secs(1), client.request(req)).await {
            Ok(Ok(resp)) => Some(resp.status()),
            _ => None,
        }
    };
    let mut saw_warming = false;
    let mut ready = false;
    for _ in 0..600 {
        let router_ready = get_path(addr, "/health/ready").await.status == StatusCode::OK;
        let status =
            get_path(addr, "/admin/backends").await.json()["backends"][0]["status"].clone();
        saw_warming |= status == "warming_up";
        if router_ready {
            // llama-server never goes back to loading, so it must be healthy now.
            assert_eq!(
                llama_status().await,
                Some(StatusCode::OK),
                "the router was ready while llama-server was not"
            );
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "the router never became ready");
    eprintln!("warm-up: the router reported warming_up: {saw_warming}");
    let r = post(
        addr,
        "/v1/chat/completions",
        r#"{"model":"smollm2","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    drop(llama);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_over_two_instances_survives_one_being_killed() {
    if !available("round_robin_over_two_instances_survives_one_being_killed") {
        return;
    }
    let (a, b) = (Llama::ready(), Llama::ready());
    let p = serve(&format!(
        "selection_strategy: RoundRobin\nhealth_checks: {{interval: 500ms}}\nretry: {{max_attempts: 3, initial_delay: 10ms}}\nbackends:\n  - {{name: llama-a, type: llamacpp, url: \"{}\", models: [smollm2]}}\n  - {{name: llama-b, type: llamacpp, url: \"{}\", models: [smollm2]}}\n",
        a.url(),
        b.url()
    ));
    let addr = p.tcp_addr();
    let body = r#"{"model":"smollm2","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let done = done.clone();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                for _ in 0..12 {
                    let r = post(addr, "/v1/chat/completions", body).await;
                    answered.push((
                        r.status,
                        r.header("x-continuum-backend").to_string(),
                        r.text(),
                    ));
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                answered
            })
        })
        .collect();
    while done.load(std::sync::atomic::Ordering::SeqCst) < 12 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.stop();
    let mut by_backend = std::collections::HashMap::<String, usize>::new();
    for c in clients {
        for (status, backend, text) in c.await.unwrap() {
            assert_eq!(status, StatusCode::OK, "a client saw an error: {text}");
            *by_backend.entry(backend).or_default() += 1;
        }
    }
    assert_eq!(by_backend.values().sum::<usize>(), 48);
    assert!(
        by_backend.get("llama-a").copied().unwrap_or(0) > 0,
        "{by_backend:?}"
    );
    assert!(
        by_backend.get("llama-b").copied().unwrap_or(0) > 0,
        "both took turns before the kill: {by_backend:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_share_one_rate_limit_through_redis() {
    if !available("two_routers_share_one_rate_limit_through_redis") {
        return;
    }
    let llama = Llama::ready();
    let redis = Redis::start();
    let yaml = format!(
        "rate_limiting:\n  storage: redis\n  redis: {{url: \"{}\", key_prefix: \"e2e{}:\"}}\n  limits: {{per_client: {{requests_per_second: 0.01, burst_capacity: 5}}}}\nbackends:\n{}",
        redis.url,
        std::process::id(),
        llama_backend("llama", &llama)
    );
    let (one, two) = (serve(&yaml), serve(&yaml));
    let body = r#"{"model":"smollm2","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let addr = if i % 2 == 0 {
            one.tcp_addr()
        } else {
            two.tcp_addr()
        };
        let r = post(addr, "/v1/chat/completions", body).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
            assert_eq!(r.header("x-ratelimit-remaining"), "0");
        }
        statuses.push(r.status.as_u16());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        ok, 5,
        "one combined burst of 5 across both routers: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_measures_the_router_in_front_of_llama_server() {
    if !available("bench_measures_the_router_in_front_of_llama_server") {
        return;
    }
    let llama = Llama::ready();
    let p = serve(&format!("backends:\n{}", llama_backend("llama", &llama)));
    let url = format!("http://{}", p.tcp_addr());
    let out = tokio::task::spawn_blocking(move || {
        run(bin().args([
            "bench",
            "--url",
            &url,
            "-m",
            "smollm2",
            "-n",
            "16",
            "-c",
            "2",
            "--stream",
            "--max-tokens",
            "16",
            "--json",
        ]))
    })
    .await
    .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["requests"], 16);
    assert_eq!(v["errors"], 0);
    assert!(v["ttft_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(v["output_tokens_per_second"].as_f64().unwrap() > 0.0);
    eprintln!("bench through continuum onto llama-server: {}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_completions_and_embeddings_through_the_router() {
    if !available("legacy_completions_and_embeddings_through_the_router") {
        return;
    }
    let llama = Llama::ready();
    let p = serve(&format!("backends:\n{}", llama_backend("llama", &llama)));
    let addr = p.tcp_addr();

    let r = post(
        addr,
        "/v1/completions",
        r#"{"model":"smollm2","prompt":"The sky is","max_tokens":6}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "llama");
    let v = r.json();
    assert!(v["choices"][0]["text"].is_string(), "{v}");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{v}");

    let r = post(
        addr,
        "/v1/completions",
        r#"{"model":"smollm2","prompt":"The sky is","max_tokens":6,"stream":true}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text().trim_end().ends_with("data: [DONE]"),
        "{}",
        r.text()
    );
    assert!(sse_events(&r.text())
        .iter()
        .any(|e| e["choices"][0]["text"].is_string()));

    let r = post(
        addr,
        "/v1/embeddings",
        r#"{"model":"smollm2","input":["hello world","goodbye"]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let dims = data[0]["embedding"].as_array().unwrap().len();
    assert!(
        dims > 0 && data[1]["embedding"].as_array().unwrap().len() == dims,
        "{v}"
    );
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{v}");
}

/// Claude Code's per-request billing block (`x-anthropic-billing-header: …; cch=…;`) first
/// in `system` would defeat llama-server's prompt cache for everything after it; the router
/// drops it for non-Anthropic backends, so the second turn's cached prompt tokens cover the
/// whole system prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_billing_block_does_not_defeat_the_prompt_cache() {
    if !available("claude_code_billing_block_does_not_defeat_the_prompt_cache") {
        return;
    }
    let llama = Llama::ready();
    let p = serve(&format!("backends:\n{}", llama_backend("llama", &llama)));
    let addr = p.tcp_addr();
    let system = ["You are a careful coding assistant that answers briefly."; 30].join(" ");
    let turn = |cch: &str, question: &str| {
        serde_json::json!({
            "model": "smollm2", "max_tokens": 4,
            "system": [
                {"type": "text", "text": format!("x-anthropic-billing-header: cc_version=2.1.37.fbe; cc_entrypoint=cli; cch={cch};")},
                {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}},
            ],
            "messages": [{"role": "user", "content": question}],
        })
        .to_string()
    };
    let first = post(addr, "/v1/messages", &turn("a1b2c", "hi")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let second = post(addr, "/v1/messages", &turn("9f8e7", "hello")).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let usage = &second.json()["usage"];
    let cached = usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
    let uncached = usage["input_tokens"].as_u64().unwrap();
    // The system prompt is ~300 tokens; only the differing user turn is left to prefill.
    assert!(
        cached >= 250 && uncached < 40,
        "the billing block defeated the cache: {usage}"
    );
}

/// `POST /v1/rerank` (Cohere/Jina shape) through the router to a llama-server started with
/// `--reranking`: results for every document, sorted by score, with their original indices,
/// `top_n` and `return_documents` applied. (SmolLM2 is not a trained reranker — no small
/// reranker GGUF can be had from the package registries — so the scores are checked for
/// order, not meaning.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerank_through_the_router_to_llama_server() {
    if !available("rerank_through_the_router_to_llama_server") {
        return;
    }
    let llama = Llama::reranker();
    let p = serve(&format!("backends:\n{}", llama_backend("ranker", &llama)));
    let addr = p.tcp_addr();
    let docs =
        r#"["hi","The giant panda is a bear species endemic to China.","pandas eat bamboo"]"#;
    let r = post(
        addr,
        "/v1/rerank",
        &format!(r#"{{"model":"smollm2","query":"what is a panda?","documents":{docs}}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "ranker");
    let v = r.json();
    let results = v["results"].as_array().unwrap();
    let mut indices: Vec<u64> = results
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    let scores: Vec<f64> = results
        .iter()
        .map(|x| x["relevance_score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted: {v}");
    assert!(results.iter().all(|x| x.get("document").is_none()), "{v}");
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2], "{v}");

    let r = post(
        addr,
        "/rerank",
        &format!(r#"{{"model":"smollm2","query":"what is a panda?","documents":{docs},"top_n":2,"return_documents":true}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v}");
    let texts: Vec<&str> = serde_json::from_str::<Vec<&str>>(docs).unwrap();
    for x in results {
        let i = x["index"].as_u64().unwrap() as usize;
        assert_eq!(x["document"]["text"], texts[i], "{v}");
    }
}

/// OpenAI's Responses API onto llama-server (translated onto chat): a streamed response,
/// then a conversation continued with `previous_response_id` across a restart of the
/// router (killed with SIGKILL: the embedded store keeps committed responses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_conversation_survives_a_router_restart() {
    if !available("responses_conversation_survives_a_router_restart") {
        return;
    }
    let llama = Llama::ready();
    let dir = temp_dir("e2e-responses");
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "server: {{bind_address: \"127.0.0.1:0\"}}\nstore: {{path: \"{}\"}}\nbackends:\n{}",
            dir.join("store.redb").display(),
            llama_backend("llama", &llama)
        ),
    )
    .unwrap();
    let start = || ServeProcess::start(bin().args(["serve", "--config"]).arg(&file), 1);

    let mut p = start();
    let addr = p.tcp_addr();
    let r = post(
        addr,
        "/v1/responses",
        r#"{"model":"smollm2","input":"Say hello.","max_output_tokens":8,"stream":true}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events: Vec<Value> = r
        .text()
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[..2],
        ["response.created", "response.in_progress"],
        "{kinds:?}"
    );
    assert!(kinds.contains(&"response.output_text.delta"), "{kinds:?}");
    let last = events.last().unwrap();
    assert!(
        ["response.completed", "response.incomplete"].contains(&last["type"].as_str().unwrap()),
        "{last}"
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i, "{e}");
    }

    let first = post(
        addr,
        "/v1/responses",
        r#"{"model":"smollm2","input":"My name is Ada. Reply with one word.","max_output_tokens":8}"#,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let first = first.json();
    let id = first["id"].as_str().unwrap().to_string();
    // SIGKILL: no clean shutdown.
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    let p = start();
    let addr = p.tcp_addr();
    let got = send(
        Method::GET,
        format!("http://{addr}/v1/responses/{id}"),
        "",
        &[],
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(got.json()["output"], first["output"]);
    let second = post(
        addr,
        "/v1/responses",
        &format!(
            r#"{{"model":"smollm2","input":"What is my name?","previous_response_id":"{id}","max_output_tokens":8}}"#
        ),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    let second = second.json();
    assert_eq!(second["previous_response_id"], id.as_str());
    // The first turn went to llama-server again: the prompt is longer than the question.
    let tokens = |v: &Value| v["usage"]["input_tokens"].as_u64().unwrap();
    assert!(tokens(&second) > tokens(&first), "{second}");
    let items = send(
        Method::GET,
        format!(
            "http://{addr}/v1/responses/{}/input_items",
            second["id"].as_str().unwrap()
        ),
        "",
        &[],
    )
    .await
    .json();
    assert_eq!(
        items["data"][0]["content"][0]["text"], "What is my name?",
        "{items}"
    );
}
