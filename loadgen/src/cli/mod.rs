//! Command-line structures (clap derive). They hold raw values only; `config`
//! checks them and builds the typed configuration, with errors that name the flag.

pub mod choice;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use servers::cli::ServeArgs;

/// The exit codes, printed after `--help` and in the man page.
pub const EXIT_CODES: &str = "Exit codes: 0 run finished, status ok; 1 run finished or stopped early with errors, or an output could not be written; 2 bad usage or unreadable input; 3 could not run at all (the target cannot start, the address is unreachable); 99 the run finished but breached an objective of --slo.";

/// The agent's default address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Load generator for TCP and Unix-socket echo servers.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator for echo servers: throughput, HdrHistogram latency, CSV reports",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do (default: `run`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of the default `run` command.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One load run (the default).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// A matrix of runs (targets x conns x sizes x depths x rates x repeats), one CSV row each.
    Sweep(SweepArgs),
    /// Compare two reports (BASE NEW), or models within one report (--by target --baseline M).
    Compare(CompareArgs),
    /// Charts of a report (throughput and p99 against connections) or of an interval log
    /// (latency percentile spectrum), as SVG.
    Plot(PlotArgs),
    /// One report from several hosts' interval logs, merged exactly.
    Merge(MergeArgs),
    /// One self-contained HTML page of a study: charts, the comparison, warnings.
    Report(ReportArgs),
    /// What limits precision and scale on this machine, measured and read (about 10 s).
    Doctor(DoctorArgs),
    /// Serve the server host's costs (Prometheus text) for `loadgen --agent` on another host.
    Agent(AgentArgs),
    /// List the server models `--target` can start.
    Targets,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    Man,
    /// Run one echo server in this process (used by `--target`; prints `listening ADDR`).
    #[command(hide = true)]
    Serve(ServeArgs),
}

