//! One client thread: a mio event loop over its share of the connections.
//!
//! One loop serves every mode; the mode is a value ([`Schedule`]): closed loop keeps
//! `depth` messages in flight per connection, open loop sends each message at its intended
//! time (bounded by `depth` in flight) and measures latency from that time.
//!
//! The loop opens its connections at a controlled pace ([`CONNECT_WINDOW`] connects in
//! flight per thread), meets the other threads at a barrier, then runs until the end of
//! warmup + duration or until told to stop. Per message it makes one `write` and (usually)
//! one `read`, two clock reads, payload fill and check, and a histogram record: no lock,
//! no channel send and no allocation. Once per interval it sends its [`Interval`] to the
//! main thread.
//!
//! A connection that times out, is reset, or misbehaves is closed, counted, and reopened
//! (after a back-off when reconnecting keeps failing).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use servers::ListenAddr;
use socket2::{Domain, Socket, Type};

use crate::payload;
use crate::schedule::{Schedule, ThreadSchedule};
use crate::stats::{new_histogram, Fault, Interval};

/// Connects in flight at once per thread, so a burst does not overflow the listen backlog.
pub const CONNECT_WINDOW: usize = 64;
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

/// Everything a client thread needs to know about the run.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Where to connect.
    pub addr: ListenAddr,
    /// Bytes per message.
    pub msg_size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Closed loop or fixed rate.
    pub schedule: Schedule,
    /// Unmeasured time after all connections are open.
    pub warmup: Duration,
    /// Measured time after the warmup.
    pub duration: Duration,
    /// Length of a reporting interval.
    pub interval: Duration,
    /// Per-message reply timeout.
    pub timeout: Duration,
    /// Per-connect timeout.
    pub connect_timeout: Duration,
    /// CPUs the client threads are pinned to.
    pub pin: Option<Vec<usize>>,
    /// Source addresses, used round-robin by connection id (empty: the kernel's choice).
    pub bind: Vec<IpAddr>,
}

