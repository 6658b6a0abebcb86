//! `echo-server --model M [--addr A] [--threads N] [--backlog N]`: one echo server on its own.
//! Prints `listening ADDR` when ready, serves until SIGINT/SIGTERM, exits 0.

use std::process::ExitCode;

use clap::Parser;
use kit::args::parse_or_exit;
use servers::cli::{exit_code, serve, ServeArgs};

/// Run one echo server.
#[derive(Debug, Parser)]
#[command(
    name = "echo-server",
    version,
    about = "Run one echo server of the chosen concurrency model"
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    // Bad flags, unknown model or bad address: one line on stderr, exit 2.
    let cli: Cli = parse_or_exit();
    match serve(&cli.serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-server: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}
