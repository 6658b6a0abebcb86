//! What a client thread shares with the others and with the main thread (the stop flag,
//! the common start, the barrier, the counters of the progress line), what it hands back at
//! the end, and the connection phase's pace: a leaf the loop and the run both use.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::measure::record::Interval;

/// Connects in flight at once per thread, so a burst does not overflow the listen backlog.
pub(crate) const CONNECT_WINDOW: usize = 64;

/// The longest the connection phase may last for a thread holding `conns` connections: one
/// `--connect-timeout` per round of [`CONNECT_WINDOW`] first attempts, plus one for
/// retries. Past it the load starts on the connections that are open; the others keep
/// retrying (with back-off) during the run and are counted.
pub(crate) fn connect_phase_limit(conns: usize, connect_timeout: Duration) -> Duration {
    let rounds = conns.div_ceil(CONNECT_WINDOW).max(1) as u32;
    connect_timeout * (rounds + 1)
}

/// State shared by the client threads and the main thread (touched once per run, per
/// connect or close, or per loop iteration; never per message).
#[derive(Debug)]
pub(crate) struct Shared {
    /// Set to stop every thread early (Ctrl-C, server died).
    pub(crate) stop: AtomicBool,
    /// The common start: set by the first thread past the barrier.
    pub(crate) start: OnceLock<Instant>,
    /// Where the threads wait for each other once their connection phase is over.
    pub(crate) connected: Gate,
    /// Connections open right now, over all threads.
    pub(crate) up: AtomicUsize,
    /// Failed connect attempts so far, over all threads (for the progress line).
    pub(crate) connect_failures: AtomicU64,
    /// Successful connects so far, over all threads: with connection churn, connections
    /// come and go, and the server is alive while new ones open.
    pub(crate) connects: AtomicU64,
    /// `--start-at`: when the load must start.
    pub(crate) start_at: Option<Instant>,
    /// Cleared intervals for the client threads to record the next one into: the main
    /// thread refills it with the ones it has merged (see [`Shared::recycle`]).
    pub(crate) blanks: Mutex<Vec<Interval>>,
}

impl Shared {
    /// Shared state for `threads` client threads, the load starting at `start_at` (else as
    /// soon as every thread has connected).
    pub(crate) fn new(threads: usize, start_at: Option<Instant>) -> Self {
        Shared {
            stop: AtomicBool::new(false),
            start: OnceLock::new(),
            connected: Gate::new(threads),
            up: AtomicUsize::new(0),
            connect_failures: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            start_at,
            // Two per thread to begin with: the first boundaries need no allocation either.
            blanks: Mutex::new((0..2 * threads).map(|_| Interval::new(None)).collect()),
        }
    }

    /// Clears an interval the main thread has merged and keeps it for a client thread's
    /// next one (at most a few per thread are kept).
    pub(crate) fn recycle(&self, mut iv: Interval, threads: usize) {
        let mut blanks = self.blanks.lock().unwrap_or_else(|e| e.into_inner());
        if blanks.len() < 4 * threads {
            iv.clear();
            blanks.push(iv);
        }
    }
}

/// A barrier that can also be opened early: the threads wait until all of them have
/// arrived, or until [`Gate::open`] (a client thread could not be started, so not all of
/// them ever will).
#[derive(Debug)]
pub(crate) struct Gate {
    arrived: Mutex<(usize, bool)>,
    all_in: Condvar,
    expected: usize,
}

impl Gate {
    /// A gate for `expected` threads.
    pub(crate) fn new(expected: usize) -> Self {
        Gate {
            arrived: Mutex::new((0, false)),
            all_in: Condvar::new(),
            expected,
        }
    }

    /// Arrives and waits for the others (or for the gate to be opened).
    pub(crate) fn wait(&self) {
        let mut state = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        if state.0 >= self.expected {
            state.1 = true;
            self.all_in.notify_all();
        }
        while !state.1 {
            state = self.all_in.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Lets every waiting and future thread through.
    pub(crate) fn open(&self) {
        self.arrived.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.all_in.notify_all();
    }
}

/// What a thread returns at the end (its intervals went to the main thread as it ran).
#[derive(Debug)]
pub(crate) struct ThreadOutput {
    /// Connect latency of every successful connect, in ns.
    pub(crate) connect: Histogram<u64>,
    /// Time from a connection's (intended) start to its first echoed byte, ns; window only.
    pub(crate) first_byte: Histogram<u64>,
    /// Connections open when the load started.
    pub(crate) conns_ok: usize,
    /// Messages completed in the window, per connection (connection id, count).
    pub(crate) per_conn: Vec<(u32, u64)>,
    /// CPU time this thread used inside the measured window.
    pub(crate) window_cpu: Duration,
    /// Wall time of it spent spinning to pace sends (`hybrid`, `spin`): CPU that is not
    /// work, so a spinning thread is not taken for a saturated one.
    pub(crate) window_spin: Duration,
    /// TCP_INFO over the window (TCP connections only).
    pub(crate) tcp: Option<TcpWindow>,
    /// Open loop: gaps between the thread's first sends in the window, in units of the
    /// thread's promised mean gap (the arrivals check).
    pub(crate) send_gaps: Vec<f64>,
}

/// What TCP_INFO says about a thread's connections over the window.
#[derive(Debug, Clone, Default)]
pub(crate) struct TcpWindow {
    /// Segments retransmitted inside the window, over the connections open at both ends.
    pub(crate) retransmits: u64,
    /// Each open connection's smoothed RTT at the window's end, µs.
    pub(crate) rtt_us: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opened_gate_lets_a_partial_group_through() {
        let gate = Gate::new(3);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| gate.wait());
            std::thread::sleep(Duration::from_millis(20));
            assert!(!waiter.is_finished(), "one of three arrived: it waits");
            gate.open();
            waiter.join().unwrap();
        });
        gate.wait(); // opened: no wait
    }

    #[test]
    fn the_connection_phase_is_bounded_by_rounds_of_first_attempts() {
        let t = Duration::from_secs(1);
        assert_eq!(connect_phase_limit(1, t), Duration::from_secs(2));
        assert_eq!(connect_phase_limit(150, t), Duration::from_secs(4));
        assert_eq!(connect_phase_limit(5000, t), Duration::from_secs(80));
    }
}
