//! Embeddings, reranking and sparse embeddings end to end: the router in front of test
//! upstreams that speak each provider's documented wire format (OpenAI-compatible
//! `/v1/embeddings`, Gemini `batchEmbedContents`, Ollama `/api/embed`, Cohere/Jina-shaped
//! `/v1/rerank` as vLLM and llama.cpp serve it, text-embeddings-inference `/rerank` and
//! `/embed_sparse`), answering with the replies of `tests/fixtures/{embeddings,rerank,sparse}`
//! and recording what they received. The tests assert both sides exactly: what each backend
//! got, in its own format, and what the client got back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Value};

use crate::common::*;

/// One request a test upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    /// The body as JSON (`null` when it was not JSON).
    pub body: Value,
}

/// Answers a request (path, JSON body) before the documented behaviour does, when it
/// returns `Some((status, body))`.
pub type Override = Arc<dyn Fn(&str, &Value) -> Option<(u16, String)> + Send + Sync>;

/// A test upstream that speaks every embeddings / rerank / sparse wire format by path, as
/// [`documented`] says, and records every POST it receives (health probes are GETs and are
/// answered 404 without being recorded).
pub struct Upstream {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        Upstream::start_with(None).await
    }

    pub async fn start_with(over: Option<Override>) -> Upstream {
        let log: Arc<Mutex<Vec<Seen>>> = Default::default();
        let record = log.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                let over = over.clone();
                async move {
                    let path = uri
                        .path_and_query()
                        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
                    if method != Method::POST {
                        return reply(404, r#"{"error":"not found"}"#.to_string());
                    }
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    record.lock().unwrap().push(Seen {
                        path: path.clone(),
                        headers,
                        body: v.clone(),
                    });
                    let (status, text) = over
                        .and_then(|f| f(&path, &v))
                        .unwrap_or_else(|| documented(&path, &v));
                    reply(status, text)
                }
            },
        );
        Upstream {
            addr: spawn_upstream(app).await,
            log,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// The one request received since the last `take`; panics unless exactly one came.
    pub fn take_one(&self) -> Seen {
        let mut log = self.log.lock().unwrap();
        assert_eq!(
            log.len(),
            1,
            "expected exactly one request upstream: {log:?}"
        );
        log.remove(0)
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }

    /// How many requests came to `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .count()
    }
}

fn reply(status: u16, body: String) -> axum::response::Response {
    axum::response::IntoResponse::into_response((
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    ))
}

/// A fixture as JSON.
pub fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

/// The lower-case words of a text, punctuation stripped.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// The score the test rerankers give a document that no fixture covers: how many of the
/// query's words it contains (an integer, so tests can state it exactly).
pub fn overlap(query: &str, doc: &str) -> u64 {
    let d = words(doc);
    words(query).iter().filter(|w| d.contains(w)).count() as u64
}

/// A rerank document's text (a string, or an object's `text`).
fn doc_text(doc: &Value) -> &str {
    doc.as_str()
        .or_else(|| doc["text"].as_str())
        .unwrap_or_default()
}

/// The documented reply of the provider served at `path` for `body`:
///
/// - `/v1/embeddings` (OpenAI, vLLM, TEI, …): `openai_base64_reply.json` when asked for
///   base64, else `openai_float_reply.json`;
/// - `/api/embed` (Ollama): `ollama_embed_reply.json`;
/// - `/v1beta/models/{m}:batchEmbedContents` (Gemini): one `gemini_batch_reply.json` vector
///   per request (the fixture verbatim for three);
/// - `/v1/rerank` (vLLM, llama.cpp, Jina): the reply of the fixture whose query and documents
///   were sent, else results in document order scored by [`overlap`], as llama.cpp answers;
/// - `/rerank` (TEI): `tei_reply.json` for `tei_request.json`, else `[{index, score}]` scored
///   by [`overlap`], best first;
/// - `/embed_sparse` (TEI): `sparse/tei_reply.json` for the fixture's inputs, else a TEI 422.
pub fn documented(path: &str, body: &Value) -> (u16, String) {
    let not_found = || (404, r#"{"error":"not found"}"#.to_string());
    match path {
        "/v1/embeddings" => {
            if body["encoding_format"] == "base64" {
                (200, fixture("embeddings/openai_base64_reply.json"))
            } else {
                (200, fixture("embeddings/openai_float_reply.json"))
            }
        }
        "/api/embed" => (200, fixture("embeddings/ollama_embed_reply.json")),
        p if p.starts_with("/v1beta/models/") && p.ends_with(":batchEmbedContents") => {
            let n = body["requests"].as_array().map_or(0, Vec::len);
            let text = fixture("embeddings/gemini_batch_reply.json");
            let mut v: Value = serde_json::from_str(&text).unwrap();
            let all = v["embeddings"].as_array_mut().unwrap();
            match n {
                3 => (200, text),
                n if n < 3 => {
                    all.truncate(n);
                    (200, v.to_string())
                }
                _ => (
                    400,
                    json!({"error": {"code": 400, "message": "too many requests in the test batch", "status": "INVALID_ARGUMENT"}}).to_string(),
                ),
            }
        }
        "/v1/rerank" => {
            for name in ["vllm", "llamacpp", "cohere_v2"] {
                let req = fixture_json(&format!("rerank/{name}_request.json"));
                if req["query"] == body["query"] && req["documents"] == body["documents"] {
                    return (200, fixture(&format!("rerank/{name}_reply.json")));
                }
            }
            let query = body["query"].as_str().unwrap_or_default();
            let results: Vec<Value> = body["documents"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, d)| json!({"index": i, "relevance_score": overlap(query, doc_text(d))}))
                .collect();
            let reply = json!({"model": body["model"], "object": "list", "results": results});
            (200, reply.to_string())
        }
        "/rerank" => {
            if *body == fixture_json("rerank/tei_request.json") {
                return (200, fixture("rerank/tei_reply.json"));
            }
            let query = body["query"].as_str().unwrap_or_default();
            let mut ranks: Vec<(usize, u64)> = body["texts"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, t)| (i, overlap(query, t.as_str().unwrap_or_default())))
                .collect();
            ranks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let reply: Vec<Value> = ranks
                .into_iter()
                .map(|(index, score)| json!({"index": index, "score": score}))
                .collect();
            (200, Value::Array(reply).to_string())
        }
        "/embed_sparse" => {
            if body["inputs"] == fixture_json("sparse/tei_request.json")["inputs"] {
                (200, fixture("sparse/tei_reply.json"))
            } else {
                (
                    422,
                    json!({"error": "the test upstream knows only the fixture's inputs", "error_type": "validation"}).to_string(),
                )
            }
        }
        _ => not_found(),
    }
}

