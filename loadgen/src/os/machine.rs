//! This machine's CPU by kind (`/proc/stat`, the `ksoftirqd` threads, the kernel's
//! interrupt accounting), and its use during a window (a run's measured window, `doctor`'s
//! probes): how busy it was, how much of that was ours (client, server, the interrupts its
//! packets cost) and how much other processes or the hypervisor took. A run on a machine
//! busy with something else measures that too; this says so instead of leaving it to be
//! guessed.

use std::time::Duration;

use crate::os::usage::MachineUse;

/// This machine's CPU time so far, summed over its CPUs (`/proc/stat`), seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct MachineCpu {
    /// Processes' time: user, nice, system (a guest's time is inside user), but for the
    /// kernel's `ksoftirqd` threads.
    pub(crate) tasks_s: f64,
    /// Interrupts: irq, softirq and the `ksoftirqd` threads that finish softirq work (on a
    /// loopback run mostly the network stack working for the run's own packets).
    pub(crate) irq_s: f64,
    /// Time the hypervisor gave to other guests while this one wanted to run.
    pub(crate) steal_s: f64,
    /// CPUs online (those `/proc/stat` lists).
    pub(crate) cpus: usize,
}

impl MachineCpu {
    /// `self - earlier`, field by field (never below zero).
    pub(crate) fn since(&self, earlier: &MachineCpu) -> MachineCpu {
        let d = |a: f64, b: f64| (a - b).max(0.0);
        MachineCpu {
            tasks_s: d(self.tasks_s, earlier.tasks_s),
            irq_s: d(self.irq_s, earlier.irq_s),
            steal_s: d(self.steal_s, earlier.steal_s),
            cpus: self.cpus,
        }
    }

    /// Every field times `k`.
    pub(crate) fn scaled(&self, k: f64) -> MachineCpu {
        MachineCpu {
            tasks_s: self.tasks_s * k,
            irq_s: self.irq_s * k,
            steal_s: self.steal_s * k,
            cpus: self.cpus,
        }
    }
}

/// Reads this machine's CPU time by kind (`None` where `/proc/stat` cannot be read).
pub(crate) fn machine_cpu() -> Option<MachineCpu> {
    use procfs::CurrentSI;
    let stat = procfs::KernelStats::current().ok()?;
    let t = stat.total;
    let s = |v: u64| v as f64 / crate::os::sys::clock_ticks_per_sec();
    let softirqd = ksoftirqd_s();
    Some(MachineCpu {
        cpus: stat.cpu_time.len(),
        tasks_s: (s(t.user + t.nice + t.system) - softirqd).max(0.0),
        irq_s: s(t.irq.unwrap_or(0) + t.softirq.unwrap_or(0)) + softirqd,
        steal_s: s(t.steal.unwrap_or(0)),
    })
}

/// Whether this kernel accounts interrupt time apart from the processes it interrupts
/// (`CONFIG_IRQ_TIME_ACCOUNTING`, from `/proc/config.gz` or `/boot/config-*`; `None` when
/// the configuration cannot be read). Without it a process's CPU time holds the softirq
/// work done in its context, which `/proc/stat` files under softirq.
pub(crate) fn irq_time_apart() -> Option<bool> {
    let config = procfs::kernel_config().ok()?;
    Some(config.contains_key("CONFIG_IRQ_TIME_ACCOUNTING"))
}

/// CPU seconds the kernel's `ksoftirqd/N` threads ran (children of kthreadd, pid 2): the
/// softirq work deferred from interrupts, on loopback the run's own packets (0 when they
/// cannot be read).
fn ksoftirqd_s() -> f64 {
    let Ok(kthreads) = std::fs::read_to_string("/proc/2/task/2/children") else {
        return 0.0;
    };
    let ns: u64 = kthreads
        .split_whitespace()
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("ksoftirqd/")))
        .filter_map(|pid| crate::os::proc::schedstat_ns(std::path::Path::new(&format!("/proc/{pid}/schedstat"))))
        .sum();
    ns as f64 / 1e9
}

/// Other processes' share of the window's CPU above which a WARNING names them.
const OTHERS_WARN: f64 = MachineUse::OTHERS_DISTURB;

/// The hypervisor's share (steal) above which a WARNING names it.
const STEAL_WARN: f64 = MachineUse::STEAL_DISTURB;

/// Where the server's CPU is spent, as far as this machine is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ServerHere {
    /// On another machine: none of this machine's CPU is the server's.
    Elsewhere,
    /// On this machine, with its CPU in the window when it is known.
    Here(Option<f64>),
}

/// [`used`], with the interrupt accounting of this machine's kernel.
pub(crate) fn of(cpu: Option<MachineCpu>, window: Duration, client_s: f64, server: ServerHere) -> Option<MachineUse> {
    used(cpu, window, client_s, server, irq_time_apart())
}

