//! `loadgen run --procs P`: one run made by P shard processes of loadgen on this machine,
//! each with its own descriptor limit (a process holds at most ~20k sockets here) and its
//! own source address on loopback (so ports never run out), merged into one report.
//!
//! This process starts the target (once, with `--server-procs`), picks a start time far
//! enough ahead for every shard to open its connections, starts the shards (`--shard i/P
//! --start-at T --hdr-log ...`), measures the server while they run, and merges their
//! logs exactly (`loadgen merge`'s code). Ctrl-C is passed on; a shard that dies makes the
//! run `partial` and loses nothing the others measured.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::config::{RunConfig, TargetSpec};
use crate::report::Report;
use crate::run::cost::Cost;
use crate::{hlog, merge, shard, sys, target};

/// Connections a shard opens per second, for the start-time lead (measured: 10k in ~1 s).
const CONNECTS_PER_S: f64 = 4000.0;
/// How often the shards and the server are checked.
const TICK: Duration = Duration::from_millis(50);
/// Flags of the parent's command line that the shards get in another form.
const OWN_FLAGS: [&str; 13] = [
    "--procs",
    "--target",
    "--addr",
    "--server-threads",
    "--server-procs",
    "--pin-server",
    "--csv",
    "--json",
    "--hdr-log",
    "--server-pid",
    "--shard",
    "--start-at",
    "--bind",
];

/// The shards' command line: the parent's, without the flags it handles itself, plus the
/// shard's own.
fn shard_args(parent: &[String], own: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in parent {
        if skip_value {
            skip_value = false;
            continue;
        }
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        if OWN_FLAGS.contains(&name) || name == "--threads" {
            skip_value = !a.contains('=');
            continue;
        }
        if name == "--quiet" {
            continue;
        }
        out.push(a.clone());
    }
    out.extend_from_slice(own);
    out
}

/// Runs `cfg` as `cfg.procs` shard processes and merges them into one report.
pub(crate) fn run(cfg: &RunConfig) -> anyhow::Result<Report> {
    let procs = cfg.procs;
    let mut target = target::start(cfg)?;
    let dir = std::env::temp_dir().join(format!("loadgen-procs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let per_shard = cfg.conns.div_ceil(procs as usize);
    let lead = Duration::from_secs(1) + Duration::from_secs_f64(per_shard as f64 / CONNECTS_PER_S);
    let start_at = SystemTime::now() + lead;
    let start = Instant::now() + lead;
    let at = start_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let loopback_v4 = matches!(&target.addr, servers::ListenAddr::Tcp(a) if a.ip().is_loopback() && a.is_ipv4());
    let parent: Vec<String> = std::env::args().skip(1).collect();
    let exe = PathBuf::from("/proc/self/exe");
    let threads = (cfg.threads / procs as usize).max(1);
    let mut shards: Vec<Child> = Vec::new();
    for i in 0..procs {
        let mut own: Vec<String> = [
            "--addr".to_string(),
            target.addr.to_string(),
            "--shard".into(),
            format!("{i}/{procs}"),
            "--start-at".into(),
            format!("{at:.6}"),
            "--hdr-log".into(),
            log_path(&dir, i).display().to_string(),
            "--threads".into(),
            threads.to_string(),
            "--quiet".into(),
        ]
        .into();
        if !cfg.bind.is_empty() {
            let ips: Vec<String> = cfg.bind.iter().map(ToString::to_string).collect();
            own.extend(["--bind".into(), ips.join(",")]);
        } else if loopback_v4 {
            // Its own source address: ~28k ports of its own towards the server.
            own.extend(["--bind".into(), format!("127.0.0.{}", 2 + i)]);
        }
        let child = Command::new(&exe)
            .args(shard_args(&parent, &own))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start shard {i} of {procs}"))?;
        shards.push(child);
    }
    let server_pid = target.server.as_ref().map(|s| s.pid());
    let mut cost = Cost::new(server_pid);
    let window = (start + cfg.warmup, start + cfg.warmup + cfg.duration);
    let interrupted = crate::signals::flag();
    let mut stop_reason = None;
    let mut passed_on = false;
    loop {
        let running = shards
            .iter_mut()
            .filter_map(|c| c.try_wait().ok())
            .filter(Option::is_none)
            .count();
        if running == 0 {
            break;
        }
        if !passed_on {
            let why = if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                Some("interrupted".to_string())
            } else {
                target
                    .server
                    .as_mut()
                    .and_then(|s| s.exited())
                    .map(|st| format!("the server exited ({st})"))
            };
            if let Some(why) = why {
                // Each shard stops and writes what it measured.
                for c in &shards {
                    let _ = sys::signal(c.id(), rustix::process::Signal::TERM);
                }
                stop_reason = Some(why);
                passed_on = true;
            }
        }
        let now = Instant::now();
        let next = cost.tick(now, Some(window));
        std::thread::sleep(next.map_or(TICK, |t| TICK.min(t.saturating_duration_since(now))));
    }
    let (_, _, server_cost) = cost.finish();
    if let Some(server) = target.server.as_mut() {
        server.stop();
    }
    let mut logs = Vec::new();
    let mut results = Vec::new();
    let mut stamp = None;
    for i in 0..procs {
        // A shard that died before writing its log is missing: the run is partial.
        if let Ok((ivs, notes)) = hlog::read_with_notes(&log_path(&dir, i)) {
            let (s, r) = shard::parse_notes(&notes);
            stamp = stamp.or(s);
            results.extend(r);
            logs.push(ivs);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let stamp = stamp.ok_or_else(|| anyhow::anyhow!("no shard of the run wrote its interval log"))?;
    let mut total = shard::combine(&results, procs);
    total.stop_reason = stop_reason.or(total.stop_reason);
    if total.stop_reason.is_some() {
        total.status = total.status.max(crate::report::Status::Partial);
    }
    let merged = merge::merge(&logs);
    let mut report = merge::report(
        &merged,
        &target.addr.to_string(),
        &cfg.label,
        Some((&stamp, &total, procs)),
    );
    report.target = target.name.clone();
    report.transport = Some(target.addr.transport());
    report.conns = cfg.conns;
    report.server = match &cfg.target {
        TargetSpec::Model(_) => server_cost,
        TargetSpec::Addr(_) => report.server,
    };
    Ok(report)
}

fn log_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join(format!("shard-{shard}.hlog"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_get_the_parents_flags_but_their_own_target_and_outputs() {
        let parent: Vec<String> = [
            "run",
            "--target",
            "mio",
            "--conns",
            "50000",
            "--procs=3",
            "--csv",
            "x.csv",
            "--msg-size",
            "128",
            "--quiet",
            "--threads",
            "4",
        ]
        .map(String::from)
        .into();
        let own: Vec<String> = ["--addr", "127.0.0.1:9", "--shard", "0/3"].map(String::from).into();
        assert_eq!(
            shard_args(&parent, &own),
            [
                "run",
                "--conns",
                "50000",
                "--msg-size",
                "128",
                "--addr",
                "127.0.0.1:9",
                "--shard",
                "0/3"
            ]
        );
    }
}
