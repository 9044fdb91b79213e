//! The raw protocol, without the SDK: bad lines, calls out of order, a client that goes away.

use super::*;
// ---------------------------------------------------------------------------------------
// The raw protocol, without the SDK
// ---------------------------------------------------------------------------------------

/// Parses one stdout line, which must be one JSON-RPC 2.0 message; panics naming it if not.
fn jsonrpc(line: &[u8]) -> Value {
    let shown = String::from_utf8_lossy(line);
    let v: Value = serde_json::from_slice(line)
        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {shown:?}"));
    let m = v
        .as_object()
        .unwrap_or_else(|| panic!("stdout line is not a JSON object: {shown}"));
    assert_eq!(m.get("jsonrpc"), Some(&json!("2.0")), "{shown}");
    if let Some(method) = m.get("method") {
        assert!(method.is_string(), "{shown}");
    } else {
        assert!(
            m.contains_key("id"),
            "neither a call nor a response: {shown}"
        );
        assert!(
            m.contains_key("result") != m.contains_key("error"),
            "a response needs exactly one of result and error: {shown}"
        );
        if let Some(e) = m.get("error") {
            assert!(e["code"].is_i64() && e["message"].is_string(), "{shown}");
        }
    }
    v
}

/// `continuum acp` (or other args) with piped stdio, spoken to line by line.
struct RawAgent {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Vec<u8>>,
    stderr: Arc<Mutex<String>>,
    /// Notifications (and the agent's own calls) read while waiting for responses.
    calls: Vec<Value>,
    next_id: i64,
}

impl RawAgent {
    fn start(args: &[&str]) -> RawAgent {
        let mut child = bin()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut err, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        RawAgent {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stderr,
            calls: Vec::new(),
            next_id: 1,
        }
    }

    fn acp(config: &Path) -> RawAgent {
        RawAgent::start(&["acp", "--config", config.to_str().unwrap()])
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin closed");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message on stdout, if one comes within `wait`.
    fn next(&mut self, wait: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(wait).ok()?;
        Some(jsonrpc(&line))
    }

    /// Reads until the response with `id`, keeping the calls read on the way.
    fn response(&mut self, id: &Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next(left).unwrap_or_else(|| {
                panic!(
                    "no response with id {id} within 15 s; stderr:\n{}",
                    self.stderr()
                )
            });
            if v.get("method").is_none() {
                assert_eq!(&v["id"], id, "a response to another request: {v}");
                return v;
            }
            self.calls.push(v);
        }
    }

    /// Sends a request and returns the whole response message.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_line(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        self.response(&json!(id))
    }

    /// A call that must succeed: its result.
    fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        assert!(r.get("result").is_some(), "{method} failed: {r}");
        r["result"].clone()
    }

    fn initialize(&mut self) -> Value {
        self.ok(
            "initialize",
            json!({"protocolVersion": 1, "clientCapabilities": {"fs": {"readTextFile": true, "writeTextFile": true}, "terminal": false},
                   "clientInfo": {"name": "raw-test", "version": "1"}}),
        )
    }

    fn new_session(&mut self, cwd: &Path) -> String {
        let r = self.ok(
            "session/new",
            json!({"cwd": cwd.to_str().unwrap(), "mcpServers": []}),
        );
        r["sessionId"].as_str().unwrap().to_string()
    }

    fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits for the process to exit (at most `wait`); its exit code.
    fn wait_exit(&mut self, wait: Duration) -> i32 {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the agent did not exit within {wait:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every line left on stdout after the process ended, each checked as JSON-RPC.
    fn drain(&mut self) -> Vec<Value> {
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(jsonrpc(&line));
        }
        rest
    }
}

impl Drop for RawAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn error_code(r: &Value) -> i64 {
    r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error response, got {r}"))
}

fn mock_env(name: &str, extra: &str) -> Env {
    env_with(name, &format!("backends:\n{MOCK_BACKEND}{extra}"))
}

