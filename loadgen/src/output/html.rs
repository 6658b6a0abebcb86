//! `loadgen report --html`: one self-contained HTML page of a study. Pure: the study in,
//! the page's text out (the command reads the files and writes the page).
//!
//! No request leaves the page: the charts are inline SVG (plotters), the style and the
//! small table-sorting script are inline, nothing is fetched. Without JavaScript the page
//! reads the same (the charts are SVG, the tables are tables); with it, a click on a column
//! header sorts the table. Every chart point has a tooltip with its exact values.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::charts::figure;
use crate::analysis::compare::{self, render, Change, Metric, Outcome};
use crate::output::plot::{self, escape_xml as esc};
use crate::report::read::Row;
use crate::scale::merge::Merged;

/// Everything a page is made of.
pub struct Study<'a> {
    /// The page's title.
    pub title: String,
    /// The reports, by file name.
    pub reports: Vec<(String, Vec<Row>)>,
    /// Interval logs, by file name, merged per file.
    pub hlogs: Vec<(String, &'a Merged)>,
    /// A baseline report to compare against (file name, rows).
    pub baseline: Option<(String, Vec<Row>)>,
    /// Without a baseline: the column whose values are compared within the reports.
    pub by: String,
    /// The loadgen that made the page.
    pub version: String,
}

/// The page.
pub fn page(s: &Study<'_>) -> String {
    let rows: Vec<Row> = s.reports.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&s.title),
        esc(&s.title)
    );
    header(&mut o, s, &rows);
    if rows.is_empty() {
        o.push_str("<p class=\"empty\">The reports hold no rows: there is nothing to chart or compare.</p>\n");
    } else {
        let metrics = compare::metric::defaults();
        let compared = compared(s, &rows, &metrics);
        verdict(&mut o, s, &compared);
        warnings(&mut o, &rows);
        // With a baseline, its runs are drawn beside the new ones, named as the baseline's.
        let mut drawn = rows.clone();
        if let Some((name, base)) = &s.baseline {
            drawn.extend(base.iter().map(|r| {
                let target = format!("{} (baseline {name})", r.get("target"));
                r.clone().with("target", target)
            }));
        }
        super::charts::charts(&mut o, &drawn);
        comparison(&mut o, compared);
    }
    for (name, merged) in &s.hlogs {
        interval_log(&mut o, name, merged);
    }
    let _ = write!(
        o,
        "<footer>Made by loadgen {}.</footer>\n<script>{SCRIPT}</script>\n</body></html>\n",
        esc(&s.version)
    );
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:0.9em;margin:1em 0}th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left}\
th{background:#f2f2f2;cursor:pointer}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.better{background:#dff5df}.worse{background:#fadede}.same{background:#eef3fb}.inconclusive{background:#fff6d6}\
.warn{color:#9a3412}.chart svg{max-width:100%;height:auto}\
.panel{display:flex;gap:1em;align-items:flex-start}.panel>svg{flex:1 1 auto;min-width:0}\
.legend{list-style:none;padding:0;margin:3em 0 0 0;flex:0 0 15em;font-size:0.85em}.legend li{margin:0.2em 0}.legend svg{margin-right:0.4em}.empty{font-style:italic}dl{display:grid;grid-template-columns:max-content auto;gap:0.2em 1em}\
dt{font-weight:600}footer{margin-top:3em;color:#666;font-size:0.85em}";

/// Sorts a table by the clicked header: numbers by value, text by text; again: reversed.
const SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function(th,i){\
th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0],r=Array.from(b.rows);\
var d=th.dataset.dir==='asc'?-1:1;th.dataset.dir=d===1?'asc':'desc';\
r.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,c=y.cells[i].dataset.v||y.cells[i].textContent;\
var na=parseFloat(a),nc=parseFloat(c);if(!isNaN(na)&&!isNaN(nc)){return (na-nc)*d;}return a.localeCompare(c)*d;});\
r.forEach(function(x){b.appendChild(x);});});});";

