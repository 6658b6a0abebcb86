//! One line of the diagnosis, its weight, and the two helpers every probe uses to make one:
//! a leaf the doctor's probes share.

use serde::Serialize;

/// How a finding weighs on measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Makes some figures less precise; a fix exists.
    Warn,
}

/// One line of the diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What was measured or read.
    pub what: String,
    /// Its value.
    pub value: String,
    /// Why it matters here.
    pub why: String,
    /// What to do about it (empty when nothing needs doing).
    pub fix: String,
    /// How much it weighs.
    pub severity: Severity,
}

/// A file's text, trimmed; `None` when it cannot be read.
pub(super) fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// A finding from borrowed words.
pub(super) fn finding(what: &str, value: impl ToString, why: &str, fix: &str, severity: Severity) -> Finding {
    Finding {
        what: what.to_string(),
        value: value.to_string(),
        why: why.to_string(),
        fix: fix.to_string(),
        severity,
    }
}
