//! Dev-only helpers shared by the tests of `servers` and `loadgen`, one copy each, every
//! error checked: descriptor limits for a child, an echo server in its own process (its
//! `listening ADDR` line read back), `/proc` readers, signalling a pid we started, and
//! cgroup v2 sandboxes.

pub mod cgroup;
pub mod limits;
pub mod netns;
pub mod nft;
pub mod proc;
pub mod server;
pub mod signal;

pub use limits::with_nofile;
pub use server::ServerProcess;
pub use signal::{signal, Signal};

/// Runs `program args...`; `Err` says what failed (the program missing, or its stderr).
pub fn run_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A fresh path in this test process's own temporary directory (the file removed if it
/// existed).
pub fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("echo-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test's temporary directory");
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}
