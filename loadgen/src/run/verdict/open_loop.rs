//! The open-loop verdicts: whether the schedule was kept and who is to blame if not (the
//! client's pacing, the server's replies, the machine's timer floor), and whether Poisson
//! sends really were Poisson.

use super::room::{Room, SATURATED};
use crate::report::units::per_s;

/// Open loop: the achieved rate must reach this share of the asked rate ...
pub(crate) const RATE_KEPT: f64 = 0.99;
/// ... and the send lag p99 stay below this (µs), or the schedule was not kept.
pub(crate) const LAG_KEPT_US: f64 = 1000.0;

/// The rate a window sent at, for judging whether it kept its schedule. A window ended by
/// a stop (a server gone, a signal) ends where the watcher noticed it, up to one of its
/// ticks after the sends stopped; that tick is not the generator's shortfall and is left out.
pub(crate) fn sent_rate(sent: u64, secs: f64, stopped: bool) -> f64 {
    let slack = if stopped {
        crate::run::cost::TICK.as_secs_f64()
    } else {
        0.0
    };
    sent as f64 / (secs - slack).max(secs / 2.0)
}

/// Open loop: `None` when the schedule was kept, else a sentence saying it was not and who
/// is to blame: the generator when a client thread was near a full core or its own pacing
/// was late (client lag), else the replies (server or network), which held sends back
/// under `--depth` (backpressure). `unit` names what the rate counts (`msg/s`, or `new
/// connections/s` with `--conn-rate`).
pub(crate) fn keep_up_verdict(
    rate: f64,
    achieved: f64,
    unit: &str,
    lag: Lags,
    busiest_thread: f64,
    room: &Room,
) -> Option<String> {
    let short = achieved < RATE_KEPT * rate;
    let late = lag.total_p99_us > LAG_KEPT_US;
    if !short && !late {
        return None;
    }
    let (achieved, rate) = (per_s(achieved), per_s(rate));
    let what = match (short, late) {
        (true, true) => format!(
            "achieved {achieved} of {rate} {unit} and sends were late (lag p99 {:.0} us)",
            lag.total_p99_us
        ),
        (true, false) => format!("achieved {achieved} of {rate} {unit}"),
        _ => format!(
            "sends were late against the schedule (lag p99 {:.0} us > {LAG_KEPT_US:.0} us)",
            lag.total_p99_us
        ),
    };
    let pct = busiest_thread * 100.0;
    Some(if busiest_thread >= SATURATED {
        format!(
            "the GENERATOR could not keep up: {what}; its busiest client thread used {pct:.0}% of a core ({})",
            room.advice()
        )
    } else if lag.client_p99_us > lag.backpressure_p99_us {
        format!(
            "the GENERATOR's pacing was late: {what}; sends were sendable but went out late (client lag p99 {:.0} us, \
             waits for replies p99 {:.0} us) with client threads at most {pct:.0}% busy (try --pacing spin or --pin-client)",
            lag.client_p99_us, lag.backpressure_p99_us
        )
    } else {
        format!(
            "replies were late (server or network): {what}; sends waited for replies under --depth (p99 {:.0} us) \
             while client threads were at most {pct:.0}% busy",
            lag.backpressure_p99_us
        )
    })
}

/// The p99s of an open-loop run's lateness, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Lags {
    /// Actual minus intended send time.
    pub(crate) total_p99_us: f64,
    /// The client's own part.
    pub(crate) client_p99_us: f64,
    /// The part spent waiting for replies under `--depth`.
    pub(crate) backpressure_p99_us: f64,
}

/// Share of the corrected latency p99 above which the client's own lateness is said to
/// dominate the measurement.
pub(crate) const CLIENT_LAG_SHARE: f64 = 0.1;

/// Fewest sends that must have been late by that share for the self-check to speak: in a
/// short or slow run the p99 is two or three sends (250 at 50 msg/s for 5 s), and two sends
/// a stalled VM held back are not the client's pacing.
pub(crate) const MIN_LATE_SENDS: u64 = 10;

