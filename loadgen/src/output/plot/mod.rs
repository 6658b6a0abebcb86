//! SVG charts (plotters): throughput and p99 latency against connections, one line per
//! model, from a CSV report (the mean of repeated runs, with error bars of its 95%
//! interval, so noise shows next to differences); the latency percentile spectrum ("1 in N"
//! axis, as HdrHistogram's plotter draws it) from an interval log; a series over time.
//! Every point carries a tooltip (an SVG `<title>`) with its exact values. Pure: data in,
//! SVG text out.

use std::collections::BTreeMap;

use anyhow::anyhow;
use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::report::read::Row;

pub mod curve;
pub mod style;
pub mod time;

pub use style::escape_xml;
use style::{looks, Look, COLORS, LEGEND_WIDTH};

pub(crate) const SIZE: (u32, u32) = (900, 560);
/// One point of a chart: x, the mean of y over repeats, its sample standard deviation (0
/// for one run) and the number of repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Connections.
    pub x: f64,
    /// Mean over the repeats.
    pub y: f64,
    /// Half-width of the 95% confidence interval of the mean (Student t, n − 1 degrees of
    /// freedom); 0 for a single run.
    pub ci95: f64,
    /// Repeats.
    pub n: usize,
}

/// One line of a chart: its name and points sorted by x.
pub type Series = (String, Vec<Point>);

/// Configuration columns that name their own line when they vary within a report (a sweep
/// over workers, threads, engines ...), with the word the legend uses.
const VARYING: [(&str, &str); 9] = [
    ("server_workers", "workers"),
    ("client_threads", "threads"),
    ("engine", "engine"),
    ("pacing", "pacing"),
    ("server_procs", "server-procs"),
    ("sock_buf", "sock-buf"),
    ("work", "work"),
    ("arrivals", "arrivals"),
    ("stage", "stage"),
];

/// The configuration columns of [`VARYING`] that take more than one value in `rows`.
fn varying(rows: &[Row]) -> Vec<(&'static str, &'static str)> {
    VARYING
        .into_iter()
        .filter(|(col, _)| {
            let mut values: Vec<String> = rows.iter().map(|r| value(r, col)).collect();
            values.sort_unstable();
            values.dedup();
            values.len() > 1
        })
        .collect()
}

/// A configuration value as lines are told apart by it: `server_workers` as the
/// comparison keys it (`default` for each model at its own), the rest as written.
fn value(r: &Row, col: &str) -> String {
    match col {
        "server_workers" => crate::analysis::compare::workers_key(r),
        c => r.get(c).to_string(),
    }
}

/// A row's series name: its target, plus transport, rate (when `with_rate`) or depth when
/// they are not the defaults, and every column of `varying`.
fn series_name(r: &Row, varying: &[(&str, &str)], with_rate: bool) -> String {
    let mut name = r.get("target").to_string();
    // TCP over IPv4 is the default; UDP, Unix and IPv6 rows are their own lines.
    if !matches!(r.get("transport"), "" | "tcp") {
        name.push_str(&format!(" {}", r.get("transport")));
    }
    if with_rate && !r.get("rate").is_empty() {
        name.push_str(&format!(" @{} msg/s", r.get("rate")));
    }
    if r.get("depth") != "1" && !r.get("depth").is_empty() {
        name.push_str(&format!(" depth {}", r.get("depth")));
    }
    for (col, word) in varying {
        let v = value(r, col);
        if !v.is_empty() {
            name.push_str(&format!(" {word} {v}"));
        }
    }
    name
}

/// Per series (target, plus transport, rate or depth when they are not the defaults, and
/// every configuration column that varies in the report), the mean of `column` and its 95%
/// interval at each connection count, over the measured (not `failed`) rows with `msg_size`.
pub fn series(rows: &[Row], column: &str, msg_size: u64) -> Vec<Series> {
    let varying = varying(rows);
    let mut acc: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    // A failed run measured nothing: its zeros are not points (as in `compare`).
    let measured = rows.iter().filter(|r| crate::analysis::compare::status::measured(r));
    for r in measured.filter(|r| r.num("msg_size") == Some(msg_size as f64)) {
        let (Some(conns), Some(v)) = (r.num("conns"), r.num(column)) else {
            continue;
        };
        let name = series_name(r, &varying, true);
        acc.entry(name).or_default().entry(conns as u64).or_default().push(v);
    }
    acc.into_iter()
        .map(|(name, pts)| {
            let points = pts
                .into_iter()
                .map(|(c, ys)| {
                    let (y, sd) = crate::stats::mean_sd(&ys);
                    let n = ys.len();
                    let ci95 = if n > 1 {
                        crate::stats::t_quantile(0.05, (n - 1) as f64) * sd / (n as f64).sqrt()
                    } else {
                        0.0
                    };
                    Point {
                        x: c as f64,
                        y,
                        ci95,
                        n: ys.len(),
                    }
                })
                .collect();
            (name, points)
        })
        .collect()
}

