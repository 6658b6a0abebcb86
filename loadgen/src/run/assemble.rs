//! The report of a run, assembled from what the run measured: merged records, the threads'
//! outputs, the cost readings, and how it ended.

use std::time::{Duration, SystemTime};

use super::arrivals::{check_gaps, pooled_gaps};
use super::verdict;
use crate::config::{Churn, RunConfig};
use crate::measure::record::{new_histogram, Fairness, Interval, Percentiles};
use crate::report::{server_workers, Environment, IntervalRow, Report, ServerCost, TcpStats};
use crate::run::driver::ThreadOutput;
use crate::run::target::Target;
use hdrhistogram::Histogram;

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
    /// The client's machine in the window.
    pub(super) machine: Option<crate::report::MachineUse>,
    pub(super) client_rss_kib: u64,
    pub(super) server: Option<ServerCost>,
    /// How the server's process was found, when loadgen did not start it.
    pub(super) server_source: Option<String>,
    /// Why the run stopped early, if it did.
    pub(super) stop_reason: Option<String>,
    /// Accept-queue overflows on this machine during the run (`TcpExtListenOverflows`).
    pub(super) listen_overflows: u64,
    /// The server's listeners, when they are in this network namespace.
    pub(super) backlog: Option<crate::os::listener::Backlog>,
    /// TCP segments retransmitted on this machine during the run (`RetransSegs`).
    pub(super) tcp_retransmits: u64,
    /// Datagrams dropped by full UDP receive buffers on this machine during the run.
    pub(super) udp_rcvbuf_drops: u64,
    /// Open loop: this machine's timer floor (p99 µs), which the pacing verdict speaks against.
    pub(super) timer_floor_p99_us: Option<f64>,
}

/// What the client threads handed back, merged: connect and first-byte times, messages
/// per connection (sorted by id), connections open when the load started.
struct Gathered {
    connect: Histogram<u64>,
    first_byte: Histogram<u64>,
    per_conn: Vec<(u32, u64)>,
    conns_ok: usize,
}

fn gather(outputs: &[ThreadOutput], conns: usize) -> Gathered {
    let mut g = Gathered {
        connect: new_histogram(),
        first_byte: new_histogram(),
        per_conn: Vec::with_capacity(conns),
        conns_ok: 0,
    };
    for out in outputs {
        // Same bounds on both sides: `add` cannot fail.
        let _ = g.connect.add(&out.connect);
        let _ = g.first_byte.add(&out.first_byte);
        g.per_conn.extend_from_slice(&out.per_conn);
        g.conns_ok += out.conns_ok;
    }
    g.per_conn.sort_unstable();
    g
}

/// The cores client and server share (a server on this machine is one whose process was
/// measured): advice about a saturated client depends on them. The server's busy threads
/// are its workers when loadgen started it (its other threads wait), else the threads
/// observed.
pub(super) fn room(cfg: &RunConfig, server: Option<ServerCost>) -> verdict::Room {
    verdict::Room {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        client_threads: cfg.threads,
        server_threads: server
            .and_then(|s| s.peak_threads)
            .map(|t| server_workers(cfg).unwrap_or(t as usize)),
    }
}

