//! The latency-versus-load curve, as systems papers compare servers: p99 against the
//! *achieved* throughput as the offered rate rises (a sweep over a `--rate` ladder), one
//! line per model, the objective (`sweep --slo`) as a horizontal line, and each model's
//! capacity, the highest rate that met the objective in a repeat, marked with its interval
//! over the repeats. Without an objective the knee is marked instead: the last rung before
//! p99 passes three times its lowest.

use std::collections::BTreeMap;

use anyhow::anyhow;
use plotters::prelude::*;

use super::style::{draw_legend, looks, Look, LEGEND_WIDTH};
use super::{fmt_count, fmt_exact, fmt_latency, framed, series_name, varying, with_tooltips, SIZE};
use crate::report::read::Row;

/// One offered rate of a curve: means over its measured runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    /// Offered rate, msg/s.
    pub rate: f64,
    /// Achieved throughput, msg/s.
    pub throughput: f64,
    /// p50 latency, µs.
    pub p50_us: f64,
    /// p99 latency, µs.
    pub p99_us: f64,
    /// Runs at this rate that measured.
    pub n: usize,
    /// Whether the objective was met, per run in order (empty without `--slo`).
    pub met: Vec<bool>,
}

/// The highest rate meeting the objective: per repeat, then its mean and interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    /// Mean over the repeats that met the objective at some rate.
    pub mean: f64,
    /// Half-width of its 95% interval (Student t); 0 with one repeat.
    pub ci95: f64,
    /// Repeats that met it at some rate.
    pub n: usize,
    /// Repeats that met it at no rate.
    pub none: usize,
}

/// One model's (one configuration's) curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Its name: the target and what else varies, the rate left out.
    pub name: String,
    /// Its rungs by rising rate.
    pub rungs: Vec<Rung>,
    /// With an objective: the capacity.
    pub capacity: Option<Capacity>,
}

impl Rung {
    /// Its tooltip in the chart of curve `name`.
    fn label(&self, name: &str) -> String {
        format!(
            "{name}: offered {} msg/s, achieved {}, p50 {} us, p99 {} us (n={})",
            fmt_exact(self.rate),
            fmt_exact(self.throughput),
            fmt_exact(self.p50_us),
            fmt_exact(self.p99_us),
            self.n
        )
    }
}

impl Curve {
    /// The rung marked: at the capacity's mean (the highest rung not above it), or without
    /// an objective the knee.
    pub fn marked(&self) -> Option<&Rung> {
        match &self.capacity {
            Some(c) => self.rungs.iter().rev().find(|r| r.rate <= c.mean + 0.5),
            None if self.rungs.iter().any(|r| !r.met.is_empty()) => None,
            None => {
                let least = self.rungs.iter().map(|r| r.p99_us).fold(f64::INFINITY, f64::min);
                let past = self.rungs.iter().position(|r| r.p99_us > 3.0 * least)?;
                past.checked_sub(1).map(|i| &self.rungs[i])
            }
        }
    }
}

/// The objective the rows were judged by (`slo` column): its text and bound in µs.
pub fn objective(rows: &[Row]) -> Option<(String, f64)> {
    let text = rows.iter().map(|r| r.get("slo")).find(|s| !s.is_empty())?;
    let bound = text
        .split("<=")
        .nth(1)?
        .trim()
        .trim_end_matches("us")
        .trim()
        .parse()
        .ok()?;
    Some((text.to_string(), bound))
}

/// The curves of a report's open-loop rows: one per configuration but the rate, when it
/// has at least two rates.
pub fn curves(rows: &[Row]) -> Vec<Curve> {
    let open: Vec<Row> = rows
        .iter()
        .filter(|r| r.num("rate").is_some() && crate::analysis::compare::status::measured(r))
        .cloned()
        .collect();
    let vary: Vec<(&str, &str)> = varying(&open).into_iter().filter(|(c, _)| *c != "rate").collect();
    let mut by: BTreeMap<String, BTreeMap<u64, Vec<&Row>>> = BTreeMap::new();
    for r in &open {
        let mut name = series_name(r, &vary, false);
        if let Some(size) = r.num("msg_size").filter(|s| *s != 64.0) {
            name.push_str(&format!(" {size} B"));
        }
        let rate = r.num("rate").unwrap_or(0.0);
        by.entry(name)
            .or_default()
            .entry(rate.round() as u64)
            .or_default()
            .push(r);
    }
    by.into_iter()
        .filter(|(_, rates)| rates.len() >= 2)
        .map(|(name, rates)| {
            let rungs: Vec<Rung> = rates
                .into_iter()
                .map(|(rate, rs)| {
                    let mean = |c: &str| {
                        let v: Vec<f64> = rs.iter().filter_map(|r| r.num(c)).collect();
                        crate::stats::mean_sd(&v).0
                    };
                    Rung {
                        rate: rate as f64,
                        throughput: mean("throughput_msgs_s"),
                        p50_us: mean("lat_p50_us"),
                        p99_us: mean("lat_p99_us"),
                        n: rs.len(),
                        met: rs.iter().filter_map(|r| met(r)).collect(),
                    }
                })
                .collect();
            let capacity = capacity(&rungs);
            Curve { name, rungs, capacity }
        })
        .collect()
}

