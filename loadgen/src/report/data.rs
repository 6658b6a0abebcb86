//! The [`Report`] record of a run and the records it holds (settings, server cost, TCP
//! statistics, intervals, status): data only, which the serializers read.

use serde::Serialize;

pub use super::status::{Status, BEHIND_SHARE};

use servers::Transport;

use crate::measure::record::spectrum::SpectrumPoint;
use crate::measure::record::{Counters, Fairness, Percentiles};
use crate::measure::schedule::Mode;
use crate::os::proc::HostCpu;

use super::environment::Environment;

/// The CSV/JSON schema version.
pub const SCHEMA: u32 = 1;

/// The settings that shape what a run measures besides its configuration key (target,
/// transport, mode, conns, msg_size, depth, rate): recorded so that two runs that differ
/// in any of them are never taken for repeats of one configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Settings {
    /// Client threads that ran (`--threads`, or its default).
    pub client_threads: usize,
    /// Why the client thread count is what it is, when a default chose it.
    pub client_threads_default: Option<String>,
    /// Workers of the spawned server (`--server-workers`, or the model's default); `None`
    /// for thread-per-conn (a thread per connection) and for `--addr`.
    pub server_workers: Option<usize>,
    /// How open-loop sends were timed; `None` in closed loop, where it does not apply.
    pub pacing: Option<String>,
    /// SO_SNDBUF/SO_RCVBUF asked for, bytes; `None`: the kernel's autotuning.
    pub sock_buf: Option<usize>,
    /// Server processes sharing the port.
    pub server_procs: u32,
    /// The spawned server's per-message work, as given (`--work`).
    pub work: Option<String>,
    /// `--seed`: of every random choice (the work's durations, Poisson send times).
    pub seed: u64,
    /// How open-loop sends were spaced (`--arrivals`); `None` in closed loop.
    pub arrivals: Option<String>,
    /// `--stages` as given, and what they count (`rate` or `conns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<(String, String)>,
}

/// The arrivals check of a Poisson run: the gaps between the sends the client really made
/// (2,000 spread over each thread's first 20,000 in the window, in units of the promised mean gap) tested
/// against the exponential distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArrivalsCheck {
    /// The goodness-of-fit test: `kolmogorov-smirnov`.
    pub test: &'static str,
    /// Gaps tested.
    pub gaps: usize,
    /// The mean gap over the promised one (1 when the rate was kept).
    pub mean_gap_ratio: f64,
    /// The test's statistic (the largest distance between the two distribution functions).
    pub statistic: f64,
    /// The probability of a statistic at least this large from a true Poisson process.
    pub p_value: f64,
    /// `p_value >= 0.001`.
    pub ok: bool,
}

/// The p-value below which the sends are taken for not Poisson.
pub const ARRIVALS_ALPHA: f64 = 0.001;

/// What TCP_INFO said about the client's TCP connections over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct TcpStats {
    /// Segments the client retransmitted inside the window (connections open at both ends
    /// of it): exact even when the machine carries other traffic.
    pub retransmits: u64,
    /// Median of the connections' smoothed RTT at the window's end, µs.
    pub rtt_p50_us: f64,
    /// Its 99th percentile, µs.
    pub rtt_p99_us: f64,
    /// Connections read.
    pub conns: usize,
}

/// Cost of the server process during the measured window (spawned servers only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ServerCost {
    /// CPU seconds inside the window (`None`: the process could not be read at both ends
    /// of the window).
    pub cpu_s: Option<f64>,
    /// Peak resident set size, KiB (`None`: never read).
    pub peak_rss_kib: Option<u64>,
    /// Peak thread count (`None`: never read).
    pub peak_threads: Option<u64>,
    /// The server host's CPU seconds by mode inside the window, summed over its CPUs
    /// (read from a `loadgen agent` only: netperf's remote service demand, neper's `-S`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu: Option<HostCpu>,
    /// The server's listeners as its agent read them at the end (the report's `listen`).
    #[serde(skip)]
    pub listen: Option<crate::os::listener::Backlog>,
}

