//! When messages may be sent: closed loop (as soon as a slot in the connection's window is
//! free) or a fixed rate (open loop), where every message has an intended send time.
//!
//! Fixed rate `R` over `N` connections: connection `c` sends message `s` at
//! `c / R + s * N / R` seconds after the start. The connections' phases are staggered by
//! `1 / R`, so together they send one message every `1 / R`. A client thread owning
//! connections `t, t + T, t + 2T, ...` visits them round-robin, which yields its messages in
//! intended-time order ([`ThreadSchedule`]).

use std::fmt;

use serde::Serialize;

/// Closed or open loop, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each connection sends as soon as a reply frees a slot.
    Closed,
    /// Messages go out on a fixed schedule.
    Open,
}

impl Mode {
    /// `closed` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Closed => "closed",
            Mode::Open => "open",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The sending discipline of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Every connection keeps its window full.
    Closed,
    /// Fixed total rate in messages per second.
    Open {
        /// Total messages per second over all connections.
        rate: f64,
        /// Total connections sharing the rate.
        conns: usize,
    },
}

impl Schedule {
    /// The mode of this discipline.
    pub fn mode(&self) -> Mode {
        match self {
            Schedule::Closed => Mode::Closed,
            Schedule::Open { .. } => Mode::Open,
        }
    }

    /// Intended send time of message `seq` of connection `conn`, in nanoseconds after the
    /// start. Closed loop has none.
    #[inline]
    pub fn intended_ns(&self, conn: u32, seq: u64) -> Option<u64> {
        match *self {
            Schedule::Closed => None,
            Schedule::Open { rate, conns } => {
                let step = 1e9 / rate;
                Some((f64::from(conn) * step + seq as f64 * conns as f64 * step) as u64)
            }
        }
    }
}

impl Schedule {
    /// How many messages of connection `conn` are due in `[from_ns, to_ns)` (ns after the
    /// start); closed loop: `None` (as many as it can).
    pub fn due_between(&self, conn: u32, from_ns: u64, to_ns: u64) -> Option<u64> {
        let Schedule::Open { rate, conns } = *self else {
            return None;
        };
        let step = 1e9 / rate;
        let (first, period) = (f64::from(conn) * step, conns as f64 * step);
        // Messages k >= 0 with first + k * period in [from, to).
        let k = |t: u64| ((t as f64 - first) / period).ceil().max(0.0) as u64;
        Some(k(to_ns).saturating_sub(k(from_ns)))
    }
}

/// One client thread's walk through its connections' intended send times, in time order.
#[derive(Debug, Clone)]
pub struct ThreadSchedule {
    schedule: Schedule,
    conn_ids: Vec<u32>,
    next: u64,
}

impl ThreadSchedule {
    /// `conn_ids` must be the thread's connections in increasing order, spaced evenly
    /// (`t, t + T, ...`), as the driver assigns them.
    pub fn new(schedule: Schedule, conn_ids: Vec<u32>) -> Self {
        ThreadSchedule {
            schedule,
            conn_ids,
            next: 0,
        }
    }

    /// The next message due: (index into the thread's connections, its sequence number,
    /// intended time in ns). `None` in closed loop or without connections.
    #[inline]
    pub fn peek(&self) -> Option<(usize, u64, u64)> {
        let m = self.conn_ids.len() as u64;
        if m == 0 {
            return None;
        }
        let slot = (self.next % m) as usize;
        let seq = self.next / m;
        self.schedule
            .intended_ns(self.conn_ids[slot], seq)
            .map(|t| (slot, seq, t))
    }

    /// Moves past the message [`peek`](Self::peek) returned.
    #[inline]
    pub fn advance(&mut self) {
        self.next += 1;
    }

    /// Messages walked past so far.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Whether more than `by` messages are due by `t` (ns after the start): one intended
    /// time computed, cheap enough to ask before every walk.
    #[inline]
    pub fn behind(&self, t: u64, by: u64) -> bool {
        let m = self.conn_ids.len() as u64;
        let k = self.next + by;
        m > 0
            && self
                .schedule
                .intended_ns(self.conn_ids[(k % m) as usize], k / m)
                .is_some_and(|at| at <= t)
    }

    /// The thread's connections.
    pub fn conns(&self) -> usize {
        self.conn_ids.len()
    }

