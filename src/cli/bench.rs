//! `continuum bench`: load-tests an OpenAI-compatible endpoint (the load generator is
//! `continuum::bench`), with a progress bar and a summary table or `--json`. `--compare
//! URL` alternates the same load between two endpoints and prints the ratios;
//! `--overhead` measures the router's added latency against an in-process backend.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use continuum::bench::{self, LoadSpec, Progress, Report, Stop, Summary};
use continuum::client::Client;

use super::output::outln;
use super::BenchArgs;

/// Alternating runs split the load into this many rounds (half per endpoint).
const ROUNDS: u64 = 4;

/// Runs `continuum bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    match bench_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_main(args: BenchArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        if args.overhead {
            return overhead(&args).await;
        }
        let a = super::target::connect(
            args.remote.url.as_deref(),
            args.remote.api_key.as_deref(),
            args.config.as_deref(),
            false,
        )
        .await?
        .client;
        let model = match &args.model {
            Some(m) => m.clone(),
            None => super::target::first_model(&a).await?,
        };
        let spec = spec(&args, model);
        match &args.compare {
            None => {
                let report = with_progress(&spec, args.json, |p| bench::run(&a, &spec, p)).await;
                let s = report.summary();
                if args.json {
                    outln!("{}", s.to_json());
                } else {
                    outln!("{}", single_table(&a, &s));
                }
                check_errors(&s)
            }
            Some(other) => {
                let b = Client::new(other, args.remote.api_key.as_deref()).map_err(|e| e.to_string())?;
                let (ra, rb) = alternate(&spec, &a, &b, args.json).await;
                let (sa, sb) = (ra.summary(), rb.summary());
                if args.json {
                    outln!(
                        "{}",
                        serde_json::json!({"a": {"url": a.root(), "summary": sa.to_json()}, "b": {"url": b.root(), "summary": sb.to_json()}, "ratios": ratios(&sa, &sb)})
                    );
                } else {
                    outln!("{}", compare_table(a.root(), &sa, b.root(), &sb));
                }
                Ok(())
            }
        }
    })
}

fn spec(args: &BenchArgs, model: String) -> LoadSpec {
    LoadSpec {
        model,
        concurrency: args.concurrency.max(1),
        stop: match args.duration {
            Some(d) => Stop::Duration(d),
            None => Stop::Requests(args.requests),
        },
        stream: args.stream,
        prompt_words: args.prompt_words,
        max_tokens: args.max_tokens,
        rate: args.rate,
    }
}

/// Every request failing means the numbers describe errors, not the endpoint.
fn check_errors(s: &Summary) -> Result<(), String> {
    if s.requests > 0 && s.errors == s.requests {
        return Err(format!(
            "every request failed ({})",
            s.statuses
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Runs `work` with a progress bar on stderr (hidden with `--json` or without a terminal).
async fn with_progress<T, F, Fut>(spec: &LoadSpec, quiet: bool, work: F) -> T
where
    F: FnOnce(Arc<Progress>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let progress = Arc::new(Progress::default());
    let bar = match spec.stop {
        Stop::Requests(n) => indicatif::ProgressBar::new(n),
        Stop::Duration(d) => indicatif::ProgressBar::new(d.as_secs().max(1)),
    };
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let template = match spec.stop {
        Stop::Requests(_) => "{bar:40} {pos}/{len} requests {msg}",
        Stop::Duration(_) => "{bar:40} {pos}/{len} s {msg}",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let ticker = {
        let bar = bar.clone();
        let progress = progress.clone();
        let by_time = matches!(spec.stop, Stop::Duration(_));
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if by_time {
                    bar.set_position(started.elapsed().as_secs());
                } else {
                    bar.set_position(progress.done.load(Ordering::Relaxed));
                }
                bar.set_message(format!(
                    "({} errors)",
                    progress.errors.load(Ordering::Relaxed)
                ));
            }
        })
    };
    let out = work(progress).await;
    ticker.abort();
    bar.finish_and_clear();
    out
}

/// The same load against `a` and `b`, in alternating rounds.
async fn alternate(spec: &LoadSpec, a: &Client, b: &Client, quiet: bool) -> (Report, Report) {
    let mut round = spec.clone();
    round.stop = match spec.stop {
        Stop::Requests(n) => Stop::Requests((n / ROUNDS).max(1)),
        Stop::Duration(d) => Stop::Duration(d / ROUNDS as u32),
    };
    let (mut ra, mut rb) = (Report::default(), Report::default());
    with_progress(spec, quiet, |progress| async move {
        for i in 0..ROUNDS {
            if i % 2 == 0 {
                ra.merge(bench::run(a, &round, progress.clone()).await);
            } else {
                rb.merge(bench::run(b, &round, progress.clone()).await);
            }
        }
        (ra, rb)
    })
    .await
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.3} ms")
    }
}

