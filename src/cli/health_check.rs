//! `continuum health-check`: GET the router's health URL; exit 0 on 200, else 1. Meant
//! for Docker's HEALTHCHECK.

use std::process::ExitCode;
use std::time::Duration;

use super::output::outln;
use bytes::Bytes;
use http_body_util::Full;

/// The URL checked when none is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/health";

/// How long the check waits when no `--timeout` is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the check against `url`, waiting at most `timeout` for the answer.
pub fn run(url: &str, timeout: Duration) -> ExitCode {
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: '{url}' is not a valid URL: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = continuum::backend::build_client(1, timeout);
        let mut req = http::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri;
        tokio::time::timeout(timeout, client.request(req)).await
    });
    match result {
        Ok(Ok(resp)) if resp.status() == http::StatusCode::OK => {
            outln!("{url}: healthy (200)");
            ExitCode::SUCCESS
        }
        Ok(Ok(resp)) => {
            eprintln!("error: {url}: unhealthy (HTTP {})", resp.status());
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!(
                "error: {url}: {}",
                continuum::http::describe_client_error(&e)
            );
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: {url}: no answer within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}
