//! Capacity search (`--rate auto --slo p99=1ms`): the highest fixed rate whose latency
//! percentile stays within a bound, found by short open-loop runs.
//!
//! The search is a bisection, kept apart from running: it asks a closure for a report at a
//! given rate (`None`: closed loop), so the maths is tested without sockets.
//! 1. A closed-loop run gives the ceiling (the most the server does at this concurrency).
//! 2. The ceiling itself is tried; if it fails, rates are bisected between the best passing
//!    rate (initially 0) and the lowest failing one, until they are within 2% or after
//!    [`MAX_TRIALS`] open-loop runs.
//!
//! A trial is judged by the objective: it passes when its run finished `ok`, the rate was
//! offered (at least [`OFFERED_SHARE`] of it sent) and the percentile, counted from each
//! send's scheduled time, is within the bound. Sends late against the schedule are already
//! in that latency: late sends within the bound are a note on the trial, not a failure (a
//! machine whose timer is 2 ms late at p99 can still show that a server meets p99 = 5 ms);
//! late sends beyond it fail the trial with that reason and the remedy. Each trial keeps its
//! disturbed and not-steady notes.

use serde::Serialize;

use crate::config::Slo;
use crate::report::{Report, Status};

/// Open-loop runs at most.
pub const MAX_TRIALS: usize = 8;
/// Stop when the passing and failing rates are this close (relative).
pub const PRECISION: f64 = 0.02;
/// A trial whose sends reached less than this share of its rate did not offer that rate.
pub const OFFERED_SHARE: f64 = 0.95;

impl Slo {
    /// The report's value of this percentile, µs.
    pub fn value(&self, r: &Report) -> f64 {
        let l = &r.latency;
        match self.percentile.as_str() {
            "p50" => l.p50_us,
            "p90" => l.p90_us,
            "p99" => l.p99_us,
            "p99.9" => l.p999_us,
            "p99.99" => l.p9999_us,
            _ => l.max_us,
        }
    }

    /// Whether an open-loop run meets the objective ([`Slo::failure`] is `None`).
    pub fn met_by(&self, r: &Report) -> bool {
        self.failure(r).is_none()
    }

    /// Why an open-loop run does not meet the objective, with what to do; `None` when it does.
    pub fn failure(&self, r: &Report) -> Option<String> {
        if r.status != Status::Ok || r.counters.msgs == 0 {
            return Some(format!("run status {}", r.status));
        }
        let (value, late) = (self.value(r), r.send_lag.map(|l| l.p99_us));
        if value > self.bound_us {
            return Some(match late.filter(|&l| l > self.bound_us / 2.0) {
                Some(l) => format!(
                    "{} {value:.1} us over the bound, with sends late by p99 {l:.1} us (over half of it): the client's \
                     pacing, not only the server; try --pacing spin, and see this machine's timer floor in `loadgen doctor`",
                    self.percentile
                ),
                None => format!("{} {value:.1} us over the bound", self.percentile),
            });
        }
        match (r.rate, r.achieved_rate) {
            (Some(asked), Some(sent)) if sent < OFFERED_SHARE * asked => Some(format!(
                "sent {sent:.0} of the {asked:.0} msg/s asked: the rate was not offered (the client or its connections \
                 could not keep up; more connections or --pacing spin may)"
            )),
            _ => None,
        }
    }

    /// What stays with a trial's row besides its verdict: sends late within the bound, a
    /// machine disturbed by other processes, a window that was not one regime.
    pub fn notes(&self, r: &Report) -> Vec<String> {
        let mut notes = Vec::new();
        if let (Some(why), Some(late), None) = (&r.keep_up, r.send_lag, self.failure(r)) {
            if late.p99_us <= self.bound_us {
                notes.push(format!(
                    "sends late by p99 {:.1} us, within the objective's bound (a note, not a failure): {why}",
                    late.p99_us
                ));
            }
        }
        notes.extend(r.machine.and_then(|m| m.disturbance()));
        notes.extend(
            r.steadiness()
                .filter(|s| !s.steady)
                .map(|s| format!("not steady: {}", s.reason.unwrap_or_default())),
        );
        notes
    }
}

