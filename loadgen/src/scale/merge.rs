//! `loadgen merge`: one report from several load hosts' interval logs. Histograms are
//! merged exactly (never averaged): the totals, and per aligned interval for the series.
//! Intervals line up by their absolute start time (each log's BaseTime + offset), to the
//! nearest multiple of the shortest interval's length (shards log theirs a few ms apart).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::measure::hlog::{self, RAW_TAG};
use crate::measure::record::{new_histogram, Counters, Percentiles};
use crate::measure::schedule::Mode;
use crate::report::shard::{self, RunStamp, ShardResult};
use crate::report::{IntervalRow, Report, Status, TcpStats};

/// The merged result of several logs.
#[derive(Debug)]
pub struct Merged {
    /// Latency over every interval of every log.
    pub latency: Histogram<u64>,
    /// Raw (service time) histograms, when the logs have them.
    pub raw: Option<Histogram<u64>>,
    /// The other histograms loadgen's shards log (connect, first byte, ...: [`shard::TAGS`]),
    /// by tag, where the logs have them.
    pub tagged: BTreeMap<String, Histogram<u64>>,
    /// Earliest interval start to latest interval end.
    pub span: Duration,
    /// Per aligned interval: (start after the earliest, length, merged latency).
    pub intervals: Vec<(Duration, Duration, Histogram<u64>)>,
    /// `--stages` of the run that wrote the log, and what they count (`rate` or `conns`).
    #[cfg_attr(not(feature = "html"), allow(dead_code))] // read by the charts
    pub stages: Option<(crate::measure::schedule::Profile, String)>,
}

/// One interval log read and merged, with the stages its notes name.
#[cfg_attr(not(feature = "html"), allow(dead_code))] // for the charts
pub fn read_log(path: &std::path::Path) -> anyhow::Result<Merged> {
    let (logs, notes) = hlog::read_with_notes(path)?;
    Ok(Merged {
        stages: crate::config::stages_of_log(&notes),
        ..merge(&[logs])
    })
}

/// Merges logs read with [`hlog::read`].
pub fn merge(logs: &[Vec<hlog::LoggedInterval>]) -> Merged {
    let all = logs.iter().flatten();
    let latency_ivs = all.clone().filter(|i| i.tag.is_none());
    let start = latency_ivs.clone().map(|i| i.start).min().unwrap_or_default();
    let end = latency_ivs
        .clone()
        .map(|i| i.start + i.length)
        .max()
        .unwrap_or_default();
    // Shards started together log their intervals a few ms apart (each its own clock read):
    // an interval joins the slot of the shortest interval's length nearest its start.
    let slot_ms = latency_ivs.map(|i| i.length.as_millis()).min().unwrap_or(1).max(1);
    let slot = |at: Duration| ((at - start).as_millis() + slot_ms / 2) / slot_ms * slot_ms;
    let mut latency = new_histogram();
    let mut raw: Option<Histogram<u64>> = None;
    let mut tagged: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut by_start: BTreeMap<u128, (Duration, Histogram<u64>)> = BTreeMap::new();
    for iv in all {
        match iv.tag.as_deref() {
            None => {
                // Histograms of other bounds still merge: `add` auto-resizes when needed.
                let _ = latency.add(&iv.histogram);
                let e = by_start
                    .entry(slot(iv.start))
                    .or_insert_with(|| (iv.length, new_histogram()));
                e.0 = e.0.max(iv.length);
                let _ = e.1.add(&iv.histogram);
            }
            Some(RAW_TAG) => {
                let _ = raw.get_or_insert_with(new_histogram).add(&iv.histogram);
            }
            Some(tag) if shard::TAGS.contains(&tag) => {
                let _ = tagged
                    .entry(tag.to_string())
                    .or_insert_with(new_histogram)
                    .add(&iv.histogram);
            }
            Some(_) => {} // another tool's tag
        }
    }
    Merged {
        latency,
        raw,
        tagged,
        span: end.saturating_sub(start),
        intervals: by_start
            .into_iter()
            .map(|(ms, (len, h))| (Duration::from_millis(ms as u64), len, h))
            .collect(),
        stages: None,
    }
}

