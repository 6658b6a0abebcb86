//! A sharded run's results as one: counts and costs summed, fairness combined exactly,
//! warnings and verdicts named by the shards that gave them, and every shard listed, the
//! missing ones included. `merge` and `--procs` both build the whole run's report from it.

use crate::measure::record::{Counters, Fairness};
use crate::report::shard::{ShardFindings, ShardLine, ShardResult};
use crate::report::{Status, TcpStats};

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
        config: results.first().map(|r| r.config.clone()).unwrap_or_default(),
        findings: combine_findings(results),
        server_source: None,
        shard_source: None,
    };
    total.findings.shards = shard_lines(results, shards);
    total.fairness = combined_fairness(results);
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
        let (server, source) = match (total.server, r.server) {
            (Some(a), Some(b)) if a.cpu_s.is_none() && b.cpu_s.is_some() => (Some(b), r.server_source.clone()),
            (None, Some(b)) => (Some(b), r.server_source.clone()),
            (a, _) => (a, total.server_source.take()),
        };
        total.server = server;
        total.server_source = source;
        total.status = total.status.max(r.status);
        total.stop_reason = total.stop_reason.take().or_else(|| r.stop_reason.clone());
        if total.addr.is_empty() {
            total.addr = r.addr.clone();
        }
    }
    let missing: Vec<String> = (0..shards)
        .filter(|i| !results.iter().any(|r| r.shard == *i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        total.status = total.status.max(Status::Partial);
        let plural = if missing.len() == 1 { "" } else { "s" };
        let note = format!(
            "{} of {shards} shards reported (missing: shard{plural} {})",
            results.len(),
            missing.join(", ")
        );
        total.stop_reason = Some(match total.stop_reason.take() {
            Some(theirs) => format!("{note}; {theirs}"),
            None => note,
        });
    }
    total
}

/// The shards' spreads of messages over connections as one.
fn combined_fairness(results: &[ShardResult]) -> Fairness {
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
    Fairness {
        min: results.iter().map(|r| r.fairness.min).min().unwrap_or(0),
        median: medians.get(medians.len() / 2).copied().unwrap_or(0),
        max: results.iter().map(|r| r.fairness.max).max().unwrap_or(0),
        jain: if sum_sq > 0.0 { sum * sum / (n * sum_sq) } else { 0.0 },
        starved: results.iter().map(|r| r.fairness.starved).sum(),
    }
}

/// Every shard of a run of `shards`: those that reported, and those missing.
fn shard_lines(results: &[ShardResult], shards: u32) -> Vec<ShardLine> {
    (0..shards.max(results.len() as u32))
        .map(|i| match results.iter().find(|r| r.shard == i) {
            Some(r) => ShardLine {
                shard: format!("{i}/{shards}"),
                status: r.status.to_string(),
                msgs: Some(r.counters.msgs),
                throughput_msgs_s: (r.counters.msgs > 0).then(|| r.counters.rates(r.duration_s).msgs_s),
                shard_source: r.shard_source.clone(),
                stop_reason: r.stop_reason.clone(),
            },
            None => ShardLine {
                shard: format!("{i}/{shards}"),
                status: "missing".to_string(),
                msgs: None,
                throughput_msgs_s: None,
                shard_source: None,
                stop_reason: Some(
                    "reported no result (it stopped before its window ended, or left no log)".to_string(),
                ),
            },
        })
        .collect()
}

/// The shards' findings as one: warnings and keep-up verdicts named by the shards that
/// gave them (one line for a warning several gave), rates and retransmissions summed,
/// send-gap samples pooled, the first reading of the listeners.
fn combine_findings(results: &[ShardResult]) -> ShardFindings {
    let named = |texts: Vec<(u32, &String)>| -> Vec<String> {
        let mut lines: Vec<(Vec<u32>, &String)> = Vec::new();
        for (shard, text) in texts {
            match lines.iter_mut().find(|(_, t)| *t == text) {
                Some((shards, _)) => shards.push(shard),
                None => lines.push((vec![shard], text)),
            }
        }
        lines
            .into_iter()
            .map(|(shards, text)| {
                let ids: Vec<String> = shards.iter().map(u32::to_string).collect();
                let which = if shards.len() == 1 { "shard" } else { "shards" };
                format!("{which} {}: {text}", ids.join(", "))
            })
            .collect()
    };
    let warnings = named(
        results
            .iter()
            .flat_map(|r| r.findings.warnings.iter().map(move |w| (r.shard, w)))
            .collect(),
    );
    let keep_up = named(
        results
            .iter()
            .filter_map(|r| r.findings.keep_up.as_ref().map(|k| (r.shard, k)))
            .collect(),
    );
    let tcp = results.iter().filter_map(|r| r.findings.tcp).reduce(|a, b| TcpStats {
        retransmits: a.retransmits + b.retransmits,
        conns: a.conns + b.conns,
        // The percentiles come from the merged `rtt` histograms, never from these.
        rtt_p50_us: 0.0,
        rtt_p99_us: 0.0,
    });
    let rates: Vec<f64> = results.iter().filter_map(|r| r.findings.achieved_rate).collect();
    ShardFindings {
        warnings,
        keep_up: (!keep_up.is_empty()).then(|| keep_up.join("; ")),
        achieved_rate: (!rates.is_empty()).then(|| rates.iter().sum()),
        send_gaps: results
            .iter()
            .flat_map(|r| r.findings.send_gaps.iter().copied())
            .collect(),
        tcp,
        listen: results.iter().find_map(|r| r.findings.listen),
        shards: Vec::new(),
    }
}
