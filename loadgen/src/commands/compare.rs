//! `loadgen compare`: two reports side by side (a CI gate with `--threshold`), or the
//! values of one column against a baseline within one report. The maths is in
//! [`crate::analysis::compare`], the printing in its `render`.

use std::io::Write;
use std::path::Path;

use crate::analysis::compare::render::{self, CompareFormat};
use crate::analysis::compare::{self, Metric};
use crate::cli::CompareArgs;
use crate::config::parse_percent;
use crate::error::Error;
use crate::report::read::read_report;

/// The metrics to print and which of them the gate judges: `--metric` (default: throughput,
/// p50, p99, p99.9) and `--gate` (default: every `--metric` given, else throughput).
fn metrics(a: &CompareArgs) -> Vec<Metric> {
    if a.metric.is_empty() && a.gate.is_empty() {
        return compare::metric::defaults();
    }
    let names: Vec<String> = if a.metric.is_empty() {
        compare::DEFAULT_METRICS.iter().map(|s| s.to_string()).collect()
    } else {
        a.metric.iter().map(|n| n.trim().to_string()).collect()
    };
    let gate: Vec<String> = if !a.gate.is_empty() {
        a.gate.iter().map(|n| n.trim().to_string()).collect()
    } else if !a.metric.is_empty() {
        names.clone()
    } else {
        vec!["throughput".to_string()]
    };
    let mut out: Vec<Metric> = names
        .iter()
        .map(|n| Metric {
            gated: gate.contains(n),
            ..Metric::parse(n)
        })
        .collect();
    // A gated metric that is not printed is still compared.
    for g in gate.iter().filter(|g| !names.contains(g)) {
        out.push(Metric::parse(g));
    }
    out
}

/// A report's rows; one with a header only is refused by name (there is nothing to compare).
fn rows_of(path: &Path) -> Result<Vec<crate::report::read::Row>, Error> {
    let rows = read_report(path)?;
    if rows.is_empty() {
        return Err(Error::Input(format!(
            "{} has a header but no rows: no run was written to it, so there is nothing to compare",
            path.display()
        )));
    }
    Ok(rows)
}

/// How `compare` was asked to judge: the metrics, the band, the gate's threshold, the format.
struct Ask {
    metrics: Vec<Metric>,
    band: f64,
    threshold: Option<f64>,
    format: CompareFormat,
    across_machines: bool,
    /// The metrics the user named (`--metric`, `--gate`): each must exist (the defaults
    /// are compared where a report has them).
    named: Vec<String>,
}

/// `loadgen compare`.
pub(super) fn run(a: &CompareArgs) -> anyhow::Result<u8> {
    let threshold = a
        .threshold
        .as_deref()
        .map(|t| parse_percent("--threshold", t))
        .transpose()?;
    let ask = Ask {
        metrics: metrics(a),
        band: threshold.unwrap_or(compare::DEFAULT_BAND_PCT),
        threshold,
        format: a.format.parse()?,
        across_machines: a.across_machines,
        named: a.metric.iter().chain(&a.gate).map(|n| n.trim().to_string()).collect(),
    };
    match (&a.by, &a.baseline, a.reports.as_slice()) {
        (Some(by), Some(baseline), [file]) => within(&ask, file, by, baseline),
        (None, None, [base, new]) => between(&ask, base, new),
        _ => Err(Error::Input(
            "compare takes BASE.csv NEW.csv, or one report with --by COLUMN --baseline VALUE".to_string(),
        )
        .into()),
    }
}

/// Refuses a metric that names no column of a report (`--metric bogus`), or one that no row
/// of a report has a value for (`--metric lost` on a TCP report: losses are UDP's): exit 2
/// naming it, where a gate would otherwise pass on nothing.
fn check_metrics(ask: &Ask, files: &[(&Path, &[crate::report::read::Row])]) -> Result<(), Error> {
    for m in ask.metrics.iter().filter(|m| ask.named.contains(&m.name)) {
        for (path, rows) in files {
            if m.column == compare::metric::CAPACITY {
                if !rows.iter().any(|r| matches!(r.get("slo_met"), "yes" | "no")) {
                    return Err(Error::Input(format!(
                        "--metric capacity: {} has no rate ladder judged by an objective; make one with \
                         sweep --rate FROM..TO/STEPS --slo p99=BOUND",
                        path.display()
                    )));
                }
                continue;
            }
            if !rows.iter().any(|r| r.has(&m.column)) {
                return Err(Error::Input(format!(
                    "--metric {}: {} has no column `{}`; use throughput, p50, p90, p99, p99.9, max, mean, \
                     server_cpu, client_cpu, or a numeric column of the report",
                    m.name,
                    path.display(),
                    m.column
                )));
            }
            if !rows.iter().any(|r| r.num(&m.column).is_some()) {
                return Err(Error::Input(format!(
                    "--metric {}: no row of {} has a value in `{}` (a metric of another transport or kind of run: \
                     lost, duplicates and reordered are UDP's, retransmits TCP's)",
                    m.name,
                    path.display(),
                    m.column
                )));
            }
        }
    }
    Ok(())
}

