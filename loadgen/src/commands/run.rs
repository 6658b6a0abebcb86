//! `loadgen run` (the default command): one load run, its report written to the files
//! asked for and printed; or, with `--rate auto`, the capacity search.

use std::io::Write;

use crate::analysis::repeat::{Repeat, Tally};
use crate::analysis::{capacity, objectives};
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
    let repeat = Repeat::parse(&args.load.repeat, args.load.max_repeat, &args.load.ci_target)?;
    start_metrics(&cfg)?;
    let code = if let Some(slo) = &cfg.search {
        run_search(&cfg, slo)
    } else if repeat != Repeat::Fixed(1) {
        run_repeats(&cfg, repeat, args.latency)
    } else {
        run_once(&cfg, args.latency)
    };
    if let Some((_, linger)) = cfg.metrics {
        // The final state stays up this long, for a scraper to catch the run's end.
        std::thread::sleep(linger);
    }
    code
}

/// `--metrics-listen`: the endpoint, up before the run starts (its address on stderr).
fn start_metrics(cfg: &RunConfig) -> anyhow::Result<()> {
    #[cfg(feature = "agent")]
    if let Some((addr, _)) = cfg.metrics {
        let bound = crate::scale::agent::spawn_metrics(addr, crate::run::live::snapshot)?;
        crate::run::live::enable();
        eprintln!("metrics    http://{bound}/metrics");
    }
    // Without the feature, config refused --metrics-listen already.
    let _ = cfg;
    Ok(())
}

/// One run: its outputs written, its summary printed, its objectives judged.
fn run_once(cfg: &RunConfig, latency: bool) -> anyhow::Result<u8> {
    let mut report = super::measure::measure(cfg)?;
    objectives::apply(&cfg.objectives, &mut report);
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
    if latency {
        summary.extend(crate::output::spectrum::spectrum(&report).into_bytes());
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
    Ok(if objectives::breached(&report) {
        objectives::BREACHED_EXIT
    } else {
        report.exit_code()
    })
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
    let mut breached = false;
    let mut last = None;
    while !tally.done(repeat) {
        let mut report = super::measure::measure(cfg)?;
        objectives::apply(&cfg.objectives, &mut report);
        breached |= objectives::breached(&report);
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
            let _ = out.write_all(crate::output::spectrum::spectrum(report).as_bytes());
        }
    }
    let _ = writeln!(out, "repeats: {}", tally.describe());
    if let Some(w) = tally.shortfall(repeat, "this configuration") {
        let _ = writeln!(out, "{w}");
    }
    Ok(if breached {
        objectives::BREACHED_EXIT
    } else {
        worst.exit_code()
    })
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