/// The distinct non-empty values of a column, joined.
fn distinct(rows: &[Row], col: &str) -> String {
    let v: BTreeSet<&str> = rows.iter().map(|r| r.get(col)).filter(|v| !v.is_empty()).collect();
    if v.is_empty() {
        "unknown".to_string()
    } else {
        v.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// What was run, when, with which binary, on which machine.
fn header(o: &mut String, s: &Study<'_>, rows: &[Row]) {
    let mut stamps: Vec<&str> = rows
        .iter()
        .map(|r| r.get("timestamp"))
        .filter(|t| !t.is_empty())
        .collect();
    stamps.sort_unstable();
    let when = match (stamps.first(), stamps.last()) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "unknown".to_string(),
    };
    let files: Vec<String> = s
        .reports
        .iter()
        .map(|(f, r)| format!("{f} ({} runs)", r.len()))
        .collect();
    let items = [
        ("reports", files.join(", ")),
        ("targets", distinct(rows, "target")),
        ("connections", distinct(rows, "conns")),
        ("message sizes (B)", distinct(rows, "msg_size")),
        ("when", when),
        ("loadgen", distinct(rows, "version")),
        ("host", distinct(rows, "host")),
        ("kernel", distinct(rows, "kernel")),
        ("CPUs", distinct(rows, "cpus")),
    ];
    o.push_str("<h2>What was run</h2>\n<dl>");
    for (k, v) in items {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    if !s.hlogs.is_empty() {
        let logs: Vec<&str> = s.hlogs.iter().map(|(n, _)| n.as_str()).collect();
        let _ = write!(o, "<dt>interval logs</dt><dd>{}</dd>", esc(&logs.join(", ")));
    }
    o.push_str("</dl>\n");
}

/// Runs that did not end `ok`, or whose window was not steady.
fn warnings(o: &mut String, rows: &[Row]) {
    let describe = |r: &Row| {
        compare::KEY_COLUMNS
            .iter()
            .filter(|c| !r.get(c).is_empty())
            .map(|c| format!("{c}={}", r.get(c)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut items = Vec::new();
    for r in rows {
        if r.get("status") != "ok" && !r.get("status").is_empty() {
            items.push(format!("status {}: {}", r.get("status"), describe(r)));
        }
        if r.get("steady") == "no" {
            items.push(format!("not steady: {}", describe(r)));
        }
    }
    o.push_str("<h2>Warnings</h2>\n");
    if items.is_empty() {
        o.push_str("<p>Every run ended <code>ok</code>, and none was judged unsteady.</p>\n");
        return;
    }
    o.push_str("<ul class=\"warn\">");
    for i in items {
        let _ = write!(o, "<li>{}</li>", esc(&i));
    }
    o.push_str("</ul>\n");
}

/// What the comparison section shows: its title, its rows (with the `by` value each row
/// is, without a baseline report), and the configurations whose new runs ended worse.
struct Compared {
    title: String,
    items: Vec<(Option<String>, Change)>,
    ended_worse: Vec<String>,
    /// Rows with nothing to be compared with, each with what kept it apart.
    left_out: Vec<String>,
    /// The `disturbed runs` note, when runs ran beside busy neighbours.
    disturbed: Option<String>,
    /// Without a baseline: the column whose values are compared (a column of the table).
    by: Option<String>,
}

/// Compares against the baseline report, or the `by` column's values against its first
/// (mio when it is one of them), with the verdicts of `loadgen compare`.
fn compared(s: &Study<'_>, rows: &[Row], metrics: &[Metric]) -> Compared {
    match &s.baseline {
        Some((name, base)) => {
            let c = compare::compare(base, rows, metrics, compare::DEFAULT_BAND_PCT);
            Compared {
                title: format!("Against the baseline {name}"),
                ended_worse: c.ended_worse.iter().map(|e| e.describe("base")).collect(),
                items: c.changes.into_iter().map(|ch| (None, ch)).collect(),
                left_out: c
                    .only_new
                    .iter()
                    .map(|k| format!("{}: no base run with this configuration", k.describe(&[])))
                    .collect(),
                disturbed: compare::disturbed_note(&[("base ", base), ("new ", rows)]),
                by: None,
            }
        }
        None => {
            let mut values: Vec<&str> = rows.iter().map(|r| r.get(&s.by)).collect();
            values.sort_unstable();
            values.dedup();
            // mio, when it is there, is the usual yardstick; else the first value.
            let base = values
                .iter()
                .copied()
                .find(|v| *v == "mio")
                .or(values.first().copied())
                .unwrap_or("");
            let (rel, ended, left) = compare::relative(rows, &s.by, base, metrics, compare::DEFAULT_BAND_PCT);
            Compared {
                title: format!("Each {} against {}={base}", s.by, s.by),
                items: rel.into_iter().map(|r| (Some(r.value), r.change)).collect(),
                ended_worse: ended.iter().map(|e| e.describe(&format!("{}={base}", s.by))).collect(),
                left_out: left.iter().map(|l| l.describe(&s.by)).collect(),
                disturbed: compare::disturbed_note(&[("", rows)]),
                by: Some(s.by.clone()),
            }
        }
    }
}

/// The page's opening verdict against a baseline: what `loadgen compare` would say with its
/// defaults, and whether its gate on throughput would pass at the default band.
fn verdict(o: &mut String, s: &Study<'_>, c: &Compared) {
    let Some((name, _)) = &s.baseline else { return };
    let count = |outcome: Outcome| c.items.iter().filter(|(_, ch)| ch.outcome == outcome).count();
    let failing: Vec<String> = c
        .items
        .iter()
        .filter(|(_, ch)| ch.fails_gate())
        .map(|(_, ch)| format!("{} {} {}", ch.key.describe(&[]), ch.metric.name, render::ratio(ch)))
        .collect();
    let gate = if failing.is_empty() && c.ended_worse.is_empty() {
        format!(
            "<p class=\"better\"><b>Verdict: the gate passes</b> (throughput at ±{}%, as <code>loadgen compare \
             --threshold {}</code> judges it).",
            compare::DEFAULT_BAND_PCT,
            compare::DEFAULT_BAND_PCT
        )
    } else {
        format!(
            "<p class=\"worse\"><b>Verdict: the gate fails</b> (throughput at ±{}%): {}.",
            compare::DEFAULT_BAND_PCT,
            esc(&failing
                .iter()
                .chain(&c.ended_worse)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "))
        )
    };
    let _ = writeln!(
        o,
        "{gate} Against the baseline {}: {} worse, {} better, {} same, {} inconclusive (every metric and \
         configuration below, each interval at 95% jointly with its family, as the CLI computes it).</p>",
        esc(name),
        count(Outcome::Worse),
        count(Outcome::Better),
        count(Outcome::Same),
        count(Outcome::Inconclusive)
    );
}

/// The comparison section: the table of [`compared`] rows.
fn comparison(o: &mut String, compared: Compared) {
    let Compared {
        title,
        items,
        ended_worse,
        left_out,
        disturbed,
        by,
    } = compared;
    let _ = writeln!(o, "<h2>Comparison</h2>\n<h3>{}</h3>", esc(&title));
    if let Some(note) = disturbed {
        let _ = writeln!(o, "<p class=\"worse\">{}</p>", esc(&note));
    }
    for line in &ended_worse {
        let _ = writeln!(
            o,
            "<p class=\"worse\">Ended worse: {} (failed runs are left out of the figures)</p>",
            esc(line)
        );
    }
    for line in &left_out {
        let _ = writeln!(o, "<p class=\"worse\">Not compared: {}</p>", esc(line));
    }
    if items.is_empty() {
        o.push_str("<p class=\"empty\">No configuration has two sides to compare.</p>\n");
        return;
    }
    let shared = compare::common(items.iter().map(|(_, c)| &c.key));
    if !shared.is_empty() {
        let all: Vec<String> = shared.iter().map(|(c, v)| format!("{c}={v}")).collect();
        let _ = writeln!(o, "<p>Every row: {}</p>", esc(&all.join(" ")));
    }
    o.push_str("<table class=\"sortable\"><thead><tr><th>configuration</th>");
    if let Some(by) = &by {
        let _ = write!(o, "<th>{}</th>", esc(by));
    }
    o.push_str("<th>metric</th><th>base mean</th><th>new mean</th><th>ratio</th><th>95% interval</th><th>verdict</th></tr></thead><tbody>\n");
    for (value, c) in &items {
        let class = match c.outcome {
            Outcome::Better => "better",
            Outcome::Worse => "worse",
            Outcome::Same => "same",
            Outcome::Inconclusive => "inconclusive",
        };
        let _ = write!(o, "<tr class=\"{class}\"><td>{}</td>", esc(&c.key.describe(&shared)));
        if let Some(v) = value {
            let _ = write!(o, "<td>{}</td>", esc(v));
        }
        let (lo, hi) = c.interval.map_or((String::new(), String::new()), |i| {
            (
                format!("{:.3}", i.lo),
                if i.hi.is_finite() {
                    format!("{:.3}", i.hi)
                } else {
                    "inf".into()
                },
            )
        });
        let _ = writeln!(
            o,
            "<td>{}</td><td class=\"num\" data-v=\"{}\">{:.1}</td><td class=\"num\" data-v=\"{}\">{:.1}</td>\
             <td class=\"num\" data-v=\"{}\">{:.3}</td><td class=\"num\">[{lo}, {hi}]</td><td>{}</td></tr>",
            esc(&c.metric.name),
            c.base.mean,
            c.base.mean,
            c.new.mean,
            c.new.mean,
            c.ratio(),
            c.ratio(),
            esc(&render::verdict(c, false))
        );
    }
    o.push_str("</tbody></table>\n<p>better/worse: the whole interval lies beyond ±5% in that direction; same: inside ±5%; inconclusive: neither (the verdict says how many repeats would settle it). The intervals of a table hold together at 95%.</p>\n");
}

/// An interval log: its percentile spectrum, and throughput and p99 over time; with
/// `--stages`, each stage's start marked on both, and the offered rate beside the achieved
/// one.
fn interval_log(o: &mut String, name: &str, m: &Merged) {
    let _ = writeln!(o, "<h2>Interval log {}</h2>", esc(name));
    let mut lines = vec![("latency", &m.latency)];
    if let Some(raw) = &m.raw {
        lines.push(("raw service time", raw));
    }
    figure(o, plot::spectrum(&format!("Latency by percentile, {name}"), &lines));
    let t = plot::time::series(name, m);
    if let Some(stages) = &t.stages {
        let _ = writeln!(
            o,
            "<p>Stages: {}. A grey line marks where each starts; each stage's figures are its own CSV row.</p>",
            esc(stages)
        );
    }
    figure(
        o,
        plot::time::chart(
            &format!("Throughput over time, {name}"),
            "throughput (msg/s)",
            &t.throughput,
            false,
            &t.marks,
        ),
    );
    figure(
        o,
        plot::time::chart(
            &format!("p99 over time, {name}"),
            "p99 latency (µs)",
            &t.p99,
            true,
            &t.marks,
        ),
    );
}
