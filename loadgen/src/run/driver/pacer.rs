//! How an open-loop thread waits for its next send (or connection arrival): `--pacing`.
//!
//! - `sleep`: a timerfd armed for the send time (ns precision, 1 µs timer slack); the send
//!   is as late as the kernel's wake-up.
//! - `spin`: never sleeps while a send is pending: polls without blocking (so replies are
//!   still read) and, in the last [`SPIN_ON_CLOCK`], spins on the clock. Most precise; one
//!   busy core per client thread.
//! - `hybrid` (the default): sleeps on the timerfd until a margin before the send time, then
//!   spins on the clock. The margin adapts to the wake-up lateness it observes: twice the
//!   worst recent lateness, decaying by 1/16 per wake-up, within [`MIN_MARGIN`] and
//!   [`MAX_MARGIN`], and never more than [`SPIN_SHARE`] of the thread's mean gap between
//!   sends, so a thread spins at most about 30% of its time (except when its sends are
//!   closer together than [`SPIN_GAPS_BELOW`]: then it spins through the gaps, where a
//!   wake-up per send costs more CPU than spinning): on a machine the server
//!   shares, a spinning client would take the server's CPU and slow the replies it
//!   measures (measured at 10k msg/s on 2 cores: a tenth left the median 24 µs late, 40%
//!   cost 0.53 of a core, 30% gives 4 µs for 0.3 of a core).

use std::time::Duration;

use super::timer::Timer;
use crate::config::Pacing;

/// Smallest hybrid margin.
pub(super) const MIN_MARGIN: Duration = Duration::from_micros(5);
/// Largest hybrid margin: beyond it a late timer is cheaper than a spinning core that the
/// server (sharing the machine) would miss. Reached only at low rates (a send gap of 3.3 ms
/// or more, given [`SPIN_SHARE`]): at 50 msg/s a 100 µs ceiling left the sends whose timer
/// woke 100-500 µs late (this VM's tail) late; 1 ms costs at most 5% of a core there.
pub(super) const MAX_MARGIN: Duration = Duration::from_micros(1000);
/// Hybrid margin before any wake-up was observed.
const FIRST_MARGIN: Duration = Duration::from_micros(50);
/// How much later than asked a poll timeout may end: epoll's timeout is in whole
/// milliseconds, rounded up.
const POLL_ROUNDING: Duration = Duration::from_millis(1);
/// `hybrid`: the most of the mean gap between sends spent spinning.
pub(super) const SPIN_SHARE: f64 = 0.3;
/// `hybrid`: a thread whose sends are closer together than this (over ~11.8k msg/s per
/// thread) spins through the gaps. Measured on the 2-core VM at 12.5k-20k msg/s per thread
/// (results/pacing/README.md): sleeping between such sends left them late (client lag p50
/// 5-19 µs, p99 30-60 µs and once 390, against 0.1-0.2 / 0.6-24 µs spinning) and cost more CPU in
/// wake-ups than spinning did work (0.52-0.63 of a core against 0.25-0.38 of work, for a
/// whole core busy); the corrected median came out the same or better spinning. At 10k
/// (100 µs apart) sleeping still pays: 0.3 of a core, lag p50 0.1 µs.
pub(super) const SPIN_GAPS_BELOW: Duration = Duration::from_micros(85);
/// `spin`: closer to the send time than this, spin on the clock instead of polling.
pub(super) const SPIN_ON_CLOCK: Duration = Duration::from_micros(20);

/// What the loop does until its next send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// Poll with this timeout (a timer may be armed to end it sooner).
    Poll(Duration),
    /// Spin on the clock until this time (ns after the start), then send.
    Spin(u64),
}

/// A thread's pacing state.
#[derive(Debug)]
pub(super) struct Pacer {
    mode: Pacing,
    margin_ns: u64,
    /// The margin's ceiling: [`MAX_MARGIN`], or less at high rates ([`SPIN_SHARE`]).
    max_margin_ns: u64,
    /// The wake-up the timer was last armed for, to learn its lateness.
    armed_for: Option<u64>,
}

