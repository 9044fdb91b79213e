//! The `continuum` binary: parse the command line, run the command, exit with its code.

mod cli;

use clap::Parser;

/// mimalloc: measurably faster than glibc malloc on the request path (many small,
/// short-lived allocations across hyper, axum and serde) and it keeps idle RSS low.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
