//! Runs of several processes and hosts: `--procs`, `--server-procs`, `--shard` with
//! `--start-at`, and `loadgen merge` of shard logs (also across network namespaces
//! standing in for hosts).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{self, *};

fn at(ahead: Duration) -> String {
    format!(
        "{:.3}",
        (SystemTime::now() + ahead)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    )
}

/// The merged report `v` of the shard `logs`: its count is the sum of the shards' and its
/// percentiles are those of one histogram of every sample.
pub(crate) fn merged_is_exact(logs: &[std::path::PathBuf], v: &serde_json::Value) {
    let mut all = loadgen::measure::record::new_histogram();
    let mut sum = 0;
    for l in logs {
        let (ivs, notes) = loadgen::measure::hlog::read_with_notes(l).unwrap();
        sum += loadgen::report::shard::parse_notes(&notes).1.unwrap().counters.msgs;
        for iv in ivs.into_iter().filter(|i| i.tag.is_none()) {
            all.add(&iv.histogram).unwrap();
        }
    }
    assert!(sum > 0);
    assert_eq!(v["counters"]["msgs"].as_u64(), Some(sum), "the merged count is the sum");
    assert_eq!(all.len(), sum, "every completed round trip is in the logs");
    let p = serde_json::to_value(loadgen::measure::record::Percentiles::of(&all)).unwrap();
    for q in ["p50_us", "p99_us", "p999_us", "max_us"] {
        assert_eq!(v["latency"][q], p[q], "{q}");
    }
}

/// Waits for every shard (each must succeed), merges their logs and returns the merged
/// JSON report.
fn wait_and_merge(children: Vec<std::process::Child>, logs: &[std::path::PathBuf], name: &str) -> serde_json::Value {
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    let json = temp_path(name);
    let mut args = vec!["merge"];
    args.extend(logs.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--json", json.to_str().unwrap()]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0));
    // The whole summary, as one process's run prints it.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("  fairness ") && summary.contains("  status     ok"),
        "{summary}"
    );
    read_json(&json)
}

#[test]
fn procs_and_server_procs_make_one_report() {
    let _machine = common::shared();
    let (code, row) = run_for_row(
        "procs.csv",
        &[
            "--target",
            "mio",
            "--server-procs",
            "2",
            "--procs",
            "3",
            "--conns",
            "30",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ],
    );
    assert_eq!(code, Some(0));
    assert_eq!((row["status"].as_str(), row["procs"].as_str()), ("ok", "3"));
    assert_eq!((num(&row, "conns"), num(&row, "conns_ok")), (30.0, 30.0));
    assert!(num(&row, "msgs") > 0.0);
    // Two server processes of two threads each (main + event loop), measured together.
    assert!(num(&row, "server_threads") >= 4.0, "threads {}", row["server_threads"]);
}

#[test]
fn a_merged_report_says_what_one_process_would() {
    let _machine = common::shared();
    // Open loop, Poisson, kernel stamps, churn with RST: every column one process fills
    // must come through the merge of its shards, not be left blank or zero.
    let (code, row) = run_for_row(
        "procs-config.csv",
        &[
            "--target",
            "mio",
            "--procs",
            "2",
            "--conns",
            "10",
            "--rate",
            "2000",
            "--arrivals",
            "poisson",
            "--rx-timestamps",
            "on",
            "--reconnect-every",
            "50",
            "--close",
            "rst",
            "--duration",
            "1500ms",
            "--warmup",
            "300ms",
        ],
    );
    assert_eq!(code, Some(0), "{row:?}");
    assert_eq!(row["procs"], "2");
    for (column, expected) in [
        ("reconnect_every", "50"),
        ("close", "rst"),
        ("arrivals", "poisson"),
        ("pacing", "hybrid"),
        ("engine", "epoll"),
    ] {
        assert_eq!(row[column], expected, "{column}");
    }
    for column in [
        "rx_delay_p99_us",
        "send_lag_p99_us",
        "client_lag_p99_us",
        "first_byte_p99_us",
        "tcp_rtt_p50_us",
        "client_threads",
    ] {
        assert!(num(&row, column) > 0.0, "{column} = {:?}", row[column]);
    }
}

