//! The commands: dispatch a parsed command line, and map errors to the contract's exit
//! codes (2: bad usage or unreadable input; 3: could not run at all; 1: anything else).

use std::io::Write;

use anyhow::Context;

use crate::cli::{Cli, Command, RunArgs};
use crate::config::{ConfigError, RunConfig};
use crate::report::{sink, Format};
use crate::target::CannotRun;
use crate::{runner, InputError};

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        None => run_load(&cli.run),
        Some(Command::Run(args)) => run_load(&args),
        Some(Command::Targets) => {
            let mut out = std::io::stdout().lock();
            for m in servers::Model::ALL {
                writeln!(out, "{:<16} {}", m.name(), m.description())?;
            }
            Ok(0)
        }
        Some(Command::Serve(args)) => {
            servers::cli::serve(&args).context("echo server failed")?;
            Ok(0)
        }
    }
}

fn run_load(args: &RunArgs) -> anyhow::Result<u8> {
    let cfg = RunConfig::try_from(args)?;
    let report = runner::run(&cfg)?;
    // Files first: a broken stdout must not lose the measurement.
    let mut write_errors = Vec::new();
    if let Some(path) = &cfg.csv {
        if let Err(e) = sink::append_csv(path, &report) {
            write_errors.push(e);
        }
    }
    if let Some(path) = &cfg.json {
        if let Err(e) = sink::write_file(path, &Format::Json.render(&report, false)) {
            write_errors.push(e);
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&Format::Table.render(&report, false));
    let _ = out.flush();
    if let Some(e) = write_errors.into_iter().next() {
        return Err(e);
    }
    Ok(report.status.exit_code())
}

/// The exit code for an error that ended a command.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<CannotRun>().is_some() || matches!(err.downcast_ref(), Some(ConfigError::Unresolvable(..))) {
        3
    } else if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<InputError>().is_some() {
        2
    } else {
        1
    }
}
