//! How the report prints a duration and a rate (shared by the table, the progress line and
//! the verdicts).

/// A latency in µs as people read it: `850.0 us`, `11.27 ms`, `2.25 s`.
pub(crate) fn us(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.2} s", v / 1e6)
    } else if v >= 1000.0 {
        format!("{:.2} ms", v / 1e3)
    } else {
        format!("{v:.1} us")
    }
}

/// A rate as people read it: whole numbers, and two decimals below 10 (`0.20 msg/s`, not
/// `0 msg/s`).
pub(crate) fn per_s(v: f64) -> String {
    if v != 0.0 && v.abs() < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}