/// Decodes an OpenAI base64 embedding: standard base64 of little-endian `f32`s.
pub fn decode_f32(b64: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("{b64} is not base64: {e}"));
    assert_eq!(bytes.len() % 4, 0, "{b64} is not whole f32s");
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A JSON array of numbers as the `f32`s a client reads from it.
pub fn as_f32(numbers: &Value) -> Vec<f32> {
    serde_json::from_value(numbers.clone())
        .unwrap_or_else(|e| panic!("{numbers} is not an array of f32: {e}"))
}

/// POSTs `body` to the router's `path`.
pub async fn post_to(addr: SocketAddr, path: &str, body: impl ToString) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}{path}"),
        body.to_string(),
        &[],
    )
    .await
}

/// POSTs `body` to `path` with `Authorization: Bearer key`.
async fn post_as(addr: SocketAddr, path: &str, key: &str, body: impl ToString) -> Reply {
    let auth = format!("Bearer {key}");
    send(
        Method::POST,
        format!("http://{addr}{path}"),
        body.to_string(),
        &[("authorization", auth.as_str())],
    )
    .await
}

/// `value` with `"model"` set to `model`.
pub fn with_model(mut value: Value, model: &str) -> Value {
    value["model"] = json!(model);
    value
}

/// A rerank reply without its generated id, after checking the id's shape (vLLM's style:
/// `rerank-` and 32 hex digits).
pub fn without_generated_id(mut v: Value) -> Value {
    let id = v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}"));
    assert!(
        id.len() == 39
            && id.starts_with("rerank-")
            && id[7..].chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    v.as_object_mut().unwrap().remove("id");
    v
}

/// The error message of an OpenAI-shaped error reply.
pub fn error_message(r: &Reply) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {}", r.text()))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Dense embeddings

