//! `--stages`: each stage reported on its own, from the intervals it holds (every stage
//! starts on an interval's boundary; the configuration checks that), beside the whole run.
//!
//! A stage's report is the whole run's with what the stage measured in place of the
//! window's: counts, latency and lateness percentiles, rates, whether the stage's schedule
//! was kept, its status and its intervals. What is read only at the window's ends (CPU,
//! memory, the machine, TCP_INFO) or only over the whole run (fairness per connection,
//! the arrivals check, the server's work tally) is left out of a stage's report, never
//! copied into it.

use std::time::Duration;

use super::verdict;
use crate::config::RunConfig;
use crate::measure::record::{Interval, Percentiles};
use crate::report::{Report, StageInfo, Status};

/// The index of each stage's first interval.
pub(super) fn starts(cfg: &RunConfig) -> Vec<u32> {
    let Some(p) = &cfg.stages else {
        return Vec::new();
    };
    let every = cfg.interval.as_nanos().max(1);
    (0..p.stages().len())
        .map(|i| (p.start_of(i).as_nanos() / every) as u32)
        .collect()
}

/// Gives the whole run's report its stages' reports, and a warning naming the stages that
/// never ran when the run stopped early.
pub(super) fn attach(
    whole: &mut Report,
    cfg: &RunConfig,
    stages: Vec<Interval>,
    measured: Duration,
    room: &verdict::Room,
) {
    let Some(p) = &cfg.stages else { return };
    whole.stages = reports(whole, cfg, stages, measured, room);
    let (ran, all) = (whole.stages.len(), p.stages().len());
    if measured < p.total() && whole.rate.is_some() && !measured.is_zero() {
        // Stopped early: the rate asked of the window is what the stages offered in it.
        let share = cfg.my_conns() as f64 / cfg.conns.max(1) as f64;
        whole.rate = Some(p.area_until(measured.as_nanos() as f64) / measured.as_secs_f64() * share);
    }
    if ran < all {
        let left = if ran + 1 == all {
            format!("stage {all} did not run and has no row")
        } else {
            format!("stages {} to {all} did not run and have no row", ran + 1)
        };
        whole.warnings.push(format!(
            "the run stopped {:.1} s in, in stage {ran} of {all}: {left}",
            measured.as_secs_f64()
        ));
    }
}

/// Each stage's report, from the whole run's report and the stage's merged intervals;
/// `measured` is how long the window really ran (a stage after an early stop is left out,
/// one cut by it is reported for the part it ran, as partial), `room` what the client had
/// to judge its pacing by.
fn reports(
    whole: &Report,
    cfg: &RunConfig,
    stages: Vec<Interval>,
    measured: Duration,
    room: &verdict::Room,
) -> Vec<Report> {
    let Some(p) = &cfg.stages else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(stages.len());
    for (i, iv) in stages.into_iter().enumerate() {
        let start = p.start_of(i);
        let end = (start + p.stages()[i].duration).min(measured);
        if end <= start {
            break;
        }
        out.push(report(whole, cfg, p, (i, iv), (start, end), room));
    }
    out
}

/// How a stage of a rate kept its schedule: its keep-up verdict, and whether it sent under
/// the share of its offered rate that makes a run `behind`.
fn kept(whole: &Report, iv: &Interval, offered: f64, achieved: f64, room: &verdict::Room) -> (Option<String>, bool) {
    let lags = verdict::Lags {
        total_p99_us: Percentiles::of(&iv.send_lag).p99_us,
        client_p99_us: Percentiles::of(&iv.client_lag).p99_us,
        backpressure_p99_us: Percentiles::of(&iv.backpressure).p99_us,
    };
    (
        verdict::keep_up_verdict(offered, achieved, "msg/s", lags, whole.client_thread_work_max, room),
        achieved < crate::report::BEHIND_SHARE * offered,
    )
}

/// Stage `i`'s report: what it measured (`iv`) over `[start, end)` of the window. It keeps
/// the whole run's configuration, settings and environment; what is read only at the
/// window's ends (CPU, the machine, TCP_INFO, fairness, the arrivals check) it leaves
/// empty rather than copied (see the module).
fn report(
    whole: &Report,
    cfg: &RunConfig,
    p: &crate::measure::schedule::Profile,
    (i, iv): (usize, Interval),
    (start, end): (Duration, Duration),
    room: &verdict::Room,
) -> Report {
    let rate_stages = cfg.rate.is_some();
    let cut = end < start + p.stages()[i].duration;
    let secs = (end - start).as_secs_f64();
    let (from, to) = p.ends(i);
    // What the stage offered in the part of it that ran (all of it unless the run stopped
    // in it); a shard offers its connections' share.
    let area = p.area_until(end.as_nanos() as f64) - p.area_until(start.as_nanos() as f64);
    let offered = area / secs * cfg.my_conns() as f64 / cfg.conns.max(1) as f64;
    let c = iv.counters;
    let open = rate_stages.then_some(());
    let achieved = c.sent as f64 / secs;
    let sent = verdict::sent_rate(c.sent, secs, cut && whole.stop_reason.is_some());
    let (keep_up, behind) = match open {
        Some(()) => kept(whole, &iv, offered, sent, room),
        None => (None, false),
    };
    let nothing_asked = to <= 0.0 && from <= 0.0;
    let (lo, hi) = (start.as_secs_f64(), end.as_secs_f64());
    let mut r = Report::of_stage(whole);
    r.stage = Some(StageInfo {
        index: i + 1,
        spec: p.stages()[i].spec.clone(),
        start_s: lo,
        from,
        to,
        of: if rate_stages { "rate" } else { "conns" },
    });
    r.rate = open.map(|()| offered);
    if !rate_stages {
        r.conns = from.max(to).ceil() as usize;
    }
    r.warmup_s = 0.0;
    r.set_counts(c, secs);
    let intervals = whole
        .intervals
        .iter()
        .filter(|row| row.t_s > lo + 1e-9 && row.t_s <= hi + 1e-9)
        .cloned()
        .collect();
    r.set_latency(&iv.latency, open.map(|()| &iv.raw), intervals);
    r.send_lag = open.map(|()| Percentiles::of(&iv.send_lag));
    r.client_lag = open.map(|()| Percentiles::of(&iv.client_lag));
    r.backpressure = open.map(|()| Percentiles::of(&iv.backpressure));
    r.rx_delay = (!iv.rx_delay.is_empty()).then(|| Percentiles::of(&iv.rx_delay));
    r.achieved_rate = open.map(|()| achieved);
    r.keep_up = keep_up;
    if cut {
        r.warnings = vec![format!("the run stopped {:.1} s into this stage", secs)];
    }
    r.status = if nothing_asked && c.errors() == 0 && !cut {
        Status::Ok
    } else {
        verdict::status(whole.conns_ok, &c, cut, behind)
    };
    r
}
