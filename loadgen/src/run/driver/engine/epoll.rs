//! The epoll engine (`--engine epoll`, the default): mio's poller, edge-triggered, and
//! reads and writes as one system call each on the nonblocking socket.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::ready::{Ready, TIMER};
use crate::run::driver::socket::Sock;

/// Events taken from the kernel per wait.
const EVENTS: usize = 1024;

/// One thread's poller and its event buffer.
pub(crate) struct EpollIo {
    poll: Poll,
    events: Events,
}

impl EpollIo {
    /// A new epoll instance.
    pub(super) fn new() -> io::Result<EpollIo> {
        Ok(EpollIo {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS),
        })
    }

    /// Reports the timer `fd`'s expiries as readable, token [`TIMER`].
    pub(super) fn watch_timer(&mut self, fd: RawFd) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(TIMER), Interest::READABLE)
    }

    /// Registers a socket whose connect has started.
    pub(super) fn watch(&mut self, sock: &Sock, token: usize) -> io::Result<()> {
        // A stream needs WRITABLE (the connect's end, a full send buffer). A UDP socket does
        // not: every send would raise a WRITABLE edge (a wake-up per datagram for nothing);
        // a send that found its buffer full is retried at the next event or scan.
        let interest = match sock {
            Sock::Dgram(..) => Interest::READABLE,
            Sock::Tcp(_) | Sock::Unix(_) => Interest::READABLE | Interest::WRITABLE,
        };
        self.poll
            .registry()
            .register(&mut SourceFd(&sock.fd()), Token(token), interest)
    }

    /// Deregisters the socket, which closes when dropped here.
    pub(super) fn close(&mut self, sock: Sock) {
        // Fails only for a socket never registered (its connect failed at once): moot.
        let _ = self.poll.registry().deregister(&mut SourceFd(&sock.fd()));
    }

    /// One `epoll_wait` of at most `timeout`.
    pub(super) fn wait(&mut self, timeout: Duration, out: &mut Vec<Ready>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            // EINTR: a signal arrived; nothing is ready, the caller's loop waits again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        out.extend(self.events.iter().map(|e| Ready {
            token: e.token().0,
            readable: e.is_readable(),
            writable: e.is_writable(),
            closed: e.is_read_closed() || e.is_error(),
        }));
        Ok(())
    }
}

/// One `write` (a stream) or `send` (a datagram).
#[inline]
pub(super) fn send(sock: &mut Sock, data: &[u8]) -> io::Result<usize> {
    match sock {
        Sock::Tcp(s) => s.write(data),
        Sock::Unix(s) => s.write(data),
        Sock::Dgram(s, _) => s.send(data),
    }
}

/// One `read`/`recv`, or with `stamped` one `recvmsg` that brings the kernel's receive
/// stamp (TCP and UDP; a Unix socket has none).
#[inline]
pub(super) fn recv(sock: &mut Sock, out: &mut [u8], stamped: bool) -> io::Result<(usize, Option<u64>)> {
    match sock {
        Sock::Tcp(s) if stamped => crate::os::rxstamp::recv(s.as_raw_fd(), out),
        Sock::Dgram(s, _) if stamped => crate::os::rxstamp::recv(s.as_raw_fd(), out),
        Sock::Tcp(s) => s.read(out).map(|n| (n, None)),
        Sock::Unix(s) => s.read(out).map(|n| (n, None)),
        Sock::Dgram(s, _) => s.recv(out).map(|n| (n, None)),
    }
}
