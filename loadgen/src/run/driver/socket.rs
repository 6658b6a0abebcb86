//! The socket kinds a client connection can be (TCP, Unix stream, connected UDP, ICMP
//! echo), how a
//! nonblocking connect starts (from a chosen source address when `--bind` gives one) and
//! how it is known to have finished, and which fault an I/O error counts as.
//!
//! A UDP "connection" is a connected UDP socket. It counts as open once the server has
//! echoed its probe (a header-only datagram, [`crate::measure::wire::probe`]): a server that is not
//! there answers with ICMP port unreachable, which the socket reports as ECONNREFUSED,
//! and the connect fails like a refused TCP connect. An ICMP echo socket
//! ([`crate::os::icmp`]) is a datagram socket too, its messages behind an ICMP header: it
//! opens the same way, and the kernel echoes its probe.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use servers::ListenAddr;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::measure::record::{Failure, Fault};
use crate::measure::wire;
use crate::os::icmp::{self, Framing};
use crate::os::sys;

/// A client socket: a stream or a connected datagram socket. Its bytes move through the
/// thread's engine (`engine::Io`), which also waits for it.
pub(super) enum Sock {
    /// TCP over IPv4 or IPv6.
    Tcp(mio::net::TcpStream),
    /// A Unix domain stream socket.
    Unix(mio::net::UnixStream),
    /// A connected datagram socket: UDP (no framing), or ICMP echo with the header its
    /// messages go behind (mio's UDP type only sends and receives: any datagram socket will do).
    Dgram(mio::net::UdpSocket, Option<Framing>),
}

