//! The admin web UI (docs/webui.md) end to end: `continuum serve` as a process with mock
//! backends and one backend whose health this test controls, and headless Chromium driven
//! by `tests/webui/ui.py` (Selenium; Debian's chromium and chromium-driver, which
//! `scripts/test` installs). Each test runs one scenario of the driver, which checks the page
//! through the stable hooks of docs/webui.md and prints `ok SCENARIO`. Screenshots of every
//! view go to the test's temporary directory (printed; not committed).
//!
//! Where the test must change the world while the page is open (a backend goes down, the
//! config file is rewritten), the driver prints `ready WHAT` and waits for a line on its
//! stdin: the test makes the change, then answers. No test sleeps for a fixed time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::common::*;

const TOKEN: &str = "webui-admin-secret-5d1e";
/// `health_checks.interval` of these routers, in seconds.
const HEALTH_INTERVAL: f64 = 1.0;
/// How often the backends view refreshes (docs/webui.md), in seconds.
const UI_REFRESH: f64 = 2.0;
const BACKENDS: &str = "bk-alpha,bk-stream,bk-flaky";
const MODELS: &str = "alpha-model,stream-model,flaky-model";

/// One browser at a time: the scenarios time what the page shows, and Chromium is heavy.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The config: `bk-alpha` (instant mock), `bk-stream` (a mock at 20 tokens/s), and
/// `bk-flaky`, a vLLM backend at `upstream` whose `/health` the test answers. `aliases` is
/// added to the top-level `model_aliases`.
fn config(upstream: SocketAddr, aliases: &str) -> String {
    format!(
        r#"server: {{bind_address: "127.0.0.1:0"}}
admin:
  auth: {{method: bearer, token: {TOKEN}}}
hot_reload: {{enabled: false}}
health_checks: {{endpoint: /health, interval: {HEALTH_INTERVAL}s, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1}}
model_aliases: {{fast: alpha-model{aliases}}}
model_configs:
  - {{id: alpha-model, metadata: {{display_name: Alpha, pricing: {{input_tokens: 0.5, output_tokens: 1.5}}}}}}
backends:
  - {{name: bk-alpha, type: mock, models: [alpha-model], mock: {{first_token_latency: 1ms, tokens_per_second: 0}}}}
  - {{name: bk-stream, type: mock, models: [stream-model], mock: {{first_token_latency: 50ms, tokens_per_second: 20}}}}
  - {{name: bk-flaky, type: vllm, url: "http://{upstream}", models: [flaky-model]}}
"#
    )
}

/// A `continuum serve` process on the config above, with its upstream and temp directory.
struct Served {
    process: ServeProcess,
    addr: SocketAddr,
    dir: PathBuf,
    file: PathBuf,
    upstream: SocketAddr,
    /// What the upstream's `/health` answers.
    health: Arc<AtomicU16>,
}

