//! The small value types a run is configured by (what to load, churn, shard, socket kind)
//! and the limits and transport-dependent defaults: a leaf the configuration's parts share.

use std::time::Duration;

use servers::{ListenAddr, Model};

use crate::error::{flag_error as invalid, Error};

/// Connection churn: how connections come and go during the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Churn {
    /// Every connection lives for the whole run.
    None,
    /// Each connection is closed and reopened after this many round trips.
    ReconnectEvery(u64),
    /// New connections arrive at `rate` per second on a fixed schedule, each does
    /// `msgs_per_conn` round trips and closes.
    ConnRate {
        /// New connections per second, in total.
        rate: f64,
        /// Round trips per connection.
        msgs_per_conn: u64,
    },
}

impl Churn {
    /// Round trips per connection lifetime (`u64::MAX`: no churn).
    pub fn lifetime(&self) -> u64 {
        match *self {
            Churn::None => u64::MAX,
            Churn::ReconnectEvery(n) => n,
            Churn::ConnRate { msgs_per_conn, .. } => msgs_per_conn,
        }
    }

    /// `--reconnect-every`, as a report records it.
    pub fn reconnect_every(&self) -> Option<u64> {
        match *self {
            Churn::ReconnectEvery(n) => Some(n),
            _ => None,
        }
    }

    /// `--conn-rate` and its round trips per connection, as a report records them.
    pub fn conn_rate(&self) -> Option<(f64, u64)> {
        match *self {
            Churn::ConnRate { rate, msgs_per_conn } => Some((rate, msgs_per_conn)),
            _ => None,
        }
    }
}

/// This process's part of a run made by several (`--shard I/N`, or `--procs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// Of how many.
    pub count: u32,
}

impl Shard {
    /// The whole run in one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The connection ids of this shard out of `conns`: shard `I` of `N` gets
    /// `floor(I*C/N) .. floor((I+1)*C/N)`, so payload patterns (keyed by connection id)
    /// stay unique across shards.
    pub fn range(&self, conns: usize) -> std::ops::Range<u32> {
        let at = |i: u32| (u64::from(i) * conns as u64 / u64::from(self.count)) as u32;
        at(self.index)..at(self.index + 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Reply timeout when `--timeout` is not given, over TCP and Unix streams: a reply this
/// late fails the connection (it is closed and reopened).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reply timeout when `--timeout` is not given, over UDP: a datagram unanswered this long
/// counts as lost (and frees its slot, so the connection goes on).
pub const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest UDP payload over IPv4 (65535 - 20 - 8); over IPv6 20 bytes more.
pub const MAX_UDP_PAYLOAD_V4: usize = 65_507;
/// Largest UDP payload that is not fragmented on a 1500-byte MTU (IPv4).
pub const UDP_UNFRAGMENTED: usize = 1472;

/// Which kind of socket a run uses (`--transport`, with `--target`; with `--addr` the
/// address says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockKind {
    /// TCP (the default).
    Tcp,
    /// A Unix domain stream socket.
    Unix,
    /// A Unix domain SOCK_SEQPACKET socket: a connection, each message one packet.
    SeqPacket,
    /// UDP: connected datagram sockets.
    Udp,
    /// ICMP echo to the kernel (`--addr icmp://HOST` only: no model serves it).
    Icmp,
}

impl SockKind {
    /// Every kind `--transport` takes (ICMP comes from `--addr icmp://` alone).
    pub const ALL: [SockKind; 4] = [SockKind::Tcp, SockKind::Unix, SockKind::SeqPacket, SockKind::Udp];

    /// The name `--transport` takes.
    pub fn name(self) -> &'static str {
        match self {
            SockKind::Tcp => "tcp",
            SockKind::Unix => "unix",
            SockKind::SeqPacket => "seqpacket",
            SockKind::Udp => "udp",
            SockKind::Icmp => "icmp",
        }
    }

    /// The report's transport of a spawned server of this kind (it binds IPv4 loopback).
    pub fn transport(self) -> servers::Transport {
        match self {
            SockKind::Tcp => servers::Transport::Tcp,
            SockKind::Unix => servers::Transport::Unix,
            SockKind::SeqPacket => servers::Transport::SeqPacket,
            SockKind::Udp => servers::Transport::Udp,
            SockKind::Icmp => servers::Transport::Icmp,
        }
    }

    /// The kind of an address.
    pub fn of(addr: &ListenAddr) -> SockKind {
        match addr {
            ListenAddr::Tcp(_) => SockKind::Tcp,
            ListenAddr::Unix(_) => SockKind::Unix,
            ListenAddr::SeqPacket(_) => SockKind::SeqPacket,
            ListenAddr::Udp(_) => SockKind::Udp,
            ListenAddr::Icmp(_) => SockKind::Icmp,
        }
    }

    /// The address a spawned server of this kind binds: loopback, any free port (or a
    /// fresh socket path).
    pub fn spawn_addr(self) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        match self {
            SockKind::Tcp => "127.0.0.1:0".into(),
            SockKind::Udp => "udp://127.0.0.1:0".into(),
            // Never spawned: the kernel serves it (`--transport` does not take it).
            SockKind::Icmp => "icmp://127.0.0.1".into(),
            SockKind::Unix | SockKind::SeqPacket => format!(
                "{}:{}",
                if self == SockKind::Unix { "unix" } else { "seqpacket" },
                std::env::temp_dir()
                    .join(format!(
                        "echo-bench-{}-{}.sock",
                        std::process::id(),
                        NEXT.fetch_add(1, Ordering::Relaxed)
                    ))
                    .display()
            ),
        }
    }
}

impl std::str::FromStr for SockKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        SockKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| invalid("--transport", s, "expected tcp, unix, seqpacket or udp"))
    }
}

/// Largest message size accepted (64 MiB).
pub const MAX_MSG_SIZE: usize = 64 << 20;
/// Most connections one run may ask for.
pub const MAX_CONNS: usize = 1_000_000;
/// Most messages in flight per connection.
pub const MAX_DEPTH: usize = 4096;
/// Most client threads.
pub const MAX_THREADS: usize = 1024;

/// What to put load on.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// Start this model in a child process.
    Model(Model),
    /// An already running server.
    Addr(ListenAddr),
}
