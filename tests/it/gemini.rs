//! `type: gemini` backends: OpenAI requests translated to `generateContent` /
//! `streamGenerateContent?alt=sse` and back. The upstream answers with the shapes of the
//! Gemini API documentation.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

fn gemini_upstream(seen: Arc<Mutex<Vec<(String, Value)>>>) -> axum::Router {
    axum::Router::new()
        .route("/v1beta/models", get(|| async { axum::Json(json!({"models": [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}]})) }))
        .route(
            "/v1beta/models/{call}",
            post(move |Path(call): Path<String>, headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    let req: Value = serde_json::from_slice(&body).unwrap();
                    seen.lock().unwrap().push((call.clone(), req));
                    if headers.get("x-goog-api-key").map(|k| k.as_bytes()) != Some(b"g-key") {
                        return (StatusCode::FORBIDDEN, [("content-type", "application/json")], Body::from(r#"{"error":{"code":403,"message":"API key not valid.","status":"PERMISSION_DENIED"}}"#));
                    }
                    if call == "gemini-2.5-flash:streamGenerateContent" {
                        let events = [
                            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
                            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" sky is blue.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 5,\"totalTokenCount\": 13},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
                        ];
                        let s = futures_util::stream::iter(events.map(|e| Ok::<_, Infallible>(Bytes::from_static(e.as_bytes()))));
                        return (StatusCode::OK, [("content-type", "text/event-stream")], Body::from_stream(s));
                    }
                    (StatusCode::OK, [("content-type", "application/json")], Body::from(r#"{"candidates":[{"content":{"parts":[{"text":"AI learns patterns from data."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":7,"totalTokenCount":15},"modelVersion":"gemini-2.5-flash"}"#))
                }
            }),
        )
}

#[tokio::test]
async fn gemini_is_spoken_natively() {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Default::default();
    let up = spawn_upstream(gemini_upstream(seen.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: g, type: gemini, url: \"http://{up}\", api_key: g-key}}\n  - {{name: bad, type: gemini, url: \"http://{up}\", api_key: wrong, models: [gemini-denied]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        get_path(addr, "/v1/models").await.json()["data"][0]["id"],
        "gemini-2.5-flash"
    );

    let r = chat(addr, r#"{"model":"gemini-2.5-flash","max_tokens":20,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Explain AI"}]}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "AI learns patterns from data."
    );
    assert_eq!(v["usage"]["total_tokens"], 15);
    let (call, sent) = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(call, "gemini-2.5-flash:generateContent");
    assert_eq!(
        sent["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(sent["generationConfig"], json!({"maxOutputTokens": 20}));
    assert_eq!(
        sent["contents"],
        json!([{"role": "user", "parts": [{"text": "Explain AI"}]}])
    );

    let r = chat(addr, r#"{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"Why is the sky blue?"}]}"#).await;
    assert_eq!(r.header("content-type"), "text/event-stream");
    let text = r.text();
    let content: String = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content, "The sky is blue.");
    assert!(text.ends_with("data: [DONE]\n\n"));

    let r = chat(
        addr,
        r#"{"model":"gemini-denied","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["message"], "API key not valid.");
}