/// The span of the finite values (an axis over inf or NaN would never finish its ticks);
/// (1, 10) when there is none.
fn range(series: &[Series], f: impl Fn(&Point) -> (f64, f64)) -> (f64, f64) {
    let vals = series.iter().flat_map(|(_, p)| p.iter().map(&f));
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
        let ok = |v: f64| v.is_finite() && v.abs() <= crate::report::read::MAX_VALUE;
        (if ok(a) { lo.min(a) } else { lo }, if ok(b) { hi.max(b) } else { hi })
    });
    if lo <= hi {
        (lo, hi)
    } else {
        (1.0, 10.0)
    }
}

/// A latency axis label in µs, as the summary prints latencies: `100 µs`, `1.5 ms`, `2 s`.
pub(crate) fn fmt_latency(us: f64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map_or(s.clone(), str::to_string)
    };
    if us >= 1e6 {
        format!("{} s", trim(us / 1e6))
    } else if us >= 1e3 {
        format!("{} ms", trim(us / 1e3))
    } else {
        format!("{} µs", trim(us))
    }
}

pub(crate) fn fmt_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 && (v / 1e3).fract() == 0.0 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Every chart's frame: its caption, margin and axis label areas.
pub(crate) fn framed<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80);
    builder
}

/// A line chart of `series` with a log x axis (connections); `log_y` for latencies; its
/// legend beside the plot area.
pub fn line_chart(title: &str, y_label: &str, series: &[Series], log_y: bool) -> anyhow::Result<String> {
    draw_lines(title, y_label, series, log_y, true)
}

/// [`line_chart`] without a legend, for a page that sets [`style::legend_html`] beside it.
pub fn line_panel(title: &str, y_label: &str, series: &[Series], log_y: bool) -> anyhow::Result<String> {
    draw_lines(title, y_label, series, log_y, false)
}

/// Draws one line: dashed when it is a second line of its model's colour.
macro_rules! line {
    ($chart:expr, $points:expr, $look:expr) => {{
        let style = $look.color.stroke_width(2);
        if $look.dashed {
            $chart.draw_series(DashedLineSeries::new($points, 8, 5, style))?;
        } else {
            $chart.draw_series(LineSeries::new($points, style))?;
        }
    }};
}
pub(crate) use line;

fn draw_lines(title: &str, y_label: &str, series: &[Series], log_y: bool, legend: bool) -> anyhow::Result<String> {
    if series.iter().all(|(_, p)| p.is_empty()) {
        return Err(anyhow!(
            "nothing to plot: no rows with that message size and a numeric value"
        ));
    }
    let (x_lo, x_hi) = range(series, |p| (p.x, p.x));
    let (y_lo, y_hi) = range(series, |p| ((p.y - p.ci95).max(p.y / 2.0), p.y + p.ci95));
    let repeats = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.n))
        .max()
        .unwrap_or(1);
    let title = match repeats {
        0 | 1 => title.to_string(),
        n => format!("{title} (mean of up to {n} runs, bars: 95% confidence interval of the mean)"),
    };
    let x = (x_lo.max(1.0) / 1.5)..(x_hi * 1.5);
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let looks: Vec<Look> = looks(names.iter().copied());
    let size = if legend { (SIZE.0 + LEGEND_WIDTH, SIZE.1) } else { SIZE };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(SIZE.0);
        if legend {
            style::draw_legend(&legend_area, &names, &looks)?;
        }
        let mut builder = framed(&plot_area, &title);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc("connections (log scale)")
                    .y_desc(y_label)
                    .x_label_formatter(&|v| fmt_count(*v))
                    .y_label_formatter(&|v| if log_y { fmt_latency(*v) } else { fmt_count(*v) })
                    .draw()?;
                for ((_, pts), look) in series.iter().zip(&looks) {
                    let color = look.color;
                    line!(chart, pts.iter().map(|p| (p.x, p.y)), look);
                    chart.draw_series(pts.iter().map(|p| Circle::new((p.x, p.y), 4, color.filled())))?;
                    chart.draw_series(pts.iter().filter(|p| p.n > 1 && p.ci95 > 0.0).map(|p| {
                        // Kept above zero so a log axis can draw it.
                        let lo = (p.y - p.ci95).max(p.y / 100.0);
                        ErrorBar::new_vertical(p.x, lo, p.y, p.y + p.ci95, color.stroke_width(1), 10)
                    }))?;
                }
            }};
        }
        if log_y {
            draw!(builder.build_cartesian_2d(x.log_scale(), ((y_lo.max(1e-3)) / 1.5..y_hi * 1.5).log_scale())?);
        } else {
            draw!(builder.build_cartesian_2d(x.log_scale(), 0.0..y_hi * 1.1)?);
        }
        root.present()?;
    }
    Ok(with_tooltips(&svg, &tooltips(series, y_label)))
}

