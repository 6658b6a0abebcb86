//! Command-line structures (clap derive). They hold raw values only; [`crate::config`]
//! checks them and builds the typed configuration, with errors that name the flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use servers::cli::ServeArgs;

/// Load generator for TCP and Unix-socket echo servers.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator for echo servers: throughput, HdrHistogram latency, CSV reports",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
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
    Run(RunArgs),
    /// List the server models `--target` can start.
    Targets,
    /// Run one echo server in this process (used by `--target`; prints `listening ADDR`).
    #[command(hide = true)]
    Serve(ServeArgs),
}

/// Flags of one load run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Start this echo server model in its own child process (see `loadgen targets`).
    #[arg(long, value_name = "MODEL", conflicts_with = "addr")]
    pub target: Option<String>,
    /// Load an already running echo server: HOST:PORT, [V6]:PORT or unix:/path.
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 100)]
    pub conns: u64,
    /// Measured time (e.g. 500ms, 10s, 2m).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Unmeasured time before the measured window.
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    pub msg_size: u64,
    /// Messages in flight per connection (pipelining).
    #[arg(long, default_value_t = 1)]
    pub depth: u64,
    /// Open loop: total messages per second on a fixed schedule; latency is measured from
    /// each message's intended send time. Absent: closed loop.
    /// `auto`: search for the highest rate meeting --slo.
    #[arg(long, value_name = "R")]
    pub rate: Option<String>,
    /// With `--rate auto`: the latency objective, PERCENTILE=BOUND, e.g. p99=1ms, p99.9=500us.
    #[arg(long, value_name = "SLO")]
    pub slo: Option<String>,
    /// Client threads, each with its own event loop [default: number of cores].
    #[arg(long)]
    pub threads: Option<u64>,
    /// Threads of the spawned server (pool workers, event loops or runtime workers).
    #[arg(long)]
    pub server_threads: Option<u64>,
    /// Per-message reply timeout.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Per-connect timeout.
    #[arg(long, default_value = "5s")]
    pub connect_timeout: String,
    /// Length of a reporting interval (progress, per-interval series).
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// With --addr: the server's process id, so its CPU, memory and threads are measured too.
    #[arg(long, value_name = "PID", requires = "addr")]
    pub server_pid: Option<u32>,
    /// Append one CSV row to FILE (header written when the file is new).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the JSON summary to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an HdrHistogram interval log (.hlog) to FILE as the run goes, one histogram
    /// per --interval (latency untagged; open loop adds `Tag=raw` service times).
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// Free text copied into the report.
    #[arg(long, default_value = "")]
    pub label: String,
    /// No progress line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
}
