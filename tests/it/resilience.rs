//! Resilient routing against fault-injecting upstreams: strategies, health and warm-up,
//! retries, circuit breakers, fallback, and a chaos run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;
use crate::faults::{Faulty, Killable, Mode};

fn backend(name: &str, k: &Killable, models: &str, extra: &str) -> String {
    format!(
        "  - {{name: {name}, type: vllm, url: \"http://{}\", models: {models}{extra}}}\n",
        k.addr
    )
}

const FAST: &str = "health_checks: {endpoint: /health, interval: 20ms, warmup_check_interval: 10ms, timeout: 200ms, unhealthy_threshold: 1, healthy_threshold: 1}\nretry: {initial_delay: 1ms, max_delay: 5ms}\n";
const HELLO: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

async fn upstreams(names: &[&'static str]) -> Vec<Killable> {
    let mut out = Vec::new();
    for n in names {
        out.push(Killable::start(Faulty::new(n)).await);
    }
    out
}

/// Polls `check` every 10 ms for up to 5 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

async fn admin(addr: std::net::SocketAddr, backend: &str) -> Value {
    let all = get_path(addr, "/admin/backends").await.json();
    all["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == backend)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn weighted_round_robin_follows_weights_exactly() {
    let u = upstreams(&["a", "b"]).await;
    let yaml = format!(
        "selection_strategy: WeightedRoundRobin\nbackends:\n{}{}",
        backend("a", &u[0], "[m]", ", weight: 3"),
        backend("b", &u[1], "[m]", ", weight: 1")
    );
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();
    let mut seen = Vec::new();
    for _ in 0..40 {
        let r = chat(addr, HELLO).await;
        seen.push(r.header("x-continuum-backend").to_string());
    }
    assert_eq!((u[0].faulty.hits(), u[1].faulty.hits()), (30, 10));
    // Smooth: b never waits more than 3 turns.
    assert!(
        seen.windows(4).all(|w| w.iter().any(|b| b == "b")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn random_spreads_and_consistent_hash_sticks() {
    let u = upstreams(&["a", "b", "c"]).await;
    let list = format!(
        "{}{}{}",
        backend("a", &u[0], "[m]", ""),
        backend("b", &u[1], "[m]", ""),
        backend("c", &u[2], "[m]", "")
    );
    let router = start_router(&format!("selection_strategy: Random\nbackends:\n{list}")).await;
    for _ in 0..300 {
        chat(router.tcp_addr().unwrap(), HELLO).await;
    }
    for f in &u {
        assert!(
            (60..=140).contains(&f.faulty.hits()),
            "{}: {}",
            f.faulty.name,
            f.faulty.hits()
        );
    }
    drop(router);

    let router = start_router(&format!(
        "selection_strategy: ConsistentHash\nbackends:\n{list}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let url = format!("http://{addr}/v1/chat/completions");
    let mut by_session: HashMap<String, String> = HashMap::new();
    for round in 0..3 {
        for s in 0..20 {
            let session = format!("session-{s}");
            let r = send(
                Method::POST,
                url.clone(),
                HELLO,
                &[("x-session-id", &session)],
            )
            .await;
            let b = r.header("x-continuum-backend").to_string();
            if round == 0 {
                by_session.insert(session, b);
            } else {
                assert_eq!(by_session[&session], b, "session {s} moved");
            }
        }
    }
    let distinct: std::collections::HashSet<_> = by_session.values().collect();
    assert!(
        distinct.len() >= 2,
        "sessions spread over backends: {by_session:?}"
    );
    // The `user` field is the key when there is no X-Session-ID.
    let body = r#"{"model":"m","user":"alice","messages":[]}"#;
    let first = chat(addr, body)
        .await
        .header("x-continuum-backend")
        .to_string();
    for _ in 0..5 {
        assert_eq!(chat(addr, body).await.header("x-continuum-backend"), first);
    }
}

#[tokio::test]
async fn retries_go_to_the_other_backend_and_breakers_open_and_close() {
    let u = upstreams(&["bad", "good"]).await;
    u[0].faulty.set(Mode::Status(503, None));
    let yaml = format!(
        "{FAST}circuit_breaker: {{failure_threshold: 2, timeout: 200ms, half_open_max_requests: 1, half_open_success_threshold: 1}}\nbackends:\n{}{}",
        backend("bad", &u[0], "[m]", ""),
        backend("good", &u[1], "[m]", "")
    );
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();
    for _ in 0..10 {
        let r = chat(addr, HELLO).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("x-continuum-backend"), "good");
    }
    // Two failures opened "bad"'s circuit: it got no more traffic.
    assert_eq!(u[0].faulty.hits(), 2);
    assert_eq!(admin(addr, "bad").await["circuit"], "open");
    // It recovers; after the open timeout a trial request closes the circuit again.
    u[0].faulty.set(Mode::Ok);
    eventually("circuit half-open", async || {
        admin(addr, "bad").await["circuit"] == "half_open"
    })
    .await;
    eventually("bad serves again", async || {
        chat(addr, HELLO).await.header("x-continuum-backend") == "bad"
    })
    .await;
    assert_eq!(admin(addr, "bad").await["circuit"], "closed");
}

#[tokio::test]
async fn retry_after_is_honoured_on_a_single_backend() {
    let u = upstreams(&["only"]).await;
    u[0].faulty.set(Mode::FailNext(1, 429));
    let router = start_router(&format!(
        "retry: {{max_delay: 2s, jitter: false, initial_delay: 1ms}}\nbackends:\n{}",
        backend("only", &u[0], "[m]", "")
    ))
    .await;
    *u[0].faulty.mode.lock().unwrap() = Mode::FailNext(1, 429);
    let started = Instant::now();
    // FailNext answers without Retry-After; use Status with one for the first attempt.
    u[0].faulty.set(Mode::Status(429, Some("0.3")));
    let addr = router.tcp_addr().unwrap();
    let flip = {
        let f = u[0].faulty.clone();
        tokio::spawn(async move {
            while f.hits() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            f.set(Mode::Ok);
        })
    };
    let r = chat(addr, HELLO).await;
    flip.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(u[0].faulty.hits(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn nothing_is_retried_once_a_stream_started() {
    let u = upstreams(&["cut", "other"]).await;
    u[0].faulty.set(Mode::CutAfter(2));
    u[1].faulty.set(Mode::CutAfter(2));
    let router = start_router(&format!(
        "backends:\n{}{}",
        backend("cut", &u[0], "[m]", ""),
        backend("other", &u[1], "[m]", "")
    ))
    .await;
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(
        text.starts_with("data: {\"n\":0}\n\ndata: {\"n\":1}\n\n"),
        "{text}"
    );
    assert!(text.contains("\"code\":\"backend_error\""), "{text}");
    assert!(!text.contains("[DONE]"));
    assert_eq!(
        u[0].faulty.hits() + u[1].faulty.hits(),
        1,
        "exactly one attempt"
    );
}

#[tokio::test]
async fn warming_up_backends_get_no_traffic_until_ready() {
    let u = upstreams(&["loading"]).await;
    u[0].faulty.set_health(503);
    let router = start_router(&format!(
        "{FAST}backends:\n{}",
        backend("loading", &u[0], "[m]", "")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        get_path(addr, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(admin(addr, "loading").await["status"], "warming_up");
    let r = chat(addr, HELLO).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["code"], "no_healthy_backend");
    assert_eq!(u[0].faulty.hits(), 0, "no traffic while warming up");
    let probes = u[0].faulty.probes.load(std::sync::atomic::Ordering::SeqCst);
    eventually("warm-up probes run at warmup_check_interval", async || {
        u[0].faulty.probes.load(std::sync::atomic::Ordering::SeqCst) >= probes + 3
    })
    .await;
    u[0].faulty.set_health(200);
    eventually("ready", async || {
        get_path(addr, "/health/ready").await.status == StatusCode::OK
    })
    .await;
    assert_eq!(chat(addr, HELLO).await.status, StatusCode::OK);
    assert_eq!(admin(addr, "loading").await["status"], "healthy");
}

#[tokio::test]
async fn fallback_chain_is_tried_in_order() {
    let u = upstreams(&["p", "s", "t"]).await;
    u[0].faulty.set(Mode::Status(500, None));
    u[1].faulty.set(Mode::Status(502, None));
    let yaml = format!(
        "retry: {{max_attempts: 1}}\nfallback:\n  fallback_chains:\n    primary: [second, third]\nbackends:\n{}{}{}",
        backend("p", &u[0], "[primary]", ""),
        backend("s", &u[1], "[second]", ""),
        backend("t", &u[2], "[third]", "")
    );
    let router = start_router(&yaml).await;
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"primary","messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-model"), "third");
    assert_eq!(r.header("x-continuum-backend"), "t");
    assert_eq!(
        [u[0].faulty.hits(), u[1].faulty.hits(), u[2].faulty.hits()],
        [1, 1, 1]
    );
    // When every model fails, the client sees the first model's own error.
    u[2].faulty.set(Mode::Status(503, None));
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"primary","messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("p failed with 500"));
}

#[tokio::test]
async fn hung_backend_times_out_and_the_retry_answers() {
    let u = upstreams(&["hung", "ok"]).await;
    u[0].faulty.set(Mode::Hang);
    let yaml = format!(
        "timeouts: {{request: {{standard: {{first_byte: 100ms}}}}}}\nbackends:\n{}{}",
        backend("hung", &u[0], "[m]", ""),
        backend("ok", &u[1], "[m]", "")
    );
    let router = start_router(&yaml).await;
    for _ in 0..4 {
        let r = chat(router.tcp_addr().unwrap(), HELLO).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-continuum-backend"), "ok");
    }
}

/// One deadline for the whole request: retries share the `total` timeout instead of each
/// getting its own (three attempts at a stalled backend used to take three times `total`).
#[tokio::test]
async fn retries_share_one_deadline() {
    let u = upstreams(&["hung"]).await;
    u[0].faulty.set(Mode::Hang);
    let yaml = format!(
        "timeouts: {{request: {{standard: {{first_byte: 300ms, total: 300ms}}}}}}\nretry: {{max_attempts: 3, initial_delay: 1ms}}\nbackends:\n{}",
        backend("hung", &u[0], "[m]", "")
    );
    let router = start_router(&yaml).await;
    let r = chat(router.tcp_addr().unwrap(), HELLO).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
    assert_eq!(
        u[0].faulty.hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no attempt starts after the request's deadline"
    );
}

/// 2,000 requests at concurrency 50 while one of three backends is killed and restarted:
/// no client sees an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_and_restart_one_of_three_backends() {
    let u = Arc::new(upstreams(&["a", "b", "c"]).await);
    let yaml = format!(
        "{FAST}circuit_breaker: {{timeout: 100ms}}\nbackends:\n{}{}{}",
        backend("a", &u[0], "[m]", ""),
        backend("b", &u[1], "[m]", ""),
        backend("c", &u[2], "[m]", "")
    );
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let chaos = {
        let (u, done) = (u.clone(), done.clone());
        tokio::spawn(async move {
            while done.load(std::sync::atomic::Ordering::SeqCst) < 500 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            u[1].kill();
            while done.load(std::sync::atomic::Ordering::SeqCst) < 1200 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            u[1].restart().await;
        })
    };
    let workers: Vec<_> = (0..50)
        .map(|_| {
            let done = done.clone();
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for _ in 0..40 {
                    let r = chat(addr, HELLO).await;
                    if r.status != StatusCode::OK {
                        errors.push(format!("{}: {}", r.status, r.text()));
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for w in workers {
        errors.extend(w.await.unwrap());
    }
    chaos.await.unwrap();
    assert!(
        errors.is_empty(),
        "{} client-visible errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 2000);
    let hits: Vec<usize> = u.iter().map(|k| k.faulty.hits()).collect();
    assert!(
        hits[1] < hits[0] && hits[1] < hits[2],
        "the killed backend served less: {hits:?}"
    );
    // The restarted backend is found healthy again and takes traffic.
    let before = u[1].faulty.hits();
    eventually("restarted backend serves again", async || {
        chat(addr, HELLO).await;
        u[1].faulty.hits() > before
    })
    .await;
}

#[tokio::test]
async fn prefix_aware_hash_keeps_a_prompt_prefix_on_one_backend_and_counts_cache_hits() {
    let cached = || {
        axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(|| async {
                axum::Json(serde_json::json!({
                    "id": "c", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101,
                              "prompt_tokens_details": {"cached_tokens": 80}}
                }))
            }),
        )
    };
    let a = spawn_upstream(cached()).await;
    let b = spawn_upstream(cached()).await;
    let router = start_router(&format!(
        "selection_strategy: PrefixAwareHash\nbackends:\n  - {{name: a, type: vllm, url: \"http://{a}\", models: [m]}}\n  - {{name: b, type: vllm, url: \"http://{b}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let system = "You are a meticulous assistant. ".repeat(30);
    let mut used = std::collections::HashSet::new();
    for tail in 0..10 {
        let body = serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": format!("question {tail}")}]});
        let r = chat(addr, &body.to_string()).await;
        used.insert(r.header("x-continuum-backend").to_string());
    }
    assert_eq!(used.len(), 1, "one shared prefix, one backend: {used:?}");
    let mut spread = std::collections::HashSet::new();
    for p in 0..20 {
        let body = serde_json::json!({"model": "m", "messages": [{"role": "system", "content": format!("prompt {p}")}]});
        spread.insert(
            chat(addr, &body.to_string())
                .await
                .header("x-continuum-backend")
                .to_string(),
        );
    }
    assert_eq!(spread.len(), 2, "different prefixes use both backends");
    let admin = get_path(addr, "/admin/backends").await.json();
    let (prompt, cached): (u64, u64) = admin["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["prompt_tokens"].as_u64().unwrap(),
                b["cached_prompt_tokens"].as_u64().unwrap(),
            )
        })
        .fold((0, 0), |acc, x| (acc.0 + x.0, acc.1 + x.1));
    assert_eq!((prompt, cached), (3000, 2400));
}

#[tokio::test]
async fn a_broken_stream_continues_on_the_fallback_model_with_a_prefill() {
    use axum::body::Body;
    use bytes::Bytes;
    use std::sync::Mutex;
    let chunk = |text: &str| {
        Bytes::from(format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
        ))
    };
    // The primary streams "Hello, " "wor" and breaks.
    let first = vec![chunk("Hello, "), chunk("wor")];
    let primary = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let first = first.clone();
            async move {
                let mut items: Vec<Result<Bytes, std::io::Error>> =
                    first.into_iter().map(Ok).collect();
                items.push(Err(std::io::Error::other("cut")));
                // A pause before each item lets the chunks reach the router before the break.
                let s = futures_util::stream::unfold(items.into_iter(), |mut it| async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    it.next().map(|x| (x, it))
                });
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(s),
                )
            }
        }),
    );
    let seen: Arc<Mutex<Option<Value>>> = Default::default();
    let backup = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |body: Bytes| {
                let seen = seen.clone();
                async move {
                    *seen.lock().unwrap() = serde_json::from_slice(&body).ok();
                    let s = futures_util::stream::iter(
                        [chunk("ld!"), Bytes::from_static(b"data: [DONE]\n\n")]
                            .into_iter()
                            .map(Ok::<_, std::io::Error>),
                    );
                    (
                        [("content-type", "text/event-stream")],
                        Body::from_stream(s),
                    )
                }
            }),
        )
    };
    let (p, b) = (spawn_upstream(primary).await, spawn_upstream(backup).await);
    let router = start_router(&format!(
        "fallback:\n  fallback_chains: {{big: [small]}}\n  mid_stream: continue\nbackends:\n  - {{name: p, type: vllm, url: \"http://{p}\", models: [big]}}\n  - {{name: b, type: vllm, url: \"http://{b}\", models: [small]}}\n"
    ))
    .await;
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"big","stream":true,"messages":[{"role":"user","content":"greet the world"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello, world!", "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let marker = events.last().unwrap();
    assert_eq!(marker["continuum"]["from_model"], "big", "{text}");
    assert_eq!(marker["continuum"]["to_model"], "small");
    assert!(!text.contains("\"error\""), "{text}");
    let sent = seen.lock().unwrap().clone().unwrap();
    assert_eq!(sent["model"], "small");
    assert_eq!(
        sent["messages"][1],
        serde_json::json!({"role": "assistant", "content": "Hello, wor"})
    );

    // With the default (mid_stream: error) the same break ends with an error event.
    let router = start_router(&format!(
        "fallback:\n  fallback_chains: {{big: [small]}}\nbackends:\n  - {{name: p, type: vllm, url: \"http://{p}\", models: [big]}}\n  - {{name: b, type: vllm, url: \"http://{b}\", models: [small]}}\n"
    ))
    .await;
    let text = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"big","stream":true,"messages":[]}"#,
    )
    .await
    .text();
    assert!(
        text.contains("\"code\":\"backend_error\"") && !text.contains("[DONE]"),
        "{text}"
    );
}

#[tokio::test]
async fn ollama_is_probed_at_api_tags() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let hits = hits.clone();
        axum::Router::new().route(
            "/api/tags",
            axum::routing::get(move || {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { axum::Json(serde_json::json!({"models": []})) }
            }),
        )
    };
    let up = spawn_upstream(app).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: o, type: ollama, url: \"http://{up}\", models: [llama3.2]}}\n"
    ))
    .await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        get_path(router.tcp_addr().unwrap(), "/health/ready")
            .await
            .status,
        StatusCode::OK
    );
}