/// IP_BIND_ADDRESS_NO_PORT: defer the port choice of a bound socket to `connect`.
fn set_bind_no_port(socket: &Socket) {
    let one: libc::c_int = 1;
    // SAFETY: valid fd and a pointer to a local int of the given size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Restricts the calling thread (pid 0) or a process to `cpus`.
pub fn set_affinity(pid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it; the pointer is valid.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// State shared by the client threads and the main thread (touched once per run or per
/// loop iteration, never per message).
#[derive(Debug)]
pub struct Shared {
    /// Set to stop every thread early (Ctrl-C, server died).
    pub stop: AtomicBool,
    /// The common start: set by the first thread past the barrier.
    pub start: OnceLock<Instant>,
    /// Where the threads wait for each other once their connections are open.
    pub connected: Barrier,
    /// Connections open right now, over all threads (changes on connect and close only).
    pub up: AtomicUsize,
}

impl Shared {
    /// Shared state for `threads` client threads.
    pub fn new(threads: usize) -> Self {
        Shared {
            stop: AtomicBool::new(false),
            start: OnceLock::new(),
            connected: Barrier::new(threads),
            up: AtomicUsize::new(0),
        }
    }
}

/// What a thread returns at the end (its intervals went to the main thread as it ran).
#[derive(Debug)]
pub struct ThreadOutput {
    /// Connect latency of every successful connect, in ns.
    pub connect: Histogram<u64>,
    /// Connections open when the load started.
    pub conns_ok: usize,
    /// Messages completed in the window, per connection (connection id, count).
    pub per_conn: Vec<(u32, u64)>,
    /// CPU time this thread used inside the measured window.
    pub window_cpu: Duration,
}

/// CPU time used by the calling thread so far.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a local timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Splits `conns` connection ids over `threads`: thread `t` gets `t, t + threads, ...`
/// (the order [`ThreadSchedule`] relies on).
pub fn assign(conns: usize, threads: usize) -> Vec<Vec<u32>> {
    let threads = threads.clamp(1, conns.max(1));
    (0..threads)
        .map(|t| (t..conns).step_by(threads).map(|c| c as u32).collect())
        .collect()
}

/// Runs one client thread over `conn_ids` until the run ends; intervals go to `tx`.
/// Always meets the other threads at the barrier, even when it fails to set up.
pub fn run_thread(
    conn_ids: Vec<u32>,
    cfg: &DriverConfig,
    shared: &Shared,
    tx: &Sender<Interval>,
) -> io::Result<ThreadOutput> {
    let mut client = match Client::new(conn_ids, cfg, shared, tx) {
        Ok(c) => c,
        Err(e) => {
            shared.connected.wait();
            return Err(e);
        }
    };
    client.run()
}

enum Sock {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Sock {
    /// Starts a nonblocking connect, from source address `from` when given.
    fn connect(addr: &ListenAddr, from: Option<IpAddr>) -> io::Result<Sock> {
        match (addr, from) {
            (ListenAddr::Tcp(a), None) => mio::net::TcpStream::connect(*a).map(Sock::Tcp),
            (ListenAddr::Tcp(a), Some(ip)) => {
                let socket = Socket::new(Domain::for_address(*a), Type::STREAM, None)?;
                socket.set_nonblocking(true)?;
                // Pick the port at connect time, not at bind: the (source, destination) pair
                // then decides uniqueness, so one source address is not capped at ~28k
                // ports over all destinations. Unsupported kernels just pick it at bind.
                let _ = socket.set_reuse_address(true);
                set_bind_no_port(&socket);
                socket.bind(&SocketAddr::new(ip, 0).into())?;
                match socket.connect(&(*a).into()) {
                    Ok(()) => {}
                    // EINPROGRESS: the handshake goes on; WRITABLE tells when it is done.
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                Ok(Sock::Tcp(mio::net::TcpStream::from_std(socket.into())))
            }
            (ListenAddr::Unix(p), _) => mio::net::UnixStream::connect(p).map(Sock::Unix),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    /// `Ok(true)` once connected, `Ok(false)` while still connecting.
    fn connected(&self) -> io::Result<bool> {
        let (err, peer) = match self {
            Sock::Tcp(s) => (s.take_error(), s.peer_addr().map(drop)),
            Sock::Unix(s) => (s.take_error(), s.peer_addr().map(drop)),
        };
        if let Some(e) = err? {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            // ENOTCONN: the handshake has not finished; a later event will tell.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Read for Sock {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn classify(e: &io::Error) -> Fault {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => Fault::Reset,
        io::ErrorKind::TimedOut => Fault::Timeout,
        _ => Fault::Other,
    }
}

enum Link {
    /// Closed; (re)connect once `retry_at` has passed.
    Down { retry_at: Instant },
    /// Connect in progress since then.
    Connecting { since: Instant },
    /// Open.
    Up,
}

/// Per-message context shared by a thread's connections (split from the connections so
/// both can be borrowed at once).
struct Ctx {
    msg_size: usize,
    depth: u64,
    schedule: Schedule,
    start: Instant,
    warm_ns: u64,
    end_ns: u64,
    sending: bool,
    cur: Interval,
    rbuf: Box<[u8]>,
    wbuf: Box<[u8]>,
}

impl Ctx {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    #[inline]
    fn in_window(&self, t: u64) -> bool {
        t >= self.warm_ns && t < self.end_ns
    }
}

struct Conn {
    id: u32,
    sock: Option<Sock>,
    link: Link,
    /// Consecutive failed connects (for the back-off).
    failures: u32,
    /// Next message to send, and bytes of it already written.
    send_seq: u64,
    send_off: usize,
    /// Open loop: messages whose intended time has come (closed loop: unlimited).
    due: u64,
    /// Next message to receive, and bytes of it already received.
    recv_seq: u64,
    recv_off: usize,
    /// The message being received had a wrong byte.
    recv_bad: bool,
    /// Actual send time (ns) of each message in flight, by `seq % depth`.
    sent_at: Box<[u64]>,
    /// Messages completed inside the window.
    msgs: u64,
    /// The server's FIN (or an error) was signalled: read to EOF, never stop at a short read.
    read_closed: bool,
}

impl Conn {
    /// Messages whose first byte has been written.
    #[inline]
    fn started(&self) -> u64 {
        self.send_seq + u64::from(self.send_off > 0)
    }

    /// Writes as many messages as the window and the schedule allow, until the socket
    /// would block.
    fn send(&mut self, ctx: &mut Ctx) -> Result<(), Fault> {
        let size = ctx.msg_size;
        let Some(sock) = self.sock.as_mut() else {
            return Ok(());
        };
        loop {
            let limit = (self.recv_seq + ctx.depth).min(self.due);
            if self.send_seq >= limit {
                return Ok(());
            }
            // Lay out the bytes still to send, message after message, in the write buffer.
            let (mut len, mut seq, mut off) = (0, self.send_seq, self.send_off);
            while seq < limit && len < ctx.wbuf.len() {
                let take = (size - off).min(ctx.wbuf.len() - len);
                payload::fill(payload::key(self.id, seq), off, &mut ctx.wbuf[len..len + take]);
                len += take;
                off += take;
                if off == size {
                    seq += 1;
                    off = 0;
                }
            }
            let now = ctx.now_ns();
            let n = match sock.write(&ctx.wbuf[..len]) {
                Ok(0) => return Err(Fault::Other),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()), // send buffer full: wait for WRITABLE
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,     // EINTR: retry
                Err(e) => return Err(classify(&e)),
            };
            // Account the written bytes; a message is sent from its first byte on.
            let mut left = n;
            while left > 0 {
                if self.send_off == 0 {
                    self.sent_at[(self.send_seq % ctx.depth) as usize] = now;
                    if ctx.in_window(now) {
                        ctx.cur.counters.sent += 1;
                        if let Some(intended) = ctx.schedule.intended_ns(self.id, self.send_seq) {
                            ctx.cur.send_lag.saturating_record(now.saturating_sub(intended));
                        }
                    }
                }
                let take = (size - self.send_off).min(left);
                self.send_off += take;
                left -= take;
                if self.send_off == size {
                    self.send_seq += 1;
                    self.send_off = 0;
                }
            }
            if n < len {
                return Ok(()); // short write: the send buffer is full; WRITABLE comes later
            }
        }
    }

    /// Reads and checks everything available.
    fn receive(&mut self, ctx: &mut Ctx) -> Result<(), Fault> {
        loop {
            let Some(sock) = self.sock.as_mut() else {
                return Ok(());
            };
            let n = match sock.read(&mut ctx.rbuf) {
                Ok(0) => return Err(Fault::Reset), // the server closed the connection
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(classify(&e)),
            };
            let now = ctx.now_ns();
            let mut i = 0;
            while i < n {
                // Only bytes that were sent can come back.
                let allowed = match self.recv_seq.cmp(&self.send_seq) {
                    std::cmp::Ordering::Less => ctx.msg_size - self.recv_off,
                    std::cmp::Ordering::Equal => self.send_off.saturating_sub(self.recv_off),
                    std::cmp::Ordering::Greater => 0,
                };
                let take = allowed.min(n - i);
                if take == 0 {
                    return Err(Fault::Other); // more bytes back than were sent
                }
                if !payload::verify(
                    payload::key(self.id, self.recv_seq),
                    self.recv_off,
                    &ctx.rbuf[i..i + take],
                ) {
                    self.recv_bad = true;
                }
                self.recv_off += take;
                i += take;
                if self.recv_off == ctx.msg_size {
                    self.complete(now, ctx);
                }
            }
            // A read shorter than the buffer emptied the socket; with edge-triggered
            // readiness new data raises a new event, so skip the read that would say EAGAIN
            // (unless the server's FIN came with it: that raises no further event).
            if n < ctx.rbuf.len() && !self.read_closed {
                return Ok(());
            }
        }
    }

    #[inline]
    fn complete(&mut self, now: u64, ctx: &mut Ctx) {
        let sent = self.sent_at[(self.recv_seq % ctx.depth) as usize];
        if self.recv_bad {
            ctx.cur.counters.mismatches += 1;
        } else if ctx.in_window(now) {
            match ctx.schedule.intended_ns(self.id, self.recv_seq) {
                Some(intended) => {
                    ctx.cur.latency.saturating_record(now.saturating_sub(intended));
                    ctx.cur.raw.saturating_record(now.saturating_sub(sent));
                }
                None => ctx.cur.latency.saturating_record(now.saturating_sub(sent)),
            }
            ctx.cur.counters.msgs += 1;
            ctx.cur.counters.bytes += ctx.msg_size as u64;
            self.msgs += 1;
        }
        self.recv_seq += 1;
        self.recv_off = 0;
        self.recv_bad = false;
    }

    /// The oldest message in flight has waited longer than `timeout_ns`.
    fn timed_out(&self, now_ns: u64, timeout_ns: u64, depth: u64) -> bool {
        self.recv_seq < self.started()
            && now_ns.saturating_sub(self.sent_at[(self.recv_seq % depth) as usize]) > timeout_ns
    }
}

/// A nonblocking timerfd for sub-millisecond waits in open loop.
struct Timer {
    fd: OwnedFd,
    /// When it is set to fire (ns after the start), so it is not re-armed needlessly.
    armed_at: Option<u64>,
}

impl Timer {
    fn new() -> io::Result<Timer> {
        // SAFETY: plain syscall; the returned descriptor is checked and owned.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // Ask for 1 us timer slack on this thread (default 50 us) so the wake-up is punctual.
        // SAFETY: prctl with integer arguments only.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        Ok(Timer {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            armed_at: None,
        })
    }

    /// Makes it fire `after` from `now` (ns after the start), unless it already fires
    /// earlier than that.
    fn arm(&mut self, now: u64, after: Duration) {
        let at = now + after.as_nanos() as u64;
        if self.armed_at.is_some_and(|a| a > now && a <= at) {
            return;
        }
        self.armed_at = Some(at);
        let after = after.max(Duration::from_nanos(1)); // zero would disarm it
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid fd and pointers to a local struct.
        unsafe {
            libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut());
        }
    }

    fn clear(&mut self) {
        self.armed_at = None;
        let mut buf = [0u8; 8];
        // EAGAIN when it has not expired: nothing to clear.
        // SAFETY: reading 8 bytes into a local buffer.
        unsafe {
            libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8);
        }
    }
}

struct Client<'a> {
    cfg: &'a DriverConfig,
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
}

impl<'a> Client<'a> {
    fn new(
        conn_ids: Vec<u32>,
        cfg: &'a DriverConfig,
        shared: &'a Shared,
        tx: &'a Sender<Interval>,
    ) -> io::Result<Self> {
        let depth = cfg.depth.max(1);
        let closed = cfg.schedule == Schedule::Closed;
        let now = Instant::now();
        let conns = conn_ids
            .iter()
            .map(|&id| Conn {
                id,
                sock: None,
                link: Link::Down { retry_at: now },
                failures: 0,
                send_seq: 0,
                send_off: 0,
                due: if closed { u64::MAX } else { 0 },
                recv_seq: 0,
                recv_off: 0,
                recv_bad: false,
                sent_at: vec![0; depth].into_boxed_slice(),
                msgs: 0,
                read_closed: false,
            })
            .collect();
        let poll = Poll::new()?;
        let timer = if closed {
            None
        } else {
            let t = Timer::new()?;
            poll.registry()
                .register(&mut SourceFd(&t.fd.as_raw_fd()), TIMER, Interest::READABLE)?;
            Some(t)
        };
        let warm_ns = cfg.warmup.as_nanos() as u64;
        Ok(Client {
            cfg,
            shared,
            tx,
            poll,
            conns,
            ctx: Ctx {
                msg_size: cfg.msg_size,
                depth: depth as u64,
                schedule: cfg.schedule,
                start: now,
                warm_ns,
                end_ns: warm_ns + cfg.duration.as_nanos() as u64,
                sending: false,
                cur: Interval::new(None),
                rbuf: vec![0; BUF].into_boxed_slice(),
                wbuf: vec![0; BUF.min(cfg.msg_size * depth).max(1)].into_boxed_slice(),
            },
            walk: ThreadSchedule::new(cfg.schedule, conn_ids),
            timer,
            connecting: 0,
            connect_hist: new_histogram(),
            boundary_ns: warm_ns,
            window_cpu_start: None,
        })
    }

    fn run(&mut self) -> io::Result<ThreadOutput> {
        let mut events = Events::with_capacity(1024);
        // Phase 1: open every connection once (failures are retried later, in the run).
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
            conns_ok,
            per_conn,
            window_cpu,
        })
    }

    fn connect_all(&mut self, events: &mut Events) -> io::Result<()> {
        loop {
            let now = Instant::now();
            self.maintain(now);
            let settled = self.conns.iter().all(|c| match c.link {
                Link::Up => true,
                Link::Down { .. } => c.failures > 0,
                Link::Connecting { .. } => false,
            });
            if settled || self.shared.stop.load(Ordering::Relaxed) {
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
            let next_due = self.send_due(t);
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
                        if let Err(fault) = self.conns[i].receive(&mut self.ctx) {
                            self.fail(i, fault);
                            continue;
                        }
                    }
                    self.send(i);
                }
                Link::Down { .. } => {} // stale event of a closed socket
            }
        }
        Ok(())
    }

    fn send(&mut self, i: usize) {
        if self.ctx.sending && matches!(self.conns[i].link, Link::Up) {
            if let Err(fault) = self.conns[i].send(&mut self.ctx) {
                self.fail(i, fault);
            }
        }
    }

    /// Connect timeouts, message timeouts and (re)connects.
    fn maintain(&mut self, now: Instant) {
        let t = now.saturating_duration_since(self.ctx.start).as_nanos() as u64;
        let timeout_ns = self.cfg.timeout.as_nanos() as u64;
        for i in 0..self.conns.len() {
            match self.conns[i].link {
                Link::Connecting { since } if now.duration_since(since) > self.cfg.connect_timeout => {
                    self.fail(i, Fault::Connect)
                }
                Link::Up if self.ctx.sending && self.conns[i].timed_out(t, timeout_ns, self.ctx.depth) => {
                    self.fail(i, Fault::Timeout)
                }
                Link::Down { retry_at } if retry_at <= now && self.connecting < CONNECT_WINDOW => self.connect(i, now),
                _ => {}
            }
        }
    }

    fn connect(&mut self, i: usize, now: Instant) {
        let from = match self.cfg.bind.as_slice() {
            [] => None,
            ips => Some(ips[self.conns[i].id as usize % ips.len()]),
        };
        let sock = match Sock::connect(&self.cfg.addr, from) {
            Ok(s) => s,
            Err(_) => {
                // Immediate failure (refused, out of ports or descriptors): counted, retried.
                self.conns[i].link = Link::Connecting { since: now };
                self.connecting += 1;
                return self.fail(i, Fault::Connect);
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
            return self.fail(i, Fault::Other);
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
            _ => return self.fail(i, Fault::Connect),
        }
        self.connecting -= 1;
        let conn = &mut self.conns[i];
        conn.link = Link::Up;
        conn.failures = 0;
        self.shared.up.fetch_add(1, Ordering::Relaxed);
        if let Some(Sock::Tcp(s)) = &conn.sock {
            // Without NODELAY, Nagle would hold small messages back: latency, not correctness.
            let _ = s.set_nodelay(true);
        }
        self.connect_hist.saturating_record(since.elapsed().as_nanos() as u64);
        self.send(i);
    }

    /// Counts `fault`, closes connection `i` and schedules its reconnect.
    fn fail(&mut self, i: usize, fault: Fault) {
        self.ctx.cur.count(fault);
        let conn = &mut self.conns[i];
        match conn.link {
            Link::Connecting { .. } => self.connecting -= 1,
            Link::Up => {
                self.shared.up.fetch_sub(1, Ordering::Relaxed);
            }
            Link::Down { .. } => {}
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
                conn.failures += 1;
                Duration::from_millis(5u64 << conn.failures.min(8)).min(Duration::from_secs(1))
            }
            _ => Duration::ZERO, // a timeout or reset: reconnect at the next scan
        };
        conn.link = Link::Down {
            retry_at: Instant::now() + backoff,
        };
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
