//! Router overhead benchmark: the latency the router adds over calling the backend
//! directly, at concurrency 1 and 64, in the same run on the same machine; plus the
//! router's idle and post-load RSS.
//!
//! The router runs as the real release binary (`continuum serve`); the backend is a small
//! axum server answering a fixed chat completion from this process. Run with
//! `cargo bench --bench overhead` (add `-- --quick` for a shorter run).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::post;
use bytes::Bytes;
use continuum::backend::{build_client, HttpClient};
use http_body_util::{BodyExt, Full};

const REPLY: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
const REQUEST: &str = r#"{"model":"bench-model","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence, please."}],"temperature":0.2,"max_tokens":64}"#;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(quick));
}

async fn one(client: &HttpClient, uri: &http::Uri) -> Duration {
    let req = http::Request::post(uri.clone())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(REQUEST.as_bytes())))
        .expect("request");
    let start = Instant::now();
    let resp = client.request(req).await.expect("request failed");
    assert_eq!(resp.status(), 200, "benchmark request failed");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let elapsed = start.elapsed();
    assert!(body.len() > 100);
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    rps: f64,
}

fn stats(mut samples: Vec<Duration>, wall: Duration) -> Stats {
    samples.sort();
    Stats {
        p50: percentile(&samples, 0.50),
        p90: percentile(&samples, 0.90),
        p99: percentile(&samples, 0.99),
        rps: samples.len() as f64 / wall.as_secs_f64(),
    }
}

/// Concurrency 1: direct and routed requests alternate in blocks so drift hits both alike.
async fn sequential(
    client: &HttpClient,
    direct: &http::Uri,
    routed: &http::Uri,
    n: usize,
) -> (Stats, Stats) {
    let (mut d, mut r) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut dw, mut rw) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n / 100 {
        let t = Instant::now();
        for _ in 0..100 {
            d.push(one(client, direct).await);
        }
        dw += t.elapsed();
        let t = Instant::now();
        for _ in 0..100 {
            r.push(one(client, routed).await);
        }
        rw += t.elapsed();
    }
    (stats(d, dw), stats(r, rw))
}

/// `conc` tasks issue `per_task` requests each, back to back.
async fn concurrent(client: &HttpClient, uri: &http::Uri, conc: usize, per_task: usize) -> Stats {
    let start = Instant::now();
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let client = client.clone();
            let uri = uri.clone();
            tokio::spawn(async move {
                let mut v = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    v.push(one(&client, &uri).await);
                }
                v
            })
        })
        .collect();
    let mut all = Vec::with_capacity(conc * per_task);
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    stats(all, start.elapsed())
}

/// User plus system CPU time the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|f| f.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn run(quick: bool) {
    let upstream = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async { ([("content-type", "application/json")], REPLY) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, upstream).await.expect("upstream") });

    let workers: usize = std::env::var("CONTINUUM_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let dir = std::env::temp_dir().join(format!("continuum-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("bench.yaml");
    std::fs::write(
        &config,
        format!("server: {{bind_address: \"127.0.0.1:0\", workers: {workers}}}\nbackends:\n  - {{name: up, type: generic, url: \"http://{up}\", models: [bench-model]}}\nlogging: {{level: info}}\n"),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_continuum"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start continuum");
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let router: SocketAddr = loop {
        let line = lines.next().expect("router exited").expect("read");
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            break addr.parse().expect("address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(pid);

    let client = build_client(256, Duration::from_secs(5));
    let direct: http::Uri = format!("http://{up}/v1/chat/completions")
        .parse()
        .expect("uri");
    let routed: http::Uri = format!("http://{router}/v1/chat/completions")
        .parse()
        .expect("uri");
    let (n1, per_task) = if quick { (2_000, 50) } else { (20_000, 400) };

    sequential(&client, &direct, &routed, 2_000).await; // warm-up
    let (d1, r1) = sequential(&client, &direct, &routed, n1).await;
    let d64 = concurrent(&client, &direct, 64, per_task).await;
    let cpu_before = cpu_seconds(pid);
    let r64 = concurrent(&client, &routed, 64, per_task).await;
    let cpu_per_request_us = (cpu_seconds(pid) - cpu_before) * 1e6 / (64 * per_task) as f64;
    let load_rss = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!("continuum router overhead (router minus direct, same run; microseconds)");
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>12}",
        "", "p50", "p90", "p99", "req/s"
    );
    for (name, s) in [
        ("c=1 direct", &d1),
        ("c=1 router", &r1),
        ("c=64 direct", &d64),
        ("c=64 router", &r64),
    ] {
        println!(
            "{name:<16} {:>10.1} {:>10.1} {:>10.1} {:>12.0}",
            s.p50, s.p90, s.p99, s.rps
        );
    }
    println!(
        "{:<16} {:>10.1} {:>10.1} {:>10.1}",
        "c=1 added",
        r1.p50 - d1.p50,
        r1.p90 - d1.p90,
        r1.p99 - d1.p99
    );
    println!(
        "{:<16} {:>10.1} {:>10.1} {:>10.1}",
        "c=64 added",
        r64.p50 - d64.p50,
        r64.p90 - d64.p90,
        r64.p99 - d64.p99
    );
    println!(
        "router RSS: idle {:.1} MiB, after load {:.1} MiB",
        idle_rss as f64 / 1024.0,
        load_rss as f64 / 1024.0
    );
    println!(
        "{{\"added_us\":{{\"c1_p50\":{:.1},\"c1_p99\":{:.1},\"c64_p50\":{:.1},\"c64_p99\":{:.1}}},\"cpu_us_per_request\":{:.1},\"idle_rss_mib\":{:.1},\"load_rss_mib\":{:.1}}}",
        r1.p50 - d1.p50,
        r1.p99 - d1.p99,
        r64.p50 - d64.p50,
        r64.p99 - d64.p99,
        cpu_per_request_us,
        idle_rss as f64 / 1024.0,
        load_rss as f64 / 1024.0
    );
}
