//! Confidence intervals of a histogram's percentiles, from order statistics: the ranks
//! that bound each quantile come from [`crate::stats::quantile_ranks`], their values from
//! one pass over the histogram.

use hdrhistogram::Histogram;
use serde::Serialize;

/// A percentile's 95% confidence interval, or why there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ci {
    /// Fewer than 10 / (1 − q) samples: ten samples beyond the percentile are needed to
    /// say anything about it (p99.99 needs 100,000).
    #[default]
    NotEstimable,
    /// The true percentile lies in [lo, hi] with 95% confidence, whatever the distribution.
    Interval {
        /// Lower bound, µs.
        lo_us: f64,
        /// Upper bound, µs.
        hi_us: f64,
    },
}

/// The intervals of the reported percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PercentileCis {
    /// Of p50.
    pub p50: Ci,
    /// Of p90.
    pub p90: Ci,
    /// Of p99.
    pub p99: Ci,
    /// Of p99.9.
    pub p999: Ci,
    /// Of p99.99.
    pub p9999: Ci,
    /// When p50's and p99's intervals also hold the batch-means interval over this many of
    /// the run's intervals (`stats::batch_interval`: correlation inside the run accounted
    /// for); 0 when the run had too few intervals and they rest on order statistics alone.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub batches: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Ci {
    /// The smallest interval holding this one and `[lo, hi]`.
    pub fn union(self, lo: f64, hi: f64) -> Ci {
        match self {
            Ci::Interval { lo_us, hi_us } => Ci::Interval {
                lo_us: lo_us.min(lo),
                hi_us: hi_us.max(hi),
            },
            Ci::NotEstimable => Ci::NotEstimable,
        }
    }
}

impl PercentileCis {
    /// The quantiles, in field order.
    pub const QUANTILES: [(f64, &'static str); 5] = [
        (0.5, "p50"),
        (0.9, "p90"),
        (0.99, "p99"),
        (0.999, "p99.9"),
        (0.9999, "p99.99"),
    ];

    /// Intervals of a nanosecond histogram: the values at the order statistics whose ranks
    /// bound each quantile (`stats::quantile_ranks`), read in one pass.
    pub fn of(h: &Histogram<u64>) -> Self {
        let n = h.len();
        let ranks: Vec<Option<(u64, u64)>> = Self::QUANTILES
            .iter()
            .map(|&(q, _)| {
                crate::stats::quantile_estimable(n, q)
                    .then(|| crate::stats::quantile_ranks(n, q, 0.05))
                    .flatten()
            })
            .collect();
        let mut wanted: Vec<u64> = ranks.iter().flatten().flat_map(|&(l, u)| [l, u]).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut at = std::collections::HashMap::with_capacity(wanted.len());
        let (mut seen, mut next) = (0u64, wanted.iter().peekable());
        for v in h.iter_recorded() {
            seen += v.count_at_value();
            while let Some(&&r) = next.peek() {
                if r > seen {
                    break;
                }
                at.insert(r, h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0);
                next.next();
            }
        }
        let ci = |i: usize| match ranks[i] {
            Some((l, u)) => match (at.get(&l), at.get(&u)) {
                (Some(&lo_us), Some(&hi_us)) => Ci::Interval { lo_us, hi_us },
                _ => Ci::NotEstimable,
            },
            None => Ci::NotEstimable,
        };
        PercentileCis {
            p50: ci(0),
            p90: ci(1),
            p99: ci(2),
            p999: ci(3),
            p9999: ci(4),
            batches: 0,
        }
    }

    /// The names of the percentiles that could not be estimated (`p99.99`, …).
    pub fn not_estimable(&self) -> Vec<&'static str> {
        [self.p50, self.p90, self.p99, self.p999, self.p9999]
            .iter()
            .zip(Self::QUANTILES)
            .filter(|(c, _)| **c == Ci::NotEstimable)
            .map(|(_, (_, name))| name)
            .collect()
    }
}
