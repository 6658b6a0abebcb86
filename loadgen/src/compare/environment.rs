//! Whether two reports come from the same kind of setup: the manifest columns that differ.

use crate::report::read::Row;

/// The manifest columns compared between the two sides of a comparison.
pub const ENVIRONMENT_COLUMNS: [&str; 4] = ["host", "kernel", "cpus", "version"];

/// How the environments of two reports differ: for each manifest column whose values differ,
/// (column, base values, new values). Empty when both come from the same kind of setup.
pub fn environment_differences(base: &[Row], new: &[Row]) -> Vec<(String, String, String)> {
    let values = |rows: &[Row], col: &str| {
        let mut v: Vec<String> = rows
            .iter()
            .map(|r| r.get(col).to_string())
            .filter(|v| !v.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v.join("/")
    };
    ENVIRONMENT_COLUMNS
        .iter()
        .filter_map(|&col| {
            let (b, n) = (values(base, col), values(new, col));
            (b != n && !b.is_empty() && !n.is_empty()).then(|| (col.to_string(), b, n))
        })
        .collect()
}
