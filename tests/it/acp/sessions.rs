//! Whole sessions through the official SDK (tests/acp/client.py).

use super::*;
// ---------------------------------------------------------------------------------------
// Whole sessions through the official SDK
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_initializes_opens_a_session_and_streams_a_mock_answer() {
    let env = env_with("basic", &format!("backends:\n{MOCK_BACKEND}"));
    run_client(
        &env,
        "basic",
        &["--models", "mock-model", "--expect-model", "mock-model"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_cancel_stops_a_streaming_answer() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("cancel", &scripted_config(addr, "", ""));
    run_client(&env, "cancel", &[]).await;
    let reqs = seen.all();
    assert!(
        reqs.iter().all(|r| r["stream"] == true),
        "the agent asked for a non-streamed completion: {reqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_write_allowed_once_goes_through_the_client() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("perm-allow", &scripted_config(addr, "", ""));
    run_client(&env, "permission_allow", &[]).await;
    assert_eq!(
        std::fs::read_to_string(env.work.join("notes.txt")).unwrap(),
        "hello from the model"
    );
    let reqs = seen.all();
    assert_eq!(reqs.len(), 2, "a tool call, then the answer: {reqs:#?}");
    let tools = tool_names(&reqs[0]);
    for t in ["read_file", "write_file"] {
        assert!(tools.contains(&t.to_string()), "tools offered: {tools:?}");
    }
    assert!(
        !tools.contains(&"run_command".to_string()),
        "run_command offered to a client without a terminal: {tools:?}"
    );
    assert_eq!(reqs[0]["model"], "model-a");
    // The second request carries the assistant's call and the tool's result.
    let msgs = reqs[1]["messages"].as_array().unwrap();
    let last = msgs.last().unwrap();
    assert_eq!(last["role"], "tool", "{msgs:#?}");
    assert_eq!(last["tool_call_id"], "call_0", "{msgs:#?}");
    let call = &msgs[msgs.len() - 2];
    assert_eq!(call["role"], "assistant", "{msgs:#?}");
    assert_eq!(
        call["tool_calls"][0]["function"]["name"], "write_file",
        "{msgs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_write_rejected_writes_nothing_and_the_turn_ends() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("perm-reject", &scripted_config(addr, "", ""));
    run_client(&env, "permission_reject", &[]).await;
    assert!(!env.work.join("notes.txt").exists());
    // The model was told (a tool result), and answered.
    let reqs = seen.all();
    assert!(
        reqs.len() >= 2
            && reqs[1]["messages"].as_array().unwrap().last().unwrap()["role"] == "tool",
        "{reqs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_write_allowed_always_asks_once_per_session() {
    let (addr, _seen) = scripted_upstream().await;
    let env = env_with("perm-always", &scripted_config(addr, "", ""));
    run_client(&env, "permission_always", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_read_runs_without_asking_and_reaches_the_model() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("read", &scripted_config(addr, "", ""));
    run_client(&env, "read_allow", &[]).await;
    let reqs = seen.all();
    let last = reqs.last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "tool");
    assert!(
        text_of(&last["content"]).contains("the secret word is marmalade"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_session_modes_accept_edits_and_read_only() {
    let (addr, _seen) = scripted_upstream().await;
    let env = env_with("modes", &scripted_config(addr, "", ""));
    run_client(&env, "modes", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_session_loads_after_a_restart() {
    let (addr, seen) = scripted_upstream().await;
    let dir = temp_dir("acp-load-store");
    let env = env_with(
        "load",
        &scripted_config(
            addr,
            "  sessions: {storage: persistent}\n",
            &format!(
                "store: {{path: \"{}\"}}\n",
                dir.join("continuum.redb").display()
            ),
        ),
    );
    let state = env.dir.join("state.json");
    let state = state.to_str().unwrap();
    let out = run_client(&env, "load", &["--phase", "1", "--state", state]).await;
    let session = out
        .lines()
        .find_map(|l| l.strip_prefix("session "))
        .unwrap_or_else(|| panic!("phase 1 printed no session id: {out}"))
        .to_string();
    run_client(
        &env,
        "load",
        &["--phase", "2", "--session", &session, "--state", state],
    )
    .await;
    // The prompt after the load sent the whole history to the model.
    let reqs = seen.all();
    let msgs = reqs.last().unwrap()["messages"].as_array().unwrap().clone();
    let roles: Vec<&str> = msgs
        .iter()
        .filter_map(|m| m["role"].as_str())
        .filter(|r| *r != "system")
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{msgs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_uses_a_stdio_mcp_servers_tool() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("mcp-stdio", &scripted_config(addr, "", ""));
    run_client(&env, "mcp_stdio", &[]).await;
    let tools = tool_names(&seen.all()[0]);
    for t in [
        "calc__add",
        "calc__mul",
        "calc__echo",
        "read_file",
        "write_file",
    ] {
        assert!(tools.contains(&t.to_string()), "tools offered: {tools:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_uses_an_http_mcp_servers_tool() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("mcp-http", &scripted_config(addr, "", ""));
    run_client(&env, "mcp_http", &[]).await;
    let tools = tool_names(&seen.all()[0]);
    assert!(
        tools.contains(&"calc__mul".to_string()),
        "tools offered: {tools:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_switches_the_sessions_model() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("set-model", &scripted_config(addr, "", ""));
    run_client(&env, "set_model", &["--models", "model-a,model-b"]).await;
    let models: Vec<Value> = seen.all().iter().map(|r| r["model"].clone()).collect();
    assert_eq!(
        models,
        ["model-a", "model-b", "model-b", "model-a"],
        "models asked for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reasoning_and_stop_reasons() {
    let (addr, _seen) = scripted_upstream().await;
    let env = env_with("stops", &scripted_config(addr, "", ""));
    run_client(&env, "stop_reasons", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_a_model_that_never_stops_calling_tools_hits_max_turn_requests() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("max-turns", &scripted_config(addr, "", ""));
    run_client(&env, "max_turns", &[]).await;
    assert_eq!(
        seen.all().len(),
        25,
        "model requests in one prompt (more than 25 is max_turn_requests)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_write_rejected_always_is_refused_without_asking_again() {
    let (addr, _seen) = scripted_upstream().await;
    let env = env_with("perm-never", &scripted_config(addr, "", ""));
    run_client(&env, "permission_never", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_cancel_while_a_permission_request_waits() {
    let (addr, _seen) = scripted_upstream().await;
    let env = env_with("cancel-perm", &scripted_config(addr, "", ""));
    run_client(&env, "cancel_permission", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_permission_policies_from_the_config() {
    let (addr, _seen) = scripted_upstream().await;
    // edit in neither list: the default policy decides.
    let env = env_with(
        "policy-deny",
        &scripted_config(
            addr,
            "  permissions: {default_policy: deny, auto_allow: [read], always_ask: []}\n",
            "",
        ),
    );
    run_client(&env, "write_unasked", &["--expect-status", "failed"]).await;
    let env = env_with(
        "policy-allow",
        &scripted_config(
            addr,
            "  permissions: {auto_allow: [read, edit], always_ask: [execute]}\n",
            "",
        ),
    );
    run_client(&env, "write_unasked", &["--expect-status", "completed"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_prompt_with_an_image_and_an_embedded_resource() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("rich", &scripted_config(addr, "", ""));
    run_client(&env, "rich_prompt", &[]).await;
    let reqs = seen.all();
    let user = reqs[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["role"] == "user")
        .unwrap()
        .clone();
    let parts = user["content"]
        .as_array()
        .unwrap_or_else(|| panic!("an image prompt's content should be parts: {user}"));
    assert!(
        parts.iter().any(|p| p["type"] == "image_url"
            && p["image_url"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("data:image/png;base64,iVBOR"))),
        "no image part: {user}"
    );
    let text = text_of(&user["content"]);
    assert!(text.contains("describe this picture"), "{user}");
    assert!(text.contains("embedded context 777"), "{user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_runs_a_command_in_the_clients_terminal() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("terminal", &scripted_config(addr, "", ""));
    run_client(&env, "terminal", &[]).await;
    let reqs = seen.all();
    assert!(
        tool_names(&reqs[0]).contains(&"run_command".to_string()),
        "run_command not offered to a client with a terminal: {:?}",
        tool_names(&reqs[0])
    );
    let last = reqs[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "tool", "{last}");
    let result = text_of(&last["content"]);
    assert!(result.contains("terminal-works-42"), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_cancel_stops_a_command_running_in_the_clients_terminal() {
    let (addr, seen) = scripted_upstream().await;
    let env = env_with("cancel-terminal", &scripted_config(addr, "", ""));
    run_client(&env, "cancel_terminal", &[]).await;
    // The next prompt's history answers the cancelled call, so the backend takes it.
    let answer = answer_to_first_call(seen.all().last().unwrap());
    assert!(
        text_of(&answer["content"]).contains("Cancelled"),
        "{answer}"
    );
}
