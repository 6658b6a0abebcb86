//! One load run from start to finish: start the target, run the client threads, watch for
//! faults (Ctrl-C, SIGTERM, the server dying), measure the server's and the client's cost,
//! merge the threads' records and build the [`Report`].
//!
//! The run never hangs and never loses what it measured: on a fault it tells the threads to
//! stop (they notice within milliseconds), and the report holds everything recorded until
//! then, with status `partial`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::RunConfig;
use crate::driver::{assign, run_thread, DriverConfig, Shared, ThreadOutput};
use crate::hlog::{self, HlogWriter};
use crate::probe::{self, ProcSample, SelfUsage};
use crate::report::{
    closed_loop_verdict, keep_up_verdict, Environment, IntervalRow, Report, ServerCost, Status, SCHEMA,
};
use crate::schedule::Schedule;
use crate::stats::{new_histogram, Fairness, Interval, Percentiles};
use crate::{limits, target};

/// How often the main thread checks for faults and samples the server.
const TICK: Duration = Duration::from_millis(50);
/// With no connection open for this long after the start, the server is taken as gone.
const ALL_DOWN_LIMIT: Duration = Duration::from_secs(1);

/// Merges the threads' intervals by index.
#[derive(Debug)]
pub struct Aggregator {
    /// Warmup (and connect phase) counts.
    pub warmup: Interval,
    /// Window intervals by index, merged over threads.
    pub intervals: BTreeMap<u32, Interval>,
    /// How many threads have reported each interval.
    arrivals: BTreeMap<u32, usize>,
    /// Threads reporting.
    threads: usize,
    /// Next interval to hand out as complete.
    next_complete: u32,
}

impl Aggregator {
    /// An aggregator for `threads` reporting threads.
    pub fn new(threads: usize) -> Self {
        Aggregator {
            warmup: Interval::new(None),
            intervals: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            threads,
            next_complete: 0,
        }
    }

    /// Adds one thread's interval.
    pub fn add(&mut self, iv: &Interval) {
        match iv.index {
            None => self.warmup.merge(iv),
            Some(i) => {
                self.intervals
                    .entry(i)
                    .or_insert_with(|| Interval::new(Some(i)))
                    .merge(iv);
                *self.arrivals.entry(i).or_default() += 1;
            }
        }
    }

    /// The next interval every thread has reported, in order (each returned once). With
    /// `all`, also those still missing a thread (at the end of a run).
    pub fn next_complete(&mut self, all: bool) -> Option<&Interval> {
        let i = self.next_complete;
        let ready = self.arrivals.get(&i).is_some_and(|&n| n >= self.threads)
            || (all && self.intervals.range(i..).next().is_some());
        if !ready {
            return None;
        }
        let (&idx, _) = self.intervals.range(i..).next()?;
        self.next_complete = idx + 1;
        self.intervals.get(&idx)
    }

    /// Everything merged: window latencies, and counts of warmup and window together for
    /// errors (window only for messages).
    pub fn total(&self) -> Interval {
        let mut total = Interval::new(None);
        for iv in self.intervals.values() {
            total.merge(iv);
        }
        let w = self.warmup.counters;
        let c = &mut total.counters;
        c.connect_errors += w.connect_errors;
        c.timeouts += w.timeouts;
        c.resets += w.resets;
        c.mismatches += w.mismatches;
        c.other_errors += w.other_errors;
        total
    }

    /// Per-interval series; the last interval may be shorter than `interval`.
    pub fn rows(&self, interval: Duration, measured: Duration) -> Vec<IntervalRow> {
        let len = interval.as_secs_f64();
        let measured = measured.as_secs_f64();
        self.intervals
            .iter()
            .filter_map(|(&i, iv)| {
                let start = f64::from(i) * len;
                let end = (start + len).min(measured);
                (end > start).then(|| IntervalRow {
                    t_s: end,
                    msgs_s: iv.counters.msgs as f64 / (end - start),
                    p50_us: Percentiles::of(&iv.latency).p50_us,
                    p99_us: Percentiles::of(&iv.latency).p99_us,
                    errors: iv.counters.errors(),
                })
            })
            .collect()
    }
}

