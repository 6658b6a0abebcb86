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

/// The committed list of tests allowed to skip under CI, one `test-name: reason` per line
/// (`#` comments); empty on the machines CI runs on.
const ALLOWED_SKIPS: &str = include_str!("../../.ci/allowed-skips");

/// Whether the allow-list line `line` (`test_name: why`) names `test`: the name ends at
/// the first `: ` (a colon and a space), so a path such as `udp::a_test` can be listed.
fn allows(line: &str, test: &str) -> bool {
    line.split_once(": ").map_or(line, |(name, _)| name).trim() == test
}

/// A test whose prerequisite (io_uring, root, nftables, a second CPU, ...) is missing. A
/// skipped test must never pass for a tested one:
/// - under CI (`CI=true`) it fails, unless `.ci/allowed-skips` names it;
/// - otherwise it prints `SKIPPED test: why` and appends that line to the file named by
///   `ECHO_BENCH_SKIPS`, which `.ci/run` counts and prints at the end.
///
/// The caller returns right after.
pub fn skip(test: &str, why: &str) {
    let allowed = ALLOWED_SKIPS
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .any(|l| allows(l, test));
    if std::env::var("CI").is_ok_and(|v| v == "true") && !allowed {
        panic!("{test}: prerequisite missing under CI: {why} (install it in .ci/run, or list the test with its reason in .ci/allowed-skips)");
    }
    let line = format!("SKIPPED {test}: {why}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("ECHO_BENCH_SKIPS") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::allows;

    #[test]
    fn allow_list_lines_name_tests_with_module_paths() {
        assert!(allows("udp::a_test: no IPv6 here", "udp::a_test"));
        assert!(allows("plain_test: why", "plain_test"));
        assert!(!allows("udp::a_test: why", "udp"));
        assert!(!allows("# udp::a_test: why", "udp::a_test"));
    }
}