#[tokio::test]
async fn embeddings_pass_through_to_vllm_as_floats_and_as_base64() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"{}\", models: [text-embedding-ada-002], model_aliases: {{ada: text-embedding-ada-002}}}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let request = json!({"model": "ada", "input": ["The food was delicious", "and the waiter"], "user": "user-1"});
    let r = post_to(addr, "/v1/embeddings", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Passed through byte for byte.
    assert_eq!(r.text(), fixture("embeddings/openai_float_reply.json"));
    assert_eq!(r.header("x-continuum-backend"), "v");
    assert_eq!(r.header("x-continuum-model"), "text-embedding-ada-002");
    let seen = up.take_one();
    assert_eq!(seen.path, "/v1/embeddings");
    // Only the alias is resolved.
    assert_eq!(
        seen.body,
        with_model(request.clone(), "text-embedding-ada-002")
    );

    let mut request = request;
    request["encoding_format"] = json!("base64");
    let r = post_to(addr, "/v1/embeddings", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // vLLM encodes base64 itself: its reply is the client's, untouched.
    assert_eq!(r.text(), fixture("embeddings/openai_base64_reply.json"));
    let seen = up.take_one();
    assert_eq!(seen.body["encoding_format"], "base64");
    assert_eq!(seen.body, with_model(request, "text-embedding-ada-002"));
}

#[tokio::test]
async fn generic_backend_gets_floats_and_the_router_encodes_base64() {
    // Floats a float32 cannot all hold exactly, a subnormal, the largest finite f32, zero.
    let odd = json!([0.1, -0.2, 1.0e-45, 3.4028235e38, 0.0, 0.333333333333, -7.5]);
    let odd_reply = json!({"object": "list", "model": "odd-embed",
        "data": [{"object": "embedding", "index": 0, "embedding": odd.clone()}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}});
    let reply_text = odd_reply.to_string();
    let over: Override = Arc::new(move |path, body| {
        (path == "/v1/embeddings" && body["model"] == "odd-embed")
            .then(|| (200, reply_text.clone()))
    });
    let up = Upstream::start_with(Some(over)).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: g, type: generic, url: \"{}\", models: [text-embedding-ada-002, odd-embed]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let request = json!({"model": "text-embedding-ada-002", "input": ["a", "b"],
        "encoding_format": "base64", "dimensions": 3, "user": "u-7"});
    let r = post_to(addr, "/v1/embeddings", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let seen = up.take_one();
    assert_eq!(seen.path, "/v1/embeddings");
    // The backend is asked for floats: encoding_format is gone, every other field kept.
    assert_eq!(
        seen.body,
        json!({"model": "text-embedding-ada-002", "input": ["a", "b"], "dimensions": 3, "user": "u-7"})
    );
    let got = r.json();
    let sent = fixture_json("embeddings/openai_float_reply.json");
    for i in 0..2 {
        assert_eq!(
            decode_f32(got["data"][i]["embedding"].as_str().unwrap()),
            as_f32(&sent["data"][i]["embedding"]),
            "embedding {i}: {got}"
        );
    }
    // Exactly what OpenAI would have sent (the fixture's base64 was made independently).
    assert_eq!(got, fixture_json("embeddings/openai_base64_reply.json"));

    let r = post_to(
        addr,
        "/v1/embeddings",
        json!({"model": "odd-embed", "input": "x", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = r.json();
    let floats = decode_f32(got["data"][0]["embedding"].as_str().unwrap());
    assert_eq!(floats, as_f32(&odd));
    assert_eq!(floats.len(), 7);
    assert_eq!(floats[2].to_bits(), 1, "the smallest subnormal");
    assert_eq!(floats[3], f32::MAX);
    assert_eq!(got["usage"], odd_reply["usage"]);
    assert_eq!(got["model"], "odd-embed");
    assert_eq!(got["data"][0]["index"], 0);
    assert_eq!(
        up.take_one().body,
        json!({"model": "odd-embed", "input": "x"})
    );

    // Floats asked for: passed through as they are.
    let request =
        json!({"model": "text-embedding-ada-002", "input": ["a", "b"], "encoding_format": "float"});
    let r = post_to(addr, "/v1/embeddings", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), fixture("embeddings/openai_float_reply.json"));
    assert_eq!(up.take_one().body, request);
}

#[tokio::test]
async fn generic_float_reply_that_does_not_fit_f32_is_a_bad_gateway_for_base64() {
    let over: Override = Arc::new(|_, _| {
        Some((
            200,
            r#"{"object":"list","model":"m","data":[{"object":"embedding","index":0,"embedding":[0.5,1e39]}],"usage":{"prompt_tokens":1,"total_tokens":1}}"#.into(),
        ))
    });
    let up = Upstream::start_with(Some(over)).await;
    let router = start_router(&format!(
        "retry: {{max_attempts: 1}}\nbackends:\n  - {{name: g, type: generic, url: \"{}\", models: [m]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = post_to(
        addr,
        "/v1/embeddings",
        json!({"model": "m", "input": "x", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text());
    assert!(
        error_message(&r).contains("data[0].embedding must be an array of numbers"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn gemini_embeddings_are_translated_both_ways() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: gem, type: gemini, url: \"{}\", api_key: gk-test-123, models: [gemini-embedding-001]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let request = fixture("embeddings/openai_batch_request.json");
    let r = post_to(addr, "/v1/embeddings", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "gem");
    assert_eq!(r.json(), fixture_json("embeddings/openai_from_gemini.json"));
    // Gemini's number text, digit for digit.
    assert!(
        r.text()
            .contains("[0.0040157186,-0.011254091,0.022301596,-0.0026489256]"),
        "{}",
        r.text()
    );
    let seen = up.take_one();
    assert_eq!(
        seen.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        seen.body,
        fixture_json("embeddings/gemini_batch_request.json")
    );
    // requests[].model is "models/<m>", outputDimensionality comes from dimensions.
    for item in seen.body["requests"].as_array().unwrap() {
        assert_eq!(item["model"], "models/gemini-embedding-001");
        assert_eq!(item["outputDimensionality"], 768);
    }
    assert_eq!(seen.headers["x-goog-api-key"], "gk-test-123");
    assert!(seen.headers.get("authorization").is_none());

    // base64: the router encodes Gemini's floats.
    let r = post_to(
        addr,
        "/v1/embeddings",
        json!({"model": "gemini-embedding-001", "input": ["What is the meaning of life?", "What is the purpose of existence?"], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let seen = up.take_one();
    assert_eq!(
        seen.body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is the meaning of life?"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is the purpose of existence?"}]}}
        ]})
    );
    let got = r.json();
    let gemini = fixture_json("embeddings/gemini_batch_reply.json");
    assert_eq!(got["data"].as_array().unwrap().len(), 2);
    for i in 0..2 {
        assert_eq!(got["data"][i]["index"], i);
        assert_eq!(got["data"][i]["object"], "embedding");
        assert_eq!(
            decode_f32(got["data"][i]["embedding"].as_str().unwrap()),
            as_f32(&gemini["embeddings"][i]["values"]),
            "embedding {i}"
        );
    }
    assert_eq!(got["model"], "gemini-embedding-001");
    assert_eq!(got["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));

    // One string is one request.
    let r = post_to(
        addr,
        "/v1/embeddings",
        json!({"model": "gemini-embedding-001", "input": "How do I bake a cake?", "dimensions": 4}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        up.take_one().body,
        json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "How do I bake a cake?"}]}, "outputDimensionality": 4}]})
    );
    assert_eq!(
        r.json()["data"],
        json!([{"object": "embedding", "index": 0, "embedding": [0.013168523, -0.008711934, -0.046782676, 0.0006995056]}])
    );

    // Token ids cannot be embedded by Gemini: a 400 before the backend is called.
    let r = post_to(
        addr,
        "/v1/embeddings",
        json!({"model": "gemini-embedding-001", "input": [[101, 2054]]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        error_message(&r),
        "input[0] is a list of token ids; Gemini backends take text only"
    );
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn ollama_embeddings_are_translated_both_ways() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: o, type: ollama, url: \"{}\", models: [all-minilm]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let r = post_to(
        addr,
        "/v1/embeddings",
        fixture("embeddings/openai_ollama_request.json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "o");
    // Usage comes from prompt_eval_count (16).
    assert_eq!(r.json(), fixture_json("embeddings/openai_from_ollama.json"));
    let seen = up.take_one();
    assert_eq!(seen.path, "/api/embed");
    assert_eq!(
        seen.body,
        fixture_json("embeddings/ollama_embed_request.json")
    );

    // A single string stays a string; dimensions and Ollama's truncate are passed.
    let r = post_to(
        addr,
        "/v1/embeddings",
        json!({"model": "all-minilm", "input": "Why is the sky blue?", "dimensions": 6, "truncate": false, "user": "u"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        up.take_one().body,
        json!({"model": "all-minilm", "input": "Why is the sky blue?", "dimensions": 6, "truncate": false})
    );

    // base64: the router encodes Ollama's floats, usage still from prompt_eval_count.
    let r = post_to(
        addr,
        "/v1/embeddings",
        json!({"model": "all-minilm", "input": ["Why is the sky blue?", "Why is the grass green?"], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        up.take_one().body,
        fixture_json("embeddings/ollama_embed_request.json")
    );
    let got = r.json();
    let ollama = fixture_json("embeddings/ollama_embed_reply.json");
    for i in 0..2 {
        assert_eq!(
            decode_f32(got["data"][i]["embedding"].as_str().unwrap()),
            as_f32(&ollama["embeddings"][i]),
            "embedding {i}"
        );
        assert_eq!(got["data"][i]["index"], i);
    }
    assert_eq!(
        got["usage"],
        json!({"prompt_tokens": 16, "total_tokens": 16})
    );
    assert_eq!(got["model"], "all-minilm");
    assert_eq!(got["object"], "list");
}

// ---------------------------------------------------------------------------------------
// Reranking

#[tokio::test]
async fn rerank_on_vllm_is_sorted_cut_and_given_documents_as_asked() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"{0}\", models: [BAAI/bge-reranker-base, rr-objects]}}\n  - {{name: l, type: llamacpp, url: \"{0}\", models: [bge-reranker-v2-m3-GGUF]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    // vLLM's documented reply carries documents the client did not ask for: removed.
    let request = fixture_json("rerank/vllm_request.json");
    let r = post_to(addr, "/v1/rerank", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "v");
    assert_eq!(r.json(), fixture_json("rerank/vllm_normalised.json"));
    let seen = up.take_one();
    assert_eq!(seen.path, "/v1/rerank");
    assert_eq!(seen.body, request);

    // return_documents and top_n: the request's own document, the best result only.
    let mut request = fixture_json("rerank/vllm_request.json");
    request["return_documents"] = json!(true);
    request["top_n"] = json!(1);
    let r = post_to(addr, "/v1/rerank", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": "rerank-fae51b2b664d4ed38f5969b612edff77", "model": "BAAI/bge-reranker-base",
            "usage": {"total_tokens": 56},
            "results": [{"index": 1, "relevance_score": 0.99853515625,
                "document": {"text": "The capital of France is Paris."}}]})
    );
    assert_eq!(up.take_one().body, request);

    // return_documents absent (Cohere's default: none).
    let mut request = fixture_json("rerank/vllm_request.json");
    request.as_object_mut().unwrap().remove("return_documents");
    let r = post_to(addr, "/v1/rerank", &request).await;
    assert_eq!(r.json(), fixture_json("rerank/vllm_normalised.json"));
    up.clear();

    // llama.cpp answers in document order with raw scores and no id: sorted, cut, given an id.
    let r = post_to(addr, "/v1/rerank", fixture("rerank/llamacpp_request.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "l");
    assert_eq!(
        without_generated_id(r.json()),
        fixture_json("rerank/llamacpp_normalised.json")
    );
    assert_eq!(
        up.take_one().body,
        fixture_json("rerank/llamacpp_request.json")
    );

    // Object documents come back as sent, with their original indices.
    let request = json!({"model": "rr-objects", "query": "beta gamma delta", "return_documents": true,
        "documents": [{"text": "alpha", "id": "a1"}, "beta gamma", {"text": "gamma delta beta", "title": "t3"}, "delta"]});
    let r = post_to(addr, "/v1/rerank", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = without_generated_id(r.json());
    assert_eq!(
        got,
        json!({"model": "rr-objects", "object": "list", "results": [
            {"index": 2, "relevance_score": 3, "document": {"text": "gamma delta beta", "title": "t3"}},
            {"index": 1, "relevance_score": 2, "document": {"text": "beta gamma"}},
            {"index": 3, "relevance_score": 1, "document": {"text": "delta"}},
            {"index": 0, "relevance_score": 0, "document": {"text": "alpha", "id": "a1"}}
        ]})
    );
    assert_eq!(up.take_one().body, request);
}

#[tokio::test]
async fn rerank_on_tei_is_translated_to_query_and_texts() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: t, type: tei, url: \"{}\", models: [rerank-v4.0-pro, bge-reranker-large]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let request = fixture_json("rerank/cohere_v2_request.json");
    let docs = request["documents"].clone();
    let r = post_to(addr, "/v1/rerank", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "t");
    assert_eq!(
        without_generated_id(r.json()),
        fixture_json("rerank/tei_normalised.json")
    );
    let seen = up.take_one();
    assert_eq!(seen.path, "/rerank");
    assert_eq!(seen.body, fixture_json("rerank/tei_request.json"));

    // Every result, sorted, with the original indices and the request's documents.
    let mut all = request.clone();
    all.as_object_mut().unwrap().remove("top_n");
    all["return_documents"] = json!(true);
    let r = post_to(addr, "/v1/rerank", &all).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let doc = |i: usize| json!({"text": docs[i]});
    assert_eq!(
        without_generated_id(r.json()),
        json!({"model": "rerank-v4.0-pro", "results": [
            {"index": 3, "relevance_score": 0.999071, "document": doc(3)},
            {"index": 4, "relevance_score": 0.7867867, "document": doc(4)},
            {"index": 0, "relevance_score": 0.32713068, "document": doc(0)},
            {"index": 1, "relevance_score": 0.1867867, "document": doc(1)},
            {"index": 2, "relevance_score": 0.0013512, "document": doc(2)}
        ]})
    );
    assert_eq!(up.take_one().body, fixture_json("rerank/tei_request.json"));

    // return_documents false, top_n 2.
    let mut two = request.clone();
    two["top_n"] = json!(2);
    two["return_documents"] = json!(false);
    let r = post_to(addr, "/v1/rerank", &two).await;
    assert_eq!(
        without_generated_id(r.json()),
        json!({"model": "rerank-v4.0-pro", "results": [
            {"index": 3, "relevance_score": 0.999071},
            {"index": 4, "relevance_score": 0.7867867}
        ]})
    );
    up.clear();

    // Object documents: their text is ranked, the objects come back as sent.
    let request = json!({"model": "bge-reranker-large", "query": "beta gamma", "return_documents": true,
        "documents": [{"text": "alpha", "id": 1}, {"text": "gamma beta", "id": 2}, "beta"]});
    let r = post_to(addr, "/rerank", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        without_generated_id(r.json()),
        json!({"model": "bge-reranker-large", "results": [
            {"index": 1, "relevance_score": 2, "document": {"text": "gamma beta", "id": 2}},
            {"index": 2, "relevance_score": 1, "document": {"text": "beta"}},
            {"index": 0, "relevance_score": 0, "document": {"text": "alpha", "id": 1}}
        ]})
    );
    assert_eq!(
        up.take_one().body,
        json!({"query": "beta gamma", "texts": ["alpha", "gamma beta", "beta"], "return_text": false, "truncate": true})
    );

    // A document TEI cannot rank (no text) is a 400; TEI never sees the request.
    let r = post_to(
        addr,
        "/v1/rerank",
        json!({"model": "bge-reranker-large", "query": "q", "documents": ["a", {"image": "https://example.com/x.png"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        error_message(&r),
        "documents[1] has no text field; text-embeddings-inference ranks text only"
    );
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn tei_rerank_errors_reach_the_client_in_openai_shape() {
    let over: Override = Arc::new(|path, _| {
        (path == "/rerank").then(|| {
            (
                422,
                r#"{"error":"Input validation error: `texts` cannot be empty","error_type":"validation"}"#.into(),
            )
        })
    });
    let up = Upstream::start_with(Some(over)).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: t, type: tei, url: \"{}\", models: [r]}}\n",
        up.url()
    ))
    .await;
    let r = post_to(
        router.tcp_addr().unwrap(),
        "/v1/rerank",
        json!({"model": "r", "query": "q", "documents": ["a"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["error"]["message"],
        "Input validation error: `texts` cannot be empty"
    );
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(up.hits("/rerank"), 1, "a 4xx is not retried");
}

#[tokio::test]
async fn rerank_alias_is_the_same_operation_and_counts_as_v1_rerank() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"{}\", models: [BAAI/bge-reranker-base]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let request = fixture_json("rerank/vllm_request.json");
    for path in ["/rerank", "/v1/rerank", "/rerank"] {
        let r = post_to(addr, path, &request).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        assert_eq!(r.header("x-continuum-backend"), "v");
        assert_eq!(
            r.json(),
            fixture_json("rerank/vllm_normalised.json"),
            "{path}"
        );
        let seen = up.take_one();
        assert_eq!(seen.path, "/v1/rerank", "{path}");
        assert_eq!(seen.body, request, "{path}");
    }
    // A refusal on the alias names the canonical endpoint.
    let r = post_to(
        addr,
        "/rerank",
        json!({"model": "BAAI/bge-reranker-base", "query": "q"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let text = get_path(addr, "/metrics").await.text();
    let s = scrape(&text);
    let ok = [
        ("endpoint", "/v1/rerank"),
        ("model", "BAAI/bge-reranker-base"),
        ("backend", "v"),
        ("status", "200"),
    ];
    assert_eq!(
        metric(&s, "continuum_requests_total", &ok),
        Some(3.0),
        "{text}"
    );
    assert!(
        !text.contains("endpoint=\"/rerank\""),
        "the alias has no label of its own: {text}"
    );
}

// ---------------------------------------------------------------------------------------
// Sparse embeddings

const SPLADE: &str = "naver/efficient-splade-VI-BT-large-query";

#[tokio::test]
async fn sparse_embeddings_on_tei_in_both_shapes() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: t, type: tei, url: \"{}\", models: [{SPLADE}]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    // The router's envelope: translated to TEI's shape and back.
    let r = post_to(
        addr,
        "/v1/sparse-embeddings",
        fixture("sparse/envelope_request.json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "t");
    assert_eq!(r.json(), fixture_json("sparse/envelope_reply.json"));
    assert!(
        r.text().contains("10.9970703"),
        "TEI's number text: {}",
        r.text()
    );
    let seen = up.take_one();
    assert_eq!(seen.path, "/embed_sparse");
    assert_eq!(seen.body, fixture_json("sparse/tei_request.json"));

    // TEI's own shape, no model in the body: the one sparse model serves it, untouched.
    let r = post_to(addr, "/embed_sparse", fixture("sparse/tei_request.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "t");
    assert_eq!(r.header("x-continuum-model"), SPLADE);
    assert_eq!(r.json(), fixture_json("sparse/tei_reply.json"));
    let seen = up.take_one();
    assert_eq!(seen.path, "/embed_sparse");
    assert_eq!(seen.body, fixture_json("sparse/tei_request.json"));

    // TEI's errors reach envelope clients in OpenAI's shape.
    let r = post_to(
        addr,
        "/v1/sparse-embeddings",
        json!({"model": SPLADE, "input": "something else"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        error_message(&r),
        "the test upstream knows only the fixture's inputs"
    );
    assert_eq!(up.take_one().body, json!({"inputs": "something else"}));
}

#[tokio::test]
async fn embed_sparse_without_a_model_needs_exactly_one_sparse_model() {
    // Two sparse models: the client must name one.
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: t, type: tei, url: \"{0}\", models: [{SPLADE}, splade-v3]}}\n  - {{name: v, type: vllm, url: \"{0}\", models: [chat-model]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = post_to(addr, "/embed_sparse", fixture("sparse/tei_request.json")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        error_message(&r),
        format!("several models serve /embed_sparse ({SPLADE}, splade-v3): name one with a 'model' field")
    );
    // Named, it is routed.
    let mut named = fixture_json("sparse/tei_request.json");
    named["model"] = json!(SPLADE);
    let r = post_to(addr, "/embed_sparse", &named).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), fixture_json("sparse/tei_reply.json"));
    let seen = up.take_one();
    assert_eq!(seen.path, "/embed_sparse");
    assert_eq!(seen.body["inputs"], named["inputs"]);

    // No sparse model at all.
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"{}\", models: [chat-model]}}\n",
        up.url()
    ))
    .await;
    let r = post_to(
        router.tcp_addr().unwrap(),
        "/embed_sparse",
        fixture("sparse/tei_request.json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        error_message(&r),
        "no backend serves /embed_sparse (a backend of type tei does)"
    );
    assert!(up.seen().is_empty());
}

// ---------------------------------------------------------------------------------------
// Refusals, scopes, retries, metrics

#[tokio::test]
async fn bad_input_is_refused_before_any_backend_is_called() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"{0}\", models: [r, e]}}\n  - {{name: t, type: tei, url: \"{0}\", models: [s]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let cases: &[(&str, Value, &str)] = &[
        (
            "/v1/rerank",
            json!({"model": "r", "documents": ["a"]}),
            "query must be a non-empty string",
        ),
        (
            "/v1/rerank",
            json!({"model": "r", "query": "", "documents": ["a"]}),
            "query must be a non-empty string",
        ),
        (
            "/rerank",
            json!({"model": "r", "query": "q", "documents": "a"}),
            "documents must be a non-empty array",
        ),
        (
            "/v1/rerank",
            json!({"model": "r", "query": "q", "documents": []}),
            "documents must be a non-empty array",
        ),
        (
            "/v1/rerank",
            json!({"model": "r", "query": "q", "documents": ["a", 3]}),
            "documents[1] must be a string or an object",
        ),
        (
            "/v1/rerank",
            json!({"model": "r", "query": "q", "documents": ["a"], "top_n": 0}),
            "top_n must be an integer of at least 1",
        ),
        (
            "/v1/rerank",
            json!({"model": "r", "query": "q", "documents": ["a"], "return_documents": "yes"}),
            "return_documents must be a boolean",
        ),
        (
            "/v1/embeddings",
            json!({"model": "e", "input": "x", "encoding_format": "int8"}),
            "encoding_format must be \"float\" or \"base64\"",
        ),
        (
            "/v1/embeddings",
            json!({"model": "e", "input": "x", "dimensions": 0}),
            "dimensions must be a positive integer",
        ),
        (
            "/v1/sparse-embeddings",
            json!({"model": "s"}),
            "input is required",
        ),
        (
            "/v1/sparse-embeddings",
            json!({"model": "s", "input": ["a", ""]}),
            "input[1] must not be an empty string",
        ),
        (
            "/embed_sparse",
            json!({"inputs": ["a", ""]}),
            "inputs[1] must not be an empty string",
        ),
        (
            "/embed_sparse",
            json!({"inputs": "a", "truncation_direction": "up"}),
            "truncation_direction must be \"left\" or \"right\"",
        ),
    ];
    for (path, body, message) in cases {
        let r = post_to(addr, path, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            r.text()
        );
        let v = r.json();
        assert_eq!(v["error"]["message"], *message, "{path} {body}: {v}");
        assert_eq!(
            v["error"]["type"], "invalid_request_error",
            "{path} {body}: {v}"
        );
    }
    assert!(up.seen().is_empty(), "{:?}", up.seen());
}

/// OpenAI's error shape names the parameter at fault in `param`.
#[tokio::test]
async fn bad_input_names_the_param_at_fault() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"{}\", models: [r, e]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let cases: &[(&str, Value, &str)] = &[
        (
            "/v1/rerank",
            json!({"model": "r", "query": "q", "documents": "a"}),
            "documents",
        ),
        (
            "/v1/embeddings",
            json!({"model": "e", "input": "x", "encoding_format": "int8"}),
            "encoding_format",
        ),
        (
            "/v1/rerank",
            json!({"model": "r", "documents": ["a"]}),
            "query",
        ),
        (
            "/v1/rerank",
            json!({"model": "r", "query": "q", "documents": ["a"], "top_n": 0}),
            "top_n",
        ),
        (
            "/v1/embeddings",
            json!({"model": "e", "input": "x", "dimensions": 0}),
            "dimensions",
        ),
    ];
    let mut wrong = Vec::new();
    for (path, body, param) in cases {
        let r = post_to(addr, path, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            r.text()
        );
        let v = r.json();
        if v["error"]["param"] != *param {
            wrong.push(format!(
                "{path} {body}: param {} (expected \"{param}\") for \"{}\"",
                v["error"]["param"], v["error"]["message"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn a_backend_type_without_the_operation_is_refused_by_name() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: m, type: mock, models: [mock-only, shared], mock: {{first_token_latency: 0ms}}}}\n  - {{name: gem, type: gemini, url: \"{0}\", api_key: k, models: [gemini-only]}}\n  - {{name: v, type: vllm, url: \"{0}\", models: [shared]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let rerank = |model: &str| json!({"model": model, "query": "q", "documents": ["a", "b"]});
    let cases = [
        (
            "/v1/rerank",
            rerank("mock-only"),
            "backend 'm' (type mock) does not serve /v1/rerank",
        ),
        (
            "/rerank",
            rerank("mock-only"),
            "backend 'm' (type mock) does not serve /v1/rerank",
        ),
        (
            "/v1/rerank",
            rerank("gemini-only"),
            "backend 'gem' (type gemini) does not serve /v1/rerank",
        ),
        (
            "/v1/embeddings",
            json!({"model": "mock-only", "input": "x"}),
            "backend 'm' (type mock) does not serve /v1/embeddings",
        ),
        (
            "/v1/sparse-embeddings",
            json!({"model": "gemini-only", "input": "x"}),
            "backend 'gem' (type gemini) does not serve /v1/sparse-embeddings",
        ),
        (
            "/embed_sparse",
            json!({"model": "mock-only", "inputs": "x"}),
            "backend 'm' (type mock) does not serve /embed_sparse",
        ),
    ];
    for (path, body, message) in cases {
        let r = post_to(addr, path, &body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            r.text()
        );
        let v = r.json();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(message),
            "{path} {body}: {v}"
        );
        assert_eq!(v["error"]["param"], "model", "{v}");
    }
    assert!(up.seen().is_empty(), "{:?}", up.seen());

    // A model served by both kinds: the rerank always reaches the backend that ranks.
    for _ in 0..4 {
        let r = post_to(addr, "/v1/rerank", rerank("shared")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("x-continuum-backend"), "v");
    }
    assert_eq!(up.hits("/v1/rerank"), 4);
}

#[tokio::test]
async fn rerank_and_sparse_need_the_write_or_embeddings_scope() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-chat, id: chat-only, scopes: [chat]}}\n    - {{key: sk-read, id: reader, scopes: [read]}}\n    - {{key: sk-emb, id: emb, scopes: [embeddings]}}\n    - {{key: sk-write, id: writer, scopes: [write]}}\n    - {{key: sk-splade, id: splade-only, scopes: [embeddings], allowed_models: [\"naver/*\"]}}\nbackends:\n  - {{name: v, type: vllm, url: \"{0}\", models: [BAAI/bge-reranker-base]}}\n  - {{name: t, type: tei, url: \"{0}\", models: [{SPLADE}]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let rerank = fixture("rerank/vllm_request.json");
    let sparse = fixture("sparse/envelope_request.json");
    let tei = fixture("sparse/tei_request.json");
    let cases = [
        ("/v1/rerank", &rerank, "sk-chat", 403),
        ("/rerank", &rerank, "sk-chat", 403),
        ("/v1/rerank", &rerank, "sk-read", 403),
        ("/v1/sparse-embeddings", &sparse, "sk-chat", 403),
        ("/embed_sparse", &tei, "sk-chat", 403),
        ("/v1/rerank", &rerank, "sk-emb", 200),
        ("/rerank", &rerank, "sk-write", 200),
        ("/v1/sparse-embeddings", &sparse, "sk-emb", 200),
        ("/embed_sparse", &tei, "sk-write", 200),
        // allowed_models applies to the model the router picked for a TEI body, too.
        ("/embed_sparse", &tei, "sk-splade", 200),
        ("/v1/rerank", &rerank, "sk-splade", 403),
        ("/v1/rerank", &rerank, "sk-nope", 401),
    ];
    for (path, body, key, status) in cases {
        let r = post_as(addr, path, key, body).await;
        assert_eq!(r.status.as_u16(), status, "{path} with {key}: {}", r.text());
        if status == 403 && key != "sk-splade" {
            let id = match key {
                "sk-chat" => "chat-only",
                _ => "reader",
            };
            assert_eq!(
                error_message(&r),
                format!("API key '{id}' lacks the 'write' or 'embeddings' scope")
            );
        }
    }
    let r = post_as(addr, "/v1/rerank", "sk-splade", &rerank).await;
    assert_eq!(
        error_message(&r),
        "API key 'splade-only' may not use the model 'BAAI/bge-reranker-base' (allowed_models)"
    );
    assert_eq!(up.hits("/v1/rerank"), 2);
    assert_eq!(up.hits("/embed_sparse"), 3);
    assert_eq!(up.seen().len(), 5);
}

/// A TEI reranker that is overloaded (503) on `/rerank` and fine otherwise.
fn overloaded_tei() -> Override {
    Arc::new(|path, _| {
        (path == "/rerank").then(|| {
            (
                503,
                r#"{"error":"Model is overloaded","error_type":"overloaded"}"#.into(),
            )
        })
    })
}

#[tokio::test]
async fn a_503_from_the_first_reranker_is_retried_on_the_second() {
    let bad = Upstream::start_with(Some(overloaded_tei())).await;
    let good = Upstream::start().await;
    let router = start_router(&format!(
        "retry: {{initial_delay: 1ms, max_delay: 5ms}}\nbackends:\n  - {{name: busy, type: tei, url: \"{}\", models: [rerank-v4.0-pro]}}\n  - {{name: spare, type: vllm, url: \"{}\", models: [rerank-v4.0-pro]}}\n",
        bad.url(),
        good.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let request = fixture_json("rerank/cohere_v2_request.json");
    for i in 0..4 {
        let r = post_to(addr, "/v1/rerank", &request).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.text());
        assert_eq!(r.header("x-continuum-backend"), "spare", "request {i}");
        assert_eq!(
            r.json(),
            with_model(
                fixture_json("rerank/cohere_v2_normalised.json"),
                "rerank-v4.0-pro"
            )
        );
    }
    // Round robin tried the busy TEI first at least once; each attempt in its own wire.
    assert!(bad.hits("/rerank") >= 1, "{:?}", bad.seen());
    for s in bad.seen() {
        assert_eq!(s.path, "/rerank");
        assert_eq!(s.body, fixture_json("rerank/tei_request.json"));
    }
    assert_eq!(good.hits("/v1/rerank"), 4);
    for s in good.seen() {
        assert_eq!(s.body, request);
    }
    let text = get_path(addr, "/metrics").await.text();
    let s = scrape(&text);
    let retries = metric(&s, "continuum_retries_total", &[]).unwrap_or(0.0);
    assert_eq!(retries, bad.hits("/rerank") as f64, "{text}");
}

#[tokio::test]
async fn a_failing_rerank_model_falls_back_to_the_next_in_its_chain() {
    let bad = Upstream::start_with(Some(overloaded_tei())).await;
    let good = Upstream::start().await;
    let router = start_router(&format!(
        "retry: {{max_attempts: 2, initial_delay: 1ms, max_delay: 5ms}}\nfallback:\n  fallback_chains:\n    primary-rr: [second-rr]\nbackends:\n  - {{name: busy, type: tei, url: \"{}\", models: [primary-rr]}}\n  - {{name: spare, type: vllm, url: \"{}\", models: [second-rr]}}\n",
        bad.url(),
        good.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let request = with_model(fixture_json("rerank/vllm_request.json"), "primary-rr");
    let r = post_to(addr, "/v1/rerank", &request).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "spare");
    assert_eq!(r.header("x-continuum-model"), "second-rr");
    assert_eq!(r.json(), fixture_json("rerank/vllm_normalised.json"));
    assert_eq!(bad.hits("/rerank"), 2, "both attempts on the primary");
    assert_eq!(
        good.take_one().body,
        with_model(request.clone(), "second-rr")
    );

    // Without a fallback the client sees the overload, in OpenAI's shape.
    let bad = Upstream::start_with(Some(overloaded_tei())).await;
    let router = start_router(&format!(
        "retry: {{max_attempts: 1}}\nbackends:\n  - {{name: busy, type: tei, url: \"{}\", models: [r]}}\n",
        bad.url()
    ))
    .await;
    let r = post_to(
        router.tcp_addr().unwrap(),
        "/v1/rerank",
        json!({"model": "r", "query": "q", "documents": ["a"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["message"], "Model is overloaded");
    assert_eq!(v["error"]["code"], "overloaded");
    assert_eq!(bad.hits("/rerank"), 1);
}

#[tokio::test]
async fn metrics_count_each_operation_under_its_endpoint() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"{0}\", models: [BAAI/bge-reranker-base]}}\n  - {{name: t, type: tei, url: \"{0}\", models: [{SPLADE}]}}\n  - {{name: o, type: ollama, url: \"{0}\", models: [all-minilm]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    for _ in 0..2 {
        let r = post_to(addr, "/v1/rerank", fixture("rerank/vllm_request.json")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = post_to(
        addr,
        "/v1/rerank",
        json!({"model": "BAAI/bge-reranker-base", "query": "q", "documents": 5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post_to(
        addr,
        "/v1/embeddings",
        fixture("embeddings/openai_ollama_request.json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = post_to(
        addr,
        "/v1/sparse-embeddings",
        fixture("sparse/envelope_request.json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = post_to(addr, "/embed_sparse", fixture("sparse/tei_request.json")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let m = get_path(addr, "/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    let text = m.text();
    assert!(
        text.contains("continuum_requests_total{endpoint=\"/v1/rerank\",model=\"BAAI/bge-reranker-base\",backend=\"v\",status=\"200\"} 2"),
        "{text}"
    );
    let s = scrape(&text);
    let count = |labels: &[(&str, &str)]| metric(&s, "continuum_requests_total", labels);
    assert_eq!(
        count(&[("endpoint", "/v1/rerank"), ("status", "400")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(&[
            ("endpoint", "/v1/embeddings"),
            ("model", "all-minilm"),
            ("backend", "o"),
            ("status", "200")
        ]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(&[
            ("endpoint", "/v1/sparse-embeddings"),
            ("model", SPLADE),
            ("backend", "t"),
            ("status", "200")
        ]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(&[
            ("endpoint", "/embed_sparse"),
            ("model", SPLADE),
            ("backend", "t"),
            ("status", "200")
        ]),
        Some(1.0),
        "{text}"
    );
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text")
}

/// The value of the sample `name` whose labels include `labels`.
fn metric(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    use prometheus_parse::Value as V;
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            V::Counter(n) | V::Gauge(n) | V::Untyped(n) => n,
            ref other => panic!("{name} is not a number: {other:?}"),
        })
}

#[tokio::test]
async fn a_reranker_over_its_own_rate_limit_is_a_429_and_is_not_called() {
    let up = Upstream::start().await;
    let router = start_router(&format!(
        "rate_limiting:\n  limits:\n    per_backend: {{requests_per_second: 0.01, burst_capacity: 1}}\nbackends:\n  - {{name: t, type: tei, url: \"{}\", models: [{SPLADE}]}}\n",
        up.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let rerank = json!({"model": SPLADE, "query": "beta", "documents": ["alpha", "beta"]});
    let r = post_to(addr, "/v1/rerank", &rerank).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (path, body) in [
        ("/v1/rerank", rerank.clone()),
        ("/embed_sparse", fixture_json("sparse/tei_request.json")),
    ] {
        let r = post_to(addr, path, &body).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{path}: {}",
            r.text()
        );
        assert_eq!(r.json()["error"]["type"], "rate_limit_error", "{path}");
        assert!(
            error_message(&r).contains("backend 't'"),
            "{path}: {}",
            r.text()
        );
    }
    assert_eq!(up.seen().len(), 1, "{:?}", up.seen());
}
