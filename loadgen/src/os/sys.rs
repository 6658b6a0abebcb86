//! Every OS call loadgen makes, in one place: CPU affinity, thread CPU time, the descriptor
//! limit, resource usage, socket options, signals and timerfds.
//!
//! Safe wrappers come from `rustix` wherever it has them. Two calls have none there and use
//! `libc` directly, each in one small `unsafe` block: `getrusage` (peak RSS and CPU of this
//! process) and the `IP_BIND_ADDRESS_NO_PORT` socket option.

use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use rustix::process::{Pid, Resource, Rlimit, Signal};
use rustix::thread::CpuSet;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

/// Restricts the calling thread (`pid` `None`) or process `pid` to `cpus`.
pub(crate) fn set_affinity(pid: Option<u32>, cpus: &[usize]) -> io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    let pid = pid.and_then(|p| Pid::from_raw(p as i32));
    rustix::thread::sched_setaffinity(pid, &set).map_err(io::Error::from)
}

/// Moves the calling thread off `cpus` (to every other CPU it may run on) until the guard
/// is dropped; nothing happens when no other CPU is left. The main thread uses it to keep
/// its periodic sampling off the CPUs `--pin-client` gave the client threads, where it
/// would preempt them.
pub(crate) fn avoid_cpus(cpus: &[usize]) -> Option<AffinityGuard> {
    let before = rustix::thread::sched_getaffinity(None).ok()?;
    let mut others = before;
    for &c in cpus {
        others.unset(c);
    }
    if others.count() == 0 {
        return None;
    }
    rustix::thread::sched_setaffinity(None, &others).ok()?;
    Some(AffinityGuard(before))
}

/// Restores the calling thread's CPU affinity when dropped.
pub(crate) struct AffinityGuard(CpuSet);

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        // Best effort: a thread left on fewer CPUs still runs.
        let _ = rustix::thread::sched_setaffinity(None, &self.0);
    }
}

/// CPU time used by the calling thread so far.
pub(crate) fn thread_cpu() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Clock ticks per second of `/proc/<pid>/stat`'s CPU times.
pub(crate) fn clock_ticks_per_sec() -> f64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100.0,
        t => t as f64,
    }
}

/// The descriptor limit now in force (soft), or `None` when unlimited or unknown.
pub(crate) fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(Resource::Nofile).current
}

/// Raises the soft descriptor limit to the hard limit; returns the limit then in force
/// (`None`: unlimited).
pub(crate) fn raise_nofile() -> Option<u64> {
    let lim = rustix::process::getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        // Refused (e.g. by a sandbox): the old soft limit stays, and is what is returned.
        let _ = rustix::process::setrlimit(Resource::Nofile, raised);
    }
    nofile_limit()
}

/// This process's own usage so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SelfUsage {
    /// User + system CPU time so far.
    pub(crate) cpu: Duration,
    /// Peak resident set size, KiB.
    pub(crate) peak_rss_kib: u64,
}

/// `getrusage(RUSAGE_SELF)` (not wrapped by rustix).
pub(crate) fn self_usage() -> SelfUsage {
    // SAFETY: rusage is plain data; getrusage fills the struct it is given a valid pointer to.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    SelfUsage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        // ru_maxrss survives execve: under `cargo run` it is cargo's peak, not loadgen's.
        // VmHWM belongs to this image; ru_maxrss only where /proc cannot be read.
        peak_rss_kib: own_peak_rss_kib().unwrap_or(ru.ru_maxrss as u64),
    }
}

/// This image's peak resident set (`VmHWM` in /proc/self/status), KiB.
fn own_peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// IP_BIND_ADDRESS_NO_PORT (not wrapped by rustix or socket2): defer the port choice of a
/// bound socket to `connect`, so the (source, destination) pair decides uniqueness.
pub(crate) fn set_bind_no_port(socket: &impl AsRawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid descriptor and a pointer to a local int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the child `cmd` will start die with its parent (SIGTERM when loadgen dies without
/// stopping it) and, with `pin`, run on those CPUs: set between fork and exec.
pub(crate) fn die_with_parent(cmd: &mut std::process::Command, pin: Option<Vec<usize>>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (raw system calls) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
            if let Some(cpus) = &pin {
                set_affinity(None, cpus)?;
            }
            Ok(())
        });
    }
}

