//! Checked configuration built from the raw command line. Every error names the flag and
//! says what to do; `main` maps them to exit code 2.

use std::path::PathBuf;
use std::time::Duration;

use servers::{ListenAddr, Model};
use thiserror::Error;

use crate::capacity::Slo;
use crate::cli::RunArgs;
use crate::schedule::Schedule;

/// Largest message size accepted (64 MiB).
pub const MAX_MSG_SIZE: u64 = 64 << 20;

/// A mistake in the flags that the user can fix.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// A flag's value is not acceptable.
    #[error("{flag} '{value}': {reason}")]
    Invalid {
        /// The flag, e.g. `--duration`.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The host name of `--addr` does not resolve (exit code 3: the run cannot start).
    #[error("--addr '{0}': {1}")]
    Unresolvable(String, String),
    /// Neither a target nor an address.
    #[error(
        "nothing to load: give --target MODEL (one of: {}) or --addr HOST:PORT",
        Model::names()
    )]
    NoTarget,
    /// More connections than descriptors.
    #[error(
        "--conns {conns} needs about {needed} file descriptors but the limit is {limit} \
         (soft limit already raised to the hard limit); lower --conns, raise the hard limit \
         (ulimit -Hn), or split the load over several processes"
    )]
    TooManyConns {
        /// Connections asked for.
        conns: usize,
        /// Descriptors needed.
        needed: u64,
        /// The hard limit.
        limit: u64,
    },
}

fn invalid(flag: &'static str, value: impl ToString, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// What to put load on.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// Start this model in a child process.
    Model(Model),
    /// An already running server.
    Addr(ListenAddr),
}

/// A checked `run` configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// What to load.
    pub target: TargetSpec,
    /// Connections.
    pub conns: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Bytes per message.
    pub msg_size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Open loop rate (messages/s in total); `None` for closed loop.
    pub rate: Option<f64>,
    /// `--rate auto --slo ...`: search for the highest rate that meets this objective.
    pub search: Option<Slo>,
    /// Client threads.
    pub threads: usize,
    /// Threads of the spawned server.
    pub server_threads: Option<u32>,
    /// With `--addr`: the external server's pid, to measure its cost.
    pub server_pid: Option<u32>,
    /// Per-message timeout.
    pub timeout: Duration,
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
    pub bind: Vec<std::net::IpAddr>,
}

/// Parses a CPU list like `0`, `0-3`, `0,2,4-5`.
pub fn parse_cpus(flag: &'static str, s: &str) -> Result<Vec<usize>, ConfigError> {
    let bad = || invalid(flag, s, "expected CPU numbers like 0, 0-1 or 0,2");
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().map_err(|_| bad())?,
                b.trim().parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let v = part.parse::<usize>().map_err(|_| bad())?;
                (v, v)
            }
        };
        if lo > hi || hi >= cpus.max(1024) {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    if out.iter().any(|&c| c >= cpus) {
        return Err(invalid(flag, s, format!("this machine has CPUs 0-{}", cpus - 1)));
    }
    Ok(out)
}

impl RunConfig {
    /// The sending discipline.
    pub fn schedule(&self) -> Schedule {
        match self.rate {
            Some(rate) => Schedule::Open {
                rate,
                conns: self.conns,
            },
            None => Schedule::Closed,
        }
    }
}

/// Parses a duration like `500ms`, `10s`, `2m`.
pub fn parse_duration(flag: &'static str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.trim()).map_err(|e| invalid(flag, s, format!("{e} (use e.g. 500ms, 10s, 2m)")))
}

fn positive_duration(flag: &'static str, s: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(flag, s)?;
    if d.is_zero() {
        return Err(invalid(flag, s, "must be greater than zero"));
    }
    Ok(d)
}

impl TryFrom<&RunArgs> for RunConfig {
    type Error = ConfigError;

