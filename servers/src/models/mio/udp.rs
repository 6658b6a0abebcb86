//! The mio model over UDP: one event loop per thread, each on its own nonblocking
//! SO_REUSEPORT socket (the kernel spreads peers over them by address hash).
//!
//! Each loop serves its socket with [`crate::datagram::echo`] (shared with the poll model):
//! read and echo until it would block, a reply the send buffer has no room for kept until
//! WRITABLE; `--work` waits held on a timer heap whose next deadline arms the loop's timerfd.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::os::fd::AsRawFd;

use super::MioServer;
use crate::datagram::echo::Echo;
use crate::datagram::{Guard, GuardConfig, Service};
use crate::running::stop_started;
use crate::work::timer::TimerFd;

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);
/// A timerfd armed to the next held reply's due time (poll's timeout is whole ms).
const TIMER: Token = Token(2);

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
        let mut echo = Echo::new(socket, Guard::new(guard, threads), Service::new(work.as_ref()));
        let mut timer = timer;
        let stop = Arc::clone(&stop);
        let spawned = std::thread::Builder::new().name(format!("mio-udp-{i}")).spawn(move || {
            if let Err(e) = run(&mut echo, &mut timer, poll, &stop) {
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

fn run(
    echo: &mut Echo<mio::net::UdpSocket>,
    timer: &mut Option<TimerFd>,
    mut poll: Poll,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut events = Events::with_capacity(16);
    let mut more = false;
    while !stop.load(Ordering::Acquire) {
        // With work left from the last batch, only look at events, do not sleep; with
        // replies held, sleep no longer than until the next is due.
        let timeout = if more {
            Some(Duration::ZERO)
        } else if let Some(t) = timer {
            t.fired(); // read any expiry, so it can be armed again
            t.arm(echo.deferred.next_due())?;
            None
        } else {
            echo.deferred.next_in(Instant::now())
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue; // EINTR: poll again
            }
            return Err(e);
        }
        let waiting = echo.wants_writable();
        more = echo.step()?;
        if waiting != echo.wants_writable() {
            // READABLE only, but WRITABLE while a reply waits: every send frees send-buffer
            // space and would otherwise raise an edge, a second wake-up per datagram.
            let interest = if echo.wants_writable() {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            poll.registry().reregister(&mut echo.socket, SOCKET, interest)?;
        }
    }
    Ok(())
}
