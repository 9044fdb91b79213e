//! Every stream translator's chunk path: backend streams (Anthropic, Gemini, Responses
//! SSE; Ollama NDJSON) into OpenAI chunks, and OpenAI chunks into Anthropic and Responses
//! events, fed whole and in odd pieces, then finished. Never a panic.
#![no_main]

// The allocation guard (see `continuum_fuzz::MAX_ALLOCATION`).
extern crate continuum_fuzz;

use continuum::protocol::codec::Decode;
use continuum::protocol::{anthropic_client, responses};
use continuum_fuzz::chunks;
use libfuzzer_sys::fuzz_target;

fn backend_streams(pieces: &[&[u8]]) {
    let decodes = [
        Decode::Anthropic {
            include_usage: true,
        },
        Decode::Gemini {
            include_usage: true,
        },
        Decode::Responses {
            include_usage: false,
        },
        Decode::Ollama {
            include_usage: true,
        },
    ];
    for decode in decodes {
        let mut t = decode
            .stream("m", "chatcmpl-fuzz")
            .expect("a translated stream");
        let mut failed = false;
        for p in pieces {
            if t.feed(p).is_err() {
                failed = true;
                break;
            }
        }
        if !failed {
            let _ = t.finish();
            let _ = t.is_done();
        }
    }
}

fn client_streams(pieces: &[&[u8]]) {
    let mut anthropic = anthropic_client::StreamTranslator::new("claude-fuzz");
    let mut resp =
        responses::StreamTranslator::new(responses::ResponseCtx::new("resp_fuzz", 0, "m"));
    for p in pieces {
        let _ = anthropic.feed(p);
        let _ = resp.feed(p);
    }
    let _ = anthropic.finished();
    let _ = resp.is_done();
    let _ = resp.finish();
    let _ = resp.finish_error("the backend went away");
    let _ = resp.response();
}

fuzz_target!(|data: &[u8]| {
    let pieces = chunks(data);
    for split in [&[data][..], &pieces[..]] {
        backend_streams(split);
        client_streams(split);
    }
});
