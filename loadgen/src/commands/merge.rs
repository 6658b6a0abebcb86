//! `loadgen merge`: one report from several hosts' interval logs (the maths is in
//! [`crate::scale::merge`]).

use std::path::Path;

use crate::cli::MergeArgs;
use crate::error::Error;
use crate::measure::hlog::LoggedInterval;
use crate::output::sink::check_output;
use crate::output::{sink, Format};
use crate::report::shard::{self, RunStamp, ShardResult};
use crate::scale::merge;

/// Logs of a sharded run must agree on what was run and when; each shard once.
const WINDOW_SLACK_S: f64 = 1.0;

/// When the logs were written by loadgen shards: their common stamp and their results.
/// Refuses, naming the file, a log of another run or window, or a shard given twice.
fn check_shards(
    paths: &[&Path],
    read: &[(Vec<LoggedInterval>, Vec<String>)],
) -> Result<Option<(RunStamp, Vec<ShardResult>)>, Error> {
    let parsed: Vec<_> = read.iter().map(|(_, notes)| shard::parse_notes(notes)).collect();
    let Some(first) = parsed.iter().find_map(|(s, _)| s.clone()) else {
        return Ok(None); // logs of another tool: histograms only
    };
    let first_file = paths[parsed.iter().position(|(s, _)| s.is_some()).unwrap_or(0)].display();
    let mut results: Vec<ShardResult> = Vec::new();
    let mut window_starts = Vec::new();
    for (((stamp, result), path), (ivs, _)) in parsed.iter().zip(paths).zip(read) {
        let file = path.display();
        let stamp = stamp.as_ref().ok_or_else(|| {
            Error::Input(format!(
                "{file} is not a loadgen shard log, unlike {first_file}; merge them apart"
            ))
        })?;
        if let Some(diff) = stamp.difference(&first) {
            return Err(Error::Input(format!(
                "{file} comes from another run than {first_file} ({diff}); merge only the shards of one run"
            )));
        }
        let result = result.as_ref().ok_or_else(|| {
            Error::Input(format!(
                "{file} has no shard result (did that shard die?); merge the others, or rerun it"
            ))
        })?;
        // Whole runs (not shards of one) merge freely: each counts as one more host.
        if first.shards > 1 && results.iter().any(|r| r.shard == result.shard) {
            return Err(Error::Input(format!(
                "{file} repeats shard {} of the run",
                result.shard
            )));
        }
        results.push(result.clone());
        if let Some(start) = ivs.iter().filter(|i| i.tag.is_none()).map(|i| i.start).min() {
            window_starts.push((start.as_secs_f64(), file.to_string()));
        }
    }
    if first.shards == 1 {
        return Ok(Some((first, results)));
    }
    let earliest = window_starts.iter().map(|(t, _)| *t).fold(f64::INFINITY, f64::min);
    if let Some((t, file)) = window_starts.iter().find(|(t, _)| t - earliest > WINDOW_SLACK_S) {
        return Err(Error::Input(format!(
            "{file} measured a window starting {:.1} s after the others': not the same window; check --start-at and the hosts' clocks",
            t - earliest
        )));
    }
    Ok(Some((first, results)))
}

/// Refuses a log given twice (the same file, or a copy: identical bytes), which would
/// count its messages and connections twice.
fn check_distinct(a: &MergeArgs) -> anyhow::Result<()> {
    use std::hash::{Hash, Hasher};
    let mut seen: Vec<(u64, &std::path::Path)> = Vec::new();
    for path in &a.logs {
        // A device or FIFO is refused before it is read (/dev/zero would never end).
        crate::os::files::check_input_file(path, "an interval log", crate::measure::hlog::MAX_LOG_BYTES)?;
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Input(format!("cannot read interval log {}: {e}", path.display())))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        let digest = h.finish();
        if let Some((_, first)) = seen.iter().find(|(d, _)| *d == digest) {
            return Err(Error::Input(format!(
                "{} and {} are the same log (identical content): merging it twice would count its messages twice; give each host's log once",
                first.display(),
                path.display()
            ))
            .into());
        }
        seen.push((digest, path));
    }
    Ok(())
}