impl Served {
    async fn start(name: &str) -> Served {
        let health = Arc::new(AtomicU16::new(200));
        let answer = health.clone();
        let upstream = spawn_upstream(axum::Router::new().route(
            "/health",
            axum::routing::get(move || {
                let answer = answer.clone();
                async move { StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap() }
            }),
        ))
        .await;
        let dir = temp_dir(&format!("webui-{name}"));
        let file = dir.join("config.yaml");
        std::fs::write(&file, config(upstream, "")).unwrap();
        let arg = file.clone();
        // Blocking (it reads the router's stderr), and the router probes the upstream,
        // which runs on this runtime.
        let process = tokio::task::spawn_blocking(move || {
            ServeProcess::start(bin().args(["serve", "--config"]).arg(&arg), 1)
        })
        .await
        .unwrap();
        let addr = process.tcp_addr();
        Served {
            process,
            addr,
            dir,
            file,
            upstream,
            health,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn admin_get(&self, path: &str) -> Reply {
        let auth = format!("Bearer {TOKEN}");
        send(
            Method::GET,
            self.url(path),
            Bytes::new(),
            &[("authorization", &auth)],
        )
        .await
    }

    /// The router's log so far (for failure messages).
    fn log(&mut self) -> String {
        while self.process.next_line(Duration::from_millis(10)).is_some() {}
        let seen = &self.process.seen;
        seen[seen.len().saturating_sub(40)..].join("\n")
    }

    /// Runs the driver's `scenario` (blocking, off the runtime: the upstream and the
    /// test's own requests keep running) and checks it printed `ok SCENARIO`. `on_ready` is
    /// called with WHAT for each `ready WHAT` the driver prints, before it is told to go on.
    async fn ui(
        &mut self,
        scenario: &'static str,
        args: &[&str],
        on_ready: impl FnMut(&str) + Send + 'static,
    ) -> String {
        let shots = self.dir.join("screenshots");
        let url = self.url("/webui/");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let shots_dir = shots.clone();
        let (ok, out) = tokio::task::spawn_blocking(move || {
            run_driver(scenario, &url, &shots_dir, &args, on_ready)
        })
        .await
        .unwrap();
        println!(
            "webui {scenario}: screenshots in {}\n{out}",
            shots.display()
        );
        if !ok {
            let log = self.log();
            panic!(
                "webui scenario {scenario} failed (screenshots in {}):\n{out}\n--- router log (last lines) ---\n{log}",
                shots.display()
            );
        }
        out
    }
}

/// Runs `tests/webui/ui.py SCENARIO`; returns whether it passed and everything it printed.
fn run_driver(
    scenario: &str,
    url: &str,
    shots: &Path,
    args: &[String],
    mut on_ready: impl FnMut(&str),
) -> (bool, String) {
    let python = python_with("selenium");
    let script = format!("{}/tests/webui/ui.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python)
        .arg(script)
        .arg(scenario)
        .args(["--url", url, "--token", TOKEN, "--shots"])
        .arg(shots)
        .args(args)
        .env("SE_OFFLINE", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The driver stops itself after --overall (90 s); this is the backstop.
    let pid = child.id();
    let (done, watchdog) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) =
            watchdog.recv_timeout(Duration::from_secs(150))
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let mut out = String::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        out.push_str(&line);
        out.push('\n');
        if let Some(what) = line.strip_prefix("ready ") {
            on_ready(what);
            let _ = stdin.write_all(b"go\n").and_then(|()| stdin.flush());
        }
    }
    let status = child.wait().unwrap();
    let _ = done.send(());
    let err = stderr.join().unwrap_or_default();
    if !err.trim().is_empty() {
        out.push_str("--- driver stderr ---\n");
        out.push_str(&err);
    }
    let ok = status.success() && out.lines().any(|l| l == format!("ok {scenario}"));
    (ok, out)
}

/// 1. Without credentials nothing is shown; the admin API behind the page refuses; the page
/// itself is static (200, strict CSP, no data in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_refuses_to_show_data_without_credentials() {
    let _browser = BROWSER.lock().await;
    let mut r = Served::start("refuses").await;

    for path in [
        "/admin/backends",
        "/admin/stats",
        "/admin/stats?series=1",
        "/admin/models",
        "/admin/config",
        "/admin/config/full",
    ] {
        let anon = get_path(r.addr, path).await;
        assert_eq!(
            anon.status,
            StatusCode::UNAUTHORIZED,
            "GET {path}: {}",
            anon.text()
        );
        let wrong = send(
            Method::GET,
            r.url(path),
            Bytes::new(),
            &[("authorization", "Bearer not-the-token")],
        )
        .await;
        assert_eq!(
            wrong.status,
            StatusCode::UNAUTHORIZED,
            "GET {path} with a wrong token: {}",
            wrong.text()
        );
        // ... and it is the credentials that were missing: with them, it answers.
        let good = r.admin_get(path).await;
        assert_eq!(
            good.status,
            StatusCode::OK,
            "GET {path} with the token: {}",
            good.text()
        );
    }
    let reload = send(
        Method::POST,
        r.url("/admin/config/reload"),
        Bytes::new(),
        &[],
    )
    .await;
    assert_eq!(reload.status, StatusCode::UNAUTHORIZED, "{}", reload.text());

    // The data endpoints the UI needs answer as docs/webui.md says.
    let models = r.admin_get("/admin/models").await.json();
    let ids: Vec<&str> = models["models"]
        .as_array()
        .unwrap_or_else(|| panic!("/admin/models has no models list: {models}"))
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for m in MODELS.split(',') {
        assert!(ids.contains(&m), "/admin/models lacks {m}: {models}");
    }
    assert_eq!(models["aliases"]["fast"], "alpha-model", "{models}");
    let stats = r.admin_get("/admin/stats?series=1").await.json();
    assert!(
        stats["series"]["points"].is_array(),
        "/admin/stats?series=1: {stats}"
    );
    assert!(
        stats["series"]["bucket_seconds"].is_number(),
        "/admin/stats?series=1: {stats}"
    );

    let page = get_path(r.addr, "/webui/").await;
    assert_eq!(page.status, StatusCode::OK, "GET /webui/: {}", page.text());
    assert!(
        page.header("content-type").starts_with("text/html"),
        "{:?}",
        page.headers
    );
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("default-src 'self'"),
        "GET /webui/ Content-Security-Policy: {csp:?}"
    );
    let html = page.text();
    for secret in ["bk-alpha", "bk-flaky", "alpha-model", TOKEN] {
        assert!(
            !html.contains(secret),
            "the static page carries data ({secret}):\n{html}"
        );
    }

