//! What the server and the client cost during the measured window: readings of both at the
//! window's start and end (each stamped with when it was really taken, and brought to the
//! window when that was late), the server's peak thread count, and its last reading (kept
//! for when it has exited by the end).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::os::machine::{self, MachineCpu};
use crate::os::proc::{self, ProcSample};
use crate::os::sys::{self, SelfUsage};
use crate::report::ServerCost;

/// How often a watch loop looks at the run: the stop conditions, the progress line, the
/// server's peak threads.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// How often a watch loop looks while the window is not yet known (the connections are
/// opening): the thread taking the window's readings starts when it is, and with
/// `--warmup 0` the window begins then (a tick late, a 300 ms window's readings were
/// 0.22 s apart).
const BEFORE_WINDOW_TICK: Duration = Duration::from_millis(2);

/// One reading of both sides, and when it was taken.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    client: SelfUsage,
    server: Option<ProcSample>,
    /// This machine's CPU by kind.
    machine: Option<MachineCpu>,
}

/// Window readings further apart or closer than this share of the window are named in a
/// warning (a tick's lateness, 50 ms of a 2 s window, is within it).
const SPAN_TOLERANCE: f64 = 0.10;

/// Readings closer than this share of the window are too few to scale from: the server's
/// CPU is left unknown.
const SPAN_FLOOR: f64 = 0.25;

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
            ServerProbe::Agent { addr, port, token } => crate::run::remote::read(addr, *port, token.as_deref()).ok(),
        }
    }
}

/// Readings taken as the run goes.
#[derive(Debug)]
pub(crate) struct Cost {
    server: Option<ServerProbe>,
    /// The thread taking the window's readings, once the window is known.
    reader: Option<WindowReader>,
    /// The window is known (its reader started, or could not be: no thread to spare).
    window_known: bool,
    at_start: Option<Reading>,
    at_end: Option<Reading>,
    last_server: Option<ProcSample>,
    peak_threads: u64,
    /// When the server was last sampled for its peak threads (once a [`TICK`]).
    sampled: Option<Instant>,
}

/// Takes one reading of both sides now, stamped with the middle of the time it took (a
/// walk over a forking server's processes takes milliseconds).
fn read(server: Option<&ServerProbe>) -> Reading {
    let before = Instant::now();
    let (client, server) = (sys::self_usage(), server.and_then(ServerProbe::sample));
    Reading {
        at: before + before.elapsed() / 2,
        client,
        server,
        machine: machine::machine_cpu(),
    }
}

/// How long before the window's end its reading is taken: at the end itself the client
/// closes its connections, and a forking server's per-connection processes that exited but
/// were not yet waited for are in no reading (measured: the server's CPU read backwards,
/// so unknown, or at half). At most a tenth of the window; the span is scaled to it.
const END_EARLY: Duration = Duration::from_millis(50);

/// The thread that takes the window's two readings on time, at the priority the run had
/// before its watch loop yielded to the client threads. The watch loop itself took them
/// once: at its lowered priority, sampling a forking server's 90 processes every tick on a
/// machine busy with the load, it fell 1.85 s behind, and both readings came at the
/// window's end (CI: 0.05 s of client CPU where its busiest thread alone ran 0.64 s; the
/// server's 0.00 s).
#[derive(Debug)]
struct WindowReader {
    /// How long before the window's end it reads the end ([`END_EARLY`], or a tenth of a
    /// shorter window).
    early: Duration,
    /// Dropped to tell the thread the run is over (it reads the end now, or not at all).
    over: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<(Option<Reading>, Option<Reading>)>,
}

impl WindowReader {
    fn start(server: Option<ServerProbe>, (start, end): (Instant, Instant)) -> Option<WindowReader> {
        let (over, rx) = mpsc::channel::<()>();
        // Sleeps until `at`; false when the run ended before it.
        let until = move |at: Instant| {
            matches!(
                rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                Err(mpsc::RecvTimeoutError::Timeout)
            ) || Instant::now() >= at
        };
        let early = END_EARLY.min(end.saturating_duration_since(start) / 10);
        let thread = sys::spawn_unyielded("window-cost", move || {
            if !until(start) {
                return (None, None);
            }
            let first = read(server.as_ref());
            // The end is read here only when the run lasts to it; else `finish` reads it.
            (Some(first), until(end - early).then(|| read(server.as_ref())))
        })
        .ok()?;
        Some(WindowReader { early, over, thread })
    }

