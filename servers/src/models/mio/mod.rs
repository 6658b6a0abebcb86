//! The mio model: nonblocking sockets, edge-triggered readiness, one event loop per thread.
//!
//! With `--threads N > 1` over TCP every loop owns its own SO_REUSEPORT listener and the
//! kernel spreads new connections across them (no hand-off between threads); over a Unix
//! socket the loops share one listener and whichever loop wakes first accepts.
//!
//! Each loop reads into one 64 KiB scratch buffer and writes straight back. Only what a
//! short write leaves over is copied into the connection's own buffer, and while that
//! buffer is non-empty the connection is not read from: a peer that stops reading stops
//! being read, so memory per connection stays bounded (at most 64 KiB). A connection is
//! served for at most [`MAX_ROUNDS`] read/write rounds per wake-up, then put on a ready list
//! behind the others, so one busy peer cannot starve the rest.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::accept::{AcceptAction, AcceptPolicy};
use crate::running::{stop_started, Running, BUF_SIZE};
use crate::stream::{Listener, Stream};
use crate::work::timer::TimerFd;
use crate::work::{Framer, Kind, Sampler, Work};

pub(crate) mod udp;

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
/// The loop's timerfd: fires at the next `--work` wait's end (poll's timeout is whole ms).
const TIMER: Token = Token(2);
const FIRST_CONN: usize = 3;
/// Read/write rounds per connection per wake-up before it yields to the others.
pub(crate) const MAX_ROUNDS: usize = 16;

/// Running mio event loops (TCP/Unix here, UDP in `udp::mio_udp`): a stop flag, and each
/// loop's waker and thread.
pub(crate) struct MioServer {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) loops: Vec<(Arc<Waker>, JoinHandle<()>)>,
}

/// Starts one event loop per listener.
pub(crate) fn start(listeners: Vec<Listener>, work: Option<Arc<Work>>) -> io::Result<MioServer> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::with_capacity(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true)?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&listener.as_raw_fd()), LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        // Waits end on a timerfd, to the kernel's resolution; only a loop that waits has one.
        let timer = match work.as_deref().is_some_and(Work::waits) {
            true => {
                let t = TimerFd::new()?;
                poll.registry()
                    .register(&mut SourceFd(&t.as_raw_fd()), TIMER, Interest::READABLE)?;
                Some(t)
            }
            false => None,
        };
        let mut event_loop = EventLoop {
            poll,
            listener,
            conns: Slab::new(),
            ready: VecDeque::new(),
            scratch: vec![0; BUF_SIZE].into_boxed_slice(),
            policy: AcceptPolicy::default(),
            accept_paused_until: None,
            work: work.clone(),
            timers: BinaryHeap::new(),
            timer,
        };
        let loop_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name(format!("mio-{i}")).spawn(move || {
            if let Err(e) = event_loop.run(&loop_stop) {
                eprintln!("echo-server: mio loop {i} failed: {e}");
            }
        });
        match thread {
            Ok(t) => loops.push((waker, t)),
            // The loops already running stop before the failure is reported.
            Err(e) => return Err(stop_started(Box::new(MioServer { stop, loops }), e)),
        }
    }
    Ok(MioServer { stop, loops })
}

impl Running for MioServer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        for (waker, _) in &self.loops {
            let _ = waker.wake();
        }
        for (_, thread) in self.loops {
            let _ = thread.join();
        }
        Ok(())
    }
}

struct Conn {
    stream: Stream,
    /// Bytes read but not yet written back (only after a short write).
    pending: Vec<u8>,
    /// How much of `pending` has been written.
    written: usize,
    /// On the ready list (budget ran out with work left).
    queued: bool,
    /// The peer's FIN (or an error) has been signalled: read until EOF, never stop at a
    /// short read.
    read_closed: bool,
    /// With `--work`: the connection's work, and how far its bytes may go out.
    work: Option<Box<Worked>>,
}

/// A connection's per-message work in the mio model. With work, every byte read goes
/// through `pending`; `pending[..released]` may be written; a message whose work is a wait
/// holds the bytes that complete it (and everything after) until its timer fires, while
/// the loop serves the other connections. Nothing more is read while bytes are held.
struct Worked {
    sampler: Sampler,
    framer: Framer,
    /// Bytes of `pending` that may be written.
    released: usize,
    /// A wait in progress: until then, the bytes up to the second field stay held; the
    /// third is when it began (what it took is recorded when it ends).
    hold: Option<(Instant, usize, Instant)>,
    /// EOF was read: close once everything is written.
    eof: bool,
}

