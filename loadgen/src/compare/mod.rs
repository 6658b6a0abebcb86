//! The comparison maths behind `loadgen compare` (printing is in [`render`]).
//!
//! Rows are matched by their configuration key. Repeated rows of one key form a sample;
//! each metric of each configuration gets an interval for the ratio new / base (Welch's t on
//! log values, [`stats::ratio_interval`]) and one of four [`Outcome`]s against a threshold
//! band: `better` or `worse` (the whole interval beyond the band), `same` (the whole
//! interval inside it), or `inconclusive`. The intervals of one family (the gated metrics ×
//! configurations) are simultaneous: Bonferroni, each at 1 − 5%/m. The rule and its
//! simulated error rates are in `docs/statistics.md`.

mod environment;
mod metric;
pub mod render;
pub mod status;

pub use environment::{disturbed_note, environment_differences};
pub use metric::{Metric, DEFAULT_METRICS};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::read::Row;
use crate::stats::{self, RatioInterval};

/// Family-wise error of the intervals of one comparison (95% simultaneous confidence).
pub const ALPHA: f64 = 0.05;

/// The band (±%) that `same` must fall inside when no `--threshold` is given.
pub const DEFAULT_BAND_PCT: f64 = 5.0;

/// Columns that identify a configuration: what was loaded and every setting that changes
/// what is measured. Rows are repeats of one configuration only when all of these agree.
pub const KEY_COLUMNS: [&str; 21] = [
    "target",
    "transport",
    "mode",
    "conns",
    "msg_size",
    "depth",
    "rate",
    "engine",
    "client_threads",
    "server_workers",
    "pacing",
    "pin_server",
    "pin_client",
    "sock_buf",
    "server_procs",
    "close",
    "reconnect_every",
    "conn_rate",
    "msgs_per_conn",
    "work",
    "arrivals",
];

/// A configuration: (column, value) for the key columns both sides have, in
/// [`KEY_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key(pub Vec<(&'static str, String)>);

/// What a row's `server_workers` stands for in its key: `default` when the value is what
/// loadgen chooses for the row's model when `--server-workers` is not given (1 loop, ring
/// or runtime thread; a pool worker per connection; none for thread-per-conn), else the
/// number. Models are compared at their own defaults: keyed on the resolved count, a pool
/// of 1000 workers and one mio loop would never pair.
pub fn workers_key(row: &Row) -> String {
    let value = row.get("server_workers");
    let Ok(model) = row.get("target").parse::<servers::Model>() else {
        return value.to_string();
    };
    let conns = row.num("conns").map_or(0, |c| c as usize);
    let procs = row.num("server_procs").map_or(1, |p| p.max(1.0) as u32);
    let default = match model {
        // The budget caps loadgen's choice on the machine that ran it, which may differ.
        servers::Model::ThreadPool => {
            let uncapped = if procs > 1 {
                conns * 6 / (5 * procs as usize) + 16
            } else {
                conns
            };
            vec![crate::config::pool_workers(conns, procs) as usize, uncapped.max(1)]
        }
        m => m.default_workers().into_iter().collect(),
    };
    let is_default = match value.parse::<usize>() {
        Ok(w) => default.contains(&w),
        Err(_) => value.is_empty() && default.is_empty(),
    };
    if is_default {
        "default".to_string()
    } else {
        value.to_string()
    }
}

