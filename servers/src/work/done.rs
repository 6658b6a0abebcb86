//! The work a server actually did: per kind (cpu, wait, block), how many messages, the
//! duration asked and the duration realised (mean, and p99 from a log-linear histogram of
//! 16 buckets per octave: within 1/16 of the true value). One tally per process, in
//! atomics, so every model's threads add to it without a lock; recorded only when a run
//! has `--work`, so an echo without work pays nothing.
//!
//! A spawned server prints its tally as one `work ...` line on stdout when it receives
//! SIGUSR1 ([`line()`]); loadgen reads it back with [`parse_line`] and reports asked beside done.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::kind::Kind;

/// Buckets per octave of the realised-duration histogram.
const SUB: u32 = 16;
/// Buckets in all: values below [`SUB`] ns exactly, then 16 per octave up to 2^64 ns.
const BUCKETS: usize = ((64 - 4 + 1) * SUB) as usize;

struct Tally {
    n: AtomicU64,
    asked_ns: AtomicU64,
    done_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Tally {
    const fn new() -> Tally {
        Tally {
            n: AtomicU64::new(0),
            asked_ns: AtomicU64::new(0),
            done_ns: AtomicU64::new(0),
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }
}

static TALLIES: [Tally; 3] = [Tally::new(), Tally::new(), Tally::new()];

const KINDS: [Kind; 3] = [Kind::Cpu, Kind::Wait, Kind::Block];

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Cpu => 0,
        Kind::Wait => 1,
        Kind::Block => 2,
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Cpu => "cpu",
        Kind::Wait => "wait",
        Kind::Block => "block",
    }
}

/// The bucket of `ns`: exact below 16 ns, then 16 per octave.
fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros(); // >= 4
    let sub = (ns >> (e - 4)) & (SUB as u64 - 1);
    ((e - 3) * SUB) as usize + sub as usize
}

/// The middle of bucket `i`, in ns.
fn bucket_mid(i: usize) -> f64 {
    if i < SUB as usize {
        return i as f64;
    }
    let e = (i / SUB as usize) as u32 + 3;
    let sub = (i % SUB as usize) as u64;
    let lo = (SUB as u64 + sub) << (e - 4);
    lo as f64 + (1u64 << (e - 4)) as f64 / 2.0
}

/// Records one message's step of `kind`: `asked` by the spec, `done` as it happened.
pub fn record(kind: Kind, asked: Duration, done: Duration) {
    let t = &TALLIES[slot(kind)];
    let done_ns = done.as_nanos().min(u64::MAX as u128) as u64;
    t.n.fetch_add(1, Relaxed);
    t.asked_ns
        .fetch_add(asked.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    t.done_ns.fetch_add(done_ns, Relaxed);
    t.buckets[bucket(done_ns)].fetch_add(1, Relaxed);
}

/// Records a step of `kind` asked `asked` that began at `started` and is over now.
pub fn record_since(kind: Kind, asked: Duration, started: Instant) {
    record(kind, asked, started.elapsed());
}

/// Sleeps `d` on this thread and records it as a step of `kind` (a blocking model's wait,
/// or anyone's block): a sleep lasts at least `d`, later by the timer's lateness.
pub fn sleep(kind: Kind, d: Duration) {
    let started = Instant::now();
    std::thread::sleep(d);
    record_since(kind, d, started);
}

/// The tally of one kind of step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindDone {
    /// `cpu`, `wait` or `block`.
    pub kind: &'static str,
    /// Steps recorded (one per message that had this kind).
    pub n: u64,
    /// Mean duration asked, µs.
    pub asked_mean_us: f64,
    /// Mean duration realised, µs.
    pub done_mean_us: f64,
    /// 99th percentile of the realised duration, µs (within 1/16).
    pub done_p99_us: f64,
}

impl KindDone {
    /// Realised over asked (1.0: exact).
    pub fn ratio(&self) -> f64 {
        self.done_mean_us / self.asked_mean_us
    }
}

/// This process's tally so far, one entry per kind that was recorded.
pub fn snapshot() -> Vec<KindDone> {
    KINDS
        .iter()
        .filter_map(|&kind| {
            let t = &TALLIES[slot(kind)];
            let n = t.n.load(Relaxed);
            if n == 0 {
                return None;
            }
            let counts: Vec<u64> = t.buckets.iter().map(|b| b.load(Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            let rank = (total as f64 * 0.99).ceil().max(1.0) as u64;
            let mut seen = 0;
            let p99 = counts
                .iter()
                .position(|&c| {
                    seen += c;
                    seen >= rank
                })
                .map_or(0.0, bucket_mid);
            Some(KindDone {
                kind: kind_name(kind),
                n,
                asked_mean_us: t.asked_ns.load(Relaxed) as f64 / n as f64 / 1e3,
                done_mean_us: t.done_ns.load(Relaxed) as f64 / n as f64 / 1e3,
                done_p99_us: p99 / 1e3,
            })
        })
        .collect()
}

/// `work cpu n=.. asked_us=.. done_us=.. p99_us=..;wait ...`: a tally as one line (`work`
/// alone when nothing was recorded).
pub fn line(tally: &[KindDone]) -> String {
    let mut s = String::from("work");
    for (i, k) in tally.iter().enumerate() {
        let _ = write!(
            s,
            "{}{} n={} asked_us={:.3} done_us={:.3} p99_us={:.3}",
            if i == 0 { " " } else { ";" },
            k.kind,
            k.n,
            k.asked_mean_us,
            k.done_mean_us,
            k.done_p99_us
        );
    }
    s
}

/// Reads a [`line()`] back; `None` when it is not one.
pub fn parse_line(s: &str) -> Option<Vec<KindDone>> {
    let rest = s.trim().strip_prefix("work")?;
    if rest.trim().is_empty() {
        return Some(Vec::new());
    }
    rest.trim()
        .split(';')
        .map(|part| {
            let mut words = part.split_whitespace();
            let word = words.next()?;
            let kind = KINDS.iter().map(|&k| kind_name(k)).find(|&n| n == word)?;
            let mut field =
                |name: &str| -> Option<f64> { words.next()?.strip_prefix(name)?.strip_prefix('=')?.parse().ok() };
            let n = field("n")?;
            Some(KindDone {
                kind,
                n: n as u64,
                asked_mean_us: field("asked_us")?,
                done_mean_us: field("done_us")?,
                done_p99_us: field("p99_us")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_a_sixteenth() {
        for ns in [0u64, 1, 15, 16, 17, 100, 999, 1_000_000, 1_234_567, u64::MAX / 3] {
            let mid = bucket_mid(bucket(ns));
            assert!((mid - ns as f64).abs() <= ns as f64 / 16.0 + 1.0, "{ns}: {mid}");
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn a_line_reads_back() {
        let t = vec![
            KindDone {
                kind: "cpu",
                n: 3,
                asked_mean_us: 20.0,
                done_mean_us: 20.5,
                done_p99_us: 21.0,
            },
            KindDone {
                kind: "wait",
                n: 3,
                asked_mean_us: 1000.0,
                done_mean_us: 1010.25,
                done_p99_us: 1100.0,
            },
        ];
        assert_eq!(parse_line(&line(&t)), Some(t.clone()));
        assert_eq!(
            parse_line(&line(&t[1..])),
            Some(t[1..].to_vec()),
            "a kind other than the first"
        );
        assert_eq!(parse_line("work"), Some(Vec::new()));
        assert_eq!(parse_line("listening 127.0.0.1:1"), None);
        assert_eq!(parse_line("work nap n=1 asked_us=1 done_us=1 p99_us=1"), None);
    }
}