/// Flags of one load run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Start this echo server model in its own child process (see `loadgen targets`).
    #[arg(help_heading = "Target", long, value_name = "MODEL", conflicts_with = "addr")]
    pub target: Option<String>,
    /// Load an already running echo server: HOST:PORT, `[::1]:PORT`, unix:/path or
    /// udp://HOST:PORT; or the kernel's own echo, icmp://HOST (ICMP echo requests: the floor
    /// under every server).
    #[arg(help_heading = "Target", long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// With --target: the socket kind the spawned server serves and the client uses.
    #[arg(help_heading = "Target", long, value_name = "tcp|unix|seqpacket|udp")]
    pub transport: Option<String>,
    /// Concurrent client connections (`1000`, `1k`, `1e3`).
    #[arg(help_heading = "Load", long, short = 'c', visible_aliases = ["connections", "concurrency", "vus"], value_name = "N", default_value = "100")]
    pub conns: String,
    /// Bytes per message (`64`, `4KiB`).
    #[arg(help_heading = "Load", long, value_name = "BYTES", default_value = "64")]
    pub msg_size: String,
    /// Messages in flight per connection (pipelining).
    #[arg(help_heading = "Load", long, value_name = "K", default_value = "1")]
    pub depth: String,
    /// Open loop: total messages per second on a fixed schedule; latency is measured from
    /// each message's intended send time. Absent: closed loop. `auto`: search for the
    /// highest rate meeting --slo.
    #[arg(help_heading = "Load", long, short = 'R', value_name = "R")]
    pub rate: Option<String>,
    /// Objectives the run is judged by at its end, a comma list: PERCENTILE=BOUND (p99=5ms,
    /// p99.9=20ms), errors=N (at most N errors), throughput>=RATE (msg/s, e.g. 50k). A
    /// breached one is named with its value and the run exits 99. With `--rate auto`: the
    /// one latency objective the capacity search meets.
    #[arg(help_heading = "Load", long, value_name = "SLO")]
    pub slo: Option<String>,
    /// With --addr to a server on another host: read its cost from the `loadgen agent` at
    /// ADDR (HOST:PORT) at the window's start and end.
    #[arg(help_heading = "Target", long, value_name = "ADDR", requires = "addr")]
    pub agent: Option<String>,
    /// With --agent: a file holding the agent's bearer token.
    #[arg(help_heading = "Target", long, value_name = "FILE", requires = "agent")]
    pub agent_token: Option<PathBuf>,
    /// With --addr: the server's process id, so its CPU, memory and threads are measured too.
    #[arg(help_heading = "Target", long, value_name = "PID", requires = "addr")]
    pub server_pid: Option<u32>,
    /// Append one CSV row to FILE (header written when the file is new).
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the JSON summary to FILE.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an HdrHistogram interval log (.hlog) to FILE as the run goes, one histogram
    /// per --interval (latency untagged; open loop adds `Tag=raw` service times).
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// Serve the run's own state while it runs at http://ADDR/metrics, in the Prometheus
    /// text format (round trips, errors by kind, open connections, the latency histogram);
    /// loopback unless --metrics-allow-remote. `:0` picks a port (printed on stderr).
    #[arg(help_heading = "Output", long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// With --metrics-listen: serve on an address other than loopback.
    #[arg(help_heading = "Output", long)]
    pub metrics_allow_remote: bool,
    /// With --metrics-listen: keep serving the final state this long after the run, so a
    /// scraper catches its end.
    #[arg(help_heading = "Output", long, value_name = "D", default_value = "0s")]
    pub metrics_linger: String,
    /// No progress line, even on a terminal.
    #[arg(help_heading = "Output", long, short = 'q')]
    pub quiet: bool,
    /// Print the detailed latency percentile spectrum after the summary, as wrk2's
    /// --latency does (HdrHistogram's percentile distribution, in µs; the JSON always has
    /// it as `latency_spectrum`).
    #[arg(help_heading = "Output", long)]
    pub latency: bool,
    /// Source addresses for the connections, used round-robin (e.g. 127.0.0.2,127.0.0.3):
    /// each adds ~28k ports towards one server address.
    #[arg(help_heading = "Connections and churn", long, value_name = "IPS")]
    pub bind: Option<String>,
    /// This process is shard I of N of a run made by several hosts (or processes): it takes
    /// its share of --conns, waits for --start-at, and writes its interval log; merge the
    /// shards' logs with `loadgen merge`. `auto` (or `auto/N`): from a Slurm job array or
    /// step, or a Kubernetes Indexed Job.
    #[arg(help_heading = "Placement and scale", long, value_name = "I/N")]
    pub shard: Option<String>,
    /// When the load starts, the same for every shard: unix seconds or RFC 3339.
    #[arg(help_heading = "Placement and scale", long, value_name = "TIME")]
    pub start_at: Option<String>,

    /// Flags shared with `sweep`.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Flags of every load run, shared by `run` and `sweep`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Measured time (e.g. 500ms, 10s, 2m).
    #[arg(
        help_heading = "Load",
        long,
        short = 'd',
        default_value = "10s",
        allow_hyphen_values = true
    )]
    pub duration: String,
    /// Load that changes over time: stages D:T (a linear ramp from the previous target to
    /// T over D; the first from 0) or D@T (a step to T, held for D), comma-separated, e.g.
    /// 30s:1k,2m:10k,10s@20k,10s:0. The targets are messages per second (open loop) or,
    /// with --stage-target conns, open connections (closed loop). The run lasts as long as
    /// the stages, with no warm-up (put one first); each stage is reported on its own (a
    /// CSV row each). Every stage's length must be a multiple of --interval.
    #[arg(help_heading = "Load", long, value_name = "STAGES", conflicts_with_all = ["duration", "warmup"])]
    pub stages: Option<String>,
    /// What --stages' targets count: rate (messages per second) or conns (open
    /// connections; --conns is then the most).
    #[arg(help_heading = "Load", long, value_enum, value_name = "rate|conns", default_value_t = crate::cli::choice::StageTarget::Rate)]
    pub stage_target: crate::cli::choice::StageTarget,
    /// Unmeasured time before the measured window.
    #[arg(help_heading = "Load", long, default_value = "1s", allow_hyphen_values = true)]
    pub warmup: String,
    /// Client threads, each with its own event loop [default: half the cores when the
    /// server is on this machine (--target, or a local --addr), else every core]. sweep: a
    /// list.
    #[arg(help_heading = "Load", long, short = 't', value_name = "N")]
    pub threads: Option<String>,
    /// Workers of the spawned server (pool workers, event loops, runtime workers, rings)
    /// [default: the model's, see `loadgen targets`; threadpool: one per connection].
    /// sweep: a list.
    #[arg(
        help_heading = "Target",
        long = "server-workers",
        visible_alias = "server-threads",
        value_name = "N"
    )]
    pub server_threads: Option<String>,
    /// Per-message work of the spawned server before each echo (with --target): cpu:D,
    /// wait:D or block:D; D fixed (100us), exp:MEAN or bimodal:FAST,SLOW,P%; steps joined
    /// by + (cpu:20us+wait:exp:1ms). sweep: a list separated by ';'.
    #[arg(help_heading = "Target", long, value_name = "SPEC")]
    pub work: Option<String>,
    /// Seed of every random choice (the server's work durations).
    #[arg(help_heading = "Target", long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Server processes sharing the port (SO_REUSEPORT), each with its own descriptor
    /// limit; with --target. sweep: a list.
    #[arg(help_heading = "Target", long, value_name = "N", default_value = "1")]
    pub server_procs: String,
    /// Run as P shard processes of loadgen on this machine, each with its own descriptor
    /// limit and source address, merged into one report.
    #[arg(help_heading = "Placement and scale", long, value_name = "P", default_value_t = 1)]
    pub procs: u32,
    /// Per-message reply timeout [default: 5s; over UDP 1s]. A stream connection whose
    /// reply is this late is closed and reopened; a UDP datagram counts as lost.
    #[arg(help_heading = "Connections and churn", long, allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// Per-connect timeout.
    #[arg(
        help_heading = "Connections and churn",
        long,
        default_value = "5s",
        allow_hyphen_values = true
    )]
    pub connect_timeout: String,
    /// Length of a reporting interval (progress, per-interval series, interval log).
    #[arg(help_heading = "Output", long, default_value = "1s", allow_hyphen_values = true)]
    pub interval: String,
    /// Free text copied into the report.
    #[arg(help_heading = "Output", long, default_value = "")]
    pub label: String,
    /// CPUs for the spawned server (e.g. 0, 0-1, 0,2).
    #[arg(help_heading = "Placement and scale", long, value_name = "CPUS")]
    pub pin_server: Option<String>,
    /// CPUs for the client threads.
    #[arg(help_heading = "Placement and scale", long, value_name = "CPUS")]
    pub pin_client: Option<String>,
    /// SO_SNDBUF and SO_RCVBUF of every client socket, in bytes, and with --target of the
    /// server's too (default: the kernel's autotuning). Small values exercise short reads
    /// and writes.
    #[arg(help_heading = "Placement and scale", long, value_name = "BYTES")]
    pub sock_buf: Option<String>,
    /// Connection churn: close and reopen each connection after N round trips (1: a new
    /// connection per message, like netperf TCP_CRR).
    #[arg(help_heading = "Connections and churn", long, value_name = "N")]
    pub reconnect_every: Option<u64>,
    /// Connection churn, open loop: R new connections per second on a fixed schedule, each
    /// doing --msgs-per-conn round trips and closing; --conns bounds how many are open at
    /// once. Latency runs from each connection's intended start.
    #[arg(help_heading = "Connections and churn", long, value_name = "R")]
    pub conn_rate: Option<f64>,
    /// With --conn-rate: round trips per connection [default: 1].
    #[arg(help_heading = "Connections and churn", long, value_name = "N")]
    pub msgs_per_conn: Option<u64>,
    /// How the client closes a connection it is done with: fin (orderly; the client's side
    /// then sits in TIME_WAIT) or rst (SO_LINGER 0: no TIME_WAIT).
    #[arg(help_heading = "Connections and churn", long, value_enum, value_name = "fin|rst", default_value_t = crate::cli::choice::CloseMode::Fin)]
    pub close: crate::cli::choice::CloseMode,
    /// The client's I/O engine: epoll (a system call per send and receive) or uring
    /// (io_uring: one system call per loop iteration for all of them; every transport).
    #[arg(
        help_heading = "Placement and scale",
        long,
        value_name = "epoll|uring",
        default_value = "epoll"
    )]
    pub engine: String,
    /// How open-loop sends are timed: sleep (timer only), hybrid (timer, then spin for an
    /// adaptive margin before each send) or spin (busy: one core per client thread).
    #[arg(
        help_heading = "Open loop",
        long,
        value_name = "sleep|hybrid|spin",
        default_value = "hybrid"
    )]
    pub pacing: String,
    /// How open-loop sends are spaced: uniform (one every 1/R) or poisson (exponential
    /// gaps of mean 1/R, seeded by --seed: the arrivals queueing theory assumes). Needs
    /// --rate.
    #[arg(help_heading = "Open loop", long, value_enum, default_value_t = crate::measure::schedule::Arrival::Uniform)]
    pub arrivals: crate::measure::schedule::Arrival,
    /// Kernel receive timestamps (SO_TIMESTAMPING, software) on every read: the reader's
    /// own delay, from a reply's arrival at the socket to loadgen's read of it (TCP and UDP,
    /// either engine). CSV rx_delay_p99_us. Off by default: it turns on the kernel's stamping
    /// of every packet on the host, the server's too, at a cost not shown to be under 3%.
    #[arg(help_heading = "Output", long, value_enum, value_name = "on|off", default_value_t = OnOff::Off)]
    pub rx_timestamps: OnOff,
    /// Runs per configuration, each on a fresh server, one CSV row each; `auto`: until the
    /// 95% interval of the mean throughput is within --ci-target (at least 3 runs,
    /// at most --max-repeat).
    #[arg(help_heading = "Statistics", long, value_name = "N|auto", default_value = "1")]
    pub repeat: String,
    /// With --repeat auto: the most runs per configuration.
    #[arg(help_heading = "Statistics", long, value_name = "N", default_value_t = 10)]
    pub max_repeat: u32,
    /// With --repeat auto: the 95% interval's target half-width, in percent of the mean.
    #[arg(help_heading = "Statistics", long, value_name = "PCT", default_value = "2.5%")]
    pub ci_target: String,
}