impl Sock {
    /// Starts a nonblocking connect, from source address `from` when given, with
    /// SO_SNDBUF/SO_RCVBUF of `sock_buf` bytes when given. Over UDP the socket connects at
    /// once and sends connection `id`'s probe, stamped `now_ns`.
    pub(super) fn connect(
        addr: &ListenAddr,
        from: Option<IpAddr>,
        sock_buf: Option<usize>,
        (id, now_ns): (u32, u64),
    ) -> io::Result<Sock> {
        if let ListenAddr::Icmp(ip) = addr {
            // Distinct per connection (ids below 65536 stay distinct), and apart from other
            // processes' raw sockets by the process id.
            let (socket, framing) = icmp::open(*ip, id as u16 ^ std::process::id() as u16, from)?;
            servers::listen::set_buffers(&socket, sock_buf)?;
            let sock = Sock::Dgram(mio::net::UdpSocket::from_std(socket.into()), Some(framing));
            sock.reprobe(id, now_ns)?;
            return Ok(sock);
        }
        let (domain, target, kind) = match addr {
            ListenAddr::Tcp(a) => (Domain::for_address(*a), SockAddr::from(*a), Type::STREAM),
            ListenAddr::Unix(p) => (Domain::UNIX, SockAddr::unix(p)?, Type::STREAM),
            ListenAddr::SeqPacket(p) => (Domain::UNIX, SockAddr::unix(p)?, Type::SEQPACKET),
            ListenAddr::Udp(a) => (Domain::for_address(*a), SockAddr::from(*a), Type::DGRAM),
            ListenAddr::Icmp(_) => unreachable!("opened above"),
        };
        let socket = Socket::new(domain, kind.nonblocking().cloexec(), None)?;
        servers::listen::set_buffers(&socket, sock_buf)?;
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
            // A SOCK_SEQPACKET socket connects, reads and writes as a Unix stream does: the
            // framing (one message per write) is the event loop's.
            ListenAddr::Unix(_) | ListenAddr::SeqPacket(_) => Sock::Unix(mio::net::UnixStream::from_std(socket.into())),
            ListenAddr::Udp(_) | ListenAddr::Icmp(_) => {
                let sock = Sock::Dgram(mio::net::UdpSocket::from_std(socket.into()), None);
                sock.reprobe(id, now_ns)?;
                sock
            }
        })
    }

    /// TCP_NODELAY, where the socket is TCP (a no-op elsewhere).
    pub(super) fn set_nodelay(&self) {
        // Without NODELAY, Nagle would hold small messages back: latency, not correctness.
        if let Sock::Tcp(s) = self {
            let _ = s.set_nodelay(true);
        }
    }

    /// Asks the kernel to stamp this socket's arriving packets (TCP and UDP; a no-op for
    /// Unix sockets). A kernel that refuses leaves reads unstamped.
    pub(super) fn enable_rx_stamps(&self) {
        let fd = match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Dgram(s, _) => s.as_raw_fd(),
            Sock::Unix(_) => return,
        };
        // Refused (an old kernel): the reads come back without a stamp, the column stays empty.
        let _ = crate::os::rxstamp::enable(fd);
    }

    /// A datagram socket, still connecting: sends the probe (again: it or its echo may
    /// have been lost).
    pub(super) fn reprobe(&self, id: u32, now_ns: u64) -> io::Result<()> {
        match self {
            Sock::Dgram(s, framing) => {
                let mut packet = [0u8; icmp::HEADER + wire::HEADER];
                let pre = self.prefix();
                packet[pre..pre + wire::HEADER].copy_from_slice(&wire::probe(id, now_ns));
                if let Some(f) = framing {
                    f.write_request(&mut packet[..pre + wire::HEADER], wire::PROBE);
                }
                send_probe(s, &packet[..pre + wire::HEADER])
            }
            _ => Ok(()),
        }
    }

    /// How many bytes go before each message on the wire: the ICMP header, or none.
    #[inline]
    pub(super) fn prefix(&self) -> usize {
        match self {
            Sock::Dgram(_, Some(_)) => icmp::HEADER,
            _ => 0,
        }
    }

    /// Writes what goes before message `seq` into `packet[..prefix()]`, once the message
    /// is in place after it (an IPv4 raw socket's checksum covers it).
    #[inline]
    pub(super) fn frame(&self, packet: &mut [u8], seq: u64) {
        if let Sock::Dgram(_, Some(f)) = self {
            f.write_request(packet, seq);
        }
    }

    /// Where the echoed message starts in `packet` as read, or `None` when it is no echo
    /// reply to this socket (ICMP: another type, or another socket's).
    #[inline]
    pub(super) fn reply_start(&self, packet: &[u8]) -> Option<usize> {
        match self {
            Sock::Dgram(_, Some(f)) => f.reply_start(packet),
            _ => Some(0),
        }
    }

    /// Makes the coming close send RST instead of FIN (SO_LINGER 0): no TIME_WAIT.
    pub(super) fn set_reset_on_close(&self) {
        let sock = match self {
            Sock::Tcp(s) => socket2::SockRef::from(s),
            Sock::Unix(s) => socket2::SockRef::from(s),
            Sock::Dgram(..) => return, // no connection to reset
        };
        // Fails only on a socket that is already gone: its close is moot then.
        let _ = sock.set_linger(Some(std::time::Duration::ZERO));
    }

    /// The descriptor, for the engine and TCP_INFO.
    pub(super) fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
            Sock::Dgram(s, _) => s.as_raw_fd(),
        }
    }

    /// `Ok(true)` once connected, `Ok(false)` while still connecting. Over UDP: once the
    /// echo of connection `id`'s probe is back (other datagrams before it are dropped);
    /// ECONNREFUSED when the server's host said nobody serves the port.
    pub(super) fn connected(&self, id: u32) -> io::Result<bool> {
        let (err, peer) = match self {
            Sock::Tcp(s) => (s.take_error(), s.peer_addr().map(drop)),
            Sock::Unix(s) => (s.take_error(), s.peer_addr().map(drop)),
            Sock::Dgram(s, _) => {
                let mut buf = [0u8; icmp::MAX_IP_HEADER + icmp::HEADER + wire::HEADER + 1];
                loop {
                    return match s.recv(&mut buf) {
                        Ok(n)
                            if self
                                .reply_start(&buf[..n])
                                .is_some_and(|at| wire::is_probe_echo(&buf[at..n], id)) =>
                        {
                            Ok(true)
                        }
                        Ok(_) => continue, // not our probe's echo: keep looking
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR
                        Err(e) => Err(e),
                    };
                }
            }
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

fn send_probe(s: &mio::net::UdpSocket, packet: &[u8]) -> io::Result<()> {
    match s.send(packet) {
        // ECONNREFUSED: an earlier probe met a closed port (ICMP): the connect fails.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(e),
        // Any other failure (a full send buffer, a firewall's EPERM) loses this probe only:
        // the next one follows (`reprobe`), within the connect timeout.
        _ => Ok(()),
    }
}

/// The failure an I/O error on an open connection counts as, with its errno.
pub(super) fn classify(e: &io::Error) -> Failure {
    let fault = match e.kind() {
        // ECONNREFUSED on an open UDP socket: the server's port closed (ICMP).
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionRefused => Fault::Reset,
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
