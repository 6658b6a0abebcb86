//! The comparison maths behind `loadgen compare` (printing is in [`render`]).
//!
//! Rows are matched by their configuration key (target, transport, mode, conns, msg_size,
//! depth, rate). Repeated rows of one key form a sample: mean ± standard deviation, and
//! Welch's t-test between the two sides decides whether a change is significant (p < 0.05).
//! With a single row on either side nothing can be tested, and the change is marked so.

pub mod render;
pub mod welch;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::read::Row;

/// Significance level of the t-test.
pub const ALPHA: f64 = 0.05;

/// Columns that identify a configuration.
pub const KEY_COLUMNS: [&str; 7] = ["target", "transport", "mode", "conns", "msg_size", "depth", "rate"];

/// A configuration: the key columns' values, in [`KEY_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key(pub Vec<String>);

impl Key {
    /// The key of a row, leaving out `skip` (e.g. `target` for `--by target`).
    pub fn of(row: &Row, skip: Option<&str>) -> Key {
        Key(KEY_COLUMNS
            .iter()
            .filter(|c| Some(**c) != skip)
            .map(|c| row.get(c).to_string())
            .collect())
    }

    /// `target=mio conns=100 ...`, leaving out `skip`.
    pub fn describe(&self, skip: Option<&str>) -> String {
        KEY_COLUMNS
            .iter()
            .filter(|c| Some(**c) != skip)
            .zip(&self.0)
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| format!("{c}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A metric to compare and which way is better.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Name as the user wrote it (`throughput`, `p99`, or a column name).
    pub name: String,
    /// The CSV column.
    pub column: String,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
}

/// The default metrics: throughput and p50 / p99 / p99.9 latency.
pub const DEFAULT_METRICS: [&str; 4] = ["throughput", "p50", "p99", "p99.9"];

impl Metric {
    /// Resolves a metric name: `throughput`, `mib`, `p50`, `p90`, `p99`, `p99.9`, `p99.99`,
    /// `max`, `mean`, `connect_p99`, `server_cpu`, `client_cpu`, or any numeric column
    /// (throughput columns are higher-is-better, everything else lower-is-better).
    pub fn parse(name: &str) -> Metric {
        let column = match name {
            "throughput" | "msgs_s" => "throughput_msgs_s",
            "mib" | "mib_s" => "throughput_mib_s",
            "p50" => "lat_p50_us",
            "p90" => "lat_p90_us",
            "p99" => "lat_p99_us",
            "p99.9" | "p999" => "lat_p999_us",
            "p99.99" | "p9999" => "lat_p9999_us",
            "max" => "lat_max_us",
            "mean" => "lat_mean_us",
            "connect_p99" => "connect_p99_us",
            "server_cpu" => "server_cpu_us_per_msg",
            "client_cpu" => "client_cpu_us_per_msg",
            other => other,
        };
        Metric {
            name: name.to_string(),
            column: column.to_string(),
            higher_is_better: column.starts_with("throughput") || column == "fairness" || column == "msgs",
        }
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
        let (mean, sd) = welch::mean_sd(xs);
        Sample { n: xs.len(), mean, sd }
    }
}

/// Whether a change is real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Significance {
    /// p < [`ALPHA`].
    Significant,
    /// p >= [`ALPHA`]: no significant change.
    NotSignificant,
    /// Fewer than two rows on a side: cannot be tested.
    Untested,
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
    /// new / base.
    pub ratio: f64,
    /// (new - base) / base, percent.
    pub change_pct: f64,
    /// Welch's p-value, when testable.
    pub p_value: Option<f64>,
    /// The p-value adjusted for every test of the same invocation (Holm), which decides
    /// the significance.
    pub p_adjusted: Option<f64>,
    /// What the test says.
    pub significance: Significance,
    /// Better (+1), worse (-1) or equal (0), by the metric's direction.
    pub direction: i8,
}

impl Change {
    /// A worsening beyond `threshold_pct` that is significant or could not be tested.
    pub fn is_regression(&self, threshold_pct: f64) -> bool {
        self.direction < 0 && self.change_pct.abs() > threshold_pct && self.significance != Significance::NotSignificant
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
}

fn group<'a>(rows: &'a [Row], skip: Option<&str>) -> BTreeMap<Key, Vec<&'a Row>> {
    let mut groups: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry(Key::of(r, skip)).or_default().push(r);
    }
    groups
}

fn values(rows: &[&Row], column: &str) -> Vec<f64> {
    rows.iter()
        .filter_map(|r| r.num(column))
        .filter(|v| v.is_finite())
        .collect()
}

