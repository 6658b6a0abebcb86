//! One nonblocking UDP socket's echo, for the readiness models (mio, poll): read and echo
//! until the socket would block, at most [`BATCH`] datagrams per wake-up; a reply the send
//! buffer has no room for is kept (one datagram) and reading stops until the socket is
//! writable again, so memory stays bounded and the kernel's receive queue buffers.
//!
//! `--work`: CPU and block on the loop's thread; a wait holds a copy of the datagram in a
//! timer heap ([`Deferred`]) and the loop goes on, waiting no longer than until the next
//! reply is due. At [`Deferred::MAX`] held replies reading stops until some leave.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::{Deferred, Guard, Service, DATAGRAM_BUF};

/// Datagrams per wake-up before the loop looks at its other events.
pub(crate) const BATCH: usize = 256;

/// What a UDP echo needs of its socket: mio's and std's both serve.
pub(crate) trait DatagramSocket {
    /// `recv_from(2)`.
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
    /// `sendto(2)`.
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize>;
}

impl DatagramSocket for std::net::UdpSocket {
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        std::net::UdpSocket::recv_from(self, buf)
    }
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        std::net::UdpSocket::send_to(self, buf, to)
    }
}

impl DatagramSocket for mio::net::UdpSocket {
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        mio::net::UdpSocket::recv_from(self, buf)
    }
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        mio::net::UdpSocket::send_to(self, buf, to)
    }
}

/// One socket's echo state.
pub(crate) struct Echo<S> {
    /// The nonblocking socket.
    pub(crate) socket: S,
    buf: Box<[u8]>,
    /// A reply that found the send buffer full: its length (in `buf`) and destination.
    pending: Option<(usize, SocketAddr)>,
    guard: Guard,
    service: Service,
    /// Replies waiting out their `--work` wait.
    pub(crate) deferred: Deferred,
    /// A due deferred reply found the send buffer full.
    stalled: bool,
}

impl<S: DatagramSocket> Echo<S> {
    /// The echo of `socket`, guarded by `guard`, with `service` for each datagram.
    pub(crate) fn new(socket: S, guard: Guard, service: Service) -> Echo<S> {
        Echo {
            socket,
            buf: vec![0; DATAGRAM_BUF].into_boxed_slice(),
            pending: None,
            guard,
            service,
            deferred: Deferred::default(),
            stalled: false,
        }
    }

    /// Whether a reply waits for room in the send buffer: the loop waits for writable.
    pub(crate) fn wants_writable(&self) -> bool {
        self.pending.is_some() || self.stalled
    }

    /// One wake-up's work: the held replies that are due, then up to [`BATCH`] datagrams.
    /// Returns whether datagrams may be left to read (the loop should not sleep).
    pub(crate) fn step(&mut self) -> io::Result<bool> {
        let socket = &self.socket;
        self.stalled = !self.deferred.send_due(Instant::now(), |b, to| send(socket, b, to))?;
        Ok(!self.stalled && self.serve()?)
    }

    /// Flushes the pending reply, then echoes up to [`BATCH`] datagrams. Returns whether
    /// datagrams may be left to read.
    fn serve(&mut self) -> io::Result<bool> {
        if let Some((n, to)) = self.pending {
            if !send(&self.socket, &self.buf[..n], to)? {
                return Ok(false); // still no room: wait for writable
            }
            self.pending = None;
        }
        for _ in 0..BATCH {
            if self.deferred.full() {
                return Ok(false); // the heap's timer wakes the loop; reading resumes then
            }
            let (n, src) = match self.socket.recv_from(&mut self.buf) {
                Ok(got) => got,
                // Drained: the next datagram makes the socket readable again.
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
            if !send(&self.socket, &self.buf[..n], src)? {
                self.pending = Some((n, src));
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Sends `data` to `to`; false when the send buffer is full (EAGAIN).
fn send(socket: &impl DatagramSocket, data: &[u8], to: SocketAddr) -> io::Result<bool> {
    loop {
        return match socket.send_to(data, to) {
            Ok(_) => Ok(true),
            // No room in the send buffer: keep the reply, writable comes when there is.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
            // Any other error loses this one datagram (the peer's ICMP, no route), as UDP
            // may; the socket goes on.
            Err(_) => Ok(true),
        };
    }
}
