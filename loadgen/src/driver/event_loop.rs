//! The loop of one client thread: a mio poller over its connections (and, in open loop, a
//! timer), in two phases.
//!
//! 1. **Connection phase.** Connections open at a controlled pace ([`CONNECT_WINDOW`]
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
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use servers::ListenAddr;

use super::conn::{Conn, Ctx, Link};
use super::socket::{connect_failure, Sock};
use super::timer::Timer;
use super::{connect_phase_limit, Shared, ThreadOutput, CONNECT_WINDOW};
use crate::config::{Churn, CloseMode, RunConfig};
use crate::record::{new_histogram, Failure, Fault, Interval};
use crate::schedule::{Arrivals, Schedule, ThreadSchedule};
use crate::sys::thread_cpu;

/// How often timeouts and reconnects are checked.
const SCAN_EVERY: Duration = Duration::from_millis(20);
/// Size of the thread's read and write buffers.
const BUF: usize = 64 * 1024;
/// Token of the open-loop timer; connections use their index.
const TIMER: Token = Token(usize::MAX - 1);
/// Below this wait the open-loop timer (ns precision) is used instead of the poll timeout
/// (ms precision).
const PRECISE_BELOW: Duration = Duration::from_millis(2);
/// Shortest open-loop timer sleep: sends due closer together than this go out in one batch
/// (each wake-up costs more CPU than a send). Adds at most this much send lag, which the
/// latency (measured from the intended time) and the send-lag histogram both show.
const MIN_TIMER_SLEEP: Duration = Duration::from_micros(50);