    /// The readings it took (the run is over: it stops waiting).
    fn join(self) -> (Option<Reading>, Option<Reading>) {
        drop(self.over);
        self.thread.join().unwrap_or((None, None))
    }
}

impl Cost {
    /// Readings of this process and of the server, when it can be read.
    pub(crate) fn new(server: Option<ServerProbe>) -> Self {
        Cost {
            server,
            reader: None,
            window_known: false,
            at_start: None,
            at_end: None,
            last_server: None,
            peak_threads: 0,
            sampled: None,
        }
    }

    /// One step of a watch loop (a run's, or the parent's of shard processes):
    /// [`tick`](Self::tick), then sleep until the next tick ([`TICK`]; shorter until the
    /// window is known).
    pub(crate) fn tick_and_wait(&mut self, window: Option<(Instant, Instant)>) {
        self.tick(window);
        std::thread::sleep(if self.window_known { TICK } else { BEFORE_WINDOW_TICK });
    }

    /// Samples the server (peak threads); starts the thread that takes the window's
    /// readings once the window is known.
    fn tick(&mut self, window: Option<(Instant, Instant)>) {
        // A local process is sampled every tick (its peak thread count); an agent only at
        // the window's ends (two requests a run).
        let due = self.sampled.is_none_or(|t| t.elapsed() >= TICK);
        if let Some(s) = match self.server {
            Some(ServerProbe::Local(pid)) if due => {
                self.sampled = Some(Instant::now());
                proc::sample(pid)
            }
            _ => None,
        } {
            self.peak_threads = self.peak_threads.max(s.threads);
            self.last_server = Some(s);
        }
        if let (false, Some(window)) = (self.window_known, window) {
            // No thread to spare: the window's CPU stays unknown (empty), never a guess.
            self.reader = WindowReader::start(self.server.clone(), window);
            self.window_known = true;
        }
    }

    /// Keeps the peak thread count and the last reading of a window reading.
    fn note_threads(&mut self, reading: Option<Reading>) {
        if let Some(s) = reading.and_then(|r| r.server) {
            self.peak_threads = self.peak_threads.max(s.threads);
            self.last_server = Some(s);
        }
    }

    /// The cost once the run is over, as read (bring it to the window with
    /// [`WindowCost::fit`]).
    pub(crate) fn finish(&mut self) -> WindowCost {
        // The run can end before the tick that was due at the window's end: read now (an
        // agent too). The window's end is only ever a fresh reading: falling back on the
        // last one (for an agent, the window's start) would give a CPU of zero where the
        // truth is unknown (an agent that died mid-window, tested).
        let mut early = Duration::ZERO;
        if let Some(reader) = self.reader.take() {
            early = reader.early;
            (self.at_start, self.at_end) = reader.join();
            self.note_threads(self.at_start);
            self.note_threads(self.at_end);
        }
        let fresh = read(self.server.as_ref());
        let end = self.at_end.unwrap_or(fresh);
        // Peak memory and threads may come from the last reading that worked.
        let now = fresh.server.or(self.last_server);
        let client_cpu_s = self
            .at_start
            .map_or(0.0, |a| end.client.cpu.saturating_sub(a.client.cpu).as_secs_f64());
        let server = self.server.as_ref().map(|_| ServerCost {
            // Unknown (empty), not zero, when either end of the window could not be read, or
            // when the readings went backwards (a process tree whose exited children were
            // never waited for takes their CPU with them): the difference would be a lie.
            cpu_s: match (self.at_start.and_then(|s| s.server), end.server) {
                (Some(a), Some(b)) => Some(b.cpu_s - a.cpu_s).filter(|d| *d >= 0.0),
                _ => None,
            },
            peak_rss_kib: now.map(|s| s.peak_rss_kib),
            peak_threads: (self.peak_threads > 0).then_some(self.peak_threads),
            host_cpu: match (
                self.at_start.and_then(|s| s.server?.host),
                end.server.and_then(|s| s.host),
            ) {
                (Some(a), Some(b)) => Some(b.since(&a)),
                _ => None,
            },
            listen: now.and_then(|s| s.listen),
        });
        WindowCost {
            client_cpu_s,
            client_rss_kib: fresh.client.peak_rss_kib,
            server,
            machine: match (self.at_start.and_then(|a| a.machine), end.machine) {
                (Some(a), Some(b)) => Some(b.since(&a)),
                _ => None,
            },
            span: self.at_start.map(|a| end.at.saturating_duration_since(a.at)),
            early: if self.at_end.is_some() { early } else { Duration::ZERO },
            backdated: Duration::ZERO,
        }
    }
}

