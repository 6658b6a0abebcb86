//! Outputs under faults: `-` and /dev/stdout as streams, special files written and never
//! read, a full disk that loses nothing that can still be written, paths refused up front.
//! Every test works in its own directory and removes it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

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
