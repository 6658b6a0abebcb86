//! The concurrency models, one folder each: the stream (TCP, Unix) server in `mod.rs` and
//! its UDP mapping in `udp.rs`. A model imports the shared leaves (`running`, `stream`,
//! `accept`, `blocking`, `registry`, `datagram`, `ring`), never another model.

pub(crate) mod mio;
pub(crate) mod poll;
pub(crate) mod thread_per_conn;
pub(crate) mod thread_pool;
pub(crate) mod tokio;
pub(crate) mod uring;
