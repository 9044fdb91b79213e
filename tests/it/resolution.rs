//! Uploaded files referred to in requests, over plain HTTP: each reference is resolved for
//! the backend the attempt picked — text as text, images as data URLs (Anthropic: base64
//! sources), PDFs natively for Anthropic (`document`), Gemini (`inlineData`), OpenAI (a
//! `file` part with `file_data`) and Responses passthrough (`input_file` with `file_data`),
//! else as their extracted text — from chat completions, Anthropic messages and Responses
//! clients; an id that is not the caller's, or gone, is a 400 naming it.

use std::net::SocketAddr;

use base64::Engine;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::images::{multipart, otter_png, storage_yaml, OTTER};
use crate::operations::Upstream;
use crate::responses::{backend_yaml, Provider};

const ALICE: &str = "sk-alice-0001";
const BOB: &str = "sk-bob-00002";

fn keys_yaml() -> &'static str {
    "api_keys:\n  api_keys:\n    - {key: sk-alice-0001, id: alice-key, user_id: alice}\n    - {key: sk-bob-00002, id: bob-key, user_id: bob}\n"
}

fn hello_pdf() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/files/hello.pdf"
    ))
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn auth(key: &str) -> String {
    format!("Bearer {key}")
}

/// Uploads a file as `key`'s owner; returns its id.
async fn upload(addr: SocketAddr, key: &str, filename: &str, mime: &str, bytes: &[u8]) -> String {
    const B: &str = "continuum-upload-5b2f";
    let body = multipart(
        B,
        &[
            ("purpose", None, b"user_data"),
            ("file", Some((filename, mime)), bytes),
        ],
    );
    let ct = format!("multipart/form-data; boundary={B}");
    let a = auth(key);
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/files"),
        body,
        &[("content-type", &ct), ("authorization", &a)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "upload: {}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("file-"), "{id}");
    id
}

async fn post_as(addr: SocketAddr, key: &str, path: &str, body: &Value) -> Reply {
    let a = auth(key);
    send(
        Method::POST,
        format!("http://{addr}{path}"),
        body.to_string(),
        &[("authorization", &a)],
    )
    .await
}

/// A one-message chat completions request: `part`, then a question.
fn chat_with(model: &str, part: Value) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": [part, {"type": "text", "text": "What does it say?"}]}]})
}

/// A one-message Anthropic request: `block`, then a question.
fn messages_with(model: &str, block: Value) -> Value {
    json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": [block, {"type": "text", "text": "What does it say?"}]}]})
}

fn file_part(id: &str) -> Value {
    json!({"type": "file", "file": {"file_id": id}})
}

fn document(id: &str) -> Value {
    json!({"type": "document", "source": {"type": "file", "file_id": id}})
}

/// Anthropic's base64 PDF document for `hello.pdf`.
fn pdf_document() -> Value {
    json!({"type": "document", "title": "hello.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": b64(&hello_pdf())}})
}

fn question() -> Value {
    json!({"type": "text", "text": "What does it say?"})
}

/// The one POST a provider received.
fn only_post(p: &Provider) -> Value {
    let posted = p.posted();
    assert_eq!(posted.len(), 1, "{posted:#?}");
    posted[0].clone()
}

