//! How many more threads this process can start before the kernel refuses one, from the
//! limits that bite first on a box like ours:
//!
//! - `vm.max_map_count`: every std thread maps about [`MAPS_PER_THREAD`] regions (its stack
//!   and guard page, its signal stack and guard). Past the limit the signal-stack mapping
//!   fails *inside the new thread*, where std panics: with `panic = "abort"` that kills the
//!   whole server. So this is the limit to respect with a margin;
//! - `kernel.pid_max` and `kernel.threads-max`: every thread takes a pid, machine-wide, so
//!   the budget counts only the pids still free now (threads of every process, from
//!   `/proc/loadavg`), and thread-per-conn takes its budget again as it goes: several
//!   server processes on one box share those pids;
//! - `RLIMIT_NPROC`: threads of this user (not enforced for root).
//!
//! The blocking models take their budget at start: thread-per-conn refuses connections
//! past it (closes them and logs, rate-limited) and goes on serving the others; the
//! thread pool refuses to start with more workers than the budget.

use std::fmt;
use std::io;

/// Memory mappings per std thread: stack + guard, signal stack + guard.
pub const MAPS_PER_THREAD: u64 = 4;
/// Mappings left for everything else (heap arenas, libraries, buffers).
const MAPS_MARGIN: u64 = 2048;
/// Pids left for the rest of the machine.
const PIDS_MARGIN: u64 = 1024;

/// The thread budget and what it was derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadBudget {
    /// Threads this process may still start.
    pub threads: u64,
    /// `vm.max_map_count`, if readable.
    pub max_map_count: Option<u64>,
    /// `kernel.pid_max`, if readable.
    pub pid_max: Option<u64>,
    /// `kernel.threads-max`, if readable.
    pub threads_max: Option<u64>,
    /// The soft `RLIMIT_NPROC`, if limited.
    pub nproc: Option<u64>,
}

impl fmt::Display for ThreadBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        write!(
            f,
            "{} threads (vm.max_map_count {} at {MAPS_PER_THREAD} maps per thread, kernel.pid_max {}, \
             kernel.threads-max {}, RLIMIT_NPROC {})",
            self.threads,
            show(self.max_map_count),
            show(self.pid_max),
            show(self.threads_max),
            self.nproc.map_or("unlimited".into(), |v| v.to_string())
        )
    }
}

/// Refuses (`InvalidInput`) to start `workers` threads of `model` beyond the thread budget:
/// a pool would die when a worker's start fails, not degrade.
pub(crate) fn refuse_beyond_budget(model: &str, workers: usize) -> io::Result<()> {
    let budget = thread_budget();
    if workers as u64 > budget.threads {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{model}: --threads {workers} is beyond this machine's thread budget of {budget}; lower --threads"),
        ));
    }
    Ok(())
}

/// Threads (scheduling entities) on the whole machine now: the 4th field of
/// `/proc/loadavg` is `running/total`.
fn threads_now() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

fn sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads this machine's limits and this process's use of them now.
pub fn thread_budget() -> ThreadBudget {
    let max_map_count = sysctl("vm/max_map_count");
    let pid_max = sysctl("kernel/pid_max");
    let threads_max = sysctl("kernel/threads-max");
    let nproc = rustix::process::getrlimit(rustix::process::Resource::Nproc).current;
    let maps_used = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count() as u64);
    let by_maps = max_map_count.map(|m| m.saturating_sub(maps_used + MAPS_MARGIN) / MAPS_PER_THREAD);
    let used = threads_now().unwrap_or(0);
    let by_pids = pid_max.map(|p| p.saturating_sub(used + PIDS_MARGIN));
    let by_threads = threads_max.map(|t| t.saturating_sub(used + PIDS_MARGIN));
    let threads = [by_maps, by_pids, by_threads, nproc]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX);
    ThreadBudget {
        threads,
        max_map_count,
        pid_max,
        threads_max,
        nproc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_a_finite_budget_below_its_map_limit() {
        let b = thread_budget();
        assert!(b.threads > 100, "{b}");
        if let Some(maps) = b.max_map_count {
            assert!(b.threads <= maps / MAPS_PER_THREAD, "{b}");
        }
        assert!(b.to_string().contains("vm.max_map_count"));
    }
}
