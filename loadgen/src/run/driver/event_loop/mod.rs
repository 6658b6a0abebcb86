//! The loop of one client thread: its I/O engine (epoll or io_uring, one value, see
//! [`engine`](super::engine)) over its connections (and, in open loop, a timer), in two
//! phases.
//!
//! 1. **Connection phase.** Connections open at a controlled pace ([`CONNECT_WINDOW`](super::shared::CONNECT_WINDOW)
//!    connects in flight). Every connection gets its first attempt before any failed one
//!    is retried, and the phase ends when every connection's first attempt has ended (open
//!    or failed) or at [`connect_phase_limit`], whichever comes first. Then the thread meets
//!    the others at the barrier.
//! 2. **Load.** Warmup and measured window, until their end or until told to stop.
//!    A connection that fails to open, times out, is reset, or misbehaves is closed,
//!    counted, and reopened (after a back-off when reconnecting keeps failing).
//!
//! Connection churn is a value too ([`Churn`]): with `--reconnect-every N` a connection
//! that completed its N round trips is closed (FIN or RST) and reopened at once; with
//! `--conn-rate` the connections are slots that start idle, and each arrival of the fixed
//! schedule takes a free slot (or waits for one: its latency, measured from its intended
//! start, shows the wait), does its round trips and returns the slot.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use servers::ListenAddr;

mod edges;
mod lifecycle;
mod sending;
mod staging;
mod tcp;

use super::conn::{Conn, Ctx, Framing, Link, SEND_SAMPLE};
use super::engine::{Io, Ready, TIMER};
use super::inflight::{self, InFlight};
use super::pacer::{self, Pacer, Wait};
use super::shared::{connect_phase_limit, Shared, ThreadOutput};
use super::timer::Timer;
use crate::config::{Churn, RunConfig};
use crate::measure::record::{new_histogram, Interval};
use crate::measure::schedule::{Arrivals, Schedule, ThreadSchedule};
use crate::os::sys::thread_cpu;

/// How often timeouts and reconnects are checked.
const SCAN_EVERY: Duration = Duration::from_millis(20);
/// Size of the thread's read and write buffers.
const BUF: usize = 64 * 1024;

/// The mean time between this thread's sends (or connection arrivals) in open loop; a
/// second in closed loop, where nothing is paced.
fn send_gap(cfg: &RunConfig, thread_conns: usize) -> Duration {
    let per_thread = match (cfg.rate, cfg.churn) {
        (Some(rate), _) => rate * thread_conns as f64 / cfg.conns as f64,
        (None, Churn::ConnRate { rate, .. }) => rate / cfg.threads.max(1) as f64,
        _ => 1.0,
    };
    Duration::from_secs_f64(1.0 / per_thread.max(1e-3))
}

/// One client thread's state.
pub(super) struct Client<'a> {
    cfg: &'a RunConfig,
    addr: &'a ListenAddr,
    shared: &'a Shared,
    tx: &'a Sender<Interval>,
    conns: Vec<Conn>,
    ctx: Ctx,
    walk: ThreadSchedule,
    timer: Option<Timer>,
    connecting: usize,
    connect_hist: Histogram<u64>,
    /// End of the current interval, ns after the start.
    boundary_ns: u64,
    /// Thread CPU time when the measured window began.
    window_cpu_start: Option<Duration>,
    /// TCP_INFO retransmissions of the open connections when the window started, by id.
    retrans_start: Vec<(u32, u32)>,
    /// Time spent spinning to pace sends in the measured window, ns.
    window_spin_ns: u64,
    /// Round trips per connection life (`u64::MAX`: no churn).
    lifetime: u64,
    /// `--conn-rate`: this thread's share of the arrivals, and its idle slots.
    arrivals: Option<Arrivals>,
    idle: Vec<usize>,
    /// Connections to reopen as soon as the connect window has room.
    waiting: VecDeque<usize>,
    /// Open loop: how the thread waits for its next send.
    pacer: Pacer,
    /// What the last wait found ready (kept for its capacity).
    ready: Vec<Ready>,
    /// Open loop (a message schedule, not `--conn-rate`): when the next send is due (ns
    /// after the start), so that serving a batch of replies does not hold it back.
    next_send: Option<u64>,
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        // io_uring: the kernel may still use a socket's buffers; the ring keeps each socket
        // until its operations complete (and drains them all when it is dropped).
        for i in 0..self.conns.len() {
            self.close_sock(i);
        }
    }
}

