//! The commands: dispatch a parsed command line, and map errors to the contract's exit
//! codes (2: bad usage or unreadable input; 3: could not run at all; 1: anything else).

use std::io::Write;

use anyhow::Context;

use crate::cli::{Cli, Command, RunArgs};
use crate::config::{ConfigError, RunConfig};
use crate::report::{sink, Format, Report};
use crate::target::CannotRun;
use crate::{capacity, runner, InputError};

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
    if let Some(slo) = &cfg.search {
        return run_search(&cfg, slo);
    }
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

/// `--rate auto`: the capacity search. Every trial is a full run on a fresh server; each
/// appends its row to `--csv`; `--json` gets the search with its trials.
fn run_search(cfg: &RunConfig, slo: &capacity::Slo) -> anyhow::Result<u8> {
    let result = capacity::search(slo, |rate| -> anyhow::Result<Report> {
        let trial = RunConfig {
            rate,
            search: None,
            label: format!("{} auto-rate {slo}", cfg.label).trim().to_string(),
            ..cfg.clone()
        };
        let report = runner::run(&trial)?;
        eprintln!(
            "  trial {}: {:.0} msg/s, {} = {:.1} us, {}",
            rate.map_or("closed loop".into(), |r| format!("{r:.0} msg/s")),
            report.throughput_msgs_s,
            slo.percentile,
            slo.value(&report),
            report.status
        );
        if let Some(path) = &cfg.csv {
            sink::append_csv(path, &report)?;
        }
        Ok(report)
    })?;
    if let Some(path) = &cfg.json {
        let mut bytes = serde_json::to_vec_pretty(&result)?;
        bytes.push(b'\n');
        sink::write_file(path, &bytes)?;
    }
    print!("{}", capacity::render(&result));
    Ok(if result.capacity.is_some() { 0 } else { 1 })
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
