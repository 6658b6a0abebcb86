//! `loadgen doctor`: what limits precision and scale on this machine, measured and read,
//! each finding with why it matters and its fix. The probes take about 10 seconds:
//! timerfd wake-up lateness (100 µs and 1 ms periods), the cost of a system call, of a
//! clock read and of a cross-thread wake-up, the loopback round trip, the kernel's own ICMP
//! echo (the floor under every echo server), and the steal time over all of it; then the
//! settings read from `/proc` and `/sys`.
//!
//! `--tune` (root) applies the reversible settings (the haltpoll idle driver's polling,
//! the CPU frequency governor, ping sockets for every group), saving what it changed;
//! `--reset` restores it. Nothing that needs a reboot.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::measure::record::new_histogram;
use crate::os::sys;

mod finding;
mod system;
use finding::{finding, read};
pub use finding::{Finding, Severity};
use system::system_findings;

/// Percentiles of a probe, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
}

/// Everything doctor found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diagnosis {
    /// Lateness of a timerfd armed every 100 µs.
    pub timer_100us: Spread,
    /// Lateness of a timerfd armed every 1 ms.
    pub timer_1ms: Spread,
    /// p50 of the 100 µs probe (the field other tools read).
    pub timer_late_p50_us: f64,
    /// p99 of the 100 µs probe: the timer floor an open-loop run cannot go below.
    pub timer_late_p99_us: f64,
    /// A system call (getppid), ns.
    pub syscall_ns: f64,
    /// A monotonic clock read, ns.
    pub clock_read_ns: f64,
    /// A wake-up of a sleeping thread and back (eventfd ping-pong round trip), µs (p50).
    pub wakeup_round_trip_us: f64,
    /// The loopback round trip of one connection, 64 B, against an in-process mio server.
    pub loopback_rtt: Spread,
    /// The kernel's ICMP echo over loopback, one request at a time (24 B payload): the floor
    /// under every echo server here. `None` when no ICMP socket may be opened.
    pub icmp_floor: Option<Spread>,
    /// Whether this process may open ping sockets (`net.ipv4.ping_group_range`).
    pub ping_sockets: bool,
    /// Whether this process may open raw ICMP sockets (CAP_NET_RAW).
    pub raw_sockets: bool,
    /// Steal time over the probes, as a share of the CPU time.
    pub steal_share: f64,
    /// Other processes' CPU over the probes (the machine's busy time less doctor's own),
    /// as a share of the CPU time the machine had; `None` when `/proc/stat` could not be read.
    pub others_share: Option<f64>,
    /// `others_share` is a lower bound (the kernel's interrupt accounting is unknown).
    pub others_at_least: bool,
    /// Every finding, measured and read.
    pub findings: Vec<Finding>,
}

fn spread(h: &hdrhistogram::Histogram<u64>) -> Spread {
    let us = |q| h.value_at_quantile(q) as f64 / 1000.0;
    Spread {
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
    }
}

/// How late a timerfd armed every `period` (absolute deadlines) wakes, over `count` wake-ups.
fn timer_probe(period: Duration, count: u32) -> std::io::Result<Spread> {
    sys::set_timer_slack(Duration::from_micros(1));
    let fd = sys::timerfd()?;
    let mut h = new_histogram();
    let start = sys::monotonic_now();
    for k in 1..=count {
        let deadline = start + period * k;
        sys::timerfd_arm_at(&fd, deadline)?;
        // Wait for it: poll the (nonblocking) descriptor.
        let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        loop {
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue, // a signal: wait again
                Err(e) => return Err(e.into()),
            }
        }
        let late = sys::monotonic_now().saturating_sub(deadline);
        sys::timerfd_clear(&fd);
        h.saturating_record(late.as_nanos() as u64);
    }
    Ok(spread(&h))
}

