//! The interactive `continuum chat`: a real line editor (rustyline: Ctrl-A/E/U/K/W, arrows,
//! Ctrl-R history search) with history kept in the user's data directory, slash commands,
//! multi-line input (a line ending in `\` continues), Ctrl-C stopping the answer being
//! streamed and Ctrl-D leaving. Piped stdin is read line by line with the same commands.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use continuum::client::Client;
use rustyline::error::ReadlineError;
use rustyline::history::{FileHistory, History};
use serde_json::{json, Map, Value};

use super::output::{self, outln};

/// Everything a conversation carries from one question to the next.
struct Session {
    model: String,
    system: Option<String>,
    /// Request fields set with `/set` (`temperature`, `max_tokens`).
    settings: Map<String, Value>,
    history: Vec<Value>,
}

/// How a streamed answer ended.
enum Answer {
    Done(String),
    Cancelled(String),
    Failed(String),
}

const HELP: &str = "commands:
  /model NAME        talk to another model (checked against the router's list)
  /models            the models the router serves
  /system [TEXT]     set (or, without TEXT, remove) the system prompt
  /set temperature X  sampling temperature, 0 to 2 (`/set temperature default` unsets it)
  /set max_tokens N  longest answer in tokens (`/set max_tokens default` unsets it)
  /set               show the settings
  /clear             forget the conversation
  /exit, /quit       leave (so does Ctrl-D)
a line ending in \\ continues on the next line; Ctrl-C stops an answer";

/// Runs the conversation until `/exit`, Ctrl-D or the end of piped input.
pub fn run(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    model: String,
    system: Option<String>,
    tty: bool,
) -> ExitCode {
    eprintln!(
        "chatting with {model} at {} — /help for commands; Ctrl-C stops an answer, Ctrl-D leaves",
        client.root()
    );
    // Ctrl-C is ours from here on: during an answer it stops the answer (the editor reads
    // Ctrl-C at the prompt as a key, so no signal arrives then).
    let mut interrupts = {
        let _in_runtime = rt.enter();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen for Ctrl-C: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let mut input = match Input::new(tty) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut s = Session {
        model,
        system,
        settings: Map::new(),
        history: Vec::new(),
    };
    while let Some(text) = input.read() {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(command) = text.strip_prefix('/') {
            if !command_ran(rt, client, &mut s, command) {
                break;
            }
            continue;
        }
        drain(&mut interrupts);
        s.history.push(json!({"role": "user", "content": text}));
        let asked = super::chat::messages(s.system.as_deref(), &s.history);
        match answer(rt, client, &s, &asked, &mut interrupts) {
            Answer::Done(text) => s
                .history
                .push(json!({"role": "assistant", "content": text})),
            Answer::Cancelled(text) => {
                eprintln!("\n[cancelled]");
                if text.is_empty() {
                    s.history.pop();
                } else {
                    s.history
                        .push(json!({"role": "assistant", "content": text}));
                }
            }
            Answer::Failed(message) => {
                eprintln!("error: {message}");
                s.history.pop();
            }
        }
    }
    input.save();
    ExitCode::SUCCESS
}

/// Signals that arrived while no answer was streaming are not meant for the next one.
fn drain(interrupts: &mut tokio::signal::unix::Signal) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while let std::task::Poll::Ready(Some(())) = interrupts.poll_recv(&mut cx) {}
}

/// Runs one slash command; false when the session should end.
fn command_ran(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    s: &mut Session,
    command: &str,
) -> bool {
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    let rest = rest.trim();
    match name {
        "exit" | "quit" => return false,
        "help" => eprintln!("{HELP}"),
        "clear" => {
            s.history.clear();
            eprintln!("(conversation cleared)");
        }
        "models" => match rt.block_on(model_ids(client)) {
            Ok(ids) => {
                for id in ids {
                    let mark = if id == s.model { "*" } else { " " };
                    outln!("{mark} {id}");
                }
            }
            Err(e) => eprintln!("error: {e}"),
        },
        "model" if rest.is_empty() => eprintln!("model: {}", s.model),
        "model" => match rt.block_on(model_ids(client)) {
            Ok(ids) if serves(&ids, rest) => {
                s.model = rest.to_string();
                eprintln!("model: {}", s.model);
            }
            Ok(_) => eprintln!(
                "error: {} does not serve a model '{rest}'; /models lists them (still {})",
                client.root(),
                s.model
            ),
            Err(e) => eprintln!("error: {e}"),
        },
        "system" if rest.is_empty() => {
            s.system = None;
            eprintln!("(system prompt removed)");
        }
        "system" => {
            s.system = Some(rest.to_string());
            eprintln!("system: {rest}");
        }
        "set" => set(s, rest),
        other => eprintln!("unknown command /{other} (try /help)"),
    }
    true
}

/// Whether `name` is one of `ids`, or a backend-pinned form (`backend/model`) of one.
fn serves(ids: &[String], name: &str) -> bool {
    ids.iter().any(|id| id == name)
        || name
            .split_once('/')
            .is_some_and(|(_, model)| ids.iter().any(|id| id == model))
}

async fn model_ids(client: &Client) -> Result<Vec<String>, String> {
    let models = client.models().await.map_err(|e| e.to_string())?;
    Ok(models["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect())
}

/// `/set`, `/set temperature X`, `/set max_tokens N` (`default` unsets).
fn set(s: &mut Session, rest: &str) {
    let mut words = rest.split_whitespace();
    let (Some(key), Some(value)) = (words.next(), words.next()) else {
        if s.settings.is_empty() {
            eprintln!("(no settings: the model's defaults apply)");
        }
        for (k, v) in &s.settings {
            eprintln!("{k} = {v}");
        }
        return;
    };
    let parsed = match key {
        _ if value == "default" => Ok(None),
        "temperature" => match value.parse::<f64>() {
            Ok(t) if (0.0..=2.0).contains(&t) => Ok(Some(json!(t))),
            _ => Err(format!("temperature '{value}' is not a number from 0 to 2")),
        },
        "max_tokens" => match value.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some(json!(n))),
            _ => Err(format!(
                "max_tokens '{value}' is not a whole number above 0"
            )),
        },
        other => Err(format!(
            "cannot set '{other}'; try temperature or max_tokens"
        )),
    };
    match parsed {
        Ok(Some(v)) => {
            eprintln!("{key} = {v}");
            s.settings.insert(key.to_string(), v);
        }
        Ok(None) => {
            s.settings.remove(key);
            eprintln!("{key}: the model's default");
        }
        Err(e) => eprintln!("error: {e}"),
    }
}

/// Streams one answer to stdout until it ends or Ctrl-C.
fn answer(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    s: &Session,
    messages: &[Value],
    interrupts: &mut tokio::signal::unix::Signal,
) -> Answer {
    let mut text = String::new();
    let ended = rt.block_on(async {
        let stream = client.chat_stream(&s.model, messages, &s.settings, |t| {
            text.push_str(t);
            output::write_stdout(t.as_bytes());
        });
        tokio::select! {
            r = stream => Some(r),
            _ = interrupts.recv() => None,
        }
    });
    match ended {
        None => Answer::Cancelled(text),
        Some(Ok(())) => {
            outln!();
            Answer::Done(text)
        }
        Some(Err(e)) => {
            if !text.is_empty() {
                outln!();
            }
            Answer::Failed(e.to_string())
        }
    }
}

/// Where typed lines come from: the line editor on a terminal, else piped stdin.
enum Input {
    /// The editor exists only while a line is read: it takes SIGINT for itself while it
    /// lives, and the answer after the line needs Ctrl-C to reach the REPL's handler.
    Editor {
        config: rustyline::Config,
        history: FileHistory,
        file: Option<PathBuf>,
    },
    Piped(std::io::Lines<std::io::StdinLock<'static>>),
}

impl Input {
    fn new(tty: bool) -> Result<Input, ReadlineError> {
        if !tty {
            return Ok(Input::Piped(std::io::stdin().lock().lines()));
        }
        let config = rustyline::Config::builder()
            .max_history_size(1000)?
            .auto_add_history(false)
            .build();
        let mut history = FileHistory::with_config(&config);
        let file = history_file();
        if let Some(file) = &file {
            // A first run has no history yet.
            let _ = history.load(file);
        }
        Ok(Input::Editor {
            config,
            history,
            file,
        })
    }

    /// The next question (continued lines joined), or `None` at the end.
    fn read(&mut self) -> Option<String> {
        let mut text = String::new();
        let mut prompt = "you> ";
        loop {
            let line = self.line(prompt)?;
            match line.strip_suffix('\\') {
                Some(head) => {
                    text.push_str(head);
                    text.push('\n');
                    prompt = "...  ";
                }
                None => {
                    text.push_str(&line);
                    break;
                }
            }
        }
        if let Input::Editor { history, .. } = self {
            if !text.trim().is_empty() {
                let _ = history.add(text.as_str());
            }
        }
        Some(text)
    }

    fn line(&mut self, prompt: &str) -> Option<String> {
        let (config, history) = match self {
            Input::Piped(lines) => return lines.next()?.ok(),
            Input::Editor {
                config, history, ..
            } => (config, history),
        };
        let taken = std::mem::replace(history, FileHistory::with_config(config));
        let mut editor =
            match rustyline::Editor::<(), FileHistory>::with_history(config.clone(), taken) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("error: cannot start the line editor: {e}");
                    return None;
                }
            };
        let read = loop {
            match editor.readline(prompt) {
                Ok(line) => break Some(line),
                Err(ReadlineError::Interrupted) => {
                    eprintln!("(Ctrl-C stops an answer; /exit or Ctrl-D leaves)");
                }
                Err(ReadlineError::Eof) => break None,
                Err(e) => {
                    eprintln!("error: cannot read the terminal: {e}");
                    break None;
                }
            }
        };
        *history = std::mem::replace(editor.history_mut(), FileHistory::with_config(config));
        read
    }

    /// Writes the history back to the user's data directory.
    fn save(&mut self) {
        let Input::Editor {
            history,
            file: Some(file),
            ..
        } = self
        else {
            return;
        };
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = history.save(file) {
            eprintln!("note: the history was not saved to {}: {e}", file.display());
        }
    }
}

/// `$XDG_DATA_HOME/continuum/chat_history`, else `~/.local/share/continuum/chat_history`.
fn history_file() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("continuum/chat_history"))
}
