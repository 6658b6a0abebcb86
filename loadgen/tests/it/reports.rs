//! `sweep`, `compare`, `plot` and `merge` end to end, on real runs and on constructed
//! reports.

use std::path::Path;

use crate::common::{self, *};

const HEADER: &str = "schema,timestamp,label,target,addr,transport,mode,conns,msg_size,depth,rate,duration_s,throughput_msgs_s,lat_p50_us,lat_p99_us,lat_p999_us,status";

/// A report with one row per (target, conns, throughput, p99).
fn report(name: &str, rows: &[(&str, u32, f64, f64)]) -> std::path::PathBuf {
    let path = temp_path(name);
    let mut text = String::from(HEADER);
    text.push('\n');
    for (target, conns, tput, p99) in rows {
        text.push_str(&format!(
            "1,2026-01-01T00:00:00Z,,{target},x,tcp,closed,{conns},64,1,,10,{tput},{},{p99},{},ok\n",
            p99 / 2.0,
            p99 * 2.0
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn compare_marks_improvements_regressions_and_missing_rows() {
    let _machine = common::shared();
    let base = report(
        "base.csv",
        &[
            ("mio", 10, 1000.0, 100.0),
            ("mio", 100, 5000.0, 300.0),
            ("tokio", 10, 900.0, 110.0),
        ],
    );
    let new = report(
        "new.csv",
        &[
            ("mio", 10, 1200.0, 90.0),
            ("mio", 100, 4000.0, 400.0),
            ("threadpool", 10, 500.0, 50.0),
        ],
    );
    let out = run(&["compare", s(&base), s(&new)]);
    assert_eq!(out.status.code(), Some(0), "no threshold, no gate");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1.200 [0.000, inf]"), "{text}");
    assert!(text.contains("0.800 [0.000, inf]"), "{text}");
    assert!(
        text.contains("inconclusive: a side has 1 run"),
        "one run a side proves nothing: {text}"
    );
    assert!(text.contains("only in base: target=tokio"), "{text}");
    assert!(text.contains("only in new: target=threadpool"), "{text}");
    // As a CI gate: a 20% throughput loss beyond 5% fails even with one run a side.
    let gate = run(&["compare", s(&base), s(&new), "--threshold", "5%"]);
    assert_eq!(gate.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gate.stdout).contains("FAILS THE GATE"));
    let err = String::from_utf8_lossy(&gate.stderr);
    assert!(
        err.contains("GATE: target=mio transport=tcp mode=closed conns=100") && err.contains("repeat at least 3"),
        "{err}"
    );
    let lenient = run(&[
        "compare",
        s(&base),
        s(&new),
        "--threshold",
        "50%",
        "--metric",
        "throughput",
    ]);
    assert_eq!(lenient.status.code(), Some(0));
}

#[test]
fn compare_of_reports_that_share_no_configuration_is_refused_not_passed() {
    let _machine = common::shared();
    let base = report("disjoint-base.csv", &[("mio", 10, 1000.0, 100.0)]);
    let new = report("disjoint-new.csv", &[("mio", 20, 500.0, 100.0)]);
    for extra in [&[][..], &["--threshold", "5%"][..]] {
        let out = run(&[&["compare", s(&base), s(&new)][..], extra].concat());
        assert_eq!(out.status.code(), Some(2), "a gate that compared nothing must not pass");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("share no configuration") && err.contains("conns=20"),
            "{err}"
        );
    }
    // A report with its header only has nothing to compare, and says so.
    let header_only = report("header-only.csv", &[]);
    let out = run(&["compare", s(&base), s(&header_only), "--threshold", "5%"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("header-only.csv has a header but no rows"));
    // A configuration the new report lacks is said not to be gated.
    let both = report("both.csv", &[("mio", 10, 1000.0, 100.0), ("mio", 20, 500.0, 100.0)]);
    let out = run(&["compare", s(&both), s(&base), "--threshold", "50%"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 configuration(s) of the base have no row, or no measured run, in the new report: not gated"),
        "{err}"
    );
}

#[test]
fn compare_gate_fails_new_runs_that_ended_worse_however_fast() {
    let _machine = common::shared();
    let base = report(
        "ended-base.csv",
        &[
            ("mio", 10, 1000.0, 100.0),
            ("mio", 10, 1010.0, 100.0),
            ("mio", 10, 990.0, 100.0),
        ],
    );
    // As fast, but one run ended with errors and one failed (its figures 0): the failed
    // run's zero must not be averaged in, nor dropped from the verdict unseen.
    let text = std::fs::read_to_string(&base).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[1] = lines[1].replace(",ok", ",errors");
    lines[3] = "1,2026-01-01T00:00:00Z,,mio,x,tcp,closed,10,64,1,,10,0,,,,failed".to_string();
    let new = temp_path("ended-new.csv");
    std::fs::write(&new, lines.join("\n") + "\n").unwrap();
    let out = run(&[
        "compare",
        s(&base),
        s(&new),
        "--threshold",
        "5%",
        "--metric",
        "throughput",
    ]);
    assert_eq!(out.status.code(), Some(1), "runs that ended worse fail the gate");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("(n=2)") && stdout.contains("ended worse:"),
        "the failed run is left out of the figures: {stdout}"
    );
    assert!(stderr.contains("2 of 3 run(s) not ok (errors 1, failed 1)"), "{stderr}");
    // Both sides failed every run: nothing to pair, and it is said, not dropped.
    let failed = temp_path("all-failed.csv");
    let row = "1,2026-01-01T00:00:00Z,,mio,x,tcp,closed,10,64,1,,10,0,,,,failed";
    std::fs::write(&failed, format!("{}\n{row}\n{row}\n", lines[0])).unwrap();
    let out = run(&["compare", s(&failed), s(&failed), "--threshold", "5%"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not compared: target=mio")
            && String::from_utf8_lossy(&out.stderr).contains("no measured run, in the new report: not gated"),
        "{out:?}"
    );
    let same = run(&[
        "compare",
        s(&base),
        s(&base),
        "--threshold",
        "5%",
        "--metric",
        "throughput",
    ]);
    assert_eq!(same.status.code(), Some(0));
}

#[test]
fn compare_says_when_runs_were_disturbed_by_busy_neighbours() {
    let _machine = common::shared();
    // The machine columns a run writes: 2 CPUs, a 10 s window (20 CPU-seconds); the new
    // runs' neighbours took 6 of them (30%), one base run's 0.5 (2.5%, not disturbed).
    let with_machine = |name: &str, tput: f64, others: &str| {
        let path = temp_path(name);
        let mut text = format!("{HEADER},cpus,others_cpu_s,steal_cpu_s\n");
        for k in 0..3 {
            let t = tput + k as f64 * 10.0;
            text.push_str(&format!(
                "1,2026-01-01T00:00:00Z,,mio,x,tcp,closed,10,64,1,,10,{t},50,100,200,ok,2,{others},0.000\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        path
    };
    let (base, new) = (
        with_machine("quiet.csv", 1000.0, "0.500"),
        with_machine("busy.csv", 600.0, "6.000"),
    );
    let out = run(&["compare", s(&base), s(&new), "--threshold", "5%"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // Still worse, still failing: the figures are what was measured; the reason is said.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("disturbed runs: base 0 of 3, new 3 of 3 ran beside other processes"),
        "{stdout}"
    );
    assert!(stderr.contains("note: some runs were disturbed"), "{stderr}");
    // A quiet pair says nothing of it; CSV output stays a table.
    let quiet = run(&["compare", s(&base), s(&base)]);
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains("disturbed"));
    let csv = run(&["compare", s(&base), s(&new), "--format", "csv"]);
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with("configuration,"));
}

#[test]
fn compare_by_target_gates_with_a_threshold_naming_the_value() {
    let _machine = common::shared();
    let mut rows = Vec::new();
    for t in [1000.0, 1010.0, 990.0] {
        rows.push(("mio", 10, t, 100.0));
        rows.push(("tokio", 10, t / 2.0, 100.0));
    }
    let one = report("by-gate.csv", &rows);
    let args = [
        "compare",
        s(&one),
        "--by",
        "target",
        "--baseline",
        "mio",
        "--metric",
        "throughput",
    ];
    assert_eq!(run(&args).status.code(), Some(0), "no threshold, no gate");
    let out = run(&[&args[..], &["--threshold", "5%"]].concat());
    assert_eq!(out.status.code(), Some(1), "a halving within one report fails the gate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GATE: target=tokio ") && err.contains("worse beyond the threshold"),
        "{err}"
    );
    let lenient = run(&[&args[..], &["--threshold", "60%"]].concat());
    assert_eq!(lenient.status.code(), Some(0));
}

/// `n` repeats of one configuration around `tput`, with a fixed ±2% spread.
fn repeats(name: &str, n: usize, tput: f64) -> std::path::PathBuf {
    let rows: Vec<(&str, u32, f64, f64)> = (0..n)
        .map(|i| ("mio", 10, tput * (1.0 + 0.02 * ((i % 5) as f64 - 2.0) / 2.0), 100.0))
        .collect();
    report(name, &rows)
}

#[test]
fn compare_gives_four_outcomes_and_gates_on_them() {
    let _machine = common::shared();
    let base = repeats("n10-base.csv", 10, 100_000.0);
    let gate = |new: &Path| {
        let out = run(&[
            "compare",
            s(&base),
            s(new),
            "--threshold",
            "10%",
            "--metric",
            "throughput",
            "--format",
            "csv",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.starts_with("configuration,metric,base_mean,base_sd,base_n,new_mean,new_sd,new_n,ratio,ratio_lo,ratio_hi,confidence,verdict"),
            "{text}"
        );
        let verdict = text.lines().nth(1).unwrap().rsplit(',').next().unwrap().to_string();
        (out.status.code(), verdict)
    };
    let (code, verdict) = gate(&repeats("n10-3worse.csv", 10, 97_000.0));
    assert_eq!(
        (code, verdict.split(':').next().unwrap()),
        (Some(0), "same"),
        "{verdict}"
    );
    let (code, verdict) = gate(&repeats("n10-20worse.csv", 10, 80_000.0));
    assert_eq!(
        (code, verdict.split(':').next().unwrap()),
        (Some(1), "worse"),
        "{verdict}"
    );
    let (code, verdict) = gate(&repeats("n10-20better.csv", 10, 120_000.0));
    assert_eq!(
        (code, verdict.split(':').next().unwrap()),
        (Some(0), "better"),
        "{verdict}"
    );
    let (code, _) = gate(&base);
    assert_eq!(code, Some(0), "a report against itself passes");
}

#[test]
fn compare_gate_fails_a_halving_at_two_repeats_and_says_how_many_would_settle_it() {
    let _machine = common::shared();
    // Two repeats, 20% run-to-run spread: a t-test has no power here, the gate must not pass.
    let base = report(
        "two-base.csv",
        &[
            ("mio", 10, 100_000.0, 100.0),
            ("mio", 10, 80_000.0, 100.0),
            ("tokio", 10, 100_000.0, 100.0),
            ("tokio", 10, 120_000.0, 100.0),
        ],
    );
    let halved = report(
        "two-halved.csv",
        &[
            ("mio", 10, 50_000.0, 100.0),
            ("mio", 10, 40_000.0, 100.0),
            ("tokio", 10, 60_000.0, 100.0),
            ("tokio", 10, 50_000.0, 100.0),
        ],
    );
    let out = run(&["compare", s(&base), s(&halved), "--threshold", "5%"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("target=mio") && err.contains("target=tokio"), "{err}");
    assert!(err.contains("repeats a side would settle it"), "{err}");
    let out = run(&["compare", s(&base), s(&base), "--threshold", "5%"]);
    assert_eq!(out.status.code(), Some(0));
}

/// A report of three repeats per (target, conns), made on `host`.
fn report_on(name: &str, host: &str, cpus: u32, rows: &[(&str, u32, f64)]) -> std::path::PathBuf {
    let path = temp_path(name);
    let mut text = String::from(
        "schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s,host,kernel,cpus,version\n",
    );
    for (target, conns, tput) in rows {
        for jitter in [-1.0, 0.0, 1.0] {
            text.push_str(&format!(
                "1,{target},tcp,closed,{conns},64,1,,{},{host},6.18,{cpus},0.1.0\n",
                tput + jitter
            ));
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn compare_by_target_uses_the_same_outcomes() {
    let _machine = common::shared();
    // 12 configurations: tokio 10% faster in one, 0.3% in the others.
    let mut rows = Vec::new();
    for conns in 1..=12u32 {
        rows.push(("mio", conns, 1000.0));
        rows.push(("tokio", conns, if conns == 1 { 1100.0 } else { 1003.0 }));
    }
    let file = report_on("by12.csv", "vm", 2, &rows);
    let out = run(&[
        "compare",
        s(&file),
        "--by",
        "target",
        "--baseline",
        "mio",
        "--metric",
        "throughput",
        "--format",
        "csv",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap().starts_with("configuration,target,metric"),
        "{text}"
    );
    assert_eq!(text.lines().filter(|l| l.contains(",better: ")).count(), 1, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(",same: ")).count(), 11, "{text}");
    // 12 intervals, one family: each at 1 - 5%/12.
    assert!(text.lines().nth(1).unwrap().contains(",0.9958,"), "{text}");
}

#[test]
fn compare_names_different_machines_and_does_not_gate_across_them() {
    let _machine = common::shared();
    let base = report_on("env-base.csv", "vm", 2, &[("mio", 10, 1000.0)]);
    let new = report_on("env-new.csv", "otherbox", 64, &[("mio", 10, 500.0)]);
    let out = run(&[
        "compare",
        s(&base),
        s(&new),
        "--threshold",
        "5%",
        "--metric",
        "throughput",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("environments differ: base: host vm, cpus 2; new: host otherbox, cpus 64"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not gating"));
    assert_eq!(out.status.code(), Some(0));
    let gated = run(&[
        "compare",
        s(&base),
        s(&new),
        "--threshold",
        "5%",
        "--metric",
        "throughput",
        "--across-machines",
    ]);
    assert_eq!(gated.status.code(), Some(1));
}

#[test]
fn compare_by_target_against_a_baseline() {
    let _machine = common::shared();
    let file = report(
        "by.csv",
        &[
            ("mio", 10, 1000.0, 100.0),
            ("mio", 10, 1000.0, 100.0),
            ("tokio", 10, 920.0, 110.0),
            ("tokio", 10, 920.0, 110.0),
        ],
    );
    let out = run(&[
        "compare",
        s(&file),
        "--by",
        "target",
        "--baseline",
        "mio",
        "--metric",
        "throughput",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        // Equal repeats are not certainty: the interval is as wide as their rounding.
        text.contains("0.920 [0.918, 0.922]") && text.contains("worse: beyond ±5"),
        "{text}"
    );
}

#[test]
fn bad_reports_exit_2_naming_the_file() {
    let _machine = common::shared();
    let not_report = temp_path("not-a-report.csv");
    std::fs::write(&not_report, "hello,world\n1,2\n").unwrap();
    let missing_col = temp_path("missing-col.csv");
    std::fs::write(&missing_col, "schema,target\n1,mio\n").unwrap();
    let good = report("good.csv", &[("mio", 1, 1.0, 1.0)]);
    for (file, what) in [
        (Path::new("/nonexistent/base.csv").to_path_buf(), "No such file"),
        (not_report.clone(), "not an echo-bench report"),
        (missing_col.clone(), "lacks the column"),
    ] {
        let out = run(&["compare", s(&file), s(&good)]);
        assert_eq!(out.status.code(), Some(2), "{file:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(s(&file)) && err.contains(what), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let out = run(&["plot", s(&not_report), "--out", s(&temp_path("x.svg"))]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plot_writes_valid_svg_charts() {
    let _machine = common::shared();
    let file = report(
        "plot.csv",
        &[
            ("mio", 1, 15000.0, 80.0),
            ("mio", 100, 150000.0, 900.0),
            ("tokio", 1, 14000.0, 85.0),
            ("tokio", 100, 140000.0, 1000.0),
        ],
    );
    let svg = temp_path("plot.svg");
    let out = run(&["plot", s(&file), "--out", s(&svg)]);
    assert_eq!(out.status.code(), Some(0));
    for path in [svg.clone(), svg.with_file_name("plot-p99.svg")] {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{path:?}"
        );
        assert!(text.contains("mio") && text.contains("tokio") && text.contains("connections"));
    }
    let png = temp_path("plot.png");
    let out = run(&["plot", s(&file), "--out", s(&png)]);
    assert_eq!(out.status.code(), Some(2), "SVG text is never written into a .png");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out") && !png.exists());
    let out = run(&["plot", s(&file), "--out", "-"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("<svg"));
}

#[test]
fn man_and_completions_end_quietly_when_the_reader_stops() {
    let _machine = common::shared();
    for args in [&["man"][..], &["completions", "bash"][..]] {
        let mut child = loadgen()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -c 1`: one byte, then the pipe is closed.
        let mut stdout = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        std::io::Read::read_exact(&mut stdout, &mut one).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn sweep_of_two_models_by_two_connection_counts_gives_four_rows() {
    let _machine = common::shared();
    let csv = temp_path("sweep.csv");
    let out = run(&[
        "sweep",
        "--targets",
        "mio,tokio",
        "--conns",
        "1,8",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--csv",
        s(&csv),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let (_, rows) = read_csv(&csv);
    assert_eq!(rows.len(), 4);
    let mut combos: Vec<(String, String)> = rows.iter().map(|r| (r["target"].clone(), r["conns"].clone())).collect();
    combos.sort();
    assert_eq!(
        combos,
        [("mio", "1"), ("mio", "8"), ("tokio", "1"), ("tokio", "8")].map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(rows.iter().all(|r| r["status"] == "ok" && num(r, "msgs") > 0.0));
    // The sweep's own report compares and plots.
    let by = run(&["compare", s(&csv), "--by", "target", "--baseline", "mio"]);
    let text = String::from_utf8_lossy(&by.stdout);
    assert!(text.contains("tokio") && text.contains("ratio [interval]"), "{text}");
}

#[test]
fn a_failed_run_is_recorded_and_the_sweep_goes_on() {
    let _machine = common::shared();
    let csv = temp_path("sweep-fail.csv");
    // With a descriptor limit of 1024, the 2000-connection run cannot run; the others can.
    let mut cmd = loadgen();
    cmd.args([
        "sweep",
        "--targets",
        "mio",
        "--conns",
        "2000,2",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--csv",
        s(&csv),
    ]);
    with_nofile(&mut cmd, 1024, 1024);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, rows) = read_csv(&csv);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["conns"].as_str(), rows[0]["status"].as_str()),
        ("2000", "failed")
    );
    assert_eq!((rows[1]["conns"].as_str(), rows[1]["status"].as_str()), ("2", "ok"));
    // An invalid plan runs nothing.
    let bad = temp_path("sweep-bad.csv");
    let out = run(&["sweep", "--targets", "mio", "--conns", "0", "--csv", s(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!bad.exists());
}

#[test]
fn merge_combines_interval_logs_exactly() {
    let _machine = common::shared();
    let (a, b) = (temp_path("a.hlog"), temp_path("b.hlog"));
    let (ja, jb) = (temp_path("a.json"), temp_path("b.json"));
    for (log, json) in [(&a, &ja), (&b, &jb)] {
        let out = run(&[
            "--target",
            "mio",
            "--conns",
            "4",
            "--duration",
            "1s",
            "--warmup",
            "100ms",
            "--hdr-log",
            s(log),
            "--json",
            s(json),
            "--quiet",
        ]);
        assert_eq!(out.status.code(), Some(0));
    }
    let merged_json = temp_path("merged.json");
    let out = run(&["merge", s(&a), s(&b), "--json", s(&merged_json)]);
    assert_eq!(out.status.code(), Some(0));
    let msgs = |p: &Path| read_json(p)["counters"]["msgs"].as_u64().unwrap();
    assert_eq!(msgs(&merged_json), msgs(&ja) + msgs(&jb));
    // --latency prints the merged spectrum, its last row every message of both logs.
    let out = run(&["merge", s(&a), s(&b), "--latency"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rfind(|l| l.trim_start().starts_with(char::is_numeric))
        .unwrap();
    let total: u64 = last.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(total, msgs(&ja) + msgs(&jb), "{last}");
    // The same log twice, or a copy of it, would count its messages twice: refused.
    let copy = temp_path("a-copy.hlog");
    std::fs::copy(&a, &copy).unwrap();
    for twice in [[s(&a), s(&a)], [s(&a), s(&copy)]] {
        let out = run(&["merge", twice[0], twice[1]]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("are the same log"));
    }
    let spectrum = temp_path("spectrum.svg");
    let out = run(&["plot", s(&a), "--out", s(&spectrum)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&spectrum).unwrap().contains("percentile"));
}

#[test]
fn ctrl_c_stops_a_sweep_after_recording_the_run_in_progress() {
    let _machine = common::shared();
    let csv = temp_path("sweep-int.csv");
    let mut child = loadgen()
        .args([
            "sweep",
            "--targets",
            "mio",
            "--conns",
            "2,3,4",
            "--duration",
            "20s",
            "--warmup",
            "0s",
            "--csv",
            s(&csv),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    signal(child.id(), Signal::INT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let (_, rows) = read_csv(&csv);
    assert_eq!(rows.len(), 1, "the sweep stops after the interrupted run");
    assert_eq!(rows[0]["status"], "partial");
}

#[test]
fn appends_from_concurrent_processes_upgrade_an_old_report_without_losing_rows() {
    let _machine = common::shared();
    let log = temp_path("race.hlog");
    let out = run(&[
        "--target",
        "mio",
        "--conns",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--hdr-log",
        s(&log),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0));
    // An older report: the contract's first columns only, one row.
    let csv = report("race.csv", &[("mio", 10, 1000.0, 100.0)]);
    let children: Vec<std::process::Child> = (0..8)
        .map(|i| {
            loadgen()
                .args(["merge", s(&log), "--csv", s(&csv), "--label", &format!("p{i}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    let (header, rows) = read_csv(&csv); // strict: every row as wide as the header
    assert!(header.len() > HEADER.split(',').count(), "header upgraded");
    assert!(header.iter().any(|h| h == "server_cpu_us_per_msg"), "{header:?}");
    assert_eq!(rows.len(), 9, "the old row and one per process");
    assert_eq!(rows[0]["target"], "mio");
    let mut labels: Vec<&str> = rows[1..].iter().map(|r| r["label"].as_str()).collect();
    labels.sort_unstable();
    assert_eq!(labels, ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]);
}

#[test]
fn sweep_repeat_auto_runs_until_its_interval_or_its_maximum_and_says_which() {
    let _machine = common::shared();
    let csv = temp_path("auto.csv");
    let out = run(&[
        "sweep",
        "--targets",
        "mio",
        "--conns",
        "4",
        "--repeat",
        "auto",
        "--max-repeat",
        "4",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--csv",
        s(&csv),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let (_, rows) = read_csv(&csv);
    assert!((3..=4).contains(&rows.len()), "{} rows", rows.len());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = format!("mio tcp conns=4 msg=64 depth=1: n={}, throughput ", rows.len());
    assert!(err.contains(&line) && err.contains("% (95% CI)"), "{err}");
    // The warning names the shortfall exactly when the final interval is wider than the
    // target: fewer than 4 runs means the target was met (no warning); at 4 runs either.
    let half_width: f64 = err
        .lines()
        .find(|l| l.starts_with(&line))
        .and_then(|l| l.split("± ").nth(1))
        .and_then(|rest| rest.split('%').next())
        .and_then(|pct| pct.trim().parse().ok())
        .unwrap_or_else(|| panic!("no final interval in: {err}"));
    let warned = err.contains("did not reach ±2.5%");
    // (A width printed as 2.5 may sit either side of the target: rounding.)
    if (half_width - 2.5).abs() > 0.05 {
        assert_eq!(warned, half_width > 2.5, "±{half_width}%: {err}");
    }
    assert!(
        rows.len() == 4 || !warned,
        "stopped early only on reaching the target: {err}"
    );
}

#[test]
fn run_repeat_writes_a_row_per_run_and_refuses_one_run_outputs() {
    let _machine = common::shared();
    let csv = temp_path("run-repeat.csv");
    let out = run(&[
        "--target",
        "mio",
        "--conns",
        "2",
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--repeat",
        "2",
        "--csv",
        s(&csv),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(read_csv(&csv).1.len(), 2);
    assert!(String::from_utf8_lossy(&out.stdout).contains("repeats: n=2, throughput"));
    let out = run(&[
        "--target",
        "mio",
        "--duration",
        "200ms",
        "--repeat",
        "auto",
        "--json",
        s(&temp_path("r.json")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json '"));
    let out = run(&["--target", "mio", "--repeat", "auto", "--max-repeat", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-repeat"));
}

#[test]
fn sweep_varies_server_workers_as_a_dimension() {
    let _machine = common::shared();
    let csv = temp_path("sweep-workers.csv");
    let out = run(&[
        "sweep",
        "--targets",
        "tokio",
        "--server-threads",
        "1,2",
        "--conns",
        "10",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--csv",
        s(&csv),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let (_, rows) = read_csv(&csv);
    let workers: Vec<&str> = rows.iter().map(|r| r["server_workers"].as_str()).collect();
    assert_eq!(workers, ["1", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workers=1") && err.contains("workers=2") && !err.contains("None"),
        "{err}"
    );
}

#[test]
fn sweep_quiet_prints_only_where_the_rows_went() {
    let _machine = common::shared();
    let csv = temp_path("sweep-quiet.csv");
    let out = run(&[
        "sweep",
        "--targets",
        "mio",
        "--conns",
        "2",
        "-d",
        "300ms",
        "--warmup",
        "100ms",
        "-q",
        "--csv",
        s(&csv),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("[1/1]") && err.contains("1 run written to"), "{err}");
    assert_eq!(read_csv(&csv).1.len(), 1);
}

#[test]
fn a_gate_on_a_metric_one_side_has_no_valid_value_of_fails_naming_it() {
    let _machine = common::shared();
    let base = temp_path("valueless-base.csv");
    for conns in ["2", "2", "3", "3"] {
        let csv = base.to_str().unwrap();
        let out = run(&[
            "--target", "mio", "-c", conns, "-d", "500ms", "--warmup", "100ms", "--quiet", "--csv", csv,
        ]);
        assert_eq!(out.status.code(), Some(0));
    }
    // The same runs, the p99 cells of one configuration not numbers: left out with a
    // warning, and that configuration's gate fails rather than pass on nothing.
    let text = std::fs::read_to_string(&base).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let p99 = header.iter().position(|h| *h == "lat_p99_us").unwrap();
    let conns = header.iter().position(|h| *h == "conns").unwrap();
    let mut new_text = header.join(",") + "\n";
    for line in lines {
        let mut cells: Vec<&str> = line.split(',').collect();
        if cells[conns] == "3" {
            cells[p99] = "NaN";
        }
        new_text += &(cells.join(",") + "\n");
    }
    let new = temp_path("valueless-new.csv");
    std::fs::write(&new, new_text).unwrap();
    let out = run(&[
        "compare",
        base.to_str().unwrap(),
        new.to_str().unwrap(),
        "--metric",
        "p99",
        "--threshold",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1), "the gate fails");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lat_p99_us") && err.contains("NaN"),
        "the cells are named: {err}"
    );
    assert!(
        err.contains("conns=3") && err.contains("p99: the new side has no valid value"),
        "{err}"
    );
}