/// Every log read, less the shard logs that carry no result: a shard that stopped before
/// or during its window (it could not connect, or was killed) is left out with a WARNING
/// naming it, and the merge of the others is `partial`, naming the shard missing. A log
/// without intervals that is not a loadgen shard's is refused.
#[allow(clippy::type_complexity)] // (paths, logs) kept in step
fn readable_shards(
    logs: &[std::path::PathBuf],
) -> anyhow::Result<(Vec<&Path>, Vec<(Vec<LoggedInterval>, Vec<String>)>)> {
    let mut paths = Vec::new();
    let mut read = Vec::new();
    for p in logs {
        let (ivs, notes) = crate::measure::hlog::read_all(p)?;
        match shard::parse_notes(&notes) {
            (Some(_), None) => {
                let had = if ivs.is_empty() {
                    "no interval".to_string()
                } else {
                    format!("{} intervals, left out with it", ivs.len())
                };
                eprintln!(
                    "WARNING    {} is a shard's log without its result ({had}): that shard stopped before its window ended; merging the others, as a partial run",
                    p.display()
                );
            }
            (None, _) if ivs.is_empty() => {
                return Err(Error::Input(format!("{} holds no interval histogram", p.display())).into());
            }
            _ => {
                paths.push(p.as_path());
                read.push((ivs, notes));
            }
        }
    }
    if read.is_empty() {
        return Err(Error::Input("no log left to merge: every shard stopped before its window ended".into()).into());
    }
    Ok((paths, read))
}

/// Runs `loadgen merge`.
pub(super) fn run(a: &MergeArgs) -> anyhow::Result<u8> {
    if let Some(path) = &a.csv {
        check_output("--csv", path)?;
    }
    if let Some(path) = &a.json {
        check_output("--json", path)?;
    }
    check_distinct(a)?;
    let (paths, read) = readable_shards(&a.logs)?;
    let shards = check_shards(&paths, &read)?;
    let logs: Vec<_> = read.into_iter().map(|(ivs, _)| ivs).collect();
    // Each log's counts fit a u64 (checked as read); together they must too.
    let total = logs
        .iter()
        .flatten()
        .filter(|iv| iv.tag.is_none())
        .try_fold(0u64, |sum, iv| sum.checked_add(iv.histogram.len()));
    if total.is_none() {
        return Err(crate::error::Error::Input(
            "the logs' counts add up to more than a u64 holds (2^64): merge fewer logs at once".to_string(),
        )
        .into());
    }
    let merged = merge::merge(&logs);
    let sources = a
        .logs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let combined = shards
        .as_ref()
        .map(|(stamp, results)| (stamp, crate::report::combine::combine(results, stamp.shards)));
    let r = merge::report(
        &merged,
        &sources,
        &a.label,
        combined
            .as_ref()
            .map(|(stamp, total)| (*stamp, total, logs.len() as u32)),
    );
    if let Some(path) = &a.csv {
        sink::append_csv(path, &r)?;
    }
    if let Some(path) = &a.json {
        sink::write_file(path, &Format::Json.render(&r, false))?;
    }
    println!(
        "merged {} logs: {} round trips over {:.2} s ({:.0} msg/s), {} aligned intervals",
        logs.len(),
        r.counters.msgs,
        r.duration_s,
        r.throughput_msgs_s,
        merged.intervals.len()
    );
    if combined.is_some() {
        // loadgen's shards: the whole summary, as one process's run prints it (with the
        // shards' warnings and verdicts).
        use std::io::Write;
        let _ = std::io::stdout().write_all(&Format::Table.render(&r, false));
    } else {
        // Another tool's logs: latency is all they say.
        let l = &r.latency;
        println!(
            "  latency    p50 {:.1} us  p90 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  p99.99 {:.1} us  max {:.1} us",
            l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.p9999_us, l.max_us
        );
    }
    if a.latency {
        print!("{}", crate::output::spectrum::spectrum(&r));
    }
    Ok(r.status.exit_code())
}
