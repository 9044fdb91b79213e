//! Log output: level from `logging.level` / `--log-level` / `CONTINUUM_LOG_LEVEL`, else
//! `RUST_LOG`, else `info`; human-readable or one JSON object per line, on stderr.

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::config::{LogFormat, LoggingConfig};

/// Installs the global log subscriber. Call once, early; later calls do nothing.
pub fn init_logging(config: &LoggingConfig) -> Result<(), String> {
    let spec = match &config.level {
        Some(level) => level.clone(),
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
    };
    let filter: Targets = spec
        .parse()
        .map_err(|e| format!("RUST_LOG: cannot parse '{spec}': {e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A subscriber already installed (an embedding program's own) is fine.
    let _ = result;
    Ok(())
}
