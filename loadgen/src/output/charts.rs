//! The HTML page's charts: small multiples (one panel per value of a second varying
//! column, e.g. the server work, a line per model inside, the legend beside the panel as
//! HTML so it never covers the plot), and the latency-versus-load curve with the objective
//! and each model's capacity when the report holds a `--rate` ladder.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::output::plot::{self, curve, escape_xml as esc, style};
use crate::report::read::Row;

/// A chart in its figure, or the reason there is none.
pub(super) fn figure(o: &mut String, chart: anyhow::Result<String>) {
    match chart {
        Ok(svg) => {
            let _ = writeln!(o, "<figure class=\"chart\">{svg}</figure>");
        }
        Err(e) => {
            let _ = writeln!(o, "<p class=\"empty\">{}</p>", esc(&e.to_string()));
        }
    }
}

/// Columns a panel is made of, in order of preference: the first that varies splits the
/// page's charts into panels.
const PANEL_COLUMNS: [&str; 5] = ["work", "server_workers", "transport", "engine", "pacing"];

/// The column `rows` are split into panels by, if one varies (`server_workers` as the
/// comparison keys it: each model at its own default does not vary).
fn panel_column(rows: &[Row]) -> Option<&'static str> {
    PANEL_COLUMNS.into_iter().find(|&c| {
        let values: BTreeSet<String> = rows.iter().map(|r| panel_value(r, c)).collect();
        values.len() > 1
    })
}

fn panel_value(r: &Row, column: &str) -> String {
    match column {
        "server_workers" => crate::analysis::compare::workers_key(r),
        c => r.get(c).to_string(),
    }
}

/// A panel: its chart without a legend, and the legend as HTML beside it.
fn panel(o: &mut String, chart: anyhow::Result<String>, names: &[&str]) {
    match chart {
        Ok(svg) => {
            let legend = style::legend_html(names, &style::looks(names.iter().copied()));
            let _ = writeln!(o, "<figure class=\"chart panel\">{svg}{legend}</figure>");
        }
        Err(e) => figure(o, Err(e)),
    }
}

/// Throughput, p99 and CPU per message against connections, per message size and panel;
/// then the load curve.
pub(super) fn charts(o: &mut String, rows: &[Row]) {
    let sizes: BTreeSet<u64> = rows
        .iter()
        .filter(|r| r.get("rate").is_empty() || rows.iter().all(|r| !r.get("rate").is_empty()))
        .filter_map(|r| r.num("msg_size"))
        .map(|v| v as u64)
        .collect();
    o.push_str("<h2>Charts</h2>\n<p>Points are means over the repeats; bars are 95% confidence intervals of the mean. Hover a point for its exact values. Each model has one colour on every chart.</p>\n");
    // Open-loop rows of a rate ladder belong to the load curve; the charts against
    // connections are of the closed-loop rows when there are any.
    let closed: Vec<Row> = rows.iter().filter(|r| r.get("rate").is_empty()).cloned().collect();
    let by_conns = if closed.is_empty() { rows } else { &closed[..] };
    let column = panel_column(by_conns);
    let mut panels: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for r in by_conns {
        panels
            .entry(column.map_or(String::new(), |c| panel_value(r, c)))
            .or_default()
            .push(r.clone());
    }
    let each = [
        ("throughput_msgs_s", "throughput (msg/s)", "Throughput", false),
        ("lat_p99_us", "p99 latency (µs)", "p99 latency", true),
        (
            "server_cpu_us_per_msg",
            "server CPU per message (µs)",
            "Server CPU per message",
            false,
        ),
        (
            "client_cpu_us_per_msg",
            "client CPU per message (µs)",
            "Client CPU per message",
            false,
        ),
    ];
    for size in sizes {
        for (col, y, title, log_y) in each {
            let drawn: Vec<(&String, Vec<plot::Series>)> = panels
                .iter()
                .map(|(value, rows)| (value, plot::series(rows, col, size)))
                .filter(|(_, s)| s.iter().any(|(_, p)| !p.is_empty()))
                .collect();
            if drawn.is_empty() {
                continue;
            }
            if column.is_some() {
                let _ = writeln!(
                    o,
                    "<h3>{}, {size} B messages, by {}</h3>",
                    esc(title),
                    esc(column.unwrap_or(""))
                );
            }
            for (value, series) in drawn {
                let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
                let caption = match column {
                    Some(c) => format!(
                        "{title}, {size} B messages, {c} {}",
                        if value.is_empty() { "-" } else { value }
                    ),
                    None => format!("{title}, {size} B messages"),
                };
                panel(o, plot::line_panel(&caption, y, &series, log_y), &names);
            }
        }
    }
    load_curve(o, rows);
}

/// The latency-versus-load section, when the report holds a rate ladder.
fn load_curve(o: &mut String, rows: &[Row]) {
    let curves = curve::curves(rows);
    if curves.is_empty() {
        return;
    }
    let objective = curve::objective(rows);
    o.push_str("<h2>Latency against load</h2>\n<p>p99 against the throughput achieved as the offered rate rises; ");
    o.push_str(match &objective {
        Some(_) => "the dashed red line is the objective, and a ring marks each model's capacity: the highest rate that met it, per repeat, averaged.</p>\n",
        None => "a ring marks each curve's knee: the last rate before p99 passed three times its lowest.</p>\n",
    });
    // A panel per variant (what follows the model in a curve's name, e.g. the work), at
    // most 6 lines each.
    let mut variants: BTreeMap<&str, Vec<curve::Curve>> = BTreeMap::new();
    for c in &curves {
        let variant = c.name.split_once(' ').map_or("", |(_, rest)| rest);
        variants.entry(variant).or_default().push(c.clone());
    }
    for (variant, group) in &variants {
        for chunk in group.chunks(6) {
            let names: Vec<&str> = chunk.iter().map(|c| c.name.as_str()).collect();
            let title = match *variant {
                "" => "p99 latency against achieved throughput".to_string(),
                v => format!("p99 latency against achieved throughput, {v}"),
            };
            let chart = curve::curve_chart(&title, chunk, objective.as_ref().map(|(t, b)| (t.as_str(), *b)), false);
            panel(o, chart, &names);
        }
    }
    if objective.is_some() {
        o.push_str("<ul>");
        for c in &curves {
            let _ = write!(o, "<li>capacity of {}</li>", esc(&curve::describe_capacity(c)));
        }
        o.push_str("</ul>\n");
    }
}