/// TCP_INFO over the threads: retransmissions summed, RTTs merged into percentiles.
fn tcp_stats(outputs: &[ThreadOutput]) -> Option<TcpStats> {
    let mut rtts: Vec<u32> = Vec::new();
    let mut retransmits = 0;
    let mut any = false;
    for t in outputs.iter().filter_map(|o| o.tcp.as_ref()) {
        any = true;
        retransmits += t.retransmits;
        rtts.extend_from_slice(&t.rtt_us);
    }
    if !any {
        return None;
    }
    rtts.sort_unstable();
    let at = |q: f64| {
        rtts.get(((rtts.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |&v| f64::from(v))
    };
    Some(TcpStats {
        retransmits,
        rtt_p50_us: at(0.5),
        rtt_p99_us: at(0.99),
        conns: rtts.len(),
    })
}

/// Whether connections are slots opened as the load asks, not up front, and not fairly
/// comparable with each other: `--conn-rate`'s, and `--stages` of connections.
fn slotted(cfg: &RunConfig) -> bool {
    matches!(cfg.churn, Churn::ConnRate { .. }) || (cfg.stages.is_some() && cfg.rate.is_none())
}

/// What a report derives from the run's parts before writing them down: the threads'
/// outputs merged, what each connection was due, and how the schedule was kept.
struct Derived {
    gathered: Gathered,
    /// Open loop: messages each connection was due in the window.
    due: Option<Vec<u64>>,
    secs: f64,
    busiest: f64,
    busiest_work: f64,
    sched: ScheduleKept,
    /// `--conn-rate`: connections are slots, neither opened up front nor fairly comparable.
    slots: bool,
}

fn derive(p: &Parts<'_>) -> Derived {
    let cfg = p.cfg;
    let gathered = gather(p.outputs, cfg.my_conns());
    let schedule = cfg.schedule();
    let window_ns = (
        cfg.warmup.as_nanos() as u64,
        (cfg.warmup + p.measured).as_nanos() as u64,
    );
    let due: Option<Vec<u64>> = gathered
        .per_conn
        .iter()
        .map(|&(id, _)| schedule.due_between(id, window_ns.0, window_ns.1))
        .collect();
    let secs = p.measured.as_secs_f64();
    let room = room(cfg, p.server);
    // A thread that spins to pace its sends is busy but not saturated: judged on its work.
    let busiest_work = busiest_thread(p.outputs, secs, true);
    let sched = schedule_kept(p, due.as_deref(), busiest_work, &room);
    Derived {
        busiest: busiest_thread(p.outputs, secs, false),
        slots: slotted(cfg),
        gathered,
        due,
        secs,
        busiest_work,
        sched,
    }
}

/// Builds the report: what it derives from the parts, written down, then the verdicts that
/// read the written report.
pub(super) fn report(p: Parts<'_>) -> Report {
    let d = derive(&p);
    let lags = d.sched.lags;
    let conns_ok = d.gathered.conns_ok;
    let mut report = write_down(p, d);
    report
        .warnings
        .extend(report.arrivals_check.and_then(|a| verdict::arrivals_verdict(&a, lags)));
    // Unserved connections come first: they explain a rate not kept or a late client
    // before any advice about the client's CPU or pacing does.
    if let Some(starved) = verdict::starved_verdict(report.fairness.starved, conns_ok, &report.target) {
        if let Some(keep_up) = report.keep_up.as_mut() {
            *keep_up = format!(
                "{} of {conns_ok} connections were never served (below), which no client setting changes; {keep_up}",
                report.fairness.starved
            );
        }
        report.warnings.insert(0, starved);
    }
    report
}

/// The report's record: the configuration, then what was measured and derived.
fn write_down(mut p: Parts<'_>, d: Derived) -> Report {
    let cfg = p.cfg;
    let c = p.total.counters;
    let Gathered {
        connect,
        first_byte,
        per_conn,
        conns_ok,
    } = d.gathered;
    let mut r = Report::of_run(
        cfg,
        &p.target.name,
        &p.target.addr.to_string(),
        Some(p.target.addr.transport()),
    );
    r.timestamp = humantime::format_rfc3339_seconds(p.started_at).to_string();
    r.set_counts(c, d.secs);
    let open = cfg.mode() == crate::measure::schedule::Mode::Open;
    r.set_latency(
        &p.total.latency,
        open.then_some(&p.total.raw),
        std::mem::take(&mut p.intervals),
    );
    // The machine as `Report::empty` read it, with what this run set on it.
    r.env.pin_server = cfg.pin_server.clone();
    r.env.pin_client = cfg.pin_client.clone();
    r.env.timer_late_p99_us = p.timer_floor_p99_us;
    r.warnings = warnings(&p, conns_ok, &connect, &r.env, r.latency.p99_us);
    // The open loop's schedule and the connections.
    r.send_lag = d.sched.send_lag;
    r.client_lag = d.sched.client_lag;
    r.backpressure = d.sched.backpressure;
    r.achieved_rate = d.sched.achieved_rate;
    r.keep_up = d.sched.keep_up;
    r.connect = Percentiles::of(&connect);
    r.first_byte = Percentiles::of(&first_byte);
    r.conns_ok = conns_ok;
    r.fairness = fairness(&per_conn, d.due.as_deref(), d.slots);
    r.starved_conns = starved(&per_conn, d.due.as_deref(), d.slots);
    // Costs.
    r.server = p.server;
    r.server_source = p.server_source;
    r.client_cpu_s = p.client_cpu_s;
    r.client_rss_kib = p.client_rss_kib;
    r.machine = p.machine;
    r.client_thread_busy_max = d.busiest;
    r.client_thread_work_max = d.busiest_work;
    // The wire and the machine.
    r.tcp = tcp_stats(p.outputs);
    r.listen = p.backlog.or(p.server.and_then(|s| s.listen));
    r.rx_delay = (!p.total.rx_delay.is_empty()).then(|| Percentiles::of(&p.total.rx_delay));
    r.arrivals_check = (cfg.arrivals == crate::measure::schedule::Arrival::Poisson)
        .then(|| check_gaps(&pooled_gaps(p.outputs)))
        .flatten();
    // How it ended.
    r.status = verdict::status(
        if d.slots { cfg.my_conns() } else { conns_ok },
        &c,
        p.stop_reason.is_some(),
        d.sched.behind,
    );
    r.stop_reason = p.stop_reason;
    r
}

/// The run's findings about the machine and the wire: connections that did not open,
/// ports, UDP fragments and receive buffers, the accept queue, packet loss, the client's
/// pacing against the machine's timer floor.
fn warnings(
    p: &Parts<'_>,
    conns_ok: usize,
    connect: &Histogram<u64>,
    env: &Environment,
    latency_p99_us: f64,
) -> Vec<String> {
    let cfg = p.cfg;
    let open = cfg.mode() == crate::measure::schedule::Mode::Open;
    let slotted = slotted(cfg);
    [
        (!slotted)
            .then(|| verdict::unopened_verdict(cfg.my_conns(), conns_ok, &p.total.counters))
            .flatten(),
        verdict::ports_verdict(&p.total.counters),
        (cfg.transport == crate::config::SockKind::Icmp)
            .then(|| verdict::raw_icmp_verdict(cfg.my_conns()))
            .flatten(),
        cfg.is_datagram()
            .then(|| verdict::fragment_verdict(cfg.msg_size + cfg.wire_prefix()))
            .flatten(),
        cfg.is_udp()
            .then(|| verdict::rcvbuf_verdict(p.udp_rcvbuf_drops, p.total.counters.lost))
            .flatten(),
        verdict::backlog_verdict(p.listen_overflows, Percentiles::of(connect).max_us, p.backlog),
        // The larger of the machine's count and the client connections' own: on loopback
        // the server's retransmissions count only machine-wide, and a client segment an
        // output filter drops fails locally and is resent without counting in TCP_INFO.
        verdict::loss_verdict(
            if open { &p.total.raw } else { &p.total.latency },
            tcp_stats(p.outputs).map_or(p.tcp_retransmits, |t| t.retransmits.max(p.tcp_retransmits)),
        ),
        open.then(|| {
            // Only `sleep` is as late as the wake-up of an idle vCPU (measured: halt polling
            // halved its lag, and left hybrid's, whose margin covers the median, as it was).
            let halt_poll_ns = env.halt_poll_ns.filter(|_| cfg.pacing == crate::config::Pacing::Sleep);
            verdict::pacing_verdict(&p.total.client_lag, latency_p99_us, halt_poll_ns, p.timer_floor_p99_us)
        })
        .flatten(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The busiest client thread's share of a core over `secs`: its CPU, or with `work` its
/// CPU less the time it spun to pace its sends.
fn busiest_thread(outputs: &[ThreadOutput], secs: f64, work: bool) -> f64 {
    outputs
        .iter()
        .map(|o| {
            let spin = if work { o.window_spin } else { std::time::Duration::ZERO };
            o.window_cpu.saturating_sub(spin).as_secs_f64()
        })
        .fold(0.0, f64::max)
        / secs.max(1e-9)
}

/// How an open loop kept its schedule: the lateness percentiles (none in closed loop), the
/// rates achieved, and the keep-up verdict (or, in closed loop, the bottleneck's).
struct ScheduleKept {
    send_lag: Option<Percentiles>,
    client_lag: Option<Percentiles>,
    backpressure: Option<Percentiles>,
    lags: verdict::Lags,
    achieved_rate: Option<f64>,
    keep_up: Option<String>,
    /// Open loop: sent under `BEHIND_SHARE` of the rate promised to this process.
    behind: bool,
}

fn schedule_kept(p: &Parts<'_>, due: Option<&[u64]>, busiest_work: f64, room: &verdict::Room) -> ScheduleKept {
    let cfg = p.cfg;
    let open = cfg.mode() == crate::measure::schedule::Mode::Open;
    let secs = p.measured.as_secs_f64();
    let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    let c = p.total.counters;
    let send_lag = open.then(|| Percentiles::of(&p.total.send_lag));
    let client_lag = open.then(|| Percentiles::of(&p.total.client_lag));
    let backpressure = open.then(|| Percentiles::of(&p.total.backpressure));
    let lags = verdict::Lags {
        total_p99_us: send_lag.map_or(0.0, |l| l.p99_us),
        client_p99_us: client_lag.map_or(0.0, |l| l.p99_us),
        backpressure_p99_us: backpressure.map_or(0.0, |l| l.p99_us),
    };
    let conn_rate_s = c.rates(secs).conns_s;
    let conn_rate = match cfg.churn {
        Churn::ConnRate { rate, .. } => Some(rate),
        _ => None,
    };
    let mut behind = false;
    let keep_up = match (cfg.rate, conn_rate) {
        _ if secs <= 0.0 => None,
        // Poisson: a seeded sample of the process, whose count in the window is itself random
        // (sd 1% at 10,000 messages): judged against what its schedule held.
        (Some(r), _) => {
            // A shard sends its connections' share of the run's rate.
            let promised = match (due, cfg.arrivals, &cfg.stages) {
                (Some(due), crate::measure::schedule::Arrival::Poisson, _) => rate(due.iter().sum::<u64>() as f64),
                // Stages (no warm-up): what they offered in the window that ran, all of it or
                // up to a stop.
                (_, _, Some(p)) => rate(p.area_until(secs * 1e9)) * cfg.my_conns() as f64 / cfg.conns.max(1) as f64,
                _ => r * cfg.my_conns() as f64 / cfg.conns.max(1) as f64,
            };
            let sent = verdict::sent_rate(c.sent, secs, p.stop_reason.is_some());
            behind = sent < crate::report::BEHIND_SHARE * promised;
            verdict::keep_up_verdict(promised, sent, "msg/s", lags, busiest_work, room)
        }
        // A shard makes its share of the arrivals (see the driver).
        (None, Some(r)) => {
            let promised = r / f64::from(cfg.shard.count.max(1));
            verdict::keep_up_verdict(promised, conn_rate_s, "new connections/s", lags, busiest_work, room)
        }
        _ => verdict::closed_loop_verdict(busiest_work, room),
    };
    ScheduleKept {
        send_lag,
        client_lag,
        backpressure,
        lags,
        achieved_rate: cfg.rate.map(|_| rate(c.sent as f64)),
        keep_up,
        behind,
    }
}

/// Messages per connection against each one's schedule (open loop) or each other; none for
/// `--conn-rate`'s slots, which are neither opened up front nor comparable.
fn fairness(per_conn: &[(u32, u64)], due: Option<&[u64]>, slots: bool) -> Fairness {
    let counts: Vec<u64> = per_conn.iter().map(|&(_, n)| n).collect();
    match (due, slots) {
        (_, true) => Fairness::default(),
        (Some(due), false) => {
            Fairness::against_schedule(&counts.iter().copied().zip(due.iter().copied()).collect::<Vec<_>>())
        }
        (None, false) => Fairness::of(&counts),
    }
}

/// The connections that got nothing in the window although due at least twice (at most
/// [`STARVED_LISTED`] of them).
fn starved(per_conn: &[(u32, u64)], due: Option<&[u64]>, slots: bool) -> Vec<u32> {
    per_conn
        .iter()
        .enumerate()
        .filter(|&(k, &(_, n))| n == 0 && !slots && due.is_none_or(|d| d[k] >= 2))
        .map(|(_, &(id, _))| id)
        .take(STARVED_LISTED)
        .collect()
}
