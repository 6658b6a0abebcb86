//! `loadgen run` (the default command): one load run, its report written to the files
//! asked for and printed; or, with `--rate auto`, the capacity search.

use std::io::Write;

use crate::analysis::capacity;
use crate::analysis::repeat::{Repeat, Tally};
use crate::cli::RunArgs;
use crate::config::RunConfig;
use crate::error::flag_error;
use crate::os::files::Dest;
use crate::output::sink::check_output;
use crate::output::{sink, Format};
use crate::report::units::{per_s, us};
use crate::report::{Report, Status};

/// `loadgen run`: one run, or a capacity search with `--rate auto`.
pub(super) fn run(args: &RunArgs) -> anyhow::Result<u8> {
    let cfg = RunConfig::try_from(args)?;
    let outputs: Vec<(&'static str, &std::path::Path)> =
        [("--csv", &cfg.csv), ("--json", &cfg.json), ("--hdr-log", &cfg.hdr_log)]
            .into_iter()
            .filter_map(|(flag, path)| path.as_deref().map(|p| (flag, p)))
            .collect();
    crate::output::sink::check_distinct(&outputs)?;
    for (flag, path) in outputs {
        check_output(flag, path)?;
    }
    if let Some(slo) = &cfg.search {
        return run_search(&cfg, slo);
    }
    let repeat = Repeat::parse(&args.load.repeat, args.load.max_repeat, &args.load.ci_target)?;
    if repeat != Repeat::Fixed(1) {
        return run_repeats(&cfg, repeat, args.latency);
    }
    let mut report = super::measure::measure(&cfg)?;
    // Each output on its own: one that fails is named, the others are still written, and
    // the summary is always printed (to stderr when an output took stdout).
    if let Some(path) = &cfg.csv {
        if let Err(e) = sink::append_csv(path, &report) {
            report.output_errors.push(format!("--csv {}: {e:#}", path.display()));
        }
    }
    if let Some(path) = &cfg.json {
        if let Err(e) = sink::write_file(path, &Format::Json.render(&report, false)) {
            report.output_errors.push(format!("--json {}: {e:#}", path.display()));
        }
    }
    let mut summary = Format::Table.render(&report, false);
    if args.latency {
        summary.extend(crate::output::table::spectrum(&report).into_bytes());
    }
    let stdout_taken = [&cfg.csv, &cfg.json, &cfg.hdr_log]
        .into_iter()
        .flatten()
        .any(|p| Dest::of(p).is_stdout());
    // A closed stdout or stderr must not turn a finished run into a failure: ignored.
    if stdout_taken {
        let _ = std::io::stderr().lock().write_all(&summary);
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&summary).and_then(|()| out.flush());
    }
    Ok(report.exit_code())
}

/// `--repeat N|auto`: the same run on a fresh server each time, a CSV row each, a line per
/// run, then the last run's summary (and with `latency` its spectrum) and the interval the repeats reached. `--json` and
/// `--hdr-log` describe one run and are refused.
fn run_repeats(cfg: &RunConfig, repeat: Repeat, latency: bool) -> anyhow::Result<u8> {
    for (flag, given) in [("--json", &cfg.json), ("--hdr-log", &cfg.hdr_log)] {
        if let Some(path) = given {
            return Err(flag_error(
                flag,
                path.display(),
                "describes one run and cannot take --repeat: drop one of them, or repeat with a shell loop",
            )
            .into());
        }
    }
    let mut tally = Tally::default();
    let mut worst = Status::Ok;
    let mut last = None;
    while !tally.done(repeat) {
        let report = super::measure::measure(cfg)?;
        tally.add((report.status != Status::Failed).then_some(report.throughput_msgs_s));
        worst = worst.max(report.status);
        let disturbed = report.machine.and_then(|m| m.disturbance());
        eprintln!(
            "  run {}: {} msg/s, p99 {}, {}{}; {}",
            tally.runs,
            per_s(report.throughput_msgs_s),
            us(report.latency.p99_us),
            report.status,
            disturbed.map(|d| format!(" ({d})")).unwrap_or_default(),
            tally.describe()
        );
        if let Some(path) = &cfg.csv {
            sink::append_csv(path, &report)?;
        }
        last = Some(report);
        if crate::os::signals::interrupted() {
            break;
        }
    }
    let mut out = std::io::stdout().lock();
    if let Some(report) = &last {
        let _ = out.write_all(&Format::Table.render(report, false));
        if latency {
            let _ = out.write_all(crate::output::table::spectrum(report).as_bytes());
        }
    }
    let _ = writeln!(out, "repeats: {}", tally.describe());
    if let Some(w) = tally.shortfall(repeat, "this configuration") {
        let _ = writeln!(out, "{w}");
    }
    Ok(worst.exit_code())
}

/// `--rate auto`: the capacity search. Every trial is a full run on a fresh server; each
/// appends its row to `--csv`; `--json` gets the search with its trials.
fn run_search(cfg: &RunConfig, slo: &crate::config::Slo) -> anyhow::Result<u8> {
    let result = capacity::search(slo, |rate| -> anyhow::Result<Report> {
        let trial = RunConfig {
            rate,
            search: None,
            label: format!("{} auto-rate {slo}", cfg.label).trim().to_string(),
            ..cfg.clone()
        };
        let report = crate::run::run(&trial)?;
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
        if crate::os::signals::interrupted() {
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
