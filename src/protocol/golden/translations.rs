//! The translations under test, one runner per golden directory, and the shapes their
//! results are written in.

use std::path::Path;

use http::StatusCode;
use serde_json::{json, Value};

use super::harness::{
    arg, done_at_done_marker, feed_stream, feed_stream_ending, flag, input, parse,
};
use super::Outputs;
use crate::error::ProxyError;
use crate::protocol::anthropic_client as anthropic;
use crate::protocol::errors::ProviderError;
use crate::protocol::{anthropic_backend, gemini, ollama};

// ---------------------------------------------------------------------------------------
// Result shapes

/// A request translation's error: its status, field and message.
pub(super) fn proxy_error(e: &ProxyError) -> Value {
    let param = match e {
        ProxyError::InvalidField { param, .. } => Value::from(*param),
        _ => Value::Null,
    };
    json!({"error": {"status": e.status().as_u16(), "param": param, "message": e.to_string()}})
}

/// A reply translation's result: the body, or `{"error": message}`.
pub(super) fn reply(result: Result<bytes::Bytes, String>) -> Outputs {
    let v = match result {
        Ok(body) => parse(&body, "the translated reply"),
        Err(e) => json!({"error": e}),
    };
    Outputs::json(v)
}

/// A request translation's result; `include_usage` must mirror the request's
/// `stream_options.include_usage`.
pub(super) fn request_with_usage_flag(
    input: &[u8],
    result: Result<(bytes::Bytes, bool), ProxyError>,
) -> Outputs {
    let v = match result {
        Ok((body, include_usage)) => {
            let asked = parse(input, "the input")["stream_options"]["include_usage"] == true;
            assert_eq!(
                include_usage, asked,
                "include_usage must say whether the client asked for usage"
            );
            parse(&body, "the translated request")
        }
        Err(e) => proxy_error(&e),
    };
    Outputs::json(v)
}

// ---------------------------------------------------------------------------------------
// The translations

pub(super) fn anthropic_to_openai(case: &Path, _: &Value) -> Outputs {
    let v = match anthropic::to_openai_request(&input(case)) {
        Ok((body, model, stream)) => {
            let v = parse(&body, "the translated request");
            assert_eq!(
                v["model"],
                model.as_str(),
                "the model returned is the body's"
            );
            assert_eq!(
                v["stream"], stream,
                "the stream flag returned is the body's"
            );
            v
        }
        Err(e) => proxy_error(&e),
    };
    Outputs::json(v)
}

pub(super) fn openai_reply_to_anthropic(case: &Path, args: &Value) -> Outputs {
    reply(anthropic::from_openai_response(
        &input(case),
        arg(args, "requested_model"),
    ))
}

pub(super) fn openai_stream_to_anthropic(case: &Path, args: &Value) -> Outputs {
    let model = arg(args, "model");
    feed_stream(
        &input(case),
        || anthropic::StreamTranslator::new(model),
        |t, piece| Ok(t.feed(piece)),
        |t, fed| {
            let ended =
                fed.text.contains("event: message_stop\n") || fed.text.contains("event: error\n");
            if t.finished() != ended {
                return Err(format!(
                    "finished() is {} but message_stop or error was written: {ended}",
                    t.finished()
                ));
            }
            Ok(())
        },
    )
}

/// `args.json`-less: the input is a list of `{status, message}`, the output the list of
/// `{status, body}` an Anthropic client gets for the router's own errors.
pub(super) fn anthropic_error_body(case: &Path, _: &Value) -> Outputs {
    let list = parse(&input(case), "the input");
    let out: Vec<Value> = list
        .as_array()
        .expect("a list of {status, message}")
        .iter()
        .map(|e| {
            let status = e["status"].as_u64().expect("a status") as u16;
            let body = anthropic::error_body(status, e["message"].as_str().expect("a message"));
            json!({"status": status, "body": parse(&body, "the error body")})
        })
        .collect();
    Outputs::json(Value::Array(out))
}

pub(super) fn openai_to_anthropic_backend(case: &Path, args: &Value) -> Outputs {
    let input = input(case);
    let result =
        anthropic_backend::from_openai_request(&input, arg(args, "model"), flag(args, "stream"));
    request_with_usage_flag(&input, result)
}