fn met(r: &Row) -> Option<bool> {
    match r.get("slo_met") {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Per repeat k (the k-th run at each rate), the highest rate met with every lower rate met
/// too; their mean and interval. `None` without an objective.
fn capacity(rungs: &[Rung]) -> Option<Capacity> {
    rungs.iter().map(|r| r.met.len()).max().filter(|&n| n > 0)?;
    let ladder: Vec<(f64, Vec<bool>)> = rungs.iter().map(|r| (r.rate, r.met.clone())).collect();
    let per = crate::analysis::capacity::per_repeat(&ladder);
    let caps: Vec<f64> = per.iter().flatten().copied().collect();
    let none = per.len() - caps.len();
    if caps.is_empty() {
        return Some(Capacity {
            mean: 0.0,
            ci95: 0.0,
            n: 0,
            none,
        });
    }
    let (mean, sd) = crate::stats::mean_sd(&caps);
    let ci95 = if caps.len() > 1 {
        crate::stats::t_quantile(0.05, (caps.len() - 1) as f64) * sd / (caps.len() as f64).sqrt()
    } else {
        0.0
    };
    Some(Capacity {
        mean,
        ci95,
        n: caps.len(),
        none,
    })
}

/// `mio: 41000 msg/s ± 1200 (n=3)`, or why there is none.
pub fn describe_capacity(c: &Curve) -> String {
    match &c.capacity {
        None => format!("{}: no objective", c.name),
        Some(cap) if cap.n == 0 => format!("{}: no rate met the objective ({} repeats)", c.name, cap.none),
        Some(cap) => {
            let missed = if cap.none > 0 {
                format!("; {} repeat(s) met it at no rate", cap.none)
            } else {
                String::new()
            };
            format!(
                "{}: {} msg/s ± {} (95% CI, n={}){missed}",
                c.name,
                fmt_count(cap.mean),
                fmt_count(cap.ci95),
                cap.n
            )
        }
    }
}

/// The objective's dashed red line across the chart, labelled.
fn draw_objective<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>>,
    text: &str,
    bound: f64,
    x_end: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let red = RGBColor(200, 0, 0);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, bound), (x_end, bound)],
            10,
            6,
            red.stroke_width(2),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    let label = Text::new(
        format!("objective {text}"),
        (x_end * 0.02, bound * 1.08),
        ("sans-serif", 13).into_font().color(&red),
    );
    chart.draw_series(std::iter::once(label)).map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// The chart: p99 against achieved throughput per curve, the objective's line, the marked
