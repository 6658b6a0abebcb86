//! What `compare` decides per configuration and metric: the two sides' samples, the
//! change between them with its interval and outcome, the advice for an inconclusive one,
//! and the configurations whose new runs ended worse.

use serde::Serialize;

use super::key::Key;
use super::metric::Metric;
use super::outcome::Outcome;
use super::{counts, status};
use crate::stats::{self, RatioInterval};

/// A configuration whose new runs (or, within one report, a `--by` value's runs) ended
/// worse than the base's: a larger share not `ok`.
#[derive(Debug, Clone, Serialize)]
pub struct EndedWorse {
    /// Within one report: the `--by` column and the value whose runs ended worse.
    pub by: Option<(String, String)>,
    /// The configuration.
    pub key: Key,
    /// How the base's (or the baseline value's) runs ended.
    pub base: status::Tally,
    /// How the new (or the value's) runs ended.
    pub new: status::Tally,
}

impl EndedWorse {
    /// `target=tokio conns=10 ...: 1 of 3 run(s) not ok (errors 1); base all 3 run(s) ok`,
    /// the base named `base_name` (`base`, or `target=mio` within one report).
    pub fn describe(&self, base_name: &str) -> String {
        let value = self.by.as_ref().map(|(c, v)| format!("{c}={v} ")).unwrap_or_default();
        format!(
            "{value}{}: {}; {base_name} {}",
            self.key.describe(&[]),
            self.new.describe(),
            self.base.describe()
        )
    }
}

/// Summary of one side's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub sd: f64,
}

impl Sample {
    pub(super) fn of(xs: &[f64]) -> Sample {
        let (mean, sd) = stats::mean_sd(xs);
        Sample { n: xs.len(), mean, sd }
    }
}

/// How many repeats would settle an inconclusive change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Advice {
    /// A side has a single run: its noise is unknown; at least 3 repeats a side.
    MeasureNoise,
    /// About this many repeats per side, from the observed noise.
    Repeats(usize),
    /// More than [`stats::MAX_ADVICE`] repeats a side would be needed.
    Impractical,
    /// A count whose runs hold too few messages to tell: a longer run would settle it.
    MoreMessages,
}

/// One metric of one configuration, base against new.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The configuration.
    pub key: Key,
    /// The metric.
    pub metric: Metric,
    /// Base side.
    pub base: Sample,
    /// New side.
    pub new: Sample,
    /// new / base with its simultaneous interval; `None` when a side has no positive value.
    pub interval: Option<RatioInterval>,
    /// The confidence of each interval (1 − 5%/m for a family of m).
    pub confidence: f64,
    /// The band: ±this percentage around a ratio of 1 counts as no change.
    pub band_pct: f64,
    /// The verdict.
    pub outcome: Outcome,
    /// When inconclusive: what would settle it.
    pub advice: Option<Advice>,
    /// Why a compared percentile cannot be trusted (too few samples in some run), if so.
    pub not_estimable: Option<String>,
    /// A count ([`counts`]): the per-message rates and their difference's interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<counts::CountTest>,
}

impl Change {
    /// new / base (of geometric means), NaN when it cannot be formed.
    pub fn ratio(&self) -> f64 {
        self.interval.map_or(f64::NAN, |i| i.ratio)
    }

    /// Whether the point estimate lies beyond the band in the bad direction.
    pub fn point_beyond_bad_edge(&self) -> bool {
        let (r, b) = (self.ratio(), self.band_pct / 100.0);
        if self.metric.higher_is_better {
            r < 1.0 - b
        } else {
            r > 1.0 + b
        }
    }

    /// The gate's rule: a gated metric fails when it is `worse`, or `inconclusive` with its
    /// point estimate beyond the band in the bad direction (too few repeats to clear a
    /// change that looks like a regression).
    /// A count fails it so only when its rate rose by more than [`counts::COUNT_TOLERANCE`]
    /// per message (one error more in a short run is not a regression to gate on).
    pub fn fails_gate(&self) -> bool {
        let within_tolerance = self
            .counts
            .is_some_and(|t| t.new_rate - t.base_rate <= counts::COUNT_TOLERANCE);
        self.metric.gated
            && (self.outcome == Outcome::Worse
                || (self.outcome == Outcome::Inconclusive && self.point_beyond_bad_edge() && !within_tolerance))
    }
}