/// Mean cost of `f`, ns, over `n` calls.
fn cost_ns(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

/// p50 of a wake-up round trip between two threads over eventfds (each side sleeps in a
/// blocking read until the other writes), µs.
fn wakeup_probe(rounds: u32) -> std::io::Result<f64> {
    let make = || rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).map_err(std::io::Error::from);
    let (ping, pong) = (make()?, make()?);
    let (ping2, pong2) = (ping.try_clone()?, pong.try_clone()?);
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        for _ in 0..rounds {
            if rustix::io::read(&ping2, &mut buf).is_err() || rustix::io::write(&pong2, &1u64.to_ne_bytes()).is_err() {
                return;
            }
        }
    });
    let mut h = new_histogram();
    let mut buf = [0u8; 8];
    for _ in 0..rounds {
        let t = Instant::now();
        rustix::io::write(&ping, &1u64.to_ne_bytes())?;
        rustix::io::read(&pong, &mut buf)?;
        h.saturating_record(t.elapsed().as_nanos() as u64);
    }
    let _ = echo.join();
    Ok(h.value_at_quantile(0.5) as f64 / 1000.0)
}

/// The loopback round trip of one 64 B connection against an in-process mio server.
fn loopback_probe(duration: Duration) -> std::io::Result<Spread> {
    let server = servers::start(servers::Model::Mio, &servers::ServerConfig::default())?;
    let servers::ListenAddr::Tcp(addr) = *server.local_addr() else {
        return Err(std::io::Error::other("the probe server is not on TCP"));
    };
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let (msg, mut back) = ([0x5Au8; 64], [0u8; 64]);
    let mut h = new_histogram();
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let t = Instant::now();
        s.write_all(&msg)?;
        s.read_exact(&mut back)?;
        h.saturating_record(t.elapsed().as_nanos() as u64);
    }
    drop(s);
    server.shutdown()?;
    Ok(spread(&h))
}

/// The kernel's ICMP echo round trip to 127.0.0.1, one request at a time for `duration`;
/// `None` when no ICMP socket may be opened or no reply came.
fn icmp_probe(duration: Duration) -> Option<Spread> {
    let mut pinger = crate::os::icmp::Pinger::open("127.0.0.1".parse().ok()?, Duration::from_millis(200)).ok()?;
    let mut h = new_histogram();
    let end = Instant::now() + duration;
    while Instant::now() < end {
        // A lost echo on loopback is not the floor's business: it is left out, not waited on.
        if let Ok(rtt) = pinger.round_trip() {
            h.saturating_record(rtt.as_nanos() as u64);
        }
    }
    (!h.is_empty()).then(|| spread(&h))
}

/// Runs the probes and reads the settings.
pub fn diagnose() -> std::io::Result<Diagnosis> {
    let (began, machine_before, self_before) = (
        Instant::now(),
        crate::os::machine::machine_cpu(),
        crate::os::sys::self_usage(),
    );
    let mut d = Diagnosis {
        timer_100us: timer_probe(Duration::from_micros(100), 20_000)?,
        timer_1ms: timer_probe(Duration::from_millis(1), 2_000)?,
        syscall_ns: cost_ns(200_000, || {
            std::hint::black_box(rustix::process::getppid());
        }),
        clock_read_ns: cost_ns(1_000_000, || {
            std::hint::black_box(Instant::now());
        }),
        wakeup_round_trip_us: wakeup_probe(20_000)?,
        loopback_rtt: loopback_probe(Duration::from_secs(2))?,
        icmp_floor: icmp_probe(Duration::from_secs(1)),
        ..Diagnosis::default()
    };
    (d.ping_sockets, d.raw_sockets) = crate::os::icmp::available();
    d.timer_late_p50_us = d.timer_100us.p50_us;
    d.timer_late_p99_us = d.timer_100us.p99_us;
    // Everything doctor ran (its probes, its in-process server) is its own CPU: the rest of
    // the busy time is other processes'.
    let own_s = crate::os::sys::self_usage()
        .cpu
        .saturating_sub(self_before.cpu)
        .as_secs_f64();
    let window = began.elapsed();
    let cpu = machine_before
        .zip(crate::os::machine::machine_cpu())
        .map(|(a, b)| b.since(&a));
    if let Some(m) = crate::os::machine::of(cpu, window, own_s, crate::os::machine::ServerHere::Elsewhere) {
        let capacity = m.capacity_s.max(f64::MIN_POSITIVE);
        d.steal_share = m.steal_s / capacity;
        d.others_share = m.others_s.map(|o| o / capacity);
        d.others_at_least = m.others_at_least;
    }
    d.findings = findings(&d);
    Ok(d)
}