#[test]
fn raw_lines_that_are_not_json_rpc_get_parse_and_invalid_request_errors() {
    let env = mock_env("raw-malformed", "");
    let mut a = RawAgent::acp(&env.config);
    a.send_line("{this is not json");
    let r = a
        .next(Duration::from_secs(15))
        .expect("no answer to a bad line");
    assert_eq!(error_code(&r), -32700, "{r}");
    assert!(
        r.as_object().unwrap().contains_key("id") && r["id"].is_null(),
        "a parse error's id must be null: {r}"
    );
    // JSON but not JSON-RPC: no "jsonrpc", and not an object at all.
    a.send_line(r#"{"id": 5, "method": "initialize", "params": {}}"#);
    let r = a.next(Duration::from_secs(15)).unwrap();
    assert_eq!(error_code(&r), -32600, "{r}");
    assert!(r["id"] == 5 || r["id"].is_null(), "{r}");
    a.send_line("[1, 2, 3]");
    let r = a.next(Duration::from_secs(15)).unwrap();
    assert_eq!(error_code(&r), -32600, "{r}");
    // The agent goes on.
    let init = a.initialize();
    assert_eq!(init["protocolVersion"], 1, "{init}");
    assert_eq!(init["agentInfo"]["name"], "continuum", "{init}");
    a.close_stdin();
    assert_eq!(a.wait_exit(Duration::from_secs(5)), 0, "{}", a.stderr());
}

#[test]
fn raw_calls_before_initialize_are_invalid_requests() {
    let env = mock_env("raw-early", "");
    let mut a = RawAgent::acp(&env.config);
    let r = a.call(
        "session/new",
        json!({"cwd": env.work.to_str().unwrap(), "mcpServers": []}),
    );
    assert_eq!(error_code(&r), -32600, "{r}");
    let r = a.call(
        "session/prompt",
        json!({"sessionId": "x", "prompt": [{"type": "text", "text": "hi"}]}),
    );
    assert_eq!(error_code(&r), -32600, "{r}");
    a.initialize();
    a.new_session(&env.work);
}

#[test]
fn raw_unknown_methods_are_method_not_found() {
    let env = mock_env("raw-unknown-method", "");
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let r = a.call("session/fly", json!({}));
    assert_eq!(error_code(&r), -32601, "{r}");
    // An unknown notification gets no answer at all: the next message is the next response.
    a.send_line(r#"{"jsonrpc": "2.0", "method": "session/hover", "params": {}}"#);
    let sid = a.new_session(&env.work);
    assert!(!sid.is_empty());
    assert!(a.calls.is_empty(), "unexpected messages: {:?}", a.calls);
}

#[test]
fn raw_unknown_session_ids_are_resource_not_found() {
    let env = mock_env("raw-unknown-session", "");
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let r = a.call(
        "session/prompt",
        json!({"sessionId": "no-such-session", "prompt": [{"type": "text", "text": "hi"}]}),
    );
    assert_eq!(error_code(&r), -32002, "{r}");
    let r = a.call(
        "session/set_mode",
        json!({"sessionId": "no-such-session", "modeId": "read_only"}),
    );
    assert_eq!(error_code(&r), -32002, "{r}");
    // A cancel for no session is a notification: no answer.
    a.send_line(
        r#"{"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "no-such-session"}}"#,
    );
    a.new_session(&env.work);
    assert!(a.calls.is_empty(), "unexpected messages: {:?}", a.calls);
}

#[test]
fn raw_bad_params_are_invalid_params_naming_the_field() {
    let env = mock_env("raw-params", "");
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let r = a.call("session/new", json!({"mcpServers": []}));
    assert_eq!(error_code(&r), -32602, "{r}");
    assert!(r["error"].to_string().contains("cwd"), "{r}");
    let r = a.call(
        "session/new",
        json!({"cwd": "relative/dir", "mcpServers": []}),
    );
    assert_eq!(error_code(&r), -32602, "a relative cwd: {r}");
    assert!(r["error"].to_string().contains("cwd"), "{r}");
    let sid = a.new_session(&env.work);
    let r = a.call(
        "session/prompt",
        json!({"sessionId": sid, "prompt": "not a list of blocks"}),
    );
    assert_eq!(error_code(&r), -32602, "{r}");
    assert!(r["error"].to_string().contains("prompt"), "{r}");
}

#[test]
fn raw_stdout_carries_only_protocol_messages_even_with_debug_logging() {
    let env = mock_env("raw-debug", "logging: {level: debug}\n");
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let sid = a.new_session(&env.work);
    let r = a.ok(
        "session/prompt",
        json!({"sessionId": sid, "prompt": [{"type": "text", "text": "echo these words back"}]}),
    );
    assert_eq!(r["stopReason"], "end_turn", "{r}");
    let text: String = a
        .calls
        .iter()
        .filter(|c| {
            c["method"] == "session/update"
                && c["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
        })
        .filter_map(|c| c["params"]["update"]["content"]["text"].as_str())
        .collect();
    assert!(
        text.contains("echo these words back"),
        "{text:?} {:?}",
        a.calls
    );
    a.send_line("garbage");
    assert_eq!(
        error_code(&a.next(Duration::from_secs(15)).unwrap()),
        -32700
    );
    a.call("no/such/method", json!({}));
    a.close_stdin();
    assert_eq!(a.wait_exit(Duration::from_secs(5)), 0, "{}", a.stderr());
    a.drain(); // each line checked
    assert!(
        !a.stderr().trim().is_empty(),
        "logging.level debug wrote nothing to stderr"
    );
}

#[test]
fn raw_closing_stdin_mid_prompt_exits_cleanly() {
    // Two tokens a second: the echo of forty words would take twenty seconds.
    let env = env_with(
        "raw-eof",
        "backends:\n  - {name: demo, type: mock, models: [mock-model], mock: {first_token_latency: 1ms, tokens_per_second: 2}}\n",
    );
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let sid = a.new_session(&env.work);
    let words = (0..40)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    a.send_line(
        &json!({"jsonrpc": "2.0", "id": 99, "method": "session/prompt",
                "params": {"sessionId": sid, "prompt": [{"type": "text", "text": words}]}})
        .to_string(),
    );
    // Until the first chunk streams.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = a
            .next(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("no agent_message_chunk; stderr:\n{}", a.stderr()));
        assert!(
            v.get("method").is_some(),
            "the prompt answered before streaming: {v}"
        );
        if v["params"]["update"]["sessionUpdate"] == "agent_message_chunk" {
            break;
        }
    }
    let t0 = Instant::now();
    a.close_stdin();
    assert_eq!(a.wait_exit(Duration::from_secs(5)), 0, "{}", a.stderr());
    assert!(t0.elapsed() < Duration::from_secs(5));
    a.drain();
}

#[test]
fn raw_acp_disabled_refuses_to_start() {
    let env = mock_env("raw-disabled", "acp: {enabled: false}\n");
    let out = run(bin().args(["acp", "--config", env.config.to_str().unwrap()]));
    assert_eq!(
        out.code, 1,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(out.stderr.contains("acp.enabled"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);

    let env = mock_env(
        "raw-no-stdio",
        "acp: {transport: {stdio: {enabled: false}}}\n",
    );
    let out = run(bin().args(["acp", "--config", env.config.to_str().unwrap()]));
    assert_eq!(
        out.code, 1,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(out.stderr.contains("stdio.enabled"), "{}", out.stderr);
}

#[test]
fn raw_a_tool_kind_in_both_permission_lists_is_a_config_error() {
    let env = mock_env(
        "raw-kinds",
        "acp: {permissions: {auto_allow: [read, edit], always_ask: [edit]}}\n",
    );
    let out = run(bin().args(["acp", "--config", env.config.to_str().unwrap()]));
    assert_ne!(out.code, 0, "stderr: {}", out.stderr);
    assert!(out.stderr.contains("acp.permissions"), "{}", out.stderr);
    assert!(out.stderr.contains("edit"), "{}", out.stderr);
}

#[test]
fn raw_mode_stdio_is_the_same_agent_and_starts_no_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = mock_env(
        "raw-mode-stdio",
        &format!("server: {{bind_address: \"127.0.0.1:{port}\"}}\n"),
    );
    let mut a = RawAgent::start(&["--config", env.config.to_str().unwrap(), "--mode", "stdio"]);
    let init = a.initialize();
    assert_eq!(init["agentInfo"]["name"], "continuum", "{init}");
    a.new_session(&env.work);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "agent mode opened the HTTP listener on {port}"
    );
    a.close_stdin();
    assert_eq!(a.wait_exit(Duration::from_secs(5)), 0, "{}", a.stderr());
}

#[test]
fn raw_the_least_recently_used_session_closes_past_max_concurrent() {
    let env = mock_env("raw-max-sessions", "acp: {sessions: {max_concurrent: 2}}\n");
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let s1 = a.new_session(&env.work);
    let s2 = a.new_session(&env.work);
    let s3 = a.new_session(&env.work);
    let prompt = |sid: &str| json!({"sessionId": sid, "prompt": [{"type": "text", "text": "hi"}]});
    let r = a.call("session/prompt", prompt(&s1));
    assert_eq!(
        error_code(&r),
        -32002,
        "the oldest session should be closed: {r}"
    );
    for sid in [&s2, &s3] {
        let r = a.ok("session/prompt", prompt(sid));
        assert_eq!(r["stopReason"], "end_turn", "{r}");
    }
}

#[test]
fn raw_memory_sessions_do_not_survive_a_restart() {
    let env = mock_env("raw-memory", "");
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let sid = a.new_session(&env.work);
    a.ok(
        "session/prompt",
        json!({"sessionId": sid, "prompt": [{"type": "text", "text": "hi"}]}),
    );
    a.close_stdin();
    assert_eq!(a.wait_exit(Duration::from_secs(5)), 0, "{}", a.stderr());

    let mut b = RawAgent::acp(&env.config);
    b.initialize();
    let r = b.call(
        "session/load",
        json!({"sessionId": sid, "cwd": env.work.to_str().unwrap(), "mcpServers": []}),
    );
    assert_eq!(error_code(&r), -32002, "{r}");
}

#[test]
fn raw_load_session_off_is_not_offered() {
    let env = mock_env(
        "raw-no-load",
        "acp: {capabilities: {load_session: false}}\n",
    );
    let mut a = RawAgent::acp(&env.config);
    let init = a.initialize();
    assert_eq!(init["agentCapabilities"]["loadSession"], false, "{init}");
    let sid = a.new_session(&env.work);
    let r = a.call(
        "session/load",
        json!({"sessionId": sid, "cwd": env.work.to_str().unwrap(), "mcpServers": []}),
    );
    assert!(
        r.get("error").is_some(),
        "session/load with load_session off: {r}"
    );
}

#[test]
fn raw_a_router_error_is_a_json_rpc_error_and_the_agent_goes_on() {
    // A backend nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = env_with(
        "raw-router-error",
        &format!(
            "retry: {{max_attempts: 1}}\nbackends:\n  - {{name: dead, type: generic, url: \"http://127.0.0.1:{port}\", models: [dead-model]}}\n{MOCK_BACKEND}acp: {{default_model: dead-model}}\n"
        ),
    );
    let mut a = RawAgent::acp(&env.config);
    a.initialize();
    let sid = a.new_session(&env.work);
    let r = a.call(
        "session/prompt",
        json!({"sessionId": sid, "prompt": [{"type": "text", "text": "hi"}]}),
    );
    let code = error_code(&r);
    assert!(
        ![-32700, -32600, -32601, -32602, -32002].contains(&code),
        "a backend failure is not a protocol error: {r}"
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{r}"
    );
    // The session goes on, on another model.
    a.ok(
        "session/set_config_option",
        json!({"sessionId": sid, "configId": "model", "value": "mock-model"}),
    );
    let r = a.ok(
        "session/prompt",
        json!({"sessionId": sid, "prompt": [{"type": "text", "text": "hi again"}]}),
    );
    assert_eq!(r["stopReason"], "end_turn", "{r}");
}

#[test]
fn raw_an_oauth_backend_without_a_login_is_an_auth_method_until_logged_in() {
    let dir = temp_dir("raw-auth");
    let store = dir.join("tokens.json");
    let env = mock_env(
        "raw-auth",
        &format!(
            "  - {{name: hosted, url: \"http://127.0.0.1:9\", models: [hosted-model], auth: {{type: oauth, oauth: {{client_id: c, device_authorization_url: \"http://127.0.0.1:9/d\", token_url: \"http://127.0.0.1:9/t\", token_store: \"{}\"}}}}}}\n",
            store.display()
        ),
    );
    let mut agent = RawAgent::acp(&env.config);
    let init = agent.initialize();
    let methods = init["authMethods"].as_array().unwrap();
    assert_eq!(methods.len(), 1, "{init}");
    assert_eq!(methods[0]["id"], "oauth-hosted");
    assert!(methods[0]["description"]
        .as_str()
        .unwrap()
        .contains("continuum auth login --backend hosted"));
    let r = agent.call("authenticate", json!({"methodId": "oauth-hosted"}));
    assert_eq!(error_code(&r), -32000, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auth login"),
        "{r}"
    );
    for unknown in ["password", "oauth-nope", "oauth-demo"] {
        let r = agent.call("authenticate", json!({"methodId": unknown}));
        assert_eq!(error_code(&r), -32602, "{unknown}: {r}");
    }
    // `continuum auth login` stores a token: now authenticate succeeds.
    let token = continuum::oauth::StoredToken {
        access_token: "t".into(),
        refresh_token: None,
        expires_at: None,
        obtained_at: 1,
    };
    continuum::oauth::save_token(&store, "hosted", &token).unwrap();
    agent.ok("authenticate", json!({"methodId": "oauth-hosted"}));
}

#[test]
fn raw_log_file_takes_the_logs_and_stderr_stays_quiet() {
    let env = mock_env("raw-log-file", "logging: {level: debug}\n");
    let log = env.dir.join("agent.log");
    let mut a = RawAgent::start(&[
        "acp",
        "--config",
        env.config.to_str().unwrap(),
        "--log-file",
        log.to_str().unwrap(),
    ]);
    a.initialize();
    a.new_session(&env.work);
    a.close_stdin();
    assert_eq!(a.wait_exit(Duration::from_secs(5)), 0, "{}", a.stderr());
    a.drain();
    assert_eq!(a.stderr().trim(), "", "logs went to stderr too");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("ACP agent ready"), "{logged}");
    // A log file that cannot be opened is a clear start-up error.
    let bad = env.dir.join("no-such-dir/agent.log");
    let out = bin()
        .args([
            "acp",
            "--config",
            env.config.to_str().unwrap(),
            "--log-file",
        ])
        .arg(&bad)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the log file") && err.contains("no-such-dir"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_a_failed_permission_request_leaves_a_history_the_backend_takes() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("raw-permission-error", &scripted_config(addr, "", ""));
    tokio::task::spawn_blocking(move || {
        let mut a = RawAgent::acp(&env.config);
        a.initialize();
        let sid = a.new_session(&env.work);
        a.send_line(
            &json!({"jsonrpc": "2.0", "id": 77, "method": "session/prompt",
                    "params": {"sessionId": sid, "prompt": [{"type": "text", "text": "write notes.txt"}]}})
            .to_string(),
        );
        // The client answers the permission request with an error.
        let deadline = Instant::now() + Duration::from_secs(10);
        let ask = loop {
            let v = a
                .next(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| panic!("no permission request; stderr:\n{}", a.stderr()));
            if v["method"] == "session/request_permission" {
                break v;
            }
        };
        a.send_line(
            &json!({"jsonrpc": "2.0", "id": ask["id"], "error": {"code": -32603, "message": "the dialog broke"}})
                .to_string(),
        );
        let r = a.response(&json!(77));
        assert_eq!(error_code(&r), -32603, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("the dialog broke"), "{r}");
        assert!(!env.work.join("notes.txt").exists());
        // The session goes on, and the backend gets a history that answers every call.
        let r = a.ok(
            "session/prompt",
            json!({"sessionId": sid, "prompt": [{"type": "text", "text": "hello again"}]}),
        );
        assert_eq!(r["stopReason"], "end_turn", "{r}");
    })
    .await
    .unwrap();
    let answer = answer_to_first_call(seen.all().last().unwrap());
    assert!(text_of(&answer["content"]).contains("Not run"), "{answer}");
}
