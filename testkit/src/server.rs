//! An echo server in its own process (`echo-server`, or `loadgen serve`), its address read
//! from the `listening ADDR` line it prints when ready.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::signal::{signal, Signal};

/// A running server child; dropping it kills it.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// It printed a `udp://` address.
    pub udp: bool,
}

impl ServerProcess {
    /// Spawns `cmd` (stdout piped) and waits for its `listening ADDR` line.
    pub fn spawn(cmd: &mut Command) -> ServerProcess {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the server's first line");
        let text = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the server printed {line:?}, not `listening ADDR`"));
        let udp = text.starts_with("udp://");
        let addr = text
            .trim_start_matches("udp://")
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        ServerProcess { child, addr, udp }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr (when the command had it piped), to read after it stopped.
    pub fn take_stderr(&mut self) -> std::process::ChildStderr {
        self.child.stderr.take().expect("stderr was piped")
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("wait on the server").is_some()
    }

    /// SIGTERM; its exit status must be success within `within`.
    pub fn stop(mut self, within: Duration) {
        signal(self.child.id(), Signal::TERM);
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on the server") {
                assert!(status.success(), "the server exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
