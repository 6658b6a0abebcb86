//! What the server and the client cost during the measured window: readings of both at the
//! window's start and end, the server's peak thread count, and its last reading (kept for
//! when it has exited by the end).

use std::time::{Duration, Instant};

use crate::proc::{self, ProcSample};
use crate::report::ServerCost;
use crate::sys::{self, SelfUsage};

/// How often a watch loop looks at the run: the stop conditions, the progress line, the
/// server's peak threads.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// One reading of both sides.
type Reading = (SelfUsage, Option<ProcSample>);

/// Where the server's readings come from.
#[derive(Debug, Clone)]
pub(crate) enum ServerProbe {
    /// A process on this machine: `/proc/<pid>`, sampled as the run goes.
    Local(u32),
    /// A `loadgen agent` on the server's host, read at the window's start and end only.
    Agent {
        /// The agent's address.
        addr: String,
        /// The server's port on its host.
        port: u16,
        /// The bearer token, if the agent wants one.
        token: Option<String>,
    },
}

impl ServerProbe {
    /// A window reading: for a local process, its descendants found by a walk over every
    /// process (exact; see [`proc::sample_exact`]).
    fn sample(&self) -> Option<ProcSample> {
        match self {
            ServerProbe::Local(pid) => proc::sample_exact(*pid),
            // An unreachable agent is an empty reading, never a failed run.
            ServerProbe::Agent { addr, port, token } => crate::agent::read(addr, *port, token.as_deref()).ok(),
        }
    }
}

/// Readings taken as the run goes.
#[derive(Debug)]
pub(crate) struct Cost {
    server: Option<ServerProbe>,
    at_start: Option<Reading>,
    at_end: Option<Reading>,
    last_server: Option<ProcSample>,
    peak_threads: u64,
}

impl Cost {
    /// Readings of this process and of the server, when it can be read.
    pub(crate) fn new(server: Option<ServerProbe>) -> Self {
        Cost {
            server,
            at_start: None,
            at_end: None,
            last_server: None,
            peak_threads: 0,
        }
    }

    fn read(&self) -> Reading {
        (sys::self_usage(), self.server.as_ref().and_then(ServerProbe::sample))
    }

    /// One step of a watch loop (a run's, or the parent's of shard processes):
    /// [`tick`](Self::tick), then sleep until the next tick ([`TICK`]) or the next reading due,
    /// whichever is sooner.
    pub(crate) fn tick_and_wait(&mut self, now: Instant, window: Option<(Instant, Instant)>) {
        let next = self.tick(now, window);
        std::thread::sleep(next.map_or(TICK, |t| TICK.min(t.saturating_duration_since(now))));
    }

    /// Samples the server (peak threads); takes the window readings when their time has
    /// come. Returns the next instant it needs a reading at, if any is still to come.
    pub(crate) fn tick(&mut self, now: Instant, window: Option<(Instant, Instant)>) -> Option<Instant> {
        // A local process is sampled every tick (its peak thread count); an agent only at
        // the window's ends (two requests a run).
        if let Some(s) = match self.server {
            Some(ServerProbe::Local(pid)) => proc::sample(pid),
            _ => None,
        } {
            self.peak_threads = self.peak_threads.max(s.threads);
            self.last_server = Some(s);
        }
        let (start, end) = window?;
        if self.at_start.is_none() {
            if now < start {
                return Some(start);
            }
            self.at_start = Some(self.read());
            self.note_threads(self.at_start);
        }
        if self.at_end.is_none() {
            if now < end {
                return Some(end);
            }
            self.at_end = Some(self.read());
            self.note_threads(self.at_end);
        }
        None
    }

    /// Keeps the peak thread count and the last reading of a window reading.
    fn note_threads(&mut self, reading: Option<Reading>) {
        if let Some(s) = reading.and_then(|r| r.1) {
            self.peak_threads = self.peak_threads.max(s.threads);
            self.last_server = Some(s);
        }
    }

    /// The cost once the run is over: (client CPU seconds in the window, client peak RSS
    /// in KiB, the server's cost when its pid is known).
    pub(crate) fn finish(&mut self) -> (f64, u64, Option<ServerCost>) {
        // The run can end before the tick that was due at the window's end: read now (an
        // agent too). The window's end is only ever a fresh reading: falling back on the
        // last one (for an agent, the window's start) would give a CPU of zero where the
        // truth is unknown (an agent that died mid-window, tested).
        let fresh = (sys::self_usage(), self.server.as_ref().and_then(ServerProbe::sample));
        let end = self.at_end.unwrap_or(fresh);
        // Peak memory and threads may come from the last reading that worked.
        let now = (fresh.0, fresh.1.or(self.last_server));
        let client_cpu_s = self
            .at_start
            .map_or(0.0, |(a, _)| end.0.cpu.saturating_sub(a.cpu).as_secs_f64());
        let server = self.server.as_ref().map(|_| ServerCost {
            // Unknown (empty), not zero, when either end of the window could not be read, or
            // when the readings went backwards (a process tree whose exited children were
            // never waited for takes their CPU with them): the difference would be a lie.
            cpu_s: match (self.at_start.and_then(|s| s.1), end.1) {
                (Some(a), Some(b)) => Some(b.cpu_s - a.cpu_s).filter(|d| *d >= 0.0),
                _ => None,
            },
            peak_rss_kib: now.1.map(|s| s.peak_rss_kib),
            peak_threads: (self.peak_threads > 0).then_some(self.peak_threads),
            host_cpu: match (self.at_start.and_then(|s| s.1?.host), end.1.and_then(|s| s.host)) {
                (Some(a), Some(b)) => Some(b.since(&a)),
                _ => None,
            },
            listen: now.1.and_then(|s| s.listen),
        });
        (client_cpu_s, now.0.peak_rss_kib, server)
    }
}
