//! The schema-1 CSV row: the contract's columns, in the contract's order.

use crate::measure::record::Ci;
use crate::report::Report;

/// A column: its name, and its value in a report.
type Column = (&'static str, fn(&Report) -> String);

/// Every column: its name and how a report gives its value, in the contract's order, so a
/// name and its value never come apart. Readers match columns by name; new columns go at
/// the end.
#[rustfmt::skip]
const COLUMNS: [Column; 88] = [
    ("schema", |r| r.schema.to_string()),
    ("timestamp", |r| r.timestamp.clone()),
    ("label", |r| r.label.clone()),
    ("target", |r| r.target.clone()),
    ("addr", |r| r.addr.clone()),
    ("transport", |r| r.transport.map_or("", servers::Transport::name).to_string()),
    ("mode", |r| r.mode.to_string()),
    ("conns", |r| r.conns.to_string()),
    ("msg_size", |r| r.msg_size.to_string()),
    ("depth", |r| r.depth.to_string()),
    ("rate", |r| opt(r.rate, |v| f(v, 1))),
    ("duration_s", |r| f(r.duration_s, 3)),
    ("warmup_s", |r| f(r.warmup_s, 3)),
    ("msgs", |r| r.counters.msgs.to_string()),
    ("bytes", |r| r.counters.bytes.to_string()),
    ("throughput_msgs_s", |r| measured(r, r.throughput_msgs_s, 1)),
    ("throughput_mib_s", |r| measured(r, r.throughput_mib_s, 3)),
    ("lat_min_us", |r| measured(r, r.latency.min_us, 1)),
    ("lat_mean_us", |r| measured(r, r.latency.mean_us, 1)),
    ("lat_p50_us", |r| measured(r, r.latency.p50_us, 1)),
    ("lat_p90_us", |r| measured(r, r.latency.p90_us, 1)),
    ("lat_p99_us", |r| measured(r, r.latency.p99_us, 1)),
    ("lat_p999_us", |r| measured(r, r.latency.p999_us, 1)),
    ("lat_p9999_us", |r| measured(r, r.latency.p9999_us, 1)),
    ("lat_max_us", |r| measured(r, r.latency.max_us, 1)),
    ("lat_stdev_us", |r| measured(r, r.latency.stdev_us, 1)),
    ("connect_p50_us", |r| f(r.connect.p50_us, 1)),
    ("connect_p99_us", |r| f(r.connect.p99_us, 1)),
    ("connect_max_us", |r| f(r.connect.max_us, 1)),
    ("conns_ok", |r| r.conns_ok.to_string()),
    ("connect_errors", |r| r.counters.connect_errors.to_string()),
    ("timeouts", |r| r.counters.timeouts.to_string()),
    ("resets", |r| r.counters.resets.to_string()),
    ("mismatches", |r| r.counters.mismatches.to_string()),
    ("other_errors", |r| r.counters.other_errors.to_string()),
    ("send_lag_p99_us", |r| opt(r.send_lag, |p| f(p.p99_us, 1))),
    ("server_cpu_s", |r| opt(r.server.and_then(|s| s.cpu_s), |v| f(v, 3))),
    ("server_rss_kib", |r| opt(r.server.and_then(|s| s.peak_rss_kib), |v| v.to_string())),
    ("server_threads", |r| opt(r.server.and_then(|s| s.peak_threads), |v| v.to_string())),
    ("client_cpu_s", |r| if r.client_cpu_s == 0.0 && r.counters.msgs == 0 { String::new() } else { f(r.client_cpu_s, 3) }),
    ("client_rss_kib", |r| if r.client_rss_kib == 0 { String::new() } else { r.client_rss_kib.to_string() }),
    ("status", |r| r.status.to_string()),
    ("host", |r| r.env.host.clone()),
    ("kernel", |r| r.env.kernel.clone()),
    ("cpus", |r| r.env.cpus.to_string()),
    ("version", |r| r.env.version.clone()),
    ("raw_p50_us", |r| opt(r.raw, |p| f(p.p50_us, 1))),
    ("raw_p99_us", |r| opt(r.raw, |p| f(p.p99_us, 1))),
    ("fairness", |r| f(r.fairness.jain, 4)),
    ("client_cpu_us_per_msg", |r| opt(r.client_us_per_msg(), |v| f(v, 3))),
    ("server_cpu_us_per_msg", |r| opt(r.server_us_per_msg(), |v| f(v, 3))),
    ("conns_opened", |r| r.counters.conns_opened.to_string()),
    ("conn_rate_s", |r| f(r.conn_rate_s, 1)),
    ("connect_p999_us", |r| f(r.connect.p999_us, 1)),
    ("first_byte_p99_us", |r| f(r.first_byte.p99_us, 1)),
    ("client_lag_p99_us", |r| opt(r.client_lag, |p| f(p.p99_us, 1))),
    ("procs", |r| r.procs.to_string()),
    ("shard", |r| r.shard.clone().unwrap_or_default()),
    ("lost", |r| udp(r, r.counters.lost)),
    ("late", |r| udp(r, r.counters.late)),
    ("duplicates", |r| udp(r, r.counters.duplicates)),
    ("reordered", |r| udp(r, r.counters.reordered)),
    ("engine", |r| r.engine.clone()),
    ("p99_ci_lo_us", |r| ci(r.latency.ci.p99, true)),
    ("p99_ci_hi_us", |r| ci(r.latency.ci.p99, false)),
    ("steady", |r| opt(r.steadiness(), |s| s.word().to_string())),
    ("client_threads", |r| nonzero(r.settings.client_threads as u64)),
    ("server_workers", |r| opt(r.settings.server_workers, |v| v.to_string())),
    ("pacing", |r| r.settings.pacing.clone().unwrap_or_default()),
    ("pin_server", |r| opt(r.env.pin_server.as_deref(), cpus)),
    ("pin_client", |r| opt(r.env.pin_client.as_deref(), cpus)),
    ("sock_buf", |r| opt(r.settings.sock_buf, |v| v.to_string())),
    ("server_procs", |r| nonzero(u64::from(r.settings.server_procs))),
    ("close", |r| r.close.to_string()),
    ("reconnect_every", |r| opt(r.reconnect_every, |v| v.to_string())),
    ("conn_rate", |r| opt(r.conn_rate, |(rate, _)| f(rate, 1))),
    ("msgs_per_conn", |r| opt(r.conn_rate, |(_, n)| n.to_string())),
    ("work", |r| r.settings.work.clone().unwrap_or_default()),
    ("retransmits", |r| opt(r.tcp, |t| t.retransmits.to_string())),
    ("tcp_rtt_p50_us", |r| opt(r.tcp, |t| f(t.rtt_p50_us, 1))),
    ("arrivals", |r| r.settings.arrivals.clone().unwrap_or_default()),
    ("rx_delay_p99_us", |r| opt(r.rx_delay, |p| f(p.p99_us, 1))),
    ("others_cpu_s", |r| opt(r.machine.and_then(|m| m.others_s), |s| f(s, 3))),
    ("steal_cpu_s", |r| opt(r.machine, |m| f(m.steal_s, 3))),
    ("work_asked_mean_us", |r| opt(r.work_per_msg(), |(a, _)| f(a, 2))),
    ("work_done_mean_us", |r| opt(r.work_per_msg(), |(_, d)| f(d, 2))),
    ("slo", |r| r.objective.as_ref().map_or(String::new(), |o| o.slo.clone())),
    ("slo_met", |r| opt(r.objective.as_ref(), |o| if o.met { "yes" } else { "no" }.to_string())),
];

/// The header, in order.
pub const HEADER: [&str; COLUMNS.len()] = {
    let mut names = [""; COLUMNS.len()];
    let mut i = 0;
    while i < COLUMNS.len() {
        names[i] = COLUMNS[i].0;
        i += 1;
    }
    names
};

fn f(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// A value of the round trips: empty when none completed (not measured is not zero).
fn measured(r: &Report, v: f64, decimals: usize) -> String {
    if r.counters.msgs == 0 {
        String::new()
    } else {
        f(v, decimals)
    }
}

fn opt<T>(v: Option<T>, show: impl Fn(T) -> String) -> String {
    v.map(show).unwrap_or_default()
}

/// A count that is 0 only when unknown (a merge of other tools' logs): empty then.
fn nonzero(n: u64) -> String {
    if n > 0 {
        n.to_string()
    } else {
        String::new()
    }
}

/// A CPU list as `--pin-*` takes it: `0,1`.
fn cpus(list: &[usize]) -> String {
    list.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// One bound of a percentile's interval; empty when not estimable.
fn ci(c: Ci, lo: bool) -> String {
    match c {
        Ci::Interval { lo_us, hi_us } => f(if lo { lo_us } else { hi_us }, 1),
        Ci::NotEstimable => String::new(),
    }
}

/// UDP counts: empty on a stream, where they have no meaning.
fn udp(r: &Report, n: u64) -> String {
    let c = &r.counters;
    let is_udp = r.transport.map_or(
        c.lost + c.late + c.duplicates + c.reordered > 0,
        servers::Transport::is_datagram,
    );
    if is_udp {
        n.to_string()
    } else {
        String::new()
    }
}

/// The row's fields, matching [`HEADER`].
pub fn fields(r: &Report) -> [String; HEADER.len()] {
    COLUMNS.map(|(_, value)| value(r))
}

/// One CSV row, preceded by the header line when `with_header`.
pub fn render(r: &Report, with_header: bool) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    if with_header {
        let _ = w.write_record(HEADER);
    }
    let _ = w.write_record(fields(r));
    w.into_inner().unwrap_or_default()
}
