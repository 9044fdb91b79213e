//! Files API benchmark: a 200 MiB upload and its download through the router, with the
//! router's resident memory sampled all along. The router must stream both ways: its peak
//! RSS stays under 64 MiB (PASS/FAIL is printed, and FAIL exits with 1).
//!
//! The router runs as the real release binary (`continuum serve`); the client streams the
//! multipart body from a generator (never the whole file in memory here either) over one
//! HTTP/1.1 connection, then reads the content back, checking its length and SHA-256. RSS
//! (`VmRSS` of `/proc/<pid>/status`) is sampled every 50 ms. Run with
//! `cargo bench --bench files`.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

/// The file's size.
const SIZE: usize = 200 << 20;
/// The generator's chunk.
const CHUNK: usize = 64 << 10;
/// The bound on the router's RSS.
const LIMIT_MIB: f64 = 64.0;
const BOUNDARY: &str = "continuum-bench-5c2e9a";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pass = runtime.block_on(run());
    if !pass {
        std::process::exit(1);
    }
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Samples a process's RSS every 50 ms on its own thread: the peak since the last
/// [`Sampler::take_peak`], and the number of samples.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicU64::new(0));
        let (s, p, n) = (stop.clone(), peak.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                n.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler {
            stop,
            peak,
            samples,
            thread: Some(thread),
        }
    }

    /// The peak since the last call (KiB), starting a new one.
    fn take_peak(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples.load(Ordering::Relaxed)
    }
}

/// Chunk `i` of the file: 64 KiB of pseudo-random bytes from seed `i` (so the same file
/// can be made twice without keeping it).
fn chunk(i: usize) -> Bytes {
    let mut rng = fastrand::Rng::with_seed(i as u64 ^ 0x5eed);
    let mut buf = vec![0u8; CHUNK.min(SIZE - i * CHUNK)];
    rng.fill(&mut buf);
    Bytes::from(buf)
}

fn chunks() -> usize {
    SIZE.div_ceil(CHUNK)
}

fn preamble() -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nuser_data\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
}

fn epilogue() -> String {
    format!("\r\n--{BOUNDARY}--\r\n")
}

async fn connect(
    addr: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<
    StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>,
> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// Streams the upload; the file's id.
async fn upload(addr: SocketAddr) -> String {
    use futures_util::StreamExt;
    let (pre, epi) = (preamble(), epilogue());
    let total = pre.len() + SIZE + epi.len();
    let n = chunks();
    let body = futures_util::stream::iter(0..n + 2)
        .map(move |i| {
            let bytes = match i {
                0 => Bytes::from(preamble()),
                i if i <= n => chunk(i - 1),
                _ => Bytes::from(epilogue()),
            };
            Ok::<_, Infallible>(Frame::data(bytes))
        })
        .boxed();
    let mut sender = connect(addr).await;
    let req = http::Request::post(format!("http://{addr}/v1/files"))
        .header("host", addr.to_string())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", total)
        .body(StreamBody::new(body))
        .expect("request");
    let resp = sender.send_request(req).await.expect("upload failed");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(status, 200, "upload: {}", String::from_utf8_lossy(&body));
    let file: serde_json::Value = serde_json::from_slice(&body).expect("file object");
    assert_eq!(file["bytes"], SIZE as u64, "{file}");
    file["id"].as_str().expect("id").to_string()
}

/// Reads the content back; its length and SHA-256.
async fn download(addr: SocketAddr, id: &str) -> (usize, Vec<u8>) {
    let mut sender = connect(addr).await;
    let req = http::Request::get(format!("http://{addr}/v1/files/{id}/content"))
        .header("host", addr.to_string())
        .body(StreamBody::new(futures_util::StreamExt::boxed(
            futures_util::stream::empty(),
        )))
        .expect("request");
    let resp = sender.send_request(req).await.expect("download failed");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    let mut body = resp.into_body();
    let mut hash = Sha256::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("body").into_data() {
            len += data.len();
            hash.update(&data);
        }
    }
    (len, hash.finalize().to_vec())
}

async fn run() -> bool {
    let dir = std::env::temp_dir().join(format!("continuum-bench-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("bench.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{bind_address: \"127.0.0.1:0\"}}\nstore: {{path: \"{}\"}}\nfiles: {{storage_path: \"{}\", max_file_size: 256MB}}\nbackends:\n  - {{name: m, type: mock, models: [bench-model]}}\nlogging: {{level: info}}\n",
            dir.join("store.redb").display(),
            dir.join("files").display()
        ),
    )
    .expect("write config");

    // The expected digest, made before the router runs (the generator is deterministic).
    let mut hash = Sha256::new();
    for i in 0..chunks() {
        hash.update(chunk(i));
    }
    let expected = hash.finalize().to_vec();

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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_kib(pid);

    let sampler = Sampler::start(pid);
    let t = Instant::now();
    let id = upload(router).await;
    let up_time = t.elapsed();
    let up_peak = sampler.take_peak().max(rss_kib(pid));
    let t = Instant::now();
    let (len, digest) = download(router, &id).await;
    let down_time = t.elapsed();
    let down_peak = sampler.take_peak().max(rss_kib(pid));
    let samples = sampler.finish();
    let after = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(len, SIZE, "downloaded length");
    assert!(digest == expected, "the download differs from the upload");

    let mib = |kib: u64| kib as f64 / 1024.0;
    let peak = mib(up_peak.max(down_peak));
    let size_mib = SIZE as f64 / (1 << 20) as f64;
    println!("continuum Files API: {size_mib:.0} MiB up and down through the router (release binary, one connection each)");
    println!(
        "upload:   {:>6.2} s  {:>8.1} MiB/s  (streamed from a generator; written and synced to disk)",
        up_time.as_secs_f64(),
        size_mib / up_time.as_secs_f64()
    );
    println!(
        "download: {:>6.2} s  {:>8.1} MiB/s  (length and SHA-256 checked)",
        down_time.as_secs_f64(),
        size_mib / down_time.as_secs_f64()
    );
    println!(
        "router RSS: idle {:.1} MiB, peak during upload {:.1} MiB, peak during download {:.1} MiB, after {:.1} MiB ({samples} samples, every 50 ms)",
        mib(idle),
        mib(up_peak),
        mib(down_peak),
        mib(after)
    );
    let pass = peak <= LIMIT_MIB;
    println!(
        "{}: peak RSS {peak:.1} MiB {} the {LIMIT_MIB:.0} MiB bound",
        if pass { "PASS" } else { "FAIL" },
        if pass { "within" } else { "over" }
    );
    println!(
        "{{\"size_mib\":{size_mib:.0},\"upload_mib_s\":{:.1},\"download_mib_s\":{:.1},\"idle_rss_mib\":{:.1},\"peak_rss_mib\":{peak:.1},\"pass\":{pass}}}",
        size_mib / up_time.as_secs_f64(),
        size_mib / down_time.as_secs_f64(),
        mib(idle)
    );
    pass
}
