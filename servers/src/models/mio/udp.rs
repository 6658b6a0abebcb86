//! The mio model over UDP: one event loop per thread, each on its own nonblocking
//! SO_REUSEPORT socket (the kernel spreads peers over them by address hash).
//!
//! A loop reads and echoes until the socket would block, at most [`BATCH`] datagrams per
//! wake-up before it looks at its other events (a stop request). A reply the send buffer
//! has no room for is kept (one datagram) and the loop stops reading until WRITABLE says
//! it went out: memory stays bounded, and the kernel's receive queue does the buffering.
//!
//! `--work`: CPU and block on the loop's thread; a wait holds a copy of the datagram in a
//! timer heap ([`Deferred`]) and the loop goes on, polling no longer than until the next
//! reply is due. At [`Deferred::MAX`] held replies the loop stops reading until some leave.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::os::fd::AsRawFd;

use super::MioServer;
use crate::datagram::{Deferred, Guard, GuardConfig, Service, DATAGRAM_BUF};
use crate::running::stop_started;
use crate::work::timer::TimerFd;

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);
/// A timerfd armed to the next held reply's due time (poll's timeout is whole ms).
const TIMER: Token = Token(2);
/// Datagrams per wake-up before the loop looks at its other events.
const BATCH: usize = 256;

/// Starts one loop per socket.
pub(crate) fn start(
    sockets: Vec<UdpSocket>,
    guard: GuardConfig,
    work: Option<std::sync::Arc<crate::work::Work>>,
) -> io::Result<MioServer> {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = sockets.len();
    let mut server = MioServer {
        stop: Arc::clone(&stop),
        loops: Vec::with_capacity(threads),
    };
    for (i, socket) in sockets.into_iter().enumerate() {
        socket.set_nonblocking(true)?;
        let mut socket = mio::net::UdpSocket::from_std(socket);
        let poll = Poll::new()?;
        // READABLE only: every send frees send-buffer space and would raise a WRITABLE edge,
        // a second wake-up per datagram. WRITABLE is asked for only while a reply waits.
        poll.registry().register(&mut socket, SOCKET, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let timer = match work.as_deref().is_some_and(crate::work::Work::waits) {
            true => {
                let t = TimerFd::new()?;
                poll.registry()
                    .register(&mut SourceFd(&t.as_raw_fd()), TIMER, Interest::READABLE)?;
                Some(t)
            }
            false => None,
        };
        let mut echo = Echo {
            timer,
            socket,
            buf: vec![0; DATAGRAM_BUF].into_boxed_slice(),
            pending: None,
            guard: Guard::new(guard, threads),
            service: Service::new(work.as_ref()),
            deferred: Deferred::default(),
            stalled: false,
        };
        let stop = Arc::clone(&stop);
        let spawned = std::thread::Builder::new().name(format!("mio-udp-{i}")).spawn(move || {
            if let Err(e) = echo.run(poll, &stop) {
                eprintln!("echo-server: mio udp loop {i} failed: {e}");
            }
        });
        match spawned {
            Ok(t) => server.loops.push((waker, t)),
            Err(e) => return Err(stop_started(Box::new(server), e)),
        }
    }
    Ok(server)
}

struct Echo {
    /// `--work` with a wait: fires when the next held reply is due.
    timer: Option<TimerFd>,
    socket: mio::net::UdpSocket,
    buf: Box<[u8]>,
    /// A reply that found the send buffer full: its length (in `buf`) and destination.
    pending: Option<(usize, SocketAddr)>,
    guard: Guard,
    service: Service,
    /// Replies waiting out their `--work` wait.
    deferred: Deferred,
    /// A due deferred reply found the send buffer full.
    stalled: bool,
}

impl Echo {
    fn run(&mut self, mut poll: Poll, stop: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut more = false;
        while !stop.load(Ordering::Acquire) {
            // With work left from the last batch, only look at events, do not sleep; with
            // replies held, sleep no longer than until the next is due.
            let timeout = if more {
                Some(Duration::ZERO)
            } else if let Some(t) = &mut self.timer {
                t.fired(); // read any expiry, so it can be armed again
                t.arm(self.deferred.next_due())?;
                None
            } else {
                self.deferred.next_in(Instant::now())
            };
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue; // EINTR: poll again
                }
                return Err(e);
            }
            let waiting = self.pending.is_some() || self.stalled;
            let socket = &self.socket;
            self.stalled = !self.deferred.send_due(Instant::now(), |b, to| send(socket, b, to))?;
            more = !self.stalled && self.serve()?;
            if waiting != (self.pending.is_some() || self.stalled) {
                let interest = if self.pending.is_some() || self.stalled {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                poll.registry().reregister(&mut self.socket, SOCKET, interest)?;
            }
        }
        Ok(())
    }

    /// Flushes the pending reply, then echoes up to [`BATCH`] datagrams. Returns whether
    /// datagrams may be left to read.
    fn serve(&mut self) -> io::Result<bool> {
        if let Some((n, to)) = self.pending {
            if !self.send(n, to)? {
                return Ok(false); // still no room: wait for WRITABLE
            }
            self.pending = None;
        }
        for _ in 0..BATCH {
            if self.deferred.full() {
                return Ok(false); // the heap's timer wakes the loop; reading resumes then
            }
            let (n, src) = match self.socket.recv_from(&mut self.buf) {
                Ok(got) => got,
                // Drained: the next datagram raises a new READABLE edge.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
                // An error queued by an earlier send (ICMP): the socket is still good.
                Err(_) => continue,
            };
            if !self.guard.admit(src) {
                continue;
            }
            let wait = self.service.inline();
            if !wait.is_zero() {
                self.deferred.hold(Instant::now() + wait, &self.buf[..n], src);
                continue;
            }
            if !self.send(n, src)? {
                self.pending = Some((n, src));
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends `buf[..n]` to `to`; false when the send buffer is full (EAGAIN).
    fn send(&mut self, n: usize, to: SocketAddr) -> io::Result<bool> {
        send(&self.socket, &self.buf[..n], to)
    }
}

/// Sends `data` to `to`; false when the send buffer is full (EAGAIN).
fn send(socket: &mio::net::UdpSocket, data: &[u8], to: SocketAddr) -> io::Result<bool> {
    loop {
        return match socket.send_to(data, to) {
            Ok(_) => Ok(true),
            // No room in the send buffer: keep the reply, WRITABLE comes when there is.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
            // Any other error loses this one datagram (the peer's ICMP, no route), as UDP
            // may; the socket goes on.
            Err(_) => Ok(true),
        };
    }
}