/// rungs; `legend` beside the plot (else a page sets one beside it).
pub fn curve_chart(
    title: &str,
    curves: &[Curve],
    objective: Option<(&str, f64)>,
    legend: bool,
) -> anyhow::Result<String> {
    let pts = curves.iter().flat_map(|c| &c.rungs);
    let finite = |v: f64| v.is_finite() && v > 0.0;
    let x_hi = pts
        .clone()
        .map(|r| r.throughput)
        .filter(|v| finite(*v))
        .fold(0.0, f64::max);
    let ys = pts
        .map(|r| r.p99_us)
        .filter(|v| finite(*v))
        .chain(objective.map(|o| o.1));
    let (y_lo, y_hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if x_hi <= 0.0 || y_hi <= 0.0 {
        return Err(anyhow!("nothing to plot: no open-loop rows with two rates or more"));
    }
    let names: Vec<&str> = curves.iter().map(|c| c.name.as_str()).collect();
    let looks: Vec<Look> = looks(names.iter().copied());
    let size = if legend { (SIZE.0 + LEGEND_WIDTH, SIZE.1) } else { SIZE };
    let mut svg = String::new();
    let mut labels = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(SIZE.0);
        if legend {
            draw_legend(&legend_area, &names, &looks)?;
        }
        let mut chart =
            framed(&plot_area, title).build_cartesian_2d(0.0..x_hi * 1.08, (y_lo / 1.5..y_hi * 1.5).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("achieved throughput (msg/s)")
            .y_desc("p99 latency (log scale)")
            .x_label_formatter(&|v| fmt_count(*v))
            .y_label_formatter(&|v| fmt_latency(*v))
            .draw()?;
        if let Some((text, bound)) = objective {
            draw_objective(&mut chart, text, bound, x_hi * 1.08)?;
        }
        for (c, look) in curves.iter().zip(&looks) {
            super::line!(chart, c.rungs.iter().map(|r| (r.throughput, r.p99_us)), look);
            chart.draw_series(
                c.rungs
                    .iter()
                    .map(|r| Circle::new((r.throughput, r.p99_us), 4, look.color.filled())),
            )?;
            labels.extend(c.rungs.iter().map(|r| r.label(&c.name)));
        }
        let marks: Vec<(&Rung, &Curve, &Look)> = curves
            .iter()
            .zip(&looks)
            .filter_map(|(c, l)| Some((c.marked()?, c, l)))
            .collect();
        chart.draw_series(
            marks
                .iter()
                .map(|(r, _, l)| Circle::new((r.throughput, r.p99_us), 10, l.color.stroke_width(3))),
        )?;
        labels.extend(marks.iter().map(|(r, c, _)| match c.capacity {
            Some(_) => format!("capacity, {}", describe_capacity(c)),
            None => format!("{}: knee at {} msg/s offered", c.name, fmt_exact(r.rate)),
        }));
        root.present()?;
    }
    Ok(with_tooltips(&svg, &labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, rate: f64, tput: f64, p99: f64, met: &str) -> Row {
        Row::new(
            [
                ("schema", "1".to_string()),
                ("target", target.into()),
                ("transport", "tcp".into()),
                ("mode", "open".into()),
                ("conns", "100".into()),
                ("msg_size", "64".into()),
                ("depth", "1".into()),
                ("rate", rate.to_string()),
                ("status", "ok".into()),
                ("msgs", "1000".into()),
                ("throughput_msgs_s", tput.to_string()),
                ("lat_p50_us", (p99 / 3.0).to_string()),
                ("lat_p99_us", p99.to_string()),
                (
                    "slo",
                    if met.is_empty() {
                        String::new()
                    } else {
                        "p99 <= 5000 us".into()
                    },
                ),
                ("slo_met", met.into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        )
    }

    #[test]
    fn capacity_is_the_highest_rate_met_per_repeat_with_its_interval() {
        let mut rows = Vec::new();
        // Two repeats: mio meets 5 ms up to 3000 then 2000; the pool up to 1000, then nowhere.
        for (rate, a, b) in [(1000.0, "yes", "yes"), (2000.0, "yes", "yes"), (3000.0, "yes", "no")] {
            rows.push(row("mio", rate, rate, 500.0, a));
            rows.push(row("mio", rate, rate, 600.0, b));
        }
        rows.push(row("threadpool", 1000.0, 1000.0, 4000.0, "yes"));
        rows.push(row("threadpool", 1000.0, 1000.0, 9000.0, "no"));
        rows.push(row("threadpool", 2000.0, 1500.0, 90000.0, "no"));
        let c = curves(&rows);
        assert_eq!(c.len(), 2);
        let mio = c.iter().find(|c| c.name == "mio").unwrap();
        let cap = mio.capacity.clone().unwrap();
        assert_eq!((cap.mean, cap.n, cap.none), (2500.0, 2, 0));
        assert!(cap.ci95 > 0.0);
        let pool = c
            .iter()
            .find(|c| c.name == "threadpool")
            .unwrap()
            .capacity
            .clone()
            .unwrap();
        assert_eq!((pool.mean, pool.n, pool.none), (1000.0, 1, 1));
        assert_eq!(objective(&rows), Some(("p99 <= 5000 us".to_string(), 5000.0)));
        let svg = curve_chart("t", &c, Some(("p99 <= 5000 us", 5000.0)), true).unwrap();
        assert!(svg.contains("objective p99 &lt;= 5000 us") || svg.contains("objective p99 <= 5000 us"));
        assert!(
            svg.contains("capacity, mio: 2.5k msg/s") || svg.contains("capacity, mio:"),
            "marked"
        );
    }

    #[test]
    fn without_an_objective_the_knee_is_marked() {
        let rows: Vec<Row> = [(1000.0, 100.0), (2000.0, 120.0), (3000.0, 150.0), (4000.0, 900.0)]
            .iter()
            .map(|&(rate, p99)| row("mio", rate, rate, p99, ""))
            .collect();
        let c = curves(&rows);
        assert_eq!(c[0].capacity, None);
        assert_eq!(c[0].marked().map(|r| r.rate), Some(3000.0));
    }
}
