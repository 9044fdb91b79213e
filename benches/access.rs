//! Cost of admitting one request: API-key check (SHA-256 of the presented key, a
//! constant-time comparison against 100 configured keys, scope, expiry, the key's own
//! rate limit) plus in-memory rate limits (per client, per key, global) for 10,000
//! distinct clients. Target: under 20 µs p50. `cargo bench --bench access`.

use std::time::Instant;

use continuum::auth::{Keys, Need};
use continuum::config::{self, Format, Strictness};
use continuum::ratelimit::{KeyedCaller, Limits};
use http::HeaderMap;

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let mut yaml = String::from("api_keys:\n  mode: blocking\n  api_keys:\n");
    for i in 0..100 {
        yaml.push_str(&format!(
            "    - {{key: sk-bench-key-{i:04}, id: key-{i}, rate_limit: {{requests_per_second: 1000000, burst_capacity: 1000000}}}}\n"
        ));
    }
    yaml.push_str("rate_limiting:\n  limits:\n    per_client: {requests_per_second: 1000000, burst_capacity: 1000000}\n    per_api_key: {requests_per_second: 1000000, burst_capacity: 1000000}\n    global: {requests_per_second: 1000000000, burst_capacity: 1000000000}\nbackends:\n  - {name: m, type: mock}\n");
    let (config, _) = config::from_text(
        &yaml,
        Format::Yaml,
        "bench.yaml",
        &std::collections::HashMap::<String, String>::new(),
        Strictness::Validate,
    )
    .expect("config");
    let epoch = Instant::now();
    let keys = Keys::from_config(&config.api_keys, epoch, true).expect("keys");
    let limits = Limits::from_config(&config.rate_limiting, epoch, 1)
        .expect("limits")
        .expect("on");
    let headers: Vec<HeaderMap> = (0..100)
        .map(|i| {
            let mut h = HeaderMap::new();
            h.insert(
                "authorization",
                format!("Bearer sk-bench-key-{i:04}")
                    .parse()
                    .expect("header"),
            );
            h
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let n = 200_000;
    let samples = rt.block_on(async {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            let key = keys
                .check(&headers[i % 100], Need::Chat, t)
                .expect("admitted")
                .expect("keyed");
            let ip = Some(std::net::IpAddr::from([
                10,
                0,
                (i / 256 % 40) as u8,
                (i % 256) as u8,
            ]));
            let caller = KeyedCaller {
                id: &key.id,
                digest: &key.config.digest,
                own_rate: key.config.rate_limit,
            };
            let passed = limits.admit(0, ip, Some(caller), t).await;
            std::hint::black_box(passed.is_ok());
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
        samples
    });
    println!(
        "auth + rate limits (memory), 100 keys: p50 {:.2} µs   p99 {:.2} µs",
        percentile(samples.clone(), 0.5),
        percentile(samples, 0.99)
    );
}
