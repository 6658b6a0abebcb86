//! Checked configuration built from the raw command line, in one direction: clap's raw
//! values ([`crate::cli`]) become a [`RunConfig`] here, and every refusal names the flag
//! and says what to do (exit 2). `sweep` and the capacity search build their runs from a
//! checked base by struct update, then [`RunConfig::checked`] again.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use servers::Model;

mod checks;
mod defaults;
mod kinds;
mod parse;
mod profile;
mod slo;
mod stages;
pub mod token;
pub mod values;
use defaults::agent_target;
pub use defaults::{default_threads, pool_workers, AgentTarget};
pub use profile::{rate_with_stages, stages_of_log};
pub use slo::{parse_goals, Goal, Slo};

pub use crate::cli::choice::{CloseMode, Engine, Pacing, StageTarget};
pub use kinds::{
    Churn, Shard, SockKind, TargetSpec, DEFAULT_TIMEOUT, DEFAULT_UDP_TIMEOUT, MAX_CONNS, MAX_DEPTH, MAX_MSG_SIZE,
    MAX_UDP_PAYLOAD_V4, UDP_UNFRAGMENTED,
};

use parse::{churn, positive_duration};
pub use parse::{parse_addr, parse_count, parse_cpus, parse_duration, parse_percent, parse_rate, parse_size};

use crate::cli::{LoadArgs, RunArgs};
use crate::error::{flag_error as invalid, Error};
use crate::measure::schedule::Schedule;

/// A checked `run` configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// What to load.
    pub target: TargetSpec,
    /// Concurrent connections.
    pub conns: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Bytes per message.
    pub msg_size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Open loop rate (messages/s in total; with `--stages` their mean); `None` for closed
    /// loop.
    pub rate: Option<f64>,
    /// `--stages`: the rate (open loop) or the open connections (closed loop) over time;
    /// the run lasts as long as they do, with no warm-up.
    pub stages: Option<std::sync::Arc<crate::measure::schedule::Profile>>,
    /// `--rate auto --slo ...`: search for the highest rate that meets this objective.
    pub search: Option<Slo>,
    /// `--slo` on any other run: the objectives its report is judged by at the end (a
    /// breach exits 99); empty without `--slo`.
    pub objectives: Vec<Goal>,
    /// `--metrics-listen`: where the run's live metrics are served, and how long the final
    /// state stays up after the run (`--metrics-linger`).
    pub metrics: Option<(std::net::SocketAddr, Duration)>,
    /// `--warmup auto`: the most warm-up MSER may cut from the start of the window (the
    /// run is made this much longer, and `warmup` is zero); `None` for a fixed warm-up.
    pub warmup_auto: Option<Duration>,
    /// `--agent`: read the server's cost from a `loadgen agent` on its host.
    pub agent: Option<AgentTarget>,
    /// `--work`: the spawned server's per-message work.
    pub work: Option<servers::work::WorkSpec>,
    /// `--seed`: of every random choice.
    pub seed: u64,
    /// Client threads.
    pub threads: usize,
    /// Why `threads` is what it is when `--threads` was not given (for the summary).
    pub threads_default: Option<String>,
    /// Threads of the spawned server.
    pub server_threads: Option<u32>,
    /// With `--addr`: the external server's pid, to measure its cost.
    pub server_pid: Option<u32>,
    /// Per-message timeout as given (`None`: the transport's default, see
    /// [`reply_timeout`](Self::reply_timeout)).
    pub timeout: Option<Duration>,
    /// The socket kind: with a spawned server, the one it serves; else the address's.
    pub transport: SockKind,
    /// The client driver's I/O engine.
    pub engine: Engine,
    /// Per-connect timeout.
    pub connect_timeout: Duration,
    /// Reporting interval.
    pub interval: Duration,
    /// CSV file to append to.
    pub csv: Option<PathBuf>,
    /// JSON file to write.
    pub json: Option<PathBuf>,
    /// Interval log to write.
    pub hdr_log: Option<PathBuf>,
    /// Free text for the report.
    pub label: String,
    /// Suppress the progress line.
    pub quiet: bool,
    /// CPUs the spawned server may run on.
    pub pin_server: Option<Vec<usize>>,
    /// CPUs the client threads may run on.
    pub pin_client: Option<Vec<usize>>,
    /// Source addresses of the connections.
    pub bind: Vec<IpAddr>,
    /// SO_SNDBUF/SO_RCVBUF of the client sockets (and of a spawned server's).
    pub sock_buf: Option<usize>,
    /// Connection churn.
    pub churn: Churn,
    /// How the client closes connections it is done with.
    pub close: CloseMode,
    /// How open-loop sends are timed.
    pub pacing: Pacing,
    /// How open-loop sends are spaced (`--arrivals`).
    pub arrivals: crate::measure::schedule::Arrival,
    /// `--rx-timestamps`: take the kernel's receive stamp on every read (TCP and UDP).
    pub rx_timestamps: bool,
    /// This process's part of the run (`--shard`); `Shard::WHOLE` alone.
    pub shard: Shard,
    /// Where `--shard auto` read it from (a Slurm job array, a Slurm step, a Kubernetes
    /// Indexed Job); `None` for `--shard I/N` or a whole run.
    pub shard_source: Option<String>,
    /// When the load starts (`--start-at`): every shard's window begins at this instant.
    pub start_at: Option<std::time::SystemTime>,
    /// Local shard processes to fan out to (`--procs`), merged into one report.
    pub procs: u32,
    /// Server processes sharing the port (`--server-procs`, with `--target`).
    pub server_procs: u32,
}

