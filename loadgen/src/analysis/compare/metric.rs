//! What `compare` can compare: a metric's name as the user writes it, its CSV column, and
//! which way is better.

use serde::Serialize;

/// A metric to compare and which way is better.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Name as the user wrote it (`throughput`, `p99`, or a column name).
    pub name: String,
    /// The CSV column.
    pub column: String,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
    /// Whether `--threshold` gates on it (it then belongs to the gated family).
    pub gated: bool,
    /// Whether it counts events (errors, losses, ...): compared per message as a count
    /// ([`super::counts`]), zeros included.
    pub count: bool,
}

/// The columns that count events: compared as counts, per message.
pub const COUNT_COLUMNS: [&str; 10] = [
    "connect_errors",
    "timeouts",
    "resets",
    "mismatches",
    "other_errors",
    "lost",
    "late",
    "duplicates",
    "reordered",
    "retransmits",
];

/// The derived metric of a rate ladder judged by `sweep --slo`: per repeat, the highest
/// rate that met the objective ([`crate::analysis::capacity::per_repeat`]), compared like any other.
pub const CAPACITY: &str = "capacity";

/// The default metrics: throughput and p50 / p99 / p99.9 latency.
pub const DEFAULT_METRICS: [&str; 4] = ["throughput", "p50", "p99", "p99.9"];

/// `compare`'s metrics when none are named, with its gate on throughput: the CLI and the
/// HTML report use these same ones, so their intervals (split over the same family) agree.
pub fn defaults() -> Vec<Metric> {
    DEFAULT_METRICS
        .iter()
        .map(|n| Metric {
            gated: *n == "throughput",
            ..Metric::parse(n)
        })
        .collect()
}

impl Metric {
    /// Resolves a metric name: `throughput`, `mib`, `p50`, `p90`, `p99`, `p99.9`, `p99.99`,
    /// `max`, `mean`, `connect_p99`, `server_cpu`, `client_cpu`, or any numeric column
    /// (throughput columns are higher-is-better, everything else lower-is-better).
    pub fn parse(name: &str) -> Metric {
        let column = match name {
            "throughput" | "msgs_s" => "throughput_msgs_s",
            "mib" | "mib_s" => "throughput_mib_s",
            "p50" => "lat_p50_us",
            "p90" => "lat_p90_us",
            "p99" => "lat_p99_us",
            "p99.9" | "p999" => "lat_p999_us",
            "p99.99" | "p9999" => "lat_p9999_us",
            "max" => "lat_max_us",
            "mean" => "lat_mean_us",
            "connect_p99" => "connect_p99_us",
            "server_cpu" => "server_cpu_us_per_msg",
            "client_cpu" => "client_cpu_us_per_msg",
            other => other,
        };
        Metric {
            name: name.to_string(),
            column: column.to_string(),
            higher_is_better: column.starts_with("throughput") || ["fairness", "msgs", CAPACITY].contains(&column),
            gated: true,
            count: COUNT_COLUMNS.contains(&column),
        }
    }

    /// The quantile a latency percentile column estimates (`lat_p99_us` → 0.99).
    pub fn quantile(&self) -> Option<f64> {
        match self.column.as_str() {
            "lat_p50_us" => Some(0.5),
            "lat_p90_us" => Some(0.9),
            "lat_p99_us" => Some(0.99),
            "lat_p999_us" => Some(0.999),
            "lat_p9999_us" => Some(0.9999),
            _ => None,
        }
    }
}
