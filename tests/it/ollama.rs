//! `type: ollama` speaks Ollama's native API (`/api/chat` NDJSON, `/api/tags`), translated
//! to and from OpenAI's chat format. The upstream below answers in the shapes of Ollama's
//! API documentation.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::routing::{get, post};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

pub fn ollama_upstream(seen: Arc<Mutex<Vec<Value>>>) -> axum::Router {
    axum::Router::new()
        .route(
            "/api/tags",
            get(|| async {
                axum::Json(json!({"models": [
                    {"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2024-10-01T00:00:00Z", "size": 2019393189,
                     "digest": "a80c4f17acd5", "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
                ]}))
            }),
        )
        .route(
            "/api/chat",
            post(move |body: Bytes| {
                let seen = seen.clone();
                async move {
                    let req: Value = serde_json::from_slice(&body).unwrap();
                    seen.lock().unwrap().push(req.clone());
                    if req["model"] != "llama3.2:latest" {
                        return (StatusCode::NOT_FOUND, axum::Json(json!({"error": format!("model \"{}\" not found, try pulling it first", req["model"].as_str().unwrap())})))
                            .into_response_();
                    }
                    if req["stream"] == json!(false) {
                        return axum::Json(json!({
                            "model": "llama3.2:latest", "created_at": "2023-12-12T14:13:43.416799Z",
                            "message": {"role": "assistant", "content": "Hello! How are you today?"},
                            "done": true, "done_reason": "stop", "total_duration": 5191566416u64, "load_duration": 2154458,
                            "prompt_eval_count": 26, "prompt_eval_duration": 383809000, "eval_count": 298, "eval_duration": 4799921000u64
                        }))
                        .into_response_();
                    }
                    let lines = [
                        r#"{"model":"llama3.2:latest","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":"The"},"done":false}"#,
                        r#"{"model":"llama3.2:latest","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":" sky is"},"done":false}"#,
                        r#"{"model":"llama3.2:latest","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":" blue."},"done":false}"#,
                        r#"{"model":"llama3.2:latest","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}"#,
                    ];
                    // Lines are split across chunks, as a real network may split them.
                    let text = lines.join("\n") + "\n";
                    let (a, b) = text.split_at(text.len() / 2);
                    let chunks = vec![Bytes::from(a.to_string()), Bytes::from(b.to_string())];
                    let s = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
                    ([("content-type", "application/x-ndjson")], Body::from_stream(s)).into_response_()
                }
            }),
        )
}

trait IntoResponseExt {
    fn into_response_(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> IntoResponseExt for T {
    fn into_response_(self) -> axum::response::Response {
        self.into_response()
    }
}

#[tokio::test]
async fn ollama_is_spoken_natively() {
    let seen: Arc<Mutex<Vec<Value>>> = Default::default();
    let up = spawn_upstream(ollama_upstream(seen.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: local, type: ollama, url: \"http://{up}\", model_aliases: {{}}}}\n  - {{name: pinned, type: ollama, url: \"http://{up}\", models: [missing]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    // Models come from /api/tags.
    let models = get_path(addr, "/v1/models").await.json();
    assert_eq!(models["data"][0]["id"], "llama3.2:latest");

    // Not streamed: translated both ways.
    let r = chat(
        addr,
        r#"{"model":"llama3.2:latest","max_tokens":64,"temperature":0.1,"stop":["\n\n"],"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello! How are you today?"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324})
    );
    let sent = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        sent["options"],
        json!({"num_predict": 64, "temperature": 0.1, "stop": ["\n\n"]})
    );
    assert_eq!(sent["stream"], json!(false));
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );

    // Streamed: NDJSON becomes OpenAI chunks, with usage when asked for.
    let r = chat(
        addr,
        r#"{"model":"llama3.2:latest","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"why is the sky blue?"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/event-stream");
    let text = r.text();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
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
    assert_eq!(content, "The sky is blue.");
    assert!(events
        .iter()
        .all(|e| e["object"] == "chat.completion.chunk"));
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "stop"));
    assert_eq!(events.last().unwrap()["usage"]["completion_tokens"], 282);

    // Ollama's own errors come back in OpenAI's shape.
    let r = chat(
        addr,
        r#"{"model":"missing","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "model_not_found");
    assert!(e["message"].as_str().unwrap().contains("not found"), "{e}");

    // What Ollama cannot take is a clear 400 before anything is sent.
    let before = seen.lock().unwrap().len();
    let r = chat(
        addr,
        r#"{"model":"llama3.2:latest","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("data: URLs"));
    assert_eq!(seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn a_name_without_a_tag_means_latest_and_an_api_url_is_taken_at_its_root() {
    let seen: Arc<Mutex<Vec<Value>>> = Default::default();
    let up = spawn_upstream(ollama_upstream(seen.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: local, type: ollama, url: \"http://{up}/api\"}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat(
        addr,
        r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-model"), "llama3.2:latest");
    assert_eq!(
        seen.lock().unwrap().last().unwrap()["model"],
        "llama3.2:latest"
    );
    let r = chat(
        addr,
        r#"{"model":"local/llama3.2","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// `continuum serve --log-format json`'s log lines (as JSON) so far.
fn log_lines(p: &ServeProcess) -> Vec<Value> {
    p.seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_answered_404_is_never_healthy_and_an_api_url_is_warned_about() {
    let seen: Arc<Mutex<Vec<Value>>> = Default::default();
    let up = spawn_upstream(ollama_upstream(seen)).await;
    let dir = temp_dir("ollama-urls");
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "backends:\n  - {{name: wrong, type: ollama, url: \"http://{up}/v2\", models: [llama3.2]}}\n  - {{name: api, type: ollama, url: \"http://{up}/api/\"}}\n"
        ),
    )
    .unwrap();
    let p = ServeProcess::start(
        bin()
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--config",
            ])
            .arg(&config),
        1,
    );
    let lines = log_lines(&p);
    let text = |l: &Value| l["fields"]["message"].as_str().unwrap_or("").to_string();
    let of = |name: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["fields"]["backend"] == name)
            .map(text)
            .collect()
    };
    // The wrong url: probed at /v2/api/tags, answered 404, never called healthy.
    let wrong = of("wrong");
    assert!(
        wrong.iter().any(|m| m.contains("not taking traffic")
            && m.contains(&format!(
                "GET http://{up}/v2/api/tags answered 404 Not Found"
            ))
            && m.contains("the server root, e.g. http://localhost:11434")),
        "{:#?}",
        p.seen
    );
    assert!(
        !wrong
            .iter()
            .any(|m| m.contains("healthy") && !m.contains("not")),
        "{wrong:?}"
    );
    // The /api url: warned about at load, then served at its root.
    assert!(
        lines.iter().map(text).any(|m| m.contains("backends[1].url")
            && m.contains("names Ollama's API")
            && m.contains(&format!("using 'http://{up}'"))),
        "{:#?}",
        p.seen
    );
    assert!(
        of("api").iter().any(|m| m == "backend is healthy"),
        "{:#?}",
        p.seen
    );
    // A request for the wrong backend's model says why it gets none.
    let r = chat(
        p.tcp_addr(),
        r#"{"model":"wrong/llama3.2","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(
            "backend 'wrong' is unhealthy (last probe: GET /v2/api/tags answered 404 Not Found"
        ),
        "{message}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