/// What a connection needs after being served.
enum After {
    /// It would block: wait for the next readiness edge.
    Wait,
    /// Budget exhausted with work left: serve again after the others.
    MoreWork,
    /// EOF or error: close it.
    Close,
    /// A message's wait holds its bytes until then (`--work`).
    Held(Instant),
}

struct EventLoop {
    poll: Poll,
    listener: Listener,
    conns: Slab<Conn>,
    ready: VecDeque<usize>,
    scratch: Box<[u8]>,
    policy: AcceptPolicy,
    accept_paused_until: Option<Instant>,
    /// `--work`: the work of every connection.
    work: Option<Arc<Work>>,
    /// `--work`: when held connections may go on (a min-heap of deadlines and keys; a key
    /// whose connection closed or moved on meanwhile is skipped).
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// `--work` with a wait: armed to the heap's first deadline.
    timer: Option<TimerFd>,
}

impl EventLoop {
    fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            // The timerfd wakes the poll at the next wait's end; without one (it cannot be
            // that work waits and there is none) the poll's timeout does, in whole ms.
            let by_poll = match &mut self.timer {
                Some(t) => {
                    t.arm(next_timer)?;
                    None
                }
                None => next_timer,
            };
            let timeout = if self.ready.is_empty() {
                [self.accept_paused_until, by_poll]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|t| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                // EINTR: a signal arrived; poll again.
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all()?,
                    WAKE => {}
                    TIMER => {
                        if let Some(t) = &mut self.timer {
                            t.fired(); // read, so it can be armed again; the heap says who is due
                        }
                    }
                    Token(t) => {
                        let key = t - FIRST_CONN;
                        let Some(conn) = self.conns.get_mut(key) else { continue }; // closed already
                        if event.is_read_closed() || event.is_error() {
                            conn.read_closed = true;
                        }
                        // WRITABLE alone matters only with output pending; otherwise it is
                        // the ACK of an earlier reply, and serving would cost a futile read.
                        let useful = event.is_readable()
                            || conn.read_closed
                            || (event.is_writable() && conn.written < conn.pending.len());
                        if useful {
                            self.serve(key)
                        }
                    }
                }
            }
            if self.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
                self.accept_all()?;
            }
            // Waits that are over: those connections go on.
            let now = Instant::now();
            while let Some(&Reverse((t, key))) = self.timers.peek() {
                if t > now {
                    break;
                }
                self.timers.pop();
                self.serve(key);
            }
            for _ in 0..self.ready.len() {
                let Some(key) = self.ready.pop_front() else {
                    break;
                };
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.queued = false;
                    self.serve(key);
                }
            }
        }
    }

    fn accept_all(&mut self) -> io::Result<()> {
        self.accept_paused_until = None;
        loop {
            match self.listener.accept() {
                Ok(stream) => {
                    self.policy.accepted();
                    if stream.set_nonblocking(true).is_err() {
                        continue; // cannot serve it without blocking the loop: drop it
                    }
                    let entry = self.conns.vacant_entry();
                    let token = Token(entry.key() + FIRST_CONN);
                    // Both directions, edge-triggered: no busy loop while it is idle.
                    self.poll.registry().register(
                        &mut SourceFd(&stream.as_raw_fd()),
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    let work = self.work.as_ref().map(|w| {
                        let (sampler, framer) = w.for_conn(crate::work::next_conn());
                        Box::new(Worked {
                            sampler,
                            framer,
                            released: 0,
                            hold: None,
                            eof: false,
                        })
                    });
                    entry.insert(Conn {
                        stream,
                        pending: Vec::new(),
                        written: 0,
                        queued: false,
                        read_closed: false,
                        work,
                    });
                }
                Err(e) => match self.policy.on_error(&e) {
                    AcceptAction::Drained => return Ok(()),
                    AcceptAction::Retry | AcceptAction::Skip => continue,
                    AcceptAction::Pause(d) => {
                        // Out of descriptors: the listener stays readable but no new edge
                        // will come, so retry from a poll timeout.
                        self.accept_paused_until = Some(Instant::now() + d);
                        return Ok(());
                    }
                },
            }
        }
    }

    fn serve(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        }; // stale event of a closed conn
        let after = if conn.work.is_some() {
            drive_worked(conn, &mut self.scratch)
        } else {
            drive(conn, &mut self.scratch)
        };
        match after {
            After::Wait => {}
            After::Held(until) => self.timers.push(Reverse((until, key))),
            After::MoreWork => {
                if !conn.queued {
                    conn.queued = true;
                    self.ready.push_back(key);
                }
            }
            After::Close => {
                // Closing the descriptor removes it from the epoll set as well.
                let conn = self.conns.remove(key);
                let _ = self.poll.registry().deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
            }
        }
    }
}

