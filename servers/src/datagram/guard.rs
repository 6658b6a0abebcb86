//! The source filter of a UDP echo server that answers beyond loopback (`--allow-remote`):
//! drops datagrams from privileged source ports (below 1024: another echo, chargen, DNS or
//! NTP service would bounce the reply back, a loop, CVE-1999-0103), from broadcast,
//! multicast or unspecified sources (never a real peer), and limits each source address's
//! rate (a token bucket), so a spoofed source can make the server send at most that much
//! to its victim. On loopback (the default) the guard is off: only local processes can
//! send.
//!
//! Each thread (or task) keeps its own guard, so the check takes no lock; a source whose
//! datagrams spread over several threads gets up to the rate on each, which is why the
//! server divides `--source-rate` by its number of threads.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::accept::RateLimitedLog;

/// Sources remembered before idle ones are forgotten.
const MAX_SOURCES: usize = 65_536;

/// How a guard is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardConfig {
    /// Filter at all (`--allow-remote`); off on loopback.
    pub on: bool,
    /// Datagrams per second admitted from one source address (0: unlimited).
    pub source_rate: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One thread's source filter and per-source rate limiter.
#[derive(Debug)]
pub struct Guard {
    on: bool,
    rate: f64,
    burst: f64,
    sources: HashMap<IpAddr, Bucket>,
    dropped: u64,
    log: RateLimitedLog,
}

impl Guard {
    /// A guard for one of `threads` threads sharing `config.source_rate`.
    pub fn new(config: GuardConfig, threads: usize) -> Guard {
        let rate = f64::from(config.source_rate) / threads.max(1) as f64;
        Guard {
            on: config.on,
            rate,
            // A tenth of a second's worth, at least a few datagrams.
            burst: (rate / 10.0).max(8.0),
            sources: HashMap::new(),
            dropped: 0,
            log: RateLimitedLog::new(std::time::Duration::from_secs(10)),
        }
    }

    /// Datagrams this guard dropped (its tests read it; the drops are logged).
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether a datagram from `src` may be answered.
    #[inline]
    pub fn admit(&mut self, src: SocketAddr) -> bool {
        if !self.on {
            return true;
        }
        let ok = self.check(src);
        if !ok {
            self.dropped += 1;
            let dropped = self.dropped;
            self.log.log(format_args!(
                "UDP guard: dropped a datagram from {src} ({dropped} so far)"
            ));
        }
        ok
    }

    fn check(&mut self, src: SocketAddr) -> bool {
        if src.port() < 1024 || !is_unicast_peer(src.ip()) {
            return false;
        }
        if self.rate <= 0.0 {
            return true; // --source-rate 0: unlimited
        }
        let now = Instant::now();
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&src.ip()) {
            // Forget sources whose bucket has refilled: they are idle.
            let (rate, burst) = (self.rate, self.burst);
            self.sources
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = self.sources.entry(src.ip()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Whether `ip` can be a real peer's source: not unspecified, broadcast or multicast
/// (IPv4-mapped IPv6 addresses are judged as IPv4).
fn is_unicast_peer(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(rate: u32) -> Guard {
        Guard::new(
            GuardConfig {
                on: true,
                source_rate: rate,
            },
            1,
        )
    }

    #[test]
    fn off_admits_everything() {
        let mut g = Guard::new(
            GuardConfig {
                on: false,
                source_rate: 1,
            },
            1,
        );
        for _ in 0..1000 {
            assert!(g.admit("127.0.0.1:7".parse().unwrap()));
        }
    }

    #[test]
    fn privileged_ports_and_non_unicast_sources_are_dropped() {
        let mut g = guard(0);
        for src in [
            "198.18.0.1:7",
            "198.18.0.1:19",
            "198.18.0.1:1023",
            "255.255.255.255:5000",
            "224.0.0.1:5000",
            "0.0.0.0:5000",
            "[ff02::1]:5000",
            "[::ffff:255.255.255.255]:5000",
        ] {
            assert!(!g.admit(src.parse().unwrap()), "{src} admitted");
        }
        assert!(g.admit("198.18.0.1:1024".parse().unwrap()));
        assert!(g.admit("[2001:db8::1]:40000".parse().unwrap()));
        assert_eq!(g.dropped(), 8);
    }

    #[test]
    fn each_source_is_limited_on_its_own() {
        let mut g = guard(100); // burst: 10 datagrams
        let a: SocketAddr = "198.18.0.1:40000".parse().unwrap();
        let b: SocketAddr = "198.18.0.2:40000".parse().unwrap();
        let admitted = (0..1000).filter(|_| g.admit(a)).count();
        assert!((10..=12).contains(&admitted), "{admitted}");
        // Another source has its own bucket; another port of the same host does not.
        assert!(g.admit(b));
        assert!(!g.admit("198.18.0.1:40001".parse().unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(g.admit(a), "the bucket refills");
    }
}
