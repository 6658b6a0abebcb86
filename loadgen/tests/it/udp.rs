//! UDP load: against an independent echo server written in Python (a fixture), against
//! every model of ours, with injected loss, and with a server that drops, duplicates,
//! reorders, corrupts and delays datagrams on purpose.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, *};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/udp_echo.py");

/// The Python echo server, in `mode` (`plain` or `misbehave`).
fn python_server(mode: &str) -> testkit::ServerProcess {
    let server = testkit::ServerProcess::spawn(Command::new("python3").args([FIXTURE, mode]));
    assert!(server.udp, "the fixture prints a udp:// address");
    server
}

fn udp_addr(server: &testkit::ServerProcess) -> String {
    format!("udp://{}", server.addr)
}

#[test]
fn a_plain_python_udp_echo_server_is_ok_with_nothing_lost() {
    let _machine = common::shared();
    let server = python_server("plain");
    let addr = udp_addr(&server);
    for mode in [&[][..], &["--rate", "2000"][..]] {
        let args = [
            &[
                "--addr",
                &addr,
                "--conns",
                "20",
                "--duration",
                "1s",
                "--warmup",
                "200ms",
            ][..],
            mode,
        ]
        .concat();
        let (code, row) = run_for_row("udp-python.csv", &args);
        assert_eq!(code, Some(0), "{row:?}");
        assert_eq!(row["status"], "ok");
        assert_eq!(row["transport"], "udp");
        assert!(num(&row, "throughput_msgs_s") > 100.0, "{row:?}");
        for col in ["lost", "late", "duplicates", "reordered", "mismatches"] {
            assert_eq!(num(&row, col), 0.0, "{col}: {row:?}");
        }
    }
    server.stop(Duration::from_secs(5));
}

#[test]
fn every_model_serves_a_udp_run() {
    let _machine = common::shared();
    for model in runnable_models("every_model_serves_a_udp_run") {
        let (code, row) = run_for_row(
            "udp-models.csv",
            &[
                "--target",
                model.name(),
                "--transport",
                "udp",
                "--conns",
                "16",
                "--depth",
                "2",
                "--duration",
                "500ms",
                "--warmup",
                "100ms",
            ],
        );
        assert_eq!(code, Some(0), "{model}: {row:?}");
        assert_eq!(
            (row["target"].as_str(), row["transport"].as_str()),
            (model.name(), "udp")
        );
        assert!(num(&row, "throughput_msgs_s") > 100.0, "{model}: {row:?}");
        assert_eq!(num(&row, "lost") + num(&row, "mismatches"), 0.0, "{model}: {row:?}");
    }
}

#[test]
fn each_datagram_fault_is_counted_apart() {
    let _machine = common::shared();
    for engine in engines("each_datagram_fault_is_counted_apart") {
        each_datagram_fault_is_counted_apart_with(engine);
    }
}

/// The engines a UDP test runs on: epoll, and io_uring where the kernel has it (skipped,
/// as a test, where it does not).
fn engines(test: &str) -> Vec<&'static str> {
    match kit::ring::available() {
        Ok(()) => vec!["epoll", "uring"],
        Err(e) => {
            testkit::skip(&format!("{test} (uring)"), &e.to_string());
            vec!["epoll"]
        }
    }
}

fn each_datagram_fault_is_counted_apart_with(engine: &str) {
    let server = python_server("misbehave");
    let json = temp_path(&format!("udp-misbehave-{engine}.json"));
    // One connection with 4 in flight, so a held-back reply overtakes its own successor;
    // the timeout (200 ms) comes before the fixture's delayed replies (600 ms).
    let (code, row) = run_for_row(
        &format!("udp-misbehave-{engine}.csv"),
        &[
            "--addr",
            &udp_addr(&server),
            "--conns",
            "1",
            "--depth",
            "4",
            "--timeout",
            "200ms",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--json",
            json.to_str().unwrap(),
            "--engine",
            engine,
        ],
    );
    // The flipped bytes make the run `errors` (exit 1); every other fault is a measurement.
    assert_eq!(code, Some(1), "{engine}: {row:?}");
    assert_eq!(row["engine"], engine);
    let sent = num(&row, "throughput_msgs_s") * 2.0;
    assert!(sent > 500.0, "too few round trips to see the pattern: {row:?}");
    for col in ["lost", "late", "duplicates", "reordered", "mismatches"] {
        assert!(num(&row, col) >= 1.0, "{col} not counted: {row:?}");
    }
    // The pattern is one of each per 50 datagrams: lost counts the dropped and the delayed.
    let c = &read_json(&json)["counters"];
    let ratio = |col: &str| c[col].as_f64().unwrap() / c["sent"].as_f64().unwrap();
    assert!((0.02..0.06).contains(&ratio("lost")), "lost {}", ratio("lost"));
    for col in ["duplicates", "reordered", "mismatches"] {
        assert!((0.01..0.03).contains(&ratio(col)), "{col} {}", ratio(col));
    }
    assert!(
        c["late"].as_u64().unwrap() <= c["lost"].as_u64().unwrap(),
        "late ones were lost first: {c}"
    );
    server.stop(Duration::from_secs(5));
}