impl<'a> Client<'a> {
    /// Thread `thread` of `threads` over `conn_ids`, nothing opened yet.
    pub(super) fn new(
        (thread, threads): (usize, usize),
        conn_ids: Vec<u32>,
        cfg: &'a RunConfig,
        addr: &'a ListenAddr,
        shared: &'a Shared,
        tx: &'a Sender<Interval>,
    ) -> io::Result<Self> {
        let depth = cfg.depth.max(1);
        let schedule = cfg.schedule();
        let closed = schedule == Schedule::Closed;
        let now = Instant::now();
        let mut conns = make_conns(cfg, addr, &conn_ids, closed, now);
        let (arrivals, idle) = conn_rate_arrivals(cfg, &mut conns, thread, threads);
        let mut io = Io::new(
            cfg.engine,
            cfg.rx_timestamps,
            addr.is_datagram()
                .then_some(cfg.msg_size + cfg.wire_prefix() + ip_header(addr)),
        )?;
        let timer = open_timer(closed && arrivals.is_none(), &mut io)?;
        let warm_ns = cfg.warmup.as_nanos() as u64;
        let thread_conns = conn_ids.len();
        Ok(Client {
            cfg,
            addr,
            shared,
            tx,
            conns,
            ctx: Ctx {
                msg_size: cfg.msg_size,
                depth: depth as u64,
                schedule: schedule.clone(),
                open_loop: cfg.mode() == crate::measure::schedule::Mode::Open,
                start: now,
                warm_ns,
                end_ns: warm_ns + cfg.duration.as_nanos() as u64,
                sending: false,
                cur: Interval::new(None),
                first_byte: new_histogram(),
                rbuf: vec![0; BUF].into_boxed_slice(),
                wbuf: vec![0; BUF.min(cfg.msg_size * depth).max(1) + cfg.wire_prefix()].into_boxed_slice(),
                io,
                send_times: Vec::with_capacity(if closed { 0 } else { SEND_SAMPLE }),
                rx_stamps: cfg.rx_timestamps,
                framing: match addr {
                    _ if addr.is_datagram() => Framing::Datagram,
                    ListenAddr::SeqPacket(_) => Framing::Packet,
                    _ => Framing::Stream,
                },
            },
            ready: Vec::with_capacity(1024),
            next_send: None,
            walk: ThreadSchedule::new(schedule, conn_ids),
            timer,
            connecting: 0,
            connect_hist: new_histogram(),
            boundary_ns: warm_ns,
            window_cpu_start: None,
            retrans_start: Vec::new(),
            window_spin_ns: 0,
            lifetime: cfg.churn.lifetime(),
            arrivals,
            idle,
            waiting: VecDeque::new(),
            pacer: Pacer::new(cfg.pacing, send_gap(cfg, thread_conns)),
        }
        .with_stages())
    }

    /// `--stages` of connections: those not wanted at the start begin closed.
    fn with_stages(mut self) -> Self {
        self.idle_unwanted_at_start();
        self
    }

