//! `loadgen sweep`: every combination of targets, transports, connection counts, message
//! sizes, depths and rates, repeated, each run on a fresh server process, one CSV row per run.
//! The combinations are interleaved (all targets of one configuration back to back) so
//! drift over a long sweep hits every model alike. A run that fails is recorded with its
//! status and the sweep goes on.

use std::io::IsTerminal;
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressStyle};
use servers::Model;

use crate::analysis::repeat::{Repeat, Tally};
use crate::cli::SweepArgs;
use crate::config::{parse_count, parse_rate, parse_size, values, RunConfig, SockKind, TargetSpec};
use crate::error::{flag_error, Error};
use crate::output::sink;
use crate::output::sink::check_output;
use crate::report::units::{per_s, us};
use crate::report::{Report, Status};

fn list<T: FromStr>(flag: &'static str, s: &str) -> Result<Vec<T>, Error> {
    let items: Result<Vec<T>, _> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::parse)
        .collect();
    match items {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => {
            let example = match flag {
                "--targets" => "mio,tokio (or all)",
                "--transport" => "tcp,udp",
                _ => "1,10,100",
            };
            Err(flag_error(
                flag,
                s,
                format!("expected a comma-separated list, e.g. {example}"),
            ))
        }
    }
}

/// Every combination of `configs` with each of `values`, set by `set` (the values vary
/// fastest, after every earlier dimension).
fn expand<T>(configs: Vec<RunConfig>, values: &[T], set: impl Fn(&mut RunConfig, &T)) -> Vec<RunConfig> {
    let mut out = Vec::with_capacity(configs.len() * values.len());
    for c in configs {
        for v in values {
            let mut c = c.clone();
            set(&mut c, v);
            out.push(c);
        }
    }
    out
}

/// A flag's list, each item checked by `one` (the parser `run` uses for its single value).
fn each<T>(flag: &'static str, s: &str, one: impl Fn(&str) -> Result<T, Error>) -> Result<Vec<T>, Error> {
    values::items(flag, s)?.into_iter().map(one).collect()
}

/// Every configuration of the sweep (repeats are [`run`]'s), checked before any runs: a
/// base configuration from the shared flags, expanded dimension by dimension, with the
/// targets varying fastest (all models of one configuration back to back).
pub(crate) fn plan(a: &SweepArgs) -> Result<Vec<RunConfig>, Error> {
    if let Some(addr) = &a.addr {
        // A running server: its address says its transport, and it is the only target.
        if a.transport != "tcp" {
            return Err(flag_error(
                "--transport",
                &a.transport,
                "only applies with --targets; an --addr names its own (udp://HOST:PORT, unix:/path)",
            ));
        }
        let mut c = vec![base(a, TargetSpec::Addr(crate::config::parse_addr(addr)?))?];
        c = load_dimensions(c, a)?;
        c = setting_dimensions(c, &a.load)?;
        return c.into_iter().map(RunConfig::checked).collect();
    }
    let targets = sweep_targets(a.targets.as_deref().unwrap_or("all"))?;
    let mut c = vec![base(a, TargetSpec::Model(Model::Mio))?];
    c = load_dimensions(c, a)?;
    c = setting_dimensions(c, &a.load)?;
    c = expand(c, &list::<SockKind>("--transport", &a.transport)?, |c, &v| {
        c.transport = v
    });
    c = expand(c, &targets, |c, &m| {
        c.target = TargetSpec::Model(m);
        // A pool smaller than the connection count leaves clients unserved.
        if m == Model::ThreadPool && c.server_threads.is_none() {
            c.server_threads = Some(crate::config::pool_workers(c.conns, c.server_procs));
        }
    });
    c.into_iter().map(RunConfig::checked).collect()
}

/// `--targets`: a list of models, or `all`.
fn sweep_targets(list_arg: &str) -> Result<Vec<Model>, Error> {
    if list_arg.trim() == "all" {
        return Ok(Model::ALL.to_vec());
    }
    list::<String>("--targets", list_arg)?
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|e: servers::UnknownModel| flag_error("--targets", t, format!("{e}; see `loadgen targets`")))
        })
        .collect()
}