#[test]
fn injected_loss_is_reported_and_open_loop_keeps_its_rate() {
    let _machine = common::shared();
    let server = python_server("plain");
    let _loss = match testkit::nft::Loss::to_udp_port(server.addr.port(), 1) {
        Ok(l) => l,
        Err(why) => {
            testkit::skip("injected_loss_is_reported_and_open_loop_keeps_its_rate", &why);
            return;
        }
    };
    let (code, row) = run_for_row(
        "udp-loss.csv",
        &[
            "--addr",
            &udp_addr(&server),
            "--conns",
            "50",
            "--rate",
            "5000",
            "--timeout",
            "300ms",
            "--duration",
            "4s",
            "--warmup",
            "500ms",
        ],
    );
    // Loss is a measurement, not an error: the run is ok.
    assert_eq!(code, Some(0), "{row:?}");
    let lost = num(&row, "lost");
    let sent = 5000.0 * 4.0;
    let share = lost / sent * 100.0;
    assert!((0.5..=1.5).contains(&share), "lost {lost} of ~{sent}: {share:.2}%");
    // Open loop keeps its schedule through the losses: the answered share of the rate.
    let achieved = num(&row, "throughput_msgs_s");
    assert!(achieved > 5000.0 * 0.97, "rate fell to {achieved} msg/s");
    server.stop(Duration::from_secs(5));
}

#[test]
fn nobody_at_the_udp_port_is_exit_3_within_the_connect_timeout() {
    let _machine = common::shared();
    // A bound socket that never answers would be silence; a closed port answers ICMP.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let out = run(&[
        "--addr",
        &format!("udp://127.0.0.1:{port}"),
        "--connect-timeout",
        "1s",
        "--duration",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused") && err.contains("--addr"), "{err}");
}

#[test]
fn flags_that_do_not_fit_udp_are_refused_naming_them() {
    let _machine = common::shared();
    // A message smaller than its header; a reset, which needs a TCP connection (refused,
    // not ignored).
    for (flag, value, says) in [("--msg-size", "8", "header"), ("--close", "rst", "UDP")] {
        let out = run(&["--target", "mio", "--transport", "udp", flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn a_datagram_above_the_ethernet_mtu_is_warned_about() {
    let _machine = common::shared();
    let out = run(&[
        "--target",
        "mio",
        "--transport",
        "udp",
        "--msg-size",
        "1473",
        "--conns",
        "2",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("WARNING") && text.contains("fragments"), "{text}");
}

#[test]
fn sweep_compare_and_plot_take_udp_rows() {
    let _machine = common::shared();
    let csv = temp_path("udp-sweep.csv");
    let out = run(&[
        "sweep",
        "--targets",
        "mio",
        "--transport",
        "tcp,udp",
        "--conns",
        "2",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let (_, rows) = read_csv(&csv);
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["transport"].as_str(), r["lost"].as_str()))
        .collect();
    // UDP counts are numbers on the UDP row and empty on the TCP row.
    assert_eq!(kinds, [("tcp", ""), ("udp", "0")]);
    let out = run(&[
        "compare",
        csv.to_str().unwrap(),
        "--by",
        "transport",
        "--baseline",
        "tcp",
        "--format",
        "csv",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("udp"));
    let svg = temp_path("udp-sweep.svg");
    let out = run(&["plot", csv.to_str().unwrap(), "--out", svg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        std::fs::read_to_string(&svg).unwrap().contains("mio udp"),
        "a UDP line of its own"
    );
}

#[test]
fn a_udp_server_that_dies_mid_run_ends_the_run_with_what_it_measured() {
    let _machine = common::shared();
    for engine in engines("a_udp_server_that_dies_mid_run_ends_the_run_with_what_it_measured") {
        a_udp_server_that_dies_mid_run_with(engine);
    }
}

fn a_udp_server_that_dies_mid_run_with(engine: &str) {
    let server = python_server("plain");
    let addr = udp_addr(&server);
    let pid = server.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        signal(pid, Signal::KILL);
        server // dropped here: already dead
    });
    let t = Instant::now();
    let (code, row) = run_for_row(
        &format!("udp-dies-{engine}.csv"),
        &[
            "--engine",
            engine,
            "--addr",
            &addr,
            "--conns",
            "10",
            "--duration",
            "10s",
            "--warmup",
            "0s",
            "--connect-timeout",
            "1s",
        ],
    );
    drop(killer.join());
    // Its port then answers ICMP: resets, the run stops early and keeps what it measured.
    assert_eq!(code, Some(1), "{row:?}");
    assert_eq!(row["status"], "partial", "{row:?}");
    assert!(
        num(&row, "resets") > 0.0,
        "ICMP port unreachable counts as the server's reset: {row:?}"
    );
    assert!(num(&row, "msgs") > 0.0, "{row:?}");
    assert!(t.elapsed() < Duration::from_secs(12), "took {:?}", t.elapsed());
}

#[test]
fn a_python_seqpacket_echo_server_is_loaded_packet_by_packet() {
    let _machine = common::shared();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seqpacket_echo.py");
    let mut child = Command::new("python3")
        .arg(fixture)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .expect("the fixture prints its address")
        .to_string();
    for mode in [&["--depth", "4"][..], &["--rate", "2000"][..]] {
        let args = [
            &["--addr", &addr, "-c", "10", "-d", "500ms", "--warmup", "100ms"][..],
            mode,
        ]
        .concat();
        let (code, row) = run_for_row("seqpacket-python.csv", &args);
        assert_eq!(code, Some(0), "{row:?}");
        assert_eq!(row["transport"], "seqpacket");
        assert!(num(&row, "throughput_msgs_s") > 100.0, "{row:?}");
        assert_eq!(num(&row, "mismatches"), 0.0, "{row:?}");
    }
    let _ = child.kill();
    let _ = child.wait();
}