/// What the measured window cost, from the readings at its ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowCost {
    /// The client's CPU seconds between the readings.
    pub(crate) client_cpu_s: f64,
    /// The client's peak RSS, KiB.
    pub(crate) client_rss_kib: u64,
    /// The server's cost, when it is known which process serves.
    pub(crate) server: Option<ServerCost>,
    /// This machine's CPU by kind in the window.
    pub(crate) machine: Option<MachineCpu>,
    /// How far apart the readings were taken (`None`: the window's start was never read).
    span: Option<Duration>,
    /// How long before the window's end the end reading was planned.
    early: Duration,
    /// How long after the window's end the end reading was taken by design: a window
    /// ended when the last connection went down, read once the wait for it was over.
    pub(crate) backdated: Duration,
}

impl WindowCost {
    /// Brings the CPU figures to the measured window `measured` (the planned window, or up to
    /// the stop): the readings are due at its ends, but a reading taken late (a thread the
    /// machine did not run in time) covers another span, and CPU read over it is scaled by
    /// `measured / span` (the rate over the span, for the window; exact when they agree).
    /// Returns the warning when the span was off by more than [`SPAN_TOLERANCE`]; below
    /// [`SPAN_FLOOR`] of the window the server's CPU is left unknown. `threads_s`, the CPU
    /// the client threads read themselves in the window, is the client's floor (the process
    /// ran at least its threads), and its figure when the span is too short.
    pub(crate) fn fit(mut self, measured: Duration, threads_s: f64) -> (WindowCost, Option<String>) {
        let (Some(span), false) = (self.span, measured.is_zero()) else {
            return (self, None);
        };
        let ratio = span.as_secs_f64() / measured.as_secs_f64();
        if span.is_zero() || ratio < SPAN_FLOOR {
            if let Some(s) = self.server.as_mut() {
                s.cpu_s = None;
                s.host_cpu = None;
            }
            self.machine = None;
            self.client_cpu_s = threads_s;
            let why = format!(
                "the CPU readings meant for the window's ends were taken {} apart, not {} (the thread taking them was not run in time: the machine is overloaded): too short to tell, the server's CPU is unknown and the client's is what its load threads read themselves",
                secs(span),
                secs(measured)
            );
            return (self, Some(why));
        }
        let k = ratio.recip();
        self.client_cpu_s = (self.client_cpu_s * k).max(threads_s);
        let planned = (measured + self.backdated).saturating_sub(self.early);
        if let Some(s) = self.server.as_mut() {
            s.cpu_s = s.cpu_s.map(|c| c * k);
            s.host_cpu = s.host_cpu.map(|h| h.scaled(k));
        }
        self.machine = self.machine.map(|m| m.scaled(k));
        let off = span.abs_diff(planned).as_secs_f64() / measured.as_secs_f64();
        let warning = (off > SPAN_TOLERANCE).then(|| {
            format!(
                "the CPU readings meant for the window's ends were taken {} apart, not {} (the thread taking them was not run in time: the machine is overloaded): the CPU figures are scaled to the window from that span",
                secs(span),
                secs(planned)
            )
        });
        (self, warning)
    }
}

