//! One load run from start to finish, as its steps: check the descriptor budget, start the
//! target, run the client threads while the main thread watches, samples and logs, then
//! assemble the [`Report`].
//!
//! The run never hangs and never loses what it measured: on a fault the watcher tells the
//! threads to stop (they notice within milliseconds), and the report holds everything
//! recorded until then, with status `partial`.
//!
//! The rooms: [`aggregate`] (merging the threads' intervals in bounded memory), [`watch`]
//! (reasons to stop early), [`cost`] (server and client CPU, memory, threads),
//! [`progress`] (the live line), [`verdict`] (status and plain-word verdicts), and
//! [`assemble`] (the report); and what a run is made of: the [`target`] (spawned or
//! addressed), the client [`driver`] (one event loop per thread), local [`ports`], the
//! agent client ([`remote`]) and the machine checks of `loadgen doctor` ([`doctor`]).
//! May import: `report`, `config`, `cli`, `measure`, `stats`, `os`, `error`.

mod aggregate;
mod arrivals;
mod assemble;
pub(crate) use arrivals::check_gaps;
pub(crate) mod cost;
pub(crate) mod doctor;
pub(crate) mod driver;
pub(crate) mod live;
mod log;
pub(crate) mod ports;
mod progress;
pub(crate) mod remote;
pub(crate) mod staged;
pub(crate) mod target;
mod verdict;
mod warmup;
pub(crate) mod watch;

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::config::RunConfig;
use crate::error::Error;
use crate::measure::hlog::HlogWriter;
use crate::measure::record::Interval;
use crate::os::sys;
use crate::report::shard;
use crate::report::Report;
use crate::run::driver::{assign, run_thread, Shared, ThreadOutput};
use aggregate::Aggregator;
use cost::Cost;
use log::{close_log, complete_intervals, open_hlog, tagged_histograms};
use progress::Progress;
use watch::Watch;

/// Descriptors a run needs besides one per connection: stdio, epoll and timer per thread,
/// the server child's pipe, report files, slack.
pub(crate) fn descriptors_needed(conns: usize, threads: usize) -> u64 {
    conns as u64 + 4 * threads as u64 + 64
}

/// Raises the descriptor limit to the hard limit and checks that `conns` connections fit,
/// before anything is opened.
fn check_descriptors(conns: usize, threads: usize) -> Result<(), Error> {
    let needed = descriptors_needed(conns, threads);
    match sys::raise_nofile() {
        Some(limit) if needed > limit => Err(Error::TooManyConns { conns, needed, limit }),
        _ => Ok(()),
    }
}

/// What the main thread saw while the client threads ran.
struct Observed {
    agg: Aggregator,
    watch: Watch,
    cost: Cost,
    outputs: Vec<ThreadOutput>,
    thread_error: Option<String>,
}