/// Flags of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// BASE.csv NEW.csv, or one report with --by.
    #[arg(value_name = "REPORT", required = true, num_args = 1..=2)]
    pub reports: Vec<PathBuf>,
    /// Metrics to compare (throughput, mib, p50, p90, p99, p99.9, p99.99, max, mean,
    /// server_cpu, client_cpu, or any numeric column) [default: throughput,p50,p99,p99.9].
    #[arg(long, value_delimiter = ',')]
    pub metric: Vec<String>,
    /// The band of no change (e.g. 5%), and a CI gate: exit 1 when a gated metric is
    /// `worse` beyond it, or `inconclusive` with its estimate beyond it in the bad direction
    /// [without it: a 5% band, exit 0].
    #[arg(long, value_name = "PCT")]
    pub threshold: Option<String>,
    /// Metrics the gate judges [default: every --metric given, else throughput].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub gate: Vec<String>,
    /// Output format: table, markdown or csv.
    #[arg(long, default_value = "table", value_parser = ["table", "markdown", "csv"])]
    pub format: String,
    /// Within one report: compare the values of this column (e.g. target).
    #[arg(long, requires = "baseline")]
    pub by: Option<String>,
    /// With --by: the value the others are compared against (e.g. mio).
    #[arg(long, requires = "by")]
    pub baseline: Option<String>,
    /// With --threshold: gate even when the two reports come from different machines
    /// (host, kernel or CPU count differ); without it such a comparison is printed but
    /// does not fail.
    #[arg(long)]
    pub across_machines: bool,
}

