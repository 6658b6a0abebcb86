//! The JSON summary: every field of the report, per-interval series included, plus what is
//! derived from them: the steadiness verdict, which percentiles were not estimable, and the
//! CPU per message of the client and the server (as the CSV has them).

use crate::report::Report;

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
        // Not measured is not zero: a run with no round trip has no throughput or latency.
        if r.counters.msgs == 0 {
            for field in ["throughput_msgs_s", "throughput_mib_s", "latency", "latency_spectrum"] {
                obj.insert(field.into(), serde_json::Value::Null);
            }
            if r.client_cpu_s == 0.0 {
                obj.insert("client_cpu_s".into(), serde_json::Value::Null);
            }
        }
        if r.client_rss_kib == 0 {
            obj.insert("client_rss_kib".into(), serde_json::Value::Null);
        }
    }
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}
