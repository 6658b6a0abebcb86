//! `loadgen agent` and `--agent`: the server's cost read from its host's agent (here the
//! same machine, over loopback), the exposition format, the token, bad requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::common::{self, *};

/// An agent on 127.0.0.1:0 with `extra` flags; (the agent, stopped when dropped, and its
/// address). testkit's process guard reads its `listening ADDR` line.
fn agent(extra: &[&str]) -> (testkit::ServerProcess, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args(["agent", "--listen", "127.0.0.1:0"]).args(extra);
    start_agent(cmd)
}

/// Starts the agent `cmd`; (the agent, stopped when dropped, and its address).
fn start_agent(mut cmd: Command) -> (testkit::ServerProcess, String) {
    let agent = testkit::ServerProcess::spawn(&mut cmd);
    let at = agent.addr.to_string();
    (agent, at)
}

/// The flags of a short run against `server`, reading the agent at `at`.
fn load_args(server: &str, at: &str) -> Vec<String> {
    [
        "--addr", server, "--agent", at, "-c", "4", "-d", "1s", "--warmup", "200ms",
    ]
    .map(String::from)
    .to_vec()
}

/// A raw HTTP request to `addr`; the whole response.
fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn loadgen_reads_the_servers_cost_from_the_agent() {
    let _machine = common::shared();
    let mut cmd = loadgen();
    cmd.args(["serve", "--model", "mio", "--addr", "127.0.0.1:0"]);
    let server = testkit::ServerProcess::spawn(&mut cmd);
    let (agent, at) = agent(&[]);
    let port = server.addr.port();
    // The exposition parses with a Prometheus text-format parser.
    let body = http(&at, &format!("GET /metrics?port={port} HTTP/1.0\r\n\r\n"));
    let text = body.split("\r\n\r\n").nth(1).unwrap().to_string();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    for name in [
        "process_cpu_seconds_total",
        "process_threads",
        "process_open_fds",
        "node_cpu_seconds_total",
        "listen_backlog",
        "listen_queue_length",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "{name} missing: {text}"
        );
    }
    let json = temp_path("agent.json");
    let mut args = load_args(&server.addr.to_string(), &at);
    args.extend(["--json".to_string(), json.to_str().unwrap().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, row) = run_for_row("agent.csv", &args);
    assert_eq!(code, Some(0));
    assert!(
        num(&row, "server_cpu_s") > 0.0 && num(&row, "server_cpu_us_per_msg") > 0.0,
        "{row:?}"
    );
    assert!(num(&row, "server_threads") >= 1.0 && num(&row, "server_rss_kib") > 0.0);
    assert!(read_json(&json)["server_source"].as_str().unwrap().contains("agent"));
    drop(agent);
}