/// Echoes on one connection until it would block, closes, or uses up its budget.
fn drive(conn: &mut Conn, scratch: &mut [u8]) -> After {
    for _ in 0..MAX_ROUNDS {
        // First write back what a short write left over; read nothing new until it is gone.
        while conn.written < conn.pending.len() {
            match conn.stream.write(&conn.pending[conn.written..]) {
                Ok(0) => return After::Close,
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait, // peer's window full
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,          // EINTR: retry
                Err(_) => return After::Close,
            }
        }
        conn.pending.clear();
        conn.written = 0;
        let n = match conn.stream.read(scratch) {
            Ok(0) => return After::Close, // EOF with nothing pending: all echoed; close sends FIN
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return After::Close,
        };
        let mut sent = 0;
        while sent < n {
            match conn.stream.write(&scratch[sent..n]) {
                Ok(0) => return After::Close,
                Ok(w) => sent += w,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Short write: keep the rest and wait for WRITABLE (bounded by scratch size).
                    conn.pending.extend_from_slice(&scratch[sent..n]);
                    return After::Wait;
                }
                Err(_) => return After::Close,
            }
        }
        // A read shorter than the buffer emptied the socket: new data raises a new edge,
        // so skip the read that would only say EAGAIN (one syscall less per message).
        // Not once the peer has closed: its FIN raised no edge of its own after this read.
        if n < scratch.len() && !conn.read_closed {
            return After::Wait;
        }
    }
    After::MoreWork
}

/// [`drive`] with per-message work: reads append to `pending`; each message's CPU and
/// block run here (on the loop's thread, holding up every connection of the loop); a wait
/// holds the message's bytes and returns [`After::Held`], and the loop serves the others
/// until the wait is over.
fn drive_worked(conn: &mut Conn, scratch: &mut [u8]) -> After {
    for _ in 0..MAX_ROUNDS {
        let Some(w) = conn.work.as_deref_mut() else {
            return After::Close;
        };
        if let Some((until, to, started)) = w.hold {
            let now = Instant::now();
            if now < until {
                return After::Held(until);
            }
            crate::work::done::record(Kind::Wait, until - started, now - started);
            w.hold = None;
            w.released = to;
        }
        // The bytes not yet released: their messages' work, until a wait holds the rest.
        let mut at = w.released;
        while at < conn.pending.len() {
            let (len, completes) = w.framer.next_piece(conn.pending.len() - at);
            if completes {
                let cost = w.sampler.draw();
                let inline = !cost.cpu.is_zero() || !cost.block.is_zero();
                let wait = cost.run_inline();
                if !wait.is_zero() {
                    let now = Instant::now();
                    w.hold = Some((now + wait, at + len, now));
                    break;
                }
                if inline {
                    // Worked on this thread: its echo goes out before the next message's
                    // work, not after the whole read.
                    at += len;
                    break;
                }
            }
            at += len;
        }
        w.released = at;
        while conn.written < w.released {
            match conn.stream.write(&conn.pending[conn.written..w.released]) {
                Ok(0) => return After::Close,
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait, // peer's window full
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,          // EINTR: retry
                Err(_) => return After::Close,
            }
        }
        if let Some((until, ..)) = w.hold {
            return After::Held(until); // read nothing more while bytes are held
        }
        if w.released < conn.pending.len() {
            continue; // more messages read and not yet worked: the next round works them
        }
        conn.pending.clear();
        conn.written = 0;
        w.released = 0;
        if w.eof {
            return After::Close; // everything worked and written back: close sends FIN
        }
        let n = match conn.stream.read(scratch) {
            Ok(0) => {
                w.eof = true;
                return After::Close;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return After::Close,
        };
        conn.pending.extend_from_slice(&scratch[..n]);
    }
    After::MoreWork
}
