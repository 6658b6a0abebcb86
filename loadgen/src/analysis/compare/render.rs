//! Printing comparisons: an aligned table, Markdown, or CSV. Pure: data in, text out.

use std::fmt::Write;

use super::{Advice, Change, Comparison, Outcome, Relative};

/// Output format of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareFormat {
    /// Aligned text columns.
    Table,
    /// A Markdown table.
    Markdown,
    /// CSV.
    Csv,
}

impl std::str::FromStr for CompareFormat {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(CompareFormat::Table),
            "markdown" => Ok(CompareFormat::Markdown),
            "csv" => Ok(CompareFormat::Csv),
            _ => Err(crate::error::flag_error("--format", s, "use table, markdown or csv")),
        }
    }
}

fn sample(n: usize, mean: f64, sd: f64) -> String {
    if n > 1 {
        format!("{} ± {} (n={n})", num(mean), num(sd))
    } else {
        format!("{} (n=1)", num(mean))
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `0.50 [0.41, 0.61]`: the ratio and its interval (`[0, inf]` when nothing can be said).
pub fn ratio(c: &Change) -> String {
    match c.interval {
        None => "n/a".to_string(),
        Some(i) => {
            let hi = if i.hi.is_finite() {
                format!("{:.3}", i.hi)
            } else {
                "inf".to_string()
            };
            format!("{:.3} [{:.3}, {hi}]", i.ratio, i.lo)
        }
    }
}

/// What would settle an inconclusive change, in words.
pub fn advice(a: Advice) -> String {
    match a {
        Advice::MeasureNoise => "a side has 1 run, so its noise is unknown: repeat at least 3 times".to_string(),
        Advice::Repeats(n) => format!("about {n} repeats a side would settle it"),
        Advice::Impractical => format!(
            "more than {} repeats a side would be needed (the change sits near the band's edge, or the noise is wide)",
            crate::stats::MAX_ADVICE
        ),
        Advice::MoreMessages => "too few messages to tell these counts apart: a longer run would settle it".to_string(),
    }
}

/// The verdict column: the outcome word, then the detail.
pub fn verdict(c: &Change, gating: bool) -> String {
    let mut v = c.outcome.word().to_string();
    let mut detail = Vec::new();
    match (c.outcome, c.counts) {
        (Outcome::Same, Some(_)) => detail.push(format!(
            "within one in {:.0} messages",
            1.0 / super::counts::COUNT_TOLERANCE
        )),
        (Outcome::Better | Outcome::Worse, Some(t)) => detail.push(format!(
            "beyond ±{}%, {:.2e} -> {:.2e} per message",
            c.band_pct, t.base_rate, t.new_rate
        )),
        (Outcome::Same, None) => detail.push(format!("within ±{}%", c.band_pct)),
        (Outcome::Better | Outcome::Worse, None) => detail.push(format!("beyond ±{}%", c.band_pct)),
        (Outcome::Inconclusive, _) => {
            if let Some(a) = c.advice {
                detail.push(advice(a));
            }
        }
    }
    if let Some(why) = &c.not_estimable {
        detail.push(why.clone());
    }
    if gating && c.fails_gate() {
        detail.push("FAILS THE GATE".to_string());
    } else if gating && !c.metric.gated {
        detail.push("not gated".to_string());
    }
    if !detail.is_empty() {
        v.push_str(": ");
        v.push_str(&detail.join("; "));
    }
    v
}

fn grid(format: CompareFormat, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut o = String::new();
    match format {
        CompareFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(header);
            for r in rows {
                let _ = w.write_record(r);
            }
            o = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
        }
        CompareFormat::Markdown => {
            let _ = writeln!(o, "| {} |", header.join(" | "));
            let _ = writeln!(o, "|{}", "---|".repeat(header.len()));
            for r in rows {
                let _ = writeln!(o, "| {} |", r.join(" | "));
            }
        }
        CompareFormat::Table => {
            let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for r in rows {
                for (w, cell) in widths.iter_mut().zip(r) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let mut l = String::new();
                for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                    let pad = w - cell.chars().count();
                    l.push_str(cell);
                    if i + 1 < cells.len() {
                        l.push_str(&" ".repeat(pad + 2));
                    }
                }
                l
            };
            let _ = writeln!(o, "{}", line(header.to_vec()));
            for r in rows {
                let _ = writeln!(o, "{}", line(r.iter().map(String::as_str).collect()));
            }
        }
    }
    o
}

