//! Runs made of several shards: shard `I/N` processes on one or several hosts, started
//! together at `--start-at`, each writing an interval log; and the merge of those logs back
//! into the whole run's report.
//!
//! A shard's interval log carries two comment lines besides its histograms (readers of the
//! format skip comments): `#[echo-bench run: {...}]`, the run's stamp (what was run, by
//! whom, and when it starts), written before the first interval; and `#[echo-bench
//! shard-result: {...}]`, its counters and costs, written at the end, with its connect
//! histogram as an interval tagged `connect`. `loadgen merge` checks that every log has
//! the same stamp (refusing, with the file named, logs of another configuration or
//! window), merges the histograms exactly and sums the counters.

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::record::{Counters, Fairness};
use crate::report::{Report, ServerCost, Status};

/// Prefix of the stamp comment.
pub const RUN_NOTE: &str = "echo-bench run: ";
/// Prefix of the result comment.
pub const RESULT_NOTE: &str = "echo-bench shard-result: ";
/// Tag of the connect-latency interval of a shard's log.
pub const CONNECT_TAG: &str = "connect";

/// What a run was, the same in every shard of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStamp {
    /// The model, or `external`.
    pub target: String,
    /// `closed` or `open`.
    pub mode: String,
    /// Connections of the whole run.
    pub conns: usize,
    /// Bytes per message.
    pub msg_size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Open-loop rate of the whole run.
    pub rate: Option<f64>,
    /// Measured seconds.
    pub duration_s: f64,
    /// Warmup seconds.
    pub warmup_s: f64,
    /// The agreed start, unix seconds.
    pub start_at: Option<f64>,
    /// Shards of the run.
    pub shards: u32,
    /// The client's I/O engine (`epoll`, `uring`); empty in logs written before it was
    /// recorded.
    #[serde(default)]
    pub engine: String,
}

impl RunStamp {
    /// The stamp of `cfg` loading `target`.
    pub fn of(cfg: &RunConfig, target: &str) -> Self {
        RunStamp {
            target: target.to_string(),
            mode: cfg.mode().to_string(),
            conns: cfg.conns,
            msg_size: cfg.msg_size,
            depth: cfg.depth,
            rate: cfg.rate,
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            start_at: cfg
                .start_at
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
            shards: cfg.shard.count,
            engine: cfg.engine.name().to_string(),
        }
    }

    /// The first field in which `other` differs, as `name (mine vs theirs)`.
    pub fn difference(&self, other: &RunStamp) -> Option<String> {
        let (a, b) = (serde_json::to_value(self).ok()?, serde_json::to_value(other).ok()?);
        let (a, b) = (a.as_object()?, b.as_object()?);
        a.iter()
            .find(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| format!("{k} {v} vs {}", b.get(k).unwrap_or(&serde_json::Value::Null)))
    }
}

/// What one shard measured besides its histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardResult {
    /// Which shard (`I`).
    pub shard: u32,
    /// Its connections.
    pub conns: usize,
    /// Of those, open when the load started.
    pub conns_ok: usize,
    /// Its counts.
    pub counters: Counters,
    /// Its measured seconds.
    pub duration_s: f64,
    /// Its client CPU seconds in the window.
    pub client_cpu_s: f64,
    /// Its peak RSS, KiB.
    pub client_rss_kib: u64,
    /// The server's cost, if this shard measured it.
    pub server: Option<ServerCost>,
    /// How it ended.
    pub status: Status,
    /// Why it stopped early, if it did.
    pub stop_reason: Option<String>,
    /// Where it connected.
    pub addr: String,
    /// Its spread of messages over connections.
    #[serde(default)]
    pub fairness: Fairness,
    /// CPU use of its busiest client thread in the window (0..1 of a core).
    #[serde(default)]
    pub busiest_thread: f64,
    /// The same without its pacing spin.
    #[serde(default)]
    pub busiest_work: f64,
}

impl ShardResult {
    /// The result of a shard's report.
    pub fn of(r: &Report, shard: u32) -> Self {
        ShardResult {
            shard,
            conns: r.conns,
            conns_ok: r.conns_ok,
            counters: r.counters,
            duration_s: r.duration_s,
            client_cpu_s: r.client_cpu_s,
            client_rss_kib: r.client_rss_kib,
            server: r.server,
            status: r.status,
            stop_reason: r.stop_reason.clone(),
            addr: r.addr.clone(),
            fairness: r.fairness,
            busiest_thread: r.client_thread_busy_max,
            busiest_work: r.client_thread_work_max,
        }
    }
}

/// The comment line of a stamp.
pub fn run_note(stamp: &RunStamp) -> String {
    format!("{RUN_NOTE}{}", serde_json::to_string(stamp).unwrap_or_default())
}

/// The comment line of a result.
pub fn result_note(result: &ShardResult) -> String {
    format!("{RESULT_NOTE}{}", serde_json::to_string(result).unwrap_or_default())
}

/// The stamp and result among a log's comment notes (`None` for a log loadgen's shards did
/// not write, e.g. another tool's).
pub fn parse_notes(notes: &[String]) -> (Option<RunStamp>, Option<ShardResult>) {
    let find = |prefix: &str| notes.iter().find_map(|n| n.strip_prefix(prefix));
    (
        find(RUN_NOTE).and_then(|j| serde_json::from_str(j).ok()),
        find(RESULT_NOTE).and_then(|j| serde_json::from_str(j).ok()),
    )
}

