//! Embedding the router in another Rust program (a desktop app, a test harness):
//! build a config in code, start the router on an ephemeral port, call it, stop it.
//!
//! Run with `cargo run --example embedded`.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use continuum::config::{self, BindAddr, Format, Strictness};
use http_body_util::{BodyExt, Full};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let yaml = r#"
backends:
  - name: demo
    type: mock
    models: [mock-model]
    mock: {first_token_latency: "5ms"}
"#;
    // No environment is consulted for ${VAR} here; pass config::ProcessEnv to use it.
    let no_env: HashMap<String, String> = HashMap::new();
    let (mut cfg, _warnings) = config::from_text(
        yaml,
        Format::Yaml,
        "<inline>",
        &no_env,
        Strictness::Validate,
    )?;
    cfg.server.bind_address = vec![BindAddr::Tcp("127.0.0.1:0".parse()?)];

    let router = continuum::Router::builder(cfg).start().await?;
    let addr = router.tcp_addr().ok_or("no TCP address")?;
    println!("router listening on http://{addr}");

    let client = continuum::backend::build_client(1, Duration::from_secs(5));
    let request = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"mock-model","messages":[{"role":"user","content":"hello from an embedded router"}]}"#,
        )))?;
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!("{status}: {}", String::from_utf8_lossy(&body));

    let drained = router.shutdown().await;
    println!("stopped (drained: {drained})");
    Ok(())
}