/// Flags of `plot`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// A CSV report, or an interval log (.hlog).
    #[arg(value_name = "REPORT")]
    pub input: PathBuf,
    /// The SVG file to write. For a CSV report two charts are written: FILE (throughput)
    /// and FILE with `-p99` before the extension (p99 latency).
    #[arg(long, value_name = "FILE.svg")]
    pub out: PathBuf,
    /// Only rows with this message size (default: the first in the report).
    #[arg(long)]
    pub msg_size: Option<u64>,
    /// Chart title.
    #[arg(long)]
    pub title: Option<String>,
}

/// Flags of `agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Where to listen (HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Listen on an address other than loopback (the metrics then reach the network).
    #[arg(long)]
    pub allow_remote: bool,
    /// A file holding the bearer token every request must carry.
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
    /// The server port to report when a request names none (`?port=N`).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

/// Flags of `doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Write the diagnosis as JSON (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Apply the reversible settings (haltpoll polling, the performance governor), saving
    /// the previous values (root).
    #[arg(long, conflicts_with_all = ["reset", "json"])]
    pub tune: bool,
    /// Restore what --tune changed (root).
    #[arg(long, conflicts_with = "json")]
    pub reset: bool,
}

/// Flags of `report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// CSV reports of the study.
    #[arg(value_name = "REPORT.csv", required = true, num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// Interval logs (.hlog) to chart: percentile spectrum, throughput and p99 over time.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub hlog: Vec<PathBuf>,
    /// A report to compare against (else the --by column's values within the reports).
    #[arg(long, value_name = "REPORT.csv")]
    pub baseline: Option<PathBuf>,
    /// Without --baseline: the column whose values are compared (against mio when it is
    /// one of them, else the first).
    #[arg(long, default_value = "target")]
    pub by: String,
    /// The page's title.
    #[arg(long)]
    pub title: Option<String>,
    /// The HTML file to write (`-`: standard output).
    #[arg(long, value_name = "FILE", alias = "out")]
    pub html: PathBuf,
}

