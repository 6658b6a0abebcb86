//! What a client thread records, and how the threads' records merge.
//!
//! Each thread records into its own [`Interval`] (HdrHistograms in nanoseconds with 3
//! significant digits, plus counters) and hands it to the main thread once per interval
//! (one channel send per second per thread, never per message). The main thread merges
//! intervals across threads; totals are the merge of all intervals. Percentiles are never
//! averaged.

mod ci;
pub mod spectrum;
pub use ci::{Ci, PercentileCis};

use std::ops::AddAssign;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram holds (larger values are clamped to it): 100 s in ns.
pub const MAX_TRACKABLE_NS: u64 = 100_000_000_000;
/// Significant decimal digits kept by every histogram.
pub const SIGFIG: u8 = 3;

/// A new, empty latency histogram.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, SIGFIG).expect("static histogram bounds are valid")
}

/// The errnos counted one by one (connection churn meets them first); the rest are
/// counted together as `other`.
pub const ERRNOS: [(i32, &str); 10] = [
    (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
    (libc::ECONNREFUSED, "ECONNREFUSED"),
    (libc::ETIMEDOUT, "ETIMEDOUT"),
    (libc::ECONNRESET, "ECONNRESET"),
    (libc::EPIPE, "EPIPE"),
    (libc::EMFILE, "EMFILE"),
    (libc::ENFILE, "ENFILE"),
    (libc::EHOSTUNREACH, "EHOSTUNREACH"),
    // A UDP send a local firewall rule dropped (netfilter answers EPERM), or no buffer.
    (libc::EPERM, "EPERM"),
    (libc::ENOBUFS, "ENOBUFS"),
];

/// Failed socket calls by errno ([`ERRNOS`], then one slot for any other errno).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrnoCounts(pub [u64; ERRNOS.len() + 1]);

impl ErrnoCounts {
    /// Counts one failure with `errno`.
    #[inline]
    pub fn count(&mut self, errno: i32) {
        let i = ERRNOS.iter().position(|&(e, _)| e == errno).unwrap_or(ERRNOS.len());
        self.0[i] += 1;
    }

    /// (name, count) of every errno seen, `other` last.
    pub fn seen(&self) -> Vec<(&'static str, u64)> {
        ERRNOS
            .iter()
            .map(|&(_, name)| name)
            .chain(std::iter::once("other"))
            .zip(self.0)
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// How many failures had `errno`.
    pub fn get(&self, errno: i32) -> u64 {
        ERRNOS.iter().position(|&(e, _)| e == errno).map_or(0, |i| self.0[i])
    }
}

impl<'de> serde::Deserialize<'de> for ErrnoCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        let mut counts = ErrnoCounts::default();
        for (name, n) in map {
            let i = ERRNOS.iter().position(|&(_, e)| e == name).unwrap_or(ERRNOS.len());
            counts.0[i] += n;
        }
        Ok(counts)
    }
}

impl Serialize for ErrnoCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let seen = self.seen();
        let mut map = s.serialize_map(Some(seen.len()))?;
        for (name, n) in seen {
            map.serialize_entry(name, &n)?;
        }
        map.end()
    }
}

/// Error and volume counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Round trips completed (and verified) inside the measured window.
    pub msgs: u64,
    /// Payload bytes of those round trips (one direction).
    pub bytes: u64,
    /// Messages whose sending started inside the measured window.
    pub sent: u64,
    /// Connection attempts that failed or timed out.
    pub connect_errors: u64,
    /// Messages that got no complete reply within `--timeout`.
    pub timeouts: u64,
    /// Connections reset or closed by the server.
    pub resets: u64,
    /// Messages whose echo differed from what was sent.
    pub mismatches: u64,
    /// Any other failure (more bytes back than sent, unexpected socket errors).
    pub other_errors: u64,
    /// Connections opened inside the measured window (connection churn).
    pub conns_opened: u64,
    /// Connections the client closed inside the window when done with them (churn, or
    /// `--stages` of connections going down); not errors.
    #[serde(default)]
    pub conns_closed: u64,
    /// UDP: datagrams sent inside the window whose reply did not come within `--timeout`.
    pub lost: u64,
    /// UDP: replies that came after their datagram was counted lost.
    pub late: u64,
    /// UDP: replies to a datagram that had already been answered.
    pub duplicates: u64,
    /// UDP: replies that came after the reply to a later datagram of their connection
    /// (counted as completed round trips too).
    pub reordered: u64,
    /// Failed socket calls by errno (connects, reads, writes).
    pub errnos: ErrnoCounts,
}

/// What a window's counters come to per second: every rate a report shows is computed here,
/// once (a run, a merge and a fan-out's parent all use it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Round trips per second.
    pub msgs_s: f64,
    /// Payload MiB per second, each way.
    pub mib_s: f64,
    /// Connections opened per second.
    pub conns_s: f64,
}

