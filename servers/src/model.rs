//! The server concurrency models: names as command lines and reports spell them.

use std::fmt;
use std::str::FromStr;

/// Default number of workers of the [`Model::ThreadPool`] model.
pub const DEFAULT_POOL_THREADS: usize = 16;

/// A server concurrency model: the one table of models. Adding one means a variant here,
/// its arms in the `match`es below and in `start.rs` (the compiler lists them: no match
/// over models has a wildcard), a folder under `models/`, and a README row.
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
    /// An io_uring ring per thread: multishot accept and receive, provided buffers.
    Uring,
    /// One `poll(2)` loop per thread over every descriptor: the design before epoll, O(n)
    /// per wake-up.
    Poll,
}

impl Model {
    /// Every model, in the order reports list them.
    pub const ALL: [Model; 6] = [
        Model::ThreadPerConn,
        Model::ThreadPool,
        Model::Mio,
        Model::Tokio,
        Model::Uring,
        Model::Poll,
    ];

    /// The model's name as used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::ThreadPerConn => "thread-per-conn",
            Model::ThreadPool => "threadpool",
            Model::Mio => "mio",
            Model::Tokio => "tokio",
            Model::Uring => "uring",
            Model::Poll => "poll",
        }
    }

    /// How many workers (pool threads, event loops, runtime workers, rings) the model runs
    /// when none are asked for; `None` for thread-per-conn, whose threads follow the
    /// connections and which takes no worker count.
    pub fn default_workers(self) -> Option<usize> {
        match self {
            Model::ThreadPerConn => None,
            Model::ThreadPool => Some(DEFAULT_POOL_THREADS),
            Model::Mio | Model::Tokio | Model::Uring | Model::Poll => Some(1),
        }
    }

    /// How many sockets the model binds for `workers` workers: one per event loop or ring
    /// (each its own SO_REUSEPORT socket, so the kernel spreads connections or peers across
    /// them), and for tokio over UDP one per runtime worker; one for the others. Written
    /// out per model, so a new model must say.
    pub fn sockets(self, workers: usize, datagram: bool) -> usize {
        match self {
            Model::Mio | Model::Uring | Model::Poll => workers,
            // A runtime spreads accepted streams itself; UDP has no accept to spread.
            Model::Tokio if datagram => workers,
            Model::Tokio | Model::ThreadPerConn | Model::ThreadPool => 1,
        }
    }

    /// Whether the model's UDP mapping opens a socket per peer on the server's own port
    /// (bound again with SO_REUSEPORT and connected to the peer), so the first socket must
    /// allow the port's reuse. Without it the per-peer sockets cannot bind and every peer
    /// falls back on the dispatcher: the echo still works, the model silently is another.
    pub fn udp_socket_per_peer(self) -> bool {
        match self {
            Model::ThreadPerConn => true,
            Model::ThreadPool | Model::Mio | Model::Tokio | Model::Uring | Model::Poll => false,
        }
    }

    /// One line describing the model (for `loadgen targets` and help texts).
    pub fn description(self) -> &'static str {
        match self {
            Model::ThreadPerConn => "std blocking I/O, one OS thread (64 KiB stack) per connection",
            Model::ThreadPool => {
                "std blocking I/O, a fixed pool of workers (default 16; loadgen --target: one per connection); a connection holds its worker"
            }
            Model::Mio => "mio edge-triggered event loop per worker (default 1 worker, SO_REUSEPORT)",
            Model::Tokio => "tokio task per connection (1 worker: current-thread runtime, N: N runtime workers)",
            Model::Uring => {
                "io_uring ring per worker (default 1, SO_REUSEPORT): multishot accept/recv, provided buffers"
            }
            Model::Poll => "poll(2) loop per worker over every descriptor, O(n) per wake-up (default 1, SO_REUSEPORT)",
        }
    }

    /// Other names the command line accepts for the model.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Model::ThreadPerConn => &["threads", "thread-per-connection"],
            Model::ThreadPool => &["thread-pool", "pool"],
            Model::Mio | Model::Tokio | Model::Uring | Model::Poll => &[],
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
        let s = s.trim();
        Model::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s) || m.aliases().iter().any(|a| a.eq_ignore_ascii_case(s)))
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
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
            err.contains("fibers") && err.contains("thread-per-conn, threadpool, mio, tokio, uring"),
            "{err}"
        );
    }
}
