//! The one place config-load failures are printed for `serve`, bare `continuum` and
//! `config validate`: the error itself, then what to do when the file is written in the
//! original router's older form.

use std::path::Path;

use continuum::config::{self, ConfigError, ProcessEnv};

/// Loads the config `serve` and `acp` run with, or prints why not (as
/// [`report_config_error`]) and gives `None`.
pub fn load_to_run(
    explicit: Option<&Path>,
    overrides: &continuum::config::Overrides,
) -> Option<continuum::config::Loaded> {
    use continuum::config::{self, ProcessEnv, Strictness};
    match config::load(explicit, overrides, &ProcessEnv, Strictness::Serve) {
        Ok(l) => Some(l),
        Err(e) => {
            report_config_error(&e, explicit);
            None
        }
    }
}

/// Prints `e` (every problem with its key path) and, when the config file in scope is in
/// an older form, the `config migrate` hint.
pub fn report_config_error(e: &ConfigError, explicit: Option<&Path>) {
    eprintln!("error: {e}");
    if let Some(hint) = outdated_hint(explicit) {
        eprintln!("hint: {hint}");
    }
}

/// The `config migrate` hint for the config file in scope, if it is in an older form.
pub fn outdated_hint(explicit: Option<&Path>) -> Option<String> {
    let file = config::find_config_file(explicit, &ProcessEnv)?;
    config::migrate::outdated_hint(&file)
}