/// The whole run's numbers from its shards' results: summed counts and costs, the longest
/// window, the worst status (a shard that is missing or reported nothing makes it
/// `partial`).
pub fn combine(results: &[ShardResult], shards: u32) -> ShardResult {
    let mut total = ShardResult {
        shard: 0,
        conns: 0,
        conns_ok: 0,
        counters: Counters::default(),
        duration_s: 0.0,
        client_cpu_s: 0.0,
        client_rss_kib: 0,
        server: None,
        status: Status::Ok,
        stop_reason: None,
        addr: String::new(),
        fairness: Fairness::default(),
        busiest_thread: 0.0,
        busiest_work: 0.0,
    };
    // Jain's index combines exactly: each shard's sum of squares follows from its index,
    // n and sum (J = (sum x)^2 / (n * sum x^2)). The median is the shards' middle median.
    let (mut sum, mut sum_sq, mut n) = (0.0, 0.0, 0.0);
    let mut medians = Vec::new();
    for r in results {
        let (x, k) = (r.counters.msgs as f64, r.conns as f64);
        if r.fairness.jain > 0.0 {
            sum += x;
            sum_sq += x * x / (k * r.fairness.jain);
        }
        n += k;
        medians.push(r.fairness.median);
    }
    medians.sort_unstable();
    total.fairness = Fairness {
        min: results.iter().map(|r| r.fairness.min).min().unwrap_or(0),
        median: medians.get(medians.len() / 2).copied().unwrap_or(0),
        max: results.iter().map(|r| r.fairness.max).max().unwrap_or(0),
        jain: if sum_sq > 0.0 { sum * sum / (n * sum_sq) } else { 0.0 },
        starved: results.iter().map(|r| r.fairness.starved).sum(),
    };
    for r in results {
        total.conns += r.conns;
        total.conns_ok += r.conns_ok;
        total.counters += r.counters;
        total.duration_s = total.duration_s.max(r.duration_s);
        total.client_cpu_s += r.client_cpu_s;
        total.client_rss_kib = total.client_rss_kib.max(r.client_rss_kib);
        total.busiest_thread = total.busiest_thread.max(r.busiest_thread);
        total.busiest_work = total.busiest_work.max(r.busiest_work);
        // Every shard read the same server over the same --start-at window: one cost for
        // the run, from a shard that read both ends of the window where one did.
        total.server = match (total.server, r.server) {
            (Some(a), Some(b)) if a.cpu_s.is_none() && b.cpu_s.is_some() => Some(b),
            (a, b) => a.or(b),
        };
        total.status = total.status.max(r.status);
        total.stop_reason = total.stop_reason.take().or_else(|| r.stop_reason.clone());
        if total.addr.is_empty() {
            total.addr = r.addr.clone();
        }
    }
    if (results.len() as u32) < shards {
        total.status = total.status.max(Status::Partial);
        total
            .stop_reason
            .get_or_insert_with(|| format!("{} of {shards} shards reported", results.len()));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(shard: u32, msgs: u64, status: Status) -> ShardResult {
        ShardResult {
            shard,
            conns: 10,
            conns_ok: 10,
            counters: Counters {
                msgs,
                timeouts: 1,
                ..Counters::default()
            },
            duration_s: 2.0,
            client_cpu_s: 0.5,
            client_rss_kib: 1000,
            server: None,
            status,
            stop_reason: None,
            addr: "127.0.0.1:9".into(),
            fairness: Fairness {
                min: msgs / 10,
                median: msgs / 10,
                max: msgs / 10,
                jain: 1.0,
                starved: 0,
            },
            busiest_thread: 0.5,
            busiest_work: 0.5,
        }
    }

    #[test]
    fn shards_sum_and_the_worst_status_wins() {
        let total = combine(&[result(0, 100, Status::Ok), result(1, 50, Status::Errors)], 2);
        assert_eq!(
            (total.conns, total.counters.msgs, total.counters.timeouts),
            (20, 150, 2)
        );
        assert_eq!(total.status, Status::Errors);
        // Even within each shard, uneven across them: 10 x 10 and 10 x 5 messages.
        let expected = 150.0_f64.powi(2) / (20.0 * (10.0 * 100.0 + 10.0 * 25.0));
        assert!((total.fairness.jain - expected).abs() < 1e-9, "{}", total.fairness.jain);
        let missing = combine(&[result(0, 100, Status::Ok)], 3);
        assert_eq!(missing.status, Status::Partial);
        assert_eq!(missing.stop_reason.as_deref(), Some("1 of 3 shards reported"));
    }

    #[test]
    fn notes_round_trip_and_differences_are_named() {
        let stamp = RunStamp {
            target: "mio".into(),
            mode: "closed".into(),
            conns: 30,
            msg_size: 64,
            depth: 1,
            rate: None,
            duration_s: 2.0,
            warmup_s: 0.5,
            start_at: Some(1_800_000_000.0),
            shards: 3,
            engine: "epoll".into(),
        };
        let notes = vec![run_note(&stamp), result_note(&result(1, 5, Status::Ok))];
        let notes: Vec<String> = notes.into_iter().collect();
        let (s, r) = parse_notes(&notes);
        assert_eq!(s.as_ref(), Some(&stamp));
        assert_eq!(r.unwrap().counters.msgs, 5);
        let other = RunStamp {
            msg_size: 4096,
            ..stamp.clone()
        };
        assert_eq!(stamp.difference(&other).as_deref(), Some("msg_size 64 vs 4096"));
    }
}