impl Key {
    /// The key of a row over `columns` (`server_workers` as [`workers_key`]).
    pub fn of(row: &Row, columns: &[&'static str]) -> Key {
        Key(columns
            .iter()
            .map(|&c| match c {
                "server_workers" => (c, workers_key(row)),
                _ => (c, row.get(c).to_string()),
            })
            .collect())
    }

    /// `target=mio conns=100 ...`: the non-empty values, leaving out those in `common`
    /// (printed once above a table).
    pub fn describe(&self, common: &[(&'static str, String)]) -> String {
        self.0
            .iter()
            .filter(|(c, v)| !v.is_empty() && !common.iter().any(|(cc, cv)| cc == c && cv == v))
            .map(|(c, v)| format!("{c}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The (column, value) pairs every key of `keys` shares (empty values left out): said
/// once, not on every line. With a single key nothing is common (its line says it all).
pub fn common<'a>(keys: impl IntoIterator<Item = &'a Key>) -> Vec<(&'static str, String)> {
    let keys: Vec<&Key> = keys.into_iter().collect();
    let Some(first) = keys.first() else { return Vec::new() };
    if keys.len() < 2 {
        return Vec::new();
    }
    first
        .0
        .iter()
        .filter(|(c, v)| !v.is_empty() && keys.iter().all(|k| k.0.iter().any(|(kc, kv)| kc == c && kv == v)))
        .cloned()
        .collect()
}

/// The key columns present in every one of `reports` (leaving out `skip`), and the key
/// columns some of them lack (an older file): those cannot tell configurations apart, and
/// the comparison says so instead of pairing rows silently.
pub fn key_columns(reports: &[&[Row]], skip: Option<&str>) -> (Vec<&'static str>, Vec<&'static str>) {
    let has = |rows: &[Row], c: &str| rows.iter().any(|r| r.has(c));
    let (present, missing): (Vec<&'static str>, Vec<&'static str>) = KEY_COLUMNS
        .iter()
        .filter(|&&c| Some(c) != skip)
        .partition(|&&c| reports.iter().all(|rows| has(rows, c)));
    let lacking = missing
        .into_iter()
        .filter(|&c| reports.iter().any(|rows| has(rows, c)))
        .collect();
    (present, lacking)
}

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
    fn of(xs: &[f64]) -> Sample {
        let (mean, sd) = stats::mean_sd(xs);
        Sample { n: xs.len(), mean, sd }
    }
}

/// What the evidence says about a change, against the band ±threshold around "no change".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The whole interval lies beyond the band, in the good direction.
    Better,
    /// The whole interval lies beyond the band, in the bad direction.
    Worse,
    /// The whole interval lies inside the band: any change is smaller than the threshold.
    Same,
    /// Neither: the data cannot tell (more repeats would).
    Inconclusive,
}

impl Outcome {
    /// The word printed in the verdict column.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Better => "better",
            Outcome::Worse => "worse",
            Outcome::Same => "same",
            Outcome::Inconclusive => "inconclusive",
        }
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
    /// The change sits so close to the band's edge that no practical number would do.
    Impractical,
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
    pub fn fails_gate(&self) -> bool {
        self.metric.gated
            && (self.outcome == Outcome::Worse
                || (self.outcome == Outcome::Inconclusive && self.point_beyond_bad_edge()))
    }
}

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
}

fn group<'a>(rows: &'a [Row], columns: &[&'static str]) -> BTreeMap<Key, Vec<&'a Row>> {
    let mut groups: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry(Key::of(r, columns)).or_default().push(r);
    }
    groups
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
    rows: Vec<&'a Row>,
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
            let interval = stats::ratio_interval(&p.base, &p.new, alpha);
            let (outcome, advice) = judge(interval, p.metric.higher_is_better, band_pct, alpha);
            Change {
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
    // The interval must clear the nearest edge: the distance from the estimate to it.
    let d = i.ratio.ln();
    let distance = (d - lo_edge.max(f64::MIN_POSITIVE).ln())
        .abs()
        .min((d - hi_edge.ln()).abs());
    let advice = stats::repeats_needed(sd, distance, alpha).map_or(Advice::Impractical, Advice::Repeats);
    (outcome, Some(advice))
}

/// Compares `new` against `base`, metric by metric, configuration by configuration, with
/// `band_pct` as the band of no change.
pub fn compare(base: &[Row], new: &[Row], metrics: &[Metric], band_pct: f64) -> Comparison {
    let (columns, unkeyed) = key_columns(&[base, new], None);
    let (gb, gn) = (group(base, &columns), group(new, &columns));
    let (mut pairs, mut ended_worse, mut unmeasured) = (Vec::new(), Vec::new(), Vec::new());
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
        for m in metrics {
            let (bv, nv) = (values(brows, &m.column), values(nrows, &m.column));
            if !bv.is_empty() && !nv.is_empty() {
                let rows = brows.iter().chain(nrows).copied().collect();
                pairs.push(Pair {
                    key: key.clone(),
                    metric: m,
                    base: bv,
                    new: nv,
                    rows,
                });
            }
        }
        if pairs.len() == paired_before {
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

/// Rows of one `--by` value that had no baseline to be compared with: the configuration,
/// and the key columns that kept it apart from the nearest configuration the baseline ran.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    /// The `--by` value.
    pub value: String,
    /// Its configuration.
    pub key: Key,
    /// `column=its value (baseline: the nearest baseline configuration's)`, or why none.
    pub apart: String,
}

impl LeftOut {
    /// `by=value config: apart`.
    pub fn describe(&self, by: &str) -> String {
        format!("{by}={} {}: {}", self.value, self.key.describe(&[]), self.apart)
    }
}

/// What kept `key` apart from the nearest of `baseline_keys`: the columns that differ.
fn apart(key: &Key, baseline_keys: &[&Key], baseline: &str) -> String {
    let differ = |b: &Key| -> Vec<String> {
        key.0
            .iter()
            .zip(&b.0)
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, y)| {
                let show = |v: &str| {
                    if v.is_empty() {
                        "(empty)".to_string()
                    } else {
                        v.to_string()
                    }
                };
                format!("{}={} ({baseline}: {})", x.0, show(&x.1), show(&y.1))
            })
            .collect()
    };
    match baseline_keys.iter().map(|b| differ(b)).min_by_key(Vec::len) {
        Some(d) => format!(
            "no {baseline} run with the same configuration; kept apart by {}",
            d.join(", ")
        ),
        None => format!("no {baseline} run at all"),
    }
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
            for m in metrics {
                let (bv, nv) = (values(base_rows, &m.column), values(vrows, &m.column));
                if bv.is_empty() || nv.is_empty() {
                    continue;
                }
                names.push(value.to_string());
                let rows = base_rows.iter().chain(vrows).copied().collect();
                pairs.push(Pair {
                    key: key.clone(),
                    metric: m,
                    base: bv,
                    new: nv,
                    rows,
                });
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
