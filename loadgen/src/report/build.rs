//! The one way a report is built. [`Report::empty`] writes every field once, with its
//! nothing-measured value; [`Report::of_run`] adds what a configuration says; the figures a
//! window derives are set by two methods: [`Report::set_counts`] (the counts, the window's
//! length and the rates computed from them) and [`Report::set_latency`] (percentiles, the
//! spectrum, the interval series and the percentile intervals widened by its batches).
//! A run, each of its stages, a merge of logs and a sweep's run that could not start all
//! start from these and set only what their source adds.

use hdrhistogram::Histogram;
use servers::Transport;

use super::data::{IntervalRow, Report, Settings, Status, SCHEMA};
use super::environment::Environment;
use crate::config::{Churn, RunConfig, TargetSpec};
use crate::measure::record::{Counters, Fairness, Percentiles};
use crate::measure::schedule::Mode;

impl Report {
    /// A report with nothing measured (status `failed`): the one place every field is
    /// written, with its nothing-measured value. A field added to [`Report`] gets that
    /// value here, and each builder sets it where its source knows it.
    pub fn empty(target: &str, addr: &str, transport: Option<Transport>) -> Report {
        Report {
            schema: SCHEMA,
            timestamp: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            label: String::new(),
            target: target.to_string(),
            addr: addr.to_string(),
            transport,
            mode: Mode::Closed,
            conns: 0,
            msg_size: 0,
            depth: 0,
            rate: None,
            reconnect_every: None,
            conn_rate: None,
            close: "fin",
            duration_s: 0.0,
            warmup_s: 0.0,
            warmup_rule: None,
            counters: Counters::default(),
            throughput_msgs_s: 0.0,
            throughput_mib_s: 0.0,
            latency: Percentiles::default(),
            raw: None,
            send_lag: None,
            client_lag: None,
            backpressure: None,
            connect: Percentiles::default(),
            first_byte: Percentiles::default(),
            conn_rate_s: 0.0,
            conns_ok: 0,
            server: None,
            machine: None,
            server_source: None,
            client_cpu_s: 0.0,
            client_rss_kib: 0,
            client_thread_busy_max: 0.0,
            client_thread_work_max: 0.0,
            achieved_rate: None,
            keep_up: None,
            warnings: Vec::new(),
            status: Status::Failed,
            stop_reason: None,
            fairness: Fairness::default(),
            starved_conns: Vec::new(),
            intervals: Vec::new(),
            latency_spectrum: Vec::new(),
            env: Environment::detect(),
            procs: 1,
            engine: String::new(),
            shard: None,
            shard_source: None,
            shards: Vec::new(),
            settings: Settings::default(),
            tcp: None,
            arrivals_check: None,
            rx_delay: None,
            listen: None,
            output_errors: Vec::new(),
            work_done: None,
            objective: None,
            objectives: Vec::new(),
            stage: None,
            stages: Vec::new(),
        }
    }

    /// The report of `cfg`'s run against `target` at `addr`, before anything is measured:
    /// its configuration key and settings (status `failed` until a builder sets it).
    pub fn of_run(cfg: &RunConfig, target: &str, addr: &str, transport: Option<Transport>) -> Report {
        let mut r = Report::empty(target, addr, transport);
        r.label = cfg.label.clone();
        r.mode = cfg.mode();
        r.conns = cfg.my_conns();
        r.msg_size = cfg.msg_size;
        r.depth = cfg.depth;
        r.rate = cfg.rate;
        r.reconnect_every = cfg.churn.reconnect_every();
        r.conn_rate = cfg.churn.conn_rate();
        r.close = cfg.close.name();
        r.warmup_s = cfg.warmup.as_secs_f64();
        r.engine = cfg.engine.name().to_string();
        r.shard = (cfg.shard.count > 1).then(|| cfg.shard.to_string());
        r.shard_source = cfg.shard_source.clone();
        r.settings = settings(cfg);
        r
    }

    /// The row of a run that could not run at all: its configuration, keyed by its own
    /// transport (so that it pairs with its repeats), nothing measured, and why.
    pub fn failed_run(cfg: &RunConfig, target: &str, reason: &str) -> Report {
        let transport = match &cfg.target {
            TargetSpec::Addr(a) => a.transport(),
            TargetSpec::Model(_) => cfg.transport.transport(),
        };
        let mut r = Report::of_run(cfg, target, "", Some(transport));
        r.stop_reason = Some(reason.to_string());
        r
    }

    /// A stage's report before its own window is set: the whole run's configuration,
    /// settings, environment and how the run ended, with what is read only at the whole
    /// window's ends (CPU, the machine, TCP_INFO, fairness, the arrivals check, the work
    /// done, the objectives) and the run's own warnings left empty.
    pub fn of_stage(whole: &Report) -> Report {
        let mut r = whole.clone();
        r.stages.clear();
        r.intervals.clear();
        r.warnings.clear();
        r.server = None;
        r.machine = None;
        r.client_cpu_s = 0.0;
        r.tcp = None;
        r.fairness = Fairness::default();
        r.starved_conns.clear();
        r.arrivals_check = None;
        r.work_done = None;
        r.objectives.clear();
        r.objective = None;
        r
    }

    /// The window's counts and length, and the rates derived from them (messages and MiB a
    /// second, connections opened a second): computed here only.
    pub fn set_counts(&mut self, counters: Counters, secs: f64) {
        let rates = counters.rates(secs);
        self.counters = counters;
        self.duration_s = secs;
        self.throughput_msgs_s = rates.msgs_s;
        self.throughput_mib_s = rates.mib_s;
        self.conn_rate_s = rates.conns_s;
    }

    /// The window's latency (and the open loop's raw service time) from their histograms,
    /// with its interval series; the percentile intervals are then widened by the series'
    /// batches ([`Report::widen_cis_by_batches`]).
    pub fn set_latency(&mut self, latency: &Histogram<u64>, raw: Option<&Histogram<u64>>, intervals: Vec<IntervalRow>) {
        self.latency = Percentiles::of(latency);
        self.latency_spectrum = crate::measure::record::spectrum::spectrum(latency);
        self.raw = raw.map(Percentiles::of);
        self.intervals = intervals;
        self.widen_cis_by_batches();
    }
}

/// Workers of the spawned server: the flag's, or the model's default; `None` for
/// thread-per-conn (a thread per connection) and for a server loadgen did not start.
pub(crate) fn server_workers(cfg: &RunConfig) -> Option<usize> {
    match &cfg.target {
        TargetSpec::Model(m) => m
            .default_workers()
            .map(|d| cfg.server_threads.map_or(d, |t| t as usize)),
        TargetSpec::Addr(_) => None,
    }
}

/// The settings besides the configuration key, as the report records them.
pub(crate) fn settings(cfg: &RunConfig) -> Settings {
    Settings {
        client_threads: cfg.threads,
        client_threads_default: cfg.threads_default.clone(),
        server_workers: server_workers(cfg),
        pacing: (cfg.rate.is_some() || cfg.search.is_some() || matches!(cfg.churn, Churn::ConnRate { .. }))
            .then(|| cfg.pacing.name().to_string()),
        sock_buf: cfg.sock_buf,
        server_procs: cfg.server_procs,
        work: cfg.work.as_ref().map(ToString::to_string),
        seed: cfg.seed,
        arrivals: (cfg.rate.is_some() || cfg.search.is_some()).then(|| cfg.arrivals.as_str().to_string()),
        stages: cfg.stages.as_ref().map(|p| {
            let of = if cfg.rate.is_some() { "rate" } else { "conns" };
            (p.to_string(), of.to_string())
        }),
    }
}
