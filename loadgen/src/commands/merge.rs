//! `loadgen merge`: one report from several hosts' interval logs (the maths is in
//! [`crate::merge`]).

use super::check_output;
use crate::cli::MergeArgs;
use crate::merge;
use crate::report::{sink, Format};

/// Runs `loadgen merge`.
pub(super) fn run(a: &MergeArgs) -> anyhow::Result<u8> {
    if let Some(path) = &a.csv {
        check_output("--csv", path)?;
    }
    if let Some(path) = &a.json {
        check_output("--json", path)?;
    }
    let logs = a
        .logs
        .iter()
        .map(|p| crate::hlog::read(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = merge::merge(&logs);
    let sources = a
        .logs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let r = merge::report(&merged, &sources, &a.label);
    if let Some(path) = &a.csv {
        sink::append_csv(path, &r)?;
    }
    if let Some(path) = &a.json {
        sink::write_file(path, &Format::Json.render(&r, false))?;
    }
    println!(
        "merged {} logs: {} round trips over {:.2} s ({:.0} msg/s), {} aligned intervals",
        logs.len(),
        r.counters.msgs,
        r.duration_s,
        r.throughput_msgs_s,
        merged.intervals.len()
    );
    let l = &r.latency;
    println!(
        "  latency    p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  p99.99 {:.1} us  max {:.1} us",
        l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.p9999_us, l.max_us
    );
    Ok(r.status.exit_code())
}
