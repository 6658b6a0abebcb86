//! The JSON summary: every field of the report, per-interval series included.

use super::Report;

/// Pretty-printed JSON of the whole report, with a trailing newline.
pub fn render(r: &Report) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(r).unwrap_or_default();
    out.push(b'\n');
    out
}