/// One interval of the measured window (merged over threads).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalRow {
    /// Seconds from the start of the window to the end of this interval.
    pub t_s: f64,
    /// Messages per second in this interval.
    pub msgs_s: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Errors counted in this interval.
    pub errors: u64,
}

/// Everything known about one run: the CSV columns and more.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Schema version.
    pub schema: u32,
    /// Start of the run, RFC 3339 UTC.
    pub timestamp: String,
    /// `--label`.
    pub label: String,
    /// Model name, or `external`.
    pub target: String,
    /// Address loaded.
    pub addr: String,
    /// The socket kind loaded (`None` when unknown, as in a merge of logs).
    #[serde(serialize_with = "transport_name")]
    pub transport: Option<Transport>,
    /// Closed or open loop.
    pub mode: Mode,
    /// Connections asked for.
    pub conns: usize,
    /// Bytes per message.
    pub msg_size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Open loop rate, messages/s.
    pub rate: Option<f64>,
    /// Connection churn asked for: `--reconnect-every`.
    pub reconnect_every: Option<u64>,
    /// Connection churn asked for: `--conn-rate` (new connections/s) and round trips each.
    pub conn_rate: Option<(f64, u64)>,
    /// How the client closed connections it was done with (`fin` or `rst`).
    pub close: &'static str,
    /// Measured seconds (shorter than asked when stopped early).
    pub duration_s: f64,
    /// Warmup seconds.
    pub warmup_s: f64,
    /// How the warm-up was chosen with `--warmup auto` (`None`: as given).
    pub warmup_rule: Option<String>,
    /// Counts.
    pub counters: Counters,
    /// Round trips per second in the window.
    pub throughput_msgs_s: f64,
    /// Payload MiB per second (one direction).
    pub throughput_mib_s: f64,
    /// Latency (open loop: from the intended send time).
    pub latency: Percentiles,
    /// The same latency's detailed percentile spectrum (`--latency` prints it).
    pub latency_spectrum: Vec<SpectrumPoint>,
    /// Open loop: service time from the actual send.
    pub raw: Option<Percentiles>,
    /// Open loop: how late sends were against the schedule (client lag + backpressure).
    pub send_lag: Option<Percentiles>,
    /// Open loop: the client's own lateness (sendable, but sent late).
    pub client_lag: Option<Percentiles>,
    /// Open loop: waits for a free slot under `--depth` (replies late).
    pub backpressure: Option<Percentiles>,
    /// Connect latency.
    pub connect: Percentiles,
    /// Time from a connection's start (its intended start with `--conn-rate`) to its first
    /// echoed byte, for connections opened in the window.
    pub first_byte: Percentiles,
    /// Connections opened per second in the window.
    pub conn_rate_s: f64,
    /// Connections open when the load started.
    pub conns_ok: usize,
    /// Server process cost (when known).
    pub server: Option<ServerCost>,
    /// How the server's process was found with `--addr` (`--server-pid`, or its listening
    /// socket on this machine).
    pub server_source: Option<String>,
    /// Client CPU seconds inside the window.
    pub client_cpu_s: f64,
    /// Client peak RSS, KiB.
    pub client_rss_kib: u64,
    /// The client's machine in the window: busy, stolen, used by others (when read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<crate::os::usage::MachineUse>,
    /// CPU use of the busiest client thread in the window (0..1 of a core).
    pub client_thread_busy_max: f64,
    /// The same without the time client threads spun to pace their sends (`hybrid`,
    /// `spin`): the share that was work. The generator is judged saturated on this one.
    pub client_thread_work_max: f64,
    /// Open loop: messages actually sent per second in the window.
    pub achieved_rate: Option<f64>,
    /// Open loop: when the schedule was not kept, who could not keep up; closed loop: when
    /// a client thread was saturated (plain words).
    pub keep_up: Option<String>,
    /// Other findings in plain words: connections that could not be opened, ports that ran
    /// out, a loss signature in the latency tail.
    pub warnings: Vec<String>,
    /// How the run ended.
    pub status: Status,
    /// Why it stopped early, if it did.
    pub stop_reason: Option<String>,
    /// Spread of messages over connections.
    pub fairness: Fairness,
    /// Ids of connections with no message in the window (at most 20 listed).
    pub starved_conns: Vec<u32>,
    /// Per-interval series.
    pub intervals: Vec<IntervalRow>,
    /// Machine and version.
    pub env: Environment,
    /// Client processes that made the run (`--procs`, or the shards merged).
    pub procs: u32,
    /// The client driver's I/O engine (`epoll`, `uring`; empty when unknown, as in a merge).
    #[serde(default)]
    pub engine: String,
    /// This report's shard `I/N` (`--shard`), empty for a whole run.
    pub shard: Option<String>,
    /// Where `--shard auto` read the shard from: a Slurm job array, a Slurm step or a
    /// Kubernetes Indexed Job (JSON and summary; not a CSV column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_source: Option<String>,
    /// A merged run: each of its shards (or `--procs` processes), missing ones included.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardLine>,
    /// The settings besides the configuration key.
    pub settings: Settings,
    /// TCP_INFO of the client's connections (TCP only).
    pub tcp: Option<TcpStats>,
    /// The reader's own delay: from the kernel's receive stamp of a reply to loadgen's read
    /// of it (`--rx-timestamps`; TCP and UDP, either engine); `None` without stamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_delay: Option<Percentiles>,
    /// The server's listening sockets (sock_diag), when they are in this network namespace
    /// or read through the agent: the backlog its listen() got, and the accept queue at the
    /// end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<crate::os::listener::Backlog>,
    /// `--arrivals poisson`: whether the sends really were a Poisson process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrivals_check: Option<ArrivalsCheck>,
    /// Outputs that could not be written, each named with its error (the run's exit code is
    /// then 1, whatever its status).
    pub output_errors: Vec<String>,
    /// `--work` on a spawned server: per kind, the duration asked beside the one the server
    /// measured (its whole life up to the window's end); `None` when not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_done: Option<Vec<super::work::WorkDone>>,
    /// `--slo`: every objective this run was judged by, with its value and verdict (JSON).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<ObjectiveResult>,
    /// `--slo` (and `sweep --slo`): the objectives as one, and the verdict (CSV `slo`, `slo_met`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// In a stage's own report: which stage (CSV `stage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<super::stage::StageInfo>,
    /// `--stages`: each stage's own report, in order (JSON `stages[]`; the CSV gets a row
    /// per stage in place of the whole run's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Report>,
}

