//! Golden files for every protocol translation.
//!
//! Each translation has a directory under `tests/fixtures/golden/<translation>/`, and each
//! case a directory under that one holding an input file (`input.json`, `input.sse`,
//! `input.ndjson` or `input.txt`), an optional `args.json` (the translator's other
//! arguments: model, id, stream, include_usage…) and the expected output files:
//!
//! - `expected.json`: a JSON result, compared as parsed JSON;
//! - `expected.sse`: the exact text a stream translator writes, compared byte for byte;
//! - `expected_error.txt`: the error a stream translator returned (the text before it is
//!   in `expected.sse`).
//!
//! Streams are fed three ways (whole, byte by byte, in 7-byte pieces) and must give the
//! same text each way. Normalised before comparing: `"created":<digits>` becomes
//! `"created":0` (a Unix timestamp taken from the clock). Nothing else is: every id is
//! derived from the input or from the `id` in `args.json`.
//!
//! `CONTINUUM_UPDATE_GOLDEN=1` writes the actual outputs into the expected files instead
//! of comparing (and removes expected files a case no longer produces). Cases under
//! `tests/fixtures/golden/known_bugs/<translation>/` hold the *correct* output of a
//! translation that is known to be wrong today: the normal run skips them and the update
//! never writes them; `cargo test --lib golden_known_bugs -- --ignored` shows their diffs
//! and fails once one of them passes (then move it next to the others).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use http::StatusCode;
use serde_json::{json, Value};

use super::anthropic_client as anthropic;
use super::errors::ProviderError;
use super::responses::{self, ResponseCtx};
use super::{anthropic_backend, gemini};
use crate::error::ProxyError;
use crate::protocol::ollama;

/// Set to `1` to write actual outputs into the expected files.
const UPDATE_VAR: &str = "CONTINUUM_UPDATE_GOLDEN";

/// Where the golden directories live.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn updating() -> bool {
    std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1")
}

/// One output of a case: a file name and its content.
enum Output {
    /// Compared as parsed JSON; written pretty-printed.
    Json(Value),
    /// Compared as exact text (after normalisation).
    Text(String),
}

/// What a case produced: its output files, and problems found on the way (a stream
/// translator that answers differently depending on how its input was cut).
#[derive(Default)]
struct Outputs {
    files: Vec<(&'static str, Output)>,
    problems: Vec<String>,
}

impl Outputs {
    fn json(v: Value) -> Outputs {
        Outputs {
            files: vec![("expected.json", Output::Json(v))],
            problems: Vec::new(),
        }
    }
}

/// A translation: runs one case (its directory and `args.json`) and gives its outputs.
type Runner = fn(&Path, &Value) -> Outputs;

/// Every translation, by directory name.
const TRANSLATIONS: &[(&str, Runner)] = &[
    ("anthropic_to_openai", anthropic_to_openai),
    ("openai_reply_to_anthropic", openai_reply_to_anthropic),
    ("openai_stream_to_anthropic", openai_stream_to_anthropic),
    ("anthropic_error_body", anthropic_error_body),
    ("openai_to_anthropic_backend", openai_to_anthropic_backend),
    ("anthropic_reply_to_openai", anthropic_reply_to_openai),
    ("anthropic_stream_to_openai", anthropic_stream_to_openai),
    ("openai_to_gemini", openai_to_gemini),
    (
        "openai_to_gemini_count_tokens",
        openai_to_gemini_count_tokens,
    ),
    ("gemini_count_tokens_reply", gemini_count_tokens_reply),
    ("gemini_reply_to_openai", gemini_reply_to_openai),
    ("gemini_stream_to_openai", gemini_stream_to_openai),
    ("openai_to_ollama", openai_to_ollama),
    ("ollama_reply_to_openai", ollama_reply_to_openai),
    ("ollama_stream_to_openai", ollama_stream_to_openai),
    ("provider_errors", provider_errors),
    ("responses_to_chat", responses_to_chat),
    ("chat_reply_to_responses", chat_reply_to_responses),
    ("chat_stream_to_responses", chat_stream_to_responses),
    ("chat_to_responses", chat_to_responses),
    ("responses_reply_to_chat", responses_reply_to_chat),
    ("responses_stream_to_chat", responses_stream_to_chat),
];

// ---------------------------------------------------------------------------------------
// Reading cases

/// The case directories of `dir`, sorted by name.
fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// The case's input file (the one named `input.*`).
fn input_path(case: &Path) -> PathBuf {
    let inputs: Vec<PathBuf> = fs::read_dir(case)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", case.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.file_stem().is_some_and(|s| s == "input"))
        .collect();
    match inputs.as_slice() {
        [one] => one.clone(),
        _ => panic!(
            "{} must hold exactly one input.* file, found {inputs:?}",
            case.display()
        ),
    }
}

fn input(case: &Path) -> Vec<u8> {
    let path = input_path(case);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The case's `args.json`, or `{}`.
fn args(case: &Path) -> Value {
    let path = case.join("args.json");
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display())),
        Err(_) => json!({}),
    }
}