    /// Both phases; returns what the thread measured besides its intervals.
    pub(super) fn run(&mut self) -> io::Result<ThreadOutput> {
        // Phase 1: every connection gets its first attempt (bounded in time).
        let connect_phase = self.connect_all();
        let conns_ok = self.conns.iter().filter(|c| matches!(c.link, Link::Up)).count();
        self.shared.connected.wait();
        connect_phase?;
        // The first thread through sets the common start: now, or the agreed `--start-at`
        // (waiting for it; a shard that connected too late starts at once, and its log's
        // absolute times say so).
        let start = *self.shared.start.get_or_init(|| match self.shared.start_at {
            Some(at) => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                at.max(Instant::now())
            }
            None => Instant::now(),
        });
        // Connect times of the connection phase counted from this thread's own origin: now
        // from the common start (before it: 0). Left as they were, a connection's first
        // message seemed to wait for a slot until the connect time, which with --warmup 0
        // showed the connection phase as backpressure.
        let shift = start.saturating_duration_since(self.ctx.start).as_nanos() as u64;
        for c in &mut self.conns {
            c.opened_ns = c.opened_ns.saturating_sub(shift);
        }
        self.ctx.start = start;
        if let Some(timer) = self.timer.as_mut() {
            timer.set_start(self.ctx.start);
        }
        self.ctx.sending = true;
        for i in 0..self.conns.len() {
            self.send(i);
        }
        // Phase 2: warmup and measured window.
        let result = self.load();
        let window_cpu = self
            .window_cpu_start
            .map_or(Duration::ZERO, |c| thread_cpu().saturating_sub(c));
        self.flush_interval(None);
        let tcp = self.tcp_window();
        let per_conn = self.conns.iter().map(|c| (c.id, c.msgs)).collect();
        let up = self.conns.iter().filter(|c| matches!(c.link, Link::Up)).count();
        self.shared.up.fetch_sub(up, Ordering::Relaxed);
        result?;
        Ok(ThreadOutput {
            connect: self.connect_hist.clone(),
            first_byte: self.ctx.first_byte.clone(),
            conns_ok,
            per_conn,
            window_cpu,
            window_spin: Duration::from_nanos(self.window_spin_ns),
            tcp,
            send_gaps: self.send_gaps(),
        })
    }

    fn connect_all(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + connect_phase_limit(self.conns.len(), self.cfg.connect_timeout);
        loop {
            let now = Instant::now();
            self.maintain(now);
            let settled = self.conns.iter().all(|c| c.tried);
            if settled || now >= deadline || self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.poll_once(Duration::from_millis(5))?;
        }
    }

    fn load(&mut self) -> io::Result<()> {
        let mut next_scan = Instant::now();
        // The previous iteration's next send: unchanged, this one sent (or started) nothing.
        let mut prev_due = None;
        loop {
            let now = Instant::now();
            let t = now.saturating_duration_since(self.ctx.start).as_nanos() as u64;
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if t >= self.ctx.end_ns {
                if !self.drain_datagrams(now, t, &mut next_scan)? {
                    return Ok(());
                }
                continue;
            }
            let flushed = t >= self.boundary_ns;
            if flushed {
                self.cross_boundary(t);
            }
            let next_due = match self.arrivals {
                Some(_) => self.start_arrivals(now, t),
                None => {
                    self.next_send = self.send_due(t);
                    self.next_send
                }
            };
            // Housekeeping after the sends that are due, not before: a scan of 1000
            // connections takes tens of µs, and at 50 msg/s (a send every 20 ms, as often
            // as the scan) it made sends late.
            let scanned = now >= next_scan;
            if scanned {
                self.follow_stages(now, t);
                self.maintain(now);
                next_scan = now + SCAN_EVERY;
            }
            // Nothing done so far in this iteration: if its wait finds nothing either, the
            // whole iteration was pacing spin (`spin` polls in a loop), not work.
            let quiet = next_due == prev_due && !flushed && !scanned;
            prev_due = next_due;
            let iter_from = t;
            // Wait until the earliest of: next scan, interval boundary, end, next due send
            // (the pacer times the last one precisely; the poll timeout has ms precision).
            // The clock is read again: the sends above took time.
            let (now, t) = (Instant::now(), self.ctx.now_ns());
            let coarse = next_scan.saturating_duration_since(now).min(Duration::from_nanos(
                self.boundary_ns.min(self.ctx.end_ns).saturating_sub(t),
            ));
            match self.pacer.plan(t, next_due, coarse, self.timer.as_mut()) {
                Wait::Spin(until) => {
                    // Replies are read first (a poll that does not block): a loop that only
                    // spun between sends would never read them, and with --depth bounding
                    // what is in flight, sends would stop.
                    let found = self.poll_once(Duration::ZERO)?;
                    // An iteration that found nothing to do before it spun was spin as well.
                    let before = if quiet && found == 0 {
                        self.idle_since(iter_from)
                    } else {
                        0
                    };
                    let (to, on_cpu) = pacer::spin_until(until, self.pacer.shares_core(), || self.ctx.now_ns());
                    self.spun(before + on_cpu, to);
                }
                Wait::Poll(timeout) => {
                    let found = self.poll_once(timeout)?;
                    let now = self.ctx.now_ns();
                    // A poll that does not block and finds nothing is spinning too (`spin`).
                    if timeout.is_zero() && quiet && found == 0 {
                        let idle = self.idle_since(iter_from);
                        self.spun(idle, now);
                    }
                    self.pacer.woke(now);
                }
            }
        }
    }

    /// Waits for readiness (epoll) or completions (io_uring), at most `timeout`, and
    /// serves what came; returns how many sockets (or the timer) it served.
    fn poll_once(&mut self, timeout: Duration) -> io::Result<usize> {
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        self.ctx.io.wait(timeout, &mut ready)?;
        for r in &ready {
            self.serve(*r);
            // A send that fell due while the batch was served goes out now, not after the
            // batch (at 50k msg/s a batch of replies took longer than the gap between sends).
            if let Some(due) = self.next_send {
                let t = self.ctx.now_ns();
                if t >= due && t < self.ctx.end_ns {
                    self.next_send = self.send_due(t);
                }
            }
        }
        let found = ready.len();
        self.ready = ready;
        Ok(found)
    }

    /// Serves one connection that is ready (or the timer).
    fn serve(&mut self, r: Ready) {
        if r.token == TIMER {
            if let Some(t) = &mut self.timer {
                t.clear();
            }
            return;
        }
        let i = r.token;
        match self.conns[i].link {
            Link::Connecting { since } => self.finish_connect(i, since),
            Link::Up => {
                if r.closed {
                    self.conns[i].read_closed = true;
                }
                if r.readable || r.closed {
                    if let Err(failure) = self.conns[i].receive(&mut self.ctx) {
                        return self.fail(i, failure);
                    }
                    if self.conns[i].life_over() {
                        return self.retire(i);
                    }
                }
                self.send(i);
            }
            Link::Down { .. } | Link::Idle => {} // stale event of a closed socket
        }
    }

    /// Sends what connection `i` may send now, if it is open and the load has begun.
    fn send(&mut self, i: usize) {
        if self.ctx.sending && matches!(self.conns[i].link, Link::Up) {
            if let Err(failure) = self.conns[i].send(&mut self.ctx) {
                self.fail(i, failure);
            }
        }
    }

    /// Hands the current interval to the main thread and starts the next one. `t` is the
    /// current time, `None` at the end of the run.
    fn flush_interval(&mut self, t: Option<u64>) {
        let interval_ns = self.cfg.interval.as_nanos().max(1) as u64;
        let next_index = t.map(|t| (t.saturating_sub(self.ctx.warm_ns) / interval_ns) as u32);
        // The finished interval is moved out, not copied (a copy would be ~1.4 MB), and the
        // next one is a blank the main thread cleared (`Shared::blanks`): zeroing fresh
        // histograms here takes a few hundred µs, which at a boundary (where a send is often
        // due too) made that send, or the reply after it, late (measured: one late round
        // trip per second at 50 msg/s). One lock per interval, never per message.
        let blank = self.shared.blanks.try_lock().ok().and_then(|mut b| b.pop());
        let mut fresh = blank.unwrap_or_else(|| Interval::new(None));
        fresh.index = next_index;
        let done = std::mem::replace(&mut self.ctx.cur, fresh);
        // Sent even when empty, so the main thread knows every thread finished the interval.
        // A send error means the main thread is gone: nothing left to report to.
        let _ = self.tx.send(done);
        if let Some(idx) = next_index {
            self.boundary_ns = (self.ctx.warm_ns + (u64::from(idx) + 1) * interval_ns).min(self.ctx.end_ns);
        }
    }
}

