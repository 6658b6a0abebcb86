//! Steadiness of a run's window, and the intervals of its percentiles. The two runs here
//! take turns (a lock): a quiet run is only quiet with no other load on the machine.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;

static ALONE: Mutex<()> = Mutex::new(());

#[test]
fn a_server_that_slows_tenfold_halfway_is_not_steady() {
    let _alone = ALONE.lock();
    // Round trips take ~0.1 ms at first, then 2 ms or more: at least tenfold slower.
    let server = MisbehavingServer::start(Misbehave::SlowDownAfter {
        after: Duration::from_millis(2500),
        delay: Duration::from_millis(2),
    });
    let addr = server.addr_arg();
    let args = [
        "--addr",
        &addr,
        "--conns",
        "2",
        "--duration",
        "4s",
        "--warmup",
        "500ms",
        "--interval",
        "500ms",
    ];
    let csv = temp_path("slows.csv");
    let out = run(&[&args[..], &["--csv", csv.to_str().unwrap()]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("WARNING    not steady: throughput fell"), "{text}");
    assert_eq!(only_row(&csv)["steady"], "no");
}

#[test]
fn a_quiet_run_is_steady_and_its_percentiles_carry_intervals() {
    let _alone = ALONE.lock();
    let json = temp_path("quiet.json");
    let (code, row) = run_for_row(
        "quiet.csv",
        &[
            "--target",
            "mio",
            "--conns",
            "4",
            "--duration",
            "3s",
            "--warmup",
            "500ms",
            "--interval",
            "500ms",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0));
    assert_eq!(row["steady"], "yes");
    let (lo, p99, hi) = (
        num(&row, "p99_ci_lo_us"),
        num(&row, "lat_p99_us"),
        num(&row, "p99_ci_hi_us"),
    );
    assert!(lo <= p99 && p99 <= hi && lo < hi, "{lo} {p99} {hi}");
    let v = read_json(&json);
    assert_eq!(v["steady"]["steady"], true);
    assert!(v["latency"]["ci"]["p50"]["interval"]["lo_us"].as_f64().unwrap() > 0.0);
}