/// One report: each value of column `by` against `baseline`'s runs.
fn within(ask: &Ask, file: &Path, by: &str, baseline: &str) -> anyhow::Result<u8> {
    let rows = rows_of(file)?;
    if !rows.iter().any(|r| r.has(by)) {
        return Err(Error::Input(format!(
            "--by {by}: {} has no column `{by}`; use a configuration column such as target, transport, conns, work or label",
            file.display()
        ))
        .into());
    }
    check_metrics(ask, &[(file, &rows)])?;
    let (rel, ended_worse, left_out) = compare::relative(&rows, by, baseline, &ask.metrics, ask.band);
    if rel.is_empty() && ended_worse.is_empty() {
        let why = match left_out.first() {
            Some(l) => format!(": {}", l.describe(by)),
            None if !rows.iter().any(|r| r.get(by) == baseline) => format!(": no row has `{by}={baseline}`"),
            None => String::new(),
        };
        return Err(Error::Input(format!(
            "{}: no configuration has both `{by}={baseline}` and another `{by}` value{why}",
            file.display()
        ))
        .into());
    }
    let mut out = std::io::stdout().lock();
    let disturbed = compare::disturbed_note(&[("", &rows)]);
    if let Some(note) = disturbed.as_ref().filter(|_| ask.format != CompareFormat::Csv) {
        writeln!(out, "{note}")?;
    }
    out.write_all(render::relatives(&rel, by, baseline, ask.format).as_bytes())?;
    let base_name = format!("{by}={baseline}");
    if ask.format != CompareFormat::Csv {
        for e in &ended_worse {
            writeln!(out, "ended worse: {}", e.describe(&base_name))?;
        }
        for l in &left_out {
            writeln!(out, "not compared: {}", l.describe(by))?;
        }
    }
    // Within one report the "new" side of each change is a `by` value: the gate names it.
    let gated = Gated {
        changes: rel.iter().map(|r| (format!("{by}={} ", r.value), &r.change)).collect(),
        ended_worse: ended_worse.iter().map(|e| e.describe(&base_name)).collect(),
        only_base: 0,
        machines_differ: false,
        disturbed: disturbed.is_some(),
        // Within one report a value without a valid metric is listed as not compared
        // (`left_out`, printed above) and gates nothing.
        valueless: Vec::new(),
    };
    ask.threshold.map_or(Ok(0), |t| gate(&gated, t, ask.across_machines))
}

/// Two reports: the new one's runs against the base's, configuration by configuration.
fn between(ask: &Ask, base: &Path, new: &Path) -> anyhow::Result<u8> {
    let (b, n) = (rows_of(base)?, rows_of(new)?);
    check_metrics(ask, &[(base, &b), (new, &n)])?;
    let c = compare::compare(&b, &n, &ask.metrics, ask.band);
    if c.shared == 0 {
        // A gate that compared nothing must not pass: the reports do not overlap.
        let first = |keys: &[compare::Key]| keys.first().map(|k| k.describe(&[])).unwrap_or_default();
        return Err(Error::Input(format!(
            "{} and {} share no configuration, so nothing was compared (base has {}, e.g. {}; new has {}, e.g. {}); \
             compare runs of the same configuration, or one report's models with --by target --baseline MODEL",
            base.display(),
            new.display(),
            c.only_base.len(),
            first(&c.only_base),
            c.only_new.len(),
            first(&c.only_new),
        ))
        .into());
    }
    let mut out = std::io::stdout().lock();
    let disturbed = compare::disturbed_note(&[("base ", &b), ("new ", &n)]);
    if let Some(note) = disturbed.as_ref().filter(|_| ask.format != CompareFormat::Csv) {
        writeln!(out, "{note}")?;
    }
    out.write_all(render::comparison(&c, ask.format, ask.threshold.is_some()).as_bytes())?;
    let gated = Gated {
        changes: c.changes.iter().map(|ch| (String::new(), ch)).collect(),
        ended_worse: c.ended_worse.iter().map(|e| e.describe("base")).collect(),
        // Unmeasured configurations whose new runs ended worse fail the gate; the rest are
        // not gated, like the base's configurations the new report lacks.
        only_base: c.only_base.len() + c.unmeasured.iter().filter(|(_, b, n)| !n.worse_than(b)).count(),
        machines_differ: c.environment.iter().any(|(col, _, _)| col != "version"),
        disturbed: disturbed.is_some(),
        valueless: c
            .valueless
            .iter()
            .map(|(key, metric, side)| format!("{} {metric}: the {side} side has no valid value", key.describe(&[])))
            .collect(),
    };
    ask.threshold.map_or(Ok(0), |t| gate(&gated, t, ask.across_machines))
}

