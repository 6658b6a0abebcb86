//! `--metrics-listen`: the run's own state while it runs, in the Prometheus text format.
//! The main thread renders a snapshot at most once an interval (from what it already holds:
//! the threads' shared counters and the completed intervals), so the client threads pay
//! nothing per message; the HTTP side (the agent's server) only hands out the latest text.
//!
//! Metrics: `loadgen_round_trips_total` and `loadgen_sent_total` (the measured window's,
//! completed intervals), `loadgen_errors_total{kind}` (warm-up included, as the report
//! counts them), `loadgen_open_connections`, `loadgen_offered_rate` (open loop, msg/s),
//! `loadgen_running` (1 until the run ends), with `--stages` `loadgen_stage` and
//! `loadgen_stage_target` (the stage now and its target now), and `loadgen_latency_seconds`, a histogram
//! whose cumulative buckets are read from the HdrHistogram of the window so far.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::measure::record::{Counters, Interval};

/// On once `--metrics-listen` asked for it.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// The latest snapshot.
static LATEST: Mutex<String> = Mutex::new(String::new());

/// Bucket bounds of the latency histogram, seconds: 1, 2.5 and 5 per decade, 10 µs to 10 s.
const BOUNDS_S: [f64; 19] = [
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Turns publishing on (the run renders snapshots from now on).
#[cfg_attr(not(feature = "agent"), allow(dead_code))] // --metrics-listen needs the agent's server
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether `--metrics-listen` is on.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The latest snapshot (empty before the first).
#[cfg_attr(not(feature = "agent"), allow(dead_code))]
pub(crate) fn snapshot() -> String {
    LATEST.lock().map(|s| s.clone()).unwrap_or_default()
}

/// What a snapshot says.
pub(crate) struct State<'a> {
    /// The window's completed intervals, merged (warm-up errors included).
    pub total: &'a Interval,
    /// Connections open now.
    pub open: usize,
    /// Open loop: the offered rate, msg/s.
    pub offered: Option<f64>,
    /// Whether the run is still going.
    pub running: bool,
    /// `--stages`: the stage running now (from 1) and its target now.
    pub stage: Option<(usize, f64)>,
}

/// From the watch loop: publishes the run's state once per `--interval` (`last`: when it
/// last did), the window so far built only then (`total`).
pub(crate) fn tick(
    last: &mut Instant,
    now: Instant,
    cfg: &crate::config::RunConfig,
    total: impl FnOnce() -> Interval,
    shared: &super::driver::Shared,
) {
    if enabled() && now.saturating_duration_since(*last) >= cfg.interval {
        *last = now;
        let since = shared.start.get().map(|s| now.saturating_duration_since(*s));
        let stage = cfg
            .stages
            .as_ref()
            .zip(since)
            .map(|(p, t)| (p.stage_at(t) + 1, p.target_at(t.as_nanos() as u64)));
        publish(&State {
            total: &total(),
            open: shared.up.load(Ordering::Relaxed),
            // With stages of a rate, the rate offered now (not their mean).
            offered: cfg.rate.map(|r| stage.map_or(r, |(_, target)| target)),
            running: true,
            stage,
        });
    }
}

/// The run's end: its final state (the report's counts), no connection open.
pub(crate) fn finish(total: &Interval, offered: Option<f64>) {
    publish(&State {
        total,
        open: 0,
        offered,
        running: false,
        stage: None,
    });
}

/// Renders `state` and makes it the latest snapshot.
pub(crate) fn publish(state: &State<'_>) {
    if !enabled() {
        return;
    }
    let text = render(state);
    if let Ok(mut latest) = LATEST.lock() {
        *latest = text;
    }
}

/// The exposition text of `state`.
pub(crate) fn render(state: &State<'_>) -> String {
    let mut o = String::new();
    let c: &Counters = &state.total.counters;
    let counter = |o: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    counter(
        &mut o,
        "loadgen_round_trips_total",
        "Round trips completed in the measured window.",
        c.msgs,
    );
    counter(
        &mut o,
        "loadgen_sent_total",
        "Messages sent in the measured window.",
        c.sent,
    );
    let _ = writeln!(
        o,
        "# HELP loadgen_errors_total Errors by kind, warm-up included.\n# TYPE loadgen_errors_total counter"
    );
    for (kind, n) in [
        ("connect", c.connect_errors),
        ("timeout", c.timeouts),
        ("reset", c.resets),
        ("mismatch", c.mismatches),
        ("other", c.other_errors),
    ] {
        let _ = writeln!(o, "loadgen_errors_total{{kind=\"{kind}\"}} {n}");
    }
    let gauge = |o: &mut String, name: &str, help: &str, v: f64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge(
        &mut o,
        "loadgen_open_connections",
        "Connections open now.",
        state.open as f64,
    );
    if let Some(rate) = state.offered {
        gauge(
            &mut o,
            "loadgen_offered_rate",
            "Open loop: the offered rate, msg/s.",
            rate,
        );
    }
    if let Some((stage, target)) = state.stage {
        gauge(
            &mut o,
            "loadgen_stage",
            "--stages: the stage running now, from 1.",
            stage as f64,
        );
        gauge(
            &mut o,
            "loadgen_stage_target",
            "--stages: the stage's target now (msg/s, or open connections).",
            target,
        );
    }
    gauge(
        &mut o,
        "loadgen_running",
        "1 while the run goes on, 0 once it ended.",
        u8::from(state.running).into(),
    );
    histogram(&mut o, &state.total.latency);
    o
}

/// `loadgen_latency_seconds` from an HdrHistogram of nanoseconds: cumulative buckets.
fn histogram(o: &mut String, h: &Histogram<u64>) {
    let name = "loadgen_latency_seconds";
    let _ = writeln!(
        o,
        "# HELP {name} Round-trip latency in the measured window (open loop: from the intended send).\n# TYPE {name} histogram"
    );
    for bound in BOUNDS_S {
        let n = if h.is_empty() {
            0
        } else {
            h.count_between(0, (bound * 1e9) as u64)
        };
        let _ = writeln!(o, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
    let _ = writeln!(o, "{name}_sum {}", h.mean() * h.len() as f64 / 1e9);
    let _ = writeln!(o, "{name}_count {}", h.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_the_count() {
        let mut iv = Interval::new(Some(0));
        for us in [5u64, 20, 20, 300, 7000, 20_000_000] {
            iv.latency.record(us * 1000).unwrap();
        }
        iv.counters.msgs = 6;
        let text = render(&State {
            total: &iv,
            open: 3,
            offered: None,
            running: true,
            stage: Some((2, 1500.0)),
        });
        let buckets: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("loadgen_latency_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        assert_eq!(buckets[0], 1, "5 us is under 10 us");
        assert_eq!(*buckets.last().unwrap(), 6, "+Inf holds every sample");
        assert_eq!(buckets[buckets.len() - 2], 5, "20 s is over the last bound (10 s)");
        assert!(text.contains("loadgen_round_trips_total 6") && text.contains("loadgen_open_connections 3"));
        assert!(text.contains("loadgen_stage 2") && text.contains("loadgen_stage_target 1500"));
    }
}
