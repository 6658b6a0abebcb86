//! The flags of one echo server (clap derive), with their value parsers.

use clap::Args;

use crate::addr::ListenAddr;
use crate::model::Model;
use crate::running::DEFAULT_BACKLOG;

/// Flags of one echo server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Concurrency model.
    #[arg(long, value_enum, ignore_case = true)]
    pub model: Model,
    /// Address to listen on: HOST:PORT, `[::1]:PORT`, unix:/path, seqpacket:/path or udp://HOST:PORT (port 0:
    /// any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_parser = parse_addr)]
    pub addr: ListenAddr,
    /// Workers: pool workers (threadpool, default 16), event loops (mio, default 1),
    /// runtime workers (tokio, default 1 = current-thread runtime), rings (uring, default
    /// 1); thread-per-conn ignores it. `--threads` is the same flag, kept for scripts.
    #[arg(long = "workers", visible_alias = "threads", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub threads: Option<u32>,
    /// Listen backlog (capped by net.core.somaxconn).
    #[arg(long, default_value_t = DEFAULT_BACKLOG)]
    pub backlog: u32,
    /// SO_SNDBUF and SO_RCVBUF of every connection, in bytes (default: the kernel's
    /// autotuning); small values exercise short reads and writes.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=(64 << 20)))]
    pub sock_buf: Option<u32>,
    /// Server processes sharing the port through SO_REUSEPORT (TCP), each with its own
    /// descriptor limit; this one is the first and stops the others with itself.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub procs: u32,
    /// UDP: bind an address other than loopback. Echo over UDP reflects datagrams to
    /// whatever source they claim (RFC 862): with this flag the server drops datagrams from
    /// ports below 1024 and from broadcast or multicast sources, and limits each source's
    /// rate (--source-rate).
    #[arg(long)]
    pub allow_remote: bool,
    /// UDP with --allow-remote: datagrams per second answered per source address (0: no
    /// limit).
    #[arg(long, value_name = "N", default_value_t = crate::running::DEFAULT_SOURCE_RATE)]
    pub source_rate: u32,
    /// UDP, thread-per-conn: a peer's thread ends after this many seconds without a
    /// datagram.
    #[arg(long, value_name = "SECS", default_value_t = crate::running::DEFAULT_PEER_IDLE.as_secs_f64(),
          value_parser = parse_secs)]
    pub peer_idle: f64,
    /// Per-message work before each echo: cpu:D, wait:D or block:D, D fixed (100us),
    /// exp:MEAN or bimodal:FAST,SLOW,P%, steps joined by + (e.g. cpu:20us+wait:exp:1ms).
    /// Streams (TCP, Unix): a message is --msg-size bytes.
    #[arg(long, value_name = "SPEC", value_parser = parse_work)]
    pub work: Option<crate::work::WorkSpec>,
    /// With --work: bytes per message of a stream.
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub msg_size: u64,
    /// With --work: seed of every connection's random durations (runs repeat).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Bind with SO_REUSEPORT (used for the other processes of --procs, TCP).
    #[arg(long, hide = true)]
    pub reuse_port: bool,
    /// Serve the Unix listener inherited as this descriptor (the other processes of
    /// --procs, Unix sockets).
    #[arg(long, hide = true)]
    pub listen_fd: Option<i32>,
}

fn parse_work(s: &str) -> Result<crate::work::WorkSpec, String> {
    s.parse().map_err(|e: crate::work::BadWork| e.to_string())
}

/// The models as clap's choices, from the one table: `--help` lists and describes every
/// model, and a new one appears there by itself.
impl clap::ValueEnum for Model {
    fn value_variants<'a>() -> &'a [Self] {
        &Model::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(
            clap::builder::PossibleValue::new(self.name())
                .help(self.description())
                .aliases(self.aliases().iter().copied()),
        )
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds between 0 and 86400")),
    }
}

fn parse_addr(s: &str) -> Result<ListenAddr, String> {
    match s.parse().map_err(|e: crate::addr::BadAddr| e.to_string())? {
        // A usage error, not a failure to start: no model could ever serve it.
        ListenAddr::Icmp(_) => Err("the kernel answers ICMP echo itself: no model listens on icmp:// \
             (load the kernel's echo with loadgen --addr icmp://HOST; give HOST:PORT, unix:/path or udp://HOST:PORT here)"
            .into()),
        addr => Ok(addr),
    }
}
