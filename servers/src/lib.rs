//! Interchangeable echo servers, one per concurrency model.
//!
//! Every model has the same interface and the same behaviour: it binds the address in a
//! [`ServerConfig`], echoes every byte it reads back to the same connection, and stops when
//! [`ServerHandle::shutdown`] is called. Only the concurrency model differs, so differences
//! in measured numbers belong to the model.
//!
//! ```no_run
//! use servers::{start, Model, ServerConfig};
//! let server = start(Model::Mio, &ServerConfig::default())?;
//! println!("listening {}", server.local_addr());
//! server.shutdown()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Behaviour shared by all models:
//! - TCP_NODELAY on accepted TCP sockets; the listen backlog is set through socket2
//!   (default [`DEFAULT_BACKLOG`]).
//! - Accept errors: EMFILE/ENFILE/ENOBUFS/ENOMEM pause accepting with an exponential
//!   back-off and a rate-limited log line; open connections keep being served.
//!   ECONNABORTED and other per-connection errors are skipped (see [`accept`]).
//! - SIGPIPE is ignored process-wide by [`start`], so a peer that went away never kills
//!   the server: the write fails with EPIPE and only that connection is closed.
//! - A peer that stops reading is no longer read from: memory per connection stays bounded.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Once;

pub mod accept;
pub mod addr;
mod blocking;
pub mod cli;
pub mod listen;
mod mio_loop;
mod registry;
pub mod stream;
mod thread_per_conn;
mod thread_pool;
mod tokio_tasks;

pub use addr::ListenAddr;

/// Default listen backlog. std's fixed 128 overflows on a connection burst; the kernel
/// caps it at `net.core.somaxconn` anyway.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// Default stack size of a connection thread in the blocking models: an echo loop keeps its
/// buffer on the heap, so 64 KiB is plenty and lets 10k+ threads fit in memory.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// Default number of workers of the [`Model::ThreadPool`] model.
pub const DEFAULT_POOL_THREADS: usize = 16;

/// Size of the buffer each connection (blocking models) or each event loop (mio) reads into.
pub const BUF_SIZE: usize = 64 * 1024;

/// A server concurrency model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    /// std blocking sockets, one OS thread per accepted connection (small stacks).
    ThreadPerConn,
    /// std blocking sockets, a fixed pool of workers fed by a queue of accepted connections.
    /// A connection holds its worker until it closes: connections beyond the pool size wait
    /// in the queue, unserved, until a worker frees up.
    ThreadPool,
    /// Nonblocking, edge-triggered mio event loops, one per thread.
    Mio,
    /// A tokio task per connection (current-thread runtime for 1 thread, else multi-thread).
    Tokio,
}

impl Model {
    /// Every model, in the order reports list them.
    pub const ALL: [Model; 4] = [Model::ThreadPerConn, Model::ThreadPool, Model::Mio, Model::Tokio];

    /// The model's name as used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::ThreadPerConn => "thread-per-conn",
            Model::ThreadPool => "threadpool",
            Model::Mio => "mio",
            Model::Tokio => "tokio",
        }
    }

    /// One line describing the model (for `loadgen targets` and help texts).
    pub fn description(self) -> &'static str {
        match self {
            Model::ThreadPerConn => "std blocking I/O, one OS thread (64 KiB stack) per connection",
            Model::ThreadPool => "std blocking I/O, fixed worker pool (--threads, default 16); extra connections wait",
            Model::Mio => "mio edge-triggered event loop per thread (--threads, default 1, SO_REUSEPORT)",
            Model::Tokio => "tokio task per connection (--threads 1: current-thread runtime, N: N workers)",
        }
    }

    /// The names of every model, comma separated (for error messages).
    pub fn names() -> String {
        Model::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The error of parsing an unknown model name; its message lists the valid names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel(pub String);

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown model '{}' (valid: {})", self.0, Model::names())
    }
}

impl std::error::Error for UnknownModel {}

impl FromStr for Model {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .or(match s.trim() {
                "thread-pool" | "pool" => Some(Model::ThreadPool),
                "threads" | "thread-per-connection" => Some(Model::ThreadPerConn),
                _ => None,
            })
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: ListenAddr::Tcp(([127, 0, 0, 1], 0).into()),
            threads: None,
            backlog: DEFAULT_BACKLOG,
            stack_size: DEFAULT_STACK_SIZE,
        }
    }
}

impl ServerConfig {
    /// The thread count for `model`, with the model's default filled in.
    pub fn threads_for(&self, model: Model) -> usize {
        let default = match model {
            Model::ThreadPerConn | Model::Mio | Model::Tokio => 1,
            Model::ThreadPool => DEFAULT_POOL_THREADS,
        };
        self.threads.unwrap_or(default).max(1)
    }
}

/// A running server's stop half, implemented by each model.
trait Running: Send {
    /// Stops accepting, closes every connection and joins every thread.
    fn stop(self: Box<Self>) -> io::Result<()>;
}

/// A running server. Dropping it shuts it down too (ignoring errors).
pub struct ServerHandle {
    local_addr: ListenAddr,
    running: Option<Box<dyn Running>>,
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
        if let ListenAddr::Unix(path) = &self.local_addr {
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

/// Starts `model` with `config` and returns once it is listening.
pub fn start(model: Model, config: &ServerConfig) -> io::Result<ServerHandle> {
    ignore_sigpipe();
    let threads = config.threads_for(model);
    let listeners = listen::bind(&config.addr, config.backlog, listeners_for(model, threads))?;
    let local_addr = listeners[0].local_addr()?;
    let running: Box<dyn Running> = match model {
        Model::ThreadPerConn => Box::new(thread_per_conn::start(listeners, config.stack_size)?),
        Model::ThreadPool => Box::new(thread_pool::start(listeners, threads, config.stack_size)?),
        Model::Mio => Box::new(mio_loop::start(listeners)?),
        Model::Tokio => Box::new(tokio_tasks::start(listeners, threads)?),
    };
    Ok(ServerHandle {
        local_addr,
        running: Some(running),
    })
}

/// How many listening sockets a model wants: one per mio event loop (SO_REUSEPORT lets the
/// kernel spread connections across them), one for everything else.
fn listeners_for(model: Model, threads: usize) -> usize {
    match model {
        Model::Mio => threads,
        _ => 1,
    }
}

/// Ignores SIGPIPE for the whole process (once). Writing to a socket whose peer has gone
/// then fails with EPIPE instead of killing the process.
fn ignore_sigpipe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: setting a signal disposition to SIG_IGN has no memory-safety preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_round_trip() {
        for model in Model::ALL {
            assert_eq!(model.name().parse::<Model>().unwrap(), model);
            assert_eq!(model.to_string(), model.name());
        }
    }

    #[test]
    fn unknown_model_lists_choices() {
        let err = "fibers".parse::<Model>().unwrap_err().to_string();
        assert!(
            err.contains("fibers") && err.contains("thread-per-conn, threadpool, mio, tokio"),
            "{err}"
        );
    }
}
