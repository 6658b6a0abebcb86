//! `loadgen`: parse the command line, run, print the error chain, set the exit code.

use std::process::ExitCode;

use clap::Parser;
use loadgen::app;
use loadgen::cli::Cli;

fn main() -> ExitCode {
    // Bad flags: clap prints its message and exits 2.
    let cli = Cli::parse();
    match app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(app::exit_code(&e))
        }
    }
}
