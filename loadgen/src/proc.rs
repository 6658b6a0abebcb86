//! Readings of another process (the server): CPU time, peak memory and threads, from
//! `/proc/<pid>`. This process's own usage comes from [`crate::sys::self_usage`].

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProcSample {
    /// User + system CPU time so far, in seconds.
    pub(crate) cpu_s: f64,
    /// Peak resident set size (VmHWM), KiB.
    pub(crate) peak_rss_kib: u64,
    /// Threads now.
    pub(crate) threads: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` once the process is gone.
pub(crate) fn sample(pid: u32) -> Option<ProcSample> {
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
        cpu_s: ticks as f64 / crate::sys::clock_ticks_per_sec(),
        peak_rss_kib: field("VmHWM:").unwrap_or(0),
        threads: field("Threads:").unwrap_or(0),
    })
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
        assert!((s.cpu_s - 300.0 / crate::sys::clock_ticks_per_sec()).abs() < 1e-9);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.threads >= 1 && s.peak_rss_kib > 0);
    }
}