impl RunConfig {
    /// The reply timeout: `--timeout`, else [`DEFAULT_TIMEOUT`] on a stream and
    /// [`DEFAULT_UDP_TIMEOUT`] over UDP.
    pub fn reply_timeout(&self) -> Duration {
        self.timeout.unwrap_or(match self.transport {
            SockKind::Udp | SockKind::Icmp => DEFAULT_UDP_TIMEOUT,
            _ => DEFAULT_TIMEOUT,
        })
    }

    /// Whether the run is over UDP.
    pub fn is_udp(&self) -> bool {
        self.transport == SockKind::Udp
    }

    /// Whether messages go as datagrams (UDP or ICMP echo): one message, one packet.
    pub fn is_datagram(&self) -> bool {
        matches!(self.transport, SockKind::Udp | SockKind::Icmp)
    }

    /// Bytes on the wire before each message: the ICMP echo header, or none.
    pub fn wire_prefix(&self) -> usize {
        if self.transport == SockKind::Icmp {
            crate::os::icmp::HEADER
        } else {
            0
        }
    }

    /// This process's connections (its shard's share of `conns`).
    pub fn my_conns(&self) -> usize {
        self.shard.range(self.conns).len()
    }

    /// Closed or open loop: open with a message rate or a connection rate.
    pub fn mode(&self) -> crate::measure::schedule::Mode {
        match (self.rate, self.churn) {
            (Some(_), _) | (None, Churn::ConnRate { .. }) => crate::measure::schedule::Mode::Open,
            _ => crate::measure::schedule::Mode::Closed,
        }
    }

    /// The sending discipline.
    pub fn schedule(&self) -> Schedule {
        match self.rate {
            Some(rate) => Schedule::Open {
                rate,
                conns: self.conns,
                arrivals: self.arrivals,
                seed: self.seed,
                profile: self.stages.clone(),
            },
            None => Schedule::Closed,
        }
    }

    /// A configuration of `target` with the flags every load run shares (`run` and
    /// `sweep`) and the contract's defaults for the rest (100 connections of 64 B, depth
    /// 1, closed loop); [`checked`](Self::checked) must follow any change.
    pub fn from_load(target: TargetSpec, load: &LoadArgs) -> Result<RunConfig, Error> {
        let (threads, threads_default, server_threads) = sizes(&target, load)?;
        let work = load
            .work
            .as_deref()
            .map(|w| values::work(w, &target))
            .transpose()?
            .flatten();
        let (stages, (duration, warmup, warmup_auto), rate) = profile::window(load)?;
        Ok(RunConfig {
            conns: 100,
            duration,
            warmup,
            warmup_auto,
            msg_size: 64,
            depth: 1,
            rate,
            stages,
            search: None,
            objectives: Vec::new(),
            metrics: None,
            work,
            agent: None,
            seed: load.seed,
            threads,
            threads_default,
            server_threads,
            server_pid: None,
            timeout: load
                .timeout
                .as_deref()
                .map(|t| positive_duration("--timeout", t))
                .transpose()?,
            engine: values::engine(values::one("--engine", &load.engine)?)?,
            transport: match &target {
                TargetSpec::Addr(a) => SockKind::of(a),
                TargetSpec::Model(_) => SockKind::Tcp,
            },
            connect_timeout: positive_duration("--connect-timeout", &load.connect_timeout)?,
            interval: positive_duration("--interval", &load.interval)?,
            csv: None,
            json: None,
            hdr_log: None,
            label: load.label.clone(),
            quiet: false,
            pin_server: load
                .pin_server
                .as_deref()
                .map(|s| parse_cpus("--pin-server", s))
                .transpose()?,
            pin_client: load
                .pin_client
                .as_deref()
                .map(|s| parse_cpus("--pin-client", s))
                .transpose()?,
            bind: Vec::new(),
            sock_buf: load
                .sock_buf
                .as_deref()
                .map(|b| values::sock_buf(values::one("--sock-buf", b)?))
                .transpose()?,
            churn: churn(load)?,
            close: load.close,
            pacing: values::pacing(values::one("--pacing", &load.pacing)?)?,
            arrivals: load.arrivals,
            rx_timestamps: load.rx_timestamps == crate::cli::OnOff::On,
            shard: Shard::WHOLE,
            shard_source: None,
            start_at: None,
            procs: match load.procs {
                0 => return Err(invalid("--procs", 0, "must be at least 1")),
                n @ 1..=64 => n,
                n => return Err(invalid("--procs", n, "at most 64 local shard processes")),
            },
            server_procs: values::server_procs(values::one("--server-procs", &load.server_procs)?)?,
            target,
        })
    }
}