    let out = r
        .ui(
            "refuses",
            &["--backends", BACKENDS, "--models", MODELS],
            |_| {},
        )
        .await;
    assert!(out.contains("ok refuses"), "{out}");
}

/// 2. With the token the app opens, lists every backend, and each view renders
/// (screenshots of all six, and of the backends view at phone width).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_loads_every_view_with_the_token() {
    let _browser = BROWSER.lock().await;
    let mut r = Served::start("loads").await;
    r.ui(
        "loads",
        &["--backends", BACKENDS, "--models", MODELS],
        |_| {},
    )
    .await;
}

/// 3. A backend whose health probe starts failing shows as unhealthy within one health
/// interval plus the page's 2 s refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_shows_a_backend_going_down_within_a_health_interval() {
    let _browser = BROWSER.lock().await;
    let mut r = Served::start("backend-down").await;
    let health = r.health.clone();
    let deadline = format!("{}", HEALTH_INTERVAL + UI_REFRESH + 2.0);
    let out = r
        .ui(
            "backend_down",
            &["--backend", "bk-flaky", "--deadline", &deadline],
            move |what| {
                assert_eq!(what, "healthy");
                // The probe's next answer: a server error (503 would be "warming up").
                health.store(500, Ordering::SeqCst);
            },
        )
        .await;
    assert!(out.contains("ok backend_down"), "{out}");
    let backends = r.admin_get("/admin/backends").await.json();
    let flaky = backends["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "bk-flaky")
        .unwrap();
    assert_eq!(
        flaky["status"], "unhealthy",
        "{backends} (upstream {})",
        r.upstream
    );
}

/// 4. A burst of requests shows in the traffic view (and the usage view).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_traffic_view_shows_a_burst_of_requests() {
    let _browser = BROWSER.lock().await;
    let mut r = Served::start("traffic").await;
    let burst = (0..30).map(|i| {
        let addr = r.addr;
        async move {
            let stream = i % 3 == 0;
            let body = format!(
                r#"{{"model":"alpha-model","stream":{stream},"messages":[{{"role":"user","content":"burst number {i}"}}]}}"#
            );
            let reply = chat(addr, &body).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        }
    });
    futures_util::future::join_all(burst).await;
    let stats = r.admin_get("/admin/stats").await.json();
    assert!(
        stats["total_requests"].as_u64().unwrap_or(0) >= 30,
        "the router itself did not count the burst: {stats}"
    );
    let out = r
        .ui(
            "traffic",
            &[
                "--min-requests",
                "30",
                "--models",
                "alpha-model",
                "--backend",
                "bk-alpha",
            ],
            |_| {},
        )
        .await;
    assert!(out.contains("ok traffic"), "{out}");
}

