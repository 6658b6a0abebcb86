//! The schema-1 CSV row: the contract's columns, in the contract's order.

use crate::measure::record::Ci;
use crate::report::{Report, StageInfo};

/// A column: its name, what it holds (for the reference), and its value in a report.
#[cfg_attr(not(test), allow(dead_code))] // the reference's fields are read by its test
pub struct Column {
    /// The header name.
    pub name: &'static str,
    /// Its unit (empty for counts, words and names).
    pub unit: &'static str,
    /// The date of the commit that added it (the schema has stayed 1).
    pub added: &'static str,
    /// What it holds, in a line.
    pub meaning: &'static str,
    /// Its value in a report.
    value: fn(&Report) -> String,
}

/// A [`Column`] (one line each in [`COLUMNS`]).
macro_rules! col {
    ($name:literal, $unit:literal, $added:literal, $meaning:literal, $value:expr) => {
        Column {
            name: $name,
            unit: $unit,
            added: $added,
            meaning: $meaning,
            value: $value,
        }
    };
}

/// Every column: its name and how a report gives its value, in the contract's order, so a
/// name and its value never come apart. Readers match columns by name; new columns go at
/// the end.
#[rustfmt::skip]
pub const COLUMNS: [Column; 90] = [
    col!("schema", "", "2026-11-25", "the CSV schema's version: 1", |r| r.schema.to_string()),
    col!("timestamp", "RFC 3339", "2026-11-25", "when the run started (UTC, whole seconds)", |r| r.timestamp.clone()),
    col!("label", "", "2026-11-25", "`--label` as given", |r| r.label.clone()),
    col!("target", "", "2026-11-25", "the model loadgen started (`--target`), `external` for `--addr`, `merged` for a merge of other logs", |r| r.target.clone()),
    col!("addr", "", "2026-11-25", "where the load went: `HOST:PORT`, `udp://HOST:PORT`, `icmp://HOST` or a Unix socket path", |r| r.addr.clone()),
    col!("transport", "", "2026-11-25", "`tcp`, `tcp6`, `unix`, `seqpacket`, `udp`, `udp6`, `icmp` or `icmp6` (the kernel's echo)", |r| r.transport.map_or("", servers::Transport::name).to_string()),
    col!("mode", "", "2026-11-25", "`closed` (a reply before the next send) or `open` (sends on a schedule, `--rate`)", |r| r.mode.to_string()),
    col!("conns", "", "2026-11-25", "connections (or UDP flows) asked for", |r| r.conns.to_string()),
    col!("msg_size", "bytes", "2026-11-25", "payload bytes per message", |r| r.msg_size.to_string()),
    col!("depth", "", "2026-11-25", "messages in flight per connection (closed loop)", |r| r.depth.to_string()),
    col!("rate", "msg/s", "2026-11-25", "the offered rate in open loop; empty in closed loop", |r| opt(r.rate, |v| f(v, 1))),
    col!("duration_s", "s", "2026-11-25", "the measured window (warm-up excluded)", |r| f(r.duration_s, 3)),
    col!("warmup_s", "s", "2026-11-25", "the warm-up before the window", |r| f(r.warmup_s, 3)),
    col!("msgs", "", "2026-11-25", "round trips completed in the window", |r| r.counters.msgs.to_string()),
    col!("bytes", "bytes", "2026-11-25", "payload bytes echoed in the window, each way", |r| r.counters.bytes.to_string()),
    col!("throughput_msgs_s", "msg/s", "2026-11-25", "round trips per second; empty when none completed", |r| measured(r, r.throughput_msgs_s, 1)),
    col!("throughput_mib_s", "MiB/s", "2026-11-25", "payload per second, each way; empty when none completed", |r| measured(r, r.throughput_mib_s, 3)),
    col!("lat_min_us", "µs", "2026-11-25", "latency minimum (open loop: from each send's scheduled time)", |r| measured(r, r.latency.min_us, 1)),
    col!("lat_mean_us", "µs", "2026-11-25", "latency mean", |r| measured(r, r.latency.mean_us, 1)),
    col!("lat_p50_us", "µs", "2026-11-25", "latency median", |r| measured(r, r.latency.p50_us, 1)),
    col!("lat_p90_us", "µs", "2026-11-25", "latency 90th percentile", |r| measured(r, r.latency.p90_us, 1)),
    col!("lat_p99_us", "µs", "2026-11-25", "latency 99th percentile", |r| measured(r, r.latency.p99_us, 1)),
    col!("lat_p999_us", "µs", "2026-11-25", "latency 99.9th percentile", |r| measured(r, r.latency.p999_us, 1)),
    col!("lat_p9999_us", "µs", "2026-11-25", "latency 99.99th percentile", |r| measured(r, r.latency.p9999_us, 1)),
    col!("lat_max_us", "µs", "2026-11-25", "latency maximum", |r| measured(r, r.latency.max_us, 1)),
    col!("lat_stdev_us", "µs", "2026-11-25", "latency standard deviation", |r| measured(r, r.latency.stdev_us, 1)),
    col!("connect_p50_us", "µs", "2026-11-25", "connect time median (TCP handshake, or the UDP probe's round trip)", |r| f(r.connect.p50_us, 1)),
    col!("connect_p99_us", "µs", "2026-11-25", "connect time 99th percentile", |r| f(r.connect.p99_us, 1)),
    col!("connect_max_us", "µs", "2026-11-25", "connect time maximum", |r| f(r.connect.max_us, 1)),
    col!("conns_ok", "", "2026-11-25", "connections that opened", |r| r.conns_ok.to_string()),
    col!("connect_errors", "", "2026-11-25", "connections that failed to open", |r| r.counters.connect_errors.to_string()),
    col!("timeouts", "", "2026-11-25", "messages with no reply within the timeout", |r| r.counters.timeouts.to_string()),
    col!("resets", "", "2026-11-25", "connections reset or closed by the server", |r| r.counters.resets.to_string()),
    col!("mismatches", "", "2026-11-25", "echoes whose bytes differ from what was sent", |r| r.counters.mismatches.to_string()),
    col!("other_errors", "", "2026-11-25", "other I/O errors", |r| r.counters.other_errors.to_string()),
    col!("send_lag_p99_us", "µs", "2026-11-25", "open loop: how late sends left against their schedule, 99th percentile", |r| opt(r.send_lag, |p| f(p.p99_us, 1))),
    col!("server_cpu_s", "s", "2026-11-25", "the server's CPU time in the window; empty when its process is unknown", |r| opt(r.server.and_then(|s| s.cpu_s), |v| f(v, 3))),
    col!("server_rss_kib", "KiB", "2026-11-25", "the server's peak resident memory (VmHWM)", |r| opt(r.server.and_then(|s| s.peak_rss_kib), |v| v.to_string())),
    col!("server_threads", "", "2026-11-25", "the server's peak thread count", |r| opt(r.server.and_then(|s| s.peak_threads), |v| v.to_string())),
    col!("client_cpu_s", "s", "2026-11-25", "loadgen's own CPU time in the window", |r| if (r.client_cpu_s == 0.0 && r.counters.msgs == 0) || r.stage.is_some() { String::new() } else { f(r.client_cpu_s, 3) }),
    col!("client_rss_kib", "KiB", "2026-11-25", "loadgen's peak resident memory", |r| if r.client_rss_kib == 0 { String::new() } else { r.client_rss_kib.to_string() }),
    col!("status", "", "2026-11-25", "`ok`, `behind` (open loop: sent under 90% of its rate), `errors`, `partial` (stopped early) or `failed`", |r| r.status.to_string()),
    col!("host", "", "2026-11-25", "the client's host name", |r| r.env.host.clone()),
    col!("kernel", "", "2026-11-25", "the client's kernel release", |r| r.env.kernel.clone()),
    col!("cpus", "", "2026-11-25", "CPUs online on the client's machine", |r| r.env.cpus.to_string()),
    col!("version", "", "2026-11-25", "loadgen's version and commit", |r| r.env.version.clone()),
    col!("raw_p50_us", "µs", "2026-11-25", "open loop: latency median from the actual send (not corrected for coordinated omission)", |r| opt(r.raw, |p| f(p.p50_us, 1))),
    col!("raw_p99_us", "µs", "2026-11-25", "open loop: latency 99th percentile from the actual send", |r| opt(r.raw, |p| f(p.p99_us, 1))),
    col!("fairness", "0-1", "2026-11-25", "Jain's index of messages per connection (1: every connection served equally)", |r| f(r.fairness.jain, 4)),
    col!("client_cpu_us_per_msg", "µs", "2026-11-25", "loadgen's CPU per round trip", |r| opt(r.client_us_per_msg(), |v| f(v, 3))),
    col!("server_cpu_us_per_msg", "µs", "2026-11-25", "the server's CPU per round trip; empty when its process is unknown", |r| opt(r.server_us_per_msg(), |v| f(v, 3))),
    col!("conns_opened", "", "2026-11-26", "connections opened in the window (churn)", |r| r.counters.conns_opened.to_string()),
    col!("conn_rate_s", "conn/s", "2026-11-26", "connections opened per second in the window", |r| f(r.conn_rate_s, 1)),
    col!("connect_p999_us", "µs", "2026-11-26", "connect time 99.9th percentile", |r| f(r.connect.p999_us, 1)),
    col!("first_byte_p99_us", "µs", "2026-11-26", "time from connect to the first echoed byte, 99th percentile", |r| f(r.first_byte.p99_us, 1)),
    col!("client_lag_p99_us", "µs", "2026-11-26", "open loop: the client's own pacing error, 99th percentile", |r| opt(r.client_lag, |p| f(p.p99_us, 1))),
    col!("procs", "", "2026-11-26", "client processes that made the run (`--procs`, shards)", |r| r.procs.to_string()),
    col!("shard", "I/N", "2026-11-26", "this row's shard; empty for a whole run", |r| r.shard.clone().unwrap_or_default()),
    col!("lost", "", "2026-11-26", "UDP: datagrams sent and never answered; empty on a stream", |r| udp(r, r.counters.lost)),
    col!("late", "", "2026-11-26", "UDP: replies that came after their timeout", |r| udp(r, r.counters.late)),
    col!("duplicates", "", "2026-11-26", "UDP: replies received more than once", |r| udp(r, r.counters.duplicates)),
    col!("reordered", "", "2026-11-26", "UDP: replies that overtook an earlier one", |r| udp(r, r.counters.reordered)),
    col!("engine", "", "2026-11-26", "the client's I/O engine: `epoll` or `uring`", |r| r.engine.clone()),
    col!("p99_ci_lo_us", "µs", "2026-12-01", "lower end of the 95% interval of p99 (order statistics, widened by batch means over 10 intervals or more); empty under 1,000 samples", |r| ci(r.latency.ci.p99, true)),
    col!("p99_ci_hi_us", "µs", "2026-12-01", "upper end of the 95% interval of p99", |r| ci(r.latency.ci.p99, false)),
    col!("steady", "", "2026-12-01", "`yes`/`no`/`unknown`: whether throughput and p99 held between the window's halves; empty under 4 intervals", |r| opt(r.steadiness(), |s| s.word().to_string())),
    col!("client_threads", "", "2026-12-01", "configuration: client threads that ran", |r| nonzero(r.settings.client_threads as u64)),
    col!("server_workers", "", "2026-12-01", "configuration: the spawned server's workers (the flag's or the model's default); empty for thread-per-conn and `--addr`", |r| opt(r.settings.server_workers, |v| v.to_string())),
    col!("pacing", "", "2026-12-01", "configuration: open-loop pacing (`sleep`, `hybrid` or `spin`); empty in closed loop", |r| r.settings.pacing.clone().unwrap_or_default()),
    col!("pin_server", "CPU list", "2026-12-01", "configuration: `--pin-server`", |r| opt(r.env.pin_server.as_deref(), cpus)),
    col!("pin_client", "CPU list", "2026-12-01", "configuration: `--pin-client`", |r| opt(r.env.pin_client.as_deref(), cpus)),
    col!("sock_buf", "bytes", "2026-12-01", "configuration: `--sock-buf`", |r| opt(r.settings.sock_buf, |v| v.to_string())),
    col!("server_procs", "", "2026-12-01", "configuration: server processes (`--server-procs`)", |r| nonzero(u64::from(r.settings.server_procs))),
    col!("close", "", "2026-12-01", "configuration: how the client closes (`fin` or `rst`)", |r| r.close.to_string()),
    col!("reconnect_every", "", "2026-12-01", "configuration: messages per connection before it reconnects", |r| opt(r.reconnect_every, |v| v.to_string())),
    col!("conn_rate", "conn/s", "2026-12-01", "configuration: `--conn-rate`, the rate of new connections", |r| opt(r.conn_rate, |(rate, _)| f(rate, 1))),
    col!("msgs_per_conn", "", "2026-12-01", "configuration: messages per connection under `--conn-rate`", |r| opt(r.conn_rate, |(_, n)| n.to_string())),
    col!("work", "", "2026-12-01", "configuration: the spawned server's `--work` as given", |r| r.settings.work.clone().unwrap_or_default()),
    col!("retransmits", "", "2026-12-01", "TCP segments the client retransmitted in the window; empty for UDP and Unix sockets", |r| opt(r.tcp, |t| t.retransmits.to_string())),
    col!("tcp_rtt_p50_us", "µs", "2026-12-01", "the client connections' median smoothed RTT (TCP_INFO) at the window's end", |r| opt(r.tcp, |t| f(t.rtt_p50_us, 1))),
    col!("arrivals", "", "2026-12-01", "configuration: open-loop arrivals, `uniform` or `poisson`", |r| r.settings.arrivals.clone().unwrap_or_default()),
    col!("rx_delay_p99_us", "µs", "2026-12-01", "from a reply's kernel receive stamp to loadgen's read, 99th percentile (`--rx-timestamps on`)", |r| opt(r.rx_delay, |p| f(p.p99_us, 1))),
    col!("others_cpu_s", "s", "2026-12-01", "CPU time of other processes on the client's machine in the window; empty in a shard", |r| opt(r.machine.and_then(|m| m.others_s), |s| f(s, 3))),
    col!("steal_cpu_s", "s", "2026-12-01", "CPU time the hypervisor gave other guests in the window", |r| opt(r.machine, |m| f(m.steal_s, 3))),
    col!("work_asked_mean_us", "µs", "2026-12-07", "`--work`: the server work asked per message (kinds summed)", |r| opt(r.work_per_msg(), |(a, _)| f(a, 2))),
    col!("work_done_mean_us", "µs", "2026-12-07", "`--work`: the work the server measured it did per message", |r| opt(r.work_per_msg(), |(_, d)| f(d, 2))),
    col!("slo", "", "2026-12-07", "`--slo` (a run or `sweep`): the objectives as one, e.g. `p99 <= 5000 us, errors <= 0`", |r| r.objective.as_ref().map_or(String::new(), |o| o.slo.clone())),
    col!("slo_met", "", "2026-12-07", "`--slo`: `yes` when every objective was met, else `no`", |r| opt(r.objective.as_ref(), |o| if o.met { "yes" } else { "no" }.to_string())),
    col!("stage", "", "2026-12-07", "`--stages`: the stage this row measured, its place from 1 and its spec (`3 2s@20k`); its cost columns are empty (CPU is read at the window's ends); empty without stages", |r| opt(r.stage.as_ref(), StageInfo::cell)),
    col!("conns_closed", "", "2026-12-07", "connections the client closed in the window when done with them (churn, or `--stages` of connections going down); not errors", |r| r.counters.conns_closed.to_string()),
];

