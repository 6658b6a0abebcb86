//! loadgen: a load generator for echo servers.
//!
//! `loadgen --target mio --conns 1000` starts that echo server in a child process, opens the
//! connections, drives echo traffic from one event loop per client thread, checks every
//! echoed byte, and reports throughput, HdrHistogram latency, errors, and what the server
//! and the client cost. See the README for the commands and the CSV columns.
//!
//! The library exposes the pieces so benches and tests can drive them directly.

pub mod app;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod config;
pub mod driver;
pub mod hlog;
pub mod limits;
pub mod merge;
pub mod payload;
pub mod plot;
pub mod probe;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod signals;
pub mod stats;
pub mod sweep;
pub mod target;

/// Input the user gave that cannot be read (a missing or malformed file); exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);