/// Sends `signal` to process `pid` (one we started: a server child or a shard).
pub(crate) fn signal(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = Pid::from_raw(pid as i32).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    rustix::process::kill_process(pid, signal).map_err(io::Error::from)
}

/// Asks for `slack` of timer slack on the calling thread (default 50 µs), so timed
/// wake-ups are punctual.
pub(crate) fn set_timer_slack(slack: Duration) {
    // Best effort: without it, wake-ups are only up to 50 µs later.
    let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(slack.as_nanos() as u64));
}

/// TCP_INFO of a TCP socket: (retransmitted segments over its life, smoothed RTT in µs);
/// `None` for a socket that is not TCP (Unix, UDP) or that is gone. rustix and socket2
/// lack this option: one of the few direct libc calls.
pub(crate) fn tcp_info(fd: std::os::fd::RawFd) -> Option<(u32, u32)> {
    // SAFETY: tcp_info is plain old data; zeroed is a valid value of it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are live locals of the sizes passed; the kernel writes at
    // most `len` bytes and updates `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (r == 0).then_some((info.tcpi_total_retrans, info.tcpi_rtt))
}

/// A nonblocking, close-on-exec monotonic timerfd.
pub(crate) fn timerfd() -> io::Result<OwnedFd> {
    rustix::time::timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Arms `fd` to fire once at `at` on the monotonic clock (an absolute time: how long the
/// caller took since it read the clock does not make the wake-up later). Zero would disarm
/// it: at least 1 ns.
pub(crate) fn timerfd_arm_at(fd: impl AsFd, at: Duration) -> io::Result<()> {
    let at = at.max(Duration::from_nanos(1));
    let spec = Itimerspec {
        it_interval: Timespec { tv_sec: 0, tv_nsec: 0 },
        it_value: Timespec {
            tv_sec: at.as_secs() as _,
            tv_nsec: at.subsec_nanos() as _,
        },
    };
    rustix::time::timerfd_settime(fd, TimerfdTimerFlags::ABSTIME, &spec)
        .map(drop)
        .map_err(io::Error::from)
}

/// The monotonic clock now (the clock `Instant` and the timerfds read).
pub(crate) fn monotonic_now() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Reads a timerfd's expiry count, clearing its readiness. EAGAIN (not expired) is fine.
pub(crate) fn timerfd_clear(fd: impl AsFd) {
    let mut buf = [0u8; 8];
    // EAGAIN when it has not expired: nothing to clear.
    let _ = rustix::io::read(fd, &mut buf);
}

/// Nice value of the thread that merges the client threads' intervals and samples the
/// server while a run goes: lower priority than the client threads (0), so that on a busy
/// core a client thread's timer wake-up preempts it at once instead of waiting out its
/// slice (measured: sends 1-2 ms late at 50 msg/s while it merged an interval).
const AGGREGATOR_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`AGGREGATOR_NICE`] until the guard is dropped
/// (on Linux the nice value is per thread; best effort: unchanged where it could not be
/// restored).
pub(crate) fn yield_to_client_threads() -> NiceGuard {
    // Only where the nice value can be raised back afterwards (root, or RLIMIT_NICE
    // allowing it): else the next run's threads would inherit the lowered priority.
    let ceiling = rustix::process::getrlimit(rustix::process::Resource::Nice)
        .current
        .map_or(i32::MIN, |n| 20 - n as i32);
    let may_restore = |nice: i32| rustix::process::geteuid().is_root() || nice >= ceiling;
    let before = rustix::process::getpriority_process(None)
        .ok()
        .filter(|&n| may_restore(n));
    let lowered = before.is_some_and(|_| rustix::process::setpriority_process(None, AGGREGATOR_NICE).is_ok());
    let restore = before.filter(|_| lowered);
    YIELDED.set(restore);
    NiceGuard { restore }
}

thread_local! {
    /// The nice value this thread had before [`yield_to_client_threads`] lowered it.
    static YIELDED: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
}

/// Spawns a thread at the priority the calling thread had before
/// [`yield_to_client_threads`] lowered it (a new thread inherits the lowered one).
pub(crate) fn spawn_unyielded<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<std::thread::JoinHandle<T>> {
    let nice = YIELDED.get();
    std::thread::Builder::new().name(name.to_string()).spawn(move || {
        if let Some(nice) = nice {
            // Allowed: the yield was only made where it can be undone (root or RLIMIT_NICE).
            let _ = rustix::process::setpriority_process(None, nice);
        }
        f()
    })
}

/// Lifts the calling thread back to the priority it had before [`yield_to_client_threads`]
/// until the guard is dropped (nothing when it was not lowered).
pub(crate) fn unyielded() -> Unyielded {
    let lifted = YIELDED
        .get()
        .filter(|&nice| rustix::process::setpriority_process(None, nice).is_ok());
    Unyielded {
        lifted: lifted.is_some(),
    }
}

/// Lowers the thread again when dropped, if [`unyielded`] lifted it.
#[derive(Debug)]
pub(crate) struct Unyielded {
    lifted: bool,
}

impl Drop for Unyielded {
    fn drop(&mut self) {
        if self.lifted {
            // Lowering is always allowed.
            let _ = rustix::process::setpriority_process(None, AGGREGATOR_NICE);
        }
    }
}

/// Restores the thread's nice value when dropped.
pub(crate) struct NiceGuard {
    restore: Option<i32>,
}

impl Drop for NiceGuard {
    fn drop(&mut self) {
        YIELDED.set(None);
        if let Some(nice) = self.restore {
            // Checked possible before lowering (root or RLIMIT_NICE).
            let _ = rustix::process::setpriority_process(None, nice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_thread() {
        assert!(self_usage().peak_rss_kib > 0);
        let before = thread_cpu();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu() > before);
        assert!(raise_nofile().is_none_or(|l| l >= 64));
        assert!(clock_ticks_per_sec() >= 1.0);
    }

    #[test]
    fn a_thread_spawned_by_a_yielded_one_runs_at_the_priority_before() {
        // In a thread of its own: the nice value is per thread.
        std::thread::spawn(|| {
            let nice = || rustix::process::getpriority_process(None).unwrap();
            let before = nice();
            let guard = yield_to_client_threads();
            let lowered = guard.restore.is_some();
            // Not root and no RLIMIT_NICE room: nothing was lowered.
            assert_eq!(nice(), if lowered { AGGREGATOR_NICE } else { before });
            let spawned = spawn_unyielded("t", nice).unwrap().join().unwrap();
            assert_eq!(spawned, before, "lowered: {lowered}");
            assert_eq!(
                std::thread::spawn(nice).join().unwrap(),
                nice(),
                "a plain spawn inherits"
            );
            drop(guard);
            assert_eq!(nice(), before);
            assert_eq!(spawn_unyielded("t", nice).unwrap().join().unwrap(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_timerfd_fires_at_its_absolute_time() {
        let fd = timerfd().unwrap();
        let mut buf = [0u8; 8];
        timerfd_arm_at(&fd, monotonic_now() + Duration::from_secs(60)).unwrap();
        assert!(rustix::io::read(&fd, &mut buf).is_err(), "a minute ahead: not yet");
        timerfd_arm_at(&fd, monotonic_now() + Duration::from_micros(100)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(rustix::io::read(&fd, &mut buf).unwrap(), 8);
        timerfd_clear(&fd); // not expired again: EAGAIN, ignored
    }
}