/// Flags of `merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Interval logs written with --hdr-log, e.g. one per load host.
    #[arg(value_name = "SHARD.hlog", required = true, num_args = 1..)]
    pub logs: Vec<PathBuf>,
    /// Append a schema-1 row of the merged result.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the merged JSON summary.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Free text copied into the report.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Print the merged latency's detailed percentile spectrum after the summary (as `run
    /// --latency`).
    #[arg(long)]
    pub latency: bool,
}

/// Flags of `sweep`: lists are comma separated.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Models (or `all`).
    #[arg(long, value_name = "LIST", required_unless_present = "addr", conflicts_with = "addr")]
    pub targets: Option<String>,
    /// Instead of models: load the server already running at this address (HOST:PORT,
    /// `[::1]:PORT`, unix:/path, udp://HOST:PORT) with every configuration of the sweep,
    /// e.g. a `--rate` ladder to draw its latency against its load.
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Connection counts (`1,10,100`, `1k`).
    #[arg(long, short = 'c', visible_aliases = ["connections", "concurrency", "vus"], value_name = "LIST")]
    pub conns: String,
    /// Message sizes.
    #[arg(long, value_name = "LIST", default_value = "64")]
    pub msg_size: String,
    /// Depths.
    #[arg(long, value_name = "LIST", default_value = "1")]
    pub depth: String,
    /// Rates (open loop), a list or a ladder FROM..TO/STEPS (`1k..20k/8`: 8 rates evenly
    /// spaced); absent: closed loop.
    #[arg(long, short = 'R', value_name = "LIST")]
    pub rate: Option<String>,
    /// With --rate: the latency objective each run is judged by (PERCENTILE=BOUND, e.g.
    /// p99=5ms); a configuration's rates above its first failing one are skipped.
    #[arg(long, value_name = "SLO", requires = "rate")]
    pub slo: Option<String>,
    /// Transports (tcp, unix, udp), e.g. tcp,udp.
    #[arg(long, value_name = "LIST", default_value = "tcp")]
    pub transport: String,
    /// The CSV report to append to.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// No line per run and no progress bar: only the warnings and where the rows went.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Flags shared with `run` (for threadpool, --server-workers defaults to one worker
    /// per connection).
    #[command(flatten)]
    pub load: LoadArgs,
}

/// A switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}