fn rows(s: &Summary) -> Vec<(&'static str, String)> {
    vec![
        ("requests", s.requests.to_string()),
        ("errors", s.errors.to_string()),
        ("req/s", format!("{:.1}", s.rps)),
        ("latency p50", ms(s.latency.p50)),
        ("latency p90", ms(s.latency.p90)),
        ("latency p99", ms(s.latency.p99)),
        ("latency max", ms(s.latency.max)),
        ("TTFT p50", ms(s.ttft.p50)),
        ("TTFT p90", ms(s.ttft.p90)),
        ("TTFT p99", ms(s.ttft.p99)),
        ("inter-token p50", ms(s.inter_token.p50)),
        ("inter-token p99", ms(s.inter_token.p99)),
        (
            "output tokens/s",
            format!("{:.1}", s.output_tokens_per_second),
        ),
        (
            "statuses",
            s.statuses
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ]
}

fn single_table(client: &Client, s: &Summary) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["", client.root()]);
    for (k, v) in rows(s) {
        t.add_row([k.to_string(), v]);
    }
    t
}

fn ratios(a: &Summary, b: &Summary) -> serde_json::Value {
    let r = |x: f64, y: f64| if x > 0.0 { y / x } else { 0.0 };
    serde_json::json!({
        "rps": r(a.rps, b.rps),
        "latency_p50": r(a.latency.p50, b.latency.p50),
        "latency_p99": r(a.latency.p99, b.latency.p99),
        "ttft_p50": r(a.ttft.p50, b.ttft.p50),
        "output_tokens_per_second": r(a.output_tokens_per_second, b.output_tokens_per_second),
    })
}

fn compare_table(a_name: &str, a: &Summary, b_name: &str, b: &Summary) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["", a_name, b_name, "b / a"]);
    let ratio = ratios(a, b);
    let ratio_of = |k: &str| match k {
        "req/s" => ratio["rps"].as_f64(),
        "latency p50" => ratio["latency_p50"].as_f64(),
        "latency p99" => ratio["latency_p99"].as_f64(),
        "TTFT p50" => ratio["ttft_p50"].as_f64(),
        "output tokens/s" => ratio["output_tokens_per_second"].as_f64(),
        _ => None,
    };
    for ((k, va), (_, vb)) in rows(a).into_iter().zip(rows(b)) {
        let r = ratio_of(k).map_or(String::new(), |r| format!("{r:.2}x"));
        t.add_row([k.to_string(), va, vb, r]);
    }
    t
}

/// `--overhead`: an in-process backend, an in-process router in front of it, the same
/// load against both in alternation; the router's added latency.
async fn overhead(args: &BenchArgs) -> Result<(), String> {
    let upstream =
        bench::spawn_fixed_upstream().map_err(|e| format!("cannot start the backend: {e}"))?;
    let yaml = format!(
        "server: {{bind_address: \"127.0.0.1:0\"}}\nbackends:\n  - {{name: bench, type: vllm, url: \"http://{upstream}\", models: [bench-model]}}\n"
    );
    let (config, _) = continuum::config::from_text(
        &yaml,
        continuum::config::Format::Yaml,
        "<bench --overhead>",
        &continuum::config::ProcessEnv,
        continuum::config::Strictness::Validate,
    )
    .map_err(|e| e.to_string())?;
    let router = continuum::Router::builder(config)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let addr = router.tcp_addr().ok_or("the router has no TCP address")?;
    let direct = Client::new(&format!("http://{upstream}"), None).map_err(|e| e.to_string())?;
    let routed = Client::new(&format!("http://{addr}"), None).map_err(|e| e.to_string())?;
    let spec = spec(args, "bench-model".into());
    let (rd, rr) = alternate(&spec, &direct, &routed, args.json).await;
    let (sd, sr) = (rd.summary(), rr.summary());
    let added = serde_json::json!({
        "p50": sr.latency.p50 - sd.latency.p50,
        "p90": sr.latency.p90 - sd.latency.p90,
        "p99": sr.latency.p99 - sd.latency.p99,
    });
    if args.json {
        outln!(
            "{}",
            serde_json::json!({"direct": sd.to_json(), "router": sr.to_json(), "added_ms": added, "rps_ratio": if sd.rps > 0.0 { sr.rps / sd.rps } else { 0.0 }})
        );
    } else {
        outln!("{}", compare_table("direct", &sd, "through continuum", &sr));
        outln!(
            "router added latency: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs (concurrency {})",
            (sr.latency.p50 - sd.latency.p50) * 1000.0,
            (sr.latency.p90 - sd.latency.p90) * 1000.0,
            (sr.latency.p99 - sd.latency.p99) * 1000.0,
            spec.concurrency
        );
    }
    router.shutdown().await;
    check_errors(&sr)
}