/// Every point's tooltip: its series, connections, value and interval, exact.
fn tooltips(series: &[Series], y_label: &str) -> Vec<String> {
    series
        .iter()
        .flat_map(|(name, pts)| {
            pts.iter().map(move |p| {
                let ci = if p.n > 1 {
                    format!(" ± {} (95% CI, n={})", fmt_exact(p.ci95), p.n)
                } else {
                    " (1 run)".to_string()
                };
                format!("{name}: {} connections, {y_label} {}{ci}", p.x, fmt_exact(p.y))
            })
        })
        .collect()
}

/// A value as a tooltip shows it: all its significant digits up to three decimals.
pub(crate) fn fmt_exact(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Gives the n-th `<circle>` of `svg` the n-th label as its `<title>` (a browser shows it
/// on hover; the charts draw a circle per point, in the order of the labels, and nothing
/// else as a circle).
pub fn with_tooltips(svg: &str, labels: &[String]) -> String {
    let mut out = String::with_capacity(svg.len() + labels.iter().map(|l| l.len() + 20).sum::<usize>());
    let mut rest = svg;
    let mut labels = labels.iter();
    while let Some(i) = rest.find("<circle") {
        let Some(end) = rest[i..].find("/>") else { break };
        out.push_str(&rest[..i]);
        let element = &rest[i..i + end];
        match labels.next() {
            Some(label) => {
                out.push_str(element);
                out.push_str("><title>");
                out.push_str(&escape_xml(label));
                out.push_str("</title></circle>");
            }
            None => {
                out.push_str(element);
                out.push_str("/>");
            }
        }
        rest = &rest[i + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The latency percentile spectrum of histograms (ns): latency against "1 in N" (log),
/// one line per named histogram (e.g. corrected and raw latency of an open-loop run).
pub fn spectrum(title: &str, histograms: &[(&str, &Histogram<u64>)]) -> anyhow::Result<String> {
    let histograms: Vec<_> = histograms.iter().filter(|(_, h)| !h.is_empty()).collect();
    if histograms.is_empty() {
        return Err(anyhow!("nothing to plot: the histogram is empty"));
    }
    let max_n = histograms.iter().map(|(_, h)| h.len() as f64).fold(10.0, f64::max);
    let y_hi = histograms
        .iter()
        .map(|(_, h)| h.max() as f64 / 1000.0)
        .fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = framed(&root, title).build_cartesian_2d((1.0..max_n * 1.2).log_scale(), 0.0..y_hi * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale of 1 in N)")
            .y_desc("latency (µs)")
            .x_label_formatter(&|n| {
                let p = 100.0 * (1.0 - 1.0 / n);
                if p < 99.0 {
                    format!("{p:.0}%")
                } else {
                    format!("{}%", format!("{p:.5}").trim_end_matches('0').trim_end_matches('.'))
                }
            })
            .y_label_formatter(&|v| fmt_count(*v))
            .draw()?;
        for (i, (name, h)) in histograms.iter().enumerate() {
            // Quantiles 0, 0.9, 0.99, ... in ten steps per decade, up to the last value.
            let n_max = (h.len() as f64).max(10.0);
            let pts: Vec<(f64, f64)> = (0..)
                .map(|k| 10f64.powf(f64::from(k) / 10.0))
                .take_while(|&n| n <= n_max)
                .map(|n| (n, h.value_at_quantile(1.0 - 1.0 / n) as f64 / 1000.0))
                .collect();
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests;
