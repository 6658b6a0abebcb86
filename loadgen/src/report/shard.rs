//! Runs made of several shards: shard `I/N` processes on one or several hosts, started
//! together at `--start-at`, each writing an interval log; and the merge of those logs back
//! into the whole run's report.
//!
//! A shard's interval log carries two comment lines besides its histograms (readers of the
//! format skip comments): `#[echo-bench run: {...}]`, the run's stamp (what was run, by
//! whom, and when it starts), written before the first interval; and `#[echo-bench
//! shard-result: {...}]`, its counters and costs, written at the end, with its connect
//! histograms besides latency as intervals tagged with their names ([`TAGS`]: connect,
//! first byte, receive delay, the open loop's lags, TCP's RTT). `loadgen merge` checks that
//! every log has the same stamp (refusing, with the file named, logs of another
//! configuration or window), merges the histograms exactly, sums the counters, and keeps
//! each shard's configuration columns and findings (warnings, the keep-up verdict, its
//! sample of send gaps for the arrivals check), so a merged report says what one process's
//! would.

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::measure::record::{Counters, Fairness};
use crate::os::listener::Backlog;
pub use crate::report::ShardLine;
use crate::report::{Report, ServerCost, Settings, Status, TcpStats};

/// Prefix of the stamp comment.
pub const RUN_NOTE: &str = "echo-bench run: ";
/// Prefix of the result comment.
pub const RESULT_NOTE: &str = "echo-bench shard-result: ";
/// Tag of the connect-latency interval of a shard's log.
pub const CONNECT_TAG: &str = "connect";
/// Tag of the time from a connection's start to its first echoed byte.
pub const FIRST_BYTE_TAG: &str = "first_byte";
/// Tag of the reader's delay after the kernel's receive stamp (`--rx-timestamps on`).
pub const RX_DELAY_TAG: &str = "rx_delay";
/// Tags of the open loop's lateness: all of it, the client's share, waits for replies.
pub const SEND_LAG_TAG: &str = "send_lag";
/// The client's share of the lateness.
pub const CLIENT_LAG_TAG: &str = "client_lag";
/// Waits for a reply under `--depth`.
pub const BACKPRESSURE_TAG: &str = "backpressure";
/// Tag of the TCP connections' smoothed RTTs at the window's end (ns).
pub const RTT_TAG: &str = "rtt";
/// Every tag a shard's log may carry besides latency and raw service time.
pub const TAGS: [&str; 7] = [
    CONNECT_TAG,
    FIRST_BYTE_TAG,
    RX_DELAY_TAG,
    SEND_LAG_TAG,
    CLIENT_LAG_TAG,
    BACKPRESSURE_TAG,
    RTT_TAG,
];

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
    /// Its configuration columns (the same in every shard).
    #[serde(default)]
    pub config: ShardConfig,
    /// What it found besides its numbers.
    #[serde(default)]
    pub findings: ShardFindings,
    /// Where it read the server's cost (`server_source`), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_source: Option<String>,
    /// Where `--shard auto` found its shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_source: Option<String>,
}

/// The configuration columns of a shard's run that its stamp does not hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardConfig {
    /// `--reconnect-every`.
    pub reconnect_every: Option<u64>,
    /// `--conn-rate` and its messages per connection.
    pub conn_rate: Option<(f64, u64)>,
    /// `--close`: `fin` or `rst`.
    pub close: String,
    /// The settings besides the configuration key (threads, pacing, work, seed, ...).
    pub settings: Option<Settings>,
}

/// What a shard found besides its counts: what its own report would have said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardFindings {
    /// Its warnings.
    pub warnings: Vec<String>,
    /// Open loop: its keep-up verdict, when it did not keep up.
    pub keep_up: Option<String>,
    /// Open loop: the rate it sent at, msg/s (or connections/s).
    pub achieved_rate: Option<f64>,
    /// Open loop: its sample of send gaps (in units of the promised mean) for the
    /// arrivals check, at most 2,000 (the number one process's check tests).
    pub send_gaps: Vec<f64>,
    /// TCP_INFO over its window (its RTT percentiles are merged from the `rtt` histograms).
    pub tcp: Option<TcpStats>,
    /// The server's listeners, when it read them.
    pub listen: Option<Backlog>,
    /// A combined result: every shard of the run, those that reported and those missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardLine>,
}

impl ShardResult {
    /// The result of a shard's report, with its sample of send gaps.
    pub fn of(r: &Report, shard: u32, send_gaps: Vec<f64>) -> Self {
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
            config: ShardConfig {
                reconnect_every: r.reconnect_every,
                conn_rate: r.conn_rate,
                close: r.close.to_string(),
                settings: Some(r.settings.clone()),
            },
            findings: ShardFindings {
                warnings: r.warnings.clone(),
                keep_up: r.keep_up.clone(),
                achieved_rate: r.achieved_rate,
                send_gaps,
                tcp: r.tcp,
                listen: r.listen,
                shards: Vec::new(),
            },
            server_source: r.server_source.clone(),
            shard_source: r.shard_source.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::combine::combine;

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
            config: ShardConfig::default(),
            findings: ShardFindings::default(),
            server_source: None,
            shard_source: None,
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
        assert_eq!(
            missing.stop_reason.as_deref(),
            Some("1 of 3 shards reported (missing: shards 1, 2)")
        );
        let lines: Vec<(&str, &str, Option<u64>)> = missing
            .findings
            .shards
            .iter()
            .map(|l| (l.shard.as_str(), l.status.as_str(), l.msgs))
            .collect();
        assert_eq!(
            lines,
            [
                ("0/3", "ok", Some(100)),
                ("1/3", "missing", None),
                ("2/3", "missing", None)
            ]
        );
    }

    #[test]
    fn findings_are_named_by_their_shards_and_pooled() {
        let mut a = result(0, 100, Status::Ok);
        let mut b = result(1, 100, Status::Ok);
        let mut c = result(2, 100, Status::Ok);
        a.findings.warnings = vec!["the server is slow".into(), "only here".into()];
        b.findings.warnings = vec!["the server is slow".into()];
        c.findings.keep_up = Some("achieved 90 of 100 msg/s".into());
        (a.findings.achieved_rate, b.findings.achieved_rate) = (Some(100.0), Some(50.0));
        (a.findings.send_gaps, b.findings.send_gaps) = (vec![1.0, 2.0], vec![0.5]);
        a.findings.tcp = Some(TcpStats {
            retransmits: 3,
            rtt_p50_us: 40.0,
            rtt_p99_us: 90.0,
            conns: 10,
        });
        b.findings.tcp = Some(TcpStats {
            retransmits: 4,
            conns: 10,
            ..TcpStats::default()
        });
        a.config.close = "rst".into();
        let total = combine(&[a, b, c], 3);
        let f = &total.findings;
        assert_eq!(
            f.warnings,
            vec![
                "shards 0, 1: the server is slow".to_string(),
                "shard 0: only here".to_string()
            ]
        );
        assert_eq!(f.keep_up.as_deref(), Some("shard 2: achieved 90 of 100 msg/s"));
        assert_eq!(f.achieved_rate, Some(150.0));
        assert_eq!(f.send_gaps, vec![1.0, 2.0, 0.5]);
        let tcp = f.tcp.unwrap();
        assert_eq!((tcp.retransmits, tcp.conns), (7, 20));
        assert_eq!(tcp.rtt_p99_us, 0.0, "percentiles come from the merged histograms only");
        assert_eq!(total.config.close, "rst", "the configuration is the shards' own");
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
