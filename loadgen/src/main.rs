//! `loadgen`: parse the command line, run, print the error chain, exit with the error's code.

use std::process::ExitCode;

use kit::args::parse_or_exit;
use loadgen::cli::Cli;
use loadgen::{commands, error};

fn main() -> ExitCode {
    // Bad flags: one line on stderr, exit 2.
    let cli: Cli = parse_or_exit();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(error::exit_code(&e))
        }
    }
}
