//! The kernel's own echo as a target (`--addr icmp://HOST`): sockets that send ICMP (or
//! ICMPv6) echo requests and receive only their own replies, and the 8-byte ICMP header
//! put before each message and taken off each reply.
//!
//! Two ways in, tried in this order:
//! - a **ping socket** (`SOCK_DGRAM`, `IPPROTO_ICMP`): the kernel gives each socket its own
//!   identifier, fills in the checksum and routes replies to it like a UDP port. Allowed
//!   when the process's group is in `net.ipv4.ping_group_range` (IPv4 and IPv6 alike);
//! - a **raw socket** (`SOCK_RAW`), with CAP_NET_RAW: it sees every ICMP packet of the
//!   host, so a classic BPF filter attached to it keeps only echo replies with its own
//!   identifier, and the kernel, not this process, drops everyone else's. Over IPv4 a raw
//!   socket reads the IP header too, and its sender computes the checksum.
//!
//! Either way one socket is one "connection", as a connected UDP socket is: the event loop
//! and both engines drive it unchanged.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The ICMP echo header before every message: type, code, checksum, identifier, sequence.
pub(crate) const HEADER: usize = 8;

/// Most an IPv4 header can add in front of a raw socket's read (IHL of 15 words).
pub(crate) const MAX_IP_HEADER: usize = 60;

/// The sysctl that lets a group open ping sockets.
pub(crate) const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// How one ICMP socket frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    /// ICMPv6 (echo types 128/129) rather than ICMP (8/0).
    pub v6: bool,
    /// A raw socket: this process sets the identifier (and, over IPv4, the checksum) and
    /// reads IPv4 headers; a ping socket leaves both to the kernel.
    pub raw: bool,
    /// The identifier the requests carry (a ping socket's is the kernel's: this is unused).
    pub id: u16,
}

impl Framing {
    fn request_type(self) -> u8 {
        if self.v6 {
            128
        } else {
            8
        }
    }

    fn reply_type(self) -> u8 {
        if self.v6 {
            129
        } else {
            0
        }
    }