#[test]
fn a_shard_is_judged_on_its_share_of_the_rate() {
    let _machine = common::shared();
    // Shard 0 of 2 sends its 5 connections' messages: 1,000 of the run's 2,000 msg/s. Judged
    // against the whole run's rate it "achieved 1000 of 2000" and was called short.
    let server = MisbehavingServer::start(Misbehave::None);
    let json = temp_path("shard-share.json");
    let out = run(&[
        "--addr",
        &server.addr_arg(),
        "--shard",
        "0/2",
        "--start-at",
        &at(Duration::from_millis(800)),
        "--conns",
        "10",
        "--rate",
        "2000",
        "--duration",
        "1500ms",
        "--warmup",
        "300ms",
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.code().is_some(), "{out:?}");
    let v = read_json(&json);
    assert_eq!(v["shard"].as_str(), Some("0/2"));
    let sent = v["achieved_rate"].as_f64().unwrap();
    assert!(
        (700.0..1300.0).contains(&sent),
        "the shard sent its share: {sent} msg/s"
    );
    let keep_up = v["keep_up"].as_str().unwrap_or("");
    assert!(!keep_up.contains("achieved"), "judged on its share: {keep_up}");
}

#[test]
fn shards_started_together_merge_into_the_whole_run() {
    let _machine = common::shared();
    let server = MisbehavingServer::start(Misbehave::None);
    let start = at(Duration::from_secs(2));
    let logs: Vec<_> = (0..3).map(|i| temp_path(&format!("shard{i}.hlog"))).collect();
    let children: Vec<_> = (0..3)
        .map(|i| {
            loadgen()
                .args([
                    "--addr",
                    &server.addr_arg(),
                    "--conns",
                    "10",
                    "--duration",
                    "1s",
                    "--warmup",
                    "200ms",
                ])
                .args(["--shard", &format!("{i}/3"), "--start-at", &start, "--quiet"])
                .args(["--hdr-log", logs[i].to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let v = wait_and_merge(children, &logs, "shards-merged.json");
    // 10 connections split 3/3/4, every shard's counts summed.
    assert_eq!(
        (v["conns"].as_u64(), v["conns_ok"].as_u64(), v["procs"].as_u64()),
        (Some(10), Some(10), Some(3))
    );
    // What the shards ran on is carried over, not left blank.
    assert_eq!(
        (v["engine"].as_str(), v["transport"].as_str()),
        (Some("epoll"), Some("tcp"))
    );
    // The configuration columns come from the shards' results (merge has no configuration
    // of its own), and so do their TCP readings.
    assert!(v["settings"]["client_threads"].as_u64() >= Some(1), "{}", v["settings"]);
    assert!(v["tcp"]["rtt_p50_us"].as_f64() > Some(0.0), "{}", v["tcp"]);
    merged_is_exact(&logs, &v);
    // A log of another run is refused, naming the file.
    let other = temp_path("other.hlog");
    let solo = run(&[
        "--addr",
        &server.addr_arg(),
        "--conns",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--hdr-log",
        other.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(solo.status.code(), Some(0));
    let mixed = run(&["merge", logs[0].to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(mixed.status.code(), Some(2));
    let err = String::from_utf8_lossy(&mixed.stderr);
    assert!(err.contains("other.hlog") && err.contains("another run"), "{err}");
}

#[test]
fn shard_flags_are_checked() {
    let _machine = common::shared();
    let past = at(Duration::ZERO).parse::<f64>().unwrap() - 5.0;
    for (args, flag) in [
        (vec!["--procs", "0"], "--procs"),
        (vec!["--shard", "3/2"], "--shard"),
        (vec!["--shard", "1/3"], "--shard"),
        (vec!["--shard", "0/2", "--start-at", &format!("{past}")], "--start-at"),
        (vec!["--start-at", "yesterday"], "--start-at"),
        (vec!["--server-procs", "0"], "--server-procs"),
    ] {
        let mut all = vec!["--target", "mio"];
        all.extend(args.iter().map(|s| &**s));
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.lines().count() == 1, "{args:?}: {err}");
    }
}

#[test]
fn shards_on_two_hosts_merge_exactly() {
    let _machine = common::shared();
    let Some((logs, v)) = two_host_shards("shards_on_two_hosts_merge_exactly", false) else {
        return;
    };
    merged_is_exact(&logs, &v);
}

#[test]
fn shards_on_two_hosts_carry_one_server_cost_from_its_agent() {
    let _machine = common::shared();
    // Each shard reads the server host's agent over the same --start-at window; the merge
    // carries that one cost, per message over every shard's messages.
    let Some((_, v)) = two_host_shards("shards_on_two_hosts_carry_one_server_cost_from_its_agent", true) else {
        return;
    };
    let cpu = v["server"]["cpu_s"].as_f64().unwrap_or(0.0);
    assert!(cpu > 0.0, "{}", v["server"]);
    let msgs = v["counters"]["msgs"].as_f64().unwrap();
    let per_msg = v["server_cpu_us_per_msg"].as_f64().unwrap_or(0.0);
    assert!(
        (per_msg - cpu * 1e6 / msgs).abs() <= 0.01 * per_msg + 0.01,
        "{per_msg} vs {cpu} s / {msgs}"
    );
    assert!(v["server"]["host_cpu"]["user_s"].as_f64().is_some(), "{}", v["server"]);
}

/// Two client hosts (network namespaces) run one shard each against a mio server on a
/// third, from one --start-at; returns their logs and the merged report (`None`: skipped).
fn two_host_shards(test: &str, with_agent: bool) -> Option<(Vec<std::path::PathBuf>, serde_json::Value)> {
    let hosts = match testkit::netns::Hosts::create(2) {
        Ok(h) => h,
        Err(why) => {
            testkit::skip(test, &why);
            return None;
        }
    };
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_loadgen"));
    let mut serve = testkit::netns::Hosts::command(&hosts.server, exe);
    serve.args(["serve", "--model", "mio", "--addr", "0.0.0.0:0"]);
    let server = testkit::ServerProcess::spawn(&mut serve);
    let port = server.addr.port();
    let agent = with_agent.then(|| {
        let mut cmd = testkit::netns::Hosts::command(&hosts.server, exe);
        cmd.args(["agent", "--allow-remote", "--listen", "0.0.0.0:0"]);
        testkit::ServerProcess::spawn(&mut cmd)
    });
    let start = at(Duration::from_secs(2));
    let logs: Vec<_> = (0..2).map(|i| temp_path(&format!("{test}-host{i}.hlog"))).collect();
    let children: Vec<_> = hosts
        .clients
        .iter()
        .enumerate()
        .map(|(i, (ns, server_ip))| {
            let mut cmd = testkit::netns::Hosts::command(ns, exe);
            cmd.args([
                "--addr",
                &format!("{server_ip}:{port}"),
                "--conns",
                "8",
                "--duration",
                "1s",
            ])
            .args([
                "--warmup",
                "200ms",
                "--shard",
                &format!("{i}/2"),
                "--start-at",
                &start,
                "--quiet",
            ])
            .args(["--hdr-log", logs[i].to_str().unwrap()])
            .stdout(std::process::Stdio::null());
            if let Some(a) = &agent {
                cmd.args(["--agent", &format!("{server_ip}:{}", a.addr.port())]);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    let v = wait_and_merge(children, &logs, &format!("{test}-merged.json"));
    drop(agent);
    drop(server);
    Some((logs, v))
}

#[test]
fn merge_of_a_file_that_is_no_log_names_it_in_one_line() {
    let _machine = common::shared();
    let bad = temp_path("not-a-log.hlog");
    std::fs::write(&bad, "a,b,c\n1,2,3\n").unwrap();
    let out = run(&["merge", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-a-log.hlog") && err.contains("not an HdrHistogram interval log") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!err.contains("ParseError"), "no debug output: {err}");
}

#[test]
fn a_shard_killed_in_its_window_leaves_the_others_merged_as_partial_naming_it() {
    let _machine = common::shared();
    let server = MisbehavingServer::start(Misbehave::None);
    let start = at(Duration::from_secs(2));
    let logs: Vec<_> = (0..2).map(|i| temp_path(&format!("killed-shard{i}.hlog"))).collect();
    let mut children: Vec<_> = (0..2)
        .map(|i| {
            loadgen()
                .args([
                    "--addr",
                    &server.addr_arg(),
                    "--conns",
                    "4",
                    "--duration",
                    "3s",
                    "--warmup",
                    "0s",
                ])
                .args(["--shard", &format!("{i}/2"), "--start-at", &start, "--quiet"])
                .args(["--hdr-log", logs[i].to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Shard 1 dies a second into its window (SIGKILL: no result written).
    std::thread::sleep(Duration::from_secs(3));
    signal(children[1].id(), Signal::KILL);
    let _ = children[1].wait();
    assert_eq!(children[0].wait().unwrap().code(), Some(0));
    let json = temp_path("killed-merged.json");
    let out = run(&[
        "merge",
        logs[0].to_str().unwrap(),
        logs[1].to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "a partial merge");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("killed-shard1.hlog is a shard's log without its result"),
        "{err}"
    );
    let v = read_json(&json);
    assert_eq!(v["status"], "partial");
    assert!(v["stop_reason"].as_str().unwrap().contains("missing: shard 1"), "{v}");
    assert_eq!(v["shards"][0]["status"], "ok");
    assert_eq!(v["shards"][1]["status"], "missing");
    merged_is_exact(&logs[..1], &v);
}
