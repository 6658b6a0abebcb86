//! Helpers for the loadgen CLI tests: running the binary, reading its CSV, and echo servers
//! that misbehave on purpose.
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub use testkit::proc::wait_for_child;
pub use testkit::{signal, temp_path, with_nofile, Signal};

/// Every test holds this: shared by ordinary tests, taken alone by the timing ones.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by an ordinary test for its whole length: it may run beside another ordinary test,
/// never beside one that holds [`alone`].
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by a test whose figures need the machine to itself (timing, CPU shares): no other
/// test of this binary runs meanwhile.
pub fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

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
    (out.status.code(), only_row(&csv))
}

/// [`run_for_row`], made again (up to three runs) while the row says the hypervisor took
/// over a tenth of the machine's CPU in the window (steal: stalls no code here caused, which
/// a timing check would blame on the code); returns the least stolen run.
pub fn run_for_row_unstolen(csv_name: &str, args: &[&str]) -> (Option<i32>, HashMap<String, String>) {
    let stolen = |row: &HashMap<String, String>| {
        let get = |c: &str| row.get(c).and_then(|v| v.parse::<f64>().ok());
        match (get("steal_cpu_s"), get("cpus"), get("duration_s")) {
            (Some(s), Some(c), Some(d)) if c * d > 0.0 => s / (c * d),
            _ => 0.0,
        }
    };
    let mut best = run_for_row(csv_name, args);
    for _ in 1..3 {
        if stolen(&best.1) <= 0.10 {
            break;
        }
        eprintln!("(the hypervisor took over a tenth of the machine in that run: made again)");
        let again = run_for_row(csv_name, args);
        if stolen(&again.1) < stolen(&best.1) {
            best = again;
        }
    }
    best
}

/// The share of the machine's CPU the hypervisor took in a run, from its JSON report.
pub fn stolen(v: &serde_json::Value) -> f64 {
    let m = &v["machine"];
    m["steal_s"].as_f64().unwrap_or(0.0) / m["capacity_s"].as_f64().unwrap_or(f64::INFINITY)
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

/// The one row of a report (asserting there is exactly one).
pub fn only_row(path: &Path) -> HashMap<String, String> {
    let (_, mut rows) = read_csv(path);
    assert_eq!(rows.len(), 1, "one row expected in {}", path.display());
    rows.remove(0)
}

/// A JSON report (or any JSON file) read back.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A number from a row.
pub fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("column {col} = {:?} is not a number", row[col]))
}

/// How a test server misbehaves (the client-side fault kinds are `loadgen::measure::record::Fault`).
#[derive(Debug, Clone, Copy)]
pub enum Misbehave {
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
    /// Closes each connection (FIN) after echoing this many chunks.
    CloseAfter(u64),
    /// Delays every echo by this long.
    Delay(Duration),
    /// Echoes at once until `after`, then delays every echo by `delay` (a server that
    /// slows down mid-run).
    SlowDownAfter { after: Duration, delay: Duration },
    /// Delays every echo by `delay` until `until`, then echoes at once (a server that warms
    /// up).
    SlowUntil { until: Duration, delay: Duration },
    /// Stops answering for `pause` at the start of every `period` (a GC pause, say).
    Freeze { period: Duration, pause: Duration },
    /// Accepts this many connections (and echoes on them), then never accepts again, as a
    /// server at its descriptor limit; its listen backlog is 16.
    StopAcceptingAfter(usize),
}

/// A test echo server on 127.0.0.1:0, one thread per connection.
pub struct MisbehavingServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Weak<TcpStream>>>>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl MisbehavingServer {
    pub fn start(fault: Misbehave) -> MisbehavingServer {
        let backlog = match fault {
            Misbehave::StopAcceptingAfter(_) => 16,
            _ => 128,
        };
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        socket.listen(backlog).unwrap();
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Weak: the serving thread owns the socket, so dropping it really closes (or resets) it.
        let conns: Arc<Mutex<Vec<Weak<TcpStream>>>> = Arc::default();
        let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let (stop2, conns2, peers2) = (Arc::clone(&stop), Arc::clone(&conns), Arc::clone(&peers));
        let born = Instant::now();
        std::thread::spawn(move || {
            let mut accepted = 0;
            while !stop2.load(Ordering::Relaxed) {
                if matches!(fault, Misbehave::StopAcceptingAfter(n) if accepted >= n) {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                if let Misbehave::DieAfter(d) = fault {
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
                        accepted += 1;
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
        MisbehavingServer {
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

    /// How many connections the server accepted so far.
    pub fn accepted(&self) -> usize {
        self.peers.lock().unwrap().len()
    }

    pub fn addr_arg(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for MisbehavingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.conns.lock().unwrap().drain(..).filter_map(|w| w.upgrade()) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn serve(s: &TcpStream, fault: Misbehave, born: Instant) {
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
            Misbehave::Silent => continue,
            Misbehave::Corrupt(every) if chunks.is_multiple_of(every) => buf[n / 2] ^= 0x20,
            Misbehave::ResetAfter(k) if chunks > k => {
                socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)).unwrap();
                return;
            }
            Misbehave::CloseAfter(k) if chunks > k => {
                // An orderly close of both directions (the serving thread's `Arc` may
                // outlive this function, so `shutdown` rather than relying on drop).
                let _ = s.shutdown(std::net::Shutdown::Both);
                return;
            }
            Misbehave::Delay(d) => std::thread::sleep(d),
            Misbehave::SlowDownAfter { after, delay } if born.elapsed() >= after => std::thread::sleep(delay),
            Misbehave::SlowUntil { until, delay } if born.elapsed() < until => std::thread::sleep(delay),
            Misbehave::Freeze { period, pause } => {
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

/// The models this machine can run, for a test that loops over every model: a model whose
/// prerequisite is missing (io_uring) is skipped visibly ([`testkit::skip`]), which fails
/// under CI.
pub fn runnable_models(test: &str) -> Vec<servers::Model> {
    servers::Model::ALL
        .into_iter()
        .filter(|&m| match (m, kit::ring::available()) {
            (servers::Model::Uring, Err(why)) => {
                testkit::skip(&format!("{test} (uring)"), &why.to_string());
                false
            }
            _ => true,
        })
        .collect()
}
