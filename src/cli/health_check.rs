//! `continuum health-check`: GET the router's health URL; exit 0 on 200, else 1. Meant
//! for Docker's HEALTHCHECK. `--url` is the router's root like the other client commands
//! (`/health` is appended); a URL with a path is used as given.

use std::process::ExitCode;
use std::time::Duration;

use continuum::client::Client;

use super::output::outln;
use super::HealthCheckArgs;

/// The URL checked by the original's `--health-check` when no URL is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/health";

/// How long the check waits when no `--timeout` is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `continuum health-check`: the URL from `--url`, `CONTINUUM_URL` or the config in
/// scope.
pub fn run_args(args: &HealthCheckArgs) -> ExitCode {
    match super::target::router_url(args.url.as_deref(), args.config.as_deref()) {
        Ok((url, origin)) => check(&url, &origin, args.timeout),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the check against `url` (a root or a full health URL), waiting at most `timeout`.
pub fn run(url: &str, timeout: Duration) -> ExitCode {
    check(url, "", timeout)
}

fn check(url: &str, origin: &str, timeout: Duration) -> ExitCode {
    let fail = |message: String| {
        eprintln!("error: {message}");
        ExitCode::FAILURE
    };
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(_) => return fail(format!("'{url}' is not a valid URL")),
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return fail(format!(
            "'{url}' is not a valid URL (e.g. http://127.0.0.1:8080)"
        ));
    };
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") | Some("/") => "/health",
        Some(p) => p,
    };
    let mut client = match Client::new(&format!("{scheme}://{authority}"), None) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    if !origin.is_empty() {
        client = client.with_origin(origin);
    }
    let runtime = match super::target::runtime() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let shown = format!("{}{path}", client.root());
    match runtime.block_on(client.status(path, timeout)) {
        Ok(http::StatusCode::OK) => {
            outln!("{shown}: healthy (200)");
            ExitCode::SUCCESS
        }
        Ok(status) => fail(format!("{shown}: unhealthy (HTTP {status})")),
        Err(e) => fail(e.to_string()),
    }
}