#[test]
fn the_agent_answers_only_metrics_wants_its_token_and_stays_up() {
    let _machine = common::shared();
    let token = temp_path("agent-token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let (agent, at) = agent(&["--token", token.to_str().unwrap()]);
    assert!(http(&at, "GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 401"));
    assert!(http(&at, "GET /metrics HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n").contains(" 200 "));
    assert!(http(&at, "GET /etc/passwd HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n").contains(" 404 "));
    assert!(http(&at, "POST /metrics HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n").contains(" 405 "));
    // A huge header and a client that never finishes its request do not take it down.
    let huge = format!("GET /metrics HTTP/1.0\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000));
    let _ = http(&at, &huge);
    let slow = TcpStream::connect(&at).unwrap();
    (&slow).write_all(b"GET /met").unwrap();
    // Twelve at once: with the slow one, within the 16 connections one peer may hold (a
    // 17th would take its idlest's slot, which may be one whose request is not yet read).
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let at = at.clone();
            std::thread::spawn(move || http(&at, "GET /metrics HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n"))
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap().contains("node_cpu_seconds_total"));
    }
    drop(slow);
    // loadgen with a wrong token: one clear line, exit 2.
    let mut cmd = loadgen();
    cmd.args(["serve", "--model", "mio", "--addr", "127.0.0.1:0"]);
    let server = testkit::ServerProcess::spawn(&mut cmd);
    let wrong = temp_path("wrong-token");
    std::fs::write(&wrong, "nope").unwrap();
    let out = run(&[
        "--addr",
        &server.addr.to_string(),
        "--agent",
        &at,
        "--agent-token",
        wrong.to_str().unwrap(),
        "-d",
        "200ms",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agent-token"));
    drop(agent);
}

#[test]
fn a_non_loopback_listen_needs_allow_remote() {
    let _machine = common::shared();
    let out = run(&["agent", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen") && err.contains("--allow-remote"), "{err}");
}

#[test]
fn agent_with_a_spawned_server_is_refused() {
    let _machine = common::shared();
    let out = run(&["--target", "mio", "--agent", "127.0.0.1:9464", "-d", "200ms"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--agent") && err.contains("--addr"), "{err}");
}

#[test]
fn an_empty_token_file_is_refused() {
    let _machine = common::shared();
    let empty = temp_path("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let out = run(&["agent", "--token", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}

/// Two network namespaces standing in for hosts: the server's runs `loadgen serve` and the
/// agent on its veth address; the client's loads it and reads the agent across the link.
#[test]
fn a_server_on_another_host_is_costed_through_its_agent() {
    let _machine = common::shared();
    let hosts = match testkit::netns::Hosts::create(1) {
        Ok(h) => h,
        Err(why) => {
            testkit::skip("a_server_on_another_host_is_costed_through_its_agent", &why);
            return;
        }
    };
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_loadgen"));
    let (ns, server_ip) = hosts.clients[0].clone();
    let mut serve = testkit::netns::Hosts::command(&hosts.server, exe);
    serve.args(["serve", "--model", "mio", "--addr", &format!("{server_ip}:0")]);
    let server = testkit::ServerProcess::spawn(&mut serve);
    let mut cmd = testkit::netns::Hosts::command(&hosts.server, exe);
    cmd.args(["agent", "--allow-remote", "--listen", &format!("{server_ip}:0")]);
    let (agent, at) = start_agent(cmd);
    let csv = temp_path("netns-agent.csv");
    let json = temp_path("netns-agent.json");
    let out = testkit::netns::Hosts::command(&ns, exe)
        .args(load_args(&server.addr.to_string(), &at))
        .args(["-q", "--csv", csv.to_str().unwrap()])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    drop(agent);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, rows) = read_csv(&csv);
    let row = &rows[0];
    assert!(
        num(row, "server_cpu_s") > 0.0 && num(row, "server_cpu_us_per_msg") > 0.0,
        "{row:?}"
    );
    assert!(
        num(row, "server_threads") >= 1.0 && num(row, "server_rss_kib") > 0.0,
        "{row:?}"
    );
    let report = read_json(&json);
    let host = &report["server"]["host_cpu"];
    assert!(
        host["user_s"].as_f64().unwrap() + host["system_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        host["softirq_s"].as_f64().is_some() && host["irq_s"].as_f64().is_some(),
        "{report}"
    );
    // The server's listener is not in the client's namespace: its backlog comes from the agent.
    assert!(
        report["listen"]["max"].as_u64().unwrap_or(0) >= 1,
        "{}",
        report["listen"]
    );
}

#[test]
fn a_flood_of_requests_is_answered_429_and_the_agent_recovers() {
    let _machine = common::shared();
    let (agent, at) = agent(&[]);
    // A cheap path (404), so the flood outruns the refill even on a slow machine.
    let answers: Vec<String> = (0..80).map(|_| http(&at, "GET /x HTTP/1.0\r\n\r\n")).collect();
    let limited = answers.iter().filter(|a| a.starts_with("HTTP/1.0 429")).count();
    assert!(limited > 0 && limited < 80, "{limited} of 80 limited");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(http(&at, "GET /metrics HTTP/1.0\r\n\r\n").contains(" 200 "));
    drop(agent);
}

#[test]
fn an_agent_that_dies_mid_window_leaves_the_cost_empty_not_zero() {
    let _machine = common::shared();
    let mut cmd = loadgen();
    cmd.args(["serve", "--model", "mio", "--addr", "127.0.0.1:0"]);
    let server = testkit::ServerProcess::spawn(&mut cmd);
    let (agent, at) = agent(&[]);
    let csv = temp_path("agent-dies.csv");
    let _ = std::fs::remove_file(&csv);
    let mut run = loadgen();
    run.args([
        "--addr",
        &server.addr.to_string(),
        "--agent",
        &at,
        "-c",
        "4",
        "--warmup",
        "200ms",
    ])
    .args(["-d", "2s", "-q", "--csv", csv.to_str().unwrap()])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let child = run.spawn().unwrap();
    // The window runs from 0.2 s to 2.2 s: the agent goes in the middle of it.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    drop(agent);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let row = only_row(&csv);
    assert_eq!(row["server_cpu_s"], "", "unknown, not zero: {row:?}");
    assert_eq!(row["server_cpu_us_per_msg"], "");
    assert!(num(&row, "msgs") > 0.0);
}

#[test]
fn an_agent_that_never_answers_costs_the_run_a_bounded_wait() {
    let _machine = common::shared();
    // Accepts and then says nothing: every read gives up after its timeout, the run goes
    // on with the server's cost empty and says why.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = silent.local_addr().unwrap().to_string();
    let holder = std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(3).flatten().collect();
        std::thread::sleep(std::time::Duration::from_secs(8));
        drop(held);
    });
    let mut cmd = loadgen();
    cmd.args(["serve", "--model", "mio", "--addr", "127.0.0.1:0"]);
    let server = testkit::ServerProcess::spawn(&mut cmd);
    let csv = temp_path("agent-silent.csv");
    let _ = std::fs::remove_file(&csv);
    let t = std::time::Instant::now();
    let args = load_args(&server.addr.to_string(), &at);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["-q", "--csv", csv.to_str().unwrap()]);
    let out = run(&args);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be read"), "{err}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("server     cost unknown: nothing could be read (from the agent at"),
        "{summary}"
    );
    assert_eq!(only_row(&csv)["server_cpu_s"], "");
    // A 1.2 s run plus at most three 2 s timeouts (before, at the start and at the end).
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    drop(holder);
}

#[test]
fn an_endless_header_is_cut_off_and_costs_the_agent_no_memory() {
    let _machine = common::shared();
    let (agent, at) = agent(&[]);
    let before = testkit::proc::rss_kib(agent.pid());
    let mut s = TcpStream::connect(&at).unwrap();
    s.set_write_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nX-Endless: ").unwrap();
    // 64 MiB of one header line, unless the agent refuses it first (then a write fails:
    // the connection was closed under it).
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    let refused = loop {
        if sent >= 64 << 20 {
            break None;
        }
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) => break Some(e),
        }
    };
    let refused = refused.unwrap_or_else(|| panic!("the agent took {sent} bytes of one header line"));
    assert!(
        matches!(
            refused.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "the agent closed the connection (after a 431): {refused}"
    );
    let after = testkit::proc::rss_kib(agent.pid());
    assert!(
        after < before + 8 * 1024,
        "the agent grew from {before} to {after} KiB over {sent} bytes of header"
    );
    // It still answers the next request.
    assert!(http(&at, "GET /metrics HTTP/1.0\r\n\r\n").contains(" 200 "));
}

/// The exposition text a scrape of `addr` returns, parsed (panics unless 200).
fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let response = http(addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// A sample's value in `s` (the first with that name whose labels include `label`).
fn value(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let sample = s
        .samples
        .iter()
        .find(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no {name} {label:?}"));
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn live_metrics_rise_during_a_run_and_end_at_the_reports_totals() {
    use std::io::BufRead;
    let _machine = common::shared();
    let json = temp_path("live.json");
    let mut child = loadgen()
        .args([
            "--target",
            "mio",
            "-c",
            "4",
            "-d",
            "4s",
            "--warmup",
            "0s",
            "--interval",
            "500ms",
        ])
        .args(["--metrics-listen", "127.0.0.1:0", "--metrics-linger", "4s", "--quiet"])
        .args(["--json", json.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("metrics    http://") {
                let _ = tx.send(url.trim_end_matches("/metrics").to_string());
            }
        }
    });
    let at = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the run prints its metrics address");
    // Twice during the run: the counters rise, the buckets are cumulative.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let first = scrape(&at);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second = scrape(&at);
    let trips = |s: &prometheus_parse::Scrape| value(s, "loadgen_round_trips_total", None);
    assert!(
        trips(&first) > 0.0 && trips(&second) > trips(&first),
        "{} then {}",
        trips(&first),
        trips(&second)
    );
    assert_eq!(value(&second, "loadgen_running", None), 1.0);
    assert_eq!(value(&second, "loadgen_open_connections", None), 4.0);
    let hist = second
        .samples
        .iter()
        .find_map(|x| match (&x.metric[..], &x.value) {
            ("loadgen_latency_seconds", prometheus_parse::Value::Histogram(b)) => Some(b.clone()),
            _ => None,
        })
        .expect("a latency histogram");
    assert!(
        hist.windows(2)
            .all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count),
        "{hist:?}"
    );
    // After the run (its JSON written) the linger serves the final state: the report's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !json.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let last = scrape(&at);
    let v = read_json(&json);
    assert_eq!(value(&last, "loadgen_running", None), 0.0);
    assert_eq!(
        trips(&last),
        v["counters"]["msgs"].as_f64().unwrap(),
        "the final scrape is the report's count"
    );
    assert_eq!(
        value(&last, "loadgen_errors_total", Some(("kind", "timeout"))),
        v["counters"]["timeouts"].as_f64().unwrap()
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // Not on the network unless asked; not served by --procs.
    let out = run(&["--target", "mio", "--metrics-listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--metrics-allow-remote"));
}

#[test]
fn a_slow_client_flood_does_not_keep_out_a_scrape_with_the_token() {
    let _machine = common::shared();
    let token = temp_path("flood-token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let (_agent, at) = agent(&["--token", token.to_str().unwrap()]);
    // 200 clients from loopback that send half a request line and hold their connections.
    let slow: Vec<TcpStream> = (0..200)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&at).ok()?;
            s.write_all(b"GET /metr").ok()?;
            Some(s)
        })
        .collect();
    assert!(slow.len() >= 100, "the flood connected ({})", slow.len());
    std::thread::sleep(std::time::Duration::from_millis(300));
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let response = http(&at, "GET /metrics HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n");
        assert!(response.contains(" 200 "), "{response}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "answered in {:?}",
            t.elapsed()
        );
    }
    drop(slow);
}