/// A duration as seconds with two decimals.
fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The window's cost brought to the measured window, the machine's use in it (whole runs
/// only: a shard's siblings may share its machine), and the warning when the readings were
/// late.
pub(super) fn window_cost(
    cfg: &crate::config::RunConfig,
    target: &crate::run::target::Target,
    cost: WindowCost,
    measured: Duration,
    outputs: &[crate::run::driver::ThreadOutput],
) -> (WindowCost, Option<crate::report::MachineUse>, Option<String>) {
    let threads_s = outputs.iter().map(|o| o.window_cpu.as_secs_f64()).sum();
    let (cost, late) = cost.fit(measured, threads_s);
    let here = server_here(cfg, target, cost.server.as_ref());
    let cpu_use = (cfg.shard.count == 1)
        .then(|| crate::os::machine::of(cost.machine, measured, cost.client_cpu_s, here))
        .flatten();
    (cost, cpu_use, late)
}

/// Where the server runs, for the machine's use: spawned here, given by `--server-pid`, or
/// found listening here (its CPU then as read), or elsewhere.
pub(crate) fn server_here(
    cfg: &crate::config::RunConfig,
    target: &crate::run::target::Target,
    server: Option<&crate::report::ServerCost>,
) -> crate::os::machine::ServerHere {
    // An agent's server is on its own host unless it listens here too (a local agent).
    let here = match &cfg.target {
        crate::config::TargetSpec::Model(_) => true,
        crate::config::TargetSpec::Addr(_) => cfg.server_pid.is_some() || crate::os::proc::listens_here(&target.addr),
    };
    if here {
        crate::os::machine::ServerHere::Here(server.and_then(|s| s.cpu_s))
    } else {
        crate::os::machine::ServerHere::Elsewhere
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(client_s: f64, server_s: f64, span_s: f64) -> WindowCost {
        WindowCost {
            client_cpu_s: client_s,
            client_rss_kib: 1,
            server: Some(ServerCost {
                cpu_s: Some(server_s),
                ..ServerCost::default()
            }),
            machine: None,
            span: Some(Duration::from_secs_f64(span_s)),
            early: Duration::ZERO,
            backdated: Duration::ZERO,
        }
    }

    #[test]
    fn readings_on_time_are_kept_and_late_ones_brought_to_the_window() {
        let window = Duration::from_secs(2);
        // On time (a tick late): the figures stand, nothing said.
        let (c, w) = read(0.5, 1.0, 2.04).fit(window, 0.4);
        assert!(w.is_none());
        assert!((c.client_cpu_s - 0.5 / 1.02).abs() < 1e-9);
        // Taken 1 s apart in a 2 s window: the rate over that second, for 2 s, and said.
        let (c, w) = read(0.3, 0.8, 1.0).fit(window, 0.4);
        assert!((c.client_cpu_s - 0.6).abs() < 1e-9);
        assert!((c.server.unwrap().cpu_s.unwrap() - 1.6).abs() < 1e-9);
        let w = w.unwrap();
        assert!(w.contains("1.00 s apart, not 2.00 s") && w.contains("scaled"), "{w}");
        // The client threads' own CPU is the client's floor.
        let (c, _) = read(0.1, 0.8, 1.0).fit(window, 0.4);
        assert_eq!(c.client_cpu_s, 0.4);
        // Both readings at the window's end (CI's case): the server unknown, never 0.
        let (c, w) = read(0.05, 0.0, 0.1).fit(window, 0.64);
        assert_eq!(c.server.unwrap().cpu_s, None);
        assert_eq!(c.client_cpu_s, 0.64);
        assert!(w.unwrap().contains("unknown"));
        // The end read 50 ms early, as planned: scaled, nothing said; 250 ms late: said.
        let mut planned = read(0.39, 0.39, 1.95);
        planned.early = END_EARLY;
        let (c, w) = planned.fit(window, 0.0);
        assert!(w.is_none() && (c.client_cpu_s - 0.4).abs() < 1e-9);
        planned.span = Some(Duration::from_millis(1700));
        assert!(planned.fit(window, 0.0).1.unwrap().contains("1.70 s apart, not 1.95 s"));
        // No start reading, or no window: as read.
        let mut never = read(0.0, 0.0, 0.0);
        never.span = None;
        assert!(never.fit(window, 0.0).1.is_none());
        assert!(read(0.2, 0.2, 0.1).fit(Duration::ZERO, 0.0).1.is_none());
    }
}
