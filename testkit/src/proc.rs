//! Readings of a process from `/proc` (through the `procfs` crate).

use std::time::{Duration, Instant};

use procfs::process::Process;

fn process(pid: u32) -> Process {
    Process::new(pid as i32).unwrap_or_else(|e| panic!("process {pid}: {e}"))
}

/// Resident set size now, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = process(pid)
        .status()
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status.vmrss.expect("VmRSS")
}

/// Threads now.
pub fn threads(pid: u32) -> u64 {
    process(pid)
        .stat()
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"))
        .num_threads as u64
}

/// Open descriptors now.
pub fn open_fds(pid: u32) -> usize {
    process(pid)
        .fd_count()
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
}

/// User + system CPU time so far.
pub fn cpu(pid: u32) -> Duration {
    let stat = process(pid).stat().unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    let ticks = stat.utime + stat.stime;
    Duration::from_secs_f64(ticks as f64 / procfs::ticks_per_second() as f64)
}

/// Whether `pid` has exited (gone, or a zombie not yet reaped).
pub fn is_gone(pid: u32) -> bool {
    match Process::new(pid as i32).and_then(|p| p.stat()) {
        Ok(stat) => stat.state == 'Z',
        Err(_) => true,
    }
}

/// The first child of `pid`, waiting up to 10 s for one to appear (the server a loadgen
/// run started).
pub fn wait_for_child(pid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next() {
            return c.parse().expect("a pid");
        }
        assert!(Instant::now() < deadline, "process {pid} never started a child");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// TCP sockets of this machine in CLOSE_WAIT (their peer closed, they have not) whose
/// remote port is `port` (IPv4 and IPv6): clients of the server at `port` that did not
/// close after it did.
pub fn close_wait_towards(port: u16) -> usize {
    // An unreadable table is a failure, never "none found".
    let v4 = procfs::net::tcp().expect("read /proc/net/tcp");
    let v6 = procfs::net::tcp6().expect("read /proc/net/tcp6");
    v4.iter()
        .chain(v6.iter())
        .filter(|e| e.state == procfs::net::TcpState::CloseWait && e.remote_address.port() == port)
        .count()
}

/// UDP sockets of this machine bound to local port `port` (IPv4 and IPv6): a server's own
/// sockets on its port.
pub fn udp_bound_to(port: u16) -> usize {
    // An unreadable table is a failure, never "none found".
    let v4 = procfs::net::udp().expect("read /proc/net/udp");
    let v6 = procfs::net::udp6().expect("read /proc/net/udp6");
    v4.iter()
        .chain(v6.iter())
        .filter(|e| e.local_address.port() == port)
        .count()
}