/// One run of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Rate asked (`None`: the closed-loop ceiling run).
    pub rate: Option<f64>,
    /// Throughput achieved.
    pub throughput: f64,
    /// The objective's percentile, µs.
    pub value_us: f64,
    /// Whether it met the objective.
    pub pass: bool,
    /// The run's status.
    pub status: Status,
    /// Why it failed, with what to do (`None` when it passed, and for the ceiling run).
    pub reason: Option<String>,
    /// Notes that stay with its row: late sends within the bound, disturbed, not steady.
    pub notes: Vec<String>,
}

/// The outcome of a search.
#[derive(Debug, Clone, Serialize)]
pub struct Search {
    /// The objective.
    pub slo: Slo,
    /// Highest passing rate, if any.
    pub capacity: Option<f64>,
    /// Every run, in order.
    pub trials: Vec<Trial>,
}

/// Runs the search; `run(rate)` performs one run (`None`: closed loop). The closure's
/// closure may also record each report (e.g. write its CSV row).
pub fn search<E>(slo: &Slo, mut run: impl FnMut(Option<f64>) -> Result<Report, E>) -> Result<Search, E> {
    let mut trials = Vec::new();
    let record = |rate: Option<f64>, r: &Report, trials: &mut Vec<Trial>| {
        let reason = rate.and_then(|_| slo.failure(r));
        let pass = rate.is_some() && reason.is_none();
        trials.push(Trial {
            rate,
            throughput: r.throughput_msgs_s,
            value_us: slo.value(r),
            pass,
            status: r.status,
            reason,
            notes: slo.notes(r),
        });
        pass
    };
    let ceiling_run = run(None)?;
    record(None, &ceiling_run, &mut trials);
    let ceiling = ceiling_run.throughput_msgs_s.floor();
    if ceiling < 1.0 {
        return Ok(Search {
            slo: slo.clone(),
            capacity: None,
            trials,
        });
    }
    let (mut lo, mut hi) = (0.0_f64, ceiling);
    let r = run(Some(ceiling))?;
    if record(Some(ceiling), &r, &mut trials) {
        return Ok(Search {
            slo: slo.clone(),
            capacity: Some(ceiling),
            trials,
        });
    }
    for _ in 1..MAX_TRIALS {
        if lo > 0.0 && (hi - lo) / hi <= PRECISION {
            break;
        }
        let mid = ((lo + hi) / 2.0).round().max(1.0);
        let r = run(Some(mid))?;
        if record(Some(mid), &r, &mut trials) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Search {
        slo: slo.clone(),
        capacity: (lo > 0.0).then_some(lo),
        trials,
    })
}

/// A rate ladder's capacity per repeat: for each repeat k (the k-th run at each rate, the
/// rates rising), the highest rate met with every lower rate met too; `None` for a repeat
/// that met no rate. `rungs` are (rate, whether each run at it met the objective, in order).
pub fn per_repeat(rungs: &[(f64, Vec<bool>)]) -> Vec<Option<f64>> {
    let repeats = rungs.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
    (0..repeats)
        .map(|k| {
            let mut best = None;
            for (rate, met) in rungs {
                match met.get(k) {
                    Some(true) => best = Some(*rate),
                    // A miss, or no run: skipped above a miss, or fewer repeats.
                    _ => break,
                }
            }
            best
        })
        .collect()
}

