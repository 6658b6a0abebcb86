//! What every model shares, a leaf the models import downward: the configuration
//! ([`ServerConfig`]), the defaults, the [`Running`] trait a model implements, the handle of
//! a running server ([`ServerHandle`]), and [`stop_started`] for a model whose start fails
//! half-way. Nothing here imports a model; [`fn@crate::start`] dispatches.

use std::fmt;
use std::io;

use crate::addr::ListenAddr;
use crate::model::Model;

/// Default listen backlog: 4096, `net.core.somaxconn`'s default since Linux 5.4 (the kernel
/// caps it there anyway). std's fixed 128, and 1024 too, overflow on a burst of 10k
/// connects against a server that accepts slower than the handshakes complete: the kernel
/// then drops SYNs (`TcpExtListenOverflows`) and the client retries after 1 s.
pub const DEFAULT_BACKLOG: u32 = 4096;

/// Default stack size of a connection thread in the blocking models: an echo loop keeps its
/// buffer on the heap, so 64 KiB is plenty and lets 10k+ threads fit in memory.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// Size of the scratch buffer each event loop (mio) or runtime thread (tokio) reads into.
/// The blocking models read into a smaller per-connection buffer (`blocking::CONN_BUF`).
pub const BUF_SIZE: usize = 64 * 1024;

/// Options shared by every model.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (read it back from [`ServerHandle::local_addr`]).
    pub addr: ListenAddr,
    /// Threads: pool workers (threadpool), event loops (mio), runtime workers (tokio).
    /// `None` picks the model's default; thread-per-conn ignores it.
    pub threads: Option<usize>,
    /// Listen backlog.
    pub backlog: u32,
    /// Stack size of connection threads in the blocking models.
    pub stack_size: usize,
    /// SO_SNDBUF and SO_RCVBUF of every connection (`None`: the kernel's autotuning).
    pub sock_buf: Option<usize>,
    /// Bind TCP listeners with SO_REUSEPORT even when this process has one, so other
    /// server processes can share the port (`echo-server --procs`).
    pub reuse_port: bool,
    /// A Unix listener's descriptor to take instead of binding the path (the other
    /// processes of `echo-server --procs` share the first one's listener).
    pub listen_fd: Option<std::os::fd::RawFd>,
    /// UDP: bind an address other than loopback, with the source guard on (see
    /// the crate's `datagram` module). Without it a non-loopback UDP address is refused.
    pub allow_remote: bool,
    /// UDP with `allow_remote`: datagrams per second answered per source address (0: no
    /// limit).
    pub source_rate: u32,
    /// UDP thread-per-conn: a peer's thread ends after this long without a datagram.
    pub peer_idle: std::time::Duration,
    /// Per-message work before each echo (`--work`); `None`: a plain echo.
    pub work: Option<std::sync::Arc<crate::work::Work>>,
}

/// Default per-source limit of a UDP server bound beyond loopback: datagrams per second.
pub const DEFAULT_SOURCE_RATE: u32 = 10_000;

/// Default idle time after which a UDP peer's thread (thread-per-conn) ends.
pub const DEFAULT_PEER_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: ListenAddr::Tcp(([127, 0, 0, 1], 0).into()),
            threads: None,
            backlog: DEFAULT_BACKLOG,
            stack_size: DEFAULT_STACK_SIZE,
            sock_buf: None,
            reuse_port: false,
            listen_fd: None,
            allow_remote: false,
            source_rate: DEFAULT_SOURCE_RATE,
            peer_idle: DEFAULT_PEER_IDLE,
            work: None,
        }
    }
}

impl ServerConfig {
    /// The thread count for `model`, with the model's default filled in.
    pub fn threads_for(&self, model: Model) -> usize {
        self.threads.unwrap_or(model.default_workers().unwrap_or(1)).max(1)
    }
}

/// A running server's stop half, implemented by each model.
pub(crate) trait Running: Send {
    /// Stops accepting, closes every connection and joins every thread.
    fn stop(self: Box<Self>) -> io::Result<()>;
}

/// A model whose start failed half-way: stops what did start (its sockets closed, its
/// threads joined) and returns the error that ended the start, which is what the user must
/// hear; a failure of the stop itself is added to its message.
pub(crate) fn stop_started(started: Box<dyn Running>, e: io::Error) -> io::Error {
    match started.stop() {
        Ok(()) => e,
        Err(stop) => io::Error::new(e.kind(), format!("{e} (stopping what had started failed too: {stop})")),
    }
}

/// A running server. Dropping it shuts it down too (ignoring errors).
pub struct ServerHandle {
    local_addr: ListenAddr,
    running: Option<Box<dyn Running>>,
}

impl ServerHandle {
    /// A handle of `running`, listening at `local_addr`.
    pub(crate) fn new(local_addr: ListenAddr, running: Box<dyn Running>) -> ServerHandle {
        ServerHandle {
            local_addr,
            running: Some(running),
        }
    }
}

impl ServerHandle {
    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.local_addr
    }

    /// Stops the server: no more accepts, every connection closed, every thread joined and
    /// the port (or socket file) free. Returns within about a second.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        let result = match self.running.take() {
            Some(running) => running.stop(),
            None => return Ok(()),
        };
        if let Some(path) = self.local_addr.unix_path() {
            // The socket file outlives the listener; remove it so the path can be reused.
            let _ = std::fs::remove_file(path);
        }
        result
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A half-started model: records that it was stopped, and may fail to stop.
    struct Half {
        stopped: Arc<AtomicBool>,
        stop_fails: bool,
    }

    impl Running for Half {
        fn stop(self: Box<Self>) -> io::Result<()> {
            self.stopped.store(true, Ordering::SeqCst);
            if self.stop_fails {
                return Err(io::Error::other("a loop would not join"));
            }
            Ok(())
        }
    }

    #[test]
    fn a_failed_start_stops_what_started_and_reports_its_own_error() {
        for stop_fails in [false, true] {
            let stopped = Arc::new(AtomicBool::new(false));
            let half = Box::new(Half {
                stopped: Arc::clone(&stopped),
                stop_fails,
            });
            let e = stop_started(half, io::Error::new(io::ErrorKind::WouldBlock, "cannot spawn a thread"));
            assert!(stopped.load(Ordering::SeqCst), "what started was stopped");
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "the start's error, not the stop's");
            assert!(e.to_string().starts_with("cannot spawn a thread"), "{e}");
            assert_eq!(e.to_string().contains("a loop would not join"), stop_fails, "{e}");
        }
    }
}