/// The configuration every run starts from, against `target`: the first value of every
/// list flag (the dimensions then set them all).
fn base(a: &SweepArgs, target: TargetSpec) -> Result<RunConfig, Error> {
    let l = &a.load;
    let first = |s: &str| s.split(',').next().unwrap_or("").trim().to_string();
    let base_args = crate::cli::LoadArgs {
        work: None,
        threads: l.threads.as_deref().map(first),
        server_threads: l.server_threads.as_deref().map(first),
        server_procs: first(&l.server_procs),
        sock_buf: l.sock_buf.as_deref().map(first),
        engine: first(&l.engine),
        pacing: first(&l.pacing),
        ..l.clone()
    };
    Ok(RunConfig {
        quiet: true,
        ..RunConfig::from_load(target, &base_args)?
    })
}

/// The load's dimensions: connections, message sizes, depths, rates.
fn load_dimensions(mut c: Vec<RunConfig>, a: &SweepArgs) -> Result<Vec<RunConfig>, Error> {
    let rates: Vec<Option<f64>> = match &a.rate {
        // `--stages` of a rate set it already (their mean): kept.
        None => vec![c.first().and_then(|c| c.rate)],
        Some(r) if a.load.stages.is_some() => return Err(crate::config::rate_with_stages(r)),
        Some(r) => {
            let mut rates = Vec::new();
            for item in list::<String>("--rate", r)? {
                rates.extend(ladder(&item)?.into_iter().map(Some));
            }
            rates
        }
    };
    c = expand(
        c,
        &each("--conns", &a.conns, |s| parse_count("--conns", s).map(|n| n as usize))?,
        |c, &v| c.conns = v,
    );
    c = expand(
        c,
        &each("--msg-size", &a.msg_size, |s| {
            parse_size("--msg-size", s).map(|n| n as usize)
        })?,
        |c, &v| c.msg_size = v,
    );
    c = expand(
        c,
        &each("--depth", &a.depth, |s| parse_count("--depth", s).map(|n| n as usize))?,
        |c, &v| c.depth = v,
    );
    Ok(expand(c, &rates, |c, &v| c.rate = v))
}

/// One item of `--rate`: a rate, or a ladder `FROM..TO/STEPS` of STEPS rates evenly spaced
/// from FROM to TO (both included).
fn ladder(item: &str) -> Result<Vec<f64>, Error> {
    let Some((from, rest)) = item.split_once("..") else {
        return Ok(vec![parse_rate("--rate", item)?]);
    };
    let bad = |why: &str| {
        flag_error(
            "--rate",
            item,
            format!("{why}: a ladder is FROM..TO/STEPS, e.g. 1k..20k/8"),
        )
    };
    let (to, steps) = rest.split_once('/').ok_or_else(|| bad("no step count"))?;
    let (from, to) = (parse_rate("--rate", from)?, parse_rate("--rate", to)?);
    let steps = parse_count("--rate", steps).map_err(|_| bad("the step count is not a count"))?;
    if !(2..=100).contains(&steps) || to <= from {
        return Err(bad("it needs FROM below TO and 2 to 100 steps"));
    }
    Ok((0..steps)
        .map(|i| (from + (to - from) * i as f64 / (steps - 1) as f64).round())
        .collect())
}

