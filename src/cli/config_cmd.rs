//! `continuum config generate` and `continuum config validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use continuum::config::{self, ConfigError, Format, Overrides, ProcessEnv, Strictness};

use super::SampleFormat;

/// Prints the commented sample.
pub fn generate(format: SampleFormat, minimal: bool) -> ExitCode {
    let format = match format {
        SampleFormat::Yaml => Format::Yaml,
        SampleFormat::Toml => Format::Toml,
    };
    print!("{}", config::sample::sample(format, minimal));
    ExitCode::SUCCESS
}

/// Validates a config: exit 0 and a summary when valid, else every problem and exit 1.
pub fn validate(path: Option<PathBuf>) -> ExitCode {
    match config::load(
        path.as_deref(),
        &Overrides::default(),
        &ProcessEnv,
        Strictness::Validate,
    ) {
        Ok(loaded) => {
            let source = match &loaded.file {
                Some(f) => f.display().to_string(),
                None => "no config file found; the built-in defaults".to_string(),
            };
            println!(
                "{source}: valid ({} backend(s), listening on {})",
                loaded.config.backends.len(),
                loaded
                    .config
                    .server
                    .bind_address
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e @ ConfigError::Invalid { .. }) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
