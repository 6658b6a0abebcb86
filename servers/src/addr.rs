//! Addresses the servers listen on and the load generator connects to:
//! `HOST:PORT`, `[V6]:PORT` and `unix:/path`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// A TCP socket address or a Unix domain socket path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// TCP over IPv4 or IPv6.
    Tcp(SocketAddr),
    /// A Unix domain stream socket at this path.
    Unix(PathBuf),
}

impl ListenAddr {
    /// The transport's name as reports write it: `tcp`, `tcp6` or `unix`.
    pub fn transport(&self) -> &'static str {
        match self {
            ListenAddr::Tcp(a) if a.is_ipv6() => "tcp6",
            ListenAddr::Tcp(_) => "tcp",
            ListenAddr::Unix(_) => "unix",
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
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
}

impl fmt::Display for BadAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid address '{}': {} (expected HOST:PORT, [V6]:PORT or unix:/path)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for BadAddr {}

impl FromStr for ListenAddr {
    type Err = BadAddr;

    /// Parses `unix:/path`, a literal socket address, or `HOST:PORT` resolved by the system
    /// resolver (the first address it returns).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| BadAddr {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ListenAddr::Tcp(addr));
        }
        if !s.contains(':') {
            return Err(bad("missing port"));
        }
        match s.to_socket_addrs() {
            Ok(mut addrs) => addrs
                .next()
                .map(ListenAddr::Tcp)
                .ok_or_else(|| bad("host has no address")),
            Err(e) => Err(bad(&format!("cannot resolve: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "127.0.0.1:80".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:80".parse().unwrap()))
        );
        assert_eq!("[::1]:0".parse::<ListenAddr>().unwrap().transport(), "tcp6");
        assert_eq!("unix:/tmp/x.sock".parse(), Ok(ListenAddr::Unix("/tmp/x.sock".into())));
        assert!("localhost:7"
            .parse::<ListenAddr>()
            .unwrap()
            .transport()
            .starts_with("tcp"));
        assert!("127.0.0.1"
            .parse::<ListenAddr>()
            .unwrap_err()
            .to_string()
            .contains("missing port"));
        assert!("unix:".parse::<ListenAddr>().is_err());
        assert!("no-such-host.invalid:80".parse::<ListenAddr>().is_err());
    }

    #[test]
    fn displays_as_parsed() {
        for s in ["127.0.0.1:9", "[::1]:9", "unix:/tmp/e.sock"] {
            assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), s);
        }
    }
}
