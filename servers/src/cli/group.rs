//! The other processes of `echo-server --procs N`: this same program, started with the
//! same model and options on the port the first process bound, with SO_REUSEPORT.

use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::args::ServeArgs;
use crate::addr::ListenAddr;

/// How long the other processes may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long they may take to exit after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// The running other processes (none without `--procs`).
pub(super) struct Others(Vec<Child>);

/// Binds the Unix listener the processes of the group share, inheritable by children.
pub(super) fn inheritable_listener(addr: &ListenAddr, backlog: u32) -> io::Result<OwnedFd> {
    let listener = crate::listen::bind(addr, backlog, 1, None, false, None)?
        .pop()
        .ok_or_else(|| io::Error::other("no listener bound"))?;
    let fd: OwnedFd = match listener {
        crate::stream::Listener::Unix(l) => l.into(),
        crate::stream::Listener::Tcp(l) => l.into(),
    };
    // Kept open across exec: the other processes take it with --listen-fd.
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty())?;
    Ok(fd)
}

/// A new descriptor for the same socket, owned by whoever takes the number.
pub(super) fn dup_raw(fd: &OwnedFd) -> io::Result<RawFd> {
    Ok(fd.try_clone()?.into_raw_fd())
}

/// Starts `args.procs - 1` more servers on `addr` (sharing `unix`, the Unix listener, when
/// given) and waits until each listens.
pub(super) fn spawn_others(args: &ServeArgs, addr: &ListenAddr, unix: Option<&OwnedFd>) -> io::Result<Others> {
    let mut others = Others(Vec::new());
    if args.procs <= 1 {
        return Ok(others);
    }
    // The same program: `echo-server ...`, or `loadgen serve ...` (its first argument).
    // /proc/self/exe still names this very binary when its file was replaced since (a
    // rebuild during a long sweep); the path would not.
    let exe = match std::path::Path::new("/proc/self/exe") {
        p if p.exists() => p.to_path_buf(),
        _ => std::env::current_exe()?,
    };
    let serve_word: Vec<String> = std::env::args().skip(1).take_while(|a| a == "serve").collect();
    for _ in 1..args.procs {
        let mut cmd = Command::new(&exe);
        cmd.args(&serve_word)
            .args(["--model", args.model.name(), "--addr", &addr.to_string()])
            .args(["--backlog", &args.backlog.to_string()]);
        match unix {
            Some(fd) => cmd.args(["--listen-fd", &fd.as_raw_fd().to_string()]),
            None => cmd.arg("--reuse-port"),
        };
        if let Some(t) = args.threads {
            cmd.args(["--threads", &t.to_string()]);
        }
        if let Some(b) = args.sock_buf {
            cmd.args(["--sock-buf", &b.to_string()]);
        }
        if args.allow_remote {
            cmd.arg("--allow-remote");
        }
        if let Some(w) = &args.work {
            // Each process its own seed stream: the same seed would repeat its samples.
            cmd.args(["--work", &w.to_string(), "--msg-size", &args.msg_size.to_string()])
                .args(["--seed", &args.seed.wrapping_add(others.0.len() as u64 + 1).to_string()]);
        }
        cmd.args(["--source-rate", &args.source_rate.to_string()])
            .args(["--peer-idle", &args.peer_idle.to_string()]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        others.0.push(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line).map(|_| tx.send(line));
        });
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("listening ") => {}
            _ => {
                others.stop();
                return Err(io::Error::other("a server process of --procs did not start listening"));
            }
        }
    }
    Ok(others)
}

impl Others {
    /// The exit status of the first of them that has exited, if any.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.0.iter_mut().find_map(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM to each, then waits (SIGKILL after [`STOP_TIMEOUT`]).
    pub(super) fn stop(&mut self) {
        for c in &self.0 {
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                // Already gone: nothing to stop.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for c in &mut self.0 {
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() >= deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.0.clear();
    }
}

impl Drop for Others {
    fn drop(&mut self) {
        self.stop();
    }
}
