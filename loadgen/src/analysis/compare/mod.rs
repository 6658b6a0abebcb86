//! The comparison maths behind `loadgen compare` (printing is in [`render`]).
//!
//! Rows are matched by their configuration key. Repeated rows of one key form a sample;
//! each metric of each configuration gets an interval for the ratio new / base (Welch's t on
//! log values, [`stats::ratio_interval`]) and one of four [`Outcome`]s against a threshold
//! band: `better` or `worse` (the whole interval beyond the band), `same` (the whole
//! interval inside it), or `inconclusive`. The intervals of one family (the gated metrics ×
//! configurations) are simultaneous: Bonferroni, each at 1 − 5%/m. The rule and its
//! simulated error rates are in `docs/statistics.md`.

mod change;
pub mod counts;
mod environment;
mod key;
pub mod metric;
mod outcome;
pub mod render;
pub mod status;

pub use change::{Advice, Change, EndedWorse, Sample};
pub use environment::{disturbed_note, environment_differences};
use key::{apart, group};
#[cfg_attr(not(feature = "html"), allow(unused_imports))] // the HTML page uses the rest
pub use key::{common, key_columns, workers_key, Key, LeftOut, KEY_COLUMNS};
pub use metric::{Metric, DEFAULT_METRICS};
pub use outcome::Outcome;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::read::Row;
use crate::stats::{self, RatioInterval};

/// Family-wise error of the intervals of one comparison (95% simultaneous confidence).
pub const ALPHA: f64 = 0.05;

/// The band (±%) that `same` must fall inside when no `--threshold` is given.
pub const DEFAULT_BAND_PCT: f64 = 5.0;

/// The comparison of two reports.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Per configuration and metric.
    pub changes: Vec<Change>,
    /// Configurations only in the base report.
    pub only_base: Vec<Key>,
    /// Configurations only in the new report.
    pub only_new: Vec<Key>,
    /// Manifest columns whose values differ between the reports: (column, base, new).
    pub environment: Vec<(String, String, String)>,
    /// Key columns one of the reports lacks: rows were matched without them.
    pub unkeyed: Vec<&'static str>,
    /// Configurations in both reports.
    pub shared: usize,
    /// Configurations in both whose metrics could not be paired (a side has no measured
    /// run), with the base's and the new side's tallies: said, never dropped silently.
    pub unmeasured: Vec<(Key, status::Tally, status::Tally)>,
    /// Configurations whose new runs ended worse than the base's (a larger share not `ok`).
    pub ended_worse: Vec<EndedWorse>,
    /// Gated metrics a side measured runs for but holds no valid value of (its cells were
    /// left out as not numbers, or are empty): (configuration, metric, `base` or `new`).
    /// The gate fails on them rather than pass on nothing.
    pub valueless: Vec<(Key, String, &'static str)>,
}

/// A metric's values over the runs that measured (not `failed`), positive and finite: the
/// ratio is of geometric means, so the mean shown and the ratio use the same runs.
fn values(rows: &[&Row], column: &str) -> Vec<f64> {
    rows.iter()
        .filter(|r| status::measured(r))
        .filter_map(|r| r.num(column))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect()
}

/// The note for a percentile compared from runs too short to estimate it.
fn estimability(metric: &Metric, rows: &[&Row]) -> Option<String> {
    let q = metric.quantile()?;
    let fewest = rows.iter().filter_map(|r| r.num("msgs")).fold(f64::INFINITY, f64::min);
    (fewest.is_finite() && !stats::quantile_estimable(fewest as u64, q)).then(|| {
        format!(
            "{} not estimable: a run has {fewest:.0} samples, it needs {:.0}",
            metric.name,
            (10.0 / (1.0 - q)).ceil()
        )
    })
}

/// One metric of one configuration, before the family is known.
struct Pair<'a> {
    key: Key,
    metric: &'a Metric,
    base: Vec<f64>,
    new: Vec<f64>,
    /// A count's (events, messages) per run of each side; empty for other metrics.
    counted: (Vec<counts::Counted>, Vec<counts::Counted>),
    rows: Vec<&'a Row>,
}