/// The settings' dimensions: client threads, server workers and processes, socket
/// buffers, engines, pacing, work.
fn setting_dimensions(mut c: Vec<RunConfig>, l: &crate::cli::LoadArgs) -> Result<Vec<RunConfig>, Error> {
    if let Some(t) = &l.threads {
        c = expand(c, &each("--threads", t, values::threads)?, |c, &v| {
            c.threads = v;
            c.threads_default = None;
        });
    }
    let workers: Vec<Option<u32>> = match &l.server_threads {
        Some(t) => each("--server-workers", t, values::server_threads)?
            .into_iter()
            .map(Some)
            .collect(),
        None => vec![None],
    };
    c = expand(c, &workers, |c, &v| c.server_threads = v);
    c = expand(
        c,
        &each("--server-procs", &l.server_procs, values::server_procs)?,
        |c, &v| c.server_procs = v,
    );
    if let Some(b) = &l.sock_buf {
        c = expand(c, &each("--sock-buf", b, values::sock_buf)?, |c, &v| {
            c.sock_buf = Some(v)
        });
    }
    c = expand(c, &each("--engine", &l.engine, values::engine)?, |c, &v| c.engine = v);
    c = expand(c, &each("--pacing", &l.pacing, values::pacing)?, |c, &v| c.pacing = v);
    if let Some(w) = &l.work {
        // Specs hold commas (bimodal:FAST,SLOW,P%): the list is separated by ';'; `none`
        // is the plain echo.
        let specs = w
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(values::work_spec)
            .collect::<Result<Vec<_>, _>>()?;
        c = expand(c, &specs, |c, v| c.work = v.clone());
    }
    Ok(c)
}

/// `mio tcp conns=10 msg=64 depth=1` (and `rate=` in open loop): a configuration in words.
fn describe(cfg: &RunConfig) -> String {
    let name = target_name(cfg);
    let mut what = format!(
        "{name} {} conns={} msg={} depth={}",
        cfg.transport.name(),
        cfg.conns,
        cfg.msg_size,
        cfg.depth
    );
    // The dimensions beyond the key, where they were set or vary.
    match (&cfg.stages, cfg.rate) {
        (Some(p), Some(_)) => what += &format!(" stages={p} pacing={}", cfg.pacing.name()),
        (Some(p), None) => what += &format!(" stages={p} (connections)"),
        (None, Some(r)) => what += &format!(" rate={} pacing={}", per_s(r), cfg.pacing.name()),
        (None, None) => {}
    }
    if cfg.threads_default.is_none() {
        what += &format!(" threads={}", cfg.threads);
    }
    if let Some(w) = cfg.server_threads {
        what += &format!(" workers={w}");
    }
    if cfg.server_procs > 1 {
        what += &format!(" server-procs={}", cfg.server_procs);
    }
    if let Some(b) = cfg.sock_buf {
        what += &format!(" sock-buf={b}");
    }
    if let Some(w) = &cfg.work {
        what += &format!(" work={w}");
    }
    if cfg.engine != crate::config::Engine::Epoll {
        what += &format!(" engine={}", cfg.engine.name());
    }
    what
}

/// Runs the sweep: rounds over every configuration that still needs runs (so repeats are
/// interleaved), until each has its count or, with `--repeat auto`, its interval. Exit code
/// 0 when every run was `ok`, else 1.
pub(super) fn run(a: &SweepArgs) -> anyhow::Result<u8> {
    let configs = plan(a)?;
    let mut ladder = Ladder {
        slo: a.slo.as_deref().map(str::parse::<crate::config::Slo>).transpose()?,
        missed: Vec::new(),
    };
    let repeat = Repeat::parse(&a.load.repeat, a.load.max_repeat, &a.load.ci_target)?;
    check_output("--csv", &a.csv)?;
    let most = configs.len() * repeat.max();
    let bar = progress_bar(most, a.quiet);
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
            if let Some(lower) = ladder.missed_below(cfg) {
                tallies[i].skip();
                if !a.quiet {
                    eprintln!("{what}: skipped ({lower:.0} msg/s already missed the objective)");
                }
                continue;
            }
            bar.set_message(what.clone());
            let mut report = match super::measure::measure(cfg) {
                Ok(r) => r,
                Err(e) => Report::failed_run(cfg, &target_name(cfg), &format!("{e:#}")),
            };
            ladder.judge(cfg, &mut report);
            all_ok &= report.status == Status::Ok;
            tallies[i].add((report.status != Status::Failed).then_some(report.throughput_msgs_s));
            done += 1;
            if bar.is_hidden() && !a.quiet {
                let settle = (repeat.max() > 1).then(|| tallies[i].describe());
                eprintln!("[{done}/{most}] {what}: {}", run_line(&report, settle));
            }
            sink::append_csv(&a.csv, &report)?;
            bar.inc(1);
            if crate::os::signals::interrupted() {
                bar.finish_and_clear();
                eprintln!("interrupted: {} written to {}", runs(done), a.csv.display());
                return Ok(1);
            }
        }
    }
    bar.finish_and_clear();
    if repeat.max() > 1 {
        for (cfg, t) in configs.iter().zip(&tallies).filter(|_| !a.quiet) {
            eprintln!("{}: {}", describe(cfg), t.describe());
        }
        for (cfg, t) in configs.iter().zip(&tallies) {
            if let Some(w) = t.shortfall(repeat, &describe(cfg)) {
                eprintln!("{w}");
            }
        }
    }
    eprintln!("{} written to {}", runs(done), a.csv.display());
    Ok(if all_ok { 0 } else { 1 })
}

