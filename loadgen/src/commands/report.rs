//! `loadgen report`: one self-contained HTML page of a study (its reports, interval logs
//! and comparison). Inputs and the output are checked before any work; the page is made by
//! [`crate::output::html`] and written once, atomically.

use crate::cli::ReportArgs;
use crate::output::html::{self, Study};
use crate::output::sink;
use crate::report::read::read_report;

/// `loadgen report`.
pub(super) fn run(a: &ReportArgs) -> anyhow::Result<u8> {
    crate::output::sink::check_output("--html", &a.html)?;
    let name = |p: &std::path::Path| {
        p.file_name()
            .map_or(p.display().to_string(), |n| n.to_string_lossy().into_owned())
    };
    let reports = a
        .reports
        .iter()
        .map(|p| Ok((name(p), read_report(p)?)))
        .collect::<Result<Vec<_>, crate::error::Error>>()?;
    let baseline = a
        .baseline
        .as_deref()
        .map(|p| Ok::<_, crate::error::Error>((name(p), read_report(p)?)))
        .transpose()?;
    let merged = a
        .hlog
        .iter()
        .map(|p| {
            let merged = crate::scale::merge::read_log(p).map_err(|e| crate::error::Error::Input(format!("{e:#}")))?;
            Ok((name(p), merged))
        })
        .collect::<Result<Vec<_>, crate::error::Error>>()?;
    let study = Study {
        title: a.title.clone().unwrap_or_else(|| {
            let names: Vec<&str> = reports.iter().map(|(n, _)| n.as_str()).collect();
            format!("echo-bench study: {}", names.join(", "))
        }),
        reports,
        hlogs: merged.iter().map(|(n, m)| (n.clone(), m)).collect(),
        baseline,
        by: a.by.clone(),
        version: format!("{}+{}", env!("CARGO_PKG_VERSION"), env!("LOADGEN_GIT")),
    };
    sink::write_file(&a.html, html::page(&study).as_bytes())?;
    if !crate::os::files::Dest::of(&a.html).is_stdout() {
        println!("wrote {}", a.html.display());
    }
    Ok(0)
}
