//! The tools the agent offers the model, run through what the client declared it can do
//! (`fs/read_text_file`, `fs/write_text_file`, `terminal/*`) and through the session's MCP
//! servers; and which of them may run without asking (permissions and session modes).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::rpc::{Peer, RpcError};
use super::schema::ClientCapabilities;
use super::session::Session;
use crate::config::acp::{PermissionsConfig, Policy};

/// Most bytes of a command's output kept for the model.
const OUTPUT_LIMIT: u64 = 64 * 1024;

/// How a tool is carried out.
#[derive(Debug, Clone)]
pub enum Action {
    /// `fs/read_text_file`.
    ReadFile,
    /// `fs/write_text_file`.
    WriteFile,
    /// `terminal/create` and its kin.
    RunCommand,
    /// A tool of the session's MCP server at this index.
    Mcp {
        /// The server's index in the session.
        server: usize,
        /// The tool's name on the server.
        tool: String,
    },
}

/// A tool offered to the model.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Its name for the model.
    pub name: String,
    /// Its ACP kind (what permissions are given by).
    pub kind: &'static str,
    /// Its OpenAI `tools` entry.
    pub def: Value,
    /// How it is carried out.
    pub action: Action,
}

fn function(name: &str, description: &str, parameters: Value) -> Value {
    json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}})
}

/// The tools a session offers: the client's own (as its capabilities allow), then each
/// MCP server's, named `SERVER__TOOL`.
pub fn toolset(caps: &ClientCapabilities, session: &Session) -> Vec<Tool> {
    let mut tools = Vec::new();
    if caps.fs.read_text_file {
        tools.push(Tool {
            name: "read_file".into(),
            kind: "read",
            def: function(
                "read_file",
                "Read a text file of the user's project (the editor's copy, unsaved changes included).",
                json!({"type": "object", "properties": {
                    "path": {"type": "string", "description": "Path, absolute or relative to the working directory"},
                    "line": {"type": "integer", "description": "First line to read (1-based)"},
                    "limit": {"type": "integer", "description": "Most lines to read"}
                }, "required": ["path"]}),
            ),
            action: Action::ReadFile,
        });
    }
    if caps.fs.write_text_file {
        tools.push(Tool {
            name: "write_file".into(),
            kind: "edit",
            def: function(
                "write_file",
                "Write a text file of the user's project, replacing its whole content.",
                json!({"type": "object", "properties": {
                    "path": {"type": "string", "description": "Path, absolute or relative to the working directory"},
                    "content": {"type": "string", "description": "The file's new content"}
                }, "required": ["path", "content"]}),
            ),
            action: Action::WriteFile,
        });
    }
    if caps.terminal {
        tools.push(Tool {
            name: "run_command".into(),
            kind: "execute",
            def: function(
                "run_command",
                "Run a program in the user's terminal and return its exit status and output.",
                json!({"type": "object", "properties": {
                    "command": {"type": "string", "description": "The program"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "cwd": {"type": "string", "description": "Working directory (default: the session's)"}
                }, "required": ["command"]}),
            ),
            action: Action::RunCommand,
        });
    }
    for (i, server) in session.mcp.iter().enumerate() {
        for t in &server.tools {
            let name = mcp_name(&server.name, &t.name);
            tools.push(Tool {
                kind: t.kind(),
                def: function(&name, &t.description, t.input_schema.clone()),
                name,
                action: Action::Mcp {
                    server: i,
                    tool: t.name.clone(),
                },
            });
        }
    }
    tools
}

/// `SERVER__TOOL` in the characters function names may use, at most 64.
fn mcp_name(server: &str, tool: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut name = format!("{}__{}", clean(server), clean(tool));
    name.truncate(64);
    name
}

/// Whether a tool call may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Run,
    /// Ask the user first.
    Ask,
    /// Refuse it, telling the model why.
    Refuse(String),
}

/// What `tool` gets in `mode` under `permissions`, given the session's "always" answers.
pub fn decide(
    permissions: &PermissionsConfig,
    mode: &str,
    tool: &Tool,
    always: Option<bool>,
) -> Decision {
    let kind = tool.kind;
    if mode == "read_only" && !matches!(kind, "read" | "search" | "think" | "fetch") {
        return Decision::Refuse(format!(
            "the session is in read-only mode, so {} ({kind}) was not run",
            tool.name
        ));
    }
    match always {
        Some(true) => return Decision::Run,
        Some(false) => {
            return Decision::Refuse(format!("the user always rejects {}", tool.name));
        }
        None => {}
    }
    if mode == "accept_edits" && kind == "edit" {
        return Decision::Run;
    }
    match permissions.policy(kind) {
        Policy::Allow => Decision::Run,
        Policy::Ask => Decision::Ask,
        Policy::Deny => Decision::Refuse(format!(
            "{kind} tools are denied by this agent's configuration (acp.permissions)"
        )),
    }
}

