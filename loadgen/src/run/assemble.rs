//! The report of a run, assembled from what the run measured: merged records, the threads'
//! outputs, the cost readings, and how it ended.

use std::time::{Duration, SystemTime};

use super::verdict;
use crate::config::RunConfig;
use crate::driver::ThreadOutput;
use crate::record::{new_histogram, Fairness, Interval, Percentiles};
use crate::report::{Environment, IntervalRow, Report, ServerCost, SCHEMA};
use crate::target::Target;

/// At most this many connections without a message are named in a report.
const STARVED_LISTED: usize = 20;

/// Everything a report is made of.
pub(super) struct Parts<'a> {
    pub(super) cfg: &'a RunConfig,
    pub(super) target: &'a Target,
    pub(super) started_at: SystemTime,
    /// The measured window's length (shorter than asked when stopped early).
    pub(super) measured: Duration,
    /// Every interval merged.
    pub(super) total: Interval,
    pub(super) intervals: Vec<IntervalRow>,
    pub(super) outputs: &'a [ThreadOutput],
    pub(super) client_cpu_s: f64,
    pub(super) client_rss_kib: u64,
    pub(super) server: Option<ServerCost>,
    /// Why the run stopped early, if it did.
    pub(super) stop_reason: Option<String>,
}

/// Builds the report.
pub(super) fn report(p: Parts<'_>) -> Report {
    let cfg = p.cfg;
    let mut connect = new_histogram();
    let mut per_conn: Vec<(u32, u64)> = Vec::with_capacity(cfg.conns);
    let mut conns_ok = 0;
    for out in p.outputs {
        // Same bounds on both sides: `add` cannot fail.
        let _ = connect.add(&out.connect);
        per_conn.extend_from_slice(&out.per_conn);
        conns_ok += out.conns_ok;
    }
    per_conn.sort_unstable();
    let counts: Vec<u64> = per_conn.iter().map(|&(_, n)| n).collect();
    let secs = p.measured.as_secs_f64();
    let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    let c = p.total.counters;
    let mode = cfg.schedule().mode();
    let open = cfg.rate.is_some();
    let busiest = p.outputs.iter().map(|o| o.window_cpu.as_secs_f64()).fold(0.0, f64::max) / secs.max(1e-9);
    let send_lag = open.then(|| Percentiles::of(&p.total.send_lag));
    let achieved_rate = open.then(|| rate(c.sent as f64));
    let keep_up = match (cfg.rate, achieved_rate, send_lag) {
        (Some(r), Some(a), Some(lag)) if secs > 0.0 => verdict::keep_up_verdict(r, a, lag.p99_us, busiest),
        (None, _, _) if secs > 0.0 => verdict::closed_loop_verdict(busiest),
        _ => None,
    };
    Report {
        schema: SCHEMA,
        timestamp: humantime::format_rfc3339_seconds(p.started_at).to_string(),
        label: cfg.label.clone(),
        target: p.target.name.clone(),
        addr: p.target.addr.to_string(),
        transport: Some(p.target.addr.transport()),
        mode,
        conns: cfg.conns,
        msg_size: cfg.msg_size,
        depth: cfg.depth,
        rate: cfg.rate,
        duration_s: secs,
        warmup_s: cfg.warmup.as_secs_f64(),
        counters: c,
        throughput_msgs_s: rate(c.msgs as f64),
        throughput_mib_s: rate(c.bytes as f64 / (1024.0 * 1024.0)),
        latency: Percentiles::of(&p.total.latency),
        raw: open.then(|| Percentiles::of(&p.total.raw)),
        send_lag,
        connect: Percentiles::of(&connect),
        conns_ok,
        server: p.server,
        client_cpu_s: p.client_cpu_s,
        client_rss_kib: p.client_rss_kib,
        client_thread_busy_max: busiest,
        achieved_rate,
        keep_up,
        unopened: verdict::unopened_verdict(cfg.conns, conns_ok, &c),
        status: verdict::status(conns_ok, &c, p.stop_reason.is_some()),
        stop_reason: p.stop_reason,
        fairness: Fairness::of(&counts),
        starved_conns: per_conn
            .iter()
            .filter(|&&(_, n)| n == 0)
            .map(|&(id, _)| id)
            .take(STARVED_LISTED)
            .collect(),
        intervals: p.intervals,
        env: Environment {
            pin_server: cfg.pin_server.clone(),
            pin_client: cfg.pin_client.clone(),
            ..Environment::detect()
        },
    }
}
