//! `--slo`: a latency objective, a percentile and its bound. Judging a report against it is
//! the capacity search's (`analysis::capacity`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{flag_error, Error};

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

/// One objective of `--slo` on any run, judged at its end: a latency percentile's bound,
/// the most errors, or the least throughput.
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// `p99=5ms`: the percentile at most the bound.
    Latency(Slo),
    /// `errors=0` (or `errors<=N`): at most N errors of every kind together.
    Errors(u64),
    /// `throughput>=50k`: at least this many round trips a second.
    Throughput(f64),
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Goal::Latency(slo) => slo.fmt(f),
            Goal::Errors(n) => write!(f, "errors <= {n}"),
            Goal::Throughput(t) => write!(f, "throughput >= {t:.0} msg/s"),
        }
    }
}

/// Parses `--slo`'s list: `p99=5ms,p99.9=20ms,errors=0,throughput>=50k`; a refusal names
/// the flag and the item.
pub fn parse_goals(list: &str) -> Result<Vec<Goal>, Error> {
    let bad = |item: &str, why: String| flag_error("--slo", item, why);
    let mut goals = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(bad(
                list,
                "an empty objective in the list; write e.g. p99=5ms,errors=0".into(),
            ));
        }
        let lower = item.to_ascii_lowercase();
        let goal = if let Some(n) = lower.strip_prefix("errors<=").or_else(|| lower.strip_prefix("errors=")) {
            Goal::Errors(super::parse::parse_count("--slo", n.trim()).map_err(|_| {
                bad(
                    item,
                    "expected errors=N (the most errors allowed), e.g. errors=0".into(),
                )
            })?)
        } else if let Some(t) = lower.strip_prefix("throughput>=") {
            Goal::Throughput(
                super::parse::parse_rate("--slo", t.trim())
                    .map_err(|_| bad(item, "expected throughput>=RATE in msg/s, e.g. throughput>=50k".into()))?,
            )
        } else if lower.starts_with("errors") || lower.starts_with("throughput") {
            return Err(bad(
                item,
                "write errors=N (at most N errors) or throughput>=RATE (at least RATE msg/s)".into(),
            ));
        } else {
            Goal::Latency(item.parse()?)
        };
        goals.push(goal);
    }
    Ok(goals)
}
