//! When messages may be sent: closed loop (as soon as a slot in the connection's window is
//! free) or a fixed rate (open loop), where every message has an intended send time.
//!
//! Fixed rate `R` over `N` connections (`--arrivals`):
//! - `uniform`: connection `c` sends message `s` at `c / R + s * N / R` seconds after the
//!   start. The connections' phases are staggered by `1 / R`, so together they send one
//!   message every `1 / R`.
//! - `poisson`: each connection sends a Poisson process of rate `R / N` (exponential gaps,
//!   seeded per connection by `--seed`; see [`poisson`]), so together they send a Poisson
//!   process of rate `R`, as Lancet and mutilate do: the arrivals an M/M/1 or M/D/1 queue
//!   assumes.
//!
//! Either way a message's intended time is a function of (connection, sequence number),
//! computed where it is needed; a client thread walks its connections' times in order
//! ([`ThreadSchedule`]).

use std::fmt;

use serde::Serialize;

pub mod poisson;
pub mod stages;
#[cfg(test)]
mod tests;
mod walk;

pub use stages::{Profile, Stage};
pub use walk::ThreadSchedule;

/// How an open loop spaces its messages in time: `--arrivals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly: one message every `1 / rate` over the run.
    #[default]
    Uniform,
    /// A Poisson process of the same mean rate (exponential gaps).
    Poisson,
}

impl Arrival {
    /// `uniform` or `poisson`, as the CSV and JSON name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Uniform => "uniform",
            Arrival::Poisson => "poisson",
        }
    }
}

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
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every connection keeps its window full.
    Closed,
    /// Fixed total rate in messages per second.
    Open {
        /// Total messages per second over all connections.
        rate: f64,
        /// Total connections sharing the rate.
        conns: usize,
        /// How the messages are spaced.
        arrivals: Arrival,
        /// `--seed`: each connection's Poisson stream.
        seed: u64,
        /// `--stages`: the rate changes over time (then `rate` is its mean); the times of
        /// the constant schedule at `rate` are warped onto it (see [`stages`]).
        profile: Option<std::sync::Arc<Profile>>,
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
        let base = self.base_ns(conn, seq)?;
        Some(match self.profile() {
            None => base as u64,
            Some((p, rate)) => p.time_of_area(rate * base / 1e9) as u64,
        })
    }

    /// The intended time of the constant schedule at `rate`, before any warp (ns).
    #[inline]
    fn base_ns(&self, conn: u32, seq: u64) -> Option<f64> {
        match *self {
            Schedule::Closed => None,
            Schedule::Open {
                rate,
                conns,
                arrivals,
                seed,
                ..
            } => {
                let step = 1e9 / rate;
                let period = conns as f64 * step;
                Some(match arrivals {
                    Arrival::Uniform => f64::from(conn) * step + seq as f64 * period,
                    // The first message one gap after the start, like every later one.
                    Arrival::Poisson => period * poisson::span(poisson::start(seed, conn), seq + 1),
                })
            }
        }
    }

    /// `--stages`: the profile and the mean rate the constant schedule runs at.
    #[inline]
    fn profile(&self) -> Option<(&Profile, f64)> {
        match self {
            Schedule::Open {
                profile: Some(p), rate, ..
            } => Some((p, *rate)),
            _ => None,
        }
    }

    /// The mean time between two messages of one connection, ns; closed loop, and a rate
    /// that changes over time (`--stages`): `None`.
    pub fn period_ns(&self) -> Option<f64> {
        match *self {
            Schedule::Open {
                rate,
                conns,
                profile: None,
                ..
            } => Some(conns as f64 * 1e9 / rate),
            _ => None,
        }
    }

    /// How many messages of connection `conn` are intended before `t` (ns after the start);
    /// closed loop: `None` (as many as it can).
    pub fn due_before(&self, conn: u32, t: u64) -> Option<u64> {
        let Schedule::Open {
            rate, conns, arrivals, ..
        } = *self
        else {
            return None;
        };
        // The warp is increasing: due before `t` is due before its time `u` unwarped.
        let t = match self.profile() {
            None => t as f64,
            Some((p, rate)) => p.area_until(t as f64) / rate * 1e9,
        };
        let step = 1e9 / rate;
        let (first, period) = (f64::from(conn) * step, conns as f64 * step);
        Some(match arrivals {
            // Messages k >= 0 with first + k * period < t.
            Arrival::Uniform => ((t - first) / period).ceil().max(0.0) as u64,
            Arrival::Poisson => {
                // Intended times grow with the sequence number: widen, then halve.
                let before = |k: u64| self.base_ns(conn, k).is_some_and(|at| at < t);
                if !before(0) {
                    return Some(0);
                }
                let (mut lo, mut hi) = (0u64, 1u64);
                while before(hi) {
                    lo = hi;
                    hi = hi.saturating_mul(2);
                }
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if before(mid) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                hi
            }
        })
    }

    /// How many messages of connection `conn` are due in `[from_ns, to_ns)` (ns after the
    /// start); closed loop: `None` (as many as it can).
    pub fn due_between(&self, conn: u32, from_ns: u64, to_ns: u64) -> Option<u64> {
        Some(
            self.due_before(conn, to_ns)?
                .saturating_sub(self.due_before(conn, from_ns)?),
        )
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