impl Pacer {
    /// A pacer in `mode` for a thread whose sends are `gap` apart on average.
    pub(super) fn new(mode: Pacing, gap: Duration) -> Self {
        let max_margin_ns = if gap < SPIN_GAPS_BELOW {
            // Sends this close together: a wake-up per send costs more than spinning, and
            // makes every send late (see SPIN_GAPS_BELOW).
            gap.as_nanos() as u64
        } else {
            ((gap.as_nanos() as f64 * SPIN_SHARE) as u64)
                .clamp(MIN_MARGIN.as_nanos() as u64, MAX_MARGIN.as_nanos() as u64)
        };
        // Low rates keep the whole margin from the start (see `woke`).
        let first = if max_margin_ns >= MAX_MARGIN.as_nanos() as u64 {
            max_margin_ns
        } else {
            (FIRST_MARGIN.as_nanos() as u64).min(max_margin_ns)
        };
        Pacer {
            mode,
            margin_ns: first,
            max_margin_ns,
            armed_for: None,
        }
    }

    /// How to wait at `t` for the send due at `due` (ns after the start), when nothing
    /// else needs the loop before `coarse` from now.
    pub(super) fn plan(&mut self, t: u64, due: Option<u64>, coarse: Duration, timer: Option<&mut Timer>) -> Wait {
        let (Some(due), Some(timer)) = (due, timer) else {
            return Wait::Poll(coarse);
        };
        let wait = due.saturating_sub(t);
        // The poll timeout has millisecond precision and is rounded up: a coarse wake-up
        // is only safe when even a whole millisecond more does not pass the send time.
        if u128::from(wait) >= coarse.as_nanos() + POLL_ROUNDING.as_nanos() {
            return Wait::Poll(coarse);
        }
        match self.mode {
            Pacing::Sleep => {
                self.arm(timer, t, wait);
                Wait::Poll(coarse)
            }
            Pacing::Spin if wait <= SPIN_ON_CLOCK.as_nanos() as u64 => Wait::Spin(due),
            Pacing::Spin => Wait::Poll(Duration::ZERO),
            Pacing::Hybrid if wait <= self.margin_ns => Wait::Spin(due),
            Pacing::Hybrid => {
                self.arm(timer, t, wait - self.margin_ns);
                Wait::Poll(coarse)
            }
        }
    }

    fn arm(&mut self, timer: &mut Timer, t: u64, after: u64) {
        timer.arm(t, t + after);
        self.armed_for = Some(t + after);
    }

    /// The loop woke at `t`: learns how late the timer was (hybrid margin).
    pub(super) fn woke(&mut self, t: u64) {
        let Some(armed) = self.armed_for else { return };
        if t < armed {
            return; // woken early by a socket: says nothing about the timer
        }
        self.armed_for = None;
        let late = t - armed;
        // Sends closer than the least margin (a high rate, where the margin is the gap)
        // make the gap the bound on both sides.
        let hi = self.max_margin_ns;
        let lo = (MIN_MARGIN.as_nanos() as u64).min(hi);
        if hi >= MAX_MARGIN.as_nanos() as u64 {
            // Low rates (sends 3.3 ms apart or more): the whole margin, always. Decaying it
            // between the rare late wake-ups left the next one uncovered (measured at 50
            // msg/s: sends 50-200 µs late); at these gaps it costs at most 30% of the time.
            self.margin_ns = hi;
            return;
        }
        self.margin_ns = (self.margin_ns - self.margin_ns / 16).max(2 * late).clamp(lo, hi);
    }

    /// Whether its spins yield the core (see [`spin_until`]): `spin` always (it never
    /// sleeps, so a server thread on its core needs the yields) and `hybrid` at high rates;
    /// not `hybrid` at low rates (sends 3.3 ms apart or more), where it spins up to 1 ms
    /// right before each send and a yield gave the core away for a whole slice (sends
    /// 0.1-2 ms late at 50 msg/s) while there is little for anyone else to run.
    pub(super) fn shares_core(&self) -> bool {
        match self.mode {
            Pacing::Spin => true,
            Pacing::Hybrid => self.max_margin_ns < MAX_MARGIN.as_nanos() as u64,
            Pacing::Sleep => false,
        }
    }

    /// The hybrid margin now.
    #[cfg(test)]
    fn margin(&self) -> Duration {
        Duration::from_nanos(self.margin_ns)
    }
}

/// Closer to the send time than this, spin without yielding.
const YIELD_ABOVE_NS: u64 = 3_000;

/// Two readings of the clock in a spin further apart than this: the thread was off the CPU
/// in between (a yield that handed the core over, a preemption), which is not CPU spent.
pub(super) const OFF_CPU_GAP_NS: u64 = 20_000;