    /// How far the walk would be once every message due by `t` (ns after the start) was
    /// passed: the number of the thread's messages, in its order, intended at `t` or
    /// before. Found by search (intended times grow along the walk), not by walking.
    pub fn due_by(&self, t: u64) -> u64 {
        let m = self.conn_ids.len() as u64;
        let intended = |k: u64| {
            self.schedule
                .intended_ns(self.conn_ids[(k % m) as usize], k / m)
                .unwrap_or(u64::MAX)
        };
        if m == 0 || intended(self.next) > t {
            return self.next;
        }
        // intended(lo) <= t < intended(hi): widen, then halve.
        let (mut lo, mut step) = (self.next, 1u64);
        let mut hi = lo + step;
        while intended(hi) <= t {
            lo = hi;
            step = step.saturating_mul(2);
            hi = lo.saturating_add(step);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if intended(mid) <= t {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    /// Moves the walk to position `next` (from [`due_by`](Self::due_by)); the messages
    /// passed over are the caller's to mark due.
    pub fn seek(&mut self, next: u64) {
        self.next = self.next.max(next);
    }

    /// Position `next` of the walk: how many of connection `slot`'s messages come before it.
    pub fn before(&self, next: u64, slot: usize) -> u64 {
        let m = self.conn_ids.len() as u64;
        next / m + u64::from((slot as u64) < next % m)
    }
}

/// One client thread's share of a fixed schedule of new connections (`--conn-rate`):
/// arrival `k` of the whole run is due at `k / rate` seconds after the start, and thread
/// `t` of `T` takes arrivals `t, t + T, t + 2T, ...`.
#[derive(Debug, Clone)]
pub struct Arrivals {
    first_ns: f64,
    step_ns: f64,
    next: u64,
}

impl Arrivals {
    /// Thread `thread` of `threads` at `rate` new connections per second in total.
    pub fn new(rate: f64, thread: usize, threads: usize) -> Self {
        Arrivals {
            first_ns: thread as f64 * 1e9 / rate,
            step_ns: threads as f64 * 1e9 / rate,
            next: 0,
        }
    }

    /// When the next arrival is due, in ns after the start.
    #[inline]
    pub fn peek(&self) -> u64 {
        (self.first_ns + self.next as f64 * self.step_ns) as u64
    }

    /// Moves past the arrival [`peek`](Self::peek) returned.
    #[inline]
    pub fn advance(&mut self) {
        self.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_of_all_threads_interleave_at_the_total_rate() {
        let mut all: Vec<u64> = (0..3)
            .flat_map(|t| {
                let mut a = Arrivals::new(1000.0, t, 3);
                (0..10)
                    .map(|_| {
                        let at = a.peek();
                        a.advance();
                        at
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_unstable();
        for (k, at) in all.iter().take(30).enumerate() {
            assert_eq!(*at, k as u64 * 1_000_000);
        }
    }

    #[test]
    fn due_counts_follow_each_connections_own_schedule() {
        // 50 msg/s over 1000 connections: each is due once every 20 s.
        let s = Schedule::Open {
            rate: 50.0,
            conns: 1000,
        };
        let window = (1_000_000_000, 6_000_000_000);
        let due: Vec<u64> = (0..1000)
            .map(|c| s.due_between(c, window.0, window.1).unwrap())
            .collect();
        assert_eq!(due.iter().sum::<u64>(), 250, "5 s at 50 msg/s");
        assert_eq!(due.iter().filter(|&&d| d == 0).count(), 750);
        assert_eq!(Schedule::Closed.due_between(0, 0, 1), None);
    }

    #[test]
    fn open_schedule_spreads_the_total_rate() {
        let s = Schedule::Open { rate: 1000.0, conns: 4 };
        assert_eq!(s.intended_ns(0, 0), Some(0));
        assert_eq!(s.intended_ns(1, 0), Some(1_000_000));
        assert_eq!(s.intended_ns(0, 1), Some(4_000_000));
        assert_eq!(Schedule::Closed.intended_ns(0, 5), None);
    }

    #[test]
    fn catching_up_lands_where_walking_would() {
        // Thread 1 of 3 over 10 connections (1, 4, 7), at an odd rate.
        let s = Schedule::Open { rate: 777.0, conns: 10 };
        for t in [0, 1, 1_286_000, 5_000_000, 99_999_999, 1_000_000_000] {
            let mut walk = ThreadSchedule::new(s, vec![1, 4, 7]);
            let jumped = walk.due_by(t);
            let mut due = [0u64; 3];
            while let Some((slot, seq, at)) = walk.peek() {
                if at > t {
                    break;
                }
                due[slot] = seq + 1;
                walk.advance();
            }
            assert_eq!(jumped, walk.position(), "t {t}");
            let fresh = ThreadSchedule::new(s, vec![1, 4, 7]);
            assert_eq!(fresh.behind(t, 2), jumped > 2, "t {t}");
            for (slot, d) in due.iter().enumerate() {
                assert_eq!(walk.before(jumped, slot), *d, "t {t}, slot {slot}");
            }
        }
    }

    #[test]
    fn thread_walk_is_time_ordered_and_complete() {
        // 10 connections over 3 threads; merged, the threads' walks give 1 message per 1/R.
        let s = Schedule::Open {
            rate: 10_000.0,
            conns: 10,
        };
        let mut all = Vec::new();
        for t in 0..3u32 {
            let ids: Vec<u32> = (t..10).step_by(3).collect();
            let mut w = ThreadSchedule::new(s, ids.clone());
            let mut last = 0;
            for _ in 0..100 {
                let (slot, seq, at) = w.peek().unwrap();
                assert!(at >= last, "not time-ordered");
                last = at;
                all.push((at, ids[slot], seq));
                w.advance();
            }
        }
        all.sort();
        let horizon = 200; // every thread has walked past 20 ms
        for (i, (at, _, _)) in all.iter().take(horizon).enumerate() {
            assert_eq!(*at, i as u64 * 100_000, "message {i}");
        }
    }
}
