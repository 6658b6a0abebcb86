//! One stage of a `--stages` run, as its report names it.

use serde::Serialize;

/// One stage of a `--stages` run, as its report names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageInfo {
    /// Its place, from 1.
    pub index: usize,
    /// As written on the command line (`2s:5k`, `10s@20k`).
    pub spec: String,
    /// Seconds from the run's start to the stage's.
    pub start_s: f64,
    /// The target at the stage's start and at its end.
    pub from: f64,
    /// See `from`.
    pub to: f64,
    /// What the targets count: `rate` (msg/s) or `conns` (open connections).
    pub of: &'static str,
}

impl StageInfo {
    /// `3 2s@20k`: the CSV's `stage` cell.
    pub fn cell(&self) -> String {
        format!("{} {}", self.index, self.spec)
    }
}
