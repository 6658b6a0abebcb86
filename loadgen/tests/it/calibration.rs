//! Calibration: the harness checks itself against servers whose behaviour is known.
//! Bounds are generous (the machine is shared and small); what they pin is the method:
//! where latency is measured from, and that the schedule is kept.

use std::time::Duration;

use crate::common::{self, *};
use hdrhistogram::Histogram;

/// Calibration measures time: its tests run alone, beside no other test of the binary.
fn serial() -> std::sync::RwLockWriteGuard<'static, ()> {
    common::alone()
}

/// Runs loadgen with `args` and `--quiet`, expects exit 0, returns its JSON report. A run
/// that says the hypervisor took over a tenth of the machine's CPU in its window (steal:
/// stalls no code here caused, which these timing checks would read as the schedule's
/// fault) is made again, up to three runs, and the least stolen one is returned.
fn report(name: &str, args: &[&str]) -> serde_json::Value {
    let json = temp_path(name);
    let mut all = args.to_vec();
    all.extend(["--json", json.to_str().unwrap(), "--quiet"]);
    let mut best: Option<serde_json::Value> = None;
    for _ in 0..3 {
        let out = run(&all);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let v = read_json(&json);
        if best.as_ref().is_none_or(|b| stolen(&v) < stolen(b)) {
            best = Some(v);
        }
        if best.as_ref().is_some_and(|b| stolen(b) <= 0.10) {
            break;
        }
        eprintln!("(the hypervisor took over a tenth of the machine in that run: made again)");
    }
    best.expect("one run made")
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn closed_loop_latency_and_throughput_match_a_known_delay() {
    let _serial = serial();
    const DELAY_MS: f64 = 20.0;
    let server = MisbehavingServer::start(Misbehave::Delay(Duration::from_millis(DELAY_MS as u64)));
    let v = report(
        "delay.json",
        &[
            "--addr",
            &server.addr_arg(),
            "--conns",
            "8",
            "--duration",
            "2s",
            "--warmup",
            "200ms",
        ],
    );
    let p50_ms = f(&v["latency"]["p50_us"]) / 1000.0;
    assert!(
        (DELAY_MS..DELAY_MS + 1.0).contains(&p50_ms),
        "p50 {p50_ms} ms for a {DELAY_MS} ms server"
    );
    // Closed loop: conns / delay round trips per second.
    let expected = 8.0 / (DELAY_MS / 1000.0);
    let got = f(&v["throughput_msgs_s"]);
    assert!(
        (got - expected).abs() < expected * 0.1,
        "throughput {got}, expected about {expected}"
    );
}

#[test]
fn open_loop_sees_a_freeze_that_raw_latency_hides() {
    let _serial = serial();
    // Frozen 300 ms of every second: messages scheduled during the freeze wait for it.
    let server = MisbehavingServer::start(Misbehave::Freeze {
        period: Duration::from_secs(1),
        pause: Duration::from_millis(300),
    });
    let v = report(
        "freeze.json",
        &[
            "--addr",
            &server.addr_arg(),
            "--conns",
            "10",
            "--rate",
            "2000",
            "--duration",
            "3s",
            "--warmup",
            "0s",
        ],
    );
    let (p90, p99) = (f(&v["latency"]["p90_us"]), f(&v["latency"]["p99_us"]));
    let (raw_p50, raw_p99) = (f(&v["raw"]["p50_us"]), f(&v["raw"]["p99_us"]));
    // Two-sided: messages scheduled during a 300 ms freeze wait up to 300 ms; an
    // over-correction (latency beyond the freeze) would fail the upper bounds.
    // 30% of sends fall in the freeze and wait uniformly 0-300 ms: p90 = 200 ms, p99 = 290 ms.
    assert!(
        (150_000.0..=250_000.0).contains(&p90),
        "corrected p90 {p90} us, expected about 200 ms"
    );
    assert!(
        (250_000.0..=340_000.0).contains(&p99),
        "corrected p99 {p99} us, expected about 290 ms"
    );
    let p50 = f(&v["latency"]["p50_us"]);
    assert!(
        p50 <= 10.0 * raw_p50.max(200.0),
        "corrected p50 {p50} us near raw p50 {raw_p50} us (70% of sends miss the freeze)"
    );
    assert!(
        p90 >= 20.0 * raw_p50.max(100.0),
        "corrected p90 {p90} us should be far above the service time {raw_p50} us"
    );
    assert!(
        raw_p99 < 250_000.0,
        "raw p99 {raw_p99} us should hide the freeze (only one message per connection waits)"
    );
    // The verdict blames the replies (server or network), not the generator, and does not
    // mistake the freeze for packet loss.
    let verdict = v["keep_up"]
        .as_str()
        .expect("a freeze of 300 ms makes sends late: a keep-up verdict");
    assert!(verdict.contains("replies were late"), "{verdict}");
    assert!(!v["warnings"].to_string().contains("packet loss"), "{}", v["warnings"]);
}

#[test]
fn fixed_rate_is_kept_within_one_percent() {
    let _serial = serial();
    let v = report(
        "rate.json",
        &[
            "--target",
            "mio",
            "--conns",
            "50",
            "--rate",
            "10000",
            "--duration",
            "2s",
            "--warmup",
            "300ms",
        ],
    );
    let achieved = f(&v["achieved_rate"]);
    let completed = f(&v["throughput_msgs_s"]);
    assert!(
        (achieved - 10_000.0).abs() <= 100.0,
        "sent {achieved} msg/s for --rate 10000"
    );
    assert!(
        (completed - 10_000.0).abs() <= 100.0,
        "completed {completed} msg/s for --rate 10000"
    );
    assert_eq!(v["mode"], "open");
    assert!(f(&v["send_lag"]["p50_us"]) < 1000.0, "sends are on time");
}

#[test]
fn poisson_arrivals_pass_their_check_and_are_recorded() {
    let _serial = serial();
    let csv = temp_path("poisson.csv");
    let v = report(
        "poisson.json",
        &[
            "--target",
            "mio",
            "--conns",
            "4",
            "--depth",
            "8",
            "--rate",
            "2000",
            "--arrivals",
            "poisson",
            "--duration",
            "3s",
            "--warmup",
            "300ms",
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    let check = &v["arrivals_check"];
    assert_eq!(check["test"], "kolmogorov-smirnov");
    assert!(f(&check["gaps"]) >= 1000.0, "{check}");
    assert!(f(&check["p_value"]) >= 0.001 && check["ok"] == true, "{check}");
    assert!((f(&check["mean_gap_ratio"]) - 1.0).abs() < 0.05, "{check}");
    assert_eq!(v["settings"]["arrivals"], "poisson");
    // A Poisson count in the window is itself random: about 2,000 msg/s, within 5%.
    assert!(
        (f(&v["achieved_rate"]) - 2000.0).abs() < 100.0,
        "{}",
        v["achieved_rate"]
    );
    assert_eq!(only_row(&csv)["arrivals"], "poisson");
}

#[test]
fn the_readers_own_delay_is_part_of_the_round_trip() {
    // Kernel receive stamps: the reader's delay lies between 0 and the round trip it is part
    // of (raw in open loop), over TCP and UDP, with either engine; off by default.
    let _serial = serial();
    for extra in [&["--rate", "2000"][..], &["--transport", "udp"][..]] {
        let csv = temp_path("rx.csv");
        let _ = std::fs::remove_file(&csv);
        let mut args = vec![
            "--target",
            "mio",
            "-c",
            "4",
            "-d",
            "1s",
            "--warmup",
            "200ms",
            "--rx-timestamps",
            "on",
            "--csv",
            csv.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let row = only_row(&csv);
        let rx = num(&row, "rx_delay_p99_us");
        let rtt = if row["raw_p99_us"].is_empty() {
            num(&row, "lat_p99_us")
        } else {
            num(&row, "raw_p99_us")
        };
        assert!(
            rx > 0.0 && rx <= rtt,
            "{extra:?}: rx delay p99 {rx} us against a round trip p99 {rtt} us"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("the reader's own delay"));
    }
    let (code, row) = run_for_row("rx-off.csv", &["--target", "mio", "-c", "2", "-d", "500ms"]);
    assert_eq!(code, Some(0));
    assert_eq!(row["rx_delay_p99_us"], "", "off by default: the column empty");
    let (code, row) = run_for_row(
        "rx-uring.csv",
        &[
            "--target",
            "mio",
            "-c",
            "2",
            "-d",
            "500ms",
            "--engine",
            "uring",
            "--rx-timestamps",
            "on",
        ],
    );
    assert_eq!(code, Some(0));
    assert!(
        num(&row, "rx_delay_p99_us") > 0.0,
        "the io_uring engine stamps too: {row:?}"
    );
}

#[test]
fn a_client_that_cannot_make_short_gaps_fails_the_arrivals_check() {
    // 40,000 msg/s from one thread: a mean gap of 25 us, against a cost per send of a few
    // us. The check says so, and names the way out.
    let _serial = serial();
    let v = report(
        "poisson-fast.json",
        &[
            "--target",
            "mio",
            "--conns",
            "4",
            "--depth",
            "16",
            "--threads",
            "1",
            "--rate",
            "40000",
            "--arrivals",
            "poisson",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ],
    );
    assert!(v["arrivals_check"]["ok"] == false, "{}", v["arrivals_check"]);
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("not a Poisson process"), "{warnings}");
}

#[test]
fn every_pacing_mode_keeps_the_rate_and_spinning_is_not_taken_for_saturation() {
    let _serial = serial();
    for (mode, lag_p50_bound_us) in [("sleep", 2000.0), ("hybrid", 500.0), ("spin", 200.0)] {
        let v = report(
            &format!("pacing-{mode}.json"),
            &[
                "--target",
                "mio",
                "--conns",
                "20",
                "--rate",
                "2000",
                "--pacing",
                mode,
                "--duration",
                "1500ms",
                "--warmup",
                "300ms",
            ],
        );
        let achieved = f(&v["achieved_rate"]);
        assert!(
            (achieved - 2000.0).abs() <= 40.0,
            "{mode}: sent {achieved} msg/s of 2000"
        );
        let lag = f(&v["client_lag"]["p50_us"]);
        assert!(lag < lag_p50_bound_us, "{mode}: client lag p50 {lag} us");
        assert!(f(&v["backpressure"]["count"]) > 0.0, "{mode}: the split is recorded");
        let (busy, work) = (f(&v["client_thread_busy_max"]), f(&v["client_thread_work_max"]));
        assert!(work <= busy + 1e-9, "{mode}: work {work} > busy {busy}");
        if mode == "spin" {
            // It spins a whole core at a load that needs a few percent of one: busy, not
            // saturated, and no verdict says the generator could not keep up.
            assert!(busy > 0.5, "spin: busiest thread {busy}");
            assert!(work < 0.5, "spin: work {work} of a core at 2000 msg/s");
            let keep_up = v["keep_up"].as_str().unwrap_or("");
            assert!(!keep_up.contains("could not keep up"), "spin: {keep_up}");
            // Its pacing is late only where other processes took the CPU (a spinning thread
            // is then preempted and its sends run late by a scheduler tick: the run says so).
            // Replies held back by a descheduled server are the server's lateness, named as
            // such, and outside this test's claim.
            let disturbed = v["warnings"].as_array().is_some_and(|w| {
                w.iter()
                    .any(|w| w.as_str().is_some_and(|w| w.contains("other processes")))
            });
            assert!(!keep_up.contains("pacing was late") || disturbed, "spin: {keep_up}");
        }
    }
}

#[test]
fn the_connection_phase_is_not_counted_as_waiting_for_replies() {
    let _serial = serial();
    // 200 connections at 100 msg/s: each sends every 2 s, so no message can wait for the
    // reply before it; with no warmup the first messages go right after the connection phase.
    let v = report(
        "no-warmup.json",
        &[
            "--target",
            "mio",
            "--conns",
            "200",
            "--rate",
            "100",
            "--duration",
            "1s",
            "--warmup",
            "0s",
        ],
    );
    assert!(f(&v["backpressure"]["count"]) >= 90.0, "{}", v["backpressure"]);
    assert_eq!(f(&v["backpressure"]["max_us"]), 0.0, "{}", v["backpressure"]);
}

#[test]
fn a_rate_far_beyond_the_machine_still_measures_and_says_so() {
    let _serial = serial();
    // 1e9 msg/s: the schedule is behind from the first ns. The run must still send, read
    // every reply it can, and say who could not keep up (it once walked the schedule one
    // message at a time and read nothing: status failed). It ends `behind` (exit 1): the
    // load asked for was not offered.
    let json = temp_path("absurd-rate.json");
    let out = run(&[
        "--target",
        "mio",
        "--conns",
        "10",
        "--rate",
        "1e9",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = read_json(&json);
    assert_eq!(v["status"], "behind");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("status     behind (sent "), "{summary}");
    assert!(f(&v["throughput_msgs_s"]) > 1000.0, "{}", v["throughput_msgs_s"]);
    assert!(
        v["keep_up"].as_str().is_some_and(|s| s.contains("achieved")),
        "{}",
        v["keep_up"]
    );
}

#[test]
fn interval_log_reads_back_to_the_same_totals() {
    let _serial = serial();
    let hlog = temp_path("run.hlog");
    let out_json = temp_path("hlog.json");
    let out = run(&[
        "--target",
        "tokio",
        "--conns",
        "20",
        "--duration",
        "2500ms",
        "--warmup",
        "200ms",
        "--interval",
        "500ms",
        "--hdr-log",
        hlog.to_str().unwrap(),
        "--json",
        out_json.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let all = loadgen::measure::hlog::read(&hlog).unwrap();
    // Latency intervals are untagged; the shard-merge extras (connect times) are tagged.
    let intervals: Vec<_> = all.iter().filter(|i| i.tag.is_none()).cloned().collect();
    assert_eq!(intervals.len(), 5, "2.5 s in 500 ms intervals");
    assert!(all
        .iter()
        .any(|i| i.tag.as_deref() == Some(loadgen::report::shard::CONNECT_TAG)));
    let mut total: Histogram<u64> = loadgen::measure::record::new_histogram();
    for iv in &intervals {
        total.add(&iv.histogram).unwrap();
    }
    let v = read_json(&out_json);
    assert_eq!(total.len(), v["counters"]["msgs"].as_u64().unwrap());
    let p = loadgen::measure::record::Percentiles::of(&total);
    for (key, value) in [
        ("p50_us", p.p50_us),
        ("p99_us", p.p99_us),
        ("p999_us", p.p999_us),
        ("max_us", p.max_us),
    ] {
        assert_eq!(value, f(&v["latency"][key]), "{key}");
    }
    // Consecutive intervals: each starts where the previous ended.
    for w in intervals.windows(2) {
        let gap = (w[1].start.as_secs_f64() - (w[0].start + w[0].length).as_secs_f64()).abs();
        assert!(gap < 0.002, "intervals not contiguous: {gap}");
    }
}

#[test]
fn interval_log_survives_a_crash_minus_one_interval() {
    let _serial = serial();
    let hlog = temp_path("crash.hlog");
    let mut child = loadgen()
        .args([
            "--target",
            "mio",
            "--conns",
            "4",
            "--duration",
            "30s",
            "--warmup",
            "0s",
            "--interval",
            "200ms",
        ])
        .args(["--hdr-log", hlog.to_str().unwrap(), "--quiet"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SIGKILL: no chance to flush anything more.
    child.kill().unwrap();
    child.wait().unwrap();
    let intervals = loadgen::measure::hlog::read(&hlog).unwrap();
    // About 1.5 s of 200 ms intervals ran (minus connect time): all but the one in progress
    // are on disk.
    assert!(intervals.len() >= 4, "only {} intervals survived", intervals.len());
    assert!(intervals.iter().all(|iv| !iv.histogram.is_empty()));
}
