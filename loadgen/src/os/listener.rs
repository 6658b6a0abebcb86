//! The server's listening sockets as the kernel sees them (sock_diag, what `ss -ltn` shows):
//! for a listener the receive queue is its accept queue now, and the send queue is the
//! backlog its `listen()` got (already capped by `net.core.somaxconn`). A server that asked
//! for a backlog of 5 overflows at the sixth unaccepted connection whatever somaxconn says,
//! so a run names the real number instead of blaming the sysctl.
//!
//! Read through netlink (`netlink-packet-sock-diag`, `netlink-sys`: the rust-netlink
//! project's crates) in this process's network namespace, or on the server's host by
//! `loadgen agent`. Without the `sockdiag` feature nothing is read: every backlog is unknown.

use serde::Serialize;

/// The TCP listeners on one port, taken together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Backlog {
    /// Listening sockets on the port (several with SO_REUSEPORT, or IPv4 and IPv6).
    pub listeners: u32,
    /// The smallest backlog among them: where connections overflow first.
    pub max: u32,
    /// Connections waiting in their accept queues now, summed.
    pub queued: u32,
}

/// The TCP listeners that take connections to `addr` in this network namespace: bound to
/// its address, or to the unspecified one when `addr` is local. `None` when there is none
/// (the server is on another host) or sock_diag cannot be read.
pub fn backlog(addr: std::net::SocketAddr) -> Option<Backlog> {
    // An address is this namespace's when a socket can be bound to it.
    let local = addr.ip().is_loopback() || std::net::UdpSocket::bind((addr.ip(), 0)).is_ok();
    gather(addr.port(), |ip| ip == addr.ip() || (local && ip.is_unspecified()))
}

/// The TCP listeners on `port`, whatever their address (the agent's view of its host).
#[cfg_attr(not(feature = "agent"), allow(dead_code))] // the agent's
pub fn backlog_on_port(port: u16) -> Option<Backlog> {
    gather(port, |_| true)
}

/// The listeners on `port` whose address `takes`, taken together.
fn gather(port: u16, takes: impl Fn(std::net::IpAddr) -> bool) -> Option<Backlog> {
    let mut found = Backlog {
        max: u32::MAX,
        ..Backlog::default()
    };
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        for (_, max, queued) in diag::listeners(family, port).ok()?.into_iter().filter(|l| takes(l.0)) {
            found.listeners += 1;
            found.max = found.max.min(max);
            found.queued += queued;
        }
    }
    (found.listeners > 0).then_some(found)
}

/// The sock_diag query itself (netlink).
#[cfg(feature = "sockdiag")]
mod diag {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
    use netlink_packet_sock_diag::constants::IPPROTO_TCP;
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

    /// (address, backlog, queued) of every TCP listener of `family` on `port`.
    pub(super) fn listeners(family: u8, port: u16) -> std::io::Result<Vec<(std::net::IpAddr, u32, u32)>> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::LISTEN,
                socket_id: if family == libc::AF_INET as u8 {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            })
            .into(),
        );
        request.finalize();
        let mut buf = vec![0; request.buffer_len()];
        request.serialize(&mut buf);
        socket.send(&buf, 0)?;
        let mut found = Vec::new();
        let mut rx = vec![0; 64 * 1024];
        loop {
            let size = socket.recv(&mut &mut rx[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message = <NetlinkMessage<SockDiagMessage>>::deserialize(&rx[offset..size])
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r))
                        if r.header.socket_id.source_port == port =>
                    {
                        let id = &r.header.socket_id;
                        found.push((id.source_address, r.header.send_queue, r.header.recv_queue));
                    }
                    NetlinkPayload::Done(_) => return Ok(found),
                    NetlinkPayload::Error(e) => return Err(std::io::Error::other(format!("sock_diag: {e:?}"))),
                    _ => {}
                }
                let len = message.header.length as usize;
                if len == 0 {
                    break; // a malformed header: stop rather than loop
                }
                offset += len;
            }
        }
    }
}

/// Built without the `sockdiag` feature: no query, so no backlog is ever known.
#[cfg(not(feature = "sockdiag"))]
mod diag {
    /// Always `Unsupported`.
    pub(super) fn listeners(_family: u8, _port: u16) -> std::io::Result<Vec<(std::net::IpAddr, u32, u32)>> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listeners_backlog_is_what_it_asked_for() {
        // A socket listening with a backlog of 5, and two unaccepted connections queued.
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        sock.listen(5).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let port = addr.port();
        let b = backlog(addr).expect("the listener is found");
        assert_eq!((b.listeners, b.max, b.queued), (1, 5, 0));
        let _c: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        let b = backlog(addr).unwrap();
        assert_eq!(b.queued, 2);
        // Another address on the port is another listener's (none here).
        assert_eq!(backlog(([127, 0, 0, 2], port).into()), None);
        drop(sock);
        assert_eq!(backlog(addr), None);
    }
}