fn arg<'a>(args: &'a Value, key: &str) -> &'a str {
    args[key]
        .as_str()
        .unwrap_or_else(|| panic!("args.json needs a string \"{key}\""))
}

fn flag(args: &Value, key: &str) -> bool {
    args[key]
        .as_bool()
        .unwrap_or_else(|| panic!("args.json needs a boolean \"{key}\""))
}

fn parse(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

// ---------------------------------------------------------------------------------------
// Normalisation, comparison and regeneration

/// Replaces every `"created":<digits>` with `"created":0`: the value is the clock's.
fn normalise(text: &str) -> String {
    const KEY: &str = "\"created\":";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('0');
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The same for a JSON value: a numeric `created` at any depth becomes 0.
fn normalise_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "created" && child.is_number() {
                    *child = json!(0);
                } else {
                    normalise_json(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_json),
        _ => {}
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON serialises") + "\n"
}

/// A unified diff of two texts, headed by their labels.
fn diff_labelled(old: &str, new: &str, labels: (&str, &str)) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(labels.0, labels.1)
        .to_string()
}

fn diff(expected: &str, actual: &str) -> String {
    diff_labelled(expected, actual, ("expected", "actual"))
}

/// Every `expected*` file in `case`.
fn expected_files(case: &Path) -> Vec<String> {
    fs::read_dir(case)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("expected"))
                .collect()
        })
        .unwrap_or_default()
}

/// Compares (or, when `update`, writes) a case's outputs; returns what differs.
fn settle(case: &Path, outputs: Outputs, update: bool) -> Vec<String> {
    let Outputs {
        files: outputs,
        mut problems,
    } = outputs;
    let produced: Vec<&str> = outputs.iter().map(|(name, _)| *name).collect();
    for stale in expected_files(case) {
        if !produced.contains(&stale.as_str()) {
            if update {
                fs::remove_file(case.join(&stale)).expect("remove a stale expected file");
            } else {
                problems.push(format!("{stale} exists but the translation produced none"));
            }
        }
    }
    for (name, output) in outputs {
        let path = case.join(name);
        let (actual_text, actual_json) = match output {
            Output::Json(mut v) => {
                normalise_json(&mut v);
                (pretty(&v), Some(v))
            }
            Output::Text(t) => (normalise(&t), None),
        };
        if update {
            fs::write(&path, &actual_text).expect("write an expected file");
            continue;
        }
        let Ok(expected_text) = fs::read_to_string(&path) else {
            problems.push(format!(
                "{name} is missing; the translation produced:\n{actual_text}"
            ));
            continue;
        };
        match actual_json {
            Some(actual) => {
                let expected = parse(expected_text.as_bytes(), &path.display().to_string());
                if expected != actual {
                    problems.push(format!(
                        "{name} differs (as parsed JSON):\n{}",
                        diff(&pretty(&expected), &actual_text)
                    ));
                }
            }
            None => {
                if expected_text != actual_text {
                    problems.push(format!(
                        "{name} differs:\n{}",
                        diff(&expected_text, &actual_text)
                    ));
                }
            }
        }
    }
    problems
}

fn runner(translation: &str) -> Runner {
    TRANSLATIONS
        .iter()
        .find(|(name, _)| *name == translation)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no translation is called {translation}"))
}

/// Runs every case of `translation`; fails with a readable report of each difference.
fn run(translation: &str) {
    let dir = root().join(translation);
    let run = runner(translation);
    let update = updating();
    let cases = case_dirs(&dir);
    assert!(!cases.is_empty(), "{} has no cases", dir.display());
    let mut report = String::new();
    for case in &cases {
        let outputs = run(case, &args(case));
        for problem in settle(case, outputs, update) {
            let _ = writeln!(
                report,
                "\n=== {translation}/{}: {problem}",
                case.file_name().unwrap_or_default().to_string_lossy()
            );
        }
    }
    assert!(
        report.is_empty(),
        "golden cases fail (when a translation changed on purpose, regenerate with {UPDATE_VAR}=1 and read the diff):{report}"
    );
}

