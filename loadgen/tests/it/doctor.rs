//! `loadgen doctor`: the probes run in bounded time and every finding says what, its
//! value, why it matters and, where one exists, the fix; --tune and --reset round-trip.

use std::time::{Duration, Instant};

use crate::common::{self, *};

// --tune changes (and --reset restores) a kernel setting the probes measure: both tests run
// alone (`common::alone`).

#[test]
fn doctor_measures_and_reads_the_machine_within_20_seconds() {
    let _alone = common::alone();
    let json = temp_path("doctor.json");
    let t = Instant::now();
    let out = run(&["doctor", "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    let v = read_json(&json);
    let (p50, p99) = (
        v["timer_late_p50_us"].as_f64().unwrap(),
        v["timer_late_p99_us"].as_f64().unwrap(),
    );
    assert!(p50 >= 0.0 && p50 <= p99, "{p50} {p99}");
    assert!(v["loopback_rtt"]["p50_us"].as_f64().unwrap() > 0.0);
    let findings = v["findings"].as_array().unwrap();
    for what in [
        "timer wake-up lateness (every 100 µs)",
        "idle driver",
        "descriptor limit (soft / hard)",
        "io_uring",
        "other processes during the probes",
        "ICMP echo sockets (ping / raw)",
        "the kernel's ICMP echo round trip, 1 at a time (the floor)",
    ] {
        let f = findings
            .iter()
            .find(|f| f["what"] == what)
            .unwrap_or_else(|| panic!("{what} missing"));
        for key in ["value", "why", "fix", "severity"] {
            assert!(f.get(key).is_some(), "{what}: no {key}");
        }
    }
    // The kernel's echo is measured wherever an ICMP socket may be opened (root has raw ones).
    if v["ping_sockets"] == true || v["raw_sockets"] == true {
        let floor = v["icmp_floor"]["p50_us"].as_f64().expect("the ICMP floor is measured");
        assert!(
            floor > 0.0 && floor <= v["icmp_floor"]["p99_us"].as_f64().unwrap(),
            "{v}"
        );
    } else {
        assert!(v["icmp_floor"].is_null(), "{v}");
    }
    // A share of the machine, never more than all of it (other tests may run beside).
    let others = v["others_share"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&others), "{others}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("timer wake-up lateness") && text.contains("why:"),
        "{text}"
    );
}

#[test]
fn tune_and_reset_round_trip_through_a_saved_state() {
    let _alone = common::alone();
    let state = temp_path("doctor-state");
    let _ = std::fs::remove_dir_all(&state);
    let range = || std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let before = range();
    let tune = loadgen()
        .env("XDG_STATE_HOME", &state)
        .args(["doctor", "--tune"])
        .output()
        .unwrap();
    if !rustix::process::geteuid().is_root() {
        assert_eq!(tune.status.code(), Some(2), "--tune needs root and says so");
        return testkit::skip(
            "tune_and_reset_round_trip_through_a_saved_state",
            "--tune and --reset need root (the refusal without it was checked)",
        );
    }
    assert_eq!(tune.status.code(), Some(0), "{}", String::from_utf8_lossy(&tune.stderr));
    assert!(state.join("echo-bench/doctor-saved.json").exists());
    assert_eq!(
        range().split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"],
        "--tune allows ping sockets for every group"
    );
    let reset = loadgen()
        .env("XDG_STATE_HOME", &state)
        .args(["doctor", "--reset"])
        .output()
        .unwrap();
    assert_eq!(
        reset.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert!(
        !state.join("echo-bench/doctor-saved.json").exists(),
        "the saved state is used up"
    );
    assert_eq!(range(), before, "--reset restores the ping group range");
    let again = loadgen()
        .env("XDG_STATE_HOME", &state)
        .args(["doctor", "--reset"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "nothing saved: one clear line");
    let _ = std::fs::remove_dir_all(&state);
}