/// 5. The playground streams an answer (the mock echoes the prompt at 20 tokens/s) and
/// names the backend that gave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_playground_streams_an_answer() {
    let _browser = BROWSER.lock().await;
    let mut r = Served::start("playground").await;
    let prompt = "the playground shows every word of this answer as it streams in from the slow mock backend";
    let out = r
        .ui(
            "playground",
            &[
                "--model",
                "stream-model",
                "--backend",
                "bk-stream",
                "--prompt",
                prompt,
            ],
            |_| {},
        )
        .await;
    assert!(out.contains("ok playground"), "{out}");
}

/// 6. A config change applied with the reload button shows in the config view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_reload_button_applies_a_changed_config() {
    let _browser = BROWSER.lock().await;
    let mut r = Served::start("reload").await;
    let (file, upstream) = (r.file.clone(), r.upstream);
    let out = r
        .ui("reload", &["--expect", "reloaded-alias"], move |what| {
            assert_eq!(what, "config");
            std::fs::write(&file, config(upstream, ", reloaded-alias: stream-model")).unwrap();
        })
        .await;
    assert!(out.contains("ok reload"), "{out}");
    let config = r.admin_get("/admin/config").await.json();
    assert_eq!(
        config["config"]["model_aliases"]["reloaded-alias"], "stream-model",
        "{config}"
    );
    assert_eq!(config["last_reload"]["ok"], true, "{config}");
}

/// 7. Usable (issue 19): Tab walks the nav with a visible focus ring and Enter opens a view;
/// every control, chart and table has an accessible name; dark and light themes both read
/// well; nothing sticks out sideways at 1280×800 or at 390 px; and the backends view (while
/// a backend goes down) and the traffic view (while requests keep coming) do not shift
/// their layout across two refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_is_usable_by_keyboard_and_holds_still() {
    let _browser = BROWSER.lock().await;
    let mut r = Served::start("usable").await;
    const BODY: &str = r#"{"model":"alpha-model","stream":true,"messages":[{"role":"user","content":"hold still"}]}"#;
    // Rows in the traffic and usage tables before the page opens ...
    for _ in 0..5 {
        let reply = chat(r.addr, BODY).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    // ... and new requests all along (paced, not waited on), so that the traffic view's
    // figures and charts change while the driver watches it.
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = tokio::spawn({
        let (addr, stop) = (r.addr, stop.clone());
        async move {
            let mut pace = tokio::time::interval(Duration::from_millis(200));
            let mut refused = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                pace.tick().await;
                let reply = chat(addr, BODY).await;
                if reply.status != StatusCode::OK {
                    refused.push(format!("{}: {}", reply.status, reply.text()));
                }
            }
            refused
        }
    });
    let health = r.health.clone();
    let out = r
        .ui(
            "usable",
            &["--backend", "bk-flaky", "--models", MODELS],
            move |what| {
                assert_eq!(what, "backends");
                // While the backends view is watched: bk-flaky's probe starts failing.
                health.store(500, Ordering::SeqCst);
            },
        )
        .await;
    stop.store(true, Ordering::SeqCst);
    let refused = trickle.await.unwrap();
    assert!(
        refused.is_empty(),
        "requests of the trickle failed: {refused:?}"
    );
    assert!(out.contains("ok usable"), "{out}");
}

/// `admin.webui.enabled`: on by default with an `admin` section, off without one, and each
/// way when set.
#[tokio::test]
async fn webui_follows_admin_webui_enabled() {
    let backends = "backends:\n  - {name: demo, type: mock, models: [mock-model]}\n";
    for (admin, served) in [
        ("admin: {auth: {method: bearer, token: t}}\n", true),
        ("", false),
        (
            "admin: {auth: {method: bearer, token: t}, webui: {enabled: false}}\n",
            false,
        ),
        ("admin: {webui: {enabled: true}}\n", true),
    ] {
        let router = start_router(&format!("{admin}{backends}")).await;
        let page = get_path(router.tcp_addr().unwrap(), "/webui/").await;
        if served {
            assert_eq!(page.status, StatusCode::OK, "{admin:?}: {}", page.text());
        } else {
            assert_eq!(
                page.status,
                StatusCode::NOT_FOUND,
                "{admin:?}: {}",
                page.text()
            );
        }
    }
}
