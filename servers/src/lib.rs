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
//!   ECONNABORTED and other per-connection errors are skipped (see [`accept`]).
//! - SIGPIPE is ignored process-wide by [`start`], so a peer that went away never kills
//!   the server: the write fails with EPIPE and only that connection is closed.
//! - A peer that stops reading is no longer read from: memory per connection stays bounded.
//! - Over UDP (`udp://HOST:PORT`) every model echoes datagrams; [`udp`] maps each model to
//!   datagrams and explains why UDP binds loopback unless `allow_remote` is set.

pub mod accept;
pub mod addr;
mod blocking;
pub mod budget;
pub mod cli;
pub mod listen;
mod mio_loop;
mod model;
mod registry;
mod server;
pub mod stream;
mod thread_per_conn;
mod thread_pool;
mod tokio_tasks;
pub mod udp;
pub mod uring;

pub use addr::{ListenAddr, Transport};
pub use budget::{thread_budget, ThreadBudget};
pub use model::{Model, UnknownModel};
pub use server::{
    start, ServerConfig, ServerHandle, BUF_SIZE, DEFAULT_BACKLOG, DEFAULT_PEER_IDLE, DEFAULT_POOL_THREADS,
    DEFAULT_SOURCE_RATE, DEFAULT_STACK_SIZE,
};