/// Open loop: `Some(sentence)` when the client's own lateness (`client_lag`, ns) has a p99
/// above [`CLIENT_LAG_SHARE`] of the corrected p99, in at least [`MIN_LATE_SENDS`] sends:
/// then the latency at this rate reflects the client's pacing rather than the server.
/// `halt_poll_ns` is the machine's `guest_halt_poll_ns` where the idle driver is a VM's
/// `haltpoll`: at zero the sentence names it, since every timer wake-up of an idle vCPU then
/// pays a VM exit.
pub(crate) fn pacing_verdict(
    client_lag: &hdrhistogram::Histogram<u64>,
    latency_p99_us: f64,
    halt_poll_ns: Option<u64>,
    timer_floor_p99_us: Option<f64>,
) -> Option<String> {
    let client_lag_p99_us = client_lag.value_at_quantile(0.99) as f64 / 1000.0;
    let bar_ns = (CLIENT_LAG_SHARE * latency_p99_us * 1000.0) as u64;
    let late = client_lag.count_between(bar_ns.saturating_add(1), u64::MAX);
    (client_lag_p99_us > CLIENT_LAG_SHARE * latency_p99_us && latency_p99_us > 0.0 && late >= MIN_LATE_SENDS).then(|| {
        let vm = if halt_poll_ns == Some(0) {
            "; this VM halts idle vCPUs at once (cpuidle haltpoll, guest_halt_poll_ns = 0), which makes timer \
             wake-ups late: see README \"Pacing\" for /sys/module/haltpoll/parameters/guest_halt_poll_ns"
        } else {
            ""
        };
        // Against the machine's floor: a lag at the timer's own lateness is the machine's;
        // well beyond it, the client is short of CPU.
        let floor = match timer_floor_p99_us.filter(|f| *f > 0.0) {
            Some(f) if client_lag_p99_us <= FLOOR_FACTOR * f => format!(
                "; that is {:.1}x this machine's timer floor (p99 {f:.1} us): at the machine's floor, only spinning \
                 (--pacing spin) gets below it",
                client_lag_p99_us / f
            ),
            Some(f) => format!(
                "; that is {:.1}x this machine's timer floor (p99 {f:.1} us): the client is short of CPU",
                client_lag_p99_us / f
            ),
            None => String::new(),
        };
        format!(
            "the latency at this rate reflects the client's pacing: its own lag p99 {client_lag_p99_us:.1} us is {:.0}% of \
             the corrected p99 {latency_p99_us:.1} us ({late} sends late by more than a tenth of it){floor}; try --pacing spin, \
             more --threads, or --pin-client{vm}",
            100.0 * client_lag_p99_us / latency_p99_us
        )
    })
}

/// A failed arrivals check, with its likeliest cause: sends held back by --depth (the
/// server is slower than the rate), a client that sent late, or a rate not kept.
pub(crate) fn arrivals_verdict(check: &crate::report::ArrivalsCheck, lags: Lags) -> Option<String> {
    if check.ok {
        return None;
    }
    let cause = if lags.backpressure_p99_us > 0.0 {
        format!(
            "sends waited for a free slot under --depth (backpressure p99 {:.1} us): the server fell behind the \
             rate, so the arrivals bunched up behind it; raise --depth or lower --rate",
            lags.backpressure_p99_us
        )
    } else if (check.mean_gap_ratio - 1.0).abs() > 0.01 {
        format!(
            "the mean gap was {:.3}x the promised one: the client did not keep the rate; try --threads or --pin-client",
            check.mean_gap_ratio
        )
    } else {
        format!(
            "the client's sends were late against their intended times (client lag p99 {:.1} us), and a thread sends \
             no two messages closer than its cost per send (a few us), which reshapes the short gaps; spread the \
             rate over more --threads (longer gaps each), or try --pacing spin or --pin-client",
            lags.client_p99_us
        )
    };
    Some(format!(
        "the sends were not a Poisson process (Kolmogorov-Smirnov D {:.4} over {} gaps, p {:.1e} < {}): {cause}; \
         queueing results from this run do not hold",
        check.statistic,
        check.gaps,
        check.p_value,
        crate::report::ARRIVALS_ALPHA
    ))
}

/// A client lag p99 up to this many times the machine's timer floor is the machine's.
pub(crate) const FLOOR_FACTOR: f64 = 2.0;