impl Counters {
    /// The counters over a window of `secs` (all zero for an empty window).
    pub fn rates(&self, secs: f64) -> Rates {
        let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        Rates {
            msgs_s: rate(self.msgs as f64),
            mib_s: rate(self.bytes as f64 / (1024.0 * 1024.0)),
            conns_s: rate(self.conns_opened as f64),
        }
    }

    /// Sum of every error count.
    pub fn errors(&self) -> u64 {
        self.connect_errors + self.timeouts + self.resets + self.mismatches + self.other_errors
    }
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.msgs += o.msgs;
        self.bytes += o.bytes;
        self.sent += o.sent;
        self.connect_errors += o.connect_errors;
        self.timeouts += o.timeouts;
        self.resets += o.resets;
        self.mismatches += o.mismatches;
        self.other_errors += o.other_errors;
        self.conns_opened += o.conns_opened;
        self.conns_closed += o.conns_closed;
        self.lost += o.lost;
        self.late += o.late;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        for (a, b) in self.errnos.0.iter_mut().zip(o.errnos.0) {
            *a += b;
        }
    }
}

/// A failure that closed a connection: its kind, and the errno when a socket call said one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The kind, as counted.
    pub fault: Fault,
    /// The errno of the failed call, if any.
    pub errno: Option<i32>,
}

impl From<Fault> for Failure {
    fn from(fault: Fault) -> Self {
        Failure { fault, errno: None }
    }
}

/// Which kind of failure closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Connect failed or timed out.
    Connect,
    /// No reply within the timeout.
    Timeout,
    /// Reset or closed by the server.
    Reset,
    /// Anything else.
    Other,
}

/// One thread's (or, merged, every thread's) record of one interval.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Index of the interval inside the measured window; `None` for the warmup.
    pub index: Option<u32>,
    /// Latency: closed loop from the actual send; open loop from the intended send time.
    pub latency: Histogram<u64>,
    /// Open loop only: service time from the actual send.
    pub raw: Histogram<u64>,
    /// Open loop only: actual send minus intended send (= client lag + backpressure).
    pub send_lag: Histogram<u64>,
    /// Open loop only: actual send minus the time the message became sendable (intended
    /// time, or later when its connection had no free slot under `--depth`): the client's
    /// own lateness.
    pub client_lag: Histogram<u64>,
    /// Open loop only: how long a due message waited for a free slot under `--depth`
    /// (replies it waited for: the server's or the network's doing).
    pub backpressure: Histogram<u64>,
    /// The reader's own delay: from the kernel's receive stamp of a reply's last packet to
    /// the read that got it (SO_TIMESTAMPING; TCP and UDP, either engine).
    pub rx_delay: Histogram<u64>,
    /// Counts.
    pub counters: Counters,
}

impl Interval {
    /// An empty interval.
    pub fn new(index: Option<u32>) -> Self {
        Interval {
            index,
            latency: new_histogram(),
            raw: new_histogram(),
            send_lag: new_histogram(),
            client_lag: new_histogram(),
            backpressure: new_histogram(),
            rx_delay: new_histogram(),
            counters: Counters::default(),
        }
    }

    /// Empties it, keeping its memory (for the next interval).
    pub fn clear(&mut self) {
        self.index = None;
        self.latency.reset();
        self.raw.reset();
        self.send_lag.reset();
        self.client_lag.reset();
        self.backpressure.reset();
        self.rx_delay.reset();
        self.counters = Counters::default();
    }

    /// Adds `other` into `self` (histograms merged exactly).
    pub fn merge(&mut self, other: &Interval) {
        // Both sides have the same bounds, so `add` cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.raw.add(&other.raw);
        let _ = self.send_lag.add(&other.send_lag);
        let _ = self.client_lag.add(&other.client_lag);
        let _ = self.backpressure.add(&other.backpressure);
        let _ = self.rx_delay.add(&other.rx_delay);
        self.counters += other.counters;
    }

    /// Records how late a message (or connection) went out against its intended time
    /// `intended`, having become sendable at `sendable` (≥ `intended`), sent at `now`.
    #[inline]
    pub fn record_lag(&mut self, intended: u64, sendable: u64, now: u64) {
        self.send_lag.saturating_record(now.saturating_sub(intended));
        self.client_lag.saturating_record(now.saturating_sub(sendable));
        self.backpressure.saturating_record(sendable.saturating_sub(intended));
    }

    /// Counts a failure (and its errno).
    #[inline]
    pub fn count(&mut self, failure: Failure) {
        let c = &mut self.counters;
        if let Some(errno) = failure.errno {
            c.errnos.count(errno);
        }
        match failure.fault {
            Fault::Connect => c.connect_errors += 1,
            Fault::Timeout => c.timeouts += 1,
            Fault::Reset => c.resets += 1,
            Fault::Other => c.other_errors += 1,
        }
    }
}