/// The header, in order.
pub const HEADER: [&str; COLUMNS.len()] = {
    let mut names = [""; COLUMNS.len()];
    let mut i = 0;
    while i < COLUMNS.len() {
        names[i] = COLUMNS[i].name;
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
    COLUMNS.map(|c| (c.value)(r))
}

/// The column table of docs/reference.md, in order: generated from [`COLUMNS`] and checked
/// by a test, so the reference cannot drift from the code.
#[cfg_attr(not(test), allow(dead_code))]
pub fn reference_table() -> String {
    let mut o = String::from("| # | column | unit | added | what it holds |\n|---|---|---|---|---|\n");
    for (i, c) in COLUMNS.iter().enumerate() {
        o += &format!(
            "| {} | `{}` | {} | {} | {} |\n",
            i + 1,
            c.name,
            c.unit,
            c.added,
            c.meaning
        );
    }
    o
}

/// One CSV row, preceded by the header line when `with_header`.
pub fn render(r: &Report, with_header: bool) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    if with_header {
        let _ = w.write_record(HEADER);
    }
    for row in r.csv_rows() {
        let _ = w.write_record(fields(row));
    }
    w.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- columns: generated from loadgen/src/report/csv_row.rs; do not edit -->";
    const END: &str = "<!-- end of columns -->";

    /// docs/reference.md's column table is [`reference_table`]; with `ECHO_BENCH_BLESS=1`
    /// the test rewrites it instead of failing.
    #[test]
    fn the_reference_lists_every_column_as_the_code_does() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reference.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (before, rest) = doc
            .split_once(BEGIN)
            .expect("docs/reference.md has the columns' start marker");
        let (_, after) = rest
            .split_once(END)
            .expect("docs/reference.md has the columns' end marker");
        let want = format!("{before}{BEGIN}\n\n{}\n{END}{after}", reference_table());
        if doc != want {
            if std::env::var_os("ECHO_BENCH_BLESS").is_some() {
                std::fs::write(&path, want).unwrap();
            } else {
                panic!("docs/reference.md's column table differs from COLUMNS: run `ECHO_BENCH_BLESS=1 cargo test -p loadgen --lib csv_row` and commit it");
            }
        }
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "a column is named twice");
        assert!(COLUMNS.iter().all(|c| !c.meaning.is_empty() && c.added.len() == 10));
    }
}