pub(super) fn anthropic_reply_to_openai(case: &Path, _: &Value) -> Outputs {
    reply(anthropic_backend::to_openai_response(&input(case)))
}

pub(super) fn anthropic_stream_to_openai(case: &Path, args: &Value) -> Outputs {
    let include_usage = flag(args, "include_usage");
    feed_stream_ending(
        &input(case),
        || anthropic_backend::StreamTranslator::new(include_usage),
        |t, piece| t.feed(piece),
        |t| t.finish(),
        |t, fed| done_at_done_marker(t.is_done(), fed),
    )
}

pub(super) fn openai_to_gemini(case: &Path, args: &Value) -> Outputs {
    let input = input(case);
    let result = gemini::from_openai_request(&input, arg(args, "model"));
    request_with_usage_flag(&input, result)
}

pub(super) fn openai_to_gemini_count_tokens(case: &Path, args: &Value) -> Outputs {
    let model = arg(args, "model");
    let v = match gemini::from_openai_request(&input(case), model) {
        Ok((generate, _)) => parse(
            &gemini::count_tokens_body(&generate, model),
            "the countTokens body",
        ),
        Err(e) => proxy_error(&e),
    };
    Outputs::json(v)
}

/// The output is `{"totalTokens": n}`, or `{"totalTokens": null}` when the answer has none.
pub(super) fn gemini_count_tokens_reply(case: &Path, _: &Value) -> Outputs {
    let total = gemini::parse_count_tokens(&input(case));
    Outputs::json(json!({ "totalTokens": total }))
}

pub(super) fn gemini_reply_to_openai(case: &Path, args: &Value) -> Outputs {
    reply(gemini::to_openai_response(
        &input(case),
        arg(args, "model"),
        arg(args, "id"),
    ))
}

pub(super) fn gemini_stream_to_openai(case: &Path, args: &Value) -> Outputs {
    let (model, id) = (arg(args, "model"), arg(args, "id"));
    let include_usage = flag(args, "include_usage");
    feed_stream_ending(
        &input(case),
        || gemini::StreamTranslator::new(model, id, include_usage),
        |t, piece| t.feed(piece),
        |t| t.finish(),
        |t, fed| done_at_done_marker(t.is_done(), fed),
    )
}

pub(super) fn openai_to_ollama(case: &Path, args: &Value) -> Outputs {
    let input = input(case);
    let result = ollama::translate_request(&input, arg(args, "model"), flag(args, "stream"));
    request_with_usage_flag(&input, result)
}

pub(super) fn ollama_reply_to_openai(case: &Path, args: &Value) -> Outputs {
    reply(ollama::translate_response(
        &input(case),
        arg(args, "model"),
        arg(args, "id"),
    ))
}

pub(super) fn ollama_stream_to_openai(case: &Path, args: &Value) -> Outputs {
    let (model, id) = (arg(args, "model"), arg(args, "id"));
    let include_usage = flag(args, "include_usage");
    feed_stream_ending(
        &input(case),
        || ollama::StreamTranslator::new(model, id, include_usage),
        |t, piece| t.feed(piece),
        |t| t.finish(),
        |t, fed| done_at_done_marker(t.is_done(), fed),
    )
}

/// `args.json`: `provider` (`anthropic`, `gemini` or `openai`, which also reads Ollama's
/// bare `{"error": "…"}`) and the upstream `status`. The output is the classification and
/// what an OpenAI and an Anthropic client get (status and body).
pub(super) fn provider_errors(case: &Path, args: &Value) -> Outputs {
    let status = args["status"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .expect("args.json needs an HTTP \"status\"");
    let body = input(case);
    let e = match arg(args, "provider") {
        "anthropic" => ProviderError::from_anthropic(status, &body),
        "gemini" => ProviderError::from_gemini(status, &body),
        "openai" => ProviderError::from_openai(status, &body),
        other => panic!("unknown provider {other}"),
    };
    let v = json!({
        "kind": format!("{:?}", e.kind),
        "message": e.message,
        "openai": {"status": e.openai_status(status).as_u16(), "body": parse(&e.openai_body(), "the OpenAI body")},
        "anthropic": {"status": e.anthropic_status(status).as_u16(), "body": parse(&e.anthropic_body(), "the Anthropic body")},
    });
    Outputs::json(v)
}
