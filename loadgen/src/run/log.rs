//! The run's interval log (`--hdr-log`): opened with the run's stamp (and its stages)
//! before any load, an interval written as each completes, and closed with what merging
//! shards needs (the other histograms, the shard's result).

use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

use super::aggregate::Aggregator;
use crate::config::RunConfig;
use crate::measure::hlog::{self, HlogWriter};
use crate::measure::record::Interval;
use crate::report::shard;
use crate::run::driver::ThreadOutput;

/// The interval log `--hdr-log` asks for, opened before any load (and after the target
/// could be reached): one that cannot be opened is the flag's fault (exit 2), said by name.
/// Created once the run can go, so an unreachable target leaves no file (exit 3); it opens
/// with the run's stamp. Returns it with the instant its times count from.
pub(super) fn open_hlog(cfg: &RunConfig, target: &str) -> anyhow::Result<(Option<HlogWriter>, Instant)> {
    let Some(path) = &cfg.hdr_log else {
        return Ok((None, Instant::now()));
    };
    let mut log = HlogWriter::create(path, SystemTime::now())
        .map_err(|e| crate::error::flag_error("--hdr-log", path.display(), format!("{e:#}")))?;
    let created = Instant::now();
    log.comment(&shard::run_note(&shard::RunStamp::of(cfg, target)));
    if let Some(p) = &cfg.stages {
        log.comment(&p.log_note(if cfg.rate.is_some() { "rate" } else { "conns" }));
    }
    Ok((Some(log), created))
}

/// The run's histograms besides latency, by their tags in a shard's log (the empty ones
/// left out): what a merge needs to report them exactly.
pub(super) fn tagged_histograms(total: &Interval, outputs: &[ThreadOutput]) -> Vec<(&'static str, Histogram<u64>)> {
    let merged = |pick: fn(&ThreadOutput) -> &Histogram<u64>| {
        let mut h = crate::measure::record::new_histogram();
        for out in outputs {
            // Same bounds on both sides: `add` cannot fail.
            let _ = h.add(pick(out));
        }
        h
    };
    let mut rtt = crate::measure::record::new_histogram();
    for t in outputs.iter().filter_map(|o| o.tcp.as_ref()) {
        for &us in &t.rtt_us {
            rtt.saturating_record(u64::from(us) * 1000);
        }
    }
    let tagged = [
        (shard::CONNECT_TAG, merged(|o| &o.connect)),
        (shard::FIRST_BYTE_TAG, merged(|o| &o.first_byte)),
        (shard::RX_DELAY_TAG, total.rx_delay.clone()),
        (shard::SEND_LAG_TAG, total.send_lag.clone()),
        (shard::CLIENT_LAG_TAG, total.client_lag.clone()),
        (shard::BACKPRESSURE_TAG, total.backpressure.clone()),
        (shard::RTT_TAG, rtt),
    ];
    // connect stays even when empty: a shard with no connect is worth saying so.
    tagged
        .into_iter()
        .filter(|(tag, h)| *tag == shard::CONNECT_TAG || !h.is_empty())
        .collect()
}

/// Ends the interval log: what merging shards needs besides the latency histograms (the
/// other histograms, the shard's result), once the window is known (`window`: its offset
/// in the log and its length).
pub(super) fn close_log(
    mut log: HlogWriter,
    window: Option<(Duration, Duration)>,
    tagged: &[(&'static str, Histogram<u64>)],
    result: &shard::ShardResult,
) -> Result<(), String> {
    if let Some((offset, measured)) = window {
        for (tag, h) in tagged {
            log.interval(offset, measured, h, Some(tag));
        }
        log.comment(&shard::result_note(result));
    }
    log.finish()
}

/// Folds every interval all threads have reported (all of them once `measured` is known,
/// at the end) into the totals, writing each to the interval log. `offset`: the window's
/// start after the log's base time (known once the load has started).
pub(super) fn complete_intervals(
    agg: &mut Aggregator,
    mut log: Option<&mut HlogWriter>,
    cfg: &RunConfig,
    offset: Option<Duration>,
    measured: Option<Duration>,
) {
    while agg.complete_next(measured.is_some(), |iv| {
        if let (Some(log), Some(offset)) = (log.as_deref_mut(), offset) {
            log_interval(log, iv, cfg, offset, measured);
        }
    }) {}
}

fn log_interval(log: &mut HlogWriter, iv: &Interval, cfg: &RunConfig, offset: Duration, measured: Option<Duration>) {
    let start = cfg.interval * iv.index.unwrap_or(0);
    let end = measured.unwrap_or(cfg.duration).min(start + cfg.interval);
    if end <= start {
        return; // an interval begun after the run was stopped
    }
    log.interval(offset + start, end - start, &iv.latency, None);
    if cfg.rate.is_some() {
        log.interval(offset + start, end - start, &iv.raw, Some(hlog::RAW_TAG));
    }
}
