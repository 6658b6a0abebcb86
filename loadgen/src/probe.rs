//! The cost of the server and of the client: CPU time, memory and threads, read from
//! `/proc/<pid>` for the server child and from `getrusage` for this process.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time so far, in seconds.
    pub cpu_s: f64,
    /// Peak resident set size (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Threads now.
    pub threads: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse(&stat, &status)
}

fn parse(stat: &str, status: &str) -> Option<ProcSample> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the state.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    Some(ProcSample {
        cpu_s: ticks as f64 / clock_ticks_per_sec(),
        peak_rss_kib: field("VmHWM:").unwrap_or(0),
        threads: field("Threads:").unwrap_or(0),
    })
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// This process's own usage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SelfUsage {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Peak resident set size, KiB.
    pub peak_rss_kib: u64,
}

/// `getrusage(RUSAGE_SELF)`.
pub fn self_usage() -> SelfUsage {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a local rusage.
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    SelfUsage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        peak_rss_kib: ru.ru_maxrss as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files_with_odd_names() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\nThreads:\t3\n";
        let s = parse(stat, status).unwrap();
        assert_eq!((s.peak_rss_kib, s.threads), (2048, 3));
        assert!((s.cpu_s - 300.0 / clock_ticks_per_sec()).abs() < 1e-9);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.threads >= 1 && s.peak_rss_kib > 0);
        assert!(self_usage().peak_rss_kib > 0);
    }
}