/// What an ICMP raw socket may read before the echo (an IPv4 header); nothing elsewhere.
fn ip_header(addr: &ListenAddr) -> usize {
    match addr {
        ListenAddr::Icmp(_) => crate::os::icmp::MAX_IP_HEADER,
        _ => 0,
    }
}

/// The thread's connections, none opened yet; over UDP each with its set of datagrams in
/// flight (closed loop: --depth of them; open loop: as many as the schedule sends within a
/// timeout).
fn make_conns(cfg: &RunConfig, addr: &ListenAddr, conn_ids: &[u32], closed: bool, now: Instant) -> Vec<Conn> {
    let depth = cfg.depth.max(1);
    let in_flight = addr.is_datagram().then(|| {
        let per_conn_rate = cfg.rate.map(|r| r / cfg.conns as f64);
        let slots = inflight::in_flight_slots(depth, per_conn_rate, cfg.reply_timeout().as_secs_f64());
        (slots, if closed { depth as u64 } else { u64::MAX })
    });
    conn_ids
        .iter()
        .enumerate()
        .map(|(token, &id)| {
            Conn::new(
                (id, token),
                depth,
                closed,
                now,
                in_flight.map(|(n, d)| InFlight::new(n, d)),
            )
        })
        .collect()
}

/// `--conn-rate`: this thread's share of the arrivals, its connection slots idle until one
/// comes (returned as the stack of idle slots); otherwise nothing.
fn conn_rate_arrivals(
    cfg: &RunConfig,
    conns: &mut [Conn],
    thread: usize,
    threads: usize,
) -> (Option<Arrivals>, Vec<usize>) {
    let Churn::ConnRate { rate, .. } = cfg.churn else {
        return (None, Vec::new());
    };
    // A shard makes its share of the arrivals.
    let rate = rate / f64::from(cfg.shard.count);
    // Slots start idle: nothing to open before the load.
    for c in conns.iter_mut() {
        c.link = Link::Idle;
        c.tried = true;
    }
    (
        Some(Arrivals::new(rate, thread, threads)),
        (0..conns.len()).rev().collect(),
    )
}

/// The open-loop timer (none in a closed loop without arrivals), watched by the engine.
fn open_timer(closed: bool, io: &mut Io) -> io::Result<Option<Timer>> {
    if closed {
        return Ok(None);
    }
    let t = Timer::new()?;
    io.watch_timer(t.fd())?;
    Ok(Some(t))
}