/// A comparison of two reports; `gating` when `--threshold` was given.
pub fn comparison(c: &Comparison, format: CompareFormat, gating: bool) -> String {
    let mut o = String::new();
    if !c.environment.is_empty() && format != CompareFormat::Csv {
        let sides = |pick: fn(&(String, String, String)) -> &String| {
            c.environment
                .iter()
                .map(|d| format!("{} {}", d.0, pick(d)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "environments differ: base: {}; new: {}. Differences below may be the machines', not the code's.",
            sides(|d| &d.1),
            sides(|d| &d.2)
        );
    }
    if !c.unkeyed.is_empty() && format != CompareFormat::Csv {
        let _ = writeln!(
            o,
            "one report lacks the column(s) {}: rows were matched without them, so runs that differ in them may be paired as repeats",
            c.unkeyed.join(", ")
        );
    }
    o.push_str(&changes(c.changes.iter().map(|ch| (None, ch)), None, format, gating));
    if format != CompareFormat::Csv {
        for e in &c.ended_worse {
            let _ = writeln!(
                o,
                "ended worse: {} (failed runs are left out of the figures)",
                e.describe("base")
            );
        }
        for (key, base, new) in &c.unmeasured {
            let _ = writeln!(
                o,
                "not compared: {}: no metric has a value on both sides, e.g. every run of a side failed (base {}; new {})",
                key.describe(&[]),
                base.describe(),
                new.describe()
            );
        }
        for (side, keys) in [("base", &c.only_base), ("new", &c.only_new)] {
            for k in keys {
                let _ = writeln!(o, "only in {side}: {}", k.describe(&[]));
            }
        }
    }
    o
}

/// Values of one column relative to a baseline value.
pub fn relatives(rel: &[Relative], by: &str, baseline: &str, format: CompareFormat) -> String {
    let _ = baseline;
    changes(
        rel.iter().map(|r| (Some(r.value.as_str()), &r.change)),
        Some(by),
        format,
        false,
    )
}

/// The one table of changes: `by` names the column whose values the rows carry.
fn changes<'a>(
    items: impl Iterator<Item = (Option<&'a str>, &'a Change)>,
    by: Option<&str>,
    format: CompareFormat,
    gating: bool,
) -> String {
    let items: Vec<(Option<&str>, &Change)> = items.collect();
    if format == CompareFormat::Csv {
        return changes_csv(&items, by, gating);
    }
    if items.is_empty() {
        // No table: the lines below it (not compared, only on one side) say why.
        return "no configuration and metric could be compared\n".to_string();
    }
    // The configuration every row shares is said once, above the table (not in CSV, which
    // keeps every field on every row).
    let shared = super::common(items.iter().map(|(_, c)| &c.key));
    let mut levels: Vec<String> = items
        .iter()
        .map(|(_, c)| format!("{:.2}%", c.confidence * 100.0))
        .collect();
    levels.sort();
    levels.dedup();
    let (base, new) = if by.is_some() {
        ("baseline", "value")
    } else {
        ("base", "new")
    };
    let mut o = String::new();
    let mut header = vec!["configuration"];
    header.extend(by);
    header.extend(["metric", base, new, "ratio [interval]", "verdict"]);
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|(value, c)| {
            let mut r = vec![c.key.describe(&shared)];
            r.extend(value.map(str::to_string));
            r.extend([
                c.metric.name.clone(),
                sample(c.base.n, c.base.mean, c.base.sd),
                sample(c.new.n, c.new.mean, c.new.sd),
                ratio(c),
                verdict(c, gating),
            ]);
            r
        })
        .collect();
    if !shared.is_empty() {
        let all: Vec<String> = shared.iter().map(|(c, v)| format!("{c}={v}")).collect();
        let _ = writeln!(o, "every row: {}", all.join(" "));
    }
    o.push_str(&grid(format, &header, &rows));
    let _ = writeln!(
        o,
        "{base}, {new}: mean ± standard deviation over n runs. ratio: {new} / {base} of geometric means, with an \
         interval that holds jointly with its family's at 95% (each at {}: 95% split over the gated metrics x \
         configurations, and over the rest). better/worse: the whole interval beyond the band; same: the whole \
         interval inside it; inconclusive: neither.",
        levels.join(", ")
    );
    o
}

/// The changes as CSV: every field on every row, numbers unrounded.
fn changes_csv(items: &[(Option<&str>, &Change)], by: Option<&str>, gating: bool) -> String {
    let mut header = vec!["configuration"];
    header.extend(by);
    header.extend([
        "metric",
        "base_mean",
        "base_sd",
        "base_n",
        "new_mean",
        "new_sd",
        "new_n",
        "ratio",
        "ratio_lo",
        "ratio_hi",
        "confidence",
        "verdict",
    ]);
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|(value, c)| {
            let i = c.interval;
            let mut r = vec![c.key.describe(&[])];
            r.extend(value.map(str::to_string));
            r.extend([
                c.metric.name.clone(),
                c.base.mean.to_string(),
                c.base.sd.to_string(),
                c.base.n.to_string(),
                c.new.mean.to_string(),
                c.new.sd.to_string(),
                c.new.n.to_string(),
                i.map_or(String::new(), |i| format!("{:.6}", i.ratio)),
                i.map_or(String::new(), |i| format!("{:.6}", i.lo)),
                i.map_or(String::new(), |i| format!("{:.6}", i.hi)),
                format!("{:.4}", c.confidence),
                verdict(c, gating),
            ]);
            r
        })
        .collect();
    grid(CompareFormat::Csv, &header, &rows)
}