/// A run's line: `1234 msg/s, p99 56 us, ok (why it stopped) (disturbed); n=3, ...`.
fn run_line(report: &Report, settle: Option<String>) -> String {
    let why = report
        .stop_reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let disturbed = report
        .machine
        .and_then(|m| m.disturbance())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let settle = settle.map(|s| format!("; {s}")).unwrap_or_default();
    format!(
        "{} msg/s, p99 {}, {}{why}{disturbed}{settle}",
        per_s(report.throughput_msgs_s),
        us(report.latency.p99_us),
        report.status
    )
}

/// The progress bar of `most` runs, hidden when stderr is not a terminal or with `-q`.
fn progress_bar(most: usize, quiet: bool) -> ProgressBar {
    if !std::io::stderr().is_terminal() || quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(most as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, {eta} left  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `--slo` over a rate ladder: each run's verdict, and the rungs that missed (a
/// configuration's rates above its first miss are skipped).
struct Ladder {
    slo: Option<crate::config::Slo>,
    /// (configuration without its rate, the rate that missed).
    missed: Vec<(String, f64)>,
}

impl Ladder {
    /// The lower rate of `cfg`'s ladder that already missed the objective, if any.
    fn missed_below(&self, cfg: &RunConfig) -> Option<f64> {
        let rate = cfg.rate.filter(|_| self.slo.is_some())?;
        let key = ladder_key(cfg);
        self.missed
            .iter()
            .find(|(k, m)| *k == key && *m < rate)
            .map(|(_, m)| *m)
    }

    /// Judges `report` by the objective (none without `--slo`) and remembers a miss.
    fn judge(&mut self, cfg: &RunConfig, report: &mut Report) {
        let Some(slo) = &self.slo else { return };
        let reason = slo.failure(report);
        if let (Some(rate), Some(_)) = (cfg.rate, &reason) {
            self.missed.push((ladder_key(cfg), rate));
        }
        report.objective = Some(crate::report::Objective {
            slo: slo.to_string(),
            met: reason.is_none(),
            reason,
        });
    }
}

/// A configuration without its rate: the rungs of one ladder share it.
fn ladder_key(cfg: &RunConfig) -> String {
    format!(
        "{:?}",
        RunConfig {
            rate: None,
            ..cfg.clone()
        }
    )
}

/// "1 run", "2 runs".
fn runs(n: usize) -> String {
    format!("{n} run{}", if n == 1 { "" } else { "s" })
}

/// The model's name, or the address loaded.
fn target_name(cfg: &RunConfig) -> String {
    match &cfg.target {
        TargetSpec::Model(m) => m.name().to_string(),
        TargetSpec::Addr(a) => a.to_string(),
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
    fn a_run_that_could_not_start_keeps_its_configuration() {
        let runs = plan(&args(&[
            "--targets",
            "threadpool",
            "--conns",
            "100",
            "--transport",
            "udp",
        ]))
        .unwrap();
        let r = crate::report::Report::failed_run(&runs[0], "threadpool", "cannot start");
        assert_eq!(r.status, crate::report::Status::Failed);
        assert_eq!(r.transport, Some(servers::Transport::Udp), "keyed as its siblings are");
        assert_eq!(r.settings.server_workers, Some(100));
        assert_eq!((r.target.as_str(), r.conns), ("threadpool", 100));
        assert_eq!(r.stop_reason.as_deref(), Some("cannot start"));
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