/// Runs one load run. Errors only when it could not run at all (bad limits, target does
/// not start, address unreachable); faults during the run end up in the report's status.
pub fn run(cfg: &RunConfig) -> anyhow::Result<Report> {
    limits::ensure_descriptors(cfg.conns, cfg.threads)?;
    let started_at = SystemTime::now();
    let mut hlog = match &cfg.hdr_log {
        Some(path) => Some(HlogWriter::create(path, started_at)?),
        None => None,
    };
    let created = Instant::now();
    let mut target = target::start(cfg)?;
    let interrupted = crate::signals::flag();

    let plan = assign(cfg.conns, cfg.threads);
    let shared = Arc::new(Shared::new(plan.len()));
    let dcfg = Arc::new(DriverConfig {
        addr: target.addr.clone(),
        msg_size: cfg.msg_size,
        depth: cfg.depth,
        schedule: cfg.schedule(),
        warmup: cfg.warmup,
        duration: cfg.duration,
        interval: cfg.interval,
        timeout: cfg.timeout,
        connect_timeout: cfg.connect_timeout,
        pin: cfg.pin_client.clone(),
        bind: cfg.bind.clone(),
    });
    let (tx, rx) = mpsc::channel::<Interval>();
    let mut handles = Vec::with_capacity(plan.len());
    for (i, ids) in plan.into_iter().enumerate() {
        let (dcfg, shared, tx) = (Arc::clone(&dcfg), Arc::clone(&shared), tx.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || run_thread(ids, &dcfg, &shared, &tx))
                .context("cannot start a client thread")?,
        );
    }
    drop(tx);

    let server_pid = target.server.as_ref().map(|s| s.pid()).or(cfg.server_pid);
    let progress = Progress::new(cfg);
    let mut agg = Aggregator::new(handles.len());
    let mut stop: Option<(Instant, String)> = None;
    let mut snap_start: Option<(SelfUsage, Option<ProcSample>)> = None;
    let mut snap_end: Option<(SelfUsage, Option<ProcSample>)> = None;
    let mut last_server: Option<ProcSample> = None;
    let mut peak_threads = 0;
    let mut all_down_since: Option<Instant> = None;
    loop {
        for iv in rx.try_iter() {
            agg.add(&iv);
        }
        if let (Some(log), Some(&start)) = (hlog.as_mut(), shared.start.get()) {
            log_intervals(
                log,
                &mut agg,
                cfg,
                start.saturating_duration_since(created) + cfg.warmup,
                None,
            )?;
        }
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
        let now = Instant::now();
        if let Some(pid) = server_pid {
            if let Some(s) = probe::sample(pid) {
                peak_threads = peak_threads.max(s.threads);
                last_server = Some(s);
            }
        }
        // Every connection down (after the start) for a while: the server went away, even
        // when it is not our child (--addr).
        all_down_since = match (shared.start.get(), shared.up.load(Ordering::Relaxed)) {
            (Some(_), 0) => all_down_since.or(Some(now)),
            _ => None,
        };
        if stop.is_none() {
            let reason = if interrupted.load(Ordering::Relaxed) {
                Some("interrupted".to_string())
            } else if let Some(st) = target.server.as_mut().and_then(|s| s.exited()) {
                Some(format!("the server exited ({st})"))
            } else {
                all_down_since
                    .filter(|t| now.duration_since(*t) >= ALL_DOWN_LIMIT)
                    .map(|_| format!("no connection to the server for {ALL_DOWN_LIMIT:?}"))
            };
            if let Some(reason) = reason {
                shared.stop.store(true, Ordering::Relaxed);
                stop = Some((now, reason));
            }
        }
        let mut sleep = TICK;
        if let Some(&start) = shared.start.get() {
            let window_start = start + cfg.warmup;
            let window_end = window_start + cfg.duration;
            if snap_start.is_none() {
                if now >= window_start {
                    snap_start = Some((probe::self_usage(), server_pid.and_then(probe::sample)));
                } else {
                    sleep = sleep.min(window_start - now);
                }
            }
            if snap_end.is_none() {
                if now >= window_end {
                    snap_end = Some((probe::self_usage(), server_pid.and_then(probe::sample)));
                } else {
                    sleep = sleep.min(window_end - now);
                }
            }
            progress.update(now.saturating_duration_since(start), &agg);
        }
        std::thread::sleep(sleep);
    }
    progress.finish();
    let mut outputs: Vec<ThreadOutput> = Vec::new();
    let mut thread_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok(out)) => outputs.push(out),
            Ok(Err(e)) => thread_error = Some(format!("a client thread failed: {e}")),
            Err(_) => thread_error = Some("a client thread panicked".to_string()),
        }
    }
    for iv in rx.try_iter() {
        agg.add(&iv);
    }
    let end_usage = (probe::self_usage(), server_pid.and_then(probe::sample).or(last_server));
    let snap_end = snap_end.unwrap_or(end_usage);
    let final_server = server_pid.and_then(probe::sample).or(last_server);
    if let Some(server) = target.server.as_mut() {
        server.stop();
    }

    // The measured window: from the end of warmup to the planned end or the stop.
    let start = shared.start.get().copied();
    let measured = match (start, &stop) {
        (None, _) => Duration::ZERO,
        (Some(s), Some((at, _))) => at.saturating_duration_since(s + cfg.warmup).min(cfg.duration),
        (Some(_), None) => cfg.duration,
    };
    if let (Some(log), Some(start)) = (hlog.as_mut(), start) {
        log_intervals(
            log,
            &mut agg,
            cfg,
            start.saturating_duration_since(created) + cfg.warmup,
            Some(measured),
        )?;
    }
    let total = agg.total();
    let mut connect = new_histogram();
    let mut per_conn: Vec<(u32, u64)> = Vec::with_capacity(cfg.conns);
    let mut conns_ok = 0;
    for out in &outputs {
        let _ = connect.add(&out.connect);
        per_conn.extend_from_slice(&out.per_conn);
        conns_ok += out.conns_ok;
    }
    per_conn.sort_unstable();
    let counts: Vec<u64> = per_conn.iter().map(|&(_, n)| n).collect();
    let secs = measured.as_secs_f64();
    let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    let client_cpu_s = match snap_start {
        Some((a, _)) => snap_end.0.cpu.saturating_sub(a.cpu).as_secs_f64(),
        None => 0.0,
    };
    let server = server_pid.map(|_| ServerCost {
        cpu_s: match (snap_start.and_then(|s| s.1), snap_end.1) {
            (Some(a), Some(b)) => (b.cpu_s - a.cpu_s).max(0.0),
            _ => 0.0,
        },
        peak_rss_kib: final_server.map_or(0, |s| s.peak_rss_kib),
        peak_threads,
    });
    let c = total.counters;
    let stop_reason = stop.map(|(_, r)| r).or(thread_error.clone());
    let status = if conns_ok == 0 && c.msgs == 0 {
        Status::Failed
    } else if stop_reason.is_some() {
        Status::Partial
    } else if c.errors() > 0 {
        Status::Errors
    } else {
        Status::Ok
    };
    let open = matches!(cfg.schedule(), Schedule::Open { .. });
    let busiest = outputs.iter().map(|o| o.window_cpu.as_secs_f64()).fold(0.0, f64::max) / secs.max(1e-9);
    let send_lag = open.then(|| Percentiles::of(&total.send_lag));
    let achieved_rate = open.then(|| rate(c.sent as f64));
    let keep_up = match (cfg.rate, achieved_rate, send_lag) {
        (Some(r), Some(a), Some(lag)) if secs > 0.0 => keep_up_verdict(r, a, lag.p99_us, busiest),
        (None, _, _) if secs > 0.0 => closed_loop_verdict(busiest),
        _ => None,
    };
    Ok(Report {
        schema: SCHEMA,
        timestamp: humantime::format_rfc3339_seconds(started_at).to_string(),
        label: cfg.label.clone(),
        target: target.name.clone(),
        addr: target.addr.to_string(),
        transport: target.addr.transport().to_string(),
        mode: if open { "open" } else { "closed" }.to_string(),
        conns: cfg.conns,
        msg_size: cfg.msg_size,
        depth: cfg.depth,
        rate: cfg.rate,
        duration_s: secs,
        warmup_s: cfg.warmup.as_secs_f64(),
        counters: c,
        throughput_msgs_s: rate(c.msgs as f64),
        throughput_mib_s: rate(c.bytes as f64 / (1024.0 * 1024.0)),
        latency: Percentiles::of(&total.latency),
        raw: open.then(|| Percentiles::of(&total.raw)),
        send_lag,
        connect: Percentiles::of(&connect),
        conns_ok,
        server,
        client_cpu_s,
        client_rss_kib: end_usage.0.peak_rss_kib,
        client_thread_busy_max: busiest,
        achieved_rate,
        keep_up,
        status,
        stop_reason,
        fairness: Fairness::of(&counts),
        starved_conns: per_conn
            .iter()
            .filter(|&&(_, n)| n == 0)
            .map(|&(id, _)| id)
            .take(20)
            .collect(),
        intervals: agg.rows(cfg.interval, measured),
        env: Environment {
            pin_server: cfg.pin_server.clone(),
            pin_client: cfg.pin_client.clone(),
            ..Environment::detect()
        },
    })
}

