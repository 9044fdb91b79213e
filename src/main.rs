//! The `continuum` binary: parse the command line, run the command, exit with its code.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
