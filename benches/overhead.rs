//! Router overhead benchmark: the latency the router adds over calling the backend
//! directly, at concurrency 1 and 64, in the same run on the same machine; plus the
//! router's idle and post-load RSS.
//!
//! The router runs as the real release binary (`continuum serve`, 2 workers); the backend is
//! a small axum server on its own thread answering a fixed chat completion; when nginx is
//! installed, a plain nginx proxy hop is measured too, as the reference for one hop. Run with
//! `cargo bench --bench overhead` (add `-- --quick` for a shorter run).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use continuum::backend::{build_client, HttpClient};
use http_body_util::{BodyExt, Full};

const REQUEST: &str = r#"{"model":"bench-model","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence, please."}],"temperature":0.2,"max_tokens":64}"#;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // The backend runs on a thread of its own, as a separate server would (the same one
    // `continuum bench --overhead` uses); the load generator runs on this one. Direct,
    // router and nginx are measured with the same pair.
    let up = continuum::bench::spawn_fixed_upstream().expect("upstream");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(up, quick));
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

/// Concurrency 1: requests to each target alternate in blocks so drift hits all alike.
async fn sequential(client: &HttpClient, targets: &[&http::Uri], n: usize) -> Vec<Stats> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); targets.len()];
    let mut walls = vec![Duration::ZERO; targets.len()];
    for _ in 0..n / 100 {
        for (i, uri) in targets.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..100 {
                samples[i].push(one(client, uri).await);
            }
            walls[i] += t.elapsed();
        }
    }
    samples
        .into_iter()
        .zip(walls)
        .map(|(s, w)| stats(s, w))
        .collect()
}

/// Starts nginx as a plain reverse-proxy hop to `up`, when nginx is installed: the
/// reference point for what one proxy hop costs on this machine.
fn start_nginx(dir: &std::path::Path, up: SocketAddr) -> Option<(std::process::Child, SocketAddr)> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes 2; error_log stderr warn; pid {pid};\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
               upstream up {{ server {up}; keepalive 256; }}\n\
               server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}\n",
            pid = dir.join("nginx.pid").display(),
            dir = dir.display(),
        ),
    )
    .ok()?;
    let child = Command::new(nginx)
        .args(["-c"])
        .arg(&conf)
        .args(["-p"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some((child, addr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
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

async fn run(up: SocketAddr, quick: bool) {
    let workers: usize = std::env::var("CONTINUUM_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let dir = std::env::temp_dir().join(format!("continuum-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("bench.yaml");
    // Extra top-level config (e.g. `metrics: {enabled: false}`) for A/B runs.
    let extra = std::env::var("CONTINUUM_BENCH_CONFIG").unwrap_or_default();
    std::fs::write(
        &config,
        format!("server: {{bind_address: \"127.0.0.1:0\", workers: {workers}}}\nbackends:\n  - {{name: up, type: generic, url: \"http://{up}\", models: [bench-model]}}\nlogging: {{level: info}}\n{extra}\n"),
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

    let mut nginx = start_nginx(&dir, up);
    let client = build_client(256, Duration::from_secs(5));
    let direct: http::Uri = format!("http://{up}/v1/chat/completions")
        .parse()
        .expect("uri");
    let routed: http::Uri = format!("http://{router}/v1/chat/completions")
        .parse()
        .expect("uri");
    let proxied: Option<http::Uri> = nginx.as_ref().map(|(_, a)| {
        format!("http://{a}/v1/chat/completions")
            .parse()
            .expect("uri")
    });
    let (n1, per_task) = if quick { (2_000, 50) } else { (20_000, 400) };

    let mut targets = vec![&direct, &routed];
    targets.extend(proxied.as_ref());
    sequential(&client, &targets, 2_000).await; // warm-up
    let c1 = sequential(&client, &targets, n1).await;
    let d64 = concurrent(&client, &direct, 64, per_task).await;
    let cpu_before = cpu_seconds(pid);
    let r64 = concurrent(&client, &routed, 64, per_task).await;
    let cpu_per_request_us = (cpu_seconds(pid) - cpu_before) * 1e6 / (64 * per_task) as f64;
    let n64 = match &proxied {
        Some(uri) => Some(concurrent(&client, uri, 64, per_task).await),
        None => None,
    };
    let load_rss = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    if let Some((mut n, _)) = nginx.take() {
        // SIGTERM (not SIGKILL) so the master stops its workers too.
        let _ = Command::new("kill")
            .args(["-TERM", &n.id().to_string()])
            .status();
        let _ = n.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);

    let (d1, r1) = (&c1[0], &c1[1]);
    println!("continuum router overhead (router minus direct, same run; microseconds)");
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>12}",
        "", "p50", "p90", "p99", "req/s"
    );
    let mut rows = vec![("c=1 direct", d1), ("c=1 router", r1)];
    rows.extend(c1.get(2).map(|n| ("c=1 nginx", n)));
    rows.extend([("c=64 direct", &d64), ("c=64 router", &r64)]);
    rows.extend(n64.as_ref().map(|n| ("c=64 nginx", n)));
    for (name, s) in rows {
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
    if let Some(n1) = c1.get(2) {
        println!(
            "{:<16} {:>10.1} {:>10.1} {:>10.1}",
            "c=1 nginx added",
            n1.p50 - d1.p50,
            n1.p90 - d1.p90,
            n1.p99 - d1.p99
        );
    }
    println!(
        "{:<16} {:>10.1} {:>10.1} {:>10.1}",
        "c=64 added",
        r64.p50 - d64.p50,
        r64.p90 - d64.p90,
        r64.p99 - d64.p99
    );
    if let Some(n64) = &n64 {
        println!(
            "throughput at c=64: router {:.0} req/s = {:.0}% of nginx's {:.0} req/s",
            r64.rps,
            100.0 * r64.rps / n64.rps,
            n64.rps
        );
    } else {
        println!("(nginx not installed: no proxy-hop reference; apt-get install nginx-light)");
    }
    println!(
        "router CPU time per request at c=64: {cpu_per_request_us:.1} us (workers: {workers})"
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
