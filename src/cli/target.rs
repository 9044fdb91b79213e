//! Which endpoint a client command talks to. The router's root is `--url` (or
//! `CONTINUUM_URL`), else the address the config in scope listens on (`--config`,
//! `CONTINUUM_CONFIG`, or the search path `serve` uses), else `http://127.0.0.1:8080`.
//! With `--in-process`, the config's backends are reached through a router started in
//! this process on a private loopback port (the same core library `serve` runs).

use std::path::Path;

use continuum::client::Client;
use continuum::config::{self, BindAddr, Overrides, ProcessEnv, Strictness};
use continuum::{Router, RunningRouter};

/// A client, and the in-process router it talks to (kept alive while it is used).
pub struct Target {
    /// The client.
    pub client: Client,
    /// The in-process router, with `--in-process`.
    pub _router: Option<RunningRouter>,
}

/// Where a `--url` value came from: `CONTINUUM_URL` when the command line has no `--url`
/// (clap fills the flag from it), else nothing worth saying.
fn url_origin(url: &str) -> String {
    let on_command_line = std::env::args().any(|a| a == "--url" || a.starts_with("--url="));
    let from_env = std::env::var("CONTINUUM_URL").is_ok_and(|v| v == url);
    if from_env && !on_command_line {
        "CONTINUUM_URL".to_string()
    } else {
        String::new()
    }
}

/// The router root a client command uses, and where it came from (for messages).
pub fn router_url(url: Option<&str>, config: Option<&Path>) -> Result<(String, String), String> {
    if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
        return Ok((url.to_string(), url_origin(url)));
    }
    let file = config::find_config_file(config, &ProcessEnv);
    if let Some(f) = &file {
        if !f.is_file() {
            return Err(format!(
                "{}: no such config file; pass --config FILE or --url URL",
                f.display()
            ));
        }
    }
    let listen = config::listen_address(file.as_deref(), &ProcessEnv)
        .map_err(|e| format!("cannot tell where the router listens: {e}; pass --url"))?;
    match listen.addr {
        BindAddr::Tcp(addr) => {
            let host = match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
                ip if ip.is_unspecified() => "[::1]".to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            Ok((format!("http://{host}:{}", addr.port()), listen.origin))
        }
        BindAddr::Unix(path) => Err(format!(
            "the router listens on the unix socket {} ({}), which client commands cannot use; pass --url",
            path.display(),
            listen.origin
        )),
    }
}

/// A client of the router (see the module doc), or with `in_process` of a router of the
/// config started here. Must run inside a tokio runtime. Errors are one sentence.
pub async fn connect(
    url: Option<&str>,
    api_key: Option<&str>,
    config: Option<&Path>,
    in_process: bool,
) -> Result<Target, String> {
    if !in_process {
        let (url, origin) = router_url(url, config)?;
        let mut client = Client::new(&url, api_key).map_err(|e| e.to_string())?;
        if !origin.is_empty() {
            client = client.with_origin(&origin);
        }
        return Ok(Target {
            client,
            _router: None,
        });
    }
    let Some(file) = config::find_config_file(config, &ProcessEnv) else {
        return Err(
            "--in-process needs a config file and none was found; pass --config FILE".into(),
        );
    };
    let overrides = Overrides {
        bind: vec!["127.0.0.1:0".into()],
        ..Default::default()
    };
    let loaded = config::load(Some(&file), &overrides, &ProcessEnv, Strictness::Serve)
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

/// A current-thread runtime for a command: client commands, `serve` (whose requests run on
/// the router's own worker threads) and `acp` (one editor's requests).
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
