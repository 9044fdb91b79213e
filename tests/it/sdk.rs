//! The official `openai` and `anthropic` Python SDKs (installed by `scripts/test`) against the router.

use std::process::Command;

use crate::common::*;

const MOCK: &str = "backends:\n  - {name: demo, type: mock, models: [mock-model], model_aliases: {mock: mock-model}, mock: {first_token_latency: 1ms, tokens_per_second: 0}}\n";

/// Runs `tests/sdk/<script>` with `args` (needs the SDK `package`); returns its stdout.
async fn run_sdk_script(package: &str, script: &str, args: Vec<String>) -> String {
    let python = python_with(package);
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let out =
        tokio::task::spawn_blocking(move || Command::new(python).arg(path).args(args).output())
            .await
            .unwrap()
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_talks_to_the_router() {
    let router = start_router(MOCK).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    assert!(run_sdk_script("openai", "openai_smoke.py", vec![url])
        .await
        .contains("openai sdk ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_anthropic_sdk_talks_to_the_router() {
    let router = start_router(MOCK).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    assert!(run_sdk_script("anthropic", "anthropic_smoke.py", vec![url])
        .await
        .contains("anthropic sdk ok"));
}

/// An OpenAI-compatible backend that streams a get_weather call, then the answer.
fn openai_tool_backend() -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|body: bytes::Bytes| async move {
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let last = req["messages"].as_array().unwrap().last().unwrap().clone();
            let events: Vec<String> = if last["role"] == "tool" {
                let text = format!("It is {} in Paris.", last["content"].as_str().unwrap());
                vec![
                    format!(r#"{{"id":"c2","object":"chat.completion.chunk","model":"m","choices":[{{"index":0,"delta":{{"role":"assistant","content":"{text}"}},"finish_reason":null}}]}}"#),
                    r#"{"id":"c2","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#.into(),
                    r#"{"id":"c2","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":6,"total_tokens":36}}"#.into(),
                ]
            } else {
                vec![
                    r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#.into(),
                    r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\":"}}]},"finish_reason":null}]}"#.into(),
                    r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#.into(),
                    r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#.into(),
                ]
            };
            let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            text.push_str("data: [DONE]\n\n");
            ([("content-type", "text/event-stream")], text)
        }),
    )
}

/// An Anthropic-format backend that streams a get_weather tool_use, then the answer.
fn anthropic_tool_backend() -> axum::Router {
    axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(|body: bytes::Bytes| async move {
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let last = req["messages"].as_array().unwrap().last().unwrap().clone();
            let start = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":1}}}

"#;
            let rest = if last["content"][0]["type"] == "tool_result" {
                let answer = format!("It is {} in Paris.", last["content"][0]["content"].as_str().unwrap());
                format!(
                    "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\nevent: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{answer}\"}}}}\n\nevent: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\nevent: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":7}}}}\n\nevent: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
                )
            } else {
                concat!(
                    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Paris\\\"}\"}}\n\n",
                    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
                    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n",
                    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
                )
                .to_string()
            };
            ([("content-type", "text/event-stream")], format!("{start}{rest}"))
        }),
    )
}