/// Runs one load run. Errors only when it could not run at all (too many connections for
/// the descriptor limit, target does not start, address unreachable); faults during the
/// run end up in the report's status.
pub(crate) fn run(cfg: &RunConfig) -> anyhow::Result<Report> {
    check_descriptors(cfg.my_conns(), cfg.threads)?;
    // Open loop: the machine's timer floor, before the load (cached per boot after the first).
    let open = cfg.rate.is_some() || matches!(cfg.churn, crate::config::Churn::ConnRate { .. });
    let timer_floor_p99_us = open.then(crate::run::doctor::timer_floor).flatten();
    let started_at = SystemTime::now();
    let mut target = target::start(cfg)?;
    let machine_before = Machine::read(&target.addr);
    let (bind, note) = crate::run::ports::plan(cfg, &target.addr);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    let spread = bind.map(|bind| RunConfig { bind, ..cfg.clone() });
    let cfg = spread.as_ref().unwrap_or(cfg);
    let plan = assign(cfg.shard.range(cfg.conns), cfg.threads);
    let shared = Shared::new(plan.len(), cfg.start_at.map(instant_of));
    let (server_probe, server_source) = server_probe(cfg, &target);
    check_agent(server_probe.as_ref())?;
    let (mut hlog, created) = open_hlog(cfg, &target.name)?;

    let mut seen = drive(cfg, plan, &shared, &mut target, server_probe, &mut hlog, created)?;
    let mut cost = seen.cost.finish();
    cost.backdated = seen.watch.backdated();
    let work_done = work_done(cfg, &mut target);
    if let Some(server) = target.server.as_mut() {
        server.stop();
    }

    let start = shared.start.get().copied();
    let measured = measured_window(cfg, start, seen.watch.stopped().map(|(at, _)| *at));
    let offset = start.map(|s| s.saturating_duration_since(created) + cfg.warmup);
    complete_intervals(&mut seen.agg, hlog.as_mut(), cfg, offset, Some(measured));
    let stop_reason = seen.watch.stopped().map(|(_, r)| r.clone()).or(seen.thread_error);
    let machine = machine_before.since(&target.addr);
    let (cost, cpu_use, late_readings) = cost::window_cost(cfg, &target, cost, measured, &seen.outputs);
    let window = warmup::settle(cfg, &mut seen.agg, measured, cost.client_cpu_s, cost.server, cpu_use);
    let total = seen.agg.total();
    live::finish(&total, cfg.rate);
    let tagged = hlog.is_some().then(|| tagged_histograms(&total, &seen.outputs));
    let mut report = assemble::report(assemble::Parts {
        cfg: &window.cfg,
        target: &target,
        started_at,
        measured: window.measured,
        total,
        intervals: seen.agg.rows(cfg.interval, window.measured),
        outputs: &seen.outputs,
        client_cpu_s: window.client_cpu_s,
        client_rss_kib: cost.client_rss_kib,
        server: window.server,
        machine: window.machine,
        server_source,
        stop_reason,
        listen_overflows: machine.listen_overflows,
        backlog: machine.backlog,
        tcp_retransmits: machine.tcp_retransmits,
        udp_rcvbuf_drops: machine.udp_rcvbuf_drops,
        timer_floor_p99_us,
    });
    report.warmup_rule = window.rule;
    let machine_warnings = window.machine.iter().flat_map(crate::os::machine::warnings);
    let work_warnings = work_done.iter().flat_map(|w| verdict::work_warnings(w));
    let warnings = window.warning.into_iter().chain(late_readings).chain(machine_warnings);
    report.warnings.extend(warnings.chain(work_warnings));
    report.work_done = work_done;
    let room = assemble::room(&window.cfg, report.server);
    staged::attach(&mut report, &window.cfg, seen.agg.stages(), window.measured, &room);
    if let Some(log) = hlog {
        let result = shard::ShardResult::of(
            &report,
            cfg.shard.index,
            arrivals::thin_gaps(&arrivals::pooled_gaps(&seen.outputs)),
        );
        if let Err(why) = close_log(log, offset.map(|o| (o, measured)), &tagged.unwrap_or_default(), &result) {
            report.output_errors.push(why);
        }
    }
    Ok(report)
}

/// What the spawned server's `--work` really took, asked at the window's end (before it
/// stops); `None` without work, for `--addr`, or when it gives no tally.
fn work_done(cfg: &RunConfig, target: &mut target::Target) -> Option<Vec<crate::report::WorkDone>> {
    let done = target.server.as_mut().filter(|_| cfg.work.is_some())?.work_done()?;
    Some(done.iter().map(crate::report::WorkDone::of).collect())
}

/// The measured window: from the end of warmup to the planned end or the stop (zero when
/// the load never started).
fn measured_window(cfg: &RunConfig, start: Option<Instant>, stopped: Option<Instant>) -> Duration {
    match (start, stopped) {
        (None, _) => Duration::ZERO,
        (Some(s), Some(at)) => at.saturating_duration_since(s + cfg.warmup).min(cfg.duration),
        (Some(_), None) => cfg.duration,
    }
}

/// `--start-at`'s wall-clock time as an instant of the monotonic clock.
fn instant_of(at: SystemTime) -> Instant {
    let now = (Instant::now(), SystemTime::now());
    match at.duration_since(now.1) {
        Ok(ahead) => now.0 + ahead,
        Err(_) => now.0, // already passed (by less than a second: checked)
    }
}

/// This machine's counters around a run (its network namespace), and the server's
/// listeners when they are here.
struct Machine {
    backlog: Option<crate::os::listener::Backlog>,
    listen_overflows: Option<u64>,
    tcp_retransmits: Option<u64>,
    udp_rcvbuf_drops: Option<u64>,
}