/// Writes the intervals every thread has reported (all of them once `measured` is known,
/// at the end) to the interval log. `offset`: window start after the log's base time.
fn log_intervals(
    log: &mut HlogWriter,
    agg: &mut Aggregator,
    cfg: &RunConfig,
    offset: Duration,
    measured: Option<Duration>,
) -> anyhow::Result<()> {
    let open = cfg.rate.is_some();
    while let Some(iv) = agg.next_complete(measured.is_some()) {
        let idx = iv.index.unwrap_or(0);
        let start = cfg.interval * idx;
        let end = measured.unwrap_or(cfg.duration).min(start + cfg.interval);
        if end <= start {
            continue; // an interval begun after the run was stopped
        }
        log.interval(offset + start, end - start, &iv.latency, None)?;
        if open {
            log.interval(offset + start, end - start, &iv.raw, Some(hlog::RAW_TAG))?;
        }
    }
    Ok(())
}

/// The live progress line on stderr (only when it is a terminal).
struct Progress {
    bar: Option<ProgressBar>,
    warmup: Duration,
    interval: Duration,
}

impl Progress {
    fn new(cfg: &RunConfig) -> Self {
        let bar = (!cfg.quiet && std::io::stderr().is_terminal()).then(|| {
            let total = (cfg.warmup + cfg.duration).as_millis() as u64;
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            warmup: cfg.warmup,
            interval: cfg.interval,
        }
    }

    fn update(&self, elapsed: Duration, agg: &Aggregator) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(elapsed.as_millis() as u64);
        let msg = match agg.intervals.last_key_value() {
            None => format!("warmup {:.1}s", self.warmup.as_secs_f64()),
            Some((_, iv)) => {
                let errors: u64 =
                    agg.warmup.counters.errors() + agg.intervals.values().map(|iv| iv.counters.errors()).sum::<u64>();
                format!(
                    "{:.0} msg/s  p99 {:.0} us  errors {errors}",
                    iv.counters.msgs as f64 / self.interval.as_secs_f64(),
                    Percentiles::of(&iv.latency).p99_us,
                )
            }
        };
        bar.set_message(msg);
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