/// What the gate judges, from two reports or from one report's `--by` values.
struct Gated<'a> {
    /// The changes, each with what names its side beyond its configuration (`target=tokio `
    /// within one report; empty between two).
    changes: Vec<(String, &'a compare::Change)>,
    /// What ended worse, each described with both sides' tallies.
    ended_worse: Vec<String>,
    /// Configurations of the base the new report lacks, or that no side measured.
    only_base: usize,
    /// The reports come from different machines.
    machines_differ: bool,
    /// Some runs were disturbed by other processes or steal.
    disturbed: bool,
    /// Gated metrics a side holds no valid value of, described: they fail the gate.
    valueless: Vec<String>,
}

/// The gate (`--threshold t`): exit 1 on a gated change that is worse, or inconclusive with
/// its estimate beyond the band, each named on stderr (so `--format csv` stays parseable);
/// reports from different machines do not gate unless `across_machines`.
fn gate(c: &Gated<'_>, t: f64, across_machines: bool) -> anyhow::Result<u8> {
    // The gate's messages go to stderr, so `--format csv` output stays parseable.
    let mut err = std::io::stderr().lock();
    let failing: Vec<_> = c.changes.iter().filter(|(_, ch)| ch.fails_gate()).collect();
    for (what, ch) in &failing {
        let why = match (ch.outcome, ch.advice) {
            (compare::Outcome::Worse, _) => "worse beyond the threshold".to_string(),
            (_, Some(adv)) => format!(
                "inconclusive, and its estimate is beyond the threshold: {}",
                render::advice(adv)
            ),
            _ => "inconclusive, and its estimate is beyond the threshold".to_string(),
        };
        writeln!(
            err,
            "GATE: {what}{} {}: {} (n={}/{}): {why}",
            ch.key.describe(&[]),
            ch.metric.name,
            render::ratio(ch),
            ch.base.n,
            ch.new.n
        )?;
    }
    let unsettled = c
        .changes
        .iter()
        .map(|(_, ch)| ch)
        .filter(|ch| ch.metric.gated && ch.outcome == compare::Outcome::Inconclusive && !ch.fails_gate())
        .count();
    if unsettled > 0 {
        writeln!(
            err,
            "note: {unsettled} gated change(s) inconclusive with an estimate inside ±{t}%: passed, but not shown to be the same"
        )?;
    }
    for what in &c.ended_worse {
        writeln!(err, "GATE: the runs ended worse: {what}")?;
    }
    for what in &c.valueless {
        writeln!(
            err,
            "GATE: {what} (its cells were left out or empty: see the warnings above); a gate cannot pass on nothing"
        )?;
    }
    if c.only_base > 0 {
        writeln!(
            err,
            "note: {} configuration(s) of the base have no row, or no measured run, in the new report: not gated",
            c.only_base
        )?;
    }
    // Figures from different machines differ by the machines; runs that end worse (errors,
    // failures) are the code's wherever they ran, so they gate either way.
    let mut failing_figures = failing.len();
    if failing_figures > 0 && c.machines_differ && !across_machines {
        writeln!(
            err,
            "{failing_figures} gated change(s) fail beyond {t}%, not gating: the reports come from different machines (pass --across-machines to gate anyway)"
        )?;
        failing_figures = 0;
    }
    if failing_figures == 0 && c.ended_worse.is_empty() && c.valueless.is_empty() {
        return Ok(0);
    }
    // Still failed: the figures are what was measured. But the user is told why they may be
    // wrong, on the same stream as the verdict.
    if c.disturbed {
        writeln!(
            err,
            "note: some runs were disturbed by other processes or steal (the `disturbed runs` line): the change may be theirs, not the code's; re-run on a quiet machine"
        )?;
    }
    writeln!(
        err,
        "the gate fails: {failing_figures} gated change(s) beyond ±{t}%, {} configuration(s) whose new runs ended worse, {} gated metric(s) without a valid value on a side",
        c.ended_worse.len(),
        c.valueless.len()
    )?;
    Ok(1)
}