/// The search as text.
pub fn render(s: &Search) -> String {
    let mut o = format!("capacity search for {}:\n", s.slo);
    o.push_str("  rate msg/s     achieved msg/s   value       result\n");
    for t in &s.trials {
        let rate = t.rate.map_or("closed loop".to_string(), |r| format!("{r:.0}"));
        let result = match (t.rate, &t.reason) {
            (None, _) => "ceiling".to_string(),
            (_, None) => "pass".to_string(),
            (_, Some(why)) => format!("fail: {why}"),
        };
        o.push_str(&format!(
            "  {rate:<14} {:<16.0} {:<11} {result}\n",
            t.throughput,
            format!("{:.1} us", t.value_us)
        ));
        for note in &t.notes {
            o.push_str(&format!("  {:<14} note: {note}\n", ""));
        }
    }
    match s.capacity {
        Some(c) => o.push_str(&format!("capacity: {c:.0} msg/s with {}\n", s.slo)),
        None => o.push_str(&format!("capacity: no rate met {}\n", s.slo)),
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record::Percentiles;
    use crate::report::Report;

    /// A fake server: p99 grows sharply past `knee` msg/s; closed loop does `max`.
    fn fake(rate: Option<f64>, knee: f64, max: f64) -> Report {
        let tput = rate.unwrap_or(max);
        let p99 = if tput <= knee {
            200.0
        } else {
            200.0 + (tput - knee) * 10.0
        };
        let mut r = Report::empty("fake", "", None);
        r.rate = rate;
        r.counters.msgs = tput as u64;
        r.throughput_msgs_s = tput;
        r.latency.p99_us = p99;
        r.achieved_rate = rate;
        r.status = Status::Ok;
        r
    }

    #[test]
    fn parses_objectives() {
        assert_eq!("p99=1ms".parse::<Slo>().unwrap().bound_us, 1000.0);
        assert_eq!("P99.9=500us".parse::<Slo>().unwrap().percentile, "p99.9");
        assert!("p42=1ms".parse::<Slo>().is_err());
        assert!("p99".parse::<Slo>().is_err());
        assert!("p99=0ms".parse::<Slo>().is_err());
    }

    #[test]
    fn bisection_finds_the_knee() {
        let slo: Slo = "p99=1ms".parse().unwrap();
        // p99 <= 1000 us up to knee + 80 msg/s.
        let s = search::<()>(&slo, |rate| Ok(fake(rate, 50_000.0, 100_000.0))).unwrap();
        let cap = s.capacity.unwrap();
        assert!(
            (50_080.0 * (1.0 - 2.0 * PRECISION)..=50_080.0).contains(&cap),
            "capacity {cap}"
        );
        assert!(s.trials.len() <= MAX_TRIALS + 1);
        assert!(s.trials[0].rate.is_none(), "starts with the closed-loop ceiling");
    }

    #[test]
    fn ceiling_that_passes_is_the_capacity() {
        let slo: Slo = "p99=1ms".parse().unwrap();
        let s = search::<()>(&slo, |rate| Ok(fake(rate, 1e9, 30_000.0))).unwrap();
        assert_eq!(s.capacity, Some(30_000.0));
        assert_eq!(s.trials.len(), 2);
    }

    #[test]
    fn late_sends_within_the_bound_are_a_note_and_beyond_it_a_named_failure() {
        let slo: Slo = "p99=5ms".parse().unwrap();
        // A machine whose timer is ~2 ms late: the schedule was "not kept", p99 3.4 ms.
        let mut r = fake(Some(600.0), 1e9, 30_000.0);
        r.latency.p99_us = 3_400.0;
        r.send_lag = Some(Percentiles {
            p99_us: 1_900.0,
            ..Percentiles::default()
        });
        r.keep_up = Some("the client fell behind its schedule".into());
        assert_eq!(slo.failure(&r), None, "judged by the objective");
        assert!(slo.notes(&r)[0].contains("within the objective's bound"));
        // Sends later than the bound: a failure that names the client and the remedy.
        r.latency.p99_us = 9_000.0;
        r.send_lag = Some(Percentiles {
            p99_us: 8_000.0,
            ..Percentiles::default()
        });
        let why = slo.failure(&r).unwrap();
        assert!(why.contains("--pacing spin") && why.contains("doctor"), "{why}");
        // A rate that was not offered fails, whatever the latency.
        let mut r = fake(Some(10_000.0), 1e9, 30_000.0);
        r.achieved_rate = Some(5_000.0);
        assert!(slo.failure(&r).unwrap().contains("not offered"));
    }

    #[test]
    fn nothing_passes() {
        let slo: Slo = "p99=100us".parse().unwrap();
        let s = search::<()>(&slo, |rate| Ok(fake(rate, 0.0, 30_000.0))).unwrap();
        assert_eq!(s.capacity, None);
        assert!(render(&s).contains("no rate met"));
    }
}
