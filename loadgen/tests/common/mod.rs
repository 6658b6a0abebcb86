//! Helpers for the loadgen CLI tests: running the binary, reading its CSV, and echo servers
//! that misbehave on purpose.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The loadgen binary.
pub fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
}

/// Runs loadgen with `args`, returning its output (with a generous overall bound).
pub fn run(args: &[&str]) -> Output {
    let out = loadgen().args(args).output().expect("loadgen runs");
    eprintln!(
        "--- loadgen {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs loadgen with `args` plus `--csv <fresh file> --quiet`; returns the exit code and
/// the one CSV row it wrote.
pub fn run_for_row(csv_name: &str, args: &[&str]) -> (Option<i32>, HashMap<String, String>) {
    let csv = temp_path(csv_name);
    let mut all = args.to_vec();
    all.extend(["--csv", csv.to_str().unwrap(), "--quiet"]);
    let out = run(&all);
    let (_, mut rows) = read_csv(&csv);
    assert_eq!(rows.len(), 1, "one row expected in {}", csv.display());
    (out.status.code(), rows.remove(0))
}

/// The pid of the (only) child of process `pid`: the server a loadgen run started.
pub fn wait_for_child(pid: u32) -> u32 {
    // The server is the only child of loadgen.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next() {
            return c.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "loadgen never started its server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes `cmd`'s process start with this descriptor limit (soft, hard).
pub fn with_nofile(cmd: &mut Command, soft: u64, hard: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        })
    }
}

/// A fresh temporary path for a test's files.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Reads a CSV report into (header, rows as name -> value maps).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

/// A number from a row.
pub fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("column {col} = {:?} is not a number", row[col]))
}

/// How a test server misbehaves.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Echoes faithfully.
    None,
    /// Flips one byte in every `n`-th chunk it echoes.
    Corrupt(u64),
    /// Reads but never answers.
    Silent,
    /// Serves for this long, then closes everything and stops listening.
    DieAfter(Duration),
    /// Resets (RST) each connection after echoing this many chunks.
    ResetAfter(u64),
    /// Delays every echo by this long.
    Delay(Duration),
    /// Stops answering for `pause` at the start of every `period` (a GC pause, say).
    Freeze { period: Duration, pause: Duration },
}

/// A test echo server on 127.0.0.1:0, one thread per connection.
pub struct FaultServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Weak<TcpStream>>>>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl FaultServer {
    pub fn start(fault: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Weak: the serving thread owns the socket, so dropping it really closes (or resets) it.
        let conns: Arc<Mutex<Vec<Weak<TcpStream>>>> = Arc::default();
        let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let (stop2, conns2, peers2) = (Arc::clone(&stop), Arc::clone(&conns), Arc::clone(&peers));
        let born = Instant::now();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if let Fault::DieAfter(d) = fault {
                    if born.elapsed() >= d {
                        drop(listener);
                        for c in conns2.lock().unwrap().drain(..).filter_map(|w| w.upgrade()) {
                            let _ = c.shutdown(std::net::Shutdown::Both);
                        }
                        return;
                    }
                }
                match listener.accept() {
                    Ok((s, peer)) => {
                        peers2.lock().unwrap().push(peer);
                        s.set_nonblocking(false).unwrap();
                        s.set_nodelay(true).unwrap();
                        let s = Arc::new(s);
                        conns2.lock().unwrap().push(Arc::downgrade(&s));
                        std::thread::spawn(move || serve(&s, fault, born));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FaultServer {
            addr,
            stop,
            conns,
            peers,
        }
    }

    /// The source addresses of every connection accepted so far.
    pub fn peer_ips(&self) -> std::collections::BTreeSet<std::net::IpAddr> {
        self.peers.lock().unwrap().iter().map(|p| p.ip()).collect()
    }

    pub fn addr_arg(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..).filter_map(|w| w.upgrade()) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn serve(s: &TcpStream, fault: Fault, born: Instant) {
    let mut s = s;
    let mut buf = vec![0u8; 16 * 1024];
    let mut chunks = 0u64;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        chunks += 1;
        match fault {
            Fault::Silent => continue,
            Fault::Corrupt(every) if chunks % every == 0 => buf[n / 2] ^= 0x20,
            Fault::ResetAfter(k) if chunks > k => {
                socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)).unwrap();
                return;
            }
            Fault::Delay(d) => std::thread::sleep(d),
            Fault::Freeze { period, pause } => {
                let phase = Duration::from_nanos((born.elapsed().as_nanos() % period.as_nanos()) as u64);
                if phase < pause {
                    std::thread::sleep(pause - phase);
                }
            }
            _ => {}
        }
        if s.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