/// One client thread's state.
pub(super) struct Client<'a> {
    cfg: &'a RunConfig,
    addr: &'a ListenAddr,
    shared: &'a Shared,
    tx: &'a Sender<Interval>,
    poll: Poll,
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
    /// Round trips per connection life (`u64::MAX`: no churn).
    lifetime: u64,
    /// `--conn-rate`: this thread's share of the arrivals, and its idle slots.
    arrivals: Option<Arrivals>,
    idle: Vec<usize>,
    /// Connections to reopen as soon as the connect window has room.
    waiting: VecDeque<usize>,
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
        let mut conns: Vec<Conn> = conn_ids.iter().map(|&id| Conn::new(id, depth, closed, now)).collect();
        let arrivals = match cfg.churn {
            Churn::ConnRate { rate, .. } => {
                // Slots start idle: nothing to open before the load.
                for c in &mut conns {
                    c.link = Link::Idle;
                    c.tried = true;
                }
                Some(Arrivals::new(rate, thread, threads))
            }
            _ => None,
        };
        let idle = if arrivals.is_some() {
            (0..conns.len()).rev().collect()
        } else {
            Vec::new()
        };
        let poll = Poll::new()?;
        let timer = if closed && arrivals.is_none() {
            None
        } else {
            let t = Timer::new()?;
            poll.registry()
                .register(&mut SourceFd(&t.fd()), TIMER, Interest::READABLE)?;
            Some(t)
        };
        let warm_ns = cfg.warmup.as_nanos() as u64;
        Ok(Client {
            cfg,
            addr,
            shared,
            tx,
            poll,
            conns,
            ctx: Ctx {
                msg_size: cfg.msg_size,
                depth: depth as u64,
                schedule,
                open_loop: cfg.mode() == crate::schedule::Mode::Open,
                start: now,
                warm_ns,
                end_ns: warm_ns + cfg.duration.as_nanos() as u64,
                sending: false,
                cur: Interval::new(None),
                first_byte: new_histogram(),
                rbuf: vec![0; BUF].into_boxed_slice(),
                wbuf: vec![0; BUF.min(cfg.msg_size * depth).max(1)].into_boxed_slice(),
            },
            walk: ThreadSchedule::new(schedule, conn_ids),
            timer,
            connecting: 0,
            connect_hist: new_histogram(),
            boundary_ns: warm_ns,
            window_cpu_start: None,
            lifetime: cfg.churn.lifetime(),
            arrivals,
            idle,
            waiting: VecDeque::new(),
        })
    }

    /// Both phases; returns what the thread measured besides its intervals.
    pub(super) fn run(&mut self) -> io::Result<ThreadOutput> {
        let mut events = Events::with_capacity(1024);
        // Phase 1: every connection gets its first attempt (bounded in time).
        let connect_phase = self.connect_all(&mut events);
        let conns_ok = self.conns.iter().filter(|c| matches!(c.link, Link::Up)).count();
        self.shared.connected.wait();
        connect_phase?;
        self.ctx.start = *self.shared.start.get_or_init(Instant::now);
        self.ctx.sending = true;
        for i in 0..self.conns.len() {
            self.send(i);
        }
        // Phase 2: warmup and measured window.
        let result = self.load(&mut events);
        let window_cpu = self
            .window_cpu_start
            .map_or(Duration::ZERO, |c| thread_cpu().saturating_sub(c));
        self.flush_interval(None);
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
        })
    }

    fn connect_all(&mut self, events: &mut Events) -> io::Result<()> {
        let deadline = Instant::now() + connect_phase_limit(self.conns.len(), self.cfg.connect_timeout);
        loop {
            let now = Instant::now();
            self.maintain(now);
            let settled = self.conns.iter().all(|c| c.tried);
            if settled || now >= deadline || self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.poll_once(events, Some(Duration::from_millis(5)))?;
        }
    }

    fn load(&mut self, events: &mut Events) -> io::Result<()> {
        let mut next_scan = Instant::now();
        loop {
            let now = Instant::now();
            let t = now.saturating_duration_since(self.ctx.start).as_nanos() as u64;
            if t >= self.ctx.end_ns || self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if t >= self.boundary_ns {
                if self.window_cpu_start.is_none() {
                    self.window_cpu_start = Some(thread_cpu());
                }
                self.flush_interval(Some(t));
            }
            if now >= next_scan {
                self.maintain(now);
                next_scan = now + SCAN_EVERY;
            }
            let next_due = match self.arrivals {
                Some(_) => self.start_arrivals(now, t),
                None => self.send_due(t),
            };
            // Sleep until the earliest of: next scan, interval boundary, end, next due send.
            let coarse_ns = (next_scan - now).as_nanos() as u64;
            let mut wake_ns = coarse_ns.min(self.boundary_ns.min(self.ctx.end_ns) - t);
            if let (Some(due), Some(timer)) = (next_due, self.timer.as_mut()) {
                let wait = Duration::from_nanos(due.saturating_sub(t));
                if wait < PRECISE_BELOW && wait.as_nanos() < u128::from(wake_ns) {
                    timer.arm(t, wait.max(MIN_TIMER_SLEEP)); // the poll timeout would round up to 1 ms
                } else {
                    wake_ns = wake_ns.min(wait.as_nanos() as u64);
                }
            }
            self.poll_once(events, Some(Duration::from_nanos(wake_ns)))?;
        }
    }

    /// Open loop: marks every message whose time has come as due and sends it; returns the
    /// time of the next one.
    fn send_due(&mut self, t: u64) -> Option<u64> {
        while let Some((slot, seq, at)) = self.walk.peek() {
            if at > t {
                return Some(at);
            }
            self.conns[slot].due = seq + 1;
            self.send(slot);
            self.walk.advance();
        }
        None
    }

    /// `--conn-rate`: starts every arrival whose time has come, while a slot and the connect
    /// window allow; returns the time of the next one (`None` while arrivals wait for room,
    /// which a closing connection or a finished connect makes).
    fn start_arrivals(&mut self, now: Instant, t: u64) -> Option<u64> {
        loop {
            let at = self.arrivals.as_ref()?.peek();
            if at > t {
                return Some(at);
            }
            if self.connecting >= CONNECT_WINDOW {
                return None;
            }
            let i = self.idle.pop()?;
            if let Some(a) = self.arrivals.as_mut() {
                a.advance();
            }
            self.conns[i].intended_ns = Some(at);
            if self.ctx.in_window(t) {
                // How late the client started it: its own lag, not the server's.
                self.ctx.cur.send_lag.saturating_record(t - at);
            }
            self.conns[i].link = Link::Down { retry_at: now };
            self.connect(i, now);
        }
    }

    fn poll_once(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        if let Err(e) = self.poll.poll(events, timeout) {
            // EINTR: a signal arrived; the caller's loop polls again.
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for event in events.iter() {
            let token = event.token();
            if token == TIMER {
                if let Some(t) = &mut self.timer {
                    t.clear();
                }
                continue;
            }
            let i = token.0;
            match self.conns[i].link {
                Link::Connecting { since } => self.finish_connect(i, since),
                Link::Up => {
                    if event.is_read_closed() || event.is_error() {
                        self.conns[i].read_closed = true;
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        if let Err(failure) = self.conns[i].receive(&mut self.ctx) {
                            self.fail(i, failure);
                            continue;
                        }
                        if self.conns[i].life_over() {
                            self.retire(i);
                            continue;
                        }
                    }
                    self.send(i);
                }
                Link::Down { .. } | Link::Idle => {} // stale event of a closed socket
            }
        }
        Ok(())
    }

    /// Sends what connection `i` may send now, if it is open and the load has begun.
    fn send(&mut self, i: usize) {
        if self.ctx.sending && matches!(self.conns[i].link, Link::Up) {
            if let Err(failure) = self.conns[i].send(&mut self.ctx) {
                self.fail(i, failure);
            }
        }
    }

    /// Connect timeouts, message timeouts and (re)connects. Free connect slots go to
    /// connections never tried before any retry, so a server that stops accepting cannot
    /// keep the untried ones from ever getting a first attempt.
    fn maintain(&mut self, now: Instant) {
        let t = now.saturating_duration_since(self.ctx.start).as_nanos() as u64;
        let timeout_ns = self.cfg.timeout.as_nanos() as u64;
        for i in 0..self.conns.len() {
            match self.conns[i].link {
                Link::Connecting { since } if now.duration_since(since) > self.cfg.connect_timeout => {
                    // Our own connect timeout: counted as the kernel's would be.
                    self.fail(
                        i,
                        Failure {
                            fault: Fault::Connect,
                            errno: Some(libc::ETIMEDOUT),
                        },
                    )
                }
                Link::Up if self.ctx.sending && self.conns[i].timed_out(t, timeout_ns, self.ctx.depth) => {
                    self.fail(i, Fault::Timeout.into())
                }
                _ => {}
            }
        }
        for first_attempts in [true, false] {
            for i in 0..self.conns.len() {
                if self.connecting >= CONNECT_WINDOW {
                    return;
                }
                let c = &self.conns[i];
                if matches!(c.link, Link::Down { retry_at } if retry_at <= now) && c.tried != first_attempts {
                    self.connect(i, now);
                }
            }
        }
    }

    fn connect(&mut self, i: usize, now: Instant) {
        let from = match self.cfg.bind.as_slice() {
            [] => None,
            ips => Some(ips[self.conns[i].id as usize % ips.len()]),
        };
        let opened_ns = now.saturating_duration_since(self.ctx.start).as_nanos() as u64;
        self.conns[i].begin_life(self.lifetime, opened_ns);
        let sock = match Sock::connect(self.addr, from, self.cfg.sock_buf) {
            Ok(s) => s,
            Err(e) => {
                // Immediate failure (refused, out of ports or descriptors): counted, retried.
                self.conns[i].link = Link::Connecting { since: now };
                self.connecting += 1;
                return self.fail(i, connect_failure(&e));
            }
        };
        if self
            .poll
            .registry()
            .register(
                &mut SourceFd(&sock.fd()),
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.conns[i].link = Link::Connecting { since: now };
            self.connecting += 1;
            return self.fail(i, Fault::Other.into());
        }
        self.conns[i].sock = Some(sock);
        self.conns[i].link = Link::Connecting { since: now };
        self.connecting += 1;
    }

    fn finish_connect(&mut self, i: usize, since: Instant) {
        let state = self.conns[i].sock.as_ref().map(Sock::connected);
        match state {
            Some(Ok(true)) => {}
            Some(Ok(false)) => return, // still connecting
            Some(Err(e)) => return self.fail(i, connect_failure(&e)),
            None => return self.fail(i, Fault::Connect.into()),
        }
        self.connecting -= 1;
        let now_ns = self.ctx.now_ns();
        if self.ctx.sending && self.ctx.in_window(now_ns) {
            self.ctx.cur.counters.conns_opened += 1;
        }
        let conn = &mut self.conns[i];
        conn.link = Link::Up;
        conn.failures = 0;
        conn.tried = true;
        self.shared.up.fetch_add(1, Ordering::Relaxed);
        if let Some(Sock::Tcp(s)) = &conn.sock {
            // Without NODELAY, Nagle would hold small messages back: latency, not correctness.
            let _ = s.set_nodelay(true);
        }
        self.connect_hist.saturating_record(since.elapsed().as_nanos() as u64);
        self.send(i);
        self.reopen_waiting(Instant::now());
    }

    /// Connection `i` did all its round trips: closes it (FIN, or RST with `--close rst`)
    /// and reopens it at once (`--reconnect-every`) or returns its slot (`--conn-rate`).
    /// Not an error.
    fn retire(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let Some(sock) = conn.sock.take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&sock.fd()));
            if self.cfg.close == CloseMode::Rst {
                sock.set_reset_on_close();
            }
        }
        self.shared.up.fetch_sub(1, Ordering::Relaxed);
        conn.read_closed = false;
        if self.arrivals.is_some() {
            conn.link = Link::Idle;
            conn.intended_ns = None;
            self.idle.push(i);
            return;
        }
        let now = Instant::now();
        conn.link = Link::Down { retry_at: now };
        if self.connecting < CONNECT_WINDOW {
            self.connect(i, now);
        } else {
            self.waiting.push_back(i);
        }
    }

    /// Reopens connections retired while the connect window was full, as it has room.
    fn reopen_waiting(&mut self, now: Instant) {
        while self.connecting < CONNECT_WINDOW {
            let Some(i) = self.waiting.pop_front() else { return };
            if matches!(self.conns[i].link, Link::Down { .. }) {
                self.connect(i, now);
            }
        }
    }

    /// Counts `failure`, closes connection `i` and schedules its reconnect (`--conn-rate`:
    /// abandons that connection and returns its slot).
    fn fail(&mut self, i: usize, failure: Failure) {
        self.ctx.cur.count(failure);
        let fault = failure.fault;
        let conn = &mut self.conns[i];
        let was_connecting = matches!(conn.link, Link::Connecting { .. });
        match conn.link {
            Link::Connecting { .. } => self.connecting -= 1,
            Link::Up => {
                self.shared.up.fetch_sub(1, Ordering::Relaxed);
            }
            Link::Down { .. } | Link::Idle => {}
        }
        if let Some(sock) = conn.sock.take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&sock.fd()));
        }
        // Messages in flight are lost; the stream restarts at the next sequence number.
        if conn.send_off > 0 {
            conn.send_seq += 1;
            conn.send_off = 0;
        }
        conn.recv_seq = conn.send_seq;
        conn.recv_off = 0;
        conn.recv_bad = false;
        conn.read_closed = false;
        let backoff = match fault {
            Fault::Connect => {
                conn.tried = true;
                conn.failures += 1;
                self.shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                Duration::from_millis(5u64 << conn.failures.min(8)).min(Duration::from_secs(1))
            }
            _ => Duration::ZERO, // a timeout or reset: reconnect at the next scan
        };
        if self.arrivals.is_some() {
            conn.link = Link::Idle;
            conn.intended_ns = None;
            self.idle.push(i);
        } else {
            conn.link = Link::Down {
                retry_at: Instant::now() + backoff,
            };
        }
        if was_connecting {
            self.reopen_waiting(Instant::now());
        }
    }

    /// Hands the current interval to the main thread and starts the next one. `t` is the
    /// current time, `None` at the end of the run.
    fn flush_interval(&mut self, t: Option<u64>) {
        let interval_ns = self.cfg.interval.as_nanos().max(1) as u64;
        let next_index = t.map(|t| (t.saturating_sub(self.ctx.warm_ns) / interval_ns) as u32);
        // Sent even when empty, so the main thread knows every thread finished the interval.
        // A send error means the main thread is gone: nothing left to report to.
        let _ = self.tx.send(self.ctx.cur.clone());
        if let Some(idx) = next_index {
            self.ctx.cur.reset(Some(idx));
            self.boundary_ns = (self.ctx.warm_ns + (u64::from(idx) + 1) * interval_ns).min(self.ctx.end_ns);
        }
    }
}
