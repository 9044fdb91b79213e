//! `continuum bench`: load-tests an OpenAI-compatible endpoint (the load generator is
//! `continuum::bench`), with a progress bar and a summary table or `--json`. `--compare
//! URL` sends the same load to a second endpoint, in alternating rounds, and prints the
//! ratios; `--overhead` measures the router's added latency against an in-process
//! backend. With either, each side gets the whole `-n N` (or `-d DURATION`).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use continuum::bench::{self, LoadSpec, Progress, Report, Stop, Summary};
use continuum::client::Client;
use serde_json::{json, Value};

use super::output::outln;
use super::BenchArgs;

/// Each side of an alternating run gets its load in this many rounds.
const ROUNDS_PER_SIDE: u64 = 2;

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
            None => single(&args, &spec, &a).await,
            Some(other) => {
                let b = Client::new(other, args.remote.api_key.as_deref())
                    .map_err(|e| e.to_string())?;
                compare(&args, &spec, &a, &b).await
            }
        }
    })
}

fn spec(args: &BenchArgs, model: String) -> LoadSpec {
    LoadSpec {
        model,
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
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

/// One endpoint: the table (or JSON) of its figures.
async fn single(args: &BenchArgs, spec: &LoadSpec, client: &Client) -> Result<(), String> {
    let report = with_progress(spec.stop, args.json, |p| bench::run(client, spec, p)).await;
    let s = report.summary();
    if args.json {
        let mut v = run_json(spec);
        merge(&mut v, endpoint_json(client.root(), &s));
        outln!("{v}");
    } else {
        outln!("{}", table(&[(client.root(), &s)], None, spec.stream));
        print_errors(&[(client.root(), &s)]);
    }
    check_errors(client.root(), &s)
}

/// `--compare URL`: the same load against both endpoints, and B / A.
async fn compare(args: &BenchArgs, spec: &LoadSpec, a: &Client, b: &Client) -> Result<(), String> {
    let (ra, rb) = alternate(spec, a, b, args.json).await;
    let (sa, sb) = (ra.summary(), rb.summary());
    if args.json {
        let mut v = run_json(spec);
        v["a"] = endpoint_json(a.root(), &sa);
        v["b"] = endpoint_json(b.root(), &sb);
        v["ratios"] = ratios("b / a", &sa, &sb);
        outln!("{v}");
    } else {
        let names = (format!("A: {}", a.root()), format!("B: {}", b.root()));
        outln!(
            "{}",
            table(
                &[(&names.0, &sa), (&names.1, &sb)],
                Some("B / A"),
                spec.stream
            )
        );
        print_errors(&[(&names.0, &sa), (&names.1, &sb)]);
    }
    check_errors(a.root(), &sa)?;
    check_errors(b.root(), &sb)
}

/// What every `--json` output says about the run itself.
fn run_json(spec: &LoadSpec) -> Value {
    json!({
        "model": spec.model,
        "concurrency": spec.concurrency,
        "stream": spec.stream,
    })
}

/// One endpoint's figures with its URL.
fn endpoint_json(url: &str, s: &Summary) -> Value {
    let mut v = json!({"url": url});
    merge(&mut v, s.to_json());
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

/// Every request failing means the numbers describe errors, not the endpoint: exit 1,
/// saying what the server said.
fn check_errors(url: &str, s: &Summary) -> Result<(), String> {
    if s.requests == 0 || s.errors < s.requests {
        return Ok(());
    }
    match s.top_error() {
        Some((message, n)) if n == s.requests => {
            Err(format!("every request to {url} failed: {message}"))
        }
        Some((message, n)) => Err(format!(
            "every request to {url} failed; most often ({n} of {}): {message}",
            s.requests
        )),
        None => Err(format!("every request to {url} failed")),
    }
}

/// Under the table: what the failed requests were told, most frequent first.
fn print_errors(sides: &[(&str, &Summary)]) {
    for (name, s) in sides {
        if s.errors == 0 {
            continue;
        }
        let mut messages: Vec<(&String, &u64)> = s.error_messages.iter().collect();
        messages.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let prefix = if sides.len() > 1 {
            format!("{name}: ")
        } else {
            String::new()
        };
        outln!("{prefix}{} of {} requests failed:", s.errors, s.requests);
        for (message, n) in messages.iter().take(5) {
            outln!("  {n} × {message}");
        }
        if messages.len() > 5 {
            outln!("  … and {} other messages", messages.len() - 5);
        }
    }
}

/// Runs `work` with a progress bar on stderr (hidden with `--json` or without a terminal).
async fn with_progress<T, F, Fut>(total: Stop, quiet: bool, work: F) -> T
where
    F: FnOnce(Arc<Progress>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let progress = Arc::new(Progress::default());
    let bar = match total {
        Stop::Requests(n) => indicatif::ProgressBar::new(n),
        Stop::Duration(d) => indicatif::ProgressBar::new(d.as_secs().max(1)),
    };
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let template = match total {
        Stop::Requests(_) => "{bar:40} {pos}/{len} requests {msg}",
        Stop::Duration(_) => "{bar:40} {pos}/{len} s {msg}",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let ticker = {
        let bar = bar.clone();
        let progress = progress.clone();
        let by_time = matches!(total, Stop::Duration(_));
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

/// The rounds one side of an alternating run is given: together, the whole `stop`.
fn rounds(stop: Stop) -> Vec<Stop> {
    match stop {
        Stop::Requests(n) => (0..ROUNDS_PER_SIDE)
            .map(|i| n / ROUNDS_PER_SIDE + u64::from(i < n % ROUNDS_PER_SIDE))
            .filter(|n| *n > 0)
            .map(Stop::Requests)
            .collect(),
        Stop::Duration(d) => (0..ROUNDS_PER_SIDE)
            .map(|_| Stop::Duration(d / ROUNDS_PER_SIDE as u32))
            .collect(),
    }
}

/// The same load against `a` and `b` (each gets all of `spec.stop`), in alternating
/// rounds so that drift on the machine affects both alike.
async fn alternate(spec: &LoadSpec, a: &Client, b: &Client, quiet: bool) -> (Report, Report) {
    let total = match spec.stop {
        Stop::Requests(n) => Stop::Requests(n.saturating_mul(2)),
        Stop::Duration(d) => Stop::Duration(d.saturating_mul(2)),
    };
    let mut ra = Report {
        streamed: spec.stream,
        ..Report::default()
    };
    let mut rb = ra.clone();
    with_progress(total, quiet, |progress| async move {
        for stop in rounds(spec.stop) {
            let round = LoadSpec {
                stop,
                ..spec.clone()
            };
            ra.merge(bench::run(a, &round, progress.clone()).await);
            rb.merge(bench::run(b, &round, progress.clone()).await);
        }
        (ra, rb)
    })
    .await
}

/// One line of the table: a figure, its unit, its value per endpoint, and whether a
/// ratio of it means something.
struct Row {
    label: &'static str,
    unit: &'static str,
    values: Vec<(String, Option<f64>)>,
    ratio: bool,
}

/// The figures of each side, one row per figure; TTFT and inter-token rows only for
/// streamed runs (a non-streamed answer has no first token to time).
fn rows(sides: &[&Summary], streamed: bool) -> Vec<Row> {
    let ms = |f: &dyn Fn(&Summary) -> Option<f64>| -> Vec<(String, Option<f64>)> {
        sides
            .iter()
            .map(|s| match f(s) {
                Some(v) => (format!("{v:.3}"), Some(v)),
                None => ("-".to_string(), None),
            })
            .collect()
    };
    let row = |label, unit, values, ratio| Row {
        label,
        unit,
        values,
        ratio,
    };
    let count = |f: &dyn Fn(&Summary) -> u64| -> Vec<(String, Option<f64>)> {
        sides.iter().map(|s| (f(s).to_string(), None)).collect()
    };
    let rate = |f: &dyn Fn(&Summary) -> f64| -> Vec<(String, Option<f64>)> {
        sides
            .iter()
            .map(|s| (format!("{:.1}", f(s)), Some(f(s))))
            .collect()
    };
    let mut out = vec![
        row("requests", "", count(&|s| s.requests), false),
        row("errors", "", count(&|s| s.errors), false),
        row("throughput", "req/s", rate(&|s| s.rps), true),
        row("latency p50", "ms", ms(&|s| Some(s.latency.p50)), true),
        row("latency p90", "ms", ms(&|s| Some(s.latency.p90)), true),
        row("latency p99", "ms", ms(&|s| Some(s.latency.p99)), true),
        row("latency max", "ms", ms(&|s| Some(s.latency.max)), false),
    ];
    if streamed {
        out.extend([
            row("TTFT p50", "ms", ms(&|s| s.ttft.map(|p| p.p50)), true),
            row("TTFT p90", "ms", ms(&|s| s.ttft.map(|p| p.p90)), false),
            row("TTFT p99", "ms", ms(&|s| s.ttft.map(|p| p.p99)), false),
            row(
                "inter-token p50",
                "ms",
                ms(&|s| s.inter_token.map(|p| p.p50)),
                false,
            ),
            row(
                "inter-token p99",
                "ms",
                ms(&|s| s.inter_token.map(|p| p.p99)),
                false,
            ),
        ]);
    }
    out.push(row(
        "output tokens",
        "tokens/s",
        rate(&|s| s.output_tokens_per_second),
        true,
    ));
    let statuses = sides
        .iter()
        .map(|s| {
            let text = s
                .statuses
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            (text, None)
        })
        .collect();
    out.push(row("statuses", "", statuses, false));
    out
}

/// The summary table: a `unit` column (each row one unit, latencies all in ms), one
/// column per endpoint, and with two endpoints a ratio column whose header says what it
/// divides (e.g. `B / A`).
fn table(sides: &[(&str, &Summary)], ratio: Option<&str>, streamed: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["figure".to_string(), "unit".to_string()];
    header.extend(sides.iter().map(|(name, _)| name.to_string()));
    if let Some(r) = ratio {
        header.push(r.to_string());
    }
    t.set_header(header);
    let summaries: Vec<&Summary> = sides.iter().map(|(_, s)| *s).collect();
    for row in rows(&summaries, streamed) {
        let mut cells = vec![row.label.to_string(), row.unit.to_string()];
        let ratio_cell = match (ratio, row.values.as_slice()) {
            (Some(_), [(_, Some(a)), (_, Some(b))]) if row.ratio && *a > 0.0 => {
                format!("{:.2}", b / a)
            }
            _ => String::new(),
        };
        cells.extend(row.values.into_iter().map(|(text, _)| text));
        if ratio.is_some() {
            cells.push(ratio_cell);
        }
        t.add_row(cells);
    }
    t
}

/// `b / a` of the figures where a ratio means something; `divides` names the sides.
fn ratios(divides: &str, a: &Summary, b: &Summary) -> Value {
    let r = |x: f64, y: f64| {
        if x > 0.0 {
            Value::from((y / x * 1000.0).round() / 1000.0)
        } else {
            Value::Null
        }
    };
    let ttft = |s: &Summary| s.ttft.map_or(0.0, |p| p.p50);
    json!({
        "divides": divides,
        "rps": r(a.rps, b.rps),
        "latency_p50": r(a.latency.p50, b.latency.p50),
        "latency_p90": r(a.latency.p90, b.latency.p90),
        "latency_p99": r(a.latency.p99, b.latency.p99),
        "ttft_p50": r(ttft(a), ttft(b)),
        "output_tokens_per_second": r(a.output_tokens_per_second, b.output_tokens_per_second),
    })
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
    router.shutdown().await;
    let (sd, sr) = (rd.summary(), rr.summary());
    let added = |f: fn(&bench::Percentiles) -> f64| f(&sr.latency) - f(&sd.latency);
    let added = [added(|p| p.p50), added(|p| p.p90), added(|p| p.p99)];
    if args.json {
        let mut v = run_json(&spec);
        v["direct"] = endpoint_json(direct.root(), &sd);
        v["router"] = endpoint_json(routed.root(), &sr);
        v["added_ms"] = json!({
            "p50": (added[0] * 1000.0).round() / 1000.0,
            "p90": (added[1] * 1000.0).round() / 1000.0,
            "p99": (added[2] * 1000.0).round() / 1000.0,
        });
        v["ratios"] = ratios("router / direct", &sd, &sr);
        outln!("{v}");
    } else {
        outln!(
            "{}",
            table(
                &[("direct", &sd), ("router", &sr)],
                Some("router / direct"),
                spec.stream
            )
        );
        print_errors(&[("direct", &sd), ("router", &sr)]);
        outln!(
            "router added latency (µs): p50 {:.1}, p90 {:.1}, p99 {:.1} (concurrency {}, {} requests each way)",
            added[0] * 1000.0,
            added[1] * 1000.0,
            added[2] * 1000.0,
            spec.concurrency,
            sd.requests,
        );
    }
    check_errors(direct.root(), &sd)?;
    check_errors(routed.root(), &sr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_gets_the_whole_load() {
        let total = |stop| -> u64 {
            rounds(stop)
                .iter()
                .map(|r| match r {
                    Stop::Requests(n) => *n,
                    Stop::Duration(_) => unreachable!(),
                })
                .sum()
        };
        for n in [1, 2, 3, 7, 80, 201] {
            assert_eq!(total(Stop::Requests(n)), n, "{n}");
        }
        let d: Duration = rounds(Stop::Duration(Duration::from_secs(4)))
            .iter()
            .map(|r| match r {
                Stop::Duration(d) => *d,
                Stop::Requests(_) => unreachable!(),
            })
            .sum();
        assert_eq!(d, Duration::from_secs(4));
    }
}
