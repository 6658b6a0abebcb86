//! The Slurm path of docs/scale.md run for real: a four-node cluster on this host
//! (deploy/slurm/local-cluster.sh: munged, slurmctld, four `slurmd -N`), a server job with
//! its agent on one node, the load as a job array of three shards on the others, and the
//! merge job after them (deploy/slurm/submit.sh). Needs root and the slurm-wlm and munge
//! packages (.ci/run installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, *};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/slurm");

/// A cluster started by local-cluster.sh; stopped (by the pids it wrote) and removed on drop,
/// after printing its logs when the test failed.
struct Cluster {
    dir: PathBuf,
    conf: String,
}

impl Cluster {
    fn start(dir: &Path, nodes: u32) -> Result<Cluster, String> {
        let out = Command::new(format!("{DEPLOY}/local-cluster.sh"))
            .args(["start", dir.to_str().unwrap(), &nodes.to_string()])
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let conf = text.trim().strip_prefix("export SLURM_CONF=").map(str::to_string);
        match (out.status.success(), conf) {
            (true, Some(conf)) => Ok(Cluster {
                dir: dir.to_path_buf(),
                conf,
            }),
            _ => Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr))),
        }
    }

    /// `submit.sh ARGS --wait`: its exit code and output. First waits (at most 60 s) for
    /// every node to be idle: a node whose last job is still completing would start a
    /// shard after the common start, which the shard refuses.
    fn submit(&self, args: &[&str]) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let idle = Command::new("sinfo")
                .args(["-h", "-N", "-t", "idle", "-o", "%N"])
                .env("SLURM_CONF", &self.conf)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
                .unwrap_or(0);
            if idle >= 4 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let out = Command::new(format!("{DEPLOY}/submit.sh"))
            .args(args)
            .arg("--wait")
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("--- submit.sh {}\n{text}", args.join(" "));
        (out.status.code(), text)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("squeue").env("SLURM_CONF", &self.conf).status();
            for run in std::fs::read_dir(self.dir.join("results"))
                .into_iter()
                .flatten()
                .flatten()
            {
                eprintln!("=== run directory {}", run.path().display());
                show(&run.path());
            }
            for log in ["slurmctld.log", "slurmd-n1.log", "slurmd-n2.log", "munged.log"] {
                let text = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("--- {log} (last lines)");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        let _ = Command::new(format!("{DEPLOY}/local-cluster.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The job ids `submit.sh` printed: (load array, merge).
fn job_ids(text: &str) -> (String, String) {
    let line = text
        .lines()
        .find(|l| l.starts_with("load array "))
        .expect("submit.sh names its jobs");
    let words: Vec<&str> = line.split_whitespace().collect();
    let merge = words
        .iter()
        .position(|w| *w == "job")
        .map(|i| words[i + 1].trim_end_matches(','));
    (words[2].to_string(), merge.unwrap().to_string())
}

/// Every output of a run directory, printed (for a failing assertion's context).
fn show(dir: &Path) {
    for name in [
        "shard-0.out",
        "shard-1.out",
        "shard-2.out",
        "merge.out",
        "server-job.out",
    ] {
        eprintln!(
            "--- {name}\n{}",
            std::fs::read_to_string(dir.join(name)).unwrap_or_default()
        );
    }
}

#[test]
fn a_slurm_job_array_of_three_shards_merges_into_one_report_and_a_failed_shard_is_named() {
    let _alone = common::alone();
    let test = "a_slurm_job_array_of_three_shards_merges_into_one_report_and_a_failed_shard_is_named";
    if !rustix::process::geteuid().is_root() {
        return testkit::skip(test, "needs root (slurmd runs the jobs)");
    }
    for tool in ["munged", "slurmctld", "slurmd", "sbatch"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            return testkit::skip(test, &format!("{tool} is missing: apt-get install slurm-wlm munge"));
        }
    }
    let started = std::time::Instant::now();
    let dir = std::env::temp_dir().join(format!("echo-bench-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = Cluster::start(&dir, 4).unwrap_or_else(|e| panic!("the local cluster did not start: {e}"));
    let loadgen = env!("CARGO_BIN_EXE_loadgen");
    let results = dir.join("results");
    let server = format!("{loadgen} serve --model mio --addr 127.0.0.1:0");
    let common_args = |lg: &str| -> Vec<String> {
        [
            "--server",
            &server,
            "--agent-args",
            "--listen 127.0.0.1:0",
            "--conns",
            "30",
            "--shards",
            "3",
            "--duration",
            "2s",
            "--warmup",
            "1s",
            "--lead",
            "8",
            "--loadgen",
            lg,
            "--results",
            results.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    // Every shard runs: one report, exact.
    let args = common_args(loadgen);
    let (code, text) = cluster.submit(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (array, merge) = job_ids(&text);
    let run_dir = results.join(&array);
    if code != Some(0) {
        show(&run_dir);
        panic!("the run's merge job {merge} ended with {code:?}");
    }
    let v = read_json(&run_dir.join("run.json"));
    let logs: Vec<PathBuf> = (0..3).map(|i| run_dir.join(format!("shard-{i}.hlog"))).collect();
    let counts: Vec<u64> = (0..3)
        .map(|i| {
            read_json(&run_dir.join(format!("shard-{i}.json")))["counters"]["msgs"]
                .as_u64()
                .unwrap()
        })
        .collect();
    eprintln!(
        "slurm: load array {array}, merge job {merge}; shards' counts {counts:?}, merged {}",
        v["counters"]["msgs"]
    );
    crate::shards::merged_is_exact(&logs, &v);
    // Three shards appended to one CSV at once: a header and a row each, none lost.
    let csv = std::fs::read_to_string(run_dir.join("shards.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert_eq!(v["counters"]["msgs"].as_u64(), Some(counts.iter().sum()));
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["procs"], 3);
    let shards: Vec<(String, String)> = v["shards"]
        .as_array()
        .expect("the merged report lists its shards")
        .iter()
        .map(|s| {
            (
                s["shard"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        shards,
        [("0/3", "ok"), ("1/3", "ok"), ("2/3", "ok")].map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for (i, s) in v["shards"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["msgs"].as_u64(), Some(counts[i]));
        assert!(
            s["shard_source"].as_str().unwrap().contains("SLURM_ARRAY_TASK_ID"),
            "{s}"
        );
    }
    let source = v["server_source"].as_str().unwrap_or_default();
    assert!(source.contains("agent"), "the server's cost comes from its agent: {v}");
    assert!(v["server"]["cpu_s"].as_f64().is_some_and(|c| c > 0.0), "{v}");
    let merged_out = std::fs::read_to_string(run_dir.join("merge.out")).unwrap();
    assert!(merged_out.contains("shards     0/3 ok"), "{merged_out}");

    // Shard 1 cannot connect (a closed port, exit 3): the merge is partial and names it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrapper = dir.join("loadgen-failing-shard-1");
    std::fs::write(
        &wrapper,
        format!(
            "#!/usr/bin/env bash\n# Shard 1 loads a closed port; everything else is loadgen.\n\
             if [ \"${{SLURM_ARRAY_TASK_ID:-}}\" = 1 ]; then\n  a=()\n  while [ $# -gt 0 ]; do\n    \
             if [ \"$1\" = --addr ]; then a+=(--addr 127.0.0.1:{closed}); shift 2; else a+=(\"$1\"); shift; fi\n  \
             done\n  set -- \"${{a[@]}}\"\nfi\nexec {loadgen} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let args = common_args(wrapper.to_str().unwrap());
    let (code, text) = cluster.submit(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (array, merge) = job_ids(&text);
    let run_dir = results.join(&array);
    let shard1 = std::fs::read_to_string(run_dir.join("shard-1.out")).unwrap_or_default();
    let v = read_json(&run_dir.join("run.json"));
    eprintln!(
        "slurm: load array {array} with shard 1 on a closed port, merge job {merge}: exit {code:?}, status {}",
        v["status"]
    );
    if v["status"] != "partial" {
        show(&run_dir);
    }
    assert_eq!(v["status"], "partial", "{v}");
    assert_ne!(code, Some(0), "a partial merge is not a success");
    let reason = v["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("missing: shard 1"), "{reason}");
    assert_eq!(v["shards"][1]["status"], "missing", "{v}");
    assert_eq!(v["shards"][0]["status"], "ok", "{v}");
    assert!(
        shard1.contains(&format!("127.0.0.1:{closed}")),
        "shard 1 names the address it could not reach: {shard1}"
    );
    let merged_out = std::fs::read_to_string(run_dir.join("merge.out")).unwrap();
    assert!(
        merged_out.contains("shard 1 left no interval log"),
        "the merge job names the shard (its run created nothing): {merged_out}"
    );
    eprintln!(
        "slurm: both submissions took {:.1} s with the cluster",
        started.elapsed().as_secs_f64()
    );
}
