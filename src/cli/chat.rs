//! `continuum chat`: one prompt answered as it streams (`PROMPT`, or `-` for stdin), or an
//! interactive conversation (`repl.rs`).

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use continuum::client::Client;
use serde_json::{json, Value};

use super::output::{self, outln};
use super::target::{connect, runtime};
use super::ChatArgs;

/// Runs `continuum chat`.
pub fn run(args: ChatArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let e = &args.endpoint;
    let target = match rt.block_on(connect(
        e.remote.url.as_deref(),
        e.remote.api_key.as_deref(),
        e.config.as_deref(),
        e.in_process,
    )) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let client = target.client.clone();
    let model = match args.model.clone() {
        Some(m) => m,
        None => match rt.block_on(super::target::first_model(&client)) {
            Ok(m) => m,
            Err(e) => return fail(&e),
        },
    };
    let code = match args.prompt.as_deref() {
        Some(prompt) => {
            let prompt = if prompt == "-" {
                let mut text = String::new();
                if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                    return fail(&format!("cannot read the prompt from stdin: {e}"));
                }
                text
            } else {
                prompt.to_string()
            };
            one_shot(&rt, &client, &model, args.system.as_deref(), &prompt)
        }
        None => super::repl::run(
            &rt,
            &client,
            model,
            args.system,
            std::io::stdin().is_terminal(),
        ),
    };
    drop(target);
    code
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// The messages of a request: the system prompt, then the conversation.
pub(super) fn messages(system: Option<&str>, history: &[Value]) -> Vec<Value> {
    system
        .map(|s| json!({"role": "system", "content": s}))
        .into_iter()
        .chain(history.iter().cloned())
        .collect()
}

fn one_shot(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    model: &str,
    system: Option<&str>,
    prompt: &str,
) -> ExitCode {
    let history = [json!({"role": "user", "content": prompt})];
    let no_settings = serde_json::Map::new();
    let messages = messages(system, &history);
    let result = rt.block_on(client.chat_stream(model, &messages, &no_settings, |t| {
        output::write_stdout(t.as_bytes())
    }));
    match result {
        Ok(_) => {
            outln!();
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}