// ---------------------------------------------------------------------------------------
// Feeding streams

/// The ways a stream is cut before it is fed: whole, byte by byte, 7-byte pieces.
fn splits(input: &[u8]) -> Vec<(&'static str, Vec<&[u8]>)> {
    vec![
        ("whole", vec![input]),
        ("byte by byte", input.chunks(1).collect()),
        ("7-byte pieces", input.chunks(7).collect()),
    ]
}

/// What a stream translator wrote, and the error it stopped with.
#[derive(Debug, PartialEq)]
struct Fed {
    text: String,
    error: Option<String>,
}

/// Feeds `input` cut every way into a fresh translator (from `make`); `done` must agree
/// with the text. The outputs are those of the whole input; a cut that gives another
/// result is a problem.
fn feed_stream<T>(
    input: &[u8],
    make: impl Fn() -> T,
    feed: impl Fn(&mut T, &[u8]) -> Result<String, String>,
    done: impl Fn(&T, &Fed) -> Result<(), String>,
) -> Outputs {
    feed_stream_ending(input, make, feed, |_| Ok(String::new()), done)
}

/// [`feed_stream`] for translators told when their input ends: `end` runs after the last
/// piece (unless a piece failed), and what it returns is part of the output.
fn feed_stream_ending<T>(
    input: &[u8],
    make: impl Fn() -> T,
    feed: impl Fn(&mut T, &[u8]) -> Result<String, String>,
    end: impl Fn(&mut T) -> Result<String, String>,
    done: impl Fn(&T, &Fed) -> Result<(), String>,
) -> Outputs {
    let mut outputs = Outputs::default();
    let mut results: Vec<(&str, Fed)> = Vec::new();
    for (how, pieces) in splits(input) {
        let mut t = make();
        let mut fed = Fed {
            text: String::new(),
            error: None,
        };
        for piece in pieces {
            match feed(&mut t, piece) {
                Ok(out) => fed.text.push_str(&out),
                Err(e) => {
                    fed.error = Some(e);
                    break;
                }
            }
        }
        if fed.error.is_none() {
            match end(&mut t) {
                Ok(out) => fed.text.push_str(&out),
                Err(e) => fed.error = Some(e),
            }
        }
        if let Err(e) = done(&t, &fed) {
            outputs.problems.push(format!("fed {how}: {e}"));
        }
        results.push((how, fed));
    }
    let (_, whole) = results.remove(0);
    for (how, fed) in &results {
        if fed != &whole {
            outputs.problems.push(format!(
                "fed {how}, the translator gives another result than fed whole:\n{}{}",
                diff_labelled(
                    &normalise(&whole.text),
                    &normalise(&fed.text),
                    ("fed whole", how)
                ),
                if fed.error == whole.error {
                    String::new()
                } else {
                    format!("error {:?} instead of {:?}\n", fed.error, whole.error)
                }
            ));
        }
    }
    outputs
        .files
        .push(("expected.sse", Output::Text(whole.text)));
    if let Some(e) = whole.error {
        outputs
            .files
            .push(("expected_error.txt", Output::Text(e + "\n")));
    }
    outputs
}

