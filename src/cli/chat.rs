//! `continuum chat`: one prompt answered as it streams (`PROMPT`, or `-` for stdin), or an
//! interactive conversation with history and `/model`, `/system`, `/clear`, `/exit`.
//! Ctrl-C cancels the answer being streamed, not the session.

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
        None => repl(&rt, &client, model, args.system),
    };
    drop(target);
    code
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn messages(system: Option<&str>, history: &[Value]) -> Vec<Value> {
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
    let result = rt.block_on(client.chat_stream(model, &messages(system, &history), |t| {
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

/// How a streamed answer ended in the REPL.
enum Answer {
    Done(String),
    Cancelled(String),
    Failed(String),
}

fn repl(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    mut model: String,
    mut system: Option<String>,
) -> ExitCode {
    let tty = std::io::stdin().is_terminal();
    eprintln!(
        "chatting with {model} at {} — /model NAME, /system TEXT, /clear, /exit; Ctrl-C stops an answer",
        client.root()
    );
    // Ctrl-C is ours from here on: it stops an answer and never ends the session.
    let mut interrupts = {
        let _in_runtime = rt.enter();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => return fail(&format!("cannot listen for Ctrl-C: {e}")),
        }
    };
    let mut history: Vec<Value> = Vec::new();
    let mut lines = LineSource::new(tty);
    loop {
        let Some(line) = lines.next() else {
            return ExitCode::SUCCESS;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(command) = line.strip_prefix('/') {
            let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
            let rest = rest.trim();
            match name {
                "exit" | "quit" => return ExitCode::SUCCESS,
                "clear" => {
                    history.clear();
                    eprintln!("(conversation cleared)");
                }
                "model" if !rest.is_empty() => {
                    model = rest.to_string();
                    eprintln!("model: {model}");
                }
                "model" => eprintln!("model: {model}"),
                "system" if rest.is_empty() => {
                    system = None;
                    eprintln!("(system prompt removed)");
                }
                "system" => {
                    system = Some(rest.to_string());
                    eprintln!("system: {rest}");
                }
                "help" => eprintln!("/model NAME, /system TEXT, /clear, /exit"),
                other => eprintln!("unknown command /{other} (try /help)"),
            }
            continue;
        }
        history.push(json!({"role": "user", "content": line}));
        let asked = messages(system.as_deref(), &history);
        match answer(rt, client, &model, &asked, &mut interrupts) {
            Answer::Done(text) => history.push(json!({"role": "assistant", "content": text})),
            Answer::Cancelled(text) => {
                eprintln!("\n[cancelled]");
                if text.is_empty() {
                    history.pop();
                } else {
                    history.push(json!({"role": "assistant", "content": text}));
                }
            }
            Answer::Failed(message) => {
                eprintln!("error: {message}");
                history.pop();
            }
        }
    }
}

/// Streams one answer to stdout until it ends or Ctrl-C.
fn answer(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    model: &str,
    messages: &[Value],
    interrupts: &mut tokio::signal::unix::Signal,
) -> Answer {
    let mut text = String::new();
    rt.block_on(async {
        let stream = client.chat_stream(model, messages, |t| {
            text.push_str(t);
            output::write_stdout(t.as_bytes());
        });
        tokio::select! {
            r = stream => match r {
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            },
            _ = interrupts.recv() => Some(String::new()),
        }
    })
    .map_or_else(
        || {
            outln!();
            Answer::Done(text.clone())
        },
        |e| {
            if e.is_empty() {
                Answer::Cancelled(text.clone())
            } else {
                outln!();
                Answer::Failed(e)
            }
        },
    )
}

/// Lines typed at a prompt with history (a terminal), or read from piped stdin.
struct LineSource {
    history: Option<dialoguer::BasicHistory>,
    stdin: std::io::Lines<std::io::StdinLock<'static>>,
}

impl LineSource {
    fn new(tty: bool) -> LineSource {
        use std::io::BufRead;
        LineSource {
            history: tty.then(|| dialoguer::BasicHistory::new().max_entries(500)),
            stdin: std::io::stdin().lock().lines(),
        }
    }

    fn next(&mut self) -> Option<String> {
        let Some(history) = &mut self.history else {
            return self.stdin.next()?.ok();
        };
        loop {
            let read = dialoguer::Input::<String>::new()
                .with_prompt("you")
                .allow_empty(true)
                .history_with(history)
                .interact_text();
            match read {
                Ok(line) => return Some(line),
                Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                    eprintln!("(Ctrl-C stops an answer; /exit or Ctrl-D leaves)");
                }
                Err(_) => return None,
            }
        }
    }
}
