//! Connection churn: `--reconnect-every`, `--conn-rate` with `--msgs-per-conn`, `--close`,
//! errors by errno, and no CLOSE_WAIT left behind.

use std::time::Duration;

use crate::common::{self, *};

#[test]
fn every_model_reconnects_after_each_message_and_reports_connections_per_second() {
    let _machine = common::shared();
    for model in ["thread-per-conn", "threadpool", "mio", "tokio"] {
        let (code, row) = run_for_row(
            &format!("crr-{model}.csv"),
            &[
                "--target",
                model,
                "--conns",
                "20",
                "--reconnect-every",
                "1",
                "--duration",
                "1s",
                "--warmup",
                "200ms",
            ],
        );
        assert_eq!(code, Some(0), "{model}");
        assert_eq!(row["status"], "ok", "{model}");
        let opened = num(&row, "conns_opened");
        // One connection per round trip (give or take those open at the window's edges).
        assert!(
            opened > 100.0 && (opened - num(&row, "msgs")).abs() <= 20.0,
            "{model}: {opened} opened"
        );
        assert!(num(&row, "conn_rate_s") > 100.0, "{model}");
        assert!(
            num(&row, "connect_p999_us") > 0.0 && num(&row, "first_byte_p99_us") > 0.0,
            "{model}"
        );
    }
}

#[test]
fn a_connection_rate_is_kept_and_latency_runs_from_the_intended_start() {
    let _machine = common::shared();
    let json = temp_path("connrate.json");
    let (code, row) = run_for_row(
        "connrate.csv",
        &[
            "--target",
            "mio",
            "--conns",
            "50",
            "--conn-rate",
            "500",
            "--msgs-per-conn",
            "3",
            "--close",
            "rst",
            "--duration",
            "2s",
            "--warmup",
            "300ms",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0));
    assert_eq!(row["mode"], "open");
    let rate = num(&row, "conn_rate_s");
    assert!((rate - 500.0).abs() < 15.0, "conn rate {rate}");
    let msgs = num(&row, "msgs");
    assert!((msgs - 3.0 * 1000.0).abs() < 60.0, "{msgs} round trips");
    // Corrected latency (first round trips from the intended start) is never below raw.
    assert!(num(&row, "lat_p99_us") >= num(&row, "raw_p99_us"));
    let v = read_json(&json);
    assert_eq!(v["conn_rate"][0].as_f64(), Some(500.0));
    assert_eq!(v["close"], "rst");
}

#[test]
fn refused_connects_are_counted_by_errno() {
    let _machine = common::shared();
    // A port nobody listens on, after a probe that succeeds: start a server, note its
    // address, stop it.
    // Two seconds of serving: loadgen's start (its first connect to check the address) must
    // come before the server stops, even on a slow machine running the other tests (one
    // second was too little once).
    let server = MisbehavingServer::start(Misbehave::DieAfter(Duration::from_millis(2000)));
    let addr = server.addr_arg();
    let json = temp_path("errno.json");
    let out = run(&[
        "--addr",
        &addr,
        "--conns",
        "4",
        "--reconnect-every",
        "1",
        "--duration",
        "3500ms",
        "--warmup",
        "0s",
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = read_json(&json);
    assert!(
        v["counters"]["errnos"]["ECONNREFUSED"].as_u64().unwrap_or(0) > 0,
        "{}",
        v["counters"]
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("errno      ECONNREFUSED"));
}

#[test]
fn loadgen_leaves_no_close_wait_when_the_server_closes_first() {
    let _machine = common::shared();
    let server = MisbehavingServer::start(Misbehave::CloseAfter(1));
    let port = server.addr.port();
    let mut child = loadgen()
        .args([
            "--addr",
            &server.addr_arg(),
            "--conns",
            "20",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut samples: Vec<usize> = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            testkit::proc::close_wait_towards(port)
        })
        .collect();
    samples.sort_unstable();
    // The median of ten samples: the client thread descheduled for a few ms (other tests
    // share the 2 cores) catches several sockets between FIN and close at once, once; a
    // client that never closed would hold every one of its 20 sockets there throughout.
    let typical = samples[5];
    let status = child.wait().unwrap();
    // The server really closed connections (each after one echo), and loadgen saw it: the
    // run ends `errors` (closes counted as resets), exit 1.
    assert_eq!(status.code(), Some(1), "closes by the server are counted");
    assert!(
        server.accepted() > 20,
        "connections were closed and reopened: {}",
        server.accepted()
    );
    // A closed connection is seen (EOF) and closed at once: at most a few are caught in
    // the instant between the server's FIN and loadgen's read.
    assert!(
        typical <= 4,
        "{typical} of 20 client sockets in CLOSE_WAIT (samples {samples:?})"
    );
}

#[test]
fn churn_flags_are_checked() {
    let _machine = common::shared();
    for (args, flag) in [
        (&["--reconnect-every", "0"][..], "--reconnect-every"),
        (&["--conn-rate", "0"][..], "--conn-rate"),
        (&["--conn-rate", "10", "--msgs-per-conn", "0"][..], "--msgs-per-conn"),
        (&["--conn-rate", "10", "--rate", "100"][..], "--conn-rate"),
    ] {
        let mut all = vec!["--target", "mio"];
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.lines().count() == 1, "{err}");
    }
}

#[test]
fn short_lived_connections_are_not_taken_for_a_dead_server() {
    let _machine = common::shared();
    // At 200 new connections/s of one round trip each, no connection is open most of the
    // time; new ones keep opening, so the server is alive and the run must not stop.
    let (code, row) = run_for_row(
        "sparse.csv",
        &[
            "--target",
            "mio",
            "--conns",
            "10",
            "--conn-rate",
            "200",
            "--duration",
            "3s",
            "--warmup",
            "200ms",
        ],
    );
    assert_eq!(row["status"], "ok", "{row:?}");
    assert_eq!(code, Some(0));
    assert!((num(&row, "duration_s") - 3.0).abs() < 0.01);
}