/// Builds the report of a merge. With the shards' stamp and combined result (logs
/// written by loadgen shards), the report has the whole run's configuration, counts and
/// costs; without, only what the histograms say.
pub fn report(m: &Merged, sources: &str, label: &str, shards: Option<(&RunStamp, &ShardResult, u32)>) -> Report {
    let base = plain_report(m, sources, label);
    let Some((stamp, total, procs)) = shards else {
        return base;
    };
    let tag = |t: &str| m.tagged.get(t).filter(|h| !h.is_empty()).map(Percentiles::of);
    let open = stamp.mode == Mode::Open.to_string();
    let f = &total.findings;
    let mut r = base;
    // What was run: the stamp and the shards' configuration columns.
    r.target = stamp.target.clone();
    r.addr = total.addr.clone();
    // The shards' address says the transport (`udp://`, a Unix path, or TCP).
    r.transport = total.addr.parse::<servers::ListenAddr>().ok().map(|a| a.transport());
    r.conns = total.conns;
    r.msg_size = stamp.msg_size;
    r.depth = stamp.depth;
    r.rate = stamp.rate;
    r.warmup_s = stamp.warmup_s;
    r.engine = stamp.engine.clone();
    r.procs = procs;
    r.reconnect_every = total.config.reconnect_every;
    r.conn_rate = total.config.conn_rate;
    r.close = <crate::cli::choice::CloseMode as clap::ValueEnum>::from_str(&total.config.close, true)
        .map_or("fin", crate::cli::choice::CloseMode::name);
    r.settings = total.config.settings.clone().unwrap_or_default();
    // What was measured: the summed counts over the longest window, the merged histograms.
    r.set_counts(total.counters, total.duration_s);
    r.connect = tag(shard::CONNECT_TAG).unwrap_or_default();
    r.first_byte = tag(shard::FIRST_BYTE_TAG).unwrap_or_default();
    r.rx_delay = tag(shard::RX_DELAY_TAG);
    r.send_lag = tag(shard::SEND_LAG_TAG).filter(|_| open);
    r.client_lag = tag(shard::CLIENT_LAG_TAG).filter(|_| open);
    r.backpressure = tag(shard::BACKPRESSURE_TAG).filter(|_| open);
    r.conns_ok = total.conns_ok;
    r.fairness = total.fairness;
    r.tcp = f.tcp.map(|t| {
        let rtt = tag(shard::RTT_TAG).unwrap_or_default();
        TcpStats {
            rtt_p50_us: rtt.p50_us,
            rtt_p99_us: rtt.p99_us,
            ..t
        }
    });
    r.listen = f.listen;
    // Costs.
    r.server = total.server;
    r.server_source = total.server_source.clone();
    r.client_cpu_s = total.client_cpu_s;
    r.client_rss_kib = total.client_rss_kib;
    r.client_thread_busy_max = total.busiest_thread;
    r.client_thread_work_max = total.busiest_work;
    // What the shards found, and how the run ended.
    r.shards = f.shards.clone();
    r.keep_up = f.keep_up.clone();
    r.achieved_rate = f.achieved_rate;
    r.warnings = f.warnings.clone();
    // Tested only where Poisson was promised, as one process's report does.
    let poisson = total.config.settings.as_ref().and_then(|s| s.arrivals.as_deref()) == Some("poisson");
    r.arrivals_check = poisson.then(|| crate::run::check_gaps(&f.send_gaps)).flatten();
    r.warnings.extend(r.arrivals_check.filter(|a| !a.ok).map(|a| {
        format!(
            "the sends did not look Poisson over the shards (Kolmogorov-Smirnov p {:.4} on {} gaps); each shard's own report names the cause",
            a.p_value, a.gaps
        )
    }));
    if let Some((spec, _)) = &r.settings.stages {
        // The logs hold latency per interval but no counts per stage: not a row per stage.
        r.warnings.push(format!(
            "the shards ran in stages ({spec}): this merged report is the whole run, without a row per stage; each shard's own report (run without --procs, or its --shard's --csv) has them"
        ));
    }
    r.status = if total.counters.msgs == 0 {
        Status::Failed
    } else {
        total.status
    };
    r.stop_reason = total.stop_reason.clone();
    r
}

/// The report of logs that loadgen's shards did not write: only what the histograms say.
fn plain_report(m: &Merged, sources: &str, label: &str) -> Report {
    let msgs = m.latency.len();
    let mut r = Report::empty("merged", sources, None);
    r.label = label.to_string();
    r.mode = if m.raw.is_some() { Mode::Open } else { Mode::Closed };
    r.set_counts(
        Counters {
            msgs,
            ..Counters::default()
        },
        m.span.as_secs_f64(),
    );
    let intervals = m
        .intervals
        .iter()
        .map(|(start, len, h)| IntervalRow {
            t_s: (*start + *len).as_secs_f64(),
            msgs_s: h.len() as f64 / len.as_secs_f64().max(1e-9),
            p50_us: Percentiles::of(h).p50_us,
            p99_us: Percentiles::of(h).p99_us,
            errors: 0,
        })
        .collect();
    r.set_latency(&m.latency, m.raw.as_ref(), intervals);
    r.status = if msgs > 0 { Status::Ok } else { Status::Failed };
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::hlog::LoggedInterval;

    fn iv(start_ms: u64, values: &[u64]) -> LoggedInterval {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        LoggedInterval {
            start: Duration::from_millis(start_ms),
            length: Duration::from_secs(1),
            tag: None,
            histogram: h,
        }
    }

    #[test]
    fn merges_hosts_exactly_and_aligns_intervals() {
        let host_a = vec![iv(10_000, &[1000, 2000]), iv(11_000, &[3000])];
        let host_b = vec![iv(10_000, &[4000]), iv(11_000, &[5000, 6000, 7000])];
        let m = merge(&[host_a, host_b]);
        assert_eq!(m.latency.len(), 7);
        assert_eq!(m.span, Duration::from_secs(2));
        assert_eq!(m.intervals.len(), 2);
        assert_eq!(m.intervals[1].2.len(), 4);
        let r = report(&m, "a b", "", None);
        assert_eq!(r.throughput_msgs_s, 3.5);
        // Two ms apart, as shards started together log them: still one interval each.
        let skewed = merge(&[vec![iv(10_000, &[1000])], vec![iv(10_002, &[2000, 3000])]]);
        assert_eq!(skewed.intervals.len(), 1);
        assert_eq!(skewed.intervals[0].2.len(), 3);
        assert!((r.latency.max_us - 7.0).abs() < 0.01, "3 significant digits");
    }
}
