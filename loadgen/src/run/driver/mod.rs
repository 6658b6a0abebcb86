//! The client driver: one thread's event loop over its share of the connections.
//!
//! One loop serves every mode; the mode is a value ([`Schedule`](crate::measure::schedule::Schedule)):
//! closed loop keeps `depth` messages in flight per connection, open loop sends each message
//! at its intended time (bounded by `depth` in flight) and measures latency from that time.
//! Per message the loop makes one `write` and (usually) one `read`, two clock reads,
//! payload fill and check, and a histogram record: no lock, no channel send and no
//! allocation. Once per interval it sends its [`Interval`] to the main thread.
//!
//! The rooms: [`engine`] (the I/O engine, epoll or io_uring: one value that waits for the
//! sockets and moves their bytes; nothing else in the driver knows which it is),
//! [`socket`] (the socket kinds and how a connect starts and ends), [`conn`]
//! (per-connection framing: what is sent, what must come back, what it measured),
//! [`datagram`] (the same over UDP), [`inflight`] (a UDP connection's datagrams in flight:
//! losses, reordering), [`wire`](crate::measure::wire) (the UDP header and probe), [`timer`] (sub-millisecond
//! open-loop wake-ups), [`event_loop`] (the loop itself, with the connection phase and
//! reconnects). A transport, an engine or a mode is a value the one loop is parameterised
//! by, not a copy of the loop.

mod conn;
mod datagram;
mod engine;
mod event_loop;
mod inflight;
mod pacer;
mod shared;
mod socket;
mod timer;

use std::io;
use std::sync::mpsc::Sender;

use servers::ListenAddr;

pub(crate) use shared::{Shared, ThreadOutput};

use crate::config::RunConfig;
use crate::measure::record::Interval;

/// Splits the connection ids `ids` over `threads`: thread `t` gets `lo + t, lo + t +
/// threads, ...` (the order [`ThreadSchedule`](crate::measure::schedule::ThreadSchedule) relies on).
pub(crate) fn assign(ids: std::ops::Range<u32>, threads: usize) -> Vec<Vec<u32>> {
    let threads = threads.clamp(1, ids.len().max(1)) as u32;
    (0..threads)
        .map(|t| (ids.start + t..ids.end).step_by(threads as usize).collect())
        .collect()
}

/// Runs client thread `thread` of `threads` over `conn_ids` against `addr` until the run
/// ends; intervals go to `tx`. Always meets the other threads at the barrier, even when it
/// fails to set up.
pub(crate) fn run_thread(
    thread: (usize, usize),
    conn_ids: Vec<u32>,
    cfg: &RunConfig,
    addr: &ListenAddr,
    shared: &Shared,
    tx: &Sender<Interval>,
) -> io::Result<ThreadOutput> {
    if let Some(cpus) = &cfg.pin_client {
        if let Err(e) = crate::os::sys::set_affinity(None, cpus) {
            shared.connected.wait();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot pin a client thread (--pin-client): {e}"),
            ));
        }
    }
    match event_loop::Client::new(thread, conn_ids, cfg, addr, shared, tx) {
        Ok(mut client) => client.run(),
        Err(e) => {
            shared.connected.wait();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_spread_round_robin() {
        assert_eq!(assign(0..5, 2), vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(assign(0..1, 4), vec![vec![0]]);
        assert_eq!(assign(10..13, 2), vec![vec![10, 12], vec![11]]);
    }
}