impl Report {
    /// The CSV rows of this report: a row per stage with `--stages`, else its own.
    pub fn csv_rows(&self) -> Vec<&Report> {
        if self.stages.is_empty() {
            vec![self]
        } else {
            self.stages.iter().collect()
        }
    }
}

/// One `--slo` objective's verdict on a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectiveResult {
    /// As written back: `p99 <= 5000 us`, `errors <= 0`, `throughput >= 50000 msg/s`.
    pub objective: String,
    /// The run's value (µs for a latency, a count of errors, msg/s); `None` when the run
    /// measured no round trip.
    pub measured: Option<f64>,
    /// Whether the run met it.
    pub met: bool,
}

/// A latency objective's verdict on one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    /// As written: `p99 <= 5000 us`.
    pub slo: String,
    /// Whether the run met it.
    pub met: bool,
    /// Why not, with what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One shard of a combined run, as the merged report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ShardLine {
    /// `I/N`.
    pub shard: String,
    /// Its status, or `missing` when it left no log.
    pub status: String,
    /// Its round trips (`None` when missing).
    pub msgs: Option<u64>,
    /// Its throughput, msg/s.
    pub throughput_msgs_s: Option<f64>,
    /// Where `--shard auto` found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_source: Option<String>,
    /// Why it stopped early or is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

