//! The `echo-server` command line, shared with `loadgen serve` (which re-executes itself to
//! run a model in its own process): parse, start, print `listening ADDR`, wait for SIGINT or
//! SIGTERM, shut down.

use std::io::{self, Write};

use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

mod group;

use crate::addr::ListenAddr;
use crate::model::{Model, UnknownModel};
use crate::running::{ServerConfig, DEFAULT_BACKLOG};
use crate::start::start;

/// Flags of one echo server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Concurrency model: thread-per-conn, threadpool, mio, tokio or uring.
    #[arg(long, value_parser = parse_model)]
    pub model: Model,
    /// Address to listen on: HOST:PORT, [V6]:PORT, unix:/path or udp://HOST:PORT (port 0:
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

fn parse_model(s: &str) -> Result<Model, String> {
    s.parse().map_err(|e: UnknownModel| e.to_string())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds between 0 and 86400")),
    }
}

fn parse_addr(s: &str) -> Result<ListenAddr, String> {
    s.parse().map_err(|e: crate::addr::BadAddr| e.to_string())
}

/// Parses the command line into `T`, or exits: help and version go to stdout with code 0;
/// a usage error becomes one line on stderr (clap's message with its details folded in,
/// without the usage block) and exit code 2.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            std::process::exit(2);
        }
    }
}

/// Folds a multi-line clap message into one line, dropping the usage and help hints.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The exit code of a failed [`serve`]: 2 for a setting this machine cannot honour
/// (`InvalidInput`, e.g. more pool threads than the thread budget), 3 for a model this
/// kernel cannot run (`Unsupported`: io_uring missing or disabled), else 1.
pub fn exit_code(e: &io::Error) -> u8 {
    match e.kind() {
        io::ErrorKind::InvalidInput => 2,
        io::ErrorKind::Unsupported => 3,
        _ => 1,
    }
}

/// Starts the server, prints exactly one line `listening <addr>` on stdout, serves until
/// SIGINT or SIGTERM, then shuts down cleanly. With `--procs N`, this process serves too
/// and starts N-1 more on the same port (SO_REUSEPORT, so the kernel spreads connections
/// over them); it prints its line once all of them listen, stops them with itself, and
/// exits with an error if one of them dies, so whoever watches it sees the group fail.
pub fn serve(args: &ServeArgs) -> io::Result<()> {
    // Registered before the server starts, so an early signal is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    // Several processes on a Unix socket share the first one's listener (a path cannot be
    // bound twice); on TCP each binds the port with SO_REUSEPORT.
    let shared_unix = match (&args.addr, args.procs > 1) {
        (ListenAddr::Unix(_), true) => Some(group::inheritable_listener(&args.addr, args.backlog)?),
        _ => None,
    };
    let config = ServerConfig {
        addr: args.addr.clone(),
        threads: args.threads.map(|t| t as usize),
        backlog: args.backlog,
        sock_buf: args.sock_buf.map(|b| b as usize),
        reuse_port: args.reuse_port || args.procs > 1,
        listen_fd: match &shared_unix {
            Some(l) => Some(group::dup_raw(l)?),
            None => args.listen_fd,
        },
        allow_remote: args.allow_remote,
        source_rate: args.source_rate,
        peer_idle: std::time::Duration::from_secs_f64(args.peer_idle),
        work: args.work.clone().map(|spec| {
            std::sync::Arc::new(crate::work::Work {
                spec,
                seed: args.seed,
                msg_size: args.msg_size as usize,
            })
        }),
        ..ServerConfig::default()
    };
    let server = start(args.model, &config)?;
    let mut others = group::spawn_others(args, server.local_addr(), shared_unix.as_ref())?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening {}", server.local_addr())?;
        out.flush()?;
    }
    let died = loop {
        if signals.pending().next().is_some() {
            break None;
        }
        if let Some(status) = others.exited() {
            break Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    others.stop();
    drop(shared_unix);
    server.shutdown()?;
    match died {
        Some(status) => Err(io::Error::other(format!(
            "a server process of the group exited ({status})"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_messages_fold_into_one_line() {
        let msg = "error: the following required arguments were not provided:\n  --model <MODEL>\n\nUsage: echo-server --model <MODEL>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(msg),
            "error: the following required arguments were not provided: --model <MODEL>"
        );
    }
}
