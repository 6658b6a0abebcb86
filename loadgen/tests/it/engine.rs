//! `--engine uring`: the io_uring client driver measures and handles faults as the epoll
//! one does. Skipped (with a message) where io_uring is unavailable.

use std::time::{Duration, Instant};

use crate::common::{self, *};

/// Why the uring engine cannot run here, if it cannot.
fn skip(test: &str) -> bool {
    match kit::ring::available() {
        Ok(()) => false,
        Err(e) => {
            testkit::skip(test, &e.to_string());
            true
        }
    }
}

fn uring_row(name: &str, args: &[&str]) -> (Option<i32>, std::collections::HashMap<String, String>) {
    run_for_row(
        name,
        &[args, &["--engine", "uring", "--duration", "1s", "--warmup", "200ms"]].concat(),
    )
}

#[test]
fn uring_engine_loads_every_mode_byte_exact() {
    let _machine = common::shared();
    if skip("uring_engine_loads_every_mode_byte_exact") {
        return;
    }
    let modes: [&[&str]; 8] = [
        &["--target", "mio", "--conns", "50"],
        &["--target", "uring", "--conns", "50", "--depth", "4"],
        &["--target", "mio", "--conns", "20", "--rate", "5000"],
        // Tiny socket buffers and 64 KiB messages: short sends, resubmitted.
        &[
            "--target",
            "tokio",
            "--conns",
            "4",
            "--msg-size",
            "65536",
            "--sock-buf",
            "4096",
        ],
        &["--target", "mio", "--transport", "unix", "--conns", "10"],
        // Datagrams: closed loop with several in flight, open loop, 16 KiB datagrams.
        &["--target", "mio", "--transport", "udp", "--conns", "10", "--depth", "4"],
        &[
            "--target",
            "tokio",
            "--transport",
            "udp",
            "--conns",
            "10",
            "--rate",
            "5000",
        ],
        &[
            "--target",
            "mio",
            "--transport",
            "udp",
            "--conns",
            "2",
            "--msg-size",
            "16KiB",
        ],
    ];
    for args in modes {
        let (code, row) = uring_row("uring-modes.csv", args);
        assert_eq!(code, Some(0), "{args:?}: {row:?}");
        assert_eq!(row["engine"], "uring", "{args:?}");
        assert!(num(&row, "throughput_msgs_s") > 100.0, "{args:?}: {row:?}");
        assert_eq!(
            num(&row, "mismatches") + num(&row, "timeouts"),
            0.0,
            "{args:?}: {row:?}"
        );
        // Loopback loses a datagram only to a full receive buffer: rarely, never many.
        if row["transport"] == "udp" {
            assert!(num(&row, "lost") <= num(&row, "msgs") / 100.0, "{args:?}: {row:?}");
        }
    }
}

#[test]
fn uring_engine_churns_connections() {
    let _machine = common::shared();
    if skip("uring_engine_churns_connections") {
        return;
    }
    let (code, row) = uring_row(
        "uring-churn.csv",
        &["--target", "mio", "--conns", "20", "--reconnect-every", "5"],
    );
    assert_eq!(code, Some(0), "{row:?}");
    assert!(num(&row, "conns_opened") > 100.0, "{row:?}");
}

#[test]
fn uring_engine_counts_resets_and_corruption_and_never_hangs() {
    let _machine = common::shared();
    if skip("uring_engine_counts_resets_and_corruption_and_never_hangs") {
        return;
    }
    for (fault, col) in [
        (Misbehave::ResetAfter(20), "resets"),
        (Misbehave::Corrupt(7), "mismatches"),
    ] {
        let server = MisbehavingServer::start(fault);
        let t = Instant::now();
        let (code, row) = uring_row("uring-faults.csv", &["--addr", &server.addr_arg(), "--conns", "10"]);
        assert_eq!(code, Some(1), "{col}: {row:?}");
        assert!(num(&row, col) > 0.0, "{col} not counted: {row:?}");
        assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    }
    // A server that never answers: timeouts, within the run's time.
    let server = MisbehavingServer::start(Misbehave::Silent);
    let (code, row) = uring_row(
        "uring-silent.csv",
        &["--addr", &server.addr_arg(), "--conns", "4", "--timeout", "300ms"],
    );
    assert_eq!(code, Some(1), "{row:?}");
    assert!(num(&row, "timeouts") > 0.0, "{row:?}");
}

#[test]
fn uring_engine_refusals_name_the_flag() {
    let _machine = common::shared();
    let out = loadgen()
        .args(["--target", "mio", "--engine", "uring", "--duration", "200ms"])
        .env(kit::ring::DISABLE_ENV, "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--engine uring") && err.contains("io_uring"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
