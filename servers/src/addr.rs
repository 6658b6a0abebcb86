//! Addresses the servers listen on and the load generator connects to:
//! `HOST:PORT`, `[V6]:PORT` (TCP), `unix:/path`, `seqpacket:/path` (a Unix socket that
//! keeps message boundaries) and `udp://HOST:PORT`, and the one target
//! no model serves: `icmp://HOST`, the kernel's own echo.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// A TCP socket address, a Unix domain socket path, a UDP socket address or an ICMP host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// TCP over IPv4 or IPv6.
    Tcp(SocketAddr),
    /// A Unix domain stream socket at this path.
    Unix(PathBuf),
    /// A Unix domain SOCK_SEQPACKET socket at this path (`seqpacket:/path`): connections as
    /// over a stream, each write one packet read whole, as over UDP.
    SeqPacket(PathBuf),
    /// UDP over IPv4 or IPv6 (`udp://HOST:PORT`).
    Udp(SocketAddr),
    /// ICMP (or ICMPv6) echo to a host (`icmp://HOST`, `icmp://[V6]`): the kernel answers,
    /// no process does, so no model listens on it; a load generator's floor.
    Icmp(IpAddr),
}

/// The kind of socket an address names, as reports write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP over IPv4.
    Tcp,
    /// TCP over IPv6.
    Tcp6,
    /// A Unix domain stream socket.
    Unix,
    /// A Unix domain SOCK_SEQPACKET socket.
    SeqPacket,
    /// UDP over IPv4.
    Udp,
    /// UDP over IPv6.
    Udp6,
    /// ICMP echo over IPv4.
    Icmp,
    /// ICMPv6 echo.
    Icmp6,
}

impl Transport {
    /// The name in reports: `tcp`, `tcp6`, `unix`, `seqpacket`, `udp`, `udp6`, `icmp` or
    /// `icmp6`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tcp6 => "tcp6",
            Transport::Unix => "unix",
            Transport::SeqPacket => "seqpacket",
            Transport::Udp => "udp",
            Transport::Udp6 => "udp6",
            Transport::Icmp => "icmp",
            Transport::Icmp6 => "icmp6",
        }
    }

    /// Whether this transport carries datagrams (UDP, ICMP) rather than a byte stream.
    pub fn is_datagram(self) -> bool {
        matches!(
            self,
            Transport::Udp | Transport::Udp6 | Transport::Icmp | Transport::Icmp6
        )
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl ListenAddr {
    /// The transport of this address.
    pub fn transport(&self) -> Transport {
        match self {
            ListenAddr::Tcp(a) if a.is_ipv6() => Transport::Tcp6,
            ListenAddr::Tcp(_) => Transport::Tcp,
            ListenAddr::Unix(_) => Transport::Unix,
            ListenAddr::SeqPacket(_) => Transport::SeqPacket,
            ListenAddr::Udp(a) if a.is_ipv6() => Transport::Udp6,
            ListenAddr::Udp(_) => Transport::Udp,
            ListenAddr::Icmp(ip) if ip.is_ipv6() => Transport::Icmp6,
            ListenAddr::Icmp(_) => Transport::Icmp,
        }
    }

    /// The IP socket address (TCP or UDP; port 0 for ICMP, which has none); `None` for a
    /// Unix socket.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(a) | ListenAddr::Udp(a) => Some(*a),
            ListenAddr::Icmp(ip) => Some(SocketAddr::new(*ip, 0)),
            ListenAddr::Unix(_) | ListenAddr::SeqPacket(_) => None,
        }
    }

    /// The socket path of a Unix address (stream or seqpacket).
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        match self {
            ListenAddr::Unix(p) | ListenAddr::SeqPacket(p) => Some(p),
            _ => None,
        }
    }

    /// Whether this is a UDP address.
    pub fn is_udp(&self) -> bool {
        matches!(self, ListenAddr::Udp(_))
    }

    /// Whether messages go as datagrams (UDP or ICMP): one message, one packet, which may
    /// be lost, duplicated or reordered.
    pub fn is_datagram(&self) -> bool {
        self.transport().is_datagram()
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddr::SeqPacket(p) => write!(f, "seqpacket:{}", p.display()),
            ListenAddr::Udp(a) => write!(f, "udp://{a}"),
            ListenAddr::Icmp(IpAddr::V6(ip)) => write!(f, "icmp://[{ip}]"),
            ListenAddr::Icmp(ip) => write!(f, "icmp://{ip}"),
        }
    }
}

