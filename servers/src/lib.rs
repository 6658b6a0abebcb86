//! Interchangeable echo servers (TCP, Unix stream and UDP), one per concurrency model.
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
//!   ECONNABORTED and other per-connection errors are skipped (see `accept.rs`).
//! - SIGPIPE is ignored process-wide by [`fn@start`], so a peer that went away never kills
//!   the server: the write fails with EPIPE and only that connection is closed.
//! - A peer that stops reading is no longer read from: memory per connection stays bounded.
//! - Over UDP (`udp://HOST:PORT`) every model echoes datagrams; the crate's `datagram` module says how each
//!   model maps onto datagrams and why UDP binds loopback unless `allow_remote` is set.

pub(crate) mod accept;
pub mod addr;
mod blocking;
pub(crate) mod budget;
pub mod cli;
pub(crate) mod datagram;
pub mod listen;
mod model;
mod models;
pub(crate) mod nonblocking;
mod registry;
mod running;
mod start;
pub(crate) mod stream;
pub mod work;

pub use addr::{ListenAddr, Transport};
pub use budget::{thread_budget, ThreadBudget};
pub use model::{Model, UnknownModel, DEFAULT_POOL_THREADS};
pub use running::{
    ServerConfig, ServerHandle, BUF_SIZE, DEFAULT_BACKLOG, DEFAULT_PEER_IDLE, DEFAULT_SOURCE_RATE, DEFAULT_STACK_SIZE,
};
pub use start::start;
