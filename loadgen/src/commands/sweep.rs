//! `loadgen sweep`: every combination of targets, transports, connection counts, message
//! sizes, depths and rates, repeated, each run on a fresh server process, one CSV row per run.
//! The combinations are interleaved (all targets of one configuration back to back) so
//! drift over a long sweep hits every model alike. A run that fails is recorded with its
//! status and the sweep goes on.

use std::io::IsTerminal;
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressStyle};
use servers::Model;

use super::check_output;
use crate::cli::SweepArgs;
use crate::config::{parse_rate, RunConfig, SockKind, TargetSpec};
use crate::error::{flag_error, Error};
use crate::repeat::{Repeat, Tally};
use crate::report::table::{per_s, us};
use crate::report::{sink, Report, Status};

fn list<T: FromStr>(flag: &'static str, s: &str) -> Result<Vec<T>, Error> {
    let items: Result<Vec<T>, _> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::parse)
        .collect();
    match items {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(flag_error(flag, s, "expected a comma-separated list, e.g. 1,10,100")),
    }
}

/// Every configuration of the sweep (repeats are [`run`]'s), checked before any runs: a base configuration from the shared
/// flags, varied by struct update and checked again per combination.
pub(crate) fn plan(a: &SweepArgs) -> Result<Vec<RunConfig>, Error> {
    let targets: Vec<Model> = if a.targets.trim() == "all" {
        Model::ALL.to_vec()
    } else {
        list::<String>("--targets", &a.targets)?
            .iter()
            .map(|t| {
                t.parse().map_err(|e: servers::UnknownModel| {
                    flag_error("--targets", t, format!("{e}; see `loadgen targets`"))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let conns: Vec<usize> = list("--conns", &a.conns)?;
    let sizes: Vec<usize> = list("--msg-size", &a.msg_size)?;
    let depths: Vec<usize> = list("--depth", &a.depth)?;
    let rates: Vec<Option<f64>> = match &a.rate {
        None => vec![None],
        Some(r) => list::<String>("--rate", r)?
            .iter()
            .map(|r| parse_rate("--rate", r).map(Some))
            .collect::<Result<_, _>>()?,
    };
    let transports: Vec<SockKind> = list("--transport", &a.transport)?;
    let base = RunConfig {
        quiet: true,
        ..RunConfig::from_load(TargetSpec::Model(Model::Mio), &a.load)?
    };
    let budget = servers::thread_budget().threads.min(100_000) as usize;
    let mut runs = Vec::new();
    {
        for &conns in &conns {
            for &msg_size in &sizes {
                for &depth in &depths {
                    for &rate in &rates {
                        for (&transport, &model) in transports.iter().flat_map(|t| targets.iter().map(move |m| (t, m)))
                        {
                            // A pool smaller than the connection count leaves clients unserved.
                            // Capped at the thread budget: beyond it the pool could not start.
                            // Split over the server processes (each has its own budget), with
                            // room for SO_REUSEPORT's uneven spread (a hash, not a dealer).
                            let procs = base.server_procs as usize;
                            let per_proc = if procs > 1 { conns * 6 / (5 * procs) + 16 } else { conns };
                            let pool_size = (model == Model::ThreadPool).then(|| per_proc.min(budget) as u32);
                            let run = RunConfig {
                                target: TargetSpec::Model(model),
                                transport,
                                conns,
                                msg_size,
                                depth,
                                rate,
                                server_threads: base.server_threads.or(pool_size),
                                ..base.clone()
                            };
                            runs.push(run.checked()?);
                        }
                    }
                }
            }
        }
    }
    Ok(runs)
}

/// `mio tcp conns=10 msg=64 depth=1` (and `rate=` in open loop): a configuration in words.
fn describe(cfg: &RunConfig) -> String {
    let name = target_name(cfg);
    let rate = cfg.rate.map(|r| format!(" rate={}", per_s(r))).unwrap_or_default();
    format!(
        "{name} {} conns={} msg={} depth={}{rate}",
        cfg.transport.name(),
        cfg.conns,
        cfg.msg_size,
        cfg.depth
    )
}

/// Runs the sweep: rounds over every configuration that still needs runs (so repeats are
/// interleaved), until each has its count or, with `--repeat auto`, its interval. Exit code
/// 0 when every run was `ok`, else 1.
pub(super) fn run(a: &SweepArgs) -> anyhow::Result<u8> {
    let configs = plan(a)?;
    let repeat = Repeat::parse(&a.load.repeat, a.load.max_repeat, &a.load.ci_target)?;
    check_output("--csv", &a.csv)?;
    let most = configs.len() * repeat.max();
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(most as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, {eta} left  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut tallies = vec![Tally::default(); configs.len()];
    let (mut all_ok, mut done) = (true, 0);
    loop {
        let round: Vec<usize> = (0..configs.len()).filter(|&i| !tallies[i].done(repeat)).collect();
        if round.is_empty() {
            break;
        }
        for i in round {
            let cfg = &configs[i];
            let what = describe(cfg);
            bar.set_message(what.clone());
            let report = match super::measure(cfg) {
                Ok(r) => r,
                Err(e) => failed(cfg, &format!("{e:#}")),
            };
            all_ok &= report.status == Status::Ok;
            tallies[i].add((report.status != Status::Failed).then_some(report.throughput_msgs_s));
            done += 1;
            if bar.is_hidden() {
                let why = report
                    .stop_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let settle = if repeat.max() > 1 {
                    format!("; {}", tallies[i].describe())
                } else {
                    String::new()
                };
                eprintln!(
                    "[{done}/{most}] {what}: {} msg/s, p99 {}, {}{why}{settle}",
                    per_s(report.throughput_msgs_s),
                    us(report.latency.p99_us),
                    report.status
                );
            }
            sink::append_csv(&a.csv, &report)?;
            bar.inc(1);
            if crate::signals::interrupted() {
                bar.finish_and_clear();
                eprintln!("interrupted: {done} runs written to {}", a.csv.display());
                return Ok(1);
            }
        }
    }
    bar.finish_and_clear();
    if repeat.max() > 1 {
        for (cfg, t) in configs.iter().zip(&tallies) {
            eprintln!("{}: {}", describe(cfg), t.describe());
        }
        for (cfg, t) in configs.iter().zip(&tallies) {
            if let Some(w) = t.shortfall(repeat, &describe(cfg)) {
                eprintln!("{w}");
            }
        }
    }
    eprintln!("{done} runs written to {}", a.csv.display());
    Ok(if all_ok { 0 } else { 1 })
}

/// The model's name, or the address loaded.
fn target_name(cfg: &RunConfig) -> String {
    match &cfg.target {
        TargetSpec::Model(m) => m.name().to_string(),
        TargetSpec::Addr(a) => a.to_string(),
    }
}

/// The row of a run that could not run at all.
fn failed(cfg: &RunConfig, reason: &str) -> Report {
    let name = target_name(cfg);
    Report {
        label: cfg.label.clone(),
        mode: cfg.schedule().mode(),
        conns: cfg.conns,
        msg_size: cfg.msg_size,
        depth: cfg.depth,
        rate: cfg.rate,
        warmup_s: cfg.warmup.as_secs_f64(),
        stop_reason: Some(reason.to_string()),
        ..Report::empty(&name, "", Some(servers::Transport::Tcp))
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
        ]))
        .unwrap();
        assert_eq!(runs.len(), 2 * 2 * 2);
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
            .starts_with("--targets"));
    }
}
