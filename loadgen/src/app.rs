//! The commands: dispatch a parsed command line, and map errors to the contract's exit
//! codes (2: bad usage or unreadable input; 3: could not run at all; 1: anything else).

use std::io::Write;

use anyhow::Context;

use crate::cli::{Cli, Command, CompareArgs, PlotArgs, RunArgs};
use crate::config::{ConfigError, RunConfig};
use crate::report::read::read_report;
use crate::report::{sink, Format, Report};
use crate::target::CannotRun;
use crate::{capacity, runner, InputError};

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        None => run_load(&cli.run),
        Some(Command::Run(args)) => run_load(&args),
        Some(Command::Sweep(args)) => crate::sweep::run(&args),
        Some(Command::Compare(args)) => run_compare(&args),
        Some(Command::Plot(args)) => run_plot(&args),
        Some(Command::Merge(args)) => crate::merge::run(&args),
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
    for (flag, path) in [("--csv", &cfg.csv), ("--json", &cfg.json)] {
        if let Some(path) = path {
            sink::check_writable(path).map_err(|e| ConfigError::Invalid {
                flag,
                value: path.display().to_string(),
                reason: format!("cannot write it: {e}"),
            })?;
        }
    }
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
        if crate::signals::interrupted() {
            anyhow::bail!("interrupted during the capacity search (trials so far are in the CSV, if any)");
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

fn run_compare(a: &CompareArgs) -> anyhow::Result<u8> {
    use crate::compare::{self, render, Metric};
    let names: Vec<String> = if a.metric.is_empty() {
        compare::DEFAULT_METRICS.iter().map(|s| s.to_string()).collect()
    } else {
        a.metric.clone()
    };
    let metrics: Vec<Metric> = names.iter().map(|n| Metric::parse(n.trim())).collect();
    let threshold = match &a.threshold {
        None => None,
        Some(t) => match t.trim().trim_end_matches('%').parse::<f64>() {
            Ok(v) if v >= 0.0 => Some(v),
            _ => {
                return Err(ConfigError::Invalid {
                    flag: "--threshold",
                    value: t.clone(),
                    reason: "expected a percentage, e.g. 5%".into(),
                }
                .into())
            }
        },
    };
    let mut out = std::io::stdout().lock();
    match (&a.by, &a.baseline, a.reports.as_slice()) {
        (Some(by), Some(baseline), [file]) => {
            let rows = read_report(file)?;
            let rel = compare::relative(&rows, by, baseline, &metrics);
            if rel.is_empty() {
                return Err(InputError(format!(
                    "{}: no configuration has both `{by}={baseline}` and another `{by}` value",
                    file.display()
                ))
                .into());
            }
            out.write_all(render::relatives(&rel, by, baseline, a.format).as_bytes())?;
            Ok(0)
        }
        (None, None, [base, new]) => {
            let (b, n) = (read_report(base)?, read_report(new)?);
            let c = compare::compare(&b, &n, &metrics);
            out.write_all(render::comparison(&c, a.format, threshold).as_bytes())?;
            let regressions = threshold.map_or(0, |t| c.changes.iter().filter(|ch| ch.is_regression(t)).count());
            if regressions > 0 {
                writeln!(out, "{regressions} regression(s) beyond {}%", threshold.unwrap_or(0.0))?;
                return Ok(1);
            }
            Ok(0)
        }
        _ => Err(InputError(
            "compare takes BASE.csv NEW.csv, or one report with --by COLUMN --baseline VALUE".to_string(),
        )
        .into()),
    }
}

fn run_plot(a: &PlotArgs) -> anyhow::Result<u8> {
    use crate::plot;
    let is_log = a.input.extension().is_some_and(|e| e == "hlog");
    if is_log {
        let logs = crate::hlog::read(&a.input)?;
        let merged = crate::merge::merge(&[logs]);
        let title = a
            .title
            .clone()
            .unwrap_or_else(|| format!("Latency by percentile ({})", a.input.display()));
        let mut lines = vec![("latency (from the intended send time in open loop)", &merged.latency)];
        if let Some(raw) = &merged.raw {
            lines.push(("raw service time (from the actual send)", raw));
        }
        sink::write_file(&a.out, plot::spectrum(&title, &lines)?.as_bytes())?;
        println!("wrote {}", a.out.display());
        return Ok(0);
    }
    let rows = read_report(&a.input)?;
    let size = match a.msg_size {
        Some(s) => s,
        None => rows.iter().find_map(|r| r.num("msg_size")).map_or(64, |v| v as u64),
    };
    let title = a.title.clone().unwrap_or_else(|| format!("{size} B messages"));
    let tput = plot::line_chart(
        &format!("Throughput, {title}"),
        "round trips per second",
        &plot::series(&rows, "throughput_msgs_s", size),
        false,
    )
    .map_err(|e| InputError(format!("{}: {e}", a.input.display())))?;
    let p99 = plot::line_chart(
        &format!("p99 latency, {title}"),
        "p99 latency (us, log)",
        &plot::series(&rows, "lat_p99_us", size),
        true,
    )
    .map_err(|e| InputError(format!("{}: {e}", a.input.display())))?;
    let p99_path = suffixed(&a.out, "-p99");
    sink::write_file(&a.out, tput.as_bytes())?;
    sink::write_file(&p99_path, p99.as_bytes())?;
    println!("wrote {} and {}", a.out.display(), p99_path.display());
    Ok(0)
}

/// `dir/name.svg` with `suffix` before the extension.
fn suffixed(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map_or("plot".into(), |s| s.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or("svg".into(), |e| e.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}{suffix}.{ext}"))
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