impl<'a> Pair<'a> {
    /// The pair of `metric` over `brows` against `nrows`; `None` when a side has no value.
    fn of(key: &Key, metric: &'a Metric, brows: &[&'a Row], nrows: &[&'a Row]) -> Option<Pair<'a>> {
        let counted = if metric.count {
            (
                counts::values(brows, &metric.column),
                counts::values(nrows, &metric.column),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let (base, new) = if metric.count {
            (
                counted.0.iter().map(|c| c.0).collect(),
                counted.1.iter().map(|c| c.0).collect(),
            )
        } else {
            (values(brows, &metric.column), values(nrows, &metric.column))
        };
        let base: Vec<f64> = base;
        let new: Vec<f64> = new;
        (!base.is_empty() && !new.is_empty()).then(|| Pair {
            key: key.clone(),
            metric,
            base,
            new,
            counted,
            rows: brows.iter().chain(nrows).copied().collect(),
        })
    }
}

/// Decides every pair: the gated pairs form one family, the others another; each interval
/// is at 1 − [`ALPHA`]/m (Bonferroni), so all intervals of a family hold together with 95%
/// confidence, and so do the verdicts read from them.
fn decide(pairs: Vec<Pair<'_>>, band_pct: f64) -> Vec<Change> {
    let gated = pairs.iter().filter(|p| p.metric.gated).count().max(1);
    let other = pairs.iter().filter(|p| !p.metric.gated).count().max(1);
    pairs
        .into_iter()
        .map(|p| {
            let alpha = ALPHA / if p.metric.gated { gated } else { other } as f64;
            let (interval, outcome, advice, counted) = if p.metric.count {
                let (i, o, t) = counts::judge(&p.counted.0, &p.counted.1, alpha, band_pct);
                let advice = (o == Outcome::Inconclusive).then_some(Advice::MoreMessages);
                (Some(i), o, advice, Some(t))
            } else {
                let interval = stats::ratio_interval(&p.base, &p.new, alpha);
                let sizes = (p.base.len(), p.new.len());
                let (outcome, advice) = judge(interval, p.metric.higher_is_better, band_pct, alpha, sizes);
                (interval, outcome, advice, None)
            };
            Change {
                counts: counted,
                not_estimable: estimability(p.metric, &p.rows),
                key: p.key,
                metric: p.metric.clone(),
                base: Sample::of(&p.base),
                new: Sample::of(&p.new),
                interval,
                confidence: 1.0 - alpha,
                band_pct,
                outcome,
                advice,
            }
        })
        .collect()
}

/// The outcome of an interval against the band, and for an inconclusive one how many
/// repeats a side would settle it with the noise observed.
fn judge(
    interval: Option<RatioInterval>,
    higher_is_better: bool,
    band_pct: f64,
    alpha: f64,
    sizes: (usize, usize),
) -> (Outcome, Option<Advice>) {
    let Some(i) = interval else {
        return (Outcome::Inconclusive, None);
    };
    let (lo_edge, hi_edge) = (1.0 - band_pct / 100.0, 1.0 + band_pct / 100.0);
    let (up, down) = if higher_is_better {
        (Outcome::Better, Outcome::Worse)
    } else {
        (Outcome::Worse, Outcome::Better)
    };
    let outcome = if i.lo >= lo_edge && i.hi <= hi_edge {
        Outcome::Same
    } else if i.lo > hi_edge {
        up
    } else if i.hi < lo_edge {
        down
    } else {
        Outcome::Inconclusive
    };
    if outcome != Outcome::Inconclusive {
        return (outcome, None);
    }
    let Some(sd) = i.log_sd else {
        return (outcome, Some(Advice::MeasureNoise));
    };
    // From the same interval's view: the repeats at which it would settle in 80% of
    // outcomes, the truth drawn around the estimate with the estimate's own uncertainty.
    let seen = stats::Seen {
        d: i.ratio.ln(),
        se: sd * (1.0 / sizes.0.max(1) as f64 + 1.0 / sizes.1.max(1) as f64).sqrt(),
        log_sd: sd,
        n: sizes.0.min(sizes.1),
    };
    let band = (lo_edge.max(f64::MIN_POSITIVE).ln(), hi_edge.ln());
    let advice = stats::repeats_to_settle(seen, band, alpha).map_or(Advice::Impractical, Advice::Repeats);
    (outcome, Some(advice))
}

/// Compares `new` against `base`, metric by metric, configuration by configuration, with
/// `band_pct` as the band of no change.
pub fn compare(base: &[Row], new: &[Row], metrics: &[Metric], band_pct: f64) -> Comparison {
    let (columns, unkeyed) = key_columns(&[base, new], None);
    let (gb, gn) = (group(base, &columns), group(new, &columns));
    // Capacity is a ladder's (its rates together), the others a configuration's.
    let mut pairs = capacity_pairs_between(base, new, metrics, &columns);
    let metrics: Vec<&Metric> = metrics.iter().filter(|m| m.column != metric::CAPACITY).collect();
    let (mut ended_worse, mut unmeasured) = (Vec::new(), Vec::new());
    let mut valueless = Vec::new();
    for (key, brows) in &gb {
        let Some(nrows) = gn.get(key) else { continue };
        let (tb, tn) = (status::Tally::of(brows), status::Tally::of(nrows));
        let paired_before = pairs.len();
        if tn.worse_than(&tb) {
            ended_worse.push(EndedWorse {
                by: None,
                key: key.clone(),
                base: tb,
                new: tn,
            });
        }
        for &m in &metrics {
            match Pair::of(key, m, brows, nrows) {
                Some(p) => pairs.push(p),
                None if m.gated => valueless.extend(
                    [("base", brows), ("new", nrows)]
                        .into_iter()
                        .filter(|(_, rows)| rows.iter().any(|r| status::measured(r)) && !has_value(rows, m))
                        .map(|(side, _)| (key.clone(), m.name.clone(), side)),
                ),
                None => {}
            }
        }
        if pairs.len() == paired_before && !metrics.is_empty() {
            unmeasured.push((key.clone(), tb, tn));
        }
    }
    Comparison {
        changes: decide(pairs, band_pct),
        only_base: gb.keys().filter(|k| !gn.contains_key(k)).cloned().collect(),
        only_new: gn.keys().filter(|k| !gb.contains_key(k)).cloned().collect(),
        environment: environment_differences(base, new),
        unkeyed,
        shared: gb.keys().filter(|k| gn.contains_key(k)).count(),
        unmeasured,
        ended_worse,
        valueless,
    }
}

/// Whether `rows` hold a value of `m` the comparison can use.
fn has_value(rows: &[&Row], m: &Metric) -> bool {
    if m.count {
        !counts::values(rows, &m.column).is_empty()
    } else {
        !values(rows, &m.column).is_empty()
    }
}

/// One value of the `--by` column relative to the baseline value, in one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Relative {
    /// The `--by` value (e.g. the model).
    pub value: String,
    /// The comparison against the baseline's sample (key without the `--by` column).
    pub change: Change,
}

/// The rows of each ladder (a configuration but its rate) that an objective judged.
fn ladders<'a>(rows: &'a [Row], columns: &[&'static str]) -> BTreeMap<Key, Vec<&'a Row>> {
    let ladder_columns: Vec<&'static str> = columns.iter().copied().filter(|&c| c != "rate").collect();
    group(rows, &ladder_columns)
        .into_iter()
        .map(|(key, rs)| {
            let judged = rs
                .into_iter()
                .filter(|r| matches!(r.get("slo_met"), "yes" | "no"))
                .collect();
            (key, judged)
        })
        .collect()
}

/// The pair of capacities per repeat of two ladders, if both met some rate.
fn capacity_pair<'a>(key: &Key, m: &'a Metric, base_rows: &[&'a Row], new_rows: &[&'a Row]) -> Option<Pair<'a>> {
    let (base, new) = (capacities(base_rows), capacities(new_rows));
    (!base.is_empty() && !new.is_empty()).then(|| Pair {
        key: key.clone(),
        metric: m,
        base,
        new,
        counted: (Vec::new(), Vec::new()),
        rows: base_rows.iter().chain(new_rows).copied().collect(),
    })
}

/// `--metric capacity` between two reports: each ladder's capacities per repeat in `new`
/// against the same ladder's in `base`.
fn capacity_pairs_between<'a>(
    base: &'a [Row],
    new: &'a [Row],
    metrics: &'a [Metric],
    columns: &[&'static str],
) -> Vec<Pair<'a>> {
    let (lb, ln) = (ladders(base, columns), ladders(new, columns));
    metrics
        .iter()
        .filter(|m| m.column == metric::CAPACITY)
        .flat_map(|m| {
            lb.iter()
                .filter_map(|(key, brows)| capacity_pair(key, m, brows, ln.get(key)?))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `--metric capacity` within one report: per ladder (a configuration but its rate), each
/// `by` value's capacities per repeat against the baseline's, as pairs named by the value.
fn capacity_pairs<'a>(
    rows: &'a [Row],
    by: &str,
    baseline: &str,
    metrics: &'a [Metric],
    columns: &[&'static str],
    pairs: &mut Vec<Pair<'a>>,
    names: &mut Vec<String>,
) {
    for m in metrics.iter().filter(|m| m.column == metric::CAPACITY) {
        for (key, judged) in ladders(rows, columns) {
            let mut by_value: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
            for r in judged {
                by_value.entry(r.get(by)).or_default().push(r);
            }
            let Some(base_rows) = by_value.get(baseline) else {
                continue;
            };
            for (value, vrows) in by_value.iter().filter(|(v, _)| **v != baseline) {
                if let Some(p) = capacity_pair(&key, m, base_rows, vrows) {
                    names.push(value.to_string());
                    pairs.push(p);
                }
            }
        }
    }
}

/// A ladder's capacity per repeat (rows of one configuration but the rate), the repeats
/// that met no rate left out.
fn capacities(rows: &[&Row]) -> Vec<f64> {
    let mut by_rate: BTreeMap<u64, (f64, Vec<bool>)> = BTreeMap::new();
    for r in rows {
        let rate = r.num("rate").unwrap_or(0.0);
        by_rate
            .entry(rate.round() as u64)
            .or_insert((rate, Vec::new()))
            .1
            .push(r.get("slo_met") == "yes");
    }
    let ladder: Vec<(f64, Vec<bool>)> = by_rate.into_values().collect();
    crate::analysis::capacity::per_repeat(&ladder)
        .into_iter()
        .flatten()
        .collect()
}

/// Within one report: every value of column `by` relative to `baseline`, per configuration,
/// with the same outcomes as [`compare`]; the values whose runs ended worse than the
/// baseline's in a configuration; and the rows left out for want of a baseline, each with
/// the column that kept it apart.
pub fn relative(
    rows: &[Row],
    by: &str,
    baseline: &str,
    metrics: &[Metric],
    band_pct: f64,
) -> (Vec<Relative>, Vec<EndedWorse>, Vec<LeftOut>) {
    let (mut pairs, mut names, mut ended_worse, mut left_out) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (columns, _) = key_columns(&[rows], Some(by));
    capacity_pairs(rows, by, baseline, metrics, &columns, &mut pairs, &mut names);
    let metrics: Vec<&Metric> = metrics.iter().filter(|m| m.column != metric::CAPACITY).collect();
    let groups = group(rows, &columns);
    let baseline_keys: Vec<&Key> = groups
        .iter()
        .filter(|(_, rs)| rs.iter().any(|r| r.get(by) == baseline))
        .map(|(k, _)| k)
        .collect();
    for (key, group_rows) in &groups {
        let mut by_value: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for r in group_rows {
            by_value.entry(r.get(by)).or_default().push(r);
        }
        let Some(base_rows) = by_value.get(baseline) else {
            left_out.extend(by_value.keys().map(|v| LeftOut {
                value: v.to_string(),
                key: key.clone(),
                apart: apart(key, &baseline_keys, &format!("{by}={baseline}")),
            }));
            continue;
        };
        for (value, vrows) in &by_value {
            if *value == baseline {
                continue;
            }
            let (tb, tv) = (status::Tally::of(base_rows), status::Tally::of(vrows));
            if tv.worse_than(&tb) {
                ended_worse.push(EndedWorse {
                    by: Some((by.to_string(), value.to_string())),
                    key: key.clone(),
                    base: tb,
                    new: tv,
                });
            }
            for p in metrics.iter().filter_map(|m| Pair::of(key, m, base_rows, vrows)) {
                names.push(value.to_string());
                pairs.push(p);
            }
        }
    }
    let rel = names
        .into_iter()
        .zip(decide(pairs, band_pct))
        .map(|(value, change)| Relative { value, change })
        .collect();
    (rel, ended_worse, left_out)
}

#[cfg(test)]
mod tests;
