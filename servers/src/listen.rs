//! Binding listening sockets through socket2: a real backlog (std's is fixed at 128),
//! SO_REUSEADDR, SO_REUSEPORT groups for multi-loop servers, and Unix socket paths.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::addr::ListenAddr;
use crate::stream::Listener;

/// Binds `count` listening sockets on `addr` with `backlog`.
///
/// TCP with `count > 1`: each socket has SO_REUSEPORT and its own accept queue, and the
/// kernel spreads new connections across them (port 0 is resolved by the first bind, the
/// rest join that port). Unix sockets cannot do that: the extra listeners share the first
/// one's descriptor (`try_clone`), and every loop accepts from the one queue.
/// With `reuse_port`, TCP listeners get SO_REUSEPORT even when `count` is 1, so other
/// processes can bind the same port. With `inherited`, a Unix listener is not bound but
/// taken from that descriptor (one another process of the server bound and passed on).
pub fn bind(
    addr: &ListenAddr,
    backlog: u32,
    count: usize,
    sock_buf: Option<usize>,
    reuse_port: bool,
    inherited: Option<RawFd>,
) -> io::Result<Vec<Listener>> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    if let (ListenAddr::Unix(_) | ListenAddr::SeqPacket(_), Some(fd)) = (addr, inherited) {
        // SAFETY: the descriptor was handed to this process to own (`--listen-fd`): nothing
        // else in it uses or closes it.
        let first = UnixListener::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut listeners = vec![Listener::Unix(first.try_clone()?)];
        for _ in 1..count {
            listeners.push(Listener::Unix(first.try_clone()?));
        }
        return Ok(listeners);
    }
    match addr {
        ListenAddr::Tcp(sa) => {
            let reuse_port = reuse_port || count > 1;
            let first = bind_tcp(*sa, backlog, reuse_port, sock_buf)?;
            let bound = first.local_addr()?;
            let mut listeners = vec![Listener::Tcp(first)];
            for _ in 1..count {
                listeners.push(Listener::Tcp(bind_tcp(bound, backlog, true, sock_buf)?));
            }
            Ok(listeners)
        }
        ListenAddr::Udp(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a UDP address has no listener: bind it with bind_udp",
        )),
        // The kernel answers ICMP echo requests itself: there is nothing for a model to serve.
        ListenAddr::Icmp(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel answers ICMP echo itself: no model listens on icmp://; load it with loadgen --addr",
        )),
        ListenAddr::Unix(_) | ListenAddr::SeqPacket(_) => {
            let first = bind_unix(addr, backlog, sock_buf)?;
            let mut listeners = Vec::with_capacity(count);
            for _ in 1..count {
                listeners.push(Listener::Unix(first.try_clone()?));
            }
            listeners.insert(0, Listener::Unix(first));
            Ok(listeners)
        }
    }
}

/// Binds `count` UDP sockets on `addr`: with `count > 1` (or `reuse_port`) all with
/// SO_REUSEPORT on one port (port 0 is resolved by the first bind), so the kernel spreads
/// peers over them by address hash and connected sockets can share the port.
pub fn bind_udp(
    addr: std::net::SocketAddr,
    count: usize,
    sock_buf: Option<usize>,
    reuse_port: bool,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let reuse_port = reuse_port || count > 1;
    let one = |at: std::net::SocketAddr| -> io::Result<std::net::UdpSocket> {
        let socket = Socket::new(Domain::for_address(at), Type::DGRAM.cloexec(), None)?;
        set_buffers(&socket, sock_buf)?;
        if reuse_port {
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
        }
        socket
            .bind(&at.into())
            .map_err(|e| with_addr(e, &format!("udp://{at}")))?;
        Ok(socket.into())
    };
    let first = one(addr)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(one(bound)?);
    }
    Ok(sockets)
}

fn bind_tcp(
    addr: std::net::SocketAddr,
    backlog: i32,
    reuse_port: bool,
    sock_buf: Option<usize>,
) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    set_buffers(&socket, sock_buf)?;
    // Lets a restarted server rebind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into()).map_err(|e| with_addr(e, &addr.to_string()))?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// SO_SNDBUF and SO_RCVBUF of a socket (a listener's connections inherit them; the kernel
/// doubles the value and applies its minimum). With CAP_NET_ADMIN the FORCE variants go
/// past `net.core.{w,r}mem_max` (a UDP server's queue needs that to hold a burst); without
/// it the value is capped there.
pub fn set_buffers(socket: &Socket, sock_buf: Option<usize>) -> io::Result<()> {
    if let Some(size) = sock_buf {
        if rustix::net::sockopt::set_socket_send_buffer_size_force(socket, size).is_err() {
            socket.set_send_buffer_size(size)?; // EPERM: not privileged, take the cap
        }
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(socket, size).is_err() {
            socket.set_recv_buffer_size(size)?; // EPERM: not privileged, take the cap
        }
    }
    Ok(())
}

/// Binds a Unix listener at `addr`'s path: a stream socket, or SOCK_SEQPACKET for
/// `seqpacket:` (the models then serve its connections as streams: a read returns one
/// packet, a write sends one).
fn bind_unix(addr: &ListenAddr, backlog: i32, sock_buf: Option<usize>) -> io::Result<UnixListener> {
    let path = addr.unix_path().expect("a Unix address");
    let kind = match addr {
        ListenAddr::SeqPacket(_) => Type::SEQPACKET,
        _ => Type::STREAM,
    };
    let try_bind = || -> io::Result<UnixListener> {
        let socket = Socket::new(Domain::UNIX, kind, None)?;
        set_buffers(&socket, sock_buf)?;
        socket.bind(&SockAddr::unix(path)?)?;
        socket.listen(backlog)?;
        Ok(UnixListener::from(std::os::fd::OwnedFd::from(socket)))
    };
    match try_bind() {
        // A socket file left by a server that died is stale when nobody accepts on it:
        // remove it and bind again. A live server's socket is never touched.
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && is_stale_socket(path, kind) => {
            std::fs::remove_file(path)?;
            try_bind()
        }
        other => other,
    }
    .map_err(|e| with_addr(e, &addr.to_string()))
}

/// Whether the socket file at `path` is left over: nobody accepts on it (a connect of the
/// same `kind` is refused).
fn is_stale_socket(path: &Path, kind: Type) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    let refused = || -> io::Result<bool> {
        let probe = Socket::new(Domain::UNIX, kind, None)?;
        Ok(matches!(probe.connect(&SockAddr::unix(path)?), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused))
    };
    is_socket && refused().unwrap_or(false)
}

fn with_addr(e: io::Error, addr: &str) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuseport_group_shares_one_port() {
        let ls = bind(&"127.0.0.1:0".parse().unwrap(), 64, 3, None, false, None).unwrap();
        let port = |l: &Listener| match l.local_addr().unwrap() {
            ListenAddr::Tcp(a) => a.port(),
            _ => unreachable!(),
        };
        assert_ne!(port(&ls[0]), 0);
        assert!(ls.iter().all(|l| port(l) == port(&ls[0])));
    }

    #[test]
    fn stale_unix_socket_is_replaced_live_one_is_not() {
        let path = std::env::temp_dir().join(format!("echo-bench-listen-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let addr = ListenAddr::Unix(path.clone());
        drop(bind(&addr, 8, 1, None, false, None).unwrap()); // leaves the file behind, nobody listening
        let live = bind(&addr, 8, 1, None, false, None).unwrap();
        let err = bind(&addr, 8, 1, None, false, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        drop(live);
        std::fs::remove_file(&path).unwrap();
    }
}
