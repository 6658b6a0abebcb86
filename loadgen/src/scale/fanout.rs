//! `loadgen run --procs P`: one run made by P shard processes of loadgen on this machine,
//! each with its own descriptor limit (a process holds at most ~20k sockets here) and its
//! own source address on loopback (so ports never run out), merged into one report.
//!
//! This process starts the target (once, with `--server-procs`), picks a start time far
//! enough ahead for every shard to open its connections, starts the shards (`--shard i/P
//! --start-at T --hdr-log ...`), measures the server while they run, and merges their
//! logs exactly (`loadgen merge`'s code). Ctrl-C is passed on; a shard that dies makes the
//! run `partial` and loses nothing the others measured.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::config::{Churn, CloseMode, RunConfig, TargetSpec};
use crate::measure::hlog;
use crate::os::machine;
use crate::os::sys;
use crate::report::shard;
use crate::report::Report;
use crate::run::cost::Cost;
use crate::run::target;
use crate::scale::merge;

/// Connections a shard opens per second, for the start-time lead (measured: 10k in ~1 s).
const CONNECTS_PER_S: f64 = 4000.0;
/// The shards' command line, built from the checked configuration (so `run` and `sweep`
/// fan out alike): every setting of the run, plus the shard's own flags.
fn shard_args(cfg: &RunConfig, own: &[String]) -> Vec<String> {
    let d = |d: Duration| format!("{}ms", d.as_millis().max(1));
    let mut a: Vec<String> = vec!["run".into()];
    let mut push = |flag: &str, value: String| {
        a.push(flag.to_string());
        a.push(value);
    };
    push("--conns", cfg.conns.to_string());
    push("--engine", cfg.engine.name().to_string());
    push("--msg-size", cfg.msg_size.to_string());
    push("--depth", cfg.depth.to_string());
    match (&cfg.stages, cfg.rate) {
        // The stages set the rate (or the connections) over time; `rate` is then their mean.
        (Some(p), rate) => {
            push("--stages", p.to_string());
            push("--stage-target", if rate.is_some() { "rate" } else { "conns" }.into());
        }
        (None, Some(rate)) => push("--rate", rate.to_string()),
        (None, None) => {}
    }
    if !cfg.bind.is_empty() {
        push(
            "--bind",
            cfg.bind.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        );
    }
    if cfg.stages.is_none() {
        // Stages are the window (no warm-up): the flags would be refused beside them.
        push("--duration", d(cfg.duration));
        push("--warmup", format!("{}ms", cfg.warmup.as_millis()));
    }
    push("--timeout", d(cfg.reply_timeout()));
    push("--connect-timeout", d(cfg.connect_timeout));
    push("--interval", d(cfg.interval));
    push("--threads", (cfg.threads / cfg.procs as usize).max(1).to_string());
    if !cfg.label.is_empty() {
        push("--label", cfg.label.clone());
    }
    if let Some(cpus) = &cfg.pin_client {
        push(
            "--pin-client",
            cpus.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        );
    }
    if let Some(b) = cfg.sock_buf {
        push("--sock-buf", b.to_string());
    }
    match cfg.churn {
        Churn::None => {}
        Churn::ReconnectEvery(n) => push("--reconnect-every", n.to_string()),
        Churn::ConnRate { rate, msgs_per_conn } => {
            push("--conn-rate", rate.to_string());
            push("--msgs-per-conn", msgs_per_conn.to_string());
        }
    }
    push(
        "--close",
        if cfg.close == CloseMode::Rst { "rst" } else { "fin" }.into(),
    );
    push("--pacing", cfg.pacing.name().into());
    push("--arrivals", cfg.arrivals.as_str().into());
    push("--seed", cfg.seed.to_string());
    push("--rx-timestamps", if cfg.rx_timestamps { "on" } else { "off" }.into());
    a.extend_from_slice(own);
    a
}

