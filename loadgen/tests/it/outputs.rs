//! Outputs under faults: `-` and /dev/stdout as streams, special files written and never
//! read, a full disk that loses nothing that can still be written, paths refused up front.
//! Every test works in its own directory and removes it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, *};

/// A directory of this test's own, removed (with whatever is mounted on it) on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("echo-bench-outputs-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory's entries, for "nothing was left behind".
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tmpfs of `kib` KiB mounted on `dir` (root only); unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, opts: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        testkit::run_tool("mount", &["-t", "tmpfs", "-o", opts, "tmpfs", dir.to_str().unwrap()])?;
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = testkit::run_tool("umount", &[self.0.to_str().unwrap()]);
    }
}

const QUICK: [&str; 8] = [
    "--target",
    "mio",
    "--conns",
    "2",
    "--duration",
    "1s",
    "--warmup",
    "100ms",
];

/// Runs loadgen in `dir` with `args`; (exit code, stdout, stderr, seconds taken).
fn run_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String, f64) {
    let t = Instant::now();
    let out = loadgen().current_dir(dir).args(args).output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("--- loadgen {}\n{o}{e}", args.join(" "));
    (out.status.code(), o, e, t.elapsed().as_secs_f64())
}

#[test]
fn csv_to_standard_output_is_a_header_and_a_row_and_creates_no_file() {
    let _machine = common::shared();
    let dir = Scratch::new("stdout");
    for target in ["-", "/dev/stdout"] {
        let (code, out, err, secs) = run_in(&dir.0, &[&QUICK[..], &["--quiet", "--csv", target]].concat());
        assert_eq!(code, Some(0), "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{target}: header and one row only: {out}");
        assert!(lines[0].starts_with("schema,timestamp,") && lines[1].starts_with("1,"));
        assert!(err.contains("throughput"), "the summary goes to stderr: {err}");
        assert!(secs < 15.0, "{secs} s");
    }
    assert_eq!(dir.entries(), Vec::<String>::new(), "no file named - or anything else");
}

#[test]
fn a_full_device_fails_the_output_not_the_run() {
    let _machine = common::shared();
    let dir = Scratch::new("full");
    let (code, out, _, secs) = run_in(
        &dir.0,
        &[&QUICK[..], &["--quiet", "--csv", "/dev/full", "--json", "/dev/full"]].concat(),
    );
    assert_eq!(code, Some(1));
    assert!(
        secs < 1.1 + 5.0 + 5.0,
        "ends within the run's time plus 5 s (and start-up): {secs} s"
    );
    assert!(
        out.contains("NOT WRITTEN: --csv /dev/full") && out.contains("No space left"),
        "{out}"
    );
    assert!(out.contains("NOT WRITTEN: --json /dev/full"), "{out}");
    assert!(
        out.contains("throughput") && out.contains("status     ok"),
        "the summary: {out}"
    );
}

#[test]
fn a_fifo_with_a_reader_gets_the_row() {
    let _machine = common::shared();
    let dir = Scratch::new("fifo");
    let fifo = dir.path("rows.fifo");
    testkit::run_tool("mkfifo", &[fifo.to_str().unwrap()]).unwrap();
    let reader = Command::new("cat").arg(&fifo).stdout(Stdio::piped()).spawn().unwrap();
    let (code, _, err, _) = run_in(
        &dir.0,
        &[&QUICK[..], &["--quiet", "--csv", fifo.to_str().unwrap()]].concat(),
    );
    assert_eq!(code, Some(0), "{err}");
    let got = reader.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&got.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.starts_with("schema,"));
}