/// What changed on this machine during the run.
struct MachineDelta {
    /// The backlog the server's listen() got, with what waits in its accept queue at the end.
    backlog: Option<crate::os::listener::Backlog>,
    listen_overflows: u64,
    tcp_retransmits: u64,
    udp_rcvbuf_drops: u64,
}

impl Machine {
    fn read(addr: &servers::ListenAddr) -> Machine {
        Machine {
            backlog: listen_backlog(addr),
            listen_overflows: crate::os::proc::listen_overflows(),
            tcp_retransmits: crate::os::proc::tcp_retransmits(),
            udp_rcvbuf_drops: crate::os::proc::udp_rcvbuf_errors(),
        }
    }

    /// The counts since this reading (0 where either end could not be read).
    fn since(&self, addr: &servers::ListenAddr) -> MachineDelta {
        let now = Machine::read(addr);
        let delta = |before: Option<u64>, after: Option<u64>| match (before, after) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        MachineDelta {
            backlog: self.backlog.map(|b| crate::os::listener::Backlog {
                queued: now.backlog.map_or(0, |e| e.queued),
                ..b
            }),
            listen_overflows: delta(self.listen_overflows, now.listen_overflows),
            tcp_retransmits: delta(self.tcp_retransmits, now.tcp_retransmits),
            udp_rcvbuf_drops: delta(self.udp_rcvbuf_drops, now.udp_rcvbuf_drops),
        }
    }
}

/// Lifts the merging thread back to its normal priority while the merge is behind, and lowers
/// it again once caught up. More than two intervals a thread `waiting` means a machine busy
/// beyond the client and the server starved the lowered merge, and every interval waiting
/// is one the client threads allocate anew (measured: 24 MB more client memory in a 6 s
/// run beside a parallel test, 40 MB in a debug build beside two busy loops).
fn catch_up(lifted: &mut Option<sys::Unyielded>, waiting: usize, threads: usize) {
    if waiting > 2 * threads {
        lifted.get_or_insert_with(sys::unyielded);
    } else if waiting <= threads {
        *lifted = None;
    }
}

/// Folds the intervals waiting; returns how many there were.
fn drain(rx: &Receiver<Interval>, agg: &mut Aggregator, shared: &Shared, threads: usize) -> usize {
    let mut n = 0;
    for iv in rx.try_iter() {
        agg.add(&iv);
        shared.recycle(iv, threads);
        n += 1;
    }
    n
}

/// Runs the client threads over `plan` and watches them until they are done: intervals
/// folded as they come (and logged), stop conditions checked, the server's cost read at
/// the window's ends, the progress line.
fn drive(
    cfg: &RunConfig,
    plan: Vec<Vec<u32>>,
    shared: &Shared,
    target: &mut crate::run::target::Target,
    probe: Option<cost::ServerProbe>,
    hlog: &mut Option<HlogWriter>,
    created: Instant,
) -> anyhow::Result<Observed> {
    let addr = target.addr.clone();
    let (tx, rx) = mpsc::channel::<Interval>();
    std::thread::scope(|scope| -> anyhow::Result<Observed> {
        let threads = plan.len();
        let mut handles = Vec::with_capacity(threads);
        for (i, ids) in plan.into_iter().enumerate() {
            let (shared, tx, addr) = (shared, tx.clone(), &addr);
            let handle = std::thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn_scoped(scope, move || run_thread((i, threads), ids, cfg, addr, shared, &tx));
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The threads already started would wait for this one: stop them and let
                    // them through; the scope joins them before the error is returned.
                    shared.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    shared.connected.open();
                    return Err(e).context("cannot start a client thread");
                }
            }
        }
        drop(tx);
        // Spawned threads inherit the nice value: lowered only now, after them.
        let _yield = sys::yield_to_client_threads();
        // The sampling below must not preempt client threads pinned to their own CPUs.
        let _off_client_cpus = cfg.pin_client.as_deref().and_then(sys::avoid_cpus);
        let mut seen = Observed {
            agg: warmup::aggregator(handles.len(), cfg),
            watch: Watch::new(),
            cost: Cost::new(probe),
            outputs: Vec::new(),
            thread_error: None,
        };
        let progress = Progress::new(cfg);
        let log_offset = |start: Instant| start.saturating_duration_since(created) + cfg.warmup;
        let mut catching_up = None;
        let mut published = Instant::now();
        loop {
            let waiting = drain(&rx, &mut seen.agg, shared, threads);
            catch_up(&mut catching_up, waiting, threads);
            complete_intervals(
                &mut seen.agg,
                hlog.as_mut(),
                cfg,
                shared.start.get().map(|&s| log_offset(s)),
                None,
            );
            if handles.iter().all(|h| h.is_finished()) {
                break;
            }
            let now = Instant::now();
            let start = shared.start.get().copied();
            let load_end = start.map(|s| s + cfg.warmup + cfg.duration);
            seen.watch.check(now, load_end, shared, target);
            let window = start.map(|s| (s + cfg.warmup, s + cfg.warmup + cfg.duration));
            progress.update(start.map(|s| now.saturating_duration_since(s)), shared, &seen.agg);
            live::tick(&mut published, now, cfg, || seen.agg.total(), shared);
            seen.cost.tick_and_wait(window);
        }
        progress.finish();
        for h in handles {
            match h.join() {
                Ok(Ok(out)) => seen.outputs.push(out),
                Ok(Err(e)) => seen.thread_error = Some(format!("a client thread failed: {e}")),
                Err(_) => seen.thread_error = Some("a client thread panicked".to_string()),
            }
        }
        drain(&rx, &mut seen.agg, shared, threads);
        Ok(seen)
    })
}

