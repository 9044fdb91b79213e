//! `continuum acp` (and `continuum --mode stdio`): the router as an Agent Client Protocol
//! agent on stdin/stdout for an editor. No HTTP listener; logs on stderr.

use std::io::IsTerminal;
use std::process::ExitCode;

use continuum::config::{Overrides, ProcessEnv};
use continuum::{ReloadSource, Router};

use super::AcpArgs;

/// Serves one editor until it closes stdin: exit 0; 1 when the config cannot be used or
/// agent mode is off in it.
pub fn run(args: AcpArgs) -> ExitCode {
    let overrides = Overrides {
        log_level: args.log_level,
        ..Default::default()
    };
    let Some(loaded) = super::hints::load_to_run(args.config.as_deref(), &overrides) else {
        return ExitCode::FAILURE;
    };
    let file = loaded.file.as_ref().map_or_else(
        || "the built-in defaults".to_string(),
        |f| f.display().to_string(),
    );
    let acp = &loaded.config.acp;
    if !acp.enabled || !acp.stdio {
        let key = if acp.enabled {
            "acp.transport.stdio.enabled"
        } else {
            "acp.enabled"
        };
        eprintln!("error: agent mode is off in {file} ({key}: false); set it to true to use continuum as an ACP agent");
        return ExitCode::FAILURE;
    }
    let logging = match &args.log_file {
        Some(f) => continuum::telemetry::init_logging_to_file(&loaded.config.logging, f),
        None => continuum::telemetry::init_logging(
            &loaded.config.logging,
            super::output::color_for(std::io::stderr().is_terminal()),
        ),
    };
    if let Err(e) = logging {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    for w in &loaded.warnings {
        tracing::warn!("{file}: {w}");
    }
    let runtime = match super::target::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let acp_config = loaded.config.acp.clone();
        let mut builder = Router::builder(loaded.config);
        if let Some(file) = loaded.file {
            builder = builder.reload_from(ReloadSource {
                file,
                overrides,
                env: Box::new(ProcessEnv),
            });
        }
        let router = match builder.start_headless().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!("ACP agent ready on stdin/stdout");
        let core = router.core.clone();
        continuum::acp::run(core, acp_config, tokio::io::stdin(), tokio::io::stdout()).await;
        router.shutdown();
        ExitCode::SUCCESS
    })
}