/// The findings: the measured ones first, then what the system says.
fn findings(d: &Diagnosis) -> Vec<Finding> {
    use Severity::{Info, Warn};
    let mut f = Vec::new();
    let t = &d.timer_100us;
    let late = t.p50_us > 20.0;
    f.push(finding(
        "timer wake-up lateness (every 100 µs)",
        format!(
            "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            t.p50_us, t.p99_us, t.p999_us
        ),
        "the floor of every open-loop send: `--pacing sleep` is at least this late, and hybrid's margin must cover it",
        if late {
            "see the idle-driver finding; or use --pacing hybrid (the default) or spin"
        } else {
            ""
        },
        if late { Warn } else { Info },
    ));
    let t = &d.timer_1ms;
    f.push(finding(
        "timer wake-up lateness (every 1 ms)",
        format!(
            "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            t.p50_us, t.p99_us, t.p999_us
        ),
        "a sleeping thread woken less often pays a deeper idle state",
        "",
        Info,
    ));
    f.push(finding(
        "cost of a system call / a clock read",
        format!("{:.0} ns / {:.0} ns", d.syscall_ns, d.clock_read_ns),
        "loadgen makes a few system calls per message (epoll) and two clock reads; on a VM both cost more",
        if d.syscall_ns > 500.0 {
            "--engine uring batches the system calls of a loop iteration"
        } else {
            ""
        },
        if d.syscall_ns > 500.0 { Warn } else { Info },
    ));
    f.push(finding(
        "wake-up round trip between two threads",
        format!("p50 {:.1} µs", d.wakeup_round_trip_us),
        "every reply that finds the other side asleep pays one: the cost of a message at low load",
        "",
        Info,
    ));
    let r = &d.loopback_rtt;
    f.push(finding(
        "loopback round trip, 1 connection, 64 B (in-process mio server)",
        format!("p50 {:.1} µs, p99 {:.1} µs", r.p50_us, r.p99_us),
        "what TCP and a user-space loop cost together, at their least",
        "",
        Info,
    ));
    icmp_findings(d, &mut f);
    neighbour_findings(d, &mut f);
    system_findings(&mut f);
    f
}

/// The kernel's own echo: which ICMP sockets may be opened, and its round trip.
fn icmp_findings(d: &Diagnosis, f: &mut Vec<Finding>) {
    use Severity::{Info, Warn};
    let yes = |b: bool| if b { "yes" } else { "no" };
    f.push(finding(
        "ICMP echo sockets (ping / raw)",
        format!("{} / {}", yes(d.ping_sockets), yes(d.raw_sockets)),
        "--addr icmp://HOST loads the kernel's echo: over ping sockets its cost per message does not grow with --conns, over raw sockets it does",
        if d.ping_sockets {
            ""
        } else {
            "doctor --tune (root) allows ping sockets: net.ipv4.ping_group_range = 0 2147483647"
        },
        if d.ping_sockets || d.raw_sockets { Info } else { Warn },
    ));
    f.push(finding(
        "the kernel's ICMP echo round trip, 1 at a time (the floor)",
        match &d.icmp_floor {
            Some(r) => format!("p50 {:.1} µs, p99 {:.1} µs", r.p50_us, r.p99_us),
            None => "not measured (no ICMP socket may be opened)".to_string(),
        },
        "no echo server on this machine can answer faster: a model's round trip less this is what the model and its transport add",
        "",
        Info,
    ));
}

/// What else took the machine's CPU during the probes: the hypervisor (steal), other
/// processes.
fn neighbour_findings(d: &Diagnosis, f: &mut Vec<Finding>) {
    use Severity::{Info, Warn};
    f.push(finding(
        "steal time during the probes",
        format!("{:.2}% of the CPU time", d.steal_share * 100.0),
        "time the hypervisor gave to others: it shows as random stalls",
        if d.steal_share > 0.01 {
            "measure on a quieter host, or with dedicated vCPUs"
        } else {
            ""
        },
        if d.steal_share > 0.01 { Warn } else { Info },
    ));
    if let Some(share) = d.others_share {
        let busy = share > crate::report::MachineUse::OTHERS_DISTURB;
        f.push(finding(
            "other processes during the probes",
            format!(
                "{}{:.1}% of the CPU time",
                if d.others_at_least { "at least " } else { "" },
                share * 100.0
            ),
            "CPU they take is taken from client and server: a run beside them measures them too",
            if busy {
                "stop them before measuring (top shows who); a run names them in its machine line"
            } else {
                ""
            },
            if busy { Warn } else { Info },
        ));
    }
}

