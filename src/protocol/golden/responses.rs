//! Golden translations of OpenAI's Responses API: Responses ↔ the chat pivot, both ways,
//! replies and streams.

use std::path::Path;

use serde_json::{json, Value};

use super::harness::{arg, done_at_done_marker, feed_stream_ending, flag, input, parse};
use super::translations::{proxy_error, reply, request_with_usage_flag};
use super::Outputs;
use crate::protocol::responses::{self, ResponseCtx};

/// The context of a reply translation from `args.json`: `id`, `created_at`, and the
/// Responses `request` it answers (its echoed fields), or only its `model`.
fn responses_ctx(args: &Value) -> ResponseCtx {
    let (id, created_at) = (arg(args, "id"), args["created_at"].as_u64().unwrap_or(0));
    match args.get("request") {
        Some(request) => responses::to_chat_request(request.to_string().as_bytes(), &[])
            .unwrap_or_else(|e| panic!("args.json's request is refused: {e}"))
            .ctx(id, created_at),
        None => ResponseCtx::new(id, created_at, arg(args, "model")),
    }
}

/// `args.json`: `history` (the earlier turns' items) when the request continues a
/// response. The output is every part of the translation: the chat body, the hosted
/// tools, the echoed fields…
pub(super) fn responses_to_chat(case: &Path, args: &Value) -> Outputs {
    let history = args["history"].as_array().cloned().unwrap_or_default();
    let v = match responses::to_chat_request(&input(case), &history) {
        Ok(r) => json!({
            "body": parse(&r.body, "the chat body"),
            "model": r.model,
            "stream": r.stream,
            "hosted_tools": r.hosted_tools,
            "tool_choice_auto": r.tool_choice_auto,
            "store": r.store,
            "previous_response_id": r.previous_response_id,
            "input_items": r.input_items,
            "echo": r.echo,
        }),
        Err(e) => proxy_error(&e),
    };
    Outputs::json(v)
}

pub(super) fn chat_reply_to_responses(case: &Path, args: &Value) -> Outputs {
    let v = match responses::from_chat_response(&input(case), &responses_ctx(args)) {
        Ok(v) => v,
        Err(e) => json!({"error": e}),
    };
    Outputs::json(v)
}

/// Checks a Responses event stream: every event's `type` is its `event:` name, its
/// `sequence_number` its position, and the last one ends the response. Returns the
/// response the last event carries.
fn check_responses_events(text: &str) -> Result<Value, String> {
    let mut d = crate::protocol::sse::SseDecoder::default();
    d.push(text.as_bytes()).map_err(|e| e.to_string())?;
    let mut last = Value::Null;
    let mut n = 0;
    while let Some(e) = d.next_event() {
        let v = parse(&e.data, "an event");
        if v["type"] != e.name_str() || v["sequence_number"] != n {
            return Err(format!(
                "event {n} is named {:?} with data {v}",
                e.name_str()
            ));
        }
        last = v;
        n += 1;
    }
    match last["type"].as_str() {
        Some("response.completed" | "response.incomplete" | "response.failed") => {
            Ok(last["response"].take())
        }
        other => Err(format!("the stream ends with {other:?}")),
    }
}

/// `args.json` as for `chat_reply_to_responses`. The input ends as the backend's stream
/// did: `finish()` is called after the last piece.
pub(super) fn chat_stream_to_responses(case: &Path, args: &Value) -> Outputs {
    let ctx = responses_ctx(args);
    feed_stream_ending(
        &input(case),
        || responses::StreamTranslator::new(ctx.clone()),
        |t, piece| Ok(t.feed(piece)),
        |t| Ok(t.finish()),
        |t, fed| {
            let last = check_responses_events(&fed.text)?;
            if t.response() != Some(&last) || !t.is_done() {
                return Err("response() is not the response of the terminal event".into());
            }
            Ok(())
        },
    )
}

pub(super) fn chat_to_responses(case: &Path, _: &Value) -> Outputs {
    let input = input(case);
    let result = responses::from_chat_request(&input);
    request_with_usage_flag(&input, result)
}

pub(super) fn responses_reply_to_chat(case: &Path, args: &Value) -> Outputs {
    reply(responses::to_chat_response(
        &input(case),
        arg(args, "model"),
    ))
}

/// An error that arrives with chunks in the same bytes comes with the next call: the
/// input's end is one more (empty) `feed`.
pub(super) fn responses_stream_to_chat(case: &Path, args: &Value) -> Outputs {
    let (model, id) = (arg(args, "model"), arg(args, "id"));
    let include_usage = flag(args, "include_usage");
    feed_stream_ending(
        &input(case),
        || responses::ChatStreamTranslator::new(model, id, include_usage),
        |t, piece| t.feed(piece),
        |t| t.feed(b""),
        |t, fed| done_at_done_marker(t.is_done(), fed),
    )
}

// ---------------------------------------------------------------------------------------
// Tests: one per translation, so a failure names it.
