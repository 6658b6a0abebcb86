//! Printing comparisons: an aligned table, Markdown, or CSV. Pure: data in, text out.

use std::fmt::Write;

use super::{Change, Comparison, Relative, Significance};

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
        num(mean)
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The verdict words of a change.
pub fn verdict(c: &Change, threshold_pct: Option<f64>) -> String {
    let dir = match c.direction {
        1 => "better",
        -1 => "worse",
        _ => "same",
    };
    let mut v = match (c.significance, c.p_value, c.p_adjusted) {
        (Significance::Significant, Some(p), Some(adj)) => format!("{dir} (p={p:.3}, adjusted {adj:.3})"),
        (Significance::NotSignificant, Some(p), Some(adj)) => {
            format!("no significant change (p={p:.2}, adjusted {adj:.2})")
        }
        _ => format!("{dir} (untested: 1 run a side)"),
    };
    if threshold_pct.is_some_and(|t| c.is_regression(t)) {
        v.push_str(" REGRESSION");
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

/// A comparison of two reports.
pub fn comparison(c: &Comparison, format: CompareFormat, threshold_pct: Option<f64>) -> String {
    let header = [
        "configuration",
        "metric",
        "base",
        "new",
        "ratio",
        "change",
        "p_adjusted",
        "verdict",
    ];
    let rows: Vec<Vec<String>> = c
        .changes
        .iter()
        .map(|ch| {
            vec![
                ch.key.describe(None),
                ch.metric.name.clone(),
                sample(ch.base.n, ch.base.mean, ch.base.sd),
                sample(ch.new.n, ch.new.mean, ch.new.sd),
                format!("{:.3}", ch.ratio),
                format!("{:+.1}%", ch.change_pct),
                ch.p_adjusted.map_or(String::new(), |p| format!("{p:.4}")),
                verdict(ch, threshold_pct),
            ]
        })
        .collect();
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
    o.push_str(&grid(format, &header, &rows));
    if format != CompareFormat::Csv {
        for (side, keys) in [("base", &c.only_base), ("new", &c.only_new)] {
            for k in keys {
                let _ = writeln!(o, "only in {side}: {}", k.describe(None));
            }
        }
    }
    o
}

/// Values of one column relative to a baseline value.
pub fn relatives(rel: &[Relative], by: &str, baseline: &str, format: CompareFormat) -> String {
    let header = [
        "configuration",
        by,
        "metric",
        "relative to baseline",
        "p_adjusted",
        "verdict",
    ];
    let rows: Vec<Vec<String>> = rel
        .iter()
        .map(|r| {
            vec![
                r.key.describe(Some(by)),
                r.value.clone(),
                r.metric.name.clone(),
                format!(
                    "{}: {:.2} ± {:.2} x {baseline} {}",
                    r.value, r.ratio, r.ratio_sd, r.metric.name
                ),
                r.change.p_adjusted.map_or(String::new(), |p| format!("{p:.4}")),
                verdict(&r.change, None),
            ]
        })
        .collect();
    grid(format, &header, &rows)
}