/// The machine's use in a window of `window` (`None` when `/proc/stat` was not read at both
/// ends), with the client's CPU `client_s` and the server's. For a whole run only: a
/// shard's sibling shards may share its machine (the parent of `--procs` shards says it for
/// the whole run; shards on several hosts do not).
///
/// Other processes' CPU is the machine's busy time less the run's. Where the kernel
/// accounts interrupt time apart from processes (`irq_apart`), interrupts are taken as the
/// run's (on loopback they are mostly its packets) and only processes' time is compared;
/// where it does not (this VM's kernel), a process's CPU already holds the softirq work done
/// in its context and the whole busy time is compared. With the kernel's configuration
/// unknown, the first way gives a lower bound, and the report says "at least".
pub(crate) fn used(
    cpu: Option<MachineCpu>,
    window: Duration,
    client_s: f64,
    server: ServerHere,
    irq_apart: Option<bool>,
) -> Option<MachineUse> {
    let cpu = cpu?;
    let compared = match irq_apart {
        Some(false) => cpu.tasks_s + cpu.irq_s,
        Some(true) | None => cpu.tasks_s,
    };
    let server_s = match server {
        ServerHere::Elsewhere => Some(0.0),
        ServerHere::Here(s) => s,
    };
    Some(MachineUse {
        cpus: cpu.cpus,
        capacity_s: cpu.cpus as f64 * window.as_secs_f64(),
        tasks_s: cpu.tasks_s,
        irq_s: cpu.irq_s,
        steal_s: cpu.steal_s,
        // Never below zero (`/proc/stat` counts in clock ticks).
        others_s: server_s.map(|s| (compared - client_s - s).max(0.0)),
        others_at_least: irq_apart.is_none(),
    })
}

/// The WARNINGs a window's machine use calls for: other processes, or the hypervisor,
/// took a share of the CPU the run could have had.
pub(crate) fn warnings(m: &MachineUse) -> Vec<String> {
    let mut out = Vec::new();
    if m.capacity_s <= 0.0 {
        return out;
    }
    let share = |s: f64| s / m.capacity_s;
    if let Some(others) = m.others_s.filter(|&o| share(o) > OTHERS_WARN) {
        out.push(format!(
            "other processes on this machine used {}{others:.2} of the {:.2} CPU-seconds its {} CPUs had in the window ({:.0}%): they competed with the client and the server, so the figures are not theirs alone; measure on a quiet machine (top shows who)",
            if m.others_at_least { "at least " } else { "" },
            m.capacity_s,
            m.cpus,
            share(others) * 100.0
        ));
    }
    if share(m.steal_s) > STEAL_WARN {
        out.push(format!(
            "the hypervisor gave {:.0}% of this machine's CPU time in the window to other guests (steal {:.2} s): stalls the code did not cause; compare runs of one sitting, or measure on a quieter host",
            share(m.steal_s) * 100.0,
            m.steal_s
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(cpu: Option<MachineCpu>, w: Duration, client_s: f64, server: ServerHere) -> Option<MachineUse> {
        super::used(cpu, w, client_s, server, Some(true))
    }

    fn cpu(tasks_s: f64, steal_s: f64) -> Option<MachineCpu> {
        Some(MachineCpu {
            tasks_s,
            irq_s: 0.3,
            steal_s,
            cpus: 2,
        })
    }

    #[test]
    fn others_are_what_the_machine_ran_besides_the_run() {
        let w = Duration::from_secs(2);
        // Client 1.0 and server 1.2 of 2.3 busy: 0.1 s others (2.5% of 4): nothing said.
        let m = used(cpu(2.3, 0.0), w, 1.0, ServerHere::Here(Some(1.2))).unwrap();
        assert_eq!(m.capacity_s, 4.0);
        assert!((m.others_s.unwrap() - 0.1).abs() < 1e-9);
        assert!(warnings(&m).is_empty());
        // A busy loop beside the run: 1.0 s of others, 25%.
        let m = used(cpu(3.2, 0.0), w, 1.0, ServerHere::Here(Some(1.2))).unwrap();
        let said = warnings(&m);
        assert_eq!(said.len(), 1);
        assert!(
            said[0].contains("1.00 of the 4.00 CPU-seconds") && said[0].contains("(25%)"),
            "{said:?}"
        );
        // The server elsewhere: all but the client is others.
        let m = used(cpu(1.5, 0.0), w, 1.0, ServerHere::Elsewhere).unwrap();
        assert!((m.others_s.unwrap() - 0.5).abs() < 1e-9);
        // The server here with its CPU unknown: others unknown, never a guess.
        assert_eq!(
            used(cpu(3.2, 0.0), w, 1.0, ServerHere::Here(None)).unwrap().others_s,
            None
        );
        // Tick rounding never gives negative others.
        assert_eq!(
            used(cpu(2.0, 0.0), w, 1.0, ServerHere::Here(Some(1.05)))
                .unwrap()
                .others_s,
            Some(0.0)
        );
        // Steal: 0.4 of 4 CPU-seconds is 10%.
        let m = used(cpu(2.2, 0.4), w, 1.0, ServerHere::Here(Some(1.2))).unwrap();
        let said = warnings(&m);
        assert!(said.len() == 1 && said[0].contains("10%"), "{said:?}");
        assert!(used(None, w, 1.0, ServerHere::Elsewhere).is_none());
    }

    #[test]
    fn interrupts_count_as_the_kernel_accounts_them() {
        let (w, here) = (Duration::from_secs(2), ServerHere::Here(Some(1.2)));
        // Interrupt time inside the processes' (no IRQ_TIME_ACCOUNTING): client 1.0 and
        // server 1.2 ran 2.5 busy seconds of which 0.3 filed as interrupts: 0.3 s others.
        let m = super::used(cpu(2.2, 0.0), w, 1.0, here, Some(false)).unwrap();
        assert!((m.others_s.unwrap() - 0.3).abs() < 1e-9 && !m.others_at_least);
        // Accounted apart: the interrupts are the run's, the processes' 2.2 s hold no others.
        let m = super::used(cpu(2.2, 0.0), w, 1.0, here, Some(true)).unwrap();
        assert!(m.others_s.unwrap() < 1e-9);
        // Unknown: the lower bound, said as one.
        let m = super::used(cpu(3.2, 0.0), w, 1.0, here, None).unwrap();
        assert!(
            m.others_at_least && warnings(&m)[0].contains("used at least 1.00 of"),
            "{m:?}"
        );
    }
}
