//! `continuum serve` (and bare `continuum`): load the config, start the router, stop
//! gracefully on SIGTERM or Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;

use continuum::config::{Overrides, ProcessEnv};
use continuum::{ReloadSource, Router};

use super::ServeArgs;

/// Runs the router until a shutdown signal; exit 0 after a graceful stop (in-flight
/// requests finished, or `server.shutdown_grace` passed), 1 when a second signal cut the
/// drain short.
pub fn run(args: ServeArgs) -> ExitCode {
    let overrides = Overrides {
        bind: args.bind,
        backends: args.backends,
        log_level: args.log_level,
        log_format: args.log_format,
        health_check_interval: args.health_check_interval,
        model_metadata: args.model_metadata,
        port: args.port,
    };
    let reload_overrides = overrides.clone();
    let Some(loaded) = super::hints::load_to_run(args.config.as_deref(), &overrides) else {
        return ExitCode::FAILURE;
    };
    if let Err(e) = continuum::telemetry::init_logging(
        &loaded.config.logging,
        super::output::color_for(std::io::stderr().is_terminal()),
    ) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match &loaded.file {
        Some(f) => tracing::info!(file = %f.display(), "configuration loaded"),
        None => tracing::info!("no config file found; using built-in defaults"),
    }
    for w in &loaded.warnings {
        let file = loaded
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        tracing::warn!("{file}: {w}");
    }
    if let Some(hint) = super::hints::outdated_hint(loaded.file.as_deref()) {
        tracing::warn!("{hint}");
    }
    // This runtime only waits for signals and runs model discovery; requests are served on
    // the router's own worker threads (`server.workers`).
    let runtime = match super::target::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Signal handlers are installed before the router announces its address, so a
        // signal sent as soon as it listens is never met by the default action.
        let term = signal_stream(tokio::signal::unix::SignalKind::terminate(), "SIGTERM");
        let int = signal_stream(tokio::signal::unix::SignalKind::interrupt(), "Ctrl-C");
        let hup = signal_stream(
            tokio::signal::unix::SignalKind::hangup(),
            "SIGHUP (no reload on SIGHUP)",
        );
        let mut builder = Router::builder(loaded.config);
        if let Some(file) = loaded.file {
            builder = builder.reload_from(ReloadSource {
                file,
                overrides: reload_overrides,
                env: Box::new(ProcessEnv),
            });
        }
        let router = match builder.start().await {
            Ok(r) => r,
            Err(e) => {
                // Logged once, in the log's own format (a JSON line with --log-format json).
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let reloads = tokio::spawn(reload_on_sighup(router.live(), hup));
        let mut signals = ShutdownSignals { term, int };
        let first = signals.next().await;
        tracing::info!("{first} received");
        // A second signal during the drain stops the router at once.
        let requests = router.requests();
        let drain = router.shutdown();
        tokio::pin!(drain);
        let second = tokio::select! {
            _ = &mut drain => None,
            s = signals.next() => Some(s),
        };
        reloads.abort();
        if let Some(s) = second {
            tracing::warn!(
                "second signal ({s}): exiting now with {} request(s) in flight",
                requests.count()
            );
            return ExitCode::FAILURE;
        }
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// A signal's stream, or `None` (said in the log) when it cannot be listened for.
fn signal_stream(
    kind: tokio::signal::unix::SignalKind,
    what: &str,
) -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for {what}: {e}");
            None
        }
    }
}

/// The two signals that stop the router. Both streams live from before the router
/// listens until it exits, so a signal that arrives between two waits (say, while the
/// drain starts) is kept for the next wait, not lost.
struct ShutdownSignals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    /// Waits for SIGTERM or Ctrl-C (SIGINT); says which came.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = recv(&mut self.term) => "SIGTERM",
            Some(()) = recv(&mut self.int) => "Ctrl-C",
            else => std::future::pending().await,
        }
    }
}

/// One delivery of `signal`; never resolves when it could not be listened for.
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// SIGHUP reloads the config file (the outcome is logged by the router).
async fn reload_on_sighup(
    live: std::sync::Arc<continuum::state::Live>,
    hup: Option<tokio::signal::unix::Signal>,
) {
    let Some(mut hup) = hup else {
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received; reloading the configuration");
        live.reload().await;
    }
}
