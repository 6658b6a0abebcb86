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
//! A rate passes when its run finished `ok`, the generator kept the schedule, and the
//! percentile is within the bound.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{flag_error, Error};
use crate::report::{Report, Status};

/// Open-loop runs at most.
pub const MAX_TRIALS: usize = 8;
/// Stop when the passing and failing rates are this close (relative).
pub const PRECISION: f64 = 0.02;

/// A latency objective: a percentile and its bound.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    /// As written: `p99`, `p99.9`, ...
    pub percentile: String,
    /// The bound in microseconds.
    pub bound_us: f64,
}

impl FromStr for Slo {
    type Err = Error;

    /// Parses `--slo`; a refusal names the flag.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: String| flag_error("--slo", s, reason);
        let (p, bound) = s
            .split_once('=')
            .ok_or_else(|| bad("expected PERCENTILE=BOUND, e.g. p99=1ms".into()))?;
        let p = p.trim().to_ascii_lowercase();
        if !matches!(p.as_str(), "p50" | "p90" | "p99" | "p99.9" | "p99.99" | "max") {
            return Err(bad(format!(
                "unknown percentile '{p}' (use p50, p90, p99, p99.9, p99.99 or max)"
            )));
        }
        let d = humantime::parse_duration(bound.trim())
            .map_err(|e| bad(format!("bound '{bound}': {e} (e.g. 1ms, 500us)")))?;
        if d.is_zero() {
            return Err(bad("the bound must be greater than zero".into()));
        }
        Ok(Slo {
            percentile: p,
            bound_us: d.as_secs_f64() * 1e6,
        })
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <= {:.0} us", self.percentile, self.bound_us)
    }
}

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

    /// Whether an open-loop run meets the objective (and kept its schedule).
    pub fn met_by(&self, r: &Report) -> bool {
        r.status == Status::Ok && r.keep_up.is_none() && r.counters.msgs > 0 && self.value(r) <= self.bound_us
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
        let pass = rate.is_some() && slo.met_by(r);
        trials.push(Trial {
            rate,
            throughput: r.throughput_msgs_s,
            value_us: slo.value(r),
            pass,
            status: r.status,
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

/// The search as text.
pub fn render(s: &Search) -> String {
    let mut o = format!("capacity search for {}:\n", s.slo);
    o.push_str("  rate msg/s     achieved msg/s   value       result\n");
    for t in &s.trials {
        let rate = t.rate.map_or("closed loop".to_string(), |r| format!("{r:.0}"));
        let result = match (t.rate, t.pass) {
            (None, _) => "ceiling".to_string(),
            (_, true) => "pass".to_string(),
            (_, false) if t.status != Status::Ok => format!("fail (run status {})", t.status),
            (_, false) if t.value_us > s.slo.bound_us => "fail (over the bound)".to_string(),
            (_, false) => "fail (schedule not kept)".to_string(),
        };
        o.push_str(&format!(
            "  {rate:<14} {:<16.0} {:<11} {result}\n",
            t.throughput,
            format!("{:.1} us", t.value_us)
        ));
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
    use crate::record::{Counters, Percentiles};
    use crate::report::Report;

    /// A fake server: p99 grows sharply past `knee` msg/s; closed loop does `max`.
    fn fake(rate: Option<f64>, knee: f64, max: f64) -> Report {
        let tput = rate.unwrap_or(max);
        let p99 = if tput <= knee {
            200.0
        } else {
            200.0 + (tput - knee) * 10.0
        };
        Report {
            rate,
            counters: Counters {
                msgs: tput as u64,
                ..Counters::default()
            },
            throughput_msgs_s: tput,
            latency: Percentiles {
                p99_us: p99,
                ..Percentiles::default()
            },
            achieved_rate: rate,
            status: Status::Ok,
            ..Report::empty("fake", "", None)
        }
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
    fn nothing_passes() {
        let slo: Slo = "p99=100us".parse().unwrap();
        let s = search::<()>(&slo, |rate| Ok(fake(rate, 0.0, 30_000.0))).unwrap();
        assert_eq!(s.capacity, None);
        assert!(render(&s).contains("no rate met"));
    }
}