/// This machine's timer floor: the p99 lateness (µs) of a timerfd armed every 100 µs, the
/// least an open-loop send can be late by. Measured once per boot (3,000 wake-ups, about
/// 0.3 s) and cached under the user's cache directory with the boot id; `None` when it
/// cannot be measured.
pub fn timer_floor() -> Option<f64> {
    let boot = read("/proc/sys/kernel/random/boot_id")?;
    let dir = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("echo-bench");
    let file = dir.join(format!("timer-floor-{boot}.json"));
    if let Some(p99) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["timer_late_p99_us"].as_f64())
    {
        return Some(p99);
    }
    let p99 = timer_probe(Duration::from_micros(100), 3_000).ok()?.p99_us;
    // A cache that cannot be written costs the next run the same 0.3 s, nothing else.
    let _ = std::fs::create_dir_all(&dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            crate::os::files::replace_file(
                &file,
                serde_json::json!({ "timer_late_p99_us": p99 }).to_string().as_bytes(),
            )
        });
    Some(p99)
}

/// The file `--tune` saves the previous settings in, for `--reset`.
pub fn state_file() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("echo-bench").join("doctor-saved.json")
}

/// The reversible settings `--tune` changes: (path, value it sets).
const TUNABLES: [(&str, &str); 3] = [
    ("/sys/module/haltpoll/parameters/guest_halt_poll_ns", "200000"),
    ("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "performance"),
    // Every group may open ping sockets: `--addr icmp://` then needs no raw socket.
    (crate::os::icmp::PING_GROUP_RANGE, "0 2147483647"),
];

/// Applies the reversible settings that exist here, saving the previous values; returns
/// what it changed.
pub fn tune() -> std::io::Result<Vec<String>> {
    let mut saved = Vec::new();
    let mut changed = Vec::new();
    for (path, value) in TUNABLES {
        let Some(old) = read(path) else { continue };
        // The kernel writes some values tab-separated (ping_group_range): compare the words.
        if old.split_whitespace().eq(value.split_whitespace()) {
            continue;
        }
        std::fs::write(path, value)?;
        changed.push(format!("{path}: {old} -> {value}"));
        saved.push((path.to_string(), old));
    }
    let file = state_file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::os::files::replace_file(&file, &serde_json::to_vec(&saved).map_err(std::io::Error::other)?)
        .map_err(std::io::Error::other)?;
    Ok(changed)
}

/// Restores what `--tune` saved; returns what it restored.
pub fn reset() -> std::io::Result<Vec<String>> {
    let file = state_file();
    let text = std::fs::read_to_string(&file)?;
    let saved: Vec<(String, String)> = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    let mut restored = Vec::new();
    for (path, value) in saved {
        std::fs::write(&path, &value)?;
        restored.push(format!("{path}: back to {value}"));
    }
    std::fs::remove_file(&file)?;
    Ok(restored)
}

/// The diagnosis as text: a line per finding.
pub fn render(d: &Diagnosis) -> String {
    let mut o = String::new();
    for f in &d.findings {
        let mark = match f.severity {
            Severity::Warn => "WARNING ",
            Severity::Info => "",
        };
        o.push_str(&format!("{mark}{}: {}\n    why: {}\n", f.what, f.value, f.why));
        if !f.fix.is_empty() {
            o.push_str(&format!("    fix: {}\n", f.fix));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_timer_probe_measures_lateness() {
        let s = timer_probe(Duration::from_micros(500), 200).unwrap();
        assert!(
            s.p50_us >= 0.0 && s.p50_us <= s.p99_us && s.p99_us <= s.p999_us,
            "{s:?}"
        );
        assert!(s.p50_us < 100_000.0, "{s:?}");
    }

    #[test]
    fn the_settings_are_read_with_their_reasons() {
        let mut f = Vec::new();
        system_findings(&mut f);
        for what in [
            "idle driver",
            "clocksource",
            "descriptor limit (soft / hard)",
            "somaxconn",
            "io_uring",
        ] {
            let x = f
                .iter()
                .find(|x| x.what == what)
                .unwrap_or_else(|| panic!("{what} missing"));
            assert!(!x.value.is_empty() && !x.why.is_empty(), "{x:?}");
        }
    }
}
