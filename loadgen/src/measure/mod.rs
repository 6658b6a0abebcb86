//! What a run sends and records, with no I/O of its own: the [`schedule`] of sends, the
//! [`payload`] and its UDP `wire` header, the histograms and counters a client thread
//! fills ([`record`]), and the interval log they are written to ([`hlog`]).
//! May import: `stats`, `os`, `error`.

pub mod hlog;
pub mod payload;
pub mod record;
pub mod schedule;
pub(crate) mod wire;
