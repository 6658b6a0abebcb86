//! `loadgen sweep`: every combination of targets, connection counts, message sizes,
//! depths and rates, repeated, each run on a fresh server process, one CSV row per run.
//! The combinations are interleaved (all targets of one configuration back to back) so
//! drift over a long sweep hits every model alike. A run that fails is recorded with its
//! status and the sweep goes on.

use std::io::IsTerminal;
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressStyle};
use servers::Model;

use crate::cli::{RunArgs, SweepArgs};
use crate::config::{ConfigError, RunConfig, TargetSpec};
use crate::report::{sink, Report, Status};
use crate::runner;

fn list<T: FromStr>(flag: &'static str, s: &str) -> Result<Vec<T>, ConfigError> {
    let items: Result<Vec<T>, _> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::parse)
        .collect();
    match items {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(ConfigError::Invalid {
            flag,
            value: s.into(),
            reason: "expected a comma-separated list, e.g. 1,10,100".into(),
        }),
    }
}

/// Every run of the sweep, checked before any runs.
pub fn plan(a: &SweepArgs) -> Result<Vec<RunConfig>, ConfigError> {
    let targets: Vec<String> = if a.targets.trim() == "all" {
        Model::ALL.iter().map(|m| m.name().to_string()).collect()
    } else {
        list("--targets", &a.targets)?
    };
    let conns: Vec<u64> = list("--conns", &a.conns)?;
    let sizes: Vec<u64> = list("--msg-size", &a.msg_size)?;
    let depths: Vec<u64> = list("--depth", &a.depth)?;
    let rates: Vec<Option<String>> = match &a.rate {
        None => vec![None],
        Some(r) => list::<String>("--rate", r)?.into_iter().map(Some).collect(),
    };
    if a.repeat == 0 {
        return Err(ConfigError::Invalid {
            flag: "--repeat",
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    let mut runs = Vec::new();
    for _ in 0..a.repeat {
        for &c in &conns {
            for &size in &sizes {
                for &depth in &depths {
                    for rate in &rates {
                        for target in &targets {
                            let threadpool = target.parse::<Model>() == Ok(Model::ThreadPool);
                            let mut load = a.load.clone();
                            // A pool smaller than the connection count leaves clients unserved.
                            load.server_threads = load.server_threads.or(threadpool.then_some(c));
                            let args = RunArgs {
                                target: Some(target.clone()),
                                addr: None,
                                conns: c,
                                msg_size: size,
                                depth,
                                rate: rate.clone(),
                                slo: None,
                                server_pid: None,
                                csv: None,
                                json: None,
                                hdr_log: None,
                                quiet: true,
                                bind: None,
                                load,
                            };
                            runs.push(RunConfig::try_from(&args)?);
                        }
                    }
                }
            }
        }
    }
    Ok(runs)
}

/// Runs the sweep; exit code 0 when every run was `ok`, else 1.
pub fn run(a: &SweepArgs) -> anyhow::Result<u8> {
    let runs = plan(a)?;
    sink::check_writable(&a.csv).map_err(|e| ConfigError::Invalid {
        flag: "--csv",
        value: a.csv.display().to_string(),
        reason: format!("cannot write it: {e}"),
    })?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(runs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, {eta} left  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut all_ok = true;
    for (i, cfg) in runs.iter().enumerate() {
        let name = match &cfg.target {
            TargetSpec::Model(m) => m.name().to_string(),
            TargetSpec::Addr(a) => a.to_string(),
        };
        let what = format!(
            "{name} conns={} msg={} depth={} rate={:?}",
            cfg.conns, cfg.msg_size, cfg.depth, cfg.rate
        );
        bar.set_message(what.clone());
        let report = match runner::run(cfg) {
            Ok(r) => r,
            Err(e) => failed(cfg, &name, &format!("{e:#}")),
        };
        all_ok &= report.status == Status::Ok;
        if bar.is_hidden() {
            let why = report
                .stop_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            eprintln!(
                "[{}/{}] {what}: {:.0} msg/s, p99 {:.1} us, {}{why}",
                i + 1,
                runs.len(),
                report.throughput_msgs_s,
                report.latency.p99_us,
                report.status
            );
        }
        sink::append_csv(&a.csv, &report)?;
        bar.inc(1);
        if crate::signals::interrupted() {
            bar.finish_and_clear();
            eprintln!(
                "interrupted: {} of {} runs written to {}",
                i + 1,
                runs.len(),
                a.csv.display()
            );
            return Ok(1);
        }
    }
    bar.finish_and_clear();
    eprintln!("{} runs written to {}", runs.len(), a.csv.display());
    Ok(if all_ok { 0 } else { 1 })
}

/// The row of a run that could not run at all.
fn failed(cfg: &RunConfig, name: &str, reason: &str) -> Report {
    Report {
        label: cfg.label.clone(),
        mode: if cfg.rate.is_some() { "open" } else { "closed" }.into(),
        conns: cfg.conns,
        msg_size: cfg.msg_size,
        depth: cfg.depth,
        rate: cfg.rate,
        warmup_s: cfg.warmup.as_secs_f64(),
        stop_reason: Some(reason.to_string()),
        ..Report::empty(name, "", "tcp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> SweepArgs {
        let cli = crate::cli::Cli::try_parse_from(["loadgen", "sweep", "--csv", "x.csv"].iter().chain(extra)).unwrap();
        match cli.command {
            Some(crate::cli::Command::Sweep(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plans_the_full_matrix_interleaved() {
        let runs = plan(&args(&[
            "--targets",
            "mio,tokio",
            "--conns",
            "1,10",
            "--msg-size",
            "64,4096",
            "--repeat",
            "2",
        ]))
        .unwrap();
        assert_eq!(runs.len(), 2 * 2 * 2 * 2);
        assert_eq!(runs[0].target, TargetSpec::Model(Model::Mio));
        assert_eq!(runs[1].target, TargetSpec::Model(Model::Tokio));
        assert_eq!((runs[1].conns, runs[1].msg_size), (1, 64));
        let all = plan(&args(&["--targets", "all", "--conns", "100"])).unwrap();
        assert_eq!(all.len(), Model::ALL.len());
        let pool = all
            .iter()
            .find(|r| r.target == TargetSpec::Model(Model::ThreadPool))
            .unwrap();
        assert_eq!(pool.server_threads, Some(100), "a worker per connection");
    }

    #[test]
    fn bad_lists_name_the_flag() {
        assert!(plan(&args(&["--targets", "mio", "--conns", "1,x"]))
            .unwrap_err()
            .to_string()
            .starts_with("--conns"));
        assert!(plan(&args(&["--targets", "fibers", "--conns", "1"]))
            .unwrap_err()
            .to_string()
            .starts_with("--target"));
    }
}
