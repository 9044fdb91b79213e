//! Every request translation: each client wire into its pivot (`codec::to_pivot`), the
//! request checks, and the pivot encoded for every backend wire, streamed or not, for
//! every backend type (`codec::encode`). Bad input is an error, never a panic.
#![no_main]

// The allocation guard (see `continuum_fuzz::MAX_ALLOCATION`).
extern crate continuum_fuzz;

use bytes::Bytes;
use continuum::config::prompts::MergeStrategy;
use continuum::config::BackendType;
use continuum::pipeline::fields::{parse_routing, Routing};
use continuum::pipeline::op::Wire;
use continuum::prompts::Injection;
use continuum::protocol::{codec, files, responses};
use libfuzzer_sys::fuzz_target;

/// The wires clients speak.
const CLIENTS: [Wire; 10] = [
    Wire::OpenAiChat,
    Wire::OpenAiCompletions,
    Wire::OpenAiResponses,
    Wire::OpenAiEmbeddings,
    Wire::AnthropicMessages,
    Wire::AnthropicCountTokens,
    Wire::Rerank,
    Wire::TeiSparse,
    Wire::OpenAiSparse,
    Wire::OpenAiImages,
];

/// The wires a pivot is encoded into for a backend.
const BACKENDS: [Wire; 13] = [
    Wire::OpenAiChat,
    Wire::AnthropicMessages,
    Wire::GeminiGenerate,
    Wire::GeminiCountTokens,
    Wire::OllamaChat,
    Wire::LocalCount,
    Wire::GeminiImages,
    Wire::OpenAiResponses,
    Wire::OpenAiEmbeddings,
    Wire::GeminiEmbed,
    Wire::OllamaEmbed,
    Wire::Rerank,
    Wire::TeiRerank,
];

fn encode_all(body: &Bytes, routing: &Routing, pick: usize) {
    let kind = BackendType::ALL[pick % BackendType::ALL.len()].1;
    for wire in BACKENDS {
        for stream in [false, true] {
            let ctx = codec::EncodeCtx {
                model: &routing.model,
                stream,
                kind,
                routing,
                id: "chatcmpl-fuzz",
            };
            let _ = codec::encode(wire, body.clone(), &ctx);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    // The input as a pivot (OpenAI chat, embeddings, rerank, images …).
    let routing = parse_routing(&body).unwrap_or_else(|_| Routing::named("m".into()));
    encode_all(&body, &routing, data.len());
    // The input as each client's request, and its pivot encoded onward.
    for client in CLIENTS {
        let _ = codec::check_request(client, &body);
        let _ = files::file_refs(client, &body);
        let injection = Injection {
            prompt: "be brief",
            merge: MergeStrategy::Prepend,
            separator: "\n",
        };
        let _ = codec::apply_prompt(client, body.clone(), injection);
        if let Ok(pivot) = codec::to_pivot(client, &body, &[]) {
            if client != Wire::OpenAiChat {
                encode_all(&pivot.body, &pivot.routing, data.len() / 13);
            }
        }
    }
    // A Responses request's second turn, its first turn's items as history.
    if let Ok(first) = responses::to_chat_request(&body, &[]) {
        let _ = responses::to_chat_request(&body, &first.input_items);
    }
});