/// Latency percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of values.
    pub count: u64,
    /// Smallest.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// 99.99th percentile.
    pub p9999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Standard deviation.
    pub stdev_us: f64,
    /// 95% confidence intervals of p50 … p99.99 (binomial, from order statistics).
    pub ci: PercentileCis,
}

impl Percentiles {
    /// Reads the percentiles of a nanosecond histogram (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            min_us: us(h.min()),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            p9999_us: us(h.value_at_quantile(0.9999)),
            max_us: us(h.max()),
            stdev_us: h.stdev() / 1000.0,
            ci: PercentileCis::of(h),
        }
    }
}

/// Spread of messages over connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Fairness {
    /// Fewest messages any connection completed.
    pub min: u64,
    /// Median messages per connection.
    pub median: u64,
    /// Most messages any connection completed.
    pub max: u64,
    /// Jain's fairness index, (sum x)^2 / (n * sum x^2): 1 when all are equal, 1/n when one
    /// connection did everything.
    pub jain: f64,
    /// Connections with no message in the window.
    pub starved: u64,
}

impl Fairness {
    /// Open loop: the spread judged against each connection's own schedule. `per_conn`
    /// holds (messages completed, messages due) in the window; Jain's index is over the
    /// share of its due messages each connection completed, and a connection counts as
    /// starved only when at least two messages were due and none completed (one due near
    /// the window's end may rightly complete after it). Connections due nothing are left
    /// out.
    pub fn against_schedule(per_conn: &[(u64, u64)]) -> Self {
        let judged: Vec<&(u64, u64)> = per_conn.iter().filter(|(_, due)| *due > 0).collect();
        let counts: Vec<u64> = judged.iter().map(|(n, _)| *n).collect();
        let mut f = Fairness::of(&counts);
        let shares: Vec<f64> = judged
            .iter()
            .map(|&&(n, due)| (n as f64 / due as f64).min(1.0))
            .collect();
        let sum: f64 = shares.iter().sum();
        let sum_sq: f64 = shares.iter().map(|x| x * x).sum();
        f.jain = if sum_sq == 0.0 {
            0.0
        } else {
            sum * sum / (shares.len() as f64 * sum_sq)
        };
        f.starved = judged.iter().filter(|&&&(n, due)| n == 0 && due >= 2).count() as u64;
        f
    }

    /// Computes the spread of per-connection message counts.
    pub fn of(per_conn: &[u64]) -> Self {
        if per_conn.is_empty() {
            return Fairness::default();
        }
        let mut sorted = per_conn.to_vec();
        sorted.sort_unstable();
        let sum: f64 = sorted.iter().map(|&x| x as f64).sum();
        let sum_sq: f64 = sorted.iter().map(|&x| (x as f64) * (x as f64)).sum();
        let jain = if sum_sq == 0.0 {
            0.0
        } else {
            sum * sum / (sorted.len() as f64 * sum_sq)
        };
        Fairness {
            min: sorted[0],
            median: sorted[sorted.len() / 2],
            max: sorted[sorted.len() - 1],
            jain,
            starved: sorted.iter().filter(|&&x| x == 0).count() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_percentiles_equal_those_of_all_values() {
        let mut a = Interval::new(Some(0));
        let mut b = Interval::new(Some(0));
        let mut all = new_histogram();
        for v in 1..=10_000u64 {
            let h = if v % 3 == 0 { &mut a.latency } else { &mut b.latency };
            h.record(v * 1000).unwrap();
            all.record(v * 1000).unwrap();
        }
        a.merge(&b);
        assert_eq!(Percentiles::of(&a.latency), Percentiles::of(&all));
        let p = Percentiles::of(&all);
        assert!((p.p50_us - 5000.0).abs() <= 5.0, "{p:?}");
        assert!((p.p99_us - 9900.0).abs() <= 10.0, "{p:?}");
    }

    #[test]
    fn open_loop_fairness_ignores_connections_due_nothing() {
        let f = Fairness::against_schedule(&[(1, 1), (0, 0), (0, 0), (2, 2), (0, 1)]);
        assert_eq!(
            f.starved, 0,
            "a connection due one message may finish it after the window"
        );
        let f = Fairness::against_schedule(&[(1, 1), (2, 2), (0, 3)]);
        assert_eq!(f.starved, 1);
        assert!((Fairness::against_schedule(&[(5, 5), (3, 3)]).jain - 1.0).abs() < 1e-12);
    }

    #[test]
    fn jain_index_bounds() {
        assert_eq!(Fairness::of(&[5, 5, 5, 5]).jain, 1.0);
        let f = Fairness::of(&[0, 0, 0, 8]);
        assert_eq!((f.jain, f.starved, f.min, f.max), (0.25, 3, 0, 8));
        assert_eq!(Fairness::of(&[]).jain, 0.0);
    }
}
