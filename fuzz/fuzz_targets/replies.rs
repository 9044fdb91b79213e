//! Every whole-reply translation: each backend reply decoded into its pivot
//! (`codec::Decode::whole`, successes and errors), the pivot told in each client's wire,
//! and provider error bodies read. Bad input is an error, never a panic.
#![no_main]

// The allocation guard (see `continuum_fuzz::MAX_ALLOCATION`).
extern crate continuum_fuzz;

use bytes::Bytes;
use continuum::pipeline::op::Wire;
use continuum::protocol::codec::{self, Decode};
use continuum::protocol::embeddings::{self, EncodingFormat};
use continuum::protocol::errors::ProviderError;
use continuum::protocol::{anthropic_client, images, responses, sparse};
use continuum_fuzz::error_status;
use http::StatusCode;
use libfuzzer_sys::fuzz_target;

/// The rerank requests replies are checked against: three documents, and no `top_n`.
const RERANK_REQUESTS: [&str; 2] = [
    r#"{"model":"m","query":"q","documents":["a","b","c"],"top_n":2,"return_documents":true}"#,
    r#"{"model":"m","query":"q","documents":[{"text":"a"},{"text":"b"}]}"#,
];

fn decodes() -> Vec<Decode> {
    let mut all = vec![
        Decode::Pass,
        Decode::Anthropic {
            include_usage: true,
        },
        Decode::Gemini {
            include_usage: false,
        },
        Decode::Ollama {
            include_usage: true,
        },
        Decode::GeminiCount,
        Decode::GeminiImages { count: 2 },
        Decode::Responses {
            include_usage: true,
        },
        Decode::Base64,
    ];
    for format in [EncodingFormat::Float, EncodingFormat::Base64] {
        all.push(Decode::GeminiEmbed { format });
        all.push(Decode::OllamaEmbed { format });
    }
    for r in RERANK_REQUESTS {
        all.push(Decode::Rerank {
            request: Bytes::from_static(r.as_bytes()),
        });
        all.push(Decode::TeiRerank {
            request: Bytes::from_static(r.as_bytes()),
        });
    }
    all
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let failed = error_status(data);
    for decode in decodes() {
        for status in [StatusCode::OK, failed] {
            let _ = decode.whole(status, bytes.clone(), "m", "chatcmpl-fuzz");
        }
    }
    let _ =
        Decode::GeminiImages { count: 2 }.merge(StatusCode::OK, &[bytes.clone(), bytes.clone()]);
    // The pivot's reply told to each client.
    let _ = anthropic_client::from_openai_response(data, "claude-fuzz");
    let ctx = responses::ResponseCtx::new("resp_fuzz", 0, "m");
    let _ = responses::from_chat_response(data, &ctx);
    for status in [StatusCode::OK, failed] {
        let _ = codec::client_reply(Wire::TeiSparse, Wire::OpenAiSparse, status, data, "m");
    }
    let _ = sparse::reply_to_tei(data);
    let _ = sparse::request_from_tei(data, "m");
    let _ = embeddings::encode_base64(data);
    let _ = images::b64_images(data);
    let _ = images::with_urls(data, &["http://h/1".into(), "http://h/2".into()]);
    // Provider error bodies, in both client shapes.
    for e in [
        ProviderError::from_openai(failed, data),
        ProviderError::from_anthropic(failed, data),
        ProviderError::from_gemini(failed, data),
    ] {
        let _ = (e.openai_status(failed), e.openai_body());
        let _ = (e.anthropic_status(failed), e.anthropic_body());
    }
});
