//! The I/O engine seam: how a client thread waits for its sockets and moves their bytes.
//!
//! One value, [`Io`], owns either the thread's epoll instance ([`epoll`], readiness: the
//! loop reads and writes with system calls when told it can) or its io_uring ring
//! ([`uring`], completions: reads and writes are operations the ring submits in one
//! `io_uring_enter` per loop iteration). The event loop speaks only to [`Io`]: it hands a
//! socket over once its connect has started ([`Io::watch`]), says when it is open
//! ([`Io::opened`]), sends and receives through it ([`Io::send`], [`Io::recv`]), waits
//! with it ([`Io::wait`], which reports engine-neutral [`Ready`] values) and gives the
//! socket back to it to close ([`Io::close`]). Sockets stay plain sockets
//! ([`Sock`]); what io_uring keeps per socket (received buffers, the send in flight) lives
//! in the ring's own table, by the connection's token.
//!
//! The engine is chosen once per run (`--engine`); both drive every transport.

mod epoll;
mod ready;
mod uring;

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

pub(super) use ready::{Ready, TIMER};

use super::socket::Sock;
use crate::config::Engine;

/// One client thread's I/O engine.
#[allow(
    clippy::large_enum_variant,
    reason = "one per thread, never in a collection: boxing would only add a pointer chase per send"
)]
pub(super) enum Io {
    /// Readiness through epoll (mio); reads and writes are system calls.
    Epoll(epoll::EpollIo),
    /// Completions through io_uring; reads and writes are ring operations.
    Uring(uring::UringIo),
}

impl Io {
    /// The engine `--engine` chose; `rx_stamps`: reads take the kernel's receive stamp;
    /// `datagram`: the largest datagram to receive, when the sockets are UDP.
    pub(super) fn new(engine: Engine, rx_stamps: bool, datagram: Option<usize>) -> io::Result<Io> {
        Ok(match engine {
            Engine::Epoll => Io::Epoll(epoll::EpollIo::new()?),
            Engine::Uring => Io::Uring(uring::UringIo::new(rx_stamps, datagram)?),
        })
    }

    /// Watches the open-loop timer `fd`: its firing is reported with token [`TIMER`].
    pub(super) fn watch_timer(&mut self, fd: RawFd) -> io::Result<()> {
        match self {
            Io::Epoll(e) => e.watch_timer(fd),
            Io::Uring(u) => u.watch_timer(fd),
        }
    }

    /// Takes `sock`, whose connect has started, as connection `token`: the end of the
    /// handshake is reported as writable (over UDP, the probe's echo as readable).
    pub(super) fn watch(&mut self, sock: &Sock, token: usize) -> io::Result<()> {
        match self {
            Io::Epoll(e) => e.watch(sock, token),
            Io::Uring(u) => u.watch(sock, token),
        }
    }

    /// Connection `token`'s connect has not finished although its engine said it might
    /// have (a datagram socket read another datagram than its probe's echo): wait again.
    pub(super) fn still_connecting(&mut self, token: usize) -> io::Result<()> {
        match self {
            Io::Epoll(_) => Ok(()), // edge-triggered readiness comes again by itself
            Io::Uring(u) => u.still_connecting(token),
        }
    }

    /// Connection `token`'s connect has finished: from now on it receives.
    pub(super) fn opened(&mut self, token: usize) -> io::Result<()> {
        match self {
            Io::Epoll(_) => Ok(()), // readiness needs nothing more
            Io::Uring(u) => u.opened(token),
        }
    }

    /// Closes connection `token`'s socket: out of epoll at once, or kept by the ring until
    /// the operations the kernel still holds of it have completed.
    pub(super) fn close(&mut self, token: usize, sock: Sock) {
        match self {
            Io::Epoll(e) => e.close(sock),
            Io::Uring(u) => u.close(token, sock),
        }
    }

    /// Waits at most `timeout` (zero: not at all) and appends what is ready to `out`.
    pub(super) fn wait(&mut self, timeout: Duration, out: &mut Vec<Ready>) -> io::Result<()> {
        match self {
            Io::Epoll(e) => e.wait(timeout, out),
            Io::Uring(u) => u.wait(timeout, out),
        }
    }

    /// Writes `data` to connection `token` (one system call, or one queued send): how
    /// much was taken, or WouldBlock.
    #[inline]
    pub(super) fn send(&mut self, token: usize, sock: &mut Sock, data: &[u8]) -> io::Result<usize> {
        match self {
            Io::Epoll(_) => epoll::send(sock, data),
            Io::Uring(u) => u.send(token, data),
        }
    }

    /// Reads into `out` from connection `token`: bytes read (0 at EOF) and, with
    /// `stamped`, the kernel's receive stamp of the last packet read (realtime ns) where
    /// the socket has stamps turned on; WouldBlock when nothing is there.
    #[inline]
    pub(super) fn recv(
        &mut self,
        token: usize,
        sock: &mut Sock,
        out: &mut [u8],
        stamped: bool,
    ) -> io::Result<(usize, Option<u64>)> {
        match self {
            Io::Epoll(_) => epoll::recv(sock, out, stamped),
            Io::Uring(u) => u.recv(token, out, stamped),
        }
    }
}

#[cfg(test)]
mod tests;