/// Spins on the clock until `now_ns()` reaches `until`; returns the time it saw then and
/// how much of the spin it was on the CPU (gaps over [`OFF_CPU_GAP_NS`] left out). With
/// `share_core`, yields the CPU while more than a few µs remain, so a server thread on this
/// core gets it (see [`Pacer::shares_core`]); without it, it does not: a yield hands the
/// core to any runnable thread for its whole slice.
#[inline]
pub(super) fn spin_until(until: u64, share_core: bool, now_ns: impl Fn() -> u64) -> (u64, u64) {
    let (mut last, mut on_cpu) = (now_ns(), 0);
    loop {
        let now = now_ns();
        let gap = now - last;
        if gap < OFF_CPU_GAP_NS {
            on_cpu += gap;
        }
        last = now;
        if now >= until {
            return (now, on_cpu);
        }
        if share_core && until - now > YIELD_ABOVE_NS {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COARSE: Duration = Duration::from_millis(20);

    #[test]
    fn hybrid_sleeps_to_the_margin_then_spins_and_learns_the_lateness() {
        let mut timer = Timer::new().unwrap();
        let mut p = Pacer::new(Pacing::Hybrid, Duration::from_millis(1));
        assert_eq!(p.plan(0, Some(1_000_000), COARSE, Some(&mut timer)), Wait::Poll(COARSE));
        assert_eq!(p.armed_for, Some(1_000_000 - 50_000));
        assert_eq!(p.plan(0, Some(40_000), COARSE, Some(&mut timer)), Wait::Spin(40_000));
        // The timer woke 80 µs late: the margin grows to 160 µs, then decays.
        p.armed_for = Some(1_000);
        p.woke(41_000);
        assert_eq!(p.margin(), Duration::from_micros(80));
        p.armed_for = Some(1_000);
        p.woke(1_000);
        assert_eq!(p.margin(), Duration::from_micros(75));
        p.armed_for = Some(1_000);
        p.woke(10_000_000);
        assert_eq!(p.margin(), Duration::from_micros(300), "30% of the 1 ms gap at most");
        assert!(p.shares_core());
    }

    #[test]
    fn at_low_rates_hybrid_keeps_its_whole_margin_and_its_core() {
        let mut p = Pacer::new(Pacing::Hybrid, Duration::from_millis(20));
        assert_eq!(p.margin(), MAX_MARGIN);
        p.armed_for = Some(1_000);
        p.woke(1_000); // on time: no decay at low rates
        assert_eq!(p.margin(), MAX_MARGIN);
        assert!(!p.shares_core());
        assert!(Pacer::new(Pacing::Spin, Duration::from_millis(20)).shares_core());
    }

    #[test]
    fn at_high_rates_hybrid_spins_only_part_of_the_gap() {
        let p = Pacer::new(Pacing::Hybrid, Duration::from_micros(100));
        assert_eq!(p.margin(), Duration::from_micros(30));
        // Sends 10 µs apart, closer than a wake-up is late: the thread spins through gaps.
        let mut p = Pacer::new(Pacing::Hybrid, Duration::from_micros(10));
        p.armed_for = Some(0);
        p.woke(1_000_000);
        assert_eq!(p.margin(), Duration::from_micros(10));
        // Closer than the least margin (1.5 µs: a mean rate of 667k msg/s over --stages
        // whose slow stage arms the timer): the gap bounds the margin, no panic.
        let mut p = Pacer::new(Pacing::Hybrid, Duration::from_nanos(1500));
        p.armed_for = Some(0);
        p.woke(1_000_000);
        assert_eq!(p.margin(), Duration::from_nanos(1500));
    }

    #[test]
    fn each_mode_waits_its_own_way() {
        let mut timer = Timer::new().unwrap();
        let mut sleep = Pacer::new(Pacing::Sleep, Duration::from_millis(1));
        assert_eq!(
            sleep.plan(0, Some(10_000), COARSE, Some(&mut timer)),
            Wait::Poll(COARSE)
        );
        assert_eq!(sleep.armed_for, Some(10_000));
        let mut spin = Pacer::new(Pacing::Spin, Duration::from_millis(1));
        assert_eq!(spin.plan(0, Some(10_000), COARSE, Some(&mut timer)), Wait::Spin(10_000));
        assert_eq!(
            spin.plan(0, Some(1_000_000), COARSE, Some(&mut timer)),
            Wait::Poll(Duration::ZERO)
        );
        // Nothing due before the coarse wake-up (or closed loop): plain poll.
        assert_eq!(
            spin.plan(0, Some(1_000_000_000), COARSE, Some(&mut timer)),
            Wait::Poll(COARSE)
        );
        assert_eq!(spin.plan(0, None, COARSE, None), Wait::Poll(COARSE));
    }
}