/// A router with alice and bob, and `backends` (YAML list entries).
async fn router_with(name: &str, backends: &[String]) -> continuum::RunningRouter {
    let mut yaml = format!("{}{}backends:\n", storage_yaml(name), keys_yaml());
    for b in backends {
        yaml.push_str(&format!("  - {b}\n"));
    }
    start_router(&yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_in_chat_goes_to_each_backend_in_its_own_terms() {
    let openai = Provider::start("vllm").await;
    let gemini = Provider::start("gemini").await;
    let vllm = Provider::start("vllm").await;
    let claude = Provider::start("anthropic").await;
    let router = router_with(
        "res-chat-pdf",
        &[
            format!(
                "{{name: oai, type: openai, url: \"{}\", api_key: sk-up, models: [gpt-up]}}",
                openai.url()
            ),
            backend_yaml("gemini", &gemini.url(), "gemini-up").replace("name: up", "name: gem"),
            backend_yaml("vllm", &vllm.url(), "qwen-up").replace("name: up", "name: local"),
            backend_yaml("anthropic", &claude.url(), "claude-up")
                .replace("name: up", "name: claude"),
        ],
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let id = upload(addr, ALICE, "hello.pdf", "application/pdf", &hello_pdf()).await;
    for model in ["gpt-up", "gemini-up", "qwen-up", "claude-up"] {
        let r = post_as(
            addr,
            ALICE,
            "/v1/chat/completions",
            &chat_with(model, file_part(&id)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{model}: {}", r.text());
    }
    let data_url = format!("data:application/pdf;base64,{}", b64(&hello_pdf()));
    assert_eq!(
        only_post(&openai)["messages"][0]["content"],
        json!([{"type": "file", "file": {"filename": "hello.pdf", "file_data": data_url}}, question()])
    );
    assert_eq!(
        only_post(&gemini)["contents"][0]["parts"],
        json!([{"inlineData": {"mimeType": "application/pdf", "data": b64(&hello_pdf())}}, {"text": "What does it say?"}])
    );
    assert_eq!(
        only_post(&vllm)["messages"][0]["content"],
        json!([{"type": "text", "text": "hello.pdf:\nHello PDF"}, question()])
    );
    assert_eq!(
        only_post(&claude)["messages"][0]["content"],
        json!([pdf_document(), question()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_file_sources_are_resolved_for_each_backend() {
    let gemini = Provider::start("gemini").await;
    let vllm = Provider::start("vllm").await;
    let claude = Provider::start("anthropic").await;
    let router = router_with(
        "res-anthropic",
        &[
            backend_yaml("gemini", &gemini.url(), "gemini-up").replace("name: up", "name: gem"),
            backend_yaml("vllm", &vllm.url(), "qwen-up").replace("name: up", "name: local"),
            backend_yaml("anthropic", &claude.url(), "claude-up")
                .replace("name: up", "name: claude"),
        ],
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let pdf = upload(addr, ALICE, "hello.pdf", "application/pdf", &hello_pdf()).await;
    let png = upload(addr, ALICE, "otter.png", "image/png", &otter_png()).await;
    let image = json!({"type": "image", "source": {"type": "file", "file_id": png}});
    for model in ["gemini-up", "qwen-up", "claude-up"] {
        for block in [document(&pdf), image.clone()] {
            let r = post_as(addr, ALICE, "/v1/messages", &messages_with(model, block)).await;
            assert_eq!(r.status, StatusCode::OK, "{model}: {}", r.text());
            assert_eq!(r.json()["type"], "message", "{}", r.text());
        }
    }
    let content = |p: &Provider, key: &str, list: &str| -> Vec<Value> {
        p.posted().iter().map(|b| b[list][0][key].clone()).collect()
    };
    assert_eq!(
        content(&claude, "content", "messages"),
        [
            json!([pdf_document(), question()]),
            json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": OTTER}}, question()]),
        ]
    );
    assert_eq!(
        content(&vllm, "content", "messages"),
        [
            json!([{"type": "text", "text": "hello.pdf:\nHello PDF"}, question()]),
            json!([{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{OTTER}")}}, question()]),
        ]
    );
    assert_eq!(
        content(&gemini, "parts", "contents"),
        [
            json!([{"inlineData": {"mimeType": "application/pdf", "data": b64(&hello_pdf())}}, {"text": "What does it say?"}]),
            json!([{"inlineData": {"mimeType": "image/png", "data": OTTER}}, {"text": "What does it say?"}]),
        ]
    );
}

/// A Responses request naming a PDF and a PNG by `file_id`, sent to `model` on a router
/// with a Responses backend (`gpt-up`, passed through) and a vLLM one (`qwen-up`,
/// translated onto chat); returns what the backend got.
async fn responses_with_files(model: &str) -> Value {
    let passthrough = Provider::start("openai").await;
    let vllm = Provider::start("vllm").await;
    let router = router_with(
        "res-responses",
        &[
            backend_yaml("openai", &passthrough.url(), "gpt-up"),
            backend_yaml("vllm", &vllm.url(), "qwen-up").replace("name: up", "name: local"),
        ],
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let pdf = upload(addr, ALICE, "hello.pdf", "application/pdf", &hello_pdf()).await;
    let png = upload(addr, ALICE, "otter.png", "image/png", &otter_png()).await;
    let request = json!({"model": model, "input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": pdf},
        {"type": "input_image", "file_id": png, "detail": "low"},
        {"type": "input_text", "text": "What do they show?"},
    ]}]});
    let r = post_as(addr, ALICE, "/v1/responses", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{model}: {}", r.text());
    let reply = r.json();
    assert_eq!(reply["status"], "completed", "{reply}");
    let kind = if model == "gpt-up" { "openai" } else { "vllm" };
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        format!("Hello from {kind}."),
        "{reply}"
    );
    // Stored, it can be read back, with the file references as the client sent them.
    let id = reply["id"].as_str().unwrap();
    let r = send(
        Method::GET,
        format!("http://{addr}/v1/responses/{id}"),
        "",
        &[("authorization", &auth(ALICE))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let upstream = if model == "gpt-up" {
        &passthrough
    } else {
        &vllm
    };
    let posted = upstream.posted();
    assert_eq!(posted.len(), 1, "{posted:#?}");
    posted[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responses_request_passed_through_carries_its_files() {
    let sent = responses_with_files("gpt-up").await;
    assert_eq!(
        sent["input"][0]["content"],
        json!([
            {"type": "input_file", "filename": "hello.pdf", "file_data": format!("data:application/pdf;base64,{}", b64(&hello_pdf()))},
            {"type": "input_image", "image_url": format!("data:image/png;base64,{OTTER}"), "detail": "low"},
            {"type": "input_text", "text": "What do they show?"},
        ]),
        "{sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responses_request_translated_onto_chat_carries_its_files() {
    let sent = responses_with_files("qwen-up").await;
    assert_eq!(
        sent["messages"][0]["content"],
        json!([
            {"type": "text", "text": "hello.pdf:\nHello PDF"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{OTTER}"), "detail": "low"}},
            {"type": "text", "text": "What do they show?"},
        ]),
        "{sent}"
    );
}

/// The reference is resolved again for each attempt: the first backend (Anthropic) got a
/// document; when it failed, the fallback (vLLM) got the PDF's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_resolved_again_for_a_fallback_backend() {
    use std::sync::Arc;
    let broken = Upstream::start_with(Some(Arc::new(|_: &str, _: &Value| {
        Some((
            500,
            json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}).to_string(),
        ))
    })))
    .await;
    let vllm = Provider::start("vllm").await;
    let mut yaml = format!(
        "{}{}retry: {{max_attempts: 1}}\nfallback:\n  fallback_chains:\n    claude-doc: [qwen-up]\nbackends:\n",
        storage_yaml("res-fallback"),
        keys_yaml()
    );
    yaml.push_str(&format!(
        "  - {{name: claude, type: anthropic, url: \"{}\", api_key: k, models: [claude-doc]}}\n  - {}\n",
        broken.url(),
        backend_yaml("vllm", &vllm.url(), "qwen-up").replace("name: up", "name: local")
    ));
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();
    let pdf = upload(addr, ALICE, "hello.pdf", "application/pdf", &hello_pdf()).await;
    let r = post_as(
        addr,
        ALICE,
        "/v1/chat/completions",
        &chat_with("claude-doc", file_part(&pdf)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from vllm."
    );
    let first = broken.take_one();
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(
        first.body["messages"][0]["content"],
        json!([pdf_document(), question()])
    );
    let sent = only_post(&vllm);
    assert_eq!(sent["model"], "qwen-up");
    assert_eq!(
        sent["messages"][0]["content"],
        json!([{"type": "text", "text": "hello.pdf:\nHello PDF"}, question()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_chat_resolves_its_files() {
    let vllm = Provider::start("vllm").await;
    let router = router_with(
        "res-stream",
        &[backend_yaml("vllm", &vllm.url(), "qwen-up")],
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let notes = upload(
        addr,
        ALICE,
        "notes.md",
        "text/markdown",
        b"# Otters\nThey hold hands.",
    )
    .await;
    let mut body = chat_with("qwen-up", file_part(&notes));
    body["stream"] = true.into();
    let r = post_as(addr, ALICE, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.header("content-type").starts_with("text/event-stream"));
    assert!(r.text().contains("[DONE]"), "{}", r.text());
    assert_eq!(
        only_post(&vllm)["messages"][0]["content"],
        json!([{"type": "text", "text": "notes.md:\n# Otters\nThey hold hands."}, question()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_the_callers_or_gone_are_400s_naming_them() {
    let vllm = Provider::start("vllm").await;
    let router = router_with(
        "res-missing",
        &[backend_yaml("vllm", &vllm.url(), "qwen-up")],
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let id = upload(addr, ALICE, "notes.txt", "text/plain", b"otters").await;

    // Bob's request naming alice's file, from a chat and an Anthropic client.
    for (path, body) in [
        ("/v1/chat/completions", chat_with("qwen-up", file_part(&id))),
        ("/v1/messages", messages_with("qwen-up", document(&id))),
    ] {
        let r = post_as(addr, BOB, path, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
        assert!(r.text().contains(&id), "{path}: {}", r.text());
    }
    let r = post_as(
        addr,
        BOB,
        "/v1/chat/completions",
        &chat_with("qwen-up", file_part(&id)),
    )
    .await;
    assert_eq!(r.json()["error"]["param"], "messages", "{}", r.text());
    assert_eq!(
        r.json()["error"]["type"],
        "invalid_request_error",
        "{}",
        r.text()
    );
    assert_eq!(
        post_as(
            addr,
            BOB,
            "/v1/messages",
            &messages_with("qwen-up", document(&id))
        )
        .await
        .json()["error"]["type"],
        "invalid_request_error"
    );
    // Bob cannot read it either.
    let r = send(
        Method::GET,
        format!("http://{addr}/v1/files/{id}"),
        "",
        &[("authorization", &auth(BOB))],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());

    // Deleted, it is gone for alice too.
    let r = send(
        Method::DELETE,
        format!("http://{addr}/v1/files/{id}"),
        "",
        &[("authorization", &auth(ALICE))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = post_as(
        addr,
        ALICE,
        "/v1/chat/completions",
        &chat_with("qwen-up", file_part(&id)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains(&id), "{}", r.text());
    // An id never issued.
    let r = post_as(
        addr,
        ALICE,
        "/v1/chat/completions",
        &chat_with("qwen-up", file_part("file-0000000000000000000000nope")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        r.text().contains("file-0000000000000000000000nope"),
        "{}",
        r.text()
    );
    assert!(vllm.posted().is_empty(), "{:#?}", vllm.posted());
}

/// A Responses request naming a file that is not the caller's is a 400 naming the id and
/// the field it is in: `input` (a Responses request has no `messages`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responses_request_naming_anothers_file_is_a_400_about_its_input() {
    let vllm = Provider::start("vllm").await;
    let router = router_with(
        "res-missing-responses",
        &[backend_yaml("vllm", &vllm.url(), "qwen-up")],
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let id = upload(addr, ALICE, "notes.txt", "text/plain", b"otters").await;
    let body = json!({"model": "qwen-up", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": id}]}]});
    let r = post_as(addr, BOB, "/v1/responses", &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains(&id), "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "input", "{}", r.text());
    assert!(vllm.posted().is_empty());
}

/// Anthropic counts a PDF document itself: a `count_tokens` request referring to an
/// uploaded PDF reaches an Anthropic backend with the document, as `/v1/messages` does, so
/// the count is of what the message will send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_sends_an_anthropic_backend_the_document() {
    use std::sync::Arc;
    let claude = Upstream::start_with(Some(Arc::new(|path: &str, _: &Value| {
        (path == "/v1/messages/count_tokens").then(|| (200, r#"{"input_tokens":1543}"#.into()))
    })))
    .await;
    let router = router_with(
        "res-count",
        &[format!(
            "{{name: claude, type: anthropic, url: \"{}\", api_key: k, models: [claude-up]}}",
            claude.url()
        )],
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let pdf = upload(addr, ALICE, "hello.pdf", "application/pdf", &hello_pdf()).await;
    let mut body = messages_with("claude-up", document(&pdf));
    body.as_object_mut().unwrap().remove("max_tokens");
    let r = post_as(addr, ALICE, "/v1/messages/count_tokens", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["input_tokens"], 1543, "{}", r.text());
    let got = claude.take_one();
    assert_eq!(got.path, "/v1/messages/count_tokens");
    assert_eq!(
        got.body["messages"][0]["content"],
        json!([pdf_document(), question()]),
        "{}",
        got.body
    );
}
