//! The golden-file harness: reading cases, normalising, comparing or regenerating the
//! expected files, and feeding streams cut several ways.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{root, updating, Output, Outputs, Runner, TRANSLATIONS, UPDATE_VAR};

// ---------------------------------------------------------------------------------------
// Reading cases

/// The case directories of `dir`, sorted by name.
pub(super) fn case_dirs(dir: &Path) -> Vec<PathBuf> {
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

pub(super) fn input(case: &Path) -> Vec<u8> {
    let path = input_path(case);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The case's `args.json`, or `{}`.
pub(super) fn args(case: &Path) -> Value {
    let path = case.join("args.json");
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display())),
        Err(_) => json!({}),
    }
}

pub(super) fn arg<'a>(args: &'a Value, key: &str) -> &'a str {
    args[key]
        .as_str()
        .unwrap_or_else(|| panic!("args.json needs a string \"{key}\""))
}

pub(super) fn flag(args: &Value, key: &str) -> bool {
    args[key]
        .as_bool()
        .unwrap_or_else(|| panic!("args.json needs a boolean \"{key}\""))
}

pub(super) fn parse(bytes: &[u8], what: &str) -> Value {
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
pub(super) fn normalise(text: &str) -> String {
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
pub(super) fn normalise_json(v: &mut Value) {
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
pub(super) fn settle(case: &Path, outputs: Outputs, update: bool) -> Vec<String> {
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

pub(super) fn runner(translation: &str) -> Runner {
    TRANSLATIONS
        .iter()
        .find(|(name, _)| *name == translation)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no translation is called {translation}"))
}

/// Runs every case of `translation`; fails with a readable report of each difference.
pub(super) fn run(translation: &str) {
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
pub(super) struct Fed {
    pub(super) text: String,
    pub(super) error: Option<String>,
}

/// Feeds `input` cut every way into a fresh translator (from `make`); `done` must agree
/// with the text. The outputs are those of the whole input; a cut that gives another
/// result is a problem.
pub(super) fn feed_stream<T>(
    input: &[u8],
    make: impl Fn() -> T,
    feed: impl Fn(&mut T, &[u8]) -> Result<String, String>,
    done: impl Fn(&T, &Fed) -> Result<(), String>,
) -> Outputs {
    feed_stream_ending(input, make, feed, |_| Ok(String::new()), done)
}

/// [`feed_stream`] for translators told when their input ends: `end` runs after the last
/// piece (unless a piece failed), and what it returns is part of the output.
pub(super) fn feed_stream_ending<T>(
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
pub(super) fn done_at_done_marker(done: bool, fed: &Fed) -> Result<(), String> {
    let ended = fed.text.ends_with("data: [DONE]\n\n");
    if fed.error.is_none() && done != ended {
        return Err(format!(
            "is_done() is {done} but the text ends with [DONE]: {ended}"
        ));
    }
    Ok(())
}
