//! What a run loads: a model started in its own child process (`loadgen serve`, i.e. this
//! same binary re-executed, so its CPU, memory and descriptor limit are separate and
//! measurable), or an already running server at `--addr`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use servers::{ListenAddr, Model};

use crate::config::{RunConfig, TargetSpec};
use crate::error::Error;
use crate::os::sys;

/// How long a spawned server may take to print `listening ADDR`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// An echo server child process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    exit: Option<ExitStatus>,
    /// The lines it prints after `listening ADDR` (its `work ...` tallies).
    lines: Option<mpsc::Receiver<String>>,
}

impl ServerProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// The `--work` it has done so far: SIGUSR1 asks it for one `work ...` line, awaited up
    /// to half a second. `None` when it gives none (no work, or not an echo-bench server).
    pub fn work_done(&mut self) -> Option<Vec<servers::work::done::KindDone>> {
        let lines = self.lines.as_ref()?;
        while lines.try_recv().is_ok() {} // an earlier answer nobody waited for
        if self.exit.is_some() || sys::signal(self.child.id(), rustix::process::Signal::USR1).is_err() {
            return None;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(done) = servers::work::done::parse_line(&line) {
                        return Some(done);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL. Returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.exited().is_some() {
            return self.exit;
        }
        // Our own child, not yet reaped: the pid is still ours. Gone already: nothing to do.
        let _ = sys::signal(self.child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return self.exit;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        self.exit = self.child.wait().ok();
        self.exit
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running target.
#[derive(Debug)]
pub struct Target {
    /// Where to connect.
    pub addr: ListenAddr,
    /// The model's name, or `external` for `--addr`.
    pub name: String,
    /// The child process, when loadgen started the server.
    pub server: Option<ServerProcess>,
}

/// Starts the configured target (or checks that the address accepts connections).
pub fn start(cfg: &RunConfig) -> anyhow::Result<Target> {
    match &cfg.target {
        TargetSpec::Model(model) => spawn_model(*model, cfg),
        TargetSpec::Addr(addr) => {
            probe(addr, cfg.connect_timeout)?;
            Ok(Target {
                addr: addr.clone(),
                name: "external".into(),
                server: None,
            })
        }
    }
}

fn spawn_model(model: Model, cfg: &RunConfig) -> anyhow::Result<Target> {
    if model == Model::Uring {
        // Said here in one line, rather than as a server that never came up.
        kit::ring::available().map_err(|e| Error::CannotRun(format!("cannot start the uring server: {e}")))?;
    }
    let pin = cfg.pin_server.clone();
    // /proc/self/exe still names this very binary when its file has been replaced or
    // deleted since (e.g. rebuilt during a long sweep); the path would not.
    let exe = match std::path::Path::new("/proc/self/exe") {
        p if p.exists() => p.to_path_buf(),
        _ => std::env::current_exe().context("cannot find the loadgen executable to start the server")?,
    };
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--model", model.name(), "--addr", &cfg.transport.spawn_addr()]);
    if let Some(b) = cfg.sock_buf {
        cmd.args(["--sock-buf", &b.to_string()]);
    }
    if cfg.server_procs > 1 {
        cmd.args(["--procs", &cfg.server_procs.to_string()]);
    }
    if let Some(t) = cfg.server_threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    if let Some(w) = &cfg.work {
        // The server frames messages of the run's size and seeds its work from the run's seed.
        cmd.args(["--work", &w.to_string(), "--msg-size", &cfg.msg_size.to_string()])
            .args(["--seed", &cfg.seed.to_string()]);
    }
    // Own process group: a terminal's Ctrl-C reaches loadgen only, which then stops the
    // server itself (and records the run as partial).
    cmd.process_group(0);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    sys::die_with_parent(&mut cmd, pin);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::CannotRun(format!("cannot start the {model} server: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let rx = read_lines(stdout);
    let mut server = ServerProcess {
        child,
        exit: None,
        lines: None,
    };
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(line) if !line.is_empty() => line,
        _ => {
            let status = server.stop();
            return Err(Error::CannotRun(format!(
                "the {model} server did not report `listening ADDR` within {START_TIMEOUT:?} (exit status: {})",
                status.map_or("still running, killed".to_string(), |s| s.to_string())
            ))
            .into());
        }
    };
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            Error::CannotRun(format!(
                "the {model} server printed {line:?} instead of `listening ADDR`"
            ))
        })?;
    server.lines = Some(rx);
    Ok(Target {
        addr,
        name: model.name().into(),
        server: Some(server),
    })
}

/// The lines a server prints, read on a thread of their own until the pipe closes or
/// nobody listens: `listening ADDR` first, then its `work ...` tallies.
fn read_lines(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// UDP has no connect: a header-only datagram must come back within `timeout` (resent
/// every 100 ms in case one is lost). A closed port answers with ICMP, which the connected
/// socket reports as ECONNREFUSED.
fn probe_udp(addr: std::net::SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let any: std::net::SocketAddr = if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .expect("literal address");
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(addr)?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let probe = [0u8; crate::measure::wire::HEADER];
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 64];
    let refused = |e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionRefused;
    while std::time::Instant::now() < deadline {
        match s.send(&probe) {
            // Nobody at the port (an earlier probe's ICMP): fatal.
            Err(e) if refused(&e) => return Err(e),
            // Any other failure (a firewall's EPERM, no buffer) loses this probe only.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Ok(_) => {}
        }
        match s.recv(&mut buf) {
            Ok(n) if buf[..n] == probe => return Ok(()),
            Ok(_) => {} // something else: not an echo of ours
            Err(e) if refused(&e) => return Err(e),
            Err(_) => {} // timed out (lost on the way) or interrupted: probe again
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no echo of a UDP probe within {timeout:?}"),
    ))
}

/// One connect to check that something listens, within `timeout`.
pub fn probe(addr: &ListenAddr, timeout: Duration) -> Result<(), Error> {
    let result = match addr {
        ListenAddr::Tcp(a) => std::net::TcpStream::connect_timeout(a, timeout).map(drop),
        ListenAddr::Unix(p) => std::os::unix::net::UnixStream::connect(p).map(drop),
        ListenAddr::SeqPacket(p) => socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None)
            .and_then(|s| s.connect(&socket2::SockAddr::unix(p)?)),
        ListenAddr::Udp(a) => probe_udp(*a, timeout),
        ListenAddr::Icmp(ip) => {
            let pinger = crate::os::icmp::Pinger::open(*ip, Duration::from_millis(100));
            // Not allowed to open one: the message names the sysctl and the capability.
            if let Err(e) = &pinger {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    return Err(Error::CannotRun(format!("cannot load {addr}: {e}")));
                }
            }
            pinger.and_then(|mut p| {
                let deadline = std::time::Instant::now() + timeout;
                loop {
                    match p.round_trip() {
                        Ok(_) => return Ok(()),
                        // Lost, or the host drops echo requests: ask again within the timeout.
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut && std::time::Instant::now() < deadline => {}
                        Err(e) => return Err(e),
                    }
                }
            })
        }
    };
    let hint = match addr {
        ListenAddr::Icmp(_) => "does the host answer echo requests? check --addr and net.ipv4.icmp_echo_ignore_all",
        _ => "is the server running? check --addr",
    };
    result.map_err(|e| Error::CannotRun(format!("cannot connect to {addr}: {e} ({hint})")))
}