fn change(key: Key, metric: &Metric, base: &[f64], new: &[f64]) -> Change {
    let (b, n) = (Sample::of(base), Sample::of(new));
    let ratio = if b.mean != 0.0 { n.mean / b.mean } else { f64::NAN };
    let change_pct = (ratio - 1.0) * 100.0;
    let p_value = welch::welch_p(base, new);
    let significance = match p_value {
        None => Significance::Untested,
        Some(p) if p < ALPHA => Significance::Significant,
        Some(_) => Significance::NotSignificant,
    };
    let diff = n.mean - b.mean;
    let direction = if diff == 0.0 || diff.is_nan() {
        0
    } else if (diff > 0.0) == metric.higher_is_better {
        1
    } else {
        -1
    };
    Change {
        key,
        metric: metric.clone(),
        base: b,
        new: n,
        ratio,
        change_pct,
        p_value,
        p_adjusted: p_value,
        significance,
        direction,
    }
}

/// Holm's step-down adjustment of every tested change's p-value, so that the chance of
/// calling *any* change significant by accident stays below [`ALPHA`] across all the
/// comparisons of one invocation (48 tests at 5% each would otherwise expect two false
/// findings). The significance follows the adjusted value.
pub fn holm_adjust<'a>(changes: impl IntoIterator<Item = &'a mut Change>) {
    let mut tested: Vec<&mut Change> = changes.into_iter().filter(|c| c.p_value.is_some()).collect();
    tested.sort_by(|a, b| a.p_value.partial_cmp(&b.p_value).unwrap_or(std::cmp::Ordering::Equal));
    let m = tested.len();
    let mut running_max: f64 = 0.0;
    for (i, c) in tested.into_iter().enumerate() {
        let p = c.p_value.unwrap_or(1.0);
        running_max = running_max.max(((m - i) as f64 * p).min(1.0));
        c.p_adjusted = Some(running_max);
        c.significance = if running_max < ALPHA {
            Significance::Significant
        } else {
            Significance::NotSignificant
        };
    }
}

/// Compares `new` against `base`, metric by metric, configuration by configuration.
pub fn compare(base: &[Row], new: &[Row], metrics: &[Metric]) -> Comparison {
    let (gb, gn) = (group(base, None), group(new, None));
    let mut changes = Vec::new();
    for (key, brows) in &gb {
        let Some(nrows) = gn.get(key) else { continue };
        for m in metrics {
            let (bv, nv) = (values(brows, &m.column), values(nrows, &m.column));
            if !bv.is_empty() && !nv.is_empty() {
                changes.push(change(key.clone(), m, &bv, &nv));
            }
        }
    }
    holm_adjust(changes.iter_mut());
    Comparison {
        changes,
        only_base: gb.keys().filter(|k| !gn.contains_key(k)).cloned().collect(),
        only_new: gn.keys().filter(|k| !gb.contains_key(k)).cloned().collect(),
        environment: environment_differences(base, new),
    }
}

/// The manifest columns compared between the two sides of a comparison.
pub const ENVIRONMENT_COLUMNS: [&str; 4] = ["host", "kernel", "cpus", "version"];

/// How the environments of two reports differ: for each manifest column whose values differ,
/// (column, base values, new values). Empty when both come from the same kind of setup.
pub fn environment_differences(base: &[Row], new: &[Row]) -> Vec<(String, String, String)> {
    let values = |rows: &[Row], col: &str| {
        let mut v: Vec<String> = rows
            .iter()
            .map(|r| r.get(col).to_string())
            .filter(|v| !v.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v.join("/")
    };
    ENVIRONMENT_COLUMNS
        .iter()
        .filter_map(|&col| {
            let (b, n) = (values(base, col), values(new, col));
            (b != n && !b.is_empty() && !n.is_empty()).then(|| (col.to_string(), b, n))
        })
        .collect()
}

/// One value of the `--by` column relative to the baseline value, in one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Relative {
    /// The configuration without the `--by` column.
    pub key: Key,
    /// The `--by` value (e.g. the model).
    pub value: String,
    /// The metric.
    pub metric: Metric,
    /// Its mean / the baseline's mean.
    pub ratio: f64,
    /// Standard deviation of the ratio (propagated from both samples).
    pub ratio_sd: f64,
    /// The comparison of the two samples.
    pub change: Change,
}