impl Report {
    /// The process exit code: the status's, or 1 when an output could not be written.
    pub fn exit_code(&self) -> u8 {
        if self.output_errors.is_empty() {
            self.status.exit_code()
        } else {
            1
        }
    }

    /// Client CPU per message, µs.
    pub fn client_us_per_msg(&self) -> Option<f64> {
        // A stage's row has no CPU reading of its own.
        if self.stage.is_some() {
            return None;
        }
        per_msg(self.client_cpu_s, self.counters.msgs)
    }

    /// Per message, the `--work` asked and done (µs, the kinds summed); `None` unknown.
    pub fn work_per_msg(&self) -> Option<(f64, f64)> {
        let w = self.work_done.as_ref().filter(|w| !w.is_empty())?;
        Some((
            w.iter().map(|k| k.asked_mean_us).sum(),
            w.iter().map(|k| k.done_mean_us).sum(),
        ))
    }

    /// Widens the intervals of p50 and p99 to hold the batch-means interval over the run's
    /// intervals (each interval a batch, when there are `stats::MIN_BATCHES` of them): the
    /// order-statistics interval assumes independent latencies, which a run's are not. Both
    /// cover this run's sampling only; run-to-run variation is `--repeat`'s to measure.
    pub fn widen_cis_by_batches(&mut self) {
        let rows: Vec<&IntervalRow> = self.intervals.iter().filter(|r| r.msgs_s > 0.0).collect();
        let p50: Vec<f64> = rows.iter().map(|r| r.p50_us).collect();
        let p99: Vec<f64> = rows.iter().map(|r| r.p99_us).collect();
        let ci = &mut self.latency.ci;
        let (b50, b99) = (
            crate::stats::batch_interval(self.latency.p50_us, &p50, 0.05),
            crate::stats::batch_interval(self.latency.p99_us, &p99, 0.05),
        );
        if let (Some((l50, h50)), Some((l99, h99))) = (b50, b99) {
            ci.p50 = ci.p50.union(l50, h50);
            ci.p99 = ci.p99.union(l99, h99);
            ci.batches = rows.len();
        }
    }

    /// Whether the window was steady (`stats::steady`); `None` when too short to judge.
    pub fn steadiness(&self) -> Option<crate::stats::steady::Steadiness> {
        // A run of stages changes its load on purpose: each stage is judged on its own (a
        // merge of staged shards has no stage rows, and is not judged at all).
        if !self.stages.is_empty() || (self.settings.stages.is_some() && self.stage.is_none()) {
            return None;
        }
        if self.status == Status::Behind {
            // A rate not offered is not a steady state of the asked load, whatever the halves.
            let s = crate::stats::steady::Steadiness {
                steady: false,
                halves_msgs_s: (0.0, 0.0),
                halves_p99_us: (0.0, 0.0),
                reason: Some("the asked rate was not offered (status behind)".to_string()),
                p99_known: false,
            };
            return Some(s);
        }
        let series: Vec<(f64, f64)> = self.intervals.iter().map(|r| (r.msgs_s, r.p99_us)).collect();
        // Each interval's messages: its rate times its length (the first from the start).
        let mut prev = 0.0;
        let samples: Vec<f64> = self
            .intervals
            .iter()
            .map(|r| {
                let n = r.msgs_s * (r.t_s - prev).max(0.0);
                prev = r.t_s;
                n
            })
            .collect();
        crate::stats::steady::judge(&series, &samples)
    }

    /// Server CPU per message, µs.
    pub fn server_us_per_msg(&self) -> Option<f64> {
        self.server.and_then(|s| per_msg(s.cpu_s?, self.counters.msgs))
    }
}

fn transport_name<S: serde::Serializer>(t: &Option<Transport>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.map_or("", Transport::name))
}

fn per_msg(cpu_s: f64, msgs: u64) -> Option<f64> {
    (msgs > 0).then(|| cpu_s * 1e6 / msgs as f64)
}