async fn run_tool_use(which: &'static str, backend_yaml: String, model: &'static str) {
    let router = start_router(&backend_yaml).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let args = vec![which.to_string(), url, model.to_string()];
    assert!(run_sdk_script(which, "tool_use.py", args)
        .await
        .contains("tool use ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_streams_a_tool_use_conversation_on_an_openai_backend() {
    let up = spawn_upstream(openai_tool_backend()).await;
    run_tool_use("anthropic", format!("backends:\n  - {{name: local, type: vllm, url: \"http://{up}\", models: [qwen3-coder]}}\n"), "qwen3-coder").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_streams_a_tool_use_conversation_on_an_anthropic_backend() {
    let up = spawn_upstream(anthropic_tool_backend()).await;
    run_tool_use("openai", format!("backends:\n  - {{name: claude, type: anthropic, url: \"http://{up}\", api_key: k, models: [claude-x]}}\n"), "claude-x").await;
}

/// `client.embeddings.create` (base64 by default, and floats with `dimensions`) through a
/// generic OpenAI-compatible backend (the router encodes base64) and a Gemini backend
/// (translated), and Cohere-shaped rerank over plain HTTP to a TEI backend, from Python.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_embeds_and_reranks_through_the_router() {
    use crate::operations::{fixture_json, Upstream};
    use serde_json::json;

    let generic = Upstream::start().await;
    let gemini = Upstream::start().await;
    let tei = Upstream::start().await;
    let router = start_router(&format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-emb, id: emb, scopes: [embeddings]}}\nbackends:\n  - {{name: gen, type: generic, url: \"{}\", models: [text-embedding-ada-002]}}\n  - {{name: gem, type: gemini, url: \"{}\", api_key: gk-sdk, models: [gemini-embedding-001]}}\n  - {{name: tei, type: tei, url: \"{}\", models: [rerank-v4.0-pro]}}\n",
        generic.url(),
        gemini.url(),
        tei.url()
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    assert!(
        run_sdk_script("openai", "embeddings_rerank.py", vec![url, "sk-emb".into()])
            .await
            .contains("embeddings and rerank ok")
    );

    // The generic backend was asked for floats both times (the SDK's default base64 is the
    // router's to encode), with dimensions when the client gave them.
    let texts = json!(["The food was delicious", "and the waiter"]);
    let seen: Vec<(String, serde_json::Value)> = generic
        .seen()
        .into_iter()
        .map(|s| (s.path, s.body))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "/v1/embeddings".to_string(),
                json!({"model": "text-embedding-ada-002", "input": texts})
            ),
            (
                "/v1/embeddings".to_string(),
                json!({"model": "text-embedding-ada-002", "input": texts, "dimensions": 3, "encoding_format": "float"})
            ),
        ]
    );

    // Gemini got batchEmbedContents, outputDimensionality only when dimensions was given,
    // and nothing for the refused int8 request.
    let gemini_seen = gemini.seen();
    assert_eq!(gemini_seen.len(), 2, "{gemini_seen:?}");
    let mut without_dims = fixture_json("embeddings/gemini_batch_request.json");
    for r in without_dims["requests"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("outputDimensionality");
    }
    assert_eq!(gemini_seen[0].body, without_dims);
    assert_eq!(
        gemini_seen[1].body,
        fixture_json("embeddings/gemini_batch_request.json")
    );
    for s in &gemini_seen {
        assert_eq!(
            s.path,
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(s.headers["x-goog-api-key"], "gk-sdk");
    }

    // TEI got {query, texts} twice; the bad request never reached it.
    let tei_seen = tei.seen();
    assert_eq!(tei_seen.len(), 2, "{tei_seen:?}");
    for s in &tei_seen {
        assert_eq!(s.path, "/rerank");
        assert_eq!(s.body, fixture_json("rerank/tei_request.json"));
    }
}

/// The chat-shaped conversation a translated upstream of `kind` received (`messages`, or
/// Gemini's `contents`).
fn conversation(kind: &str, body: &serde_json::Value) -> serde_json::Value {
    match kind {
        "gemini" => body["contents"].clone(),
        _ => body["messages"].clone(),
    }
}

/// The conversation of a function-tool round trip, as an upstream of `kind` must receive
/// it: the user's question, the model's `get_weather` call, and the tool's `result`.
fn round_trip(kind: &str, result: &str) -> serde_json::Value {
    use crate::responses::{CALL_ARGS, SIGNATURE};
    use serde_json::json;
    let question = "What's the weather in Paris?";
    match kind {
        // The question comes back from the store as a text part.
        "vllm" => json!([
            {"role": "user", "content": [{"type": "text", "text": question}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_up_1", "type": "function", "function": {"name": "get_weather", "arguments": CALL_ARGS}}]},
            {"role": "tool", "tool_call_id": "call_up_1", "content": result},
        ]),
        "anthropic" => json!([
            {"role": "user", "content": [{"type": "text", "text": question}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_up_1", "name": "get_weather", "input": {"location": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_up_1", "content": result}]},
        ]),
        "gemini" => json!([
            {"role": "user", "parts": [{"text": question}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": SIGNATURE}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": result}}}]},
        ]),
        _ => json!([
            {"role": "user", "content": question},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"location": "Paris"}}}]},
            {"role": "tool", "content": result, "tool_name": "get_weather"},
        ]),
    }
}

