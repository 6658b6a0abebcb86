//! Readings of another process (the server): CPU time, peak memory and threads, from
//! `/proc/<pid>`; and finding the process that listens at an address on this machine, so
//! `--addr` to a local server is measured without `--server-pid`. This process's own usage
//! comes from [`crate::os::sys::self_usage`].

use std::net::SocketAddr;

use procfs::process::FDTarget;
use servers::ListenAddr;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProcSample {
    /// User + system CPU time so far, in seconds.
    pub(crate) cpu_s: f64,
    /// Peak resident set size (VmHWM), KiB.
    pub(crate) peak_rss_kib: u64,
    /// Threads now.
    pub(crate) threads: u64,
    /// Resident set size now (VmRSS), KiB.
    pub(crate) rss_kib: u64,
    /// Open descriptors now (0 when `/proc/<pid>/fd` cannot be listed: another user's).
    pub(crate) fds: u64,
    /// The host's CPU by mode so far (from an agent only).
    pub(crate) host: Option<HostCpu>,
    /// The server's listeners (from an agent only; locally the run reads them itself).
    pub(crate) listen: Option<crate::os::listener::Backlog>,
}

impl ProcSample {
    /// Adds another process's reading (of the same tree).
    fn add(&mut self, other: &ProcSample) {
        self.cpu_s += other.cpu_s;
        self.peak_rss_kib += other.peak_rss_kib;
        self.threads += other.threads;
        self.rss_kib += other.rss_kib;
        self.fds += other.fds;
    }
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status` of `pid` and of its descendants (a
/// server of several processes, `--server-procs`, or one that forks per connection, like
/// `socat ... fork`), summed: CPU and threads added, peak RSS added over the processes;
/// `None` once `pid` is gone. A process's CPU includes its children that exited and were
/// waited for (cutime, cstime), so a child's CPU moves from its own reading to its
/// parent's when it exits, and a window is not shortchanged by connections that closed
/// before its end was read.
pub(crate) fn sample(pid: u32) -> Option<ProcSample> {
    sample_depth(pid, 0)
}

/// Descendants deeper than this are not followed (a fork loop cannot make a reading slow).
const MAX_DEPTH: u32 = 4;

/// Like [`sample`], with the descendants found by the parent pid of every process in
/// `/proc` instead of the kernel's `children` lists, which can miss children while others
/// are forked or exit (the kernel documents them as unreliable then): a window reading
/// that missed a forking server's busy children read its CPU backwards. A walk over every
/// process, so for the window's two readings, not for every tick.
pub(crate) fn sample_exact(pid: u32) -> Option<ProcSample> {
    let parents: Vec<(u32, u32)> = procfs::process::all_processes()
        .ok()?
        .flatten()
        .filter_map(|p| {
            let s = p.stat().ok()?;
            Some((u32::try_from(s.pid).ok()?, u32::try_from(s.ppid).ok()?))
        })
        .collect();
    let mut total = sample_one_with(pid, true)?;
    let mut level = vec![pid];
    for _ in 0..MAX_DEPTH {
        let next: Vec<u32> = parents
            .iter()
            .filter(|(_, ppid)| level.contains(ppid))
            .map(|&(child, _)| child)
            .collect();
        for &child in &next {
            // A child gone since the walk: its CPU is in its parent's cutime, or lost.
            if let Some(s) = sample_one_with(child, true) {
                total.add(&s);
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Some(total)
}

fn sample_depth(pid: u32, depth: u32) -> Option<ProcSample> {
    let mut total = sample_one(pid)?;
    if depth >= MAX_DEPTH {
        return Some(total);
    }
    for child in children(pid) {
        if let Some(s) = sample_depth(child, depth + 1) {
            total.add(&s);
        }
    }
    Some(total)
}

/// The child processes of `pid` (from every thread's `children` list).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn sample_one(pid: u32) -> Option<ProcSample> {
    sample_one_with(pid, false)
}

/// The CPU its live threads ran, in seconds, from each one's `schedstat` (nanoseconds);
/// `None` when it cannot be read.
fn live_threads_runtime_s(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        ns += schedstat_ns(&task.path().join("schedstat"))?;
    }
    Some(ns as f64 / 1e9)
}

/// The CPU time a task ran, in nanoseconds: the first field of its `schedstat`.
pub(crate) fn schedstat_ns(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One process; with `precise`, its own CPU is also read from its threads' `schedstat`
/// (nanoseconds) and the larger reading kept: `stat` counts in clock ticks (10 ms here)
/// and truncates each process, so a server that forks a process per connection, each
/// running a few milliseconds (socat ... fork, measured: 90 processes), read as 0 s.
/// `stat` stays the floor: it also holds threads that already exited, which `schedstat`
/// of the live ones does not.
fn sample_one_with(pid: u32, precise: bool) -> Option<ProcSample> {
    let p = procfs::process::Process::new(pid as i32).ok()?;
    let (stat, status) = (p.stat().ok()?, p.status().ok()?);
    let hz = crate::os::sys::clock_ticks_per_sec();
    let own_s = (stat.utime + stat.stime) as f64 / hz;
    let own_s = match precise.then(|| live_threads_runtime_s(pid)).flatten() {
        Some(live) => own_s.max(live),
        None => own_s,
    };
    // And the CPU of its children it waited for (cutime, cstime).
    let children_s = u64::try_from(stat.cutime + stat.cstime).unwrap_or(0) as f64 / hz;
    Some(ProcSample {
        cpu_s: own_s + children_s,
        // A field that cannot be read makes the whole sample unknown (empty in the report),
        // never a zero that reads as measured.
        peak_rss_kib: status.vmhwm?,
        threads: status.threads,
        rss_kib: status.vmrss?,
        fds: p.fd_count().map_or(0, |n| n as u64),
        host: None,
        listen: None,
    })
}

/// `TcpExtListenOverflows` of this network namespace: connections the kernel dropped
/// because a listener's accept queue was full (the client retries its SYN after 1 s).
pub(crate) fn listen_overflows() -> Option<u64> {
    net_counter("/proc/net/netstat", "TcpExt:", "ListenOverflows")
}

/// `Tcp RetransSegs` of this network namespace: TCP segments retransmitted (loss, or a
/// retransmission timer that fired).
pub(crate) fn tcp_retransmits() -> Option<u64> {
    procfs::net::snmp().ok().map(|s| s.tcp_retrans_segs)
}

/// Datagrams dropped on this machine (this network namespace) because a UDP socket's
/// receive buffer was full: `Udp RcvbufErrors` plus `Udp6RcvbufErrors`.
pub(crate) fn udp_rcvbuf_errors() -> Option<u64> {
    let v4 = procfs::net::snmp().ok().map(|s| s.udp_rcvbuf_errors);
    let v6 = procfs::net::snmp6().ok().map(|s| s.udp_rcvbuf_errors);
    match (v4, v6) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

/// One counter of a `/proc/net/netstat` table (procfs reads snmp and snmp6, not netstat): a
/// line of names, then one of values.
fn net_counter(file: &str, table: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with(table));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// A process found listening at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    /// Its pid.
    pub(crate) pid: u32,
    /// Its command name.
    pub(crate) command: String,
}

/// The process listening at `addr` on this machine (in this network namespace), found by
/// matching the listening socket's inode in `/proc/net/{tcp,tcp6,unix}` against the
/// descriptors in `/proc/*/fd`. `None` when the address is not local, nothing of ours can
/// see it, or `/proc` cannot be read.
pub(crate) fn find_listener(addr: &ListenAddr) -> Option<Listener> {
    let inode = listening_inode(addr)?;
    let me = std::process::id() as i32;
    let holders: Vec<Holder> = procfs::process::all_processes()
        .ok()?
        .flatten()
        .filter_map(|p| {
            if p.pid == me {
                return None;
            }
            let owns = p.fd().ok()?.flatten().any(|fd| fd.target == FDTarget::Socket(inode));
            let stat = owns.then(|| p.stat().ok()).flatten()?;
            Some(Holder {
                pid: p.pid,
                ppid: stat.ppid,
                started: stat.starttime,
                command: stat.comm,
            })
        })
        .collect();
    let server = server_of(&holders)?;
    Some(Listener {
        pid: server.pid as u32,
        command: server.command.clone(),
    })
}

/// A process holding a listening socket.
#[derive(Debug, Clone, PartialEq)]
struct Holder {
    pid: i32,
    ppid: i32,
    /// Clock ticks after boot.
    started: u64,
    command: String,
}

/// The server among the processes holding its listening socket: a forking server's
/// children inherit it (socat, inetd-style servers), so the server is the holder whose
/// parent holds none, the first started where several are. Not the lowest pid: pids wrap
/// around (`pid_max`), and a child can have a lower pid than its parent.
fn server_of(holders: &[Holder]) -> Option<&Holder> {
    holders
        .iter()
        .filter(|h| !holders.iter().any(|o| o.pid == h.ppid))
        .min_by_key(|h| (h.started, h.pid))
}

/// Whether something on this machine (this network namespace) listens at `addr`: the
/// socket tables only, without looking for its process (cheap: no walk over every
/// process's descriptors).
pub(crate) fn listens_here(addr: &ListenAddr) -> bool {
    listening_inode(addr).is_some()
}

/// The inode of the socket listening (or bound, for UDP) at `addr` on this machine.
fn listening_inode(addr: &ListenAddr) -> Option<u64> {
    Some(match addr {
        ListenAddr::Tcp(a) => tcp_listen_inode(*a)?,
        ListenAddr::Udp(a) => udp_bound_inode(*a)?,
        // The kernel answers: no socket listens.
        ListenAddr::Icmp(_) => return None,
        ListenAddr::Unix(path) | ListenAddr::SeqPacket(path) => {
            procfs::net::unix()
                .ok()?
                .into_iter()
                .find(|e| e.path.as_deref() == Some(path.as_path()) && e.state == procfs::net::UnixState::UNCONNECTED)
                .or_else(|| {
                    // A listening Unix socket shows as UNCONNECTED on some kernels, LISTENING
                    // (flag) on others: any bound entry of that path will do.
                    procfs::net::unix()
                        .ok()?
                        .into_iter()
                        .find(|e| e.path.as_deref() == Some(path.as_path()))
                })?
                .inode
        }
    })
}

/// The inode of an unconnected UDP socket bound to `addr` (or to its port on a wildcard
/// address). A connected socket (remote port set) is a client's, or a thread-per-conn
/// server's peer socket, never the one that was bound first.
fn udp_bound_inode(addr: SocketAddr) -> Option<u64> {
    let tables = [procfs::net::udp(), procfs::net::udp6()];
    tables.into_iter().flatten().flatten().find_map(|e| {
        let ours = e.local_address.port() == addr.port()
            && e.remote_address.port() == 0
            && (e.local_address.ip() == addr.ip() || e.local_address.ip().is_unspecified());
        ours.then_some(e.inode)
    })
}

fn tcp_listen_inode(addr: SocketAddr) -> Option<u64> {
    let table = if addr.is_ipv4() {
        procfs::net::tcp()
    } else {
        procfs::net::tcp6()
    };
    let listening = |e: &&procfs::net::TcpNetEntry| {
        e.state == procfs::net::TcpState::Listen
            && e.local_address.port() == addr.port()
            // An unspecified `addr` (the agent's by-port lookup) matches a listener on any
            // address of this host; a wildcard listener matches any `addr`.
            && (e.local_address.ip() == addr.ip() || e.local_address.ip().is_unspecified() || addr.ip().is_unspecified())
    };
    if let Some(e) = table.ok()?.iter().find(listening) {
        return Some(e.inode);
    }
    // An IPv6 wildcard listener also takes IPv4 connections.
    procfs::net::tcp6()
        .ok()?
        .iter()
        .find(|e| {
            e.state == procfs::net::TcpState::Listen
                && e.local_address.port() == addr.port()
                && e.local_address.ip().is_unspecified()
        })
        .map(|e| e.inode)
}

/// CPU seconds of a host by mode (`node_cpu_seconds_total`), summed over its CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostCpu {
    /// User mode (nice included).
    pub user_s: f64,
    /// System mode.
    pub system_s: f64,
    /// Software interrupts: on a server host, mostly the network stack's receive work.
    pub softirq_s: f64,
    /// Hardware interrupts.
    pub irq_s: f64,
    /// Idle (iowait included).
    pub idle_s: f64,
}

impl HostCpu {
    /// Every mode times `k` (the share of a window kept after an automatic warm-up cut).
    pub fn scaled(&self, k: f64) -> HostCpu {
        HostCpu {
            user_s: self.user_s * k,
            system_s: self.system_s * k,
            softirq_s: self.softirq_s * k,
            irq_s: self.irq_s * k,
            idle_s: self.idle_s * k,
        }
    }

    /// `self - earlier`, mode by mode (never below zero).
    pub fn since(&self, earlier: &HostCpu) -> HostCpu {
        let d = |a: f64, b: f64| (a - b).max(0.0);
        HostCpu {
            user_s: d(self.user_s, earlier.user_s),
            system_s: d(self.system_s, earlier.system_s),
            softirq_s: d(self.softirq_s, earlier.softirq_s),
            irq_s: d(self.irq_s, earlier.irq_s),
            idle_s: d(self.idle_s, earlier.idle_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forking_server_is_its_oldest_holder_not_its_lowest_pid() {
        let holder = |pid, ppid, started| Holder {
            pid,
            ppid,
            started,
            command: format!("p{pid}"),
        };
        // socat (pid 30000) forked children after the pids wrapped: 12 and 31000.
        let holders = [holder(12, 30000, 900), holder(30000, 1, 100), holder(31000, 30000, 950)];
        assert_eq!(server_of(&holders).map(|h| h.pid), Some(30000));
        // Two unrelated holders (the parent gone): the first started.
        let orphans = [holder(50, 1, 700), holder(40, 1, 800)];
        assert_eq!(server_of(&orphans).map(|h| h.pid), Some(50));
        assert_eq!(server_of(&[]), None);
    }

    #[test]
    fn a_forking_process_counts_the_cpu_of_its_children_gone_and_alive() {
        // A shell whose children burn CPU and exit (waited for: its cutime), then one that
        // burns and stays: both count, the shell's own time is nearly nothing.
        use std::os::unix::process::CommandExt;
        let script = "(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); \
                      (i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30) & sleep 30";
        // Its own process group, output nowhere: the whole group is killed at the end, so no
        // orphan outlives the test holding its output open.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", script])
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let s = sample(sh.id()).expect("the shell is there");
        // The walk over every process finds the same tree.
        let exact = sample_exact(sh.id()).expect("the shell is there");
        // SAFETY: signals the process group this test started (its pid is the group's id).
        unsafe {
            libc::kill(-(sh.id() as i32), libc::SIGKILL);
        }
        let _ = sh.wait();
        assert!(s.cpu_s > 0.05, "children's CPU counted: {s:?}");
        assert!(
            exact.cpu_s >= s.cpu_s && exact.threads == s.threads,
            "{exact:?} vs {s:?}"
        );
        assert!(
            s.threads >= 2 && s.rss_kib > 0 && s.peak_rss_kib >= s.rss_kib / 2,
            "{s:?}"
        );
    }

    #[test]
    fn finds_the_process_listening_on_a_port() {
        // Listening in this very process: skipped on purpose (it is loadgen itself), so
        // ask a child to listen instead.
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(20)"])
            .stdout(std::process::Stdio::piped())
            .spawn();
        let Ok(child) = child.as_mut() else {
            testkit::skip("finds_the_process_listening_on_a_port", "no python3");
            return;
        };
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let found = find_listener(&ListenAddr::Tcp(([127, 0, 0, 1], port).into()));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.map(|l| l.pid), Some(child.id()));
        assert_eq!(find_listener(&ListenAddr::Tcp(([127, 0, 0, 1], 1).into())), None);
    }

    #[test]
    fn reads_the_listen_overflow_counter() {
        assert!(
            listen_overflows().is_some(),
            "/proc/net/netstat has TcpExt ListenOverflows"
        );
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.threads >= 1 && s.peak_rss_kib > 0);
    }
}