/// Before the load: a wrong token is the user's to fix (exit 2); an agent out of reach, or
/// one that finds nothing on the port, only leaves the server's cost empty.
fn check_agent(probe: Option<&cost::ServerProbe>) -> anyhow::Result<()> {
    let Some(cost::ServerProbe::Agent { addr, port, token }) = probe else {
        return Ok(());
    };
    match crate::run::remote::read(addr, *port, token.as_deref()) {
        Err(crate::run::remote::AgentError::Unauthorized) => {
            return Err(crate::error::Error::Input(format!(
                "--agent {addr}: the agent refused the request (401): give its token with --agent-token FILE"
            ))
            .into())
        }
        Err(crate::run::remote::AgentError::Unreachable(why)) => {
            eprintln!("WARNING: the agent at {addr} cannot be read ({why}): the server's cost stays empty")
        }
        Err(crate::run::remote::AgentError::NoServer) => {
            eprintln!(
                "WARNING: the agent at {addr} finds nothing listening on port {port}: the server's cost stays empty"
            )
        }
        Ok(_) => {}
    }
    Ok(())
}

/// Where the server's cost is read: the spawned child, `--server-pid`, a `loadgen agent`
/// on its host (`--agent`), or the process found listening on this machine; and how it was
/// found, for the summary.
pub(crate) fn server_probe(
    cfg: &RunConfig,
    target: &crate::run::target::Target,
) -> (Option<cost::ServerProbe>, Option<String>) {
    use cost::ServerProbe;
    match (&target.server, cfg.server_pid, &cfg.agent) {
        (Some(child), _, _) => (Some(ServerProbe::Local(child.pid())), None),
        (None, Some(pid), _) => (
            Some(ServerProbe::Local(pid)),
            Some(format!("pid {pid}, from --server-pid")),
        ),
        (None, None, Some(agent)) => (
            Some(ServerProbe::Agent {
                addr: agent.addr.clone(),
                port: target.addr.socket_addr().map_or(0, |a| a.port()),
                token: agent.token.clone(),
            }),
            Some(format!("from the agent at {}", agent.addr)),
        ),
        (None, None, None) => match crate::os::proc::find_listener(&target.addr) {
            Some(l) => (
                Some(ServerProbe::Local(l.pid)),
                Some(format!("pid {} ({}), found by its listening socket", l.pid, l.command)),
            ),
            None => (None, None),
        },
    }
}

/// The listeners of a TCP target in this network namespace (sock_diag); `None` for other
/// transports and for a server on another host.
fn listen_backlog(addr: &servers::ListenAddr) -> Option<crate::os::listener::Backlog> {
    match addr {
        servers::ListenAddr::Tcp(a) => crate::os::listener::backlog(*a),
        _ => None,
    }
}