    /// Writes the echo request header for sequence `seq` into `packet[..HEADER]`, and over
    /// a raw IPv4 socket the checksum over the whole packet (the kernel does it elsewhere).
    pub(crate) fn write_request(self, packet: &mut [u8], seq: u64) {
        packet[0] = self.request_type();
        packet[1] = 0;
        packet[2..4].fill(0);
        packet[4..6].copy_from_slice(&self.id.to_be_bytes());
        // The wire header after it carries the whole sequence number: this field wraps.
        packet[6..8].copy_from_slice(&(seq as u16).to_be_bytes());
        if self.raw && !self.v6 {
            let sum = checksum(packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
    }

    /// Where the echoed message starts in a packet read from the socket, or `None` when the
    /// packet is not an echo reply to this socket (the filter lets none through; this is the
    /// check it would be without it).
    pub(crate) fn reply_start(self, packet: &[u8]) -> Option<usize> {
        let ip = if self.raw && !self.v6 {
            usize::from(packet.first()? & 0x0f) * 4
        } else {
            0
        };
        let icmp = packet.get(ip..ip + HEADER)?;
        let ours = !self.raw || icmp[4..6] == self.id.to_be_bytes();
        (icmp[0] == self.reply_type() && icmp[1] == 0 && ours).then_some(ip + HEADER)
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .fold(0u32, |a, w| a.wrapping_add(w));
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Opens a nonblocking socket connected to `ip` that sends echo requests and reads only
/// the replies to it: a ping socket where allowed, else a raw socket with identifier `id`
/// and a filter; from source address `from` when given. Fails with PermissionDenied,
/// naming the sysctl and the capability, when neither is allowed.
pub(crate) fn open(ip: IpAddr, id: u16, from: Option<IpAddr>) -> io::Result<(Socket, Framing)> {
    let v6 = ip.is_ipv6();
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let (socket, raw) = match Socket::new(domain, Type::DGRAM.nonblocking().cloexec(), Some(proto)) {
        Ok(s) => (s, false),
        // EACCES: this group is outside ping_group_range; a raw socket may still be allowed.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            match Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(proto)) {
                Ok(s) => (s, true),
                // EPERM: no CAP_NET_RAW either.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(io::Error::new(io::ErrorKind::PermissionDenied, unavailable()))
                }
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    if raw {
        RAW_OPENED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let framing = Framing { v6, raw, id };
    if raw {
        socket.attach_filter(&filter(framing))?;
    }
    if let Some(src) = from {
        socket.bind(&SockAddr::from(SocketAddr::new(src, 0)))?;
    }
    // A connected socket sends with send(2) and, raw or not, reads from this host only.
    socket.connect(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    Ok((socket, framing))
}

/// A blocking echo client for probes and short measurements (the target check, doctor's
/// floor): one request at a time, each with a 24-byte payload it checks.
pub(crate) struct Pinger {
    socket: Socket,
    framing: Framing,
    seq: u64,
}

impl Pinger {
    /// Opens an echo socket to `ip` (a ping socket, else a raw one), blocking, each wait
    /// for a reply bounded by `timeout`.
    pub(crate) fn open(ip: IpAddr, timeout: std::time::Duration) -> io::Result<Pinger> {
        let (socket, framing) = open(ip, std::process::id() as u16 ^ 0xec40, None)?;
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(timeout))?;
        Ok(Pinger {
            socket,
            framing,
            seq: 0,
        })
    }

    /// One echo: its round trip, or TimedOut when no intact reply came within the timeout.
    pub(crate) fn round_trip(&mut self) -> io::Result<std::time::Duration> {
        use std::io::Read;
        self.seq += 1;
        let mut packet = [0u8; HEADER + 24];
        packet[HEADER..HEADER + 8].copy_from_slice(&self.seq.to_be_bytes());
        packet[HEADER + 8..].copy_from_slice(b"echo-bench-floor");
        self.framing.write_request(&mut packet, self.seq);
        let start = std::time::Instant::now();
        self.socket.send(&packet)?;
        let mut buf = [0u8; MAX_IP_HEADER + HEADER + 64];
        loop {
            let n = match (&self.socket).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // EINTR: retry
                // SO_RCVTIMEO ran out (EAGAIN on Linux): no reply.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no ICMP echo reply"))
                }
                Err(e) => return Err(e),
            };
            let ours = self
                .framing
                .reply_start(&buf[..n])
                .is_some_and(|at| buf[at..n] == packet[HEADER..]);
            if ours {
                return Ok(start.elapsed());
            }
            // An older request's late reply, or another socket's: keep waiting.
        }
    }
}

/// Why no ICMP socket could be opened, and the two ways to allow one.
pub(crate) fn unavailable() -> String {
    let range = std::fs::read_to_string(PING_GROUP_RANGE)
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".into());
    format!(
        "ICMP echo needs a ping socket or a raw socket: ping sockets are off for this group \
         (net.ipv4.ping_group_range = \"{range}\"; allow them with `loadgen doctor --tune` as root, \
         or sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"), and a raw socket needs CAP_NET_RAW, \
         which this process lacks"
    )
}

/// Set once this process has opened a raw ICMP socket (ping sockets were refused).
static RAW_OPENED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process's ICMP connections used raw sockets: what was opened, not what
/// could be opened now (the sysctl may have changed since).
pub(crate) fn raw_opened() -> bool {
    RAW_OPENED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Which ICMP sockets this process may open now: (ping sockets, raw sockets).
pub(crate) fn available() -> (bool, bool) {
    let try_open = |ty: Type| Socket::new(Domain::IPV4, ty.cloexec(), Some(Protocol::ICMPV4)).is_ok();
    (try_open(Type::DGRAM), try_open(Type::RAW))
}

/// A classic BPF program that passes echo replies carrying identifier `id` and drops
/// every other packet: a raw socket would otherwise read every ICMP packet of the host.
fn filter(f: Framing) -> Vec<libc::sock_filter> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ret = libc::BPF_RET | libc::BPF_K;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let id = u32::from(f.id);
    let reply = u32::from(f.reply_type());
    if f.v6 {
        // An ICMPv6 raw socket's filter sees the packet from the ICMPv6 header on.
        vec![
            op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 0),
            op(jeq, 0, 3, reply),
            op(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 4),
            op(jeq, 0, 1, id),
            op(ret, 0, 0, 0x40000),
            op(ret, 0, 0, 0),
        ]
    } else {
        // An IPv4 raw socket's filter sees the IP header first: X = its length.
        vec![
            op(libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH, 0, 0, 0),
            op(libc::BPF_LD | libc::BPF_B | libc::BPF_IND, 0, 0, 0),
            op(jeq, 0, 3, reply),
            op(libc::BPF_LD | libc::BPF_H | libc::BPF_IND, 0, 0, 4),
            op(jeq, 0, 1, id),
            op(ret, 0, 0, 0x40000),
            op(ret, 0, 0, 0),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_of_a_packet_with_its_checksum_is_zero() {
        let f = Framing {
            v6: false,
            raw: true,
            id: 0x1234,
        };
        let mut p = [0u8; 8 + 5];
        p[8..].copy_from_slice(b"hello");
        f.write_request(&mut p, 70_000);
        assert_eq!(checksum(&p), 0);
        assert_eq!(&p[6..8], &(70_000u64 as u16).to_be_bytes());
    }

    #[test]
    fn only_an_echo_reply_to_this_identifier_is_taken() {
        let f = Framing {
            v6: false,
            raw: true,
            id: 7,
        };
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&[0, 0, 0, 0, 0, 7, 0, 1, b'x']);
        assert_eq!(f.reply_start(&ip), Some(28));
        ip[20] = 8; // a request (ours, seen on loopback)
        assert_eq!(f.reply_start(&ip), None);
        ip[20] = 0;
        ip[25] = 8; // someone else's
        assert_eq!(f.reply_start(&ip), None);
        let ping = Framing { raw: false, ..f };
        assert_eq!(ping.reply_start(&[0, 0, 0, 0, 9, 9, 0, 0, b'x']), Some(8));
        assert_eq!(ping.reply_start(&[0, 0, 0]), None);
    }
}
