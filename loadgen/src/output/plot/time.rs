//! Charts over time of an interval log: throughput (achieved, and offered with `--stages`)
//! and p99 per interval, with each stage's start marked.

use anyhow::anyhow;
use plotters::prelude::*;

use super::style::COLORS;
use super::{fmt_count, fmt_exact, fmt_latency, framed, with_tooltips, SIZE};
use crate::scale::merge::Merged;

/// What the over-time charts of a log draw.
pub struct TimeSeries {
    /// Achieved throughput per interval, and with rate stages the offered rate.
    pub throughput: Vec<(String, Vec<(f64, f64)>)>,
    /// p99 per interval (µs).
    pub p99: Vec<(String, Vec<(f64, f64)>)>,
    /// Where each stage starts (s) and its label.
    pub marks: Vec<(f64, String)>,
    /// The stages as written, if the log has them.
    pub stages: Option<String>,
}

/// The over-time series of log `name`: a point per interval at its end (its mean).
pub fn series(name: &str, m: &Merged) -> TimeSeries {
    let (mut tput, mut p99) = (Vec::new(), Vec::new());
    for (start, len, h) in &m.intervals {
        let t = (*start + *len).as_secs_f64();
        if len.as_secs_f64() > 0.0 {
            tput.push((t, h.len() as f64 / len.as_secs_f64()));
        }
        if !h.is_empty() {
            p99.push((t, h.value_at_quantile(0.99) as f64 / 1000.0));
        }
    }
    let mut throughput = vec![(format!("{name} (achieved)"), tput)];
    let mut marks = Vec::new();
    if let Some((p, of)) = &m.stages {
        marks = (0..p.stages().len())
            .map(|i| {
                (
                    p.start_of(i).as_secs_f64(),
                    format!("stage {} {}", i + 1, p.stages()[i].spec),
                )
            })
            .collect();
        if of == "rate" {
            // Offered per interval as achieved is drawn: the interval's mean, at its end.
            let offered = m
                .intervals
                .iter()
                .filter(|(_, len, _)| !len.is_zero())
                .map(|(start, len, _)| {
                    let (a, b) = (start.as_nanos() as f64, (*start + *len).as_nanos() as f64);
                    (
                        (*start + *len).as_secs_f64(),
                        (p.area_until(b) - p.area_until(a)) / len.as_secs_f64(),
                    )
                })
                .collect();
            // First, so that the achieved line is drawn over it: where they differ, both show.
            throughput.insert(0, ("offered (--stages)".to_string(), offered));
        }
    }
    TimeSeries {
        throughput,
        p99: vec![(name.to_string(), p99)],
        marks,
        stages: m.stages.as_ref().map(|(p, _)| p.to_string()),
    }
}

/// A chart of series over time (seconds on a linear x axis), a point per value with its
/// tooltip; `log_y` for latencies (µs). `marks` are vertical lines with their labels (the
/// starts of `--stages`), drawn after the series.
pub fn chart(
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_y: bool,
    marks: &[(f64, String)],
) -> anyhow::Result<String> {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (x_hi, y_lo, y_hi) = pts.fold((0.0f64, f64::INFINITY, 0.0f64), |(x, lo, hi), &(px, py)| {
        (x.max(px), lo.min(py), hi.max(py))
    });
    if y_hi <= 0.0 {
        return Err(anyhow!("nothing to plot: no interval has a value"));
    }
    let x_hi = marks.iter().map(|(x, _)| *x).fold(x_hi, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = framed(&root, title);
        macro_rules! draw {
            ($chart:expr, $bottom:expr, $top:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc("time (s)")
                    .y_desc(y_label)
                    .y_label_formatter(&|v| if log_y { fmt_latency(*v) } else { fmt_count(*v) })
                    .draw()?;
                for (i, (name, pts)) in series.iter().enumerate() {
                    let color = COLORS[i % COLORS.len()];
                    chart
                        .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                        .label(name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                }
                let grey = RGBColor(120, 120, 120);
                for (x, label) in marks {
                    chart.draw_series(LineSeries::new([(*x, $bottom), (*x, $top)], grey.stroke_width(1)))?;
                    chart.draw_series(std::iter::once(Text::new(
                        label.clone(),
                        (*x, $top),
                        ("sans-serif", 12).into_font().color(&grey),
                    )))?;
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()?;
            }};
        }
        if log_y {
            let (bottom, top) = (y_lo.max(1e-3) / 1.5, y_hi * 1.5);
            draw!(
                builder.build_cartesian_2d(0.0..x_hi * 1.02, (bottom..top).log_scale())?,
                bottom,
                top
            );
        } else {
            let top = y_hi * 1.1;
            draw!(builder.build_cartesian_2d(0.0..x_hi * 1.02, 0.0..top)?, 0.0, top);
        }
        root.present()?;
    }
    let labels: Vec<String> = series
        .iter()
        .flat_map(|(name, pts)| {
            pts.iter()
                .map(move |&(x, y)| format!("{name}: at {x:.2} s, {y_label} {}", fmt_exact(y)))
        })
        .collect();
    Ok(with_tooltips(&svg, &labels))
}
