//! The client's machine during a run's measured window: how busy it was, and how much of
//! it other processes and the hypervisor took (see `run::machine` for how it is read).

use serde::Serialize;

/// The client's machine in the measured window: how busy it was, and with what besides
/// the run (read from `/proc/stat` at the window's ends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct MachineUse {
    /// CPUs online.
    pub cpus: usize,
    /// CPU seconds the window offered: CPUs times its length.
    pub capacity_s: f64,
    /// CPU seconds of every process (user, nice, system).
    pub tasks_s: f64,
    /// CPU seconds in interrupts (irq, softirq): on loopback mostly the run's own packets.
    pub irq_s: f64,
    /// CPU seconds the hypervisor gave to other guests.
    pub steal_s: f64,
    /// CPU seconds of processes other than the client and the server (`None` when the
    /// server runs here and its CPU is unknown).
    pub others_s: Option<f64>,
    /// `others_s` is a lower bound (the kernel's interrupt accounting could not be read).
    #[serde(default)]
    pub others_at_least: bool,
}

impl MachineUse {
    /// Other processes' share of the window's CPU above which the run was disturbed.
    pub const OTHERS_DISTURB: f64 = 0.10;

    /// The hypervisor's share (steal) above which the run was disturbed.
    pub const STEAL_DISTURB: f64 = 0.05;

    /// Whether `others_s` and `steal_s` CPU-seconds, of `capacity_s`, disturbed a run.
    pub fn disturbs(others_s: Option<f64>, steal_s: f64, capacity_s: f64) -> bool {
        capacity_s > 0.0
            && (others_s.is_some_and(|o| o / capacity_s > Self::OTHERS_DISTURB)
                || steal_s / capacity_s > Self::STEAL_DISTURB)
    }

    /// "other processes took 35% of the machine" (and steal) when they disturbed the run.
    pub fn disturbance(&self) -> Option<String> {
        if !Self::disturbs(self.others_s, self.steal_s, self.capacity_s) {
            return None;
        }
        let pct = |s: f64| s / self.capacity_s * 100.0;
        let mut parts = Vec::new();
        if let Some(o) = self.others_s.filter(|o| o / self.capacity_s > Self::OTHERS_DISTURB) {
            parts.push(format!("other processes took {:.0}% of the machine", pct(o)));
        }
        if self.steal_s / self.capacity_s > Self::STEAL_DISTURB {
            parts.push(format!("steal {:.0}%", pct(self.steal_s)));
        }
        Some(format!("disturbed: {}", parts.join(", ")))
    }

    /// Every CPU figure times `k` (the share of a window kept after an automatic warm-up
    /// cut): the shares stay as they were.
    pub fn scaled(&self, k: f64) -> MachineUse {
        MachineUse {
            capacity_s: self.capacity_s * k,
            tasks_s: self.tasks_s * k,
            irq_s: self.irq_s * k,
            steal_s: self.steal_s * k,
            others_s: self.others_s.map(|o| o * k),
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_disturbed_by_others_over_a_tenth_or_steal_over_a_twentieth() {
        let m = |others: Option<f64>, steal: f64| MachineUse {
            cpus: 2,
            capacity_s: 4.0,
            others_s: others,
            steal_s: steal,
            ..MachineUse::default()
        };
        assert_eq!(m(Some(0.4), 0.0).disturbance(), None, "10% exactly is not over");
        assert_eq!(
            m(Some(1.4), 0.0).disturbance().unwrap(),
            "disturbed: other processes took 35% of the machine"
        );
        assert_eq!(
            m(None, 0.3).disturbance().unwrap(),
            "disturbed: steal 8%",
            "steal counts with others unknown"
        );
        assert_eq!(
            m(Some(0.8), 0.4).disturbance().unwrap(),
            "disturbed: other processes took 20% of the machine, steal 10%"
        );
        let scaled = m(Some(1.4), 0.4).scaled(0.5);
        assert_eq!((scaled.capacity_s, scaled.others_s, scaled.cpus), (2.0, Some(0.7), 2));
    }
}