    fn try_from(a: &RunArgs) -> Result<Self, ConfigError> {
        let target =
            match (&a.target, &a.addr) {
                (Some(t), _) => TargetSpec::Model(t.parse().map_err(|e: servers::UnknownModel| {
                    invalid("--target", t, format!("{e}; see `loadgen targets`"))
                })?),
                (None, Some(addr)) => TargetSpec::Addr(addr.parse().map_err(|e: servers::addr::BadAddr| {
                    if e.reason.starts_with("cannot resolve") || e.reason.starts_with("host has no") {
                        ConfigError::Unresolvable(addr.clone(), e.reason)
                    } else {
                        invalid(
                            "--addr",
                            addr,
                            e.reason + "; expected HOST:PORT, [V6]:PORT or unix:/path",
                        )
                    }
                })?),
                (None, None) => return Err(ConfigError::NoTarget),
            };
        if a.conns == 0 || a.conns > 1_000_000 {
            return Err(invalid("--conns", a.conns, "must be between 1 and 1000000"));
        }
        if a.msg_size == 0 || a.msg_size > MAX_MSG_SIZE {
            return Err(invalid(
                "--msg-size",
                a.msg_size,
                format!("must be between 1 and {MAX_MSG_SIZE} bytes"),
            ));
        }
        if a.depth == 0 || a.depth > 4096 {
            return Err(invalid("--depth", a.depth, "must be between 1 and 4096"));
        }
        let (rate, search) = match (a.rate.as_deref().map(str::trim), &a.slo) {
            (None, None) => (None, None),
            (Some("auto"), Some(slo)) => (None, Some(slo.parse::<Slo>().map_err(|e| invalid("--slo", slo, e))?)),
            (Some("auto"), None) => return Err(invalid("--rate", "auto", "needs --slo, e.g. --slo p99=1ms")),
            (_, Some(slo)) => return Err(invalid("--slo", slo, "only applies with --rate auto")),
            (Some(r), None) => match r.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && v <= 1e9 => (Some(v), None),
                _ => {
                    return Err(invalid(
                        "--rate",
                        r,
                        "must be messages per second, > 0 (e.g. 50000), or auto with --slo",
                    ))
                }
            },
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let threads = match a.load.threads {
            None => cores,
            Some(0) => return Err(invalid("--threads", 0, "must be at least 1")),
            Some(t) if t > 1024 => return Err(invalid("--threads", t, "at most 1024 client threads")),
            Some(t) => t as usize,
        }
        .min(a.conns as usize);
        let server_threads = match a.load.server_threads {
            None => None,
            Some(t) if (1..=100_000).contains(&t) => Some(t as u32),
            Some(t) => return Err(invalid("--server-threads", t, "must be between 1 and 100000")),
        };
        if server_threads.is_some() && matches!(target, TargetSpec::Addr(_)) {
            return Err(invalid(
                "--server-threads",
                a.load.server_threads.unwrap_or(0),
                "only applies with --target",
            ));
        }
        let bind = match &a.bind {
            None => Vec::new(),
            Some(list) => {
                let ips = list
                    .split(',')
                    .map(|ip| ip.trim().parse::<std::net::IpAddr>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| invalid("--bind", list, "expected IP addresses, e.g. 127.0.0.2,127.0.0.3"))?;
                let family_ok = |ip: &std::net::IpAddr| match &target {
                    TargetSpec::Addr(ListenAddr::Tcp(t)) => ip.is_ipv4() == t.is_ipv4(),
                    TargetSpec::Addr(ListenAddr::Unix(_)) => false,
                    TargetSpec::Model(_) => ip.is_ipv4(), // spawned servers listen on 127.0.0.1
                };
                if let Some(bad) = ips.iter().find(|ip| !family_ok(ip)) {
                    return Err(invalid(
                        "--bind",
                        list,
                        format!("{bad} cannot reach the target (other address family, or a Unix socket)"),
                    ));
                }
                ips
            }
        };
        Ok(RunConfig {
            bind,
            target,
            conns: a.conns as usize,
            duration: positive_duration("--duration", &a.load.duration)?,
            warmup: parse_duration("--warmup", &a.load.warmup)?,
            msg_size: a.msg_size as usize,
            depth: a.depth as usize,
            rate,
            search,
            threads,
            server_threads,
            server_pid: match a.server_pid {
                Some(pid) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                    return Err(invalid("--server-pid", pid, "no such process"))
                }
                other => other,
            },
            timeout: positive_duration("--timeout", &a.load.timeout)?,
            connect_timeout: positive_duration("--connect-timeout", &a.load.connect_timeout)?,
            interval: positive_duration("--interval", &a.load.interval)?,
            csv: a.csv.clone(),
            json: a.json.clone(),
            hdr_log: a.hdr_log.clone(),
            label: a.load.label.clone(),
            quiet: a.quiet,
            pin_server: a
                .load
                .pin_server
                .as_deref()
                .map(|s| parse_cpus("--pin-server", s))
                .transpose()?,
            pin_client: a
                .load
                .pin_client
                .as_deref()
                .map(|s| parse_cpus("--pin-client", s))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<RunConfig, ConfigError> {
        let cli = crate::cli::Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied())).unwrap();
        RunConfig::try_from(&cli.run)
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = config(&["--target", "mio"]).unwrap();
        assert_eq!(c.target, TargetSpec::Model(Model::Mio));
        assert_eq!((c.conns, c.msg_size, c.depth, c.rate), (100, 64, 1, None));
        assert_eq!(
            (c.duration, c.warmup),
            (Duration::from_secs(10), Duration::from_secs(1))
        );
        assert_eq!(
            (c.timeout, c.connect_timeout),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
    }

    #[test]
    fn errors_name_the_flag() {
        let msg = |args: &[&str]| config(args).unwrap_err().to_string();
        assert!(msg(&["--target", "fibers"]).starts_with("--target 'fibers'"));
        assert!(msg(&["--addr", "nowhere"]).starts_with("--addr 'nowhere'"));
        assert!(msg(&["--target", "mio", "--duration", "10x"]).starts_with("--duration '10x'"));
        assert!(msg(&["--target", "mio", "--duration", "0s"]).contains("greater than zero"));
        assert!(msg(&["--target", "mio", "--conns", "0"]).starts_with("--conns"));
        assert!(msg(&["--target", "mio", "--rate", "fast"]).starts_with("--rate"));
        assert!(msg(&["--target", "mio", "--rate", "auto"]).contains("--slo"));
        assert!(msg(&["--target", "mio", "--rate", "auto", "--slo", "p42=1ms"]).starts_with("--slo"));
        assert!(msg(&["--target", "mio", "--slo", "p99=1ms"]).contains("--rate auto"));
        assert!(msg(&["--target", "mio", "--bind", "::1"]).starts_with("--bind"));
        assert!(msg(&["--target", "mio", "--bind", "nope"]).starts_with("--bind"));
        assert_eq!(
            config(&["--target", "mio", "--bind", "127.0.0.2, 127.0.0.3"])
                .unwrap()
                .bind
                .len(),
            2
        );
        let c = config(&["--target", "mio", "--rate", "auto", "--slo", "p99.9=2ms"]).unwrap();
        assert_eq!((c.rate, c.search.unwrap().bound_us), (None, 2000.0));
        assert!(msg(&["--target", "mio", "--msg-size", "0"]).starts_with("--msg-size"));
        assert!(msg(&[]).contains("--target MODEL"));
    }

    #[test]
    fn threads_never_exceed_connections() {
        assert_eq!(
            config(&["--target", "mio", "--conns", "1", "--threads", "4"])
                .unwrap()
                .threads,
            1
        );
    }
}
