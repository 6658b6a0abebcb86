//! The schema-1 CSV row: the contract's columns, in the contract's order.

use super::Report;
use crate::record::Ci;

/// The header, in order. Readers match columns by name; new columns go at the end.
pub const HEADER: [&str; 82] = [
    "schema",
    "timestamp",
    "label",
    "target",
    "addr",
    "transport",
    "mode",
    "conns",
    "msg_size",
    "depth",
    "rate",
    "duration_s",
    "warmup_s",
    "msgs",
    "bytes",
    "throughput_msgs_s",
    "throughput_mib_s",
    "lat_min_us",
    "lat_mean_us",
    "lat_p50_us",
    "lat_p90_us",
    "lat_p99_us",
    "lat_p999_us",
    "lat_p9999_us",
    "lat_max_us",
    "lat_stdev_us",
    "connect_p50_us",
    "connect_p99_us",
    "connect_max_us",
    "conns_ok",
    "connect_errors",
    "timeouts",
    "resets",
    "mismatches",
    "other_errors",
    "send_lag_p99_us",
    "server_cpu_s",
    "server_rss_kib",
    "server_threads",
    "client_cpu_s",
    "client_rss_kib",
    "status",
    "host",
    "kernel",
    "cpus",
    "version",
    "raw_p50_us",
    "raw_p99_us",
    "fairness",
    "client_cpu_us_per_msg",
    "server_cpu_us_per_msg",
    "conns_opened",
    "conn_rate_s",
    "connect_p999_us",
    "first_byte_p99_us",
    "client_lag_p99_us",
    "procs",
    "shard",
    "lost",
    "late",
    "duplicates",
    "reordered",
    "engine",
    "p99_ci_lo_us",
    "p99_ci_hi_us",
    "steady",
    "client_threads",
    "server_workers",
    "pacing",
    "pin_server",
    "pin_client",
    "sock_buf",
    "server_procs",
    "close",
    "reconnect_every",
    "conn_rate",
    "msgs_per_conn",
    "work",
    "retransmits",
    "tcp_rtt_p50_us",
    "arrivals",
    "rx_delay_p99_us",
];

fn f(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
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

/// The row's fields, matching [`HEADER`].
pub fn fields(r: &Report) -> [String; HEADER.len()] {
    // UDP counts: empty on a stream, where they have no meaning.
    let c = &r.counters;
    let is_udp = r.transport.map_or(
        c.lost + c.late + c.duplicates + c.reordered > 0,
        servers::Transport::is_datagram,
    );
    let udp = |n: u64| if is_udp { n.to_string() } else { String::new() };
    let l = &r.latency;
    [
        r.schema.to_string(),
        r.timestamp.clone(),
        r.label.clone(),
        r.target.clone(),
        r.addr.clone(),
        r.transport.map_or("", servers::Transport::name).to_string(),
        r.mode.to_string(),
        r.conns.to_string(),
        r.msg_size.to_string(),
        r.depth.to_string(),
        opt(r.rate, |v| f(v, 1)),
        f(r.duration_s, 3),
        f(r.warmup_s, 3),
        c.msgs.to_string(),
        c.bytes.to_string(),
        f(r.throughput_msgs_s, 1),
        f(r.throughput_mib_s, 3),
        f(l.min_us, 1),
        f(l.mean_us, 1),
        f(l.p50_us, 1),
        f(l.p90_us, 1),
        f(l.p99_us, 1),
        f(l.p999_us, 1),
        f(l.p9999_us, 1),
        f(l.max_us, 1),
        f(l.stdev_us, 1),
        f(r.connect.p50_us, 1),
        f(r.connect.p99_us, 1),
        f(r.connect.max_us, 1),
        r.conns_ok.to_string(),
        c.connect_errors.to_string(),
        c.timeouts.to_string(),
        c.resets.to_string(),
        c.mismatches.to_string(),
        c.other_errors.to_string(),
        opt(r.send_lag, |p| f(p.p99_us, 1)),
        opt(r.server.and_then(|s| s.cpu_s), |v| f(v, 3)),
        opt(r.server.and_then(|s| s.peak_rss_kib), |v| v.to_string()),
        opt(r.server.and_then(|s| s.peak_threads), |v| v.to_string()),
        f(r.client_cpu_s, 3),
        r.client_rss_kib.to_string(),
        r.status.to_string(),
        r.env.host.clone(),
        r.env.kernel.clone(),
        r.env.cpus.to_string(),
        r.env.version.clone(),
        opt(r.raw, |p| f(p.p50_us, 1)),
        opt(r.raw, |p| f(p.p99_us, 1)),
        f(r.fairness.jain, 4),
        opt(r.client_us_per_msg(), |v| f(v, 3)),
        opt(r.server_us_per_msg(), |v| f(v, 3)),
        c.conns_opened.to_string(),
        f(r.conn_rate_s, 1),
        f(r.connect.p999_us, 1),
        f(r.first_byte.p99_us, 1),
        opt(r.client_lag, |p| f(p.p99_us, 1)),
        r.procs.to_string(),
        r.shard.clone().unwrap_or_default(),
        udp(c.lost),
        udp(c.late),
        udp(c.duplicates),
        udp(c.reordered),
        r.engine.clone(),
        ci(l.ci.p99, true),
        ci(l.ci.p99, false),
        opt(r.steadiness(), |s| if s.steady { "yes" } else { "no" }.to_string()),
        nonzero(r.settings.client_threads as u64),
        opt(r.settings.server_workers, |v| v.to_string()),
        r.settings.pacing.unwrap_or_default().to_string(),
        opt(r.env.pin_server.as_deref(), cpus),
        opt(r.env.pin_client.as_deref(), cpus),
        opt(r.settings.sock_buf, |v| v.to_string()),
        nonzero(u64::from(r.settings.server_procs)),
        r.close.to_string(),
        opt(r.reconnect_every, |v| v.to_string()),
        opt(r.conn_rate, |(rate, _)| f(rate, 1)),
        opt(r.conn_rate, |(_, n)| n.to_string()),
        r.settings.work.clone().unwrap_or_default(),
        opt(r.tcp, |t| t.retransmits.to_string()),
        opt(r.tcp, |t| f(t.rtt_p50_us, 1)),
        r.settings.arrivals.unwrap_or_default().to_string(),
        opt(r.rx_delay, |p| f(p.p99_us, 1)),
    ]
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
