//! Server work (`--work`) against Little's law: c busy servers with service time S and a
//! client round trip R0 carry X = c / (S + R0) in closed loop. Generous bounds here (the
//! machine is shared); the measured ratios belong in results/. The timed runs take the machine alone.

use crate::common::{self, *};

/// (throughput, mean latency µs) of a closed-loop run of `target` with `extra` flags.
fn closed(target: &str, conns: &str, extra: &[&str]) -> (f64, f64) {
    let name = format!(
        "work-{target}-{conns}-{}.csv",
        extra.join("_").replace([':', '/', '+'], "-")
    );
    let (code, row) = run_for_row_unstolen(
        &name,
        &[
            &["--target", target, "-c", conns, "-d", "1500ms", "--warmup", "300ms"][..],
            extra,
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{target} {extra:?}");
    (num(&row, "throughput_msgs_s"), num(&row, "lat_mean_us"))
}

#[test]
fn a_pool_of_16_waiting_1ms_follows_littles_law() {
    let _alone = common::alone();
    // R0: the round trip of a served connection without work (16 connections, 16 workers).
    let (_, r0_us) = closed("threadpool", "16", &["--server-workers", "16"]);
    let (x, _) = closed("threadpool", "100", &["--server-workers", "16", "--work", "wait:1ms"]);
    let predicted = 16.0 / (1e-3 + r0_us * 1e-6);
    assert!(
        x <= 16_000.0 * 1.02,
        "16 workers waiting 1 ms each: at most 16,000 msg/s, got {x:.0}"
    );
    // Below the prediction by up to half: 16 threads each woken per message pay the
    // hypervisor's late wake-ups (CI measured 40% under it at 40% steal); above it by a
    // fifth at most. The law's ceiling above is the sharp bound.
    assert!(
        (0.5..1.2).contains(&(x / predicted)),
        "{x:.0} msg/s against {predicted:.0} (R0 {r0_us:.1} us)"
    );
}

#[test]
fn event_loops_keep_serving_while_messages_wait() {
    let _alone = common::alone();
    let (pool, _) = closed("threadpool", "100", &["--server-workers", "16", "--work", "wait:1ms"]);
    let (mio, _) = closed("mio", "100", &["--work", "wait:1ms"]);
    let (tokio, _) = closed("tokio", "100", &["--work", "wait:1ms"]);
    let (uring, _) = closed("uring", "100", &["--work", "wait:1ms"]);
    // A blocking pool cannot pass its 16 workers' ceiling (1x); the event loops do, by
    // several times when the machine is quiet (the measured ratios are in results/work/).
    // The bounds are generous: client and server share two cores, and this VM's speed moves
    // (tokio once came out at 1.96x in CI).
    assert!(mio >= 2.5 * pool, "mio {mio:.0} against the pool's {pool:.0}");
    assert!(uring >= 2.5 * pool, "uring {uring:.0} against the pool's {pool:.0}");
    // tokio's timer has millisecond resolution: a 1 ms sleep ends at the next tick after
    // it, up to 2 ms; it still serves every connection while they wait.
    assert!(tokio >= 1.5 * pool, "tokio {tokio:.0} against the pool's {pool:.0}");
}

#[test]
fn one_loop_blocked_or_busy_serves_one_message_at_a_time() {
    let _alone = common::alone();
    let (blocked, _) = closed("mio", "100", &["--work", "block:1ms"]);
    assert!(
        (700.0..=1_100.0).contains(&blocked),
        "one loop blocking 1 ms per message: {blocked:.0} msg/s"
    );
    // A burn of 100 us a message: at most 10,000 a second, and not far below (a burn ten
    // times too long would give 1,000); the server's CPU per message is the burn plus what
    // a message costs it without work at that same rate (a loop woken per message costs
    // more per message than one that drains many per wake-up), within twice that cost.
    let load = ["--target", "mio", "-c", "100", "-d", "1500ms", "--warmup", "300ms"];
    let (code, burn) = run_for_row_unstolen("work-cpu-100us.csv", &[&load[..], &["--work", "cpu:100us"]].concat());
    assert_eq!(code, Some(0));
    let busy = num(&burn, "throughput_msgs_s");
    assert!(
        (4_000.0..=10_500.0).contains(&busy),
        "one loop burning 100 us per message: {busy:.0} msg/s"
    );
    let rate = format!("{busy:.0}");
    let (code, plain) = run_for_row_unstolen("work-cpu-none.csv", &[&load[..], &["--rate", &rate]].concat());
    assert_eq!(code, Some(0));
    let (per_msg, no_work) = (
        num(&burn, "server_cpu_us_per_msg"),
        num(&plain, "server_cpu_us_per_msg"),
    );
    assert!(
        (97.0..=100.0 + 2.0 * no_work + 5.0).contains(&per_msg),
        "server CPU per message {per_msg:.1} us with a 100 us burn, {no_work:.1} us without at {rate} msg/s"
    );
}

#[test]
fn the_row_records_the_work_and_bad_specs_are_refused() {
    let _machine = common::shared();
    let (code, row) = run_for_row_unstolen(
        "work-row.csv",
        &[
            "--target",
            "mio",
            "-c",
            "2",
            "-d",
            "300ms",
            "--warmup",
            "0s",
            "--work",
            "cpu:20us+wait:exp:1ms",
        ],
    );
    assert_eq!(code, Some(0));
    assert_eq!(row["work"], "cpu:20us+wait:exp:1ms");
    for (args, needle) in [
        (vec!["--target", "mio", "--work", "nap:1ms"], "unknown kind"),
        (vec!["--target", "mio", "--work", "wait:exp:0ms"], "positive"),
        (
            vec!["--addr", "127.0.0.1:9", "--work", "cpu:1ms"],
            "echo-server --model M --work SPEC",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--work") && err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn over_udp_a_pool_blocks_on_a_wait_and_a_loop_does_not() {
    // Every datagram is one message: 4 pool workers waiting 1 ms each carry at most 4,000
    // datagrams a second whatever the peers; one mio loop holds the replies on a timer and
    // carries many times that for 50 peers.
    let _alone = common::alone();
    let udp = |target: &str, extra: &[&str]| {
        let name = format!("work-udp-{target}.csv");
        let (code, row) = run_for_row_unstolen(
            &name,
            &[
                &[
                    "--target",
                    target,
                    "--transport",
                    "udp",
                    "-c",
                    "50",
                    "-d",
                    "1500ms",
                    "--warmup",
                    "300ms",
                ][..],
                &["--work", "wait:1ms"],
                extra,
            ]
            .concat(),
        );
        assert_eq!(code, Some(0), "{target}");
        assert_eq!(row["work"], "wait:1ms");
        num(&row, "throughput_msgs_s")
    };
    let pool = udp("threadpool", &["--server-workers", "4"]);
    assert!(
        pool <= 4_000.0 * 1.02,
        "4 workers waiting 1 ms: at most 4,000/s, got {pool:.0}"
    );
    assert!(
        pool >= 4_000.0 * 0.5,
        "4 workers waiting 1 ms: about 4,000/s, got {pool:.0}"
    );
    let mio = udp("mio", &[]);
    assert!(
        mio >= 3.0 * pool,
        "one mio loop, 50 peers waiting 1 ms: {mio:.0}/s, pool {pool:.0}/s"
    );
}

/// This machine's timer lateness now: the median of how late 300 sleeps of 100 µs wake (µs).
fn timer_late_p50_us() -> f64 {
    let mut late: Vec<f64> = (0..300)
        .map(|_| {
            let t = std::time::Instant::now();
            std::thread::sleep(std::time::Duration::from_micros(100));
            t.elapsed().as_secs_f64() * 1e6 - 100.0
        })
        .collect();
    late.sort_by(f64::total_cmp);
    late[late.len() / 2]
}

#[test]
fn a_wait_of_1ms_lasts_1ms_in_every_model() {
    let _alone = common::alone();
    for model in runnable_models("a_wait_of_1ms_lasts_1ms_in_every_model") {
        let m = model.name();
        let run = |extra: &[&str]| {
            run_for_row_unstolen(
                &format!("exact-wait-{m}-{}.csv", extra.len()),
                &[&["--target", m, "-c", "1", "-d", "1s", "--warmup", "200ms"][..], extra].concat(),
            )
        };
        let (code, base) = run(&[]);
        assert_eq!(code, Some(0), "{m} without work");
        let (code, row) = run(&["--work", "wait:1ms"]);
        assert_eq!(code, Some(0), "{m} wait:1ms");
        let floor = timer_late_p50_us();
        let (r0, r) = (num(&base, "lat_p50_us"), num(&row, "lat_p50_us"));
        // Before waits were on a timerfd, tokio's p50 was about 2 ms (its 1 ms wheel) and
        // mio's rounded to whole milliseconds.
        // Generous: a wait that ended a tick late (tokio's old 1 ms wheel, mio's whole-ms
        // poll timeout) costs about half a millisecond on average, more than this allows.
        assert!(
            r <= r0 + 1000.0 + 2.0 * floor + 300.0,
            "{m}: p50 {r:.1} us with wait:1ms, {r0:.1} us without; timer floor {floor:.1} us"
        );
        let (asked, done) = (num(&row, "work_asked_mean_us"), num(&row, "work_done_mean_us"));
        assert!((asked - 1000.0).abs() < 0.01, "{m}: asked {asked}");
        assert!(
            (1000.0..=1000.0 + 2.0 * (100.0 + floor)).contains(&done),
            "{m}: the server's waits took {done:.1} us on average for 1 ms asked (timer floor {floor:.1} us)"
        );
    }
}
