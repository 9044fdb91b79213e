//! Test helpers: routers started in-process on ephemeral ports, upstream backends as small
//! axum apps, an HTTP client, and the `continuum` binary run as a process.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use continuum::config::{self, BindAddr, Format, Strictness};
use continuum::{Router, RunningRouter};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};

/// Starts an axum app on 127.0.0.1:0 and returns its address. Like every real server, it
/// answers the health probe's model list (`GET /v1/models`, Ollama's `/api/tags`,
/// Gemini's `/v1beta/models`) even when the app has no such route: with an empty list
/// (a 404 there would mean the backend's url is wrong, and the router says so).
pub async fn spawn_upstream(app: axum::Router) -> SocketAddr {
    let app = app.layer(axum::middleware::from_fn(empty_model_list));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// See [`spawn_upstream`]: an empty model list where the app answers a model-list GET 404.
async fn empty_model_list(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let list = match (req.method(), req.uri().path()) {
        (&Method::GET, "/v1/models") => Some(r#"{"object":"list","data":[]}"#),
        (&Method::GET, "/api/tags" | "/v1beta/models") => Some(r#"{"models":[]}"#),
        _ => None,
    };
    let resp = next.run(req).await;
    match list {
        Some(body) if resp.status() == StatusCode::NOT_FOUND => axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap(),
        _ => resp,
    }
}

/// Parses a YAML config (no environment) and starts it on an ephemeral TCP port.
pub async fn start_router(yaml: &str) -> RunningRouter {
    let (mut config, _) = config::from_text(
        yaml,
        Format::Yaml,
        "test.yaml",
        &HashMap::<String, String>::new(),
        Strictness::Validate,
    )
    .unwrap_or_else(|e| panic!("test config invalid: {e}"));
    config.server.bind_address = vec![BindAddr::Tcp("127.0.0.1:0".parse().unwrap())];
    Router::builder(config).start().await.unwrap()
}

/// Starts a router from a config file on an ephemeral TCP port, able to reload it
/// (`POST /admin/config/reload`, `hot_reload`), with no environment.
pub async fn start_router_file(file: &std::path::Path) -> RunningRouter {
    let overrides = config::Overrides {
        bind: vec!["127.0.0.1:0".into()],
        ..Default::default()
    };
    let env = HashMap::<String, String>::new();
    let loaded = config::load(Some(file), &overrides, &env, Strictness::Serve)
        .unwrap_or_else(|e| panic!("test config invalid: {e}"));
    Router::builder(loaded.config)
        .reload_from(continuum::ReloadSource {
            file: file.to_path_buf(),
            overrides,
            env: Box::new(env),
        })
        .start()
        .await
        .unwrap()
}

/// A response read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request and reads the whole response.
pub async fn send(
    method: Method,
    url: String,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) -> Reply {
    let client = continuum::backend::build_client(4, Duration::from_secs(5));
    let mut req = Request::new(Full::new(body.into()));
    *req.method_mut() = method;
    *req.uri_mut() = url.parse().unwrap();
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let resp = client.request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// POSTs JSON to the router's chat completions endpoint.
pub async fn chat(addr: SocketAddr, body: &str) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        body.to_string(),
        &[],
    )
    .await
}

/// GETs a path.
pub async fn get_path(addr: SocketAddr, path: &str) -> Reply {
    send(
        Method::GET,
        format!("http://{addr}{path}"),
        Bytes::new(),
        &[],
    )
    .await
}

/// The `continuum` binary built for these tests.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_continuum"));
    c.env_remove("CONTINUUM_CONFIG")
        .env_remove("CONTINUUM_BIND_ADDRESS")
        .env_remove("CONTINUUM_BACKEND_URLS")
        .env_remove("CONTINUUM_LOG_LEVEL")
        .env_remove("RUST_LOG");
    c
}

/// Runs the binary with `input` on its stdin (closed after it) and waits for its output.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Output of a finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary to completion; one still running after a minute (say, a `serve` that
/// was expected to refuse its config) is killed and fails the test instead of hanging it.
pub fn run(cmd: &mut Command) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after 60 s; stderr: {}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// A `continuum serve` process whose stderr is read in the background.
pub struct ServeProcess {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl ServeProcess {
    /// Starts the binary with `args` and waits for its "listening on" lines (one per address).
    pub fn start(cmd: &mut Command, addresses: usize) -> ServeProcess {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = ServeProcess {
            child,
            lines: rx,
            seen: Vec::new(),
        };
        let mut found = 0;
        while found < addresses {
            let line = p.next_line(Duration::from_secs(30)).unwrap_or_else(|| {
                panic!(
                    "router did not start; stderr so far:\n{}",
                    p.seen.join("\n")
                )
            });
            if line.contains("listening on ") {
                found += 1;
            }
        }
        p
    }

    /// The next stderr line, if one comes within `wait`.
    pub fn next_line(&mut self, wait: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(wait).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// The TCP address from the first "listening on" line.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.seen
            .iter()
            .filter_map(|l| l.split("listening on ").nth(1))
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect::<String>()
            })
            .find_map(|a| a.parse().ok())
            .expect("no TCP listening line")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit (at most `wait`) and returns the exit code.
    pub fn wait_exit(&mut self, wait: Duration) -> i32 {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "router did not exit in {wait:?}; stderr:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "continuum-test-{name}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A provider wire-format fixture from `tests/fixtures/` (see its README for sources).
pub fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A real `redis-server` on a free loopback port, stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
}

impl RedisServer {
    /// Starts one (no persistence) and waits until it accepts connections.
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server is needed for these tests (apt-get install redis-server; scripts/test installs it): {e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        RedisServer {
            child: Some(child),
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    /// Kills it (a Redis outage).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Python that runs the official SDKs' scripts: `$CONTINUUM_PYTHON` (`scripts/test` sets
/// it), else the virtualenv `scripts/test` keeps in the build directory. Fails the test,
/// saying how to get it, when `package` cannot be imported there: SDK tests never skip.
pub fn python_with(package: &str) -> std::path::PathBuf {
    let python = std::env::var_os("CONTINUUM_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("the target directory")
                .join("venv/bin/python")
        });
    let probe = Command::new(&python)
        .args(["-c", &format!("import {package}")])
        .output();
    match probe {
        Ok(o) if o.status.success() => python,
        Ok(o) => panic!(
            "{} cannot import the official {package} SDK ({}); run `scripts/test`, which installs it (tests/sdk/requirements.txt)",
            python.display(),
            String::from_utf8_lossy(&o.stderr).trim().lines().last().unwrap_or("")
        ),
        Err(e) => panic!(
            "no Python at {} ({e}); run `scripts/test`, which creates that virtualenv with the official SDKs, or set CONTINUUM_PYTHON",
            python.display()
        ),
    }
}
