//! What the system's settings say: the idle driver, clocksource, governor, turbo, isolated
//! CPUs, virtualization, and the limits on descriptors, ports, backlogs, threads and
//! socket buffers; io_uring. Each finding with why it matters and its fix.

use super::finding::{finding, read, Finding, Severity};

/// What the system's settings say.
pub(super) fn system_findings(f: &mut Vec<Finding>) {
    cpu_findings(f);
    isolation_findings(f);
    limit_findings(f);
    sysctl_findings(f);
}

/// The CPUs: idle driver and halt polling, clocksource, governor, turbo.
fn cpu_findings(f: &mut Vec<Finding>) {
    use Severity::{Info, Warn};
    let idle = read("/sys/devices/system/cpu/cpuidle/current_driver").unwrap_or_else(|| "none".into());
    let poll = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns");
    match (idle.as_str(), poll.as_deref()) {
        ("haltpoll", Some("0")) => f.push(finding(
            "idle driver",
            "haltpoll, guest_halt_poll_ns = 0 (halt at once)",
            "an idle vCPU halts at once and waking it costs a VM exit: timer wake-ups are tens of µs late, and a server whose vCPU idles pays it on every request",
            "echo 200000 > /sys/module/haltpoll/parameters/guest_halt_poll_ns (or loadgen doctor --tune); keep it equal between compared runs",
            Warn,
        )),
        (driver, poll) => f.push(finding(
            "idle driver",
            format!("{driver}{}", poll.map(|p| format!(", guest_halt_poll_ns = {p}")).unwrap_or_default()),
            "how deep an idle CPU sleeps decides how late a wake-up is",
            "",
            Info,
        )),
    }
    let clock =
        read("/sys/devices/system/clocksource/clocksource0/current_clocksource").unwrap_or_else(|| "unknown".into());
    let slow_clock = !matches!(clock.as_str(), "tsc" | "kvm-clock" | "arch_sys_counter");
    f.push(finding(
        "clocksource",
        &clock,
        "every timestamp reads it; hpet or acpi_pm make a clock read a slow system call",
        if slow_clock {
            "use tsc if the kernel marks it stable (clocksource=tsc on the kernel command line)"
        } else {
            ""
        },
        if slow_clock { Warn } else { Info },
    ));
    let governor = read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    f.push(finding(
        "CPU frequency governor",
        governor
            .as_deref()
            .unwrap_or("none (no cpufreq: a VM, or fixed frequency)"),
        "a governor that scales down makes the first requests after idle slower",
        if governor.as_deref().is_some_and(|g| g != "performance") {
            "loadgen doctor --tune sets performance"
        } else {
            ""
        },
        if governor.as_deref().is_some_and(|g| g != "performance") {
            Warn
        } else {
            Info
        },
    ));
    let turbo = read("/sys/devices/system/cpu/intel_pstate/no_turbo")
        .map(|v| if v == "1" { "off" } else { "on" }.to_string())
        .or_else(|| {
            read("/sys/devices/system/cpu/cpufreq/boost").map(|v| if v == "1" { "on" } else { "off" }.to_string())
        });
    f.push(finding(
        "turbo / boost",
        turbo.as_deref().unwrap_or("not exposed"),
        "turbo makes throughput depend on temperature and on how many cores are busy",
        "",
        Info,
    ));
}

/// The CPUs' isolation and the signs of (nested) virtualization.
fn isolation_findings(f: &mut Vec<Finding>) {
    use Severity::Info;
    let isolated = read("/sys/devices/system/cpu/isolated").filter(|s| !s.is_empty());
    let nohz = read("/sys/devices/system/cpu/nohz_full").filter(|s| !s.is_empty() && s != "(null)");
    f.push(finding(
        "isolated / nohz_full CPUs",
        format!(
            "{} / {}",
            isolated.as_deref().unwrap_or("none"),
            nohz.as_deref().unwrap_or("none")
        ),
        "without them a spinning client thread loses its CPU to the scheduler tick (about 1% of the time on a VM)",
        "boot options isolcpus= and nohz_full= (a reboot: doctor does not apply them)",
        Info,
    ));
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let vm = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.contains(" hypervisor"));
    let vmx = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && (l.contains(" vmx") || l.contains(" svm")));
    f.push(finding(
        "virtualization",
        match (vm, vmx) {
            (true, true) => "a VM that can run VMs (nested virtualization likely)",
            (true, false) => "a virtual machine",
            (false, _) => "bare metal",
        },
        "on a VM system calls, wake-ups and interrupts cost more, and a week's host may differ from the next: compare runs of one sitting",
        "",
        Info,
    ));
}

/// The limits of this process: descriptors and ephemeral ports.
fn limit_findings(f: &mut Vec<Finding>) {
    use Severity::{Info, Warn};
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let fmt = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    let low = lim.maximum.is_some_and(|m| m < 65_536);
    f.push(finding(
        "descriptor limit (soft / hard)",
        format!("{} / {}", fmt(lim.current), fmt(lim.maximum)),
        "each connection is a descriptor on each side: the hard limit bounds --conns per process",
        if low {
            "raise the hard limit (ulimit -Hn, limits.conf), or split the load with --procs / --server-procs"
        } else {
            ""
        },
        if low { Warn } else { Info },
    ));
    let ports = read("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    f.push(finding(
        "ephemeral port range",
        &ports,
        "bounds connections per source address towards one server address",
        "--bind 127.0.0.2,127.0.0.3,... adds source addresses",
        Info,
    ));
}

/// The kernel's limits on connections, threads and socket buffers, and io_uring.
fn sysctl_findings(f: &mut Vec<Finding>) {
    use Severity::{Info, Warn};
    for (what, path, why) in [
        (
            "tcp_tw_reuse",
            "/proc/sys/net/ipv4/tcp_tw_reuse",
            "TIME_WAIT sockets reused for new connects: churn runs need it",
        ),
        (
            "somaxconn",
            "/proc/sys/net/core/somaxconn",
            "caps every listen backlog: a burst of connects beyond it is dropped and retried after 1 s",
        ),
        (
            "tcp_max_syn_backlog",
            "/proc/sys/net/ipv4/tcp_max_syn_backlog",
            "half-open connections a listener keeps",
        ),
        (
            "pid_max",
            "/proc/sys/kernel/pid_max",
            "every thread takes a pid: it bounds thread-per-conn machine-wide",
        ),
        (
            "max_map_count",
            "/proc/sys/vm/max_map_count",
            "each thread stack maps memory: it bounds threads per process",
        ),
        ("threads-max", "/proc/sys/kernel/threads-max", "threads machine-wide"),
        (
            "rmem_max / wmem_max",
            "/proc/sys/net/core/rmem_max",
            "the largest socket buffer without privileges: UDP at high concurrency loses datagrams below it",
        ),
    ] {
        let mut value = read(path).unwrap_or_else(|| "unknown".into());
        if what.starts_with("rmem_max") {
            value = format!(
                "{value} / {}",
                read("/proc/sys/net/core/wmem_max").unwrap_or_else(|| "unknown".into())
            );
        }
        f.push(finding(what, value, why, "", Info));
    }
    let uring = kit::ring::available();
    f.push(finding(
        "io_uring",
        match &uring {
            Ok(()) => "available".to_string(),
            Err(e) => format!("not available: {e}"),
        },
        "the uring server model and --engine uring need it",
        if uring.is_err() {
            "sysctl kernel.io_uring_disabled=0 where the kernel has it"
        } else {
            ""
        },
        if uring.is_err() { Warn } else { Info },
    ));
}