/// `tests/sdk/responses.py` (the official `openai` SDK's Responses API: create whole and
/// streamed, the stream helper, function-tool round trips over `previous_response_id`,
/// structured output, retrieve, input items, delete, another user's 404) against the router
/// in front of an upstream of `kind`; then what the upstream received.
async fn run_responses_sdk(kind: &'static str, model: &'static str) {
    use crate::responses::{backend_yaml, store_yaml, Provider};
    use serde_json::json;

    let up = Provider::start(kind).await;
    let router = start_router(&format!(
        "{}api_keys:\n  api_keys:\n    - {{key: sk-alice-0001, id: alice-key, user_id: alice}}\n    - {{key: sk-bob-00002, id: bob-key, user_id: bob}}\nbackends:\n  - {}\n",
        store_yaml("responses-sdk"),
        backend_yaml(kind, &up.url(), model)
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let args = [&url, kind, model, "sk-alice-0001", "sk-bob-00002"]
        .map(str::to_string)
        .to_vec();
    let out = run_sdk_script("openai", "responses.py", args).await;
    assert!(out.contains("responses sdk ok"), "{out}");

    let posted = up.posted();
    assert_eq!(posted.len(), 9, "{posted:#?}");
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
        "required": ["city", "temperature"], "additionalProperties": false});
    let fmt = json!({"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": true}});
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Current weather", "strict": true,
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"], "additionalProperties": false}}]);

    if kind == "openai" {
        // Passed through: the backend got the client's bodies as sent.
        let question = "What's the weather in Paris?";
        let output = |call: &str, out: &str| json!([{"type": "function_call_output", "call_id": call, "output": out}]);
        assert_eq!(
            posted,
            [
                json!({"model": model, "input": "Say hello"}),
                json!({"model": model, "input": "Say hello", "stream": true}),
                json!({"model": model, "input": "Say hello", "stream": true}),
                json!({"model": model, "input": question, "tools": tools}),
                json!({"model": model, "input": output("call_up_4", "15 degrees"), "previous_response_id": "resp_up_4", "tools": tools}),
                json!({"model": model, "input": question, "tools": tools, "stream": true}),
                json!({"model": model, "input": output("call_up_6", "17 degrees"), "previous_response_id": "resp_up_6", "tools": tools, "stream": true}),
                json!({"model": model, "input": "The weather in Paris as JSON", "text": fmt}),
                json!({"model": model, "input": "The weather in Paris as JSON", "text": fmt, "stream": true}),
            ]
        );
        // Reads and the delete reached it; another user's and those after the delete did not.
        let reads: Vec<(String, String)> = up
            .got()
            .into_iter()
            .filter(|g| g.method != http::Method::POST)
            .map(|g| (g.method.to_string(), g.path))
            .collect();
        let expected: Vec<(String, String)> = [
            ("GET", "/v1/responses/resp_up_1"),
            ("GET", "/v1/responses/resp_up_7"),
            ("GET", "/v1/responses/resp_up_1/input_items"),
            ("GET", "/v1/responses/resp_up_5/input_items"),
            ("GET", "/v1/responses/resp_up_1"),
            ("DELETE", "/v1/responses/resp_up_1"),
        ]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
        assert_eq!(reads, expected);
        return;
    }

    assert!(
        up.got().iter().all(|g| g.method == http::Method::POST),
        "{:?}",
        up.got()
    );
    // The whole conversation of each round trip: question, the call, its result.
    assert_eq!(
        conversation(kind, &posted[4]),
        round_trip(kind, "15 degrees"),
        "{kind}: {}",
        posted[4]
    );
    assert_eq!(
        conversation(kind, &posted[6]),
        round_trip(kind, "17 degrees"),
        "{kind}: {}",
        posted[6]
    );
    for (i, body) in posted.iter().enumerate() {
        let offered = !matches!(i, 0..=2 | 7 | 8);
        let function_tools = match kind {
            "gemini" => body["tools"][0]["functionDeclarations"].clone(),
            _ => body["tools"].clone(),
        };
        assert_eq!(
            !function_tools.is_null(),
            offered,
            "{kind} request {i}: {body}"
        );
    }
    // The function tool in each backend's own words.
    let parameters = &tools[0]["parameters"];
    let tool = match kind {
        "vllm" => posted[3]["tools"].clone(),
        "anthropic" => posted[3]["tools"].clone(),
        "gemini" => posted[3]["tools"][0]["functionDeclarations"].clone(),
        _ => posted[3]["tools"].clone(),
    };
    let expected_tool = match kind {
        "vllm" => {
            json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": parameters, "strict": true}}])
        }
        "anthropic" => {
            json!([{"name": "get_weather", "description": "Current weather", "input_schema": parameters}])
        }
        // A strict schema (`additionalProperties: false`) is JSON Schema, not Gemini's
        // OpenAPI subset.
        "gemini" => {
            json!([{"name": "get_weather", "description": "Current weather", "parametersJsonSchema": parameters}])
        }
        _ => {
            json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": parameters, "strict": true}}])
        }
    };
    assert_eq!(tool, expected_tool, "{kind}: {}", posted[3]);
    // Structured output in each backend's own words (Anthropic's: see
    // responses::structured_output_reaches_an_anthropic_backend_as_its_output_format).
    for body in &posted[7..9] {
        match kind {
            "vllm" => assert_eq!(
                body["response_format"],
                json!({"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": true}}),
                "{body}"
            ),
            "gemini" => {
                assert_eq!(
                    body["generationConfig"]["responseMimeType"], "application/json",
                    "{body}"
                );
                assert_eq!(
                    body["generationConfig"]["responseJsonSchema"], schema,
                    "{body}"
                );
            }
            "ollama" => assert_eq!(body["format"], schema, "{body}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_responses_on_a_responses_backend() {
    run_responses_sdk("openai", "gpt-up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_responses_on_an_openai_compatible_chat_backend() {
    run_responses_sdk("vllm", "qwen-up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_responses_on_an_anthropic_backend() {
    run_responses_sdk("anthropic", "claude-up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_responses_on_a_gemini_backend() {
    run_responses_sdk("gemini", "gemini-up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_responses_on_an_ollama_backend() {
    run_responses_sdk("ollama", "llama-up").await;
}

/// The Files API from the official SDK: `client.files.create(file=open(...,'rb'))`, lists
/// (by purpose, by page through `after`, both orders), retrieve, `content().read()` and
/// delete, each value checked in `tests/sdk/files.py`; then the file it kept, seen from here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_manages_files() {
    use http::{Method, StatusCode};

    let dir = temp_dir("sdk-files");
    let storage = dir.join("files");
    let router = start_router(&format!(
        "store: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\"}}\n{MOCK}",
        dir.join("store.redb").display(),
        storage.display()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = run_sdk_script(
        "openai",
        "files.py",
        vec![format!("http://{addr}"), work.display().to_string()],
    )
    .await;
    assert!(out.contains("files sdk ok"), "{out}");
    let kept = out
        .lines()
        .find_map(|l| l.strip_prefix("kept "))
        .unwrap_or_else(|| panic!("no kept id: {out}"))
        .to_string();

    let list = get_path(addr, "/v1/files").await.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept.as_str()]);
    assert_eq!(list["data"][0]["filename"], "batch.jsonl");
    assert_eq!(list["data"][0]["bytes"], 222);
    let content = get_path(addr, &format!("/v1/files/{kept}/content")).await;
    assert_eq!(content.status, StatusCode::OK);
    assert_eq!(content.header("content-type"), "application/jsonl");
    assert_eq!(
        content.body,
        r#"{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{}}
"#
        .repeat(3)
    );
    let on_disk: Vec<String> = std::fs::read_dir(&storage)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, [kept.as_str()], "the deleted file's blob is gone");
    let gone = send(
        Method::DELETE,
        format!("http://{addr}/v1/files/{kept}"),
        bytes::Bytes::new(),
        &[],
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK);
}

/// `tests/sdk/images_files.py images`: `client.images.generate` on a generic upstream (its
/// reply as given) and on a Gemini upstream (translated), `client.images.edit` and
/// `client.images.create_variation` on a LocalAI upstream (multipart passed through with
/// the SDK's boundary); then what each upstream received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_generates_edits_and_varies_images() {
    use crate::images::{form_parts, otter_png, storage_yaml, ImageUpstream};
    use serde_json::json;

    let generic = ImageUpstream::start().await;
    let gemini = ImageUpstream::start().await;
    let localai = ImageUpstream::start().await;
    let router = start_router(&format!(
        "{}api_keys:\n  api_keys:\n    - {{key: sk-painter-001, id: painter, scopes: [images]}}\nbackends:\n  - {{name: gen, type: generic, url: \"{}\", models: [gpt-image-1]}}\n  - {{name: gem, type: gemini, url: \"{}\", api_key: gk-sdk, models: [gemini-2.5-flash-image]}}\n  - {{name: local, type: localai, url: \"{}\", models: [stablediffusion, dall-e-2]}}\n",
        storage_yaml("sdk-images"),
        generic.url(),
        gemini.url(),
        localai.url()
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let out = run_sdk_script(
        "openai",
        "images_files.py",
        vec!["images".into(), url, "sk-painter-001".into()],
    )
    .await;
    assert!(out.contains("images sdk ok"), "{out}");

    // The generic upstream got the SDK's body as sent.
    let got = generic.only();
    assert_eq!(got.path, "/v1/images/generations");
    assert_eq!(
        got.json(),
        json!({"model": "gpt-image-1", "prompt": "A cute baby sea otter", "response_format": "b64_json"})
    );
    // Gemini got generateContent asking for an image: for b64_json, twice for n=2 (one
    // image per request there), then for the hosted url.
    let all = gemini.received();
    assert_eq!(all.len(), 4, "{all:?}");
    let got = all[0].clone();
    assert_eq!(
        got.path,
        "/v1beta/models/gemini-2.5-flash-image:generateContent"
    );
    assert_eq!(got.header("x-goog-api-key"), "gk-sdk");
    assert_eq!(
        got.json(),
        json!({"contents": [{"role": "user", "parts": [{"text": "A cute baby sea otter"}]}],
               "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}})
    );

    // LocalAI got both forms under the SDK's own Content-Type (its boundary).
    let sent_type = |what: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{what} content-type: ")))
            .unwrap_or_else(|| panic!("no {what} content-type in {out}"))
            .to_string()
    };
    let got = localai.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let png = otter_png();

    assert_eq!(got[0].path, "/v1/images/edits");
    let ct = sent_type("edit");
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    assert_eq!(got[0].header("content-type"), ct);
    let parts = form_parts(&ct, &got[0].body);
    let field = |name: &str| {
        parts
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {parts:?}"))
            .clone()
    };
    assert_eq!(field("image").1.as_deref(), Some("otter.png"));
    assert_eq!(field("image").2, png);
    assert_eq!(
        text(&field("prompt").2),
        "A cute baby sea otter wearing a beret"
    );
    assert_eq!(text(&field("model").2), "stablediffusion");

    assert_eq!(got[1].path, "/v1/images/variations");
    let ct = sent_type("variation");
    assert_eq!(got[1].header("content-type"), ct);
    let parts = form_parts(&ct, &got[1].body);
    let names: Vec<&str> = parts.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["image", "model", "n"], "{names:?}");
    for (name, filename, value) in &parts {
        match name.as_str() {
            "image" => {
                assert_eq!(filename.as_deref(), Some("otter.png"));
                assert_eq!(value, &png);
            }
            "model" => assert_eq!(text(value), "dall-e-2"),
            _ => assert_eq!(text(value), "2"),
        }
    }
}

/// `tests/sdk/images_files.py files`: files uploaded with the `openai` SDK and referred to
/// in chat completions (`file` and `image_file` parts) and, from the `anthropic` SDK, in a
/// document block with a file source; another user's id refused. Then what the upstreams
/// received: the file's content in their own terms, never its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_refer_to_uploaded_files_in_chat() {
    use crate::images::{storage_yaml, OTTER};
    use crate::responses::Provider;
    use base64::Engine;
    use serde_json::json;

    let vllm = Provider::start("vllm").await;
    let claude = Provider::start("anthropic").await;
    let router = start_router(&format!(
        "{}api_keys:\n  api_keys:\n    - {{key: sk-alice-0001, id: alice-key, user_id: alice}}\n    - {{key: sk-bob-00002, id: bob-key, user_id: bob}}\nbackends:\n  - {{name: local, type: vllm, url: \"{}\", models: [qwen-up]}}\n  - {{name: claude, type: anthropic, url: \"{}\", api_key: up-key, models: [claude-up]}}\n",
        storage_yaml("sdk-files"),
        vllm.url(),
        claude.url()
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let out = run_sdk_script(
        "anthropic",
        "images_files.py",
        vec![
            "files".into(),
            url,
            "sk-alice-0001".into(),
            "sk-bob-00002".into(),
        ],
    )
    .await;
    assert!(out.contains("files sdk ok"), "{out}");

    let pdf = std::fs::read(format!(
        "{}/tests/fixtures/files/hello.pdf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let pdf64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let text = |t: &str| json!({"type": "text", "text": t});

    // vLLM: the notes as text, the PNG as a data URL, the PDF as its text; bob's request
    // never came.
    let posted = vllm.posted();
    assert_eq!(posted.len(), 3, "{posted:#?}");
    let content: Vec<serde_json::Value> = posted
        .iter()
        .map(|b| b["messages"][0]["content"].clone())
        .collect();
    assert_eq!(
        content[0],
        json!([
            text("notes.txt:\nSea otters hold hands while they sleep so that they do not drift apart.\n"),
            text("Summarise the notes")
        ])
    );
    assert_eq!(
        content[1],
        json!([
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{OTTER}")}},
            text("Describe the picture")
        ])
    );
    assert_eq!(
        content[2],
        json!([
            text("hello.pdf:\nHello PDF"),
            text("What does the PDF say?")
        ])
    );

    // Anthropic: the PDF as a base64 document, from either SDK.
    let posted = claude.posted();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    let document = json!({"type": "document", "title": "hello.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf64}});
    for body in &posted {
        assert_eq!(body["model"], "claude-up");
        assert_eq!(
            body["messages"][0]["content"],
            json!([document, text("What does the PDF say?")]),
            "{body}"
        );
    }
    for body in vllm.posted().iter().chain(&posted) {
        assert!(
            !body.to_string().contains("file-"),
            "a file id went upstream: {body}"
        );
    }
}
