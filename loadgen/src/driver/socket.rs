//! The socket kinds a client connection can be (TCP, Unix stream), how a nonblocking
//! connect starts (from a chosen source address when `--bind` gives one) and how it is
//! known to have finished, and which fault an I/O error counts as.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use servers::ListenAddr;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::record::{Failure, Fault};
use crate::sys;

/// A client socket of one of the stream kinds.
pub(super) enum Sock {
    /// TCP over IPv4 or IPv6.
    Tcp(mio::net::TcpStream),
    /// A Unix domain stream socket.
    Unix(mio::net::UnixStream),
}

impl Sock {
    /// Starts a nonblocking connect, from source address `from` when given, with
    /// SO_SNDBUF/SO_RCVBUF of `sock_buf` bytes when given.
    pub(super) fn connect(addr: &ListenAddr, from: Option<IpAddr>, sock_buf: Option<usize>) -> io::Result<Sock> {
        let (domain, target) = match addr {
            ListenAddr::Tcp(a) => (Domain::for_address(*a), SockAddr::from(*a)),
            ListenAddr::Unix(p) => (Domain::UNIX, SockAddr::unix(p)?),
        };
        let socket = Socket::new(domain, Type::STREAM.nonblocking().cloexec(), None)?;
        if let Some(size) = sock_buf {
            socket.set_send_buffer_size(size)?;
            socket.set_recv_buffer_size(size)?;
        }
        if let Some(ip) = from {
            // Pick the port at connect time, not at bind: the (source, destination) pair
            // then decides uniqueness, so one source address is not capped at ~28k ports
            // over all destinations. Unsupported kernels just pick it at bind.
            let _ = socket.set_reuse_address(true);
            let _ = sys::set_bind_no_port(&socket);
            socket.bind(&SocketAddr::new(ip, 0).into())?;
        }
        match socket.connect(&target) {
            Ok(()) => {}
            // EINPROGRESS: the handshake goes on; WRITABLE tells when it is done.
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            // EAGAIN on a Unix socket: the listener's backlog is full; counted as a failed
            // connect and retried like a refused one.
            Err(e) => return Err(e),
        }
        Ok(match addr {
            ListenAddr::Tcp(_) => Sock::Tcp(mio::net::TcpStream::from_std(socket.into())),
            ListenAddr::Unix(_) => Sock::Unix(mio::net::UnixStream::from_std(socket.into())),
        })
    }

    /// Makes the coming close send RST instead of FIN (SO_LINGER 0): no TIME_WAIT.
    pub(super) fn set_reset_on_close(&self) {
        let sock = match self {
            Sock::Tcp(s) => socket2::SockRef::from(s),
            Sock::Unix(s) => socket2::SockRef::from(s),
        };
        // Fails only on a socket that is already gone: its close is moot then.
        let _ = sock.set_linger(Some(std::time::Duration::ZERO));
    }

    /// The descriptor, to register with the poller.
    pub(super) fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    /// `Ok(true)` once connected, `Ok(false)` while still connecting.
    pub(super) fn connected(&self) -> io::Result<bool> {
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

/// The failure an I/O error on an open connection counts as, with its errno.
pub(super) fn classify(e: &io::Error) -> Failure {
    let fault = match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => Fault::Reset,
        io::ErrorKind::TimedOut => Fault::Timeout,
        _ => Fault::Other,
    };
    Failure {
        fault,
        errno: e.raw_os_error(),
    }
}

/// A failed connect, with its errno.
pub(super) fn connect_failure(e: &io::Error) -> Failure {
    Failure {
        fault: Fault::Connect,
        errno: e.raw_os_error(),
    }
}
