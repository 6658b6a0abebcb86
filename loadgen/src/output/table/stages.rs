//! The summary's table of stages (`--stages`): each stage's target, what it got, its
//! latency and how it ended, one line each.

use std::fmt::Write;

use crate::report::units::{per_s, us};
use crate::report::Report;

/// A line per stage, when the run had stages.
pub(super) fn stages(o: &mut String, r: &Report) {
    if r.stages.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "  stages     {:<3} {:<14} {:>21} {:>12} {:>10} {:>10} {:>7}  status",
        "#", "stage", "target", "got msg/s", "p50", "p99", "errors"
    );
    for s in &r.stages {
        let Some(info) = &s.stage else { continue };
        let unit = if info.of == "rate" { " msg/s" } else { " conns" };
        let target = if info.from == info.to {
            format!("{}{unit}", per_s(info.to))
        } else {
            format!("{} -> {}{unit}", per_s(info.from), per_s(info.to))
        };
        let measured = s.counters.msgs > 0;
        let lat = |v: f64| if measured { us(v) } else { "-".to_string() };
        let _ = writeln!(
            o,
            "             {:<3} {:<14} {:>21} {:>12} {:>10} {:>10} {:>7}  {}{}",
            info.index,
            info.spec,
            target,
            per_s(s.throughput_msgs_s),
            lat(s.latency.p50_us),
            lat(s.latency.p99_us),
            s.counters.errors(),
            s.status,
            s.keep_up.as_deref().map(|k| format!(" ({k})")).unwrap_or_default()
        );
    }
}
