//! `--latency`: the detailed percentile spectrum of a report, as wrk2 prints it.

use std::fmt::Write;

use crate::report::Report;

/// The detailed latency percentile spectrum (`--latency`), in the layout of HdrHistogram's
/// percentile distribution (as wrk2 prints it, values in µs here), which HdrHistogram's
/// plotter reads; empty when nothing was measured.
pub fn spectrum(r: &Report) -> String {
    let mut o = String::new();
    if r.latency_spectrum.is_empty() {
        return o;
    }
    let _ = writeln!(o, "  Detailed percentile spectrum (latency, us):");
    let _ = writeln!(o, "       Value   Percentile   TotalCount 1/(1-Percentile)\n");
    for p in &r.latency_spectrum {
        let _ = write!(o, "{:12.3} {:12.6} {:12}", p.value_us, p.quantile, p.total_count);
        // The last row is 100%: 1/(1-p) has no value there.
        if p.quantile < 1.0 {
            let _ = write!(o, " {:14.2}", 1.0 / (1.0 - p.quantile));
        }
        o.push('\n');
    }
    let l = &r.latency;
    let _ = writeln!(
        o,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        l.mean_us, l.stdev_us
    );
    let _ = writeln!(o, "#[Max     = {:12.3}, Total count    = {:12}]", l.max_us, l.count);
    o
}