/// Why an address string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAddr {
    /// The string as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
    /// Which kind of problem: the user's spelling, or the name service.
    pub kind: BadAddrKind,
}

/// Whether an address was malformed or well-formed but not resolvable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAddrKind {
    /// Not an address at all (missing port, empty path): a usage error.
    Syntax,
    /// A well-formed `HOST:PORT` whose host does not resolve (or has no address): the
    /// target cannot be reached, not a typo in the flag's form.
    Unresolvable,
}

impl fmt::Display for BadAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid address '{}': {} (expected HOST:PORT, [::1]:PORT, unix:/path, seqpacket:/path, udp://HOST:PORT or icmp://HOST)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for BadAddr {}

impl FromStr for ListenAddr {
    type Err = BadAddr;

    /// Parses `unix:/path`, `udp://HOST:PORT`, `icmp://HOST`, `tcp://HOST:PORT`, a literal
    /// socket address, or `HOST:PORT` resolved by the system resolver (the first address it
    /// returns).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("icmp://") {
            return parse_host(rest).map(ListenAddr::Icmp).map_err(|mut e| {
                e.input = s.to_string();
                e
            });
        }
        if let Some(rest) = s.strip_prefix("udp://") {
            return parse_ip(rest).map(ListenAddr::Udp).map_err(|mut e| {
                e.input = s.to_string();
                e
            });
        }
        if let Some(path) = s.strip_prefix("seqpacket:") {
            if path.is_empty() {
                return Err(BadAddr {
                    input: s.to_string(),
                    reason: "empty socket path".into(),
                    kind: BadAddrKind::Syntax,
                });
            }
            return Ok(ListenAddr::SeqPacket(PathBuf::from(path)));
        }
        let rest = s.strip_prefix("tcp://").unwrap_or(s);
        if let Some(path) = rest.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(BadAddr {
                    input: s.to_string(),
                    reason: "empty socket path".into(),
                    kind: BadAddrKind::Syntax,
                });
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        parse_ip(rest).map(ListenAddr::Tcp).map_err(|mut e| {
            e.input = s.to_string();
            e
        })
    }
}

/// Parses a host without a port (`127.0.0.1`, `[::1]`, `::1`, `localhost`) into an IP
/// address: the first the resolver returns.
fn parse_host(s: &str) -> Result<IpAddr, BadAddr> {
    let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    let bad_as = |kind, reason: &str| BadAddr {
        input: s.to_string(),
        reason: reason.to_string(),
        kind,
    };
    if bare.is_empty() {
        return Err(bad_as(BadAddrKind::Syntax, "missing host (e.g. 127.0.0.1 or [::1])"));
    }
    if bare.contains(['/', ':']) {
        return Err(bad_as(
            BadAddrKind::Syntax,
            "an ICMP echo has no port or path: give the host alone",
        ));
    }
    match (bare, 0).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| bad_as(BadAddrKind::Unresolvable, "host has no address")),
        Err(e) => Err(bad_as(BadAddrKind::Unresolvable, &format!("cannot resolve: {e}"))),
    }
}

