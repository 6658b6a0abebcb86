//! The defaults that depend on the machine or the run: client threads, the thread pool's
//! workers, the cap of `--warmup auto`.

use std::time::Duration;

use super::kinds::TargetSpec;

/// The most warm-up `--warmup auto` may choose.
pub const WARMUP_AUTO_CAP: Duration = Duration::from_secs(10);

/// Client threads when `--threads` is not given, and why: half the cores (at least one)
/// when the server runs on this machine (spawned with `--target`, or an `--addr` whose
/// listening socket is found here), so the server keeps cores of its own; every core for a
/// server elsewhere. On 2 cores against a local server a second client thread takes the
/// server's core.
pub fn default_threads(target: &TargetSpec) -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let half = (cores / 2).max(1);
    match target {
        TargetSpec::Model(_) => (
            half,
            format!("default: half of {cores} cores, the rest for the spawned server"),
        ),
        TargetSpec::Addr(a) if crate::os::proc::listens_here(a) => (
            half,
            format!("default: half of {cores} cores, the server listens on this machine"),
        ),
        TargetSpec::Addr(_) => (
            cores,
            format!("default: all {cores} cores, the server is not on this machine"),
        ),
    }
}

/// The thread pool's workers when `--server-workers` is not given: one per connection (a
/// connection holds its worker until it closes, so fewer leave connections unserved),
/// split over the server processes with room for SO_REUSEPORT's uneven spread (a hash, not
/// a dealer), capped at the thread budget (beyond it the pool could not start).
pub fn pool_workers(conns: usize, server_procs: u32) -> u32 {
    let budget = servers::thread_budget().threads.min(100_000) as usize;
    let procs = server_procs as usize;
    let per_proc = if procs > 1 { conns * 6 / (5 * procs) + 16 } else { conns };
    per_proc.min(budget).max(1) as u32
}

/// `--agent ADDR` and its `--agent-token FILE`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTarget {
    /// The agent's HOST:PORT.
    pub addr: String,
    /// The bearer token read from the file.
    pub token: Option<String>,
}

/// Reads `--agent` and `--agent-token` of a run.
pub(super) fn agent_target(a: &crate::cli::RunArgs) -> Result<Option<AgentTarget>, crate::error::Error> {
    let Some(addr) = &a.agent else { return Ok(None) };
    if cfg!(not(feature = "agent")) {
        return Err(crate::error::Error::NotBuilt {
            what: "--agent",
            feature: "agent",
        });
    }
    if a.target.is_some() {
        // A spawned server is read from /proc directly; an agent reading it too would be
        // a second, slower source of the same numbers.
        return Err(crate::error::flag_error(
            "--agent",
            addr,
            "reads a server on another host: use it with --addr, not --target (whose server is read directly)",
        ));
    }
    if addr.parse::<std::net::SocketAddr>().is_err()
        && addr.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none()
    {
        return Err(crate::error::flag_error(
            "--agent",
            addr,
            "expected HOST:PORT, e.g. 10.0.0.2:9464",
        ));
    }
    let token = a
        .agent_token
        .as_ref()
        .map(|p| crate::config::token::read_token("--agent-token", p))
        .transpose()?;
    Ok(Some(AgentTarget {
        addr: addr.clone(),
        token,
    }))
}
