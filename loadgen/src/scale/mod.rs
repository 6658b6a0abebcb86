//! Past one process and one machine: `--procs` fan-out ([`fanout`]), the exact merge of
//! shards' interval logs ([`merge`]), and `loadgen agent` on the server's host ([`agent`]).
//! May import: `run` and everything below it.

#[cfg(feature = "agent")]
pub(crate) mod agent;
pub(crate) mod fanout;
pub(crate) mod merge;
