//! Config parsing (YAML and TOML), `${VAR}` substitution and validation, and the
//! `config migrate` rewriter: errors for bad input, never a panic or a hang.
#![no_main]

// The allocation guard (see `continuum_fuzz::MAX_ALLOCATION`).
extern crate continuum_fuzz;

use std::collections::HashMap;
use std::sync::OnceLock;

use continuum::config::{from_text, migrate::migrate, Format, Strictness};
use continuum::fuzzing::substitute;
use libfuzzer_sys::fuzz_target;

/// A fixed environment: set, empty and self-referring variables.
fn env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        [
            ("HOME", "/home/fuzz"),
            ("OPENAI_API_KEY", "sk-fuzz"),
            ("EMPTY", ""),
            ("NESTED", "${OPENAI_API_KEY}"),
            ("URL", "http://127.0.0.1:9"),
            ("PORT", "8080"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = env();
    let strictness = if data.len() % 2 == 0 {
        Strictness::Validate
    } else {
        Strictness::Serve
    };
    for format in [Format::Yaml, Format::Toml] {
        let _ = from_text(text, format, "fuzz.conf", env, strictness);
        let _ = migrate(text, format);
    }
    match substitute(text, env) {
        Ok(Some(out)) if !text.contains("${") => assert_eq!(out, text),
        // Values are substituted once: a variable's own `${...}` is kept as it is.
        Ok(Some(out)) => assert!(out.len() <= text.len() + 64 * text.matches("${").count()),
        Ok(None) | Err(_) => {}
    }
});
