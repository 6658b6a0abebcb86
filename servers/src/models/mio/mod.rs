//! The mio model: nonblocking sockets, edge-triggered readiness, one event loop per thread.
//!
//! With `--threads N > 1` over TCP every loop owns its own SO_REUSEPORT listener and the
//! kernel spreads new connections across them (no hand-off between threads); over a Unix
//! socket the loops share one listener and whichever loop wakes first accepts.
//!
//! Each loop reads into one 64 KiB scratch buffer and writes straight back. Only what a
//! short write leaves over is copied into the connection's own buffer (the serving of one
//! connection is [`crate::nonblocking`], shared with the poll model). A connection is served
//! for at most [`crate::nonblocking::MAX_ROUNDS`] read/write rounds per wake-up, then put on
//! a ready list behind the others, so one busy peer cannot starve the rest.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::accept::AcceptPolicy;
use crate::nonblocking::{Conn, Conns};
use crate::running::{stop_started, Running};
use crate::stream::Listener;
use crate::work::timer::TimerFd;
use crate::work::Work;

pub(crate) mod udp;

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
/// The loop's timerfd: fires at the next `--work` wait's end (poll's timeout is whole ms).
const TIMER: Token = Token(2);
const FIRST_CONN: usize = 3;

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
            conns: Conns::new(work.clone()),
            policy: AcceptPolicy::default(),
            accept_paused_until: None,
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

struct EventLoop {
    poll: Poll,
    listener: Listener,
    conns: Conns,
    policy: AcceptPolicy,
    accept_paused_until: Option<Instant>,
    /// `--work` with a wait: armed to the first wait's end.
    timer: Option<TimerFd>,
}

impl EventLoop {
    fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let next_timer = self.conns.next_deadline();
            // The timerfd wakes the poll at the next wait's end; without one (it cannot be
            // that work waits and there is none) the poll's timeout does, in whole ms.
            let by_poll = match &mut self.timer {
                Some(t) => {
                    t.arm(next_timer)?;
                    None
                }
                None => next_timer,
            };
            let timeout = if !self.conns.owed_now() {
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
                        let Some(conn) = self.conns.slab.get_mut(key) else {
                            continue;
                        }; // closed already
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
            // Waits that are over, then the ready list.
            let registry = self.poll.registry();
            self.conns.serve_owed(|conn| forget(registry, &conn));
        }
    }

    fn accept_all(&mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        // Both directions, edge-triggered: no busy loop while it is idle.
        self.accept_paused_until = self.conns.accept_all(&self.listener, &mut self.policy, |key, stream| {
            registry.register(
                &mut SourceFd(&stream.as_raw_fd()),
                Token(key + FIRST_CONN),
                Interest::READABLE | Interest::WRITABLE,
            )
        })?;
        Ok(())
    }

    fn serve(&mut self, key: usize) {
        if let Some(conn) = self.conns.serve(key) {
            forget(self.poll.registry(), &conn);
        }
    }
}

/// Takes a closed connection out of the epoll set (closing its descriptor would too, once
/// no other copy of it is open).
fn forget(registry: &mio::Registry, conn: &Conn) {
    let _ = registry.deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
}