/// Runs `cfg` as `cfg.procs` shard processes and merges them into one report.
pub(crate) fn run(cfg: &RunConfig) -> anyhow::Result<Report> {
    let procs = cfg.procs;
    let mut target = target::start(cfg)?;
    let dir = std::env::temp_dir().join(format!("loadgen-procs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let per_shard = cfg.conns.div_ceil(procs as usize);
    let lead = Duration::from_secs(1) + Duration::from_secs_f64(per_shard as f64 / CONNECTS_PER_S);
    let start_at = SystemTime::now() + lead;
    let start = Instant::now() + lead;
    let at = start_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut shards = spawn_shards(cfg, &target.addr, &dir, at)?;
    let server_pid = target.server.as_ref().map(|s| s.pid());
    let mut cost = Cost::new(server_pid.map(crate::run::cost::ServerProbe::Local));
    let window = (start + cfg.warmup, start + cfg.warmup + cfg.duration);
    let stop_reason = watch_shards(&mut shards, &mut target, &mut cost, window);
    // The parent's own CPU is not the client's (the shards report theirs): the server's and
    // the machine's.
    let cost = cost.finish();
    if let Some(server) = target.server.as_mut() {
        server.stop();
    }
    let (logs, results, stamp) = collect(&dir, procs);
    let _ = std::fs::remove_dir_all(&dir);
    let stamp = stamp.ok_or_else(|| anyhow::anyhow!("no shard of the run wrote its interval log"))?;
    let mut total = crate::report::combine::combine(&results, procs);
    let (cost, late_readings) = cost.fit(Duration::from_secs_f64(total.duration_s), 0.0);
    total.stop_reason = stop_reason.or(total.stop_reason);
    if total.stop_reason.is_some() {
        total.status = total.status.max(crate::report::Status::Partial);
    }
    let merged = merge::merge(&logs);
    let mut report = merge::report(
        &merged,
        &target.addr.to_string(),
        &cfg.label,
        Some((&stamp, &total, procs)),
    );
    report.target = target.name.clone();
    report.transport = Some(target.addr.transport());
    report.conns = cfg.conns;
    report.engine = cfg.engine.name().to_string();
    // The run's configuration, as one process's report has it (the shards' logs do not
    // carry it): compare pairs rows by these columns.
    report.settings = crate::report::settings(cfg);
    if let TargetSpec::Model(_) = &cfg.target {
        report.server = cost.server;
    }
    report.warnings.extend(late_readings);
    // The whole machine, with every shard's client CPU (this parent's is among the others).
    let here = crate::run::cost::server_here(cfg, &target, report.server.as_ref());
    let measured = Duration::from_secs_f64(report.duration_s);
    report.machine = machine::of(cost.machine, measured, report.client_cpu_s, here);
    report
        .warnings
        .extend(report.machine.iter().flat_map(machine::warnings));
    Ok(report)
}

/// Watches the shards until every one has exited: on Ctrl-C, SIGTERM or the spawned server
/// exiting, tells each to stop (each writes what it measured) and returns why; samples the
/// server and takes the window's readings meanwhile.
fn watch_shards(
    shards: &mut [Child],
    target: &mut target::Target,
    cost: &mut Cost,
    window: (Instant, Instant),
) -> Option<String> {
    let interrupted = crate::os::signals::flag();
    let mut stop_reason = None;
    loop {
        let running = shards
            .iter_mut()
            .filter_map(|c| c.try_wait().ok())
            .filter(Option::is_none)
            .count();
        if running == 0 {
            return stop_reason;
        }
        if stop_reason.is_none() {
            if let Some(why) = crate::run::watch::outside_reason(interrupted, target) {
                for c in shards.iter() {
                    let _ = sys::signal(c.id(), rustix::process::Signal::TERM);
                }
                stop_reason = Some(why);
            }
        }
        cost.tick_and_wait(Some(window));
    }
}

/// Starts the `cfg.procs` shard processes against `addr`, all starting their load at `at`
/// (seconds since the epoch), each logging to its file in `dir`.
fn spawn_shards(cfg: &RunConfig, addr: &servers::ListenAddr, dir: &Path, at: f64) -> anyhow::Result<Vec<Child>> {
    let loopback_v4 = matches!(addr, servers::ListenAddr::Tcp(a) if a.ip().is_loopback() && a.is_ipv4());
    let exe = PathBuf::from("/proc/self/exe");
    let procs = cfg.procs;
    let mut shards: Vec<Child> = Vec::new();
    for i in 0..procs {
        let mut own: Vec<String> = [
            "--addr".to_string(),
            addr.to_string(),
            "--shard".into(),
            format!("{i}/{procs}"),
            "--start-at".into(),
            format!("{at:.6}"),
            "--hdr-log".into(),
            log_path(dir, i).display().to_string(),
            "--quiet".into(),
        ]
        .into();
        if !cfg.bind.is_empty() {
            let ips: Vec<String> = cfg.bind.iter().map(ToString::to_string).collect();
            own.extend(["--bind".into(), ips.join(",")]);
        } else if loopback_v4 {
            // Its own source address: ~28k ports of its own towards the server.
            own.extend(["--bind".into(), format!("127.0.0.{}", 2 + i)]);
        }
        let child = Command::new(&exe)
            .args(shard_args(cfg, &own))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start shard {i} of {procs}"))?;
        shards.push(child);
    }
    Ok(shards)
}

/// Every shard's interval log and result notes from `dir`, and the run's stamp (`None` when
/// no shard wrote its log). A shard that died before writing its log is missing: the run is
/// then partial.
#[allow(clippy::type_complexity)]
fn collect(
    dir: &Path,
    procs: u32,
) -> (
    Vec<Vec<hlog::LoggedInterval>>,
    Vec<shard::ShardResult>,
    Option<shard::RunStamp>,
) {
    let mut logs = Vec::new();
    let mut results = Vec::new();
    let mut stamp = None;
    for i in 0..procs {
        // A shard that died before writing its log is missing: the run is partial.
        if let Ok((ivs, notes)) = hlog::read_with_notes(&log_path(dir, i)) {
            let (s, r) = shard::parse_notes(&notes);
            stamp = stamp.or(s);
            results.extend(r);
            logs.push(ivs);
        }
    }
    (logs, results, stamp)
}

fn log_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join(format!("shard-{shard}.hlog"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cfg` as shard `shard` would parse it: its command line, read back.
    fn as_shard(cfg: &RunConfig, shard: &str) -> RunConfig {
        let start = format!("{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_secs() + 60);
        let args = shard_args(cfg, &["--shard".into(), shard.into(), "--start-at".into(), start]);
        let again = <crate::cli::Cli as clap::Parser>::try_parse_from(
            std::iter::once("loadgen".to_string())
                .chain(args.iter().cloned().chain(["--addr".into(), "127.0.0.1:9".into()])),
        )
        .unwrap();
        match again.command {
            Some(crate::cli::Command::Run(a)) => RunConfig::try_from(&a).unwrap_or_else(|e| panic!("{e}: {args:?}")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_shard_gets_every_setting_of_the_run_and_its_own_flags() {
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "loadgen",
            "--target",
            "mio",
            "--conns",
            "50000",
            "--procs",
            "3",
            "--msg-size",
            "128",
            "--threads",
            "6",
            "--reconnect-every",
            "5",
            "--close",
            "rst",
        ])
        .unwrap();
        let cfg = RunConfig::try_from(&cli.run).unwrap();
        let shard = as_shard(&cfg, "0/3");
        assert_eq!((shard.conns, shard.msg_size, shard.threads), (50000, 128, 2));
        assert_eq!((shard.churn, shard.close), (cfg.churn, cfg.close));
        assert_eq!(shard.shard.to_string(), "0/3");
        assert_eq!((shard.duration, shard.warmup), (cfg.duration, cfg.warmup));
    }

    #[test]
    fn a_shard_keeps_the_open_loops_arrivals_seed_and_stamps() {
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "loadgen",
            "--target",
            "mio",
            "--procs",
            "2",
            "--rate",
            "1000",
            "--arrivals",
            "poisson",
            "--seed",
            "9",
            "--rx-timestamps",
            "on",
            "--pacing",
            "spin",
        ])
        .unwrap();
        let cfg = RunConfig::try_from(&cli.run).unwrap();
        let shard = as_shard(&cfg, "1/2");
        assert_eq!(
            shard.schedule(),
            cfg.schedule(),
            "the same Poisson schedule, seed included"
        );
        assert_eq!((shard.rx_timestamps, shard.pacing), (true, cfg.pacing));
    }
}