impl TryFrom<&RunArgs> for RunConfig {
    type Error = Error;

    fn try_from(a: &RunArgs) -> Result<Self, Error> {
        let target = run_target(a)?;
        let (rate, search, objectives) = rate_and_search(a)?;
        let rate_given = a.rate.as_deref().filter(|_| rate.is_some() || search.is_some());
        // Pacing times open-loop sends (and --conn-rate arrivals): asked for in a closed-loop
        // run it would do nothing, which the user should hear about.
        let rate_stages = a.load.stages.is_some() && a.load.stage_target == StageTarget::Rate;
        if a.load.pacing != "hybrid" && rate.is_none() && search.is_none() && a.load.conn_rate.is_none() && !rate_stages
        {
            return Err(invalid(
                "--pacing",
                &a.load.pacing,
                "times open-loop sends; this run is closed loop (add --rate R or --conn-rate R)",
            ));
        }
        let Placement {
            bind,
            server_pid,
            shard,
            shard_source,
            start_at,
        } = placement(a)?;
        let base = RunConfig::from_load(target, &a.load)?;
        let conns = usize::try_from(parse_count("--conns", &a.conns)?).unwrap_or(usize::MAX);
        RunConfig {
            transport: match (&a.transport, &a.target) {
                (Some(t), Some(_)) => t.parse()?,
                (Some(t), None) => {
                    return Err(invalid(
                        "--transport",
                        t,
                        "only applies with --target; an --addr names its own (udp://HOST:PORT, unix:/path)",
                    ))
                }
                (None, _) => base.transport,
            },
            shard,
            shard_source,
            start_at,
            conns,
            msg_size: usize::try_from(parse_size("--msg-size", &a.msg_size)?).unwrap_or(usize::MAX),
            depth: usize::try_from(parse_count("--depth", &a.depth)?).unwrap_or(usize::MAX),
            rate: rate.or(base.rate),
            search,
            objectives,
            metrics: metrics_listen(a)?,
            server_pid,
            csv: a.csv.clone(),
            json: a.json.clone(),
            hdr_log: a.hdr_log.clone(),
            quiet: a.quiet,
            bind,
            agent: agent_target(a)?,
            server_threads: base.server_threads.or_else(|| {
                matches!(base.target, TargetSpec::Model(Model::ThreadPool))
                    .then(|| pool_workers(conns, base.server_procs))
            }),
            ..base
        }
        .checked_with_stages(rate_given)
    }
}

/// Client threads (and why, when the default chose them) and the spawned server's workers.
fn sizes(target: &TargetSpec, load: &LoadArgs) -> Result<(usize, Option<String>, Option<u32>), Error> {
    let (threads, threads_default) = match &load.threads {
        None => {
            let (n, why) = default_threads(target);
            (n, Some(why))
        }
        Some(t) => (values::threads(values::one("--threads", t)?)?, None),
    };
    let server_threads = match &load.server_threads {
        None => None,
        Some(t) => Some(values::server_threads(values::one("--server-workers", t)?)?),
    };
    if let (Some(t), TargetSpec::Addr(_)) = (&load.server_threads, target) {
        return Err(invalid("--server-workers", t, "only applies with --target"));
    }
    Ok((threads, threads_default, server_threads))
}

