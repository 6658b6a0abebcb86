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