/// Parses `HOST:PORT` or `[V6]:PORT` into an IP socket address.
fn parse_ip(s: &str) -> Result<SocketAddr, BadAddr> {
    {
        let bad_as = |kind, reason: &str| BadAddr {
            input: s.to_string(),
            reason: reason.to_string(),
            kind,
        };
        let bad = |reason: &str| bad_as(BadAddrKind::Syntax, reason);
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(bad("missing port"));
        };
        // The form is checked before the resolver sees it, so a typo is a usage error and
        // only a well-formed name that does not resolve is the network's.
        if host.is_empty() {
            return Err(bad("missing host (e.g. 127.0.0.1 or localhost)"));
        }
        if port.parse::<u16>().is_err() {
            return Err(bad("the port must be a number from 0 to 65535"));
        }
        match s.to_socket_addrs() {
            Ok(mut addrs) => addrs
                .next()
                .ok_or_else(|| bad_as(BadAddrKind::Unresolvable, "host has no address")),
            Err(e) => Err(bad_as(BadAddrKind::Unresolvable, &format!("cannot resolve: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_host_or_port_is_a_usage_error() {
        for bad in [":80", "127.0.0.1:99999", "localhost:http", "127.0.0.1:", "udp://:53"] {
            let e = bad.parse::<ListenAddr>().unwrap_err();
            assert_eq!(e.kind, BadAddrKind::Syntax, "{bad}: {e}");
        }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "127.0.0.1:80".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:80".parse().unwrap()))
        );
        assert_eq!("[::1]:0".parse::<ListenAddr>().unwrap().transport(), Transport::Tcp6);
        assert_eq!("unix:/tmp/x.sock".parse(), Ok(ListenAddr::Unix("/tmp/x.sock".into())));
        assert!("localhost:7"
            .parse::<ListenAddr>()
            .unwrap()
            .transport()
            .name()
            .starts_with("tcp"));
        assert!("127.0.0.1"
            .parse::<ListenAddr>()
            .unwrap_err()
            .to_string()
            .contains("missing port"));
        assert!("unix:".parse::<ListenAddr>().is_err());
        assert_eq!(
            "no-such-host.invalid:80".parse::<ListenAddr>().unwrap_err().kind,
            BadAddrKind::Unresolvable
        );
        assert_eq!("127.0.0.1".parse::<ListenAddr>().unwrap_err().kind, BadAddrKind::Syntax);
        assert_eq!(
            "udp://[::1]:7".parse::<ListenAddr>().unwrap().transport(),
            Transport::Udp6
        );
        assert_eq!(
            "tcp://127.0.0.1:7".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:7".parse().unwrap()))
        );
        let e = "udp://127.0.0.1".parse::<ListenAddr>().unwrap_err();
        assert_eq!(e.input, "udp://127.0.0.1");
        assert!(e.reason.contains("missing port"));
    }

    #[test]
    fn an_icmp_target_is_a_host_without_a_port() {
        assert_eq!(
            "icmp://127.0.0.1".parse::<ListenAddr>().unwrap().transport(),
            Transport::Icmp
        );
        assert_eq!(
            "icmp://[::1]".parse::<ListenAddr>().unwrap().transport(),
            Transport::Icmp6
        );
        assert_eq!(
            "icmp://::1".parse::<ListenAddr>().unwrap().transport(),
            Transport::Icmp6
        );
        assert!("icmp://localhost".parse::<ListenAddr>().is_ok());
        for bad in ["icmp://", "icmp://127.0.0.1:7", "icmp://[::1]:7", "icmp://a/b"] {
            let e = bad.parse::<ListenAddr>().unwrap_err();
            assert_eq!(e.kind, BadAddrKind::Syntax, "{bad}: {e}");
            assert_eq!(e.input, bad);
        }
        assert!(Transport::Icmp.is_datagram());
    }

    #[test]
    fn displays_as_parsed() {
        for s in [
            "127.0.0.1:9",
            "[::1]:9",
            "unix:/tmp/e.sock",
            "udp://127.0.0.1:7",
            "udp://[::1]:7",
            "icmp://127.0.0.1",
            "icmp://[::1]",
            "seqpacket:/tmp/e.sock",
        ] {
            assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), s);
        }
    }
}
