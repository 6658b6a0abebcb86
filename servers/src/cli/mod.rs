//! The `echo-server` command line, shared with `loadgen serve` (which re-executes itself to
//! run a model in its own process): parse, start, print `listening ADDR`, wait for SIGINT or
//! SIGTERM, shut down.

use std::io::{self, Write};

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

mod args;
mod group;

pub use args::ServeArgs;

use crate::addr::ListenAddr;
use crate::running::ServerConfig;
use crate::start::start;

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
/// SIGINT or SIGTERM, then shuts down cleanly. On SIGUSR1 it prints the `--work` done so
/// far as one `work ...` line ([`crate::work::done::line`]). With `--procs N`, this process serves too
/// and starts N-1 more on the same port (SO_REUSEPORT, so the kernel spreads connections
/// over them); it prints its line once all of them listen, stops them with itself, and
/// exits with an error if one of them dies, so whoever watches it sees the group fail.
pub fn serve(args: &ServeArgs) -> io::Result<()> {
    // Registered before the server starts, so an early signal is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1])?;
    // Several processes on a Unix socket share the first one's listener (a path cannot be
    // bound twice); on TCP each binds the port with SO_REUSEPORT.
    let shared_unix = match (&args.addr, args.procs > 1) {
        (ListenAddr::Unix(_) | ListenAddr::SeqPacket(_), true) => {
            Some(group::inheritable_listener(&args.addr, args.backlog)?)
        }
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
        let mut stop = false;
        for signal in signals.pending() {
            if signal == SIGUSR1 {
                // The work done so far, for loadgen to report beside what was asked.
                let mut out = io::stdout().lock();
                writeln!(out, "{}", crate::work::done::line(&crate::work::done::snapshot()))?;
                out.flush()?;
            } else {
                stop = true;
            }
        }
        if stop {
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