/// `--target MODEL` or `--addr ADDR`.
fn run_target(a: &RunArgs) -> Result<TargetSpec, Error> {
    match (&a.target, &a.addr) {
        (Some(t), _) => Ok(TargetSpec::Model(t.parse().map_err(|e: servers::UnknownModel| {
            invalid("--target", t, format!("{e}; see `loadgen targets`"))
        })?)),
        (None, Some(addr)) => Ok(TargetSpec::Addr(parse_addr(addr)?)),
        (None, None) => Err(Error::NoTarget),
    }
}

/// `--rate R`, or `--rate auto --slo ...` (a capacity search by one latency objective), and
/// the objectives `--slo` sets on any other run.
#[allow(clippy::type_complexity)] // the three are read together
fn rate_and_search(a: &RunArgs) -> Result<(Option<f64>, Option<Slo>, Vec<Goal>), Error> {
    let goals = a.slo.as_deref().map(parse_goals).transpose()?.unwrap_or_default();
    match a.rate.as_deref().map(str::trim) {
        Some("auto") => match goals.as_slice() {
            [Goal::Latency(slo)] => Ok((None, Some(slo.clone()), Vec::new())),
            [] => Err(invalid("--rate", "auto", "needs --slo, e.g. --slo p99=1ms")),
            _ => Err(invalid(
                "--slo",
                a.slo.as_deref().unwrap_or_default(),
                "--rate auto searches by one latency objective, e.g. --slo p99=1ms (a list of objectives judges a run at a fixed rate)",
            )),
        },
        Some(r) => Ok((Some(parse_rate("--rate", r)?), None, goals)),
        None => Ok((None, None, goals)),
    }
}

/// `--metrics-listen` (loopback unless `--metrics-allow-remote`) and `--metrics-linger`.
fn metrics_listen(a: &RunArgs) -> Result<Option<(std::net::SocketAddr, Duration)>, Error> {
    let Some(listen) = &a.metrics_listen else {
        return Ok(None);
    };
    if cfg!(not(feature = "agent")) {
        return Err(Error::NotBuilt {
            what: "--metrics-listen",
            feature: "agent",
        });
    }
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        invalid(
            "--metrics-listen",
            listen,
            "expected IP:PORT, e.g. 127.0.0.1:9465 (port 0: any free one)",
        )
    })?;
    if !addr.ip().is_loopback() && !a.metrics_allow_remote {
        return Err(invalid(
            "--metrics-listen",
            listen,
            "is not loopback: the run's metrics would reach the network; add --metrics-allow-remote to mean it",
        ));
    }
    if a.load.procs > 1 {
        return Err(invalid(
            "--metrics-listen",
            listen,
            "serves one process's state; with --procs, give each shard its own with --shard instead",
        ));
    }
    Ok(Some((addr, parse_duration("--metrics-linger", &a.metrics_linger)?)))
}

/// Where a run's load comes from and whose cost it reads.
struct Placement {
    bind: Vec<IpAddr>,
    server_pid: Option<u32>,
    shard: Shard,
    shard_source: Option<String>,
    start_at: Option<std::time::SystemTime>,
}

/// `--bind`, `--server-pid`, `--shard`, `--start-at`, and what `--procs` cannot go with.
fn placement(a: &RunArgs) -> Result<Placement, Error> {
    let bind = match &a.bind {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|ip| ip.trim().parse::<IpAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("--bind", list, "expected IP addresses, e.g. 127.0.0.2,127.0.0.3"))?,
    };
    let server_pid = match a.server_pid {
        Some(pid) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
            return Err(invalid("--server-pid", pid, "no such process"))
        }
        other => other,
    };
    let (shard, shard_source) = a
        .shard
        .as_deref()
        .map(parse::parse_shard)
        .transpose()?
        .unwrap_or((Shard::WHOLE, None));
    let start_at = a.start_at.as_deref().map(parse::parse_start_at).transpose()?;
    let procs = a.load.procs;
    if procs > 1 && a.rate.as_deref().map(str::trim) == Some("auto") {
        return Err(invalid(
            "--procs",
            procs,
            "cannot be combined with --rate auto (run the search in one process)",
        ));
    }
    if procs > 1 && a.shard.is_some() {
        return Err(invalid(
            "--procs",
            procs,
            "cannot be combined with --shard (each host runs its own shards)",
        ));
    }
    Ok(Placement {
        bind,
        server_pid,
        shard,
        shard_source,
        start_at,
    })
}

#[cfg(test)]
mod tests;
