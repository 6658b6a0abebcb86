//! The JSON summary: every field of the report, per-interval series included, plus what is
//! derived from them: the steadiness verdict, which percentiles were not estimable, and the
//! CPU per message of the client and the server (as the CSV has them).

use super::data::Report;

/// Pretty-printed JSON of the whole report, with a trailing newline.
pub fn render(r: &Report) -> Vec<u8> {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "steady".into(),
            serde_json::to_value(r.steadiness()).unwrap_or_default(),
        );
        obj.insert(
            "not_estimable".into(),
            serde_json::to_value(r.latency.ci.not_estimable()).unwrap_or_default(),
        );
        obj.insert("client_cpu_us_per_msg".into(), r.client_us_per_msg().into());
        obj.insert("server_cpu_us_per_msg".into(), r.server_us_per_msg().into());
    }
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}
