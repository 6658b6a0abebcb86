//! The run manifest: where and with what a run was made (host, kernel, CPUs, binary,
//! limits, the machine's idle policy and timer floor, pinning).

use serde::Serialize;

/// Where and with what a run was made (the run manifest).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Environment {
    /// Host name.
    pub host: String,
    /// Kernel release.
    pub kernel: String,
    /// CPUs available to loadgen.
    pub cpus: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// loadgen version and git revision it was built from.
    pub version: String,
    /// Compiler that built it.
    pub rustc: String,
    /// Open-file limit (soft) of loadgen.
    pub nofile_limit: u64,
    /// `net.core.somaxconn`.
    pub somaxconn: u64,
    /// The CPU idle driver (`/sys/devices/system/cpu/cpuidle/current_driver`; empty when
    /// unknown): `haltpoll` is a virtual machine's.
    pub cpuidle: String,
    /// `haltpoll`: how long an idle vCPU polls before it halts (`guest_halt_poll_ns`).
    /// Zero makes every timer wake-up of an idle client thread pay a VM exit (~30 µs here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halt_poll_ns: Option<u64>,
    /// Open loop: this machine's timer floor, the p99 lateness of a timerfd armed every
    /// 100 µs (measured once per boot, `loadgen doctor`'s probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_late_p99_us: Option<f64>,
    /// CPUs the spawned server was pinned to, if any.
    pub pin_server: Option<Vec<usize>>,
    /// CPUs the client threads were pinned to, if any.
    pub pin_client: Option<Vec<usize>>,
}

impl Environment {
    /// Reads this machine's environment.
    pub fn detect() -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or(String::new(), |(_, v)| v.trim().to_string());
        let nofile_limit = crate::os::sys::nofile_limit().unwrap_or(u64::MAX);
        Environment {
            host: read("/proc/sys/kernel/hostname"),
            kernel: read("/proc/sys/kernel/osrelease"),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model,
            version: format!("{}+{}", env!("CARGO_PKG_VERSION"), env!("LOADGEN_GIT")),
            rustc: env!("LOADGEN_RUSTC").to_string(),
            nofile_limit,
            somaxconn: read("/proc/sys/net/core/somaxconn").parse().unwrap_or(0),
            cpuidle: read("/sys/devices/system/cpu/cpuidle/current_driver"),
            halt_poll_ns: read("/sys/module/haltpoll/parameters/guest_halt_poll_ns").parse().ok(),
            timer_late_p99_us: None,
            pin_server: None,
            pin_client: None,
        }
    }
}
