//! cgroup sandboxes for tests that need a resource to run out (`pids.max`, so a thread
//! spawn fails). Works with the pids controller of cgroup v2 (unified) or v1 (the file
//! names are the same); needs root. [`Cgroup::create`] says why not otherwise, so the
//! caller can skip with that message.

use std::path::PathBuf;

/// A cgroup this test created; removed on drop (its processes must have exited).
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Creates `echo-bench-<name>-<pid>` in the pids hierarchy. `Err` says why it cannot.
    pub fn create(name: &str) -> Result<Cgroup, String> {
        let v2 = PathBuf::from("/sys/fs/cgroup");
        let v1 = v2.join("pids");
        let root = match std::fs::read_to_string(v2.join("cgroup.controllers")) {
            Ok(c) if c.split_whitespace().any(|c| c == "pids") => {
                // Enabling it for children fails if it already is: checked below.
                let _ = std::fs::write(v2.join("cgroup.subtree_control"), "+pids");
                v2
            }
            _ if v1.join("cgroup.procs").exists() => v1,
            _ => return Err("no pids controller (cgroup v2 or v1) under /sys/fs/cgroup".into()),
        };
        let path = root.join(format!("echo-bench-{name}-{}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let cg = Cgroup { path };
        if !cg.path.join("pids.max").exists() {
            return Err("the pids controller is not enabled for child cgroups".into());
        }
        Ok(cg)
    }

    /// Sets `pids.max` (threads and processes together).
    pub fn set_pids_max(&self, max: u64) -> Result<(), String> {
        std::fs::write(self.path.join("pids.max"), max.to_string()).map_err(|e| format!("pids.max: {e}"))
    }

    /// Moves process `pid` (with all its threads) into this cgroup.
    pub fn add(&self, pid: u32) -> Result<(), String> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string()).map_err(|e| format!("cgroup.procs: {e}"))
    }

    /// Times the `pids.max` limit refused a fork or thread spawn.
    pub fn pids_max_events(&self) -> u64 {
        std::fs::read_to_string(self.path.join("pids.events"))
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("max ")?.trim().parse().ok()))
            .unwrap_or(0)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Fails while processes remain: they were the test's and are gone by now.
        let _ = std::fs::remove_dir(&self.path);
    }
}
