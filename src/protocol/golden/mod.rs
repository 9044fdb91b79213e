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

mod harness;
mod responses;
mod translations;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use harness::{args, case_dirs, normalise, normalise_json, run, runner, settle};
use responses::*;
use translations::*;

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

/// The known bugs (none at present): each must still differ from its (correct) expected
/// output — one that starts passing has been fixed and must move out of `known_bugs/`.
/// `-- --nocapture` prints their diffs.
#[test]
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
