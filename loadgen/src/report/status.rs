//! How a run ended: its status, in the words every report uses, and its exit code.

use std::fmt;

use serde::Serialize;

/// The share of the asked rate under which an open-loop run is `behind`.
pub const BEHIND_SHARE: f64 = 0.90;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Finished, no errors.
    Ok,
    /// Open loop: finished without errors, but it sent under 90% of the rate asked
    /// ([`BEHIND_SHARE`]): the load asked for was not offered, so its figures are those of a
    /// lighter load.
    Behind,
    /// Finished, but some error count is non-zero.
    Errors,
    /// Stopped early (interrupted, or the server died); holds what was measured.
    Partial,
    /// Nothing could be measured (no connection could be opened).
    Failed,
}

impl Status {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Behind => "behind",
            Status::Errors => "errors",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }

    /// The process exit code the contract gives this status.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            _ => 1,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