#[test]
fn a_fifo_nobody_reads_fails_the_output_in_bounded_time_not_the_run() {
    let _machine = common::shared();
    // Opening a FIFO for writing blocks until a reader comes: the run used to hang there
    // for good after measuring, deaf to SIGTERM.
    let dir = Scratch::new("fifo-unread");
    let fifo = dir.path("rows.fifo");
    testkit::run_tool("mkfifo", &[fifo.to_str().unwrap()]).unwrap();
    let (code, out, _, secs) = run_in(
        &dir.0,
        &[&QUICK[..], &["--quiet", "--csv", fifo.to_str().unwrap()]].concat(),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(secs < 1.1 + 5.0 + 10.0, "waits 5 s for a reader, then ends: {secs} s");
    assert!(
        out.contains("NOT WRITTEN: --csv") && out.contains("nothing reads the FIFO") && out.contains("status     ok"),
        "{out}"
    );
}

#[test]
fn a_reader_that_closes_its_pipe_early_ends_the_run_cleanly() {
    let _machine = common::shared();
    let dir = Scratch::new("pipe");
    let args = [&QUICK[..], &["--quiet", "--csv", "-", "--hdr-log", "-"]].concat();
    let t = Instant::now();
    let mut child = loadgen()
        .current_dir(&dir.0)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -c 10`: read ten bytes, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut ten = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut ten).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write interval log standard output"), "{err}");
    assert!(
        err.contains("throughput") && err.contains("NOT WRITTEN"),
        "the summary, naming the output: {err}"
    );
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn paths_that_cannot_take_an_output_are_refused_before_the_run() {
    let _machine = common::shared();
    let dir = Scratch::new("refuse");
    let (code, _, err, secs) = run_in(&dir.0, &[&QUICK[..], &["--json", dir.0.to_str().unwrap()]].concat());
    assert_eq!(code, Some(2));
    assert!(err.contains("--json") && err.contains("is a directory"), "{err}");
    assert!(secs < 1.0, "refused before the run: {secs} s");
    let (code, _, err, _) = run_in(&dir.0, &[&QUICK[..], &["--csv", "no/such/dir/x.csv"]].concat());
    assert_eq!(code, Some(2));
    assert!(err.contains("--csv") && err.contains("does not exist"), "{err}");
    // A read-only directory (a read-only mount: root writes through permission bits).
    let ro = dir.path("ro");
    match Tmpfs::mount(&ro, "ro,size=64k") {
        Ok(_mount) => {
            let target = ro.join("x.csv");
            let (code, _, err, _) = run_in(&dir.0, &[&QUICK[..], &["--csv", target.to_str().unwrap()]].concat());
            assert_eq!(code, Some(2));
            assert!(err.contains("--csv") && err.contains("Read-only"), "{err}");
        }
        Err(why) => testkit::skip(
            "paths_that_cannot_take_an_output_are_refused_before_the_run (read-only mount)",
            &why,
        ),
    }
    assert_eq!(dir.entries(), vec!["ro".to_string()]);
}

#[test]
fn a_full_disk_mid_run_keeps_the_summary_and_the_other_outputs() {
    let _machine = common::shared();
    let dir = Scratch::new("tmpfs");
    let small = dir.path("small");
    let _mount = match Tmpfs::mount(&small, "size=64k") {
        Ok(m) => m,
        Err(why) => return testkit::skip("a_full_disk_mid_run_keeps_the_summary_and_the_other_outputs", &why),
    };
    // Leave about 3 KiB: the log's headers fit, its intervals (100 ms each) do not.
    std::fs::write(small.join("filler"), vec![0u8; 61 * 1024]).unwrap();
    let (hlog, json, csv) = (small.join("x.hlog"), small.join("x.json"), dir.path("x.csv"));
    let (code, out, err, _) = run_in(
        &dir.0,
        &[
            &QUICK[..],
            &[
                "--quiet",
                "--interval",
                "100ms",
                "--hdr-log",
                hlog.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
                "--csv",
                csv.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(code, Some(1));
    assert!(
        err.matches("cannot write interval log").count() == 1,
        "one warning: {err}"
    );
    assert!(
        out.contains("throughput") && out.contains("NOT WRITTEN: cannot write interval log"),
        "{out}"
    );
    assert_eq!(read_csv(&csv).1.len(), 1, "the CSV row elsewhere is written");
    let mut left: Vec<String> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // The JSON may or may not have fit in what the log left; no partial file either way.
    if let Ok(text) = std::fs::read_to_string(&json) {
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "a whole JSON or none"
        );
    } else {
        assert!(out.contains("NOT WRITTEN: --json"), "{out}");
    }
    assert!(!left.iter().any(|f| f == "x.hlog" || f.ends_with(".tmp")), "{left:?}");
}

#[test]
fn latency_prints_the_spectrum_that_the_json_carries() {
    let _machine = common::shared();
    let json = temp_path("spectrum.json");
    let out = run(&[
        "--target",
        "mio",
        "-c",
        "2",
        "-d",
        "1",
        "--warmup",
        "0.2",
        "--latency",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let table = text
        .split("Detailed percentile spectrum")
        .nth(1)
        .expect("the spectrum is printed");
    assert!(
        table.contains("Value   Percentile   TotalCount 1/(1-Percentile)"),
        "{text}"
    );
    let v = read_json(&json);
    let spectrum = v["latency_spectrum"].as_array().unwrap();
    let last = spectrum.last().unwrap();
    assert_eq!(last["quantile"], 1.0);
    assert_eq!(
        last["total_count"], v["latency"]["count"],
        "every message is in the spectrum"
    );
    assert!(
        spectrum.len() > 20
            && table.lines().filter(|l| l.trim().starts_with(char::is_numeric)).count() == spectrum.len()
    );
    // Without --latency the summary is as before; the JSON carries the spectrum anyway.
    let plain = run(&["--target", "mio", "-c", "2", "-d", "0.5", "--warmup", "0"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("Detailed percentile spectrum"));
}

/// A hash of a file's bytes (or of its absence), to see that nothing changed it.
fn fingerprint(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).ok().hash(&mut h);
    h.finish()
}

#[test]
fn a_battery_of_bad_inputs_each_gets_one_line_naming_it_and_changes_nothing() {
    let _machine = common::shared();
    let dir = Scratch::new("battery");
    let good = dir.path("good.csv");
    std::fs::write(
        &good,
        "schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s,lat_p99_us,msgs,status\n\
         1,mio,tcp,closed,10,64,1,,1000,100,1000,ok\n1,mio,tcp,closed,10,64,1,,1010,101,1000,ok\n",
    )
    .unwrap();
    let text = dir.path("notes.txt");
    std::fs::write(&text, "not a report\n").unwrap();
    let empty = dir.path("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let dup = dir.path("dup.csv");
    std::fs::write(
        &dup,
        "schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s,target\n",
    )
    .unwrap();
    let badlog = dir.path("bad.hlog");
    std::fs::write(&badlog, "#[BaseTime: 1.0]\n0.0,1.0,1.0,@@@@\n").unwrap();
    let sub = dir.path("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let (g, t, e, d, b, s) = (
        good.to_str().unwrap(),
        text.to_str().unwrap(),
        empty.to_str().unwrap(),
        dup.to_str().unwrap(),
        badlog.to_str().unwrap(),
        sub.to_str().unwrap(),
    );
    let out = |n: &str| dir.path(n).to_str().unwrap().to_string();
    let (o_html, o_svg, o_png, o_csv) = (out("o.html"), out("o.svg"), out("o.png"), out("o.csv"));
    let run_ = ["--target", "mio", "-c", "1", "-d", "200ms", "--warmup", "0s"];
    // (arguments, exit code, what the message must name)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["compare", "/nonexistent/a.csv", g], 2, "/nonexistent/a.csv"),
        (vec!["compare", "/dev/zero", g], 2, "/dev/zero"),
        (vec!["compare", g, "/dev/zero"], 2, "/dev/zero"),
        (vec!["compare", s, g], 2, "sub"),
        (vec!["compare", e, g], 2, "empty.csv"),
        (vec!["compare", t, g], 2, "notes.txt"),
        (vec!["compare", d, g], 2, "twice"),
        (vec!["compare", g, g, "--metric", "bogus"], 2, "--metric bogus"),
        (vec!["compare", g, g, "--metric", "lost"], 2, "--metric lost"),
        (vec!["compare", g, g, "--gate", "nosuch"], 2, "nosuch"),
        (
            vec!["compare", g, "--by", "nosuch", "--baseline", "x"],
            2,
            "--by nosuch",
        ),
        (
            vec!["compare", g, "--by", "target", "--baseline", "nosuch"],
            2,
            "nosuch",
        ),
        (vec!["compare", g, g, "--threshold", "abc"], 2, "--threshold"),
        (vec!["compare", g], 2, "compare"),
        (vec!["compare", g, g, "--format", "nope"], 2, "--format"),
        (
            vec!["report", "/nonexistent/a.csv", "--html", &o_html],
            2,
            "/nonexistent/a.csv",
        ),
        (vec!["report", "/dev/zero", "--html", &o_html], 2, "/dev/zero"),
        (vec!["report", g, "--html", "/nonexistent/dir/x.html"], 2, "--html"),
        (vec!["report", g, "--hlog", b, "--html", &o_html], 2, "bad.hlog"),
        (
            vec!["report", g, "--hlog", "/dev/zero", "--html", &o_html],
            2,
            "/dev/zero",
        ),
        (
            vec!["plot", "/nonexistent/a.csv", "--out", &o_svg],
            2,
            "/nonexistent/a.csv",
        ),
        (vec!["plot", g, "--out", &o_png], 2, "--out"),
        (vec!["plot", "/dev/zero", "--out", &o_svg], 2, "/dev/zero"),
        (vec!["plot", b, "--out", &o_svg], 2, "bad.hlog"),
        (vec!["merge", "/nonexistent/a.hlog"], 2, "/nonexistent/a.hlog"),
        (vec!["merge", "/dev/zero"], 2, "/dev/zero"),
        (vec!["merge", t], 2, "notes.txt"),
        (vec!["merge", b], 2, "bad.hlog"),
        (vec!["--target", "nosuch"], 2, "nosuch"),
        (vec!["--addr", "bogus"], 2, "--addr"),
        (vec!["--addr", "127.0.0.1:99999"], 2, "--addr"),
        (vec!["--target", "mio", "--addr", "127.0.0.1:1"], 2, "--addr"),
        (vec!["--target", "mio", "-c", "0"], 2, "--conns"),
        (vec!["--target", "mio", "-c", "abc"], 2, "--conns"),
        (vec!["--target", "mio", "--msg-size", "0"], 2, "--msg-size"),
        (vec!["--target", "mio", "--msg-size", "1TB"], 2, "--msg-size"),
        (vec!["--target", "mio", "--depth", "0"], 2, "--depth"),
        (vec!["--target", "mio", "-d", "abc"], 2, "--duration"),
        (vec!["--target", "mio", "--rate", "0"], 2, "--rate"),
        (vec!["--target", "mio", "--rate", "1e10"], 2, "1e9"),
        (vec!["--target", "mio", "--rate=-5"], 2, "--rate"),
        (vec!["--target", "mio", "--rate", "auto"], 2, "--slo"),
        (vec!["--target", "mio", "--slo", "p99=1ms,bogus"], 2, "--slo"),
        (
            vec!["--target", "mio", "--rate", "auto", "--slo", "p99=1ms,errors=0"],
            2,
            "one latency objective",
        ),
        (
            vec!["--target", "mio", "--rate", "auto", "--slo", "p42=1ms"],
            2,
            "--slo",
        ),
        (vec!["--target", "mio", "--work", "sleep:1ms"], 2, "--work"),
        (vec!["--target", "mio", "--work", "cpu:2h"], 2, "--work"),
        (vec!["--target", "mio", "--repeat", "abc"], 2, "--repeat"),
        (vec!["--target", "mio", "--warmup", "abc"], 2, "--warmup"),
        (vec!["--target", "mio", "--threads", "0"], 2, "--threads"),
        (vec!["--target", "mio", "--csv", "/nonexistent/dir/x.csv"], 2, "--csv"),
        (
            vec!["--target", "mio", "--json", "/nonexistent/dir/x.json"],
            2,
            "--json",
        ),
        (vec!["--target", "mio", "--csv", g, "--json", g], 2, "same file"),
        (vec!["--target", "mio", "--csv", t], 2, "notes.txt"),
        (vec!["--target", "mio", "--pacing", "bogus"], 2, "--pacing"),
        (vec!["--target", "mio", "--pacing", "spin"], 2, "--pacing"),
        (vec!["--target", "mio", "--engine", "bogus"], 2, "--engine"),
        (vec!["--target", "mio", "--transport", "bogus"], 2, "--transport"),
        (vec!["--addr", "127.0.0.1:1", "--transport", "udp"], 2, "--transport"),
        (vec!["--target", "mio", "--close", "bogus"], 2, "--close"),
        (vec!["--target", "mio", "--shard", "3/2"], 2, "--shard"),
        (vec!["--target", "mio", "--bind", "notanip"], 2, "--bind"),
        (vec!["--target", "mio", "--agent-token", "/dev/zero"], 2, "--agent"),
        (
            vec!["sweep", "--targets", "nosuch", "--conns", "1", "--csv", &o_csv],
            2,
            "--targets",
        ),
        (
            vec!["sweep", "--targets", "mio", "--conns", "1,x", "--csv", &o_csv],
            2,
            "--conns",
        ),
        (
            vec![
                "sweep",
                "--targets",
                "mio",
                "--conns",
                "1",
                "--rate",
                "1k..500/3",
                "--csv",
                &o_csv,
            ],
            2,
            "--rate",
        ),
        (
            vec![
                "sweep",
                "--targets",
                "mio",
                "--conns",
                "1",
                "--rate",
                "1k..2k",
                "--csv",
                &o_csv,
            ],
            2,
            "--rate",
        ),
        (
            vec![
                "sweep",
                "--targets",
                "mio",
                "--conns",
                "1",
                "--slo",
                "p99=1ms",
                "--csv",
                &o_csv,
            ],
            2,
            "--rate",
        ),
        (
            vec![
                "sweep",
                "--targets",
                "mio",
                "--addr",
                "127.0.0.1:1",
                "--conns",
                "1",
                "--csv",
                &o_csv,
            ],
            2,
            "--addr",
        ),
        (
            vec!["sweep", "--targets", "mio", "--conns", "1", "--csv", t],
            2,
            "notes.txt",
        ),
        (vec!["serve", "--model", "nosuch"], 2, "nosuch"),
        ([&run_[..], &["--hdr-log", g]].concat(), 2, "--hdr-log"),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let watched = [&good, &text, &empty, &dup, &badlog];
    let before: Vec<u64> = watched.iter().map(|p| fingerprint(p)).collect();
    let mut failures = Vec::new();
    for (args, code, names) in &cases {
        let t0 = Instant::now();
        let o = loadgen().current_dir(&dir.0).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let problem = if o.status.code() != Some(*code) {
            Some(format!("exit {:?}, not {code}", o.status.code()))
        } else if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
            Some("a panic".into())
        } else if lines.len() != 1 {
            Some(format!("{} lines, not one", lines.len()))
        } else if !err.contains(names) {
            Some(format!("does not name {names:?}"))
        } else if t0.elapsed() > Duration::from_secs(10) {
            Some(format!("took {:?}", t0.elapsed()))
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!("loadgen {}: {p}: {}", args.join(" "), err.trim()));
        }
    }
    let after: Vec<u64> = watched.iter().map(|p| fingerprint(p)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(before, after, "a bad input changed an existing file");
}
