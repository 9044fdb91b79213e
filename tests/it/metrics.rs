//! `GET /metrics`: Prometheus text, parsed here by a Prometheus text parser (not grepped):
//! request counts and latency histograms by endpoint, model, backend and status, time to
//! first token, tokens from usage, backend health and circuit gauges, retries, in-flight
//! requests, and reasoning levels clamped for a backend.

use std::collections::HashMap;

use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};
use prometheus_parse::{Sample, Scrape, Value};

use crate::common::*;

fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid Prometheus text")
}

/// The value of the sample `name` whose labels include `labels`.
fn value<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    scrape
        .samples
        .iter()
        .find(|s: &&Sample| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
        })
        .map(|s| &s.value)
}

fn number(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Counter(n) | Value::Gauge(n) | Value::Untyped(n)) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_backend_state() {
    let upstream = axum::Router::new().route(
        "/v1/chat/completions",
        post(|body: Bytes| async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if v["stream"] == true {
                (
                    [("content-type", "text/event-stream")],
                    fixture("openai/chat_tool_call_stream.sse"),
                )
            } else {
                (
                    [("content-type", "application/json")],
                    fixture("openai/chat_tool_call_response.json"),
                )
            }
        }),
    );
    let up = spawn_upstream(upstream).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: o, type: openai, url: \"http://{up}\", api_key: k, models: [gpt-4o]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat(
        addr,
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = chat(
        addr,
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // gpt-4o takes no reasoning level: it is dropped, said in the header and counted.
    let r = chat(addr, r#"{"model":"gpt-4o","reasoning_effort":"high","messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(
        r.header("x-continuum-reasoning-effort"),
        "requested=high; applied=none"
    );
    let r = chat(
        addr,
        r#"{"model":"nope","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        r#"{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let m = get_path(addr, "/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    let s = scrape(&m.text());
    let chat_ok = [
        ("endpoint", "/v1/chat/completions"),
        ("model", "gpt-4o"),
        ("backend", "o"),
        ("status", "200"),
    ];
    assert_eq!(number(value(&s, "continuum_requests_total", &chat_ok)), 3.0);
    assert_eq!(
        number(value(
            &s,
            "continuum_requests_total",
            &[("endpoint", "/v1/chat/completions"), ("status", "404")]
        )),
        1.0
    );
    assert_eq!(
        number(value(
            &s,
            "continuum_requests_total",
            &[
                ("endpoint", "/v1/messages"),
                ("backend", "o"),
                ("status", "200")
            ]
        )),
        1.0
    );
    match value(&s, "continuum_request_duration_seconds", &chat_ok) {
        Some(Value::Histogram(buckets)) => {
            assert_eq!(buckets.last().unwrap().count, 3.0, "{buckets:?}");
        }
        other => panic!("no duration histogram: {other:?}"),
    }
    match value(
        &s,
        "continuum_time_to_first_token_seconds",
        &[("endpoint", "/v1/chat/completions"), ("backend", "o")],
    ) {
        Some(Value::Histogram(buckets)) => assert_eq!(buckets.last().unwrap().count, 3.0),
        other => panic!("no TTFT histogram: {other:?}"),
    }
    // Usage from the fixture (1117 in, 81 out) on four answers, the stream's included.
    let tokens = |dir| {
        number(value(
            &s,
            "continuum_tokens_total",
            &[("model", "gpt-4o"), ("backend", "o"), ("direction", dir)],
        ))
    };
    assert_eq!(tokens("in"), 4.0 * 1117.0);
    assert_eq!(tokens("out"), 4.0 * 81.0);
    assert_eq!(
        number(value(&s, "continuum_backend_healthy", &[("backend", "o")])),
        1.0
    );
    assert_eq!(
        number(value(&s, "continuum_circuit_state", &[("backend", "o")])),
        0.0
    );
    assert_eq!(number(value(&s, "continuum_in_flight_requests", &[])), 0.0);
    assert_eq!(number(value(&s, "continuum_retries_total", &[])), 0.0);
    assert_eq!(
        number(value(
            &s,
            "continuum_reasoning_effort_adjusted_total",
            &[
                ("backend", "o"),
                ("model", "gpt-4o"),
                ("requested", "high"),
                ("applied", "none")
            ]
        )),
        1.0
    );
    let names: HashMap<&str, ()> = s.samples.iter().map(|x| (x.metric.as_str(), ())).collect();
    for name in ["continuum_fallbacks_total", "continuum_retries_total"] {
        assert!(names.contains_key(name), "{name} missing");
    }
}

#[tokio::test]
async fn metrics_path_is_configurable_and_can_be_off() {
    let router = start_router(
        "metrics:\n  endpoint: /internal/prom\nbackends:\n  - {name: m, type: mock, models: [m]}\n",
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        get_path(addr, "/internal/prom").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_path(addr, "/metrics").await.status,
        StatusCode::NOT_FOUND
    );

    let router = start_router(
        "metrics:\n  enabled: false\nbackends:\n  - {name: m, type: mock, models: [m]}\n",
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        get_path(addr, "/metrics").await.status,
        StatusCode::NOT_FOUND
    );
}