/// Within one report: every value of column `by` relative to `baseline`, per configuration.
pub fn relative(rows: &[Row], by: &str, baseline: &str, metrics: &[Metric]) -> Vec<Relative> {
    let mut out = Vec::new();
    for (key, group_rows) in group(rows, Some(by)) {
        let mut by_value: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for r in group_rows {
            by_value.entry(r.get(by)).or_default().push(r);
        }
        let Some(base_rows) = by_value.get(baseline) else {
            continue;
        };
        for (value, vrows) in &by_value {
            if *value == baseline {
                continue;
            }
            for m in metrics {
                let (bv, nv) = (values(base_rows, &m.column), values(vrows, &m.column));
                if bv.is_empty() || nv.is_empty() {
                    continue;
                }
                let c = change(key.clone(), m, &bv, &nv);
                let rel = |s: Sample| if s.mean != 0.0 { s.sd / s.mean } else { 0.0 };
                let ratio_sd = c.ratio.abs() * (rel(c.base).powi(2) + rel(c.new).powi(2)).sqrt();
                out.push(Relative {
                    key: key.clone(),
                    value: value.to_string(),
                    metric: m.clone(),
                    ratio: c.ratio,
                    ratio_sd,
                    change: c,
                });
            }
        }
    }
    holm_adjust(out.iter_mut().map(|r| &mut r.change));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tested(p: f64) -> Change {
        let mut c = change(Key(vec![]), &Metric::parse("throughput"), &[1.0, 2.0], &[1.5, 2.5]);
        c.p_value = Some(p);
        c
    }

    #[test]
    fn holm_keeps_the_family_error_rate() {
        let mut cs: Vec<Change> = [0.003, 0.04, 0.2, 0.5].into_iter().map(tested).collect();
        holm_adjust(cs.iter_mut());
        let adj: Vec<f64> = cs.iter().map(|c| c.p_adjusted.unwrap()).collect();
        // 4 x 0.003, max(3 x 0.04, ..), max(2 x 0.2, ..), 0.5
        assert!((adj[0] - 0.012).abs() < 1e-12 && (adj[1] - 0.12).abs() < 1e-12);
        assert!((adj[2] - 0.4).abs() < 1e-12 && (adj[3] - 0.5).abs() < 1e-12);
        assert_eq!(cs[0].significance, Significance::Significant);
        assert_eq!(
            cs[1].significance,
            Significance::NotSignificant,
            "0.04 alone, not among 4 tests"
        );
    }

    fn row(target: &str, conns: u32, tput: f64, p99: f64) -> Row {
        Row::new(
            [
                ("schema", "1".to_string()),
                ("target", target.to_string()),
                ("transport", "tcp".into()),
                ("mode", "closed".into()),
                ("conns", conns.to_string()),
                ("msg_size", "64".into()),
                ("depth", "1".into()),
                ("rate", String::new()),
                ("throughput_msgs_s", tput.to_string()),
                ("lat_p99_us", p99.to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        )
    }

    fn metrics() -> Vec<Metric> {
        ["throughput", "p99"].map(Metric::parse).to_vec()
    }

    #[test]
    fn improvement_and_regression_by_direction() {
        let base = [row("mio", 10, 1000.0, 100.0)];
        let new = [row("mio", 10, 1200.0, 150.0)];
        let c = compare(&base, &new, &metrics());
        let (t, p) = (&c.changes[0], &c.changes[1]);
        assert_eq!((t.direction, p.direction), (1, -1));
        assert!((t.change_pct - 20.0).abs() < 1e-9 && (p.change_pct - 50.0).abs() < 1e-9);
        assert_eq!(t.significance, Significance::Untested);
        assert!(p.is_regression(5.0) && !p.is_regression(60.0) && !t.is_regression(5.0));
    }

    #[test]
    fn repeated_rows_are_tested() {
        let base: Vec<Row> = [1000.0, 1010.0, 990.0]
            .iter()
            .map(|&t| row("mio", 10, t, 100.0))
            .collect();
        let same: Vec<Row> = [1005.0, 995.0, 1000.0]
            .iter()
            .map(|&t| row("mio", 10, t, 100.0))
            .collect();
        let worse: Vec<Row> = [800.0, 810.0, 790.0]
            .iter()
            .map(|&t| row("mio", 10, t, 100.0))
            .collect();
        let c = compare(&base, &same, &metrics());
        assert_eq!(c.changes[0].significance, Significance::NotSignificant);
        assert!(
            !c.changes[0].is_regression(0.1),
            "no significant change is never a regression"
        );
        assert_eq!((c.changes[0].base.n, c.changes[0].base.mean), (3, 1000.0));
        let c = compare(&base, &worse, &metrics());
        assert_eq!(c.changes[0].significance, Significance::Significant);
        assert!(c.changes[0].is_regression(5.0));
    }

    #[test]
    fn missing_rows_are_listed() {
        let base = [row("mio", 10, 1.0, 1.0), row("mio", 100, 1.0, 1.0)];
        let new = [row("mio", 10, 1.0, 1.0), row("tokio", 10, 1.0, 1.0)];
        let c = compare(&base, &new, &metrics());
        assert_eq!(c.only_base.len(), 1);
        assert_eq!(c.only_new.len(), 1);
        assert!(c.only_base[0].describe(None).contains("conns=100"));
        assert_eq!(c.changes.len(), 2);
    }

    #[test]
    fn relative_to_a_baseline_model() {
        let rows = [
            row("mio", 10, 1000.0, 100.0),
            row("mio", 10, 1000.0, 100.0),
            row("tokio", 10, 900.0, 110.0),
            row("tokio", 10, 940.0, 110.0),
        ];
        let rel = relative(&rows, "target", "mio", &[Metric::parse("throughput")]);
        assert_eq!(rel.len(), 1);
        assert_eq!(rel[0].value, "tokio");
        assert!((rel[0].ratio - 0.92).abs() < 1e-9);
        assert!(rel[0].ratio_sd > 0.0);
    }
}
