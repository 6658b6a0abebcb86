//! The kernel's own echo as a target (`--addr icmp://HOST`): loaded over IPv4 and IPv6 on
//! loopback like any datagram server, through ping sockets alone in a network namespace
//! the test creates (the raw-socket capability dropped), and refused with exit 3, naming
//! the sysctl and the capability, when neither kind of socket is allowed.

use std::process::{Command, Output};

use crate::common::{self, *};

/// Whether this process may open an ICMP socket of either kind (a ping socket, or a raw
/// one with CAP_NET_RAW).
fn icmp_allowed() -> bool {
    use socket2::{Domain, Protocol, Socket, Type};
    [Type::DGRAM, Type::RAW]
        .into_iter()
        .any(|t| Socket::new(Domain::IPV4, t, Some(Protocol::ICMPV4)).is_ok())
}

#[test]
fn the_kernels_echo_is_loaded_over_ipv4_and_ipv6_with_nothing_lost() {
    let _machine = common::shared();
    if !icmp_allowed() {
        return testkit::skip(
            "the_kernels_echo_is_loaded_over_ipv4_and_ipv6_with_nothing_lost",
            "neither ping sockets (net.ipv4.ping_group_range) nor CAP_NET_RAW",
        );
    }
    for (addr, transport) in [("icmp://127.0.0.1", "icmp"), ("icmp://[::1]", "icmp6")] {
        for mode in [
            &["-c", "4", "--depth", "2"][..],
            &["-c", "4", "--rate", "2000"][..],
            &["-c", "4", "--engine", "uring"][..],
        ] {
            let args = [
                &["--addr", addr, "-d", "500ms", "--warmup", "100ms", "--msg-size", "100"][..],
                mode,
            ]
            .concat();
            let (code, row) = run_for_row("icmp.csv", &args);
            assert_eq!(code, Some(0), "{addr} {mode:?}: {row:?}");
            assert_eq!(row["status"], "ok");
            assert_eq!(row["transport"], transport);
            assert!(num(&row, "throughput_msgs_s") > 100.0, "{row:?}");
            assert!(num(&row, "lat_p50_us") > 0.0, "{row:?}");
            for col in ["lost", "late", "duplicates", "reordered", "mismatches"] {
                assert_eq!(num(&row, col), 0.0, "{addr} {col}: {row:?}");
            }
        }
    }
}

/// Runs loadgen with `args` in a new network namespace with loopback up, ping sockets on
/// or off for every group, and CAP_NET_RAW dropped; `None` when this process cannot make
/// one (not root).
fn in_namespace(ping_sockets: bool, args: &[&str]) -> Option<Output> {
    in_namespace_with(ping_sockets, "", args)
}

/// [`in_namespace`], with `setup` (shell) run in the namespace first.
fn in_namespace_with(ping_sockets: bool, setup: &str, args: &[&str]) -> Option<Output> {
    let drop_raw = "exec setpriv --bounding-set -net_raw --inh-caps -net_raw";
    in_namespace_as(ping_sockets, setup, drop_raw, args)
}

/// [`in_namespace_with`], loadgen started by `exec` (which keeps root's CAP_NET_RAW, so
/// raw sockets are allowed) or by a `setpriv` that drops it.
fn in_namespace_as(ping_sockets: bool, setup: &str, exec: &str, args: &[&str]) -> Option<Output> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let range = if ping_sockets { "0 2147483647" } else { "1 0" };
    let script = format!(
        "ip link set lo up && echo '{range}' > /proc/sys/net/ipv4/ping_group_range && {setup} \
         {exec} \"$0\" \"$@\""
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script, env!("CARGO_BIN_EXE_loadgen")])
        .args(args)
        .output()
        .expect("unshare runs");
    eprintln!(
        "--- (namespace, ping sockets {ping_sockets}) loadgen {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

#[test]
fn raw_sockets_carry_it_when_ping_sockets_are_off_and_the_report_says_what_it_costs() {
    let _machine = common::shared();
    let test = "raw_sockets_carry_it_when_ping_sockets_are_off_and_the_report_says_what_it_costs";
    let args = ["--addr", "icmp://127.0.0.1", "-c", "10", "-d", "300ms", "--warmup", "0"];
    let Some(raw) = in_namespace_as(false, "", "exec", &args) else {
        return testkit::skip(test, "needs root to create a network namespace");
    };
    assert_eq!(raw.status.code(), Some(0));
    let said = |o: &Output| String::from_utf8_lossy(&o.stdout).contains("ICMP over raw sockets");
    assert!(said(&raw), "raw sockets past 8 connections are named");
    // Ping sockets on and raw sockets allowed: the connections used ping sockets, and the
    // report says nothing of raw ones (it names what was opened, not what could be).
    let ping = in_namespace_as(true, "", "exec", &args).unwrap();
    assert_eq!(ping.status.code(), Some(0));
    assert!(!said(&ping));
}

#[test]
fn ping_sockets_alone_carry_it_and_with_neither_kind_the_exit_is_3_naming_both_remedies() {
    let _machine = common::shared();
    let test = "ping_sockets_alone_carry_it_and_with_neither_kind_the_exit_is_3_naming_both_remedies";
    for addr in ["icmp://127.0.0.1", "icmp://[::1]"] {
        let csv = temp_path("icmp-ping.csv");
        let args = [
            "--addr",
            addr,
            "-c",
            "2",
            "-d",
            "300ms",
            "--warmup",
            "0",
            "-q",
            "--csv",
            csv.to_str().unwrap(),
        ];
        let Some(out) = in_namespace(true, &args) else {
            return testkit::skip(test, "needs root to create a network namespace");
        };
        assert_eq!(out.status.code(), Some(0), "{addr} over ping sockets");
        let row = only_row(&csv);
        assert!(num(&row, "throughput_msgs_s") > 100.0, "{row:?}");
        assert_eq!(num(&row, "lost"), 0.0, "{row:?}");
    }
    let out = in_namespace(false, &["--addr", "icmp://127.0.0.1", "-c", "1", "-d", "300ms"]).unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for needed in [
        "icmp://127.0.0.1",
        "net.ipv4.ping_group_range",
        "CAP_NET_RAW",
        "doctor --tune",
    ] {
        assert!(err.contains(needed), "names {needed}: {err}");
    }
}

#[test]
fn a_host_that_ignores_echo_requests_is_unreachable_not_a_hang() {
    let _machine = common::shared();
    let t = std::time::Instant::now();
    let Some(out) = in_namespace_with(
        true,
        "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all &&",
        &["--addr", "icmp://127.0.0.1", "-c", "1", "-d", "300ms"],
    ) else {
        return testkit::skip(
            "a_host_that_ignores_echo_requests_is_unreachable_not_a_hang",
            "needs root to create a network namespace",
        );
    };
    assert_eq!(out.status.code(), Some(3), "no reply: the target cannot be reached");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("icmp://127.0.0.1") && err.contains("no ICMP echo reply"),
        "{err}"
    );
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "bounded: {:?}",
        t.elapsed()
    );
}
