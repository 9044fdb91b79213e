use super::*;
use serde_json::{json, Value};

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Decodes an OpenAI base64 embedding back to its floats.
fn decode(b64: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(bytes.len() % 4, 0, "{b64} is not whole f32s");
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

const BATCH_REQUEST: &str =
    include_str!("../../../tests/fixtures/embeddings/openai_batch_request.json");

#[test]
fn gemini_batch_request_matches_the_golden_body() {
    let body = to_gemini_batch(BATCH_REQUEST.as_bytes(), "gemini-embedding-001").unwrap();
    assert_eq!(
        value(&body),
        fixture(include_str!(
            "../../../tests/fixtures/embeddings/gemini_batch_request.json"
        ))
    );
    // A model already carrying its `models/` prefix is not prefixed twice.
    let again = to_gemini_batch(BATCH_REQUEST.as_bytes(), "models/gemini-embedding-001").unwrap();
    assert_eq!(body, again);
    assert_eq!(
        gemini_batch_path("models/gemini-embedding-001"),
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        gemini_batch_path("text-embedding-004"),
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
}

#[test]
fn gemini_batch_reply_becomes_an_openai_reply() {
    let reply = include_str!("../../../tests/fixtures/embeddings/gemini_batch_reply.json");
    let out = from_gemini_batch(
        reply.as_bytes(),
        "gemini-embedding-001",
        EncodingFormat::Float,
    )
    .unwrap();
    assert_eq!(
        value(&out),
        fixture(include_str!(
            "../../../tests/fixtures/embeddings/openai_from_gemini.json"
        ))
    );
    // The number text is Gemini's own, digit for digit.
    let text = std::str::from_utf8(&out).unwrap();
    assert!(
        text.contains("[0.0040157186,-0.011254091,0.022301596,-0.0026489256]"),
        "{text}"
    );
}

#[test]
fn gemini_base64_reply_decodes_to_the_same_floats() {
    let reply = include_str!("../../../tests/fixtures/embeddings/gemini_batch_reply.json");
    let out = value(
        &from_gemini_batch(
            reply.as_bytes(),
            "gemini-embedding-001",
            EncodingFormat::Base64,
        )
        .unwrap(),
    );
    let gemini = fixture(reply);
    for (i, e) in gemini["embeddings"].as_array().unwrap().iter().enumerate() {
        let expected: Vec<f32> = serde_json::from_value(e["values"].clone()).unwrap();
        let got = decode(out["data"][i]["embedding"].as_str().unwrap());
        assert_eq!(got, expected, "embedding {i}");
        assert_eq!(out["data"][i]["index"], i);
    }
    assert_eq!(out["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
}

#[test]
fn ollama_request_and_reply_match_the_golden_bodies() {
    let body = to_ollama_embed(
        include_bytes!("../../../tests/fixtures/embeddings/openai_ollama_request.json"),
        "all-minilm",
    )
    .unwrap();
    assert_eq!(
        value(&body),
        fixture(include_str!(
            "../../../tests/fixtures/embeddings/ollama_embed_request.json"
        ))
    );
    let reply = include_str!("../../../tests/fixtures/embeddings/ollama_embed_reply.json");
    let out = from_ollama_embed(reply.as_bytes(), "all-minilm", EncodingFormat::Float).unwrap();
    assert_eq!(
        value(&out),
        fixture(include_str!(
            "../../../tests/fixtures/embeddings/openai_from_ollama.json"
        ))
    );
}

#[test]
fn ollama_keeps_a_single_string_single_and_passes_truncate_and_dimensions() {
    let body = to_ollama_embed(
        br#"{"model":"x","input":"Why is the sky blue?","dimensions":128,"truncate":false,"user":"u1"}"#,
        "embeddinggemma",
    )
    .unwrap();
    assert_eq!(
        value(&body),
        json!({"model": "embeddinggemma", "input": "Why is the sky blue?", "dimensions": 128, "truncate": false})
    );
}

#[test]
fn ollama_base64_reply_decodes_to_the_same_floats_with_usage() {
    let reply = include_str!("../../../tests/fixtures/embeddings/ollama_embed_reply.json");
    let out =
        value(&from_ollama_embed(reply.as_bytes(), "all-minilm", EncodingFormat::Base64).unwrap());
    let ollama = fixture(reply);
    for i in 0..2 {
        let expected: Vec<f32> = serde_json::from_value(ollama["embeddings"][i].clone()).unwrap();
        assert_eq!(
            decode(out["data"][i]["embedding"].as_str().unwrap()),
            expected
        );
    }
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 16, "total_tokens": 16})
    );
}

#[test]
fn encode_base64_matches_an_independent_encoder() {
    // The golden base64 strings were made with Python's struct.pack('<f', ...) and
    // base64.b64encode, not with this code.
    let out = encode_base64(include_bytes!(
        "../../../tests/fixtures/embeddings/openai_float_reply.json"
    ))
    .unwrap();
    assert_eq!(
        value(&out),
        fixture(include_str!(
            "../../../tests/fixtures/embeddings/openai_base64_reply.json"
        ))
    );
}

#[test]
fn encode_base64_round_trips_through_decoding() {
    let floats = [
        0.0023064255_f32,
        -0.009327292,
        1.0e-7,
        -3.4028235e38,
        0.0,
        1.5,
    ];
    let reply = json!({
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": floats}],
        "model": "m",
        "usage": {"prompt_tokens": 3, "total_tokens": 3}
    });
    let out = value(&encode_base64(reply.to_string().as_bytes()).unwrap());
    assert_eq!(
        decode(out["data"][0]["embedding"].as_str().unwrap()),
        floats
    );
    assert_eq!(out["usage"], reply["usage"]);
    assert_eq!(out["model"], "m");
    // Already base64: unchanged.
    let again = value(&encode_base64(out.to_string().as_bytes()).unwrap());
    assert_eq!(again, out);
}

#[test]
fn encode_base64_refuses_what_is_not_a_float_reply() {
    assert_eq!(
        encode_base64(br#"{"object":"list"}"#).unwrap_err(),
        "embeddings reply has no data"
    );
    assert_eq!(
        encode_base64(br#"{"data":[{"embedding":[1.0]},{"embedding":[1,"x"]}]}"#).unwrap_err(),
        "embeddings reply: data[1].embedding must be an array of numbers"
    );
    assert_eq!(
        encode_base64(br#"{"data":[{"index":0}]}"#).unwrap_err(),
        "embeddings reply: data[0] has no embedding"
    );
    assert_eq!(
        encode_base64(br#"{"data":[{"embedding":[1e300]}]}"#).unwrap_err(),
        "embeddings reply: data[0].embedding must be an array of numbers"
    );
    assert!(encode_base64(b"not json")
        .unwrap_err()
        .starts_with("embeddings reply is not valid JSON"));
}

#[test]
fn params_are_read_and_checked() {
    assert_eq!(
        EmbeddingParams::read(br#"{"input":"x","model":"m"}"#).unwrap(),
        EmbeddingParams::default()
    );
    assert_eq!(
        EmbeddingParams::read(br#"{"input":"x","encoding_format":"base64","dimensions":256}"#)
            .unwrap(),
        EmbeddingParams {
            encoding_format: EncodingFormat::Base64,
            dimensions: Some(256)
        }
    );
    assert_eq!(
        EmbeddingParams::read(br#"{"encoding_format":null}"#)
            .unwrap()
            .encoding_format,
        EncodingFormat::Float
    );
    assert_eq!(
        EmbeddingParams::read(br#"{"encoding_format":"int8"}"#).unwrap_err(),
        "encoding_format must be \"float\" or \"base64\""
    );
    for bad in [
        r#"{"dimensions":0}"#,
        r#"{"dimensions":-3}"#,
        r#"{"dimensions":"256"}"#,
        r#"{"dimensions":1.5}"#,
        r#"{"dimensions":99999999999}"#,
    ] {
        assert_eq!(
            EmbeddingParams::read(bad.as_bytes()).unwrap_err(),
            "dimensions must be a positive integer",
            "{bad}"
        );
    }
    assert_eq!(
        EmbeddingParams::read(b"[1]").unwrap_err(),
        "request body must be a JSON object"
    );
    assert_eq!(
        EmbeddingParams::read(b" \"x\"").unwrap_err(),
        "request body must be a JSON object"
    );
    assert!(EmbeddingParams::read(b"{")
        .unwrap_err()
        .starts_with("request body is not valid JSON"));
}

#[test]
fn without_base64_drops_only_encoding_format() {
    let body = Bytes::from_static(
        br#"{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":8,"user":"u"}"#,
    );
    let out = without_base64(&body);
    assert_eq!(
        value(&out),
        json!({"model": "m", "input": ["a", "b"], "dimensions": 8, "user": "u"})
    );
    let plain = Bytes::from_static(br#"{"model":"m","input":"a"}"#);
    assert_eq!(without_base64(&plain), plain);
    let junk = Bytes::from_static(b"not json");
    assert_eq!(without_base64(&junk), junk);
}

#[test]
fn inputs_are_refused_with_the_index_at_fault() {
    let err = |body: &str| to_gemini_batch(body.as_bytes(), "m").unwrap_err();
    assert_eq!(err(r#"{"model":"m"}"#), "input is required");
    assert_eq!(err(r#"{"input":null}"#), "input is required");
    assert_eq!(err(r#"{"input":""}"#), "input must not be an empty string");
    assert_eq!(err(r#"{"input":[]}"#), "input must not be an empty array");
    assert_eq!(
        err(r#"{"input":42}"#),
        "input must be a string or an array of strings"
    );
    assert_eq!(
        err(r#"{"input":{"text":"a"}}"#),
        "input must be a string or an array of strings"
    );
    assert_eq!(
        err(r#"{"input":["a","b","",""]}"#),
        "input[2] must not be an empty string"
    );
    assert_eq!(
        err(r#"{"input":["a","b","c",4]}"#),
        "input[3] must be a string"
    );
    assert_eq!(
        err(r#"{"input":["a","b","c",{"x":1}]}"#),
        "input[3] must be a string"
    );
    assert_eq!(err(r#"{"input":["a",null]}"#), "input[1] must be a string");
    assert_eq!(err(r#"{"input":["a",["b"]]}"#), "input[1] must be a string");
    assert_eq!(
        err(r#"{"input":[[1,2],[3]]}"#),
        "input[0] is a list of token ids; Gemini backends take text only"
    );
    assert_eq!(
        to_ollama_embed(br#"{"input":[1,2,3]}"#, "m").unwrap_err(),
        "input is a list of token ids; Ollama backends take text only"
    );
    assert_eq!(
        to_ollama_embed(br#"{"input":"a","truncate":"yes"}"#, "m").unwrap_err(),
        "truncate must be a boolean"
    );
    assert_eq!(
        err(r#"{"input":"a","dimensions":0}"#),
        "dimensions must be a positive integer"
    );
}

#[test]
fn escaped_strings_survive() {
    let body = to_gemini_batch(br#"{"input":["line\nbreak \"q\" \u00e9"]}"#, "m").unwrap();
    assert_eq!(
        value(&body)["requests"][0]["content"]["parts"][0]["text"],
        "line\nbreak \"q\" é"
    );
}

#[test]
fn bad_backend_replies_name_the_field() {
    let g = |r: &str| from_gemini_batch(r.as_bytes(), "m", EncodingFormat::Float).unwrap_err();
    assert_eq!(g("{}"), "gemini reply has no embeddings");
    assert_eq!(
        g(r#"{"embeddings":[{"values":[1]},{"values":"x"}]}"#),
        "gemini reply: embeddings[1].values must be an array of numbers"
    );
    assert_eq!(
        g(r#"{"embeddings":[{}]}"#),
        "gemini reply: embeddings[0].values must be an array of numbers"
    );
    let o = |r: &str| from_ollama_embed(r.as_bytes(), "m", EncodingFormat::Float).unwrap_err();
    assert_eq!(o(r#"{"model":"m"}"#), "ollama reply has no embeddings");
    assert_eq!(
        o(r#"{"embeddings":[[0.1],[null]]}"#),
        "ollama reply: embeddings[1] must be an array of numbers"
    );
    assert_eq!(
        o(r#"{"embeddings":[[0.1]],"prompt_eval_count":"8"}"#),
        "ollama reply: prompt_eval_count must be a non-negative integer"
    );
    assert!(o("<html>").starts_with("ollama reply is not valid JSON"));
}

#[test]
fn empty_embedding_lists_are_kept() {
    // An empty list is what the backend said; the reply stays well formed.
    let out =
        value(&from_gemini_batch(br#"{"embeddings":[]}"#, "m", EncodingFormat::Float).unwrap());
    assert_eq!(out["data"], json!([]));
    let out =
        value(&from_ollama_embed(br#"{"embeddings":[[]]}"#, "m", EncodingFormat::Base64).unwrap());
    assert_eq!(out["data"][0]["embedding"], "");
}
