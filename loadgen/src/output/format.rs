//! The output formats, each a pure serializer: a report in, bytes out.

use super::{json, table};
use crate::report::csv_row;
use crate::report::Report;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One schema-1 CSV row (plus header when asked).
    Csv,
    /// A JSON document.
    Json,
    /// The human summary.
    Table,
}

impl Format {
    /// Serializes `report` in this format.
    pub fn render(self, report: &Report, with_header: bool) -> Vec<u8> {
        match self {
            Format::Csv => csv_row::render(report, with_header),
            Format::Json => json::render(report),
            Format::Table => table::render(report).into_bytes(),
        }
    }
}
