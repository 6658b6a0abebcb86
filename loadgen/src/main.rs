//! `loadgen`: parse the command line, run, print the error chain, set the exit code.

use std::process::ExitCode;

use loadgen::app;
use loadgen::cli::Cli;
use servers::cli::parse_or_exit;

fn main() -> ExitCode {
    // Bad flags: one line on stderr, exit 2.
    let cli: Cli = parse_or_exit();
    match app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(app::exit_code(&e))
        }
    }
}