/// For translators that write OpenAI chunks: done exactly when `[DONE]` was written.
fn done_at_done_marker(done: bool, fed: &Fed) -> Result<(), String> {
    let ended = fed.text.ends_with("data: [DONE]\n\n");
    if fed.error.is_none() && done != ended {
        return Err(format!(
            "is_done() is {done} but the text ends with [DONE]: {ended}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Result shapes

/// A request translation's error: its status, field and message.
fn proxy_error(e: &ProxyError) -> Value {
    let param = match e {
        ProxyError::InvalidField { param, .. } => Value::from(*param),
        _ => Value::Null,
    };
    json!({"error": {"status": e.status().as_u16(), "param": param, "message": e.to_string()}})
}

/// A reply translation's result: the body, or `{"error": message}`.
fn reply(result: Result<bytes::Bytes, String>) -> Outputs {
    let v = match result {
        Ok(body) => parse(&body, "the translated reply"),
        Err(e) => json!({"error": e}),
    };
    Outputs::json(v)
}

/// A request translation's result; `include_usage` must mirror the request's
/// `stream_options.include_usage`.
fn request_with_usage_flag(
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

fn anthropic_to_openai(case: &Path, _: &Value) -> Outputs {
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

fn openai_reply_to_anthropic(case: &Path, args: &Value) -> Outputs {
    reply(anthropic::from_openai_response(
        &input(case),
        arg(args, "requested_model"),
    ))
}

fn openai_stream_to_anthropic(case: &Path, args: &Value) -> Outputs {
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
fn anthropic_error_body(case: &Path, _: &Value) -> Outputs {
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

fn openai_to_anthropic_backend(case: &Path, args: &Value) -> Outputs {
    let input = input(case);
    let result =
        anthropic_backend::from_openai_request(&input, arg(args, "model"), flag(args, "stream"));
    request_with_usage_flag(&input, result)
}

fn anthropic_reply_to_openai(case: &Path, _: &Value) -> Outputs {
    reply(anthropic_backend::to_openai_response(&input(case)))
}

fn anthropic_stream_to_openai(case: &Path, args: &Value) -> Outputs {
    let include_usage = flag(args, "include_usage");
    feed_stream(
        &input(case),
        || anthropic_backend::StreamTranslator::new(include_usage),
        |t, piece| t.feed(piece),
        |t, fed| done_at_done_marker(t.is_done(), fed),
    )
}

fn openai_to_gemini(case: &Path, args: &Value) -> Outputs {
    let input = input(case);
    let result = gemini::from_openai_request(&input, arg(args, "model"));
    request_with_usage_flag(&input, result)
}

fn openai_to_gemini_count_tokens(case: &Path, args: &Value) -> Outputs {
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
fn gemini_count_tokens_reply(case: &Path, _: &Value) -> Outputs {
    let total = gemini::parse_count_tokens(&input(case));
    Outputs::json(json!({ "totalTokens": total }))
}

fn gemini_reply_to_openai(case: &Path, args: &Value) -> Outputs {
    reply(gemini::to_openai_response(
        &input(case),
        arg(args, "model"),
        arg(args, "id"),
    ))
}

fn gemini_stream_to_openai(case: &Path, args: &Value) -> Outputs {
    let (model, id) = (arg(args, "model"), arg(args, "id"));
    let include_usage = flag(args, "include_usage");
    feed_stream(
        &input(case),
        || gemini::StreamTranslator::new(model, id, include_usage),
        |t, piece| t.feed(piece),
        |t, fed| done_at_done_marker(t.is_done(), fed),
    )
}

fn openai_to_ollama(case: &Path, args: &Value) -> Outputs {
    let input = input(case);
    let result = ollama::translate_request(&input, arg(args, "model"), flag(args, "stream"));
    request_with_usage_flag(&input, result)
}

fn ollama_reply_to_openai(case: &Path, args: &Value) -> Outputs {
    reply(ollama::translate_response(
        &input(case),
        arg(args, "model"),
        arg(args, "id"),
    ))
}

fn ollama_stream_to_openai(case: &Path, args: &Value) -> Outputs {
    let (model, id) = (arg(args, "model"), arg(args, "id"));
    let include_usage = flag(args, "include_usage");
    feed_stream(
        &input(case),
        || ollama::StreamTranslator::new(model, id, include_usage),
        |t, piece| t.feed(piece),
        |t, fed| done_at_done_marker(t.is_done(), fed),
    )
}

/// `args.json`: `provider` (`anthropic`, `gemini` or `openai`, which also reads Ollama's
/// bare `{"error": "…"}`) and the upstream `status`. The output is the classification and
/// what an OpenAI and an Anthropic client get (status and body).
fn provider_errors(case: &Path, args: &Value) -> Outputs {
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
fn responses_to_chat(case: &Path, args: &Value) -> Outputs {
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

fn chat_reply_to_responses(case: &Path, args: &Value) -> Outputs {
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
    let mut d = super::sse::SseDecoder::default();
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
fn chat_stream_to_responses(case: &Path, args: &Value) -> Outputs {
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

fn chat_to_responses(case: &Path, _: &Value) -> Outputs {
    let input = input(case);
    let result = responses::from_chat_request(&input);
    request_with_usage_flag(&input, result)
}

fn responses_reply_to_chat(case: &Path, args: &Value) -> Outputs {
    reply(responses::to_chat_response(
        &input(case),
        arg(args, "model"),
    ))
}

/// An error that arrives with chunks in the same bytes comes with the next call: the
/// input's end is one more (empty) `feed`.
fn responses_stream_to_chat(case: &Path, args: &Value) -> Outputs {
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

#[test]
fn golden_anthropic_to_openai() {
    run("anthropic_to_openai");
}

#[test]
fn golden_openai_reply_to_anthropic() {
    run("openai_reply_to_anthropic");
}

#[test]
fn golden_openai_stream_to_anthropic() {
    run("openai_stream_to_anthropic");
}

#[test]
fn golden_anthropic_error_body() {
    run("anthropic_error_body");
}

#[test]
fn golden_openai_to_anthropic_backend() {
    run("openai_to_anthropic_backend");
}

#[test]
fn golden_anthropic_reply_to_openai() {
    run("anthropic_reply_to_openai");
}

#[test]
fn golden_anthropic_stream_to_openai() {
    run("anthropic_stream_to_openai");
}

#[test]
fn golden_openai_to_gemini() {
    run("openai_to_gemini");
}

#[test]
fn golden_openai_to_gemini_count_tokens() {
    run("openai_to_gemini_count_tokens");
}

#[test]
fn golden_gemini_count_tokens_reply() {
    run("gemini_count_tokens_reply");
}

#[test]
fn golden_gemini_reply_to_openai() {
    run("gemini_reply_to_openai");
}

#[test]
fn golden_gemini_stream_to_openai() {
    run("gemini_stream_to_openai");
}

#[test]
fn golden_openai_to_ollama() {
    run("openai_to_ollama");
}

#[test]
fn golden_ollama_reply_to_openai() {
    run("ollama_reply_to_openai");
}

#[test]
fn golden_ollama_stream_to_openai() {
    run("ollama_stream_to_openai");
}

#[test]
fn golden_provider_errors() {
    run("provider_errors");
}

#[test]
fn golden_responses_to_chat() {
    run("responses_to_chat");
}

#[test]
fn golden_chat_reply_to_responses() {
    run("chat_reply_to_responses");
}

#[test]
fn golden_chat_stream_to_responses() {
    run("chat_stream_to_responses");
}

#[test]
fn golden_chat_to_responses() {
    run("chat_to_responses");
}

#[test]
fn golden_responses_reply_to_chat() {
    run("responses_reply_to_chat");
}

#[test]
fn golden_responses_stream_to_chat() {
    run("responses_stream_to_chat");
}

/// Every directory is a known translation, and each translation's README names each of
/// its cases (with the documentation page it is modelled on).
#[test]
fn golden_layout_is_complete() {
    let known: Vec<&str> = TRANSLATIONS.iter().map(|(name, _)| *name).collect();
    let check = |dir: &Path, problems: &mut Vec<String>| {
        for translation in case_dirs(dir) {
            let name = translation
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            if name == "known_bugs" {
                continue;
            }
            if !known.contains(&name.as_ref()) {
                problems.push(format!("{} is no known translation", translation.display()));
                continue;
            }
            let readme = fs::read_to_string(translation.join("README.md")).unwrap_or_default();
            for case in case_dirs(&translation) {
                let case = case.file_name().unwrap_or_default().to_string_lossy();
                if !readme.contains(&format!("`{case}`")) {
                    problems.push(format!(
                        "{}/README.md does not describe `{case}`",
                        translation.display()
                    ));
                }
            }
        }
    };
    let mut problems = Vec::new();
    check(&root(), &mut problems);
    let bugs = root().join("known_bugs");
    if bugs.is_dir() {
        check(&bugs, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The known bugs: each must still differ from its (correct) expected output. Ignored in
/// normal runs; `-- --ignored` prints their diffs.
#[test]
#[ignore = "known translation bugs: their golden files hold the correct output"]
fn golden_known_bugs() {
    let bugs = root().join("known_bugs");
    let mut fixed = Vec::new();
    for translation in case_dirs(&bugs) {
        let name = translation
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let run = runner(&name);
        for case in case_dirs(&translation) {
            let label = format!(
                "known_bugs/{name}/{}",
                case.file_name().unwrap_or_default().to_string_lossy()
            );
            let problems = settle(&case, run(&case, &args(&case)), false);
            if problems.is_empty() {
                fixed.push(label);
            } else {
                eprintln!("=== {label} (still wrong):\n{}", problems.join("\n"));
            }
        }
    }
    assert!(
        fixed.is_empty(),
        "these known bugs are fixed; move them out of known_bugs/: {fixed:?}"
    );
}

#[test]
fn golden_normalisation_only_touches_created() {
    assert_eq!(
        normalise(r#"{"id":"chatcmpl-7","created":1741570283,"x":"\"created\":5"}"#),
        r#"{"id":"chatcmpl-7","created":0,"x":"\"created\":5"}"#
    );
    let mut v = json!({"created": 17, "choices": [{"created": "kept"}], "usage": {"created": 3}});
    normalise_json(&mut v);
    assert_eq!(
        v,
        json!({"created": 0, "choices": [{"created": "kept"}], "usage": {"created": 0}})
    );
}
