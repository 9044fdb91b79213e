//! Which endpoint a client command talks to: a running router (`--url`), or, with
//! `--config`, the configured backends through a router started in this process on a
//! private loopback port (the same core library `serve` runs).

use std::path::Path;

use continuum::client::Client;
use continuum::config::{self, Overrides, ProcessEnv, Strictness};
use continuum::{Router, RunningRouter};

/// The router's root when `--url` is not given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// A client, and the in-process router it talks to (kept alive while it is used).
pub struct Target {
    /// The client.
    pub client: Client,
    /// The in-process router, with `--config`.
    pub _router: Option<RunningRouter>,
}

/// Connects to `url`, or starts the router of `config` in this process. Must run inside
/// a tokio runtime. Errors are one line, naming the URL or file.
pub async fn connect(
    url: &str,
    api_key: Option<&str>,
    config: Option<&Path>,
) -> Result<Target, String> {
    let Some(file) = config else {
        let client = Client::new(url, api_key).map_err(|e| e.to_string())?;
        return Ok(Target {
            client,
            _router: None,
        });
    };
    let overrides = Overrides {
        bind: vec!["127.0.0.1:0".into()],
        ..Default::default()
    };
    let loaded = config::load(Some(file), &overrides, &ProcessEnv, Strictness::Serve)
        .map_err(|e| e.to_string())?;
    let router = Router::builder(loaded.config)
        .start()
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let addr = router
        .tcp_addr()
        .ok_or_else(|| "the in-process router has no TCP address".to_string())?;
    let client = Client::new(&format!("http://{addr}"), api_key).map_err(|e| e.to_string())?;
    Ok(Target {
        client,
        _router: Some(router),
    })
}

/// A current-thread runtime for a client command.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The first model the endpoint lists (for commands run without `-m`).
pub async fn first_model(client: &Client) -> Result<String, String> {
    let models = client.models().await.map_err(|e| e.to_string())?;
    if let Some(id) = models["data"][0]["id"].as_str() {
        return Ok(id.to_string());
    }
    // No model because backends are down: naming a model would not help.
    let down: Vec<String> = super::models::unavailable(&models)
        .into_iter()
        .map(|(line, _)| line)
        .collect();
    if !down.is_empty() {
        let what = if down.len() == 1 {
            "start it (or fix its url)"
        } else {
            "start them (or fix their urls)"
        };
        return Err(format!(
            "{} lists no models because {}; {what} and try again",
            client.root(),
            down.join(", and ")
        ));
    }
    Err(format!("{} lists no models; pass -m MODEL", client.root()))
}
