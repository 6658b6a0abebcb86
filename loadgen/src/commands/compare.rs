//! `loadgen compare`: two reports side by side (a CI gate with `--threshold`), or the
//! values of one column against a baseline within one report. The maths is in
//! [`crate::compare`], the printing in its `render`.

use std::io::Write;

use crate::cli::CompareArgs;
use crate::compare::render::{self, CompareFormat};
use crate::compare::{self, Metric};
use crate::config::parse_percent;
use crate::error::Error;
use crate::report::read::read_report;

/// `loadgen compare`.
pub(super) fn run(a: &CompareArgs) -> anyhow::Result<u8> {
    let names: Vec<String> = if a.metric.is_empty() {
        compare::DEFAULT_METRICS.iter().map(|s| s.to_string()).collect()
    } else {
        a.metric.clone()
    };
    let metrics: Vec<Metric> = names.iter().map(|n| Metric::parse(n.trim())).collect();
    let threshold = a
        .threshold
        .as_deref()
        .map(|t| parse_percent("--threshold", t))
        .transpose()?;
    let format: CompareFormat = a.format.parse()?;
    let mut out = std::io::stdout().lock();
    match (&a.by, &a.baseline, a.reports.as_slice()) {
        (Some(by), Some(baseline), [file]) => {
            let rows = read_report(file)?;
            let rel = compare::relative(&rows, by, baseline, &metrics);
            if rel.is_empty() {
                return Err(Error::Input(format!(
                    "{}: no configuration has both `{by}={baseline}` and another `{by}` value",
                    file.display()
                ))
                .into());
            }
            out.write_all(render::relatives(&rel, by, baseline, format).as_bytes())?;
            Ok(0)
        }
        (None, None, [base, new]) => {
            let (b, n) = (read_report(base)?, read_report(new)?);
            let c = compare::compare(&b, &n, &metrics);
            out.write_all(render::comparison(&c, format, threshold).as_bytes())?;
            let regressions = threshold.map_or(0, |t| c.changes.iter().filter(|ch| ch.is_regression(t)).count());
            if regressions == 0 {
                return Ok(0);
            }
            let machines_differ = c.environment.iter().any(|(col, _, _)| col != "version");
            if machines_differ && !a.across_machines {
                writeln!(
                    out,
                    "{regressions} regression(s) beyond {}%, not gating: the reports come from different machines (pass --across-machines to gate anyway)",
                    threshold.unwrap_or(0.0)
                )?;
                return Ok(0);
            }
            writeln!(out, "{regressions} regression(s) beyond {}%", threshold.unwrap_or(0.0))?;
            Ok(1)
        }
        _ => Err(Error::Input(
            "compare takes BASE.csv NEW.csv, or one report with --by COLUMN --baseline VALUE".to_string(),
        )
        .into()),
    }
}
