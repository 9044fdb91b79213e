//! Log output: level from `logging.level` / `--log-level` / `CONTINUUM_LOG_LEVEL`, else
//! `RUST_LOG`, else `info`; human-readable or one JSON object per line, on stderr (or, in
//! the agent mode with `--log-file`, appended to a file).

use std::sync::OnceLock;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, Registry};

use crate::config::{LogFormat, LoggingConfig};

/// The installed subscriber's level filter, which a hot reload changes.
static LEVEL: OnceLock<reload::Handle<Targets, Registry>> = OnceLock::new();

fn level_filter(config: &LoggingConfig) -> Result<Targets, String> {
    let spec = match &config.level {
        Some(level) => level.clone(),
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
    };
    spec.parse()
        .map_err(|e| format!("RUST_LOG: cannot parse '{spec}': {e}"))
}

/// Applies a new `logging.level` to the subscriber [`init_logging`] installed (a hot
/// reload); does nothing when another subscriber is in use.
pub fn set_log_level(config: &LoggingConfig) -> Result<(), String> {
    let filter = level_filter(config)?;
    if let Some(handle) = LEVEL.get() {
        handle
            .reload(filter)
            .map_err(|e| format!("cannot change the log level: {e}"))?;
    }
    Ok(())
}

/// Installs the global log subscriber on stderr, with ANSI colours when `ansi`. Call once,
/// early; later calls do nothing.
pub fn init_logging(config: &LoggingConfig, ansi: bool) -> Result<(), String> {
    install(config, ansi, BoxMakeWriter::new(std::io::stderr))
}

/// As [`init_logging`], but appending to `file` (created when missing), without colours:
/// for the agent mode, where an editor owns stdout and may not show stderr.
pub fn init_logging_to_file(config: &LoggingConfig, file: &std::path::Path) -> Result<(), String> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| format!("cannot open the log file {}: {e}", file.display()))?;
    install(config, false, BoxMakeWriter::new(std::sync::Mutex::new(f)))
}

fn install(config: &LoggingConfig, ansi: bool, writer: BoxMakeWriter) -> Result<(), String> {
    let (filter, handle) = reload::Layer::new(level_filter(config)?);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer),
            )
            .try_init(),
    };
    // A subscriber already installed (an embedding program's own) is fine.
    if result.is_ok() {
        let _ = LEVEL.set(handle);
    }
    Ok(())
}