/// The title, locations and extra content a call is shown with before it runs.
pub fn describe(tool: &Tool, args: &Value, cwd: &Path) -> (String, Vec<Value>) {
    let path = args["path"].as_str().map(|p| resolve(cwd, p));
    let locations: Vec<Value> = path
        .iter()
        .map(|p| match args["line"].as_u64() {
            Some(line) => json!({"path": p, "line": line}),
            None => json!({"path": p}),
        })
        .collect();
    let shown = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or(String::new(), |p| p.display().to_string())
    };
    let title = match &tool.action {
        Action::ReadFile => format!("Read {}", shown(&path)),
        Action::WriteFile => format!("Write {}", shown(&path)),
        Action::RunCommand => {
            let mut words = vec![args["command"].as_str().unwrap_or("").to_string()];
            for a in args["args"].as_array().into_iter().flatten() {
                words.push(a.as_str().unwrap_or("").to_string());
            }
            format!("Run `{}`", words.join(" "))
        }
        Action::Mcp { tool: name, .. } => {
            format!("{}: {name}", tool.name.split("__").next().unwrap_or(""))
        }
    };
    (title, locations)
}

/// A path the model gave, absolute (relative ones are taken from `cwd`).
pub fn resolve(cwd: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// What a tool call came to: the text the model gets, the content the user sees, and
/// whether it failed.
#[derive(Debug)]
pub struct Outcome {
    /// For the model (the `tool` message).
    pub for_model: String,
    /// ACP tool-call content for the user.
    pub content: Vec<Value>,
    /// It failed.
    pub failed: bool,
}

impl Outcome {
    fn ok(for_model: String, content: Vec<Value>) -> Outcome {
        Outcome {
            for_model,
            content,
            failed: false,
        }
    }

    /// A failure, shown to both.
    pub fn failed(why: String) -> Outcome {
        Outcome {
            content: vec![text_content(&why)],
            for_model: format!("Error: {why}"),
            failed: true,
        }
    }
}

/// ACP tool-call content of plain text.
pub fn text_content(text: &str) -> Value {
    json!({"type": "content", "content": {"type": "text", "text": text}})
}

/// Carries out `tool` with `args` for `session` (relative paths from `cwd`); a command
/// in the client's terminal is stopped when `cancel` says so.
pub async fn run(
    peer: &Peer,
    session: &Session,
    cwd: &Path,
    tool: &Tool,
    args: &Value,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Outcome {
    let sid = &session.id;
    let path = args["path"].as_str().map(|p| resolve(cwd, p));
    let missing =
        |field: &str| Outcome::failed(format!("{} needs a '{field}' argument", tool.name));
    match &tool.action {
        Action::ReadFile => {
            let Some(path) = path else {
                return missing("path");
            };
            let mut params = json!({"sessionId": sid, "path": path});
            for k in ["line", "limit"] {
                if let Some(n) = args[k].as_u64() {
                    params[k] = json!(n);
                }
            }
            match peer.request("fs/read_text_file", params).await {
                Ok(r) => {
                    let text = r["content"].as_str().unwrap_or("").to_string();
                    Outcome::ok(text, Vec::new())
                }
                Err(e) => {
                    Outcome::failed(format!("reading {} failed: {}", path.display(), e.message))
                }
            }
        }
        Action::WriteFile => {
            let Some(path) = path else {
                return missing("path");
            };
            let Some(content) = args["content"].as_str() else {
                return missing("content");
            };
            let params = json!({"sessionId": sid, "path": path, "content": content});
            match peer.request("fs/write_text_file", params).await {
                Ok(_) => Outcome::ok(
                    format!("Wrote {} ({} bytes).", path.display(), content.len()),
                    vec![json!({"type": "diff", "path": path, "newText": content})],
                ),
                Err(e) => {
                    Outcome::failed(format!("writing {} failed: {}", path.display(), e.message))
                }
            }
        }
        Action::RunCommand => run_command(peer, sid, cwd, args, cancel).await,
        Action::Mcp { server, tool: name } => {
            let Some(conn) = session.mcp.get(*server) else {
                return Outcome::failed(format!("{} is no longer connected", tool.name));
            };
            let arguments = if args.is_object() {
                args.clone()
            } else {
                json!({})
            };
            match conn.call(name, arguments).await {
                Ok(r) if r.is_error => Outcome::failed(r.text),
                Ok(r) => Outcome::ok(r.text.clone(), vec![text_content(&r.text)]),
                Err(e) => Outcome::failed(e.to_string()),
            }
        }
    }
}

async fn run_command(
    peer: &Peer,
    sid: &str,
    cwd: &Path,
    args: &Value,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Outcome {
    let Some(command) = args["command"].as_str() else {
        return Outcome::failed("run_command needs a 'command' argument".into());
    };
    let dir = args["cwd"]
        .as_str()
        .map_or_else(|| cwd.to_path_buf(), |d| resolve(cwd, d));
    // The protocol takes strings; a model may write numbers.
    let argv: Vec<String> = args["args"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
        .collect();
    let create = json!({
        "sessionId": sid,
        "command": command,
        "args": argv,
        "cwd": dir,
        "outputByteLimit": OUTPUT_LIMIT,
    });
    let created = match peer.request("terminal/create", create).await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::failed(format!(
                "the terminal could not start {command}: {}",
                e.message
            ))
        }
    };
    let Some(terminal) = created["terminalId"].as_str().map(str::to_string) else {
        return Outcome::failed("the client created no terminal".into());
    };
    let ids = json!({"sessionId": sid, "terminalId": terminal});
    let exited = tokio::select! {
        x = peer.request("terminal/wait_for_exit", ids.clone()) => Some(x),
        _ = cancel.wait_for(|c| *c) => None,
    };
    let Some(exited) = exited else {
        // Stopped by the user: the command must not go on running in the editor.
        let _ = peer.request("terminal/kill", ids.clone()).await;
        let _ = peer.request("terminal/release", ids).await;
        return Outcome::failed(format!("{command} was stopped (the prompt was cancelled)"));
    };
    let output = peer.request("terminal/output", ids.clone()).await;
    let _ = peer.request("terminal/release", ids).await;
    let (exited, output) = match (exited, output) {
        (Ok(x), Ok(o)) => (x, o),
        (Err(e), _) | (_, Err(e)) => return Outcome::failed(format!("{command}: {}", e.message)),
    };
    let status = match (exited["exitCode"].as_i64(), exited["signal"].as_str()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by {sig}"),
        _ => "finished".to_string(),
    };
    let truncated = if output["truncated"].as_bool() == Some(true) {
        " (output truncated)"
    } else {
        ""
    };
    let text = format!(
        "{status}{truncated}\n{}",
        output["output"].as_str().unwrap_or("")
    );
    Outcome {
        failed: exited["exitCode"].as_i64().is_some_and(|c| c != 0),
        content: vec![json!({"type": "terminal", "terminalId": terminal})],
        for_model: text,
    }
}

/// Asks the user about a tool call (`session/request_permission` with allow once, always
/// allow, reject and always reject); what they answered.
pub async fn ask(peer: &Peer, sid: &str, call: &Value) -> Result<Answer, RpcError> {
    let options = json!([
        {"optionId": "allow_once", "name": "Allow", "kind": "allow_once"},
        {"optionId": "allow_always", "name": "Always allow", "kind": "allow_always"},
        {"optionId": "reject_once", "name": "Reject", "kind": "reject_once"},
        {"optionId": "reject_always", "name": "Always reject", "kind": "reject_always"},
    ]);
    let params = json!({"sessionId": sid, "toolCall": call, "options": options});
    let answer = peer.request("session/request_permission", params).await?;
    let answer: super::schema::PermissionAnswer = serde_json::from_value(answer).map_err(|e| {
        RpcError::internal(format!("the client's permission answer is not one: {e}"))
    })?;
    use super::schema::PermissionOutcome;
    Ok(match answer.outcome {
        PermissionOutcome::Cancelled => Answer::Cancelled,
        PermissionOutcome::Selected { option_id } => match option_id.as_str() {
            "allow_once" => Answer::Allow { always: false },
            "allow_always" => Answer::Allow { always: true },
            "reject_always" => Answer::Reject { always: true },
            _ => Answer::Reject { always: false },
        },
    })
}

/// The user's answer to a permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Run it (and every later call of the tool, with `always`).
    Allow {
        /// For the rest of the session.
        always: bool,
    },
    /// Do not (nor any later call of the tool, with `always`).
    Reject {
        /// For the rest of the session.
        always: bool,
    },
    /// The prompt was cancelled while asking.
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(kind: &'static str) -> Tool {
        Tool {
            name: format!("t_{kind}"),
            kind,
            def: Value::Null,
            action: Action::ReadFile,
        }
    }

    #[test]
    fn modes_always_answers_and_policy_decide_in_that_order() {
        let p = crate::config::acp::AcpConfig::default().permissions;
        assert_eq!(decide(&p, "default", &tool("read"), None), Decision::Run);
        assert_eq!(decide(&p, "default", &tool("edit"), None), Decision::Ask);
        assert_eq!(decide(&p, "default", &tool("other"), None), Decision::Ask);
        assert_eq!(
            decide(&p, "accept_edits", &tool("edit"), None),
            Decision::Run
        );
        assert_eq!(
            decide(&p, "accept_edits", &tool("execute"), None),
            Decision::Ask
        );
        assert!(matches!(
            decide(&p, "read_only", &tool("edit"), Some(true)),
            Decision::Refuse(_)
        ));
        assert_eq!(decide(&p, "read_only", &tool("read"), None), Decision::Run);
        assert_eq!(
            decide(&p, "default", &tool("edit"), Some(true)),
            Decision::Run
        );
        assert!(matches!(
            decide(&p, "default", &tool("read"), Some(false)),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn mcp_tool_names_fit_function_name_rules() {
        assert_eq!(
            mcp_name("my server", "add.numbers"),
            "my_server__add_numbers"
        );
        assert_eq!(mcp_name(&"s".repeat(80), "t").len(), 64);
    }

    #[test]
    fn relative_paths_are_taken_from_the_working_directory() {
        assert_eq!(
            resolve(Path::new("/w"), "a/b.txt"),
            PathBuf::from("/w/a/b.txt")
        );
        assert_eq!(resolve(Path::new("/w"), "/etc/x"), PathBuf::from("/etc/x"));
    }
}
